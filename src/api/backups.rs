//! Backups of a deactivated user's mail (SPEC §8): `POST /api/v1/users/{id}/backup` (admin)
//! asks for a job, `GET /api/v1/backups` lists the jobs the caller may read, and a job's
//! message list and mbox download are open to admins and to the users and roles it was
//! granted to.
//!
//! Rules, each refused with its reason: only a deactivated staff user; account type
//! `record_level` or `complete`; a mailbox whose domain is one of `org_domains` (both in
//! canonical form, `policy::address`: lower case, A-labels, no trailing dot); one job at a
//! time per user. `{"latest": true}` needs a completed earlier backup and, when the
//! user was reactivated since, a mail configuration saved after that reactivation.

use super::extract::{blocking, Body, Param};
use super::problem::Problems;
use super::{Api, Caller, Problem};
use crate::archive::backup::mbox_path;
use crate::policy::address;
use crate::store::{
    AccountType, Backup, BackupCounts, BackupItem, BackupKind, BackupStatus, Grantee, Store, User,
    UserKind, UserStatus,
};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

/// Body of `POST /api/v1/users/{id}/backup`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// Who may read the backup: user logins or ids, role names; `user:` or `role:` in
    /// front says which when a name could be both.
    #[serde(default)]
    grant_to: Vec<String>,
    /// Only the mail since the user's previous backup.
    #[serde(default)]
    latest: bool,
}

