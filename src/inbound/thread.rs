//! Threading (SPEC §7): a message joins a ticket when its `In-Reply-To` or `References`
//! hold a Message-ID recorded for it (inbound, or outbound through the gateway), or when
//! its subject carries the tag `[#<id>]` and the sender is the ticket's requester or a
//! participant (addresses compared in their canonical form, `policy::address`). Anything
//! else opens a new ticket.

use super::parse::Parsed;
use super::InboundError;
use crate::policy::normalize;
use crate::store::{Store, Ticket, User};

/// The ticket `parsed` (from `sender`) joins, if any.
pub fn find(store: &Store, parsed: &Parsed, sender: &User) -> Result<Option<Ticket>, InboundError> {
    let referenced = parsed
        .in_reply_to
        .iter()
        .chain(parsed.references.iter().rev());
    for id in referenced {
        if let Some(ticket) = by_message_id(store, id)? {
            return Ok(Some(ticket));
        }
    }
    let Some(id) = subject_tag(&parsed.subject) else {
        return Ok(None);
    };
    let Some(ticket) = store.tickets().get(id)? else {
        return Ok(None);
    };
    match knows(&ticket, sender, &parsed.from) {
        true => Ok(Some(ticket)),
        false => {
            tracing::info!(ticket = id, from = %parsed.from,
                "subject tag ignored: the sender is neither the requester nor a participant");
            Ok(None)
        }
    }
}

/// True if `sender`, writing from `from` (any spelling), is `ticket`'s requester or one of
/// its participants. Participants stored under older rules (lower-cased, quotes kept)
/// compare by their canonical key too.
pub fn knows(ticket: &Ticket, sender: &User, from: &str) -> bool {
    let address = normalize(from);
    ticket.requester == sender.id || ticket.participants.iter().any(|p| normalize(p) == address)
}

/// The ticket a Message-ID belongs to: the ticket store's index, else the registry of
/// mail sent through the gateway.
fn by_message_id(store: &Store, id: &str) -> Result<Option<Ticket>, InboundError> {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    let ticket = match store.tickets().ticket_of(id)? {
        Some(ticket) => Some(ticket),
        None => store
            .message_ids()
            .get(&format!("<{bare}>"))?
            .and_then(|record| record.ticket),
    };
    match ticket {
        Some(ticket) => Ok(store.tickets().get(ticket)?),
        None => Ok(None),
    }
}

/// The ticket id in a subject's `[#<id>]` tag.
pub fn subject_tag(subject: &str) -> Option<u64> {
    let mut rest = subject;
    while let Some(at) = rest.find("[#") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(']') {
            if let Ok(id) = rest[..end].trim().parse::<u64>() {
                return Some(id);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::subject_tag;

    #[test]
    fn the_subject_tag_is_found_anywhere_and_must_be_a_number() {
        assert_eq!(subject_tag("Re: [#42] printer"), Some(42));
        assert_eq!(subject_tag("[#x] then [#7]"), Some(7));
        assert_eq!(subject_tag("no tag [# ]"), None);
        assert_eq!(subject_tag("[#12"), None);
    }
}
