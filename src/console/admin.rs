//! The administrators' pages of the gateway itself: upstreams (`/console/upstreams`: list,
//! create, delete through `api::upstreams`), the organisation settings
//! (`/console/settings`, through `api::settings`), and the routes of the DKIM keys
//! (`admin_dkim`). The API requires `admin` for each; the console only shows its answer.

use super::accounts::{body_of, wire};
use super::accounts_form::{status_of, Field};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::{admin_dkim, Viewer};
use crate::api::extract::Param;
use crate::api::{settings, upstreams, Api, Problem};
use crate::store::Settings;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The routes of upstreams, DKIM keys and settings.
pub fn routes() -> Router<Api> {
    Router::new()
        .route(
            "/console/upstreams",
            get(upstream_list).post(upstream_create),
        )
        .route("/console/upstreams/{name}/delete", post(upstream_remove))
        .route(
            "/console/dkim",
            get(admin_dkim::list).post(admin_dkim::create),
        )
        .route(
            "/console/dkim/{domain}/{selector}/activate",
            post(admin_dkim::activate),
        )
        .route(
            "/console/dkim/{domain}/{selector}/delete",
            post(admin_dkim::remove),
        )
        .route("/console/settings", get(settings_show).post(settings_save))
}

/// The new-upstream form: the settings most upstreams need; empty fields are left out, so
/// each kind's defaults apply.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UpstreamForm {
    name: String,
    kind: String,
    host: String,
    port: String,
    tls: String,
    auth: String,
    username: String,
    password: String,
    path: String,
    tenant: String,
    client_id: String,
    client_secret: String,
    refresh_token: String,
}

impl UpstreamForm {
    /// The API's body: `name`, `kind` and every field filled in.
    fn to_json(&self) -> Result<Value, Problem> {
        let mut body = Map::new();
        for (key, value) in [
            ("name", &self.name),
            ("kind", &self.kind),
            ("host", &self.host),
            ("tls", &self.tls),
            ("auth", &self.auth),
            ("username", &self.username),
            ("password", &self.password),
            ("path", &self.path),
            ("tenant", &self.tenant),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("refresh_token", &self.refresh_token),
        ] {
            let value = match key {
                "password" | "client_secret" | "refresh_token" => value.as_str(),
                _ => value.trim(),
            };
            if !value.is_empty() {
                body.insert(key.into(), json!(value));
            }
        }
        if !self.port.trim().is_empty() {
            let port: u16 = self
                .port
                .trim()
                .parse()
                .map_err(|_| Problem::invalid("port", "a port number (1-65535)"))?;
            body.insert("port".into(), json!(port));
        }
        Ok(Value::Object(body))
    }
}

/// One upstream as listed.
pub struct UpstreamRow {
    pub name: String,
    pub kind: String,
    /// `config` (read-only here) or `api`.
    pub source: String,
    /// Where it delivers: host and port, a folder, a tenant.
    pub target: String,
}

impl UpstreamRow {
    fn of(view: &Value) -> UpstreamRow {
        let text = |key: &str| match view.get(key) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let kind = text("kind");
        let target = match kind.as_str() {
            "smtp" => format!("{}:{}", text("host"), text("port")),
            "maildir" => match text("path") {
                path if path.is_empty() => "the data directory's outbox".into(),
                path => path,
            },
            "microsoft365" => format!("tenant {}", text("tenant")),
            "graph" => format!("Microsoft Graph, tenant {}", text("tenant")),
            "google" => text("username"),
            "mx" => "each domain's MX hosts".into(),
            _ => String::new(),
        };
        UpstreamRow {
            name: text("name"),
            source: text("source"),
            kind,
            target,
        }
    }
}

#[derive(Template)]
#[template(path = "console/admin/upstreams.html")]
struct UpstreamsPage {
    chrome: Chrome,
    rows: Vec<UpstreamRow>,
    fields: Vec<Field>,
    kind: String,
    tls: String,
    auth: String,
    errors: Errors,
}

