//! The `sent_copy` settings of an account through the API (SPEC §5, `relay::sent_copy`):
//! what makes them valid (each problem named by its field, `sent_copy.host`, …), and the
//! write-only password — never shown (`Account::without_secrets`), kept when a change
//! leaves it out. Pure checks: nothing here writes.

use super::Problem;
use crate::relay::Relays;
use crate::store::{Account, SentCopy, SentCopyAuth, SentCopyTls};

/// A sent copy needs an SMTP-based upstream (Graph files its own), an IMAP server and
/// folder, clear text only to a loopback host, and credentials: a password, or XOAUTH2
/// with the OAuth settings of the account's upstream.
pub fn check(relays: &Relays, account: &Account) -> Result<(), Problem> {
    let Some(copy) = &account.sent_copy else {
        return Ok(());
    };
    let Some(smtp) = relays
        .settings()
        .get(&account.upstream)
        .and_then(|u| u.smtp())
    else {
        return Err(Problem::invalid(
            "sent_copy",
            "only for accounts on an smtp, microsoft365 or google upstream",
        ));
    };
    let host = &copy.host;
    if host.is_empty()
        || host.len() > 253
        || host.contains(|c: char| c.is_whitespace() || c.is_control() || "/@".contains(c))
    {
        return Err(Problem::invalid(
            "sent_copy.host",
            "a host name or IP address",
        ));
    }
    if copy.port == 0 {
        return Err(Problem::invalid("sent_copy.port", "1-65535"));
    }
    if copy.tls == SentCopyTls::None && !crate::net::wire::is_loopback(host) {
        return Err(Problem::invalid(
            "sent_copy.tls",
            "none only for a loopback host (localhost, 127.0.0.1, ::1)",
        ));
    }
    let folder = &copy.folder;
    if folder.trim().is_empty()
        || folder.chars().count() > 255
        || folder.chars().any(char::is_control)
    {
        return Err(Problem::invalid(
            "sent_copy.folder",
            "1-255 characters, no control characters",
        ));
    }
    if copy.ca_file.as_ref().is_some_and(|f| !f.starts_with('/')) {
        return Err(Problem::invalid("sent_copy.ca_file", "an absolute path"));
    }
    let username = match &copy.auth {
        SentCopyAuth::Password { username, password } => {
            if password
                .as_deref()
                .is_none_or(|p| p.is_empty() || p.chars().any(char::is_control))
            {
                return Err(Problem::invalid(
                    "sent_copy.auth.password",
                    "is required (no control characters)",
                ));
            }
            username
        }
        SentCopyAuth::Xoauth2 { username } => {
            if smtp.oauth.is_none() {
                return Err(Problem::invalid(
                    "sent_copy.auth",
                    format!(
                        "xoauth2 needs OAuth settings on upstream {:?}",
                        account.upstream
                    ),
                ));
            }
            username
        }
    };
    if username.is_empty() || username.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "sent_copy.auth.username",
            "is required (no control characters)",
        ));
    }
    Ok(())
}

/// A sent copy changed without its password (the API never shows it) keeps the stored one.
pub fn keep_password(new: &mut Option<SentCopy>, old: &Option<SentCopy>) {
    let Some(SentCopy {
        auth: SentCopyAuth::Password { password, .. },
        ..
    }) = new
    else {
        return;
    };
    if let Some(SentCopy {
        auth: SentCopyAuth::Password {
            password: stored, ..
        },
        ..
    }) = old
    {
        if password.is_none() {
            password.clone_from(stored);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(password: Option<&str>) -> Option<SentCopy> {
        Some(SentCopy {
            host: "imap.example.com".into(),
            port: 993,
            tls: SentCopyTls::Implicit,
            folder: "Sent".into(),
            auth: SentCopyAuth::Password {
                username: "desk@example.com".into(),
                password: password.map(String::from),
            },
            ca_file: None,
        })
    }

    #[test]
    fn a_password_left_out_is_kept_and_a_new_one_replaces_it() {
        let stored = copy(Some("old"));
        let mut changed = copy(None);
        keep_password(&mut changed, &stored);
        assert_eq!(changed, stored);
        let mut replaced = copy(Some("new"));
        keep_password(&mut replaced, &stored);
        assert_eq!(replaced, copy(Some("new")));
    }
}
