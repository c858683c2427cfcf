//! The dashboard (`/console/`): this node's messages accepted, delivered, deferred and
//! bounced in the last hour and day, the queue, the accounts that are not healthy, dead
//! webhook deliveries and running backups. Each part is read through the API handler
//! that serves it, and left out when that handler refuses the viewer. A requester's home
//! is their tickets.

use super::render::{html, Chrome};
use super::Viewer;
use crate::api::{accounts, backups, queue, webhooks, Api};
use crate::metrics::Event;
use crate::store::{BackupStatus, DeliveryStatus, Health};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

/// One row of the traffic table.
pub struct Traffic {
    pub label: &'static str,
    pub hour: u64,
    pub day: u64,
}

/// An account that is not healthy.
pub struct Sick {
    pub id: u64,
    pub name: String,
    pub health: String,
    pub last_error: String,
}

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    traffic: Vec<Traffic>,
    /// (queued, deferred), when the viewer may see the queue.
    queue: Option<(usize, usize)>,
    sick: Vec<Sick>,
    /// Dead webhook deliveries, when the viewer may see webhooks.
    dead_deliveries: Option<usize>,
    running_backups: Vec<(u64, String)>,
}

/// `GET /console/`.
pub async fn show(State(api): State<Api>, viewer: Viewer) -> Response {
    if viewer.is_requester() {
        return Redirect::to("/console/my/tickets").into_response();
    }
    let recent = &api.state.metrics.recent;
    let traffic = [
        ("Accepted", Event::Accepted),
        ("Delivered", Event::Delivered),
        ("Deferred", Event::Deferred),
        ("Bounced", Event::Bounced),
    ]
    .into_iter()
    .map(|(label, event)| Traffic {
        label,
        hour: recent.last(event, 60),
        day: recent.last(event, 24 * 60),
    })
    .collect();
    let page = DashboardPage {
        chrome: Chrome::new(&viewer, "Dashboard", "/console/"),
        traffic,
        queue: queue_counts(&api, &viewer).await,
        sick: sick_accounts(&api, &viewer).await,
        dead_deliveries: dead_deliveries(&api, &viewer).await,
        running_backups: running_backups(&api, &viewer).await,
    };
    html(StatusCode::OK, &page)
}

async fn queue_counts(api: &Api, viewer: &Viewer) -> Option<(usize, usize)> {
    let query = serde_json::from_value(serde_json::json!({"limit": 1000})).ok()?;
    let listed = queue::list(
        viewer.caller(),
        State(api.clone()),
        crate::api::extract::QueryOf(query),
    )
    .await
    .ok()?;
    let deferred = listed.0.iter().filter(|m| m.attempts > 0).count();
    Some((listed.0.len(), deferred))
}

async fn sick_accounts(api: &Api, viewer: &Viewer) -> Vec<Sick> {
    let Ok(listed) = accounts::list(viewer.caller(), State(api.clone())).await else {
        return Vec::new();
    };
    listed
        .0
        .into_iter()
        .filter(|a| a.status.health != Health::Healthy)
        .map(|a| Sick {
            id: a.id,
            name: a.name,
            health: format!("{:?}", a.status.health).to_lowercase(),
            last_error: a.status.last_error.unwrap_or_default(),
        })
        .collect()
}

async fn dead_deliveries(api: &Api, viewer: &Viewer) -> Option<usize> {
    let hooks = webhooks::list(viewer.caller(), State(api.clone()))
        .await
        .ok()?;
    let mut dead = 0;
    for hook in hooks.0 {
        let param = crate::api::extract::Param(hook.id);
        if let Ok(deliveries) =
            webhooks::deliveries(viewer.caller(), State(api.clone()), param).await
        {
            dead += deliveries
                .0
                .iter()
                .filter(|d| d.status == DeliveryStatus::Dead)
                .count();
        }
    }
    Some(dead)
}

async fn running_backups(api: &Api, viewer: &Viewer) -> Vec<(u64, String)> {
    let Ok(jobs) = backups::list(viewer.caller(), State(api.clone())).await else {
        return Vec::new();
    };
    jobs.0
        .into_iter()
        .filter(|b| matches!(b.status, BackupStatus::Running | BackupStatus::Pending))
        .map(|b| (b.id, format!("{:?}", b.status).to_lowercase()))
        .collect()
}
