//! The tickets a kept message is linked to: the ticket its own Message-ID was recorded
//! for (inbound mail that opened or joined one; a reply sent through Postern), and the
//! tickets of the Message-IDs it replies to.

use crate::store::{ref_key, ArchivedMessage, Store, StoreError};

/// The linked tickets, ascending, without repeats.
pub fn tickets(store: &Store, message: &ArchivedMessage) -> Result<Vec<u64>, StoreError> {
    let mut out = Vec::new();
    if let Some(id) = &message.message_id {
        out.extend(store.tickets().ticket_of(id)?);
        let bare = ref_key(id);
        for written in [format!("<{bare}>"), bare, id.clone()] {
            if let Some(record) = store.message_ids().get(&written)? {
                out.extend(record.ticket);
                break;
            }
        }
    }
    for reference in &message.refs {
        out.extend(store.tickets().ticket_of(reference)?);
    }
    // A ticket deleted since is no link any more.
    let mut live = Vec::with_capacity(out.len());
    for ticket in out {
        if !live.contains(&ticket) && store.tickets().get(ticket)?.is_some() {
            live.push(ticket);
        }
    }
    live.sort_unstable();
    Ok(live)
}
