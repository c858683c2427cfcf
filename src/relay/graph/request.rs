//! The copy of a message that goes to Graph: the stored message with its `To` and `Cc`
//! fields cut down to this attempt's recipients and a `Bcc` field naming the others, so
//! that Graph — which takes the recipients from the MIME header, not from an envelope —
//! delivers to exactly `Outgoing::rcpts`.
//!
//! Only the header block is touched, as raw bytes: fields are split on their line ends
//! (continuation lines kept with their field), each `To`/`Cc` value is read with
//! mail-parser (groups, encoded display names, comments, folding), and only a field that
//! names someone outside the attempt is written anew; every other field, and the body, are
//! copied as they are. Addresses compare by `policy::address::key`, so `Ann@EXAMPLE.com`
//! and `ann@example.com` are one recipient. A `Bcc` already in the message (Postern removes
//! it at submission, so only a DSN or an old spool entry may have one) is dropped and made
//! again from the envelope.

use crate::policy::address;
use base64::Engine;
use mail_parser::{Address, HeaderValue, MessageParser};
use std::borrow::Cow;
use std::collections::HashSet;

/// What goes to Graph, and what changed on the way.
#[derive(Debug)]
pub struct Copy<'a> {
    /// The message as Graph gets it (the stored bytes when nothing changed).
    pub bytes: Cow<'a, [u8]>,
    /// Header recipients left out: not recipients of this attempt.
    pub removed: Vec<String>,
    /// Envelope recipients the header did not name, carried in `Bcc`.
    pub bcc: Vec<String>,
    /// The Message-ID field's `<id>`, if the message has one.
    pub message_id: Option<String>,
}

/// One element of an address list as mail-parser reads it.
enum Entry {
    Mailbox(Option<String>, String),
    Group(Option<String>, Vec<(Option<String>, String)>),
}

/// The copy of `data` for an attempt to `rcpts`.
pub fn copy_for<'a>(data: &'a [u8], rcpts: &[String]) -> Copy<'a> {
    let header_len = crate::rewrite::header_block_len(data);
    // Where the copy's fields end: before the empty line, which follows them again.
    let rest = match data[..header_len].ends_with(b"\r\n\r\n") || header_len == 2 {
        true => header_len - 2,
        false => header_len,
    };
    let wanted: HashSet<String> = rcpts.iter().map(|r| address::key(r)).collect();
    let mut seen = HashSet::new();
    let mut removed = Vec::new();
    let mut changed = false;
    let mut message_id = None;
    let mut out: Vec<u8> = Vec::with_capacity(data.len() + 256);
    // The stored message passed `rewrite::inspect`, so every line is a field.
    let fields = crate::rewrite::Fields::new(data, header_len).filter_map(Result::ok);
    for raw in fields.map(|field| field.raw) {
        let name = field_name(raw);
        if name.eq_ignore_ascii_case(b"message-id") && message_id.is_none() {
            message_id = id_of(value_of(raw));
        }
        if name.eq_ignore_ascii_case(b"bcc") {
            changed = true;
            continue;
        }
        if !(name.eq_ignore_ascii_case(b"to") || name.eq_ignore_ascii_case(b"cc")) {
            out.extend_from_slice(raw);
            continue;
        }
        match kept_field(raw, &wanted, &mut seen, &mut removed) {
            None => out.extend_from_slice(raw),
            Some(rewritten) => {
                changed = true;
                out.extend_from_slice(rewritten.as_bytes());
            }
        }
    }
    let mut bcc = Vec::new();
    for rcpt in rcpts {
        if seen.insert(address::key(rcpt)) {
            bcc.push(address::canonical(rcpt));
        }
    }
    if !changed && bcc.is_empty() {
        return Copy {
            bytes: Cow::Borrowed(data),
            removed,
            bcc,
            message_id,
        };
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    if !bcc.is_empty() {
        out.extend_from_slice(format!("Bcc: {}\r\n", bcc.join(",\r\n ")).as_bytes());
    }
    out.extend_from_slice(&data[rest..]);
    Copy {
        bytes: Cow::Owned(out),
        removed,
        bcc,
        message_id,
    }
}

