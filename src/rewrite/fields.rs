//! Splitting a header block into fields: `name: value` lines with their continuation lines,
//! kept as the exact byte slices the client sent. Owns the line-level checks (NUL, bare CR
//! or LF, lines that are neither a field nor a continuation); knows nothing about what any
//! field means and never looks past the header block.

use super::RewriteError;

/// One header field as sent: `raw` is the whole field (name, colon, value, continuation
/// lines and the final CRLF when there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// The field name, without the colon.
    pub name: &'a [u8],
    /// Everything after the colon up to the final line end (continuations included).
    pub value: &'a [u8],
    /// The field's bytes exactly as sent.
    pub raw: &'a [u8],
}

impl Field<'_> {
    /// Case-insensitive name comparison (`name` in lower case).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// Whether the raw field already ends in CRLF (the last field of a message without a
    /// body may not).
    pub fn ends_with_crlf(&self) -> bool {
        self.raw.ends_with(b"\r\n")
    }
}

/// The fields of a header block (the block without its empty line), in order.
pub(crate) struct Fields<'a> {
    block: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    /// Fields of `message[..header_len]`, where `header_len` comes from
    /// [`super::header_block_len`].
    pub fn new(message: &'a [u8], header_len: usize) -> Self {
        Fields {
            block: fields_region(&message[..header_len]),
            pos: 0,
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, RewriteError>;

    fn next(&mut self) -> Option<Self::Item> {
        let block = self.block;
        let start = self.pos;
        if start >= block.len() {
            return None;
        }
        let mut end = line_end(block, start);
        self.pos = end;
        let Some(colon) = name_end(&block[start..end]) else {
            return Some(Err(RewriteError::HeaderSyntax));
        };
        while end < block.len() && matches!(block[end], b' ' | b'\t') {
            end = line_end(block, end);
        }
        self.pos = end;
        let raw = &block[start..end];
        let value_end = raw.len() - if raw.ends_with(b"\r\n") { 2 } else { 0 };
        Some(Ok(Field {
            name: &raw[..colon],
            value: &raw[colon + 1..value_end],
            raw,
        }))
    }
}

/// Checks the octets of the header block (`message[..header_len]`): no NUL, and every CR
/// and LF part of a CRLF pair. NUL is reported first.
pub(crate) fn check_octets(block: &[u8]) -> Result<(), RewriteError> {
    if block.contains(&0) {
        return Err(RewriteError::NulInHeader);
    }
    for (i, &b) in block.iter().enumerate() {
        let bare = match b {
            b'\r' => block.get(i + 1) != Some(&b'\n'),
            b'\n' => i == 0 || block[i - 1] != b'\r',
            _ => false,
        };
        if bare {
            return Err(RewriteError::BareLineEnd);
        }
    }
    Ok(())
}

/// A field value unfolded (CR and LF dropped) and trimmed of ASCII whitespace.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    let kept: Vec<u8> = value
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    kept.trim_ascii().to_vec()
}

/// The header block without its empty line: `block` is `message[..header_len]`, which ends
/// in CRLF CRLF (or is just CRLF) when a body follows, and is the whole message otherwise.
fn fields_region(block: &[u8]) -> &[u8] {
    if block == b"\r\n" || block.ends_with(b"\r\n\r\n") {
        &block[..block.len() - 2]
    } else {
        block
    }
}

/// End of the line starting at `from`: just after its CRLF, or the end of the block.
fn line_end(block: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < block.len() {
        if block[i] == b'\n' && i > from && block[i - 1] == b'\r' {
            return i + 1;
        }
        i += 1;
    }
    block.len()
}

/// Position of the colon when `line` starts with a field name (printable ASCII except
/// colon, at least one octet) immediately followed by `:`.
fn name_end(line: &[u8]) -> Option<usize> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    (!name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))).then_some(colon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(message: &[u8]) -> Vec<Result<String, RewriteError>> {
        let len = super::super::header_block_len(message);
        Fields::new(message, len)
            .map(|f| f.map(|f| String::from_utf8_lossy(f.raw).into_owned()))
            .collect()
    }

    #[test]
    fn splits_fields_with_continuations() {
        let got = names(b"A: 1\r\n\t2\r\nB: 3\r\n\r\nC: body\r\n");
        assert_eq!(
            got,
            vec![Ok("A: 1\r\n\t2\r\n".into()), Ok("B: 3\r\n".into())]
        );
        assert_eq!(names(b"A: 1"), vec![Ok("A: 1".into())]);
        assert_eq!(names(b"\r\nbody"), vec![]);
    }

    #[test]
    fn refuses_lines_that_are_not_fields() {
        assert_eq!(
            names(b" x: 1\r\n\r\n"),
            vec![Err(RewriteError::HeaderSyntax)]
        );
        assert_eq!(
            names(b"From a@b\r\n\r\n")[0],
            Err(RewriteError::HeaderSyntax)
        );
        assert_eq!(
            names(b"From : a@b\r\n\r\n")[0],
            Err(RewriteError::HeaderSyntax)
        );
        assert_eq!(names(b": a@b\r\n\r\n")[0], Err(RewriteError::HeaderSyntax));
    }

    #[test]
    fn octet_checks() {
        assert_eq!(check_octets(b"A: \0\r\n"), Err(RewriteError::NulInHeader));
        assert_eq!(check_octets(b"A: \r\r\n"), Err(RewriteError::BareLineEnd));
        assert_eq!(check_octets(b"A: \n\r\n"), Err(RewriteError::BareLineEnd));
        assert_eq!(check_octets(b"A: x\r"), Err(RewriteError::BareLineEnd));
        assert_eq!(check_octets(b"\nA: x"), Err(RewriteError::BareLineEnd));
        assert_eq!(check_octets(b"A: x\r\n\tb\r\n"), Ok(()));
    }
}
