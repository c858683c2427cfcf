//! The end of an inbound message (SPEC §4, §6): the header `From` checked against the
//! blocklist and blocked users, as the envelope sender was at MAIL FROM. What the message
//! becomes is the hook's business, after the spool has made it durable.

use super::reply;
use super::session::{Next, Session};
use crate::metrics::Reject;
use crate::rewrite::Inspected;
use tokio::io::{AsyncRead, AsyncWrite};

/// The refusal of a message whose header `From` is blocked; logged as a warning with the
/// address, listener and rule.
pub fn check_from<S: AsyncRead + AsyncWrite + Unpin + Send>(
    session: &mut Session<S>,
    inspected: &Inspected,
) -> Option<Next> {
    let from = inspected.from.address.as_str();
    let snapshot = session.shared.policy.snapshot();
    let rule = snapshot.blocked(from)?.to_string();
    tracing::warn!(peer = %session.peer, listener = %session.shared.listener.name,
        from, %rule, "message refused: blocked header From");
    Some(session.refuse(Reject::Blocked, &reply::blocked(from)))
}
