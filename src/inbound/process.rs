//! What one inbound message becomes for one helpdesk mailbox (SPEC §7): requester lookup
//! or creation, loop detection, threading, then one atomic change of the ticket store
//! (ticket, article, attachments, Message-ID index, idempotence mark).

use super::event::{self, Event};
use super::loops;
use super::parse::{parse, Parsed};
use super::requester::{find_or_create, Requester};
use super::thread;
use super::InboundError;
use crate::policy::{normalize, Policy};
use crate::store::{
    Account, Article, ArticleKind, Change, Done, Inbound, InboundPurpose, KnowledgeItem, Origin,
    Store, Ticket, TicketStatus, UserKind, UserStatus, Verdicts,
};

/// One message for one mailbox, as the spool hands it over.
pub struct Incoming<'a> {
    pub queue_id: &'a str,
    pub mail_from: &'a str,
    pub rcpt: &'a str,
    pub data: &'a [u8],
    pub verdicts: Option<Verdicts>,
}

/// What was recorded for a message, for the events that follow (webhooks, notices).
#[derive(Debug)]
pub struct Recorded {
    pub change: Change,
    pub requester: Requester,
    pub mailbox: Account,
    pub parsed: Parsed,
}

/// What became of it.
#[derive(Debug)]
pub enum Processed {
    /// Recorded now.
    Recorded(Box<Recorded>),
    /// Done earlier (a redelivery); nothing repeated.
    AlreadyDone,
    /// Nothing recorded, on purpose; the reason is logged.
    Dropped(String),
    /// Refused for good (bounced to the sender): the SMTP-style reply.
    Refused(String),
}

/// The knobs the hook runs with.
pub struct Context<'a> {
    pub store: &'a Store,
    pub policy: &'a Policy,
    pub hostname: &'a str,
}

/// Processes `msg`. Blocking (store writes end in a sync).
pub fn process(ctx: &Context<'_>, msg: &Incoming<'_>) -> Result<Processed, InboundError> {
    let snapshot = ctx.policy.snapshot();
    let Some(mailbox) = snapshot.inbound_mailbox(msg.rcpt).cloned() else {
        return Ok(Processed::Refused(format!(
            "550 5.1.1 <{}>: no longer a helpdesk mailbox",
            msg.rcpt
        )));
    };
    drop(snapshot);
    let inbound = mailbox.inbound.clone().unwrap_or_default();
    let mark = format!("{}/{}", msg.queue_id, normalize(msg.rcpt));
    if ctx.store.tickets().done(&mark)?.is_some() {
        return Ok(Processed::AlreadyDone);
    }
    let parsed = match parse(msg.data) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(Processed::Refused(format!("550 5.6.0 {error}"))),
    };
    let automatic = loops::automatic(&parsed, msg.mail_from, ctx.hostname);
    let requester = match &automatic {
        // Automatic mail never creates anyone.
        Some(_) => ctx
            .policy
            .snapshot()
            .user_by_address(&parsed.from)
            .map(|user| Requester {
                user: user.clone(),
                created: false,
            }),
        None => find_or_create(
            ctx.store,
            ctx.policy,
            &inbound,
            &parsed.from,
            parsed.from_name.as_deref(),
        )?,
    };
    let Some(requester) = requester else {
        return Ok(match automatic {
            Some(why) => {
                Processed::Dropped(format!("automatic mail ({why}) from an unknown sender"))
            }
            None => Processed::Refused(format!(
                "550 5.7.1 <{}>: unknown sender; this helpdesk does not create requesters",
                parsed.from
            )),
        });
    };
    if requester.user.status == UserStatus::Blocked {
        return Ok(Processed::Dropped(format!(
            "sender {} is blocked",
            requester.user.login
        )));
    }
    let plan = Plan {
        ctx,
        msg,
        mailbox: &mailbox,
        inbound: &inbound,
        parsed: &parsed,
        requester: &requester,
        automatic: automatic.as_deref(),
        mark,
    };
    match plan.change()? {
        Ok(change) => Ok(Processed::Recorded(Box::new(Recorded {
            change,
            requester,
            mailbox,
            parsed,
        }))),
        Err(why) => Ok(Processed::Dropped(why)),
    }
}

/// Everything decided so far about one message.
struct Plan<'a> {
    ctx: &'a Context<'a>,
    msg: &'a Incoming<'a>,
    mailbox: &'a Account,
    inbound: &'a Inbound,
    parsed: &'a Parsed,
    requester: &'a Requester,
    automatic: Option<&'a str>,
    mark: String,
}

impl Plan<'_> {
    /// The change written, or why nothing was.
    fn change(&self) -> Result<Result<Change, String>, InboundError> {
        let tickets = self.ctx.store.tickets();
        if self.inbound.purpose == InboundPurpose::Knowledge {
            return self.knowledge();
        }
        tickets
            .change(|tickets| {
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
                    done: Some((self.mark.clone(), done)),
                    deliveries,
                })
            })
            .map(Ok)
            .or_else(|error| match error {
                InboundError::Skip(why) => Ok(Err(why)),
                other => Err(other),
            })
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
            if !ours && address != requester && !ticket.participants.contains(&address) {
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
    /// `create_knowledge`); otherwise the action is skipped with a warning.
    fn knowledge(&self) -> Result<Result<Change, String>, InboundError> {
        if let Some(why) = self.automatic {
            return Ok(Err(format!(
                "automatic mail ({why}) writes no knowledge item"
            )));
        }
        let user = &self.requester.user;
        let snapshot = self.ctx.policy.snapshot();
        let allowed = user.kind == UserKind::Staff
            || user
                .roles
                .iter()
                .filter_map(|r| snapshot.role(r))
                .any(|role| {
                    role.permissions
                        .iter()
                        .any(|p| p == "create_knowledge" || p == "admin")
                });
        if !allowed {
            tracing::warn!(login = %user.login, mailbox = %self.mailbox.name,
                "knowledge item not created: the sender lacks create_knowledge (the user is kept)");
            return Ok(Err(format!(
                "{} may not create knowledge items",
                user.login
            )));
        }
        let tickets = self.ctx.store.tickets();
        let change = tickets.change(|tickets| {
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
                done: Some((self.mark.clone(), done)),
                deliveries,
                ..Change::default()
            })
        })?;
        Ok(Ok(change))
    }
}
