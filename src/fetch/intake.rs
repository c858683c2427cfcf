//! One message fetched from a helpdesk mailbox's server, on its way into the inbound path:
//! what the SMTP path checks in its dialogue is checked here — a blocked sender (header
//! `From` or `Return-Path`) is not turned into anything (the caller moves or deletes it,
//! logged and counted), a message whose header cannot be read is set aside — then the
//! provider's verdicts from its `Authentication-Results` field, only when the field's
//! authserv-id is the one configured for the mailbox (any other such field, which anyone
//! can write, is ignored), and the hook (`inbound::Hook::fetched`), with its loop,
//! requester, threading and idempotence rules.

use super::FetchError;
use crate::inbound::{Fetched, Hook, Processed};
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::rewrite::{self, Fields};
use crate::store::{Account, Fetch, Verdicts};
use std::sync::Arc;

/// What became of a fetched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Recorded now (a ticket, an article, a knowledge item).
    Recorded,
    /// Recorded before (fetched again, or came by SMTP too).
    AlreadyRecorded,
    /// Not recorded, on purpose (automatic mail from an unknown sender, a loop…): why.
    Dropped(String),
    /// From a blocked sender: the rule.
    Blocked(String),
    /// Cannot be read: why. Set aside by the caller.
    Unreadable(String),
}

impl Taken {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Taken::Recorded => "recorded",
            Taken::AlreadyRecorded => "already_recorded",
            Taken::Dropped(_) => "dropped",
            Taken::Blocked(_) => "blocked",
            Taken::Unreadable(_) => "set_aside",
        }
    }

    /// Whether the message is done with (acknowledged at the server).
    pub fn is_done(&self) -> bool {
        !matches!(self, Taken::Unreadable(_))
    }
}

/// Hands fetched messages to the inbound path.
pub struct Intake {
    hook: Arc<Hook>,
    policy: Arc<Policy>,
    metrics: Option<Arc<Metrics>>,
}

impl Intake {
    pub fn new(hook: Arc<Hook>, policy: Arc<Policy>, metrics: Option<Arc<Metrics>>) -> Intake {
        Intake {
            hook,
            policy,
            metrics,
        }
    }

    /// Takes `data`, named `name` at `mailbox`'s server (`imap/<uidvalidity>/<uid>`,
    /// `pop3/<uidl>`, `graph/<id>`). An error is transient (the store): nothing was
    /// recorded, and the message must be tried again before it is acknowledged.
    pub async fn take(
        &self,
        mailbox: &Account,
        fetch: &Fetch,
        name: &str,
        data: Vec<u8>,
    ) -> Result<Taken, FetchError> {
        let taken = self.decide(mailbox, fetch, name, data).await?;
        if let Some(metrics) = &self.metrics {
            metrics.fetched(&mailbox.name, taken.label());
        }
        Ok(taken)
    }

    async fn decide(
        &self,
        mailbox: &Account,
        fetch: &Fetch,
        name: &str,
        data: Vec<u8>,
    ) -> Result<Taken, FetchError> {
        let inspected = match rewrite::inspect(&data) {
            Ok(inspected) => inspected,
            Err(error) => return Ok(Taken::Unreadable(error.to_string())),
        };
        let header = Header::read(&data, inspected.header_len, fetch.authserv_id.as_deref());
        for address in [
            Some(inspected.from.address.as_str()),
            header.return_path.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(rule) = self.policy.snapshot().blocked(address) {
                let rule = rule.to_string();
                tracing::warn!(mailbox = %mailbox.name, from = %address, %rule,
                    "fetched message from a blocked sender: not recorded");
                return Ok(Taken::Blocked(rule));
            }
        }
        let fetched = Fetched {
            mailbox: mailbox.address.clone(),
            mark: format!("f/{}/{name}", mailbox.id),
            // Providers record the envelope sender at delivery; a message put in the
            // mailbox otherwise (an APPEND) has none, and is not a bounce for lacking it.
            mail_from: header
                .return_path
                .unwrap_or_else(|| inspected.from.address.clone()),
            data,
            verdicts: header.verdicts,
        };
        match self.hook.fetched(fetched).await {
            Ok(Processed::Recorded(_)) => Ok(Taken::Recorded),
            Ok(Processed::AlreadyDone) => Ok(Taken::AlreadyRecorded),
            Ok(Processed::Dropped { why, .. }) => Ok(Taken::Dropped(why)),
            Err(crate::inbound::InboundError::Parse(why)) => Ok(Taken::Unreadable(why)),
            Err(error) => Err(FetchError::Store(error.to_string())),
        }
    }
}

