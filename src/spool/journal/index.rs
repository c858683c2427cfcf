//! The journal's in-memory index: every live message's metadata and where its records lie,
//! the due order, and how many live records each segment still holds.
//!
//! A segment may be deleted once no live message has a record in it, the records that made
//! them dead are on disk, and every older segment is already gone. The last rule keeps a
//! `remove` record for as long as the `enqueue` it cancels can still be read back.
//!
//! A segment holding enqueue records the archive keeps is not deleted but retired (moved
//! out of the journal, everything else in it punched out), once the archive has
//! catalogued every one of them.

use super::super::meta::{Meta, QueueId};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A position in the journal: segment number and byte offset.
pub type Pos = (u32, u64);

/// Where a message's bytes lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub seg: u32,
    pub offset: u64,
    pub len: u64,
}

/// A live message.
#[derive(Debug, Clone)]
pub struct Entry {
    pub meta: Meta,
    pub body: Loc,
    /// Start and length of the enqueue record that holds the bytes.
    body_start: u64,
    body_rec: u64,
    /// Segment and length of the record that holds the current metadata.
    meta_seg: u32,
    meta_rec: u64,
    scheduled: bool,
}

impl Entry {
    /// Where the enqueue record holding the bytes starts.
    pub fn body_start(&self) -> u64 {
        self.body_start
    }
}

#[derive(Debug, Default)]
struct Segment {
    refs: usize,
    live_bytes: u64,
    /// Where the journal stood when the last reference went away.
    zero_at: Pos,
    /// Messages whose enqueue record here the archive keeps.
    kept: Vec<QueueId>,
    /// How many of them the archive has not catalogued yet.
    uncatalogued: usize,
}

/// A segment nothing in the journal needs any more.
#[derive(Debug, PartialEq, Eq)]
pub struct Dead {
    pub seg: u32,
    /// Messages whose records the archive keeps: if any, the segment is retired instead
    /// of deleted.
    pub kept: Vec<QueueId>,
}

/// The index. All of it is guarded by the journal's one lock.
#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<QueueId, Entry>,
    due: BTreeSet<(u64, QueueId)>,
    segs: BTreeMap<u32, Segment>,
}

impl Index {
    /// Registers a new segment (at rotation or recovery).
    pub fn add_segment(&mut self, seg: u32) {
        self.segs.entry(seg).or_insert_with(|| Segment {
            zero_at: (seg, 0),
            ..Segment::default()
        });
    }

    /// Number of live messages.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Every live message's metadata, in no particular order.
    pub fn metas(&self) -> impl Iterator<Item = &Meta> {
        self.entries.values().map(|e| &e.meta)
    }

