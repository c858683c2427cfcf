//! The size an account's upstream can carry (`Deliver::max_message_size`; Microsoft Graph
//! takes one request of 4 MB): a bigger message is refused while its client is still
//! there — at `MAIL FROM … SIZE=` when the client announces the size, and at the end of
//! the data (for a client that did not, or whose `From` chose another account) — instead
//! of bouncing later. Asks `policy` which account, and the relays for the limit; decides
//! nothing else.

use super::{reply, Shared};
use crate::policy::{self, Snapshot};
use crate::relay::Relays;

/// The refusal at MAIL FROM of a message of `size` octets from `mail_from` (by `user`),
/// when the upstream of the account it would go through takes less.
pub(super) fn at_mail(
    shared: &Shared,
    snapshot: &Snapshot,
    user: u64,
    mail_from: &str,
    size: Option<u64>,
) -> Option<String> {
    let (size, relays) = (size?, shared.relays.as_ref()?);
    if mail_from.is_empty() || !relays.any_size_limit() {
        return None;
    }
    let decision = policy::admit(snapshot, user, mail_from, None).ok()?;
    refusal(
        relays,
        &decision.account.upstream,
        decision.envelope_from(),
        size,
    )
}

/// The refusal at the end of the data of a message of `size` octets that would go
/// through `upstream` as `mailbox`.
pub(super) fn at_end(
    shared: &Shared,
    upstream: &str,
    mailbox: &str,
    size: usize,
) -> Option<String> {
    refusal(shared.relays.as_ref()?, upstream, mailbox, size as u64)
}

fn refusal(relays: &Relays, upstream: &str, mailbox: &str, size: u64) -> Option<String> {
    let (octets, by) = relays.size_limit(upstream)?;
    (size > octets as u64).then(|| reply::upstream_too_big(mailbox, by, octets))
}
