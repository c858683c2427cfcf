//! A fake upstream with a relay client for it, and one delivery through that client: the
//! set-up of the tests that drive `relay::smtp` directly (riding, chunking).

use super::upstream::{FakeUpstream, Script};
use postern::config::{SmtpUpstream as SmtpConfig, UpstreamConfig};
use postern::relay::smtp::SmtpUpstream;
use postern::relay::{Deliver, Outgoing, RcptOutcome, RelayError};

/// The fake upstream following `script`, and a client for it with the configuration of
/// `sink_upstream` adjusted by `edit`.
pub async fn client_for(
    script: Script,
    edit: impl FnOnce(&mut SmtpConfig),
) -> (FakeUpstream, SmtpUpstream) {
    let server = FakeUpstream::start(script).await;
    let UpstreamConfig::Smtp(mut cfg) = super::sink_upstream(server.addr.port()) else {
        panic!("sink_upstream is an SMTP upstream");
    };
    edit(&mut cfg);
    let up = SmtpUpstream::new("test", &cfg, "gateway.test").expect("upstream builds");
    (server, up)
}

/// Delivers `data` from sender@example.com to `rcpts` as queue id `id`.
pub async fn deliver(
    up: &SmtpUpstream,
    id: &str,
    rcpts: &[&str],
    data: &[u8],
) -> Result<Vec<RcptOutcome>, RelayError> {
    let rcpts: Vec<String> = rcpts.iter().map(|r| r.to_string()).collect();
    let msg = Outgoing {
        id,
        mail_from: "sender@example.com",
        rcpts: &rcpts,
        data,
        smtputf8: false,
        eight_bit: false,
    };
    up.deliver(&msg).await
}
