//! The journal's record format. Every record is self-checking, so a torn write at the end
//! of a segment (a crash mid-append) is recognised and cut off at recovery:
//!
//! ```text
//! 0      magic 0x50 ('P')
//! 1      kind: 1 enqueue, 2 update, 3 remove, 4 keep
//! 2..6   payload length, u32 little-endian
//! 6..10  CRC-32 of kind, id and payload
//! 10..18 queue id, u64 little-endian
//! 18..   payload
//!          enqueue: metadata length (u32 LE), metadata (JSON), message bytes
//!          update:  metadata (JSON)
//!          remove:  nothing
//!          keep:    nothing (a remove whose enqueue record the archive keeps)
//! ```

use super::super::meta::QueueId;
use std::io::{self, Read};

const MAGIC: u8 = 0x50;
/// Length of the fixed header in front of every payload.
pub const HEADER: usize = 18;

/// What a record does to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The message arrives (or is moved forward by compaction): metadata and bytes.
    Enqueue,
    /// New metadata after an attempt.
    Update,
    /// The message is gone (delivered, bounced or expired).
    Remove,
    /// The message is gone from the queue, and the archive keeps its enqueue record.
    Keep,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Enqueue => 1,
            Kind::Update => 2,
            Kind::Remove => 3,
            Kind::Keep => 4,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Enqueue),
            2 => Some(Kind::Update),
            3 => Some(Kind::Remove),
            4 => Some(Kind::Keep),
            _ => None,
        }
    }
}

/// An enqueue record; also returns where the message bytes start within it.
pub fn enqueue(id: QueueId, meta: &[u8], body: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(HEADER + 4 + meta.len() + body.len());
    let payload = [&(meta.len() as u32).to_le_bytes()[..], meta, body];
    write(&mut out, Kind::Enqueue, id, &payload);
    (out, HEADER + 4 + meta.len())
}

/// An update record.
pub fn update(id: QueueId, meta: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + meta.len());
    write(&mut out, Kind::Update, id, &[meta]);
    out
}

/// A remove record, or (`kept`) the keep record of a message the archive keeps.
pub fn remove(id: QueueId, kept: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER);
    let kind = match kept {
        true => Kind::Keep,
        false => Kind::Remove,
    };
    write(&mut out, kind, id, &[]);
    out
}

fn write(out: &mut Vec<u8>, kind: Kind, id: QueueId, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind.code()]);
    crc.update(&id.to_le_bytes());
    parts.iter().for_each(|p| crc.update(p));
    out.push(MAGIC);
    out.push(kind.code());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    parts.iter().for_each(|p| out.extend_from_slice(p));
}

/// One record read back.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub kind: Kind,
    pub id: QueueId,
    pub payload: Vec<u8>,
}

impl Decoded {
    /// Total length of the record in the segment.
    pub fn len(&self) -> usize {
        HEADER + self.payload.len()
    }

    /// An enqueue record's (metadata, offset of the message bytes within the payload).
    pub fn split_enqueue(&self) -> Option<(&[u8], usize)> {
        let len = u32::from_le_bytes(self.payload.get(..4)?.try_into().ok()?) as usize;
        let meta = self.payload.get(4..4 + len)?;
        Some((meta, 4 + len))
    }
}

/// Reads the next record: `Ok(None)` at a clean end (end of file, or an all-zero header
/// where the zero-filled part of a segment begins), `Err` with `InvalidData` for a torn
/// or corrupt record (the caller cuts the segment there).
pub fn read(input: &mut impl Read) -> io::Result<Option<Decoded>> {
    let mut header = [0u8; HEADER];
    match read_full(input, &mut header)? {
        0 => return Ok(None),
        n if n < HEADER => return Err(invalid("record header cut short")),
        // The zero-filled rest of a segment made from a spare: its clean end.
        _ if header == [0u8; HEADER] => return Ok(None),
        _ => {}
    }
    let kind = match (header[0], Kind::from_code(header[1])) {
        (MAGIC, Some(kind)) => kind,
        _ => return Err(invalid("not a record header")),
    };
    let len = u32::from_le_bytes(header[2..6].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[6..10].try_into().expect("4 bytes"));
    let id = u64::from_le_bytes(header[10..18].try_into().expect("8 bytes"));
    let mut payload = vec![0u8; len];
    if read_full(input, &mut payload)? < len {
        return Err(invalid("record payload cut short"));
    }
    let mut check = crc32fast::Hasher::new();
    check.update(&[header[1]]);
    check.update(&header[10..18]);
    check.update(&payload);
    if check.finalize() != crc {
        return Err(invalid("record checksum mismatch"));
    }
    Ok(Some(Decoded { kind, id, payload }))
}

fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written() {
        let (rec, body_at) = enqueue(7, b"{\"m\":1}", b"body bytes");
        assert_eq!(&rec[body_at..], b"body bytes");
        let mut stream = rec.clone();
        stream.extend(update(7, b"{}"));
        stream.extend(remove(7, false));
        stream.extend(remove(7, true));
        let mut input = &stream[..];
        let first = read(&mut input).unwrap().unwrap();
        assert_eq!(
            (first.kind, first.id, first.len()),
            (Kind::Enqueue, 7, rec.len())
        );
        let (meta, at) = first.split_enqueue().unwrap();
        assert_eq!(meta, b"{\"m\":1}");
        assert_eq!(&first.payload[at..], b"body bytes");
        assert_eq!(read(&mut input).unwrap().unwrap().kind, Kind::Update);
        assert_eq!(read(&mut input).unwrap().unwrap().kind, Kind::Remove);
        assert_eq!(read(&mut input).unwrap().unwrap().kind, Kind::Keep);
        assert!(read(&mut input).unwrap().is_none());
    }

    #[test]
    fn a_torn_or_flipped_record_is_refused() {
        let (rec, _) = enqueue(1, b"{}", b"abc");
        for cut in 1..rec.len() {
            let err = read(&mut &rec[..cut]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        }
        let mut zeros_after = rec.clone();
        zeros_after.extend([0u8; 100]);
        let mut input = &zeros_after[..];
        assert_eq!(read(&mut input).unwrap().unwrap().id, 1);
        assert!(read(&mut input).unwrap().is_none(), "zeros are a clean end");
        let mut torn = rec.clone();
        torn[HEADER..].fill(0);
        assert!(read(&mut &torn[..]).is_err(), "a header over zeros is torn");
        let mut flipped = rec.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(read(&mut &flipped[..]).is_err());
    }
}
