//! Postern's own reading of `MAIL FROM` and `RCPT TO` arguments, closing the gaps of
//! smtp-proto: the path is taken as the client wrote it (a quoted local part keeps its
//! quotes), `SIZE=` must be 1–20 digits and is compared as a u64, and xtext values
//! (`ENVID`, `ORCPT`, `AUTH`) are refused when they decode to control characters.

use super::reply;

/// Why an argument was refused; each maps to one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("syntax")]
    Syntax,
    #[error("address")]
    Address,
    #[error("xtext")]
    Xtext,
    #[error("size value")]
    SizeValue,
    #[error("size exceeded")]
    TooBig,
    #[error("unsupported parameter")]
    Unsupported,
    #[error("SMTPUTF8 required")]
    NeedUtf8,
}

impl ParamError {
    /// The reply for this refusal.
    pub fn reply(self) -> &'static str {
        match self {
            ParamError::Syntax => reply::SYNTAX,
            ParamError::Address => reply::BAD_ADDRESS,
            ParamError::Xtext => reply::BAD_XTEXT,
            ParamError::SizeValue => reply::BAD_SIZE,
            ParamError::TooBig => reply::TOO_BIG,
            ParamError::Unsupported => reply::UNSUPPORTED_PARAM,
            ParamError::NeedUtf8 => reply::NEED_SMTPUTF8,
        }
    }
}

/// The parameters of `MAIL FROM` that Postern acts on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MailParams {
    pub size: Option<u64>,
    pub eight_bit: bool,
    pub smtputf8: bool,
}

/// Splits `MAIL FROM:<path> params` (the line without CRLF) into the path and the rest.
/// The keyword before the colon must be `MAIL FROM` or `RCPT TO` (any case), nothing else.
pub fn split_path(line: &str) -> Result<(&str, &str), ParamError> {
    let colon = line.find(':').ok_or(ParamError::Syntax)?;
    let keyword = &line[..colon];
    if !keyword.eq_ignore_ascii_case("MAIL FROM") && !keyword.eq_ignore_ascii_case("RCPT TO") {
        return Err(ParamError::Syntax);
    }
    let rest = line[colon + 1..].trim_start_matches(' ');
    let inner = rest.strip_prefix('<').ok_or(ParamError::Syntax)?;
    let end = closing_bracket(inner).ok_or(ParamError::Syntax)?;
    let path = &inner[..end];
    let params = &inner[end + 1..];
    if !params.is_empty() && !params.starts_with(' ') {
        return Err(ParamError::Syntax);
    }
    Ok((strip_source_route(path), params.trim()))
}

/// Position of the `>` closing a path, skipping quoted strings.
fn closing_bracket(text: &str) -> Option<usize> {
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '>' if !in_quote => return Some(i),
            _ => {}
        }
    }
    None
}

/// Drops an RFC 5321 source route (`@a,@b:user@c` → `user@c`).
fn strip_source_route(path: &str) -> &str {
    if path.starts_with('@') {
        if let Some(colon) = path.find(':') {
            return &path[colon + 1..];
        }
    }
    path
}

/// Checks a mailbox `local@domain` (local part a dot-atom or a quoted string).
pub fn check_mailbox(address: &str) -> Result<(), ParamError> {
    let at = address.rfind('@').ok_or(ParamError::Address)?;
    let (local, domain) = (&address[..at], &address[at + 1..]);
    if local.is_empty() || local.len() > 64 || domain.is_empty() || address.len() > 254 {
        return Err(ParamError::Address);
    }
    let local_ok = if local.starts_with('"') {
        quoted_ok(local)
    } else {
        local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atext))
    };
    let domain_ok = if domain.starts_with('[') {
        domain.ends_with(']')
            && domain[1..domain.len() - 1]
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '[' && c != ']' && c != '\\')
    } else {
        domain.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    };
    match local_ok && domain_ok {
        true => Ok(()),
        false => Err(ParamError::Address),
    }
}

fn atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn quoted_ok(local: &str) -> bool {
    if local.len() < 2 || !local.ends_with('"') {
        return false;
    }
    let inner = &local[1..local.len() - 1];
    let mut escaped = false;
    for c in inner.chars() {
        if c.is_control() {
            return false;
        }
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return false,
            _ => {}
        }
    }
    !escaped
}

/// Reads `MAIL FROM` parameters.
pub fn mail_params(params: &str, max_size: usize) -> Result<MailParams, ParamError> {
    let mut out = MailParams::default();
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => out.size = Some(size_value(value, max_size)?),
            "BODY" => match value.to_ascii_uppercase().as_str() {
                "8BITMIME" => out.eight_bit = true,
                "7BIT" => {}
                _ => return Err(ParamError::Unsupported),
            },
            "SMTPUTF8" if value.is_empty() => out.smtputf8 = true,
            "AUTH" => check_xtext(value)?,
            "ENVID" => {
                check_xtext(value)?;
                return Err(ParamError::Unsupported);
            }
            _ => return Err(ParamError::Unsupported),
        }
    }
    Ok(out)
}

