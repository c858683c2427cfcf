//! The archive as its readers see it (`GET /api/v1/archive`): each catalogued message
//! once (as last recorded: a message catalogued again after a restart counts once),
//! messages whose retention ended left out, the filters of a listing, the tickets each one
//! is linked to (resolved now: a ticket may have been made or deleted since), and a
//! message's bytes read back from its journal record under the purge guard, as backup
//! jobs read them.
//!
//! Who may read which message is not decided here: the caller passes that in as a
//! predicate, checked before anything is read. A listing scans the whole catalog (one
//! sled record per batch of messages, so a scan reads few records); it is ordered by
//! queue id, and `after` pages through it.

use super::{links, ArchiveError, Catalog};
use crate::policy::address;
use crate::store::{ArchivedMessage, Direction, Store, StoreError};
use std::collections::BTreeMap;

/// What a listing asks for. Times are Unix milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only messages with a queue id above this one (the last one of the previous page).
    pub after: u64,
    /// The email account the message went through (or arrived for).
    pub account: Option<u64>,
    pub direction: Option<Direction>,
    /// The envelope sender, the header `From` or a recipient is this address (compared in
    /// canonical form, SPEC §12).
    pub address: Option<String>,
    /// Linked to this ticket.
    pub ticket: Option<u64>,
    /// Accepted at or after.
    pub since: Option<u64>,
    /// Accepted before.
    pub until: Option<u64>,
    /// The most messages returned.
    pub limit: usize,
}

/// The messages that match `filter` and `may_read`, ascending by queue id, at most
/// `filter.limit`, with their linked tickets. `now` is Unix milliseconds. Blocking.
pub fn list(
    store: &Store,
    filter: &Filter,
    now: u64,
    may_read: impl Fn(&ArchivedMessage) -> bool,
) -> Result<Vec<ArchivedMessage>, StoreError> {
    let wanted = filter.address.as_deref().map(address::key);
    let mut out = Vec::new();
    let page = live(store, now)?
        .into_iter()
        .filter(|(id, _)| *id > filter.after);
    for (_, mut message) in page {
        if out.len() >= filter.limit {
            break;
        }
        if !matches(filter, wanted.as_deref(), &message) || !may_read(&message) {
            continue;
        }
        message.tickets = links::tickets(store, &message)?;
        if filter.ticket.is_some_and(|t| !message.tickets.contains(&t)) {
            continue;
        }
        out.push(message);
    }
    Ok(out)
}

/// Message `id` with its linked tickets, if it is kept and `may_read` it. Blocking.
pub fn find(
    store: &Store,
    id: u64,
    now: u64,
    may_read: impl Fn(&ArchivedMessage) -> bool,
) -> Result<Option<ArchivedMessage>, StoreError> {
    let Some(mut message) = live(store, now)?.remove(&id).filter(|m| may_read(m)) else {
        return Ok(None);
    };
    message.tickets = links::tickets(store, &message)?;
    Ok(Some(message))
}

/// The raw bytes of message `id`, if it is kept and `may_read` it: read from its journal
/// record while the purge is kept away (it could punch the record out mid-read). Blocking.
pub fn raw(
    catalog: &Catalog,
    id: u64,
    now: u64,
    may_read: impl Fn(&ArchivedMessage) -> bool,
) -> Result<Option<(ArchivedMessage, Vec<u8>)>, ArchiveError> {
    let _no_purge = catalog.reading();
    let Some(message) = live(&catalog.store, now)?
        .remove(&id)
        .filter(|m| may_read(m))
    else {
        return Ok(None);
    };
    if !message.is_on(catalog.store.node()) {
        return Err(ArchiveError::OnNode {
            id,
            node: message.node,
        });
    }
    let e = message.extent;
    let bytes = catalog.spool.read_kept(e.seg, e.offset, e.len)?;
    Ok(Some((message, bytes)))
}

/// Every catalogued message whose retention has not ended at `now`, by queue id; a
/// message recorded twice as its last record says.
fn live(store: &Store, now: u64) -> Result<BTreeMap<u64, ArchivedMessage>, StoreError> {
    let mut found = BTreeMap::new();
    for batch in store.archive().batches() {
        for message in batch?.1 {
            found.insert(message.id, message);
        }
    }
    found.retain(|_, m| m.expires_at.is_none_or(|at| at > now));
    Ok(found)
}

/// Whether `message` passes every filter but the ticket (which needs the store);
/// `address` is the wanted address's key.
fn matches(filter: &Filter, address: Option<&str>, message: &ArchivedMessage) -> bool {
    let at = message.received_at;
    filter.account.is_none_or(|a| message.account == Some(a))
        && filter.direction.is_none_or(|d| message.direction == d)
        && filter.since.is_none_or(|since| at >= since)
        && filter.until.is_none_or(|until| at < until)
        && address.is_none_or(|wanted| {
            std::iter::once(&message.mail_from)
                .chain(std::iter::once(&message.from))
                .chain(message.rcpts.iter())
                .any(|a| !a.is_empty() && address::key(a) == wanted)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Extent;

    fn message(id: u64, mail_from: &str, rcpt: &str) -> ArchivedMessage {
        ArchivedMessage {
            id,
            node: String::new(),
            direction: Direction::Outbound,
            owners: vec![7],
            account: Some(3),
            mail_from: mail_from.into(),
            rcpts: vec![rcpt.into()],
            from: String::new(),
            subject: String::new(),
            date: None,
            message_id: None,
            refs: Vec::new(),
            tickets: Vec::new(),
            received_at: id * 1000,
            expires_at: None,
            size: 1,
            extent: Extent {
                seg: 0,
                offset: 0,
                len: 1,
                record_start: 0,
            },
        }
    }

    #[test]
    fn addresses_compare_in_canonical_form_and_times_are_half_open() {
        let m = message(5, "Ann@Example.COM", "\"bob\"@example.org");
        let key = |a: &str| address::key(a);
        let all = Filter::default();
        assert!(matches(&all, Some(&key("ann@example.com")), &m));
        assert!(matches(&all, Some(&key("bob@EXAMPLE.org")), &m));
        assert!(!matches(&all, Some(&key("carl@example.org")), &m));
        let window = |since, until| Filter {
            since,
            until,
            ..Filter::default()
        };
        assert!(matches(&window(Some(5000), Some(5001)), None, &m));
        assert!(!matches(&window(None, Some(5000)), None, &m));
        assert!(!matches(&window(Some(5001), None), None, &m));
        let other_account = Filter {
            account: Some(4),
            ..Filter::default()
        };
        assert!(!matches(&other_account, None, &m));
    }

    #[test]
    fn a_message_catalogued_twice_is_listed_once_and_expired_ones_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut expired = message(2, "a@x.example", "b@x.example");
        expired.expires_at = Some(10);
        store
            .archive()
            .put(&[message(1, "a@x.example", "b@x.example"), expired])
            .unwrap();
        let mut again = message(1, "a@x.example", "b@x.example");
        again.subject = "again".into();
        store.archive().put(&[again]).unwrap();
        let filter = Filter {
            limit: 10,
            ..Filter::default()
        };
        let listed = list(&store, &filter, 20, |_| true).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].subject, "again");
        assert!(list(&store, &filter, 20, |_| false).unwrap().is_empty());
        assert!(find(&store, 2, 20, |_| true).unwrap().is_none());
        assert!(find(&store, 2, 5, |_| true).unwrap().is_some());
    }
}
