//! One canonical form of an address wherever addresses are compared (SPEC §12): a quoted
//! dot-atom local part is the bare one, case does not count, a domain is the same in U- or
//! A-labels and with a trailing dot. Through real sockets: the blocklist on the inbound
//! listener (envelope and header), requester creation, a staff user's own address on
//! submission. Then a property test: every spelling of one address gets the same decision
//! from every place that compares addresses.

mod common;

use common::helpdesk::{api, helpdesk, message, send, settle, tickets, user, SUPPORT};
use common::{Client, Gateway};
use postern::inbound::{knows, login_for};
use postern::policy::address::{domain_in, key};
use postern::policy::{admit, SendRight, Snapshot};
use postern::store::{
    Account, BlockEntry, BlockKind, CreatedVia, DefaultSendMode, Origin, Scope, Settings, Ticket,
    TicketStatus, User, UserKind, UserStatus,
};
use proptest::prelude::*;
use serde_json::{json, Value};

async fn block(gw: &Gateway, entry: &str) -> Value {
    let (status, body) = api(
        gw,
        "POST",
        "/api/v1/blocklist",
        Some(json!({"entry": entry})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// The reply to `MAIL FROM:<sender> params` on the inbound listener.
async fn mail_from(gw: &Gateway, sender: &str, params: &str) -> common::Reply {
    let mut c = Client::connect(gw.addr("inbound")).await;
    c.expect("EHLO mx.sender.example", 250).await;
    let reply = c.cmd(&format!("MAIL FROM:<{sender}>{params}")).await;
    c.expect("QUIT", 221).await;
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_address_is_refused_in_every_spelling_and_leaves_nothing_behind() {
    let gw = helpdesk().await;
    assert_eq!(
        block(&gw, "ann@customer.example").await["entry"],
        "ann@customer.example"
    );
    // The same entry spelled another way is the same entry.
    let (status, _) = api(
        &gw,
        "POST",
        "/api/v1/blocklist",
        Some(json!({"entry": "<\"ANN\"@Customer.Example.>"})),
    )
    .await;
    assert_eq!(status, 409);

    for sender in [
        "\"ann\"@customer.example",
        "\"a\\nn\"@customer.example",
        "\"Ann\"@CUSTOMER.example",
    ] {
        let reply = mail_from(&gw, sender, "").await;
        assert_eq!(reply.code, 550, "{sender}: {reply:?}");
        assert!(reply.text.starts_with("550 5.7.1"), "{reply:?}");
    }
    // An innocent envelope sender with the header From spelled with quotes: refused at the
    // end of data.
    for from in ["\"ann\"@customer.example", "Ann <\"ANN\"@Customer.Example>"] {
        let reply = send(
            &gw,
            "relay@forwarder.example",
            SUPPORT,
            &message(from, "hello", "", "x"),
        )
        .await;
        assert_eq!(reply.code, 550, "{from}: {reply:?}");
        assert!(reply.text.starts_with("550 5.7.1"), "{reply:?}");
    }
    let (_, queue) = api(&gw, "GET", "/api/v1/queue", None).await;
    assert_eq!(queue, json!([]));
    assert!(tickets(&gw).await.is_empty());
    let (_, users) = api(&gw, "GET", "/api/v1/users", None).await;
    let requesters = users.as_array().unwrap().iter();
    assert!(
        requesters
            .clone()
            .all(|u| !u["login"].as_str().unwrap().contains("customer.example")),
        "{users}"
    );

    // A domain entry written in U-labels blocks its A-label spelling, and the reverse.
    assert_eq!(
        block(&gw, "BÜCHER.example.").await["entry"],
        "xn--bcher-kva.example"
    );
    let reply = mail_from(&gw, "x@mail.xn--bcher-kva.example", "").await;
    assert_eq!(reply.code, 550, "{reply:?}");
    let reply = mail_from(&gw, "x@Bücher.example", " SMTPUTF8").await;
    assert_eq!(reply.code, 550, "{reply:?}");
    assert_eq!(mail_from(&gw, "x@buecher.example", "").await.code, 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sender_is_one_requester_whatever_the_spelling() {
    let gw = helpdesk().await;
    let quoted = "\"bob\"@customer.example";
    let reply = send(&gw, quoted, SUPPORT, &message(quoted, "first", "", "x")).await;
    assert_eq!(reply.code, 250, "{reply:?}");
    settle(&gw).await;
    let bob = user(&gw, "bob@customer.example")
        .await
        .expect("requester bob@customer.example");
    assert_eq!(bob["email"], "bob@customer.example");

    let shouted = "bob@CUSTOMER.example";
    let from = format!("Bob <{shouted}>");
    let reply = send(&gw, shouted, SUPPORT, &message(&from, "second", "", "y")).await;
    assert_eq!(reply.code, 250, "{reply:?}");
    settle(&gw).await;
    let (_, users) = api(&gw, "GET", "/api/v1/users", None).await;
    let bobs: Vec<&Value> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["login"].as_str().unwrap().to_lowercase().contains("bob"))
        .collect();
    assert_eq!(bobs.len(), 1, "{users}");
    let tickets = tickets(&gw).await;
    assert_eq!(tickets.len(), 2, "{tickets:?}");
    assert!(
        tickets.iter().all(|t| t["requester"] == bob["id"]),
        "{tickets:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_user_may_send_as_her_own_address_in_any_spelling() {
    let gw = Gateway::start(|_| {}).await;
    gw.create_user("ann@example.com", "staff", "ann-password-1")
        .await;
    let mut c = Client::connect(gw.addr("plain")).await;
    c.login("ann@example.com", "ann-password-1").await;
    c.expect("MAIL FROM:<\"Ann\"@Example.COM>", 250).await;
    c.expect("RCPT TO:<friend@example.net>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: Ann <\"Ann\"@Example.COM>\r\nSubject: hi\r\n\r\nhello\r\n")
        .await;
    let reply = c.cmd(".").await;
    assert_eq!(reply.code, 250, "{reply:?}");
    let sent = gw.wait_outbox(1).await;
    let text = String::from_utf8_lossy(&sent[0]);
    assert!(text.contains("ann@example.com"), "{text}");
}

// ---- every place that compares addresses, for every spelling ----

/// (U-label, A-label) pairs for the domain's first label.
const LABELS: &[(&str, &str)] = &[
    ("bücher", "xn--bcher-kva"),
    ("münchen", "xn--mnchen-3ya"),
    ("customer", "customer"),
    ("例え", "xn--r8jz45g"),
];

/// One address: a dot-atom local part and a domain, with the ways to spell it.
#[derive(Debug, Clone)]
struct Spelled {
    local: String,
    label: usize,
}

/// How one spelling writes the address.
#[derive(Debug, Clone, Copy)]
struct Spelling {
    quoted: bool,
    escaped: bool,
    upper_local: bool,
    upper_domain: bool,
    a_label: bool,
    trailing_dot: bool,
    angle: bool,
}

impl Spelled {
    fn write(&self, s: Spelling) -> String {
        let mut local = match s.upper_local {
            true => self.local.to_uppercase(),
            false => self.local.clone(),
        };
        if s.escaped {
            local = local.chars().map(|c| format!("\\{c}")).collect();
        }
        if s.quoted || s.escaped {
            local = format!("\"{local}\"");
        }
        let (u, a) = LABELS[self.label];
        let mut domain = format!("{}.example", if s.a_label { a } else { u });
        if s.upper_domain {
            domain = domain.to_uppercase();
        }
        if s.trailing_dot {
            domain.push('.');
        }
        match s.angle {
            true => format!("Someone <{local}@{domain}>"),
            false => format!("{local}@{domain}"),
        }
    }
}

fn spelled() -> impl Strategy<Value = Spelled> {
    let atom = prop::string::string_regex("[a-z0-9_+-]{1,5}|[a-z]{0,2}ü").unwrap();
    (prop::collection::vec(atom, 1..3), 0..LABELS.len()).prop_map(|(atoms, label)| Spelled {
        local: atoms.join("."),
        label,
    })
}

fn spelling() -> impl Strategy<Value = Spelling> {
    prop::array::uniform7(any::<bool>()).prop_map(|b| Spelling {
        quoted: b[0],
        escaped: b[1],
        upper_local: b[2],
        upper_domain: b[3],
        a_label: b[4],
        trailing_dot: b[5],
        angle: b[6],
    })
}

fn person(id: u64, email: &str, kind: UserKind) -> User {
    User {
        id,
        login: email.into(),
        email: email.into(),
        display_name: String::new(),
        kind,
        status: UserStatus::Active,
        roles: vec![],
        skill_groups: vec![],
        group: None,
        is_default_admin: false,
        created_via: CreatedVia::Api,
        password_hash: None,
        secret_sha256: None,
        created_at: 0,
        reactivated_at_ms: None,
    }
}

fn account(id: u64, address: &str, is_default: bool) -> Account {
    Account {
        id,
        name: format!("account{id}"),
        description: String::new(),
        address: address.into(),
        from_address: None,
        display_name: None,
        reply_to: None,
        aliases: vec![],
        upstream: "local".into(),
        owner: None,
        is_default,
        scope: Scope::AllStaff,
        grants: vec![],
        default_send_mode: DefaultSendMode::SendAs,
        inbound: None,
        sent_copy: None,
        status: Default::default(),
    }
}

fn entry(text: &str, kind: BlockKind) -> BlockEntry {
    BlockEntry {
        entry: text.into(),
        kind,
        reason: String::new(),
        created_at: 0,
        created_by: "test".into(),
    }
}

/// Every decision that compares `address` with the stored `stored`, as one tuple.
fn decisions(stored: &str, stored_domain: &str, address: &str) -> [bool; 7] {
    let blocklist = Snapshot::default().with_blocklist(vec![entry(stored, BlockKind::Address)]);
    let domains = Snapshot::default().with_blocklist(vec![entry(stored_domain, BlockKind::Domain)]);
    // Send-as: a staff user whose own address is `stored`, and a shared account at it.
    let own = Snapshot::build(
        vec![person(7, stored, UserKind::Staff)],
        vec![],
        vec![account(1, "", true)],
        Settings::default(),
    );
    let shared = Snapshot::build(
        vec![person(7, "agent@staff.example", UserKind::Staff)],
        vec![],
        vec![account(1, "", true), account(2, stored, false)],
        Settings::default(),
    );
    // A requester created from `stored`, looked up by `address`.
    let requesters = Snapshot::build(
        vec![person(9, &login_for(stored), UserKind::Requester)],
        vec![],
        vec![],
        Settings::default(),
    );
    // A ticket with `stored` as a participant (stored under the old rules: lower-cased).
    let ticket = Ticket {
        id: 1,
        mailbox: 1,
        subject: "s".into(),
        requester: 3,
        participants: vec![stored.to_lowercase()],
        origin: Origin::Email,
        status: TicketStatus::Open,
        message_ids: vec![],
        created_at: 0,
        updated_at: 0,
    };
    let stranger = person(4, "stranger@x.example", UserKind::Requester);
    [
        blocklist.blocked(address).is_some(),
        domains.blocked(address).is_some(),
        admit(&own, 7, address, None).is_ok_and(|d| d.right == SendRight::Myself),
        admit(&shared, 7, address, None).is_ok_and(|d| d.account.id == 2),
        requesters
            .user_by_address(address)
            .is_some_and(|u| u.id == 9),
        knows(&ticket, &stranger, address),
        domain_in(address, &[stored_domain.to_string()]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every spelling of an address gets the decisions its plain spelling gets (all
    /// "yes"), from every place; another address gets "no" from the address places.
    #[test]
    fn every_spelling_gets_the_same_decision_everywhere(
        address in spelled(),
        stored in spelling(),
        asked in spelling(),
    ) {
        let stored_text = address.write(stored);
        let stored_domain = {
            let (u, a) = LABELS[address.label];
            format!("{}.example", if stored.a_label { a } else { u })
        };
        let asked_text = address.write(asked);
        prop_assert_eq!(key(&stored_text), key(&asked_text));
        let login = |text: &str| login_for(text).to_lowercase();
        prop_assert_eq!(login(&stored_text), login(&asked_text));
        let got = decisions(&stored_text, &stored_domain, &asked_text);
        prop_assert_eq!(got, [true; 7], "{} vs {}", stored_text, asked_text);

        let other = Spelled { local: format!("{}x", address.local), ..address.clone() };
        let got = decisions(&stored_text, &stored_domain, &other.write(asked));
        prop_assert_eq!(&got[..], &[false, true, false, false, false, false, true][..]);
    }
}
