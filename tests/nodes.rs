//! Several Postern nodes on one PostgreSQL database (issue 26): policy changes made
//! through one node's API take effect at another node's SMTP listener within a second
//! (with notifications and with polling only); a helpdesk thread spans nodes; the same
//! message at two nodes makes one ticket and one webhook call; a webhook call in flight
//! on a node killed with SIGKILL is made by another node once its lease has run out; a
//! node killed with SIGKILL under load loses no message it answered `250` for; a drain
//! moves a node's whole queue to the others.
//!
//! Each test has a database of its own in the throwaway cluster of `common::postgres`,
//! and each node a data directory of its own.

mod common;

use common::load::{subject_counts, submit_until_killed};
use common::nodes::{call, node, spread, until, BinaryNode, Receiver};
use common::upstream::{FakeUpstream, Script};
use common::{free_ports, sink_upstream, spawn_binary, start_with_alice, Client, Gateway};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

const SUPPORT: &str = "support@help.example";

// ---------------------------------------------------------------------------------------
// 1. Policy changes reach the other nodes within a second.

/// Whether `login` can AUTH at `smtp` (a fresh session).
async fn can_login(smtp: SocketAddr, login: &str, password: &str) -> bool {
    let mut c = Client::connect(smtp).await;
    c.expect("EHLO client.test", 250).await;
    let token = common::base64(&format!("\0{login}\0{password}"));
    let code = c.cmd(&format!("AUTH PLAIN {token}")).await.code;
    assert!(code == 235 || code == 535, "AUTH -> {code}");
    code == 235
}

/// A session kept open to probe MAIL FROM repeatedly (RSET between probes); reconnects
/// (and logs in again, when `login` is set) if the server closed it.
struct Prober {
    addr: SocketAddr,
    login: Option<(String, String)>,
    client: Option<Client>,
}

impl Prober {
    fn new(addr: SocketAddr, login: Option<(&str, &str)>) -> Prober {
        Prober {
            addr,
            login: login.map(|(l, p)| (l.to_string(), p.to_string())),
            client: None,
        }
    }

    /// The reply code to `MAIL FROM:<sender>`.
    async fn mail_from(&mut self, sender: &str) -> u16 {
        loop {
            if self.client.is_none() {
                let mut c = Client::connect(self.addr).await;
                match &self.login {
                    Some((login, password)) => c.login(login, password).await,
                    None => {
                        c.expect("EHLO mx.example.net", 250).await;
                    }
                }
                self.client = Some(c);
            }
            let c = self.client.as_mut().unwrap();
            let code = c.cmd(&format!("MAIL FROM:<{sender}>")).await.code;
            if code == 0 || code == 421 {
                self.client = None;
                continue;
            }
            let rset = c.cmd("RSET").await.code;
            if rset != 250 {
                self.client = None;
            }
            return code;
        }
    }
}

/// Evaluates the probe `$probe` (an expression awaiting a bool) until it is true; the
/// time from `$since` to the end of that probe.
macro_rules! latency {
    ($since:expr, $what:expr, $probe:expr) => {{
        let since: Instant = $since;
        loop {
            if $probe {
                break since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "{} never took effect",
                $what
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }};
}

/// Makes 20 users, 20 accounts granting one of them send-as, and 20 blocklist entries
/// through A's API; after each, measures how long until B's SMTP listeners act on it.
/// The latencies of each kind.
async fn measure_propagation(notify: bool) -> [(String, Vec<Duration>); 3] {
    let url = common::postgres::database();
    let a = node(&url, "node-a", notify, |_| {}).await;
    let b = node(&url, "node-b", notify, |_| {}).await;
    let _c = node(&url, "node-c", notify, |_| {}).await;
    let (mut users, mut accounts, mut blocks) = (Vec::new(), Vec::new(), Vec::new());
    let mut inbound = Prober::new(b.addr("inbound"), None);
    for i in 0..20 {
        let login = format!("u{i}@example.com");
        let password = format!("password-{i}");
        assert!(!can_login(b.addr("plain"), &login, &password).await);
        let user = a.create_user(&login, "staff", &password).await;
        let made = Instant::now();
        users.push(latency!(
            made,
            "a new user",
            can_login(b.addr("plain"), &login, &password).await
        ));

        // A shared account whose only sender is this user, by an explicit grant.
        let address = format!("team{i}@example.com");
        let mut as_user = Prober::new(b.addr("plain"), Some((&login, &password)));
        assert_eq!(as_user.mail_from(&address).await, 550, "not yet granted");
        let body = json!({"name": format!("Team {i}"), "address": address, "upstream": "local",
            "scope": {"kind": "all_staff"}, "default_send_mode": "none",
            "grants": [{"grantee": {"user": user["id"]}, "send": "send_as"}]});
        let (status, doc) = call(a.running.api, "POST", "/api/v1/accounts", Some(body)).await;
        assert_eq!(status, 201, "{doc}");
        let made = Instant::now();
        accounts.push(latency!(
            made,
            "a send-as grant",
            as_user.mail_from(&address).await == 250
        ));

        let domain = format!("pest{i}.example");
        let sender = format!("x@{domain}");
        assert_eq!(inbound.mail_from(&sender).await, 250);
        let entry = json!({"entry": domain, "reason": "complaints"});
        let (status, doc) = call(a.running.api, "POST", "/api/v1/blocklist", Some(entry)).await;
        assert_eq!(status, 201, "{doc}");
        let made = Instant::now();
        blocks.push(latency!(
            made,
            "a blocklist entry",
            inbound.mail_from(&sender).await == 550
        ));
    }
    [
        ("user (AUTH)".into(), users),
        ("account + grant (send-as)".into(), accounts),
        ("blocklist entry".into(), blocks),
    ]
}

fn report(notify: bool, kinds: &[(String, Vec<Duration>)]) {
    let mut all = Vec::new();
    for (kind, samples) in kinds {
        let (min, median, max) = spread(samples);
        println!(
            "notify={notify} {kind}: n={} min={:?} median={:?} max={:?}",
            samples.len(),
            min,
            median,
            max
        );
        all.extend_from_slice(samples);
    }
    let (min, median, max) = spread(&all);
    println!(
        "notify={notify} all: n={} min={min:?} median={median:?} max={max:?}",
        all.len()
    );
    assert!(
        max < Duration::from_secs(1),
        "a change took {max:?} to reach node B (notify={notify})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_through_one_node_take_effect_at_another_within_a_second() {
    for notify in [true, false] {
        let kinds = measure_propagation(notify).await;
        report(notify, &kinds);
    }
}
