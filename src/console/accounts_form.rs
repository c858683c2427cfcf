//! The form of an email account (`/console/accounts/new`, `/console/accounts/{id}`): every
//! field of SPEC §2 — name, description, address, from address, display name, reply-to,
//! aliases, upstream, default send mode, owner (creating only), the default flag (admins)
//! and the scope, Permitted with its skill groups, roles and users as checkboxes.
//!
//! The form is turned into the API's own body (`NewAccount`, `AccountPatch`) as JSON and
//! handed to `api::accounts::create` / `api::account_edit::patch`, so the API's checks and
//! validation run unchanged; a refusal comes back beside the field it names. The form
//! leaves the grants (the grid) and the inbound settings (the helpdesk pages) alone.

use super::accounts::{body_of, choices, fetch, wire};
use super::render::{html, problem_page, redirect_with_notice, Chrome, Errors};
use super::Viewer;
use crate::api::account_choices::AccountChoices;
use crate::api::extract::Param;
use crate::api::{account_edit, accounts, Api, Problem};
use crate::store::{Account, Scope};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::Form;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The form as posted (checkbox groups repeat their name).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AccountForm {
    name: String,
    description: String,
    address: String,
    from_address: String,
    display_name: String,
    reply_to: String,
    /// One per line (or separated by commas).
    aliases: String,
    upstream: String,
    default_send_mode: String,
    owner: String,
    is_default: Option<String>,
    scope: String,
    scope_skill_groups: Vec<String>,
    scope_roles: Vec<String>,
    scope_users: Vec<String>,
}

impl AccountForm {
    /// The form filled with `account`.
    fn of(account: &Account) -> AccountForm {
        let (skill_groups, roles, users) = match &account.scope {
            Scope::Permitted {
                skill_groups,
                roles,
                users,
            } => (
                skill_groups.clone(),
                roles.clone(),
                users.iter().map(u64::to_string).collect(),
            ),
            _ => Default::default(),
        };
        AccountForm {
            name: account.name.clone(),
            description: account.description.clone(),
            address: account.address.clone(),
            from_address: account.from_address.clone().unwrap_or_default(),
            display_name: account.display_name.clone().unwrap_or_default(),
            reply_to: account.reply_to.clone().unwrap_or_default(),
            aliases: account.aliases.join("\n"),
            upstream: account.upstream.clone(),
            default_send_mode: wire(&account.default_send_mode),
            owner: account.owner.map(|o| o.to_string()).unwrap_or_default(),
            is_default: account.is_default.then(|| "on".to_string()),
            scope: scope_kind(&account.scope).to_string(),
            scope_skill_groups: skill_groups,
            scope_roles: roles,
            scope_users: users,
        }
    }

    /// A new account's form: a shared account for those who may make one, else the
    /// viewer's own personal account.
    fn fresh(viewer: &Viewer) -> AccountForm {
        let personal = !viewer.has("shared_account_setup");
        AccountForm {
            default_send_mode: "none".into(),
            scope: "all_staff".into(),
            owner: match personal {
                true => viewer.user.id.to_string(),
                false => String::new(),
            },
            ..AccountForm::default()
        }
    }

    /// The API's JSON body. `creating`: a `NewAccount` (with the owner), else an
    /// `AccountPatch`; `admin`: the default flag is sent (others may not change it).
    fn to_json(&self, creating: bool, admin: bool) -> Result<Value, Problem> {
        let text = |value: &str| match value.trim() {
            "" => Value::Null,
            value => Value::String(value.to_string()),
        };
        let aliases: Vec<&str> = self
            .aliases
            .split(['\n', ',', ';'])
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        let mut body = Map::new();
        body.insert("name".into(), json!(self.name));
        body.insert("description".into(), json!(self.description));
        body.insert("address".into(), json!(self.address.trim()));
        body.insert("from_address".into(), text(&self.from_address));
        body.insert("display_name".into(), text(&self.display_name));
        body.insert("reply_to".into(), text(&self.reply_to));
        body.insert("aliases".into(), json!(aliases));
        if !self.upstream.is_empty() {
            body.insert("upstream".into(), json!(self.upstream));
        }
        body.insert("default_send_mode".into(), json!(self.default_send_mode));
        body.insert("scope".into(), self.scope_json()?);
        if creating {
            let owner = match self.owner.trim() {
                "" => Value::Null,
                id => json!(id
                    .parse::<u64>()
                    .map_err(|_| Problem::invalid("owner", "choose a user from the list"))?),
            };
            body.insert("owner".into(), owner);
        }
        if admin {
            body.insert("default".into(), json!(self.is_default.is_some()));
        }
        Ok(Value::Object(body))
    }

