//! A real SMTP client (lettre) submits over STARTTLS + AUTH and over implicit TLS; the
//! message arrives in the maildir outbox with its body byte-for-byte.

mod common;

use common::{body_of, Gateway};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

const BODY: &str = "Hello Bob,\r\n.a line that starts with a dot\r\n..two dots\r\nUnicode: Grüße, 日本\r\n\r\n-- \r\nAlice\r\n";

fn message(subject: &str) -> Message {
    Message::builder()
        .from("Alice <alice@example.com>".parse().unwrap())
        .to("Bob <bob@example.net>".parse().unwrap())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(BODY.to_string())
        .unwrap()
}

fn tls_parameters(gw: &Gateway) -> TlsParameters {
    let pem = std::fs::read(&gw.config.tls.cert).unwrap();
    TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

async fn assert_delivered(gw: &Gateway, subject: &str) {
    let messages = gw.wait_outbox(1).await;
    assert_eq!(messages.len(), 1);
    let stored = &messages[0];
    let text = String::from_utf8_lossy(stored);
    assert!(
        text.starts_with(
            "Return-Path: <alice@example.com>\r\nDelivered-To: bob@example.net\r\nReceived: from "
        ),
        "{text}"
    );
    assert!(text.contains("(Postern) with ESMTPSA id "), "{text}");
    assert!(text.contains(&format!("Subject: {subject}\r\n")));
    // lettre encodes the 8-bit body (quoted-printable here) and transmits the formatted
    // message followed by "\r\n.\r\n": the data it sent is the formatted message plus CRLF.
    let mut sent = message(subject).formatted();
    sent.extend_from_slice(b"\r\n");
    assert_eq!(body_of(stored), body_of(&sent), "body changed in transit");
}

/// A gateway with alice, and a lettre transport to `listener` (implicit TLS if `wrapper`).
async fn setup(
    listener: &str,
    wrapper: bool,
    password: &str,
) -> (Gateway, AsyncSmtpTransport<Tokio1Executor>) {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("alice@example.com", "staff", "alice-password")
        .await;
    let tls = match wrapper {
        true => Tls::Wrapper(tls_parameters(&gw)),
        false => Tls::Required(tls_parameters(&gw)),
    };
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(gw.addr(listener).port())
        .tls(tls)
        .credentials(Credentials::new(
            "alice@example.com".into(),
            password.into(),
        ))
        .build();
    (gw, mailer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettre_over_starttls_with_auth() {
    let (gw, mailer) = setup("starttls", false, "alice-password").await;
    let response = mailer
        .send(message("over starttls"))
        .await
        .expect("accepted");
    assert!(response.message().any(|l| l.contains("queued as")));
    assert_delivered(&gw, "over starttls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettre_over_implicit_tls_with_auth() {
    let (gw, mailer) = setup("implicit", true, "alice-password").await;
    mailer
        .send(message("over implicit tls"))
        .await
        .expect("accepted");
    assert_delivered(&gw, "over implicit tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lettre_with_wrong_password_is_refused() {
    let (gw, mailer) = setup("implicit", true, "nope").await;
    let err = mailer.send(message("refused")).await.unwrap_err();
    assert!(
        err.to_string().contains("535") || err.is_permanent(),
        "{err}"
    );
    assert!(gw.wait_outbox_none().await);
}
