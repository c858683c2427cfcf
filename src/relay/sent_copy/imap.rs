//! The IMAP side of sent copies: a session from `net::imap` with the folder selected, and
//! one message filed: `UID SEARCH HEADER Message-ID "<id>"` first, `APPEND folder (\Seen)`
//! only when the message is not there yet, so a copy filed before a crash or a lost reply
//! is never filed twice.

use super::SentCopyError;
pub use crate::net::imap::Login;
use crate::net::imap::{self, refused, step, Server};
use crate::net::wire::Wire;
use crate::store::SentCopy;
use async_imap::Session;
use std::time::Duration;

/// What filing one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filed {
    Appended,
    /// A message with this Message-ID was in the folder already.
    AlreadyThere,
}

/// An open session with the folder selected.
pub struct Folder {
    session: Session<Wire>,
    name: String,
}

/// Connects to `settings`' server, logs in and selects its folder.
pub async fn open(settings: &SentCopy, login: Login<'_>) -> Result<Folder, SentCopyError> {
    let server = Server {
        host: &settings.host,
        port: settings.port,
        tls: settings.tls,
        ca_file: settings.ca_file.as_deref(),
    };
    let (mut session, server) = imap::connect(server, login).await?;
    step(&server, "SELECT", session.select(&settings.folder))
        .await?
        .map_err(|e| refused(&server, &format!("SELECT {:?}", settings.folder), e))?;
    Ok(Folder {
        session,
        name: server,
    })
}

impl Folder {
    /// Files `data` unless a message with `message_id` is in the folder already.
    pub async fn file(
        &mut self,
        folder: &str,
        message_id: Option<&str>,
        data: &[u8],
    ) -> Result<Filed, SentCopyError> {
        if let Some(query) = message_id.and_then(search_query) {
            let found = step(&self.name, "UID SEARCH", self.session.uid_search(&query))
                .await?
                .map_err(|e| refused(&self.name, "UID SEARCH", e))?;
            if !found.is_empty() {
                return Ok(Filed::AlreadyThere);
            }
        }
        let append = self.session.append(folder, Some("(\\Seen)"), None, data);
        step(&self.name, "APPEND", append)
            .await?
            .map_err(|e| refused(&self.name, "APPEND", e))?;
        Ok(Filed::Appended)
    }

    /// Logs out (best effort).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

/// `HEADER Message-ID "<id>"`, or `None` when the id cannot be a quoted IMAP string
/// (8-bit or control characters): such a message is appended without the check.
fn search_query(message_id: &str) -> Option<String> {
    if message_id.is_empty() || !message_id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    let quoted = message_id.replace('\\', "\\\\").replace('"', "\\\"");
    Some(format!("HEADER Message-ID \"{quoted}\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    /// A scripted IMAP server for one session: logs in whoever sends XOAUTH2, finds nothing,
    /// takes one APPEND; returns the decoded XOAUTH2 response and the appended bytes.
    async fn fake_server(listener: tokio::net::TcpListener) -> (String, Vec<u8>) {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut conn = BufReader::new(tcp);
        conn.write_all(b"* OK ready\r\n").await.unwrap();
        let (mut login, mut appended) = (String::new(), Vec::new());
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).await.unwrap() == 0 {
                return (login, appended);
            }
            let (tag, command) = line.trim_end().split_once(' ').unwrap();
            let reply = match command {
                "AUTHENTICATE XOAUTH2" => {
                    conn.write_all(b"+ \r\n").await.unwrap();
                    let mut answer = String::new();
                    conn.read_line(&mut answer).await.unwrap();
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(answer.trim_end())
                        .unwrap();
                    login = String::from_utf8(raw).unwrap();
                    format!("{tag} OK logged in\r\n")
                }
                c if c.starts_with("SELECT") => format!("* 0 EXISTS\r\n{tag} OK selected\r\n"),
                c if c.starts_with("UID SEARCH") => format!("* SEARCH\r\n{tag} OK done\r\n"),
                c if c.starts_with("APPEND \"Sent Items\" (\\Seen) {") => {
                    let size: usize = c
                        .rsplit('{')
                        .next()
                        .unwrap()
                        .trim_end_matches('}')
                        .parse()
                        .unwrap();
                    conn.write_all(b"+ go\r\n").await.unwrap();
                    appended = vec![0; size + 2];
                    conn.read_exact(&mut appended).await.unwrap();
                    appended.truncate(size);
                    format!("{tag} OK appended\r\n")
                }
                "LOGOUT" => format!("* BYE\r\n{tag} OK bye\r\n"),
                other => format!("{tag} BAD unexpected {other}\r\n"),
            };
            conn.write_all(reply.as_bytes()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn xoauth2_logs_in_with_the_token_and_appends_to_the_folder() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(fake_server(listener));
        let settings = SentCopy {
            host: "127.0.0.1".into(),
            port,
            tls: crate::store::SentCopyTls::None,
            folder: "Sent Items".into(),
            auth: crate::store::SentCopyAuth::Xoauth2 {
                username: "desk@corp.example".into(),
            },
            ca_file: None,
        };
        let login = Login::Xoauth2 {
            username: "desk@corp.example",
            token: "token-1",
        };
        let mut folder = open(&settings, login).await.unwrap();
        let message = b"Message-ID: <a@corp.example>\r\n\r\nhi\r\n";
        let filed = folder
            .file("Sent Items", Some("<a@corp.example>"), message)
            .await
            .unwrap();
        assert_eq!(filed, Filed::Appended);
        folder.close().await;
        let (login, appended) = server.await.unwrap();
        assert_eq!(
            login,
            "user=desk@corp.example\x01auth=Bearer token-1\x01\x01"
        );
        assert_eq!(appended, message);
    }

    #[test]
    fn only_printable_message_ids_are_searched_for_quoted() {
        assert_eq!(
            search_query("<a\"b\\c@x>").as_deref(),
            Some("HEADER Message-ID \"<a\\\"b\\\\c@x>\"")
        );
        assert_eq!(search_query("<é@x>"), None);
        assert_eq!(search_query(""), None);
    }
}
