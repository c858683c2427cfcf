//! The scenario several relay tests share: a gateway whose default upstream `provider` is
//! given as TOML, with the staff user desk@corp.example, and a plain message from it to
//! customer@example.net submitted over the `plain` listener.

use super::{Client, Gateway};
use postern::config::UpstreamConfig;

/// A gateway whose default upstream `provider` is `settings` (TOML of the upstream);
/// deferred mail is retried after a second.
pub async fn gateway(settings: &str) -> Gateway {
    let upstream: UpstreamConfig = toml::from_str(settings).unwrap();
    let gw = Gateway::start(move |c| {
        c.upstreams.insert("provider".into(), upstream);
        c.default_upstream = "provider".into();
        c.queue.retry_intervals_secs = vec![1];
    })
    .await;
    gw.create_user("desk@corp.example", "staff", "desk-password-1")
        .await;
    gw
}

/// desk@corp.example sends `subject` to customer@example.net; the gateway answers 250.
pub async fn submit(gw: &Gateway, subject: &str) {
    let mut c = Client::connect(gw.addr("plain")).await;
    c.expect("EHLO desk.corp.example", 250).await;
    c.login("desk@corp.example", "desk-password-1").await;
    c.expect("MAIL FROM:<desk@corp.example>", 250).await;
    c.expect("RCPT TO:<customer@example.net>", 250).await;
    c.expect("DATA", 354).await;
    let text = format!("From: desk@corp.example\r\nSubject: {subject}\r\n\r\nhello\r\n.\r\n");
    c.send(text.as_bytes()).await;
    assert_eq!(c.reply().await.code, 250);
    c.expect("QUIT", 221).await;
}
