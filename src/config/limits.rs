//! Sending limits (`[upstream.NAME.limits]`): what a provider lets one mailbox (the
//! account sending through the upstream) and the upstream as a whole do, so that Postern
//! waits instead of being throttled or refused. Each provider preset brings the provider's
//! published figures; any of them may be overridden, and `0` turns one off.
//!
//! Sources of the presets' figures:
//! - Microsoft 365 (Exchange Online limits, "Sending limits" and "Client submission
//!   (SMTP AUTH) limits", learn.microsoft.com/office365/servicedescriptions/
//!   exchange-online-service-description/exchange-online-limits): 30 messages a minute,
//!   10,000 recipients a day, 500 recipients a message, 3 concurrent SMTP AUTH connections
//!   per mailbox (beyond: `432 4.3.2 … sender thread limit exceeded`).
//! - Microsoft Graph (throttling limits, "Outlook service limits",
//!   learn.microsoft.com/graph/throttling-limits): 4 concurrent requests per mailbox; the
//!   mailbox's Exchange Online sending limits above still apply.
//! - Google Workspace ("Gmail sending limits in Google Workspace",
//!   support.google.com/a/answer/166852): 2,000 messages a day per user, 100 recipients a
//!   message over SMTP or the Gmail API, 10,000 recipients a day.

use serde::{Deserialize, Serialize};

/// One set of limits; `None` (or `0`) means no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendLimits {
    /// Deliveries under way at once (connections, or requests for `graph`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Messages started in any 60 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_minute: Option<u32>,
    /// Messages in any 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_day: Option<u32>,
    /// Recipients in any 24 hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_per_day: Option<u32>,
    /// Recipients of one transaction; a message with more is sent in several (one
    /// Message-ID, each recipient once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_per_message: Option<u32>,
}

impl SendLimits {
    /// `self`, with each limit it leaves unset taken from `base`.
    pub fn over(self, base: SendLimits) -> SendLimits {
        SendLimits {
            connections: self.connections.or(base.connections),
            messages_per_minute: self.messages_per_minute.or(base.messages_per_minute),
            messages_per_day: self.messages_per_day.or(base.messages_per_day),
            recipients_per_day: self.recipients_per_day.or(base.recipients_per_day),
            recipients_per_message: self.recipients_per_message.or(base.recipients_per_message),
        }
    }

    /// Each limit, with `0` read as "none".
    pub fn effective(self) -> SendLimits {
        let keep = |v: Option<u32>| v.filter(|&n| n > 0);
        SendLimits {
            connections: keep(self.connections),
            messages_per_minute: keep(self.messages_per_minute),
            messages_per_day: keep(self.messages_per_day),
            recipients_per_day: keep(self.recipients_per_day),
            recipients_per_message: keep(self.recipients_per_message),
        }
    }

    /// True if no limit of any kind applies.
    pub fn is_none(&self) -> bool {
        self.effective() == SendLimits::default()
    }
}

/// The limits of one upstream: for each account (mailbox, the envelope sender) sending
/// through it, and for the upstream as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamLimits {
    #[serde(default)]
    pub per_account: SendLimits,
    #[serde(default)]
    pub per_upstream: SendLimits,
}

impl UpstreamLimits {
    /// The configured overrides over a preset's figures.
    pub fn over(self, preset: UpstreamLimits) -> UpstreamLimits {
        UpstreamLimits {
            per_account: self.per_account.over(preset.per_account).effective(),
            per_upstream: self.per_upstream.over(preset.per_upstream).effective(),
        }
    }
}

/// Exchange Online's limits per mailbox over SMTP AUTH.
pub fn microsoft365() -> UpstreamLimits {
    UpstreamLimits {
        per_account: SendLimits {
            connections: Some(3),
            messages_per_minute: Some(30),
            messages_per_day: None,
            recipients_per_day: Some(10_000),
            recipients_per_message: Some(500),
        },
        per_upstream: SendLimits::default(),
    }
}

/// Microsoft Graph `sendMail`: 4 concurrent requests per mailbox, and the mailbox's
/// Exchange Online sending limits.
pub fn graph() -> UpstreamLimits {
    let mut limits = microsoft365();
    limits.per_account.connections = Some(4);
    limits
}

/// Gmail's limits per Google Workspace user.
pub fn google() -> UpstreamLimits {
    UpstreamLimits {
        per_account: SendLimits {
            connections: None,
            messages_per_minute: None,
            messages_per_day: Some(2_000),
            recipients_per_day: Some(10_000),
            recipients_per_message: Some(100),
        },
        per_upstream: SendLimits::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_a_presets_figure_and_zero_turns_it_off() {
        let set: UpstreamLimits = toml::from_str(
            "[per_account]\nmessages_per_minute = 10\nconnections = 0\n[per_upstream]\nconnections = 8\n",
        )
        .unwrap();
        let limits = set.over(microsoft365());
        assert_eq!(limits.per_account.messages_per_minute, Some(10));
        assert_eq!(limits.per_account.connections, None);
        assert_eq!(limits.per_account.recipients_per_message, Some(500));
        assert_eq!(limits.per_upstream.connections, Some(8));
        assert!(UpstreamLimits::default()
            .over(UpstreamLimits::default())
            .per_account
            .is_none());
        assert!(toml::from_str::<UpstreamLimits>("[per_account]\nper_hour = 1\n").is_err());
    }
}
