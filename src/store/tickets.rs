//! The built-in ticket store (SPEC §7): tickets with their articles (messages, comments,
//! notes) and attachments, knowledge items, the Message-ID → ticket index threading reads,
//! and the marks that make the inbound hook idempotent (a message redelivered after a crash
//! finds its mark and creates nothing twice).
//!
//! Everything lives in one tree under key prefixes, so one change — ticket, article,
//! attachments, index entries, the mark and the webhook deliveries it causes — is one
//! atomic commit and one sync.
//!
//! A change is a read-modify-write checked optimistically, so it holds across nodes that
//! share the store: the point reads `build` makes (a ticket, a mark, a Message-ID's
//! ticket) are recorded, and the commit applies only if each still holds what was read;
//! otherwise `build` runs again on the store as it is now. So the same message delivered
//! to two nodes at once makes one ticket: the second commit finds the first one's mark.
//! Writers of one process are also serialised by a mutex, so they never retry against
//! each other. Reads take no lock. It decides nothing: the `inbound` module says what a
//! message becomes.

use super::kv::{holds, Batch, Condition, Kv, Tree};
use super::records::{decode, encode, key, scan, text_key};
use super::webhooks::{write_into, Delivery};
use super::{ids::Ids, StoreError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How often a change is tried again after another node changed what it read.
const RETRIES: usize = 16;

const TICKET: &[u8] = b"t/";
const ARTICLE: &[u8] = b"a/";
const FILE: &[u8] = b"f/";
const REF: &[u8] = b"r/";
const KNOWLEDGE: &[u8] = b"k/";
const DONE: &[u8] = b"d/";
/// How a record that does not decode is named.
const WHAT: &str = "ticket store";

/// How a ticket came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Email,
    Api,
}

/// Whether a ticket is being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    Open,
    Closed,
}

/// A ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: u64,
    /// The inbound mailbox (account id) it belongs to.
    pub mailbox: u64,
    pub subject: String,
    /// The requester's user id.
    pub requester: u64,
    /// Lower-cased addresses of the other people on the conversation.
    #[serde(default)]
    pub participants: Vec<String>,
    pub origin: Origin,
    pub status: TicketStatus,
    /// Every Message-ID recorded for it (inbound and outbound).
    #[serde(default)]
    pub message_ids: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// What an article of a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArticleKind {
    /// A message that opened or joined the ticket.
    Message,
    /// A comment (from a `comment` mailbox).
    Comment,
    /// An automatic reply kept as a note (never answered).
    Note,
}

/// An attachment's description; the bytes are fetched separately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttachmentInfo {
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

/// The authentication verdicts of an inbound message (`pass`, `fail`, `none`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Verdicts {
    pub spf: String,
    pub dkim: String,
    pub dmarc: String,
    pub arc: String,
    /// The `Authentication-Results` field's value, unfolded.
    #[serde(default)]
    pub results: String,
}

/// One message, comment or note of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Article {
    pub id: u64,
    pub ticket: u64,
    pub kind: ArticleKind,
    /// The sender's user id.
    pub author: u64,
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    pub subject: String,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentInfo>,
    #[serde(default)]
    pub verdicts: Option<Verdicts>,
    pub created_at: u64,
}

/// A knowledge item (from a `knowledge` mailbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KnowledgeItem {
    pub id: u64,
    pub mailbox: u64,
    pub author: u64,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub message_id: Option<String>,
    pub created_at: u64,
}

/// What the hook did with one (message, mailbox): kept so a redelivery repeats nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    pub ticket: Option<u64>,
    #[serde(default)]
    pub article: Option<u64>,
    #[serde(default)]
    pub knowledge: Option<u64>,
}

