//! `PATCH /api/v1/users/{id}`: changing a principal. Role, skill-group and group names
//! must exist; a caller can only reshape users no more powerful than itself and only hand
//! out roles whose permissions it holds, so `manage_users` never escalates to `admin`.
//! New passwords are hashed (argon2id) on a blocking thread before the change is locked in.

use super::extract::{blocking, nullable, Body, Param};
use super::problem::Problems;
use super::users::{check_email, UserView, MIN_PASSWORD, MIN_SECRET};
use super::{Api, Caller, Problem};
use crate::policy::{digest_secret, hash_password};
use crate::store::{Store, User, UserKind, UserStatus};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

/// Longest display name accepted.
const MAX_DISPLAY: usize = 200;

/// Body of `PATCH /api/v1/users/{id}`: every field optional; `group: null` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    display_name: Option<String>,
    email: Option<String>,
    roles: Option<Vec<String>>,
    skill_groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    group: Option<Option<String>>,
    status: Option<UserStatus>,
    password: Option<String>,
}

/// The new credential, already hashed.
enum Credential {
    Password(String),
    Secret(String),
}

/// `PATCH /api/v1/users/{id}` — permission `manage_users`, plus every permission the user
/// holds and every permission of the roles given to it.
#[utoipa::path(
    patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = u64, Path, description = "numeric id")), request_body = UserPatch,
    responses((status = 200, body = UserView), Problems)
)]
pub async fn patch(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
    Body(patch): Body<UserPatch>,
) -> Result<Json<UserView>, Problem> {
    caller.require("manage_users")?;
    let current = find(api.store(), id)?;
    caller.require_covers(&current)?;
    check_shape(&patch)?;
    let credential = credential(current.kind, patch.password.clone()).await?;
    let _change = api.write_lock().await;
    let mut user = find(api.store(), id)?;
    caller.require_covers(&user)?;
    let previous = user.clone();
    apply(&caller, api.store(), &mut user, patch, credential)?;
    let work = api.clone();
    let saved = user.clone();
    blocking(move || {
        work.store().users().update(&saved)?;
        work.reload()
    })
    .await?;
    let target = format!("user/{id}");
    api.audit(&caller, "user.update", target, Some(&previous), Some(&user))
        .await?;
    tracing::info!(login = %user.login, "user changed");
    Ok(Json(UserView::from(user)))
}

fn find(store: &Store, id: u64) -> Result<User, Problem> {
    store
        .users()
        .by_id(id)?
        .ok_or_else(|| Problem::not_found(format!("user {id}")))
}

fn check_shape(patch: &UserPatch) -> Result<(), Problem> {
    if let Some(name) = &patch.display_name {
        if name.chars().count() > MAX_DISPLAY || name.chars().any(char::is_control) {
            return Err(Problem::invalid(
                "display_name",
                format!("at most {MAX_DISPLAY} characters, no control characters"),
            ));
        }
    }
    if let Some(email) = &patch.email {
        check_email(email)?;
    }
    Ok(())
}

/// Hashes a new password (argon2id, off the async workers) or digests a system secret.
async fn credential(
    kind: UserKind,
    password: Option<String>,
) -> Result<Option<Credential>, Problem> {
    let Some(password) = password else {
        return Ok(None);
    };
    if kind == UserKind::System {
        if password.len() < MIN_SECRET {
            return Err(Problem::invalid(
                "password",
                format!("a system principal's secret needs at least {MIN_SECRET} characters"),
            ));
        }
        return Ok(Some(Credential::Secret(digest_secret(&password))));
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(Problem::invalid(
            "password",
            format!("needs at least {MIN_PASSWORD} characters"),
        ));
    }
    let hash = blocking(move || Ok(hash_password(&password)?)).await?;
    Ok(Some(Credential::Password(hash)))
}

/// Checks every name against the store and applies the patch to `user`; writes nothing.
fn apply(
    caller: &Caller,
    store: &Store,
    user: &mut User,
    patch: UserPatch,
    credential: Option<Credential>,
) -> Result<(), Problem> {
    if let Some(roles) = patch.roles {
        user.roles = checked_roles(caller, store, &user.roles, roles)?;
    }
    if let Some(groups) = patch.skill_groups {
        let mut names = Vec::new();
        for name in groups {
            let found = store.skill_groups().get(&name)?.ok_or_else(|| {
                Problem::invalid("skill_groups", format!("no skill group {name:?}"))
            })?;
            if !names.contains(&found.name) {
                names.push(found.name);
            }
        }
        user.skill_groups = names;
    }
    if let Some(group) = patch.group {
        user.group = match group {
            None => None,
            Some(name) => Some(
                store
                    .groups()
                    .get(&name)?
                    .ok_or_else(|| Problem::invalid("group", format!("no group {name:?}")))?
                    .name,
            ),
        };
    }
    if let Some(name) = patch.display_name {
        user.display_name = name;
    }
    if let Some(email) = patch.email {
        user.email = email;
    }
    if let Some(status) = patch.status {
        if user.status == UserStatus::Deactivated && status == UserStatus::Active {
            // What a later "latest" backup checks the mail configuration against (SPEC §8).
            user.reactivated_at_ms = Some(crate::spool::now_ms());
        }
        user.status = status;
    }
    match credential {
        Some(Credential::Password(hash)) => {
            user.password_hash = Some(hash);
            user.secret_sha256 = None;
        }
        Some(Credential::Secret(digest)) => {
            user.secret_sha256 = Some(digest);
            user.password_hash = None;
        }
        None => {}
    }
    Ok(())
}

/// The stored names of `wanted`; a role newly given needs every permission it carries.
fn checked_roles(
    caller: &Caller,
    store: &Store,
    current: &[String],
    wanted: Vec<String>,
) -> Result<Vec<String>, Problem> {
    let mut names: Vec<String> = Vec::new();
    for name in wanted {
        let role = store
            .roles()
            .get(&name)?
            .ok_or_else(|| Problem::invalid("roles", format!("no role {name:?}")))?;
        let new = !current.iter().any(|r| r.eq_ignore_ascii_case(&role.name));
        if new {
            for permission in &role.permissions {
                if !caller.has(permission) {
                    return Err(Problem::forbidden_for(
                        permission,
                        &format!("to give the role {}", role.name),
                    ));
                }
            }
        }
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&role.name)) {
            names.push(role.name);
        }
    }
    Ok(names)
}
