//! `postern admin archive`: the kept messages the token may read (SPEC §8) — `list` with
//! the API's filters and paging, `show` one message's metadata, `raw` writes the message
//! as it was kept to stdout.

use super::command::{call, encode, query};
use super::{Call, View};
use clap::Subcommand;

const MESSAGES: &[&str] = &[
    "/id",
    "/direction",
    "/received_at",
    "/mail_from",
    "/rcpts",
    "/subject",
];

#[derive(Debug, Subcommand)]
pub enum ArchiveCmd {
    /// Kept messages, oldest first (by id).
    List {
        /// Account id: what went through it or arrived for it.
        #[arg(long)]
        account: Option<u64>,
        /// `inbound` or `outbound`.
        #[arg(long)]
        direction: Option<String>,
        /// The envelope sender, header From or a recipient is this address.
        #[arg(long)]
        address: Option<String>,
        /// Ticket id: the messages linked to it.
        #[arg(long)]
        ticket: Option<u64>,
        /// Accepted at or after (Unix seconds).
        #[arg(long)]
        since: Option<u64>,
        /// Accepted before (Unix seconds).
        #[arg(long)]
        until: Option<u64>,
        /// The last id of the previous page.
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// A kept message's metadata.
    Show { id: String },
    /// Writes a kept message (RFC 5322, as kept) to stdout.
    Raw { id: String },
}

pub fn plan(cmd: &ArchiveCmd) -> Call {
    let one = |id: &str| format!("/api/v1/archive/{}", encode(id));
    match cmd {
        ArchiveCmd::List {
            account,
            direction,
            address,
            ticket,
            since,
            until,
            after,
            limit,
        } => {
            let text = |n: &Option<u64>| n.map(|n| n.to_string());
            let q = query(&[
                ("account", text(account)),
                ("direction", direction.clone()),
                ("address", address.clone()),
                ("ticket", text(ticket)),
                ("since", text(since)),
                ("until", text(until)),
                ("after", after.clone()),
                ("limit", limit.map(|l| l.to_string())),
            ]);
            call(
                "GET",
                format!("/api/v1/archive{q}"),
                None,
                View::Table(MESSAGES),
            )
        }
        ArchiveCmd::Show { id } => call("GET", one(id), None, View::Record),
        ArchiveCmd::Raw { id } => call("GET", format!("{}/raw", one(id)), None, View::Raw),
    }
}