/// One atomic change: what the hook decided for one message (or the API for one request).
#[derive(Debug, Default)]
pub struct Change {
    /// The ticket as it is to be stored (new or updated).
    pub ticket: Option<Ticket>,
    /// A new article and its attachments' bytes, in the order of `attachments`.
    pub article: Option<(Article, Vec<Vec<u8>>)>,
    pub knowledge: Option<KnowledgeItem>,
    /// Message-IDs to index for `ticket`.
    pub refs: Vec<String>,
    /// Idempotence marks (the message's queue id and mailbox; its Message-ID and mailbox)
    /// and what was done.
    pub marks: Vec<(String, Done)>,
    /// Webhook deliveries of the events this change causes (written in the same
    /// transaction, so an event is never lost nor sent for a change that was not made).
    pub deliveries: Vec<Delivery>,
}

/// The ticket store.
#[derive(Clone)]
pub struct Tickets {
    ids: Ids,
    tree: Tree,
    /// The webhooks tree, for deliveries queued with a change.
    hooks: Tree,
    kv: Kv,
    writer: Arc<Mutex<()>>,
    /// While `build` of a change runs: the point reads it made, as conditions of its commit.
    reads: Option<Arc<Mutex<Vec<Condition>>>>,
    /// Set once any ticket exists (never cleared): lets the submission path skip threading
    /// work on installations without a helpdesk.
    any: Arc<AtomicBool>,
}

