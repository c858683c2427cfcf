//! The sent-copy settings of an account (SPEC §5, `relay::sent_copy`): the IMAP server,
//! folder and credentials where each message sent through the account is filed. The
//! password is stored here like the other settings and never shown by the API
//! (`Account::without_secrets`).

use super::Account;
use serde::{Deserialize, Serialize};

/// Where copies of the mail sent through an account are filed (IMAP `APPEND` into the
/// mailbox's Sent folder, `relay::sent_copy`). For SMTP-based upstreams only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SentCopy {
    /// The IMAP server (`outlook.office365.com` for Microsoft 365).
    pub host: String,
    #[serde(default = "SentCopy::default_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: SentCopyTls,
    /// `Sent` by default; Microsoft 365 calls it `Sent Items`.
    #[serde(default = "SentCopy::default_folder")]
    pub folder: String,
    pub auth: SentCopyAuth,
    /// PEM certificates trusted besides the public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

impl SentCopy {
    fn default_port() -> u16 {
        993
    }

    fn default_folder() -> String {
        "Sent".into()
    }
}

/// TLS towards the IMAP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SentCopyTls {
    /// TLS from the first byte (port 993).
    #[default]
    Implicit,
    Starttls,
    /// Clear text: loopback hosts only.
    None,
}

/// How the IMAP session logs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SentCopyAuth {
    /// LOGIN with a password: write-only through the API (never shown; kept when a
    /// change leaves it out).
    Password {
        username: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    /// XOAUTH2 with a token from the OAuth settings of the account's upstream.
    Xoauth2 { username: String },
}

impl Account {
    /// The account as the API shows it: the sent-copy password left out.
    pub fn without_secrets(mut self) -> Account {
        if let Some(SentCopy {
            auth: SentCopyAuth::Password { password, .. },
            ..
        }) = &mut self.sent_copy
        {
            *password = None;
        }
        if let Some(fetch) = self.inbound.as_mut().and_then(|i| i.fetch.as_mut()) {
            fetch.password = None;
        }
        self
    }
}
