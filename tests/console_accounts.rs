//! The console's email-account pages over HTTP (a form client, no browser): creating a
//! Permitted account through the form, a refused field shown beside it, the grant grid
//! saved and kept, Explain, Test account, the 403 of a user without the permission, the
//! choices a non-admin picks from, paging and filters. Each action is checked through the
//! API afterwards, so a page that only looked right would fail. (The administrators'
//! pages: `console_admin`; the same in a browser: `console_accounts_browser`.)

mod common;

use common::accounts::{account, admin_console, api, staff, ticked, PASSWORD};
use common::console::{Console, Page};
use common::upstream::{FakeUpstream, Script};
use common::{http, Gateway};
use serde_json::{json, Value};

fn location(page: &Page) -> String {
    page.header("location").unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_permitted_account_through_the_form() {
    let gw = Gateway::start(|_| {}).await;
    let kim = staff(&gw, "kim@example.com", Some(("agents", &[]))).await;
    let (status, _) = api(
        &gw,
        "POST",
        "/api/v1/skill-groups",
        Some(json!({"name": "tier1"})),
    )
    .await;
    assert_eq!(status, 201);
    let mut root = admin_console(&gw).await;

    let form = root.get("/console/accounts/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    for offered in [
        "value=\"local\"",
        "value=\"agents\"",
        "value=\"tier1\"",
        "kim@example.com",
    ] {
        assert!(
            form.body.contains(offered),
            "{offered} not offered: {}",
            form.body
        );
    }
    let kim_id = kim.to_string();
    let page = root
        .post(
            "/console/accounts/new",
            &[
                ("name", "Support"),
                ("description", "The support desk"),
                ("address", "support@example.com"),
                ("from_address", "help@example.com"),
                ("display_name", "Support Team"),
                ("reply_to", "replies@example.com"),
                ("aliases", "desk@example.com\nservice@example.com"),
                ("upstream", "local"),
                ("default_send_mode", "send_on_behalf"),
                ("owner", ""),
                ("scope", "permitted"),
                ("scope_skill_groups", "tier1"),
                ("scope_roles", "agents"),
                ("scope_users", &kim_id),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let at = location(&page);
    let id: u64 = at.rsplit('/').next().unwrap().parse().expect(&at);

    let (_, stored) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    assert_eq!(stored["name"], "Support");
    assert_eq!(stored["from_address"], "help@example.com");
    assert_eq!(stored["reply_to"], "replies@example.com");
    assert_eq!(
        stored["aliases"],
        json!(["desk@example.com", "service@example.com"])
    );
    assert_eq!(stored["default_send_mode"], "send_on_behalf");
    assert_eq!(
        stored["scope"],
        json!({"kind": "permitted", "skill_groups": ["tier1"], "roles": ["agents"], "users": [kim]})
    );
    // The audit names the console user, not a token.
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=account.create", None).await;
    assert!(audit.to_string().contains("root@example.com"), "{audit}");

    let edit = root.get(&at).await;
    assert_eq!(edit.status, 200);
    assert!(
        edit.body.contains("Account Support created"),
        "the notice: {}",
        edit.body
    );
    assert!(ticked(&edit, "scope", "permitted"), "{}", edit.body);
    assert!(ticked(&edit, "scope_roles", "agents"));
    assert!(ticked(&edit, "scope_skill_groups", "tier1"));
    assert!(ticked(&edit, "scope_users", &kim_id));

    // Edited through the same form: the scope back to all staff, a description changed.
    let page = root
        .post(
            &at,
            &[
                ("name", "Support"),
                ("description", "Changed"),
                ("address", "support@example.com"),
                ("from_address", ""),
                ("upstream", "local"),
                ("default_send_mode", "none"),
                ("scope", "all_staff"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (_, stored) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    assert_eq!(stored["description"], "Changed");
    assert_eq!(stored["from_address"], Value::Null);
    assert_eq!(stored["scope"], json!({"kind": "all_staff"}));

    let list = root.get("/console/accounts?q=support").await;
    assert!(list.body.contains("support@example.com") && list.body.contains("All staff"));
    let list = root.get("/console/accounts?q=nothing-like-it").await;
    assert!(list.body.contains("No account matches"), "{}", list.body);

    // Delete, then it is gone.
    let page = root
        .post(&format!("/console/accounts/{id}/delete"), &[])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (status, _) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_field_is_shown_beside_it_with_the_apis_reason() {
    let gw = Gateway::start(|_| {}).await;
    let mut root = admin_console(&gw).await;
    root.get("/console/accounts/new").await;
    let page = root
        .post(
            "/console/accounts/new",
            &[
                ("name", "Sales"),
                ("address", "not an address"),
                ("upstream", "local"),
                ("default_send_mode", "none"),
                ("scope", "all_staff"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    let error = page
        .body
        .split("id=\"f-address-error\">")
        .nth(1)
        .expect("an error beside the address");
    assert!(
        error.starts_with("&#34;not an address&#34; is not a valid mailbox"),
        "{error}"
    );
    let input = page.body.split("id=\"f-address\"").nth(1).unwrap();
    let input = &input[..input.find('>').unwrap()];
    assert!(input.contains("aria-invalid=\"true\""), "{input}");
    assert!(input.contains("f-address-error"), "{input}");
    // What was typed is kept.
    assert!(page.body.contains("value=\"Sales\""), "{}", page.body);
    let (_, all) = api(&gw, "GET", "/api/v1/accounts", None).await;
    assert!(!all.to_string().contains("Sales"), "nothing stored: {all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grant_grid_is_saved_and_kept() {
    let gw = Gateway::start(|_| {}).await;
    let kim = staff(&gw, "kim@example.com", Some(("agents", &[]))).await;
    let lee = staff(&gw, "lee@example.com", None).await;
    let id = account(&gw, "Support", "support@example.com", "local").await;
    let mut root = admin_console(&gw).await;
    let grid = format!("/console/accounts/{id}/grants");
    let page = root.get(&grid).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for column in [
        "Access emails",
        "Send emails: send as",
        "Send emails: send on behalf",
        "Setup mailbox",
    ] {
        assert!(page.body.contains(column), "{column}");
    }
    let (kim_key, lee_key) = (format!("user:{kim}"), format!("user:{lee}"));
    assert!(page.body.contains(&kim_key) && page.body.contains("role:agents"));
    assert!(!ticked(&page, "access", &kim_key));

    let page = root
        .post(
            &grid,
            &[
                ("access", &kim_key),
                ("send_on_behalf", &kim_key),
                ("send_as", "role:agents"),
                ("send_on_behalf", "role:agents"),
                ("setup", &lee_key),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = root.get(&grid).await;
    assert!(page.body.contains("Grants saved"));
    assert!(ticked(&page, "access", &kim_key));
    assert!(ticked(&page, "send_on_behalf", &kim_key));
    assert!(!ticked(&page, "send_as", &kim_key));
    // Both send boxes: send as, the more permissive.
    assert!(ticked(&page, "send_as", "role:agents"));
    assert!(!ticked(&page, "send_on_behalf", "role:agents"));
    assert!(ticked(&page, "setup", &lee_key));
    assert!(!ticked(&page, "access", &lee_key));

    let (_, stored) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    let grants = stored["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 3, "{stored}");
    assert!(
        grants.contains(&json!({"grantee": {"user": kim}, "access": true,
        "send": "send_on_behalf", "setup": false}))
    );
    assert!(
        grants.contains(&json!({"grantee": {"role": "agents"}, "access": false,
        "send": "send_as", "setup": false}))
    );

    // Nothing ticked: no grants left.
    let page = root.post(&grid, &[]).await;
    assert_eq!(page.status, 303);
    let (_, stored) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    assert_eq!(stored["grants"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_verdict_the_rule_and_the_rewrite() {
    let gw = Gateway::start(|_| {}).await;
    let kim = staff(&gw, "kim@example.com", None).await;
    let id = account(&gw, "Support", "support@example.com", "local").await;
    let mut root = admin_console(&gw).await;
    let ask = "/console/accounts/explain?user=kim%40example.com&from=support%40example.com";
    let page = root.get(ask).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<h2 id=\"verdict\">Refused</h2>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("550 5.7.1"),
        "the SMTP reply: {}",
        page.body
    );

    let page = root
        .post(
            &format!("/console/accounts/{id}/grants"),
            &[("send_on_behalf", &format!("user:{kim}"))],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = root.get(ask).await;
    assert!(
        page.body.contains("<h2 id=\"verdict\">Allowed</h2>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("send_on_behalf"),
        "the rule: {}",
        page.body
    );
    let sender = page.body.split("<dt>Sender</dt>").nth(1).unwrap();
    assert!(
        sender.starts_with("<dd><code>&#60;kim@example.com&#62;</code>"),
        "{sender}"
    );
    assert!(
        page.body.contains("support@example.com&#62;</code>"),
        "From: {}",
        page.body
    );

    // An unknown user: the reason beside the user field.
    let page = root
        .get("/console/accounts/explain?user=ghost&from=support%40example.com")
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("id=\"f-user-error\""), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_account_shows_the_upstreams_refusal() {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        rcpt_replies: vec![(
            "nobody@example.net".into(),
            "550 5.1.1 no such user here".into(),
        )],
        ..Script::default()
    })
    .await;
    let port = upstream.addr.port();
    let gw = Gateway::start(move |c| {
        c.upstreams
            .insert("sink".into(), common::sink_upstream(port));
    })
    .await;
    let id = account(&gw, "Support", "support@example.com", "sink").await;
    let mut root = admin_console(&gw).await;
    let path = format!("/console/accounts/{id}/test");
    assert_eq!(root.get(&path).await.status, 200);
    let page = root.post(&path, &[("to", "nobody@example.net")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(">refused</span>"), "{}", page.body);
    assert!(
        page.body.contains("550 5.1.1 no such user here"),
        "{}",
        page.body
    );
    let page = root.post(&path, &[("to", "bob@example.net")]).await;
    assert!(page.body.contains(">accepted</span>"), "{}", page.body);
    assert_eq!(upstream.record().messages.len(), 1);
    let page = root.post(&path, &[("to", "not an address")]).await;
    assert_eq!(page.status, 422);
    assert!(page.body.contains("id=\"f-to-error\""), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_the_permission_is_refused_with_403() {
    let gw = Gateway::start(|_| {}).await;
    staff(&gw, "pat@example.com", None).await;
    let mut pat = Console::login(gw.running.api, "pat@example.com", PASSWORD).await;
    pat.get("/console/accounts/new").await;
    let page = pat
        .post(
            "/console/accounts/new",
            &[
                ("name", "Shared"),
                ("address", "shared@example.com"),
                ("default_send_mode", "none"),
                ("owner", ""),
                ("scope", "all_staff"),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("shared_account_setup"), "{}", page.body);
    let (_, all) = api(&gw, "GET", "/api/v1/accounts", None).await;
    assert!(!all.to_string().contains("shared@example.com"), "{all}");
    for admin_only in ["/console/upstreams", "/console/dkim", "/console/settings"] {
        assert_eq!(pat.get(admin_only).await.status, 403, "{admin_only}");
    }
    let page = pat
        .get("/console/accounts/explain?user=pat%40example.com&from=x%40example.com")
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(
        pat.post("/console/settings", &[("max_users", "1")])
            .await
            .status,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_of_shared_account_setup_picks_from_the_choices() {
    let gw = Gateway::start(|_| {}).await;
    let lead = ("account-admins", &["shared_account_setup"][..]);
    staff(&gw, "lead@example.com", Some(lead)).await;
    staff(&gw, "pat@example.com", None).await;
    let mut console = Console::login(gw.running.api, "lead@example.com", PASSWORD).await;
    let form = console.get("/console/accounts/new").await;
    assert_eq!(form.status, 200);
    for offered in [
        "value=\"local\"",
        "value=\"account-admins\"",
        "pat@example.com",
    ] {
        assert!(form.body.contains(offered), "{offered}: {}", form.body);
    }
    // Not an admin: no default flag to tick, and upstreams' settings stay the admins'.
    assert!(!form.body.contains("name=\"is_default\""));
    assert_eq!(console.get("/console/upstreams").await.status, 403);
    // The names are the API's: refused to a user who may set no account up.
    let pat = gw.create_user("pat2@example.com", "staff", PASSWORD).await;
    let path = format!("/api/v1/users/{}/tokens", pat["id"]);
    let (_, token) = api(&gw, "POST", &path, Some(json!({}))).await;
    let token = token["token"].as_str().unwrap();
    let (status, text) = http(
        gw.running.api,
        "GET",
        "/api/v1/accounts/choices",
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 403, "{text}");
    let (status, choices) = api(&gw, "GET", "/api/v1/accounts/choices", None).await;
    assert_eq!(status, 200);
    assert_eq!(choices["upstreams"], json!(["local"]), "{choices}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_pages_on_the_server_and_filters_by_health() {
    let gw = Gateway::start(|_| {}).await;
    for n in 0..27 {
        account(
            &gw,
            &format!("Box {n:02}"),
            &format!("box{n:02}@example.com"),
            "local",
        )
        .await;
    }
    let mut root = admin_console(&gw).await;
    let first = root.get("/console/accounts?q=box").await;
    assert!(
        first.body.contains("27 account(s), page 1 of 2"),
        "{}",
        first.body
    );
    assert!(first.body.contains("box00@example.com") && !first.body.contains("box26@example.com"));
    assert!(
        first.body.contains("rel=\"next\""),
        "a next link: {}",
        first.body
    );
    let second = root.get("/console/accounts?q=box&health=&page=2").await;
    assert!(second.body.contains("box26@example.com"), "{}", second.body);
    assert!(!second.body.contains("box00@example.com"));
    let failing = root.get("/console/accounts?health=failing").await;
    assert!(
        failing.body.contains("No account matches"),
        "{}",
        failing.body
    );
}
