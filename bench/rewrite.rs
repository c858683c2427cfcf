//! Placeholder replaced by the rewrite benchmark.
fn main() {}
