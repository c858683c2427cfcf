//! The `Received` trace field (RFC 5321 §4.4) Postern prepends to every accepted message.
//! Nothing the client sent is copied into it raw: the HELO name is reduced to the
//! characters a domain or address literal may hold.

use std::fmt::Write;
use std::net::IpAddr;

/// What the trace field records about a session.
pub struct ReceivedInfo<'a> {
    /// The client's HELO/EHLO name (reduced to safe characters before use).
    pub helo: &'a str,
    /// The client's IP address.
    pub peer: IpAddr,
    /// Postern's own host name (`by`).
    pub hostname: &'a str,
    /// The session ran over TLS (`...S` protocol names).
    pub tls: bool,
    /// The client authenticated (`...A` protocol names).
    pub authenticated: bool,
    /// The client said EHLO (`ESMTP`) rather than HELO (`SMTP`).
    pub esmtp: bool,
    /// The transaction used SMTPUTF8 (RFC 6531 §3.7.3: `UTF8SMTP*` protocol names).
    pub utf8: bool,
    /// The queue id (`id`).
    pub queue_id: &'a str,
    /// RFC 5322 date of receipt.
    pub date: &'a str,
}

/// Builds the field, folded, ending in CRLF.
pub fn received_field(info: &ReceivedInfo<'_>) -> String {
    let protocol = match (info.esmtp, info.utf8, info.tls, info.authenticated) {
        (false, _, _, _) => "SMTP",
        (true, false, false, false) => "ESMTP",
        (true, false, true, false) => "ESMTPS",
        (true, false, false, true) => "ESMTPA",
        (true, false, true, true) => "ESMTPSA",
        (true, true, false, false) => "UTF8SMTP",
        (true, true, true, false) => "UTF8SMTPS",
        (true, true, false, true) => "UTF8SMTPA",
        (true, true, true, true) => "UTF8SMTPSA",
    };
    // Pieces pushed one by one (only the address goes through `Display`): every accepted
    // message gets this field.
    let mut field = String::with_capacity(160);
    field.push_str("Received: from ");
    field.push_str(&safe_helo(info.helo));
    field.push_str(" ([");
    let _ = write!(field, "{}", info.peer);
    field.push_str("])\r\n\tby ");
    field.push_str(&safe_helo(info.hostname));
    field.push_str(" (Postern) with ");
    field.push_str(protocol);
    field.push_str(" id ");
    field.push_str(info.queue_id);
    field.push_str(";\r\n\t");
    field.push_str(info.date);
    field.push_str("\r\n");
    field
}

/// The HELO name with anything outside `[A-Za-z0-9.-:[]_]` dropped, at most 64 characters.
fn safe_helo(helo: &str) -> String {
    let clean: String = helo
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
        .take(64)
        .collect();
    if clean.is_empty() {
        "unknown".to_string()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_raw_from_the_client() {
        let info = ReceivedInfo {
            helo: "evil\r\nBcc: x@y (comment)",
            peer: "127.0.0.1".parse().unwrap(),
            hostname: "gw.example",
            tls: true,
            authenticated: true,
            esmtp: true,
            utf8: false,
            queue_id: "0000000000000001",
            date: "Thu, 1 Jan 1970 00:00:00 +0000",
        };
        let field = received_field(&info);
        assert!(
            field.starts_with("Received: from evilBcc:xycomment ([127.0.0.1])\r\n"),
            "{field}"
        );
        assert_eq!(
            field,
            "Received: from evilBcc:xycomment ([127.0.0.1])\r\n\tby gw.example (Postern) \
             with ESMTPSA id 0000000000000001;\r\n\tThu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
        let v6 = received_field(&ReceivedInfo {
            peer: "2001:db8::1".parse().unwrap(),
            helo: "",
            esmtp: false,
            ..info
        });
        assert!(
            v6.starts_with(
                "Received: from unknown ([2001:db8::1])\r\n\tby gw.example (Postern) with SMTP id"
            ),
            "{v6}"
        );
        let utf8 = received_field(&ReceivedInfo { utf8: true, ..info });
        assert!(utf8.contains("with UTF8SMTPSA id"), "{utf8}");
    }
}
