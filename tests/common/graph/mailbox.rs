//! The fake Graph's mailboxes, for fetching: messages (id, MIME, `isRead`, folder) in
//! folders (the well-known Inbox, Deleted Items and Sent Items, and top-level folders made
//! through `POST …/mailFolders`), and the requests a fetcher makes, as Graph documents them:
//!
//! - `GET …/mailFolders/{folder}/messages/delta` — the folder's messages (`id`, `isRead`)
//!   `page_size` at a time (less if `Prefer: odata.maxpagesize` asks), each page but the
//!   last with `@odata.nextLink` (`$skiptoken`), the last with `@odata.deltaLink`
//!   (`$deltatoken`), which later returns only what changed since: messages new, changed
//!   (read, moved in) and, with `@removed`, moved out or deleted. An unknown `$deltatoken`
//!   is `410 Gone` (`expire_deltas` forgets them all).
//! - `GET …/messages/{id}/$value` (the MIME), `PATCH …/messages/{id}` (`isRead`),
//!   `POST …/messages/{id}/move` (`destinationId`; the moved message gets a new id, as in
//!   Exchange), `DELETE …/messages/{id}` (to Deleted Items).
//! - Refusals: `403 ErrorAccessDenied` while `forbidden`, `429` with `Retry-After` while
//!   `throttled`, `500` for the next `failing_acks` acknowledgements.
//! - `GET …/mailFolders?$filter=displayName eq '…'`, `POST …/mailFolders`.

use serde_json::Value;
use std::collections::HashMap;

/// One message in a fake mailbox.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub mime: Vec<u8>,
    pub is_read: bool,
    /// `receivedDateTime` (ISO 8601, UTC).
    pub received: String,
    /// The folder's id.
    pub folder: String,
    /// The change counter at its last change.
    pub(super) changed: u64,
}

/// One folder.
#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    pub name: String,
    pub(super) well_known: Option<&'static str>,
}

/// One mailbox.
#[derive(Debug, Default)]
pub struct Box_ {
    pub folders: Vec<Folder>,
    pub messages: Vec<Message>,
    /// Messages that left a folder: (folder id, message id, change counter).
    pub(super) removed: Vec<(String, String, u64)>,
}

/// The delta rounds being paged through: what they return and up to which change.
pub(super) struct Round {
    pub(super) items: Vec<Value>,
    pub(super) upto: u64,
}

/// All mailboxes and what was asked of them.
pub struct Mail {
    boxes: HashMap<String, Box_>,
    /// The change counter.
    pub(super) seq: u64,
    next_id: u64,
    pub(super) rounds: HashMap<String, Round>,
    /// Messages per delta page at most.
    pub page_size: usize,
    /// The delta queries received (their query strings).
    pub deltas: Vec<String>,
    /// `$value` requests per message id.
    pub downloads: HashMap<String, usize>,
    /// `PATCH`, `move` and `DELETE` requests received.
    pub acknowledgements: usize,
    /// Set: every mailbox request is `403 ErrorAccessDenied` (the application lost
    /// `Mail.ReadWrite`).
    pub forbidden: bool,
    /// The next this many mailbox requests are `429` with `Retry-After: 1`.
    pub throttled: usize,
    /// The next this many acknowledgements (`PATCH`, `move`, `DELETE`) are `500`, after
    /// being counted.
    pub failing_acks: usize,
    /// Delta tokens older than this are `410 Gone`.
    pub(super) expired_before: u64,
}

impl Default for Mail {
    fn default() -> Mail {
        Mail {
            boxes: HashMap::new(),
            seq: 0,
            next_id: 0,
            rounds: HashMap::new(),
            page_size: 10,
            deltas: Vec::new(),
            downloads: HashMap::new(),
            acknowledgements: 0,
            forbidden: false,
            throttled: 0,
            failing_acks: 0,
            expired_before: 0,
        }
    }
}

impl Mail {
    /// Mailbox `address` (made with its well-known folders at first use).
    pub fn mailbox(&mut self, address: &str) -> &mut Box_ {
        self.boxes
            .entry(address.to_lowercase())
            .or_insert_with(|| Box_ {
                folders: [
                    ("inbox", "Inbox"),
                    ("deleteditems", "Deleted Items"),
                    ("sentitems", "Sent Items"),
                ]
                .into_iter()
                .map(|(well_known, name)| Folder {
                    id: format!("AAMkFolder-{well_known}"),
                    name: name.into(),
                    well_known: Some(well_known),
                })
                .collect(),
                ..Box_::default()
            })
    }

    pub(super) fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("AAMkAGI2-{}=", self.next_id)
    }

    fn tick(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Puts `mime` in `address`'s Inbox, unread, received now; its id.
    pub fn add(&mut self, address: &str, mime: &[u8]) -> String {
        self.add_received(address, mime, false, "2099-01-01T00:00:00Z")
    }

    /// Puts `mime` in `address`'s Inbox, read or not, received at `received`; its id.
    pub fn add_received(
        &mut self,
        address: &str,
        mime: &[u8],
        read: bool,
        received: &str,
    ) -> String {
        let id = self.fresh_id();
        let changed = self.tick();
        let mailbox = self.mailbox(address);
        let folder = mailbox.folders[0].id.clone();
        mailbox.messages.push(Message {
            id: id.clone(),
            mime: mime.to_vec(),
            is_read: read,
            received: received.to_string(),
            folder,
            changed,
        });
        id
    }

    /// The messages in `address`'s folder named `name` (display name, any case).
    pub fn messages_in(&mut self, address: &str, name: &str) -> Vec<Message> {
        let mailbox = self.mailbox(address);
        let Some(folder) = mailbox
            .folders
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        else {
            return Vec::new();
        };
        let id = folder.id.clone();
        mailbox
            .messages
            .iter()
            .filter(|m| m.folder == id)
            .cloned()
            .collect()
    }

    /// Every delta token given so far answers `410 Gone` from now on.
    pub fn expire_deltas(&mut self) {
        self.expired_before = self.tick();
    }

    /// Marks message `id` read or unread, as a person in Outlook would.
    pub fn set_read(&mut self, address: &str, id: &str, read: bool) {
        let changed = self.tick();
        if let Some(m) = self
            .mailbox(address)
            .messages
            .iter_mut()
            .find(|m| m.id == id)
        {
            m.is_read = read;
            m.changed = changed;
        }
    }

    /// Moves message `id` to folder `folder` (an id); its new id.
    pub(super) fn move_message(&mut self, address: &str, id: &str, folder: &str) -> Option<String> {
        let new_id = self.fresh_id();
        let changed = self.tick();
        let mailbox = self.mailbox(address);
        let message = mailbox.messages.iter_mut().find(|m| m.id == id)?;
        mailbox
            .removed
            .push((message.folder.clone(), id.to_string(), changed));
        message.id = new_id.clone();
        message.folder = folder.to_string();
        message.changed = changed;
        Some(new_id)
    }
}
