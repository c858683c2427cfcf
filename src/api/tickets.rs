//! The built-in ticket store (SPEC §7): `GET /api/v1/tickets` (filters `mailbox`,
//! `requester`, `status`, and `q`: text in the subject or the requester's address; each
//! row carries the requester's address), `GET /api/v1/tickets/{id}` with its articles, an attachment's
//! bytes, `POST /api/v1/tickets` (origin `api`), `PATCH /api/v1/tickets/{id}` (close or
//! reopen), `DELETE /api/v1/tickets/{id}`
//! (`delete_tickets`), and `GET /api/v1/knowledge`.
//!
//! A ticket is visible to admins, to whoever may read its mailbox (owner or an `access`
//! grant), and to its requester; one that is not visible is a 404.

use super::account_rules::may_access;
use super::extract::{blocking, Body, Param, QueryOf};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::store::{
    Article, ArticleKind, AttachmentInfo, Change, KnowledgeItem, Origin, Ticket, TicketStatus,
    UserStatus,
};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Filters of `GET /api/v1/tickets`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    /// Account id of the mailbox.
    mailbox: Option<u64>,
    /// User id of the requester.
    requester: Option<u64>,
    status: Option<TicketStatus>,
    /// Text found (case-insensitively) in the subject or the requester's address.
    q: Option<String>,
}

/// A ticket in a listing, with its requester's address.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketRow {
    #[serde(flatten)]
    pub ticket: Ticket,
    /// The requester's e-mail address (empty if the user is gone).
    pub requester_address: String,
}

/// A ticket with its articles.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub articles: Vec<Article>,
}

/// Body of `POST /api/v1/tickets`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// Account id of an inbound mailbox.
    mailbox: u64,
    /// User id of the requester.
    requester: u64,
    subject: String,
    /// The first message, from the requester (none when empty).
    #[serde(default)]
    text: String,
}

/// Whether `caller` may see `ticket`.
fn may_see(caller: &Caller, api: &Api, ticket: &Ticket) -> bool {
    if caller.is_admin() || caller.id() == Some(ticket.requester) {
        return true;
    }
    let snapshot = api.snapshot();
    snapshot
        .account(ticket.mailbox)
        .is_some_and(|account| may_access(caller, account))
}

fn visible(caller: &Caller, api: &Api, id: u64) -> Result<Ticket, Problem> {
    api.store()
        .tickets()
        .get(id)?
        .filter(|t| may_see(caller, api, t))
        .ok_or_else(|| Problem::not_found(format!("ticket {id}")))
}

/// `GET /api/v1/tickets` — the tickets the caller may see, oldest first.
#[utoipa::path(
    get, path = "/api/v1/tickets", tag = "tickets", params(TicketQuery),
    responses((status = 200, body = [TicketRow]), Problems)
)]
pub async fn list(
    caller: Caller,
    State(api): State<Api>,
    QueryOf(query): QueryOf<TicketQuery>,
) -> Result<Json<Vec<TicketRow>>, Problem> {
    let all = api.store().tickets().all()?;
    let snapshot = api.snapshot();
    let text = query.q.as_deref().unwrap_or_default().trim().to_lowercase();
    let shown = all
        .into_iter()
        .filter(|t| query.mailbox.is_none_or(|m| t.mailbox == m))
        .filter(|t| query.requester.is_none_or(|r| t.requester == r))
        .filter(|t| query.status.is_none_or(|s| t.status == s))
        .filter(|t| may_see(&caller, &api, t))
        .map(|ticket| TicketRow {
            requester_address: snapshot
                .user(ticket.requester)
                .map(|u| u.email.clone())
                .unwrap_or_default(),
            ticket,
        })
        .filter(|row| {
            text.is_empty()
                || row.ticket.subject.to_lowercase().contains(&text)
                || row.requester_address.to_lowercase().contains(&text)
        })
        .collect();
    Ok(Json(shown))
}

