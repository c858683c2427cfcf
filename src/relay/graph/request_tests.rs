//! Tests of the copy sent to Graph: what each header names after the rewrite, read back
//! with mail-parser as Graph would read it.

use super::*;

fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every address of `field` in `message`, as mail-parser reads the whole header.
fn named(message: &[u8], field: &str) -> Vec<String> {
    let parsed = MessageParser::new().parse(message).unwrap();
    let mut out = Vec::new();
    for header in parsed.headers() {
        if !header.name().eq_ignore_ascii_case(field) {
            continue;
        }
        if let HeaderValue::Address(address) = header.value() {
            for addr in address.iter() {
                out.push(addr.address.as_deref().unwrap_or("").to_string());
            }
        }
    }
    out
}

fn text(copy: &Copy<'_>) -> String {
    String::from_utf8(copy.bytes.to_vec()).unwrap()
}

const BODY: &str = "\r\nbody line\r\nTo: not-a-header@example.net\r\n";

#[test]
fn a_message_naming_exactly_the_envelope_is_sent_as_stored() {
    let message = format!("From: s@corp.example\r\nTo: a@example.net\r\nCc: B <b@example.net>\r\nMessage-ID: <1@corp.example>\r\n{BODY}");
    let copy = copy_for(
        message.as_bytes(),
        &rcpts(&["a@example.net", "b@example.net"]),
    );
    assert!(matches!(copy.bytes, Cow::Borrowed(_)), "no copy made");
    assert!(copy.removed.is_empty() && copy.bcc.is_empty());
    assert_eq!(copy.message_id.as_deref(), Some("<1@corp.example>"));
}

#[test]
fn envelope_recipients_missing_from_the_header_go_in_bcc() {
    let message = format!("From: s@corp.example\r\nTo: a@example.net\r\nSubject: x\r\n{BODY}");
    let copy = copy_for(
        message.as_bytes(),
        &rcpts(&["a@example.net", "b@example.net", "C@Example.NET"]),
    );
    assert_eq!(copy.bcc, vec!["b@example.net", "C@example.net"]);
    let out = text(&copy);
    assert_eq!(
        named(out.as_bytes(), "Bcc"),
        vec!["b@example.net", "C@example.net"]
    );
    assert_eq!(named(out.as_bytes(), "To"), vec!["a@example.net"]);
    assert!(out.ends_with(BODY), "body untouched: {out:?}");
    assert!(
        out.contains("Subject: x\r\nBcc: b@example.net,\r\n C@example.net\r\n\r\nbody line"),
        "{out:?}"
    );
}

#[test]
fn header_recipients_outside_the_attempt_are_left_out() {
    let message = format!(
        "From: s@corp.example\r\nTo: Ann <a@example.net>, \"Carl, Jr.\" <c@example.net>\r\nCc: d@example.net\r\n{BODY}"
    );
    let copy = copy_for(message.as_bytes(), &rcpts(&["a@example.net"]));
    let out = text(&copy);
    assert_eq!(named(out.as_bytes(), "To"), vec!["a@example.net"]);
    assert!(named(out.as_bytes(), "Cc").is_empty(), "{out}");
    assert!(!out.contains("Cc:"), "an empty Cc is dropped: {out}");
    assert!(out.contains("To: Ann <a@example.net>\r\n"), "{out}");
    assert_eq!(copy.removed, vec!["c@example.net", "d@example.net"]);
    assert!(copy.bcc.is_empty());
}

#[test]
fn domains_compare_without_case_and_local_parts_as_keys() {
    let message = format!("To: Ann <Ann@EXAMPLE.net>\r\nCc: B <b@Example.Net>\r\n{BODY}");
    let copy = copy_for(
        message.as_bytes(),
        &rcpts(&["ann@example.net", "B@example.NET"]),
    );
    assert!(copy.removed.is_empty() && copy.bcc.is_empty(), "{copy:?}");
    assert!(matches!(copy.bytes, Cow::Borrowed(_)));
}

