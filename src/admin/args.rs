//! The command line of `postern admin`: global options and one subcommand tree per
//! resource (clap). What each subcommand calls is `command`.

use super::archive::ArchiveCmd;
use clap::{Args, Subcommand};

/// `postern admin [--api URL] [--token T] [--json] RESOURCE ...`
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The control API.
    #[arg(long, env = "POSTERN_API", default_value = "http://127.0.0.1:8025")]
    pub api: String,
    /// Bearer token (the admin token or a user's).
    #[arg(long, env = "POSTERN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub resource: Resource,
}

#[derive(Debug, Subcommand)]
pub enum Resource {
    /// Users: staff, requesters and system principals.
    #[command(subcommand)]
    Users(UserCmd),
    /// Roles and their permissions.
    #[command(subcommand)]
    Roles(RoleCmd),
    /// Email accounts and their grants.
    #[command(subcommand)]
    Accounts(AccountCmd),
    /// The delivery queue.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// The nodes sharing the store: list them, drain one for maintenance, resume it.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Blocked addresses and domains.
    #[command(subcommand)]
    Blocklist(BlockCmd),
    /// Upstreams defined through the API (and those of the config file, listed).
    #[command(subcommand)]
    Upstreams(UpstreamCmd),
    /// DKIM keys of the signing domains, and the DNS records that publish them.
    #[command(subcommand)]
    Dkim(DkimCmd),
    /// Installation settings.
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// Skill groups of staff users.
    #[command(subcommand, name = "skill-groups")]
    SkillGroups(DirectoryCmd),
    /// Groups of requesters.
    #[command(subcommand)]
    Groups(DirectoryCmd),
    /// Tickets of the built-in ticket store.
    #[command(subcommand)]
    Tickets(TicketCmd),
    /// Webhooks of the inbound hook and their deliveries.
    #[command(subcommand)]
    Webhooks(WebhookCmd),
    /// Requesters, and blocking one that sends unwanted mail.
    #[command(subcommand)]
    Requesters(RequesterCmd),
    /// Staff users' mail configuration (account type, mailbox) and its lock.
    #[command(subcommand, name = "mail-config")]
    MailConfig(MailConfigCmd),
    /// Backups of deactivated users' mail.
    #[command(subcommand)]
    Backups(BackupCmd),
    /// Kept messages (the archive): list, show, raw download.
    #[command(subcommand)]
    Archive(ArchiveCmd),
    /// Who the token belongs to, and its permissions.
    Me,
    /// The audit log of API changes.
    Audit {
        #[arg(long)]
        actor: Option<String>,
        /// An action, or a prefix such as `user.`.
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Why a user may (or may not) send as an address.
    Explain {
        #[arg(long)]
        user: String,
        #[arg(long)]
        from: String,
    },
    /// Any API call: `request GET /api/v1/settings`, `request PATCH /api/v1/settings '{...}'`.
    Request {
        method: String,
        path: String,
        body: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    List {
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    Show {
        id: u64,
    },
    Create {
        #[arg(long)]
        login: String,
        #[arg(long)]
        email: String,
        /// staff, requester or system.
        #[arg(long, default_value = "staff")]
        kind: String,
        /// Omit for a system user to have a secret generated (printed once). `-` reads it
        /// from standard input, which keeps it out of the process list and shell history.
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Change roles, e-mail address or password.
    Set {
        id: u64,
        /// Comma-separated role names (replaces the list; empty clears it).
        #[arg(long)]
        roles: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// The new password; `-` reads it from standard input.
        #[arg(long)]
        password: Option<String>,
    },
    Deactivate {
        id: u64,
    },
    Reactivate {
        id: u64,
    },
    /// Issue an API token for the user (printed once).
    Token {
        id: u64,
        #[arg(long, default_value = "")]
        label: String,
        /// Unix seconds after which the token is refused.
        #[arg(long)]
        expires_at: Option<u64>,
    },
    /// List the user's tokens (ids and labels, never the tokens).
    Tokens {
        id: u64,
    },
    /// Revoke one token by its id.
    RevokeToken {
        id: u64,
        token_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    List,
    /// Create a role, or replace the permissions of an existing one.
    Set {
        name: String,
        /// Comma-separated permissions.
        #[arg(long, default_value = "")]
        permissions: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    List,
    Show {
        id: u64,
    },
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        address: String,
        #[arg(long)]
        upstream: Option<String>,
        /// everyone, system or all_staff.
        #[arg(long, default_value = "all_staff")]
        scope: String,
        /// send_as, send_on_behalf or none.
        #[arg(long, default_value = "none")]
        send_mode: String,
        #[arg(long)]
        display_name: Option<String>,
    },
    Delete {
        id: u64,
    },
    /// Send a test message through the account's upstream and show its answer.
    Test {
        id: u64,
        #[arg(long)]
        to: String,
    },
    /// Add (or replace) a grant for a user or a role. Reads the grants, then writes them
    /// back whole: do not run two at once for the same account.
    Grant {
        id: u64,
        #[arg(long, conflicts_with = "role", required_unless_present = "role")]
        user: Option<u64>,
        #[arg(long)]
        role: Option<String>,
        /// send_as or send_on_behalf.
        #[arg(long)]
        send: Option<String>,
        #[arg(long)]
        access: bool,
        #[arg(long)]
        setup: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BlockCmd {
    List,
    /// Block an address (someone@example.com) or a domain and its subdomains.
    Add {
        entry: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Remove {
        entry: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DkimCmd {
    List,
    /// Generate a key (pending until activated); prints its DNS record.
    Create {
        domain: String,
        /// `rsa-2048` or `ed25519`.
        #[arg(long, default_value = "rsa-2048")]
        algorithm: String,
        /// Defaults to `rsa-YYYYMMDD` / `ed25519-YYYYMMDD`.
        #[arg(long)]
        selector: Option<String>,
        /// Sign with it at once (its record is already published).
        #[arg(long)]
        activate: bool,
    },
    Show {
        domain: String,
        selector: String,
    },
    /// The TXT record to publish, as a zone-file line.
    Record {
        domain: String,
        selector: String,
    },
    /// Sign the domain's mail with this key (retiring its other key of that algorithm).
    Activate {
        domain: String,
        selector: String,
    },
    Delete {
        domain: String,
        selector: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    List,
    /// Stop NODE accepting mail and hand its queued messages to the other nodes.
    Drain {
        node: String,
    },
    /// Let a drained NODE accept and deliver mail again.
    Resume {
        node: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    List {
        /// Every node's queue, not only that of the node answering.
        #[arg(long)]
        all_nodes: bool,
        #[arg(long)]
        deferred: bool,
        #[arg(long)]
        sender: Option<String>,
        #[arg(long)]
        recipient: Option<String>,
    },
    Show {
        id: String,
    },
    Retry {
        id: String,
    },
    Delete {
        id: String,
        /// Send the sender a DSN for the recipients still pending.
        #[arg(long)]
        bounce: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCmd {
    List,
    /// Define an SMTP upstream.
    Create {
        name: String,
        #[arg(long)]
        host: String,
        #[arg(long, default_value_t = 587)]
        port: u16,
        /// starttls, implicit or none.
        #[arg(long, default_value = "starttls")]
        tls: String,
        /// none, plain or login.
        #[arg(long, default_value = "none")]
        auth: String,
        #[arg(long, default_value = "")]
        username: String,
        /// `-` reads it from standard input.
        #[arg(long)]
        password: Option<String>,
        /// `false`: DATA even when the upstream offers CHUNKING (default: BDAT then).
        #[arg(long)]
        chunking: Option<bool>,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCmd {
    Show,
    /// Change the given settings only.
    Set {
        #[arg(long)]
        allow_personal_accounts: Option<bool>,
        /// Comma-separated domains (replaces the list).
        #[arg(long)]
        org_domains: Option<String>,
        #[arg(long)]
        public_url: Option<String>,
        /// A number, or `none` to lift the limit.
        #[arg(long)]
        max_users: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DirectoryCmd {
    List,
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketCmd {
    List {
        /// Account id of the mailbox.
        #[arg(long)]
        mailbox: Option<u64>,
        /// `open` or `closed`.
        #[arg(long)]
        status: Option<String>,
    },
    /// The ticket with its articles.
    Show {
        id: u64,
    },
    Close {
        id: u64,
    },
    Reopen {
        id: u64,
    },
    Delete {
        id: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCmd {
    List,
    /// Prints the signing secret once (generated unless given).
    Create {
        name: String,
        url: String,
        #[arg(long)]
        secret: Option<String>,
        #[arg(long)]
        max_attempts: Option<u32>,
    },
    Delete {
        id: u64,
    },
    /// Each delivery with its status, attempts and last answer.
    Deliveries {
        id: u64,
    },
    /// Sends a dead delivery again.
    Retry {
        id: u64,
        delivery: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum RequesterCmd {
    List,
    Block {
        id: u64,
        /// Also delete every ticket it opened.
        #[arg(long)]
        delete_tickets: bool,
    },
    Unblock {
        id: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailConfigCmd {
    /// The caller's own configuration, or user ID's (admins).
    Show {
        id: Option<u64>,
    },
    /// Saves the caller's own configuration.
    Set {
        /// `private`, `record_level` or `complete`.
        #[arg(long = "type")]
        account_type: String,
        #[arg(long)]
        mailbox: String,
    },
    Lock {
        id: u64,
    },
    Unlock {
        id: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// The backups the caller may read.
    List,
    Show {
        id: u64,
    },
    /// Backs up deactivated user USER's mail (admins).
    Create {
        user: u64,
        /// Who may read it: user logins or ids, role names (`user:` or `role:` in front
        /// when a name could be both); comma-separated.
        #[arg(long)]
        grant_to: Option<String>,
        /// Only the mail since the previous backup.
        #[arg(long)]
        latest: bool,
    },
    /// The messages a completed backup holds.
    Messages {
        id: u64,
    },
    /// Writes a completed backup's mbox to stdout.
    Download {
        id: u64,
    },
}
