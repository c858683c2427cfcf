//! The control API's model (SPEC §1, §2, §3.4, §9) through a real server: caller identity
//! and permissions, users, roles, skill groups, groups, upstreams, accounts with their
//! grants, settings, `/me`, and policy/explain — each rule with its status code and
//! problem body; and a change through the API reaching the next SMTP session.

mod common;

use common::{http, Client, Gateway, Reply, TOKEN};
use serde_json::{json, Value};

/// No request body.
const NONE: Value = Value::Null;

/// An API client bound to one bearer token.
struct As<'a> {
    gw: &'a Gateway,
    token: String,
}

impl As<'_> {
    /// `line` is "METHOD /path"; returns (status, parsed body or `null`).
    async fn call(&self, line: &str, body: Value) -> (u16, Value) {
        let (method, path) = line.split_once(' ').unwrap();
        let body = (!body.is_null()).then(|| body.to_string());
        let api = self.gw.running.api;
        let (status, text) = http(api, method, path, Some(&self.token), body.as_deref()).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Asserts the status; returns the body.
    async fn expect(&self, line: &str, body: Value, status: u16) -> Value {
        let (got, doc) = self.call(line, body).await;
        assert_eq!(got, status, "{line} -> {doc}");
        doc
    }

    /// Asserts a 403 problem naming `permission`.
    async fn forbidden(&self, line: &str, body: Value, permission: &str) {
        let doc = self.expect(line, body, 403).await;
        let detail = doc["detail"].as_str().unwrap_or_default();
        let wanted = format!("permission {permission} is required");
        assert!(detail.starts_with(&wanted), "{line} -> {doc}");
    }

    /// Asserts a 422 problem naming `field`.
    async fn invalid(&self, line: &str, body: Value, field: &str) {
        let doc = self.expect(line, body, 422).await;
        assert_eq!(doc["errors"][0]["field"], field, "{line} -> {doc}");
    }
}

fn bearer<'a>(gw: &'a Gateway, token: &str) -> As<'a> {
    As {
        gw,
        token: token.into(),
    }
}

fn admin(gw: &Gateway) -> As<'_> {
    bearer(gw, TOKEN)
}

/// A staff user (password `<login>-password`) with an API token of its own.
async fn staff<'a>(gw: &'a Gateway, login: &str) -> (u64, As<'a>) {
    let user = gw
        .create_user(login, "staff", &format!("{login}-password"))
        .await;
    let id = user["id"].as_u64().unwrap();
    let line = format!("POST /api/v1/users/{id}/tokens");
    let issued = admin(gw).expect(&line, NONE, 201).await;
    let token = issued["token"].as_str().unwrap().to_string();
    (id, As { gw, token })
}

/// A new role with `permissions`, given to user `id` by the admin.
async fn give_role(gw: &Gateway, id: u64, role: &str, permissions: &[&str]) {
    let body = json!({"name": role, "permissions": permissions});
    admin(gw).expect("POST /api/v1/roles", body, 201).await;
    let line = format!("PATCH /api/v1/users/{id}");
    admin(gw).expect(&line, json!({"roles": [role]}), 200).await;
}

fn shared(name: &str, address: &str) -> Value {
    json!({"name": name, "address": address, "upstream": "local"})
}

