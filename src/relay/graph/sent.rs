//! The Sent Items lookup that decides whether a message whose `sendMail` got no answer was
//! sent after all: `GET {graph}/users/{mailbox}/mailFolders/sentitems/messages` with
//! `$filter=internetMessageId eq '<id>'` and the recipient properties selected
//! (learn.microsoft.com/graph/api/mailfolder-list-messages; the application needs
//! `Mail.ReadBasic.All` or `Mail.Read` besides `Mail.Send`). A copy counts only if it
//! names every recipient of the attempt, so a message sent in several transactions (one
//! Message-ID) is not taken for another of its parts.

use std::collections::HashSet;

/// The path and query of the lookup for `message_id` in `mailbox`'s Sent Items.
pub fn lookup_path(mailbox: &str, message_id: &str) -> String {
    let filter = format!("internetMessageId eq '{}'", message_id.replace('\'', "''"));
    format!(
        "/users/{}/mailFolders/sentitems/messages?$filter={}&$select=id,toRecipients,ccRecipients,bccRecipients",
        crate::net::http::percent_encode(mailbox, b"@+.-_~"),
        crate::net::http::percent_encode(&filter, b"-._~'")
    )
}

/// Whether the lookup's answer (`{"value": [message, ...]}`) holds a copy addressed to
/// every one of `rcpts`; `None` when the answer is no such list.
pub fn found(answer: &[u8], rcpts: &[String]) -> Option<bool> {
    let json: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let messages = json.get("value")?.as_array()?;
    let wanted: HashSet<String> = rcpts
        .iter()
        .map(|r| crate::policy::address::key(r))
        .collect();
    Some(messages.iter().any(|message| {
        let named: HashSet<String> = ["toRecipients", "ccRecipients", "bccRecipients"]
            .iter()
            .filter_map(|field| message.get(field)?.as_array())
            .flatten()
            .filter_map(|r| r["emailAddress"]["address"].as_str())
            .map(crate::policy::address::key)
            .collect();
        wanted.is_subset(&named)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookup_filters_on_the_message_id_and_selects_the_recipients() {
        assert_eq!(
            lookup_path("desk@corp.example", "<a'b@corp.example>"),
            "/users/desk@corp.example/mailFolders/sentitems/messages?$filter=internetMessageId%20eq%20'%3Ca''b%40corp.example%3E'&$select=id,toRecipients,ccRecipients,bccRecipients"
        );
        assert!(lookup_path("a/b@x", "<i@x>").starts_with("/users/a%2Fb@x/"));
    }

    #[test]
    fn a_copy_counts_only_when_it_names_every_recipient() {
        let answer = br#"{"value":[{"id":"AAMk1","toRecipients":[{"emailAddress":{"name":"A","address":"A@Example.net"}}],
            "ccRecipients":[],"bccRecipients":[{"emailAddress":{"address":"b@example.net"}}]}]}"#;
        let rcpts = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            found(answer, &rcpts(&["a@example.net", "b@example.net"])),
            Some(true)
        );
        assert_eq!(found(answer, &rcpts(&["c@example.net"])), Some(false));
        assert_eq!(
            found(br#"{"value":[]}"#, &rcpts(&["a@example.net"])),
            Some(false)
        );
        assert_eq!(found(b"<html>", &rcpts(&["a@example.net"])), None);
    }
}
