//! Relay: hands a queued message to its upstream. `Deliver` is the one interface the spool
//! worker sees; `maildir`, `smtp` and `mx` are its kinds (`microsoft365` and `google` are
//! `smtp` presets; `graph` sends through Microsoft Graph); `oauth` gets the tokens of
//! XOAUTH2 / OAUTHBEARER and Graph; `dkim` signs what goes through `smtp` and `mx`;
//! `health` turns attempts into the accounts' status; `sent_copy` files what `smtp`,
//! `microsoft365` and `google` sent in the account's Sent folder.
//!
//! A relay never touches the spool: it reports one outcome per recipient (or one error for
//! the whole attempt) and the spool decides what becomes durable.

pub mod dkim;
pub mod graph;
pub mod health;
pub mod maildir;
pub mod mx;
pub mod oauth;
pub mod sent_copy;
pub mod smtp;
pub mod warnings;

use crate::config::{Config, UpstreamConfig};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, so `Deliver` can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One delivery attempt of one message to one upstream.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// Queue id, for logs and unique file names.
    pub id: &'a str,
    /// Envelope sender; empty for the null sender `<>`.
    pub mail_from: &'a str,
    /// Recipients still to be delivered in this attempt.
    pub rcpts: &'a [String],
    /// The message as stored: header block (with our trace field) and body.
    pub data: &'a [u8],
    /// The message needs SMTPUTF8 from the upstream.
    pub smtputf8: bool,
    /// The message carries 8-bit content (BODY=8BITMIME).
    pub eight_bit: bool,
}

/// What the upstream said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    /// Accepted (2xx); the reply text is kept for the log.
    Delivered(String),
    /// Temporary refusal (4xx): try again later.
    Temporary(String),
    /// Permanent refusal (5xx): bounce.
    Permanent(String),
}

/// What kind of failure ended an attempt before per-recipient outcomes were known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Connect,
    Tls,
    Auth,
    Protocol,
    Timeout,
    Io,
    Rejected,
}

/// Which side caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Local,
    Upstream,
}

/// Whether an attempt that failed as a whole is worth repeating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again later (a 4xx, a dropped connection, a timeout).
    Later,
    /// Never (a 5xx to MAIL FROM or DATA, a configuration error).
    Never,
    /// Only if the failure happened on a reused pooled connection: retry at once on a fresh one.
    IfReused,
}

/// A failure of a whole delivery attempt.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?} ({side:?}): {message}")]
pub struct RelayError {
    pub kind: ErrorKind,
    pub side: Side,
    pub retry: Retry,
    pub message: String,
    /// The provider asked to wait this long before the next attempt (HTTP `Retry-After`,
    /// a throttling reply): the sending limits slow the mailbox down by it.
    pub retry_after: Option<std::time::Duration>,
}

