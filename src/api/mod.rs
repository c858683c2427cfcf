//! The control API (axum, SPEC §9): health and readiness, Prometheus metrics, and the
//! resources under `/api/v1` behind bearer tokens. Every error is an RFC 9457 problem
//! document.
//!
//! One file per resource: `users`/`user_edit` (+ `tokens`), `roles`, `directory` (skill
//! groups and requester groups), `upstreams`, `dkim` (signing keys), `accounts`/`account_rules`/`account_edit`
//! (+ `account_test`, `account_choices`, `account_sent_copy`; `account_fetch` and
//! `account_fetch_status`: fetching a helpdesk mailbox's mail and what it is doing),
//! `settings`, `me`, `explain`, `blocklist`, `queue`, `audit`, `tickets` (the built-in
//! ticket store; `my_tickets`, a requester's own), `requesters` (block and unblock), `webhooks`
//! (+ deliveries), `sessions` (console sessions per user, password login, one's own
//! password), `mail_config` (a staff user's account type, the lock), `backups` (a
//! deactivated user's mail: jobs, message lists, mbox downloads), `archive` (kept
//! messages for those who may read them: listing, metadata, raw download), `password` (the HTML
//! page of a "set your password" link). `auth`
//! says who the caller is, `extract` reads requests; `first_admin` creates the default
//! administrator at first start; `openapi` is the OpenAPI document
//! generated from the handlers' annotations.
//!
//! Handlers validate everything first, then write once, then rebuild the policy snapshot
//! (`Api::reload`) so the next SMTP session sees the change without a restart. Changes are
//! serialised by one lock, so a validation can never be overtaken by another change before
//! its write. Handlers hold no other state of their own.

pub(crate) mod account_choices;
pub(crate) mod account_edit;
pub(crate) mod account_fetch;
pub(crate) mod account_fetch_status;
pub(crate) mod account_rules;
pub(crate) mod account_sent_copy;
pub(crate) mod account_test;
pub(crate) mod accounts;
pub(crate) mod archive;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod backups;
pub(crate) mod blocklist;
pub(crate) mod directory;
pub(crate) mod dkim;
pub(crate) mod explain;
pub(crate) mod extract;
pub(crate) mod first_admin;
pub(crate) mod health;
pub(crate) mod mail_config;
pub(crate) mod me;
pub(crate) mod my_tickets;
pub(crate) mod names;
pub(crate) mod nodes;
pub(crate) mod openapi;
pub(crate) mod password;
pub(crate) mod problem;
pub(crate) mod queue;
pub(crate) mod requesters;
pub(crate) mod roles;
pub(crate) mod sessions;
pub(crate) mod settings;
pub(crate) mod tickets;
pub(crate) mod tokens;
pub(crate) mod upstreams;
pub(crate) mod user_edit;
pub(crate) mod users;
pub(crate) mod webhooks;

pub use auth::{AdminToken, Caller, PERMISSIONS};
pub use first_admin::{FirstAdmin, FirstAdminError};
pub use problem::Problem;

use crate::console::Console;
use crate::metrics::Metrics;
use crate::policy::{Credentials, Policy, Snapshot};
use crate::relay::Relays;
use crate::spool::QueueControl;
use crate::store::{Group, SkillGroup, Store};
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use axum::Router;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    /// Swapped after every change, so the next SMTP session sees it.
    pub policy: Arc<Policy>,
    pub relays: Arc<Relays>,
    pub metrics: Arc<Metrics>,
    pub admin: Arc<AdminToken>,
    /// Set once every listener is bound and the spool is open.
    pub ready: Arc<AtomicBool>,
    /// The spool as administrators see it.
    pub queue: Arc<QueueControl>,
    /// This node's name (Message-IDs of the messages the API sends).
    pub hostname: String,
    /// Where backup jobs are handed to the backup worker.
    pub backups: BackupJobs,
    /// Password checks (argon2id on the hashing threads), for console logins.
    pub credentials: Credentials,
    /// The console's settings and its failed-login counts.
    pub console: Arc<Console>,
    /// The archive's catalog and the journal its messages are read from.
    pub archive: crate::archive::Catalog,
    /// The fetch tasks of helpdesk mailboxes on this node (status, wake-up).
    pub fetchers: Arc<crate::fetch::Fetchers>,
}

