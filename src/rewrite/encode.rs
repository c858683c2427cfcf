//! Writing the address fields Postern owns (`From`, `Sender`, `Reply-To`): display names
//! encoded so that no decoder can ever get CR, LF or NUL out of them, and lines folded at
//! 78 octets. Owns the encoding rules only; which fields are written is `apply`'s business.
//!
//! A display name (after control characters became spaces and it was trimmed) is written
//! as atoms when it is printable ASCII without specials; as a quoted-string when it is
//! printable ASCII with specials; and as RFC 2047 `=?UTF-8?B?...?=` words (each at most 75
//! octets, split on character boundaries) when it holds anything else, contains `=?` (so no
//! literal text can be taken for an encoded word), or has a run too long to fold.

use super::address::sanitize;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Longest line we write ourselves (RFC 5322 §2.1.1 "SHOULD"), CRLF excluded.
const LINE: usize = 78;
/// Longest unit a continuation line can hold after its leading space.
const LONGEST_UNIT: usize = LINE - 2;
/// Octets of UTF-8 per encoded word: 42 octets give 56 base64 characters, 68 in all, so
/// a word fits on the first line of `From:` and `Sender:` and never exceeds 75 (RFC 2047).
const WORD_OCTETS: usize = 42;
/// RFC 5322 specials (plus space, which separates atoms).
const SPECIALS: &str = "()<>[]:;@\\,.\"";

/// Appends `Name: [display] <address>` and its CRLF to `out`, folded.
pub(crate) fn mailbox_field(out: &mut Vec<u8>, name: &str, display: Option<&str>, address: &str) {
    mailbox_list_field(out, name, &[(display, address)]);
}

/// Appends `Name: [display] <address>, [display] <address>...` and its CRLF, folded (the
/// comma ends the unit of the address before it).
pub(crate) fn mailbox_list_field(out: &mut Vec<u8>, name: &str, list: &[(Option<&str>, &str)]) {
    let mut units = Vec::new();
    for (n, (display, address)) in list.iter().enumerate() {
        if let Some(display) = display.and_then(sanitize) {
            units.extend(display_units(&display));
        }
        let mut angle = String::with_capacity(address.len() + 3);
        angle.push('<');
        angle.extend(address.chars().filter(|c| !c.is_control()));
        angle.push('>');
        if n + 1 < list.len() {
            angle.push(',');
        }
        units.push(angle);
    }
    fold(out, name, &units);
}

/// Appends `Name: value` and its CRLF, with control characters dropped from `value`.
pub(crate) fn plain_field(out: &mut Vec<u8>, name: &str, value: &str) {
    let clean: String = value.chars().filter(|c| !c.is_control()).collect();
    fold(out, name, &[clean]);
}

/// The display name as units that may be separated by folding whitespace.
fn display_units(display: &str) -> Vec<String> {
    let printable = display.bytes().all(|b| (0x20..0x7f).contains(&b));
    if printable && !display.contains("=?") {
        let plain = !display.contains("  ") && !display.contains(|c| SPECIALS.contains(c));
        let units = if plain {
            display.split(' ').map(str::to_string).collect()
        } else {
            quoted_units(display)
        };
        if units.iter().all(|u| u.len() <= LONGEST_UNIT) {
            return units;
        }
    }
    encoded_words(display)
}

/// `"..."` with `"` and `\` escaped, cut at single spaces (each such space becomes the
/// folding whitespace, so unfolding gives the same content back).
fn quoted_units(display: &str) -> Vec<String> {
    let mut quoted = String::with_capacity(display.len() + 8);
    quoted.push('"');
    for c in display.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    let bytes = quoted.as_bytes();
    let mut units = Vec::new();
    let mut start = 0;
    for i in 1..bytes.len() - 1 {
        if bytes[i] == b' ' && bytes[i - 1] != b' ' && bytes[i + 1] != b' ' {
            units.push(quoted[start..i].to_string());
            start = i + 1;
        }
    }
    units.push(quoted[start..].to_string());
    units
}

/// `=?UTF-8?B?...?=` words of at most [`WORD_OCTETS`] octets of text each, never
/// splitting a character.
pub(crate) fn encoded_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = start;
        for (i, c) in text[start..].char_indices() {
            if i + c.len_utf8() > WORD_OCTETS {
                break;
            }
            end = start + i + c.len_utf8();
        }
        words.push(format!(
            "=?UTF-8?B?{}?=",
            STANDARD.encode(&text[start..end])
        ));
        start = end;
    }
    words
}

