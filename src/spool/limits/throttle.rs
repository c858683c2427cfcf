//! Recognising a provider's throttling reply: the mailbox (or the upstream) sends too
//! much or too fast, and the message must simply wait — unlike a recipient's refusal or an
//! outage, which follow the retry schedule.
//!
//! - Exchange Online: `432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded`
//!   (more than 3 concurrent connections of one mailbox), `421 4.7.0 … try again later`,
//!   `451 4.7.500`–`4.7.599` (server busy, access temporarily denied; "Fix email delivery
//!   issues for error codes 451 4.7.500 through 451 4.7.699 in Exchange Online").
//! - Gmail: `421 4.7.0 Try again later, closing connection`, `4.7.28` (unusual rate).
//! - Microsoft Graph: `429` with `Retry-After` (the relay's `RelayError::retry_after`).

/// Whether `reply` (an SMTP reply or an error's text) says the provider throttles.
pub fn is_throttling(reply: &str) -> bool {
    let lower = reply.to_ascii_lowercase();
    let codes = codes(&lower);
    let throttling = |code: &str| {
        code == "4.3.2"
            || code == "4.7.28"
            || (code.starts_with("4.7.5") && code.len() == "4.7.500".len())
    };
    if codes.iter().any(|c| throttling(c)) {
        return true;
    }
    if codes.contains(&"4.7.0") && (lower.contains("421 4.7.0") || lower.contains("421-4.7.0")) {
        return true;
    }
    WORDS.iter().any(|w| lower.contains(w))
}

/// The enhanced status codes (`4.x.y`) in `text`: digits and dots between other
/// characters, so an address like `10.4.3.21` is not read as `4.3.2`.
fn codes(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|t| t.trim_end_matches('.'))
        .filter(|t| t.starts_with("4.") && t.split('.').count() == 3)
        .collect()
}

const WORDS: &[&str] = &[
    "thread limit",
    "too many concurrent",
    "concurrent connections limit",
    "rate limit",
    "throttl",
    "too many messages",
];

#[cfg(test)]
mod tests {
    use super::is_throttling;

    #[test]
    fn the_providers_throttling_replies_are_recognised() {
        for reply in [
            "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
            "421 4.7.0 Temporary System Problem. Try again later",
            "451 4.7.500 Server busy. Please try again later",
            "451 4.7.599 Access denied",
            "upstream u: upstream is closing the connection: 421 4.7.0 Too many messages",
            "421-4.7.28 Our system has detected an unusual rate of unsolicited mail",
            "429 Too Many Requests: ApplicationThrottled",
        ] {
            assert!(is_throttling(reply), "{reply}");
        }
        for reply in [
            "451 4.3.0 try again later",
            "550 5.1.1 no such user",
            "451 4.7.650 blocked",
            "450 4.2.1 mailbox busy",
            "451 4.7.5000 odd",
            "450 4.2.0 relay 10.4.3.21 busy",
        ] {
            assert!(!is_throttling(reply), "{reply}");
        }
    }
}
