//! The send-as decision rules (SPEC §2–§3), table-driven: every scope × principal kind ×
//! grant × default send mode, checked against the SPEC's sentences; then literal rows with
//! the exact reply texts.

use postern::policy::{admit, check_envelope, decide, Decision, Refusal, SendRight, Snapshot};
use postern::store::{
    Account, CreatedVia, DefaultSendMode, Grant, Grantee, Role, Scope, SendMode, Settings, User,
    UserKind, UserStatus,
};

const SHARED: &str = "support@example.com";

fn user(id: u64, kind: UserKind, roles: &[&str], skills: &[&str]) -> User {
    User {
        id,
        login: format!("user{id}"),
        email: format!("user{id}@example.com"),
        display_name: format!("User {id}"),
        kind,
        status: UserStatus::Active,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        skill_groups: skills.iter().map(|s| s.to_string()).collect(),
        group: None,
        is_default_admin: false,
        created_via: CreatedVia::Api,
        password_hash: None,
        secret_sha256: None,
        created_at: 0,
        reactivated_at_ms: None,
    }
}

fn account(
    id: u64,
    address: &str,
    scope: Scope,
    grants: Vec<Grant>,
    mode: DefaultSendMode,
) -> Account {
    Account {
        id,
        name: format!("acct{id}"),
        description: String::new(),
        address: address.into(),
        from_address: None,
        display_name: None,
        reply_to: None,
        aliases: vec![],
        upstream: "local".into(),
        owner: None,
        is_default: false,
        scope,
        grants,
        default_send_mode: mode,
        inbound: None,
        sent_copy: None,
        status: Default::default(),
    }
}

fn default_account() -> Account {
    Account {
        name: "default".into(),
        is_default: true,
        ..account(1, "", Scope::AllStaff, vec![], DefaultSendMode::SendAs)
    }
}

fn grant(grantee: Grantee, send: SendMode) -> Grant {
    Grant {
        grantee,
        access: false,
        send: Some(send),
        setup: false,
    }
}

#[derive(Debug, Clone, Copy)]
enum GrantCase {
    None,
    UserAs,
    UserOnBehalf,
    RoleOnBehalf,
    RoleAsUserOnBehalf,
}

fn scopes() -> Vec<(&'static str, Scope)> {
    vec![
        ("everyone", Scope::Everyone),
        ("system", Scope::System),
        ("all_staff", Scope::AllStaff),
        (
            "permitted/skill",
            Scope::Permitted {
                skill_groups: vec!["tier2".into()],
                roles: vec![],
                users: vec![],
            },
        ),
        (
            "permitted/role",
            Scope::Permitted {
                skill_groups: vec![],
                roles: vec!["agent".into()],
                users: vec![],
            },
        ),
        (
            "permitted/user",
            Scope::Permitted {
                skill_groups: vec![],
                roles: vec![],
                users: vec![7],
            },
        ),
        (
            "permitted/other",
            Scope::Permitted {
                skill_groups: vec!["sales".into()],
                roles: vec!["boss".into()],
                users: vec![99],
            },
        ),
    ]
}

/// The SPEC's rules, stated plainly: the oracle for the table.
fn expected(
    scope: &str,
    kind: UserKind,
    grant: GrantCase,
    mode: DefaultSendMode,
) -> Option<SendRight> {
    let staff = kind == UserKind::Staff;
    let admitted = match scope {
        "everyone" => true,
        "system" => kind == UserKind::System,
        "all_staff" => staff,
        // the principal (id 7) is in skill group tier2 and has role agent
        "permitted/skill" | "permitted/role" => staff,
        "permitted/user" => true,
        _ => false,
    };
    if !admitted {
        return None;
    }
    let granted = match grant {
        GrantCase::None => None,
        GrantCase::UserAs | GrantCase::RoleAsUserOnBehalf => Some(SendRight::SendAs),
        GrantCase::UserOnBehalf | GrantCase::RoleOnBehalf => Some(SendRight::SendOnBehalf),
    };
    match (granted, kind, mode) {
        (Some(right), _, _) => Some(right),
        (None, UserKind::Requester, _) => None,
        (None, _, DefaultSendMode::None) => None,
        (None, _, DefaultSendMode::SendAs) => Some(SendRight::SendAs),
        (None, _, DefaultSendMode::SendOnBehalf) => Some(SendRight::SendOnBehalf),
    }
}

