//! Named directory objects: roles (with their permissions), skill groups, requester
//! groups and upstreams defined through the API. Each lives in its own tree keyed by its lower-cased name.

use super::kv::{Kv, Tree};
use super::StoreError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// An application security role and the named permissions it grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Role {
    pub name: String,
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// A skill group of staff users (used by `permitted` account scopes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SkillGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// A group of requesters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Most members the group takes; a requester created from mail when it is full joins
    /// no group (SPEC §7). `None` = no limit.
    #[serde(default)]
    pub max_users: Option<u64>,
}

/// An upstream defined through the API (config-file upstreams are not stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUpstream {
    pub name: String,
    pub config: crate::config::UpstreamConfig,
}

/// Anything stored by name.
pub trait Named: Serialize + DeserializeOwned + Clone {
    fn name(&self) -> &str;
}

impl Named for Role {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for SkillGroup {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for StoredUpstream {
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for Group {
    fn name(&self) -> &str {
        &self.name
    }
}

/// A tree of named objects.
#[derive(Clone)]
pub struct Directory<T> {
    tree: Tree,
    kv: Kv,
    kind: PhantomData<T>,
}

impl<T: Named> Directory<T> {
    pub(super) fn open(kv: &Kv, name: &str) -> Result<Self, StoreError> {
        Ok(Directory {
            tree: kv.open_tree(name)?,
            kv: kv.clone(),
            kind: PhantomData,
        })
    }

    /// Creates `item`, refusing a name already taken; durable on return.
    pub fn create(&self, item: &T) -> Result<(), StoreError> {
        let key = item.name().to_lowercase();
        let raw = encode(item)?;
        let claimed = self
            .tree
            .compare_and_swap(key.as_bytes(), None, Some(&raw))?;
        if !claimed {
            return Err(StoreError::Conflict(format!("{:?}", item.name())));
        }
        self.kv.flush()
    }

    /// Replaces `item` (created if missing); durable on return.
    pub fn put(&self, item: &T) -> Result<(), StoreError> {
        self.tree
            .insert(item.name().to_lowercase().as_bytes(), encode(item)?)?;
        self.kv.flush()
    }

    /// The object called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Result<Option<T>, StoreError> {
        self.tree
            .get(name.to_lowercase().as_bytes())?
            .map(|raw| decode(&raw))
            .transpose()
    }

    /// Every object, by name.
    pub fn all(&self) -> Result<Vec<T>, StoreError> {
        self.tree.values()?.iter().map(|raw| decode(raw)).collect()
    }

    /// Removes `name`; true if it existed. Durable on return.
    pub fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let existed = self.tree.remove(name.to_lowercase().as_bytes())?.is_some();
        self.kv.flush()?;
        Ok(existed)
    }
}

fn encode<T: Serialize>(item: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(raw: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
}
