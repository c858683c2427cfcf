//! An IMAP client session (async-imap over `wire::Wire`), for sent copies and for fetching
//! helpdesk mail: connect with implicit TLS, STARTTLS or (loopback only, checked by the
//! callers' validation) clear text, read the greeting, log in with a password or XOAUTH2.
//! Every step has a time limit. Credentials are never logged.

use super::wire::{self, Wire};
use crate::store::SentCopyTls;
use async_imap::{Authenticator, Client, Session};
use std::time::Duration;
use tokio::net::TcpStream;

/// The longest a connection, login or command may take.
pub const STEP: Duration = Duration::from_secs(60);

/// Why an IMAP session could not be had or a command failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImapError {
    #[error("cannot reach the IMAP server {0}")]
    Connect(String),
    #[error("TLS with the IMAP server: {0}")]
    Tls(String),
    #[error("IMAP login refused by {0}")]
    Login(String),
    #[error("IMAP server {0}")]
    Refused(String),
}

/// Where the server is.
#[derive(Debug, Clone, Copy)]
pub struct Server<'a> {
    pub host: &'a str,
    pub port: u16,
    pub tls: SentCopyTls,
    /// PEM certificates trusted besides the public roots.
    pub ca_file: Option<&'a str>,
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

/// Connects to `server` and logs in; the session and the `host:port` name for messages.
pub async fn connect(
    server: Server<'_>,
    login: Login<'_>,
) -> Result<(Session<Wire>, String), ImapError> {
    let name = format!("{}:{}", server.host, server.port);
    let tcp = step(&name, "connect", TcpStream::connect(&name))
        .await?
        .map_err(|e| ImapError::Connect(format!("{name}: {e}")))?;
    let client = match server.tls {
        SentCopyTls::Implicit => {
            let tls = handshake(server, tcp).await?;
            greeted(Client::new(Wire::Tls(Box::new(tls))), &name).await?
        }
        SentCopyTls::Starttls => {
            let mut client = greeted(Client::new(Wire::Plain(tcp)), &name).await?;
            step(
                &name,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?
            .map_err(|e| refused(&name, "STARTTLS", e))?;
            let Wire::Plain(tcp) = client.into_inner() else {
                unreachable!("the client was made over clear text");
            };
            Client::new(Wire::Tls(Box::new(handshake(server, tcp).await?)))
        }
        SentCopyTls::None => greeted(Client::new(Wire::Plain(tcp)), &name).await?,
    };
    let session = match login {
        Login::Password { username, password } => {
            step(&name, "LOGIN", client.login(username, password)).await?
        }
        Login::Xoauth2 { username, token } => {
            let auth = Xoauth2(crate::relay::oauth::xoauth2(username, token));
            step(&name, "AUTHENTICATE", client.authenticate("XOAUTH2", auth)).await?
        }
    }
    .map_err(|(e, _)| ImapError::Login(format!("{name}: {e}")))?;
    Ok((session, name))
}

/// Reads the server's greeting.
async fn greeted(mut client: Client<Wire>, server: &str) -> Result<Client<Wire>, ImapError> {
    match step(server, "greeting", client.read_response()).await? {
        Ok(Some(_)) => Ok(client),
        Ok(None) => Err(ImapError::Connect(format!("{server}: closed at once"))),
        Err(e) => Err(ImapError::Connect(format!("{server}: {e}"))),
    }
}

/// Runs one step under the time limit.
pub async fn step<T>(
    server: &str,
    what: &str,
    work: impl std::future::Future<Output = T>,
) -> Result<T, ImapError> {
    tokio::time::timeout(STEP, work)
        .await
        .map_err(|_| ImapError::Connect(format!("{server}: no answer to {what} in {STEP:?}")))
}

/// A command's failure: refused (`NO`/`BAD`) or the connection's.
pub fn refused(server: &str, what: &str, error: async_imap::error::Error) -> ImapError {
    use async_imap::error::Error;
    match error {
        Error::No(text) | Error::Bad(text) => {
            ImapError::Refused(format!("{server}: {what} refused: {}", text.trim()))
        }
        other => ImapError::Connect(format!("{server}: {what}: {other}")),
    }
}

async fn handshake(
    server: Server<'_>,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    step(
        server.host,
        "TLS handshake",
        wire::tls(server.host, server.ca_file, tcp),
    )
    .await?
    .map_err(ImapError::Tls)
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
