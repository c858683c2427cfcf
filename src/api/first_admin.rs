//! The first administrator (SPEC §4): at the first start of an installation that has no
//! default administrator yet, a staff user `admin` with `is_default_admin` is created, so
//! a person can sign in at once (the bootstrap token is for scripts). Its e-mail address
//! is `POSTERN_ADMIN_EMAIL`, else `admin@<hostname>`. Its password is
//! `POSTERN_ADMIN_PASSWORD` (hashed with argon2id off the async workers), else none: a
//! single-use "set your password" link (`/password/{token}`, the page requesters use) is
//! made and returned, to be printed once as the bootstrap token is. Its base is the
//! setting `public_url` once an administrator changed it, else the console's `public_url`
//! of the config file, else the API listener's address.
//!
//! A later start finds the default administrator and does nothing: no second user, no new
//! link. A lost link is replaced by setting the password with the bootstrap token
//! (`postern admin users set ID --password -`). This module never changes an existing user:
//! a user already called `admin` who is not the default administrator is left alone (a
//! warning says so) rather than promoted.

use super::users::MIN_PASSWORD;
use crate::inbound::LINK_LIFETIME_SECS;
use crate::policy::{digest_secret, hash_password, new_secret, Policy, PolicyError};
use crate::store::{
    AuditEntry, NewUser, PasswordLink, Settings, Store, StoreError, User, UserKind,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The login of the first administrator.
pub const LOGIN: &str = "admin";

/// Why the first administrator could not be created.
#[derive(Debug, thiserror::Error)]
pub enum FirstAdminError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("POSTERN_ADMIN_EMAIL {0:?} is not a valid mailbox (local@domain)")]
    Email(String),
    #[error("POSTERN_ADMIN_PASSWORD needs at least {MIN_PASSWORD} characters")]
    ShortPassword,
    #[error("first administrator: {0}")]
    Task(String),
}

/// What the environment says about the first administrator (`POSTERN_ADMIN_EMAIL`,
/// `POSTERN_ADMIN_PASSWORD`); empty values count as absent.
#[derive(Debug, Clone, Default)]
pub struct FirstAdmin {
    pub email: Option<String>,
    pub password: Option<String>,
}

impl FirstAdmin {
    /// Creates the administrator unless a default administrator exists. Returns the
    /// "set your password" link to print when one was made (no password was given).
    /// `hostname` makes the default address; `console_url` (the config's `[console]
    /// public_url`, may be empty) and `api` (the bound API address) are the link's bases
    /// when the setting `public_url` was never changed.
    pub async fn ensure(
        &self,
        store: &Store,
        policy: &Arc<Policy>,
        hostname: &str,
        console_url: &str,
        api: SocketAddr,
    ) -> Result<Option<String>, FirstAdminError> {
        let work = store.clone();
        let exists = blocking(move || {
            let users = work.users().all()?;
            Ok(users.iter().any(|u| u.is_default_admin))
        })
        .await?;
        if exists {
            return Ok(None);
        }
        let email = self.email()?.unwrap_or_else(|| default_email(hostname));
        let password_hash = match self.password.clone().filter(|p| !p.is_empty()) {
            Some(p) if p.chars().count() < MIN_PASSWORD => {
                return Err(FirstAdminError::ShortPassword)
            }
            Some(p) => Some(blocking(move || Ok(hash_password(&p)?)).await?),
            None => None,
        };
        let with_password = password_hash.is_some();
        let (work, snapshot) = (store.clone(), policy.clone());
        let created = blocking(move || {
            let user = create(&work, email, password_hash)?;
            snapshot.reload()?;
            Ok(user)
        });
        let Some(user) = created.await? else {
            return Ok(None);
        };
        tracing::info!(login = LOGIN, id = user.id, email = %user.email, with_password, "first administrator created");
        if with_password {
            return Ok(None);
        }
        let work = store.clone();
        let console_url = console_url.to_string();
        blocking(move || link(&work, user.id, &console_url, api))
            .await
            .map(Some)
    }

    /// `POSTERN_ADMIN_EMAIL`, if given; an invalid one stops the start.
    fn email(&self) -> Result<Option<String>, FirstAdminError> {
        let Some(email) = self
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            return Ok(None);
        };
        match crate::smtp::params::check_mailbox(email) {
            Ok(()) => Ok(Some(email.to_string())),
            Err(_) => Err(FirstAdminError::Email(email.to_string())),
        }
    }
}

