//! `/api/v1/me`: the caller itself, and the accounts it may send through. The send mode
//! of each account comes from the policy's own decision (`policy::decide`), so this list
//! and SMTP submission can never disagree. Accounts with scope `system` are never listed
//! for a staff member (SPEC §2).

use super::problem::Problems;
use super::users::UserView;
use super::{Api, Caller, Problem, PERMISSIONS};
use crate::policy::{decide, right_name};
use crate::store::{Scope, UserKind};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

/// The caller: its user record (none for the bootstrap token) and its permissions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeView {
    /// The user's fields, flattened in (absent for the bootstrap token).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub user: Option<UserView>,
    /// True for the bootstrap admin token, which is not a user.
    pub bootstrap: bool,
    pub permissions: Vec<&'static str>,
}

/// An account the caller may send through, and how.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MyAccount {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub is_default: bool,
    /// The caller owns it (a personal account).
    pub owned: bool,
    /// `send_as`, `send_on_behalf`, or `send_as_self` (the default account).
    pub send_mode: &'static str,
    /// The address written to `From` when the caller sends through it.
    pub from: String,
}

/// `GET /api/v1/me` — any authenticated caller.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "me",
    responses((status = 200, body = MeView), Problems)
)]
pub async fn show(caller: Caller) -> Json<MeView> {
    let permissions = PERMISSIONS
        .iter()
        .copied()
        .filter(|p| caller.has(p))
        .collect();
    Json(MeView {
        bootstrap: caller.user.is_none(),
        user: caller.user.map(UserView::from),
        permissions,
    })
}

/// `GET /api/v1/me/accounts` — any authenticated user (404 for the bootstrap token, which
/// sends nothing).
#[utoipa::path(
    get, path = "/api/v1/me/accounts", tag = "me",
    responses((status = 200, body = [MyAccount]), Problems)
)]
pub async fn accounts(
    caller: Caller,
    State(api): State<Api>,
) -> Result<Json<Vec<MyAccount>>, Problem> {
    let Some(user) = caller.user else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "the bootstrap admin token is not a user and has no accounts",
        ));
    };
    let snapshot = api.snapshot();
    let mut mine = Vec::new();
    for account in snapshot.accounts() {
        if user.kind == UserKind::Staff && account.scope == Scope::System {
            continue;
        }
        let Ok(decision) = decide(&snapshot, user.id, &user.email, Some(&account.name)) else {
            continue;
        };
        if decision.account.id != account.id {
            continue;
        }
        mine.push(MyAccount {
            id: account.id,
            name: account.name.clone(),
            address: account.address.clone(),
            is_default: account.is_default,
            owned: account.owner == Some(user.id),
            send_mode: right_name(decision.right),
            from: decision.from_address().to_string(),
        });
    }
    Ok(Json(mine))
}
