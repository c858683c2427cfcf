//! The journal against a real directory: what is written reads back after a reopen, torn
//! tails are cut, and dead segments go (with compaction moving the last live message).

use super::*;
use crate::spool::meta::{Rcpt, RcptStatus};
use std::os::unix::fs::FileExt;

fn meta(id: QueueId) -> Meta {
    Meta {
        id,
        mail_from: "a@b.example".into(),
        rcpts: vec![Rcpt {
            address: "c@d.example".into(),
            status: RcptStatus::Pending,
            last_reply: None,
        }],
        upstream: "u".into(),
        principal: None,
        smtputf8: false,
        eight_bit: false,
        is_dsn: false,
        size: 0,
        received_at: 0,
        attempts: 0,
        due_at: id,
        expires_at: u64::MAX,
        verdicts: None,
        keep: None,
    }
}

fn body(id: QueueId) -> Vec<u8> {
    format!("Subject: {id}\r\n\r\n{}\r\n", "x".repeat(200)).into_bytes()
}

async fn put(journal: &Journal, id: QueueId) {
    let m = meta(id);
    let json = serde_json::to_vec(&m).unwrap();
    journal.enqueue(&m, &json, &body(id)).await.unwrap();
    journal.schedule(id);
}

fn segment_files(dir: &Path) -> usize {
    recover::segments(dir).unwrap().len()
}

#[tokio::test]
async fn what_was_written_reads_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = Journal::open(dir.path()).unwrap();
        for id in 1..=5 {
            put(&journal, id).await;
        }
        let mut changed = meta(3);
        changed.attempts = 2;
        changed.due_at = 1000;
        let json = serde_json::to_vec(&changed).unwrap();
        journal.update(&changed, &json).await.unwrap();
        assert!(journal.remove(2));
        journal.sync().await.unwrap();
    }
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.len(), 4);
    assert_eq!(journal.due(u64::MAX, 10), vec![1, 4, 5, 3]);
    let (m, b) = journal.load(3).unwrap().unwrap();
    assert_eq!((m.attempts, m.due_at), (2, 1000));
    assert_eq!(b, body(3));
    assert!(journal.load(2).unwrap().is_none());
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_rest_survives() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = Journal::open(dir.path()).unwrap();
        put(&journal, 1).await;
        put(&journal, 2).await;
    }
    // A crash in the middle of writing record 2: its last 7 octets never reached the disk
    // (zeros in a segment made from a spare, nothing in one that grows by appending).
    let seg = *recover::segments(dir.path()).unwrap().last().unwrap();
    let path = segment_path(dir.path(), seg);
    let end = {
        let journal = Journal::open(dir.path()).unwrap();
        let st = journal.shared.lock();
        let body = st.index.get(2).unwrap().body;
        body.offset + body.len
    };
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    if std::fs::metadata(&path).unwrap().len() > end {
        file.write_all_at(&[0u8; 7], end - 7).unwrap();
    } else {
        file.set_len(end - 7).unwrap();
    }
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.due(u64::MAX, 10), vec![1]);
    put(&journal, 3).await;
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.due(u64::MAX, 10), vec![1, 3]);
    assert_eq!(journal.load(3).unwrap().unwrap().1, body(3));
}

#[tokio::test]
async fn dead_segments_are_deleted_and_a_lone_survivor_is_moved_forward() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open_with(dir.path(), 1024, 0).unwrap();
    for id in 1..=20 {
        put(&journal, id).await;
    }
    assert!(segment_files(dir.path()) >= 5, "small segments rotate");
    for id in 2..=20 {
        journal.remove(id);
    }
    journal.sync().await.unwrap();
    // Message 1 pins the first segment, which pins every later one (their removals must
    // stay while the enqueues they cancel can be read).
    assert!(segment_files(dir.path()) >= 5);
    assert_eq!(journal.compact().unwrap(), 1);
    journal.sync().await.unwrap();
    journal.sync().await.unwrap();
    assert!(
        segment_files(dir.path()) <= 2,
        "{}",
        segment_files(dir.path())
    );
    drop(journal);
    let journal = Journal::open_with(dir.path(), 1024, 0).unwrap();
    assert_eq!(journal.due(u64::MAX, 10), vec![1]);
    assert_eq!(journal.load(1).unwrap().unwrap().1, body(1));
}

