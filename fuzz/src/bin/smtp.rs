//! AFL++ target: arbitrary byte streams into an SMTP `Session` (see `postern_fuzz::smtp`).
//! With file or directory arguments it replays them instead (no AFL++ needed).

fn main() {
    let mut harness = postern_fuzz::smtp::Harness::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        postern_fuzz::replay(&args, |data| harness.run(data));
        return;
    }
    // A panic aborts the process (AFL++ records the crash), so no state is seen broken.
    let mut harness = std::panic::AssertUnwindSafe(harness);
    afl::fuzz!(|data: &[u8]| {
        harness.run(data);
    });
}
