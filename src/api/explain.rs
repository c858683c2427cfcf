//! `POST /api/v1/policy/explain` (SPEC §3.4): what a submission by a user with a given
//! header `From` (and optional `X-Postern-Account`) would get — the account, the send
//! mode, the rule trail and the rewrite, or the refusal and its SMTP reply. It reads the
//! policy snapshot in force, the same one the next SMTP session uses.

use super::extract::Body;
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::policy::{explain as policy_explain, Explanation};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

/// A user named by login or id.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum UserRef {
    Id(u64),
    Login(String),
}

/// Body of `POST /api/v1/policy/explain`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    user: UserRef,
    from: String,
    /// The value an `X-Postern-Account` header would carry.
    account: Option<String>,
}

/// `POST /api/v1/policy/explain` — permission `shared_account_setup` (admin implies it).
/// 200 with the explanation even when the verdict is a refusal; 404 for an unknown user.
#[utoipa::path(
    post, path = "/api/v1/policy/explain", tag = "policy", request_body = ExplainRequest,
    responses((status = 200, body = Explanation), Problems)
)]
pub async fn explain(
    caller: Caller,
    State(api): State<Api>,
    Body(request): Body<ExplainRequest>,
) -> Result<Json<Explanation>, Problem> {
    caller.require("shared_account_setup")?;
    let users = api.store().users();
    let user = match &request.user {
        UserRef::Id(id) => users.by_id(*id)?,
        UserRef::Login(login) => match users.by_login(login)? {
            Some(user) => Some(user),
            None => match login.trim().parse::<u64>() {
                Ok(id) => users.by_id(id)?,
                Err(_) => None,
            },
        },
    };
    let Some(user) = user else {
        let named = match &request.user {
            UserRef::Id(id) => id.to_string(),
            UserRef::Login(login) => format!("{login:?}"),
        };
        return Err(Problem::not_found(format!("user {named}")));
    };
    let snapshot = api.snapshot();
    let from = request.from.trim();
    let hint = request.account.as_deref().filter(|a| !a.trim().is_empty());
    Ok(Json(policy_explain(&snapshot, user.id, from, hint)))
}
