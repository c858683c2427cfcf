//! The change one inbound message makes for one mailbox, decided under the ticket store's
//! writer lock: which ticket it joins (or opens) and as what kind of article, or the
//! knowledge item it writes; the webhook deliveries of the event; the idempotence marks.

use super::event::{self, Event};
use super::parse::Parsed;
use super::process::{Context, Incoming};
use super::requester::Requester;
use super::thread;
use super::InboundError;
use crate::policy::normalize;
use crate::store::{
    Account, Article, ArticleKind, Change, Done, Inbound, InboundPurpose, KnowledgeItem, Origin,
    Ticket, TicketStatus, Tickets, UserKind,
};

/// Everything decided so far about one message.
pub struct Plan<'a> {
    pub ctx: &'a Context<'a>,
    pub msg: &'a Incoming<'a>,
    pub mailbox: &'a Account,
    pub inbound: &'a Inbound,
    pub parsed: &'a Parsed,
    pub requester: &'a Requester,
    pub automatic: Option<&'a str>,
    /// Idempotence marks written with the change.
    pub marks: Vec<String>,
}

impl Plan<'_> {
    /// The change written, or why nothing was.
    pub fn change(&self) -> Result<Result<Change, String>, InboundError> {
        let tickets = self.ctx.store.tickets();
        if self.inbound.purpose == InboundPurpose::Knowledge {
            return self.knowledge();
        }
        tickets
            .change(|tickets| {
                self.not_done(tickets)?;
                let store = self.ctx.store;
                let joined = thread::find(store, self.parsed, &self.requester.user)?;
                let now = crate::spool::now_ms() / 1000;
                let new_ticket = joined.is_none();
                let (mut ticket, kind) = match (joined, self.automatic) {
                    (Some(ticket), Some(_)) => (ticket, ArticleKind::Note),
                    (Some(ticket), None) => {
                        let kind = match self.inbound.purpose {
                            InboundPurpose::Comment => ArticleKind::Comment,
                            _ => ArticleKind::Message,
                        };
                        (ticket, kind)
                    }
                    (None, Some(why)) => {
                        return Err(InboundError::Skip(format!(
                            "automatic mail ({why}) opens no ticket"
                        )));
                    }
                    (None, None) => (
                        self.new_ticket(tickets.next_id()?, now),
                        ArticleKind::Message,
                    ),
                };
                // A closed ticket the customer writes to again is open again (a note is not).
                if kind != ArticleKind::Note {
                    ticket.status = TicketStatus::Open;
                }
                self.add_participants(&mut ticket);
                if let Some(id) = &self.parsed.message_id {
                    if !ticket.message_ids.contains(id) {
                        ticket.message_ids.push(id.clone());
                    }
                }
                ticket.updated_at = now;
                let article = self.article(tickets.next_id()?, ticket.id, kind, now);
                let files = self
                    .parsed
                    .attachments
                    .iter()
                    .map(|(_, b)| b.clone())
                    .collect();
                let done = Done {
                    ticket: Some(ticket.id),
                    article: Some(article.id),
                    knowledge: None,
                };
                let deliveries = self
                    .event(event::name(new_ticket, Some(&article)))
                    .with(Some(&ticket), Some(&article), None)
                    .deliveries(store)?;
                Ok(Change {
                    refs: self.parsed.message_id.iter().cloned().collect(),
                    ticket: Some(ticket),
                    article: Some((article, files)),
                    knowledge: None,
                    marks: self.marks(&done),
                    deliveries,
                })
            })
            .map(Ok)
            .or_else(skipped)
    }

    /// `Duplicate` if one of the marks is already there (checked again under the store's
    /// writer lock: two deliveries of one message can race).
    fn not_done(&self, tickets: &Tickets) -> Result<(), InboundError> {
        for mark in &self.marks {
            if tickets.done(mark)?.is_some() {
                return Err(InboundError::Duplicate);
            }
        }
        Ok(())
    }

    fn marks(&self, done: &Done) -> Vec<(String, Done)> {
        self.marks
            .iter()
            .map(|m| (m.clone(), done.clone()))
            .collect()
    }

    /// The event `name` about this message (without its ticket, article or item yet).
    fn event<'b>(&'b self, name: &'b str) -> Event<'b> {
        Event {
            name,
            queue_id: self.msg.queue_id,
            mailbox: self.mailbox,
            requester: self.requester,
            parsed: self.parsed,
            verdicts: self.msg.verdicts.as_ref(),
            ticket: None,
            article: None,
            knowledge: None,
        }
    }

    fn new_ticket(&self, id: u64, now: u64) -> Ticket {
        Ticket {
            id,
            mailbox: self.mailbox.id,
            subject: self.parsed.subject.clone(),
            requester: self.requester.user.id,
            participants: Vec::new(),
            origin: Origin::Email,
            status: TicketStatus::Open,
            message_ids: Vec::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Everyone on the conversation but the mailbox and the requester.
    fn add_participants(&self, ticket: &mut Ticket) {
        let snapshot = self.ctx.policy.snapshot();
        let requester = normalize(&self.requester.user.email);
        let people = std::iter::once(&self.parsed.from)
            .chain(self.parsed.to.iter())
            .chain(self.parsed.cc.iter())
            .map(|a| normalize(a));
        for address in people {
            let ours = snapshot.inbound_mailbox(&address).is_some();
            let known = ticket.participants.iter().any(|p| normalize(p) == address);
            if !ours && address != requester && !known {
                ticket.participants.push(address);
            }
        }
    }

    fn article(&self, id: u64, ticket: u64, kind: ArticleKind, now: u64) -> Article {
        let parsed = self.parsed;
        Article {
            id,
            ticket,
            kind,
            author: self.requester.user.id,
            from: parsed.from.clone(),
            to: parsed.to.clone(),
            cc: parsed.cc.clone(),
            subject: parsed.subject.clone(),
            message_id: parsed.message_id.clone(),
            text: parsed.text.clone(),
            html: parsed.html.clone(),
            attachments: parsed
                .attachments
                .iter()
                .map(|(info, _)| info.clone())
                .collect(),
            verdicts: self.msg.verdicts.clone(),
            created_at: now,
        }
    }

    /// A knowledge item, if the sender may write one (staff, or a role granting
    /// `create_knowledge`, and its From authenticated by DMARC — rights are never granted
    /// to a forged From); otherwise the action is skipped with a warning.
    fn knowledge(&self) -> Result<Result<Change, String>, InboundError> {
        if let Some(why) = self.automatic {
            return Ok(Err(format!(
                "automatic mail ({why}) writes no knowledge item"
            )));
        }
        let user = &self.requester.user;
        let snapshot = self.ctx.policy.snapshot();
        let entitled = user.kind == UserKind::Staff
            || user
                .roles
                .iter()
                .filter_map(|r| snapshot.role(r))
                .any(|role| {
                    role.permissions
                        .iter()
                        .any(|p| p == "create_knowledge" || p == "admin")
                });
        let authenticated = self
            .msg
            .verdicts
            .as_ref()
            .is_some_and(|v| v.dmarc == "pass");
        if entitled && !authenticated {
            tracing::warn!(login = %user.login, mailbox = %self.mailbox.name,
                "knowledge item not created: the From is not authenticated (DMARC did not pass)");
            return Ok(Err(format!("{} is not authenticated", user.login)));
        }
        if !entitled {
            tracing::warn!(login = %user.login, mailbox = %self.mailbox.name,
                "knowledge item not created: the sender lacks create_knowledge (the user is kept)");
            return Ok(Err(format!(
                "{} may not create knowledge items",
                user.login
            )));
        }
        let tickets = self.ctx.store.tickets();
        let change = tickets.change(|tickets| {
            self.not_done(tickets)?;
            let item = KnowledgeItem {
                id: tickets.next_id()?,
                mailbox: self.mailbox.id,
                author: user.id,
                title: self.parsed.subject.clone(),
                body: self.parsed.text.clone(),
                html: self.parsed.html.clone(),
                message_id: self.parsed.message_id.clone(),
                created_at: crate::spool::now_ms() / 1000,
            };
            let done = Done {
                knowledge: Some(item.id),
                ..Done::default()
            };
            let deliveries = self
                .event("knowledge.created")
                .with(None, None, Some(&item))
                .deliveries(self.ctx.store)?;
            Ok::<_, InboundError>(Change {
                knowledge: Some(item),
                marks: self.marks(&done),
                deliveries,
                ..Change::default()
            })
        });
        change.map(Ok).or_else(skipped)
    }
}

/// A deliberate skip (or a duplicate) is an answer, not an error.
fn skipped(error: InboundError) -> Result<Result<Change, String>, InboundError> {
    match error {
        InboundError::Skip(why) => Ok(Err(why)),
        InboundError::Duplicate => Ok(Err(DUPLICATE.into())),
        other => Err(other),
    }
}

/// Why nothing was recorded for a message recorded before.
pub const DUPLICATE: &str = "recorded before";
