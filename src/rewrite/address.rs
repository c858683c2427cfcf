//! RFC 5322 §3.4 address lists over `lexer` tokens: mailboxes (display-name phrase with
//! `obs-phrase` dots, angle-addr with `obs-route`, bare addr-spec with `obs-local-part`) and
//! groups. Owns turning one field value into addresses and decoding display names (RFC 2047
//! encoded words, decoded with mail-parser's word decoder, then every control character
//! replaced by a space). It does not decide what a list or a group means for a message.

use super::inspect::Mailbox;
use super::lexer::{lex, Tok, Token};
use super::RewriteError;
use mail_parser::parsers::MessageStream;

/// One element of an address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    /// A mailbox.
    Mailbox(Mailbox),
    /// A group (`name: members;`); its members are not kept.
    Group,
}

const UNREADABLE: RewriteError = RewriteError::FromUnparsable;

/// Parses an address-list field value (raw bytes of the value, continuation lines included).
/// Empty list elements (`obs-mbox-list`) are skipped; an empty value gives an empty list.
pub(crate) fn parse_address_list(value: &[u8]) -> Result<Vec<Address>, RewriteError> {
    let value = std::str::from_utf8(value).map_err(|_| UNREADABLE)?;
    let toks = lex(value)?;
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while is_special(toks.get(i), ',') {
            i += 1;
        }
        if i == toks.len() {
            return Ok(out);
        }
        let (address, next) = parse_address(&toks, i)?;
        out.push(address);
        i = next;
        if i < toks.len() && !is_special(toks.get(i), ',') {
            return Err(UNREADABLE);
        }
    }
}