#[test]
fn every_scope_kind_grant_and_default_mode() {
    let kinds = [UserKind::Staff, UserKind::Requester, UserKind::System];
    let grants = [
        GrantCase::None,
        GrantCase::UserAs,
        GrantCase::UserOnBehalf,
        GrantCase::RoleOnBehalf,
        GrantCase::RoleAsUserOnBehalf,
    ];
    let modes = [
        DefaultSendMode::SendAs,
        DefaultSendMode::SendOnBehalf,
        DefaultSendMode::None,
    ];
    let mut rows = 0;
    for (scope_name, scope) in scopes() {
        for kind in kinds {
            for grant_case in grants {
                for mode in modes {
                    let grants = match grant_case {
                        GrantCase::None => vec![],
                        GrantCase::UserAs => vec![grant(Grantee::User(7), SendMode::SendAs)],
                        GrantCase::UserOnBehalf => {
                            vec![grant(Grantee::User(7), SendMode::SendOnBehalf)]
                        }
                        GrantCase::RoleOnBehalf => {
                            vec![grant(Grantee::Role("agent".into()), SendMode::SendOnBehalf)]
                        }
                        GrantCase::RoleAsUserOnBehalf => vec![
                            grant(Grantee::User(7), SendMode::SendOnBehalf),
                            grant(Grantee::Role("AGENT".into()), SendMode::SendAs),
                        ],
                    };
                    let snap = Snapshot::build(
                        vec![user(7, kind, &["agent"], &["tier2"])],
                        vec![Role {
                            name: "agent".into(),
                            permissions: vec![],
                        }],
                        vec![
                            default_account(),
                            account(2, SHARED, scope.clone(), grants, mode),
                        ],
                        Settings::default(),
                    );
                    let got = decide(&snap, 7, SHARED, None);
                    let want = expected(scope_name, kind, grant_case, mode);
                    let case = format!("{scope_name} {kind:?} {grant_case:?} {mode:?}");
                    quietly_the_same(&got, &admit(&snap, 7, SHARED, None), &case);
                    match (want, got) {
                        (Some(right), Ok(d)) => {
                            assert_eq!(d.right, right, "{case}: {:?}", d.trail);
                            assert_eq!(d.account.id, 2, "{case}");
                        }
                        (None, Err(r)) => {
                            assert!(
                                r.reply.starts_with(
                                    "550 5.7.1 <user7> may not send as <support@example.com> ("
                                ),
                                "{case}: {}",
                                r.reply
                            );
                        }
                        (want, got) => panic!("{case}: wanted {want:?}, got {got:?}"),
                    }
                    // The same verdict at MAIL FROM.
                    assert_eq!(
                        check_envelope(&snap, 7, SHARED).is_ok(),
                        want.is_some(),
                        "{case} at MAIL FROM"
                    );
                    rows += 1;
                }
            }
        }
    }
    assert_eq!(rows, 7 * 3 * 5 * 3);
}

fn snapshot() -> Snapshot {
    let mut personal = account(
        3,
        "alice.private@example.com",
        Scope::System,
        vec![],
        DefaultSendMode::None,
    );
    personal.owner = Some(10);
    let mut shared = account(
        4,
        "team@example.com",
        Scope::AllStaff,
        vec![],
        DefaultSendMode::SendOnBehalf,
    );
    shared.from_address = Some("Team@Example.com".into());
    shared.aliases = vec!["helpdesk@example.com".into()];
    let notify = account(
        5,
        "notify@example.com",
        Scope::System,
        vec![],
        DefaultSendMode::SendAs,
    );
    let mut alice = user(10, UserKind::Staff, &[], &[]);
    alice.login = "alice".into();
    alice.email = "alice@example.com".into();
    let mut gone = user(11, UserKind::Staff, &[], &[]);
    gone.status = UserStatus::Deactivated;
    let mut app = user(12, UserKind::System, &[], &[]);
    app.login = "app".into();
    let mut bob = user(13, UserKind::Staff, &[], &[]);
    bob.login = "bob".into();
    bob.email = "bob@example.com".into();
    Snapshot::build(
        vec![
            alice,
            gone,
            app,
            bob,
            user(14, UserKind::Requester, &[], &[]),
        ],
        vec![],
        vec![default_account(), personal, shared, notify],
        Settings::default(),
    )
}

