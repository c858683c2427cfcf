//! `/api/v1/upstreams`: the upstreams in force (SPEC §5), those of the config file
//! (`"source": "config"`, read-only here) and those defined through the API (`"api"`).
//! Secrets (passwords, client secrets, refresh tokens) are never shown (`"[redacted]"`). A new upstream is built (`Relays::reload`) before
//! it is stored, so one that cannot be built is refused and nothing is written; after a
//! change the relays and then the policy snapshot are reloaded.

use super::extract::{blocking, Param};
use super::problem::Problems;
use super::roles::check_name;
use super::{Api, Caller, Problem};
use crate::config::UpstreamConfig;
use crate::store::{Store, StoredUpstream};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{Map, Value};

/// `GET /api/v1/upstreams` — permission `admin`.
#[utoipa::path(
    get, path = "/api/v1/upstreams", tag = "upstreams",
    responses((status = 200, body = [Object]), Problems)
)]
pub async fn list(caller: Caller, State(api): State<Api>) -> Result<Json<Vec<Value>>, Problem> {
    caller.require("admin")?;
    let relays = &api.state.relays;
    let views = relays
        .settings()
        .iter()
        .map(|(name, config)| view(name, config, relays.from_config(name)))
        .collect::<Result<_, _>>()?;
    Ok(Json(views))
}

/// One upstream as shown: its settings with `name` and `source`, every secret (password,
/// client secret, refresh token) redacted.
fn view(name: &str, config: &UpstreamConfig, from_config: bool) -> Result<Value, Problem> {
    let value = serde_json::to_value(config).map_err(Problem::internal)?;
    let mut value = super::audit::redact(value);
    if let Some(fields) = value.as_object_mut() {
        fields.insert("name".into(), name.into());
        let source = if from_config { "config" } else { "api" };
        fields.insert("source".into(), source.into());
    }
    Ok(value)
}

/// `POST /api/v1/upstreams` `{name, kind, ...settings}` — permission `admin`. 422 for bad
/// settings (an smtp upstream needs `host`), 409 for a name already in use.
#[utoipa::path(
    post, path = "/api/v1/upstreams", tag = "upstreams", request_body = Object,
    responses((status = 201, body = Object), Problems)
)]
pub async fn create(
    caller: Caller,
    State(api): State<Api>,
    super::extract::Body(body): super::extract::Body<Map<String, Value>>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require("admin")?;
    let (name, config) = parse(body)?;
    let _change = api.write_lock().await;
    let taken = api
        .state
        .relays
        .settings()
        .keys()
        .any(|n| n.eq_ignore_ascii_case(&name));
    if taken || api.store().upstreams().get(&name)?.is_some() {
        return Err(Problem::conflict(format!(
            "upstream {name:?} already exists"
        )));
    }
    let work = api.clone();
    let entry = StoredUpstream {
        name: name.clone(),
        config: config.clone(),
    };
    blocking(move || {
        let old = stored(work.store())?;
        let mut wanted = old.clone();
        wanted.push((entry.name.clone(), entry.config.clone()));
        work.state
            .relays
            .reload(&wanted)
            .map_err(|e| Problem::invalid("kind", format!("the upstream cannot be built: {e}")))?;
        if let Err(error) = work.store().upstreams().create(&entry) {
            restore(&work, &old);
            return Err(error.into());
        }
        work.reload()
    })
    .await?;
    let created = view(&name, &config, false)?;
    let target = format!("upstream/{name}");
    api.audit(
        &caller,
        "upstream.create",
        target,
        None::<&()>,
        Some(&created),
    )
    .await?;
    tracing::info!(upstream = %name, "upstream created");
    Ok((StatusCode::CREATED, Json(created)))
}

/// `DELETE /api/v1/upstreams/{name}` — permission `admin`. 409 for an upstream of the
/// config file or one an account still uses.
#[utoipa::path(
    delete, path = "/api/v1/upstreams/{name}", tag = "upstreams", params(("name" = String, Path, description = "name")),
    responses((status = 204), Problems)
)]
pub async fn remove(
    caller: Caller,
    State(api): State<Api>,
    Param(name): Param<String>,
) -> Result<StatusCode, Problem> {
    caller.require("admin")?;
    let _change = api.write_lock().await;
    if api.state.relays.from_config(&name) {
        return Err(Problem::conflict(format!(
            "upstream {name:?} comes from the config file; change it there"
        )));
    }
    let entry = api
        .store()
        .upstreams()
        .get(&name)?
        .ok_or_else(|| Problem::not_found(format!("upstream {name:?}")))?;
    if let Some(account) = api
        .store()
        .accounts()
        .all()?
        .into_iter()
        .find(|a| a.upstream.eq_ignore_ascii_case(&entry.name))
    {
        return Err(Problem::conflict(format!(
            "upstream {:?} is used by account {:?}",
            entry.name, account.name
        )));
    }
    let removed = view(&entry.name, &entry.config, false)?;
    let work = api.clone();
    blocking(move || {
        let old = stored(work.store())?;
        let wanted: Vec<_> = old
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(&entry.name))
            .cloned()
            .collect();
        work.state
            .relays
            .reload(&wanted)
            .map_err(Problem::internal)?;
        if let Err(error) = work.store().upstreams().remove(&entry.name) {
            restore(&work, &old);
            return Err(error.into());
        }
        work.reload()
    })
    .await?;
    let target = format!("upstream/{name}");
    api.audit(
        &caller,
        "upstream.delete",
        target,
        Some(&removed),
        None::<&()>,
    )
    .await?;
    tracing::info!(upstream = %name, "upstream removed");
    Ok(StatusCode::NO_CONTENT)
}

/// The name and settings of a `POST` body, validated.
fn parse(mut body: Map<String, Value>) -> Result<(String, UpstreamConfig), Problem> {
    let name = match body.remove("name") {
        Some(Value::String(name)) => check_name("name", &name)?,
        _ => return Err(Problem::invalid("name", "is required")),
    };
    if name.contains('@') {
        return Err(Problem::invalid(
            "name",
            "may not contain '@' (reserved for the inbound hook)",
        ));
    }
    if !body.contains_key("kind") {
        return Err(Problem::invalid(
            "kind",
            "is required (maildir, smtp, microsoft365, google, mx or graph)",
        ));
    }
    let smtp = body.get("kind").and_then(Value::as_str) == Some("smtp");
    if smtp && !body.get("host").is_some_and(Value::is_string) {
        return Err(Problem::invalid("host", "is required for an smtp upstream"));
    }
    let config: UpstreamConfig = serde_json::from_value(Value::Object(body))
        .map_err(|e| Problem::invalid("kind", format!("invalid upstream settings: {e}")))?;
    let graph = match &config {
        UpstreamConfig::Graph(graph) => graph.problem(),
        _ => None,
    };
    if let Some((field, reason)) = graph.or_else(|| config.smtp().and_then(|s| s.problem())) {
        return Err(Problem::invalid(field, reason));
    }
    Ok((name, config))
}

fn stored(store: &Store) -> Result<Vec<(String, UpstreamConfig)>, Problem> {
    Ok(store
        .upstreams()
        .all()?
        .into_iter()
        .map(|u| (u.name, u.config))
        .collect())
}

/// Puts the relays back as they were after a store write failed.
fn restore(api: &Api, old: &[(String, UpstreamConfig)]) {
    if let Err(error) = api.state.relays.reload(old) {
        tracing::error!(%error, "could not restore the upstreams after a failed change");
    }
}
