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
    /// What a submission whose display name carries another address gets (SPEC §12).
    pub display_name_addresses: DisplayNameAddresses,
}

/// What happens to a submitted message whose display name (`From`, `Sender`, `Resent-*`)
/// carries an e-mail address other than the field's own address, e.g.
/// `"support@bank.example" <evil@x.example>`: a defence against display-name spoofing,
/// as mail security gateways have it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DisplayNameAddresses {
    /// Left as the client wrote it.
    Allow,
    /// Replaced by the account's display name, else the user's, else removed.
    #[default]
    Strip,
    /// The message is refused with `550 5.7.1`.
    Refuse,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allow_personal_accounts: true,
            org_domains: Vec::new(),
            public_url: "http://127.0.0.1:8025".into(),
            max_users: None,
            display_name_addresses: DisplayNameAddresses::Strip,
        }
    }
}