/// The list and the form; `Err` when the API refuses the viewer.
async fn upstreams_page(
    api: &Api,
    viewer: &Viewer,
    form: &UpstreamForm,
    errors: Errors,
) -> Result<UpstreamsPage, Problem> {
    let listed = upstreams::list(viewer.caller(), State(api.clone())).await?;
    let e = &errors;
    let fields = vec![
        Field::new(
            ("name", "Name", "text"),
            &form.name,
            "Accounts name their upstream by it.",
            true,
            e,
        ),
        Field::new(
            ("host", "Host", "text"),
            &form.host,
            "smtp: the relay's host name (others: an optional override).",
            false,
            e,
        ),
        Field::new(
            ("port", "Port", "text"),
            &form.port,
            "Empty: the kind's default (587 for smtp).",
            false,
            e,
        ),
        Field::new(
            ("username", "User name", "text"),
            &form.username,
            "The login at the upstream, or the mailbox an OAuth2 token is for.",
            false,
            e,
        ),
        Field::new(
            ("password", "Password", "password"),
            "",
            "Kept secret: never shown again.",
            false,
            e,
        ),
        Field::new(
            ("path", "Maildir folder", "text"),
            &form.path,
            "maildir: empty for the data directory's outbox.",
            false,
            e,
        ),
        Field::new(
            ("tenant", "Tenant", "text"),
            &form.tenant,
            "microsoft365 and graph: the directory (tenant) id or domain.",
            false,
            e,
        ),
        Field::new(
            ("client_id", "OAuth2 client id", "text"),
            &form.client_id,
            "microsoft365, graph and google.",
            false,
            e,
        ),
        Field::new(
            ("client_secret", "OAuth2 client secret", "password"),
            "",
            "Kept secret: never shown again.",
            false,
            e,
        ),
        Field::new(
            ("refresh_token", "OAuth2 refresh token", "password"),
            "",
            "google, or the delegated flow of microsoft365.",
            false,
            e,
        ),
    ];
    Ok(UpstreamsPage {
        chrome: Chrome::new(viewer, "Upstreams", "/console/upstreams"),
        rows: listed.0.iter().map(UpstreamRow::of).collect(),
        fields,
        kind: form.kind.clone(),
        tls: form.tls.clone(),
        auth: form.auth.clone(),
        errors,
    })
}