/// One address starting at `i`; returns it and the index after it.
fn parse_address(toks: &[Tok<'_>], i: usize) -> Result<(Address, usize), RewriteError> {
    let phrase_end = i + toks[i..]
        .iter()
        .take_while(|t| is_word(t) || t.token == Token::Special('.'))
        .count();
    let phrase = &toks[i..phrase_end];
    match toks.get(phrase_end).map(|t| &t.token) {
        Some(Token::Special('<')) => {
            let (address, next) = angle_addr(toks, phrase_end + 1)?;
            let mailbox = Mailbox {
                display: display_name(phrase),
                address,
            };
            Ok((Address::Mailbox(mailbox), next))
        }
        Some(Token::Special(':')) => {
            let close = toks[phrase_end..]
                .iter()
                .position(|t| t.token == Token::Special(';'))
                .map_or(toks.len(), |p| phrase_end + p + 1);
            Ok((Address::Group, close))
        }
        Some(Token::Special('@')) => {
            let local = local_part(phrase)?;
            let (domain, next) = domain(toks, phrase_end + 1)?;
            let mailbox = Mailbox {
                display: None,
                address: format!("{local}@{domain}"),
            };
            Ok((Address::Mailbox(mailbox), next))
        }
        _ => Err(UNREADABLE),
    }
}

/// The inside of `<...>` from `i` (just after `<`): optional obs-route, addr-spec, `>`.
fn angle_addr(toks: &[Tok<'_>], mut i: usize) -> Result<(String, usize), RewriteError> {
    if is_special(toks.get(i), '@') || is_special(toks.get(i), ',') {
        i = skip_route(toks, i)?;
    }
    let local_end = i + toks[i..]
        .iter()
        .take_while(|t| is_word(t) || t.token == Token::Special('.'))
        .count();
    let local = local_part(&toks[i..local_end])?;
    if !is_special(toks.get(local_end), '@') {
        return Err(UNREADABLE);
    }
    let (domain, next) = domain(toks, local_end + 1)?;
    if !is_special(toks.get(next), '>') {
        return Err(UNREADABLE);
    }
    Ok((format!("{local}@{domain}"), next + 1))
}

/// obs-route: `*("," / "@" domain) ":"`, with at least one domain; returns the index after
/// the colon.
fn skip_route(toks: &[Tok<'_>], mut i: usize) -> Result<usize, RewriteError> {
    let mut domains = 0;
    loop {
        match toks.get(i).map(|t| &t.token) {
            Some(Token::Special(',')) => i += 1,
            Some(Token::Special('@')) => {
                i = domain(toks, i + 1)?.1;
                domains += 1;
            }
            Some(Token::Special(':')) if domains > 0 => return Ok(i + 1),
            _ => return Err(UNREADABLE),
        }
    }
}

/// A local part: `word *("." word)` (dot-atom, quoted string, obs-local-part), as written
/// without whitespace or comments. One holding `=?` is refused: RFC 2047 forbids encoded
/// words in an addr-spec, yet mail-parser decodes `=?UTF-8?B?...?=a@b` as a display name
/// and the address `a@b`, so two readers would see two different addresses.
fn local_part(toks: &[Tok<'_>]) -> Result<String, RewriteError> {
    let mut out = String::new();
    for (n, tok) in toks.iter().enumerate() {
        match (&tok.token, n % 2) {
            (Token::Atom(a), 0) => out.push_str(a),
            (Token::Quoted { raw, .. }, 0) => out.push_str(raw),
            (Token::Special('.'), 1) => out.push('.'),
            _ => return Err(UNREADABLE),
        }
    }
    if toks.len().is_multiple_of(2) || out.contains("=?") {
        return Err(UNREADABLE);
    }
    Ok(out)
}

/// A domain from `i`: `atom *("." atom)` or a domain literal; returns it and the index after.
fn domain(toks: &[Tok<'_>], mut i: usize) -> Result<(String, usize), RewriteError> {
    if let Some(Token::Literal(raw)) = toks.get(i).map(|t| &t.token) {
        return Ok((raw.clone(), i + 1));
    }
    let mut out = String::new();
    loop {
        match toks.get(i).map(|t| &t.token) {
            Some(Token::Atom(a)) => out.push_str(a),
            _ => return Err(UNREADABLE),
        }
        i += 1;
        if !is_special(toks.get(i), '.') {
            return match out.contains("=?") {
                true => Err(UNREADABLE),
                false => Ok((out, i)),
            };
        }
        out.push('.');
        i += 1;
    }
}

fn is_special(tok: Option<&Tok<'_>>, c: char) -> bool {
    tok.is_some_and(|t| t.token == Token::Special(c))
}

fn is_word(tok: &Tok<'_>) -> bool {
    matches!(tok.token, Token::Atom(_) | Token::Quoted { .. })
}

/// The display name of a phrase: words joined by one space where the client put
/// whitespace or a comment, encoded words decoded, controls replaced, trimmed.
fn display_name(phrase: &[Tok<'_>]) -> Option<String> {
    let mut text = String::new();
    for tok in phrase {
        if tok.space_before && !text.is_empty() {
            text.push(' ');
        }
        match &tok.token {
            Token::Atom(a) => text.push_str(a),
            Token::Quoted { text: t, .. } => text.push_str(t),
            _ => text.push('.'),
        }
    }
    sanitize(&decode_words(&text))
}

/// Every control character (C0, DEL, C1) and Unicode line/paragraph separator replaced by a
/// space, then trimmed; `None` when nothing is left.
pub(crate) fn sanitize(text: &str) -> Option<String> {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let trimmed = clean.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Decodes RFC 2047 encoded words that stand as whole whitespace-separated words (also
/// inside quoted strings, as common clients do); whitespace between two encoded words
/// is dropped (RFC 2047 §6.2). Anything else is kept as is.
pub(crate) fn decode_words(text: &str) -> String {
    if !text.contains("=?") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut pending = "";
    let mut previous_encoded = false;
    let mut rest = text;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if ws > 0 {
            pending = &rest[..ws];
            rest = &rest[ws..];
            continue;
        }
        let len = rest.find([' ', '\t']).unwrap_or(rest.len());
        let word = &rest[..len];
        rest = &rest[len..];
        match decode_word(word) {
            Some(decoded) => {
                if !previous_encoded {
                    out.push_str(pending);
                }
                out.push_str(&decoded);
                previous_encoded = true;
            }
            None => {
                out.push_str(pending);
                out.push_str(word);
                previous_encoded = false;
            }
        }
        pending = "";
    }
    out.push_str(pending);
    out
}

/// One `=?charset?enc?text?=` word, decoded, if the whole word is one.
fn decode_word(word: &str) -> Option<String> {
    if word.len() < 8 || !word.starts_with("=?") || !word.ends_with("?=") {
        return None;
    }
    let mut stream = MessageStream::new(&word.as_bytes()[1..]);
    let decoded = stream.decode_rfc2047()?;
    (stream.offset() == word.len() - 1).then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &str) -> Mailbox {
        match parse_address_list(value.as_bytes()).unwrap().as_slice() {
            [Address::Mailbox(m)] => m.clone(),
            other => panic!("{value:?}: {other:?}"),
        }
    }

    #[test]
    fn mailboxes() {
        let m = one(" John Q. Public <john.q@example.com>");
        assert_eq!(m.display.as_deref(), Some("John Q. Public"));
        assert_eq!(m.address, "john.q@example.com");
        assert_eq!(one("a . b @ c . d (x)").address, "a.b@c.d");
        assert_eq!(one("<@r1,@r2:u@[10.0.0.1]>").address, "u@[10.0.0.1]");
        assert_eq!(one("\"a b\"@x").address, "\"a b\"@x");
        assert_eq!(one("a@b,").address, "a@b");
    }

    #[test]
    fn refusals() {
        for bad in [
            "a",
            "<a>",
            "<>",
            "a@",
            "@b",
            "a@b c",
            "a..b@c",
            "<a@b",
            "a@b>",
            "x <a@b> y",
            "=?UTF-8?B?QQ==?=a@b",
            "<=?utf-8?q?x?=@b>",
            "a@=?utf-8?q?b?=",
        ] {
            assert_eq!(parse_address_list(bad.as_bytes()), Err(UNREADABLE), "{bad}");
        }
        assert_eq!(
            parse_address_list(b"g: a@b, c@d;"),
            Ok(vec![Address::Group])
        );
        assert_eq!(parse_address_list(b" (c) "), Ok(vec![]));
    }

    #[test]
    fn encoded_words() {
        assert_eq!(
            decode_words("=?UTF-8?Q?J=C3=B6rg?= =?UTF-8?Q?_M?= x"),
            "Jörg M x"
        );
        assert_eq!(decode_words("a =?utf-8?b?QQ0KQg==?="), "a A\r\nB");
        assert_eq!(decode_words("=?bogus"), "=?bogus");
        let m = one("=?utf-8?b?QQ0KQgBD?= <a@b>");
        assert_eq!(m.display.as_deref(), Some("A  B C"));
    }
}
