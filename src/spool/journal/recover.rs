//! Reading the journal back at start: every segment in order, every record applied to a
//! fresh index. A torn or corrupt record (a crash in the middle of an append that was never
//! acknowledged) is cut off with everything after it in that segment.

use super::index::{Index, Loc};
use super::record::{self, Kind};
use super::{segment_path, Kept, SEGMENT_EXT};
use crate::spool::meta::Meta;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader};
use std::path::Path;

/// The segment numbers present in `dir`, ascending.
pub fn segments(dir: &Path) -> io::Result<Vec<u32>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let Some(stem) = name.strip_suffix(SEGMENT_EXT) else {
            continue;
        };
        if let Ok(seg) = u32::from_str_radix(stem, 16) {
            out.push(seg);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Applies every record of segment `seg` to `index`; kept messages whose enqueue record is
/// still in the journal go to `kept` (the archive may not have catalogued them yet).
pub fn replay(dir: &Path, seg: u32, index: &mut Index, kept: &mut Vec<Kept>) -> io::Result<()> {
    let path = segment_path(dir, seg);
    let mut input = BufReader::with_capacity(1 << 20, File::open(&path)?);
    index.add_segment(seg);
    let mut pos = 0u64;
    loop {
        match record::read(&mut input) {
            Ok(Some(rec)) => {
                let end = pos + rec.len() as u64;
                if let Some(found) = apply(index, seg, pos, end, &rec) {
                    kept.push(found);
                }
                pos = end;
            }
            Ok(None) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(segment = %path.display(), offset = pos, %error, "cutting a torn journal record (never acknowledged)");
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(pos)?;
                return file.sync_all();
            }
            Err(error) => return Err(error),
        }
    }
}

fn apply(index: &mut Index, seg: u32, pos: u64, end: u64, rec: &record::Decoded) -> Option<Kept> {
    let len = rec.len() as u64;
    match rec.kind {
        Kind::Enqueue => {
            let Some((raw, body_at)) = rec.split_enqueue() else {
                skip(rec.id, "enqueue record without metadata");
                return None;
            };
            let meta = parse(rec.id, raw)?;
            let body = Loc {
                seg,
                offset: pos + (record::HEADER + body_at) as u64,
                len: (rec.payload.len() - body_at) as u64,
            };
            index.put(meta, body, len, (seg, end));
            index.schedule(rec.id);
        }
        Kind::Update => {
            if let Some(meta) = parse(rec.id, &rec.payload) {
                index.set_meta(meta, len, (seg, end));
            }
        }
        Kind::Remove => {
            index.take(rec.id, (seg, end));
        }
        Kind::Keep => {
            let entry = index.take_kept(rec.id, (seg, end))?;
            return Some(Kept {
                record_start: entry.body_start(),
                meta: entry.meta,
                body: entry.body,
            });
        }
    }
    None
}

fn parse(id: u64, raw: &[u8]) -> Option<Meta> {
    match serde_json::from_slice::<Meta>(raw) {
        Ok(meta) if meta.id == id => Some(meta),
        Ok(_) => {
            skip(id, "metadata names another message");
            None
        }
        Err(error) => {
            skip(id, &error.to_string());
            None
        }
    }
}

fn skip(id: u64, why: &str) {
    tracing::error!(queue_id = %crate::spool::show_id(id), why, "skipping an unreadable journal record");
}
