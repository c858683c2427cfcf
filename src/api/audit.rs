//! The audit log from the API's side: every change handler records who changed what, when,
//! and the object before and after (`Api::audit`), with every secret redacted; and
//! `GET /api/v1/audit` lists the entries (permission `admin`).
//!
//! An entry is written after its change is durable, so the log never shows a change that
//! did not happen; a crash between the two loses that one entry. A failure to write the
//! entry is logged as an error but does not turn the (done) change into an error answer,
//! which a client would retry.

use super::extract::{blocking, page_limit, QueryOf};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::store::{AuditEntry, AuditFilter};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Field names whose values never reach the log (matched as parts of the lower-cased key).
const SECRET_PARTS: &[&str] = &["password", "secret", "token", "private_key"];
/// What a secret value is replaced by.
pub const REDACTED: &str = "[redacted]";
/// Entries per page unless `limit` says otherwise, and the most a page holds.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// `value` with every secret-named field replaced by `REDACTED` (at any depth).
pub fn redact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let lower = key.to_lowercase();
                    let secret =
                        lower != "token_url" && SECRET_PARTS.iter().any(|p| lower.contains(p));
                    let value = match (secret, value) {
                        (true, Value::Null) => Value::Null,
                        (true, _) => Value::String(REDACTED.into()),
                        (false, value) => redact(value),
                    };
                    (key, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

/// The object as the log keeps it.
fn snapshot_of<T: Serialize>(object: Option<&T>) -> Option<Value> {
    object
        .and_then(|o| serde_json::to_value(o).ok())
        .map(redact)
}

/// The audit entry of a change made by `caller` (id given when it is recorded).
pub(super) fn entry_of<B: Serialize, A: Serialize>(
    caller: &Caller,
    action: &str,
    target: String,
    before: Option<&B>,
    after: Option<&A>,
) -> AuditEntry {
    AuditEntry {
        id: 0,
        at: crate::spool::now_ms() / 1000,
        actor_id: caller.id(),
        actor: caller.name().to_string(),
        action: action.to_string(),
        target,
        before: snapshot_of(before),
        after: snapshot_of(after),
    }
}

impl Api {
    /// Records a change made by `caller`: `action` as `resource.verb`, `target` as
    /// `resource/id`. Durable on return (or logged as an error if it cannot be written).
    pub(super) async fn audit<B: Serialize, A: Serialize>(
        &self,
        caller: &Caller,
        action: &str,
        target: String,
        before: Option<&B>,
        after: Option<&A>,
    ) -> Result<(), Problem> {
        let entry = entry_of(caller, action, target, before, after);
        let store = self.store().clone();
        let written = blocking(move || Ok(store.audit().record(entry)?)).await;
        if let Err(problem) = written {
            tracing::error!(
                action,
                actor = caller.name(),
                ?problem,
                "audit entry not written"
            );
            // Never a success for a change whose trail is not on disk.
            return Err(Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("the change was made but its audit entry could not be written ({}); check the store's disk", problem.detail),
            ));
        }
        Ok(())
    }
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<u64>,
    /// Entries with a smaller id, newest first (the newest page: a large number).
    before: Option<u64>,
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/audit` — permission `admin`. Oldest first; page on with `after` = the last
/// id seen; or newest first with `before` (page on with the last id seen). `action` is exact, or a resource prefix ending in a dot (`user.`).
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = [AuditEntry]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
    QueryOf(query): QueryOf<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, Problem> {
    caller.require("admin")?;
    let limit = page_limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let filter = AuditFilter {
        after: query.after,
        before: query.before,
        actor: query.actor,
        action: query.action,
        target: query.target,
        limit,
    };
    let store = api.store().clone();
    Ok(Json(
        blocking(move || Ok(store.audit().list(&filter)?)).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_nulls_stay_null() {
        let user = serde_json::json!({
            "login": "alice",
            "password_hash": "$argon2id$...",
            "secret_sha256": null,
            "tokens": [{"name": "ci", "token_sha256": "abc"}],
            "upstream": {"host": "smtp.example", "client_secret": "s3cret", "port": 587},
        });
        let redacted = redact(user);
        assert_eq!(redacted["login"], "alice");
        assert_eq!(redacted["password_hash"], REDACTED);
        assert_eq!(redacted["secret_sha256"], Value::Null);
        assert_eq!(redacted["tokens"], REDACTED);
        assert_eq!(redacted["upstream"]["client_secret"], REDACTED);
        assert_eq!(redacted["upstream"]["port"], 587);
        assert!(!redacted.to_string().contains("s3cret"));
    }
}
