//! Webhooks (`/console/webhooks`): the list, creating one (its signing secret is shown
//! once, on the page that answers the form), deleting one; a webhook's deliveries
//! (`/console/webhooks/{id}`: status, attempts, the last answer) with **Retry** on a dead
//! one. All through `api::webhooks` as the session's user.

use super::helpdesk::{body_of, number, page_number, paginate, staff_only, when, Pager};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Body, Param};
use crate::api::webhooks::{self, WebhookView};
use crate::api::{Api, Problem};
use crate::store::DeliveryStatus;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;

/// The routes of this page group.
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/console/webhooks", get(list).post(create))
        .route("/console/webhooks/{id}", get(show))
        .route("/console/webhooks/{id}/delete", post(remove))
        .route(
            "/console/webhooks/{id}/deliveries/{delivery}/retry",
            post(retry),
        )
}

/// The create form (kept when refused).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewForm {
    name: String,
    url: String,
    secret: String,
    max_attempts: String,
}

#[derive(Template)]
#[template(path = "console/helpdesk/webhooks.html")]
struct ListPage {
    chrome: Chrome,
    errors: Errors,
    hooks: Vec<WebhookView>,
    form: NewForm,
    /// The webhook just created, with its secret (shown this once).
    created: Option<WebhookView>,
}

/// `GET /console/webhooks`.
async fn list(State(api): State<Api>, viewer: Viewer) -> Response {
    let form = NewForm::default();
    list_page(&api, &viewer, form, None, StatusCode::OK, Errors::none()).await
}

async fn list_page(
    api: &Api,
    viewer: &Viewer,
    form: NewForm,
    created: Option<WebhookView>,
    status: StatusCode,
    errors: Errors,
) -> Response {
    if let Some(refused) = staff_only(viewer) {
        return refused;
    }
    let hooks = match webhooks::list(viewer.caller(), State(api.clone())).await {
        Ok(hooks) => hooks.0,
        Err(problem) => return problem_page(viewer, &problem),
    };
    let page = ListPage {
        chrome: Chrome::new(viewer, "Webhooks", "/console/webhooks"),
        errors,
        hooks,
        form,
        created,
    };
    html(status, &page)
}

/// `POST /console/webhooks`: creates one and shows its secret once.
async fn create(State(api): State<Api>, viewer: Viewer, Form(form): Form<NewForm>) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    let created = match new_webhook(&form) {
        Ok(body) => webhooks::create(viewer.caller(), State(api.clone()), Body(body)).await,
        Err(problem) => Err(problem),
    };
    match created {
        Ok((_, hook)) => {
            let form = NewForm::default();
            list_page(
                &api,
                &viewer,
                form,
                Some(hook.0),
                StatusCode::CREATED,
                Errors::none(),
            )
            .await
        }
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = Errors::from_problem(&problem);
            list_page(&api, &viewer, form, None, status, errors).await
        }
    }
}

/// The API's body from the form (an empty secret or attempt count is left to the API).
fn new_webhook(form: &NewForm) -> Result<webhooks::NewWebhook, Problem> {
    let mut body = json!({"name": form.name.trim(), "url": form.url.trim()});
    if !form.secret.is_empty() {
        body["secret"] = json!(form.secret);
    }
    if let Some(n) = number("max_attempts", &form.max_attempts)? {
        body["max_attempts"] = json!(n);
    }
    body_of(body)
}

/// `POST /console/webhooks/{id}/delete`.
async fn remove(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    match webhooks::remove(viewer.caller(), State(api.clone()), Param(id)).await {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            "/console/webhooks",
            &format!("Webhook {id} deleted"),
        ),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = Errors::from_problem(&problem);
            let form = NewForm::default();
            list_page(&api, &viewer, form, None, status, errors).await
        }
    }
}

/// One delivery as the page shows it.
pub struct DeliveryRow {
    pub id: u64,
    pub event: String,
    pub status: &'static str,
    pub dead: bool,
    pub attempts: u32,
    pub last_error: String,
    pub created: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "console/helpdesk/webhook.html")]
struct HookPage {
    chrome: Chrome,
    errors: Errors,
    hook: WebhookView,
    rows: Vec<DeliveryRow>,
    pager: Pager,
}

/// `?page=` of the deliveries.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PageQuery {
    page: String,
}

/// `GET /console/webhooks/{id}`.
async fn show(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Query(q): Query<PageQuery>,
) -> Response {
    hook_page(&api, &viewer, id, &q.page, StatusCode::OK, Errors::none()).await
}

async fn hook_page(
    api: &Api,
    viewer: &Viewer,
    id: u64,
    page: &str,
    status: StatusCode,
    errors: Errors,
) -> Response {
    if let Some(refused) = staff_only(viewer) {
        return refused;
    }
    let listed = webhooks::deliveries(viewer.caller(), State(api.clone()), Param(id)).await;
    let hooks = webhooks::list(viewer.caller(), State(api.clone())).await;
    let (deliveries, hook) = match (listed, hooks) {
        (Ok(d), Ok(h)) => (d.0, h.0.into_iter().find(|h| h.id == id)),
        (Err(problem), _) | (_, Err(problem)) => return problem_page(viewer, &problem),
    };
    let Some(hook) = hook else {
        return problem_page(viewer, &Problem::not_found(format!("webhook {id}")));
    };
    let rows: Vec<DeliveryRow> = deliveries.into_iter().rev().map(row).collect();
    let here = format!("/console/webhooks/{id}");
    let (rows, pager) = paginate(rows, page_number(page), &here, "");
    let page = HookPage {
        chrome: Chrome::new(
            viewer,
            format!("Webhook {}", hook.name),
            "/console/webhooks",
        ),
        errors,
        hook,
        rows,
        pager,
    };
    html(status, &page)
}

fn row(d: crate::store::Delivery) -> DeliveryRow {
    let last_error = match (d.last_status, d.last_response) {
        (Some(code), Some(text)) => format!("HTTP {code}: {text}"),
        (Some(code), None) => format!("HTTP {code}"),
        (None, Some(text)) => text,
        (None, None) => String::new(),
    };
    DeliveryRow {
        id: d.id,
        event: d.event,
        status: match d.status {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        },
        dead: d.status == DeliveryStatus::Dead,
        attempts: d.attempts,
        last_error,
        created: when(d.created_at),
        updated: when(d.updated_at),
    }
}

/// `POST /console/webhooks/{id}/deliveries/{delivery}/retry`.
async fn retry(
    State(api): State<Api>,
    viewer: Viewer,
    Param((id, delivery)): Param<(u64, u64)>,
) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    let param = Param((id, delivery));
    match webhooks::retry(viewer.caller(), State(api.clone()), param).await {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/webhooks/{id}"),
            &format!("Delivery {delivery} will be tried again"),
        ),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = Errors::from_problem(&problem);
            hook_page(&api, &viewer, id, "", status, errors).await
        }
    }
}
