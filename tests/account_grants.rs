//! Changing an account's grants never gives the caller a right it does not hold (SPEC §2):
//! a holder of a `setup` grant may hand rights to others, but not `send_as` (or access)
//! to itself or to a role it holds, neither through `PUT …/grants` nor through `PATCH`
//! (grants, scope, default send mode) — unless it is an admin or holds
//! `shared_account_setup`. A refusal is a 403 problem with the reason and changes nothing.

mod common;

use common::{http, As, Client, Gateway, TOKEN};
use serde_json::{json, Value};

/// A staff user (password `<login>-password`) with a token, and its id.
async fn staff<'a>(gw: &'a Gateway, login: &str) -> (u64, As<'a>) {
    let user = gw
        .create_user(login, "staff", &format!("{login}-password"))
        .await;
    let id = user["id"].as_u64().unwrap();
    let path = format!("/api/v1/users/{id}/tokens");
    let (status, text) = http(gw.running.api, "POST", &path, Some(TOKEN), Some("{}")).await;
    assert_eq!(status, 201, "{text}");
    let token = serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    (id, As { gw, token })
}

fn admin(gw: &Gateway) -> As<'_> {
    As {
        gw,
        token: TOKEN.into(),
    }
}

/// Asserts a 403 problem document whose detail contains every one of `words`.
fn refused(answer: (u16, Value), words: &[&str]) {
    let (status, doc) = answer;
    assert_eq!(status, 403, "{doc}");
    assert_eq!(doc["status"], 403, "a problem document: {doc}");
    let detail = doc["detail"].as_str().unwrap_or_default();
    for word in words {
        assert!(detail.contains(word), "{word:?} not in {doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_grant_cannot_grant_its_holder_more() {
    let gw = Gateway::start(|_| {}).await;
    let (pat_id, pat) = staff(&gw, "pat@example.com").await;
    let (kim_id, _) = staff(&gw, "kim@example.com").await;
    let (lead_id, lead) = staff(&gw, "lead@example.com").await;
    for (role, permissions, user) in [
        ("agents", json!([]), pat_id),
        ("account-admins", json!(["shared_account_setup"]), lead_id),
    ] {
        let body = json!({"name": role, "permissions": permissions});
        assert_eq!(
            admin(&gw).call("POST", "/api/v1/roles", Some(body)).await.0,
            201
        );
        let path = format!("/api/v1/users/{user}");
        let roles = json!({"roles": [role]});
        assert_eq!(admin(&gw).call("PATCH", &path, Some(roles)).await.0, 200);
    }
    let account = json!({"name": "Support", "address": "support@example.com", "upstream": "local",
        "scope": {"kind": "all_staff"}, "default_send_mode": "none"});
    let (status, support) = admin(&gw)
        .call("POST", "/api/v1/accounts", Some(account))
        .await;
    assert_eq!(status, 201, "{support}");
    let path = format!("/api/v1/accounts/{}", support["id"]);
    let grants = format!("{path}/grants");
    let setup = json!({"grantee": {"user": pat_id}, "setup": true});
    let (status, body) = admin(&gw)
        .call("PUT", &grants, Some(json!([setup.clone()])))
        .await;
    assert_eq!(status, 200, "{body}");

    // To itself, to a role it holds, through PATCH's grants or default send mode: refused.
    let to_self = json!({"grantee": {"user": pat_id}, "setup": true, "send": "send_as"});
    refused(
        pat.call("PUT", &grants, Some(json!([to_self.clone()])))
            .await,
        &["send_as", "shared_account_setup", "Support"],
    );
    let to_role = json!({"grantee": {"role": "agents"}, "send": "send_on_behalf", "access": true});
    refused(
        pat.call(
            "PUT",
            &grants,
            Some(json!({"grants": [setup.clone(), to_role]})),
        )
        .await,
        &["send_on_behalf", "access"],
    );
    refused(
        pat.call("PATCH", &path, Some(json!({"grants": [to_self]})))
            .await,
        &["send_as"],
    );
    refused(
        pat.call(
            "PATCH",
            &path,
            Some(json!({"default_send_mode": "send_as"})),
        )
        .await,
        &["send_as"],
    );
    // Nothing changed, and pat still may not send as support@.
    let (_, now) = admin(&gw).call("GET", &path, None).await;
    assert_eq!(
        now["grants"],
        json!([{"grantee": {"user": pat_id}, "access": false,
        "send": null, "setup": true}]),
        "{now}"
    );
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("pat@example.com", "pat@example.com-password").await;
    c.expect("MAIL FROM:<support@example.com>", 550).await;

    // Handing rights to someone else is what the setup grant is for.
    let to_kim = json!({"grantee": {"user": kim_id}, "send": "send_as"});
    let (status, body) = pat
        .call("PUT", &grants, Some(json!([setup.clone(), to_kim.clone()])))
        .await;
    assert_eq!(status, 200, "{body}");
    // shared_account_setup (as admin) may give itself anything.
    let lead_too = json!({"grantee": {"user": lead_id}, "send": "send_as"});
    let (status, body) = lead
        .call("PUT", &grants, Some(json!([setup, to_kim, lead_too])))
        .await;
    assert_eq!(status, 200, "{body}");

    // Audited as before: the two changes made, none of the refusals.
    let (_, audit) = admin(&gw)
        .call("GET", "/api/v1/audit?action=account.", None)
        .await;
    let actors: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actors,
        [
            ("account.create", "admin-token"),
            ("account.grants", "admin-token"),
            ("account.grants", "pat@example.com"),
            ("account.grants", "lead@example.com"),
        ]
    );
}
