//! Writing the rewritten header block (SPEC §3.3) in place, in front of an untouched body.
//! Owns the order and the set of fields written (the trace field and the client's leading
//! `Received` fields, then `From`, `Sender` and `Reply-To`, then the client's other fields
//! in their order); the body is never read, copied or changed, and it is not moved either
//! when the caller left enough headroom before the message.

use super::encode::{mailbox_field, mailbox_list_field, plain_field};
use super::fields::{unfold, Field, Fields};
use super::inspect::{Inspected, Resent};

/// What to write: the outcome of the send-as decision for one message.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// Display name for `From` (raw text; encoded here). `None` writes `From: <address>`.
    pub from_display: Option<&'a str>,
    /// The address `From` shows.
    pub from_address: &'a str,
    /// `Some((display, address))` writes one `Sender` right after `From`; `None` writes none.
    pub sender: Option<(Option<&'a str>, &'a str)>,
    /// `Some(address)` replaces every `Reply-To` with one `Reply-To: <address>`, written
    /// right after `From`/`Sender`; `None` keeps the client's `Reply-To` fields.
    pub reply_to: Option<&'a str>,
    /// `Some(fields)` drops every `Resent-From` and `Resent-Sender` field of the client and
    /// writes `fields[i]` where its i-th one stood (display names re-encoded like `From`'s);
    /// `None` keeps the client's as sent.
    pub resent: Option<&'a [Resent]>,
    /// Domain of a generated `Message-ID`.
    pub message_id_domain: &'a str,
    /// Unique token (the queue id) of a generated `Message-ID`.
    pub unique: &'a str,
    /// RFC 5322 date written when the client sent no `Date`.
    pub date: &'a str,
    /// A complete `Received:` field (CRLF-terminated), written first, as is (a missing
    /// final CRLF is added).
    pub trace: &'a str,
}

/// Rewrites the header block of the message at `buf[start..]`, whose body begins at
/// `start + inspected.header_len` (`inspected` must come from [`super::inspect`] on exactly
/// `buf[start..]`).
///
/// The new block is written so that it ends exactly where the body begins: with headroom
/// before `start` (the caller reserves it; 8 KiB plus the trace field is plenty) the body
/// is neither moved nor copied and `buf` is not reallocated. Only when the new block is
/// longer than `start + header_len` is the buffer spliced, which moves the body once.
///
/// Returns the offset in `buf` where the rewritten message now starts, and the Message-ID
/// in effect (the client's, unfolded and trimmed, or the generated one, both with their
/// angle brackets as written).
///
/// # Panics
/// If `start + inspected.header_len > buf.len()`.
pub fn apply(
    buf: &mut Vec<u8>,
    start: usize,
    inspected: &Inspected,
    plan: &Plan<'_>,
) -> (usize, String) {
    let body_start = start + inspected.header_len;
    let (header, message_id) = build(&buf[start..body_start], plan);
    let new_start = match body_start.checked_sub(header.len()) {
        Some(new_start) => {
            buf[new_start..body_start].copy_from_slice(&header);
            new_start
        }
        None => {
            buf.splice(..body_start, header);
            0
        }
    };
    (new_start, message_id)
}

