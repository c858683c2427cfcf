//! Organisation-wide settings an administrator changes through the API.

use serde::{Deserialize, Serialize};

/// The settings record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Users may create personal email accounts.
    pub allow_personal_accounts: bool,
    /// The organisation's own mail domains.
    pub org_domains: Vec<String>,
    /// Base URL of links Postern sends (password pages).
    pub public_url: String,
    /// Most users the installation may hold; `None` = no limit.
    pub max_users: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allow_personal_accounts: true,
            org_domains: Vec::new(),
            public_url: "http://127.0.0.1:8025".into(),
            max_users: None,
        }
    }
}
