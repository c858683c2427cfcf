//! The canonical form of a mailbox address (SPEC §12): one spelling of every address, used
//! wherever Postern compares two of them — the blocklist (envelope and header `From`,
//! address and domain entries), send-as (account addresses, aliases, a principal's own
//! address), requester lookup and creation, threading participants, archive mailboxes and
//! `org_domains`. Two spellings of one mailbox get one key, so no rule can be walked past
//! by writing an address differently.
//!
//! An address is read from any spelling Postern meets: an envelope path (`<"ann"@x>`, a
//! source route `@r:ann@x`), an addr-spec out of a header (comments and folding white space
//! between its words, `obs-local-part` such as `"a"."b"`), a mailbox with a display name
//! (`Ann <ann@x>`), an address mail-parser has already unquoted (`a b@x`), or an API field.
//! It becomes:
//!
//! - **local part**: the content of its words — quotes removed, quoted-pairs unescaped
//!   (`"a\nn"` is `ann`), comments and white space between words dropped, CR and LF
//!   (folding) removed — in Unicode NFC (RFC 6532 §3.1: a decomposed `mu\u{308}ller` is
//!   `müller`). It is written unquoted when that content is a dot-atom (RFC 5321 §4.1.2:
//!   then the quotes are no part of the address), otherwise quoted, with only `"` and `\`
//!   escaped; an empty local part is `""`.
//! - **domain**: UTS #46 ToASCII (lower case, A-labels `xn--…`, full-width dots mapped),
//!   without the root's trailing dot; a domain that ToASCII refuses is lower-cased as
//!   written. A domain literal keeps its brackets, its IP address in the standard text
//!   form (`[IPv6:0::1]` is `[IPv6:::1]`).
//!
//! [`Address::key`] (and [`key`]) is the comparison form: the local part lower-cased too
//! (SPEC §3: local parts compare case-insensitively), then NFC again. The display form
//! ([`Address`]'s `Display`, [`canonical`]) keeps the local part's case: it is what Postern
//! stores when it makes an address its own (a requester's login and e-mail). Data stored
//! under the older rules (the whole text lower-cased, quotes kept) gives the same key
//! when read back through [`key`], so lookups still find it.
//!
//! The common spelling (an ASCII dot-atom at an ASCII host name) takes a short path that
//! only lower-cases: in a debug build the general path (parse, UTS #46, NFC) costs about
//! 10 µs a key and the short one 3 µs, and MAIL FROM, RCPT and end of data each ask for
//! a few keys. A property test holds the two paths to the same answer.
//!
//! What this module must not do: decide validity or policy. Whether an address may be
//! used is the SMTP and header parsers' business; a text without an `@` (a login, a
//! broken address) compares by its trimmed, lower-cased self.

use icu_normalizer::ComposingNormalizerBorrowed;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A mailbox address in canonical form. Compare two with [`Address::key`], never with
/// the display form: that keeps the local part's case.
#[derive(Debug, Clone)]
pub struct Address {
    /// The local part's content (unquoted, unescaped, NFC), case as written.
    local: String,
    /// The canonical domain (lower case, A-labels; or a literal in brackets).
    domain: String,
}

impl Address {
    /// Reads any spelling of one mailbox; `None` when `text` has no `@`, or nothing after it.
    pub fn parse(text: &str) -> Option<Address> {
        let text = bare(text);
        let at = top_level(text, '@').last().copied()?;
        let domain = domain_key(&text[at + 1..]);
        if domain.is_empty() {
            return None;
        }
        let raw_local = &text[..at];
        let local = words(raw_local).unwrap_or_else(|| raw_local.trim().replace(['\r', '\n'], ""));
        Some(Address {
            local: nfc(&local),
            domain,
        })
    }

    /// The local part's content (unquoted), case as written.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The canonical domain: lower case, A-labels, no trailing dot (or a bracketed literal).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The comparison form: equal for every spelling of one mailbox, different otherwise.
    pub fn key(&self) -> String {
        let mut out = String::with_capacity(self.local.len() + self.domain.len() + 3);
        write_local(&mut out, &nfc(&self.local.to_lowercase()));
        out.push('@');
        out.push_str(&self.domain);
        out
    }
}

