//! The send-as decision (SPEC §3.1–3.2) as pure functions over a `Snapshot`: which account
//! a message goes out through, whether the principal may use it, and with which right.
//! Every step can be written to a trail, so `explain` can show it (`decide`); the SMTP
//! path asks for the verdict alone (`admit`), and a refusal names its rule either way.

use super::snapshot::{normalize, Snapshot};
use crate::store::{Account, DefaultSendMode, Grantee, Scope, SendMode, User, UserKind};

/// The right a principal sends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendRight {
    SendAs,
    SendOnBehalf,
    /// Through the default account: the principal's own address, no `Sender`.
    Myself,
}

/// An admitted submission.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub account: &'a Account,
    pub user: &'a User,
    pub right: SendRight,
    pub trail: Vec<String>,
}

impl Decision<'_> {
    /// The address written to `From` and used as the upstream envelope sender.
    pub fn from_address(&self) -> &str {
        match self.right {
            SendRight::Myself => &self.user.email,
            _ => self
                .account
                .from_address
                .as_deref()
                .filter(|a| !a.is_empty())
                .unwrap_or(&self.account.address),
        }
    }

    /// The upstream envelope sender (SPEC §3.3: the account address).
    pub fn envelope_from(&self) -> &str {
        match self.right {
            SendRight::Myself => &self.user.email,
            _ => &self.account.address,
        }
    }
}

/// A refused submission, with the rule that refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reply: String,
    pub rule: String,
    pub trail: Vec<String>,
}

impl Refusal {
    fn no_account(from: &str, trail: &mut Trail) -> Refusal {
        Refusal {
            reply: format!("550 5.7.1 no email account for <{from}>"),
            rule: "no_account".into(),
            trail: trail.take(),
        }
    }

    fn not_allowed(login: &str, from: &str, rule: String, trail: &mut Trail) -> Refusal {
        trail.note(|| format!("refused: {rule}"));
        Refusal {
            reply: format!("550 5.7.1 <{login}> may not send as <{from}> ({rule})"),
            rule,
            trail: trail.take(),
        }
    }
}

/// The steps of a decision, written down only when someone will read them (`explain`,
/// the API): on the SMTP path, twice per message, they were formatted and thrown away.
struct Trail {
    steps: Option<Vec<String>>,
}

impl Trail {
    fn new(record: bool) -> Trail {
        Trail {
            steps: record.then(Vec::new),
        }
    }

    fn note(&mut self, step: impl FnOnce() -> String) {
        if let Some(steps) = &mut self.steps {
            steps.push(step());
        }
    }

    fn take(&mut self) -> Vec<String> {
        self.steps.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// Decides a submission by user `user_id` with header `From` address `from` and an
/// optional `X-Postern-Account` value, with the trail of every step.
pub fn decide<'a>(
    snap: &'a Snapshot,
    user_id: u64,
    from: &str,
    hint: Option<&str>,
) -> Result<Decision<'a>, Refusal> {
    decide_with(snap, user_id, from, hint, &mut Trail::new(true))
}

/// The same decision without its trail (empty in the result): for the SMTP path, where
/// only the outcome, the rule and the reply are used.
pub fn admit<'a>(
    snap: &'a Snapshot,
    user_id: u64,
    from: &str,
    hint: Option<&str>,
) -> Result<Decision<'a>, Refusal> {
    decide_with(snap, user_id, from, hint, &mut Trail::new(false))
}

fn decide_with<'a>(
    snap: &'a Snapshot,
    user_id: u64,
    from: &str,
    hint: Option<&str>,
    trail: &mut Trail,
) -> Result<Decision<'a>, Refusal> {
    let Some(user) = snap.active_user(user_id) else {
        let rule = "the principal is not an active user".to_string();
        return Err(Refusal::not_allowed(
            &user_id.to_string(),
            from,
            rule,
            trail,
        ));
    };
    let account = choose_account(snap, user, from, hint, trail)?;
    // Deactivating a user stops its personal accounts (SPEC §8), for its delegates too.
    if account
        .owner
        .is_some_and(|owner| snap.active_user(owner).is_none())
    {
        let rule = format!(
            "account {:?} belongs to a user who is not active",
            account.name
        );
        return Err(Refusal::not_allowed(&user.login, from, rule, trail));
    }
    let right = send_right(user, account, from, trail)?;
    trail.note(|| {
        format!(
            "admitted: {} through account {:?}",
            right_name(right),
            account.name
        )
    });
    Ok(Decision {
        account,
        user,
        right,
        trail: trail.take(),
    })
}

/// The MAIL FROM check: a sender who can use no account with `mail_from` is refused at
/// once. The null sender is left to the header check.
pub fn check_envelope(snap: &Snapshot, user_id: u64, mail_from: &str) -> Result<(), Refusal> {
    if mail_from.is_empty() {
        return Ok(());
    }
    admit(snap, user_id, mail_from, None).map(|_| ())
}