/// The index key of a Message-ID: without angle brackets, lower-cased.
pub fn ref_key(message_id: &str) -> String {
    message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

impl Tickets {
    pub(super) fn open(kv: &Kv, hooks: Tree, ids: Ids) -> Result<Tickets, StoreError> {
        let tree = kv.open_tree("tickets")?;
        let any = tree.has_prefix(TICKET)?;
        Ok(Tickets {
            ids,
            tree,
            hooks,
            kv: kv.clone(),
            writer: Arc::default(),
            reads: None,
            any: Arc::new(AtomicBool::new(any)),
        })
    }

    /// True if a ticket was ever stored here (as this node last looked: see `look_again`).
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// Looks again whether a ticket exists (another node sharing the store may have made
    /// the first one); one short read, none once a ticket is known.
    pub fn look_again(&self) -> Result<bool, StoreError> {
        if !self.any() && self.tree.has_prefix(TICKET)? {
            self.any.store(true, Ordering::Release);
        }
        Ok(self.any())
    }

    /// A fresh id for a ticket, article or knowledge item.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        self.ids.next()
    }

    /// Runs `build` and writes the change it returns in one transaction, made durable
    /// before return. The change is written only if what `build` read is unchanged (no
    /// writer of this process runs meanwhile; a writer on another node makes `build` run
    /// again), so a read-modify-write of a ticket is never lost. Blocking.
    pub fn change<E: From<StoreError>>(
        &self,
        build: impl Fn(&Tickets) -> Result<Change, E>,
    ) -> Result<Change, E> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..RETRIES {
            let reads = Arc::new(Mutex::new(Vec::new()));
            let view = Tickets {
                reads: Some(reads.clone()),
                ..self.clone()
            };
            let change = build(&view)?;
            let conditions = std::mem::take(&mut *reads.lock().unwrap_or_else(|p| p.into_inner()));
            if self.write(&change, &conditions)? {
                return Ok(change);
            }
        }
        Err(StoreError::Task("a ticket change kept meeting changes made elsewhere".into()).into())
    }

    /// The raw record at `key`, recorded as a condition while a change is built.
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let raw = self.tree.get(key)?;
        if let Some(reads) = &self.reads {
            let condition = holds(&self.tree, key, raw.as_deref());
            reads
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(condition);
        }
        Ok(raw)
    }

    fn record<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.read(key)?.map(|raw| decode(&raw, WHAT)).transpose()
    }

    /// Writes `change` if every condition holds; whether it did.
    fn write(&self, change: &Change, conditions: &[Condition]) -> Result<bool, StoreError> {
        let mut batch = Batch::default();
        let mut conditions = conditions.to_vec();
        if let Some(ticket) = &change.ticket {
            batch.insert(&self.tree, key(TICKET, &[ticket.id]), encode(ticket)?);
            // A Message-ID keeps the ticket it was first recorded for: a later message that
            // reuses it cannot take the thread over.
            for id in &change.refs {
                let index = text_key(REF, &ref_key(id));
                if !self.tree.contains_key(&index)? {
                    conditions.push(holds(&self.tree, &index, None));
                    batch.insert(&self.tree, index, ticket.id.to_be_bytes());
                }
            }
        }
        if let Some((article, files)) = &change.article {
            batch.insert(
                &self.tree,
                key(ARTICLE, &[article.ticket, article.id]),
                encode(article)?,
            );
            for (n, bytes) in files.iter().enumerate() {
                batch.insert(&self.tree, key(FILE, &[article.id, n as u64]), bytes);
            }
        }
        if let Some(item) = &change.knowledge {
            batch.insert(&self.tree, key(KNOWLEDGE, &[item.id]), encode(item)?);
        }
        // A mark is written once: another node that wrote it first makes this commit
        // fail, and `build`, run again, finds it.
        for (mark, done) in &change.marks {
            let at = text_key(DONE, mark);
            conditions.push(holds(&self.tree, &at, None));
            batch.insert(&self.tree, at, encode(done)?);
        }
        for delivery in &change.deliveries {
            write_into(&mut batch, &self.hooks, delivery)?;
        }
        if !self.kv.commit(batch, &conditions)? {
            return Ok(false);
        }
        if change.ticket.is_some() {
            self.any.store(true, Ordering::Release);
        }
        self.kv.flush()?;
        Ok(true)
    }

    /// What was done for the idempotence mark `mark`, if anything.
    pub fn done(&self, mark: &str) -> Result<Option<Done>, StoreError> {
        self.record(&text_key(DONE, mark))
    }

    /// The ticket a Message-ID was recorded for.
    pub fn ticket_of(&self, message_id: &str) -> Result<Option<u64>, StoreError> {
        let Some(raw) = self.read(&text_key(REF, &ref_key(message_id)))? else {
            return Ok(None);
        };
        let bytes: [u8; 8] = raw
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("ticket reference".into()))?;
        Ok(Some(u64::from_be_bytes(bytes)))
    }

    pub fn get(&self, id: u64) -> Result<Option<Ticket>, StoreError> {
        self.record(&key(TICKET, &[id]))
    }

    /// Every ticket, oldest first.
    pub fn all(&self) -> Result<Vec<Ticket>, StoreError> {
        scan(&self.tree, TICKET, WHAT)
    }

    /// The articles of ticket `id`, oldest first.
    pub fn articles(&self, id: u64) -> Result<Vec<Article>, StoreError> {
        scan(&self.tree, &key(ARTICLE, &[id]), WHAT)
    }

    /// The bytes of attachment `n` of article `article`.
    pub fn attachment(&self, article: u64, n: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.tree.get(key(FILE, &[article, n]))
    }

    /// Every knowledge item, oldest first.
    pub fn knowledge(&self) -> Result<Vec<KnowledgeItem>, StoreError> {
        scan(&self.tree, KNOWLEDGE, WHAT)
    }

    /// Deletes tickets with everything recorded for them; durable on return.
    pub fn delete(&self, ids: &[u64]) -> Result<(), StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = Batch::default();
        for &id in ids {
            let Some(ticket) = self.get(id)? else {
                continue;
            };
            for article in self.articles(id)? {
                for n in 0..article.attachments.len() as u64 {
                    batch.remove(&self.tree, key(FILE, &[article.id, n]));
                }
                batch.remove(&self.tree, key(ARTICLE, &[id, article.id]));
            }
            for message_id in &ticket.message_ids {
                let index = text_key(REF, &ref_key(message_id));
                if self.tree.get(&index)?.as_deref() == Some(&id.to_be_bytes()[..]) {
                    batch.remove(&self.tree, index);
                }
            }
            batch.remove(&self.tree, key(TICKET, &[id]));
        }
        self.kv.commit(batch, &[])?;
        self.kv.flush()
    }
}
