//! Fetching a helpdesk mailbox's mail from the provider (SPEC §7, `fetch`): the settings
//! (`Fetch`, part of the mailbox's `inbound` settings; the password write-only through the
//! API) and what each mailbox's fetcher keeps durably (tree `fetch`: account id → `State`):
//! how far it got (IMAP: UIDVALIDITY and the highest UID recorded; POP3: the UIDLs
//! recorded and still on the server; Graph: the delta link), the messages recorded but not
//! yet acknowledged at the server, and the messages set aside with their reason.
//!
//! A message is recorded here (and its ticket, with its idempotence marks, in the ticket
//! store) before it is acknowledged at the server (marked seen, moved or deleted), so a
//! crash between the two acknowledges it again at the next start and never records it
//! twice.

use super::kv::{Kv, Tree};
use super::records::{decode, encode};
use super::{SentCopyTls, StoreError};
use serde::{Deserialize, Serialize};

const WHAT: &str = "fetch state";

/// Where a helpdesk mailbox's mail is fetched from, and what becomes of it at the server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fetch {
    pub kind: FetchKind,
    /// The IMAP or POP3 server (`outlook.office365.com`, `imap.gmail.com`); not for Graph.
    #[serde(default)]
    pub host: String,
    /// Default: 993 (IMAP) or 995 (POP3) with implicit TLS, 143 or 110 otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SentCopyTls,
    #[serde(default)]
    pub auth: FetchAuth,
    /// The login (IMAP, POP3); XOAUTH2 names the mailbox with it.
    #[serde(default)]
    pub username: String,
    /// For `auth = "password"`: write-only through the API (never shown; kept when a change
    /// leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The folder fetched (IMAP: `INBOX`; Graph: a well-known name such as `inbox`, or a
    /// top-level folder's display name). POP3 has only the one mailbox.
    #[serde(default = "Fetch::default_folder")]
    pub folder: String,
    /// What becomes of a message once recorded.
    #[serde(default)]
    pub after: After,
    /// The folder `after = "move"` moves to (created when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<String>,
    /// What becomes of a blocked sender's message: moved to `blocked_folder` (IMAP, Graph)
    /// or deleted. Default: moved, except POP3 (deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_blocked: Option<OnBlocked>,
    /// Where blocked senders' messages go (created when missing).
    #[serde(default = "Fetch::default_blocked_folder")]
    pub blocked_folder: String,
    /// The authserv-id of the provider's `Authentication-Results` field whose verdicts are
    /// taken (Google Workspace: `mx.google.com`). Unset: no field is trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authserv_id: Option<String>,
    /// Seconds between two looks when the server offers no IDLE (and for POP3, Graph).
    #[serde(default = "Fetch::default_poll_secs")]
    pub poll_secs: u64,
    /// PEM certificates trusted besides the public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetch")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("folder", &self.folder)
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl Fetch {
    fn default_folder() -> String {
        "INBOX".into()
    }

    fn default_blocked_folder() -> String {
        "Blocked".into()
    }

    fn default_poll_secs() -> u64 {
        60
    }

    /// The port, defaulted by kind and TLS.
    pub fn port(&self) -> u16 {
        let implicit = self.tls == SentCopyTls::Implicit;
        self.port.unwrap_or(match (self.kind, implicit) {
            (FetchKind::Pop3, true) => 995,
            (FetchKind::Pop3, false) => 110,
            (_, true) => 993,
            (_, false) => 143,
        })
    }

    /// What becomes of a blocked sender's message.
    pub fn on_blocked(&self) -> OnBlocked {
        self.on_blocked.unwrap_or(match self.kind {
            FetchKind::Pop3 => OnBlocked::Delete,
            _ => OnBlocked::Move,
        })
    }

    /// What the fetch state is kept for: a change of server, login or folder starts afresh.
    pub fn source(&self) -> String {
        format!(
            "{:?} {}:{} {} {}",
            self.kind,
            self.host.to_ascii_lowercase(),
            self.port(),
            self.username,
            self.folder
        )
    }
}

impl super::Account {
    /// What the account's fetch state is kept for (`Fetch::source`; Graph names no server
    /// or login, so the mailbox and upstream a delta link belongs to are added); `None`
    /// when it fetches nothing.
    pub fn fetch_source(&self) -> Option<String> {
        let fetch = self.inbound.as_ref()?.fetch.as_ref()?;
        Some(match fetch.kind {
            FetchKind::Graph => format!(
                "{} {} {}",
                fetch.source(),
                self.address.to_ascii_lowercase(),
                self.upstream
            ),
            _ => fetch.source(),
        })
    }
}

/// The protocol a mailbox is fetched with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FetchKind {
    Imap,
    Pop3,
    /// Microsoft Graph delta queries, with the OAuth settings of the account's `graph`
    /// upstream.
    Graph,
}

/// How an IMAP or POP3 session logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FetchAuth {
    #[default]
    Password,
    /// A token from the OAuth settings of the account's upstream (IMAP only).
    Xoauth2,
}

/// What becomes of a recorded message at the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum After {
    /// Marked `\Seen` (IMAP), read (Graph), left on the server (POP3).
    #[default]
    Seen,
    /// Moved to `move_to` (IMAP, Graph).
    Move,
    Delete,
}

/// What becomes of a blocked sender's message at the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnBlocked {
    Move,
    Delete,
}

