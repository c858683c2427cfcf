//! Tests of the provider presets and the OAuth settings.

use super::*;
use crate::config::UpstreamConfig;

fn parse(text: &str) -> Result<UpstreamConfig, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn presets_stand_for_the_providers_submission_hosts_with_xoauth2() {
    let m365 = parse(
        "kind = \"microsoft365\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\nusername = \"desk@contoso.com\"\n",
    )
    .unwrap();
    let UpstreamConfig::Microsoft365(m365) = m365 else {
        panic!("not a microsoft365 upstream");
    };
    let smtp = m365.to_smtp();
    assert_eq!(
        (smtp.host.as_str(), smtp.port, smtp.tls),
        ("smtp.office365.com", 587, UpstreamTls::Starttls)
    );
    assert_eq!(
        (smtp.auth, smtp.username.as_str()),
        (UpstreamAuth::Xoauth2, "desk@contoso.com")
    );
    let oauth = smtp.oauth.unwrap();
    assert_eq!(
        oauth.token_url,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(
        (oauth.grant, oauth.scope.as_str()),
        (
            OAuthGrant::ClientCredentials,
            "https://outlook.office365.com/.default"
        )
    );

    let google = parse(
        "kind = \"google\"\nclient_id = \"c\"\nrefresh_token = \"r\"\nusername = \"desk@example.com\"\nport = 2525\n",
    )
    .unwrap();
    let UpstreamConfig::Google(google) = google else {
        panic!("not a google upstream");
    };
    let smtp = google.to_smtp();
    assert_eq!((smtp.host.as_str(), smtp.port), ("smtp.gmail.com", 2525));
    let oauth = smtp.oauth.clone().unwrap();
    assert_eq!(
        (oauth.grant, oauth.token_url.as_str()),
        (
            OAuthGrant::RefreshToken,
            "https://oauth2.googleapis.com/token"
        )
    );

    let mut smtp = smtp;
    assert_eq!(smtp.problem(), None);
    smtp.tls = UpstreamTls::Opportunistic;
    assert_eq!(
        smtp.problem().map(|p| p.0),
        Some("tls"),
        "no credentials without a checked certificate"
    );

    let shown = format!("{:?}", google.to_smtp().oauth.unwrap());
    assert!(
        shown.contains("[redacted]") && !shown.contains("\"r\""),
        "{shown}"
    );

    let wrong = parse("kind = \"google\"\nclient_id = \"c\"\nrefresh_token = \"r\"\nusername = \"u\"\npassword = \"p\"\n");
    assert!(
        wrong.unwrap_err().to_string().contains("password"),
        "unknown keys are refused"
    );
}
