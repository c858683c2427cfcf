//! The people area of the console over HTTP: users, roles and tokens; what a staff user
//! without permissions sees; mail users (lock, backups and the mbox download); the queue;
//! the audit log naming the console user. (The same in a real browser:
//! `console_people_browser`.)

mod common;

use common::backup::save_config;
use common::console::{Console, Page};
use common::helpdesk::api;
use common::people::{self, HANDOVER, LEAVER, ROOT, ROOT_PASSWORD};
use common::Gateway;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The administrator, logged in to the console.
async fn admin(gw: &Gateway) -> Console {
    people::admin(gw).await;
    Console::login(gw.running.api, ROOT, ROOT_PASSWORD).await
}

/// The path a 303 leads to.
fn location(page: &Page) -> String {
    assert_eq!(page.status, 303, "{}", page.body);
    page.header("location").expect("a Location header")
}

/// Gets `path` until its body contains `wanted` (bounded).
async fn until(console: &mut Console, path: &str, wanted: &str) -> Page {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = console.get(path).await;
        if page.body.contains(wanted) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never showed {wanted:?}: {}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn audit(gw: &Gateway, query: &str) -> Vec<Value> {
    let (status, entries) = api(gw, "GET", &format!("/api/v1/audit?{query}"), None).await;
    assert_eq!(status, 200, "{entries}");
    entries.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_user_gives_a_role_and_a_token_shown_once_then_revoked() {
    let gw = Gateway::start(|_| {}).await;
    let mut root = admin(&gw).await;
    // A role with a permission, made in the console.
    root.get("/console/roles").await;
    let page = root
        .post(
            "/console/roles",
            &[
                ("name", "desk"),
                ("permissions", "view_queue"),
                ("permissions", "manage_queue"),
            ],
        )
        .await;
    assert_eq!(location(&page), "/console/roles");
    let roles = root.get("/console/roles").await;
    assert!(
        roles.body.contains("view_queue, manage_queue"),
        "{}",
        roles.body
    );
    // A refused role: shown beside its field with the API's reason.
    let page = root.post("/console/roles", &[("name", "")]).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("id=\"name-error\""), "{}", page.body);

    root.get("/console/users/new").await;
    let page = root
        .post(
            "/console/users/new",
            &[
                ("login", "bob@example.com"),
                ("email", "bob@example.com"),
                ("display_name", "Bob"),
                ("kind", "staff"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body.contains("needs at least 8 characters"),
        "{}",
        page.body
    );
    let page = root
        .post(
            "/console/users/new",
            &[
                ("login", "bob@example.com"),
                ("email", "bob@example.com"),
                ("display_name", "Bob"),
                ("kind", "staff"),
                ("password", "bob-password-1"),
            ],
        )
        .await;
    let user_page = location(&page);
    let id: u64 = user_page.rsplit('/').next().unwrap().parse().unwrap();
    let list = root.get("/console/users?q=BOB").await;
    assert!(
        list.body.contains(&format!("href=\"/console/users/{id}\"")),
        "{}",
        list.body
    );
    assert!(!root
        .get("/console/users?kind=requester")
        .await
        .body
        .contains("bob@example.com"));

    root.get(&user_page).await;
    let page = root
        .post(
            &user_page,
            &[
                ("display_name", "Bob Builder"),
                ("email", "bob@example.com"),
                ("roles", "desk"),
            ],
        )
        .await;
    assert_eq!(location(&page), user_page);
    let (_, user) = api(&gw, "GET", &format!("/api/v1/users/{id}"), None).await;
    assert_eq!(user["roles"], json!(["desk"]));
    assert_eq!(user["display_name"], "Bob Builder");
    let shown = root.get(&user_page).await;
    assert!(
        shown.body.contains("value=\"desk\" checked"),
        "{}",
        shown.body
    );

    // The token is shown once, works, is listed by id only, and stops working when revoked.
    let page = root
        .post(
            &format!("/console/users/{id}/tokens"),
            &[("label", "ci"), ("days", "")],
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let at = page
        .body
        .find("value=\"pst_")
        .expect("the token on the page")
        + 7;
    let token = page.body[at..at + page.body[at..].find('"').unwrap()].to_string();
    let (status, _) = common::http(gw.running.api, "GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(status, 200);
    let shown = root.get(&user_page).await;
    assert!(!shown.body.contains(&token), "the token is shown only once");
    let (_, tokens) = api(&gw, "GET", &format!("/api/v1/users/{id}/tokens"), None).await;
    let token_id = tokens[0]["id"].as_str().unwrap().to_string();
    assert!(shown.body.contains(&token_id));
    let page = root
        .post(
            &format!("/console/users/{id}/tokens/{token_id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(location(&page), user_page);
    let (status, _) = common::http(gw.running.api, "GET", "/api/v1/me", Some(&token), None).await;
    assert_eq!(status, 401);

    // Bob's console session is listed on his page and ended from there.
    let mut bob = Console::login(gw.running.api, "bob@example.com", "bob-password-1").await;
    assert_eq!(bob.get("/console/").await.status, 200);
    let (_, sessions) = api(&gw, "GET", &format!("/api/v1/users/{id}/sessions"), None).await;
    let session = sessions[0]["id"].as_u64().unwrap();
    let shown = root.get(&user_page).await;
    assert!(
        shown.body.contains(&format!("/sessions/{session}/revoke")),
        "{}",
        shown.body
    );
    let page = root
        .post(
            &format!("/console/users/{id}/sessions/{session}/revoke"),
            &[],
        )
        .await;
    assert_eq!(location(&page), user_page);
    let page = bob.get("/console/").await;
    assert_eq!(page.status, 303, "the session is over: {}", page.body);

    // Deactivate: the user can no longer log in.
    let page = root
        .post(
            &format!("/console/users/{id}/status"),
            &[("status", "deactivated")],
        )
        .await;
    assert_eq!(location(&page), user_page);
    let mut bob = Console::new(gw.running.api);
    assert_eq!(
        bob.try_login("bob@example.com", "bob-password-1")
            .await
            .status,
        401
    );

    // The audit log names the console user, in the API and on the console's page.
    let mine = audit(&gw, &format!("actor={ROOT}")).await;
    let actions: Vec<&str> = mine.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in [
        "role.create",
        "user.create",
        "user.update",
        "token.create",
        "token.revoke",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let page = root
        .get(&format!("/console/audit?actor={ROOT}&action=token."))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("token.revoke") && page.body.contains("token.create"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("user.create"), "{}", page.body);
    assert!(!page.body.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_user_without_permissions_sees_no_admin_links_and_gets_403() {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("plain@example.com", "staff", "plain-password")
        .await;
    let mut plain = Console::login(gw.running.api, "plain@example.com", "plain-password").await;
    let home = plain.get("/console/").await;
    assert_eq!(home.status, 200);
    for link in [
        "/console/users",
        "/console/mail-users",
        "/console/queue",
        "/console/audit",
        "/console/settings",
        "/console/upstreams",
        "/console/dkim",
        "/console/webhooks",
    ] {
        assert!(
            !home.body.contains(&format!("href=\"{link}\"")),
            "{link} shown: {}",
            home.body
        );
    }
    for path in [
        "/console/users",
        "/console/users/new",
        "/console/users/1",
        "/console/roles",
        "/console/skill-groups",
        "/console/groups",
        "/console/mail-users",
        "/console/queue",
        "/console/audit",
    ] {
        let page = plain.get(path).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
    }
    for path in [
        "/console/users/new",
        "/console/roles",
        "/console/mail-users/1/lock",
        "/console/queue/selection",
        "/console/users/1/tokens/revoke-all",
    ] {
        let form = [
            ("login", "x@example.com"),
            ("email", "x@example.com"),
            ("kind", "staff"),
            ("password", "x-password"),
            ("name", "x"),
            ("ids", "00000000000000FF"),
        ];
        let page = plain.post(path, &form).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
    }
    assert_eq!(
        api(&gw, "GET", "/api/v1/roles", None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_and_unlock_show_the_lock_and_refusals_their_reason() {
    let gw = Gateway::start(|_| {}).await;
    let mut root = admin(&gw).await;
    let (alice, me) = common::backup::staff(&gw, "alice@example.com", &[]).await;
    save_config(&me, "complete", "alice@example.com").await;
    let (private, _) = common::backup::staff(&gw, "priv@example.com", &[]).await;

    let list = root.get("/console/mail-users").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains("complete") && list.body.contains("unlocked"),
        "{}",
        list.body
    );
    let page = root
        .post(&format!("/console/mail-users/{alice}/lock"), &[])
        .await;
    assert_eq!(location(&page), "/console/mail-users");
    let list = root.get("/console/mail-users").await;
    assert!(
        list.body.contains(&format!("locked</span> by {ROOT}")),
        "{}",
        list.body
    );
    assert!(list.body.contains("Configuration locked"));
    let config = json!({"account_type": "private", "mailbox": "alice@example.com"});
    let (status, _) = me
        .call("PUT", "/api/v1/me/mail-config", Some(config.clone()))
        .await;
    assert_eq!(status, 423);

    // Refusals come back with the API's reason.
    let page = root
        .post(&format!("/console/mail-users/{private}/lock"), &[])
        .await;
    assert_eq!(page.status, 409);
    assert!(
        page.body
            .contains("a private mail configuration cannot be locked"),
        "{}",
        page.body
    );
    let page = root
        .post(
            &format!("/console/mail-users/{alice}/backup"),
            &[("grant_to", ""), ("latest", "false")],
        )
        .await;
    assert_eq!(page.status, 409);
    assert!(page.body.contains("is not deactivated"), "{}", page.body);

    let page = root
        .post(&format!("/console/mail-users/{alice}/unlock"), &[])
        .await;
    assert_eq!(location(&page), "/console/mail-users");
    assert!(root
        .get("/console/mail-users")
        .await
        .body
        .contains("unlocked"));
    let (status, _) = me.call("PUT", "/api/v1/me/mail-config", Some(config)).await;
    assert_eq!(status, 200);
    let locks = audit(&gw, &format!("actor={ROOT}&action=mail_config.")).await;
    assert_eq!(locks.len(), 2, "{locks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_runs_then_completes_and_its_mbox_downloads_with_the_session_cookie() {
    // The upstream refuses the first message for now: the leaver's mail waits in the queue,
    // and the backup waits for it (running) until the console's retry sends it.
    let (_upstream, gw, leaver) = people::with_leaver().await;
    let mut root = admin(&gw).await;
    let deferred = root.get("/console/queue?deferred=true").await;
    assert!(deferred.body.contains(LEAVER), "{}", deferred.body);

    let page = root
        .post(
            &format!("/console/mail-users/{leaver}/backup"),
            &[("grant_to", ""), ("latest", "false")],
        )
        .await;
    let job_page = location(&page);
    assert!(
        job_page.starts_with("/console/mail-users/backups/"),
        "{job_page}"
    );
    let running = until(&mut root, &job_page, "id=\"backup-status\">running<").await;
    assert_eq!(
        running.header("refresh").as_deref(),
        Some("3"),
        "{}",
        running.head
    );
    // A reader can make it hold still.
    let still = root.get(&format!("{job_page}?refresh=off")).await;
    assert_eq!(still.header("refresh"), None, "{}", still.head);
    let list = root.get("/console/mail-users").await;
    assert!(list.body.contains("badge running"), "{}", list.body);

    // Retry the waiting message from the queue page: it leaves, and the backup completes.
    let at = deferred.body.find("name=\"ids\" value=\"").unwrap() + 18;
    let id = deferred.body[at..at + 16].to_string();
    let page = root
        .post(
            "/console/queue/selection",
            &[("ids", id.as_str()), ("action", "retry")],
        )
        .await;
    assert_eq!(location(&page), "/console/queue");
    let done = until(&mut root, &job_page, "id=\"backup-status\">completed<").await;
    assert_eq!(done.header("refresh"), None, "{}", done.head);
    assert!(done.body.contains(HANDOVER), "{}", done.body);

    let mbox = root.get(&format!("{job_page}/mbox")).await;
    assert_eq!(mbox.status, 200, "{}", mbox.body);
    assert_eq!(
        mbox.header("content-type").as_deref(),
        Some("application/mbox")
    );
    assert!(mbox.body.starts_with("From "), "{}", mbox.body);
    assert!(mbox.body.contains(&format!("Subject: {HANDOVER}")));
    let mut stranger = Console::new(gw.running.api);
    let refused = stranger.get(&format!("{job_page}/mbox")).await;
    assert_ne!(refused.status, 200);
    assert!(!refused.body.contains(HANDOVER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_of_queued_messages_is_retried_and_deleted() {
    let (upstream, gw) = common::gateway_with_deferring_upstream().await;
    let mut root = admin(&gw).await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;
    for rcpt in ["bob@example.net", "carol@example.org", "dave@example.org"] {
        let mut c = common::Client::connect(gw.addr("plain")).await;
        c.login("alice@example.com", "alice-password").await;
        c.expect("MAIL FROM:<alice@example.com>", 250).await;
        c.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
        c.expect("DATA", 354).await;
        c.send(b"From: <alice@example.com>\r\nSubject: hi\r\n\r\nbody\r\n")
            .await;
        c.expect(".", 250).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while upstream.record().data_attempts < 3 {
        assert!(Instant::now() < deadline, "first attempts never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = root.get("/console/queue?deferred=true").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-select-all=\"ids\""));
    let ids: Vec<String> = page
        .body
        .match_indices("name=\"ids\" value=\"")
        .map(|(at, m)| page.body[at + m.len()..at + m.len() + 16].to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{}", page.body);
    let only = root.get("/console/queue?recipient=carol").await;
    assert_eq!(only.body.matches("name=\"ids\"").count(), 1);
    // The message's page: envelope, recipient and the upstream's last reply.
    let shown = root.get(&format!("/console/queue/{}", ids[0])).await;
    assert!(
        shown.body.contains("bob@example.net") && shown.body.contains("451"),
        "{}",
        shown.body
    );

    let before = upstream.record().data_attempts;
    let page = root
        .post(
            "/console/queue/selection",
            &[
                ("ids", ids[0].as_str()),
                ("ids", ids[1].as_str()),
                ("action", "retry"),
            ],
        )
        .await;
    assert_eq!(location(&page), "/console/queue");
    assert!(root
        .get("/console/queue")
        .await
        .body
        .contains("2 message(s) retried"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while upstream.record().data_attempts < before + 2 {
        assert!(Instant::now() < deadline, "the retries never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = root
        .post(
            "/console/queue/selection",
            &[
                ("ids", ids[1].as_str()),
                ("ids", ids[2].as_str()),
                ("action", "delete"),
            ],
        )
        .await;
    assert_eq!(location(&page), "/console/queue");
    let left = root.get("/console/queue").await;
    assert!(left.body.contains("2 message(s) deleted"), "{}", left.body);
    assert_eq!(
        left.body.matches("name=\"ids\"").count(),
        1,
        "{}",
        left.body
    );
    let deletes = audit(&gw, &format!("actor={ROOT}&action=queue.delete")).await;
    assert_eq!(deletes.len(), 2);
    let retries = audit(&gw, &format!("actor={ROOT}&action=queue.retry")).await;
    assert_eq!(retries.len(), 2);
}
