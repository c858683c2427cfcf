//! The mbox a backup is downloaded as (the `mboxrd` variant): each message behind a
//! `From sender date` separator line, lines turned from CRLF into LF, every line that
//! starts with `From ` after any number of `>` quoted with one more `>`, and an empty line
//! after each message. Python's `mailbox` and mail-parser read it back.

use std::io::{self, Write};

/// Appends one message: `sender` is the envelope sender (empty for `<>`), `secs` when it
/// was accepted (Unix seconds).
pub fn append(out: &mut impl Write, sender: &str, secs: u64, message: &[u8]) -> io::Result<()> {
    let sender = match sender.is_empty() || sender.contains(char::is_whitespace) {
        true => "MAILER-DAEMON",
        false => sender,
    };
    writeln!(out, "From {sender} {}", crate::rewrite::date::asctime(secs))?;
    let mut lines = message.split(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if lines.peek().is_none() && line.is_empty() {
            break;
        }
        let unquoted = line.iter().position(|&b| b != b'>').map(|i| &line[i..]);
        if unquoted.is_some_and(|rest| rest.starts_with(b"From ")) {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines_are_quoted_and_line_ends_become_lf() {
        let mut out = Vec::new();
        let message = b"Subject: x\r\n\r\nFrom here\r\n>From there\r\nFromage\r\nend";
        append(&mut out, "a@b.example", 0, message).unwrap();
        append(&mut out, "", 0, b"Subject: y\r\n\r\nbody\r\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From a@b.example Thu Jan  1 00:00:00 1970\nSubject: x\n\n>From here\n>>From there\nFromage\nend\n\n\
             From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nSubject: y\n\nbody\n\n"
        );
    }
}
