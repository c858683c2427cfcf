//! The SMTP upstream client against a fake upstream on real sockets: exact bytes and
//! dot-stuffing, pipelining, per-recipient outcomes, pooling with RSET, the one retry on a
//! dead pooled connection, STARTTLS / implicit TLS with AUTH, and connection failures.

#[path = "common/tls.rs"]
mod tls;
#[path = "common/upstream/mod.rs"]
mod upstream;

use postern::config::{SmtpUpstream as SmtpConfig, UpstreamAuth, UpstreamTls};
use postern::relay::smtp::SmtpUpstream;
use postern::relay::{Deliver, ErrorKind, Outgoing, RcptOutcome, RelayError, Retry};
use std::path::PathBuf;
use tls::localhost_cert;
use upstream::{FakeUpstream, Script};

/// A plain-text upstream configuration for `port`.
fn config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: UpstreamTls::None,
        auth: UpstreamAuth::None,
        username: String::new(),
        password: String::new(),
        ca_file: None,
        pool_size: 4,
        pool_idle_secs: 30,
        max_connections: 8,
        timeout_secs: 5,
        chunking: true,
        oauth: None,
        limits: None,
    }
}

fn client(cfg: &SmtpConfig) -> SmtpUpstream {
    SmtpUpstream::new("test", cfg, "gateway.test").expect("upstream builds")
}

fn outgoing<'a>(id: &'a str, rcpts: &'a [String], data: &'a [u8]) -> Outgoing<'a> {
    Outgoing {
        id,
        mail_from: "sender@example.com",
        rcpts,
        data,
        smtputf8: false,
        eight_bit: false,
    }
}

fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| r.to_string()).collect()
}

async fn send(
    up: &SmtpUpstream,
    to: &[String],
    data: &[u8],
) -> Result<Vec<RcptOutcome>, RelayError> {
    up.deliver(&outgoing("Q1", to, data)).await
}

/// Sends `data` and asserts that every recipient was delivered.
async fn send_ok(up: &SmtpUpstream, to: &[String], data: &[u8]) {
    let outcomes = send(up, to, data).await.expect("attempt succeeds");
    assert_eq!(outcomes.len(), to.len());
    let delivered = |o: &RcptOutcome| matches!(o, RcptOutcome::Delivered(_));
    assert!(outcomes.iter().all(delivered), "{outcomes:?}");
}

/// Sends a small message to one recipient and expects the attempt to fail.
async fn send_err(up: &SmtpUpstream) -> RelayError {
    send(up, &rcpts(&["a@example.net"]), b"x\r\n")
        .await
        .unwrap_err()
}

/// A fake upstream following `script` and a plain-text client for it.
async fn start(script: Script) -> (FakeUpstream, SmtpUpstream) {
    start_with(script, |_| {}).await
}

/// Like `start`, with the client configuration adjusted by `edit`.
async fn start_with(
    script: Script,
    edit: impl FnOnce(&mut SmtpConfig),
) -> (FakeUpstream, SmtpUpstream) {
    let server = FakeUpstream::start(script).await;
    let mut cfg = config(server.addr.port());
    edit(&mut cfg);
    let up = client(&cfg);
    (server, up)
}

/// The attempt failed as a whole with `kind`, and the mail stays queued.
fn assert_later(err: &RelayError, kind: ErrorKind) {
    assert_eq!(err.kind, kind, "{err}");
    assert_eq!(err.retry, Retry::Later, "{err}");
}

fn piped(pipelining: bool) -> Script {
    Script {
        pipelining,
        ..Script::default()
    }
}

#[tokio::test]
async fn delivers_exact_bytes_and_dot_stuffs_every_line_start() {
    for pipelining in [true, false] {
        let (server, up) = start(piped(pipelining)).await;
        let to = rcpts(&["a@example.net", "b@example.org"]);
        let bodies: [&[u8]; 4] = [
            b"Subject: hi\r\n\r\nline\r\n.leading dot\r\n..two\r\n.\r\nend\r\n",
            b".\r\nfirst line was a lone dot\r\n",
            b".hidden first line\r\nrest\r\n",
            b"Subject: no final newline\r\n\r\nlast line",
        ];
        for body in bodies {
            send_ok(&up, &to, body).await;
        }
        let record = server.record();
        assert_eq!(record.messages.len(), 4);
        for (got, body) in record.messages.iter().zip(bodies) {
            let mut expected = body.to_vec();
            if !expected.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            assert_eq!(got.data, expected, "{}", String::from_utf8_lossy(&got.data));
            assert_eq!(got.mail_from, "sender@example.com");
            assert_eq!(got.rcpts, to);
        }
        let lines = record.lines();
        assert!(
            lines.contains(&"MAIL FROM:<sender@example.com>"),
            "{lines:?}"
        );
        assert!(lines.contains(&"RCPT TO:<a@example.net>"));
        assert!(lines.contains(&"RCPT TO:<b@example.org>"));
    }
}

