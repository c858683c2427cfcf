//! The bytes a load session sends, built once per session: the envelope commands and the
//! message (header, `--size` octets of body in 76-character lines, the final `.`). Before
//! each send only the sequence number is patched in place (fixed width, in the RCPT
//! address, the Subject and the Message-ID), so no message is ever assembled twice.
//!
//! The sequence number in the recipient address (`rcpt+NNNNNNNNNN@sink.bench`) is how the
//! sink matches an arriving message to its send time. Nothing here does I/O.

/// Digits of a patched sequence number.
pub const SEQ_WIDTH: usize = 10;
/// The trusted principal and the address of the measured account.
pub const SENDER: &str = "load@postern.bench";
/// The address of the account whose messages stay queued (`--prefill`).
pub const HOLD_SENDER: &str = "hold@postern.bench";
/// Body line length, without CRLF.
const LINE: usize = 76;

/// Bytes with fixed-width slots where the sequence number goes.
#[derive(Debug, Clone, Default)]
pub struct Template {
    bytes: Vec<u8>,
    slots: Vec<usize>,
}

impl Template {
    fn text(&mut self, text: &str) -> &mut Self {
        self.bytes.extend_from_slice(text.as_bytes());
        self
    }

    fn slot(&mut self) -> &mut Self {
        self.slots.push(self.bytes.len());
        self.bytes.extend_from_slice(&[b'0'; SEQ_WIDTH]);
        self
    }

    /// Writes `seq` into every slot.
    pub fn set(&mut self, seq: u64) {
        let digits = seq_digits(seq);
        for &at in &self.slots {
            self.bytes[at..at + SEQ_WIDTH].copy_from_slice(&digits);
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// `seq` as [`SEQ_WIDTH`] ASCII digits.
fn seq_digits(mut seq: u64) -> [u8; SEQ_WIDTH] {
    let mut digits = [b'0'; SEQ_WIDTH];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (seq % 10) as u8;
        seq /= 10;
    }
    digits
}

/// The envelope commands: MAIL, RCPT and DATA lines, sent in one write when pipelining.
#[derive(Debug, Clone)]
pub struct Envelope {
    template: Template,
    /// End of the MAIL line and of the RCPT line.
    ends: [usize; 2],
}

impl Envelope {
    pub fn new(sender: &str) -> Envelope {
        let mut template = Template::default();
        template.text(&format!("MAIL FROM:<{sender}>\r\n"));
        let mail_end = template.bytes.len();
        template
            .text("RCPT TO:<rcpt+")
            .slot()
            .text("@sink.bench>\r\n");
        let rcpt_end = template.bytes.len();
        template.text("DATA\r\n");
        Envelope {
            template,
            ends: [mail_end, rcpt_end],
        }
    }

    pub fn set(&mut self, seq: u64) {
        self.template.set(seq);
    }

    /// All three commands.
    pub fn all(&self) -> &[u8] {
        self.template.bytes()
    }

    /// The commands one by one: MAIL, RCPT, DATA.
    pub fn lines(&self) -> [&[u8]; 3] {
        let bytes = self.template.bytes();
        let [mail, rcpt] = self.ends;
        [&bytes[..mail], &bytes[mail..rcpt], &bytes[rcpt..]]
    }
}

/// What a session's messages look like.
#[derive(Debug, Clone)]
pub struct Shape<'a> {
    pub sender: &'a str,
    /// Distinguishes this run's Message-IDs from any earlier run's.
    pub run_tag: &'a str,
    pub date: &'a str,
    pub body: &'a [u8],
}

/// A message ending in the `.` line, with slots for the sequence number.
pub fn message(shape: &Shape<'_>) -> Template {
    let mut template = Template::default();
    template
        .text(&format!("From: <{}>\r\n", shape.sender))
        .text("To: <rcpt@sink.bench>\r\n")
        .text("Subject: load test message ")
        .slot()
        .text("\r\nMessage-ID: <")
        .slot()
        .text(&format!(".{}@postern.bench>\r\n", shape.run_tag))
        .text(&format!("Date: {}\r\n\r\n", shape.date));
    template.bytes.extend_from_slice(shape.body);
    template.text(".\r\n");
    template
}

/// `size` octets (at least 2) of CRLF-ended lines of 76 characters (the last one shorter,
/// or 77 long when one octet is left over). No line starts with `.`.
pub fn body(size: usize) -> Vec<u8> {
    let size = size.max(2);
    let mut lengths = vec![LINE; size / (LINE + 2)];
    match size % (LINE + 2) {
        0 => {}
        1 => match lengths.last_mut() {
            Some(last) => *last += 1,
            None => lengths.push(0),
        },
        rest => lengths.push(rest - 2),
    }
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut body = Vec::with_capacity(size);
    for (n, len) in lengths.into_iter().enumerate() {
        body.extend((0..len).map(|i| alphabet[(n + i) % alphabet.len()]));
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// The current time as an RFC 5322 date in UTC.
pub fn now_rfc5322() -> String {
    postern::rewrite::date::now_rfc5322()
}
