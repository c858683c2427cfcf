//! The subcommands of `postern admin` and the API call each one makes. Anything not
//! covered here is reachable with `postern admin request METHOD PATH [BODY]`.

use super::args::{
    AccountCmd, BlockCmd, DirectoryCmd, NodeCmd, QueueCmd, Resource, RoleCmd, SettingsCmd,
    UpstreamCmd, UserCmd,
};
use super::{AdminError, Api, Call, View};
use serde_json::{json, Map, Value};

const USERS: &[&str] = &["/id", "/login", "/email", "/kind", "/status", "/roles"];
const TOKENS: &[&str] = &["/id", "/label", "/created_at", "/expires_at"];
const ROLES: &[&str] = &["/name", "/permissions"];
const ACCOUNTS: &[&str] = &[
    "/id",
    "/name",
    "/address",
    "/upstream",
    "/scope/kind",
    "/default_send_mode",
];
const NODES: &[&str] = &[
    "/node",
    "/draining",
    "/queue_depth",
    "/seen_secs_ago",
    "/this_node",
];
const QUEUE: &[&str] = &[
    "/id",
    "/node",
    "/mail_from",
    "/recipients",
    "/attempts",
    "/next_attempt_at",
];
const UPSTREAMS: &[&str] = &["/name", "/kind", "/host", "/port", "/source"];
const DIRECTORY: &[&str] = &["/name", "/description"];
const BLOCKS: &[&str] = &["/entry", "/kind", "/reason", "/created_by"];
const AUDIT: &[&str] = &["/id", "/at", "/actor", "/action", "/target"];

pub(super) fn call(
    method: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    view: View,
) -> Call {
    Call {
        method,
        path: path.into(),
        body,
        view,
    }
}

/// `?a=1&b=2` from the present pairs (values percent-encoded), or "".
pub(super) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    match parts.is_empty() {
        true => String::new(),
        false => format!("?{}", parts.join("&")),
    }
}

pub(super) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The call a command makes (`accounts grant` reads the account first, through `api`).
pub fn plan(resource: &Resource, api: &Api) -> Result<Call, AdminError> {
    Ok(match resource {
        Resource::Users(cmd) => users(cmd)?,
        Resource::Roles(cmd) => roles(cmd, api)?,
        Resource::Accounts(cmd) => accounts(cmd, api)?,
        Resource::Queue(cmd) => queue(cmd),
        Resource::Node(cmd) => node(cmd),
        Resource::Blocklist(cmd) => blocklist(cmd),
        Resource::Upstreams(cmd) => upstreams(cmd)?,
        Resource::Dkim(cmd) => super::dkim::plan(cmd),
        Resource::Settings(cmd) => settings(cmd)?,
        Resource::SkillGroups(cmd) => directory(cmd, "/api/v1/skill-groups"),
        Resource::Groups(cmd) => directory(cmd, "/api/v1/groups"),
        Resource::Tickets(cmd) => super::helpdesk::tickets(cmd),
        Resource::Webhooks(cmd) => super::helpdesk::webhooks(cmd),
        Resource::Requesters(cmd) => super::helpdesk::requesters(cmd),
        Resource::MailConfig(cmd) => super::helpdesk::mail_config(cmd),
        Resource::Backups(cmd) => super::helpdesk::backups(cmd),
        Resource::Archive(cmd) => super::archive::plan(cmd),
        Resource::Me => call("GET", "/api/v1/me", None, View::Record),
        Resource::Audit {
            actor,
            action,
            limit,
        } => {
            let q = query(&[
                ("actor", actor.clone()),
                ("action", action.clone()),
                ("limit", limit.map(|l| l.to_string())),
            ]);
            call("GET", format!("/api/v1/audit{q}"), None, View::Table(AUDIT))
        }
        Resource::Explain { user, from } => call(
            "POST",
            "/api/v1/policy/explain",
            Some(json!({"user": user, "from": from})),
            View::Record,
        ),
        Resource::Request { method, path, body } => raw(method, path, body.as_deref())?,
    })
}

fn raw(method: &str, path: &str, body: Option<&str>) -> Result<Call, AdminError> {
    let method = match method.to_uppercase().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        other => return Err(AdminError::Usage(format!("unknown method {other}"))),
    };
    let body = body
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| AdminError::Usage(format!("the body is not JSON: {e}")))?;
    Ok(call(method, path, body, View::Record))
}

/// A password given as `-` is read from the first line of standard input.
fn secret(given: &Option<String>) -> Result<Option<String>, AdminError> {
    match given.as_deref() {
        Some("-") => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| AdminError::Usage(format!("cannot read the password: {e}")))?;
            Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
        }
        other => Ok(other.map(str::to_string)),
    }
}