#[tokio::test]
async fn pipelines_envelope_and_data_when_offered() {
    let (server, up) = start(piped(true)).await;
    let to = rcpts(&["a@example.net", "b@example.net"]);
    send_ok(&up, &to, b"Subject: p\r\n\r\nx\r\n").await;
    let record = server.record();
    let envelope = ["MAIL", "RCPT", "RCPT", "DATA"].map(String::from).to_vec();
    assert!(record.batches.contains(&envelope), "{:?}", record.batches);
}

#[tokio::test]
async fn lockstep_when_pipelining_is_not_offered() {
    let (server, up) = start(Script::default()).await;
    let to = rcpts(&["a@example.net", "b@example.net"]);
    for _ in 0..2 {
        send_ok(&up, &to, b"Subject: l\r\n\r\nx\r\n").await;
    }
    let record = server.record();
    assert_eq!(record.messages.len(), 2);
    assert!(
        record.batches.iter().all(|b| b.len() == 1),
        "{:?}",
        record.batches
    );
}

#[tokio::test]
async fn recipient_replies_map_to_outcomes_with_their_text() {
    for pipelining in [true, false] {
        let script = Script {
            pipelining,
            rcpt_replies: vec![
                ("busy@example.net".into(), "450 4.2.0 mailbox busy".into()),
                ("gone@example.net".into(), "550 5.1.1 no such user".into()),
            ],
            ..Script::default()
        };
        let (server, up) = start(script).await;
        let to = rcpts(&["busy@example.net", "ok@example.net", "gone@example.net"]);
        let outcomes = send(&up, &to, b"Subject: r\r\n\r\nx\r\n")
            .await
            .expect("attempt");
        assert_eq!(
            outcomes,
            vec![
                RcptOutcome::Temporary("450 4.2.0 mailbox busy".into()),
                RcptOutcome::Delivered("250 2.0.0 queued".into()),
                RcptOutcome::Permanent("550 5.1.1 no such user".into()),
            ]
        );
        let record = server.record();
        assert_eq!(record.messages.len(), 1);
        assert_eq!(record.messages[0].rcpts, rcpts(&["ok@example.net"]));
    }
}

#[tokio::test]
async fn all_recipients_refused_sends_no_message_and_resets() {
    for pipelining in [true, false] {
        let script = Script {
            pipelining,
            rcpt_replies: vec![
                ("x@example.net".into(), "550 5.1.1 unknown".into()),
                ("y@example.net".into(), "451 4.3.0 try later".into()),
            ],
            ..Script::default()
        };
        let (server, up) = start(script).await;
        let to = rcpts(&["x@example.net", "y@example.net"]);
        let outcomes = send(&up, &to, b"Subject: n\r\n\r\nx\r\n")
            .await
            .expect("attempt");
        assert_eq!(
            outcomes,
            vec![
                RcptOutcome::Permanent("550 5.1.1 unknown".into()),
                RcptOutcome::Temporary("451 4.3.0 try later".into()),
            ]
        );
        // The connection stays usable: the next message goes over the same one.
        let ok = rcpts(&["ok@example.net"]);
        send_ok(&up, &ok, b"Subject: n2\r\n\r\nx\r\n").await;
        let record = server.record();
        let lines = record.lines();
        assert_eq!(record.connections, 1);
        assert_eq!(record.messages.len(), 1);
        let second_mail = lines.iter().rposition(|l| l.starts_with("MAIL")).unwrap();
        let first_attempt = &lines[..second_mail];
        assert_eq!(first_attempt.contains(&"DATA"), pipelining, "{lines:?}");
        // One RSET ends the refused transaction, one checks the reused connection.
        assert_eq!(
            first_attempt.iter().filter(|l| **l == "RSET").count(),
            2,
            "{lines:?}"
        );
    }
}

#[tokio::test]
async fn mail_from_and_final_replies_apply_to_accepted_recipients() {
    let script = Script {
        pipelining: true,
        mail_reply: Some("451 4.7.1 sender rate limited".into()),
        ..Script::default()
    };
    let (_server, up) = start(script).await;
    let to = rcpts(&["a@example.net", "b@example.net"]);
    let outcomes = send(&up, &to, b"x\r\n").await.expect("attempt");
    let limited = RcptOutcome::Temporary("451 4.7.1 sender rate limited".into());
    assert_eq!(outcomes, vec![limited.clone(), limited]);

    let script = Script {
        rcpt_replies: vec![("busy@example.net".into(), "452 4.2.2 over quota".into())],
        data_reply: Some("554 5.6.0 content refused".into()),
        ..Script::default()
    };
    let (_server, up) = start(script).await;
    let to = rcpts(&["a@example.net", "busy@example.net"]);
    let outcomes = send(&up, &to, b"x\r\n").await.expect("attempt");
    assert_eq!(
        outcomes,
        vec![
            RcptOutcome::Permanent("554 5.6.0 content refused".into()),
            RcptOutcome::Temporary("452 4.2.2 over quota".into()),
        ]
    );
}

