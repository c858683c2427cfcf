//! Tests of the registry: records, runs on disk, merges, what a crash or a bad file leaves.
use super::*;
use crate::store::Store;

fn record(account: u64, ticket: Option<u64>) -> MessageRecord {
    MessageRecord {
        account,
        queue_id: "00000000000000AB".into(),
        direction: "outbound".into(),
        ticket,
        at: 1_764_460_800,
    }
}

fn run_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("message-ids"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn records_are_seen_at_once_and_kept_after_the_periodic_sync() {
    let dir = tempfile::tempdir().unwrap();
    let kept = record(3, None);
    {
        let store = Store::open(dir.path()).unwrap();
        store.message_ids().record("<a@b>", &kept).unwrap();
        assert_eq!(
            store.message_ids().get("<a@b>").unwrap(),
            Some(kept.clone())
        );
        assert!(run_files(dir.path()).is_empty(), "nothing written yet");
        store.sync_if_dirty().unwrap();
        assert_eq!(run_files(dir.path()).len(), 1);
        assert!(lock(&store.message_ids().pending).is_empty());
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.message_ids().get("<a@b>").unwrap(), Some(kept));
    assert_eq!(
        store.message_ids().get("<A@b>").unwrap(),
        None,
        "case is kept"
    );
    assert_eq!(store.message_ids().get("<other@b>").unwrap(), None);
}

#[test]
fn the_newest_record_wins_through_merges_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let ids = store.message_ids();
        ids.record("<t@b>", &record(1, None)).unwrap();
        store.sync_if_dirty().unwrap();
        ids.record("<t@b>", &record(1, Some(0))).unwrap();
        store.sync_if_dirty().unwrap();
        // Enough flushes for level 0 to fill and merge, each with other ids.
        for batch in 0..FAN_IN {
            for n in 0..300 {
                ids.record(&format!("<{batch}.{n}@b>"), &record(2, Some(n)))
                    .unwrap();
            }
            store.sync_if_dirty().unwrap();
        }
        ids.record("<t@b>", &record(1, Some(42))).unwrap();
        store.sync_if_dirty().unwrap();
        assert_eq!(ids.get("<t@b>").unwrap(), Some(record(1, Some(42))));
        wait_for_merges(ids);
        assert_eq!(ids.get("<t@b>").unwrap(), Some(record(1, Some(42))));
    }
    let files = run_files(dir.path());
    assert!(files.iter().any(|f| f.starts_with("01-")), "{files:?}");
    assert!(files.len() < FAN_IN, "{files:?}");
    let store = Store::open(dir.path()).unwrap();
    let ids = store.message_ids();
    assert_eq!(ids.get("<t@b>").unwrap(), Some(record(1, Some(42))));
    for batch in 0..FAN_IN {
        for n in (0..300).step_by(37) {
            let id = format!("<{batch}.{n}@b>");
            assert_eq!(ids.get(&id).unwrap(), Some(record(2, Some(n))), "{id}");
        }
    }
}

/// Waits (bounded) until the background merge has nothing left to do.
fn wait_for_merges(ids: &MessageIds) {
    let started = Instant::now();
    while lock(&ids.merge_state).running || ids.full_level().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "merge never ended"
        );
        ids.compact_in_background();
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_failed_merge_leaves_no_temporary_file_and_backs_off() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ids = store.message_ids();
    for n in 0..FAN_IN as u64 {
        ids.record(&format!("<{n}@b>"), &record(n, None)).unwrap();
        ids.write_pending().unwrap();
    }
    // One input loses its last entry under the open registry: the merge hits its end.
    let victim = dir
        .path()
        .join("message-ids")
        .join(&run_files(dir.path())[3]);
    let len = std::fs::metadata(&victim).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap();
    file.set_len(len - ENTRY as u64).unwrap();
    ids.compact_in_background();
    let started = Instant::now();
    while lock(&ids.merge_state).failed_at.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the merge never failed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!lock(&ids.merge_state).running);
    let files = run_files(dir.path());
    assert_eq!(files.len(), FAN_IN, "inputs kept, no output: {files:?}");
    assert!(files.iter().all(|f| f.ends_with(".run")), "{files:?}");
    let failed_at = lock(&ids.merge_state).failed_at;
    ids.compact_in_background();
    assert!(!lock(&ids.merge_state).running, "backing off");
    assert_eq!(lock(&ids.merge_state).failed_at, failed_at);
}

#[test]
fn an_unreadable_run_is_set_aside_and_the_rest_opens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .message_ids()
            .record("<kept@b>", &record(1, None))
            .unwrap();
        store.sync_if_dirty().unwrap();
    }
    let runs_dir = dir.path().join("message-ids");
    std::fs::write(
        runs_dir.join("00-0000000000000005-0000000000000005.run"),
        b"junk",
    )
    .unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.message_ids().get("<kept@b>").unwrap(),
        Some(record(1, None))
    );
    let files = run_files(dir.path());
    assert!(
        files.contains(&"00-0000000000000005-0000000000000005.bad".to_string()),
        "{files:?}"
    );
}

#[test]
fn what_a_crash_left_is_cleaned_up_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let runs_dir = dir.path().join("message-ids");
    {
        let store = Store::open(dir.path()).unwrap();
        for n in 0..FAN_IN as u64 {
            store
                .message_ids()
                .record(&format!("<{n}@b>"), &record(n, None))
                .unwrap();
            store.message_ids().write_pending().unwrap();
        }
        let level0: Vec<String> = run_files(dir.path());
        let first = runs_dir.join(&level0[0]);
        let saved = std::fs::read(&first).unwrap();
        store.sync_if_dirty().unwrap_or(());
        store.message_ids().compact().unwrap();
        // A merge that renamed its output but died before deleting its inputs.
        std::fs::write(&first, saved).unwrap();
        std::fs::write(runs_dir.join("00-9-9.tmp"), b"torn").unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let files = run_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("01-"));
    for n in 0..FAN_IN as u64 {
        assert_eq!(
            store.message_ids().get(&format!("<{n}@b>")).unwrap(),
            Some(record(n, None))
        );
    }
}

#[test]
fn records_of_the_sled_tree_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        let old = serde_json::to_vec(&record(7, Some(3))).unwrap();
        db.open_tree("message_ids")
            .unwrap()
            .insert("<old@b>", old)
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.message_ids().get("<old@b>").unwrap(),
        Some(record(7, Some(3)))
    );
}

#[test]
fn entries_keep_every_field_and_refuse_what_does_not_fit() {
    let inbound = MessageRecord {
        direction: "inbound".into(),
        queue_id: "Q".repeat(QUEUE_MAX),
        ..record(u64::MAX, Some(u64::MAX))
    };
    let entry = encode("<x@y>", &inbound).unwrap();
    assert_eq!(decode(&entry).unwrap(), inbound);
    assert_eq!(runs::key(&entry), hash("<x@y>"));
    let long = MessageRecord {
        queue_id: "Q".repeat(QUEUE_MAX + 1),
        ..record(1, None)
    };
    assert!(encode("<x@y>", &long).is_err());
    let sideways = MessageRecord {
        direction: "sideways".into(),
        ..record(1, None)
    };
    assert!(encode("<x@y>", &sideways).is_err());
}
