//! The fuzz harness's check of what a well-formed stream of SMTP replies is
//! (`fuzz/src/replies.rs`), tested here with the crate's tests rather than in a second,
//! instrumented build of the fuzz workspace.

#[path = "../fuzz/src/replies.rs"]
mod replies;
