//! The helpdesk subcommands of `postern admin`: tickets, webhooks (and their deliveries),
//! requesters (block and unblock), and staff users' mail configuration (SPEC §8).

use super::args::{BackupCmd, MailConfigCmd, RequesterCmd, TicketCmd, WebhookCmd};
use super::command::call;
use super::{Call, View};
use serde_json::json;

const TICKETS: &[&str] = &[
    "/id",
    "/mailbox",
    "/subject",
    "/requester",
    "/status",
    "/origin",
];
const WEBHOOKS: &[&str] = &["/id", "/name", "/url", "/max_attempts"];
const DELIVERIES: &[&str] = &["/id", "/event", "/status", "/attempts", "/last_status"];
const REQUESTERS: &[&str] = &["/id", "/login", "/status", "/group", "/created_via"];
const BACKUPS: &[&str] = &[
    "/id",
    "/login",
    "/kind",
    "/status",
    "/counts/written",
    "/created_at",
];
const BACKUP_ITEMS: &[&str] = &["/id", "/direction", "/from", "/subject", "/tickets"];

pub fn tickets(cmd: &TicketCmd) -> Call {
    let one = |id: &u64| format!("/api/v1/tickets/{id}");
    match cmd {
        TicketCmd::List { mailbox, status } => {
            let mut pairs = Vec::new();
            if let Some(mailbox) = mailbox {
                pairs.push(format!("mailbox={mailbox}"));
            }
            if let Some(status) = status {
                pairs.push(format!("status={}", super::command::encode(status)));
            }
            let q = match pairs.is_empty() {
                true => String::new(),
                false => format!("?{}", pairs.join("&")),
            };
            call(
                "GET",
                format!("/api/v1/tickets{q}"),
                None,
                View::Table(TICKETS),
            )
        }
        TicketCmd::Show { id } => call("GET", one(id), None, View::Record),
        TicketCmd::Close { id } => call(
            "PATCH",
            one(id),
            Some(json!({"status": "closed"})),
            View::Record,
        ),
        TicketCmd::Reopen { id } => call(
            "PATCH",
            one(id),
            Some(json!({"status": "open"})),
            View::Record,
        ),
        TicketCmd::Delete { id } => call("DELETE", one(id), None, View::Done),
    }
}

pub fn webhooks(cmd: &WebhookCmd) -> Call {
    match cmd {
        WebhookCmd::List => call("GET", "/api/v1/webhooks", None, View::Table(WEBHOOKS)),
        WebhookCmd::Create {
            name,
            url,
            secret,
            max_attempts,
        } => {
            let mut body = json!({"name": name, "url": url});
            if let Some(secret) = secret {
                body["secret"] = json!(secret);
            }
            if let Some(max) = max_attempts {
                body["max_attempts"] = json!(max);
            }
            call("POST", "/api/v1/webhooks", Some(body), View::Record)
        }
        WebhookCmd::Delete { id } => {
            call("DELETE", format!("/api/v1/webhooks/{id}"), None, View::Done)
        }
        WebhookCmd::Deliveries { id } => call(
            "GET",
            format!("/api/v1/webhooks/{id}/deliveries"),
            None,
            View::Table(DELIVERIES),
        ),
        WebhookCmd::Retry { id, delivery } => call(
            "POST",
            format!("/api/v1/webhooks/{id}/deliveries/{delivery}/retry"),
            None,
            View::Record,
        ),
    }
}

pub fn requesters(cmd: &RequesterCmd) -> Call {
    match cmd {
        RequesterCmd::List => call("GET", "/api/v1/requesters", None, View::Table(REQUESTERS)),
        RequesterCmd::Block { id, delete_tickets } => call(
            "POST",
            format!("/api/v1/requesters/{id}/block"),
            Some(json!({"delete_tickets": delete_tickets})),
            View::Record,
        ),
        RequesterCmd::Unblock { id } => call(
            "POST",
            format!("/api/v1/requesters/{id}/unblock"),
            Some(json!({})),
            View::Record,
        ),
    }
}

pub fn mail_config(cmd: &MailConfigCmd) -> Call {
    let user = |id: &u64, what: &str| format!("/api/v1/users/{id}/mail-config{what}");
    match cmd {
        MailConfigCmd::Show { id: None } => {
            call("GET", "/api/v1/me/mail-config", None, View::Record)
        }
        MailConfigCmd::Show { id: Some(id) } => call("GET", user(id, ""), None, View::Record),
        MailConfigCmd::Set {
            account_type,
            mailbox,
        } => call(
            "PUT",
            "/api/v1/me/mail-config",
            Some(json!({"account_type": account_type, "mailbox": mailbox})),
            View::Record,
        ),
        MailConfigCmd::Lock { id } => call("POST", user(id, "/lock"), None, View::Record),
        MailConfigCmd::Unlock { id } => call("POST", user(id, "/unlock"), None, View::Record),
    }
}

pub fn backups(cmd: &BackupCmd) -> Call {
    let backup = |id: &u64, what: &str| format!("/api/v1/backups/{id}{what}");
    match cmd {
        BackupCmd::List => call("GET", "/api/v1/backups", None, View::Table(BACKUPS)),
        BackupCmd::Show { id } => call("GET", backup(id, ""), None, View::Record),
        BackupCmd::Create {
            user,
            grant_to,
            latest,
        } => {
            let grant_to: Vec<&str> = grant_to
                .as_deref()
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            call(
                "POST",
                format!("/api/v1/users/{user}/backup"),
                Some(json!({"grant_to": grant_to, "latest": latest})),
                View::Record,
            )
        }
        BackupCmd::Messages { id } => call(
            "GET",
            backup(id, "/messages"),
            None,
            View::Table(BACKUP_ITEMS),
        ),
        BackupCmd::Download { id } => call("GET", backup(id, "/mbox"), None, View::Raw),
    }
}