/// The backup worker's side the API sees: where the mbox files are, and how to wake it.
#[derive(Clone)]
pub struct BackupJobs {
    pub dir: std::path::PathBuf,
    pub wake: Arc<tokio::sync::Notify>,
}

/// The router's state: the app's handles plus the lock that serialises changes.
#[derive(Clone)]
pub struct Api {
    pub(crate) state: ApiState,
    writes: Arc<Mutex<()>>,
}

impl Api {
    /// Held from the first validation read to the policy reload of one change.
    async fn write_lock(&self) -> OwnedMutexGuard<()> {
        self.writes.clone().lock_owned().await
    }

    pub(crate) fn store(&self) -> &Store {
        &self.state.store
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.state.policy.snapshot()
    }

    /// Rebuilds the policy snapshot from the store (blocking: sled reads).
    fn reload(&self) -> Result<(), Problem> {
        Ok(self.state.policy.reload()?)
    }
}

impl FromRef<Api> for ApiState {
    fn from_ref(api: &Api) -> ApiState {
        api.state.clone()
    }
}

/// The whole API.
pub fn router(state: ApiState) -> Router {
    let api = Api {
        state,
        writes: Arc::new(Mutex::new(())),
    };
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/password/{token}", get(password::show).post(password::set))
        .merge(crate::console::router(api.clone()))
        .merge(principals())
        .merge(resources())
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .with_state(api)
}

/// Users, their tokens, roles, skill groups and groups.
fn principals() -> Router<Api> {
    Router::new()
        .route("/api/v1/users", get(users::list).post(users::create))
        .route(
            "/api/v1/users/{id}",
            get(users::show).patch(user_edit::patch),
        )
        .route(
            "/api/v1/users/{id}/tokens",
            get(tokens::list)
                .post(tokens::create)
                .delete(tokens::revoke_all),
        )
        .route(
            "/api/v1/users/{id}/tokens/{token}",
            axum::routing::delete(tokens::revoke),
        )
        .route(
            "/api/v1/users/{id}/sessions",
            get(sessions::list).delete(sessions::revoke_all),
        )
        .route(
            "/api/v1/users/{id}/sessions/{session}",
            axum::routing::delete(sessions::revoke),
        )
        .route("/api/v1/login", post(sessions::login))
        .route("/api/v1/me/password", put(sessions::change_password))
        .route("/api/v1/roles", get(roles::list).post(roles::create))
        .route(
            "/api/v1/roles/{name}",
            get(roles::show).put(roles::replace).delete(roles::remove),
        )
        .route(
            "/api/v1/skill-groups",
            get(directory::list::<SkillGroup>).post(directory::create::<SkillGroup>),
        )
        .route(
            "/api/v1/skill-groups/{name}",
            axum::routing::delete(directory::remove::<SkillGroup>),
        )
        .route(
            "/api/v1/groups",
            get(directory::list::<Group>).post(directory::create::<Group>),
        )
        .route(
            "/api/v1/groups/{name}",
            axum::routing::delete(directory::remove::<Group>),
        )
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/me", get(me::show))
        .route("/api/v1/me/accounts", get(me::accounts))
        .route("/api/v1/me/tickets", get(my_tickets::list))
        .route("/api/v1/me/tickets/{id}", get(my_tickets::show))
        .route(
            "/api/v1/me/tickets/{id}/articles/{article}/attachments/{n}",
            get(my_tickets::attachment),
        )
        .route(
            "/api/v1/me/mail-config",
            get(mail_config::show_mine).put(mail_config::save_mine),
        )
        .route("/api/v1/users/{id}/mail-config", get(mail_config::show))
        .route(
            "/api/v1/users/{id}/mail-config/lock",
            post(mail_config::lock),
        )
        .route(
            "/api/v1/users/{id}/mail-config/unlock",
            post(mail_config::unlock),
        )
        .route("/api/v1/users/{id}/backup", post(backups::create))
        .route("/api/v1/backups", get(backups::list))
        .route("/api/v1/backups/{id}", get(backups::show))
        .route("/api/v1/backups/{id}/messages", get(backups::messages))
        .route("/api/v1/backups/{id}/mbox", get(backups::mbox))
        .route("/api/v1/archive", get(archive::list))
        .route("/api/v1/archive/{id}", get(archive::show))
        .route("/api/v1/archive/{id}/raw", get(archive::raw))
}

