//! The backend's own operations on a throwaway cluster (`tests/common/postgres.rs`):
//! what the typed trees above do not reach through `Store` (the shared Message-ID
//! registry, the id block limit, tree existence, every scan bound), and the
//! edges of `commit` and compare-and-swap.

use super::cluster;
use super::PgKv;
use crate::store::kv::{Backend, Condition, Write};
use std::ops::Bound;
use std::sync::Arc;

fn open(url: &str, node: &str) -> PgKv {
    PgKv::open(url, node, true).unwrap()
}

fn write(tree: &str, key: &[u8], value: Option<&[u8]>) -> Write {
    Write {
        tree: tree.into(),
        key: key.to_vec(),
        value: value.map(<[u8]>::to_vec),
    }
}

fn holds(tree: &str, key: &[u8], value: Option<&[u8]>) -> Condition {
    Condition {
        tree: tree.into(),
        key: key.to_vec(),
        value: value.map(<[u8]>::to_vec),
    }
}

#[test]
fn message_ids_recorded_on_one_node_are_read_on_another() {
    let url = cluster::database();
    let (a, b) = (open(&url, "a"), open(&url, "b"));
    a.record_message_ids(&[]).unwrap();
    let entries = [
        (vec![1; 16], b"first".to_vec()),
        (vec![2; 16], b"second".to_vec()),
        (vec![1; 16], b"first again".to_vec()),
    ];
    a.record_message_ids(&entries).unwrap();
    assert_eq!(b.message_id(&[1; 16]).unwrap().unwrap(), b"first again");
    assert_eq!(b.message_id(&[2; 16]).unwrap().unwrap(), b"second");
    assert_eq!(b.message_id(&[3; 16]).unwrap(), None);
    b.record_message_ids(&[(vec![2; 16], b"replaced".to_vec())])
        .unwrap();
    assert_eq!(a.message_id(&[2; 16]).unwrap().unwrap(), b"replaced");
}

#[test]
fn id_blocks_are_disjoint_and_no_larger_than_the_sequence_step() {
    let url = cluster::database();
    let (a, b) = (open(&url, "a"), open(&url, "b"));
    assert!(a.reserve_ids(257).is_err());
    let (first, second) = (a.reserve_ids(256).unwrap(), b.reserve_ids(10).unwrap());
    assert!(first >= 1 && second >= 1);
    assert!(
        first.abs_diff(second) >= 256,
        "{first} and {second} overlap"
    );
    assert_eq!(a.legacy_id_floor().unwrap(), 1);
    assert!(a.is_shared());
}

#[test]
fn a_tree_exists_while_it_holds_records() {
    let url = cluster::database();
    let kv = open(&url, "a");
    assert!(kv.existing_tree("spool").unwrap().is_none());
    let spool = kv.open_tree("spool").unwrap();
    spool.insert(b"k", b"v").unwrap();
    spool.insert(b"l", b"w").unwrap();
    let found = kv.existing_tree("spool").unwrap().unwrap();
    assert_eq!(found.len().unwrap(), 2);
    kv.drop_tree("spool").unwrap();
    assert!(kv.existing_tree("spool").unwrap().is_none());
    assert_eq!(spool.len().unwrap(), 0);
}

#[test]
fn scans_order_keys_bytewise_within_their_bounds() {
    let url = cluster::database();
    let kv = open(&url, "a");
    let tree = kv.open_tree("audit").unwrap();
    let keys: [&[u8]; 6] = [b"a", b"a\x00", b"a\xff", b"b", b"\xff", b"\xff\xff"];
    for key in keys.iter().rev() {
        tree.insert(key, b"").unwrap();
    }
    kv.open_tree("other").unwrap().insert(b"a", b"").unwrap();
    let scan = |from: Bound<&[u8]>, to: Bound<&[u8]>, reverse, limit| -> Vec<Vec<u8>> {
        let pairs = tree.scan(from, to, reverse, limit).unwrap();
        pairs.into_iter().map(|(k, _)| k).collect()
    };
    let all = scan(Bound::Unbounded, Bound::Unbounded, false, usize::MAX);
    assert_eq!(all, keys.map(<[u8]>::to_vec));
    let middle = scan(Bound::Excluded(b"a"), Bound::Included(b"b"), false, 10);
    assert_eq!(middle, [&b"a\x00"[..], b"a\xff", b"b"]);
    let from = scan(
        Bound::Included(b"a\xff"),
        Bound::Excluded(b"\xff"),
        false,
        10,
    );
    assert_eq!(from, [&b"a\xff"[..], b"b"]);
    let newest = scan(Bound::Unbounded, Bound::Excluded(b"\xff"), true, 2);
    assert_eq!(newest, [&b"b"[..], b"a\xff"]);
    assert_eq!(tree.len().unwrap(), 6);
}

