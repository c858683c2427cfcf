//! The hook's events (SPEC §7) and their webhook deliveries. The payload carries the event,
//! the ticket, the requester (and whether it was just created), the mailbox, the parsed
//! message (ids, threading fields, subject, addresses, bodies, attachments with the API
//! path that serves each) and the authentication verdicts.

use super::parse::Parsed;
use super::requester::Requester;
use super::InboundError;
use crate::store::{
    Account, Article, Delivery, DeliveryStatus, KnowledgeItem, Store, Ticket, Verdicts,
};
use serde_json::{json, Value};

/// What happened, as the `event` field names it.
pub fn name(new_ticket: bool, article: Option<&Article>) -> &'static str {
    use crate::store::ArticleKind;
    match (new_ticket, article.map(|a| a.kind)) {
        (true, _) => "ticket.created",
        (false, Some(ArticleKind::Comment)) => "ticket.comment",
        (false, Some(ArticleKind::Note)) => "ticket.note",
        (false, _) => "ticket.message",
    }
}

/// Everything an event says.
pub struct Event<'a> {
    pub name: &'a str,
    pub queue_id: &'a str,
    pub mailbox: &'a Account,
    pub requester: &'a Requester,
    pub parsed: &'a Parsed,
    pub verdicts: Option<&'a Verdicts>,
    pub ticket: Option<&'a Ticket>,
    pub article: Option<&'a Article>,
    pub knowledge: Option<&'a KnowledgeItem>,
}

impl<'a> Event<'a> {
    /// The event with what the change recorded.
    pub fn with(
        mut self,
        ticket: Option<&'a Ticket>,
        article: Option<&'a Article>,
        knowledge: Option<&'a KnowledgeItem>,
    ) -> Event<'a> {
        self.ticket = ticket;
        self.article = article;
        self.knowledge = knowledge;
        self
    }

    /// The JSON body of the webhook call.
    pub fn payload(&self) -> Value {
        let user = &self.requester.user;
        let parsed = self.parsed;
        let attachments: Vec<Value> = parsed
            .attachments
            .iter()
            .enumerate()
            .map(|(n, (info, _))| {
                let url = match (self.ticket, self.article) {
                    (Some(t), Some(a)) => Some(format!(
                        "/api/v1/tickets/{}/articles/{}/attachments/{n}",
                        t.id, a.id
                    )),
                    _ => None,
                };
                json!({"name": info.name, "content_type": info.content_type, "size": info.size, "url": url})
            })
            .collect();
        json!({
            "event": self.name,
            "queue_id": self.queue_id,
            "ticket": self.ticket.map(|t| json!({
                "id": t.id, "subject": t.subject, "status": t.status, "origin": t.origin,
                "requester": t.requester, "participants": t.participants,
            })),
            "article": self.article.map(|a| json!({"id": a.id, "kind": a.kind})),
            "knowledge": self.knowledge.map(|k| json!({"id": k.id, "title": k.title})),
            "requester": {
                "id": user.id, "login": user.login, "email": user.email,
                "display_name": user.display_name, "group": user.group,
                "created": self.requester.created,
            },
            "mailbox": {
                "id": self.mailbox.id, "name": self.mailbox.name, "address": self.mailbox.address,
                "purpose": self.mailbox.inbound.as_ref().map(|i| i.purpose),
            },
            "message": {
                "message_id": parsed.message_id, "in_reply_to": parsed.in_reply_to,
                "references": parsed.references, "subject": parsed.subject,
                "from": {"address": parsed.from, "name": parsed.from_name},
                "to": parsed.to, "cc": parsed.cc,
                "text": parsed.text, "html": parsed.html, "attachments": attachments,
            },
            "authentication": self.verdicts,
        })
    }

    /// One pending delivery per webhook of the mailbox (webhooks deleted since are
    /// skipped).
    pub fn deliveries(&self, store: &Store) -> Result<Vec<Delivery>, InboundError> {
        let hooks = self
            .mailbox
            .inbound
            .as_ref()
            .map(|i| i.webhooks.clone())
            .unwrap_or_default();
        if hooks.is_empty() {
            return Ok(Vec::new());
        }
        let payload = self.payload().to_string();
        let now = crate::spool::now_ms();
        let mut out = Vec::new();
        for id in hooks {
            if store.webhooks().get(id)?.is_none() {
                continue;
            }
            out.push(Delivery {
                id: store.webhooks().next_id()?,
                webhook: id,
                event: self.name.to_string(),
                payload: payload.clone(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_at: now,
                last_status: None,
                last_response: None,
                created_at: now / 1000,
                updated_at: now / 1000,
            });
        }
        Ok(out)
    }
}
