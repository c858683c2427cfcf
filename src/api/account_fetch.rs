//! The `inbound.fetch` settings of a helpdesk mailbox through the API (SPEC §7, `fetch`):
//! what makes them valid (each problem named by its field, `inbound.fetch.host`, …), and
//! the write-only password — never shown (`Account::without_secrets`), kept when a change
//! leaves it out while the server and login stay the same (a password is never sent to a
//! host it was not given for). Pure checks: nothing here writes.

use super::Problem;
use crate::config::UpstreamConfig;
use crate::relay::Relays;
use crate::store::{Account, After, Fetch, FetchAuth, FetchKind, OnBlocked, SentCopyTls};

/// Longest `poll_secs`: an hour.
const MAX_POLL_SECS: u64 = 3600;

/// IMAP and POP3 need a server, a login and credentials (a password, or XOAUTH2 with the
/// OAuth settings of the account's upstream, IMAP only); clear text only to a loopback
/// host. Graph needs a `graph` upstream. POP3 can neither move nor keep folders.
pub fn check(relays: &Relays, account: &Account) -> Result<(), Problem> {
    let Some(fetch) = account.inbound.as_ref().and_then(|i| i.fetch.as_ref()) else {
        return Ok(());
    };
    let upstream = relays.settings().get(&account.upstream).cloned();
    match fetch.kind {
        FetchKind::Graph => {
            if !matches!(upstream, Some(UpstreamConfig::Graph(_))) {
                return Err(invalid(
                    "kind",
                    format!(
                        "graph needs the account's upstream to be a graph upstream ({:?} is not)",
                        account.upstream
                    ),
                ));
            }
        }
        FetchKind::Imap | FetchKind::Pop3 => check_server(fetch, upstream.as_ref(), account)?,
    }
    check_actions(fetch)?;
    check_rest(fetch)
}

fn invalid(field: &str, reason: impl Into<String>) -> Problem {
    Problem::invalid(&format!("inbound.fetch.{field}"), reason)
}

