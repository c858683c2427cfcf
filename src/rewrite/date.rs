//! RFC 5322 dates (`Sun, 22 Nov 2026 10:41:06 +0000`) without a calendar dependency.

use crate::digits::push_decimal;
use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The current time as an RFC 5322 date in UTC.
pub fn now_rfc5322() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc5322(secs)
}

/// `secs` since the Unix epoch as an RFC 5322 date in UTC. Written digit by digit: every
/// accepted message gets one (its `Received` field and, when submitted, its `Date`), and
/// the formatting machinery cost ten times as much.
pub fn rfc5322(secs: u64) -> String {
    let t = Civil::of(secs);
    let mut out = String::with_capacity(31);
    out.push_str(t.weekday);
    out.push_str(", ");
    push_decimal(&mut out, u64::from(t.day), 1);
    out.push(' ');
    out.push_str(t.month);
    out.push(' ');
    push_decimal(&mut out, t.year.max(0) as u64, 4);
    out.push(' ');
    push_decimal(&mut out, t.hour, 2);
    out.push(':');
    push_decimal(&mut out, t.minute, 2);
    out.push(':');
    push_decimal(&mut out, t.second, 2);
    out.push_str(" +0000");
    out
}

/// `secs` since the Unix epoch in the C `asctime` form mbox separator lines use
/// (`Sun Nov 22 10:41:06 2026`), UTC.
pub fn asctime(secs: u64) -> String {
    let t = Civil::of(secs);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        t.weekday, t.month, t.day, t.hour, t.minute, t.second, t.year
    )
}

/// The UTC day of `secs` since the Unix epoch as `YYYYMMDD`.
pub fn yyyymmdd(secs: u64) -> String {
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    format!("{year:04}{month:02}{day:02}")
}

/// A moment's calendar fields, UTC.
struct Civil {
    weekday: &'static str,
    day: u32,
    month: &'static str,
    year: i64,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Civil {
    fn of(secs: u64) -> Civil {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days as i64);
        Civil {
            weekday: DAYS[(days % 7) as usize],
            day,
            month: MONTHS[(month - 1) as usize],
            year,
            hour: rem / 3600,
            minute: (rem % 3600) / 60,
            second: rem % 60,
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asctime_dates() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_795_344_066), "Sun Nov 22 10:41:06 2026");
    }

    #[test]
    fn known_dates() {
        assert_eq!(rfc5322(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322(1_795_344_066), "Sun, 22 Nov 2026 10:41:06 +0000");
        assert_eq!(rfc5322(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(yyyymmdd(951_782_400), "20000229");
        assert_eq!(yyyymmdd(1_795_344_066), "20261122");
        // Two-digit day, one-digit hour: the padding of each field.
        assert_eq!(rfc5322(1_796_871_909), "Thu, 10 Dec 2026 03:05:09 +0000");
    }
}