impl RelayError {
    pub fn new(kind: ErrorKind, side: Side, retry: Retry, message: impl Into<String>) -> Self {
        RelayError {
            kind,
            side,
            retry,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, saying how long the provider asked to wait.
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// True if the message should stay queued and be tried again.
    pub fn is_temporary(&self) -> bool {
        self.retry != Retry::Never
    }
}

/// Delivers messages to one upstream.
pub trait Deliver: Send + Sync {
    /// Attempts delivery of `msg` to every recipient in `msg.rcpts`; the outcomes are in the
    /// same order as the recipients.
    fn deliver<'a>(
        &'a self,
        msg: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Vec<RcptOutcome>, RelayError>>;

    /// Whether this upstream's answers tell how the account is doing (`health`): true for
    /// a provider's or relay's submission host; false where they come from the
    /// recipients' own servers (`mx`) or from no server at all.
    fn judges_account(&self) -> bool {
        false
    }

    /// The largest message (octets, as stored) this upstream can take, when it has a
    /// limit of its own below the server's (`graph`: one request); `None`: no such limit.
    fn max_message_size(&self) -> Option<usize> {
        None
    }
}

/// What every upstream shares: the one HTTP client (token endpoints, Graph), where
/// credential warnings are raised, and where the use of refresh tokens is recorded.
#[derive(Clone)]
pub struct Shared {
    pub http: crate::net::http::Client,
    pub warnings: Arc<warnings::Warnings>,
    /// Where `smtp`, `microsoft365` and `google` upstreams record sent copies (none: no
    /// copies, as in tests and the CLI).
    pub sent_copies: Option<Arc<sent_copy::SentCopies>>,
    /// The store's record of refresh-token use (`oauth::watch`); none: kept in memory.
    pub refreshes: Option<crate::store::Refreshes>,
}

impl Shared {
    /// A client with a 30-second limit per request and warnings not exported (tests, CLI).
    pub fn standalone() -> Shared {
        Shared {
            http: crate::net::http::Client::new(std::time::Duration::from_secs(30))
                .expect("the default HTTP client builds"),
            warnings: warnings::Warnings::new(None),
            sent_copies: None,
            refreshes: None,
        }
    }
}

/// Every upstream by name.
pub type Upstreams = HashMap<String, Arc<dyn Deliver>>;

/// The upstreams in force: those of the config file plus those defined through the API,
/// swapped atomically when the API changes one. An upstream whose settings did not change
/// keeps its instance (and its pool of connections).
pub struct Relays {
    config: Config,
    current: ArcSwap<(Upstreams, BTreeMap<String, UpstreamConfig>)>,
    /// The inbound hook, under the reserved name `inbound::UPSTREAM`.
    inbound: std::sync::OnceLock<Arc<dyn Deliver>>,
    /// The DKIM keys `smtp` and `mx` upstreams sign with.
    signers: Arc<dkim::Signers>,
    shared: Shared,
}

impl Relays {
    /// Builds the config file's upstreams plus `stored` ones; `smtp` and `mx` ones sign
    /// with `signers`.
    pub fn new(
        config: &Config,
        stored: &[(String, UpstreamConfig)],
        signers: Arc<dkim::Signers>,
        shared: Shared,
    ) -> Result<Relays, RelayError> {
        let relays = Relays {
            config: config.clone(),
            current: ArcSwap::from_pointee((HashMap::new(), BTreeMap::new())),
            inbound: std::sync::OnceLock::new(),
            signers,
            shared,
        };
        relays.reload(stored)?;
        Ok(relays)
    }

    /// The upstream called `name` (the inbound hook for `inbound::UPSTREAM`).
    pub fn get(&self, name: &str) -> Option<Arc<dyn Deliver>> {
        if name == crate::inbound::UPSTREAM {
            return self.inbound.get().cloned();
        }
        self.current.load().0.get(name).cloned()
    }

    /// Installs the inbound hook (once, at start).
    pub fn set_inbound(&self, hook: Arc<dyn Deliver>) {
        let _ = self.inbound.set(hook);
    }

    /// The DKIM keys in force (the API reloads them after a change).
    pub fn signers(&self) -> &dkim::Signers {
        &self.signers
    }

    /// The HTTP client and warnings every upstream shares.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The largest message upstream `name` takes, and who sets that limit, when it has
    /// one of its own (the SMTP server refuses bigger mail for its accounts).
    pub fn size_limit(&self, name: &str) -> Option<(usize, &'static str)> {
        let current = self.current.load();
        let octets = current.0.get(name)?.max_message_size()?;
        let by = match current.1.get(name) {
            Some(UpstreamConfig::Graph(_)) => "Microsoft Graph",
            _ => "the upstream",
        };
        Some((octets, by))
    }

    /// Whether any upstream has a size limit of its own (most often none: no lookup).
    pub fn any_size_limit(&self) -> bool {
        self.current
            .load()
            .0
            .values()
            .any(|u| u.max_message_size().is_some())
    }

    /// Every upstream's name and settings.
    pub fn settings(&self) -> BTreeMap<String, UpstreamConfig> {
        self.current.load().1.clone()
    }

    /// The sending limits of upstream `name` (none for an unknown one): read from the
    /// settings in force without copying them, for every delivery.
    pub fn limits(&self, name: &str) -> crate::config::limits::UpstreamLimits {
        self.current
            .load()
            .1
            .get(name)
            .map_or_else(Default::default, UpstreamConfig::limits)
    }

    /// True if `name` comes from the config file (and cannot be changed through the API).
    pub fn from_config(&self, name: &str) -> bool {
        self.config.upstreams.contains_key(name)
    }

    /// Rebuilds the set from the config file plus `stored`; the config file wins a name.
    pub fn reload(&self, stored: &[(String, UpstreamConfig)]) -> Result<(), RelayError> {
        let mut wanted: BTreeMap<String, UpstreamConfig> = stored.iter().cloned().collect();
        wanted.extend(self.config.upstreams.clone());
        let old = self.current.load_full();
        let mut built: Upstreams = HashMap::new();
        for (name, settings) in &wanted {
            let keep = old.1.get(name) == Some(settings);
            let deliver = match (keep, old.0.get(name)) {
                (true, Some(existing)) => existing.clone(),
                _ => build(&self.config, name, settings, &self.signers, &self.shared)?,
            };
            built.insert(name.clone(), deliver);
        }
        self.current.store(Arc::new((built, wanted)));
        Ok(())
    }
}

/// Builds one upstream; `smtp` and `mx` ones sign with `signers`; all share `shared`.
pub fn build(
    config: &Config,
    name: &str,
    upstream: &UpstreamConfig,
    signers: &Arc<dkim::Signers>,
    shared: &Shared,
) -> Result<Arc<dyn Deliver>, RelayError> {
    let signing = |inner: Arc<dyn Deliver>| -> Arc<dyn Deliver> {
        Arc::new(dkim::Signing::new(inner, signers.clone()))
    };
    // The accounts' sent copies, recorded once the upstream accepted a message.
    let copying = |inner: Arc<dyn Deliver>| -> Arc<dyn Deliver> {
        match &shared.sent_copies {
            Some(copies) => Arc::new(sent_copy::Copying::new(inner, copies.clone())),
            None => inner,
        }
    };
    Ok(match upstream {
        UpstreamConfig::Maildir(maildir) => {
            let path = maildir
                .path
                .clone()
                .unwrap_or_else(|| config.data_dir.join("outbox"));
            Arc::new(maildir::Maildir::open(path)?)
        }
        // Inside the signing: the copy filed is the message as sent, signature included.
        UpstreamConfig::Smtp(settings) => signing(copying(Arc::new(
            smtp::SmtpUpstream::with_shared(name, settings, &config.hostname, shared)?,
        ))),
        // The providers sign with their own keys.
        UpstreamConfig::Microsoft365(_) | UpstreamConfig::Google(_) => {
            let settings = upstream.smtp().expect("a provider preset");
            copying(Arc::new(smtp::SmtpUpstream::with_shared(
                name,
                &settings,
                &config.hostname,
                shared,
            )?))
        }
        UpstreamConfig::Mx(mx) => signing(Arc::new(mx::MxRelay::new(
            name,
            mx,
            &config.dns,
            &config.hostname,
        )?)),
        UpstreamConfig::Graph(graph) => Arc::new(graph::GraphUpstream::new(name, graph, shared)?),
    })
}
