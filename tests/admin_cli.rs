//! `postern admin` (the real binary) against a running server: a whole scenario — users,
//! a role, an account with a grant, a message sent through it, the queue inspected and
//! cleared, the audit log read — plus its errors.

mod common;

use common::{Client, Gateway, TOKEN};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Output;

/// Runs `postern admin ARGS` against `api` with `token`.
async fn admin(api: SocketAddr, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postern"));
    cmd.arg("admin")
        .args(args)
        .env("POSTERN_API", format!("http://{api}"));
    cmd.env_remove("POSTERN_TOKEN");
    if let Some(token) = token {
        cmd.env("POSTERN_TOKEN", token);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Runs `postern admin ARGS` with `input` on its standard input; asserts success.
async fn with_stdin(api: SocketAddr, args: &[&str], input: &str) {
    use std::io::Write;
    use std::process::Stdio;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postern"));
    cmd.arg("admin")
        .args(args)
        .env("POSTERN_API", format!("http://{api}"));
    cmd.env("POSTERN_TOKEN", TOKEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = input.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command that must succeed; returns its stdout.
async fn ok(api: SocketAddr, args: &[&str]) -> String {
    let out = admin(api, Some(TOKEN), args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "postern admin {args:?}: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn json(api: SocketAddr, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(api, &all).await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_scripts_the_whole_set_up() {
    let (_upstream, gw) = common::gateway_with_deferring_upstream().await;
    let api = gw.running.api;

    let alice = json(
        api,
        &[
            "users",
            "create",
            "--login",
            "alice@example.com",
            "--email",
            "alice@example.com",
            "--password",
            "alice-password",
        ],
    )
    .await;
    let alice_id = alice["id"].to_string();
    ok(
        api,
        &["roles", "set", "helpdesk", "--permissions", "view_queue"],
    )
    .await;
    ok(
        api,
        &[
            "roles",
            "set",
            "helpdesk",
            "--permissions",
            "view_queue,manage_queue",
        ],
    )
    .await;
    ok(api, &["users", "set", &alice_id, "--roles", "helpdesk"]).await;
    let issued = json(api, &["users", "token", &alice_id, "--label", "laptop"]).await;
    let tokens = ok(api, &["users", "tokens", &alice_id]).await;
    assert!(
        tokens.contains("laptop") && tokens.contains(issued["id"].as_str().unwrap()),
        "{tokens}"
    );
    assert!(!tokens.contains(issued["token"].as_str().unwrap()));
    ok(
        api,
        &[
            "users",
            "revoke-token",
            &alice_id,
            issued["id"].as_str().unwrap(),
        ],
    )
    .await;
    assert!(!ok(api, &["users", "tokens", &alice_id])
        .await
        .contains("laptop"));
    let table = ok(api, &["users", "list"]).await;
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("LOGIN") && header.contains("ROLES"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("alice@example.com") && l.contains("helpdesk")),
        "{table}"
    );
    let roles = ok(api, &["roles", "list"]).await;
    assert!(roles.contains("view_queue,manage_queue"), "{roles}");

    let account = json(
        api,
        &[
            "accounts",
            "create",
            "--name",
            "support",
            "--address",
            "support@example.com",
            "--display-name",
            "Support",
        ],
    )
    .await;
    let account_id = account["id"].to_string();
    let granted = json(
        api,
        &[
            "accounts",
            "grant",
            &account_id,
            "--user",
            &alice_id,
            "--send",
            "send_as",
        ],
    )
    .await;
    assert_eq!(granted["grants"][0]["send"], "send_as", "{granted}");
    let tested = ok(
        api,
        &["accounts", "test", &account_id, "--to", "check@example.net"],
    )
    .await;
    assert!(
        tested.contains("outcome: temporary") && tested.contains("451"),
        "{tested}"
    );
    let accounts = ok(api, &["accounts", "list"]).await;
    assert!(
        accounts
            .lines()
            .any(|l| l.contains("support@example.com") && l.contains("all_staff")),
        "{accounts}"
    );
    let explained = ok(
        api,
        &[
            "explain",
            "--user",
            "alice@example.com",
            "--from",
            "support@example.com",
        ],
    )
    .await;
    assert!(explained.contains("send_as"), "{explained}");

    // A password from standard input, never on the command line.
    with_stdin(
        api,
        &["users", "set", &alice_id, "--password", "-"],
        "alice-new-password\n",
    )
    .await;
    // Alice sends as the shared mailbox; the upstream defers, so it waits in the queue.
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("alice@example.com", "alice-new-password").await;
    c.expect("MAIL FROM:<support@example.com>", 250).await;
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: Support <support@example.com>\r\nSubject: hi\r\n\r\nhello\r\n")
        .await;
    c.expect(".", 250).await;
    let mut queued = Value::Null;
    for _ in 0..100 {
        queued = json(api, &["queue", "list", "--deferred"]).await;
        if queued.as_array().is_some_and(|q| !q.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let id = queued[0]["id"]
        .as_str()
        .expect("a deferred message")
        .to_string();
    assert_eq!(queued[0]["mail_from"], "support@example.com");
    let listed = ok(api, &["queue", "list"]).await;
    assert!(
        listed.contains(&id) && listed.contains("customer@example.net"),
        "{listed}"
    );
    let shown = ok(api, &["queue", "show", &id]).await;
    assert!(shown.contains("attempts: 1"), "{shown}");
    ok(api, &["queue", "delete", &id]).await;
    assert_eq!(json(api, &["queue", "list"]).await, Value::Array(vec![]));

    let audit = ok(api, &["audit", "--action", "account."]).await;
    assert!(
        audit.contains("account.create") && audit.contains("account.grants"),
        "{audit}"
    );
    ok(
        api,
        &["blocklist", "add", "spam.example", "--reason", "complaints"],
    )
    .await;
    let blocks = ok(api, &["blocklist", "list"]).await;
    assert!(
        blocks
            .lines()
            .any(|l| l.contains("spam.example") && l.contains("domain")),
        "{blocks}"
    );
    assert_eq!(
        ok(api, &["blocklist", "remove", "spam.example"]).await,
        "ok\n"
    );
    // The other resources.
    let created = ok(
        api,
        &[
            "upstreams",
            "create",
            "relay2",
            "--host",
            "127.0.0.1",
            "--port",
            "2999",
            "--tls",
            "none",
            "--chunking",
            "false",
        ],
    )
    .await;
    assert!(created.contains("chunking: false"), "{created}");
    let upstreams = ok(api, &["upstreams", "list"]).await;
    assert!(
        upstreams
            .lines()
            .any(|l| l.contains("relay2") && l.contains("2999") && l.contains("api")),
        "{upstreams}"
    );
    ok(api, &["upstreams", "delete", "relay2"]).await;
    ok(
        api,
        &[
            "settings",
            "set",
            "--org-domains",
            "example.com,example.org",
            "--max-users",
            "50",
        ],
    )
    .await;
    let settings = ok(api, &["settings", "show"]).await;
    assert!(
        settings.contains("org_domains: example.com,example.org")
            && settings.contains("max_users: 50"),
        "{settings}"
    );
    ok(api, &["settings", "set", "--max-users", "none"]).await;
    assert!(ok(api, &["settings", "show"])
        .await
        .contains("max_users: -"));
    ok(
        api,
        &[
            "skill-groups",
            "create",
            "billing",
            "--description",
            "Invoices",
        ],
    )
    .await;
    assert!(ok(api, &["skill-groups", "list"])
        .await
        .contains("Invoices"));
    ok(api, &["skill-groups", "delete", "billing"]).await;
    ok(api, &["groups", "create", "vip"]).await;
    assert!(ok(api, &["groups", "list"]).await.contains("vip"));
    // DKIM: a key, its zone-file line, activation, the list.
    let created = json(
        api,
        &[
            "dkim",
            "create",
            "example.com",
            "--algorithm",
            "ed25519",
            "--selector",
            "s1",
        ],
    )
    .await;
    assert_eq!(created["status"], "pending", "{created}");
    let zone = ok(api, &["dkim", "record", "example.com", "s1"]).await;
    let value = created["dns"]["value"].as_str().unwrap();
    assert_eq!(
        zone,
        format!("s1._domainkey.example.com. IN TXT \"{value}\"\n")
    );
    assert!(ok(api, &["dkim", "activate", "example.com", "s1"])
        .await
        .contains("status: active"));
    let listed = ok(api, &["dkim", "list"]).await;
    assert!(
        listed.contains("example.com  s1        ed25519    active"),
        "{listed}"
    );
    ok(api, &["dkim", "delete", "example.com", "s1"]).await;
    assert_eq!(json(api, &["dkim", "list"]).await, serde_json::json!([]));
    assert!(ok(api, &["me"]).await.contains("bootstrap: true"));
    let raw = json(api, &["request", "GET", "/api/v1/settings"]).await;
    assert!(raw.get("allow_personal_accounts").is_some(), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_go_to_stderr_with_a_failing_status() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let out = admin(api, Some(TOKEN), &["users", "show", "999"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("user 999"),
        "{stderr}"
    );
    let out = admin(api, None, &["users", "list"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("POSTERN_TOKEN"));
    let out = admin(api, Some("wrong-token"), &["users", "list"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let bad = r#"{"name": "x", "permissions": ["fly"]}"#;
    let out = admin(api, Some(TOKEN), &["request", "POST", "/api/v1/roles", bad]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("422"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helpdesk_is_scripted_too() {
    let gw = Gateway::start(|_| {}).await;
    let api = gw.running.api;
    let hook = json(
        api,
        &[
            "webhooks",
            "create",
            "crm",
            "http://127.0.0.1:9/in",
            "--max-attempts",
            "1",
        ],
    )
    .await;
    assert!(
        hook["secret"].as_str().unwrap().starts_with("whs_"),
        "{hook}"
    );
    let hook_id = hook["id"].to_string();
    assert!(ok(api, &["webhooks", "list"])
        .await
        .contains("http://127.0.0.1:9/in"));
    let mailbox = format!(
        r#"{{"name":"Help","address":"help@example.com","inbound":{{"auto_create_requesters":true,"webhooks":[{hook_id}]}}}}"#
    );
    ok(api, &["request", "POST", "/api/v1/accounts", &mailbox]).await;

    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.example.net", 250).await;
    c.expect("MAIL FROM:<pest@spam.example>", 250).await;
    c.expect("RCPT TO:<help@example.com>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: pest@spam.example\r\nSubject: cheap pills\r\n\r\nbuy\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;

    let mut listed = String::new();
    for _ in 0..100 {
        listed = ok(api, &["tickets", "list", "--status", "open"]).await;
        if listed.contains("cheap pills") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        listed.contains("cheap pills") && listed.contains("email"),
        "{listed}"
    );
    let ticket = json(api, &["tickets", "list"]).await[0]["id"].to_string();
    assert!(ok(api, &["tickets", "close", &ticket])
        .await
        .contains("status: closed"));
    assert!(ok(api, &["tickets", "show", &ticket])
        .await
        .contains("cheap pills"));
    let deliveries = ok(api, &["webhooks", "deliveries", &hook_id]).await;
    assert!(deliveries.contains("ticket.created"), "{deliveries}");

    let requesters = json(api, &["requesters", "list"]).await;
    let pest = requesters[0]["id"].to_string();
    let blocked = ok(api, &["requesters", "block", &pest, "--delete-tickets"]).await;
    assert!(blocked.contains("blocked"), "{blocked}");
    assert_eq!(json(api, &["tickets", "list"]).await, Value::Array(vec![]));
    assert!(ok(api, &["requesters", "unblock", &pest])
        .await
        .contains("status: active"));

    // A staff user's mail configuration, saved by the user and locked by an admin.
    let body = r#"{"login":"sam@corp.example","email":"sam@corp.example","kind":"staff","password":"sam-password-1"}"#;
    let sam = json(api, &["request", "POST", "/api/v1/users", body]).await["id"].to_string();
    let token = json(
        api,
        &[
            "request",
            "POST",
            &format!("/api/v1/users/{sam}/tokens"),
            "{}",
        ],
    )
    .await;
    let token = token["token"].as_str().unwrap();
    let set = [
        "mail-config",
        "set",
        "--type",
        "complete",
        "--mailbox",
        "sam@corp.example",
    ];
    assert!(admin(api, Some(token), &set).await.status.success());
    assert!(ok(api, &["mail-config", "show", &sam])
        .await
        .contains("account_type: complete"));
    assert!(ok(api, &["mail-config", "lock", &sam])
        .await
        .contains("locked: true"));
    let refused = admin(api, Some(token), &set).await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("423") && stderr.contains("locked"),
        "{stderr}"
    );
    assert!(ok(api, &["mail-config", "unlock", &sam])
        .await
        .contains("locked: false"));

    // Sam sends through a personal account, leaves, and its mail is backed up.
    let account = format!(r#"{{"name":"sam","address":"sam@corp.example","owner":{sam}}}"#);
    ok(api, &["request", "POST", "/api/v1/accounts", &account]).await;
    ok(api, &["settings", "set", "--org-domains", "corp.example"]).await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO sam.corp.example", 250).await;
    c.login("sam@corp.example", "sam-password-1").await;
    c.expect("MAIL FROM:<sam@corp.example>", 250).await;
    c.expect("RCPT TO:<pat@partner.example>", 250).await;
    c.expect("DATA", 354).await;
    c.send(
        b"From: sam@corp.example\r\nSubject: handover notes\r\n\r\nFrom now on, ask Kim.\r\n.\r\n",
    )
    .await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
    gw.wait_outbox(1).await;
    ok(api, &["users", "deactivate", &sam]).await;
    let kim = r#"{"login":"kim@corp.example","email":"kim@corp.example","kind":"staff","password":"kim-password-1"}"#;
    ok(api, &["request", "POST", "/api/v1/users", kim]).await;
    let job = json(
        api,
        &["backups", "create", &sam, "--grant-to", "kim@corp.example"],
    )
    .await;
    assert_eq!(job["status"], "pending", "{job}");
    let id = job["id"].to_string();
    let mut shown = String::new();
    for _ in 0..200 {
        shown = ok(api, &["backups", "show", &id]).await;
        if shown.contains("status: completed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(shown.contains("status: completed"), "{shown}");
    assert!(ok(api, &["backups", "list"])
        .await
        .contains("sam@corp.example"));
    assert!(ok(api, &["backups", "messages", &id])
        .await
        .contains("handover notes"));
    let mbox = admin(api, Some(TOKEN), &["backups", "download", &id]).await;
    assert!(mbox.status.success());
    let mbox = String::from_utf8(mbox.stdout).unwrap();
    assert!(mbox.starts_with("From sam@corp.example "), "{mbox}");
    assert!(
        mbox.contains("Subject: handover notes\n") && mbox.contains("\n>From now on, ask Kim.\n"),
        "{mbox}"
    );
}
