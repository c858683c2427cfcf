//! Requesters (SPEC §7): the sender of an inbound message is looked up by address (any
//! spelling, `policy::address`); an unknown one is created when the mailbox allows it
//! (`created_via = email`, login and e-mail = the address in its canonical display form:
//! `"ann"@X.example` becomes `ann@x.example`, so another spelling finds it and makes no
//! second requester), in the mailbox's default group when that group still exists and
//! has room, else in no group with a warning. The installation's
//! `max_users` is never exceeded: then no requester is created.

use super::InboundError;
use crate::policy::Policy;
use crate::store::{CreatedVia, Inbound, NewUser, Store, StoreError, User, UserKind};

/// The requester of one message.
#[derive(Debug, Clone)]
pub struct Requester {
    pub user: User,
    /// Created for this message.
    pub created: bool,
}

/// The login (and e-mail) of a requester created from `address`: its canonical display
/// form (quotes only where needed, domain lower-cased in A-labels; the local part's case
/// kept, which lookups ignore).
pub fn login_for(address: &str) -> String {
    crate::policy::address::canonical(address)
}

/// The user who sent from `address`, created if unknown and `inbound` allows it; `None`
/// when unknown and not created (the reason is logged).
pub fn find_or_create(
    store: &Store,
    policy: &Policy,
    inbound: &Inbound,
    address: &str,
    name: Option<&str>,
) -> Result<Option<Requester>, InboundError> {
    if let Some(user) = policy.snapshot().user_by_address(address) {
        return Ok(Some(Requester {
            user: user.clone(),
            created: false,
        }));
    }
    if !inbound.auto_create_requesters {
        return Ok(None);
    }
    let settings = store.settings()?;
    let users = store.users().all()?;
    if settings
        .max_users
        .is_some_and(|max| users.len() as u64 >= max)
    {
        tracing::warn!(from = %address, max_users = ?settings.max_users,
            "requester not created: the installation holds its maximum of users");
        return Ok(None);
    }
    let group = joinable_group(store, inbound, &users, address)?;
    let login = login_for(address);
    let new = NewUser {
        login: login.clone(),
        email: login.clone(),
        display_name: name.unwrap_or(&login).to_string(),
        kind: Some(UserKind::Requester),
        group,
        created_via: CreatedVia::Email,
        ..NewUser::default()
    };
    let now = crate::spool::now_ms() / 1000;
    match store.users().create(new, now) {
        Ok(user) => {
            policy.reload()?;
            tracing::info!(login = %user.login, id = user.id, group = ?user.group, "requester created from mail");
            Ok(Some(Requester {
                user,
                created: true,
            }))
        }
        // Created meanwhile through the API: found, or (its record not written yet) a
        // temporary failure, so the spool tries again.
        Err(StoreError::Conflict(_)) => match store.users().by_login(&login)? {
            Some(user) => Ok(Some(Requester {
                user,
                created: false,
            })),
            None => Err(InboundError::Task(format!("user {login} is being created"))),
        },
        Err(error) => Err(error.into()),
    }
}

/// The mailbox's default group if it exists and has room; otherwise `None`, with a warning
/// saying why.
fn joinable_group(
    store: &Store,
    inbound: &Inbound,
    users: &[User],
    address: &str,
) -> Result<Option<String>, InboundError> {
    let Some(wanted) = &inbound.default_group else {
        return Ok(None);
    };
    let Some(group) = store.groups().get(wanted)? else {
        tracing::warn!(from = %address, group = %wanted,
            "requester created without a group: the mailbox's default group no longer exists");
        return Ok(None);
    };
    let members = users
        .iter()
        .filter(|u| {
            u.group
                .as_deref()
                .is_some_and(|g| g.eq_ignore_ascii_case(&group.name))
        })
        .count() as u64;
    if group.max_users.is_some_and(|max| members >= max) {
        tracing::warn!(from = %address, group = %group.name, max_users = ?group.max_users,
            "requester created without a group: the group's user limit is reached");
        return Ok(None);
    }
    Ok(Some(group.name))
}
