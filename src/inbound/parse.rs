//! What the hook reads from an inbound message: the one `From` (through `rewrite::inspect`,
//! which refuses two `From` fields where mail-parser would silently take the last), the
//! recipients, subject, threading fields, bodies, attachments and the fields loop
//! detection looks at (mail-parser 0.11).
//!
//! Decoded text is cleaned: mail-parser decodes encoded words into CR, LF and other
//! control characters, which must never reach a subject, a name or a log line.

use super::InboundError;
use crate::rewrite;
use crate::store::AttachmentInfo;
use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};

/// A parsed inbound message.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The header `From` address, as written.
    pub from: String,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<(AttachmentInfo, Vec<u8>)>,
    /// Fields read by loop detection: lower-cased name and cleaned value.
    pub loop_fields: Vec<(String, String)>,
}

/// Header fields that mark automatic mail (SPEC §7).
const LOOP_FIELDS: &[&str] = &[
    "auto-submitted",
    "precedence",
    "x-auto-response-suppress",
    "x-loop",
];

/// Replaces every control character (CR and LF included) by a space and trims.
pub fn clean(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(
            |c| match c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                true => ' ',
                false => c,
            },
        )
        .collect();
    cleaned.trim().to_string()
}

fn addresses(list: Option<&Address<'_>>) -> Vec<String> {
    list.map(|a| {
        a.iter()
            .filter_map(|addr| addr.address())
            .map(clean)
            .filter(|a| !a.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

pub(crate) fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![clean(id)],
        HeaderValue::TextList(list) => list.iter().map(|id| clean(id)).collect(),
        _ => Vec::new(),
    }
}

/// Parses `data` (the message as spooled).
pub fn parse(data: &[u8]) -> Result<Parsed, InboundError> {
    let inspected = rewrite::inspect(data).map_err(|e| InboundError::Parse(e.to_string()))?;
    let message = MessageParser::default()
        .parse(data)
        .ok_or_else(|| InboundError::Parse("not a message".into()))?;
    let loop_fields = message
        .headers()
        .iter()
        .filter_map(|h| {
            let name = h.name().to_ascii_lowercase();
            let raw = message
                .raw_message()
                .get(h.offset_start() as usize..h.offset_end() as usize)?;
            LOOP_FIELDS
                .contains(&name.as_str())
                .then(|| (name, clean(&String::from_utf8_lossy(raw))))
        })
        .collect();
    let attachments = message
        .attachments()
        .map(|part| {
            let content_type = part.content_type().map_or_else(
                || "application/octet-stream".to_string(),
                |ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                },
            );
            let bytes = part.contents().to_vec();
            let info = AttachmentInfo {
                name: clean(part.attachment_name().unwrap_or("attachment")),
                content_type: clean(&content_type).to_ascii_lowercase(),
                size: bytes.len() as u64,
            };
            (info, bytes)
        })
        .collect();
    Ok(Parsed {
        from: inspected.from.address,
        from_name: inspected.from.display,
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject: clean(message.subject().unwrap_or("")),
        message_id: message.message_id().map(clean).filter(|id| !id.is_empty()),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        html: message.body_html(0).map(|h| h.into_owned()),
        attachments,
        loop_fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_never_bring_line_breaks_into_the_subject() {
        let message = b"From: a@example.com\r\nSubject: =?utf-8?q?Hello=0D=0ABcc:_x@evil.example?=\r\n\r\nbody\r\n";
        let parsed = parse(message).unwrap();
        assert_eq!(parsed.subject, "Hello  Bcc: x@evil.example");
        assert!(!parsed.subject.contains(['\r', '\n']));
    }

    #[test]
    fn two_from_fields_are_refused_instead_of_taking_the_last() {
        let message = b"From: blocked@spam.example\r\nFrom: ok@example.com\r\n\r\nbody\r\n";
        assert!(parse(message).is_err());
    }

    #[test]
    fn threading_fields_bodies_and_attachments_are_read() {
        let message = concat!(
            "From: \"Ann\" <ann@example.com>\r\nTo: help@example.com\r\nCc: bob@example.com\r\n",
            "Subject: Re: [#12] printer\r\nMessage-ID: <m2@example.com>\r\n",
            "In-Reply-To: <m1@example.com>\r\nReferences: <m0@example.com> <m1@example.com>\r\n",
            "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n",
            "--b\r\nContent-Type: text/plain\r\n\r\nIt is broken.\r\n",
            "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\n",
            "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
        );
        let parsed = parse(message.as_bytes()).unwrap();
        assert_eq!(parsed.from, "ann@example.com");
        assert_eq!(parsed.from_name.as_deref(), Some("Ann"));
        assert_eq!(parsed.cc, vec!["bob@example.com"]);
        assert_eq!(parsed.message_id.as_deref(), Some("m2@example.com"));
        assert_eq!(parsed.in_reply_to, vec!["m1@example.com"]);
        assert_eq!(parsed.references, vec!["m0@example.com", "m1@example.com"]);
        assert_eq!(parsed.text.trim(), "It is broken.");
        assert_eq!(parsed.attachments.len(), 1);
        assert_eq!(parsed.attachments[0].0.name, "r.pdf");
        assert_eq!(parsed.attachments[0].0.content_type, "application/pdf");
        assert_eq!(parsed.attachments[0].1, b"%PDF-");
        assert_eq!(
            parsed.loop_fields,
            vec![("auto-submitted".to_string(), "auto-replied".to_string())]
        );
    }
}
