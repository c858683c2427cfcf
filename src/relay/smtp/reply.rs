//! One upstream reply, reduced to what the relay needs: the code and a one-line text
//! ("450 4.2.0 mailbox busy") that ends up in per-recipient outcomes, logs and DSNs.
//!
//! Parsing is smtp-proto's job (`ResponseReceiver`); this module only flattens its result.

use crate::digits::push_decimal;
use crate::relay::RcptOutcome;
use smtp_proto::Response;
use std::fmt;

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
        // Digits pushed one by one: three replies or more per relayed message, and the
        // formatting machinery cost more than the rest of the reply's handling.
        let mut text = String::with_capacity(response.message.len() + 16);
        push_decimal(&mut text, u64::from(response.code), 1);
        if response.esc != [0, 0, 0] {
            let [class, subject, detail] = response.esc;
            text.push(' ');
            push_decimal(&mut text, u64::from(class), 1);
            text.push('.');
            push_decimal(&mut text, u64::from(subject), 1);
            text.push('.');
            push_decimal(&mut text, u64::from(detail), 1);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, esc: [u8; 3], message: &str) -> String {
        Reply::from(Response {
            code,
            esc,
            message: message.to_string(),
        })
        .text
    }

    #[test]
    fn code_enhanced_code_and_lines_on_one_line() {
        assert_eq!(reply(250, [2, 0, 0], "ok"), "250 2.0.0 ok");
        assert_eq!(reply(354, [0, 0, 0], "go ahead"), "354 go ahead");
        assert_eq!(
            reply(452, [4, 5, 3], "too many\n recipients \n\n"),
            "452 4.5.3 too many recipients"
        );
        assert_eq!(reply(550, [5, 7, 133], ""), "550 5.7.133");
        assert_eq!(reply(421, [0, 0, 0], "  "), "421");
    }
}
