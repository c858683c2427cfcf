//! A grammar-driven fuzz harness for `rewrite::inspect` and `rewrite::apply`, run as a
//! proptest in the suite: header blocks built from field names (From, Sender, the Resent-*
//! fields, look-alike and malformed names), values made of addresses, display names,
//! encoded words (some hiding `@`, CR, LF or NUL), comments, groups, folding, and raw
//! trouble (bare CR, bare LF, NUL, random bytes), joined by CRLF or not.
//!
//! Invariants: `inspect` never panics; whenever it accepts a block, `apply` with the plan
//! policy would make (the account's address, a display name, maybe a `Sender`, the resent
//! fields re-written) never panics, and mail-parser 0.11 reading the output sees exactly
//! one `From` field, holding exactly the account's address and the plan's display name;
//! exactly the `Sender` planned (or none); and for every `Resent-From`/`Resent-Sender` it
//! sees, one Postern wrote. Our own `inspect` reads the output back the same way.
//!
//! `PROPTEST_CASES` sets the number of cases (default 2,000 per property); the long run is
//! `PROPTEST_CASES=1000000 cargo test --release --test rewrite_fuzz`.

use mail_parser::{HeaderName, HeaderValue, MessageParser};
use postern::rewrite::{apply, inspect, Inspected, Plan};
use proptest::prelude::*;
use proptest::sample::select;

const TRACE: &str = "Received: from c.example ([192.0.2.1])\r\n\tby gw.example (Postern) with ESMTPSA id q1;\r\n\tThu, 1 Jan 1970 00:00:00 +0000\r\n";
const ACCOUNT: &str = "account@example.com";

fn field_name() -> impl Strategy<Value = Vec<u8>> {
    let names: Vec<&[u8]> = vec![
        b"From",
        b"FROM",
        b"from",
        b"Sender",
        b"Resent-From",
        b"RESENT-FROM",
        b"Resent-Sender",
        b"Resent-Date",
        b"Resent-To",
        b"Resent-Message-ID",
        b"To",
        b"Cc",
        b"Bcc",
        b"Subject",
        b"Date",
        b"Message-ID",
        b"Reply-To",
        b"Return-Path",
        b"Received",
        b"X-Postern-Account",
        b"Content-Type",
        b"MIME-Version",
        b"Comments",
        b"In-Reply-To",
        b"References",
        b"From ",
        b" From",
        b"Fr\x00om",
        b"From\t",
        b"Resent-From ",
        b"X",
        b"",
    ];
    prop_oneof![
        20 => select(names).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

/// One piece of a field value.
fn value_token() -> impl Strategy<Value = Vec<u8>> {
    let common: Vec<&[u8]> = vec![
        b"a@b.example",
        b"account@example.com",
        b"support@bank.example",
        b"<x@y.example>",
        b"\"Support Desk\"",
        b"Support",
        b" ",
        b" ",
        b"<",
        b">",
        b"@",
        b",",
        b".",
        b":",
        b";",
        b"\"",
        b"(",
        b")",
        b"(comment)",
        b"\\",
        b"undisclosed:;",
        b"g: a@b.example, c@d.example;",
        b"=?UTF-8?B?c3VwcG9ydEBiYW5rLmV4YW1wbGU=?=",
        b"=?utf-8?q?A=0D=0AFrom:_x@y?=",
        b"=?utf-8?q?=00?=",
        b"=?UTF-8?Q?support=EF=BC=A0bank=2Eexample?=",
        b"=?iso-8859-1?q?J=F6rg?=",
        b"=?",
        b"?=",
        b"\r\n ",
        b"\r\n\t",
        b"\xc3\xa9",
        b"\xef\xbc\xa0",
        b"[1.2.3.4]",
        b"Thu, 1 Jan 2026 00:00:00 +0000",
        b"+A",
    ];
    let trouble: Vec<&[u8]> = vec![
        b"\r",
        b"\n",
        b"\0",
        b"\r\n",
        b"\r\r\n",
        b"\xff",
        b"\x01",
        b"\x7f",
        b"\r\nFrom: ",
        b"\r\n\r\n",
        b"\t",
    ];
    prop_oneof![
        40 => select(common).prop_map(<[u8]>::to_vec),
        1 => select(trouble).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ]
}

/// A display name: atoms, a quoted string, or encoded words (some hiding `@`, CR, LF).
fn display_part() -> impl Strategy<Value = String> {
    select(vec![
        "Support",
        "Support Desk",
        "\"Desk, Support\"",
        "\"support@bank.example\"",
        "\"a \\\" b\"",
        "=?UTF-8?B?c3VwcG9ydEBiYW5rLmV4YW1wbGU=?=",
        "=?utf-8?q?A=0D=0AFrom:_x@y?=",
        "=?utf-8?q?=00?=",
        "=?UTF-8?Q?support=EF=BC=A0bank=2Eexample?=",
        "=?iso-8859-1?q?J=F6rg?= M",
        "\"=?UTF-8?B?SsO2cmc=?=\"",
        "J. Q. Public",
        "(c) Name (c2)",
        "Ünïcødé",
    ])
    .prop_map(str::to_string)
}

fn addr_spec() -> impl Strategy<Value = String> {
    select(vec![
        "a@b.example",
        "account@example.com",
        "support@bank.example",
        "\"a b\"@c.example",
        "\"ann\"@customer.example",
        "u@[192.0.2.1]",
        "jörg@bücher.example",
        "x.y+tag@sub.d.example",
    ])
    .prop_map(str::to_string)
}

/// A mailbox in one of the RFC 5322 forms, sometimes folded or commented.
fn mailbox() -> impl Strategy<Value = String> {
    let fold = select(vec!["", "", "", "\r\n ", "\r\n\t", " (comment) "]);
    (
        prop::option::of(display_part()),
        addr_spec(),
        fold,
        any::<bool>(),
    )
        .prop_map(|(display, addr, fold, route)| match display {
            Some(d) => {
                let route = if route { "@r.example:" } else { "" };
                format!("{d}{fold}<{route}{addr}>")
            }
            None => format!("{fold}{addr}"),
        })
}

/// A well-formed value for an address field: a mailbox, a list, or a group.
fn address_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => mailbox(),
        2 => prop::collection::vec(mailbox(), 1..4).prop_map(|v| v.join(", ")),
        1 => Just("undisclosed-recipients:;".to_string()),
        1 => prop::collection::vec(mailbox(), 1..3).prop_map(|v| format!("g: {};", v.join(","))),
    ]
    .prop_map(|v| format!(" {v}").into_bytes())
}

