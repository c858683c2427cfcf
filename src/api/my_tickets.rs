//! A caller's own tickets, as their requester sees them (SPEC §7, the console's "my
//! tickets"): `GET /api/v1/me/tickets`, `GET /api/v1/me/tickets/{id}` and the bytes of an
//! attachment of one of its messages.
//!
//! Only tickets whose requester is the caller, whatever grants or permissions it holds
//! (any other ticket is a 404), and of those only what a customer is shown: the subject,
//! the status, the messages and comments — never notes (auto-replies kept for staff),
//! authentication verdicts, participants or Message-IDs. It decides nothing for staff
//! views of tickets (`tickets`).

use super::extract::Param;
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::store::{Article, ArticleKind, AttachmentInfo, Ticket, TicketStatus};
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

/// One of the caller's tickets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyTicket {
    pub id: u64,
    pub subject: String,
    pub status: TicketStatus,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A message of one of the caller's tickets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyMessage {
    pub id: u64,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub attachments: Vec<AttachmentInfo>,
    pub created_at: u64,
}

/// A ticket of the caller's with its messages, oldest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MyTicketView {
    #[serde(flatten)]
    pub ticket: MyTicket,
    pub messages: Vec<MyMessage>,
}

impl From<Ticket> for MyTicket {
    fn from(t: Ticket) -> MyTicket {
        MyTicket {
            id: t.id,
            subject: t.subject,
            status: t.status,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

impl From<Article> for MyMessage {
    fn from(a: Article) -> MyMessage {
        MyMessage {
            id: a.id,
            from: a.from,
            to: a.to,
            cc: a.cc,
            subject: a.subject,
            text: a.text,
            attachments: a.attachments,
            created_at: a.created_at,
        }
    }
}

/// The caller's user id; the bootstrap token requests no tickets (404 for every one).
fn me(caller: &Caller) -> Option<u64> {
    caller.id()
}

/// Ticket `id` if the caller is its requester, else 404.
fn mine(caller: &Caller, api: &Api, id: u64) -> Result<Ticket, Problem> {
    api.store()
        .tickets()
        .get(id)?
        .filter(|t| me(caller) == Some(t.requester))
        .ok_or_else(|| Problem::not_found(format!("ticket {id}")))
}

/// The articles of ticket `id` a requester is shown.
fn shown(api: &Api, id: u64) -> Result<Vec<Article>, Problem> {
    Ok(api
        .store()
        .tickets()
        .articles(id)?
        .into_iter()
        .filter(|a| matches!(a.kind, ArticleKind::Message | ArticleKind::Comment))
        .collect())
}

/// `GET /api/v1/me/tickets` — the tickets the caller requested, newest first.
#[utoipa::path(
    get, path = "/api/v1/me/tickets", tag = "tickets",
    responses((status = 200, body = [MyTicket]), Problems)
)]
pub async fn list(caller: Caller, State(api): State<Api>) -> Result<Json<Vec<MyTicket>>, Problem> {
    let Some(me) = me(&caller) else {
        return Ok(Json(Vec::new()));
    };
    let mut tickets: Vec<MyTicket> = api
        .store()
        .tickets()
        .all()?
        .into_iter()
        .filter(|t| t.requester == me)
        .map(MyTicket::from)
        .collect();
    tickets.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
    Ok(Json(tickets))
}

/// `GET /api/v1/me/tickets/{id}` — one of the caller's tickets with its messages; any
/// other ticket is a 404.
#[utoipa::path(
    get, path = "/api/v1/me/tickets/{id}", tag = "tickets", params(("id" = u64, Path, description = "ticket id")),
    responses((status = 200, body = MyTicketView), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<MyTicketView>, Problem> {
    let ticket = mine(&caller, &api, id)?;
    let messages = shown(&api, id)?.into_iter().map(MyMessage::from).collect();
    Ok(Json(MyTicketView {
        ticket: MyTicket::from(ticket),
        messages,
    }))
}

/// `GET /api/v1/me/tickets/{id}/articles/{article}/attachments/{n}` — an attachment of a
/// message of one of the caller's tickets.
#[utoipa::path(
    get, path = "/api/v1/me/tickets/{id}/articles/{article}/attachments/{n}", tag = "tickets",
    params(("id" = u64, Path, description = "ticket id"), ("article" = u64, Path, description = "article id"), ("n" = u64, Path, description = "attachment number, from 0")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), Problems)
)]
pub async fn attachment(
    caller: Caller,
    State(api): State<Api>,
    Param((id, article, n)): Param<(u64, u64, u64)>,
) -> Result<impl IntoResponse, Problem> {
    mine(&caller, &api, id)?;
    let missing = || Problem::not_found(format!("attachment {n} of article {article}"));
    let info = shown(&api, id)?
        .into_iter()
        .find(|a| a.id == article)
        .and_then(|a| a.attachments.get(n as usize).cloned())
        .ok_or_else(missing)?;
    let bytes = api
        .store()
        .tickets()
        .attachment(article, n)?
        .ok_or_else(missing)?;
    Ok(super::tickets::download(info, bytes))
}