#[test]
fn whoever_the_header_names_the_copy_names_exactly_the_envelope() {
    // mail-parser reads a bare quoted local part (`"b"@x`) as `@x`: the field is then
    // rewritten without it and b@ is carried in Bcc, so it is delivered all the same.
    let message =
        format!("To: Ann <Ann@EXAMPLE.net>\r\nCc: \"b\"@example.net, x@example.net\r\n{BODY}");
    let copy = copy_for(
        message.as_bytes(),
        &rcpts(&["ann@example.net", "B@example.NET"]),
    );
    let out = text(&copy);
    let mut named: Vec<String> = ["To", "Cc", "Bcc"]
        .iter()
        .flat_map(|f| named(out.as_bytes(), f))
        .map(|a| crate::policy::address::key(&a))
        .collect();
    named.sort();
    assert_eq!(named, vec!["ann@example.net", "b@example.net"], "{out}");
    assert!(
        out.starts_with("To: Ann <Ann@EXAMPLE.net>\r\n"),
        "kept as sent: {out}"
    );
}

#[test]
fn groups_keep_their_name_and_only_wanted_members() {
    let message = format!("To: Team: a@example.net, x@example.net;, b@example.net\r\nCc: undisclosed-recipients:;\r\n{BODY}");
    let copy = copy_for(
        message.as_bytes(),
        &rcpts(&["a@example.net", "b@example.net"]),
    );
    let out = text(&copy);
    assert_eq!(
        named(out.as_bytes(), "To"),
        vec!["a@example.net", "b@example.net"]
    );
    assert!(
        out.contains("To: Team: a@example.net;,\r\n b@example.net\r\n"),
        "{out}"
    );
    assert!(
        out.contains("Cc: undisclosed-recipients:;\r\n"),
        "an empty group stays: {out}"
    );
    assert_eq!(copy.removed, vec!["x@example.net"]);
}

#[test]
fn encoded_display_names_and_folded_fields() {
    let message = format!(
        "To: =?utf-8?q?J=C3=BCrgen?= <j@example.net>,\r\n\t=?utf-8?b?w4lsb2RpZQ==?=\r\n <e@example.net>\r\nSubject: folded\r\n\tsubject\r\n{BODY}"
    );
    let copy = copy_for(message.as_bytes(), &rcpts(&["e@example.net"]));
    let out = text(&copy);
    assert_eq!(named(out.as_bytes(), "To"), vec!["e@example.net"]);
    let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(to.name.as_deref(), Some("Élodie"), "{out}");
    assert!(
        out.contains("Subject: folded\r\n\tsubject\r\n"),
        "other fields as sent: {out}"
    );
    assert_eq!(copy.removed, vec!["j@example.net"]);
}

#[test]
fn several_to_fields_and_an_old_bcc() {
    let message = format!("To: a@example.net\r\nBcc: z@example.net\r\nTO: c@example.net\r\nto: b@example.net\r\n{BODY}");
    let copy = copy_for(
        message.as_bytes(),
        &rcpts(&["a@example.net", "b@example.net", "z@example.net"]),
    );
    let out = text(&copy);
    assert!(!out.contains("c@example.net"), "{out}");
    assert!(
        out.starts_with("To: a@example.net\r\nto: b@example.net\r\nBcc: z@example.net\r\n\r\n"),
        "{out}"
    );
    assert_eq!(copy.removed, vec!["c@example.net"]);
    assert_eq!(copy.bcc, vec!["z@example.net"]);
}

#[test]
fn unreadable_fields_are_dropped_and_non_ascii_names_encoded() {
    let message = format!(
        "To: this is not an address\r\nCc: Zoë Ünal <z@example.net>, y@example.net\r\n{BODY}"
    );
    let copy = copy_for(message.as_bytes(), &rcpts(&["z@example.net"]));
    let out = text(&copy);
    assert!(!out.contains("not an address"), "{out}");
    assert!(out.contains("Cc: =?utf-8?b?"), "{out}");
    let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
    assert_eq!(
        parsed.cc().unwrap().first().unwrap().name.as_deref(),
        Some("Zoë Ünal")
    );
    assert_eq!(copy.removed.len(), 2, "{:?}", copy.removed);
}

#[test]
fn a_message_without_a_body_gets_its_bcc() {
    let copy = copy_for(
        b"From: s@corp.example\r\nTo: a@example.net",
        &rcpts(&["b@example.net"]),
    );
    assert_eq!(
        text(&copy),
        "From: s@corp.example\r\nBcc: b@example.net\r\n"
    );
}