/// `POST /api/v1/users/{id}/backup` — `admin`; the job is queued (202) and runs in the
/// background. Every request is audited: `backup.create` with the job, or
/// `backup.refused` with the request, the status and the reason.
#[utoipa::path(
    post, path = "/api/v1/users/{id}/backup", tag = "backups", request_body = BackupRequest,
    params(("id" = u64, Path, description = "user id")),
    responses((status = 202, body = Backup), Problems)
)]
pub async fn create(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
    Body(body): Body<BackupRequest>,
) -> Result<(StatusCode, Json<Backup>), Problem> {
    let _change = api.write_lock().await;
    let request = body.clone();
    let job = match queue_job(&caller, &api, id, body).await {
        Ok(job) => job,
        Err(problem) => {
            let refused = serde_json::json!({
                "request": request,
                "status": problem.status,
                "reason": problem.detail,
            });
            let target = format!("user/{id}");
            api.audit(
                &caller,
                "backup.refused",
                target,
                None::<&()>,
                Some(&refused),
            )
            .await?;
            return Err(problem);
        }
    };
    api.audit(
        &caller,
        "backup.create",
        format!("user/{id}"),
        None::<&()>,
        Some(&job),
    )
    .await?;
    api.state.backups.wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Checks the caller and every rule, and saves the pending job. The caller holds the
/// write lock.
async fn queue_job(
    caller: &Caller,
    api: &Api,
    id: u64,
    body: BackupRequest,
) -> Result<Backup, Problem> {
    caller.require("admin")?;
    let store = api.store().clone();
    let by = caller.name().to_string();
    let job = blocking(move || plan(&store, id, body, by)).await?;
    let saved = job.clone();
    let store = api.store().clone();
    blocking(move || Ok(store.backups().save(&saved)?)).await?;
    Ok(job)
}

/// Checks every rule and builds the pending job.
fn plan(store: &Store, id: u64, body: BackupRequest, by: String) -> Result<Backup, Problem> {
    let user = deactivated_staff(store, id)?;
    let config = store.mail_configs().get(id)?;
    if config.account_type == AccountType::Private {
        return Err(Problem::conflict(format!(
            "{} has account type private: nothing of its mail is kept",
            user.login
        )));
    }
    // Both sides canonical (SPEC §12): `Ann@BÜCHER.example.` is in `bücher.example`.
    if !address::domain_in(&config.mailbox, &store.settings()?.org_domains) {
        return Err(Problem::conflict(format!(
            "the mailbox {:?} of {} is not in one of the organisation's domains (org_domains)",
            config.mailbox, user.login
        )));
    }
    let jobs = store.backups().all()?;
    let mine = jobs.iter().filter(|b| b.user == id);
    if mine
        .clone()
        .any(|b| matches!(b.status, BackupStatus::Pending | BackupStatus::Running))
    {
        return Err(Problem::conflict(format!(
            "a backup of {} is already under way",
            user.login
        )));
    }
    let since = match body.latest {
        false => None,
        true => Some(latest_since(
            &user,
            &config,
            mine.filter(|b| b.status == BackupStatus::Completed),
        )?),
    };
    Ok(Backup {
        id: store.backups().next_id()?,
        user: id,
        login: user.login,
        kind: if body.latest {
            BackupKind::Latest
        } else {
            BackupKind::Full
        },
        account_type: config.account_type,
        grant_to: grantees(store, body.grant_to)?,
        status: BackupStatus::Pending,
        counts: BackupCounts::default(),
        error: None,
        created_by: by,
        created_at: crate::spool::now_ms() / 1000,
        started_at: None,
        finished_at: None,
        since,
        until: crate::spool::now_ms(),
        runs: 0,
        node: String::new(),
    })
}

/// The user (404), who must be a deactivated staff user (409).
fn deactivated_staff(store: &Store, id: u64) -> Result<User, Problem> {
    let user = store
        .users()
        .by_id(id)?
        .ok_or_else(|| Problem::not_found(format!("user {id}")))?;
    if user.kind != UserKind::Staff {
        return Err(Problem::conflict(format!(
            "{} is not a staff user: it has no mail to back up",
            user.login
        )));
    }
    if user.status != UserStatus::Deactivated {
        return Err(Problem::conflict(format!(
            "{} is not deactivated: only a deactivated user's mail is backed up",
            user.login
        )));
    }
    Ok(user)
}

/// Where a latest backup starts: the end of the previous completed one.
fn latest_since<'a>(
    user: &User,
    config: &crate::store::MailConfig,
    done: impl Iterator<Item = &'a Backup>,
) -> Result<u64, Problem> {
    let Some(previous) = done.map(|b| b.until).max() else {
        return Err(Problem::conflict(format!(
            "{} has no completed backup yet: take a full backup first",
            user.login
        )));
    };
    if let Some(reactivated) = user.reactivated_at_ms.filter(|&at| at > previous) {
        if config.saved_at_ms.is_none_or(|saved| saved < reactivated) {
            return Err(Problem::conflict(format!(
                "{} never saved its mail configuration after it was reactivated",
                user.login
            )));
        }
    }
    Ok(previous)
}

/// The grantees named in `names` (422 for one that is neither a user nor a role).
fn grantees(store: &Store, names: Vec<String>) -> Result<Vec<Grantee>, Problem> {
    let mut out = Vec::new();
    for name in names {
        let (kind, bare) = match name.split_once(':') {
            Some(("user", rest)) => (Some("user"), rest),
            Some(("role", rest)) => (Some("role"), rest),
            _ => (None, name.as_str()),
        };
        let user = match kind {
            Some("role") => None,
            _ => find_user(store, bare)?,
        };
        let grantee = match (user, kind) {
            (Some(user), _) => Grantee::User(user.id),
            (None, Some("user")) => {
                return Err(Problem::invalid("grant_to", format!("no user {bare:?}")))
            }
            (None, _) => match store.roles().get(bare)? {
                Some(role) => Grantee::Role(role.name),
                None => {
                    return Err(Problem::invalid(
                        "grant_to",
                        format!("{bare:?} is neither a user nor a role"),
                    ))
                }
            },
        };
        if !out.contains(&grantee) {
            out.push(grantee);
        }
    }
    Ok(out)
}

