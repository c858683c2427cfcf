//! Mail configuration and its lock (SPEC §8), through the API: a staff user saves its
//! account type and mailbox; admins lock and unlock it (a private one cannot be locked; with
//! more than one admin nobody locks or unlocks their own, a sole admin can); a locked
//! configuration is refused with 423 and the reason; everything is in the audit log.

mod common;

use common::{As, Gateway, TOKEN};
use serde_json::{json, Value};

/// A user of `kind` with `roles`, and a caller holding its token.
async fn user<'a>(gw: &'a Gateway, login: &str, kind: &str, roles: &[&str]) -> (u64, As<'a>) {
    let root = As {
        gw,
        token: TOKEN.into(),
    };
    let password = if kind == "system" {
        "a-long-system-secret-0123456789abcdef"
    } else {
        "password-123"
    };
    let (status, created) = root
        .call(
            "POST",
            "/api/v1/users",
            Some(json!({"login": login, "email": login, "kind": kind, "password": password})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_u64().unwrap();
    if !roles.is_empty() {
        let (status, body) = root
            .call(
                "PATCH",
                &format!("/api/v1/users/{id}"),
                Some(json!({"roles": roles})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, token) = root
        .call(
            "POST",
            &format!("/api/v1/users/{id}/tokens"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    (
        id,
        As {
            gw,
            token: token["token"].as_str().unwrap().to_string(),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_user_saves_its_mail_configuration_until_an_admin_locks_it() {
    let gw = Gateway::start(|_| {}).await;
    let root = As {
        gw: &gw,
        token: TOKEN.into(),
    };
    assert_eq!(
        root.call(
            "POST",
            "/api/v1/roles",
            Some(json!({"name": "admins", "permissions": ["admin"]}))
        )
        .await
        .0,
        201
    );
    let (sam_id, sam) = user(&gw, "sam@corp.example", "staff", &[]).await;
    let (_, ann) = user(&gw, "ann@customer.example", "requester", &[]).await;
    let (_, admin) = user(&gw, "boss@corp.example", "staff", &["admins"]).await;

    let (status, fresh) = sam.call("GET", "/api/v1/me/mail-config", None).await;
    assert_eq!(
        (status, fresh["account_type"].as_str(), &fresh["saved_at"]),
        (200, Some("private"), &Value::Null)
    );
    // Only staff users have one.
    let body = json!({"account_type": "complete", "mailbox": "ann@customer.example"});
    assert_eq!(
        ann.call("PUT", "/api/v1/me/mail-config", Some(body.clone()))
            .await
            .0,
        403
    );
    assert_eq!(
        root.call("PUT", "/api/v1/me/mail-config", Some(body))
            .await
            .0,
        403
    );
    let (status, bad) = sam
        .call(
            "PUT",
            "/api/v1/me/mail-config",
            Some(json!({"account_type": "complete", "mailbox": "nope"})),
        )
        .await;
    assert_eq!(
        (status, bad["errors"][0]["field"].as_str()),
        (422, Some("mailbox")),
        "{bad}"
    );

    // A private configuration cannot be locked.
    let lock = format!("/api/v1/users/{sam_id}/mail-config/lock");
    let unlock = format!("/api/v1/users/{sam_id}/mail-config/unlock");
    let (status, body) = admin.call("POST", &lock, None).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("private"),
        "{body}"
    );

    let (status, saved) = sam
        .call(
            "PUT",
            "/api/v1/me/mail-config",
            Some(json!({"account_type": "record_level", "mailbox": "sam@corp.example"})),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert!(saved["saved_at"].as_u64().is_some());
    assert_eq!(sam.call("POST", &lock, None).await.0, 403, "admins only");
    let (status, locked) = admin.call("POST", &lock, None).await;
    assert_eq!(
        (
            status,
            locked["locked"].as_bool(),
            locked["locked_by"].as_str()
        ),
        (200, Some(true), Some("boss@corp.example")),
        "{locked}"
    );
    assert_eq!(
        admin.call("POST", &lock, None).await.0,
        409,
        "already locked"
    );

    let (status, refused) = sam
        .call(
            "PUT",
            "/api/v1/me/mail-config",
            Some(json!({"account_type": "private", "mailbox": "sam@corp.example"})),
        )
        .await;
    assert_eq!(status, 423, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("locked by boss@corp.example"),
        "{refused}"
    );
    let (_, shown) = admin
        .call("GET", &format!("/api/v1/users/{sam_id}/mail-config"), None)
        .await;
    assert_eq!(
        shown["account_type"], "record_level",
        "unchanged by the refused save"
    );

    assert_eq!(admin.call("POST", &unlock, None).await.0, 200);
    assert_eq!(admin.call("POST", &unlock, None).await.0, 409, "not locked");
    assert_eq!(
        sam.call(
            "PUT",
            "/api/v1/me/mail-config",
            Some(json!({"account_type": "private", "mailbox": "sam@corp.example"}))
        )
        .await
        .0,
        200
    );

    let (_, audit) = root
        .call("GET", "/api/v1/audit?action=mail_config.", None)
        .await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "mail_config.update",
            "mail_config.lock",
            "mail_config.unlock",
            "mail_config.update"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sole_admin_locks_its_own_configuration_but_not_when_there_are_two() {
    let gw = Gateway::start(|_| {}).await;
    let root = As {
        gw: &gw,
        token: TOKEN.into(),
    };
    assert_eq!(
        root.call(
            "POST",
            "/api/v1/roles",
            Some(json!({"name": "admins", "permissions": ["admin"]}))
        )
        .await
        .0,
        201
    );
    let (first_id, first) = user(&gw, "first@corp.example", "staff", &["admins"]).await;
    let config = json!({"account_type": "complete", "mailbox": "first@corp.example"});
    assert_eq!(
        first
            .call("PUT", "/api/v1/me/mail-config", Some(config))
            .await
            .0,
        200
    );
    let lock = format!("/api/v1/users/{first_id}/mail-config/lock");
    let unlock = format!("/api/v1/users/{first_id}/mail-config/unlock");
    assert_eq!(
        first.call("POST", &lock, None).await.0,
        200,
        "a sole admin may lock its own"
    );

    let (_, second) = user(&gw, "second@corp.example", "staff", &["admins"]).await;
    let (status, body) = first.call("POST", &unlock, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("another admin"),
        "{body}"
    );
    assert_eq!(second.call("POST", &unlock, None).await.0, 200);
    assert_eq!(first.call("POST", &lock, None).await.0, 403);
    assert_eq!(second.call("POST", &lock, None).await.0, 200);
    // Not a staff user: no configuration to lock.
    let (system_id, _) = user(&gw, "bot@corp.example", "system", &[]).await;
    let (status, _) = second
        .call(
            "POST",
            &format!("/api/v1/users/{system_id}/mail-config/lock"),
            None,
        )
        .await;
    assert_eq!(status, 409);
}