fn choose_account<'a>(
    snap: &'a Snapshot,
    user: &User,
    from: &str,
    hint: Option<&str>,
    trail: &mut Trail,
) -> Result<&'a Account, Refusal> {
    if let Some(hint) = hint {
        return match snap.account_by_name_or_id(hint) {
            Some(account) => {
                trail.note(|| format!("account {:?} named by X-Postern-Account", account.name));
                Ok(account)
            }
            None => {
                trail.note(|| format!("X-Postern-Account {:?} names no account", hint.trim()));
                Err(Refusal {
                    reply: format!("550 5.7.1 no email account named {:?}", hint.trim()),
                    rule: "unknown_account".into(),
                    trail: trail.take(),
                })
            }
        };
    }
    if let Some(account) = snap.account_by_address(from) {
        trail.note(|| format!("From <{from}> is an address of account {:?}", account.name));
        return Ok(account);
    }
    if normalize(from) != normalize(&user.email) {
        trail.note(|| {
            format!("no account has the address <{from}>, and it is not the principal's own")
        });
        return Err(Refusal::no_account(from, trail));
    }
    if let Some(account) = snap.personal_account(user.id) {
        trail.note(|| {
            format!(
                "From is the principal's own address: personal account {:?}",
                account.name
            )
        });
        return Ok(account);
    }
    match snap.default_account() {
        Some(account) => {
            trail.note(|| {
                format!(
                    "From is the principal's own address: default account {:?}",
                    account.name
                )
            });
            Ok(account)
        }
        None => {
            trail.note(|| {
                "From is the principal's own address, but there is no default account".into()
            });
            Err(Refusal::no_account(from, trail))
        }
    }
}

fn send_right(
    user: &User,
    account: &Account,
    from: &str,
    trail: &mut Trail,
) -> Result<SendRight, Refusal> {
    if account.owner == Some(user.id) {
        trail.note(|| "the principal owns this personal account: send_as".into());
        return Ok(SendRight::SendAs);
    }
    if let Err(rule) = scope_admits(&account.scope, user) {
        return Err(Refusal::not_allowed(&user.login, from, rule, trail));
    }
    trail.note(|| {
        format!(
            "scope {} admits a {} principal",
            scope_name(&account.scope),
            kind_name(user.kind)
        )
    });
    let granted = granted_mode(user, account, trail);
    let mode = match (granted, user.kind, account.default_send_mode) {
        (Some(mode), _, _) => mode,
        (None, UserKind::Requester, _) => {
            let rule = "a requester needs an explicit send grant".to_string();
            return Err(Refusal::not_allowed(&user.login, from, rule, trail));
        }
        (None, _, DefaultSendMode::None) => {
            let rule = "no send grant and the account's default_send_mode is none".to_string();
            return Err(Refusal::not_allowed(&user.login, from, rule, trail));
        }
        (None, _, DefaultSendMode::SendAs) => {
            trail.note(|| "no grant: default_send_mode send_as".into());
            SendMode::SendAs
        }
        (None, _, DefaultSendMode::SendOnBehalf) => {
            trail.note(|| "no grant: default_send_mode send_on_behalf".into());
            SendMode::SendOnBehalf
        }
    };
    Ok(match (account.is_default, mode) {
        (true, _) => SendRight::Myself,
        (false, SendMode::SendAs) => SendRight::SendAs,
        (false, SendMode::SendOnBehalf) => SendRight::SendOnBehalf,
    })
}

/// Whether `scope` admits `user` (SPEC §2), or the rule that refuses it.
pub fn scope_admits(scope: &Scope, user: &User) -> Result<(), String> {
    let admitted = match scope {
        Scope::Everyone => true,
        Scope::System => user.kind == UserKind::System,
        Scope::AllStaff => user.kind == UserKind::Staff,
        Scope::Permitted {
            skill_groups,
            roles,
            users,
        } => {
            users.contains(&user.id)
                || (user.kind == UserKind::Staff
                    && (intersects(skill_groups, &user.skill_groups)
                        || intersects(roles, &user.roles)))
        }
    };
    match admitted {
        true => Ok(()),
        false => Err(format!(
            "scope {} does not admit a {} principal",
            scope_name(scope),
            kind_name(user.kind)
        )),
    }
}

/// The most permissive of the user's own grant and its roles' grants.
fn granted_mode(user: &User, account: &Account, trail: &mut Trail) -> Option<SendMode> {
    let mut best: Option<SendMode> = None;
    for grant in &account.grants {
        let Some(mode) = grant.send else { continue };
        // `None`: the principal's own grant.
        let role = match &grant.grantee {
            Grantee::User(id) if *id == user.id => None,
            Grantee::Role(role) if user.roles.iter().any(|r| r.eq_ignore_ascii_case(role)) => {
                Some(role)
            }
            _ => continue,
        };
        trail.note(|| match role {
            None => format!("grant to the principal: {}", mode_name(mode)),
            Some(role) => format!("grant to role {role:?}: {}", mode_name(mode)),
        });
        best = best.max(Some(mode));
    }
    best
}

fn intersects(a: &[String], b: &[String]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| x.eq_ignore_ascii_case(y)))
}

fn scope_name(scope: &Scope) -> &'static str {
    match scope {
        Scope::Everyone => "everyone",
        Scope::System => "system",
        Scope::AllStaff => "all_staff",
        Scope::Permitted { .. } => "permitted",
    }
}

fn kind_name(kind: UserKind) -> &'static str {
    match kind {
        UserKind::Staff => "staff",
        UserKind::Requester => "requester",
        UserKind::System => "system",
    }
}

fn mode_name(mode: SendMode) -> &'static str {
    match mode {
        SendMode::SendAs => "send_as",
        SendMode::SendOnBehalf => "send_on_behalf",
    }
}

/// The name of a right, as in the SPEC.
pub fn right_name(right: SendRight) -> &'static str {
    match right {
        SendRight::SendAs => "send_as",
        SendRight::SendOnBehalf => "send_on_behalf",
        SendRight::Myself => "send_as_self",
    }
}