/// The staff user `name` names: a login, else an id (only staff take over a leaver's mail).
fn find_user(store: &Store, name: &str) -> Result<Option<User>, Problem> {
    let user = match store.users().by_login(name)? {
        Some(user) => Some(user),
        None => match name.parse::<u64>() {
            Ok(id) => store.users().by_id(id)?,
            Err(_) => None,
        },
    };
    match user {
        Some(user) if user.kind != UserKind::Staff => Err(Problem::invalid(
            "grant_to",
            format!("{} is not a staff user", user.login),
        )),
        found => Ok(found),
    }
}

/// Whether the caller may read `backup`: admins, and the users and roles it was granted to.
fn may_read(caller: &Caller, backup: &Backup) -> bool {
    if caller.is_admin() {
        return true;
    }
    let Some(user) = &caller.user else {
        return false;
    };
    backup.grant_to.iter().any(|g| match g {
        Grantee::User(id) => *id == user.id,
        Grantee::Role(role) => user.roles.iter().any(|r| r.eq_ignore_ascii_case(role)),
    })
}

/// The backup `id` if the caller may read it (404 otherwise: its existence is not told).
fn readable(caller: &Caller, store: &Store, id: u64) -> Result<Backup, Problem> {
    store
        .backups()
        .get(id)?
        .filter(|b| may_read(caller, b))
        .ok_or_else(|| Problem::not_found(format!("backup {id}")))
}

/// `GET /api/v1/backups` — the jobs the caller may read, newest first.
#[utoipa::path(
    get, path = "/api/v1/backups", tag = "backups",
    responses((status = 200, body = Vec<Backup>), Problems)
)]
pub async fn list(caller: Caller, State(api): State<Api>) -> Result<Json<Vec<Backup>>, Problem> {
    let mut jobs: Vec<Backup> = api
        .store()
        .backups()
        .all()?
        .into_iter()
        .filter(|b| may_read(&caller, b))
        .collect();
    jobs.reverse();
    Ok(Json(jobs))
}

/// `GET /api/v1/backups/{id}`.
#[utoipa::path(
    get, path = "/api/v1/backups/{id}", tag = "backups", params(("id" = u64, Path, description = "backup id")),
    responses((status = 200, body = Backup), Problems)
)]
pub async fn show(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<Backup>, Problem> {
    Ok(Json(readable(&caller, api.store(), id)?))
}

/// `GET /api/v1/backups/{id}/messages` — what a completed job holds.
#[utoipa::path(
    get, path = "/api/v1/backups/{id}/messages", tag = "backups", params(("id" = u64, Path, description = "backup id")),
    responses((status = 200, body = Vec<BackupItem>), Problems)
)]
pub async fn messages(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<Json<Vec<BackupItem>>, Problem> {
    completed(&readable(&caller, api.store(), id)?)?;
    Ok(Json(api.store().backups().items(id)?))
}

/// `GET /api/v1/backups/{id}/mbox` — the messages of a completed job as one mbox file.
#[utoipa::path(
    get, path = "/api/v1/backups/{id}/mbox", tag = "backups", params(("id" = u64, Path, description = "backup id")),
    responses((status = 200, content_type = "application/mbox", body = Vec<u8>), Problems)
)]
pub async fn mbox(
    caller: Caller,
    State(api): State<Api>,
    Param(id): Param<u64>,
) -> Result<impl IntoResponse, Problem> {
    let backup = readable(&caller, api.store(), id)?;
    completed(&backup)?;
    if !backup.node.is_empty() && backup.node != api.store().node() {
        return Err(Problem::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "backup {id} was written on node {}: download it from that node",
                backup.node
            ),
        ));
    }
    let bytes = tokio::fs::read(mbox_path(&api.state.backups.dir, id))
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("backup file: {e}"),
            )
        })?;
    let name = format!(
        "attachment; filename=\"backup-{id}-{}.mbox\"",
        backup.login.replace(['"', '\\', '/'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/mbox".to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    ))
}

fn completed(backup: &Backup) -> Result<(), Problem> {
    match backup.status {
        BackupStatus::Completed => Ok(()),
        status => Err(Problem::conflict(
            format!("backup {} is {status:?}, not completed", backup.id).to_lowercase(),
        )),
    }
}