fn names(list: &Value) -> Vec<&str> {
    let list = list.as_array().unwrap();
    list.iter().map(|a| a["name"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_identified_and_missing_permissions_named() {
    let gw = Gateway::start(|_| {}).await;
    let root = admin(&gw);
    let (id, ann) = staff(&gw, "ann@example.com").await;
    let (other, _) = staff(&gw, "ben@example.com").await;
    let anonymous = http(gw.running.api, "GET", "/api/v1/me", None, None).await;
    assert_eq!(anonymous.0, 401);
    let stranger = bearer(&gw, "pst_not-a-token");
    assert_eq!(
        stranger.expect("GET /api/v1/me", NONE, 401).await["status"],
        401
    );
    let me = ann.expect("GET /api/v1/me", NONE, 200).await;
    assert_eq!(
        (&me["id"], &me["login"]),
        (&json!(id), &json!("ann@example.com"))
    );
    assert!(
        me.get("password_hash").is_none() && me["permissions"] == json!([]),
        "{me}"
    );
    let explain = json!({"user": "ann@example.com", "from": "ann@example.com"});
    let url = json!({"public_url": "https://x.test"});
    let denied = [
        ("GET /api/v1/users", NONE, "manage_users"),
        ("GET /api/v1/roles", NONE, "admin"),
        ("GET /api/v1/upstreams", NONE, "admin"),
        ("PATCH /api/v1/settings", url, "admin"),
        (
            "POST /api/v1/policy/explain",
            explain,
            "shared_account_setup",
        ),
        (
            &format!("POST /api/v1/users/{other}/tokens"),
            NONE,
            "manage_users",
        ),
    ];
    for (line, body, permission) in denied {
        ann.forbidden(line, body, permission).await;
    }
    // A user may issue its own tokens; each is shown once.
    let tokens = format!("/api/v1/users/{id}/tokens");
    let second = ann
        .expect(&format!("POST {tokens}"), json!({"label": "cli"}), 201)
        .await;
    let second = bearer(&gw, second["token"].as_str().unwrap());
    second.expect("GET /api/v1/me", NONE, 200).await;
    // A user who is not active is refused, whatever its token.
    let user = format!("PATCH /api/v1/users/{id}");
    root.expect(&user, json!({"status": "deactivated"}), 200)
        .await;
    ann.expect("GET /api/v1/me", NONE, 401).await;
    root.expect(&user, json!({"status": "active"}), 200).await;
    ann.expect("GET /api/v1/me", NONE, 200).await;
    // Listed by id and label, never the token; one can be revoked alone.
    let listed = ann.expect(&format!("GET {tokens}"), NONE, 200).await;
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed
        .iter()
        .all(|t| t.get("token").is_none() && t["id"].as_str().unwrap().len() == 16));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let brief = ann
        .expect(
            &format!("POST {tokens}"),
            json!({"label": "brief", "expires_at": now + 2}),
            201,
        )
        .await;
    assert_eq!(brief["expires_at"], now + 2);
    let brief_id = brief["id"].as_str().unwrap().to_string();
    let brief = bearer(&gw, brief["token"].as_str().unwrap());
    brief.expect("GET /api/v1/me", NONE, 200).await;
    ann.invalid(
        &format!("POST {tokens}"),
        json!({"expires_at": now - 1}),
        "expires_at",
    )
    .await;
    // A token issued with an expiring token does not outlive it.
    let (_, child) = brief
        .call(&format!("POST {tokens}"), json!({"label": "child"}))
        .await;
    assert_eq!(child["expires_at"], now + 2, "{child}");
    brief
        .invalid(
            &format!("POST {tokens}"),
            json!({"expires_at": now + 3600}),
            "expires_at",
        )
        .await;
    let child_id = child["id"].as_str().unwrap().to_string();
    ann.expect(&format!("DELETE {tokens}/{child_id}"), NONE, 204)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    brief.expect("GET /api/v1/me", NONE, 401).await;
    ann.expect(&format!("DELETE {tokens}/{brief_id}"), NONE, 204)
        .await;
    ann.expect(&format!("DELETE {tokens}/{brief_id}"), NONE, 404)
        .await;
    let revoked = root.expect(&format!("DELETE {tokens}"), NONE, 200).await;
    assert_eq!(revoked["revoked"], 2);
    ann.expect("GET /api/v1/me", NONE, 401).await;
    second.expect("GET /api/v1/me", NONE, 401).await;
    // Problems for a wrong method and a body with an unknown field.
    assert_eq!(ann.expect("PUT /api/v1/me", NONE, 405).await["status"], 405);
    let odd = json!({"display_name": "x", "shoe_size": 42});
    root.expect(&user, odd, 400).await;
    // The bootstrap token is a synthetic admin.
    let boot = root.expect("GET /api/v1/me", NONE, 200).await;
    assert_eq!(boot["bootstrap"], true);
    assert!(boot["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("admin")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_listed_shown_and_patched_without_escalation() {
    let gw = Gateway::start(|_| {}).await;
    let (manager, mia) = staff(&gw, "mia@example.com").await;
    let (agent, _) = staff(&gw, "al@example.com").await;
    gw.create_user("req@example.org", "requester", "requester-pw")
        .await;
    give_role(&gw, manager, "managers", &["manage_users"]).await;
    let admins = json!({"name": "admins", "permissions": ["admin"]});
    admin(&gw).expect("POST /api/v1/roles", admins, 201).await;
    let listed = mia.expect("GET /api/v1/users?kind=staff", NONE, 200).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let line = "GET /api/v1/users?kind=requester&status=active";
    assert_eq!(
        mia.expect(line, NONE, 200).await[0]["login"],
        "req@example.org"
    );
    mia.expect("GET /api/v1/users?kind=robot", NONE, 400).await;
    mia.expect("GET /api/v1/users/999999", NONE, 404).await;
    let show = format!("GET /api/v1/users/{agent}");
    assert_eq!(
        mia.expect(&show, NONE, 200).await["login"],
        "al@example.com"
    );
    let patch = format!("PATCH /api/v1/users/{agent}");
    let refused = [
        (json!({"roles": ["nope"]}), "roles"),
        (json!({"skill_groups": ["nope"]}), "skill_groups"),
        (json!({"group": "nope"}), "group"),
        (json!({"email": "not-an-address"}), "email"),
        (json!({"password": "short"}), "password"),
    ];
    for (body, field) in refused {
        mia.invalid(&patch, body, field).await;
    }
    // manage_users cannot hand out, or take for itself, more than it holds.
    mia.forbidden(&patch, json!({"roles": ["admins"]}), "admin")
        .await;
    let own = format!("PATCH /api/v1/users/{manager}");
    mia.forbidden(&own, json!({"roles": ["managers", "admins"]}), "admin")
        .await;
    let billing = json!({"name": "Billing"});
    mia.expect("POST /api/v1/skill-groups", billing, 201).await;
    mia.expect("POST /api/v1/groups", json!({"name": "VIP"}), 201)
        .await;
    let body = json!({"display_name": "Al", "skill_groups": ["billing"], "group": "vip",
        "password": "new-password-1"});
    let patched = mia.expect(&patch, body, 200).await;
    assert_eq!(patched["skill_groups"], json!(["Billing"]));
    assert_eq!(patched["group"], "VIP");
    let text = mia.expect(&show, NONE, 200).await.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password_hash"),
        "{text}"
    );
    let mut smtp = Client::connect(gw.addr("plain")).await;
    smtp.login("al@example.com", "new-password-1").await;
    let cleared = mia.expect(&patch, json!({"group": null}), 200).await;
    assert_eq!(cleared["group"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_skill_groups_and_groups() {
    let gw = Gateway::start(|_| {}).await;
    let root = admin(&gw);
    let (id, ops) = staff(&gw, "ops@example.com").await;
    let bad = json!({"name": "x", "permissions": ["fly"]});
    root.invalid("POST /api/v1/roles", bad, "permissions").await;
    let bad = json!({"name": "", "permissions": []});
    root.invalid("POST /api/v1/roles", bad, "name").await;
    give_role(&gw, id, "queue", &["view_queue"]).await;
    let taken = json!({"name": "QUEUE", "permissions": []});
    root.expect("POST /api/v1/roles", taken, 409).await;
    let body = json!({"permissions": ["view_queue", "manage_queue"]});
    let role = root.expect("PUT /api/v1/roles/queue", body, 200).await;
    assert_eq!(role["permissions"], json!(["view_queue", "manage_queue"]));
    let body = json!({"permissions": []});
    root.expect("PUT /api/v1/roles/ghost", body, 404).await;
    assert_eq!(
        names(&root.expect("GET /api/v1/roles", NONE, 200).await),
        ["queue"]
    );
    let me = ops.expect("GET /api/v1/me", NONE, 200).await;
    assert_eq!(me["permissions"], json!(["view_queue", "manage_queue"]));
    let busy = root.expect("DELETE /api/v1/roles/queue", NONE, 409).await;
    assert!(
        busy["detail"].as_str().unwrap().contains("ops@example.com"),
        "{busy}"
    );
    let user = format!("PATCH /api/v1/users/{id}");
    root.expect(&user, json!({"roles": []}), 200).await;
    root.expect("DELETE /api/v1/roles/queue", NONE, 204).await;
    let body = json!({"name": "a"});
    ops.forbidden("POST /api/v1/skill-groups", body, "manage_users")
        .await;
    for kind in ["skill-groups", "groups"] {
        let post = format!("POST /api/v1/{kind}");
        let body = json!({"name": "Tier 1", "description": "first line"});
        root.expect(&post, body.clone(), 201).await;
        root.expect(&post, json!({"name": "tier 1"}), 409).await;
        root.invalid(&post, json!({"name": "a/b"}), "name").await;
        let list = root.expect(&format!("GET /api/v1/{kind}"), NONE, 200).await;
        let mut shown = body.clone();
        if kind == "groups" {
            shown["max_users"] = Value::Null;
        }
        assert_eq!(list, json!([shown]));
    }
    root.expect(&user, json!({"skill_groups": ["tier 1"]}), 200)
        .await;
    root.expect("DELETE /api/v1/skill-groups/Tier%201", NONE, 409)
        .await;
    root.expect("DELETE /api/v1/groups/tier%201", NONE, 204)
        .await;
    root.expect("DELETE /api/v1/groups/tier%201", NONE, 404)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_are_listed_redacted_validated_and_guarded() {
    let gw = Gateway::start(|_| {}).await;
    let root = admin(&gw);
    let list = root.expect("GET /api/v1/upstreams", NONE, 200).await;
    assert_eq!(
        (&list[0]["name"], &list[0]["source"]),
        (&json!("local"), &json!("config"))
    );
    let no_host = json!({"name": "m365", "kind": "smtp"});
    root.invalid("POST /api/v1/upstreams", no_host, "host")
        .await;
    root.invalid("POST /api/v1/upstreams", json!({"name": "m365"}), "kind")
        .await;
    let relay = json!({"name": "m365", "kind": "smtp", "host": "smtp.example.net", "port": 587,
        "auth": "plain", "username": "gw@example.com", "password": "hunter2-secret"});
    let created = root
        .expect("POST /api/v1/upstreams", relay.clone(), 201)
        .await;
    assert_eq!(created["password"], "[redacted]");
    root.expect("POST /api/v1/upstreams", relay, 409).await;
    let local = json!({"name": "local", "kind": "maildir"});
    root.expect("POST /api/v1/upstreams", local, 409).await;
    let list = root.expect("GET /api/v1/upstreams", NONE, 200).await;
    assert!(!list.to_string().contains("hunter2"), "{list}");
    let m365 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "m365")
        .unwrap();
    assert_eq!(
        (&m365["source"], &m365["password"]),
        (&json!("api"), &json!("[redacted]"))
    );
    // An account can use it at once; while one does, it cannot be deleted.
    let sales = json!({"name": "Sales", "address": "sales@example.com", "upstream": "m365"});
    let sales = root.expect("POST /api/v1/accounts", sales, 201).await;
    root.expect("DELETE /api/v1/upstreams/local", NONE, 409)
        .await;
    let busy = root
        .expect("DELETE /api/v1/upstreams/m365", NONE, 409)
        .await;
    assert!(busy["detail"].as_str().unwrap().contains("Sales"), "{busy}");
    let line = format!("DELETE /api/v1/accounts/{}", sales["id"]);
    root.expect(&line, NONE, 204).await;
    root.expect("DELETE /api/v1/upstreams/m365", NONE, 204)
        .await;
    let gone = json!({"name": "S", "address": "s@example.com", "upstream": "m365"});
    root.invalid("POST /api/v1/accounts", gone, "upstream")
        .await;
    let (_, staff) = staff(&gw, "x@example.com").await;
    staff
        .forbidden("DELETE /api/v1/upstreams/local", NONE, "admin")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_and_personal_accounts_follow_the_permissions() {
    let gw = Gateway::start(|_| {}).await;
    let (lead_id, lead) = staff(&gw, "lead@example.com").await;
    let (pat_id, pat) = staff(&gw, "pat@example.com").await;
    give_role(&gw, lead_id, "account-admins", &["shared_account_setup"]).await;
    let post = "POST /api/v1/accounts";
    let support = lead
        .expect(post, shared("Support", "support@example.com"), 201)
        .await;
    assert_eq!(support["owner"], Value::Null);
    let sales = shared("Sales", "sales@example.com");
    pat.forbidden(post, sales, "shared_account_setup").await;
    // A personal account: for oneself while allowed, never for someone else.
    let mine = json!({"name": "Pat's", "address": "pat@example.com", "owner": pat_id});
    let personal = pat.expect(post, mine, 201).await;
    let theirs = json!({"name": "Lead's", "address": "lead@example.com", "owner": lead_id});
    pat.forbidden(post, theirs, "admin").await;
    let flag = json!({"name": "D2", "address": "d2@example.com", "default": true, "owner": pat_id});
    pat.forbidden(post, flag, "admin").await;
    let off = json!({"allow_personal_accounts": false});
    admin(&gw).expect("PATCH /api/v1/settings", off, 200).await;
    let again = json!({"name": "Pat 2", "address": "pat2@example.com", "owner": pat_id});
    pat.forbidden(post, again, "admin").await;
    // Visibility: own and granted accounts only; any other is a 404.
    let path = format!("/api/v1/accounts/{}", support["id"]);
    assert_eq!(
        names(&pat.expect("GET /api/v1/accounts", NONE, 200).await),
        ["Pat's"]
    );
    pat.expect(&format!("GET {path}"), NONE, 404).await;
    let patch = format!("PATCH {path}");
    pat.expect(&patch, json!({"description": "x"}), 404).await;
    let all = lead.expect("GET /api/v1/accounts", NONE, 200).await;
    assert_eq!(names(&all), ["default", "Support", "Pat's"]);
    // An access grant shows the account but does not allow changing it; a setup grant does.
    let grants = format!("PUT {path}/grants");
    let access = json!([{"grantee": {"user": pat_id}, "access": true}]);
    lead.expect(&grants, access, 200).await;
    pat.expect(&format!("GET {path}/status"), NONE, 200).await;
    pat.forbidden(&patch, json!({"description": "x"}), "shared_account_setup")
        .await;
    let setup = json!({"grants": [{"grantee": {"user": pat_id}, "access": true, "setup": true}]});
    lead.expect(&grants, setup, 200).await;
    let body = json!({"description": "Front line", "display_name": "Support Team"});
    let patched = pat.expect(&patch, body, 200).await;
    assert_eq!(patched["description"], "Front line");
    assert_eq!(patched["display_name"], "Support Team");
    pat.forbidden(&patch, json!({"default": true}), "admin")
        .await;
    // The owner changes and deletes its personal account; shared_account_setup may not.
    let own = format!("/api/v1/accounts/{}", personal["id"]);
    pat.expect(
        &format!("PATCH {own}"),
        json!({"aliases": ["p@example.com"]}),
        200,
    )
    .await;
    lead.forbidden(&format!("DELETE {own}"), NONE, "admin")
        .await;
    pat.expect(&format!("DELETE {own}"), NONE, 204).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_validated_before_anything_is_written() {
    let gw = Gateway::start(|_| {}).await;
    let root = admin(&gw);
    let (user, _) = staff(&gw, "kim@example.com").await;
    let post = "POST /api/v1/accounts";
    let support = json!({"name": "Support", "address": "support@example.com",
        "aliases": ["help@example.com"], "upstream": "local"});
    let support = root.expect(post, support, 201).await;
    let dup = root
        .expect(post, shared("SUPPORT", "other@example.com"), 409)
        .await;
    assert!(dup["detail"].as_str().unwrap().contains("Support"), "{dup}");
    let dup = root
        .expect(post, shared("Help", "Help@Example.com"), 409)
        .await;
    assert!(
        dup["detail"].as_str().unwrap().contains("help@example.com"),
        "{dup}"
    );
    let b = |extra: Value| {
        let mut body = json!({"name": "B", "address": "b@example.com"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let refused = [
        (shared("Bad", "not an address"), "address"),
        (shared("Empty", ""), "address"),
        (b(json!({"name": " "})), "name"),
        (b(json!({"reply_to": "x@"})), "reply_to"),
        (b(json!({"from_address": "x"})), "from_address"),
        (b(json!({"aliases": ["a@b@c"]})), "aliases"),
        (b(json!({"upstream": "nowhere"})), "upstream"),
        (
            b(json!({"grants": [{"grantee": {"user": 424242}}]})),
            "grants",
        ),
        (
            b(json!({"grants": [{"grantee": {"role": "ghost"}}]})),
            "grants",
        ),
        (
            b(json!({"scope": {"kind": "permitted", "roles": ["ghost"]}})),
            "scope",
        ),
        (b(json!({"default": true})), "default"),
        (b(json!({"owner": 424242})), "owner"),
    ];
    for (body, field) in refused {
        root.invalid(post, body, field).await;
    }
    let list = root.expect("GET /api/v1/accounts", NONE, 200).await;
    assert_eq!(
        names(&list),
        ["default", "Support"],
        "nothing partially written"
    );
    let default = list[0].clone();
    assert_eq!(
        (&default["is_default"], &default["address"]),
        (&json!(true), &json!(""))
    );
    // A change is checked as a whole too: nothing of a refused one is kept.
    let path = format!("/api/v1/accounts/{}", support["id"]);
    let patch = json!({"description": "changed", "address": "nope"});
    root.invalid(&format!("PATCH {path}"), patch, "address")
        .await;
    let grants = json!([{"grantee": {"user": user}, "send": "send_as"},
        {"grantee": {"role": "ghost"}}]);
    root.invalid(&format!("PUT {path}/grants"), grants, "grants")
        .await;
    let kept = root.expect(&format!("GET {path}"), NONE, 200).await;
    assert_eq!(
        (&kept["description"], &kept["grants"]),
        (&json!(""), &json!([])),
        "{kept}"
    );
    let line = format!("DELETE /api/v1/accounts/{}", default["id"]);
    let problem = root.expect(&line, NONE, 409).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("default"),
        "{problem}"
    );
    let status = root.expect(&format!("GET {path}/status"), NONE, 200).await;
    assert_eq!(status["health"], "healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_accounts_never_list_system_scope_for_staff() {
    let gw = Gateway::start(|_| {}).await;
    let root = admin(&gw);
    let (id, sam) = staff(&gw, "sam@example.com").await;
    let post = "POST /api/v1/accounts";
    let system = json!({"name": "Notices", "address": "noreply@example.com",
        "scope": {"kind": "system"}, "default_send_mode": "send_as",
        "grants": [{"grantee": {"user": id}, "send": "send_as"}]});
    root.expect(post, system, 201).await;
    let granted = json!({"name": "Support", "address": "support@example.com",
        "grants": [{"grantee": {"user": id}, "send": "send_on_behalf"}]});
    root.expect(post, granted, 201).await;
    root.expect(post, shared("Board", "board@example.com"), 201)
        .await;
    let mine = sam.expect("GET /api/v1/me/accounts", NONE, 200).await;
    assert_eq!(names(&mine), ["default", "Support"], "{mine}");
    assert_eq!(mine[0]["send_mode"], "send_as_self");
    assert_eq!(mine[0]["from"], "sam@example.com");
    assert_eq!(mine[1]["send_mode"], "send_on_behalf");
    // A system principal does see it.
    let body = json!({"login": "notifier", "email": "notifier@example.com", "kind": "system"});
    let bot = root.expect("POST /api/v1/users", body, 201).await;
    let line = format!("POST /api/v1/users/{}/tokens", bot["id"]);
    let token = root.expect(&line, NONE, 201).await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bot = As { gw: &gw, token };
    let seen = bot.expect("GET /api/v1/me/accounts", NONE, 200).await;
    assert_eq!(names(&seen), ["Notices"], "{seen}");
    root.expect("GET /api/v1/me/accounts", NONE, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_decision_or_the_refusal() {
    let gw = Gateway::start(|_| {}).await;
    let (eve, _) = staff(&gw, "eve@example.com").await;
    let (lead_id, lead) = staff(&gw, "lead@example.com").await;
    give_role(&gw, lead_id, "setup", &["shared_account_setup"]).await;
    let account = json!({"name": "Support", "address": "support@example.com",
        "grants": [{"grantee": {"user": eve}, "send": "send_on_behalf"}]});
    admin(&gw)
        .expect("POST /api/v1/accounts", account, 201)
        .await;
    let line = "POST /api/v1/policy/explain";
    let ask = json!({"user": "eve@example.com", "from": "support@example.com"});
    let yes = lead.expect(line, ask, 200).await;
    assert_eq!(yes["allowed"], true);
    assert_eq!(yes["account"]["name"], "Support");
    assert_eq!(yes["send_mode"], "send_on_behalf");
    assert!(!yes["trail"].as_array().unwrap().is_empty(), "{yes}");
    let sender = yes["rewrite"]["sender"].as_str().unwrap_or_default();
    assert!(sender.ends_with("<eve@example.com>"), "{yes}");
    let ask = json!({"user": lead_id, "from": "support@example.com", "account": "Support"});
    let no = lead.expect(line, ask, 200).await;
    assert_eq!(
        (&no["allowed"], &no["account"]),
        (&json!(false), &Value::Null)
    );
    let reply = no["reply"].as_str().unwrap();
    assert!(
        reply.starts_with("550 5.7.1 <lead@example.com> may not send as"),
        "{no}"
    );
    assert!(!no["trail"].as_array().unwrap().is_empty(), "{no}");
    let ask = json!({"user": "nobody@example.com", "from": "support@example.com"});
    lead.expect(line, ask, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_validated() {
    let gw = Gateway::start(|_| {}).await;
    let root = admin(&gw);
    let (_, val) = staff(&gw, "val@example.com").await;
    let settings = root.expect("GET /api/v1/settings", NONE, 200).await;
    assert_eq!(settings["allow_personal_accounts"], true);
    val.forbidden("GET /api/v1/settings", NONE, "admin").await;
    let line = "PATCH /api/v1/settings";
    root.invalid(
        line,
        json!({"org_domains": ["exa mple.com"]}),
        "org_domains",
    )
    .await;
    root.invalid(line, json!({"public_url": "ftp://x"}), "public_url")
        .await;
    root.invalid(line, json!({"max_users": 0}), "max_users")
        .await;
    let patch = json!({"org_domains": ["Example.COM"], "public_url": "https://mail.example.com/",
        "max_users": 2});
    let saved = root.expect(line, patch, 200).await;
    assert_eq!(saved["org_domains"], json!(["example.com"]));
    assert_eq!(saved["public_url"], "https://mail.example.com");
    let user = |login: &str| {
        json!({"login": login, "email": login, "kind": "staff",
        "password": "long-password"})
    };
    root.expect("POST /api/v1/users", user("two@example.com"), 201)
        .await;
    root.expect("POST /api/v1/users", user("three@example.com"), 409)
        .await;
    let cleared = root.expect(line, json!({"max_users": null}), 200).await;
    assert_eq!(cleared["max_users"], Value::Null);
    root.expect("POST /api/v1/users", user("three@example.com"), 201)
        .await;
}

/// One submission on the plain listener with AUTH; returns the reply to MAIL FROM if it
/// refused, else the reply to the end of the data.
async fn submit(gw: &Gateway, login: &str, from: &str) -> Reply {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login(login, &format!("{login}-password")).await;
    let mail = c.cmd(&format!("MAIL FROM:<{from}>")).await;
    if mail.code != 250 {
        return mail;
    }
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let message = format!(
        "From: Support <{from}>\r\nTo: <customer@example.net>\r\nSubject: hi\r\n\r\nHi.\r\n."
    );
    c.cmd(&message).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_change_reaches_the_next_smtp_session() {
    let gw = Gateway::start(|_| {}).await;
    let (id, _) = staff(&gw, "agent@example.com").await;
    let account = json!({"name": "Support", "address": "support@example.com", "upstream": "local",
        "scope": {"kind": "all_staff"}, "default_send_mode": "none",
        "grants": [{"grantee": {"user": id}, "send": "send_as"}]});
    let created = admin(&gw)
        .expect("POST /api/v1/accounts", account, 201)
        .await;
    let reply = submit(&gw, "agent@example.com", "support@example.com").await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let delivered = gw.wait_outbox(1).await;
    assert_eq!(delivered.len(), 1);
    assert!(String::from_utf8_lossy(&delivered[0]).contains("<support@example.com>"));
    let line = format!("PUT /api/v1/accounts/{}/grants", created["id"]);
    admin(&gw).expect(&line, json!([]), 200).await;
    let reply = submit(&gw, "agent@example.com", "support@example.com").await;
    assert_eq!(reply.code, 550, "{reply:?}");
    assert!(reply.text.starts_with("550 5.7.1"), "{reply:?}");
}
