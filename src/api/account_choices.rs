//! `GET /api/v1/accounts/choices`: the names an account's form chooses from — upstreams,
//! roles, skill groups and staff users — for the callers who may set accounts up. The
//! lists of upstreams, roles and users are admin or `manage_users` resources; a holder of
//! `shared_account_setup` (or of the `setup` right on an account) still needs their names
//! to pick a scope, an owner or a grantee. Names only: no upstream settings, no
//! permissions, no user details beyond what a grant grid shows.

use super::account_rules::require_setup;
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::store::{UserKind, UserStatus};
use axum::extract::State;
use axum::Json;
use serde::Serialize;

/// A user an account can be given to, scoped to, or granted to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserChoice {
    pub id: u64,
    pub login: String,
    pub display_name: String,
    pub email: String,
    /// False for a deactivated or blocked user (kept so existing grants stay visible).
    pub active: bool,
}

/// The names an account's form chooses from.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct AccountChoices {
    pub upstreams: Vec<String>,
    pub roles: Vec<String>,
    pub skill_groups: Vec<String>,
    /// Staff users, by login.
    pub users: Vec<UserChoice>,
}

/// `GET /api/v1/accounts/choices` — `shared_account_setup` (admin implies it), or the
/// `setup` right on at least one account.
#[utoipa::path(
    get, path = "/api/v1/accounts/choices", tag = "accounts",
    responses((status = 200, body = AccountChoices), Problems)
)]
pub async fn choices(
    caller: Caller,
    State(api): State<Api>,
) -> Result<Json<AccountChoices>, Problem> {
    let store = api.store();
    if !caller.has("shared_account_setup") {
        let sets_up_one = store
            .accounts()
            .all()?
            .iter()
            .any(|a| require_setup(&caller, a).is_ok());
        if !sets_up_one {
            return Err(Problem::forbidden_for(
                "shared_account_setup",
                "(or a setup grant on an account) to list the names accounts choose from",
            ));
        }
    }
    let upstreams: Vec<String> = api.state.relays.settings().into_keys().collect();
    let mut users: Vec<UserChoice> = store
        .users()
        .all()?
        .into_iter()
        .filter(|u| u.kind == UserKind::Staff)
        .map(|u| UserChoice {
            id: u.id,
            active: u.status == UserStatus::Active,
            login: u.login,
            display_name: u.display_name,
            email: u.email,
        })
        .collect();
    users.sort_by(|a, b| a.login.cmp(&b.login));
    Ok(Json(AccountChoices {
        upstreams,
        roles: store.roles().all()?.into_iter().map(|r| r.name).collect(),
        skill_groups: store
            .skill_groups()
            .all()?
            .into_iter()
            .map(|g| g.name)
            .collect(),
        users,
    }))
}