/// A field: a known address field with a well-formed value, or any name with a token soup.
fn field() -> impl Strategy<Value = Vec<u8>> {
    let address_names: Vec<&[u8]> = vec![
        b"Sender",
        b"Resent-From",
        b"Resent-From",
        b"resent-from",
        b"Resent-Sender",
        b"Resent-Sender",
        b"To",
        b"Cc",
        b"Reply-To",
        b"From",
    ];
    let separator: Vec<&[u8]> = vec![b":", b":", b":", b":", b": ", b" :", b""];
    prop_oneof![
        4 => (select(address_names), address_value())
            .prop_map(|(name, value)| [name, b":".as_slice(), &value].concat()),
        2 => (
            field_name(),
            select(separator),
            prop::collection::vec(value_token(), 0..10),
        )
            .prop_map(|(name, sep, value)| [name, sep.to_vec(), value.concat()].concat()),
    ]
}

/// A header block: fields (a From mostly among them) joined by line ends, then a body.
fn message() -> impl Strategy<Value = Vec<u8>> {
    let line_end: Vec<&[u8]> = vec![b"\r\n", b"\n", b"\r", b""];
    let line_end = prop_oneof![30 => Just(b"\r\n".as_slice()), 1 => select(line_end)];
    let from = prop_oneof![
        8 => address_value(),
        1 => prop::collection::vec(value_token(), 1..6).prop_map(|v| v.concat()),
    ]
    .prop_map(|v| [b"From:".to_vec(), v].concat());
    (
        prop::collection::vec((field(), line_end), 0..10),
        prop::option::weighted(0.9, from),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..40),
        any::<bool>(),
    )
        .prop_map(|(fields, from, at, body, with_body)| {
            let mut fields: Vec<Vec<u8>> = fields
                .into_iter()
                .map(|(f, end)| [f, end.to_vec()].concat())
                .collect();
            if let Some(from) = from {
                fields.insert(
                    at.index(fields.len() + 1),
                    [from, b"\r\n".to_vec()].concat(),
                );
            }
            let mut message = fields.concat();
            if with_body {
                message.extend_from_slice(b"\r\n");
                message.extend_from_slice(&body);
            }
            message
        })
}

