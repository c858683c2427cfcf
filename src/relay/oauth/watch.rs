//! Credentials that do not die silently: what `TokenSource` knows about the end of its
//! credentials, turned into warnings (`relay::warnings`) about its upstream, raised days
//! before mail stops and cleared once resolved.
//!
//! - `refresh_token_refused`: the endpoint answered `invalid_grant` to the refresh-token
//!   grant (revoked, expired, the password changed): failing now, re-consent needed.
//! - `refresh_token_expiry`: a refresh token unused long enough that its provider is about
//!   to expire it. The Microsoft identity platform's refresh tokens last 90 days and are
//!   replaced at each use; Google's stop working after six months unused (the sources
//!   are cited in `config::credentials`). The last successful refresh is kept in the
//!   store, so a restart does not forget it.
//! - `secret_expiry`: the client secret's end date, as configured
//!   (`client_secret_expires`; the app registration shows it, the token endpoint does not).
//! - `certificate_expiry`: the client certificate's `notAfter`.
//!
//! This module decides; it reads no files and no clock of its own (`now` is passed in).

use crate::relay::warnings::{Subject, Warnings};

/// Seconds in a day.
pub const DAY: u64 = 86_400;

/// The end dates an upstream's credentials are known to have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ends {
    /// The client secret's end (Unix seconds), when configured and in use.
    pub secret: Option<u64>,
    /// The client certificate's `notAfter`, when one is in use.
    pub certificate: Option<u64>,
    /// For the refresh-token grant: the provider's inactivity limit in days, and the
    /// last successful refresh (Unix seconds), if known.
    pub refresh: Option<(u64, Option<u64>)>,
    /// Warn this many days before an end.
    pub warn_days: u64,
}

/// One warning to raise (`Some`) or clear (`None`), by kind.
pub type Verdict = (&'static str, Option<(String, u64)>);

impl Ends {
    /// What to say at `now` about each kind: raised when its end is near, cleared when
    /// not (or when this upstream no longer has such a credential).
    pub fn verdicts(&self, now: u64) -> Vec<Verdict> {
        let near = |end: &u64| *end <= now + self.warn_days * DAY;
        let secret = self.secret.filter(near).map(|end| {
            let text = format!(
                "the client secret {} on {}: create a new secret in the app registration, then set client_secret and client_secret_expires",
                tense(end, now, "ends", "ended"),
                date(end)
            );
            (text, end)
        });
        let certificate = self.certificate.filter(near).map(|end| {
            let text = format!(
                "the client certificate {} on {} (notAfter): upload a new certificate to the app registration, then set client_certificate and client_key",
                tense(end, now, "ends", "ended"),
                date(end)
            );
            (text, end)
        });
        let refresh = self.refresh.and_then(|(days, last)| {
            let last = last?;
            let end = last + days * DAY;
            near(&end).then(|| {
                let text = format!(
                    "the refresh token was last used with success on {}, and its provider expires it after {days} days unused: it {} on {} unless a token request succeeds before (Postern asks daily: check that the token endpoint answers, else sign in again for a new refresh_token)",
                    date(last),
                    tense(end, now, "stops working", "stopped working"),
                    date(end)
                );
                (text, end)
            })
        });
        vec![
            ("secret_expiry", secret),
            ("certificate_expiry", certificate),
            ("refresh_token_expiry", refresh),
        ]
    }
}

/// `future` or `past`, as `end` is after `now` or not.
fn tense(end: u64, now: u64, future: &'static str, past: &'static str) -> &'static str {
    match end <= now {
        true => past,
        false => future,
    }
}

/// Raises or clears `verdicts` about `upstream`.
pub fn apply(warnings: &Warnings, upstream: &str, verdicts: Vec<Verdict>) {
    let subject = Subject::Upstream(upstream.to_string());
    for (kind, said) in verdicts {
        match said {
            Some((message, fails_at)) => {
                warnings.raise(subject.clone(), kind, message, Some(fails_at))
            }
            None => warnings.clear(&subject, kind),
        }
    }
}

/// `YYYY-MM-DD` of Unix seconds `secs` (UTC).
pub fn date(secs: u64) -> String {
    let (y, m, d) = crate::rewrite::date::civil_from_days((secs / DAY) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::credentials::{
        parse_date, GOOGLE_REFRESH_IDLE_DAYS, MICROSOFT_REFRESH_IDLE_DAYS,
    };

    #[test]
    fn a_warning_comes_warn_days_before_an_end_and_goes_after() {
        let now = parse_date("2027-01-01").unwrap();
        let mut ends = Ends {
            secret: Some(now + 5 * DAY),
            certificate: Some(now + 30 * DAY),
            refresh: Some((MICROSOFT_REFRESH_IDLE_DAYS, Some(now - 80 * DAY))),
            warn_days: 14,
        };
        let said = ends.verdicts(now);
        let kinds: Vec<_> = said
            .iter()
            .map(|(k, s)| (*k, s.as_ref().map(|s| s.1)))
            .collect();
        assert_eq!(
            kinds,
            [
                ("secret_expiry", Some(now + 5 * DAY)),
                ("certificate_expiry", None),
                ("refresh_token_expiry", Some(now + 10 * DAY)),
            ]
        );
        let text = &said[0].1.as_ref().unwrap().0;
        assert!(text.contains("ends on 2027-01-06"), "{text}");
        let text = &said[2].1.as_ref().unwrap().0;
        assert!(
            text.contains("last used with success on 2026-10-13") && text.contains("90 days"),
            "{text}"
        );
        // Used again yesterday: cleared; the certificate within the margin: raised.
        ends.refresh = Some((MICROSOFT_REFRESH_IDLE_DAYS, Some(now - DAY)));
        ends.warn_days = 30;
        let said = ends.verdicts(now);
        assert!(said[1].1.is_some() && said[2].1.is_none());
        // Not yet refreshed: nothing known, nothing said; a credential gone: cleared.
        ends.refresh = Some((GOOGLE_REFRESH_IDLE_DAYS, None));
        ends.secret = None;
        let said = ends.verdicts(now);
        let raised: Vec<_> = said
            .iter()
            .filter(|(_, s)| s.is_some())
            .map(|(k, _)| *k)
            .collect();
        assert_eq!((said.len(), raised), (3, vec!["certificate_expiry"]));
    }
}
