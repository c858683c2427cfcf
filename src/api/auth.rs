//! Bearer-token authentication and permissions: who is calling (`Caller`) and what it may
//! do. The bootstrap admin token comes from `POSTERN_ADMIN_TOKEN`, or is generated at first
//! start, printed once and stored only as a SHA-256 digest; it is checked in constant time
//! and stands for a synthetic admin with every permission. Any other token is a per-user
//! token (`tokens`); only an active user's token is accepted.
//!
//! Permissions come from the user's roles, read from the store per request (a few small
//! records), so no request waits for a rebuild of the policy snapshot; `admin` implies all.
//! This module decides who the caller is, never what a resource allows.

use super::{tokens, Api, Problem};
use crate::policy::new_secret;
use crate::policy::{digest_matches, digest_secret};
use crate::store::{Store, StoreError, User, UserStatus};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::collections::HashSet;

const SETTING: &str = "admin_token_sha256";

/// The digest of the admin token.
pub struct AdminToken {
    digest: String,
}

impl AdminToken {
    /// Uses `from_env` if given; otherwise the stored digest, or a new token that is
    /// returned (to be printed once) and stored hashed.
    pub fn init(
        store: &Store,
        from_env: Option<&str>,
    ) -> Result<(AdminToken, Option<String>), StoreError> {
        if let Some(token) = from_env.filter(|t| !t.is_empty()) {
            return Ok((
                AdminToken {
                    digest: digest_secret(token),
                },
                None,
            ));
        }
        if let Some(raw) = store.setting(SETTING)? {
            let digest = String::from_utf8(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            return Ok((AdminToken { digest }, None));
        }
        let token = format!("pst_{}", new_secret());
        let digest = digest_secret(&token);
        store.set_setting(SETTING, digest.as_bytes())?;
        Ok((AdminToken { digest }, Some(token)))
    }

    fn matches(&self, token: &str) -> bool {
        digest_matches(token, &self.digest)
    }
}

/// Every permission a role may carry (SPEC §9).
pub const PERMISSIONS: &[&str] = &[
    "admin",
    "shared_account_setup",
    "shared_mailbox_sync_setup",
    "block_unwanted_email",
    "delete_tickets",
    "manage_users",
    "view_queue",
    "manage_queue",
    "create_knowledge",
];

/// Extractor: who sent the request. A missing or unknown token, or the token of a user
/// who is not active, is refused with 401 before any handler runs. The console builds one
/// for the user of a session (`Caller::for_user`) and calls the same handlers with it.
#[derive(Clone)]
pub struct Caller {
    /// `None` for the bootstrap admin token.
    pub user: Option<User>,
    /// What the user's roles grant (empty for the bootstrap token, which holds them all).
    granted: HashSet<String>,
    /// When the token of this request expires (`None`: it does not).
    pub token_expires: Option<u64>,
    store: Store,
}

impl Caller {
    /// The caller for `user` (a console session's user), with what its roles grant.
    pub(crate) fn for_user(store: &Store, user: User) -> Result<Caller, Problem> {
        Ok(Caller {
            granted: granted_by_roles(store, &user)?,
            token_expires: None,
            user: Some(user),
            store: store.clone(),
        })
    }

    /// The calling user's id; `None` for the bootstrap admin.
    pub fn id(&self) -> Option<u64> {
        self.user.as_ref().map(|u| u.id)
    }

    /// The caller's login, or `admin-token` for the bootstrap token (for the audit log).
    pub fn name(&self) -> &str {
        self.user
            .as_ref()
            .map_or("admin-token", |u| u.login.as_str())
    }

    /// True if the caller holds `permission` (`admin` implies every one).
    pub fn has(&self, permission: &str) -> bool {
        match &self.user {
            None => true,
            Some(user) => {
                user.is_default_admin
                    || self.granted.contains("admin")
                    || self.granted.contains(permission)
            }
        }
    }

    /// True for the bootstrap token and holders of `admin`.
    pub fn is_admin(&self) -> bool {
        self.has("admin")
    }

    /// 403 naming `permission` unless the caller holds it.
    pub fn require(&self, permission: &str) -> Result<(), Problem> {
        match self.has(permission) {
            true => Ok(()),
            false => Err(Problem::forbidden(permission)),
        }
    }

    /// 403 unless the caller holds every permission `target` holds, so nobody can act
    /// as, or reshape, a user more powerful than itself.
    pub fn require_covers(&self, target: &User) -> Result<(), Problem> {
        let granted = granted_by_roles(&self.store, target)?;
        let wanted = granted
            .iter()
            .map(String::as_str)
            .chain(target.is_default_admin.then_some("admin"));
        for permission in wanted {
            if !self.has(permission) {
                return Err(Problem::forbidden_for(
                    permission,
                    &format!("to manage user {}", target.login),
                ));
            }
        }
        Ok(())
    }
}

impl FromRequestParts<Api> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Caller, Problem> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(Problem::unauthorized)?;
        let store = api.state.store.clone();
        if api.state.admin.matches(token) {
            return Ok(Caller {
                user: None,
                granted: HashSet::new(),
                token_expires: None,
                store,
            });
        }
        let (user_id, token_expires) =
            tokens::lookup(&api.state.store, token)?.ok_or_else(Problem::unauthorized)?;
        let user = api
            .state
            .store
            .users()
            .by_id(user_id)?
            .filter(|u| u.status == UserStatus::Active)
            .ok_or_else(Problem::unauthorized)?;
        Ok(Caller {
            granted: granted_by_roles(&store, &user)?,
            token_expires,
            user: Some(user),
            store,
        })
    }
}

/// Every permission `user`'s roles grant, read from the store (a few small records), so a
/// request never waits for a rebuild of the policy snapshot after a change.
fn granted_by_roles(store: &Store, user: &User) -> Result<HashSet<String>, Problem> {
    let mut granted = HashSet::new();
    for name in &user.roles {
        if let Some(role) = store.roles().get(name)? {
            granted.extend(role.permissions);
        }
    }
    Ok(granted)
}
