//! The POP3 client against a scripted server on 127.0.0.1:0.

use super::*;
use std::net::SocketAddr;
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A server that sends `greeting`, then for each step reads a command line, checks it
/// starts with the step's prefix and sends the step's answer; the lines it read.
async fn scripted(
    greeting: &'static [u8],
    steps: Vec<(&'static str, Vec<u8>)>,
) -> (SocketAddr, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut io = tokio::io::BufReader::new(tcp);
        io.get_mut().write_all(greeting).await.unwrap();
        let mut seen = Vec::new();
        for (prefix, answer) in steps {
            let mut line = String::new();
            if io.read_line(&mut line).await.unwrap() == 0 {
                break;
            }
            assert!(line.starts_with(prefix), "expected {prefix}, got {line:?}");
            seen.push(line.trim_end().to_string());
            io.get_mut().write_all(&answer).await.unwrap();
        }
        seen
    });
    (addr, task)
}

fn server(addr: SocketAddr, tls: SentCopyTls) -> Server<'static> {
    Server {
        host: "127.0.0.1",
        port: addr.port(),
        tls,
        ca_file: None,
    }
}

fn login_steps() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("USER desk", b"+OK\r\n".to_vec()),
        ("PASS s3cret", b"+OK Logged in.\r\n".to_vec()),
    ]
}

const GREETING: &[u8] = b"+OK Dovecot ready.\r\n";

#[tokio::test]
async fn messages_are_listed_fetched_dot_unstuffed_and_deleted_at_quit() {
    let long_line = "x".repeat(200_000);
    let message = format!(
        "..From: a@b.example\r\nSubject: dots\r\n\r\n...\r\n..\r\n.x\r\n{long_line}\r\nend\r\n.\r\n"
    );
    let mut steps = login_steps();
    steps.extend([
        ("UIDL", b"+OK\r\n1 000001a\r\n2 000002b\r\n.\r\n".to_vec()),
        (
            "RETR 2",
            [b"+OK 99 octets\r\n".to_vec(), message.into_bytes()].concat(),
        ),
        ("DELE 2", b"+OK Marked to be deleted.\r\n".to_vec()),
        ("QUIT", b"+OK Logging out, messages deleted.\r\n".to_vec()),
    ]);
    let (addr, script) = scripted(GREETING, steps).await;
    let mut pop = connect(server(addr, SentCopyTls::None), "desk", "s3cret")
        .await
        .unwrap();
    assert_eq!(
        pop.uidl().await.unwrap(),
        vec![(1, "000001a".to_string()), (2, "000002b".to_string())]
    );
    let data = pop.retr(2).await.unwrap();
    let expected = format!(
        ".From: a@b.example\r\nSubject: dots\r\n\r\n..\r\n.\r\nx\r\n{long_line}\r\nend\r\n"
    );
    assert!(
        data == expected.as_bytes(),
        "{:?}",
        String::from_utf8_lossy(&data[..60])
    );
    pop.dele(2).await.unwrap();
    pop.quit().await.unwrap();
    assert_eq!(
        script.await.unwrap(),
        [
            "USER desk",
            "PASS s3cret",
            "UIDL",
            "RETR 2",
            "DELE 2",
            "QUIT"
        ]
    );
}

#[tokio::test]
async fn refused_credentials_are_a_login_error_without_the_password() {
    let steps = vec![
        ("USER desk", b"+OK\r\n".to_vec()),
        ("PASS", b"-ERR [AUTH] no such login s3cret\r\n".to_vec()),
    ];
    let (addr, _script) = scripted(GREETING, steps).await;
    let error = connect(server(addr, SentCopyTls::None), "desk", "s3cret")
        .await
        .unwrap_err();
    assert!(matches!(error, Pop3Error::Login(_)), "{error:?}");
    assert!(!error.to_string().contains("s3cret"), "{error}");
    assert!(error.to_string().contains("PASS refused"), "{error}");
}

