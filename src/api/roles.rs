//! `/api/v1/roles`: application security roles and the named permissions they carry
//! (SPEC §9). Only the known permissions (`auth::PERMISSIONS`) are accepted. A role still
//! held by a user or named by an account's grants or scope cannot be deleted (409), so no
//! reference ever dangles.

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem, PERMISSIONS};
use crate::store::{Grantee, Role, Scope, Store};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

/// Body of `POST /api/v1/roles` and `PUT /api/v1/roles/{name}` (where `name` may be left
/// out, and must match the path when given).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    name: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
}

/// `GET /api/v1/roles` — permission `admin`.
#[utoipa::path(
    get, path = "/api/v1/roles", tag = "roles",
    responses((status = 200, body = [Role]), Problems)
)]
pub async fn list(caller: Caller, State(api): State<Api>) -> Result<Json<Vec<Role>>, Problem> {
    caller.require("admin")?;
    Ok(Json(api.store().roles().all()?))
}

/// `GET /api/v1/roles/{name}` — permission `admin`.
#[utoipa::path(
    get, path = "/api/v1/roles/{name}", tag = "roles", params(("name" = String, Path, description = "name")),
    responses((status = 200, body = Role), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(name): Param<String>,
) -> Result<Json<Role>, Problem> {
    caller.require("admin")?;
    let role = api.store().roles().get(&name)?;
    role.map(Json)
        .ok_or_else(|| Problem::not_found(format!("role {name:?}")))
}

/// `POST /api/v1/roles` — permission `admin`. 409 if the name is taken.
#[utoipa::path(
    post, path = "/api/v1/roles", tag = "roles", request_body = RoleBody,
    responses((status = 201, body = Role), Problems)
)]
pub async fn create(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<RoleBody>,
) -> Result<(StatusCode, Json<Role>), Problem> {
    caller.require("admin")?;
    let name = body
        .name
        .ok_or_else(|| Problem::invalid("name", "is required"))?;
    let role = Role {
        name: check_name("name", &name)?,
        permissions: check_permissions(body.permissions)?,
    };
    let _change = api.write_lock().await;
    let work = api.clone();
    let saved = role.clone();
    blocking(move || {
        work.store().roles().create(&saved)?;
        work.reload()
    })
    .await?;
    let target = format!("role/{}", role.name);
    api.audit(&caller, "role.create", target, None::<&()>, Some(&role))
        .await?;
    tracing::info!(role = %role.name, "role created");
    Ok((StatusCode::CREATED, Json(role)))
}

/// `PUT /api/v1/roles/{name}` — permission `admin`. Replaces the permissions of an
/// existing role (404 otherwise).
#[utoipa::path(
    put, path = "/api/v1/roles/{name}", tag = "roles", params(("name" = String, Path, description = "name")), request_body = RoleBody,
    responses((status = 200, body = Role), Problems)
)]
pub async fn replace(
    caller: Caller,
    State(api): State<Api>,
    Param(name): Param<String>,
    Body(body): Body<RoleBody>,
) -> Result<Json<Role>, Problem> {
    caller.require("admin")?;
    if body
        .name
        .as_deref()
        .is_some_and(|n| !n.eq_ignore_ascii_case(&name))
    {
        return Err(Problem::invalid("name", "cannot differ from the path"));
    }
    let permissions = check_permissions(body.permissions)?;
    let _change = api.write_lock().await;
    let mut role = api
        .store()
        .roles()
        .get(&name)?
        .ok_or_else(|| Problem::not_found(format!("role {name:?}")))?;
    let previous = role.clone();
    role.permissions = permissions;
    let work = api.clone();
    let saved = role.clone();
    blocking(move || {
        work.store().roles().put(&saved)?;
        work.reload()
    })
    .await?;
    let target = format!("role/{}", role.name);
    api.audit(&caller, "role.update", target, Some(&previous), Some(&role))
        .await?;
    tracing::info!(role = %role.name, "role changed");
    Ok(Json(role))
}

/// `DELETE /api/v1/roles/{name}` — permission `admin`. 409 while anything uses the role.
#[utoipa::path(
    delete, path = "/api/v1/roles/{name}", tag = "roles", params(("name" = String, Path, description = "name")),
    responses((status = 204), Problems)
)]
pub async fn remove(
    caller: Caller,
    State(api): State<Api>,
    Param(name): Param<String>,
) -> Result<StatusCode, Problem> {
    caller.require("admin")?;
    let _change = api.write_lock().await;
    let role = api
        .store()
        .roles()
        .get(&name)?
        .ok_or_else(|| Problem::not_found(format!("role {name:?}")))?;
    if let Some(user) = api
        .store()
        .users()
        .all()?
        .into_iter()
        .find(|u| u.roles.iter().any(|r| r.eq_ignore_ascii_case(&role.name)))
    {
        return Err(Problem::conflict(format!(
            "role {:?} is held by user {}",
            role.name, user.login
        )));
    }
    if let Some(account) = account_using(api.store(), &role.name)? {
        return Err(Problem::conflict(format!(
            "role {:?} is named by account {account:?}",
            role.name
        )));
    }
    let work = api.clone();
    let name = role.name.clone();
    blocking(move || {
        work.store().roles().remove(&name)?;
        work.reload()
    })
    .await?;
    let target = format!("role/{}", role.name);
    api.audit(&caller, "role.delete", target, Some(&role), None::<&()>)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The name of an account whose grants or scope name role `name`.
fn account_using(store: &Store, name: &str) -> Result<Option<String>, Problem> {
    let same = |r: &String| r.eq_ignore_ascii_case(name);
    Ok(store
        .accounts()
        .all()?
        .into_iter()
        .find(|a| {
            let granted = a
                .grants
                .iter()
                .any(|g| matches!(&g.grantee, Grantee::Role(r) if same(r)));
            let scoped =
                matches!(&a.scope, Scope::Permitted { roles, .. } if roles.iter().any(same));
            granted || scoped
        })
        .map(|a| a.name))
}

/// A directory name: 1–64 characters, no control characters or `/`. Returned trimmed.
pub fn check_name(field: &str, name: &str) -> Result<String, Problem> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > 64
        || name.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(Problem::invalid(
            field,
            "must be 1-64 characters, no control characters or '/'",
        ));
    }
    Ok(name.to_string())
}

fn check_permissions(wanted: Vec<String>) -> Result<Vec<String>, Problem> {
    let mut permissions = Vec::new();
    for permission in wanted {
        if !PERMISSIONS.contains(&permission.as_str()) {
            return Err(Problem::invalid(
                "permissions",
                format!(
                    "unknown permission {permission:?}; known: {}",
                    PERMISSIONS.join(", ")
                ),
            ));
        }
        if !permissions.contains(&permission) {
            permissions.push(permission);
        }
    }
    Ok(permissions)
}
