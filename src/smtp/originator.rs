//! The originator fields of a submission beyond the `From` that picks the account (SPEC
//! §12): every mailbox of every `Resent-From` and `Resent-Sender` field must be one the
//! principal may send as (the send-as decision of SPEC §3, asked of `policy` for each),
//! and a display name that carries an address other than its field's own is allowed,
//! stripped or refused as the setting `display_name_addresses` says.
//!
//! Owns these checks and the choice of the display names written; the decision is
//! `policy`'s, the reading of a display name and the writing are `rewrite`'s. Submission
//! only: inbound mail is not the sender's to vouch for, and passes untouched.

use crate::policy::{self, Decision, Principal, Snapshot};
use crate::rewrite::{foreign_address, Inspected, Mailbox, Resent};
use crate::store::DisplayNameAddresses;

/// The display names and resent fields a submission is written with.
pub(super) struct Originators<'a> {
    /// Display name of `From`.
    pub from_display: Option<&'a str>,
    /// `Sender` (display, address), for send_on_behalf.
    pub sender: Option<(Option<&'a str>, &'a str)>,
    /// `Some`: the resent fields to write instead of the client's (display names re-encoded,
    /// stripped where they carry another address); `None`: the client's are kept as sent
    /// (`display_name_addresses = "allow"`, or there are none).
    pub resent: Option<Vec<Resent>>,
}

/// Checks the resent originators and the display names of a submission admitted as
/// `decision`; the refusal's reply text on failure.
pub(super) fn check<'a>(
    snapshot: &'a Snapshot,
    principal: &Principal,
    decision: &Decision<'a>,
    inspected: &'a Inspected,
) -> Result<Originators<'a>, String> {
    let mode = snapshot.settings.display_name_addresses;
    let resent = inspected.resent.as_deref().unwrap_or(&[]);
    let decisions = resent_decisions(snapshot, principal, resent)?;
    let client = inspected.from.display.as_deref();
    let own = [inspected.from.address.as_str(), decision.from_address()];
    let spoof = client.and_then(|d| foreign_address(d, &own));
    if let (DisplayNameAddresses::Refuse, Some(_)) = (mode, &spoof) {
        return Err(refused("From", &inspected.from.address));
    }
    let client = client.filter(|_| spoof.is_none() || mode == DisplayNameAddresses::Allow);
    let from_display = policy::from_display(decision, client).or_else(|| {
        // Stripped: the account's display name is already preferred; else the user's.
        spoof
            .as_ref()
            .and(Some(decision.user.display_name.as_str()))
    });
    let from_address = decision.from_address();
    let sender = policy::sender(decision)
        .map(|(display, address)| (written(mode, display, address), address));
    let resent = match mode {
        DisplayNameAddresses::Allow => None,
        _ => strip_resent(mode, resent, &decisions)?,
    };
    Ok(Originators {
        from_display: written(mode, from_display, from_address),
        sender,
        resent,
    })
}

/// The send-as decision for every resent mailbox, in order; the refusal naming the field
/// and the rule for the first one the principal may not send as.
fn resent_decisions<'a>(
    snapshot: &'a Snapshot,
    principal: &Principal,
    resent: &[Resent],
) -> Result<Vec<Decision<'a>>, String> {
    let mut decisions = Vec::new();
    for field in resent {
        for mailbox in &field.mailboxes {
            let address = mailbox.address.as_str();
            match policy::admit(snapshot, principal.id, address, None) {
                Ok(decision) => decisions.push(decision),
                Err(refusal) => {
                    let name = field.field.name();
                    return Err(format!(
                        "550 5.7.1 <{}> may not send as <{address}> ({name}: {})",
                        principal.login, refusal.rule
                    ));
                }
            }
        }
    }
    Ok(decisions)
}

/// The resent fields to write, with every display name that carries another address
/// replaced (by the account's display name, else the user's, else none); `None` when the
/// message has none. They are written even when nothing was replaced, so that what a
/// reader decodes is what Postern read (mail-parser 0.11 also decodes an encoded word with
/// text glued to its end, `=?utf-8?q?a=40b?=x`, which RFC 2047 and Postern do not).
/// `decisions` holds one decision per mailbox, in order.
fn strip_resent(
    mode: DisplayNameAddresses,
    resent: &[Resent],
    decisions: &[Decision<'_>],
) -> Result<Option<Vec<Resent>>, String> {
    let mut out = resent.to_vec();
    let mailboxes = out
        .iter_mut()
        .flat_map(|f| {
            let name = f.field.name();
            f.mailboxes.iter_mut().map(move |m| (name, m))
        })
        .zip(decisions);
    for ((name, mailbox), decision) in mailboxes {
        let Some(display) = mailbox.display.as_deref() else {
            continue;
        };
        let own = [mailbox.address.as_str(), decision.from_address()];
        if foreign_address(display, &own).is_none() {
            continue;
        }
        if mode == DisplayNameAddresses::Refuse {
            return Err(refused(name, &mailbox.address));
        }
        let replacement = policy::from_display(decision, None)
            .or(Some(decision.user.display_name.as_str()))
            .filter(|d| !d.trim().is_empty() && foreign_address(d, &own).is_none());
        *mailbox = Mailbox {
            display: replacement.map(str::to_string),
            address: mailbox.address.clone(),
        };
    }
    Ok((!out.is_empty()).then_some(out))
}

/// A display name Postern writes for `address`: none when it is empty or, unless the
/// setting allows it, carries another address (an account's or user's display name is
/// never a reason to refuse a client's message; it is left out instead).
fn written<'a>(
    mode: DisplayNameAddresses,
    display: Option<&'a str>,
    address: &str,
) -> Option<&'a str> {
    display.filter(|d| {
        !d.trim().is_empty()
            && (mode == DisplayNameAddresses::Allow || foreign_address(d, &[address]).is_none())
    })
}

/// The refusal of a display name that carries another address.
fn refused(field: &str, address: &str) -> String {
    format!(
        "550 5.7.1 the display name in {field} holds an address other than <{address}> \
         (display_name_addresses is refuse)"
    )
}
