//! Header-block work on raw message bytes (SPEC §3.3): finding where the header block ends,
//! counting trace fields, building the `Received` field Postern prepends, and the send-as
//! rewrite itself — [`inspect`] reads the client's header block (one `From` mailbox or a
//! refusal, never a guess), [`apply`] writes the rewritten block in front of the body.
//!
//! Mail is bytes here: only the header block is scanned, the body is never parsed, copied,
//! moved (given headroom) or changed, and no regular expression ever runs on it. Every
//! display name Postern writes is re-encoded so that no decoded header can hold CR, LF or NUL.
//!
//! Pieces: `fields` splits the header block into fields, `lexer` + `address` parse RFC 5322
//! mailboxes, `encode` writes display names and folds, `display` finds addresses hidden in
//! display names, `inspect` and `apply` are the API.

mod address;
mod apply;
pub mod date;
mod display;
mod encode;
mod fields;
mod header;
mod inspect;
mod lexer;
mod received;

pub use apply::{apply, Plan};
pub use display::foreign_address;
pub(crate) use fields::{unfold, Fields};
pub use header::{header_block_len, received_count, HeaderScan};
pub use inspect::{inspect, thread_refs, Inspected, Mailbox, Resent, ResentField};
pub use received::{received_field, ReceivedInfo};

/// Why a message's header block is refused. Postern never guesses which `From` a client
/// meant: anything ambiguous or malformed in the fields that decide the account is refused
/// with a reply naming the problem ([`RewriteError::reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// No `From` field at all.
    #[error("message has no From field")]
    NoFrom,
    /// Two or more `From` fields (mail-parsers disagree on which one wins).
    #[error("message has two From fields")]
    MultipleFrom,
    /// `From` holds more than one mailbox; a `Sender` field is present.
    #[error("From field holds more than one mailbox")]
    FromList,
    /// `From` holds more than one mailbox and there is no `Sender` (RFC 5322 §3.6.2).
    #[error("From field holds more than one mailbox and there is no Sender")]
    FromListWithoutSender,
    /// `From` uses group syntax (`undisclosed: ;`).
    #[error("From field holds a group, not a mailbox")]
    FromGroup,
    /// `From` is present but holds nothing (only spaces or comments).
    #[error("From field is empty")]
    FromEmpty,
    /// `From` cannot be read as an RFC 5322 mailbox (or is not UTF-8).
    #[error("From field is not a valid mailbox")]
    FromUnparsable,
    /// A NUL octet somewhere in the header block.
    #[error("message header contains a NUL octet")]
    NulInHeader,
    /// A CR not followed by LF, or an LF not preceded by CR, in the header block.
    #[error("message header contains a bare CR or LF")]
    BareLineEnd,
    /// A line that is neither `name: value` nor a continuation of a field.
    #[error("message header has a line that is neither a field nor a continuation")]
    HeaderSyntax,
    /// Two `X-Postern-Account` fields: which account is meant would be a guess.
    #[error("message has two X-Postern-Account fields")]
    MultipleAccountHints,
    /// `X-Postern-Account` is not UTF-8.
    #[error("X-Postern-Account field is not valid UTF-8")]
    AccountHintUnparsable,
    /// A `Resent-From` that is not a list of one or more mailboxes (unreadable, empty,
    /// or a group).
    #[error("Resent-From field is not a valid mailbox list")]
    ResentFromUnparsable,
    /// A `Resent-Sender` that is not exactly one mailbox.
    #[error("Resent-Sender field is not a single valid mailbox")]
    ResentSenderUnparsable,
}

impl RewriteError {
    /// The full SMTP reply for this refusal (`550 5.6.0 ...`).
    pub fn reply(&self) -> &'static str {
        match self {
            Self::NoFrom => "550 5.6.0 message has no From field",
            Self::MultipleFrom => "550 5.6.0 message has two From fields",
            Self::FromList => "550 5.6.0 From field holds more than one mailbox",
            Self::FromListWithoutSender => {
                "550 5.6.0 From field holds more than one mailbox and there is no Sender"
            }
            Self::FromGroup => "550 5.6.0 From field holds a group, not a mailbox",
            Self::FromEmpty => "550 5.6.0 From field is empty",
            Self::FromUnparsable => "550 5.6.0 From field is not a valid mailbox",
            Self::NulInHeader => "550 5.6.0 message header contains a NUL octet",
            Self::BareLineEnd => "550 5.6.0 message header contains a bare CR or LF",
            Self::HeaderSyntax => {
                "550 5.6.0 message header has a line that is neither a field nor a continuation"
            }
            Self::MultipleAccountHints => "550 5.6.0 message has two X-Postern-Account fields",
            Self::AccountHintUnparsable => "550 5.6.0 X-Postern-Account field is not valid UTF-8",
            Self::ResentFromUnparsable => "550 5.6.0 Resent-From field is not a valid mailbox list",
            Self::ResentSenderUnparsable => {
                "550 5.6.0 Resent-Sender field is not a single valid mailbox"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RewriteError;

    #[test]
    fn replies_are_550_5_6_0_and_match_display() {
        let all = [
            RewriteError::NoFrom,
            RewriteError::MultipleFrom,
            RewriteError::FromList,
            RewriteError::FromListWithoutSender,
            RewriteError::FromGroup,
            RewriteError::FromEmpty,
            RewriteError::FromUnparsable,
            RewriteError::NulInHeader,
            RewriteError::BareLineEnd,
            RewriteError::HeaderSyntax,
            RewriteError::MultipleAccountHints,
            RewriteError::AccountHintUnparsable,
            RewriteError::ResentFromUnparsable,
            RewriteError::ResentSenderUnparsable,
        ];
        for error in all {
            let reply = error.reply();
            assert_eq!(reply, format!("550 5.6.0 {error}"));
        }
    }
}
