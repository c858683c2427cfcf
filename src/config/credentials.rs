//! What the OAuth2 credential settings must hold (`OAuthConfig::problem`) and the facts
//! about providers' credentials that their defaults rest on: how long a refresh token may
//! go unused before its provider expires it, and the `YYYY-MM-DD` dates of end dates.
//!
//! - Microsoft identity platform: refresh tokens last 90 days and replace themselves at
//!   each use ("Token lifetime",
//!   <https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens>); one
//!   left unused fails with `AADSTS700082: The refresh token has expired due to
//!   inactivity … inactive for 90.00:00:00`.
//! - Google: a refresh token stops working when it "has not been used for six months"
//!   (<https://developers.google.com/identity/protocols/oauth2#expiration>).

use super::{OAuthConfig, OAuthGrant};

/// Days a Microsoft identity platform refresh token may go unused.
pub const MICROSOFT_REFRESH_IDLE_DAYS: u64 = 90;
/// Days a Google refresh token may go unused: six months, counted as the longer half-year.
pub const GOOGLE_REFRESH_IDLE_DAYS: u64 = 183;

/// Seconds in a day.
const DAY: u64 = 86_400;

/// How long the provider behind `token_url` lets a refresh token go unused, if known.
pub fn idle_days_of(token_url: &str) -> Option<u64> {
    let host = crate::net::http::parse_url(token_url).ok()?.host;
    let under = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
    let microsoft = [
        "microsoftonline.com",
        "microsoftonline.us",
        "chinacloudapi.cn",
    ];
    if microsoft.iter().any(|d| under(d)) {
        Some(MICROSOFT_REFRESH_IDLE_DAYS)
    } else if under("googleapis.com") || under("google.com") {
        Some(GOOGLE_REFRESH_IDLE_DAYS)
    } else {
        None
    }
}

/// Unix seconds of the start (00:00 UTC) of the date `YYYY-MM-DD`; `None` if it is none.
pub fn parse_date(text: &str) -> Option<u64> {
    let mut parts = text.split('-');
    let mut number = |len: usize| -> Option<i64> {
        let part = parts.next()?;
        let digits = part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| part.parse().ok()).flatten()
    };
    let (y, m, d) = (number(4)?, number(2)?, number(2)?);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    // Howard Hinnant's days_from_civil, the inverse of `rewrite::date::civil_from_days`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // 2027-02-30 would roll over into March: a date is one that reads back the same.
    let back = crate::rewrite::date::civil_from_days(days);
    (back == (y + i64::from(m <= 2), m as u32, d as u32)).then_some(days as u64 * DAY)
}

impl OAuthConfig {
    /// What is wrong with these settings, as (field, reason); `None` if nothing.
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        let from_key_file = self.grant == OAuthGrant::ServiceAccount && self.token_url.is_empty();
        if !from_key_file {
            if let Err(e) = crate::net::http::parse_url(&self.token_url) {
                return Some(("token_url", e.to_string()));
            }
        }
        if let Some(date) = &self.client_secret_expires {
            if parse_date(date).is_none() {
                return Some((
                    "client_secret_expires",
                    format!("{date:?} is not a date (YYYY-MM-DD)"),
                ));
            }
        }
        self.grant_problem().or_else(|| self.client_problem())
    }

    /// What the grant lacks.
    fn grant_problem(&self) -> Option<(&'static str, String)> {
        match self.grant {
            OAuthGrant::ServiceAccount if self.service_account_key.is_none() => Some((
                "service_account_key",
                "required with grant = \"service_account\"".into(),
            )),
            OAuthGrant::ServiceAccount => None,
            _ if self.service_account_key.is_some() => Some((
                "service_account_key",
                "only with grant = \"service_account\"".into(),
            )),
            OAuthGrant::RefreshToken if self.refresh_token.is_empty() => Some((
                "refresh_token",
                "required with grant = \"refresh_token\" (or a service_account_key)".into(),
            )),
            _ if self.client_id.is_empty() => Some(("client_id", "must not be empty".into())),
            _ => None,
        }
    }

    /// What is wrong with how the client authenticates.
    fn client_problem(&self) -> Option<(&'static str, String)> {
        match (&self.client_certificate, &self.client_key) {
            (Some(_), None) => Some(("client_key", "required with client_certificate".into())),
            (None, Some(_)) => Some(("client_certificate", "required with client_key".into())),
            (Some(_), Some(_)) if !self.client_secret.is_empty() => Some((
                "client_secret",
                "either a client secret or a certificate, not both".into(),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_calendar_dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-02-29"), Some(951_782_400));
        assert_eq!(parse_date("2027-03-01"), Some(1_803_859_200));
        for bad in [
            "2027-02-30",
            "2027-13-01",
            "27-03-01",
            "2027-3-1",
            "2027/03/01",
            "2027-03-01-",
            "",
            "1969-12-31",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_provider_is_known_by_its_token_endpoint() {
        let known = idle_days_of("https://login.microsoftonline.com/t/oauth2/v2.0/token");
        assert_eq!(known, Some(90));
        assert_eq!(
            idle_days_of("https://oauth2.googleapis.com/token"),
            Some(183)
        );
        assert_eq!(idle_days_of("https://idp.example/token"), None);
        assert_eq!(idle_days_of("http://evilmicrosoftonline.com/token"), None);
    }

    #[test]
    fn each_grant_names_what_it_lacks() {
        let parse = |text: &str| -> OAuthConfig { toml::from_str(text).unwrap() };
        let field = |text: &str| parse(text).problem().map(|p| p.0);
        assert_eq!(
            field("grant = \"service_account\"\nclient_id = \"\"\n"),
            Some("service_account_key"),
        );
        assert_eq!(
            field("grant = \"service_account\"\nclient_id = \"\"\nservice_account_key = \"/k.json\"\n"),
            None,
            "the token endpoint comes from the key file"
        );
        assert_eq!(
            field("token_url = \"https://t/\"\nclient_id = \"c\"\nservice_account_key = \"/k.json\"\n"),
            Some("service_account_key")
        );
        assert_eq!(
            field("token_url = \"https://t/\"\ngrant = \"refresh_token\"\nclient_id = \"c\"\n"),
            Some("refresh_token")
        );
        assert_eq!(
            field("token_url = \"https://t/\"\nclient_id = \"c\"\nclient_secret_expires = \"2027-02-30\"\n"),
            Some("client_secret_expires")
        );
        let fine = parse("token_url = \"https://t/\"\nclient_id = \"c\"\n");
        assert_eq!((fine.problem(), fine.expiry_warn_days), (None, 14));
    }
}