/// Accounts, upstreams, DKIM keys, settings, the policy explainer, the blocklist and the queue.
fn resources() -> Router<Api> {
    Router::new()
        .route(
            "/api/v1/accounts",
            get(accounts::list).post(accounts::create),
        )
        .route(
            "/api/v1/accounts/{id}",
            get(accounts::show)
                .patch(account_edit::patch)
                .delete(accounts::remove),
        )
        .route(
            "/api/v1/accounts/{id}/grants",
            put(account_edit::put_grants),
        )
        .route("/api/v1/accounts/choices", get(account_choices::choices))
        .route("/api/v1/accounts/{id}/status", get(accounts::status))
        .route(
            "/api/v1/accounts/{id}/fetch",
            get(account_fetch_status::show),
        )
        .route(
            "/api/v1/accounts/{id}/fetch/set_aside/{key}/retry",
            post(account_fetch_status::retry),
        )
        .route(
            "/api/v1/accounts/{id}/fetch/set_aside/{key}/move",
            post(account_fetch_status::move_to),
        )
        .route("/api/v1/accounts/{id}/test", post(account_test::test))
        .route(
            "/api/v1/upstreams",
            get(upstreams::list).post(upstreams::create),
        )
        .route(
            "/api/v1/upstreams/{name}",
            axum::routing::delete(upstreams::remove),
        )
        .route("/api/v1/dkim-keys", get(dkim::list).post(dkim::create))
        .route(
            "/api/v1/dkim-keys/{domain}/{selector}",
            get(dkim::show).delete(dkim::remove),
        )
        .route(
            "/api/v1/dkim-keys/{domain}/{selector}/activate",
            post(dkim::activate),
        )
        .route(
            "/api/v1/settings",
            get(settings::show).patch(settings::patch),
        )
        .route("/api/v1/policy/explain", post(explain::explain))
        .route(
            "/api/v1/blocklist",
            get(blocklist::list).post(blocklist::add),
        )
        .route(
            "/api/v1/blocklist/{entry}",
            axum::routing::delete(blocklist::remove),
        )
        .route("/api/v1/queue", get(queue::list))
        .route("/api/v1/nodes", get(nodes::list))
        .route("/api/v1/nodes/{node}/drain", post(nodes::drain))
        .route("/api/v1/nodes/{node}/resume", post(nodes::resume))
        .route("/api/v1/queue/{id}", get(queue::show).delete(queue::delete))
        .route("/api/v1/queue/{id}/retry", post(queue::retry))
        .route("/api/v1/tickets", get(tickets::list).post(tickets::create))
        .route(
            "/api/v1/tickets/{id}",
            get(tickets::show)
                .patch(tickets::patch)
                .delete(tickets::remove),
        )
        .route(
            "/api/v1/tickets/{id}/articles/{article}/attachments/{n}",
            get(tickets::attachment),
        )
        .route("/api/v1/knowledge", get(tickets::knowledge))
        .route(
            "/api/v1/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/api/v1/webhooks/{id}",
            axum::routing::delete(webhooks::remove),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries/{delivery}/retry",
            post(webhooks::retry),
        )
        .route("/api/v1/requesters", get(requesters::list))
        .route("/api/v1/requesters/{id}/block", post(requesters::block))
        .route("/api/v1/requesters/{id}/unblock", post(requesters::unblock))
}