/// `admin@<hostname>`, or `admin@localhost` when the host name makes no valid address.
fn default_email(hostname: &str) -> String {
    let email = format!("{LOGIN}@{}", hostname.trim_end_matches('.'));
    match crate::smtp::params::check_mailbox(&email) {
        Ok(()) => email,
        Err(_) => format!("{LOGIN}@localhost"),
    }
}

/// Creates the default administrator (and its audit entry); `None` if the login is taken.
fn create(
    store: &Store,
    email: String,
    password_hash: Option<String>,
) -> Result<Option<User>, FirstAdminError> {
    let new = NewUser {
        login: LOGIN.into(),
        email,
        display_name: "Administrator".into(),
        kind: Some(UserKind::Staff),
        password_hash,
        is_default_admin: true,
        ..NewUser::default()
    };
    let now = crate::spool::now_ms() / 1000;
    let user = match store.users().create(new, now) {
        Ok(user) => user,
        Err(StoreError::Conflict(_)) => {
            tracing::warn!(
                login = LOGIN,
                "no default administrator, and the login is taken by another user: none created"
            );
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    let mut after = serde_json::to_value(&user).ok();
    if let Some(serde_json::Value::Object(fields)) = &mut after {
        fields.remove("password_hash");
    }
    store.audit().record(AuditEntry {
        id: 0,
        at: now,
        actor_id: None,
        actor: "postern".into(),
        action: "user.create".into(),
        target: format!("user/{}", user.id),
        before: None,
        after,
    })?;
    Ok(Some(user))
}

/// Makes a single-use "set your password" link for `user`; its URL.
fn link(
    store: &Store,
    user: u64,
    console_url: &str,
    api: SocketAddr,
) -> Result<String, FirstAdminError> {
    let token = new_secret();
    let now = crate::spool::now_ms() / 1000;
    let link = PasswordLink {
        user,
        expires_at: now + LINK_LIFETIME_SECS,
    };
    store
        .password_links()
        .create(&digest_secret(&token), &link)?;
    let base = base(&store.settings()?.public_url, console_url, api);
    Ok(format!("{}/password/{token}", base.trim_end_matches('/')))
}

/// Where people reach Postern: the setting `public_url` once changed from its default, else
/// the console's address from the config file, else the API listener.
fn base(public_url: &str, console_url: &str, api: SocketAddr) -> String {
    let unset = public_url.is_empty() || public_url == Settings::default().public_url;
    match (unset, console_url.trim()) {
        (false, _) => public_url.to_string(),
        (true, "") => format!("http://{}", reachable(api)),
        (true, console) => console.to_string(),
    }
}

/// `api`, with an unspecified address (listening on all of them) as the loopback one.
fn reachable(api: SocketAddr) -> SocketAddr {
    match api.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), api.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), api.port())
        }
        _ => api,
    }
}

async fn blocking<T, F>(work: F) -> Result<T, FirstAdminError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, FirstAdminError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| FirstAdminError::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_bind_address_is_reached_on_the_loopback() {
        let any: SocketAddr = "0.0.0.0:8025".parse().unwrap();
        assert_eq!(reachable(any).to_string(), "127.0.0.1:8025");
        let any6: SocketAddr = "[::]:8025".parse().unwrap();
        assert_eq!(reachable(any6).to_string(), "[::1]:8025");
        let one: SocketAddr = "192.0.2.1:8025".parse().unwrap();
        assert_eq!(reachable(one), one);
    }

    #[test]
    fn the_default_address_is_on_the_host_name_when_that_makes_one() {
        assert_eq!(default_email("gw.example.com."), "admin@gw.example.com");
        assert_eq!(default_email("build_host"), "admin@localhost");
        assert_eq!(default_email(""), "admin@localhost");
        let given = |email: &str| FirstAdmin {
            email: Some(email.into()),
            password: None,
        };
        assert_eq!(
            given(" boss@example.com ").email().unwrap().as_deref(),
            Some("boss@example.com")
        );
        assert!(given("").email().unwrap().is_none());
        assert!(matches!(
            given("not an address").email(),
            Err(FirstAdminError::Email(_))
        ));
    }

    #[test]
    fn the_link_base_is_the_changed_setting_then_the_console_then_the_api() {
        let api: SocketAddr = "0.0.0.0:9025".parse().unwrap();
        let default = Settings::default().public_url;
        let set = "https://mail.example.com";
        let console = "https://console.example.com";
        assert_eq!(base(set, console, api), set);
        assert_eq!(base(&default, console, api), console);
        assert_eq!(base("", " ", api), "http://127.0.0.1:9025");
        assert_eq!(base(&default, "", api), "http://127.0.0.1:9025");
    }
}
