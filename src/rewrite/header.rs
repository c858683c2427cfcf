//! Scanning the header block of a raw message: its length and its trace fields.

/// What a scan of the header block found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderScan {
    /// Octets of the header block, up to and including the empty line (or the whole
    /// message when it has no body).
    pub len: usize,
    /// `Received` fields in it.
    pub received: usize,
}

/// Length of the header block of `message` (CRLF line endings).
pub fn header_block_len(message: &[u8]) -> usize {
    if message.starts_with(b"\r\n") {
        return 2;
    }
    match find(message, b"\r\n\r\n") {
        Some(pos) => pos + 4,
        None => message.len(),
    }
}

/// Number of `Received:` fields in the header block of `message`.
pub fn received_count(message: &[u8]) -> HeaderScan {
    let len = header_block_len(message);
    let block = &message[..len];
    let mut received = 0;
    let mut start = 0;
    while start < block.len() {
        let line_end = find(&block[start..], b"\r\n").map_or(block.len(), |p| start + p + 2);
        let line = &block[start..line_end];
        if line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:") {
            received += 1;
        }
        start = line_end;
    }
    HeaderScan { len, received }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_block_and_counts_trace_fields() {
        let msg = b"Received: a\r\n\tfolded\r\nreceived: b\r\nSubject: x Received: no\r\n\r\nReceived: body\r\n";
        let scan = received_count(msg);
        assert_eq!(scan.received, 2);
        assert_eq!(&msg[scan.len - 4..scan.len], b"\r\n\r\n");
    }

    #[test]
    fn no_body() {
        assert_eq!(header_block_len(b"Subject: x\r\n"), 12);
        assert_eq!(header_block_len(b"\r\nbody"), 2);
    }
}
