//! Staff users' mail configuration (SPEC §8): the account type that says how much of the
//! user's mail the organisation keeps, its mailbox, when it was saved, and the lock an
//! administrator puts on it. One record per user id; a user who never saved has none.

use super::kv::{Kv, Tree};
use super::records::{decode, encode, get};
use super::StoreError;
use serde::{Deserialize, Serialize};

/// How much of a user's mail is kept for the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    /// Nothing is kept.
    #[default]
    Private,
    /// Mail linked to records (tickets) is shared.
    RecordLevel,
    /// All mail is shared.
    Complete,
}

/// A user's mail configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct MailConfig {
    pub account_type: AccountType,
    /// The user's mailbox address.
    #[serde(default)]
    pub mailbox: String,
    /// When the user last saved it (Unix seconds); `None`: never.
    #[serde(default)]
    pub saved_at: Option<u64>,
    /// The same in Unix milliseconds (what the "latest backup" rule compares with the
    /// user's reactivation).
    #[serde(default)]
    pub saved_at_ms: Option<u64>,
    #[serde(default)]
    pub locked: bool,
    /// Who locked it and when (Unix seconds).
    #[serde(default)]
    pub locked_by: Option<String>,
    #[serde(default)]
    pub locked_at: Option<u64>,
}

/// The mail configuration tree.
#[derive(Clone)]
pub struct MailConfigs {
    tree: Tree,
    kv: Kv,
}

impl MailConfigs {
    pub(super) fn open(kv: &Kv) -> Result<MailConfigs, StoreError> {
        Ok(MailConfigs {
            tree: kv.open_tree("mail_config")?,
            kv: kv.clone(),
        })
    }

    /// The configuration of user `id` (the default, unsaved one if it has none).
    pub fn get(&self, id: u64) -> Result<MailConfig, StoreError> {
        Ok(get(&self.tree, &id.to_be_bytes(), "mail config")?.unwrap_or_default())
    }

    /// Every saved configuration, by user id.
    pub fn all(&self) -> Result<Vec<(u64, MailConfig)>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.tree.iter()? {
            let id: [u8; 8] = k
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("mail config key".into()))?;
            out.push((u64::from_be_bytes(id), decode(&v, "mail config")?));
        }
        Ok(out)
    }

    /// Replaces the configuration of user `id`; durable on return.
    pub fn save(&self, id: u64, config: &MailConfig) -> Result<(), StoreError> {
        self.tree.insert(id.to_be_bytes(), encode(config)?)?;
        self.kv.flush()
    }
}