/// `None` when `raw` (a `To` or `Cc` field) names only wanted recipients (all of them are
/// then `seen`); otherwise the field rewritten with only those (empty when none is left),
/// the others pushed to `removed`.
fn kept_field(
    raw: &[u8],
    wanted: &HashSet<String>,
    seen: &mut HashSet<String>,
    removed: &mut Vec<String>,
) -> Option<String> {
    let entries = entries(raw);
    let blank = value_of(raw).iter().all(|b| b.is_ascii_whitespace());
    if entries.is_empty() && !blank {
        removed.push(format!(
            "(unreadable {} field)",
            String::from_utf8_lossy(field_name(raw))
        ));
        return Some(String::new());
    }
    let keep = |address: &str| wanted.contains(&address::key(address));
    let all_kept = entries.iter().all(|entry| match entry {
        Entry::Mailbox(_, address) => keep(address),
        Entry::Group(_, members) => members.iter().all(|(_, a)| keep(a)),
    });
    let mut written = Vec::new();
    for entry in &entries {
        match entry {
            Entry::Mailbox(name, address) if keep(address) => {
                seen.insert(address::key(address));
                written.push(mailbox(name.as_deref(), address));
            }
            Entry::Mailbox(_, address) => removed.push(address.clone()),
            Entry::Group(name, members) => {
                let mut kept = Vec::new();
                for (member_name, address) in members {
                    if keep(address) {
                        seen.insert(address::key(address));
                        kept.push(mailbox(member_name.as_deref(), address));
                    } else {
                        removed.push(address.clone());
                    }
                }
                if !kept.is_empty() || members.is_empty() {
                    let name = phrase(name.as_deref().unwrap_or(""));
                    written.push(format!("{name}: {};", kept.join(", ")));
                }
            }
        }
    }
    if all_kept {
        return None;
    }
    if written.is_empty() {
        return Some(String::new());
    }
    let name = String::from_utf8_lossy(field_name(raw)).into_owned();
    Some(format!("{name}: {}\r\n", written.join(",\r\n ")))
}

/// The address list of one field, as mail-parser reads it (an unreadable one is empty).
fn entries(raw: &[u8]) -> Vec<Entry> {
    let mut text = raw.to_vec();
    if !text.ends_with(b"\r\n") {
        text.extend_from_slice(b"\r\n");
    }
    text.extend_from_slice(b"\r\n");
    let parser = MessageParser::new();
    let Some(message) = parser.parse_headers(&text) else {
        return Vec::new();
    };
    let pair = |a: &mail_parser::Addr<'_>| {
        let name = a.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        Some((name.map(str::to_string), a.address.as_deref()?.to_string()))
    };
    match message.headers().first().map(|h| h.value()) {
        Some(HeaderValue::Address(Address::List(list))) => list
            .iter()
            .filter_map(pair)
            .map(|(name, address)| Entry::Mailbox(name, address))
            .collect(),
        Some(HeaderValue::Address(Address::Group(groups))) => {
            let mut out = Vec::new();
            for group in groups {
                let members = group.addresses.iter().filter_map(pair);
                match &group.name {
                    // Mailboxes outside any group come as a group without a name.
                    None => out.extend(members.map(|(n, a)| Entry::Mailbox(n, a))),
                    Some(name) => out.push(Entry::Group(Some(name.to_string()), members.collect())),
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// A mailbox as written: `address`, or `phrase <address>`.
fn mailbox(name: Option<&str>, address: &str) -> String {
    let address = address::canonical(address);
    match name {
        Some(name) if !name.is_empty() => format!("{} <{address}>", phrase(name)),
        _ => address,
    }
}

/// A display name as atoms, a quoted string, or RFC 2047 encoded words when it is not
/// printable ASCII (each word at most 75 octets, split on character boundaries).
fn phrase(name: &str) -> String {
    let atext =
        |b: u8| b.is_ascii_alphanumeric() || b == b' ' || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    if !name.is_empty() && name.bytes().all(atext) {
        return name.to_string();
    }
    if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in name.chars().map(|c| if c.is_control() { ' ' } else { c }) {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    let engine = base64::engine::general_purpose::STANDARD;
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", engine.encode(w)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn field_name(raw: &[u8]) -> &[u8] {
    let colon = raw.iter().position(|&b| b == b':').unwrap_or(raw.len());
    raw[..colon].trim_ascii()
}

fn value_of(raw: &[u8]) -> &[u8] {
    raw.iter()
        .position(|&b| b == b':')
        .map_or(&[][..], |colon| &raw[colon + 1..])
}

/// `<id>` out of a Message-ID field's value.
fn id_of(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let start = text.find('<')?;
    let end = start + text[start..].find('>')?;
    let id: String = text[start..=end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    (id.len() > 2).then_some(id)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
