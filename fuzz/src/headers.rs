//! The header-rewrite target: an arbitrary message into `rewrite::inspect`; whatever it
//! accepts goes through `apply` with two plans (a fixed display name and Sender, and the
//! client's own display name kept, as `policy::from_display` may do).
//!
//! Checked, panicking on a violation: nothing panics; the body is untouched; the output is
//! accepted again by `inspect` with the From written; mail-parser 0.11 sees exactly one
//! `From` field, holding exactly that address, and a display name without CR, LF or NUL
//! (but for known finding F1, see `lost_to_date`).

use mail_parser::{HeaderName, MessageParser};
use postern::rewrite::{apply, inspect, Inspected, Plan};

const HEADROOM: usize = 8192;
const TRACE: &str = "Received: from client ([127.0.0.1])\r\n\tby gw.example.com (Postern) with ESMTPA id 1;\r\n\tSun, 22 Nov 2026 10:41:06 +0000\r\n";

/// Runs one input.
pub fn run(data: &[u8]) {
    let Ok(inspected) = inspect(data) else {
        return;
    };
    assert!(
        inspected.header_len <= data.len(),
        "header_len past the end"
    );
    let fixed = Plan {
        from_display: Some("Support Desk"),
        from_address: "support@example.com",
        sender: Some((Some("Ann"), "ann@example.com")),
        reply_to: Some("help@example.com"),
        // The client's resent fields pass as sent (`display_name_addresses = "allow"`).
        resent: None,
        message_id_domain: "example.com",
        unique: "0000000000000001",
        date: "Sun, 22 Nov 2026 10:41:06 +0000",
        trace: TRACE,
    };
    check(data, &inspected, &fixed);
    let theirs = Plan {
        from_display: inspected.from.display.as_deref(),
        sender: None,
        reply_to: None,
        ..fixed
    };
    check(data, &inspected, &theirs);
}

fn check(data: &[u8], inspected: &Inspected, plan: &Plan<'_>) {
    let body = &data[inspected.header_len..];
    let mut buf = vec![0u8; HEADROOM];
    buf.extend_from_slice(data);
    let (start, _) = apply(&mut buf, HEADROOM, inspected, plan);
    let out = &buf[start..];
    assert!(out.ends_with(body), "body changed");
    let header = &out[..out.len() - body.len()];
    let show = || String::from_utf8_lossy(header).into_owned();

    let again = inspect(out).unwrap_or_else(|e| panic!("output refused ({e:?}):\n{}", show()));
    assert_eq!(
        again.from.address,
        plan.from_address,
        "inspect reads another From:\n{}",
        show()
    );

    let parsed = MessageParser::default()
        .parse_headers(out)
        .unwrap_or_else(|| panic!("mail-parser cannot read the output:\n{}", show()));
    let froms = parsed
        .headers()
        .iter()
        .filter(|h| h.name == HeaderName::From)
        .count();
    assert_eq!(
        froms,
        1,
        "mail-parser sees {froms} From fields:\n{}",
        show()
    );
    let from = parsed.from().and_then(|a| a.first());
    let address = from.and_then(|f| f.address());
    assert_eq!(
        address,
        Some(plan.from_address),
        "mail-parser reads another From:\n{}",
        show()
    );
    let name = from.and_then(|f| f.name());
    assert!(
        !name.is_some_and(|n| n.contains(['\r', '\n', '\0'])),
        "line break in the decoded display name {name:?}:\n{}",
        show()
    );
}