impl fmt::Display for Address {
    /// The display form: `local@domain`, the local part quoted only when it must be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut local = String::with_capacity(self.local.len() + 2);
        write_local(&mut local, &self.local);
        write!(f, "{local}@{}", self.domain)
    }
}

/// The comparison key of `text`: [`Address::key`] of an address, else the trimmed text
/// without angle brackets, lower-cased (a login; the null sender gives `""`).
pub fn key(text: &str) -> String {
    if let Some(key) = plain_key(text) {
        return key;
    }
    match Address::parse(text) {
        Some(address) => address.key(),
        None => bare(text).to_lowercase(),
    }
}

/// The key of the common spelling, without the general path's parsing and mapping: an
/// ASCII dot-atom local part and an ASCII host name, which UTS #46 only lower-cases (an
/// `xn--` label is valid and kept, or refused and lower-cased: the same either way).
/// The property tests check it against the general path.
fn plain_key(text: &str) -> Option<String> {
    let (local, domain) = text.split_once('@')?;
    let host = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
    let simple = local.is_ascii()
        && is_dot_atom(local)
        && !domain.is_empty()
        && domain.bytes().all(host)
        && domain.split('.').all(|label| !label.is_empty());
    simple.then(|| text.to_ascii_lowercase())
}

/// The display form of `text` (see [`Address`]), else the trimmed text.
pub fn canonical(text: &str) -> String {
    match Address::parse(text) {
        Some(address) => address.to_string(),
        None => bare(text).to_string(),
    }
}

/// True if `a` and `b` are spellings of one mailbox.
pub fn same(a: &str, b: &str) -> bool {
    key(a) == key(b)
}

/// True if the domain of the address `text` is one of `domains` (each in any spelling:
/// case, U- or A-labels, a trailing dot). Subdomains are not included.
pub fn domain_in(text: &str, domains: &[String]) -> bool {
    Address::parse(text).is_some_and(|a| domains.iter().any(|d| domain_key(d) == a.domain()))
}

/// The canonical form of a domain (see the module docs); `""` for an empty one.
pub fn domain_key(text: &str) -> String {
    let domain = strip_cfws(text);
    if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        return literal(inner);
    }
    // The root's dot, before and after mapping (`。` becomes `.`).
    let domain = domain.trim_end_matches('.');
    // UTS #46 maps a few characters to a space (U+00A0): such a result is not taken.
    let mapped = idna::domain_to_ascii(domain)
        .ok()
        .filter(|d| !d.contains(|c: char| c.is_whitespace() || c.is_control()))
        .unwrap_or_else(|| domain.to_lowercase());
    mapped.trim_end_matches('.').to_string()
}

/// A domain literal's content in brackets: an IPv4 or `IPv6:` address in its standard
/// text form, anything else lower-cased.
fn literal(inner: &str) -> String {
    if let Ok(ip) = inner.parse::<Ipv4Addr>() {
        return format!("[{ip}]");
    }
    let tagged = inner.get(..5).filter(|t| t.eq_ignore_ascii_case("ipv6:"));
    if let Some(ip) = tagged.and_then(|_| inner[5..].parse::<Ipv6Addr>().ok()) {
        return format!("[ipv6:{ip}]");
    }
    format!("[{}]", inner.to_lowercase())
}

/// The text trimmed, the address inside `<...>` when there is one (after a display name
/// or alone), a source route (`@a,@b:`) dropped.
fn bare(text: &str) -> &str {
    let mut text = text.trim();
    if text.ends_with('>') {
        if let Some(&open) = top_level(text, '<').last() {
            text = text[open + 1..text.len() - 1].trim();
        }
    }
    if text.starts_with('@') {
        if let Some(&colon) = top_level(text, ':').first() {
            text = text[colon + 1..].trim();
        }
    }
    text
}

