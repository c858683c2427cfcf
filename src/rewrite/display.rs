//! Display names that carry an address (SPEC §12): `"support@bank.example" <evil@x.example>`
//! shows a reader an address the message is not from. Owns the reading of a decoded
//! display name as a reader's eye would: it does not decide what to do about it (the
//! setting `display_name_addresses` and the SMTP path do).
//!
//! A display name (already RFC 2047-decoded and with controls turned to spaces, as
//! `inspect` gives it) carries an address when, after
//! - invisible format characters are removed (zero-width spaces and joiners, soft hyphen,
//!   bidirectional overrides and isolates, variation selectors, the BOM, tag characters),
//! - fullwidth forms are folded to ASCII (`＠` U+FF20 → `@`, `．` → `.`, `ｓ` → `s`) and the
//!   small commercial at `﹫` (U+FE6B) becomes `@`,
//! - every kind of whitespace becomes a space,
//!
//! it holds an `@` with a run of address characters on each side (whitespace next to the
//! `@` is skipped, because `support @ bank.example` reads as an address too). Address
//! characters are anything but whitespace and `<>()[]",;:@`. No dot is needed on the right
//! (`ceo@bank` is a spoof too). `support at bank.example` holds no `@` and is not an
//! address. The check is strict on purpose: a false positive only loses a display name.

/// The first address in `display` that is not one of `own` (compared case-insensitively),
/// as read after the folding described in the module docs; `None` when it carries none.
pub fn foreign_address(display: &str, own: &[&str]) -> Option<String> {
    let text = fold(display);
    let chars: Vec<char> = text.chars().collect();
    for (at, _) in chars.iter().enumerate().filter(|(_, &c)| c == '@') {
        let left_end = skip_spaces_back(&chars, at);
        let left_start = run_back(&chars, left_end);
        let right_start = skip_spaces(&chars, at + 1);
        let right_end = run(&chars, right_start);
        if left_start == left_end || right_start == right_end {
            continue;
        }
        let local: String = chars[left_start..left_end].iter().collect();
        let domain: String = chars[right_start..right_end].iter().collect();
        let domain = domain.trim_end_matches('.');
        if domain.is_empty() {
            continue;
        }
        let candidate = format!("{local}@{domain}");
        let lower = candidate.to_lowercase();
        let is_own = own.iter().any(|o| {
            fold(o.trim().trim_start_matches('<').trim_end_matches('>')).to_lowercase() == lower
        });
        if !is_own {
            return Some(candidate);
        }
    }
    None
}

/// Whether `c` may be part of an address as a reader sees it.
fn address_char(c: char) -> bool {
    !c.is_whitespace() && !"<>()[]\",;:@".contains(c)
}

fn skip_spaces_back(chars: &[char], mut i: usize) -> usize {
    while i > 0 && chars[i - 1] == ' ' {
        i -= 1;
    }
    i
}

fn run_back(chars: &[char], mut i: usize) -> usize {
    while i > 0 && address_char(chars[i - 1]) {
        i -= 1;
    }
    i
}

fn skip_spaces(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i] == ' ' {
        i += 1;
    }
    i
}

fn run(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && address_char(chars[i]) {
        i += 1;
    }
    i
}

/// The text as a reader sees it: invisible characters dropped, fullwidth forms and the
/// small at sign folded to ASCII, every whitespace a plain space.
fn fold(text: &str) -> String {
    text.chars()
        .filter(|&c| !invisible(c))
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{FE6B}' => '@',
            '\u{3002}' | '\u{FF61}' | '\u{2024}' => '.',
            c if c.is_whitespace() || c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Format characters a reader does not see (Unicode `Cf` and friends that render as
/// nothing).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

#[cfg(test)]
mod tests {
    use super::foreign_address;

    const OWN: &[&str] = &["me@example.com"];

    #[test]
    fn addresses_a_reader_would_see() {
        for display in [
            "support@bank.example",
            "Support <support@bank.example>",
            "\"support@bank.example\"",
            "support＠bank．example",
            "support﹫bank.example",
            "support @ bank.example",
            "sup\u{200b}port@\u{200d}bank.example",
            "ceo@bank",
            "Bank (support@bank.example) team",
            "\u{202e}elpmaxe.knab@troppus",
            "me@example.com, ceo@bank.example",
            "ｓｕｐｐｏｒｔ＠ｂａｎｋ．ｅｘａｍｐｌｅ",
        ] {
            assert!(foreign_address(display, OWN).is_some(), "{display:?}");
        }
    }

    #[test]
    fn what_is_not_another_address() {
        for display in [
            "Support Team",
            "support at bank.example",
            "support(at)bank.example",
            "me@example.com",
            "ME@Example.COM",
            "<me@example.com>",
            "me＠example.com",
            "@ home",
            "Bob @",
            "a @ ",
            "Jörg Müller",
            "",
        ] {
            assert_eq!(foreign_address(display, OWN), None, "{display:?}");
        }
        assert_eq!(
            foreign_address("x@y.example.", OWN).as_deref(),
            Some("x@y.example")
        );
    }
}
