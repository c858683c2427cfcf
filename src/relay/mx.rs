//! Direct delivery (`kind = "mx"`, SPEC §5): one message's recipients are grouped by
//! domain; each domain's MX hosts are tried in preference order (its own A/AAAA when it
//! has no MX), each host's addresses in turn, until one takes the transaction. A domain
//! that does not exist (NXDOMAIN) or accepts no mail (null MX, RFC 7505) fails its
//! recipients for good (a DSN follows); a DNS failure or no host answering defers them.
//!
//! Each destination address has its own pooled `SmtpUpstream` (opportunistic STARTTLS),
//! kept for reuse across messages. Lookups go through hickory-resolver: the upstream's
//! `nameservers`, else `[dns] nameservers`, else the system's resolver.

use super::smtp::SmtpUpstream;
use super::{BoxFuture, Deliver, ErrorKind, Outgoing, RcptOutcome, RelayError, Retry, Side};
use crate::config::{DnsConfig, MxUpstream, SmtpUpstream as SmtpConfig, UpstreamAuth, UpstreamTls};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::TokioResolver;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a domain's mail goes, or why it goes nowhere.
#[derive(Debug)]
enum Targets {
    /// Host names, most preferred first.
    Hosts(Vec<String>),
    /// Permanent: the reply every recipient of the domain gets.
    Never(String),
    /// Temporary: try again later.
    Later(String),
}

/// The `mx` upstream.
pub struct MxRelay {
    name: String,
    config: MxUpstream,
    helo: String,
    resolver: TokioResolver,
    /// One pooled client per destination address, with when it was last used (those
    /// unused for longer than their pool keeps connections are dropped, so the map does
    /// not grow with every address ever contacted).
    destinations: Mutex<HashMap<SocketAddr, (Arc<SmtpUpstream>, Instant)>>,
}

impl MxRelay {
    pub fn new(
        name: &str,
        config: &MxUpstream,
        dns: &DnsConfig,
        helo: &str,
    ) -> Result<MxRelay, RelayError> {
        let servers = match config.nameservers.is_empty() {
            true => &dns.nameservers,
            false => &config.nameservers,
        };
        let resolver =
            resolver(servers, Duration::from_secs(config.timeout_secs.max(1))).map_err(|e| {
                RelayError::new(
                    ErrorKind::Protocol,
                    Side::Local,
                    Retry::Never,
                    format!("upstream {name}: resolver: {e}"),
                )
            })?;
        Ok(MxRelay {
            name: name.to_string(),
            config: config.clone(),
            helo: helo.to_string(),
            resolver,
            destinations: Mutex::new(HashMap::new()),
        })
    }

    async fn deliver_message(&self, msg: &Outgoing<'_>) -> Result<Vec<RcptOutcome>, RelayError> {
        let mut outcomes: Vec<Option<RcptOutcome>> = vec![None; msg.rcpts.len()];
        for (domain, indexes) in by_domain(msg.rcpts) {
            let rcpts: Vec<String> = indexes.iter().map(|&i| msg.rcpts[i].clone()).collect();
            let group = Outgoing {
                rcpts: &rcpts,
                ..*msg
            };
            let results = self.deliver_domain(&domain, &group).await;
            for (i, outcome) in indexes.into_iter().zip(results) {
                outcomes[i] = Some(outcome);
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| RcptOutcome::Temporary("no outcome".into())))
            .collect())
    }

    /// The outcomes of one domain's recipients.
    async fn deliver_domain(&self, domain: &str, msg: &Outgoing<'_>) -> Vec<RcptOutcome> {
        let every = |outcome: RcptOutcome| vec![outcome; msg.rcpts.len()];
        let hosts = match self.targets(domain).await {
            Targets::Hosts(hosts) => hosts,
            Targets::Never(reply) => return every(RcptOutcome::Permanent(reply)),
            Targets::Later(reply) => return every(RcptOutcome::Temporary(reply)),
        };
        let mut last = String::from("no address");
        for host in hosts {
            let addresses = match self.addresses(&host).await {
                Ok(addresses) => addresses,
                Err(error) => {
                    last = format!("{host}: {error}");
                    continue;
                }
            };
            for ip in addresses {
                let upstream = match self.destination(ip, &host) {
                    Ok(upstream) => upstream,
                    Err(error) => {
                        last = error.to_string();
                        continue;
                    }
                };
                match upstream.deliver(msg).await {
                    Ok(outcomes) => return outcomes,
                    Err(error) if error.is_temporary() => {
                        tracing::info!(queue_id = msg.id, domain, host = %host, %ip, %error, "MX host failed; trying the next");
                        last = error.to_string();
                    }
                    Err(error) => return every(RcptOutcome::Permanent(error.to_string())),
                }
            }
        }
        every(RcptOutcome::Temporary(format!(
            "451 4.4.1 no mail host of {domain} took the message (last: {last})"
        )))
    }

    /// The domain's MX hosts by preference; the domain itself when it has none.
    async fn targets(&self, domain: &str) -> Targets {
        // An address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`) names the host itself.
        if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            let bare = literal.strip_prefix("ipv6:").unwrap_or(literal);
            return match bare.parse::<IpAddr>() {
                Ok(ip) => Targets::Hosts(vec![ip.to_string()]),
                Err(_) => Targets::Never(format!("550 5.1.2 {domain} is not an address literal")),
            };
        }
        // Internationalised names go out as their A-labels.
        let Ok(name) = Name::from_utf8(format!("{domain}.")) else {
            return Targets::Never(format!("550 5.1.2 {domain:?} is not a domain name"));
        };
        match self.resolver.mx_lookup(name).await {
            Ok(lookup) => {
                let mut found: Vec<(u16, Name)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                        _ => None,
                    })
                    .collect();
                found.sort_by_key(|(preference, _)| *preference);
                if found.iter().any(|(_, exchange)| exchange.is_root()) {
                    return Targets::Never(format!(
                        "556 5.1.10 {domain} accepts no mail (null MX)"
                    ));
                }
                match found.is_empty() {
                    true => Targets::Hosts(vec![domain.to_string()]),
                    false => {
                        Targets::Hosts(found.into_iter().map(|(_, n)| host_name(&n)).collect())
                    }
                }
            }
            Err(error) => match no_records(&error) {
                Some(ResponseCode::NXDomain) => {
                    Targets::Never(format!("550 5.1.2 {domain}: no such domain (NXDOMAIN)"))
                }
                // The domain exists without MX: its own address (RFC 5321 §5.1).
                Some(_) => Targets::Hosts(vec![domain.to_string()]),
                None => Targets::Later(format!("451 4.4.3 DNS lookup of {domain} failed: {error}")),
            },
        }
    }

    /// A host's addresses (IPv4 and IPv6).
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = Name::from_utf8(format!("{host}.")).map_err(|e| e.to_string())?;
        let found: Vec<IpAddr> = self
            .resolver
            .lookup_ip(name)
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .collect();
        match found.is_empty() {
            true => Err("no address".into()),
            false => Ok(found),
        }
    }

    /// The pooled client of one destination address.
    fn destination(&self, ip: IpAddr, host: &str) -> Result<Arc<SmtpUpstream>, RelayError> {
        let addr = SocketAddr::new(ip, self.config.port);
        let mut known = self.destinations.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some((upstream, used)) = known.get_mut(&addr) {
            *used = now;
            return Ok(upstream.clone());
        }
        let idle = Duration::from_secs(self.config.pool_idle_secs.max(1) * 2);
        known.retain(|_, (_, used)| now.duration_since(*used) < idle);
        let settings = SmtpConfig {
            port: self.config.port,
            tls: UpstreamTls::Opportunistic,
            auth: UpstreamAuth::None,
            pool_size: self.config.pool_size,
            pool_idle_secs: self.config.pool_idle_secs,
            max_connections: self.config.max_connections,
            timeout_secs: self.config.timeout_secs,
            chunking: self.config.chunking,
            ..SmtpConfig::with_host(&ip.to_string())
        };
        let label = format!("{} ({host} {addr})", self.name);
        let upstream = Arc::new(SmtpUpstream::new(&label, &settings, &self.helo)?);
        known.insert(addr, (upstream.clone(), now));
        Ok(upstream)
    }
}

