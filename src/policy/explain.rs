//! Explaining a decision (SPEC §3.4): the account chosen, the rule trail, the send mode and
//! the rewrite that would apply — what `POST /api/v1/policy/explain` returns.

use super::decide::{decide, right_name, Decision, SendRight};
use super::snapshot::Snapshot;
use serde::Serialize;

/// The account an explanation names.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountRef {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub upstream: String,
}

/// The header and envelope changes a submission would get.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RewritePreview {
    pub from: String,
    /// `None`: every `Sender` field is removed.
    pub sender: Option<String>,
    /// `None`: the client's `Reply-To` is kept.
    pub reply_to: Option<String>,
    pub envelope_from: String,
    pub upstream: String,
    pub removed: Vec<&'static str>,
}

/// The whole explanation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    pub allowed: bool,
    pub account: Option<AccountRef>,
    pub send_mode: Option<&'static str>,
    pub rule: String,
    pub reply: String,
    pub trail: Vec<String>,
    pub rewrite: Option<RewritePreview>,
}

/// Explains what a submission by `user_id` with header `From: from` would get.
pub fn explain(snap: &Snapshot, user_id: u64, from: &str, hint: Option<&str>) -> Explanation {
    match decide(snap, user_id, from, hint) {
        Ok(decision) => Explanation {
            allowed: true,
            account: Some(AccountRef {
                id: decision.account.id,
                name: decision.account.name.clone(),
                address: decision.account.address.clone(),
                upstream: decision.account.upstream.clone(),
            }),
            send_mode: Some(right_name(decision.right)),
            rule: right_name(decision.right).to_string(),
            reply: "250 2.0.0 would be queued".into(),
            rewrite: Some(preview(&decision)),
            trail: decision.trail,
        },
        Err(refusal) => Explanation {
            allowed: false,
            account: None,
            send_mode: None,
            rule: refusal.rule,
            reply: refusal.reply,
            trail: refusal.trail,
            rewrite: None,
        },
    }
}

/// The display name written to `From`: the account's when set, otherwise the client's.
pub fn from_display<'a>(decision: &Decision<'a>, client: Option<&'a str>) -> Option<&'a str> {
    match decision.right {
        SendRight::Myself => client,
        _ => decision
            .account
            .display_name
            .as_deref()
            .filter(|d| !d.is_empty())
            .or(client),
    }
}

/// The `Sender` a decision writes: the principal, for send_on_behalf only.
pub fn sender<'a>(decision: &Decision<'a>) -> Option<(Option<&'a str>, &'a str)> {
    match decision.right {
        SendRight::SendOnBehalf => {
            let email = decision.user.email.as_str();
            let name = decision.user.display_name.as_str();
            // A display name that only repeats the address says nothing: leave it out.
            let display = Some(name).filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(email));
            Some((display, email))
        }
        _ => None,
    }
}

fn preview(decision: &Decision<'_>) -> RewritePreview {
    let show = |display: Option<&str>, address: &str| match display {
        Some(name) => format!("{name} <{address}>"),
        None => format!("<{address}>"),
    };
    RewritePreview {
        from: show(
            from_display(decision, Some("(client's display name)")),
            decision.from_address(),
        ),
        sender: sender(decision).map(|(d, a)| show(d, a)),
        reply_to: decision.account.reply_to.clone().filter(|r| !r.is_empty()),
        envelope_from: decision.envelope_from().to_string(),
        upstream: decision.account.upstream.clone(),
        removed: vec!["Sender", "Bcc", "Return-Path", "X-Postern-*"],
    }
}