/// `GET /api/v1/tickets/{id}` — the ticket and its articles (messages, comments, notes).
#[utoipa::path(
    get, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = u64, Path, description = "ticket id")),
    responses((status = 200, body = TicketView), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<TicketView>, Problem> {
    let ticket = visible(&caller, &api, id)?;
    let articles = api.store().tickets().articles(id)?;
    Ok(Json(TicketView { ticket, articles }))
}

/// `GET /api/v1/tickets/{id}/articles/{article}/attachments/{n}` — the bytes of an
/// attachment, with its content type.
#[utoipa::path(
    get, path = "/api/v1/tickets/{id}/articles/{article}/attachments/{n}", tag = "tickets",
    params(("id" = u64, Path, description = "ticket id"), ("article" = u64, Path, description = "article id"), ("n" = u64, Path, description = "attachment number, from 0")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), Problems)
)]
pub async fn attachment(
    caller: Caller,
    State(api): State<Api>,
    Param((id, article, n)): Param<(u64, u64, u64)>,
) -> Result<impl IntoResponse, Problem> {
    visible(&caller, &api, id)?;
    let tickets = api.store().tickets();
    let missing = || Problem::not_found(format!("attachment {n} of article {article}"));
    let info = tickets
        .articles(id)?
        .into_iter()
        .find(|a| a.id == article)
        .and_then(|a| a.attachments.get(n as usize).cloned())
        .ok_or_else(missing)?;
    let bytes = tickets.attachment(article, n)?.ok_or_else(missing)?;
    Ok(download(info, bytes))
}

/// An attachment's bytes as a download, with the type its sender gave.
pub(super) fn download(info: AttachmentInfo, bytes: Vec<u8>) -> impl IntoResponse {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        info.name.replace(['"', '\\'], "_")
    );
    (
        [
            (header::CONTENT_TYPE, info.content_type),
            (header::CONTENT_DISPOSITION, disposition),
            // The sender chose the type: never let a browser guess another.
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
}

/// `POST /api/v1/tickets` — a ticket with origin `api`, for whoever may read the mailbox.
#[utoipa::path(
    post, path = "/api/v1/tickets", tag = "tickets", request_body = NewTicket,
    responses((status = 201, body = Ticket), Problems)
)]
pub async fn create(
    caller: Caller,
    State(api): State<Api>,
    Body(body): Body<NewTicket>,
) -> Result<(StatusCode, Json<Ticket>), Problem> {
    let snapshot = api.snapshot();
    let mailbox = snapshot
        .account(body.mailbox)
        .filter(|a| a.inbound.is_some())
        .ok_or_else(|| {
            Problem::invalid("mailbox", format!("no inbound mailbox {}", body.mailbox))
        })?;
    if !may_access(&caller, mailbox) {
        return Err(Problem::forbidden_for(
            "admin",
            "(or an access grant on the mailbox) to open a ticket",
        ));
    }
    let from = match snapshot.user(body.requester) {
        Some(user) if user.status == UserStatus::Active => user.email.clone(),
        _ => {
            return Err(Problem::invalid(
                "requester",
                format!("no active user {}", body.requester),
            ))
        }
    };
    let subject = crate::inbound::clean(&body.subject);
    if subject.is_empty() || subject.chars().count() > 500 {
        return Err(Problem::invalid("subject", "must be 1-500 characters"));
    }
    let work = api.clone();
    let ticket = blocking(move || {
        let tickets = work.store().tickets();
        let change = tickets.change(|tickets| {
            let now = crate::spool::now_ms() / 1000;
            let id = tickets.next_id()?;
            let article = match body.text.is_empty() {
                true => None,
                false => Some((
                    Article {
                        id: tickets.next_id()?,
                        ticket: id,
                        kind: ArticleKind::Message,
                        author: body.requester,
                        from: from.clone(),
                        to: Vec::new(),
                        cc: Vec::new(),
                        subject: subject.clone(),
                        message_id: None,
                        text: body.text.clone(),
                        html: None,
                        attachments: Vec::new(),
                        verdicts: None,
                        created_at: now,
                    },
                    Vec::new(),
                )),
            };
            Ok::<_, Problem>(Change {
                article,
                ticket: Some(Ticket {
                    id,
                    mailbox: body.mailbox,
                    subject: subject.clone(),
                    requester: body.requester,
                    participants: Vec::new(),
                    origin: Origin::Api,
                    status: TicketStatus::Open,
                    message_ids: Vec::new(),
                    created_at: now,
                    updated_at: now,
                }),
                ..Change::default()
            })
        })?;
        change
            .ticket
            .ok_or_else(|| Problem::internal("ticket not built"))
    })
    .await?;
    let target = format!("ticket/{}", ticket.id);
    api.audit(&caller, "ticket.create", target, None::<&()>, Some(&ticket))
        .await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// Body of `PATCH /api/v1/tickets/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    status: TicketStatus,
}