#[tokio::test]
async fn many_writers_share_syncs_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::open(dir.path()).unwrap());
    let tasks: Vec<_> = (1..=200)
        .map(|id| {
            let journal = journal.clone();
            tokio::spawn(async move { put(&journal, id).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    drop(journal);
    let journal = Journal::open(dir.path()).unwrap();
    assert_eq!(journal.len(), 200);
    for id in [1, 77, 200] {
        assert_eq!(journal.load(id).unwrap().unwrap().1, body(id));
    }
}

#[tokio::test]
async fn a_segment_made_from_a_spare_is_overwritten_in_place_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let size = 64 * 1024;
    {
        let journal = Journal::open_with(dir.path(), size, 0).unwrap();
        // Ready means handed to the writer, not only visible on disk (the file gets its
        // name a directory sync before the writer may take it).
        let spare_ready = || journal.shared.spares.ready() > 0;
        for _ in 0..200 {
            if spare_ready() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(spare_ready(), "the helper thread makes a spare");
        for id in 1..=3 {
            put(&journal, id).await;
        }
        let seg = *recover::segments(dir.path()).unwrap().last().unwrap();
        let len = std::fs::metadata(segment_path(dir.path(), seg))
            .unwrap()
            .len();
        assert_eq!(
            len, size,
            "the segment did not grow: it is the spare, overwritten"
        );
    }
    let journal = Journal::open_with(dir.path(), size, 0).unwrap();
    assert_eq!(journal.due(u64::MAX, 10), vec![1, 2, 3]);
    assert_eq!(journal.load(2).unwrap().unwrap().1, body(2));
}

#[tokio::test]
async fn kept_records_outlive_their_segment_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let kept = {
        let journal = Journal::open_with(dir.path(), 1024, 0).unwrap();
        for id in 1..=12 {
            put(&journal, id).await;
        }
        let kept: Vec<Kept> = [3, 7]
            .iter()
            .map(|&id| journal.remove_kept(id).unwrap())
            .collect();
        for id in (1..=12).filter(|id| ![3, 7].contains(id)) {
            journal.remove(id);
        }
        journal.sync().await.unwrap();
        assert!(
            !retire::archived_path(dir.path(), kept[0].body.seg).exists(),
            "not catalogued yet: the segment stays in the journal"
        );
        // A crash here: the keep records are on disk, the catalogue is not.
        kept
    };
    let journal = Journal::open_with(dir.path(), 1024, 0).unwrap();
    assert_eq!(journal.len(), 0);
    let found = journal.take_recovered();
    let ids: Vec<QueueId> = found.iter().map(|k| k.meta.id).collect();
    assert_eq!(ids, vec![3, 7], "found again for the archive");
    let segs: Vec<u32> = found.iter().map(|k| k.body.seg).collect();
    journal.catalogued(&segs).unwrap();
    put(&journal, 13).await;
    journal.sync().await.unwrap();
    journal.catalogued(&[]).unwrap();
    for k in &kept {
        assert!(retire::archived_path(dir.path(), k.body.seg).exists());
        let bytes = journal
            .read_at(k.body.seg, k.body.offset, k.body.len)
            .unwrap();
        assert_eq!(bytes, body(k.meta.id));
    }
    // Only the kept records are left in the retired segments: the other messages' bytes
    // are gone.
    for seg in recover::segments(&dir.path().join(retire::ARCHIVE_DIR)).unwrap() {
        let raw = std::fs::read(retire::archived_path(dir.path(), seg)).unwrap();
        let text = String::from_utf8_lossy(&raw);
        for id in (1..=12).filter(|id| ![3, 7].contains(id)) {
            assert!(
                !text.contains(&format!("Subject: {id}\r\n")),
                "message {id} left in segment {seg}"
            );
        }
    }
    drop(journal);
    let journal = Journal::open_with(dir.path(), 1024, 0).unwrap();
    assert!(
        journal.take_recovered().is_empty(),
        "retired: never replayed again"
    );
    assert_eq!(journal.due(u64::MAX, 10), vec![13]);
}

#[tokio::test]
async fn a_retired_segment_number_is_never_used_again() {
    let dir = tempfile::tempdir().unwrap();
    {
        let journal = Journal::open_with(dir.path(), 1024, 0).unwrap();
        for id in 1..=8 {
            put(&journal, id).await;
        }
        let segs: Vec<u32> = (1..=8)
            .map(|id| journal.remove_kept(id).unwrap().body.seg)
            .collect();
        journal.sync().await.unwrap();
        journal.catalogued(&segs).unwrap();
    }
    // The first reopen deletes the last (dead) segment; the second finds none in the
    // journal's directory, only retired ones.
    drop(Journal::open_with(dir.path(), 1024, 0).unwrap());
    assert_eq!(segment_files(dir.path()), 0);
    let retired = recover::segments(&dir.path().join(retire::ARCHIVE_DIR)).unwrap();
    let newest = *retired.last().unwrap();
    let journal = Journal::open_with(dir.path(), 1024, 0).unwrap();
    put(&journal, 9).await;
    let seg = journal.shared.lock().index.get(9).unwrap().body.seg;
    assert!(
        seg > newest,
        "segment {seg} would overwrite retired {newest}"
    );
    let kept = retire::archived_path(dir.path(), retired[0]);
    assert!(std::fs::read(kept)
        .unwrap()
        .windows(10)
        .any(|w| w == b"Subject: 1"));
}

#[tokio::test]
async fn dropping_the_journal_waits_for_its_writer() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let journal = Journal::open_with(dir.path(), 1024, 0).unwrap();
        put(&journal, round + 1).await;
        journal.remove(round + 1);
        journal.sync().await.unwrap();
        let shared = journal.shared.clone();
        drop(journal);
        // The writer held the other reference: it has finished, dead segments deleted.
        assert_eq!(Arc::strong_count(&shared), 1, "the writer still runs");
    }
    let journal = Journal::open_with(dir.path(), 1024, 0).unwrap();
    assert_eq!(journal.len(), 0);
}

#[tokio::test]
async fn dropping_the_journal_stops_its_spares_thread_mid_spare() {
    let dir = tempfile::tempdir().unwrap();
    // A spare this big is still being made when the journal is dropped.
    let journal = Journal::open_with(dir.path(), 1 << 30, 0).unwrap();
    let shared = journal.shared.clone();
    drop(journal);
    assert_eq!(
        Arc::strong_count(&shared.spares),
        1,
        "the spares thread still runs"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "a half-made spare was left: {names:?}"
    );
}