#[test]
fn compare_and_swap_covers_absent_and_present_values() {
    let url = cluster::database();
    let kv = open(&url, "a");
    let tree = kv.open_tree("users").unwrap();
    assert!(tree.compare_and_swap(b"k", None, None).unwrap());
    assert!(tree.compare_and_swap(b"k", None, Some(b"1")).unwrap());
    assert!(!tree.compare_and_swap(b"k", None, Some(b"2")).unwrap());
    assert!(!tree.compare_and_swap(b"k", None, None).unwrap());
    assert!(!tree.compare_and_swap(b"k", Some(b"2"), Some(b"3")).unwrap());
    assert!(tree.compare_and_swap(b"k", Some(b"1"), Some(b"3")).unwrap());
    assert!(!tree.compare_and_swap(b"k", Some(b"1"), None).unwrap());
    assert!(tree.compare_and_swap(b"k", Some(b"3"), None).unwrap());
    assert_eq!(tree.get(b"k").unwrap(), None);
    tree.insert(b"k", b"4").unwrap();
    assert_eq!(tree.remove(b"k").unwrap().unwrap(), b"4");
    assert_eq!(tree.remove(b"k").unwrap(), None);
}

#[test]
fn a_commit_applies_every_write_or_none() {
    let url = cluster::database();
    let kv = open(&url, "a");
    let users = kv.open_tree("users").unwrap();
    users.insert(b"taken", b"x").unwrap();
    let before = kv.changes().unwrap();
    let writes = [
        write("users", b"one", Some(b"1")),
        write("tickets", b"two", Some(b"2")),
    ];
    let stale = [holds("users", b"taken", Some(b"y"))];
    assert!(!kv.commit(&writes, &stale).unwrap());
    let taken = [holds("users", b"taken", None)];
    assert!(!kv.commit(&writes, &taken).unwrap());
    let inserted = [write("users", b"taken", Some(b"z"))];
    assert!(
        !kv.commit(&inserted, &taken).unwrap(),
        "absent, but it is there"
    );
    assert_eq!(users.get(b"one").unwrap(), None);
    assert_eq!(
        kv.changes().unwrap(),
        before,
        "nothing written, nothing bumped"
    );
    let twice = [
        write("users", b"new", Some(b"1")),
        write("users", b"new", None),
        write("users", b"new", Some(b"2")),
        write("tickets", b"two", Some(b"2")),
    ];
    let conditions = [
        holds("users", b"taken", Some(b"x")),
        holds("users", b"new", None),
    ];
    assert!(kv.commit(&twice, &conditions).unwrap());
    assert_eq!(users.get(b"new").unwrap().unwrap(), b"2");
    assert_eq!(kv.changes().unwrap(), before + 1);
    let tickets_only = [write("tickets", b"three", Some(b"3"))];
    assert!(kv.commit(&tickets_only, &[]).unwrap());
    assert_eq!(
        kv.changes().unwrap(),
        before + 1,
        "tickets are not control state"
    );
}

#[test]
fn a_tree_of_a_dropped_backend_fails_instead_of_hanging() {
    let url = cluster::database();
    let kv = Arc::new(open(&url, "a"));
    let tree = kv.open_tree("users").unwrap();
    tree.insert(b"k", b"v").unwrap();
    drop(kv);
    assert!(tree.get(b"k").is_err(), "an error, not a hang");
}
