//! Postern: a mail gateway that sits in front of mail providers, decides who may send as
//! which mailbox, keeps every accepted message durably, and relays it upstream.
//!
//! # Layout
//!
//! - `config`  — serde structs for `postern.toml` (unknown keys refused), defaults, validation.
//! - `net`     — TCP accept loop with connection and per-IP limits; rustls server/client setup,
//!   self-signed development certificate; `http`, the one HTTP client (reqwest over rustls:
//!   pooled connections, time limits, no redirects, answers cut at 1 MiB) that webhooks,
//!   OAuth2 token endpoints and Graph share; the resolver settings DNS users share;
//!   `wire` (a mail client's clear or TLS stream) and `imap` (an IMAP session: connect,
//!   STARTTLS, login with a password or XOAUTH2), shared by sent copies and fetching;
//!   `pop3`, a POP3 client session (implicit TLS or STLS, USER/PASS, UIDL, RETR, DELE).
//! - `smtp`    — the inbound SMTP server: `Session<S>` generic over the stream, strict framing
//!   (`io`), time limits as deadlines (`deadline`: per command line, per payload at a
//!   minimum data rate, per TLS handshake, per session), one file per command, every reply
//!   text in `reply`; `originator`, the send-as checks of `Resent-From`/`Resent-Sender`
//!   and the `display_name_addresses` setting on submission.
//! - `policy`  — principals and credential checks (argon2id on a fixed pool of hashing
//!   threads, SHA-256 digests for high-entropy secrets); the policy snapshot (ArcSwap) and the send-as decision of
//!   SPEC §3 as pure functions; `watch`, which rebuilds the snapshot when another node
//!   changed the shared store; `explain`; `address`, the canonical form of a mailbox address
//!   (quoted dot-atoms unquoted, local parts case-folded and NFC, domains in lower-case
//!   A-labels) that every address comparison uses (SPEC §12).
//! - `rewrite` — the header block on raw bytes: `inspect` (exactly one From, Sender,
//!   `X-Postern-Account`, trace fields) and `apply` (From/Sender per send mode, RFC 2047
//!   display names, Reply-To, removals, Message-ID/Date, `Received`), written into headroom
//!   in front of the body, which is never moved, copied or changed; Postern's own From,
//!   Sender and Reply-To written right after the trace fields; `display`, an address
//!   hidden in a display name, as a reader would see it.
//! - `spool`   — durable queue: an append-only journal of segment files (`data_dir/spool`)
//!   made from zero-filled spares (a helper thread prepares the next one), with
//!   self-checking records, one writer thread that group-commits (`fdatasync`) before every
//!   `250`, an in-memory index and due order, segment deletion and compaction; fresh
//!   messages handed to the worker with their bytes in hand (bounded); retry schedule,
//!   delivery worker, DSNs (`dsn::Notices`: to the submitting principal, through a system
//!   account); `control` (list, retry now, delete, bounce for the API); a
//!   one-time move of the older sled spool; `ids`, queue ids from blocks whose limit is
//!   durable before use (never reused across crashes); `room`, the free-space reserve
//!   checked before anything is written (`452 4.3.1`); `handoff`, a draining node's queue
//!   moved to the other nodes through the shared store; `limits` and `pacing`, the sending
//!   limits per upstream and account (connections, messages a minute and a day,
//!   recipients a day): a message that meets one waits in the worker without a slot and
//!   with its reason, transactions split over `recipients_per_message`, a provider's
//!   throttling reply pausing the mailbox. A finished message the archive keeps gets a
//!   `keep` record, and its dead segment is retired into `spool/archive` (the rest punched
//!   out) once the archive has catalogued it.
//! - `relay`   — the `Deliver` trait and its kinds: `maildir` and `smtp` (pooled, pipelined,
//!   a delivery riding behind another that waits for its `354` (its envelope follows that
//!   message's data), BDAT in the same write as the envelope with CHUNKING (one round
//!   trip per message), at most `max_connections` open per upstream; AUTH PLAIN, LOGIN, XOAUTH2, OAUTHBEARER,
//!   the presets `microsoft365` and `google`), `graph` (Microsoft Graph `sendMail` with the
//!   MIME copy naming exactly the attempt's recipients, answers into outcomes, Sent Items
//!   looked up after a timed-out send), `sent_copy` (each message an account with
//!   `sent_copy` sent, recorded after the upstream accepted it in a per-node job queue,
//!   `data_dir/sent-copies`, and filed in its Sent folder by IMAP `APPEND` (async-imap),
//!   searched for first so it is filed once; backoff and the account's warning), `mx` (direct delivery: MX by preference,
//!   A/AAAA fallback, one transaction per domain, opportunistic STARTTLS, BDAT where
//!   offered, a pool per destination); `oauth`, OAuth2 tokens (client credentials with a
//!   secret or a certificate's signed assertion, refresh token) cached per upstream with
//!   one request per refresh; `dkim`, signing of
//!   what `smtp` and `mx` upstreams send with the active keys of the From domain (key
//!   generation, the TXT record to publish); `health`, each
//!   attempt classified into the status of the accounts delivering through its upstream
//!   (written to each account whose status differs, so health follows an account that
//!   moves);
//!   `Relays`, the upstreams of the config file and the API, swapped when one changes, plus
//!   the inbound hook under the reserved name `@inbound`; `Shared`, the HTTP client and the
//!   `warnings` (what will stop an account's mail or fails beside it: an expiring secret,
//!   certificate or refresh token, sent copies not filed) every upstream shares.
//! - `inbound` — the helpdesk path: the `Hook` (a `Deliver` the spool worker hands inbound
//!   mail to); the `Verifier` (SPF, DKIM, DMARC, ARC with mail-auth on hickory; the
//!   `Authentication-Results` field); message parsing (mail-parser, cleaned text); loop
//!   detection; requester lookup and auto-creation with the "set your password" link;
//!   threading; one atomic ticket-store change per message, with the webhook deliveries of
//!   its event; the `Dispatcher` that calls webhooks, signed (HMAC-SHA256), with durable
//!   retries.
//! - `fetch`   — helpdesk mailboxes read at the provider: per mailbox with
//!   `inbound.fetch`, one task (leased to one node in the store; restarted with backoff;
//!   stopped and started as settings change, `supervise`) running sessions of its kind —
//!   `imap` (IDLE, `BODY.PEEK[]` in batches, UIDVALIDITY), `pop3` (UIDL), `graph` (delta
//!   queries) — each message through `intake` (blocked senders, the provider's trusted
//!   `Authentication-Results`, `inbound::Hook::fetched` with a mark naming the message at
//!   the server), the state synced (`state`: UIDVALIDITY and highest UID, UIDLs or delta
//!   link, messages not yet acknowledged, messages set aside with their backoff) before
//!   anything is acknowledged at the server; `status`, each fetcher's phase for the API
//!   and metrics.
//! - `archive` — whose mail a message is (`owners`, at acceptance); the catalog task that
//!   records each kept message leaving the queue (metadata, linked tickets, retention)
//!   pointing at its journal record; the purge job; `read`, the archive as readers see it
//!   (each message once, filters and pages, a message's bytes read back under the purge
//!   guard); backup jobs of a deactivated user's mail, written as mbox files
//!   (`data_dir/backups`).
//! - `api`     — the axum control API: health, metrics, callers and permissions, users and
//!   tokens, roles, skill groups, groups, upstreams, accounts and grants, settings, me,
//!   policy/explain, the queue, the blocklist, tickets and knowledge items, requesters
//!   (block/unblock), a helpdesk mailbox's fetching (`account_fetch`: its settings checked
//!   per field, the password write-only and kept for the same server; `account_fetch_status`:
//!   the fetcher's state and set-aside messages, retry/move requests), webhooks, the "set your password" page, staff users' mail
//!   configuration and its lock, backups, DKIM keys, the archive (kept messages for admins,
//!   `access` holders and their owners: list, metadata, raw download, each download
//!   audited), `account_choices` (the names an account form picks from), `my_tickets` (a
//!   requester's own tickets), `sessions` (console sessions per user, password login for a bearer token,
//!   one's own password), `first_admin` (the default administrator created at first
//!   start: password from the environment, or a printed set-your-password link), the audit
//!   log of every change;
//!   problem+json errors (a body not sent as JSON `415`, over the limit `413`); `names`, what domain names and selectors may look like; the
//!   OpenAPI 3.1 document generated from the handlers (utoipa).
//! - `console` — the web console under `/console/` on the API listener: server-rendered
//!   HTML (askama templates in `templates/console/`, `static/` embedded), a client of the
//!   API in the same process — each page calls the API's handler as the session's user
//!   (`Caller::for_user`), so checks, validation and audit are the API's; `guard` (CSP
//!   and security headers, cross-site refusal, session, CSRF token of every unsafe
//!   request), `session` (hashed sessions, the cookie, `Viewer`), `login` (argon2id,
//!   `limiter`: failures per name and IP), `render` (the frame, navigation by permission,
//!   form errors beside fields, notices, dates), then one file per area: `dashboard`, `me`
//!   (my profile, my accounts), `accounts*` (list, form, grant grid, Test account,
//!   Explain), `admin*` (upstreams, settings, DKIM keys), `users`/`user_edit`/
//!   `user_tokens`, `roles` (+ skill groups, groups), `mail_users`/`backups` (the leaver
//!   workflow), `queue`, `audit`, `archive`, `tickets`, `requesters`, `helpdesk_*`
//!   (blocklist, inbound settings with fetching and its set-aside messages, a requester's
//!   own tickets), `webhooks`.
//! - `store`   — the only owner of control state: typed modules (users, roles, skill
//!   groups, groups, accounts, upstreams, settings, the audit log, the blocklist, the
//!   ticket store with its idempotence marks, webhooks with their deliveries, password
//!   links and console sessions (hashed), API tokens (hashed), mail configurations, the
//!   archive catalog, backup jobs, DKIM keys, node records and handed-over messages, the
//!   fetch settings and states of helpdesk mailboxes with the API's set-aside requests) over
//!   one key-value seam (`kv`: named trees, conditional commits across trees, id blocks,
//!   a change counter, leases) with two backends: `kv/sled` embedded (the default;
//!   `flush` = sled's flush + `syncfs`; ids from blocks whose limit is synced before use)
//!   and `kv/postgres`, shared by several nodes (a pool over rustls, its own runtime,
//!   migrations under an advisory lock, the counter bumped and NOTIFYed in each control
//!   transaction, a LISTEN connection, ids from a sequence). `records` is the
//!   prefixed-JSON key layout; the Message-ID registry (`msgids`) keeps sorted run files
//!   of fixed-size entries (`store/message-ids`), one written and synced a second, also
//!   shared in one statement when the store is; `copy`, `postern store copy`; `ballast`, a
//!   file released when a start finds the disk full, so the store still opens.
//! - `cluster` — this node among several sharing the store: its record (queue depth and
//!   sample), the drain flag, handing its queue over (`spool::handoff`) or taking in others'.
//! - `disk`    — free space of a file system (`fstatvfs`), for the spool's reserve and the
//!   store's ballast.
//! - `metrics` — metric handles registered once on a Prometheus recorder owned by the app;
//!   `Recent`, per-minute counts of the last day for the console's dashboard.
//! - `logging` — the `tracing` writer of `serve`: informational lines buffered and written
//!   by a thread of their own, warnings and errors at once (in order); `plain` writes the
//!   default format's lines without its formatting machinery.
//! - `digits`  — decimal numbers written without the formatting machinery (log fields,
//!   dates, reply codes).
//! - `admin`   — `postern admin`: the control API from the command line (reqwest's
//!   blocking client, tables or `--json`); `archive` list/show/raw.
//! - `app`     — builds every piece from the config, starts the services, shuts them down.
//!
//! Beside the crate, `fuzz/` (a cargo workspace of its own, never built by `cargo test`)
//! holds AFL++ targets for `smtp::Session` and `rewrite::{inspect, apply}`
//! (`fuzz/README.md`).
//!
//! # Flow
//!
//! listener → `smtp::Session` (credentials at AUTH, the send-as policy at MAIL FROM, limits
//! at MAIL/RCPT/DATA) → data receiver (strict CRLF, dot-unstuffing, headroom in front) →
//! `rewrite::inspect` → `policy::admit` (account, scope, send mode) → `rewrite::apply`
//! (header block only) → Message-ID recorded → `spool` journal append + group `fdatasync` →
//! `250 2.0.0 queued as <id>` → spool worker → `relay::Deliver` for the account's upstream,
//! envelope sender = the account address (DKIM-signed first for `smtp` and `mx`, on the
//! blocking pool) → per-recipient status made durable → DSN on
//! permanent failure or expiry.
//!
//! Inbound: listener (purpose `inbound`) → blocklist and blocked users at MAIL FROM → RCPT
//! must be a helpdesk mailbox (SPF check started at MAIL FROM) → data → header From against
//! the blocklist → DKIM/ARC/DMARC (a mailbox may refuse DMARC `reject` failures) →
//! `Received` + `Authentication-Results` →
//! spool (upstream `@inbound`, same `fdatasync` before `250`) → spool worker →
//! `inbound::Hook` → requester (found or created), loop check, threading → ticket store
//! and webhook deliveries (one transaction + sync, marked done per message and mailbox) →
//! per-recipient status; `inbound::Dispatcher` → webhook POSTs, outcome made durable.
//!
//! Archive: a message of a non-private user carries `keep` in its spool metadata → when it
//! leaves the queue, a `keep` record instead of a `remove` → `archive::Catalog` (batched,
//! one store sync) → the journal retires the segment → backup jobs read the records back.

pub mod admin;
pub mod api;
pub mod app;
pub mod archive;
pub mod cluster;
pub mod config;
pub mod console;
pub mod digits;
pub mod disk;
pub mod fetch;
pub mod inbound;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod relay;
pub mod rewrite;
pub mod smtp;
pub mod spool;
pub mod store;