/// The SMTP path's `admit` reaches the verdict `decide` reaches, without the trail.
fn quietly_the_same(
    traced: &Result<Decision<'_>, Refusal>,
    quiet: &Result<Decision<'_>, Refusal>,
    case: &str,
) {
    match (traced, quiet) {
        (Ok(traced), Ok(quiet)) => {
            assert!(!traced.trail.is_empty(), "{case}");
            assert!(quiet.trail.is_empty(), "{case}: {:?}", quiet.trail);
            assert_eq!(
                (traced.right, traced.account.id, traced.user.id),
                (quiet.right, quiet.account.id, quiet.user.id),
                "{case}"
            );
        }
        (Err(traced), Err(quiet)) => {
            assert!(!traced.trail.is_empty(), "{case}");
            assert!(quiet.trail.is_empty(), "{case}: {:?}", quiet.trail);
            assert_eq!(
                (&traced.reply, &traced.rule),
                (&quiet.reply, &quiet.rule),
                "{case}"
            );
        }
        _ => panic!("{case}: decide and admit disagree"),
    }
}

#[test]
fn literal_rows_with_exact_replies() {
    let snap = snapshot();
    let ok = |user: u64, from: &str, hint: Option<&str>| {
        decide(&snap, user, from, hint).map(|d| {
            (
                d.account.name.clone(),
                d.right,
                d.from_address().to_string(),
                d.envelope_from().to_string(),
            )
        })
    };
    let refused = |user: u64, from: &str, hint: Option<&str>| {
        decide(&snap, user, from, hint).unwrap_err().reply
    };

    // The principal's own address: its personal account (owner: send_as whatever the scope)...
    assert_eq!(
        ok(10, "ALICE@example.com", None).unwrap(),
        (
            "acct3".into(),
            SendRight::SendAs,
            "alice.private@example.com".into(),
            "alice.private@example.com".into()
        )
    );
    // ...or the default account, which sends as the principal itself.
    assert_eq!(
        ok(13, "bob@example.com", None).unwrap(),
        (
            "default".into(),
            SendRight::Myself,
            "bob@example.com".into(),
            "bob@example.com".into()
        )
    );
    // address, from_address and aliases all select the account; local parts compare case-insensitively.
    assert_eq!(ok(13, "HELPDESK@example.com", None).unwrap().0, "acct4");
    assert_eq!(
        ok(13, "team@EXAMPLE.com", None).unwrap(),
        (
            "acct4".into(),
            SendRight::SendOnBehalf,
            "Team@Example.com".into(),
            "team@example.com".into()
        )
    );
    // X-Postern-Account by name or id wins over the From address.
    assert_eq!(ok(13, "bob@example.com", Some("acct4")).unwrap().0, "acct4");
    assert_eq!(ok(13, "bob@example.com", Some("4")).unwrap().0, "acct4");
    assert_eq!(
        refused(13, "bob@example.com", Some("nope")),
        "550 5.7.1 no email account named \"nope\""
    );
    // Unknown From.
    assert_eq!(
        refused(13, "ceo@example.com", None),
        "550 5.7.1 no email account for <ceo@example.com>"
    );
    // Someone else's personal account.
    assert_eq!(refused(13, "alice.private@example.com", None), "550 5.7.1 <bob> may not send as <alice.private@example.com> (scope system does not admit a staff principal)");
    // System modules: not through all_staff, yes through a system account.
    assert_eq!(refused(12, "team@example.com", None), "550 5.7.1 <app> may not send as <team@example.com> (scope all_staff does not admit a system principal)");
    assert_eq!(
        ok(12, "notify@example.com", None).unwrap().1,
        SendRight::SendAs
    );
    // A system principal's own address goes to the default account, which is all_staff.
    assert!(refused(12, "user12@example.com", None)
        .contains("scope all_staff does not admit a system principal"));
    // A requester never sends without a grant.
    assert!(refused(14, "user14@example.com", None)
        .contains("scope all_staff does not admit a requester principal"));
    // A deactivated user cannot send at all.
    assert!(refused(11, "user11@example.com", None).contains("not an active user"));
    // The envelope: null sender passes to the header check; others follow the same rules.
    assert!(check_envelope(&snap, 12, "").is_ok());
    assert!(check_envelope(&snap, 12, "team@example.com").is_err());
    // The trail names every step.
    let trail = decide(&snap, 13, "team@example.com", None).unwrap().trail;
    assert_eq!(
        trail,
        vec![
            "From <team@example.com> is an address of account \"acct4\"".to_string(),
            "scope all_staff admits a staff principal".into(),
            "no grant: default_send_mode send_on_behalf".into(),
            "admitted: send_on_behalf through account \"acct4\"".into(),
        ]
    );
}
