//! AFL++ target: arbitrary header blocks into `rewrite::inspect` and `apply` (see
//! `postern_fuzz::headers`). With file or directory arguments it replays them instead.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        postern_fuzz::replay(&args, postern_fuzz::headers::run);
        return;
    }
    afl::fuzz!(|data: &[u8]| {
        postern_fuzz::headers::run(data);
    });
}
