//! Dot-stuffing (RFC 5321 §4.5.2) without copying the message: the data is cut into
//! slices at every line that starts with `.`, and an extra `.` slice is put in front of
//! each such line, the message's first line included.
//!
//! The terminating CRLF `.` CRLF is the writer's job, not this module's.

/// Iterator over the slices of the dot-stuffed message.
pub(crate) struct DotStuffed<'a> {
    rest: &'a [u8],
    dot_next: bool,
}

impl<'a> DotStuffed<'a> {
    /// Starts at the message's first line, which is a line start too.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        DotStuffed {
            rest: data,
            dot_next: data.first() == Some(&b'.'),
        }
    }
}

impl<'a> Iterator for DotStuffed<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.dot_next {
            self.dot_next = false;
            return Some(b".");
        }
        if self.rest.is_empty() {
            return None;
        }
        // A line that starts with `.` follows an LF: find the pair (SIMD, not per byte).
        match memchr::memmem::find(self.rest, b"\n.") {
            Some(lf) => {
                let (head, tail) = self.rest.split_at(lf + 1);
                self.rest = tail;
                self.dot_next = true;
                Some(head)
            }
            None => Some(std::mem::take(&mut self.rest)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DotStuffed;

    fn stuff(data: &[u8]) -> Vec<u8> {
        DotStuffed::new(data).flatten().copied().collect()
    }

    #[test]
    fn doubles_leading_dots_including_the_first_line() {
        assert_eq!(
            stuff(b".\r\nx\r\n..y\r\n.\r\n"),
            b"..\r\nx\r\n...y\r\n..\r\n"
        );
        assert_eq!(stuff(b"a.b\r\n.c"), b"a.b\r\n..c");
        assert_eq!(stuff(b"plain\r\ntext\r\n"), b"plain\r\ntext\r\n");
        assert_eq!(stuff(b""), b"");
    }

    #[test]
    fn cuts_only_where_needed() {
        let slices: Vec<&[u8]> = DotStuffed::new(b"a\r\nb\r\n.c\r\nd\r\n").collect();
        assert_eq!(slices, [&b"a\r\nb\r\n"[..], b".", b".c\r\nd\r\n"]);
    }
}