impl Deliver for MxRelay {
    fn deliver<'a>(
        &'a self,
        msg: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Vec<RcptOutcome>, RelayError>> {
        Box::pin(self.deliver_message(msg))
    }
}

impl std::fmt::Debug for MxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MxRelay({})", self.name)
    }
}

/// Recipient indexes by lower-cased domain, domains in first-seen order.
fn by_domain(rcpts: &[String]) -> Vec<(String, Vec<usize>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, rcpt) in rcpts.iter().enumerate() {
        let domain = rcpt
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .trim_end_matches('>')
            .to_ascii_lowercase();
        if !groups.contains_key(&domain) {
            order.push(domain.clone());
        }
        groups.entry(domain).or_default().push(i);
    }
    order
        .into_iter()
        .map(|d| {
            let indexes = groups.remove(&d).unwrap_or_default();
            (d, indexes)
        })
        .collect()
}

fn host_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_string()
}

/// The response code of a "no records" answer (NXDOMAIN, or NOERROR without records).
fn no_records(error: &NetError) -> Option<ResponseCode> {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(no)) => Some(no.response_code),
        _ => None,
    }
}

/// A resolver on `servers` (empty: the system's configuration).
fn resolver(servers: &[SocketAddr], timeout: Duration) -> Result<TokioResolver, NetError> {
    let builder = match crate::net::dns::config(servers) {
        None => TokioResolver::builder_tokio()?,
        Some(config) => TokioResolver::builder_with_config(config, TokioRuntimeProvider::default()),
    };
    builder
        .with_options(crate::net::dns::options(timeout))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn address_literals_name_their_host_and_bad_ones_fail() {
        let config: MxUpstream = toml::from_str("nameservers = [\"127.0.0.1:9\"]").unwrap();
        let relay = MxRelay::new("mx", &config, &DnsConfig::default(), "gw.test").unwrap();
        let hosts = |t: Targets| match t {
            Targets::Hosts(h) => h,
            other => panic!("{other:?}"),
        };
        assert_eq!(hosts(relay.targets("[192.0.2.1]").await), ["192.0.2.1"]);
        assert_eq!(
            hosts(relay.targets("[ipv6:2001:db8::1]").await),
            ["2001:db8::1"]
        );
        assert!(matches!(
            relay.targets("[not-an-ip]").await,
            Targets::Never(_)
        ));
    }

    #[test]
    fn recipients_are_grouped_by_domain_in_order() {
        let rcpts: Vec<String> = ["a@One.example", "b@two.example", "c@one.example"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            by_domain(&rcpts),
            vec![
                ("one.example".to_string(), vec![0, 2]),
                ("two.example".to_string(), vec![1])
            ]
        );
    }
}
