//! RFC 5322 §3.2 lexical tokens of an address field value: atoms, quoted strings, domain
//! literals and specials, with comments (nested) and folding whitespace dropped. Owns only
//! the token level; which token sequence is a mailbox is `address`'s business.
//!
//! Strict where it matters: an unterminated comment, quoted string or domain literal, a
//! stray `)`, `]` or `\`, or any control character other than folding whitespace makes the
//! whole value unreadable rather than guessed at.

use super::RewriteError;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// A run of atext (RFC 6532: UTF-8 beyond ASCII included).
    Atom(&'a str),
    /// A quoted string: `raw` as written with its quotes (folding CRLFs removed), `text`
    /// its content with quoted-pairs resolved.
    Quoted { raw: String, text: String },
    /// A domain literal `[...]` as written (folding CRLFs removed).
    Literal(String),
    /// One of `< > @ , ; : .`.
    Special(char),
}

/// A token and whether whitespace or a comment came right before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tok<'a> {
    pub token: Token<'a>,
    pub space_before: bool,
}

const UNREADABLE: RewriteError = RewriteError::FromUnparsable;

/// Splits `value` into tokens.
pub(crate) fn lex(value: &str) -> Result<Vec<Tok<'_>>, RewriteError> {
    let mut toks = Vec::new();
    let mut rest = value;
    let mut space = false;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        let (token, next) = match c {
            ' ' | '\t' | '\r' | '\n' => {
                space = true;
                rest = after;
                continue;
            }
            '(' => {
                rest = skip_comment(after)?;
                space = true;
                continue;
            }
            '"' => quoted(after)?,
            '[' => literal(after)?,
            '<' | '>' | '@' | ',' | ';' | ':' | '.' => (Token::Special(c), after),
            _ if is_atext(c) => {
                let len = rest.find(|c: char| !is_atext(c)).unwrap_or(rest.len());
                (Token::Atom(&rest[..len]), &rest[len..])
            }
            _ => return Err(UNREADABLE),
        };
        toks.push(Tok {
            token,
            space_before: space,
        });
        space = false;
        rest = next;
    }
    Ok(toks)
}

/// atext of RFC 5322 §3.2.3 plus any non-ASCII character that is not a control.
fn is_atext(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
    } else {
        !c.is_control()
    }
}

/// A character allowed raw inside a quoted string or domain literal.
fn is_text(c: char) -> bool {
    c == ' ' || c == '\t' || !c.is_control()
}

/// Skips a comment whose `(` is already consumed; returns what follows its `)`.
fn skip_comment(mut rest: &str) -> Result<&str, RewriteError> {
    let mut depth = 1usize;
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, q)) if is_text(q) => {}
                _ => return Err(UNREADABLE),
            },
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    rest = &rest[i + 1..];
                    return Ok(rest);
                }
            }
            '\r' | '\n' => {}
            _ if is_text(c) => {}
            _ => return Err(UNREADABLE),
        }
    }
    Err(UNREADABLE)
}

/// A quoted string whose `"` is already consumed.
fn quoted(rest: &str) -> Result<(Token<'_>, &str), RewriteError> {
    let mut raw = String::from("\"");
    let mut text = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, q)) if is_text(q) => {
                    raw.push('\\');
                    raw.push(q);
                    text.push(q);
                }
                _ => return Err(UNREADABLE),
            },
            '"' => {
                raw.push('"');
                return Ok((Token::Quoted { raw, text }, &rest[i + 1..]));
            }
            '\r' | '\n' => {}
            _ if is_text(c) => {
                raw.push(c);
                text.push(c);
            }
            _ => return Err(UNREADABLE),
        }
    }
    Err(UNREADABLE)
}

/// A domain literal whose `[` is already consumed (no quoted-pairs, no nested brackets).
fn literal(rest: &str) -> Result<(Token<'_>, &str), RewriteError> {
    let mut raw = String::from("[");
    for (i, c) in rest.char_indices() {
        match c {
            ']' => {
                raw.push(']');
                return Ok((Token::Literal(raw), &rest[i + 1..]));
            }
            '\r' | '\n' => {}
            '[' | '\\' => return Err(UNREADABLE),
            _ if is_text(c) => raw.push(c),
            _ => return Err(UNREADABLE),
        }
    }
    Err(UNREADABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(value: &str) -> Vec<Token<'_>> {
        lex(value).unwrap().into_iter().map(|t| t.token).collect()
    }

    #[test]
    fn tokens_and_comments() {
        assert_eq!(
            kinds("a (x (y) \\) z) \"q \\\"r\" <b@[1.2.3.4]>"),
            vec![
                Token::Atom("a"),
                Token::Quoted {
                    raw: "\"q \\\"r\"".into(),
                    text: "q \"r".into()
                },
                Token::Special('<'),
                Token::Atom("b"),
                Token::Special('@'),
                Token::Literal("[1.2.3.4]".into()),
                Token::Special('>'),
            ]
        );
        assert_eq!(kinds("Jörg"), vec![Token::Atom("Jörg")]);
        let toks = lex("a.b c").unwrap();
        assert!(!toks[1].space_before && toks[3].space_before);
    }

    #[test]
    fn refuses_unterminated_and_controls() {
        for bad in [
            "(a",
            "\"a",
            "[a",
            "a)",
            "a]",
            "a\\b",
            "a\u{1}",
            "\"\u{7f}\"",
            "(\0)",
        ] {
            assert_eq!(lex(bad), Err(UNREADABLE), "{bad:?}");
        }
    }
}
