//! Fetching a Microsoft 365 mailbox through Microsoft Graph (`kind = "graph"`): the account's
//! upstream must be a `graph` upstream, whose app-only token (client credentials, scope
//! `https://graph.microsoft.com/.default`), `graph_url` and CA file are used; the mailbox
//! is the account's address. The application needs `Mail.ReadWrite` (application
//! permission), limited to the helpdesk mailboxes by an application access policy where
//! wanted.
//!
//! A session polls: a delta query on the folder (`look`), then a wait of `poll_secs`
//! (less when a set-aside message is due, cut short by a request from the API or a stop).
//! A message recorded is marked read (`after = "seen"`), moved to `move_to` (a top-level
//! folder, created when missing) or deleted (to Deleted Items); a blocked sender's is moved
//! to `blocked_folder` or deleted. Each is recorded (and the fetch state synced) before
//! Graph is asked to acknowledge it.
//!
//! - `api`     — requests with the token; throttling, refused tokens and permissions.
//! - `mailbox` — the folder, a message's MIME, marking read, moving, deleting.
//! - `look`    — one delta round and the set-aside messages.

mod api;
mod look;
mod mailbox;

use super::state::next_due;
use super::status::Phase;
use super::supervise::Job;
use super::{now, FetchError};
use crate::config::UpstreamConfig;
use crate::net::http::Client;
use crate::relay::oauth::TokenSource;
use crate::store::After;
use std::time::Duration;

/// One session: reads the mailbox until it fails, the lease is lost or the task stops.
pub async fn session(job: &mut Job) -> Result<(), FetchError> {
    let mailbox = connect(job)?;
    let result = run(job, mailbox).await;
    if let Err(FetchError::Login(_) | FetchError::Token(_)) = &result {
        // Made again for the next session, with the settings then in force.
        job.tokens = None;
    }
    result
}

/// The mailbox at Graph, with the settings of the account's upstream.
fn connect(job: &mut Job) -> Result<mailbox::Mailbox, FetchError> {
    let upstream = &job.account.upstream;
    let settings = job.relays.settings();
    let Some(UpstreamConfig::Graph(config)) = settings.get(upstream) else {
        return Err(FetchError::Settings(format!(
            "fetching through Microsoft Graph needs a graph upstream; the account's upstream {upstream:?} is not one"
        )));
    };
    if let Some((field, reason)) = config.problem() {
        return Err(FetchError::Settings(format!(
            "upstream {upstream}: {field}: {reason}"
        )));
    }
    if job.fetch.after == After::Move && job.fetch.move_to.is_none() {
        return Err(FetchError::Settings(
            "after = \"move\" needs move_to".into(),
        ));
    }
    let timeout = Duration::from_secs(config.timeout_secs);
    let shared = job.relays.shared();
    let http = match &config.ca_file {
        Some(ca_file) => Client::with_ca_file(timeout, ca_file)
            .map_err(|e| FetchError::Settings(format!("upstream {upstream}: {e}")))?,
        None => shared.http.clone(),
    };
    let tokens = match &job.tokens {
        Some(tokens) => tokens.clone(),
        None => {
            let made = TokenSource::new(
                upstream,
                &config.oauth(),
                "",
                shared,
                config.ca_file.as_deref(),
            )
            .map_err(|e| FetchError::Settings(format!("upstream {upstream}: {e}")))?;
            job.tokens = Some(made.clone());
            made
        }
    };
    let api = api::Api::new(
        http,
        &config.graph_url,
        &job.account.address,
        timeout,
        tokens,
        job.stop.clone(),
    );
    Ok(mailbox::Mailbox::new(api))
}

async fn run(job: &Job, mailbox: mailbox::Mailbox) -> Result<(), FetchError> {
    let mut look = look::Look::new(job, mailbox);
    let mut stop = job.stop.clone();
    loop {
        if !job.hold().await {
            return Ok(());
        }
        let mut state = job.state().await?;
        look.leftovers(&mut state).await?;
        look.delta(&mut state).await?;
        look.set_asides(&mut state).await?;
        job.phase(Phase::Polling);
        let mut wait = Duration::from_secs(job.fetch.poll_secs.max(1));
        if let Some(secs) = next_due(&state, now()) {
            wait = wait.min(Duration::from_secs(secs.max(1)));
        }
        tokio::select! {
            _ = tokio::time::sleep(job.renew_within(wait)) => {}
            _ = job.wake.notified() => {}
            _ = stop.changed() => {}
        }
        if job.stopping() {
            return Ok(());
        }
    }
}
