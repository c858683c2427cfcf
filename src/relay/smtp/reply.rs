//! One upstream reply, reduced to what the relay needs: the code and a one-line text
//! ("450 4.2.0 mailbox busy") that ends up in per-recipient outcomes, logs and DSNs.
//!
//! Parsing is smtp-proto's job (`ResponseReceiver`); this module only flattens its result.

use crate::relay::RcptOutcome;
use smtp_proto::Response;
use std::fmt;
use std::fmt::Write as _;

/// A complete (possibly multi-line) SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The three-digit reply code.
    pub(crate) code: u16,
    /// Code, enhanced status code and text on one line, as the upstream meant it.
    pub(crate) text: String,
}

impl Reply {
    /// 2xx: the command was accepted.
    pub(crate) fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The outcome this reply means for a recipient it applies to.
    pub(crate) fn outcome(&self) -> RcptOutcome {
        match self.code {
            200..=299 => RcptOutcome::Delivered(self.text.clone()),
            500..=599 => RcptOutcome::Permanent(self.text.clone()),
            _ => RcptOutcome::Temporary(self.text.clone()),
        }
    }
}

impl From<Response<String>> for Reply {
    fn from(response: Response<String>) -> Self {
        let mut text = String::with_capacity(response.message.len() + 10);
        let _ = write!(text, "{}", response.code);
        if response.esc != [0, 0, 0] {
            let [class, subject, detail] = response.esc;
            let _ = write!(text, " {class}.{subject}.{detail}");
        }
        for line in response.message.split('\n') {
            let line = line.trim();
            if !line.is_empty() {
                text.push(' ');
                text.push_str(line);
            }
        }
        Reply {
            code: response.code,
            text,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
