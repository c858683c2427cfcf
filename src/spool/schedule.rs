//! The retry schedule as pure arithmetic: when the next attempt is due, and when a message
//! has expired (SPEC §5).

/// Milliseconds after a failed attempt number `attempts` (1-based) before the next one.
/// The last interval repeats.
pub fn retry_delay_ms(attempts: u32, intervals_secs: &[u64]) -> u64 {
    let index = (attempts.max(1) as usize - 1).min(intervals_secs.len().saturating_sub(1));
    intervals_secs.get(index).copied().unwrap_or(3600) * 1000
}

/// When the next attempt is due, or `None` if the message expires before then.
pub fn next_due(
    now_ms: u64,
    attempts: u32,
    intervals_secs: &[u64],
    expires_at: u64,
) -> Option<u64> {
    if now_ms >= expires_at {
        return None;
    }
    let due = now_ms + retry_delay_ms(attempts, intervals_secs);
    Some(due.min(expires_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: [u64; 5] = [60, 300, 900, 1800, 3600];

    #[test]
    fn follows_the_spec_then_hourly() {
        let delays: Vec<u64> = (1..=7).map(|n| retry_delay_ms(n, &SPEC) / 1000).collect();
        assert_eq!(delays, vec![60, 300, 900, 1800, 3600, 3600, 3600]);
    }

    #[test]
    fn expiry_wins() {
        assert_eq!(next_due(1000, 1, &SPEC, 1000), None);
        assert_eq!(next_due(0, 1, &SPEC, 30_000), Some(30_000));
        assert_eq!(next_due(0, 1, &SPEC, 10_000_000), Some(60_000));
    }
}
