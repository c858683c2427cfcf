//! The IMAP side of sent copies (async-imap): connect with implicit TLS, STARTTLS or
//! (loopback only) clear text, log in with a password or XOAUTH2, select the folder, and
//! file one message: `UID SEARCH HEADER Message-ID "<id>"` first, `APPEND folder (\Seen)`
//! only when the message is not there yet, so a copy filed before a crash or a lost reply
//! is never filed twice.
//!
//! Trust is webpki-roots plus the PEM certificates of `ca_file`, the name checked the
//! configured host. Every step has a time limit. Credentials are never logged.

use super::SentCopyError;
use crate::store::{SentCopy, SentCopyTls};
use async_imap::{Authenticator, Client, Session};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The longest a connection, login or command may take.
const STEP: Duration = Duration::from_secs(60);

/// The stream under an IMAP session: clear text or TLS.
#[derive(Debug)]
pub enum Wire {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// How the session logs in.
pub enum Login<'a> {
    Password {
        username: &'a str,
        password: &'a str,
    },
    Xoauth2 {
        username: &'a str,
        token: &'a str,
    },
}

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
    let server = format!("{}:{}", settings.host, settings.port);
    let tcp = step(&server, "connect", TcpStream::connect(&server))
        .await?
        .map_err(|e| SentCopyError::Connect(format!("{server}: {e}")))?;
    let client = match settings.tls {
        SentCopyTls::Implicit => {
            let tls = handshake(settings, tcp).await?;
            greeted(Client::new(Wire::Tls(Box::new(tls))), &server).await?
        }
        SentCopyTls::Starttls => {
            let mut client = greeted(Client::new(Wire::Plain(tcp)), &server).await?;
            step(
                &server,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?
            .map_err(|e| refused(&server, "STARTTLS", e))?;
            let Wire::Plain(tcp) = client.into_inner() else {
                unreachable!("the client was made over clear text");
            };
            Client::new(Wire::Tls(Box::new(handshake(settings, tcp).await?)))
        }
        SentCopyTls::None => greeted(Client::new(Wire::Plain(tcp)), &server).await?,
    };
    let mut session = match login {
        Login::Password { username, password } => {
            step(&server, "LOGIN", client.login(username, password)).await?
        }
        Login::Xoauth2 { username, token } => {
            let auth = Xoauth2(crate::relay::oauth::xoauth2(username, token));
            step(
                &server,
                "AUTHENTICATE",
                client.authenticate("XOAUTH2", auth),
            )
            .await?
        }
    }
    .map_err(|(e, _)| SentCopyError::Login(format!("{server}: {e}")))?;
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

/// Reads the server's greeting.
async fn greeted(mut client: Client<Wire>, server: &str) -> Result<Client<Wire>, SentCopyError> {
    match step(server, "greeting", client.read_response()).await? {
        Ok(Some(_)) => Ok(client),
        Ok(None) => Err(SentCopyError::Connect(format!("{server}: closed at once"))),
        Err(e) => Err(SentCopyError::Connect(format!("{server}: {e}"))),
    }
}

/// Runs one step under the time limit.
async fn step<T>(
    server: &str,
    what: &str,
    work: impl std::future::Future<Output = T>,
) -> Result<T, SentCopyError> {
    tokio::time::timeout(STEP, work)
        .await
        .map_err(|_| SentCopyError::Connect(format!("{server}: no answer to {what} in {STEP:?}")))
}

fn refused(server: &str, what: &str, error: async_imap::error::Error) -> SentCopyError {
    use async_imap::error::Error;
    match error {
        Error::No(text) | Error::Bad(text) => {
            SentCopyError::Refused(format!("{server}: {what} refused: {}", text.trim()))
        }
        other => SentCopyError::Connect(format!("{server}: {what}: {other}")),
    }
}

/// The TLS handshake with the configured host's name.
async fn handshake(
    settings: &SentCopy,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, SentCopyError> {
    let host = &settings.host;
    let name = ServerName::try_from(host.clone())
        .map_err(|e| SentCopyError::Tls(format!("{host:?} is not a TLS name: {e}")))?;
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &settings.ca_file {
        let pem =
            std::fs::read(path).map_err(|e| SentCopyError::Tls(format!("ca_file {path}: {e}")))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| SentCopyError::Tls(format!("ca_file {path}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| SentCopyError::Tls(format!("ca_file {path}: {e}")))?;
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| SentCopyError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    step(host, "TLS handshake", connector.connect(name, tcp))
        .await?
        .map_err(|e| SentCopyError::Tls(format!("handshake with {host}: {e}")))
}

/// The XOAUTH2 initial response, sent at the server's first (empty) challenge.
struct Xoauth2(Vec<u8>);

impl Authenticator for Xoauth2 {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        // A second challenge carries the server's error: answer it empty so it finishes.
        std::mem::take(&mut self.0)
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Wire::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Wire::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Wire::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Wire::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Wire::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Wire::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
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
            tls: SentCopyTls::None,
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
