//! The rules of SPEC §2 for changing email accounts through the API: who may see an
//! account, who may create or change one, and what makes an account valid against the
//! rest of the store. Pure checks: nothing here writes.
//!
//! - see: `admin`/`shared_account_setup` see every account; others the accounts they own
//!   or hold a grant on (directly or through a role). An account one may not see is a 404.
//! - create: a shared (global) account needs `shared_account_setup`; a personal one is for
//!   its owner itself while `allow_personal_accounts` is on (admins always, for anyone);
//!   the `default` flag is for admins only.
//! - change: the account's `setup` right — owner, a `setup` grant, admin, or for a shared
//!   account `shared_account_setup`; a change (grants, scope, default send mode) that
//!   would give the caller a right it does not hold needs admin or `shared_account_setup`.

use super::{Caller, Problem};
use crate::policy::{normalize, scope_admits};
use crate::relay::Relays;
use crate::smtp::params::check_mailbox;
use crate::store::{
    Account, AccountKeys, DefaultSendMode, Grant, Grantee, Scope, SendMode, Settings, Store, User,
    UserKind,
};

/// Longest account name.
const MAX_NAME: usize = 100;
/// Longest description.
const MAX_DESCRIPTION: usize = 2000;

/// True if `caller` holds any grant of `account`, directly or through one of its roles.
fn granted(
    caller: &Caller,
    account: &Account,
    wanted: impl Fn(&crate::store::Grant) -> bool,
) -> bool {
    let Some(user) = &caller.user else {
        return false;
    };
    account
        .grants
        .iter()
        .filter(|g| wanted(g))
        .any(|g| match &g.grantee {
            Grantee::User(id) => *id == user.id,
            Grantee::Role(role) => user.roles.iter().any(|r| r.eq_ignore_ascii_case(role)),
        })
}

/// Whether `caller` may see `account` at all.
pub fn may_see(caller: &Caller, account: &Account) -> bool {
    caller.has("shared_account_setup")
        || (account.owner.is_some() && account.owner == caller.id())
        || granted(caller, account, |_| true)
}

/// Whether `caller` may read the mail stored for `account` (its tickets): admin, the
/// owner, or an `access` grant.
pub fn may_access(caller: &Caller, account: &Account) -> bool {
    caller.is_admin()
        || (account.owner.is_some() && account.owner == caller.id())
        || granted(caller, account, |g| g.access)
}

/// 403 unless `caller` holds the account's `setup` right.
pub fn require_setup(caller: &Caller, account: &Account) -> Result<(), Problem> {
    let owner = account.owner.is_some() && account.owner == caller.id();
    let shared_setup = account.owner.is_none() && caller.has("shared_account_setup");
    if caller.is_admin() || owner || shared_setup || granted(caller, account, |g| g.setup) {
        return Ok(());
    }
    let permission = match account.owner {
        None => "shared_account_setup",
        Some(_) => "admin",
    };
    Err(Problem::forbidden_for(
        permission,
        &format!("(or a setup grant) to change account {:?}", account.name),
    ))
}

/// 403 unless `caller` may create an account with this owner and default flag.
pub fn require_create(
    caller: &Caller,
    settings: &Settings,
    owner: Option<u64>,
    is_default: bool,
) -> Result<(), Problem> {
    if is_default && !caller.is_admin() {
        return Err(Problem::forbidden_for("admin", "to set the default flag"));
    }
    let Some(owner) = owner else {
        return caller.require("shared_account_setup");
    };
    if caller.is_admin() {
        return Ok(());
    }
    if caller.id() != Some(owner) {
        return Err(Problem::forbidden_for(
            "admin",
            "to create a personal account for another user",
        ));
    }
    if !settings.allow_personal_accounts {
        return Err(Problem::forbidden_for(
            "admin",
            "to create a personal account while allow_personal_accounts is false",
        ));
    }
    Ok(())
}

/// 403 unless `caller` may make an account a helpdesk mailbox (or change its inbound
/// settings): one open to the internet, creating users and posting to webhooks, is for
/// holders of `shared_account_setup` (and admins) only.
pub fn require_inbound(caller: &Caller) -> Result<(), Problem> {
    match caller.has("shared_account_setup") {
        true => Ok(()),
        false => Err(Problem::forbidden_for(
            "shared_account_setup",
            "to change a helpdesk mailbox's inbound settings",
        )),
    }
}

