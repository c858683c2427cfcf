//! Every fixed reply the SMTP server sends, with its RFC 3463 enhanced status code.
//! Replies that carry a value are built by the functions at the end.

pub const OK: &str = "250 2.0.0 OK";
pub const SENDER_OK: &str = "250 2.1.0 sender OK";
pub const RCPT_OK: &str = "250 2.1.5 recipient OK";
pub const RESET: &str = "250 2.0.0 reset";
pub const BYE: &str = "221 2.0.0 bye";
pub const VRFY: &str = "252 2.5.0 cannot verify the user, but will accept the message";
pub const HELP: &str =
    "214 2.0.0 commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT";
pub const START_DATA: &str = "354 end data with <CR><LF>.<CR><LF>";
pub const READY_TLS: &str = "220 2.0.0 ready to start TLS";
pub const AUTH_OK: &str = "235 2.7.0 authentication succeeded";
pub const AUTH_USERNAME: &str = "334 VXNlcm5hbWU6";
pub const AUTH_PASSWORD: &str = "334 UGFzc3dvcmQ6";
pub const AUTH_CONTINUE: &str = "334 ";

pub const BARE_NEWLINE: &str = "550 5.5.2 bare CR or LF is not allowed; only CRLF ends a line";
pub const LINE_TOO_LONG: &str = "500 5.5.2 line too long";
pub const TEXT_LINE_TOO_LONG: &str =
    "550 5.5.2 message has a line longer than the limit of 1000 octets";
pub const UNKNOWN_COMMAND: &str = "500 5.5.1 command not recognized";
pub const SYNTAX: &str = "501 5.5.4 syntax error in parameters or arguments";
pub const BAD_SEQUENCE: &str = "503 5.5.1 bad sequence of commands";
pub const NEED_HELO: &str = "503 5.5.1 send EHLO or HELO first";
pub const NEED_MAIL: &str = "503 5.5.1 need MAIL before RCPT";
pub const NEED_RCPT: &str = "503 5.5.1 need RCPT before DATA";
pub const NESTED_MAIL: &str = "503 5.5.1 sender already given";
pub const MIXED_DATA: &str = "503 5.5.1 DATA cannot follow BDAT in one transaction";
pub const NO_TLS: &str = "502 5.5.1 STARTTLS not available";
pub const ALREADY_TLS: &str = "503 5.5.1 TLS already active";
pub const UNSUPPORTED_PARAM: &str = "555 5.5.4 parameter not recognized or not implemented";
pub const BAD_XTEXT: &str = "501 5.5.4 invalid xtext value (control characters are not allowed)";
pub const BAD_SIZE: &str = "501 5.5.4 invalid SIZE value";
pub const BAD_CHUNK_SIZE: &str =
    "501 5.5.4 syntax: BDAT <size> [LAST], a size of 64 bits at most; closing connection";
pub const BAD_ADDRESS: &str = "553 5.1.3 address syntax is invalid";
pub const NEED_SMTPUTF8: &str = "553 5.6.7 non-ASCII address requires SMTPUTF8";
pub const TOO_BIG: &str = "552 5.3.4 message exceeds the size limit";
pub const HEADER_TOO_BIG: &str = "552 5.3.4 header block exceeds the size limit";
pub const TOO_MANY_RCPTS: &str = "452 4.5.3 too many recipients";
pub const TOO_MANY_HOPS: &str = "554 5.4.6 too many Received fields: mail loop suspected";
pub const NO_RCPT_LEFT: &str = "554 5.5.1 no valid recipients";

pub const AUTH_REQUIRED: &str = "530 5.7.0 authentication required";
pub const AUTH_NEEDS_TLS: &str =
    "538 5.7.11 encryption required for requested authentication mechanism";
pub const AUTH_FAILED: &str = "535 5.7.8 authentication credentials invalid";
pub const AUTH_ALREADY: &str = "503 5.5.1 already authenticated";
pub const AUTH_MECHANISM: &str = "504 5.5.4 unrecognized authentication mechanism";
pub const AUTH_CANCELLED: &str = "501 5.0.0 authentication cancelled";
pub const AUTH_BAD_BASE64: &str = "501 5.5.2 cannot decode response";
pub const AUTH_TEMP: &str = "454 4.7.0 temporary authentication failure";

pub const STORE_FAILED: &str = "451 4.3.0 message could not be stored; try again later";
/// Free disk space is below the reserve (`[queue] min_free_mb`): nothing was written.
pub const NO_ROOM: &str = "452 4.3.1 insufficient system storage; try again later";
pub const TOO_MANY_ERRORS: &str = "421 4.7.0 too many errors; closing connection";
pub const TOO_MANY_AUTH_FAILURES: &str =
    "421 4.7.0 too many authentication failures; closing connection";
pub const IDLE_TIMEOUT: &str = "421 4.4.2 idle timeout; closing connection";
pub const DATA_RATE: &str = "421 4.4.2 data rate too low; closing connection";
pub const SESSION_TIMEOUT: &str = "421 4.4.2 session time limit exceeded; closing connection";
/// The listener serves as many sessions as it may.
pub const DRAINING: &str = "421 4.3.2 this node is draining; try another node";
pub const TOO_MANY_CONNECTIONS: &str = "421 4.7.0 too many connections; try again later";
/// The client's address has as many sessions as it may.
pub const TOO_MANY_CONNECTIONS_FROM_IP: &str = "421 4.7.0 too many connections from your address";
pub const SHUTTING_DOWN: &str = "421 4.3.2 service shutting down";

/// The greeting.
pub fn greeting(hostname: &str) -> String {
    format!("220 {hostname} ESMTP Postern")
}

/// MAIL FROM with `SIZE=`, or the end of data: the message is larger than the upstream of
/// the account it goes through can take (`by` names who sets the limit). Also the reason
/// a queued message that is too large fails with.
pub fn upstream_too_big(mailbox: &str, by: &str, octets: usize) -> String {
    format!(
        "552 5.3.4 Message too big for <{mailbox}>'s upstream ({by} takes at most {octets} octets)"
    )
}

/// The final reply for an accepted message.
pub fn queued(id: &str) -> String {
    format!("250 2.0.0 queued as {id}")
}

/// The reply to BDAT for a chunk that is not the last.
pub fn chunk_ok(octets: usize) -> String {
    format!("250 2.0.0 {octets} octets received")
}

/// MAIL FROM (or the header From at end of data) on an inbound listener from a blocked
/// address, domain or user.
pub fn blocked(address: &str) -> String {
    format!("550 5.7.1 <{address}>: sender is blocked")
}

/// End of data on an inbound listener: a sender no recipient mailbox takes mail from.
pub fn unknown_sender(address: &str) -> String {
    format!(
        "550 5.7.1 <{address}>: unknown sender; this helpdesk takes mail from its requesters only"
    )
}

/// End of data on an inbound listener: an unknown sender while no user can be created.
pub const USER_LIMIT: &str =
    "451 4.7.1 this helpdesk cannot take mail from new senders right now; try again later";

/// RCPT TO on an inbound listener for anything but a helpdesk mailbox.
pub const RELAY_DENIED: &str = "550 5.7.1 relaying denied";

/// End of data on an inbound listener: DMARC failed under `p=reject` and the mailbox
/// refuses such mail.
pub const DMARC_REJECT: &str = "550 5.7.1 message refused: DMARC policy of the From domain";