    pub fn get(&self, id: QueueId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// Records an enqueue record for `id` (new, or moved forward by compaction) ending at
    /// `at`. A moved message keeps its place in the due order.
    pub fn put(&mut self, meta: Meta, body: Loc, rec_len: u64, at: Pos) {
        let id = meta.id;
        let scheduled = match self.entries.remove(&id) {
            Some(old) => {
                self.release(&old, at);
                self.due.remove(&(old.meta.due_at, id));
                old.scheduled
            }
            None => false,
        };
        self.hold(body.seg, rec_len);
        self.hold(body.seg, 0);
        if scheduled {
            self.due.insert((meta.due_at, id));
        }
        let entry = Entry {
            meta,
            body,
            body_start: at.1 - rec_len,
            body_rec: rec_len,
            meta_seg: body.seg,
            meta_rec: 0,
            scheduled,
        };
        self.entries.insert(id, entry);
    }

    /// Makes `id` visible to the due scan.
    pub fn schedule(&mut self, id: QueueId) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.scheduled = true;
            self.due.insert((entry.meta.due_at, id));
        }
    }

    /// Records an update record for a live message, ending at `at`. False if unknown.
    pub fn set_meta(&mut self, meta: Meta, rec_len: u64, at: Pos) -> bool {
        let id = meta.id;
        let Some(entry) = self.entries.get_mut(&id) else {
            return false;
        };
        let (old_seg, old_len) = (entry.meta_seg, entry.meta_rec);
        if entry.scheduled {
            self.due.remove(&(entry.meta.due_at, id));
            self.due.insert((meta.due_at, id));
        }
        entry.meta = meta;
        entry.meta_seg = at.0;
        entry.meta_rec = rec_len;
        self.hold(at.0, rec_len);
        self.unref(old_seg, old_len, at);
        true
    }

    /// Forgets a message; `at` is where the journal stands after its remove record.
    pub fn take(&mut self, id: QueueId, at: Pos) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        self.due.remove(&(entry.meta.due_at, id));
        self.release(&entry, at);
        Some(entry)
    }

    /// Forgets a message whose enqueue record the archive keeps: its segment is retired,
    /// not deleted, once `catalogued` was called for it.
    pub fn take_kept(&mut self, id: QueueId, at: Pos) -> Option<Entry> {
        let entry = self.take(id, at)?;
        let info = self.segs.entry(entry.body.seg).or_default();
        info.kept.push(id);
        info.uncatalogued += 1;
        Some(entry)
    }

    /// The archive has catalogued (durably) a kept record of segment `seg`.
    pub fn catalogued(&mut self, seg: u32) {
        if let Some(info) = self.segs.get_mut(&seg) {
            info.uncatalogued = info.uncatalogued.saturating_sub(1);
        }
    }

    /// Gives back a segment `deletable` took out whose deletion failed, so it is tried
    /// again (and no newer one goes first).
    pub fn restore(&mut self, dead: Dead) {
        self.segs.insert(
            dead.seg,
            Segment {
                zero_at: (dead.seg, 0),
                kept: dead.kept,
                ..Segment::default()
            },
        );
    }

    /// Scheduled messages due at or before `now`, oldest first.
    pub fn due(&self, now: u64, limit: usize) -> Vec<QueueId> {
        self.due
            .range(..=(now, QueueId::MAX))
            .take(limit)
            .map(|(_, id)| *id)
            .collect()
    }

    /// When the earliest scheduled message is due.
    pub fn next_due_at(&self) -> Option<u64> {
        self.due.first().map(|(due, _)| *due)
    }

    /// Takes out the oldest segments that may be deleted (or retired) now that everything
    /// up to `durable` is on disk; never `tail`, the segment being written.
    pub fn deletable(&mut self, durable: Pos, tail: u32) -> Vec<Dead> {
        let mut out = Vec::new();
        while let Some((&seg, info)) = self.segs.first_key_value() {
            if seg >= tail || info.refs > 0 || info.zero_at > durable || info.uncatalogued > 0 {
                break;
            }
            let info = self.segs.remove(&seg).unwrap_or_default();
            out.push(Dead {
                seg,
                kept: info.kept,
            });
        }
        out
    }

    /// The oldest segment, if it is closed, written out (before `durable`) and worth
    /// compacting (live bytes at most `max_live`), with the messages that pin it.
    pub fn compactable(&self, durable: Pos, max_live: u64) -> Option<(u32, Vec<QueueId>)> {
        let (&seg, info) = self.segs.first_key_value()?;
        if seg >= durable.0 || info.refs == 0 || info.live_bytes > max_live {
            return None;
        }
        let ids = self
            .entries
            .iter()
            .filter(|(_, e)| e.body.seg == seg || e.meta_seg == seg)
            .map(|(id, _)| *id)
            .collect();
        Some((seg, ids))
    }

    /// Number of segments the index knows.
    #[cfg(test)]
    pub fn segments(&self) -> usize {
        self.segs.len()
    }

    fn hold(&mut self, seg: u32, bytes: u64) {
        let info = self.segs.entry(seg).or_default();
        info.refs += 1;
        info.live_bytes += bytes;
    }

    fn release(&mut self, entry: &Entry, at: Pos) {
        self.unref(entry.body.seg, entry.body_rec, at);
        self.unref(entry.meta_seg, entry.meta_rec, at);
    }

    fn unref(&mut self, seg: u32, bytes: u64, at: Pos) {
        if let Some(info) = self.segs.get_mut(&seg) {
            info.refs = info.refs.saturating_sub(1);
            info.live_bytes = info.live_bytes.saturating_sub(bytes);
            if info.refs == 0 {
                info.zero_at = at;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::meta::{Rcpt, RcptStatus};

    fn meta(id: QueueId, due_at: u64) -> Meta {
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
            size: 3,
            received_at: 0,
            attempts: 0,
            due_at,
            expires_at: u64::MAX,
            verdicts: None,
            keep: None,
        }
    }

    fn dead(segs: &[u32]) -> Vec<Dead> {
        segs.iter()
            .map(|&seg| Dead {
                seg,
                kept: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_kept_record_retires_its_segment_once_catalogued() {
        let mut index = Index::default();
        for seg in 0..3 {
            index.add_segment(seg);
        }
        index.put(meta(1, 0), loc(0), 100, (0, 100));
        index.put(meta(2, 0), loc(0), 50, (0, 150));
        index.take_kept(1, (1, 18));
        index.take(2, (1, 36));
        assert!(
            index.deletable((1, 36), 2).is_empty(),
            "the archive has not catalogued message 1"
        );
        index.catalogued(0);
        let gone = index.deletable((1, 36), 2);
        assert_eq!(
            gone,
            vec![
                Dead {
                    seg: 0,
                    kept: vec![1]
                },
                Dead {
                    seg: 1,
                    kept: vec![]
                }
            ]
        );
    }

    fn loc(seg: u32) -> Loc {
        Loc {
            seg,
            offset: 0,
            len: 3,
        }
    }

    #[test]
    fn only_scheduled_messages_are_due_in_time_order() {
        let mut index = Index::default();
        index.add_segment(0);
        index.put(meta(1, 50), loc(0), 100, (0, 100));
        index.put(meta(2, 10), loc(0), 100, (0, 200));
        assert!(index.due(u64::MAX, 10).is_empty(), "not scheduled yet");
        index.schedule(1);
        index.schedule(2);
        assert_eq!(index.due(u64::MAX, 10), vec![2, 1]);
        assert_eq!(index.due(20, 10), vec![2]);
        index.set_meta(meta(2, 90), 40, (0, 240));
        assert_eq!(index.due(u64::MAX, 10), vec![1, 2]);
        assert_eq!(index.next_due_at(), Some(50));
    }

    #[test]
    fn a_segment_goes_only_when_dead_durable_and_oldest() {
        let mut index = Index::default();
        for seg in 0..3 {
            index.add_segment(seg);
        }
        index.put(meta(1, 0), loc(0), 100, (0, 100));
        index.put(meta(2, 0), loc(1), 100, (1, 100));
        // Message 1's metadata moves to segment 2; its bytes still pin segment 0.
        index.set_meta(meta(1, 5), 40, (2, 40));
        assert!(index.deletable((2, 40), 2).is_empty());
        index.take(1, (2, 58));
        assert!(
            index.deletable((2, 40), 2).is_empty(),
            "removal not on disk yet"
        );
        assert_eq!(index.deletable((2, 58), 2), dead(&[0]));
        index.take(2, (2, 76));
        // Segment 2 is the tail: never deleted, however dead.
        assert_eq!(index.deletable((2, 76), 2), dead(&[1]));
        assert_eq!(index.segments(), 1);
    }

    #[test]
    fn an_older_pinned_segment_keeps_newer_dead_ones() {
        let mut index = Index::default();
        for seg in 0..3 {
            index.add_segment(seg);
        }
        index.put(meta(1, 0), loc(0), 100, (0, 100));
        index.put(meta(2, 0), loc(1), 100, (1, 100));
        index.take(2, (2, 18));
        assert!(index.deletable((2, 18), 2).is_empty());
        let (seg, ids) = index.compactable((2, 18), 1000).unwrap();
        assert_eq!((seg, ids), (0, vec![1]));
        assert!(
            index.compactable((2, 18), 50).is_none(),
            "too much live data"
        );
        // Compaction moves message 1 forward; then both old segments go.
        index.put(meta(1, 0), loc(2), 100, (2, 118));
        assert_eq!(index.deletable((2, 118), 2), dead(&[0, 1]));
        assert_eq!(index.get(1).unwrap().body.seg, 2);
    }
}