/// The new header block (empty line included) for the client's block `old`.
fn build(old: &[u8], plan: &Plan<'_>) -> (Vec<u8>, String) {
    let mut out = Vec::with_capacity(old.len() + plan.trace.len() + 256);
    out.extend_from_slice(plan.trace.as_bytes());
    if !plan.trace.is_empty() && !plan.trace.ends_with("\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    // Postern's own originator fields come right under the trace block (its own trace
    // field and the client's leading `Received` fields): no other client field before them
    // can make another parser lose them (mail-parser 0.11 swallows the line after a
    // `Date`/`Resent-Date` value ending in `+A`, say).
    let mut from_written = false;
    let mut message_id = None;
    let mut has_date = false;
    let mut resent = plan.resent.map(|r| r.iter());
    // `inspect` accepted this block, so every line belongs to a field; were it not so, a
    // line that is not a field would be dropped here, never copied.
    for field in Fields::new(old, old.len()).flatten() {
        if !from_written && !field.is("received") {
            write_from(&mut out, plan);
            from_written = true;
        }
        match classify(&field, plan) {
            Action::Keep => keep(&mut out, &field),
            Action::Drop => {}
            Action::Resent => match resent.as_mut() {
                Some(planned) => {
                    if let Some(field) = planned.next() {
                        write_resent(&mut out, field);
                    }
                }
                None => keep(&mut out, &field),
            },
            Action::MessageId => {
                if message_id.is_none() {
                    message_id = Some(String::from_utf8_lossy(&unfold(field.value)).into_owned());
                }
                keep(&mut out, &field);
            }
            Action::Date => {
                has_date = true;
                keep(&mut out, &field);
            }
        }
    }
    if !from_written {
        write_from(&mut out, plan);
    }
    let message_id = message_id.unwrap_or_else(|| {
        let id = generated_id(plan);
        plain_field(&mut out, "Message-ID", &id);
        id
    });
    if !has_date {
        plain_field(&mut out, "Date", plan.date);
    }
    out.extend_from_slice(b"\r\n");
    (out, message_id)
}

/// What happens to one of the client's fields.
enum Action {
    Keep,
    Drop,
    /// `Resent-From` or `Resent-Sender`.
    Resent,
    MessageId,
    Date,
}

fn classify(field: &Field<'_>, plan: &Plan<'_>) -> Action {
    let dropped = field.is("from")
        || field.is("sender")
        || field.is("bcc")
        || field.is("return-path")
        || (field.is("reply-to") && plan.reply_to.is_some())
        || field
            .name
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"x-postern-"));
    if dropped {
        Action::Drop
    } else if field.is("resent-from") || field.is("resent-sender") {
        Action::Resent
    } else if field.is("message-id") {
        Action::MessageId
    } else if field.is("date") {
        Action::Date
    } else {
        Action::Keep
    }
}

/// The client's field byte-for-byte (a CRLF added when the last line had none).
fn keep(out: &mut Vec<u8>, field: &Field<'_>) {
    out.extend_from_slice(field.raw);
    if !field.ends_with_crlf() {
        out.extend_from_slice(b"\r\n");
    }
}

/// `From`, then `Sender` and `Reply-To` when the plan has them.
fn write_from(out: &mut Vec<u8>, plan: &Plan<'_>) {
    mailbox_field(out, "From", plan.from_display, plan.from_address);
    if let Some((display, address)) = plan.sender {
        mailbox_field(out, "Sender", display, address);
    }
    if let Some(address) = plan.reply_to {
        mailbox_field(out, "Reply-To", None, address);
    }
}

/// One resent originator field, each mailbox's display name re-encoded.
fn write_resent(out: &mut Vec<u8>, resent: &Resent) {
    let list: Vec<(Option<&str>, &str)> = resent
        .mailboxes
        .iter()
        .map(|m| (m.display.as_deref(), m.address.as_str()))
        .collect();
    mailbox_list_field(out, resent.field.name(), &list);
}

/// `<{unique}.{16 hex}@{domain}>`: the random part keeps IDs unique even if two gateways
/// share a domain and a queue id. Characters a msg-id cannot hold are dropped (an empty
/// domain becomes `localhost`).
fn generated_id(plan: &Plan<'_>) -> String {
    let keep = |c: &char| !c.is_control() && !c.is_whitespace() && !"<>@()[]\\\",;:".contains(*c);
    let unique: String = plan.unique.chars().filter(keep).collect();
    let mut domain: String = plan.message_id_domain.chars().filter(keep).collect();
    if domain.is_empty() {
        domain.push_str("localhost");
    }
    format!("<{unique}.{:016x}@{domain}>", rand::random::<u64>())
}
