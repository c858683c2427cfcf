//! The resolver settings both DNS users share (the inbound checks, direct MX delivery):
//! explicit name servers (`ip:port`, UDP then TCP) or the system's configuration, one
//! attempt per server, bounded by a timeout.

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig, ResolverOpts,
};
use std::net::SocketAddr;
use std::time::Duration;

/// The resolver configuration for `servers`; `None` when empty (use the system's).
pub fn config(servers: &[SocketAddr]) -> Option<ResolverConfig> {
    if servers.is_empty() {
        return None;
    }
    let servers = servers
        .iter()
        .map(|addr| {
            let mut udp = ConnectionConfig::new(ProtocolConfig::Udp);
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::new(ProtocolConfig::Tcp);
            tcp.port = addr.port();
            NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
        })
        .collect();
    Some(ResolverConfig::from_parts(None, vec![], servers))
}

/// Options: `timeout` per answer, one attempt.
pub fn options(timeout: Duration) -> ResolverOpts {
    let mut options = ResolverOpts::default();
    options.timeout = timeout;
    options.attempts = 1;
    options
}
