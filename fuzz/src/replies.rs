//! What a well-formed stream of SMTP replies is (RFC 5321 §4.2): lines of three digits
//! (first 2–5), a space or a dash, text of HT or printable characters (ASCII, or UTF-8 as
//! RFC 6531 allows for SMTPUTF8), CRLF; the lines of one
//! multi-line reply share their code and all but the last use the dash; the stream ends
//! with a complete reply.

/// Checks every reply in `out`; the error names the first bad line.
pub fn check(out: &[u8]) -> Result<usize, String> {
    let mut replies = 0;
    let mut open: Option<&[u8]> = None;
    let mut rest = out;
    while !rest.is_empty() {
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Err(format!("reply line without CRLF: {:?}", show(rest)));
        };
        let line = &rest[..end];
        rest = &rest[end + 2..];
        if line.len() < 4 {
            return Err(format!("reply line too short: {:?}", show(line)));
        }
        let (code, sep, text) = (&line[..3], line[3], &line[4..]);
        let digits = matches!(code[0], b'2'..=b'5')
            && code[1..].iter().all(|b| b.is_ascii_digit())
            && code[1] <= b'5';
        if !digits || !matches!(sep, b' ' | b'-') {
            return Err(format!("malformed reply line: {:?}", show(line)));
        }
        // RFC 6531 §3.7.4.2 lets a server answer an SMTPUTF8 client in UTF-8 (Postern
        // echoes such an address when it refuses it), so valid UTF-8 is allowed; control
        // characters never are.
        let Ok(text) = std::str::from_utf8(text) else {
            return Err(format!("reply text is not UTF-8: {:?}", show(line)));
        };
        if let Some(bad) = text.chars().find(|&c| c != '\t' && c.is_control()) {
            return Err(format!("control {bad:?} in reply text: {:?}", show(line)));
        }
        if line.len() > 512 {
            return Err(format!("reply line over 512 octets: {:?}", show(line)));
        }
        if let Some(first) = open {
            if first != code {
                return Err(format!(
                    "multi-line reply {:?} continued as {:?}",
                    show(first),
                    show(line)
                ));
            }
        }
        open = (sep == b'-').then_some(code);
        if sep == b' ' {
            replies += 1;
        }
    }
    match open {
        Some(code) => Err(format!("multi-line reply {:?} never ends", show(code))),
        None => Ok(replies),
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn good_and_bad_replies() {
        assert_eq!(check(b"220 hi\r\n250-a\r\n250 b\r\n"), Ok(2));
        assert!(check(b"250-a\r\n251 b\r\n").is_err());
        assert!(check(b"250-a\r\n").is_err());
        assert!(check(b"25 a\r\n").is_err());
        assert!(check(b"250 a\n").is_err());
        assert!(check(b"250 a\x01\r\n").is_err());
        assert!(check(b"250 a\xff\r\n").is_err());
        assert_eq!(check("550 <\"é\"@x>\r\n".as_bytes()), Ok(1));
        assert!(check(b"650 a\r\n").is_err());
    }
}