/// Writes `name:` and the units separated by one space, starting a continuation line
/// (CRLF SP) before a unit that would take the line past [`LINE`] octets (also right after
/// the colon when the first unit fits on a line of its own but not after the name).
fn fold(out: &mut Vec<u8>, name: &str, units: &[String]) {
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    let mut line = name.len() + 1;
    let mut first = true;
    for unit in units {
        if line + 1 + unit.len() > LINE && (!first || unit.len() < LINE) {
            out.extend_from_slice(b"\r\n");
            line = 0;
        }
        out.push(b' ');
        out.extend_from_slice(unit.as_bytes());
        line += 1 + unit.len();
        first = false;
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::address::decode_words;

    fn from(display: Option<&str>, address: &str) -> String {
        let mut out = Vec::new();
        mailbox_field(&mut out, "From", display, address);
        String::from_utf8(out).unwrap()
    }

    /// The display text a reader gets back: unfolded, unquoted, encoded words decoded.
    fn read_back(field: &str) -> String {
        let unfolded = field.trim_end_matches("\r\n").replace("\r\n", "");
        let value = unfolded.strip_prefix("From: ").unwrap();
        let display = &value[..value.rfind(" <").unwrap()];
        match display.strip_prefix('"') {
            Some(q) => q
                .strip_suffix('"')
                .unwrap()
                .replace("\\\"", "\"")
                .replace("\\\\", "\\"),
            None => decode_words(display),
        }
    }

    #[test]
    fn plain_and_quoted() {
        assert_eq!(from(Some("John Doe"), "j@x"), "From: John Doe <j@x>\r\n");
        assert_eq!(from(None, "j@x"), "From: <j@x>\r\n");
        assert_eq!(from(Some(" \r\n "), "j@x"), "From: <j@x>\r\n");
        assert_eq!(
            from(Some("Doe, John"), "j@x"),
            "From: \"Doe, John\" <j@x>\r\n"
        );
        assert_eq!(
            from(Some("a \"b\" \\c"), "j@x"),
            "From: \"a \\\"b\\\" \\\\c\" <j@x>\r\n"
        );
        assert_eq!(from(Some("a  b"), "j@x"), "From: \"a  b\" <j@x>\r\n");
    }

    #[test]
    fn controls_become_spaces_before_encoding() {
        assert_eq!(
            from(Some("A\r\nBcc: x"), "j@x"),
            "From: \"A  Bcc: x\" <j@x>\r\n"
        );
        assert_eq!(from(Some("A\0B"), "j@x"), "From: A B <j@x>\r\n");
        assert_eq!(from(Some("A"), "j\r\n@x"), "From: A <j@x>\r\n");
    }

    #[test]
    fn non_ascii_and_lookalike_words_are_encoded() {
        assert_eq!(
            from(Some("Jörg"), "j@x"),
            "From: =?UTF-8?B?SsO2cmc=?= <j@x>\r\n"
        );
        let lookalike = from(Some("=?UTF-8?B?DQo=?="), "j@x");
        assert_eq!(
            lookalike,
            "From: =?UTF-8?B?PT9VVEYtOD9CP0RRbz0/PQ==?= <j@x>\r\n"
        );
        assert_eq!(read_back(&lookalike), "=?UTF-8?B?DQo=?=");
    }

    #[test]
    fn words_stay_short_and_whole() {
        let name = "Ünïcødé ".repeat(30) + "日本語テキスト".repeat(20).as_str();
        let field = from(Some(&name), "j@x");
        for line in field.split("\r\n") {
            assert!(line.len() <= LINE, "{line:?}");
        }
        for word in encoded_words(&name) {
            assert!(word.len() <= 75, "{word}");
        }
        let mut sender = Vec::new();
        mailbox_field(&mut sender, "Sender", Some(&name), "j@x");
        assert!(sender.split(|&b| b == b'\n').all(|l| l.len() <= LINE + 1));
        assert_eq!(read_back(&field), name.trim());
    }

    #[test]
    fn long_ascii_folds_or_encodes() {
        let spaced = "word ".repeat(60);
        let field = from(Some(&spaced), "j@x");
        assert!(field.lines().all(|l| l.len() <= LINE), "{field}");
        assert!(!field.contains("=?"));
        assert_eq!(read_back(&field).replace("\r\n", ""), spaced.trim());
        let quoted = "a,b ".repeat(60);
        let field = from(Some(&quoted), "j@x");
        assert!(field.lines().all(|l| l.len() <= LINE), "{field}");
        assert_eq!(read_back(&field), quoted.trim());
        let solid = "x".repeat(300);
        let field = from(Some(&solid), "j@x");
        assert!(field.starts_with("From: =?UTF-8?B?"), "{field}");
        assert!(field.lines().all(|l| l.len() <= LINE), "{field}");
        assert_eq!(read_back(&field), solid);
    }
}
