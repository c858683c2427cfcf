//! Helpers of the console's people tests (users, mail users, backups, the queue): an
//! administrator, and a gateway holding a leaver whose last message waits in the queue.

use super::backup::{mailbox_user, org_domains, submit};
use super::helpdesk::api;
use super::upstream::{FakeUpstream, Script};
use super::Gateway;
use serde_json::json;

pub const ROOT: &str = "root@example.com";
pub const ROOT_PASSWORD: &str = "root-password-1";
pub const LEAVER: &str = "leaver@example.com";
/// The subject of the leaver's waiting message.
pub const HANDOVER: &str = "Handover notes";

/// Creates the administrator `ROOT` (a role `admins` holding `admin`); returns its id.
pub async fn admin(gw: &Gateway) -> u64 {
    let role = json!({"name": "admins", "permissions": ["admin"]});
    let (status, body) = api(gw, "POST", "/api/v1/roles", Some(role)).await;
    assert_eq!(status, 201, "{body}");
    let id = gw.create_user(ROOT, "staff", ROOT_PASSWORD).await["id"]
        .as_u64()
        .unwrap();
    let patch = json!({"roles": ["admins"]});
    let (status, body) = api(gw, "PATCH", &format!("/api/v1/users/{id}"), Some(patch)).await;
    assert_eq!(status, 200, "{body}");
    id
}

/// A gateway whose upstream refuses the first message (`451`; the next try comes only
/// after an hour or a retry), holding `LEAVER` (account type `complete`, mailbox in
/// `org_domains`) whose message `HANDOVER` was submitted and is now deferred; the leaver is
/// deactivated. Returns the upstream, the gateway and the leaver's id.
pub async fn with_leaver() -> (FakeUpstream, Gateway, u64) {
    let upstream = FakeUpstream::start(Script {
        pipelining: true,
        tempfail_first: 1,
        ..Script::default()
    })
    .await;
    let port = upstream.addr.port();
    let gw = Gateway::start(move |c| {
        c.upstreams
            .insert("sink".into(), super::sink_upstream(port));
        c.default_upstream = "sink".into();
        c.queue.retry_intervals_secs = vec![3600];
    })
    .await;
    org_domains(&gw, &["example.com"]).await;
    let (leaver, _) = mailbox_user(&gw, LEAVER, "complete").await;
    submit(&gw, LEAVER, "partner@elsewhere.example", HANDOVER, "").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while upstream.record().data_attempts < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first attempt never came"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    super::backup::set_status(&gw, leaver, "deactivated").await;
    (upstream, gw, leaver)
}
