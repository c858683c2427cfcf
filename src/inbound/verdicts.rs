//! Authentication verdicts of inbound mail (SPEC §6): SPF of the MAIL FROM identity (started
//! at MAIL FROM, so its lookups overlap the rest of the transaction), then DKIM, ARC and
//! DMARC at the end of data — mail-auth on a hickory resolver (`[dns] nameservers`, or the
//! system's `resolv.conf`).
//!
//! The outcome is an `Authentication-Results` field (RFC 8601) placed right under
//! Postern's own `Received` field, and the `Verdicts`, which travel with the message in the
//! spool's metadata to the hook: nothing the client wrote is ever read back as a verdict.

use super::InboundError;
use crate::config::DnsConfig;
use crate::store::Verdicts;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Policy;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimOutput, DkimResult, DmarcResult,
    MessageAuthenticator, SpfOutput, SpfResult,
};
use std::net::IpAddr;
use std::time::Duration;

/// DKIM signatures reported in the field (a message may carry any number).
const MAX_DKIM_REPORTED: usize = 5;

/// The checker: one resolver (with its cache) for every inbound session.
pub struct Verifier {
    auth: MessageAuthenticator,
    hostname: String,
}

/// What the end-of-data checks found.
#[derive(Debug, Clone)]
pub struct Checked {
    pub verdicts: Verdicts,
    /// The `Authentication-Results` field, CRLF included.
    pub field: String,
    /// DMARC failed and the From domain's policy is `reject`.
    pub dmarc_reject: bool,
}

impl Verifier {
    /// A verifier resolving through `dns`.
    pub fn new(dns: &DnsConfig, hostname: &str) -> Result<Verifier, InboundError> {
        let options = crate::net::dns::options(Duration::from_secs(dns.timeout_secs));
        let auth = match crate::net::dns::config(&dns.nameservers) {
            None => MessageAuthenticator::new_system_conf(),
            Some(config) => MessageAuthenticator::new(config, options),
        }
        .map_err(|e| InboundError::Dns(e.to_string()))?;
        Ok(Verifier {
            auth,
            hostname: hostname.to_string(),
        })
    }

    /// SPF of `mail_from` (the HELO identity for the null sender) sent from `ip`.
    pub async fn spf(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfOutput {
        self.auth
            .verify_spf(SpfParameters::verify(ip, helo, &self.hostname, mail_from))
            .await
    }

    /// DKIM, ARC and DMARC of `message`, with the SPF result found at MAIL FROM.
    pub async fn check(
        &self,
        message: &[u8],
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
        spf: &SpfOutput,
    ) -> Checked {
        let Some(parsed) = AuthenticatedMessage::parse(message) else {
            let field = AuthenticationResults::new(&self.hostname)
                .with_spf_mailfrom_result(spf, ip, mail_from, helo);
            return Checked {
                verdicts: Verdicts {
                    spf: spf_word(spf.result()).into(),
                    dkim: "permerror".into(),
                    dmarc: "none".into(),
                    arc: "none".into(),
                    results: field.to_string(),
                },
                field: mail_auth::common::headers::HeaderWriter::to_header(&field),
                dmarc_reject: false,
            };
        };
        let dkim = self.auth.verify_dkim(&parsed).await;
        let arc = self.auth.verify_arc(&parsed).await;
        let domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
        let dmarc = self
            .auth
            .verify_dmarc(DmarcParameters::new(&parsed, &dkim, domain, spf))
            .await;
        let from = parsed.from.first().map_or("", String::as_str);
        let reported = &dkim[..dkim.len().min(MAX_DKIM_REPORTED)];
        let results = AuthenticationResults::new(&self.hostname)
            .with_spf_mailfrom_result(spf, ip, mail_from, helo)
            .with_dkim_results(reported, from)
            .with_arc_result(&arc, ip)
            .with_dmarc_result(&dmarc);
        let dmarc_word = dmarc_word(&dmarc.result());
        Checked {
            verdicts: Verdicts {
                spf: spf_word(spf.result()).into(),
                dkim: dkim_word(&dkim).into(),
                dmarc: dmarc_word.into(),
                arc: dkim_result_word(arc.result()).into(),
                results: results.to_string(),
            },
            field: mail_auth::common::headers::HeaderWriter::to_header(&results),
            dmarc_reject: dmarc_word == "fail" && dmarc.policy() == Policy::Reject,
        }
    }
}

fn spf_word(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_result_word(result: &DkimResult) -> &'static str {
    match result {
        DkimResult::Pass => "pass",
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

/// `pass` if any signature passes; else the first signature's result; `none` unsigned.
fn dkim_word(outputs: &[DkimOutput<'_>]) -> &'static str {
    if outputs.iter().any(|o| o.result() == &DkimResult::Pass) {
        return "pass";
    }
    outputs
        .first()
        .map_or("none", |o| dkim_result_word(o.result()))
}

fn dmarc_word(result: &DmarcResult) -> &'static str {
    match result {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}
