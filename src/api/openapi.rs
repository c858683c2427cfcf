//! The OpenAPI 3.1 document of the API, generated from the handlers' own annotations
//! (utoipa) and served at `GET /api/v1/openapi.json` without a token. CI checks it against
//! the running server (schemathesis in `scripts/interop.sh`), so it cannot drift.
//!
//! Skill groups and groups share generic handlers, which cannot carry an annotation; their
//! operations are described by the `*_doc` functions here.

use super::directory::NewEntry;
use super::problem::Problems;
use super::{
    account_choices, account_edit, account_fetch_status, account_test, accounts, archive, audit,
    backups, blocklist, dkim, explain, health, mail_config, me, my_tickets, nodes, queue,
    requesters, roles, sessions, settings, tickets, tokens, upstreams, user_edit, users, webhooks,
};
use crate::store::{Group, SkillGroup};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The whole document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Postern control API",
        description = "Users, roles, accounts and grants, upstreams, DKIM keys, settings, the queue, the blocklist, tickets, requesters, webhooks, mail configurations, backups, the archive and the audit log of a Postern mail gateway. Errors are RFC 9457 problem documents.",
        version = "1"
    ),
    modifiers(&Bearer),
    security(("bearer" = [])),
    paths(
        health::healthz, health::readyz, health::metrics,
        users::list, users::show, users::create, user_edit::patch,
        tokens::create, tokens::list, tokens::revoke, tokens::revoke_all,
        roles::list, roles::show, roles::create, roles::replace, roles::remove,
        skill_groups_list_doc, skill_groups_create_doc, skill_groups_remove_doc,
        groups_list_doc, groups_create_doc, groups_remove_doc,
        me::show, me::accounts,
        sessions::list, sessions::revoke, sessions::revoke_all, sessions::login,
        sessions::change_password,
        mail_config::show_mine, mail_config::save_mine, mail_config::show, mail_config::lock,
        mail_config::unlock,
        backups::create, backups::list, backups::show, backups::messages, backups::mbox,
        archive::list, archive::show, archive::raw,
        accounts::list, accounts::show, accounts::status, accounts::create, accounts::remove,
        account_edit::patch, account_edit::put_grants, account_test::test,
        account_choices::choices,
        account_fetch_status::show, account_fetch_status::retry, account_fetch_status::move_to,
        upstreams::list, upstreams::create, upstreams::remove,
        settings::show, settings::patch,
        explain::explain,
        blocklist::list, blocklist::add, blocklist::remove,
        dkim::list, dkim::create, dkim::show, dkim::activate, dkim::remove,
        queue::list, queue::show, queue::retry, queue::delete, nodes::list, nodes::drain, nodes::resume,
        audit::list,
        tickets::list, tickets::show, tickets::attachment, tickets::create, tickets::patch, tickets::remove,
        tickets::knowledge,
        my_tickets::list, my_tickets::show, my_tickets::attachment,
        requesters::list, requesters::block, requesters::unblock,
        webhooks::list, webhooks::create, webhooks::remove, webhooks::deliveries, webhooks::retry,
    )
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme every operation refers to.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/v1/openapi.json` — no token needed.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

macro_rules! directory_doc {
    ($list:ident, $create:ident, $remove:ident, $path:literal, $one:literal, $ty:ty) => {
        #[utoipa::path(get, path = $path, tag = "directory", responses((status = 200, body = [$ty]), Problems))]
        #[allow(dead_code)]
        fn $list() {}

        #[utoipa::path(post, path = $path, tag = "directory", request_body = NewEntry, responses((status = 201, body = $ty), Problems))]
        #[allow(dead_code)]
        fn $create() {}

        #[utoipa::path(delete, path = $one, tag = "directory", params(("name" = String, Path, description = "name")), responses((status = 204), Problems))]
        #[allow(dead_code)]
        fn $remove() {}
    };
}

directory_doc!(
    skill_groups_list_doc,
    skill_groups_create_doc,
    skill_groups_remove_doc,
    "/api/v1/skill-groups",
    "/api/v1/skill-groups/{name}",
    SkillGroup
);
directory_doc!(
    groups_list_doc,
    groups_create_doc,
    groups_remove_doc,
    "/api/v1/groups",
    "/api/v1/groups/{name}",
    Group
);