#[tokio::test]
async fn pool_reuses_one_connection_with_rset_before_each_reuse() {
    for pipelining in [true, false] {
        let (server, up) = start(piped(pipelining)).await;
        let to = rcpts(&["a@example.net"]);
        for i in 0..5 {
            let body = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
            send_ok(&up, &to, body.as_bytes()).await;
        }
        let record = server.record();
        assert_eq!(record.connections, 1);
        assert_eq!(record.messages.len(), 5);
        let lines = record.lines();
        let mails: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("MAIL"))
            .collect();
        assert_eq!(mails.len(), 5);
        assert_ne!(lines[mails[0] - 1], "RSET");
        for &at in &mails[1..] {
            assert_eq!(lines[at - 1], "RSET", "{lines:?}");
        }
        if pipelining {
            let reuse = ["RSET", "MAIL", "RCPT", "DATA"].map(String::from).to_vec();
            assert_eq!(record.batches.iter().filter(|b| **b == reuse).count(), 4);
        }
    }
}

#[tokio::test]
async fn dead_pooled_connection_is_retried_once_on_a_fresh_one() {
    for pipelining in [true, false] {
        let script = Script {
            pipelining,
            close_after_messages: Some(1),
            ..Script::default()
        };
        let (server, up) = start(script).await;
        let to = rcpts(&["a@example.net"]);
        send_ok(&up, &to, b"Subject: 1\r\n\r\n1\r\n").await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        send_ok(&up, &to, b"Subject: 2\r\n\r\n2\r\n").await;
        let record = server.record();
        assert_eq!(record.connections, 2);
        assert_eq!(record.messages.len(), 2);
        assert_eq!(record.messages[1].data, b"Subject: 2\r\n\r\n2\r\n");
    }
}

#[tokio::test]
async fn pooled_connection_answering_421_is_retried_on_a_fresh_one() {
    for pipelining in [true, false] {
        let script = Script {
            pipelining,
            close_after_messages: Some(1),
            goodbye: Some("421 4.4.2 idle timeout, closing".into()),
            ..Script::default()
        };
        let (server, up) = start(script).await;
        let to = rcpts(&["a@example.net"]);
        for i in 0..2 {
            let body = format!("Subject: {i}\r\n\r\n{i}\r\n");
            send_ok(&up, &to, body.as_bytes()).await;
        }
        let record = server.record();
        assert_eq!(record.connections, 2);
        assert_eq!(record.messages.len(), 2);
        assert_eq!(
            record.commands.iter().filter(|(_, l)| l == "RSET").count(),
            1
        );
    }
}

#[tokio::test]
async fn idle_connections_expire_and_pool_size_zero_keeps_none() {
    let (server, up) = start_with(Script::default(), |c| c.pool_idle_secs = 1).await;
    let to = rcpts(&["a@example.net"]);
    send_ok(&up, &to, b"x\r\n").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    send_ok(&up, &to, b"x\r\n").await;
    assert_eq!(server.record().connections, 2);
    assert!(!server.record().lines().contains(&"RSET"));

    let (server, up) = start_with(Script::default(), |c| c.pool_size = 0).await;
    for _ in 0..3 {
        send_ok(&up, &to, b"x\r\n").await;
    }
    assert_eq!(server.record().connections, 3);
}

#[tokio::test]
async fn concurrent_deliveries_wait_for_a_connection_slot_instead_of_churning() {
    let (server, up) = start_with(Script::default(), |c| c.max_connections = 2).await;
    let up = std::sync::Arc::new(up);
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let up = up.clone();
        sends.spawn(async move { send_ok(&up, &rcpts(&["a@example.net"]), b"x\r\n").await });
    }
    while let Some(done) = sends.join_next().await {
        done.expect("delivery task");
    }
    let record = server.record();
    assert_eq!(record.messages.len(), 10);
    assert_eq!(
        record.connections, 2,
        "two slots: two connections, each reused"
    );
}

/// A STARTTLS (or implicit TLS) upstream requiring AUTH, and a client trusting its cert.
async fn tls_upstream(
    implicit: bool,
    auth: UpstreamAuth,
    password: &str,
) -> (FakeUpstream, SmtpConfig, tempfile::TempDir) {
    let (server_tls, ca_pem) = localhost_cert();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file: PathBuf = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).expect("write ca");
    let script = Script {
        pipelining: true,
        starttls: (!implicit).then(|| server_tls.clone()),
        implicit_tls: implicit.then_some(server_tls),
        auth: Some(("relay-user".into(), "s3cret pass".into())),
        ..Script::default()
    };
    let server = FakeUpstream::start(script).await;
    let cfg = SmtpConfig {
        host: "localhost".into(),
        tls: if implicit {
            UpstreamTls::Implicit
        } else {
            UpstreamTls::Starttls
        },
        auth,
        username: "relay-user".into(),
        password: password.into(),
        ca_file: Some(ca_file),
        ..config(server.addr.port())
    };
    (server, cfg, dir)
}