/// Reads `RCPT TO` parameters (Postern advertises none; `ORCPT` is still checked).
pub fn rcpt_params(params: &str) -> Result<(), ParamError> {
    let Some(param) = params.split(' ').find(|p| !p.is_empty()) else {
        return Ok(());
    };
    let (key, value) = param.split_once('=').unwrap_or((param, ""));
    if key.eq_ignore_ascii_case("ORCPT") {
        check_xtext(value)?;
    }
    Err(ParamError::Unsupported)
}

fn size_value(value: &str, max_size: usize) -> Result<u64, ParamError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::SizeValue);
    }
    match value.parse::<u64>() {
        Ok(size) if size <= max_size as u64 => Ok(size),
        _ => Err(ParamError::TooBig),
    }
}

/// Decodes xtext (RFC 3461 §4) and refuses malformed values and decoded control characters.
fn check_xtext(value: &str) -> Result<(), ParamError> {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            let hex = bytes.get(i + 1..i + 3).ok_or(ParamError::Xtext)?;
            let text = std::str::from_utf8(hex).map_err(|_| ParamError::Xtext)?;
            let decoded = u8::from_str_radix(text, 16).map_err(|_| ParamError::Xtext)?;
            if decoded < 0x20 || decoded == 0x7f {
                return Err(ParamError::Xtext);
            }
            i += 3;
        } else if (b'!'..=b'~').contains(&b) && b != b'=' {
            i += 1;
        } else {
            return Err(ParamError::Xtext);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_local_part_keeps_its_quotes() {
        let (path, params) = split_path("MAIL FROM:<\"john doe\"@example.com> SIZE=10").unwrap();
        assert_eq!(path, "\"john doe\"@example.com");
        assert_eq!(params, "SIZE=10");
        check_mailbox(path).unwrap();
        let (path, _) = split_path("RCPT TO:<\"a>b\"@example.com>").unwrap();
        assert_eq!(path, "\"a>b\"@example.com");
    }

    #[test]
    fn source_route_dropped_and_bad_addresses_refused() {
        assert_eq!(split_path("RCPT TO:<@a,@b:u@c>").unwrap().0, "u@c");
        assert!(check_mailbox("no-at-sign").is_err());
        assert!(check_mailbox("a..b@x").is_err());
        assert!(check_mailbox("\"a\"b\"@x").is_err());
        assert!(split_path("MAIL FROM:<a@b>SIZE=1").is_err());
    }

    /// Found by the fuzzer (fuzz/FINDINGS.md F5): `MAIL FNOM:<a@b>` was taken for MAIL FROM.
    #[test]
    fn keyword_before_the_colon_is_checked() {
        assert!(split_path("mail from:<a@b>").is_ok());
        assert!(split_path("RCPT TO:<a@b>").is_ok());
        for line in [
            "MAIL FNOM:<a@b>",
            "RCPT XX:<a@b>",
            "MAIL :<a@b>",
            "MAIL  FROM:<a@b>",
            "MAIL FROM :<a@b>",
            "MAIL TO:<a@b>",
            "RCPT FROM:<a@b>",
        ] {
            assert_eq!(split_path(line), Err(ParamError::Syntax), "{line}");
        }
    }

    #[test]
    fn overlong_size_is_too_big_not_misread() {
        let huge = "SIZE=99999999999999999999999999999999";
        assert_eq!(mail_params(huge, 1000), Err(ParamError::TooBig));
        assert_eq!(
            mail_params("SIZE=18446744073709551617", 1000),
            Err(ParamError::TooBig)
        );
        assert_eq!(mail_params("SIZE=1001", 1000), Err(ParamError::TooBig));
        assert_eq!(mail_params("SIZE=12x", 1000), Err(ParamError::SizeValue));
        assert_eq!(mail_params("SIZE=1000", 1000).unwrap().size, Some(1000));
    }

    #[test]
    fn xtext_control_characters_refused() {
        assert_eq!(mail_params("AUTH=a+0D+0Ab", 10), Err(ParamError::Xtext));
        assert_eq!(mail_params("ENVID=x+0Ay", 10), Err(ParamError::Xtext));
        assert_eq!(rcpt_params("ORCPT=rfc822;a+0D@b"), Err(ParamError::Xtext));
        assert!(mail_params("AUTH=<>", 10).is_ok());
        assert!(mail_params("AUTH=user+2Bx@example.com", 10).is_ok());
    }
}