/// A message that could not be fetched or read, set aside so the ones after it go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SetAside {
    /// The message at the server: its UID (IMAP), UIDL (POP3) or id (Graph).
    pub key: String,
    pub reason: String,
    /// How often it failed.
    pub attempts: u32,
    /// Unix seconds of the first failure and of the next try.
    pub since: u64,
    pub next_try: u64,
    /// Set through the API: move it to this folder (and forget it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_to: Option<String>,
}

/// What one mailbox's fetcher keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// `Fetch::source` of the settings this state is for.
    pub source: String,
    /// IMAP: the folder's UIDVALIDITY and the highest UID recorded or set aside.
    #[serde(default)]
    pub uidvalidity: u32,
    #[serde(default)]
    pub last_uid: u32,
    /// IMAP: the highest UID when the folder was first read (or read afresh after a
    /// UIDVALIDITY change): messages up to it that were already read then are the
    /// mailbox's history, never fetched.
    #[serde(default)]
    pub history_uid: u32,
    /// Unix seconds when this state began (Graph: messages received before it and already
    /// read are the mailbox's history).
    #[serde(default)]
    pub since: u64,
    /// IMAP: the last batch broke the session; the next one is read a message at a time.
    #[serde(default)]
    pub careful: bool,
    /// POP3: the UIDLs recorded and still on the server.
    #[serde(default)]
    pub uidls: Vec<String>,
    /// Graph: the delta link to continue from.
    #[serde(default)]
    pub delta_link: Option<String>,
    /// Recorded, not yet acknowledged at the server (key, and whether the sender was
    /// blocked: a blocked message goes to the blocked folder).
    #[serde(default)]
    pub unacked: Vec<(String, bool)>,
    #[serde(default)]
    pub set_aside: Vec<SetAside>,
}

/// What the API asks of a set-aside message (tree `fetch_requests`: account id and key →
/// request), carried out by the node that fetches the mailbox, which then removes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SetAsideRequest {
    /// Try it again now.
    Retry,
    /// Move it to this folder at the server and forget it.
    Move { folder: String },
}

/// The fetch states.
#[derive(Clone)]
pub struct FetchStates {
    tree: Tree,
    requests: Tree,
    kv: Kv,
}

impl FetchStates {
    pub(super) fn open(kv: &Kv) -> Result<FetchStates, StoreError> {
        Ok(FetchStates {
            tree: kv.open_tree("fetch")?,
            requests: kv.open_tree("fetch_requests")?,
            kv: kv.clone(),
        })
    }

    /// Asks account `id`'s fetcher to do `request` with set-aside message `key`; durable
    /// on return.
    pub fn request(&self, id: u64, key: &str, request: &SetAsideRequest) -> Result<(), StoreError> {
        self.requests
            .insert(request_key(id, key), encode(request)?)?;
        self.kv.flush()
    }

    /// The requests waiting for account `id`'s fetcher, by set-aside key.
    pub fn requests(&self, id: u64) -> Result<Vec<(String, SetAsideRequest)>, StoreError> {
        let mut out = Vec::new();
        for (key, raw) in self.requests.scan_prefix(id.to_be_bytes())? {
            let name = String::from_utf8_lossy(&key[8..]).into_owned();
            out.push((name, decode(&raw, "set-aside request")?));
        }
        Ok(out)
    }

    /// Removes a request carried out (not synced: carried out twice, a request does no harm).
    pub fn done(&self, id: u64, key: &str) -> Result<(), StoreError> {
        self.requests.remove(request_key(id, key))?;
        Ok(())
    }

    /// The state of account `id`'s fetcher, if any.
    pub fn get(&self, id: u64) -> Result<Option<State>, StoreError> {
        self.tree
            .get(id.to_be_bytes())?
            .map(|raw| decode(&raw, WHAT))
            .transpose()
    }

    /// Writes the state of account `id`'s fetcher; durable on return.
    pub fn put(&self, id: u64, state: &State) -> Result<(), StoreError> {
        self.tree.insert(id.to_be_bytes(), encode(state)?)?;
        self.kv.flush()
    }

    /// Forgets account `id`'s state (its fetch settings are gone).
    pub fn remove(&self, id: u64) -> Result<(), StoreError> {
        self.tree.remove(id.to_be_bytes())?;
        self.kv.flush()
    }
}

fn request_key(id: u64, key: &str) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(key.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(json: serde_json::Value) -> Fetch {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_follow_the_kind_and_tls() {
        let imap = fetch(serde_json::json!({"kind": "imap", "host": "h", "username": "u"}));
        assert_eq!(
            (imap.port(), imap.folder.as_str(), imap.after),
            (993, "INBOX", After::Seen)
        );
        assert_eq!(imap.on_blocked(), OnBlocked::Move);
        assert_eq!(imap.blocked_folder, "Blocked");
        let pop3 = fetch(serde_json::json!({"kind": "pop3", "host": "h", "tls": "starttls"}));
        assert_eq!((pop3.port(), pop3.on_blocked()), (110, OnBlocked::Delete));
    }

    #[test]
    fn unknown_fields_are_refused_and_the_password_is_not_debug_printed() {
        let bad = serde_json::from_value::<Fetch>(serde_json::json!({"kind": "imap", "hots": "h"}));
        assert!(bad.is_err());
        let with = fetch(serde_json::json!({"kind": "imap", "password": "s3cret"}));
        assert!(!format!("{with:?}").contains("s3cret"));
    }
}
