//! DKIM keys (`/console/dkim`): the keys with the TXT record each needs published, a
//! form to create one, and per key Activate and Delete — all through `api::dkim` (admin
//! only). A key is created pending; activate it once its record is published.

use super::accounts::{body_of, wire};
use super::accounts_form::{status_of, Field};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::dkim::{self, DkimKeyView};
use crate::api::extract::Param;
use crate::api::{Api, Problem};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;
use serde_json::json;

/// The new-key form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct KeyForm {
    domain: String,
    algorithm: String,
    selector: String,
    activate: Option<String>,
}

/// One key as listed.
pub struct KeyRow {
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    pub status: String,
    pub created_by: String,
    pub record_name: String,
    pub record_value: String,
}

impl From<DkimKeyView> for KeyRow {
    fn from(key: DkimKeyView) -> KeyRow {
        KeyRow {
            algorithm: wire(&key.algorithm),
            status: wire(&key.status),
            domain: key.domain,
            selector: key.selector,
            created_by: key.created_by,
            record_name: key.dns.name,
            record_value: key.dns.value,
        }
    }
}

#[derive(Template)]
#[template(path = "console/admin/dkim.html")]
struct DkimPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    fields: Vec<Field>,
    form: KeyForm,
    errors: Errors,
}

async fn page(
    api: &Api,
    viewer: &Viewer,
    form: KeyForm,
    errors: Errors,
) -> Result<DkimPage, Problem> {
    let keys = dkim::list(viewer.caller(), State(api.clone())).await?;
    let e = &errors;
    let fields = vec![
        Field::new(
            ("domain", "Domain", "text"),
            &form.domain,
            "Mail whose From is at this domain is signed.",
            true,
            e,
        ),
        Field::new(
            ("selector", "Selector", "text"),
            &form.selector,
            "Empty: rsa-YYYYMMDD or ed25519-YYYYMMDD.",
            false,
            e,
        ),
    ];
    Ok(DkimPage {
        chrome: Chrome::new(viewer, "DKIM keys", "/console/dkim"),
        keys: keys.0.into_iter().map(KeyRow::from).collect(),
        fields,
        form,
        errors,
    })
}

/// `GET /console/dkim`.
pub async fn list(State(api): State<Api>, viewer: Viewer) -> Response {
    match page(&api, &viewer, KeyForm::default(), Errors::none()).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// `POST /console/dkim`.
pub async fn create(State(api): State<Api>, viewer: Viewer, Form(form): Form<KeyForm>) -> Response {
    let mut request = json!({
        "domain": form.domain,
        "activate": form.activate.is_some(),
    });
    if !form.algorithm.is_empty() {
        request["algorithm"] = json!(form.algorithm);
    }
    if !form.selector.trim().is_empty() {
        request["selector"] = json!(form.selector);
    }
    let created = match body_of(request) {
        Ok(body) => dkim::create(viewer.caller(), State(api.clone()), body).await,
        Err(problem) => Err(problem),
    };
    match created {
        Ok((_, key)) => {
            let notice = format!(
                "Key {} of {} created: publish its TXT record",
                key.0.selector, key.0.domain
            );
            redirect_with_notice(&api.state.console.settings, "/console/dkim", &notice)
        }
        Err(problem) => match page(&api, &viewer, form, Errors::from_problem(&problem)).await {
            Ok(shown) => html(status_of(&problem), &shown),
            Err(refused) => problem_page(&viewer, &refused),
        },
    }
}

/// `POST /console/dkim/{domain}/{selector}/activate`.
pub async fn activate(
    State(api): State<Api>,
    viewer: Viewer,
    Path(key): Path<(String, String)>,
) -> Response {
    let notice = format!("Key {} of {} activated", key.1, key.0);
    match dkim::activate(viewer.caller(), State(api.clone()), Param(key)).await {
        Ok(_) => redirect_with_notice(&api.state.console.settings, "/console/dkim", &notice),
        Err(problem) => problem_page(&viewer, &problem),
    }
}

/// `POST /console/dkim/{domain}/{selector}/delete`.
pub async fn remove(
    State(api): State<Api>,
    viewer: Viewer,
    Path(key): Path<(String, String)>,
) -> Response {
    let notice = format!("Key {} of {} deleted", key.1, key.0);
    match dkim::remove(viewer.caller(), State(api.clone()), Param(key)).await {
        Ok(_) => redirect_with_notice(&api.state.console.settings, "/console/dkim", &notice),
        Err(problem) => problem_page(&viewer, &problem),
    }
}
