//! Reading the archive through the API (SPEC §8, §9): kept messages listed, shown and
//! downloaded by an admin; holders of `access` on a shared mailbox see its messages and
//! nothing else; a user without a right gets an empty list and 404s; the users whose mail
//! it is see their own — including mail that came in on the inbound listener for the
//! shared mailbox they configured as theirs. Filters, paging, and `postern admin archive`.

mod common;

use common::backup::{archived, correspondence, mailbox_user, save_config, staff};
use common::helpdesk::{api, helpdesk, send, settle, SUPPORT};
use common::{http_full, As, Gateway, TOKEN};
use serde_json::{json, Value};

/// A customer's message to the shared mailbox.
async fn to_support(gw: &Gateway, from: &str, subject: &str) {
    let text = format!(
        "From: <{from}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{}@customer.example>\r\n\r\nHello support.\r\n",
        subject.replace(' ', ".")
    );
    let reply = send(gw, from, SUPPORT, &text).await;
    assert_eq!(reply.code, 250, "{reply:?}");
}

/// `GET path` as the admin: the list.
async fn listed(gw: &Gateway, query: &str) -> Vec<Value> {
    let (status, body) = api(gw, "GET", &format!("/api/v1/archive{query}"), None).await;
    assert_eq!(status, 200, "{query}: {body}");
    body.as_array().unwrap().clone()
}

