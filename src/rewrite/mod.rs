//! Header-block work on raw message bytes: finding where the header block ends, counting
//! trace fields, and building the `Received` field Postern prepends.
//!
//! The body is never parsed, copied or changed here.

pub mod date;
mod header;
mod received;

pub use header::{header_block_len, received_count, HeaderScan};
pub use received::{received_field, ReceivedInfo};