    fn scope_json(&self) -> Result<Value, Problem> {
        if self.scope != "permitted" {
            return Ok(json!({ "kind": self.scope }));
        }
        let users = self
            .scope_users
            .iter()
            .map(|u| u.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Problem::invalid("scope", "choose users from the list"))?;
        Ok(json!({
            "kind": "permitted",
            "skill_groups": self.scope_skill_groups,
            "roles": self.scope_roles,
            "users": users,
        }))
    }

    fn has_skill_group(&self, name: &str) -> bool {
        self.scope_skill_groups.iter().any(|n| n == name)
    }

    fn has_role(&self, name: &str) -> bool {
        self.scope_roles.iter().any(|n| n == name)
    }

    fn has_user(&self, id: &u64) -> bool {
        self.scope_users.iter().any(|n| *n == id.to_string())
    }
}

/// The wire name of a scope's kind.
fn scope_kind(scope: &Scope) -> &'static str {
    match scope {
        Scope::Everyone => "everyone",
        Scope::System => "system",
        Scope::AllStaff => "all_staff",
        Scope::Permitted { .. } => "permitted",
    }
}

/// The scope kinds the form offers: (value, label, explanation).
const SCOPES: &[(&str, &str, &str)] = &[
    (
        "everyone",
        "Everyone",
        "every principal, requesters with a grant, system modules",
    ),
    ("system", "System", "system principals only"),
    ("all_staff", "All staff", "every staff user"),
    (
        "permitted",
        "Permitted",
        "the skill groups, roles and users ticked below",
    ),
];

/// The send modes of users without a grant: (value, label).
const SEND_MODES: &[(&str, &str)] = &[
    ("none", "None: only explicit grants may send"),
    ("send_as", "Send as"),
    ("send_on_behalf", "Send on behalf"),
];

/// One text field of the form.
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
    /// `text`, `email` or `textarea`.
    pub kind: &'static str,
    pub hint: &'static str,
    pub required: bool,
    pub error: Option<String>,
}

impl Field {
    /// A field named `name` showing `value`, with the reason `errors` gives for it.
    pub fn new(
        (name, label, kind): (&'static str, &'static str, &'static str),
        value: &str,
        hint: &'static str,
        required: bool,
        errors: &Errors,
    ) -> Field {
        Field {
            name,
            label,
            value: value.to_string(),
            kind,
            hint,
            required,
            error: errors.of(name).map(str::to_string),
        }
    }

    /// The ids of the hint and the error, for `aria-describedby`.
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.hint.is_empty() {
            ids.push(format!("f-{}-hint", self.name));
        }
        if self.error.is_some() {
            ids.push(format!("f-{}-error", self.name));
        }
        ids.join(" ")
    }
}

#[derive(Template)]
#[template(path = "console/accounts/form.html")]
struct FormPage {
    chrome: Chrome,
    /// Set when editing.
    id: Option<u64>,
    action: String,
    fields: Vec<Field>,
    form: AccountForm,
    choices: AccountChoices,
    /// The owner as shown when editing (fixed at creation).
    owner_shown: String,
    admin: bool,
    /// The viewer, offered as owner when the user list is not available.
    viewer_id: u64,
    viewer_listed: bool,
    errors: Errors,
    scopes: &'static [(&'static str, &'static str, &'static str)],
    send_modes: &'static [(&'static str, &'static str)],
}

impl FormPage {
    fn new(viewer: &Viewer, id: Option<u64>, form: AccountForm, choices: AccountChoices) -> Self {
        let (title, action) = match id {
            Some(id) => (
                format!("Account {}", form.name),
                format!("/console/accounts/{id}"),
            ),
            None => (
                "New email account".to_string(),
                "/console/accounts/new".to_string(),
            ),
        };
        let mut choices = choices;
        if !form.upstream.is_empty() && !choices.upstreams.contains(&form.upstream) {
            choices.upstreams.push(form.upstream.clone());
        }
        let owner_shown = owner_label(&form.owner, &choices, viewer);
        FormPage {
            chrome: Chrome::new(viewer, title, "/console/accounts"),
            id,
            action,
            fields: Vec::new(),
            owner_shown,
            admin: viewer.has("admin"),
            viewer_id: viewer.user.id,
            viewer_listed: choices.users.iter().any(|u| u.id == viewer.user.id),
            errors: Errors::none(),
            scopes: SCOPES,
            send_modes: SEND_MODES,
            choices,
            form,
        }
    }