fn subjects(items: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = items
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

async fn subjects_as(who: &As<'_>, query: &str) -> Vec<String> {
    let (status, body) = who
        .call("GET", &format!("/api/v1/archive{query}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    subjects(body.as_array().unwrap())
}

fn id_of<'a>(items: &'a [Value], subject: &str) -> &'a str {
    items
        .iter()
        .find(|m| m["subject"] == subject)
        .and_then(|m| m["id"].as_str())
        .unwrap_or_else(|| panic!("no {subject:?} in {items:?}"))
}

/// The shared mailbox's mail (for sam, whose configured mailbox it is) and lee's own
/// correspondence, kept; returns (support account id, sam, lee, kim with access, ned).
async fn scene(gw: &Gateway) -> (u64, As<'_>, As<'_>, As<'_>, As<'_>) {
    let (_, accounts) = api(gw, "GET", "/api/v1/accounts", None).await;
    let support = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == SUPPORT)
        .and_then(|a| a["id"].as_u64())
        .unwrap();
    let (sam_id, sam) = staff(gw, "sam@help.example", &[]).await;
    save_config(&sam, "complete", SUPPORT).await;
    let (lee_id, lee) = mailbox_user(gw, "lee@help.example", "complete").await;
    let (kim_id, kim) = staff(gw, "kim@help.example", &[]).await;
    let (_, ned) = staff(gw, "ned@help.example", &[]).await;
    let grants = json!([{"grantee": {"user": kim_id}, "access": true}]);
    let path = format!("/api/v1/accounts/{support}/grants");
    let (status, body) = api(gw, "PUT", &path, Some(grants)).await;
    assert_eq!(status, 200, "{body}");

    to_support(gw, "ann@customer.example", "support one").await;
    to_support(gw, "bob@customer.example", "support two").await;
    settle(gw).await;
    correspondence(gw, "lee@help.example", "lee").await;
    archived(gw, sam_id, 2).await;
    archived(gw, lee_id, 3).await;
    (support, sam, lee, kim, ned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_reads_which_kept_message() {
    let gw = helpdesk().await;
    let (support, sam, lee, kim, ned) = scene(&gw).await;

    // The admin: everything, ascending by id, with metadata and the raw message.
    let all = listed(&gw, "").await;
    let everything = [
        "lee answer",
        "lee lunch",
        "lee question",
        "support one",
        "support two",
    ];
    assert_eq!(subjects(&all), everything, "{all:?}");
    let ids: Vec<&str> = all.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let one = id_of(&all, "support one");
    let (status, shown) = api(&gw, "GET", &format!("/api/v1/archive/{one}"), None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["direction"], "inbound");
    assert_eq!(shown["account"], support);
    assert_eq!(shown["mail_from"], "ann@customer.example");
    assert_eq!(shown["rcpts"], json!([SUPPORT]));
    assert_eq!(shown["tickets"].as_array().unwrap().len(), 1, "{shown}");
    let (status, headers, raw) = http_full(
        gw.running.api,
        "GET",
        &format!("/api/v1/archive/{one}/raw"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: message/rfc822"),
        "{headers}"
    );
    assert!(raw.contains("Subject: support one\r\n"), "{raw}");
    assert!(raw.contains("\r\n\r\nHello support.\r\n"), "{raw}");
    assert!(
        raw.starts_with("Received: "),
        "as kept, trace fields and all: {raw}"
    );

    // The `access` holder: the shared mailbox's messages, and nothing of lee's.
    assert_eq!(subjects_as(&kim, "").await, ["support one", "support two"]);
    let lunch = id_of(&all, "lee lunch");
    for path in [
        format!("/api/v1/archive/{lunch}"),
        format!("/api/v1/archive/{lunch}/raw"),
    ] {
        assert_eq!(kim.call("GET", &path, None).await.0, 404, "{path}");
    }
    let (status, _) = kim
        .call("GET", &format!("/api/v1/archive/{one}/raw"), None)
        .await;
    assert_eq!(status, 200);

    // No right at all: an empty list and 404s, as for a message that does not exist.
    assert!(subjects_as(&ned, "").await.is_empty());
    for path in [
        format!("/api/v1/archive/{one}"),
        format!("/api/v1/archive/{one}/raw"),
        "/api/v1/archive/00000000ffffffff".to_string(),
    ] {
        let (status, body) = ned.call("GET", &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }

    // The owners: sam's configured mailbox is the shared one, so the mail that came in
    // for it on the inbound listener is sam's; lee's own correspondence is lee's.
    assert_eq!(subjects_as(&sam, "").await, ["support one", "support two"]);
    assert_eq!(
        subjects_as(&lee, "").await,
        ["lee answer", "lee lunch", "lee question"]
    );
    let (status, _) = lee
        .call("GET", &format!("/api/v1/archive/{lunch}/raw"), None)
        .await;
    assert_eq!(status, 200);
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_pages() {
    let gw = helpdesk().await;
    let (support, _sam, _lee, kim, _ned) = scene(&gw).await;
    let all = listed(&gw, "").await;

    assert_eq!(
        subjects(&listed(&gw, "?direction=outbound").await),
        ["lee answer", "lee lunch"]
    );
    assert_eq!(
        subjects(&listed(&gw, &format!("?account={support}")).await),
        ["support one", "support two"]
    );
    // Sender or recipient, in any spelling of the address.
    assert_eq!(
        subjects(&listed(&gw, "?address=%22Ann%22@Customer.EXAMPLE").await),
        ["lee answer", "lee question", "support one"]
    );
    assert_eq!(
        subjects(&listed(&gw, "?address=partner@elsewhere.example").await),
        ["lee lunch"]
    );
    // The ticket lee's question opened, and lee's answer to it.
    let question = all.iter().find(|m| m["subject"] == "lee question").unwrap();
    let ticket = question["tickets"][0].as_u64().expect("a linked ticket");
    assert_eq!(
        subjects(&listed(&gw, &format!("?ticket={ticket}")).await),
        ["lee answer", "lee question"]
    );
    // Time: since is inclusive, until exclusive (Unix seconds).
    let first = all.iter().map(|m| m["received_at"].as_u64().unwrap()).min();
    let last = all.iter().map(|m| m["received_at"].as_u64().unwrap()).max();
    let (first, last) = (first.unwrap(), last.unwrap());
    let window = format!("?since={first}&until={}", last + 1);
    assert_eq!(listed(&gw, &window).await.len(), 5);
    assert!(listed(&gw, &format!("?until={first}")).await.is_empty());
    assert!(listed(&gw, &format!("?since={}", last + 1))
        .await
        .is_empty());
    // Filters never widen what a caller may read.
    let path = "/api/v1/archive?direction=outbound";
    assert_eq!(kim.call("GET", path, None).await.1, json!([]));

    // Pages of two: `after` is the last id seen.
    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let page = listed(&gw, &format!("?limit=2{after}")).await;
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = format!("&after={}", last["id"].as_str().unwrap());
        paged.extend(page);
    }
    assert_eq!(paged, all);
    for bad in [
        "?limit=0",
        "?limit=1001",
        "?after=nothex",
        "?direction=sideways",
    ] {
        let (status, body) = api(&gw, "GET", &format!("/api/v1/archive{bad}"), None).await;
        assert!(status == 422 || status == 400, "{bad}: {status} {body}");
    }
    gw.running.shutdown().await;
}

/// Runs `postern admin archive ARGS` as the admin; its stdout.
async fn admin(gw: &Gateway, args: &[&str]) -> Vec<u8> {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_postern"));
    cmd.args(["admin", "archive"])
        .args(args)
        .env("POSTERN_API", format!("http://{}", gw.running.api))
        .env("POSTERN_TOKEN", TOKEN);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_command_lists_shows_and_downloads() {
    let gw = helpdesk().await;
    let (support, ..) = scene(&gw).await;
    let all = listed(&gw, "").await;
    let one = id_of(&all, "support one");

    let table = String::from_utf8(admin(&gw, &["list"]).await).unwrap();
    for subject in ["support one", "lee lunch"] {
        assert!(table.contains(subject), "{table}");
    }
    let account = support.to_string();
    let filtered = admin(
        &gw,
        &[
            "list",
            "--account",
            &account,
            "--direction",
            "inbound",
            "--json",
        ],
    )
    .await;
    let filtered: Value = serde_json::from_slice(&filtered).unwrap();
    assert_eq!(
        subjects(filtered.as_array().unwrap()),
        ["support one", "support two"]
    );
    let shown = String::from_utf8(admin(&gw, &["show", one]).await).unwrap();
    assert!(shown.contains("support one"), "{shown}");
    let raw = admin(&gw, &["raw", one]).await;
    let (_, _, via_api) = http_full(
        gw.running.api,
        "GET",
        &format!("/api/v1/archive/{one}/raw"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(String::from_utf8(raw).unwrap(), via_api);
    gw.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_archive() {
    let gw = Gateway::start(|_| {}).await;
    let (status, text) =
        common::http(gw.running.api, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    let list = &doc["paths"]["/api/v1/archive"]["get"];
    let params: Vec<&str> = list["parameters"]
        .as_array()
        .expect("query parameters")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        [
            "account",
            "direction",
            "address",
            "ticket",
            "since",
            "until",
            "after",
            "limit"
        ]
    );
    let shown = &doc["paths"]["/api/v1/archive/{id}"]["get"]["responses"];
    assert!(
        shown["200"]["content"]["application/json"].is_object(),
        "{shown}"
    );
    assert!(shown["404"]["content"]["application/problem+json"].is_object());
    let raw = &doc["paths"]["/api/v1/archive/{id}/raw"]["get"]["responses"]["200"];
    assert!(raw["content"]["message/rfc822"].is_object(), "{raw}");
    gw.running.shutdown().await;
}