#[tokio::test]
async fn a_maildrop_in_use_is_refused_not_a_login_failure() {
    let steps = vec![
        ("USER desk", b"+OK\r\n".to_vec()),
        ("PASS", b"-ERR [IN-USE] Mailbox is locked.\r\n".to_vec()),
    ];
    let (addr, _script) = scripted(GREETING, steps).await;
    let error = connect(server(addr, SentCopyTls::None), "desk", "s3cret")
        .await
        .unwrap_err();
    assert!(matches!(error, Pop3Error::Refused(_)), "{error:?}");
}

#[tokio::test]
async fn a_refused_retr_and_a_message_over_the_limit_leave_the_session_usable() {
    let mut steps = login_steps();
    steps.extend([
        ("RETR 1", b"-ERR Message is deleted.\r\n".to_vec()),
        (
            "RETR 2",
            b"+OK\r\nSubject: big\r\n\r\n0123456789\r\n0123456789\r\n.\r\n".to_vec(),
        ),
        ("RETR 3", b"+OK\r\nSubject: s\r\n\r\nok\r\n.\r\n".to_vec()),
        ("UIDL", b"-ERR UIDL not supported\r\n".to_vec()),
    ]);
    let (addr, _script) = scripted(GREETING, steps).await;
    let mut pop = connect(server(addr, SentCopyTls::None), "desk", "s3cret")
        .await
        .unwrap();
    let refused = pop.retr_within(1, 30).await.unwrap_err();
    assert!(matches!(refused, Pop3Error::Refused(_)), "{refused:?}");
    assert!(refused.to_string().contains("Message is deleted"));
    let big = pop.retr_within(2, 30).await.unwrap_err();
    assert!(matches!(big, Pop3Error::TooLarge(_)), "{big:?}");
    assert_eq!(
        pop.retr_within(3, 30).await.unwrap(),
        b"Subject: s\r\n\r\nok\r\n"
    );
    let uidl = pop.uidl().await.unwrap_err();
    assert!(matches!(uidl, Pop3Error::Refused(_)), "{uidl:?}");
}

#[tokio::test]
async fn a_server_that_closes_or_talks_nonsense_is_a_connect_error() {
    let (addr, _script) = scripted(b"* OK IMAP here\r\n", vec![]).await;
    let error = connect(server(addr, SentCopyTls::None), "desk", "s3cret")
        .await
        .unwrap_err();
    assert!(matches!(error, Pop3Error::Connect(_)), "{error:?}");
    let mut steps = login_steps();
    steps.push(("RETR 1", b"+OK\r\nSubject: cut\r\n".to_vec()));
    let (addr, script) = scripted(GREETING, steps).await;
    let mut pop = connect(server(addr, SentCopyTls::None), "desk", "s3cret")
        .await
        .unwrap();
    let retr = tokio::spawn(async move { pop.retr(1).await });
    script.await.unwrap();
    let error = retr.await.unwrap().unwrap_err();
    assert!(matches!(error, Pop3Error::Connect(_)), "{error:?}");
}

#[tokio::test]
async fn stls_must_be_offered_and_nothing_may_follow_its_answer() {
    let capa = b"+OK\r\nCAPA\r\nUIDL\r\nUSER\r\n.\r\n".to_vec();
    let (addr, _script) = scripted(GREETING, vec![("CAPA", capa)]).await;
    let error = connect(server(addr, SentCopyTls::Starttls), "desk", "s3cret")
        .await
        .unwrap_err();
    assert!(matches!(error, Pop3Error::Tls(_)), "{error:?}");
    assert!(error.to_string().contains("STLS not offered"), "{error}");

    let steps = vec![
        ("CAPA", b"-ERR unknown command\r\n".to_vec()),
        ("STLS", b"+OK Begin TLS.\r\n+OK injected\r\n".to_vec()),
    ];
    let (addr, _script) = scripted(GREETING, steps).await;
    let error = connect(server(addr, SentCopyTls::Starttls), "desk", "s3cret")
        .await
        .unwrap_err();
    assert!(matches!(error, Pop3Error::Tls(_)), "{error:?}");
    assert!(error.to_string().contains("data after"), "{error}");
}