/// 403 unless the change from `before` to `after` leaves `caller` no right on the account
/// it did not hold (its own grants, its roles' grants, the scope and the default send
/// mode all count): a holder of a `setup` grant may hand rights out but not to itself.
/// Admins and holders of `shared_account_setup` may.
pub fn require_no_new_rights(
    caller: &Caller,
    before: &Account,
    after: &Account,
) -> Result<(), Problem> {
    if caller.is_admin() || caller.has("shared_account_setup") {
        return Ok(());
    }
    let Some(user) = &caller.user else {
        return Ok(());
    };
    let (had, has) = (rights(user, before), rights(user, after));
    let gained: Vec<&str> = [
        (has.send > had.send, has.send.map_or("", mode_name)),
        (has.access && !had.access, "access"),
        (has.setup && !had.setup, "setup"),
    ]
    .into_iter()
    .filter_map(|(gained, name)| gained.then_some(name))
    .collect();
    match gained.is_empty() {
        true => Ok(()),
        false => Err(Problem::forbidden_for(
            "shared_account_setup",
            &format!(
                "(or admin) to give yourself or a role you hold {} on account {:?}",
                gained.join(" and "),
                after.name
            ),
        )),
    }
}

/// What one user may do with an account.
struct Rights {
    send: Option<SendMode>,
    access: bool,
    setup: bool,
}

/// The rights `user` holds on `account` (SPEC §2, §3 rule 2).
fn rights(user: &User, account: &Account) -> Rights {
    if account.owner == Some(user.id) {
        return Rights {
            send: Some(SendMode::SendAs),
            access: true,
            setup: true,
        };
    }
    let mine: Vec<&Grant> = account
        .grants
        .iter()
        .filter(|g| match &g.grantee {
            Grantee::User(id) => *id == user.id,
            Grantee::Role(role) => user.roles.iter().any(|r| r.eq_ignore_ascii_case(role)),
        })
        .collect();
    let granted = mine.iter().filter_map(|g| g.send).max();
    let fallback = match (user.kind, account.default_send_mode) {
        (UserKind::Requester, _) | (_, DefaultSendMode::None) => None,
        (_, DefaultSendMode::SendAs) => Some(SendMode::SendAs),
        (_, DefaultSendMode::SendOnBehalf) => Some(SendMode::SendOnBehalf),
    };
    Rights {
        send: scope_admits(&account.scope, user)
            .ok()
            .and(granted.or(fallback)),
        access: mine.iter().any(|g| g.access),
        setup: mine.iter().any(|g| g.setup),
    }
}

fn mode_name(mode: SendMode) -> &'static str {
    match mode {
        SendMode::SendAs => "send_as",
        SendMode::SendOnBehalf => "send_on_behalf",
    }
}

/// Empty optional strings mean "not set".
pub fn tidy(account: &mut Account) {
    for field in [
        &mut account.from_address,
        &mut account.display_name,
        &mut account.reply_to,
    ] {
        if field.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *field = None;
        }
    }
    account.name = account.name.trim().to_string();
    account.address = account.address.trim().to_string();
    if let Some(copy) = &mut account.sent_copy {
        copy.host = copy.host.trim().to_string();
    }
    super::account_fetch::tidy(account);
}

/// Checks `account` (id 0 for a new one) on its own and against everything stored:
/// 422 naming the field, or 409 for a name or address another account already has.
pub fn validate(
    store: &Store,
    relays: &Relays,
    caller: &Caller,
    account: &Account,
) -> Result<(), Problem> {
    check_fields(account)?;
    if !relays.settings().contains_key(&account.upstream) {
        return Err(Problem::invalid(
            "upstream",
            format!("no upstream {:?}", account.upstream),
        ));
    }
    super::account_sent_copy::check(relays, account)?;
    super::account_fetch::check(relays, account)?;
    check_references(store, account)?;
    let all = store.accounts().keys()?;
    let others: Vec<&AccountKeys> = all.iter().filter(|a| a.id != account.id).collect();
    if account.is_default && others.iter().any(|a| a.is_default) {
        return Err(Problem::invalid(
            "default",
            "another account is already the default",
        ));
    }
    if let Some(other) = others
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(&account.name))
    {
        return Err(Problem::conflict(format!(
            "an account named {:?} already exists",
            other.name
        )));
    }
    for address in addresses(account) {
        if let Some(other) = others
            .iter()
            .find(|a| a.addresses().any(|o| normalize(o) == address))
        {
            return Err(Problem::conflict(format!(
                "address {address} is already used by account {:?}",
                other.name
            )));
        }
    }
    if account.owner.is_some() && !caller.is_admin() {
        check_not_someone_else(store, account)?;
    }
    Ok(())
}