fn display() -> impl Strategy<Value = Option<String>> {
    prop::option::of(select(vec![
        "Account Team",
        "Ünïcødé Team",
        "a \"quoted\" name",
        "=?UTF-8?B?DQo=?=",
        "x\r\nBcc: y@z",
    ]))
    .prop_map(|d| d.map(str::to_string))
}

/// What a display name reads back as: controls to spaces, trimmed, `None` when empty.
fn sanitized(text: Option<&str>) -> Option<String> {
    let clean: String = text?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = clean.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

fn addresses_of(value: &HeaderValue<'_>) -> Vec<(Option<String>, Option<String>)> {
    match value {
        HeaderValue::Address(address) => address
            .iter()
            .map(|a| {
                (
                    a.name().map(str::to_string),
                    a.address().map(str::to_string),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The checks on an accepted message.
fn check(
    message: &[u8],
    inspected: &Inspected,
    display: Option<&str>,
    sender: bool,
) -> Result<(), TestCaseError> {
    let resent = inspected.resent.as_ref().ok();
    let plan = Plan {
        from_display: display,
        from_address: ACCOUNT,
        sender: sender.then_some((Some("Agent"), "agent@example.com")),
        reply_to: None,
        resent: resent.map(Vec::as_slice),
        message_id_domain: "example.com",
        unique: "q1",
        date: "Thu, 1 Jan 1970 00:00:00 +0000",
        trace: TRACE,
    };
    let mut buf = vec![0u8; 64];
    buf.extend_from_slice(message);
    let (start, _) = apply(&mut buf, 64, inspected, &plan);
    let out = &buf[start..];
    let shown = String::from_utf8_lossy(out);

    let again =
        inspect(out).map_err(|e| TestCaseError::fail(format!("output refused: {e:?}\n{shown}")))?;
    prop_assert_eq!(again.from.address.as_str(), ACCOUNT, "{}", shown);
    prop_assert_eq!(again.from.display, sanitized(display), "{}", shown);

    let parsed = MessageParser::default()
        .parse_headers(out)
        .ok_or_else(|| TestCaseError::fail(format!("mail-parser refused\n{shown}")))?;
    let named = |name: HeaderName<'static>| {
        parsed
            .headers()
            .iter()
            .filter(|h| h.name == name)
            .map(|h| addresses_of(&h.value))
            .collect::<Vec<_>>()
    };
    let want_from = vec![vec![(sanitized(display), Some(ACCOUNT.to_string()))]];
    prop_assert_eq!(named(HeaderName::From), want_from, "{}", shown);
    let want_sender = match sender {
        true => vec![vec![(
            Some("Agent".to_string()),
            Some("agent@example.com".to_string()),
        )]],
        false => vec![],
    };
    prop_assert_eq!(named(HeaderName::Sender), want_sender, "{}", shown);
    if let Some(resent) = resent {
        let planned: Vec<Vec<(Option<String>, Option<String>)>> = resent
            .iter()
            .map(|r| {
                r.mailboxes
                    .iter()
                    .map(|m| (sanitized(m.display.as_deref()), Some(m.address.clone())))
                    .collect()
            })
            .collect();
        let seen: Vec<_> = named(HeaderName::ResentFrom)
            .into_iter()
            .chain(named(HeaderName::ResentSender))
            .collect();
        for field in &seen {
            prop_assert!(
                planned.contains(field),
                "resent {:?} not planned {:?}\n{}",
                field,
                planned,
                shown
            );
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn inspect_never_panics_and_what_it_accepts_reads_back_as_the_plan(
        message in message(),
        display in display(),
        sender in any::<bool>(),
    ) {
        if let Ok(inspected) = inspect(&message) {
            check(&message, &inspected, display.as_deref(), sender)?;
        }
    }

    #[test]
    fn random_bytes_never_panic(message in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(inspected) = inspect(&message) {
            check(&message, &inspected, Some("Account Team"), false)?;
        }
    }
}
