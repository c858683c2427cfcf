//! Whose mail a message is (SPEC §8), decided from the policy snapshot when the message is
//! accepted: the users whose account type is not `private` among the submitting user, the
//! owner of the account it goes through (or arrives for), and the users whose configured
//! mailbox is that account's address (or, inbound, the recipient's).

use crate::policy::Snapshot;
use crate::spool::Keep;
use crate::store::Account;

/// A message submitted by user `principal` through `account`.
pub fn outbound(snapshot: &Snapshot, principal: u64, account: &Account) -> Option<Keep> {
    let mut owners = Vec::new();
    add(snapshot, &mut owners, principal);
    mailbox(snapshot, &mut owners, account);
    keep(owners, Some(account.id))
}

/// A message received for `rcpts` on an inbound listener.
pub fn inbound(snapshot: &Snapshot, rcpts: &[String]) -> Option<Keep> {
    let mut owners = Vec::new();
    let mut via = None;
    for rcpt in rcpts {
        if let Some(account) = snapshot.inbound_mailbox(rcpt) {
            via.get_or_insert(account.id);
            mailbox(snapshot, &mut owners, account);
        }
        for &user in snapshot.mailbox_owners(rcpt) {
            add(snapshot, &mut owners, user);
        }
    }
    keep(owners, via)
}

/// The owner of `account` and the users whose mailbox is its address.
fn mailbox(snapshot: &Snapshot, owners: &mut Vec<u64>, account: &Account) {
    if let Some(owner) = account.owner {
        add(snapshot, owners, owner);
    }
    for &user in snapshot.mailbox_owners(&account.address) {
        add(snapshot, owners, user);
    }
}

fn add(snapshot: &Snapshot, owners: &mut Vec<u64>, user: u64) {
    if snapshot.archived(user).is_some() && !owners.contains(&user) {
        owners.push(user);
    }
}

fn keep(owners: Vec<u64>, account: Option<u64>) -> Option<Keep> {
    (!owners.is_empty()).then_some(Keep { owners, account })
}