/// Every address the account is found by, normalised.
fn addresses(account: &Account) -> impl Iterator<Item = String> + '_ {
    std::iter::once(&account.address)
        .chain(account.from_address.iter())
        .chain(account.aliases.iter())
        .filter(|a| !a.is_empty())
        .map(|a| normalize(a))
}

fn check_fields(account: &Account) -> Result<(), Problem> {
    let name = &account.name;
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "name",
            format!("must be 1-{MAX_NAME} characters, no control characters"),
        ));
    }
    if account.description.chars().count() > MAX_DESCRIPTION {
        return Err(Problem::invalid(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    if let Some(display) = &account.display_name {
        if display.chars().count() > 200 || display.chars().any(char::is_control) {
            return Err(Problem::invalid(
                "display_name",
                "at most 200 characters, no control characters",
            ));
        }
    }
    if !(account.is_default && account.address.is_empty()) {
        mailbox("address", &account.address)?;
    }
    if let Some(from) = &account.from_address {
        mailbox("from_address", from)?;
    }
    if let Some(reply_to) = &account.reply_to {
        mailbox("reply_to", reply_to)?;
    }
    for alias in &account.aliases {
        mailbox("aliases", alias)?;
    }
    if account.is_default && account.owner.is_some() {
        return Err(Problem::invalid(
            "default",
            "the default account must be global (no owner)",
        ));
    }
    Ok(())
}

fn mailbox(field: &str, address: &str) -> Result<(), Problem> {
    check_mailbox(address).map_err(|_| {
        Problem::invalid(
            field,
            format!("{address:?} is not a valid mailbox (local@domain)"),
        )
    })
}

/// The owner, grantees and scope members must exist.
fn check_references(store: &Store, account: &Account) -> Result<(), Problem> {
    if let Some(owner) = account.owner {
        match store.users().by_id(owner)? {
            Some(user) if user.kind == UserKind::Staff => {}
            Some(_) => return Err(Problem::invalid("owner", "must be a staff user")),
            None => return Err(Problem::invalid("owner", format!("no user {owner}"))),
        }
    }
    for grant in &account.grants {
        match &grant.grantee {
            Grantee::User(id) if store.users().by_id(*id)?.is_none() => {
                return Err(Problem::invalid("grants", format!("no user {id}")));
            }
            Grantee::Role(role) if store.roles().get(role)?.is_none() => {
                return Err(Problem::invalid("grants", format!("no role {role:?}")));
            }
            _ => {}
        }
    }
    if let Scope::Permitted {
        skill_groups,
        roles,
        users,
    } = &account.scope
    {
        for id in users {
            if store.users().by_id(*id)?.is_none() {
                return Err(Problem::invalid("scope", format!("no user {id}")));
            }
        }
        for role in roles {
            if store.roles().get(role)?.is_none() {
                return Err(Problem::invalid("scope", format!("no role {role:?}")));
            }
        }
        for group in skill_groups {
            if store.skill_groups().get(group)?.is_none() {
                return Err(Problem::invalid(
                    "scope",
                    format!("no skill group {group:?}"),
                ));
            }
        }
    }
    check_inbound(store, account)
}

/// An inbound mailbox needs an address to receive at; its default group and webhooks must
/// exist.
fn check_inbound(store: &Store, account: &Account) -> Result<(), Problem> {
    let Some(inbound) = &account.inbound else {
        return Ok(());
    };
    if account.address.is_empty() {
        return Err(Problem::invalid(
            "inbound",
            "an inbound mailbox needs an address",
        ));
    }
    if let Some(group) = &inbound.default_group {
        if store.groups().get(group)?.is_none() {
            return Err(Problem::invalid("inbound", format!("no group {group:?}")));
        }
    }
    for id in &inbound.webhooks {
        if store.webhooks().get(*id)?.is_none() {
            return Err(Problem::invalid("inbound", format!("no webhook {id}")));
        }
    }
    Ok(())
}

/// A personal account set up by a non-admin may not take another user's own address:
/// that user's mail "as itself" would then be routed through it.
fn check_not_someone_else(store: &Store, account: &Account) -> Result<(), Problem> {
    let mine: Vec<String> = addresses(account).collect();
    if let Some(user) = store
        .users()
        .all()?
        .into_iter()
        .find(|u| Some(u.id) != account.owner && mine.contains(&normalize(&u.email)))
    {
        return Err(Problem::conflict(format!(
            "address {} belongs to user {}",
            normalize(&user.email),
            user.login
        )));
    }
    Ok(())
}