fn users(cmd: &UserCmd) -> Result<Call, AdminError> {
    let path = |id: &u64| format!("/api/v1/users/{id}");
    Ok(match cmd {
        UserCmd::List { kind, status } => {
            let q = query(&[("kind", kind.clone()), ("status", status.clone())]);
            call("GET", format!("/api/v1/users{q}"), None, View::Table(USERS))
        }
        UserCmd::Show { id } => call("GET", path(id), None, View::Record),
        UserCmd::Create {
            login,
            email,
            kind,
            password,
            display_name,
        } => {
            let mut body = json!({"login": login, "email": email, "kind": kind});
            set(&mut body, "password", secret(password)?.map(Value::from));
            set(
                &mut body,
                "display_name",
                display_name.clone().map(Value::from),
            );
            call("POST", "/api/v1/users", Some(body), View::Record)
        }
        UserCmd::Set {
            id,
            roles,
            email,
            password,
        } => {
            let mut body = json!({});
            set(&mut body, "roles", roles.as_deref().map(|r| json!(list(r))));
            set(&mut body, "email", email.clone().map(Value::from));
            set(&mut body, "password", secret(password)?.map(Value::from));
            call("PATCH", path(id), Some(body), View::Record)
        }
        UserCmd::Deactivate { id } => call(
            "PATCH",
            path(id),
            Some(json!({"status": "deactivated"})),
            View::Record,
        ),
        UserCmd::Reactivate { id } => call(
            "PATCH",
            path(id),
            Some(json!({"status": "active"})),
            View::Record,
        ),
        UserCmd::Token {
            id,
            label,
            expires_at,
        } => {
            let mut body = json!({ "label": label });
            set(&mut body, "expires_at", expires_at.map(Value::from));
            call(
                "POST",
                format!("{}/tokens", path(id)),
                Some(body),
                View::Record,
            )
        }
        UserCmd::Tokens { id } => call(
            "GET",
            format!("{}/tokens", path(id)),
            None,
            View::Table(TOKENS),
        ),
        UserCmd::RevokeToken { id, token_id } => call(
            "DELETE",
            format!("{}/tokens/{}", path(id), encode(token_id)),
            None,
            View::Done,
        ),
    })
}

fn set(body: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(value), Some(map)) = (value, body.as_object_mut()) {
        map.insert(key.into(), value);
    }
}

fn roles(cmd: &RoleCmd, api: &Api) -> Result<Call, AdminError> {
    Ok(match cmd {
        RoleCmd::List => call("GET", "/api/v1/roles", None, View::Table(ROLES)),
        RoleCmd::Set { name, permissions } => {
            let body = json!({"name": name, "permissions": list(permissions)});
            let path = format!("/api/v1/roles/{}", encode(name));
            match api.call("GET", &path, None) {
                Ok(_) => call("PUT", path, Some(body), View::Record),
                Err(AdminError::Api { status: 404, .. }) => {
                    call("POST", "/api/v1/roles", Some(body), View::Record)
                }
                Err(other) => return Err(other),
            }
        }
        RoleCmd::Delete { name } => call(
            "DELETE",
            format!("/api/v1/roles/{}", encode(name)),
            None,
            View::Done,
        ),
    })
}

fn accounts(cmd: &AccountCmd, api: &Api) -> Result<Call, AdminError> {
    let path = |id: &u64| format!("/api/v1/accounts/{id}");
    Ok(match cmd {
        AccountCmd::List => call("GET", "/api/v1/accounts", None, View::Table(ACCOUNTS)),
        AccountCmd::Show { id } => call("GET", path(id), None, View::Record),
        AccountCmd::Create {
            name,
            address,
            upstream,
            scope,
            send_mode,
            display_name,
        } => {
            let mut body = json!({"name": name, "address": address, "scope": {"kind": scope},
                "default_send_mode": send_mode});
            set(&mut body, "upstream", upstream.clone().map(Value::from));
            set(
                &mut body,
                "display_name",
                display_name.clone().map(Value::from),
            );
            call("POST", "/api/v1/accounts", Some(body), View::Record)
        }
        AccountCmd::Delete { id } => call("DELETE", path(id), None, View::Done),
        AccountCmd::Test { id, to } => call(
            "POST",
            format!("{}/test", path(id)),
            Some(json!({ "to": to })),
            View::Record,
        ),
        AccountCmd::Grant {
            id,
            user,
            role,
            send,
            access,
            setup,
        } => {
            let grantee = match (user, role) {
                (Some(user), _) => json!({"user": user}),
                (None, Some(role)) => json!({"role": role}),
                (None, None) => return Err(AdminError::Usage("--user or --role".into())),
            };
            let account = api.call("GET", &path(id), None)?;
            let mut grants: Vec<Value> = account["grants"].as_array().cloned().unwrap_or_default();
            grants.retain(|g| g["grantee"] != grantee);
            let mut grant = Map::new();
            grant.insert("grantee".into(), grantee);
            grant.insert("access".into(), (*access).into());
            grant.insert("setup".into(), (*setup).into());
            grant.insert("send".into(), send.clone().map_or(Value::Null, Value::from));
            grants.push(Value::Object(grant));
            call(
                "PUT",
                format!("{}/grants", path(id)),
                Some(json!({"grants": grants})),
                View::Record,
            )
        }
    })
}