/// What the intake reads from the header block besides `From`.
#[derive(Debug, Default, PartialEq)]
struct Header {
    /// The first `Return-Path` (the provider's), without angle brackets.
    return_path: Option<String>,
    /// From the first `Authentication-Results` field of the trusted authserv-id.
    verdicts: Option<Verdicts>,
}

impl Header {
    fn read(data: &[u8], header_len: usize, authserv_id: Option<&str>) -> Header {
        let mut header = Header::default();
        let mut first_results = true;
        for field in Fields::new(data, header_len).filter_map(Result::ok) {
            if field.is("return-path") && header.return_path.is_none() {
                let value = String::from_utf8_lossy(&rewrite::unfold(field.value)).into_owned();
                let path = value.trim().trim_start_matches('<').trim_end_matches('>');
                header.return_path = Some(path.trim().to_string());
            } else if field.is("authentication-results") && first_results {
                // The topmost field is the provider's; any below it anyone could write.
                first_results = false;
                let value = String::from_utf8_lossy(&rewrite::unfold(field.value)).into_owned();
                header.verdicts = authserv_id.and_then(|id| verdicts(&value, id));
            }
        }
        header
    }
}

/// The verdicts of an `Authentication-Results` value (RFC 8601) when its authserv-id is
/// `trusted` (compared without case).
fn verdicts(value: &str, trusted: &str) -> Option<Verdicts> {
    let mut parts = value.split(';');
    let authserv = parts.next()?.split_whitespace().next()?;
    if !authserv.eq_ignore_ascii_case(trusted) {
        return None;
    }
    let mut verdicts = Verdicts {
        spf: "none".into(),
        dkim: "none".into(),
        dmarc: "none".into(),
        arc: "none".into(),
        results: value.trim().to_string(),
    };
    for part in parts {
        let Some((method, rest)) = part.trim().split_once('=') else {
            continue;
        };
        let result: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let slot = match method.trim().to_ascii_lowercase().as_str() {
            "spf" => &mut verdicts.spf,
            "dkim" => &mut verdicts.dkim,
            "dmarc" => &mut verdicts.dmarc,
            "arc" => &mut verdicts.arc,
            _ => continue,
        };
        // The first result of a method counts (a second DKIM signature does not override).
        if slot == "none" && !result.is_empty() {
            *slot = result;
        }
    }
    Some(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"Return-Path: <bounce@shop.example>\r\n\
Authentication-Results: evil.example; spf=pass; dkim=pass; dmarc=pass\r\n\
Authentication-Results: mx.google.com;\r\n dkim=pass header.i=@shop.example;\r\n spf=softfail smtp.mailfrom=shop.example;\r\n dmarc=fail (p=REJECT) header.from=shop.example\r\n\
From: Ann <ann@shop.example>\r\n\r\nhi\r\n";

    fn header(trusted: Option<&str>) -> Header {
        let len = rewrite::inspect(MESSAGE).unwrap().header_len;
        Header::read(MESSAGE, len, trusted)
    }

    #[test]
    fn only_the_first_field_of_the_trusted_authserv_id_gives_verdicts() {
        assert_eq!(header(None).verdicts, None);
        assert_eq!(header(Some("evil.example")).verdicts.unwrap().spf, "pass");
        // The topmost field is the provider's own; one further down is not trusted even
        // when it carries the configured id (here the topmost is `evil.example`).
        assert_eq!(header(Some("mx.google.com")).verdicts, None);
    }

    #[test]
    fn verdicts_are_read_per_method() {
        let value = " MX.Google.com; dkim=pass header.i=@a; spf=softfail smtp.mailfrom=a; dmarc=fail (p=REJECT) header.from=a; arc=none";
        let v = verdicts(value, "mx.google.com").unwrap();
        assert_eq!(
            (
                v.spf.as_str(),
                v.dkim.as_str(),
                v.dmarc.as_str(),
                v.arc.as_str()
            ),
            ("softfail", "pass", "fail", "none")
        );
        assert_eq!(verdicts(value, "mx.google.com.evil"), None);
        assert_eq!(verdicts("", "x"), None);
    }

    #[test]
    fn the_return_path_is_read_without_brackets() {
        assert_eq!(
            header(None).return_path.as_deref(),
            Some("bounce@shop.example")
        );
    }
}
