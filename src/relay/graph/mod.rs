//! The `graph` upstream: each message goes to Microsoft Graph as
//! `POST {graph_url}/users/{mailbox}/sendMail` with `Content-Type: text/plain` and the MIME
//! message base64-encoded as the body; Graph answers `202 Accepted` with no body and saves
//! the message in the mailbox's Sent Items (learn.microsoft.com/graph/api/user-sendmail,
//! /graph/outlook-send-mime-message). The mailbox is the envelope sender (the account's
//! address). The token is app-only: the client-credentials grant at
//! `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token` with scope
//! `https://graph.microsoft.com/.default` (learn.microsoft.com/entra/identity-platform/
//! v2-oauth2-client-creds-grant-flow), from `relay::oauth::TokenSource`. No DKIM wrapper:
//! Exchange Online signs for the tenant.
//!
//! **Recipients.** Graph takes the recipients from the MIME header, not from an envelope,
//! and Postern removed `Bcc` at submission. The copy sent (`request`) names exactly this
//! attempt's recipients: envelope recipients missing from `To`/`Cc` go in a `Bcc` field of
//! the copy, and `To`/`Cc` addresses that are not recipients of this attempt (a retry after
//! some recipients were delivered, or an address the client put in `To` but never gave in
//! `RCPT`) are left out of the copy (logged at info with the queue id). Graph thus never
//! delivers to anyone the envelope does not name. Only the header block is rewritten, on
//! raw bytes; the body is passed through.
//!
//! **Size.** A Graph request body is limited to about 4 MB (the general payload limit,
//! learn.microsoft.com/answers/questions/1195604; sendMail's own page gives no figure), and
//! Outlook's documentation sends anything over 3 MB through an upload session
//! (learn.microsoft.com/graph/outlook-large-attachments). Base64 grows the message by 4/3:
//! the largest message is [`MAX_MESSAGE`] octets (3 MiB, less room for the `Bcc` field),
//! which `Deliver::max_message_size` tells the SMTP server, so a bigger one is refused at
//! `MAIL FROM … SIZE=` or at the end of DATA with `552 5.3.4`; one queued before (an
//! upstream changed under it) fails for good with that reason, and a `413` from Graph
//! bounces too. Graph's way for larger mail — a draft, an upload session per attachment
//! over 3 MB, then `send` — needs `Mail.ReadWrite`, turns one message into many requests
//! against the mailbox's 4 concurrent requests and its upload budget, and rebuilds the
//! message from Graph's model instead of sending the submitted MIME (signatures,
//! structure and header fields would not survive): Postern refuses instead.
//!
//! **Outcomes** are `outcome`'s: `202` delivers every recipient; `429`/`503`/`504` defer
//! with `Retry-After`; `401` forgets the token and fails the account (mail stays queued);
//! `403` (`ErrorSendAsDenied`, `ErrorAccessDenied`) fails the account, mail stays queued;
//! other `4xx` bounce with Graph's code and message; other `5xx` and failed connections
//! defer.
//!
//! **A request that times out may have sent the message.** Graph's `sendMail` takes no
//! idempotency key, so Postern checks instead of guessing: when a POST timed out or its
//! answer was cut after the request went out, the attempt (queue id and recipients) is
//! remembered, and before the message is sent again Graph is asked for a copy in the
//! mailbox's Sent Items with the message's `internetMessageId` that names every recipient
//! of the attempt (`sent`). Found: the recipients count as delivered and nothing is sent
//! again. Not found: it is sent. The lookup needs `Mail.ReadBasic.All` (or `Mail.Read`);
//! if Graph refuses it (`4xx`, such as `403` without that permission) the message is sent
//! again — a possible duplicate rather than a possible loss — and a warning says so; a
//! throttled or failed lookup (`429`, `5xx`, no answer) defers.
//! Exchange files the copy in Sent Items shortly after the `202`; the lookup comes with
//! the next retry (the queue's first interval, 60 s by default), and a copy filed later
//! still would be missed (the message then goes twice). The memory of uncertain attempts
//! is not durable: after a restart in between, the message is sent again (the same
//! trade-off).

mod outcome;
mod request;
mod sent;

use super::oauth::{OAuthError, TokenSource};
use super::{BoxFuture, Deliver, ErrorKind, Outgoing, RcptOutcome, RelayError, Retry, Side};
use crate::net::http::Client;
use base64::Engine;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The largest request body Graph takes.
pub const MAX_REQUEST: usize = 4 * 1024 * 1024;
/// Room kept for the `Bcc` field the copy may get.
const HEADER_ROOM: usize = 64 * 1024;
/// The largest stored message sent in one request: base64 of it, with the room, fits.
pub const MAX_MESSAGE: usize = MAX_REQUEST / 4 * 3 - HEADER_ROOM;
/// How long an uncertain attempt is remembered.
const UNCERTAIN_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// One `graph` upstream.
pub struct GraphUpstream {
    name: String,
    /// `graph_url` without a trailing `/`.
    base: String,
    http: Client,
    /// The time limit of each request.
    timeout: Duration,
    tokens: std::sync::Arc<TokenSource>,
    /// Attempts (queue id, recipients' hash) whose `sendMail` got no answer, since when.
    uncertain: Mutex<HashMap<(String, u64), Instant>>,
}