fn upstreams(cmd: &UpstreamCmd) -> Result<Call, AdminError> {
    Ok(match cmd {
        UpstreamCmd::List => call("GET", "/api/v1/upstreams", None, View::Table(UPSTREAMS)),
        UpstreamCmd::Create {
            name,
            host,
            port,
            tls,
            auth,
            username,
            password,
            chunking,
        } => {
            let mut body = json!({"name": name, "kind": "smtp", "host": host, "port": port,
                "tls": tls, "auth": auth, "username": username});
            set(&mut body, "password", secret(password)?.map(Value::from));
            set(&mut body, "chunking", chunking.map(Value::from));
            call("POST", "/api/v1/upstreams", Some(body), View::Record)
        }
        UpstreamCmd::Delete { name } => call(
            "DELETE",
            format!("/api/v1/upstreams/{}", encode(name)),
            None,
            View::Done,
        ),
    })
}

fn settings(cmd: &SettingsCmd) -> Result<Call, AdminError> {
    Ok(match cmd {
        SettingsCmd::Show => call("GET", "/api/v1/settings", None, View::Record),
        SettingsCmd::Set {
            allow_personal_accounts,
            org_domains,
            public_url,
            max_users,
        } => {
            let mut body = json!({});
            set(
                &mut body,
                "allow_personal_accounts",
                allow_personal_accounts.map(Value::from),
            );
            set(
                &mut body,
                "org_domains",
                org_domains.as_deref().map(|d| json!(list(d))),
            );
            set(&mut body, "public_url", public_url.clone().map(Value::from));
            let max = match max_users.as_deref() {
                None => None,
                Some("none") => Some(Value::Null),
                Some(n) => Some(Value::from(n.parse::<u64>().map_err(|_| {
                    AdminError::Usage(format!("--max-users {n:?}: a number or none"))
                })?)),
            };
            set(&mut body, "max_users", max);
            call("PATCH", "/api/v1/settings", Some(body), View::Record)
        }
    })
}

fn directory(cmd: &DirectoryCmd, base: &'static str) -> Call {
    match cmd {
        DirectoryCmd::List => call("GET", base, None, View::Table(DIRECTORY)),
        DirectoryCmd::Create { name, description } => call(
            "POST",
            base,
            Some(json!({"name": name, "description": description})),
            View::Record,
        ),
        DirectoryCmd::Delete { name } => call(
            "DELETE",
            format!("{base}/{}", encode(name)),
            None,
            View::Done,
        ),
    }
}

fn blocklist(cmd: &BlockCmd) -> Call {
    match cmd {
        BlockCmd::List => call("GET", "/api/v1/blocklist", None, View::Table(BLOCKS)),
        BlockCmd::Add { entry, reason } => call(
            "POST",
            "/api/v1/blocklist",
            Some(json!({"entry": entry, "reason": reason})),
            View::Record,
        ),
        BlockCmd::Remove { entry } => call(
            "DELETE",
            format!("/api/v1/blocklist/{}", encode(entry)),
            None,
            View::Done,
        ),
    }
}

fn node(cmd: &NodeCmd) -> Call {
    let path = |node: &str, what: &str| format!("/api/v1/nodes/{}/{what}", encode(node));
    match cmd {
        NodeCmd::List => call("GET", "/api/v1/nodes".to_string(), None, View::Table(NODES)),
        NodeCmd::Drain { node } => call("POST", path(node, "drain"), None, View::Record),
        NodeCmd::Resume { node } => call("POST", path(node, "resume"), None, View::Record),
    }
}

fn queue(cmd: &QueueCmd) -> Call {
    let path = |id: &str| format!("/api/v1/queue/{}", encode(id));
    match cmd {
        QueueCmd::List {
            all_nodes,
            deferred,
            sender,
            recipient,
        } => {
            let q = query(&[
                ("nodes", all_nodes.then(|| "all".to_string())),
                ("deferred", deferred.then(|| "true".to_string())),
                ("sender", sender.clone()),
                ("recipient", recipient.clone()),
            ]);
            call("GET", format!("/api/v1/queue{q}"), None, View::Table(QUEUE))
        }
        QueueCmd::Show { id } => call("GET", path(id), None, View::Record),
        QueueCmd::Retry { id } => call("POST", format!("{}/retry", path(id)), None, View::Record),
        QueueCmd::Delete { id, bounce } => {
            let q = query(&[("bounce", bounce.then(|| "true".to_string()))]);
            call("DELETE", format!("{}{q}", path(id)), None, View::Record)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_and_skip_absent_values() {
        assert_eq!(
            query(&[("a", None), ("b", Some("x y&z".into()))]),
            "?b=x%20y%26z"
        );
        assert_eq!(query(&[("a", None)]), "");
        assert_eq!(list(" a, b ,,c"), ["a", "b", "c"]);
    }
}
