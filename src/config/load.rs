//! Reading and validating a configuration file.

use super::{Config, ConfigError};
use std::collections::HashSet;
use std::path::Path;

/// Loads `path`, or the built-in defaults when no file is given.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let mut config = match path {
        None => Config::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            parse(&text)?
        }
    };
    if config.hostname.is_empty() {
        config.hostname = system_hostname();
    }
    if config.store.node.is_empty() {
        config.store.node = config.hostname.clone();
    }
    Ok(config)
}

/// Parses and validates configuration text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text)?;
    validate(&config)?;
    Ok(config)
}

fn validate(config: &Config) -> Result<(), ConfigError> {
    if !config.upstreams.contains_key(&config.default_upstream) {
        return Err(ConfigError::invalid(
            "default_upstream",
            format!("no [upstream.{}] is configured", config.default_upstream),
        ));
    }
    validate_listeners(config)?;
    validate_limits(config)?;
    validate_upstreams(config)?;
    if config.queue.retry_intervals_secs.is_empty() {
        return Err(ConfigError::invalid(
            "queue.retry_intervals_secs",
            "needs at least one interval",
        ));
    }
    if config.queue.concurrency == 0 {
        return Err(ConfigError::invalid(
            "queue.concurrency",
            "must be at least 1",
        ));
    }
    validate_webhooks(config)?;
    validate_console(config)?;
    if config.store.backend == super::StoreBackend::Postgres && config.store.url.is_empty() {
        return Err(ConfigError::invalid(
            "store.url",
            "is required with backend = \"postgres\"",
        ));
    }
    if config.archive.purge_interval_secs == 0 {
        return Err(ConfigError::invalid(
            "archive.purge_interval_secs",
            "must be at least 1",
        ));
    }
    Ok(())
}

fn validate_console(config: &Config) -> Result<(), ConfigError> {
    let console = &config.console;
    if console.session_lifetime_secs < 60 || console.max_failed_logins == 0 {
        return Err(ConfigError::invalid(
            "console",
            "session_lifetime_secs must be at least 60 and max_failed_logins at least 1",
        ));
    }
    let url = console.public_url.to_ascii_lowercase();
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !url.is_empty() && (!scheme_ok || url.trim_end_matches('/').matches('/').count() > 2) {
        return Err(ConfigError::invalid(
            "console.public_url",
            "must be an origin such as https://postern.example.com (no path)",
        ));
    }
    Ok(())
}

fn validate_webhooks(config: &Config) -> Result<(), ConfigError> {
    let hooks = &config.webhooks;
    if hooks.retry_intervals_secs.is_empty() || hooks.retry_intervals_secs.contains(&0) {
        return Err(ConfigError::invalid(
            "webhooks.retry_intervals_secs",
            "needs at least one interval, each at least 1",
        ));
    }
    if hooks.timeout_secs == 0 || hooks.concurrency == 0 {
        return Err(ConfigError::invalid(
            "webhooks",
            "timeout_secs and concurrency must be at least 1",
        ));
    }
    Ok(())
}

fn validate_listeners(config: &Config) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, listener) in config.listeners.iter().enumerate() {
        let key = format!("listener[{i}]");
        if listener.name.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                "must not be empty",
            ));
        }
        if !names.insert(listener.name.as_str()) {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                format!("{:?} is used by two listeners", listener.name),
            ));
        }
        if !listener.trusted_networks.is_empty() && listener.trusted_principal.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.trusted_principal"),
                "required when trusted_networks is set",
            ));
        }
    }
    Ok(())
}

fn validate_limits(config: &Config) -> Result<(), ConfigError> {
    let limits = &config.limits;
    let checks: [(&str, bool, &str); 6] = [
        (
            "limits.command_line",
            limits.command_line >= 512,
            "RFC 5321 needs at least 512",
        ),
        (
            "limits.text_line",
            limits.text_line >= 1000,
            "RFC 5321 needs at least 1000",
        ),
        (
            "limits.recipients",
            limits.recipients >= 100,
            "RFC 5321 needs at least 100",
        ),
        (
            "limits.message_size",
            limits.message_size >= 1024,
            "must be at least 1024",
        ),
        (
            "limits.header_block",
            limits.header_block >= 1024,
            "must be at least 1024",
        ),
        (
            "limits.max_connections",
            limits.max_connections >= 1,
            "must be at least 1",
        ),
    ];
    for (key, ok, reason) in checks {
        if !ok {
            return Err(ConfigError::invalid(key, reason));
        }
    }
    Ok(())
}

fn validate_upstreams(config: &Config) -> Result<(), ConfigError> {
    for (name, upstream) in &config.upstreams {
        if name.contains('@') {
            return Err(ConfigError::invalid(
                format!("upstream.{name}"),
                "an upstream name may not contain '@' (reserved for the inbound hook)",
            ));
        }
        let graph = match upstream {
            super::UpstreamConfig::Graph(graph) => graph.problem(),
            _ => None,
        };
        if let Some((field, reason)) = graph.or_else(|| upstream.smtp().and_then(|s| s.problem())) {
            return Err(ConfigError::invalid(
                format!("upstream.{name}.{field}"),
                reason,
            ));
        }
    }
    Ok(())
}

fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Purpose;

    #[test]
    fn unknown_key_is_named() {
        let err = parse("data_dir = \"x\"\nbogus_key = 1\n").unwrap_err();
        assert!(err.to_string().contains("bogus_key"), "{err}");
    }

    #[test]
    fn unknown_upstream_key_is_named() {
        let text = "[upstream.local]\nkind = \"maildir\"\npathh = \"x\"\n";
        let err = parse(text).unwrap_err();
        assert!(err.to_string().contains("pathh"), "{err}");
    }

    #[test]
    fn default_upstream_must_exist() {
        let err = parse("default_upstream = \"nowhere\"\n").unwrap_err();
        assert!(err.to_string().contains("default_upstream"), "{err}");
    }

    #[test]
    fn defaults_match_spec() {
        let config = parse("").unwrap();
        assert_eq!(config.listeners.len(), 3);
        assert_eq!(config.listeners[0].bind.port(), 2525);
        assert_eq!(config.listeners[1].bind.port(), 2587);
        assert_eq!(config.listeners[2].bind.port(), 2526);
        assert_eq!(config.listeners[2].purpose, Purpose::Inbound);
        assert_eq!(config.api.bind.port(), 8025);
        assert_eq!(config.limits.command_line, 512);
    }

    #[test]
    fn shipped_config_file_parses() {
        let text = include_str!("../../config/postern.toml");
        parse(text).unwrap();
    }
}
