//! Decimal numbers written without the formatting machinery. The hot path writes a few
//! dozen numbers per message (log fields, the date of the `Received` and `Date` fields,
//! upstream reply codes), and `format!` cost about ten times this loop for each.

use std::fmt;

/// Writes `value` in decimal, zero-padded to at least `width` digits (at most 20, the
/// longest `u64`); a longer number is never cut.
pub fn decimal(out: &mut impl fmt::Write, value: u64, width: usize) -> fmt::Result {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let at = at.min(digits.len() - width.min(digits.len()));
    out.write_str(std::str::from_utf8(&digits[at..]).map_err(|_| fmt::Error)?)
}

/// `decimal` into a `String`, which cannot fail.
pub fn push_decimal(out: &mut String, value: u64, width: usize) {
    let _ = decimal(out, value, width);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_padded_to_their_width_and_never_cut() {
        let cases = [
            (0, 0),
            (0, 1),
            (7, 2),
            (42, 2),
            (2026, 4),
            (99, 4),
            (12345, 2),
            (u64::MAX, 1),
            (5, 20),
        ];
        for (n, width) in cases {
            let mut out = String::new();
            push_decimal(&mut out, n, width);
            assert_eq!(out, format!("{n:0width$}"), "{n} at width {width}");
        }
    }
}
