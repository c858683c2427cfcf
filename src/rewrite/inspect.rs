//! Reading the client's header block before the send-as decision (SPEC §3.1): the one
//! `From` mailbox, the `Sender`, the resent originators (`Resent-From`, `Resent-Sender`),
//! the `X-Postern-Account` hint and what is missing. Refuses anything ambiguous in `From`
//! instead of guessing; a malformed resent field is reported in [`Inspected::resent`] (only
//! submission refuses it: inbound mail is not the sender's to vouch for). Never reads past
//! the header block.

use super::address::{parse_address_list, Address};
use super::fields::{check_octets, unfold, Field, Fields};
use super::{header_block_len, RewriteError};

/// A parsed mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name: RFC 2047 encoded words decoded, every control character (C0, DEL,
    /// C1, U+2028/U+2029) replaced by a space, trimmed; `None` if nothing is left.
    pub display: Option<String>,
    /// `local@domain` as written (a quoted local part keeps its quotes), comments and
    /// folding whitespace removed; UTF-8 allowed (SMTPUTF8).
    pub address: String,
}

/// What a scan of the client's header block found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// Octets of the header block including the empty line; the whole message if it has
    /// no body. The body starts right after it.
    pub header_len: usize,
    /// The one `From` mailbox: it picks the account.
    pub from: Mailbox,
    /// The `Sender` mailbox, when there is exactly one `Sender` field holding one mailbox.
    pub sender: Option<Mailbox>,
    /// The value of `X-Postern-Account` (unfolded, trimmed), when present and not empty.
    pub account_hint: Option<String>,
    /// The client sent a `Message-ID` field.
    pub has_message_id: bool,
    /// The client sent a `Date` field.
    pub has_date: bool,
    /// Number of `Received` fields (loop detection).
    pub received: usize,
    /// The `Resent-From` and `Resent-Sender` fields in order, or why one of them cannot be
    /// read (a submission refuses it, an inbound listener ignores it).
    pub resent: Result<Vec<Resent>, RewriteError>,
    /// Where the values of `In-Reply-To` and `References` are in the message (what a reply
    /// threads to; read with `thread_refs` only when needed).
    pub threading: [Option<std::ops::Range<usize>>; 2],
}

/// Which resent originator field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResentField {
    /// `Resent-From`: a mailbox list (RFC 5322 §3.6.6).
    From,
    /// `Resent-Sender`: exactly one mailbox.
    Sender,
}

impl ResentField {
    /// The field name as Postern writes it.
    pub fn name(self) -> &'static str {
        match self {
            ResentField::From => "Resent-From",
            ResentField::Sender => "Resent-Sender",
        }
    }
}

/// One `Resent-From` or `Resent-Sender` field, read: each of its mailboxes must be an
/// address the submitting principal may send as (SPEC §12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resent {
    /// Which field.
    pub field: ResentField,
    /// Its mailboxes, in order (never empty; exactly one for `Resent-Sender`).
    pub mailboxes: Vec<Mailbox>,
}

/// The fields `inspect` cares about, gathered in one pass.
#[derive(Default)]
struct Seen<'a> {
    from: Option<Field<'a>>,
    froms: usize,
    sender: Option<Field<'a>>,
    senders: usize,
    hint: Option<Field<'a>>,
    hints: usize,
    has_message_id: bool,
    has_date: bool,
    received: usize,
    in_reply_to: Option<Field<'a>>,
    references: Option<Field<'a>>,
    resent: Vec<(ResentField, Field<'a>)>,
}

/// Scans the header block of `message` (CRLF lines). Checks, in this order: NUL octets,
/// bare CR/LF, field syntax, then `From` (count, then content), then `X-Postern-Account`.
pub fn inspect(message: &[u8]) -> Result<Inspected, RewriteError> {
    let header_len = header_block_len(message);
    check_octets(&message[..header_len])?;
    let mut seen = Seen::default();
    for field in Fields::new(message, header_len) {
        seen.note(field?);
    }
    let from = match (seen.froms, seen.from) {
        (1, Some(field)) => one_mailbox(field.value, seen.senders > 0)?,
        (0, _) => return Err(RewriteError::NoFrom),
        _ => return Err(RewriteError::MultipleFrom),
    };
    let sender = match (seen.senders, seen.sender) {
        (1, Some(field)) => one_mailbox(field.value, true).ok(),
        _ => None,
    };
    Ok(Inspected {
        header_len,
        from,
        sender,
        account_hint: account_hint(seen.hints, seen.hint)?,
        resent: seen
            .resent
            .iter()
            .map(|&(k, f)| resent(k, f.value))
            .collect(),
        has_message_id: seen.has_message_id,
        has_date: seen.has_date,
        received: seen.received,
        threading: [
            seen.in_reply_to.map(|f| span(message, f.value)),
            seen.references.map(|f| span(message, f.value)),
        ],
    })
}