/// Byte positions of `target` outside quoted strings, comments and domain literals.
fn top_level(text: &str, target: char) -> Vec<usize> {
    let (mut quoted, mut depth, mut bracket, mut escaped) = (false, 0usize, false, false);
    let mut found = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 && !bracket => quoted = !quoted,
            '(' if !quoted && !bracket => depth += 1,
            ')' if !quoted && !bracket && depth > 0 => depth -= 1,
            '[' if !quoted && depth == 0 => bracket = true,
            ']' if !quoted && depth == 0 => bracket = false,
            _ if c == target && !quoted && depth == 0 && !bracket => found.push(i),
            _ => {}
        }
    }
    found
}

/// The content of a local part written as words (atoms, quoted strings) joined by dots,
/// with comments and white space around the words; `None` when it is not written so.
fn words(local: &str) -> Option<String> {
    let mut chars = local.chars().peekable();
    let mut out = String::with_capacity(local.len());
    let mut want_word = true;
    loop {
        skip_cfws(&mut chars)?;
        match chars.peek().copied() {
            None if !want_word => return Some(out),
            Some('"') if want_word => {
                chars.next();
                quoted(&mut chars, &mut out)?;
                want_word = false;
            }
            Some('.') if !want_word => {
                chars.next();
                out.push('.');
                want_word = true;
            }
            Some(c) if want_word && atext(c) => {
                while let Some(c) = chars.next_if(|c| atext(*c)) {
                    out.push(c);
                }
                want_word = false;
            }
            _ => return None,
        }
    }
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// The rest of a quoted string (after its `"`), unescaped into `out`; CR and LF (folding,
/// escaped or not) dropped. `None` if it never ends.
fn quoted(chars: &mut Chars<'_>, out: &mut String) -> Option<()> {
    loop {
        match chars.next()? {
            '"' => return Some(()),
            '\\' => match chars.next()? {
                '\r' | '\n' => {}
                c => out.push(c),
            },
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
}

/// Skips white space and (nested) comments; `None` for a comment that never ends.
fn skip_cfws(chars: &mut Chars<'_>) -> Option<()> {
    loop {
        match chars.peek() {
            Some(' ' | '\t' | '\r' | '\n') => {
                chars.next();
            }
            Some('(') => {
                let mut depth = 0usize;
                loop {
                    match chars.next()? {
                        '(' => depth += 1,
                        ')' if depth == 1 => break,
                        ')' => depth -= 1,
                        '\\' => {
                            chars.next()?;
                        }
                        _ => {}
                    }
                }
            }
            _ => return Some(()),
        }
    }
}

/// The domain with its comments and white space (any, also inside a literal) removed;
/// only its white space when a comment never ends.
fn strip_cfws(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    loop {
        if skip_cfws(&mut chars).is_none() {
            return text.chars().filter(|c| !c.is_whitespace()).collect();
        }
        let Some(c) = chars.next() else {
            return out;
        };
        if !c.is_whitespace() {
            out.push(c);
        }
        if c == '[' {
            while let Some(c) = chars.next_if(|c| *c != ']') {
                if !c.is_whitespace() {
                    out.push(c);
                }
            }
        }
    }
}

/// RFC 5322 `atext`, with any non-ASCII character but a control or white space (RFC 6532
/// `UTF8-non-ascii`; a no-break space is written quoted).
fn atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
}

/// True if `local` can be written as a dot-atom, without quotes.
fn is_dot_atom(local: &str) -> bool {
    !local.is_empty()
        && local
            .split('.')
            .all(|a| !a.is_empty() && a.chars().all(atext))
}

/// Appends `local` as it is written in an address: bare if a dot-atom, else quoted.
fn write_local(out: &mut String, local: &str) {
    if is_dot_atom(local) {
        out.push_str(local);
        return;
    }
    out.push('"');
    for c in local.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn nfc(text: &str) -> String {
    ComposingNormalizerBorrowed::new_nfc()
        .normalize(text)
        .into_owned()
}

#[cfg(test)]
#[path = "address_tests.rs"]
mod tests;
