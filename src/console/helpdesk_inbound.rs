//! An account's helpdesk (inbound) settings (`/console/accounts/{id}/inbound`): whether
//! it is a helpdesk mailbox, its purpose, auto-created requesters and the group they
//! join, refusing mail that fails DMARC under `p=reject`, and the webhooks its events go
//! to — everything `store::Inbound` holds, with fetching from the provider
//! (`helpdesk_fetch`: its fields; `helpdesk_fetch_status`: what it is doing and the
//! set-aside messages). Saved through `api::account_edit::patch` with
//! only the `inbound` field, so the API's checks (`setup` on the account,
//! `shared_account_setup` for inbound changes, the group and webhooks existing) decide.

use super::helpdesk::{body_of, staff_only};
use super::helpdesk_fetch::{FetchField, FetchForm};
use super::helpdesk_fetch_status::{can_move, status_of, FetchShown};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::extract::{Body, Param};
use crate::api::{account_edit, accounts, directory, webhooks, Api, Problem};
use crate::store::{Group, Inbound, InboundPurpose};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use axum_extra::extract::Form;
use serde::Deserialize;
use serde_json::json;

/// The routes of this page.
pub fn routes() -> Router<Api> {
    Router::new().route("/console/accounts/{id}/inbound", get(show).post(save))
}

/// The form, as posted (checkboxes are absent when not ticked).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InboundForm {
    enabled: Option<String>,
    purpose: String,
    auto_create_requesters: Option<String>,
    default_group: String,
    refuse_dmarc_reject: Option<String>,
    webhooks: Vec<u64>,
    #[serde(flatten)]
    fetch: FetchForm,
}

impl InboundForm {
    fn from_settings(inbound: Option<&Inbound>) -> InboundForm {
        let on = |b: bool| b.then(|| "on".to_string());
        let Some(i) = inbound else {
            return InboundForm {
                purpose: "ticket".into(),
                fetch: FetchForm::from_settings(None),
                ..InboundForm::default()
            };
        };
        InboundForm {
            enabled: on(true),
            purpose: match i.purpose {
                InboundPurpose::Ticket => "ticket",
                InboundPurpose::Comment => "comment",
                InboundPurpose::Knowledge => "knowledge",
            }
            .into(),
            auto_create_requesters: on(i.auto_create_requesters),
            default_group: i.default_group.clone().unwrap_or_default(),
            refuse_dmarc_reject: on(i.refuse_dmarc_reject),
            webhooks: i.webhooks.clone(),
            fetch: FetchForm::from_settings(i.fetch.as_ref()),
        }
    }

    /// The `inbound` field of the API's patch: `null` turns the mailbox off.
    fn patch(&self) -> Result<serde_json::Value, Problem> {
        if self.enabled.is_none() {
            return Ok(json!({"inbound": null}));
        }
        let group = self.default_group.trim();
        let fetch = self.fetch.json()?;
        Ok(json!({"inbound": {
            "purpose": self.purpose,
            "auto_create_requesters": self.auto_create_requesters.is_some(),
            "default_group": (!group.is_empty()).then_some(group),
            "refuse_dmarc_reject": self.refuse_dmarc_reject.is_some(),
            "webhooks": self.webhooks,
            "fetch": fetch,
        }}))
    }
}

#[derive(Template)]
#[template(path = "console/helpdesk/inbound.html")]
struct InboundPage {
    chrome: Chrome,
    errors: Errors,
    id: u64,
    address: String,
    form: InboundForm,
    /// The requester groups, when the viewer may list them.
    groups: Vec<String>,
    /// (id, name) of the webhooks, when the viewer may list them; `None`: the current
    /// ones are kept as they are.
    hooks: Option<Vec<(u64, String)>>,
    /// The fetch settings' fields, and what fetching is doing (when it is set).
    fetch_fields: Vec<FetchField>,
    fetch: Option<FetchShown>,
    can_move: bool,
}

/// `GET /console/accounts/{id}/inbound`.
async fn show(State(api): State<Api>, viewer: Viewer, Param(id): Param<u64>) -> Response {
    page(&api, &viewer, id, None, StatusCode::OK, Errors::none()).await
}

pub(super) async fn page(
    api: &Api,
    viewer: &Viewer,
    id: u64,
    form: Option<InboundForm>,
    status: StatusCode,
    errors: Errors,
) -> Response {
    if let Some(refused) = staff_only(viewer) {
        return refused;
    }
    let account = match accounts::show(viewer.caller(), State(api.clone()), Param(id)).await {
        Ok(account) => account.0,
        Err(problem) => return problem_page(viewer, &problem),
    };
    let groups = directory::list::<Group>(viewer.caller(), State(api.clone()))
        .await
        .map(|g| g.0.into_iter().map(|g| g.name).collect())
        .unwrap_or_default();
    let hooks = webhooks::list(viewer.caller(), State(api.clone()))
        .await
        .ok()
        .map(|h| h.0.into_iter().map(|h| (h.id, h.name)).collect());
    let stored = account.inbound.as_ref();
    let can_move = can_move(stored.and_then(|i| i.fetch.as_ref()));
    let form = form.unwrap_or_else(|| InboundForm::from_settings(stored));
    let fetch = status_of(api, viewer, id).await;
    let page = InboundPage {
        chrome: Chrome::new(
            viewer,
            format!("Helpdesk settings of {}", account.name),
            "/console/accounts",
        ),
        id,
        address: account.address,
        fetch_fields: form.fetch.fields(&errors),
        fetch,
        can_move,
        errors,
        form,
        groups,
        hooks,
    };
    html(status, &page)
}

/// `POST /console/accounts/{id}/inbound`.
async fn save(
    State(api): State<Api>,
    viewer: Viewer,
    Param(id): Param<u64>,
    Form(form): Form<InboundForm>,
) -> Response {
    if let Some(refused) = staff_only(&viewer) {
        return refused;
    }
    let saved = match form.patch().and_then(body_of) {
        Ok(body) => {
            let param = Param(id);
            account_edit::patch(viewer.caller(), State(api.clone()), param, Body(body)).await
        }
        Err(problem) => Err::<_, Problem>(problem),
    };
    match saved {
        Ok(_) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/accounts/{id}/inbound"),
            "Helpdesk settings saved",
        ),
        Err(problem) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            let errors = Errors::from_problem(&problem);
            page(&api, &viewer, id, Some(form), status, errors).await
        }
    }
}