#[tokio::test]
async fn starttls_then_auth_plain_and_login() {
    for (implicit, auth) in [
        (false, UpstreamAuth::Plain),
        (false, UpstreamAuth::Login),
        (true, UpstreamAuth::Plain),
    ] {
        let (server, cfg, _dir) = tls_upstream(implicit, auth, "s3cret pass").await;
        let up = client(&cfg);
        let to = rcpts(&["a@example.net"]);
        send_ok(&up, &to, b"Subject: tls\r\n\r\nx\r\n").await;
        let record = server.record();
        assert_eq!(
            record.logins,
            vec![("relay-user".into(), "s3cret pass".into(), true)]
        );
        assert_eq!(record.messages.len(), 1);
        let lines = record.lines();
        assert_eq!(lines.contains(&"STARTTLS"), !implicit, "{lines:?}");
        let auth_line = lines
            .iter()
            .find(|l| l.starts_with("AUTH"))
            .expect("AUTH sent");
        let mechanism = if auth == UpstreamAuth::Plain {
            "AUTH PLAIN "
        } else {
            "AUTH LOGIN"
        };
        assert!(auth_line.starts_with(mechanism), "{auth_line}");
    }
}

#[tokio::test]
async fn wrong_password_is_an_auth_error_kept_for_later() {
    for auth in [UpstreamAuth::Plain, UpstreamAuth::Login] {
        let (server, cfg, _dir) = tls_upstream(false, auth, "wrong").await;
        let err = send_err(&client(&cfg)).await;
        assert_later(&err, ErrorKind::Auth);
        assert!(!err.message.contains("wrong"), "password leaked: {err}");
        assert!(server.record().messages.is_empty());
    }
}

#[tokio::test]
async fn missing_starttls_or_untrusted_certificate_is_a_tls_error() {
    let (server, up) = start_with(Script::default(), |c| c.tls = UpstreamTls::Starttls).await;
    assert_later(&send_err(&up).await, ErrorKind::Tls);
    assert!(!server
        .record()
        .lines()
        .iter()
        .any(|l| l.starts_with("MAIL")));

    let (server, cfg, _dir) = tls_upstream(false, UpstreamAuth::Plain, "s3cret pass").await;
    let untrusted = SmtpConfig {
        ca_file: None,
        ..cfg
    };
    assert_later(&send_err(&client(&untrusted)).await, ErrorKind::Tls);
    assert!(server.record().logins.is_empty());
}

#[tokio::test]
async fn connection_failures_are_errors_to_retry_later() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    assert_later(&send_err(&client(&config(port))).await, ErrorKind::Connect);

    let silent = Script {
        silent: true,
        ..Script::default()
    };
    let (_server, up) = start_with(silent, |c| c.timeout_secs = 1).await;
    assert_later(&send_err(&up).await, ErrorKind::Timeout);

    let refusing = Script {
        greeting: Some("554 5.7.1 go away".into()),
        ..Script::default()
    };
    let (_server, up) = start(refusing).await;
    assert_later(&send_err(&up).await, ErrorKind::Rejected);
}

#[tokio::test]
async fn helo_fallback_and_envelope_parameters() {
    let no_ehlo = Script {
        no_ehlo: true,
        ..Script::default()
    };
    for (script, expected) in [
        (
            no_ehlo,
            "HELO gateway.test\nMAIL FROM:<sender@example.com>\n",
        ),
        (
            Script::default(),
            "MAIL FROM:<sender@example.com> SMTPUTF8 BODY=8BITMIME\n",
        ),
    ] {
        let (server, up) = start(script).await;
        let to = rcpts(&["a@example.net"]);
        let utf8 = Outgoing {
            smtputf8: true,
            eight_bit: true,
            ..outgoing("Q2", &to, b"x\r\n")
        };
        let null_sender = Outgoing {
            mail_from: "",
            ..outgoing("Q3", &to, b"x\r\n")
        };
        for msg in [utf8, null_sender] {
            let outcomes = up.deliver(&msg).await.expect("attempt succeeds");
            assert!(matches!(outcomes[..], [RcptOutcome::Delivered(_)]));
        }
        let lines = server.record().lines().join("\n");
        assert!(lines.contains(expected), "{lines}");
        assert!(lines.contains("\nMAIL FROM:<>\n"), "{lines}");
    }
}