impl<'a> Seen<'a> {
    /// Dispatches on the name's first letter, so most fields cost one comparison.
    fn note(&mut self, field: Field<'a>) {
        let first = field.name.first().map(u8::to_ascii_lowercase);
        match first {
            Some(b'f') if field.is("from") => {
                self.froms += 1;
                self.from.get_or_insert(field);
            }
            Some(b's') if field.is("sender") => {
                self.senders += 1;
                self.sender.get_or_insert(field);
            }
            Some(b'x') if field.is("x-postern-account") => {
                self.hints += 1;
                self.hint.get_or_insert(field);
            }
            Some(b'm') if field.is("message-id") => self.has_message_id = true,
            Some(b'd') if field.is("date") => self.has_date = true,
            Some(b'r') if field.is("received") => self.received += 1,
            Some(b'r') if field.is("resent-from") => self.resent.push((ResentField::From, field)),
            Some(b'r') if field.is("resent-sender") => {
                self.resent.push((ResentField::Sender, field));
            }
            Some(b'r') if field.is("references") => {
                self.references.get_or_insert(field);
            }
            Some(b'i') if field.is("in-reply-to") => {
                self.in_reply_to.get_or_insert(field);
            }
            _ => {}
        }
    }
}

/// The position of `part` (a slice of `whole`) in `whole`.
fn span(whole: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// Most Message-IDs taken from the threading fields.
const MAX_THREAD_REFS: usize = 20;

/// The Message-IDs of `In-Reply-To` then `References` of `message` (the bytes `inspect`
/// read, before any rewrite): every `<...>` token, with its angle brackets, as written, at
/// most `MAX_THREAD_REFS`.
pub fn thread_refs(message: &[u8], inspected: &Inspected) -> Vec<String> {
    let mut refs = Vec::new();
    for range in inspected.threading.iter().flatten() {
        let Some(mut rest) = message.get(range.clone()) else {
            continue;
        };
        while let Some(open) = rest.iter().position(|&b| b == b'<') {
            let Some(len) = rest[open..].iter().position(|&b| b == b'>') else {
                break;
            };
            let id = &rest[open..open + len + 1];
            if refs.len() < MAX_THREAD_REFS
                && id.len() > 2
                && !id.iter().any(u8::is_ascii_whitespace)
            {
                refs.push(String::from_utf8_lossy(id).into_owned());
            }
            rest = &rest[open + len + 1..];
        }
    }
    refs
}

/// The single mailbox of an address field, or why there is not exactly one.
fn one_mailbox(value: &[u8], sender_present: bool) -> Result<Mailbox, RewriteError> {
    let mut list = parse_address_list(value)?;
    if list.iter().any(|a| matches!(a, Address::Group)) {
        return Err(RewriteError::FromGroup);
    }
    match (list.pop(), list.is_empty()) {
        (None, _) => Err(RewriteError::FromEmpty),
        (Some(Address::Mailbox(mailbox)), true) => Ok(mailbox),
        _ if sender_present => Err(RewriteError::FromList),
        _ => Err(RewriteError::FromListWithoutSender),
    }
}

/// One resent originator field read: a non-empty list of mailboxes, no group, exactly one
/// mailbox for `Resent-Sender`.
fn resent(field: ResentField, value: &[u8]) -> Result<Resent, RewriteError> {
    let error = match field {
        ResentField::From => RewriteError::ResentFromUnparsable,
        ResentField::Sender => RewriteError::ResentSenderUnparsable,
    };
    let list = parse_address_list(value).map_err(|_| error)?;
    let mut mailboxes = Vec::with_capacity(list.len());
    for address in list {
        match address {
            Address::Mailbox(mailbox) => mailboxes.push(mailbox),
            Address::Group => return Err(error),
        }
    }
    let count_ok = match field {
        ResentField::From => !mailboxes.is_empty(),
        ResentField::Sender => mailboxes.len() == 1,
    };
    match count_ok {
        true => Ok(Resent { field, mailboxes }),
        false => Err(error),
    }
}

fn account_hint(count: usize, field: Option<Field<'_>>) -> Result<Option<String>, RewriteError> {
    let Some(field) = field else {
        return Ok(None);
    };
    if count > 1 {
        return Err(RewriteError::MultipleAccountHints);
    }
    let value =
        String::from_utf8(unfold(field.value)).map_err(|_| RewriteError::AccountHintUnparsable)?;
    Ok((!value.is_empty()).then_some(value))
}