impl GraphUpstream {
    /// Checks the settings and sets up the token source; the HTTP client is `shared`'s
    /// (each request within `timeout_secs`) unless the upstream trusts a CA file of its own.
    pub fn new(
        name: &str,
        config: &crate::config::GraphUpstream,
        shared: &super::Shared,
    ) -> Result<GraphUpstream, RelayError> {
        let invalid = |text: String| {
            RelayError::new(
                ErrorKind::Protocol,
                Side::Local,
                Retry::Never,
                format!("upstream {name}: {text}"),
            )
        };
        if let Some((field, reason)) = config.problem() {
            return Err(invalid(format!("{field}: {reason}")));
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let http = match &config.ca_file {
            Some(ca_file) => Client::with_ca_file(timeout, ca_file),
            None => Ok(shared.http.clone()),
        }
        .map_err(|e| invalid(e.to_string()))?;
        // App-only: no user to name. The token source warns of the secret's or the
        // certificate's end (`oauth::watch`).
        let tokens = TokenSource::new(name, &config.oauth(), "", shared, config.ca_file.as_deref())
            .map_err(|e| invalid(e.to_string()))?;
        Ok(GraphUpstream {
            name: name.to_string(),
            base: config.graph_url.trim_end_matches('/').to_string(),
            http,
            timeout,
            tokens,
            uncertain: Mutex::new(HashMap::new()),
        })
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Vec<RcptOutcome>, RelayError> {
        let mailbox = msg.mail_from;
        if mailbox.is_empty() {
            return Err(self.refused(
                "Microsoft Graph sends from a mailbox: a message with the null sender cannot go through it".into(),
            ));
        }
        let copy = request::copy_for(msg.data, msg.rcpts);
        if !copy.removed.is_empty() {
            tracing::info!(queue_id = msg.id, upstream = %self.name, removed = ?copy.removed,
                "header recipients that are not recipients of this attempt left out of the copy sent to Graph");
        }
        if !copy.bcc.is_empty() {
            tracing::debug!(queue_id = msg.id, upstream = %self.name, bcc = ?copy.bcc,
                "envelope recipients the header does not name carried as Bcc");
        }
        let body = base64::engine::general_purpose::STANDARD.encode(&copy.bytes);
        if body.len() > MAX_REQUEST {
            return Err(self.refused(too_big(mailbox)));
        }
        let token = self.tokens.token().await.map_err(|e| self.token_error(e))?;
        let attempt = attempt_key(msg);
        if self.is_uncertain(&attempt) {
            if let Some(done) = self
                .sent_before(msg, copy.message_id.as_deref(), &token)
                .await?
            {
                self.settled(&attempt);
                return Ok(done);
            }
        }
        let url = format!("{}/users/{}/sendMail", self.base, path_segment(mailbox));
        let headers = [
            ("Authorization", format!("Bearer {token}")),
            ("Content-Type", "text/plain".to_string()),
        ];
        match self
            .http
            .send_within("POST", &url, &headers, body.into_bytes(), self.timeout)
            .await
        {
            Ok(response) => {
                self.settled(&attempt);
                if response.status == 401 {
                    self.tokens.reject(&token).await;
                }
                outcome::of_send(&response, msg.rcpts.len()).map_err(|e| self.named(e))
            }
            Err(error) => {
                if outcome::maybe_sent(&error) {
                    tracing::warn!(queue_id = msg.id, upstream = %self.name, %error,
                        "sendMail got no answer: the message may have been sent; Sent Items is checked before it is sent again");
                    self.uncertain_lock().insert(attempt, Instant::now());
                }
                Err(self.named(outcome::of_http(&error)))
            }
        }
    }

    /// The outcomes if the mailbox's Sent Items holds this attempt's message already;
    /// `None` if it does not (or cannot be asked, see the module doc).
    async fn sent_before(
        &self,
        msg: &Outgoing<'_>,
        message_id: Option<&str>,
        token: &str,
    ) -> Result<Option<Vec<RcptOutcome>>, RelayError> {
        let Some(message_id) = message_id else {
            return Ok(None);
        };
        let url = format!(
            "{}{}",
            self.base,
            sent::lookup_path(msg.mail_from, message_id)
        );
        let headers = [
            ("Authorization", format!("Bearer {token}")),
            ("Accept", "application/json".to_string()),
        ];
        let response = self
            .http
            .send_within("GET", &url, &headers, Vec::new(), self.timeout)
            .await
            .map_err(|e| self.named(outcome::of_http(&e)))?;
        match response.status {
            200 => {}
            // Throttled or unavailable: ask again later, as Graph says.
            429 | 500..=599 => {
                let error = outcome::of_send(&response, 0).err().map(|mut e| {
                    e.retry = Retry::Later;
                    e.message = format!("Sent Items lookup before sending again: {}", e.message);
                    e
                });
                return error.map_or(Ok(None), |e| Err(self.named(e)));
            }
            status => {
                tracing::warn!(queue_id = msg.id, upstream = %self.name, status,
                    error = %outcome::error_text(&response),
                    "Sent Items cannot be read (Mail.ReadBasic.All not granted?): sending again, possibly a second time");
                return Ok(None);
            }
        }
        match sent::found(&response.bytes, msg.rcpts) {
            Some(true) => {
                tracing::info!(queue_id = msg.id, upstream = %self.name, message_id,
                    "the message whose sendMail timed out is in Sent Items: not sent again");
                let reply = "250 found in Sent Items after a sendMail without answer".to_string();
                Ok(Some(vec![RcptOutcome::Delivered(reply); msg.rcpts.len()]))
            }
            Some(false) => Ok(None),
            None => Err(self.named(RelayError::new(
                ErrorKind::Protocol,
                Side::Upstream,
                Retry::Later,
                "Sent Items lookup before sending again: the answer is not a list of messages",
            ))),
        }
    }

    fn uncertain_lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Instant>> {
        let mut map = self.uncertain.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, since| since.elapsed() < UNCERTAIN_FOR);
        map
    }

    fn is_uncertain(&self, attempt: &(String, u64)) -> bool {
        self.uncertain_lock().contains_key(attempt)
    }

    /// The attempt's fate is known: nothing to check before the next one.
    fn settled(&self, attempt: &(String, u64)) {
        self.uncertain_lock().remove(attempt);
    }

    fn token_error(&self, error: OAuthError) -> RelayError {
        // Refused client credentials are the account's problem; an unreachable or failing
        // token endpoint only delays the mail.
        let kind = match error.is_permanent() {
            true => ErrorKind::Auth,
            false => ErrorKind::Connect,
        };
        RelayError::new(
            kind,
            Side::Local,
            Retry::Later,
            format!("upstream {}: {error}", self.name),
        )
    }

    fn refused(&self, text: String) -> RelayError {
        RelayError::new(
            ErrorKind::Rejected,
            Side::Local,
            Retry::Never,
            format!("upstream {}: {text}", self.name),
        )
    }

    fn named(&self, mut error: RelayError) -> RelayError {
        error.message = format!("upstream {}: {}", self.name, error.message);
        error
    }
}

/// The refusal of a message too large for one request, as the SMTP server words it.
fn too_big(mailbox: &str) -> String {
    crate::smtp::reply::upstream_too_big(mailbox, "Microsoft Graph", MAX_MESSAGE)
}

/// An attempt's identity: its queue id and recipients.
fn attempt_key(msg: &Outgoing<'_>) -> (String, u64) {
    let mut keys: Vec<String> = msg
        .rcpts
        .iter()
        .map(|r| crate::policy::address::key(r))
        .collect();
    keys.sort();
    let mut hasher = DefaultHasher::new();
    keys.hash(&mut hasher);
    (msg.id.to_string(), hasher.finish())
}

/// A mailbox as one path segment (`@` kept, as Graph's examples write it).
fn path_segment(mailbox: &str) -> String {
    mailbox
        .bytes()
        .map(
            |b| match b.is_ascii_alphanumeric() || b"@.-_~+".contains(&b) {
                true => (b as char).to_string(),
                false => format!("%{b:02X}"),
            },
        )
        .collect()
}

impl Deliver for GraphUpstream {
    fn deliver<'a>(
        &'a self,
        msg: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Vec<RcptOutcome>, RelayError>> {
        Box::pin(self.send(msg))
    }

    fn judges_account(&self) -> bool {
        true
    }

    fn max_message_size(&self) -> Option<usize> {
        Some(MAX_MESSAGE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_message_fits_one_request_after_base64() {
        assert_eq!(MAX_MESSAGE, 3 * 1024 * 1024 - 64 * 1024);
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_MESSAGE + HEADER_ROOM]);
        assert!(encoded.len() <= MAX_REQUEST);
        assert_eq!(
            too_big("desk@corp.example"),
            "552 5.3.4 Message too big for <desk@corp.example>'s upstream (Microsoft Graph takes at most 3080192 octets)"
        );
        assert_eq!(path_segment("a b/c@x.example"), "a%20b%2Fc@x.example");
    }
}