/// `PATCH /api/v1/tickets/{id}` — closes or reopens a ticket; for whoever may read its
/// mailbox (not its requester alone).
#[utoipa::path(
    patch, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = u64, Path, description = "ticket id")), request_body = TicketPatch,
    responses((status = 200, body = Ticket), Problems)
)]
pub async fn patch(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
    Body(body): Body<TicketPatch>,
) -> Result<Json<Ticket>, Problem> {
    let ticket = visible(&caller, &api, id)?;
    let may_work = api
        .snapshot()
        .account(ticket.mailbox)
        .is_some_and(|a| may_access(&caller, a));
    if !may_work {
        return Err(Problem::forbidden_for(
            "admin",
            "(or an access grant on the mailbox) to change a ticket",
        ));
    }
    let work = api.clone();
    let change = blocking(move || {
        work.store().tickets().change(|tickets| {
            let mut ticket = tickets
                .get(id)?
                .ok_or_else(|| Problem::not_found(format!("ticket {id}")))?;
            ticket.status = body.status;
            ticket.updated_at = crate::spool::now_ms() / 1000;
            Ok::<_, Problem>(Change {
                ticket: Some(ticket),
                ..Change::default()
            })
        })
    })
    .await?;
    let after = change
        .ticket
        .ok_or_else(|| Problem::internal("ticket not changed"))?;
    let target = format!("ticket/{id}");
    api.audit(
        &caller,
        "ticket.update",
        target,
        Some(&ticket),
        Some(&after),
    )
    .await?;
    Ok(Json(after))
}

/// `DELETE /api/v1/tickets/{id}` — permission `delete_tickets`.
#[utoipa::path(
    delete, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = u64, Path, description = "ticket id")),
    responses((status = 204), Problems)
)]
pub async fn remove(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<StatusCode, Problem> {
    caller.require("delete_tickets")?;
    let ticket = visible(&caller, &api, id)?;
    let work = api.clone();
    blocking(move || Ok(work.store().tickets().delete(&[id])?)).await?;
    let target = format!("ticket/{id}");
    api.audit(&caller, "ticket.delete", target, Some(&ticket), None::<&()>)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/knowledge` — knowledge items of the mailboxes the caller may read.
#[utoipa::path(
    get, path = "/api/v1/knowledge", tag = "tickets",
    responses((status = 200, body = [KnowledgeItem]), Problems)
)]
pub async fn knowledge(
    caller: Caller,
    State(api): State<Api>,
) -> Result<Json<Vec<KnowledgeItem>>, Problem> {
    let snapshot = api.snapshot();
    let items = api
        .store()
        .tickets()
        .knowledge()?
        .into_iter()
        .filter(|k| {
            caller.id() == Some(k.author)
                || snapshot
                    .account(k.mailbox)
                    .is_some_and(|a| may_access(&caller, a))
        })
        .collect();
    Ok(Json(items))
}
