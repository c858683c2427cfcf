//! The inbound hook records each (message, mailbox) once: a message the spool delivers
//! again (after a crash between the hook's write and the spool's mark) finds its mark and
//! creates no second ticket, article or webhook delivery — also across a reopened store.

use postern::inbound::{process, Context, Incoming, Processed};
use postern::policy::Policy;
use postern::store::{
    Account, AccountStatus, DefaultSendMode, Inbound, Scope, Store, Webhook, DEFAULT_MAX_ATTEMPTS,
};

const MESSAGE: &[u8] =
    b"Received: from x by gw.test\r\nFrom: ann@customer.example\r\nTo: help@example.com\r\nSubject: once\r\nMessage-ID: <once@customer.example>\r\n\r\nHello.\r\n";

fn mailbox(webhook: u64) -> Account {
    Account {
        id: 0,
        name: "Help".into(),
        description: String::new(),
        address: "help@example.com".into(),
        from_address: None,
        display_name: None,
        reply_to: None,
        aliases: Vec::new(),
        upstream: "local".into(),
        owner: None,
        is_default: false,
        scope: Scope::AllStaff,
        grants: Vec::new(),
        default_send_mode: DefaultSendMode::None,
        status: AccountStatus::default(),
        inbound: Some(Inbound {
            auto_create_requesters: true,
            webhooks: vec![webhook],
            ..Inbound::default()
        }),
        sent_copy: None,
    }
}

fn run(store: &Store, policy: &Policy) -> Processed {
    let ctx = Context {
        store,
        policy,
        hostname: "gw.test",
        creating: &std::sync::Mutex::new(()),
    };
    let incoming = Incoming {
        queue_id: "00000000000000aa",
        mail_from: "ann@customer.example",
        rcpt: "HELP@example.com",
        data: MESSAGE,
        verdicts: None,
        fetched: None,
    };
    process(&ctx, &incoming).unwrap()
}

#[test]
fn a_redelivered_message_creates_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let hook = store
            .webhooks()
            .create(Webhook {
                id: 0,
                name: "crm".into(),
                url: "http://127.0.0.1:9/".into(),
                secret: "0123456789abcdef".into(),
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                created_at: 0,
            })
            .unwrap();
        store.accounts().create(mailbox(hook.id)).unwrap();
        let policy = Policy::load(store.clone(), "local").unwrap();
        assert!(matches!(run(&store, &policy), Processed::Recorded(_)));
        assert!(matches!(run(&store, &policy), Processed::AlreadyDone));
        assert_eq!(store.webhooks().deliveries(hook.id).unwrap().len(), 1);
    }
    // After a restart, the mark is still there.
    let store = Store::open(dir.path()).unwrap();
    let policy = Policy::load(store.clone(), "local").unwrap();
    assert!(matches!(run(&store, &policy), Processed::AlreadyDone));
    let tickets = store.tickets().all().unwrap();
    assert_eq!(tickets.len(), 1);
    assert_eq!(store.tickets().articles(tickets[0].id).unwrap().len(), 1);
    assert_eq!(store.users().all().unwrap().len(), 1, "one requester");
}