/// `GET /console/upstreams`.
async fn upstream_list(State(api): State<Api>, viewer: Viewer) -> Response {
    let form = UpstreamForm {
        kind: "smtp".into(),
        ..UpstreamForm::default()
    };
    match upstreams_page(&api, &viewer, &form, Errors::none()).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// `POST /console/upstreams`.
async fn upstream_create(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<UpstreamForm>,
) -> Response {
    let created = match form.to_json().and_then(body_of) {
        Ok(body) => upstreams::create(viewer.caller(), State(api.clone()), body).await,
        Err(problem) => Err(problem),
    };
    let problem = match created {
        Ok(_) => {
            let notice = format!("Upstream {} created", form.name.trim());
            return redirect_with_notice(
                &api.state.console.settings,
                "/console/upstreams",
                &notice,
            );
        }
        Err(problem) => problem,
    };
    match upstreams_page(&api, &viewer, &form, Errors::from_problem(&problem)).await {
        Ok(page) => html(status_of(&problem), &page),
        Err(refused) => problem_page(&viewer, &refused),
    }
}

/// `POST /console/upstreams/{name}/delete`.
async fn upstream_remove(
    State(api): State<Api>,
    viewer: Viewer,
    Path(name): Path<String>,
) -> Response {
    match upstreams::remove(viewer.caller(), State(api.clone()), Param(name.clone())).await {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            "/console/upstreams",
            &format!("Upstream {name} deleted"),
        ),
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// The settings form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SettingsForm {
    allow_personal_accounts: Option<String>,
    /// One per line (or separated by commas or spaces).
    org_domains: String,
    public_url: String,
    max_users: String,
    display_name_addresses: String,
}

impl SettingsForm {
    fn of(settings: &Settings) -> SettingsForm {
        SettingsForm {
            allow_personal_accounts: settings.allow_personal_accounts.then(|| "on".into()),
            org_domains: settings.org_domains.join("\n"),
            public_url: settings.public_url.clone(),
            max_users: settings
                .max_users
                .map(|m| m.to_string())
                .unwrap_or_default(),
            display_name_addresses: wire(&settings.display_name_addresses),
        }
    }

    /// The API's patch: every setting (an empty public URL or mode is left as it is).
    fn to_json(&self) -> Result<Value, Problem> {
        let domains: Vec<&str> = self
            .org_domains
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|d| !d.is_empty())
            .collect();
        let max_users = match self.max_users.trim() {
            "" => Value::Null,
            n => json!(n.parse::<u64>().map_err(|_| Problem::invalid(
                "max_users",
                "a whole number, or empty for no limit"
            ))?),
        };
        let mut body = json!({
            "allow_personal_accounts": self.allow_personal_accounts.is_some(),
            "org_domains": domains,
            "max_users": max_users,
        });
        if !self.display_name_addresses.is_empty() {
            body["display_name_addresses"] = json!(self.display_name_addresses);
        }
        if !self.public_url.trim().is_empty() {
            body["public_url"] = json!(self.public_url.trim());
        }
        Ok(body)
    }
}

#[derive(Template)]
#[template(path = "console/admin/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    form: SettingsForm,
    fields: Vec<Field>,
    modes: &'static [(&'static str, &'static str)],
    errors: Errors,
}

/// What a display name carrying another address gets: (value, label).
const DISPLAY_NAME_MODES: &[(&str, &str)] = &[
    ("strip", "Strip: replaced by the account's or user's name"),
    ("allow", "Allow: left as the client wrote it"),
    ("refuse", "Refuse: the message is refused (550 5.7.1)"),
];

fn settings_page(viewer: &Viewer, form: SettingsForm, errors: Errors) -> SettingsPage {
    let e = &errors;
    let fields = vec![
        Field::new(
            ("org_domains", "Organisation domains", "textarea"),
            &form.org_domains,
            "The organisation's own mail domains, one per line.",
            false,
            e,
        ),
        Field::new(
            ("public_url", "Public URL", "url"),
            &form.public_url,
            "The base of links Postern sends (password pages), e.g. https://mail.example.com.",
            false,
            e,
        ),
        Field::new(
            ("max_users", "Most users", "text"),
            &form.max_users,
            "Empty: no limit.",
            false,
            e,
        ),
    ];
    SettingsPage {
        chrome: Chrome::new(viewer, "Settings", "/console/settings"),
        form,
        fields,
        modes: DISPLAY_NAME_MODES,
        errors,
    }
}

/// `GET /console/settings`.
async fn settings_show(State(api): State<Api>, viewer: Viewer) -> Response {
    match settings::show(viewer.caller(), State(api.clone())).await {
        Ok(current) => {
            let page = settings_page(&viewer, SettingsForm::of(&current.0), Errors::none());
            html(StatusCode::OK, &page)
        }
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// `POST /console/settings`.
async fn settings_save(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<SettingsForm>,
) -> Response {
    let saved = match form.to_json().and_then(body_of) {
        Ok(body) => settings::patch(viewer.caller(), State(api.clone()), body).await,
        Err(problem) => Err(problem),
    };
    match saved {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            "/console/settings",
            "Settings saved",
        ),
        Err(problem) if problem.status == 403 => problem_page(&viewer, &problem),
        Err(problem) => {
            let page = settings_page(&viewer, form, Errors::from_problem(&problem));
            html(status_of(&problem), &page)
        }
    }
}
