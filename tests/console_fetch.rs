//! The console's fetch settings of a helpdesk mailbox over HTTP (issue 28, no browser):
//! the fields on the inbound settings page, the API's refusal shown beside its field, the
//! password write-only (never on the page, blank keeps it), the fetch status, and the
//! Retry and Move buttons of a set-aside message recorded for the fetcher.

mod common;

use common::free_ports;
use common::helpdesk::{self, api, SUPPORT};
use common::helpdesk_console::{assert_shows, staff};
use common::Gateway;
use postern::store::{FetchState, SetAside, SetAsideRequest};
use serde_json::json;
use std::time::{Duration, Instant};

const SECRET: &str = "console-fetch-secret";

async fn support_id(gw: &Gateway) -> u64 {
    let (_, accounts) = api(gw, "GET", "/api/v1/accounts", None).await;
    accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == SUPPORT)
        .unwrap()["id"]
        .as_u64()
        .unwrap()
}

/// Sets message `key` aside in account `id`'s stored fetch state, as a fetcher would.
fn set_aside(gw: &Gateway, id: u64, key: &str) {
    let store = gw.running.store();
    let account = store.accounts().get(id).unwrap().unwrap();
    let fetch = account.inbound.unwrap().fetch.unwrap();
    let state = FetchState {
        source: fetch.source(),
        set_aside: vec![SetAside {
            key: key.into(),
            reason: "unreadable: no header block".into(),
            attempts: 1,
            since: 1_796_517_000,
            next_try: 1_796_517_060,
            move_to: None,
        }],
        ..FetchState::default()
    };
    store.fetch_states().put(id, &state).unwrap();
}

/// Changes field `name` of `form`.
fn set<'a>(form: &mut [(&'a str, &'a str)], name: &str, value: &'a str) {
    form.iter_mut().find(|(n, _)| *n == name).expect(name).1 = value;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_settings_are_saved_shown_and_their_set_aside_messages_handled() {
    let gw = helpdesk::helpdesk().await;
    let (status, hook) = api(
        &gw,
        "POST",
        "/api/v1/webhooks",
        Some(json!({"name": "crm", "url": "https://crm.example/hook"})),
    )
    .await;
    assert_eq!(status, 201, "{hook}");
    let hook = hook["id"].as_u64().unwrap().to_string();
    let id = support_id(&gw).await;
    let path = format!("/console/accounts/{id}/inbound");
    let mut admin = staff(&gw, "admin@corp.example", &["admin"]).await;
    let page = admin.get(&path).await;
    assert_shows(
        &page,
        200,
        &[
            "name=\"fetch_kind\"",
            "Not fetched",
            "name=\"fetch_password\"",
        ],
    );

    let [port] = free_ports::<1>();
    let port = port.to_string();
    let mut form = vec![
        ("enabled", "on"),
        ("purpose", "ticket"),
        ("auto_create_requesters", "on"),
        ("default_group", "customers"),
        ("webhooks", hook.as_str()),
        ("fetch_kind", "imap"),
        ("fetch_host", ""),
        ("fetch_port", port.as_str()),
        ("fetch_tls", "none"),
        ("fetch_auth", "password"),
        ("fetch_username", "desk@help.example"),
        ("fetch_password", SECRET),
        ("fetch_folder", "INBOX"),
        ("fetch_after", "seen"),
        ("fetch_move_to", ""),
        ("fetch_on_blocked", ""),
        ("fetch_blocked_folder", "Blocked"),
        ("fetch_authserv_id", ""),
        ("fetch_poll_secs", "60"),
        ("fetch_ca_file", ""),
    ];
    // The API's refusal, beside its field; what was typed stays (not the password).
    let refused = admin.post(&path, &form).await;
    assert_shows(
        &refused,
        422,
        &[
            "id=\"f-fetch_host-error\"",
            "a host name or IP address",
            "value=\"desk@help.example\"",
        ],
    );
    assert!(!refused.body.contains(SECRET), "{}", refused.body);
    set(&mut form, "fetch_poll_secs", "soon");
    set(&mut form, "fetch_host", "127.0.0.1");
    let refused = admin.post(&path, &form).await;
    assert_shows(&refused, 422, &["id=\"f-fetch_poll_secs-error\""]);
    set(&mut form, "fetch_poll_secs", "60");

    let saved = admin.post(&path, &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, account) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    let fetch = &account["inbound"]["fetch"];
    assert_eq!(
        (&fetch["kind"], &fetch["host"], &fetch["after"]),
        (&json!("imap"), &json!("127.0.0.1"), &json!("seen")),
        "{account}"
    );
    assert_eq!(
        account["inbound"]["webhooks"],
        json!([hook.parse::<u64>().unwrap()])
    );
    assert_eq!(account["inbound"]["default_group"], "customers");

    // The page never shows the password; blank keeps it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = admin.get(&path).await;
        assert!(!page.body.contains(SECRET), "{}", page.body);
        if page.body.contains("badge failing") {
            assert_shows(
                &page,
                200,
                &[
                    "Fetching",
                    "Last error",
                    "No message is set aside",
                    "<option value=\"imap\" selected>",
                    "<option value=\"none\" selected>",
                    "value=\"127.0.0.1\"",
                ],
            );
            break;
        }
        assert!(Instant::now() < deadline, "never failing: {}", page.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    set(&mut form, "fetch_password", "");
    set(&mut form, "fetch_folder", "Support");
    let saved = admin.post(&path, &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let stored = gw.running.store().accounts().get(id).unwrap().unwrap();
    let stored = stored.inbound.unwrap().fetch.unwrap();
    assert_eq!(
        (stored.folder.as_str(), stored.password.as_deref()),
        ("Support", Some(SECRET))
    );

    // A set-aside message: listed with Retry and Move, both recorded for the fetcher.
    set_aside(&gw, id, "41");
    let page = admin.get(&path).await;
    assert_shows(
        &page,
        200,
        &[
            "unreadable: no header block",
            "Retry",
            "Move",
            "name=\"key\" value=\"41\"",
        ],
    );
    let retry = format!("/console/accounts/{id}/fetch/retry");
    let done = admin.post(&retry, &[("key", "41")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let requests = gw.running.store().fetch_states().requests(id).unwrap();
    assert_eq!(requests, vec![("41".to_string(), SetAsideRequest::Retry)]);
    let page = admin.get(&path).await;
    assert_shows(&page, 200, &["retry asked"]);
    let moved = format!("/console/accounts/{id}/fetch/move");
    let done = admin
        .post(&moved, &[("key", "41"), ("folder", "Junk")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let requests = gw.running.store().fetch_states().requests(id).unwrap();
    let expected = SetAsideRequest::Move {
        folder: "Junk".into(),
    };
    assert_eq!(requests, vec![("41".to_string(), expected)]);
    let unknown = admin.post(&retry, &[("key", "99")]).await;
    assert_shows(&unknown, 404, &["set-aside message"]);
    let (_, audit) = api(&gw, "GET", "/api/v1/audit?action=account.fetch.retry", None).await;
    assert_eq!(audit[0]["actor"], "admin@corp.example", "{audit}");

    // No kind: fetching is off.
    set(&mut form, "fetch_kind", "");
    let saved = admin.post(&path, &form).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (_, account) = api(&gw, "GET", &format!("/api/v1/accounts/{id}"), None).await;
    assert!(account["inbound"].get("fetch").is_none(), "{account}");
    assert_eq!(account["inbound"]["purpose"], "ticket");
    gw.running.shutdown().await;
}