    /// Renders with `errors` beside their fields.
    fn render(mut self, status: StatusCode, errors: Errors) -> Response {
        let f = &self.form;
        let e = &errors;
        self.fields = vec![
            Field::new(
                ("name", "Friendly name", "text"),
                &f.name,
                "Shown in lists.",
                true,
                e,
            ),
            Field::new(
                ("description", "Description", "textarea"),
                &f.description,
                "",
                false,
                e,
            ),
            Field::new(
                ("address", "Mailbox address", "text"),
                &f.address,
                "The real mailbox at the upstream.",
                false,
                e,
            ),
            Field::new(
                ("from_address", "From address", "text"),
                &f.from_address,
                "Optional: the address written to From instead of the mailbox's.",
                false,
                e,
            ),
            Field::new(
                ("display_name", "Display name", "text"),
                &f.display_name,
                "Optional: the name written to From (else the client's).",
                false,
                e,
            ),
            Field::new(
                ("reply_to", "Reply-To", "text"),
                &f.reply_to,
                "Optional: replaces the client's Reply-To.",
                false,
                e,
            ),
            Field::new(
                ("aliases", "Aliases", "textarea"),
                &f.aliases,
                "Other addresses that select this account, one per line.",
                false,
                e,
            ),
        ];
        self.errors = errors;
        html(status, &self)
    }
}

/// Who owns the account, as the form shows it.
fn owner_label(owner: &str, choices: &AccountChoices, viewer: &Viewer) -> String {
    let Ok(id) = owner.parse::<u64>() else {
        return "Nobody: a shared account".into();
    };
    if id == viewer.user.id {
        return format!("{} (you)", viewer.user.login);
    }
    choices
        .users
        .iter()
        .find(|u| u.id == id)
        .map_or_else(|| format!("user {id}"), |u| u.login.clone())
}

/// `GET /console/accounts/new`.
pub async fn new_form(State(api): State<Api>, viewer: Viewer) -> Response {
    let choices = choices(&api, &viewer).await;
    let form = AccountForm::fresh(&viewer);
    FormPage::new(&viewer, None, form, choices).render(StatusCode::OK, Errors::none())
}

/// `POST /console/accounts/new`.
pub async fn create(
    State(api): State<Api>,
    viewer: Viewer,
    Form(form): Form<AccountForm>,
) -> Response {
    let created = match form.to_json(true, viewer.has("admin")).and_then(body_of) {
        Ok(body) => accounts::create(viewer.caller(), State(api.clone()), body).await,
        Err(problem) => Err(problem),
    };
    match created {
        Ok((_, account)) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/accounts/{}", account.id),
            &format!("Account {} created", account.name),
        ),
        Err(problem) => {
            let choices = choices(&api, &viewer).await;
            FormPage::new(&viewer, None, form, choices)
                .render(status_of(&problem), Errors::from_problem(&problem))
        }
    }
}

/// `GET /console/accounts/{id}`.
pub async fn edit_form(
    State(api): State<Api>,
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Response {
    let account = match fetch(&api, &viewer, &raw).await {
        Ok(account) => account,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let choices = choices(&api, &viewer).await;
    let form = AccountForm::of(&account);
    FormPage::new(&viewer, Some(account.id), form, choices).render(StatusCode::OK, Errors::none())
}

/// `POST /console/accounts/{id}`.
pub async fn save(
    State(api): State<Api>,
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(mut form): Form<AccountForm>,
) -> Response {
    let account = match fetch(&api, &viewer, &raw).await {
        Ok(account) => account,
        Err(problem) => return problem_page(&viewer, &problem),
    };
    let saved = match form.to_json(false, viewer.has("admin")).and_then(body_of) {
        Ok(body) => {
            account_edit::patch(viewer.caller(), State(api.clone()), Param(account.id), body).await
        }
        Err(problem) => Err(problem),
    };
    match saved {
        Ok(saved) => redirect_with_notice(
            &api.state.console.settings,
            &format!("/console/accounts/{}", saved.id),
            &format!("Account {} saved", saved.name),
        ),
        Err(problem) => {
            form.owner = account.owner.map(|o| o.to_string()).unwrap_or_default();
            let choices = choices(&api, &viewer).await;
            FormPage::new(&viewer, Some(account.id), form, choices)
                .render(status_of(&problem), Errors::from_problem(&problem))
        }
    }
}

/// The HTTP status of a problem.
pub(super) fn status_of(problem: &Problem) -> StatusCode {
    StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