/// Host, port, TLS, login and credentials of an IMAP or POP3 server.
fn check_server(
    fetch: &Fetch,
    upstream: Option<&UpstreamConfig>,
    account: &Account,
) -> Result<(), Problem> {
    let host = &fetch.host;
    if host.is_empty()
        || host.len() > 253
        || host.contains(|c: char| c.is_whitespace() || c.is_control() || "/@".contains(c))
    {
        return Err(invalid("host", "a host name or IP address"));
    }
    if fetch.port == Some(0) {
        return Err(invalid("port", "1-65535"));
    }
    if fetch.tls == SentCopyTls::None && !crate::net::wire::is_loopback(host) {
        return Err(invalid(
            "tls",
            "none only for a loopback host (localhost, 127.0.0.1, ::1)",
        ));
    }
    let username = &fetch.username;
    if username.is_empty() || username.len() > 320 || username.chars().any(char::is_control) {
        return Err(invalid("username", "is required (no control characters)"));
    }
    match fetch.auth {
        FetchAuth::Password => {
            if fetch
                .password
                .as_deref()
                .is_none_or(|p| p.is_empty() || p.chars().any(char::is_control))
            {
                return Err(invalid(
                    "password",
                    "is required (no control characters); kept only for the same host and login",
                ));
            }
        }
        FetchAuth::Xoauth2 if fetch.kind == FetchKind::Pop3 => {
            return Err(invalid("auth", "xoauth2 only for imap"));
        }
        FetchAuth::Xoauth2 => {
            if upstream
                .and_then(UpstreamConfig::smtp)
                .is_none_or(|s| s.oauth.is_none())
            {
                return Err(invalid(
                    "auth",
                    format!(
                        "xoauth2 needs OAuth settings on upstream {:?}",
                        account.upstream
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// What becomes of a message at the server, and the folders named for it.
fn check_actions(fetch: &Fetch) -> Result<(), Problem> {
    let pop3 = fetch.kind == FetchKind::Pop3;
    if pop3 && fetch.after == After::Move {
        return Err(invalid("after", "POP3 has no folders: seen or delete"));
    }
    if pop3 && fetch.on_blocked == Some(OnBlocked::Move) {
        return Err(invalid("on_blocked", "POP3 has no folders: delete"));
    }
    if fetch.after == After::Move && fetch.move_to.is_none() {
        return Err(invalid("move_to", "is required with after move"));
    }
    folder("folder", &fetch.folder)?;
    if let Some(to) = &fetch.move_to {
        folder("move_to", to)?;
    }
    folder("blocked_folder", &fetch.blocked_folder)
}

/// What a folder name may be.
pub const FOLDER_RULE: &str = "1-255 characters, no control characters";

/// A folder name: 1-255 characters, no control characters.
pub fn is_folder(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= 255 && !name.chars().any(char::is_control)
}

fn folder(field: &str, name: &str) -> Result<(), Problem> {
    match is_folder(name) {
        true => Ok(()),
        false => Err(invalid(field, FOLDER_RULE)),
    }
}

fn check_rest(fetch: &Fetch) -> Result<(), Problem> {
    if !(1..=MAX_POLL_SECS).contains(&fetch.poll_secs) {
        return Err(invalid("poll_secs", format!("1-{MAX_POLL_SECS} seconds")));
    }
    if fetch.ca_file.as_ref().is_some_and(|f| !f.starts_with('/')) {
        return Err(invalid("ca_file", "an absolute path"));
    }
    if let Some(id) = &fetch.authserv_id {
        let plausible = !id.is_empty()
            && id.len() <= 253
            && !id.starts_with(['.', '-'])
            && !id.ends_with('.')
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
        if !plausible {
            return Err(invalid(
                "authserv_id",
                "a host name such as mx.google.com (letters, digits, dots, hyphens)",
            ));
        }
    }
    Ok(())
}

/// Empty optional texts mean "not set"; the host without spaces around it.
pub fn tidy(account: &mut Account) {
    let Some(fetch) = account.inbound.as_mut().and_then(|i| i.fetch.as_mut()) else {
        return;
    };
    fetch.host = fetch.host.trim().to_string();
    fetch.username = fetch.username.trim().to_string();
    for field in [
        &mut fetch.move_to,
        &mut fetch.authserv_id,
        &mut fetch.ca_file,
    ] {
        if field.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *field = None;
        }
    }
}

/// Fetch settings changed without their password (the API never shows it) keep the stored
/// one — while kind, host and username stay the same (a new server needs it again).
pub fn keep_password(new: Option<&mut Fetch>, old: Option<&Fetch>) {
    let (Some(new), Some(old)) = (new, old) else {
        return;
    };
    let same_server = new.host.trim().eq_ignore_ascii_case(&old.host)
        && new.username.trim() == old.username
        && new.kind == old.kind;
    if new.password.is_none() && new.auth == FetchAuth::Password && same_server {
        new.password.clone_from(&old.password);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(host: &str, password: Option<&str>) -> Fetch {
        let mut json = serde_json::json!({"kind": "imap", "host": host, "username": "desk"});
        if let Some(p) = password {
            json["password"] = p.into();
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_password_left_out_is_kept_only_for_the_same_server() {
        let stored = fetch("imap.example.com", Some("old"));
        let mut same = fetch("IMAP.example.com", None);
        keep_password(Some(&mut same), Some(&stored));
        assert_eq!(same.password.as_deref(), Some("old"));
        let mut replaced = fetch("imap.example.com", Some("new"));
        keep_password(Some(&mut replaced), Some(&stored));
        assert_eq!(replaced.password.as_deref(), Some("new"));
        let mut elsewhere = fetch("imap.attacker.example", None);
        keep_password(Some(&mut elsewhere), Some(&stored));
        assert_eq!(elsewhere.password, None);
    }

    #[test]
    fn folders_and_authserv_ids_are_checked() {
        assert!(folder("folder", "Processed/2026").is_ok());
        assert!(folder("folder", "").is_err());
        assert!(folder("folder", "a\nb").is_err());
        assert!(folder("folder", &"x".repeat(256)).is_err());
        let mut f = fetch("h", Some("p"));
        f.authserv_id = Some("mx.google.com".into());
        assert!(check_rest(&f).is_ok());
        f.authserv_id = Some("mx google".into());
        assert!(check_rest(&f).is_err());
        f.authserv_id = None;
        f.poll_secs = 0;
        assert!(check_rest(&f).is_err());
    }
}
