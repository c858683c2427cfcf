//! What the session does to the mailbox's messages and folders at Graph: the folder
//! fetched, a message's MIME (`GET …/messages/{id}/$value`), marking it read (`PATCH`
//! `isRead`), moving it (`POST …/move` to a top-level folder found by its display name,
//! created when missing, its id kept for the session) and deleting it (`DELETE`, which
//! Exchange turns into a move to Deleted Items).

use super::super::FetchError;
use super::api::{self, query_value, segment, Api, MIME_LIMIT};
use std::collections::HashMap;

/// Graph's well-known folder names (learn.microsoft.com/graph/api/resources/mailfolder).
const WELL_KNOWN: &[&str] = &[
    "archive",
    "clutter",
    "conflicts",
    "conversationhistory",
    "deleteditems",
    "drafts",
    "inbox",
    "junkemail",
    "localfailures",
    "msgfolderroot",
    "outbox",
    "recoverableitemsdeletions",
    "scheduled",
    "searchfolders",
    "sentitems",
    "serverfailures",
    "syncissues",
];

/// A message's MIME, as fetched.
#[derive(Debug)]
pub enum Mime {
    Data(Vec<u8>),
    /// Not there any more (deleted or moved away since the delta named it).
    Gone,
    /// Graph will not give it (why): set aside.
    Unfetchable(String),
}

/// The mailbox at Graph.
pub struct Mailbox {
    pub api: Api,
    /// Top-level folders by display name (lower case) → id, as found or created.
    folders: HashMap<String, String>,
}

impl Mailbox {
    pub fn new(api: Api) -> Mailbox {
        Mailbox {
            api,
            folders: HashMap::new(),
        }
    }

    /// The delta query that reads folder `folder` (a well-known name, `INBOX` among them,
    /// or a top-level folder's display name) from the start.
    pub async fn first_delta(&mut self, folder: &str) -> Result<String, FetchError> {
        let lower = folder.to_ascii_lowercase();
        let id = match WELL_KNOWN.contains(&lower.as_str()) {
            true => lower,
            false => self.folder_id(folder, false).await?.ok_or_else(|| {
                FetchError::Settings(format!("the mailbox has no folder {folder:?}"))
            })?,
        };
        Ok(format!(
            "{}/mailFolders/{}/messages/delta?$select=id,isRead,receivedDateTime",
            self.api.user,
            segment(&id)
        ))
    }

    /// The id of top-level folder `name` (created when missing and `create`).
    async fn folder_id(&mut self, name: &str, create: bool) -> Result<Option<String>, FetchError> {
        let key = name.to_lowercase();
        if let Some(id) = self.folders.get(&key) {
            return Ok(Some(id.clone()));
        }
        let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
        let url = format!(
            "{}/mailFolders?$filter={}&$select=id,displayName",
            self.api.user,
            query_value(&filter)
        );
        let found = self.api.get_json(&url).await?;
        let mut id = found["value"]
            .as_array()
            .and_then(|list| {
                list.iter()
                    .find(|f| f["displayName"].as_str().map(str::to_lowercase) == Some(key.clone()))
            })
            .and_then(|f| f["id"].as_str())
            .map(str::to_string);
        if id.is_none() && create {
            id = Some(self.create_folder(name).await?);
        }
        if let Some(id) = &id {
            self.folders.insert(key, id.clone());
        }
        Ok(id)
    }

    async fn create_folder(&mut self, name: &str) -> Result<String, FetchError> {
        let url = format!("{}/mailFolders", self.api.user);
        let body = serde_json::json!({"displayName": name});
        let response = self.api.send("POST", &url, Some(&body)).await?;
        match response.status {
            200 | 201 => {}
            // Made meanwhile (another node, a person): look it up again.
            409 => {
                return Box::pin(self.folder_id(name, false))
                    .await?
                    .ok_or_else(|| api::failed(&response))
            }
            _ => return Err(api::failed(&response)),
        }
        tracing::info!(folder = name, "mail folder created at Microsoft Graph");
        api::json(&response)?["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| FetchError::Refused("Graph created a folder without an id".into()))
    }

    fn message(&self, id: &str) -> String {
        format!("{}/messages/{}", self.api.user, segment(id))
    }

    /// Message `id`'s MIME.
    pub async fn mime(&mut self, id: &str) -> Result<Mime, FetchError> {
        let url = format!("{}/$value", self.message(id));
        let response = self.api.download(&url).await?;
        match response.status {
            200 => {}
            404 => return Ok(Mime::Gone),
            400..=499 => return Ok(Mime::Unfetchable(api::problem(&response))),
            _ => return Err(api::failed(&response)),
        }
        let announced = response
            .header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok());
        let cut = announced.is_some_and(|n| n != response.bytes.len())
            || (announced.is_none() && response.bytes.len() >= MIME_LIMIT);
        Ok(match cut {
            true => Mime::Unfetchable(format!(
                "larger than the {MIME_LIMIT} octets a fetched message may have"
            )),
            false => Mime::Data(response.bytes),
        })
    }

    /// Marks message `id` read.
    pub async fn mark_read(&mut self, id: &str) -> Result<(), FetchError> {
        let url = self.message(id);
        let body = serde_json::json!({"isRead": true});
        let response = self.api.send("PATCH", &url, Some(&body)).await?;
        done(&response)
    }

    /// Moves message `id` to top-level folder `folder` (created when missing).
    pub async fn move_to(&mut self, id: &str, folder: &str) -> Result<(), FetchError> {
        let Some(destination) = self.folder_id(folder, true).await? else {
            return Err(FetchError::Refused(format!("no folder {folder:?}")));
        };
        let url = format!("{}/move", self.message(id));
        let body = serde_json::json!({"destinationId": destination});
        let response = self.api.send("POST", &url, Some(&body)).await?;
        if response.status == 404 && is_folder_gone(&response) {
            // The folder went since it was found: find or make it again next time.
            self.folders.remove(&folder.to_lowercase());
        }
        done(&response)
    }

    /// Deletes message `id`.
    pub async fn delete(&mut self, id: &str) -> Result<(), FetchError> {
        let url = self.message(id);
        let response = self.api.send("DELETE", &url, None).await?;
        done(&response)
    }
}

/// An acknowledgement went through; a message no longer there counts as done.
fn done(response: &crate::net::http::Response) -> Result<(), FetchError> {
    match response.status {
        200..=299 => Ok(()),
        404 if !is_folder_gone(response) => Ok(()),
        _ => Err(api::failed(response)),
    }
}

/// Whether a `404` names the destination folder rather than the message.
fn is_folder_gone(response: &crate::net::http::Response) -> bool {
    response.body.contains("ErrorFolderNotFound") || response.body.contains("destination")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_names_are_graphs_lower_case_ones() {
        assert!(WELL_KNOWN.contains(&"inbox"));
        assert!(WELL_KNOWN.windows(2).all(|w| w[0] < w[1]));
    }
}
