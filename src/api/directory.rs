//! `/api/v1/skill-groups` and `/api/v1/groups`: named directory objects with a
//! description. One set of handlers serves both kinds (`Kind`). An object still in use (a
//! user's skill groups or group, an account's `permitted` scope) cannot be deleted (409).

use super::extract::{blocking, Body, Param};
use super::roles::check_name;
use super::{Api, Caller, Problem};
use crate::store::{Directory, Group, Named, Scope, SkillGroup, Store};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

/// A directory object kind the API manages.
pub trait Kind: Named + Send + Sync + 'static {
    /// How a problem names it ("skill group").
    const WHAT: &'static str;
    fn directory(store: &Store) -> &Directory<Self>;
    /// The object from a request's fields; 422 for a field this kind does not have.
    fn build(name: String, description: String, max_users: Option<u64>) -> Result<Self, Problem>;
    /// Who still uses the object `name`, if anyone.
    fn used_by(store: &Store, name: &str) -> Result<Option<String>, Problem>;
}

impl Kind for SkillGroup {
    const WHAT: &'static str = "skill group";

    fn directory(store: &Store) -> &Directory<Self> {
        store.skill_groups()
    }

    fn build(name: String, description: String, max_users: Option<u64>) -> Result<Self, Problem> {
        match max_users {
            Some(_) => Err(Problem::invalid(
                "max_users",
                "only groups have a member limit",
            )),
            None => Ok(SkillGroup { name, description }),
        }
    }

    fn used_by(store: &Store, name: &str) -> Result<Option<String>, Problem> {
        let same = |n: &String| n.eq_ignore_ascii_case(name);
        if let Some(user) = store
            .users()
            .all()?
            .into_iter()
            .find(|u| u.skill_groups.iter().any(same))
        {
            return Ok(Some(format!("user {}", user.login)));
        }
        Ok(store
            .accounts()
            .all()?
            .into_iter()
            .find(|a| matches!(&a.scope, Scope::Permitted { skill_groups, .. } if skill_groups.iter().any(same)))
            .map(|a| format!("account {:?}", a.name)))
    }
}

impl Kind for Group {
    const WHAT: &'static str = "group";

    fn directory(store: &Store) -> &Directory<Self> {
        store.groups()
    }

    fn build(name: String, description: String, max_users: Option<u64>) -> Result<Self, Problem> {
        Ok(Group {
            name,
            description,
            max_users,
        })
    }

    fn used_by(store: &Store, name: &str) -> Result<Option<String>, Problem> {
        Ok(store
            .users()
            .all()?
            .into_iter()
            .find(|u| {
                u.group
                    .as_deref()
                    .is_some_and(|g| g.eq_ignore_ascii_case(name))
            })
            .map(|u| format!("user {}", u.login)))
    }
}

/// Body of `POST`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    name: String,
    #[serde(default)]
    description: String,
    /// Groups only: most members (requesters created from mail beyond it join no group).
    max_users: Option<u64>,
}

/// `GET /api/v1/skill-groups`, `GET /api/v1/groups` — permission `manage_users`.
pub async fn list<T: Kind>(
    caller: Caller,
    State(api): State<Api>,
) -> Result<Json<Vec<T>>, Problem> {
    caller.require("manage_users")?;
    Ok(Json(T::directory(api.store()).all()?))
}

/// `POST /api/v1/skill-groups`, `POST /api/v1/groups` — permission `manage_users`. 409
/// if the name is taken.
pub async fn create<T: Kind>(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<NewEntry>,
) -> Result<(StatusCode, Json<T>), Problem> {
    caller.require("manage_users")?;
    let name = check_name("name", &body.name)?;
    if body.description.chars().count() > 1000 {
        return Err(Problem::invalid("description", "at most 1000 characters"));
    }
    let entry = T::build(name, body.description, body.max_users)?;
    let _change = api.write_lock().await;
    let work = api.clone();
    let saved = entry.clone();
    blocking(move || {
        T::directory(work.store()).create(&saved)?;
        work.reload()
    })
    .await?;
    let target = format!("{}/{}", T::WHAT.replace(' ', "_"), entry.name());
    let action = format!("{}.create", T::WHAT.replace(' ', "_"));
    api.audit(&caller, &action, target, None::<&()>, Some(&entry))
        .await?;
    tracing::info!(name = %entry.name(), kind = T::WHAT, "directory entry created");
    Ok((StatusCode::CREATED, Json(entry)))
}

/// `DELETE /api/v1/skill-groups/{name}`, `DELETE /api/v1/groups/{name}` — permission
/// `manage_users`. 409 while in use.
pub async fn remove<T: Kind>(
    caller: Caller,
    State(api): State<Api>,
    Param(name): Param<String>,
) -> Result<StatusCode, Problem> {
    caller.require("manage_users")?;
    let _change = api.write_lock().await;
    let entry = T::directory(api.store())
        .get(&name)?
        .ok_or_else(|| Problem::not_found(format!("{} {name:?}", T::WHAT)))?;
    if let Some(user) = T::used_by(api.store(), entry.name())? {
        return Err(Problem::conflict(format!(
            "{} {:?} is still used by {user}",
            T::WHAT,
            entry.name()
        )));
    }
    let work = api.clone();
    let removed = entry.clone();
    blocking(move || {
        T::directory(work.store()).remove(removed.name())?;
        work.reload()
    })
    .await?;
    let target = format!("{}/{}", T::WHAT.replace(' ', "_"), entry.name());
    let action = format!("{}.delete", T::WHAT.replace(' ', "_"));
    api.audit(&caller, &action, target, Some(&entry), None::<&()>)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
