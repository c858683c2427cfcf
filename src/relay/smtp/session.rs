//! Opening an upstream session: TCP connect, implicit TLS or STARTTLS, greeting,
//! EHLO (HELO when EHLO is refused with 5xx), and AUTH PLAIN / LOGIN / XOAUTH2 /
//! OAUTHBEARER (the token from the upstream's `TokenSource`).
//!
//! After `open` the connection is ready for MAIL FROM. This module never logs credentials
//! and never reads the message.

use super::conn::Connection;
use super::error::SmtpError;
use super::reply::Reply;
use super::stream::{Stream, TlsTarget};
use crate::config::{UpstreamAuth, UpstreamTls};
use crate::relay::oauth::{self, TokenSource};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use smtp_proto::{
    AUTH_LOGIN, AUTH_OAUTHBEARER, AUTH_PLAIN, AUTH_XOAUTH2, EXT_CHUNKING, EXT_START_TLS,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Everything needed to open a session with one upstream (built once from the config).
pub(crate) struct Settings {
    /// Host to connect to and to verify in its certificate.
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
    /// Implicit TLS, STARTTLS or none.
    pub(crate) tls: UpstreamTls,
    /// SASL mechanism, if any.
    pub(crate) auth: UpstreamAuth,
    /// AUTH user name.
    pub(crate) username: String,
    /// AUTH password; never logged.
    pub(crate) password: String,
    /// Where XOAUTH2 / OAUTHBEARER tokens come from.
    pub(crate) oauth: Option<Arc<TokenSource>>,
    /// Certificate verification for this upstream.
    pub(crate) target: TlsTarget,
    /// Name sent with EHLO; empty = the local address as an address literal.
    pub(crate) helo_name: String,
    /// Bound on connect, TLS handshake, each reply and each write.
    pub(crate) timeout: Duration,
    /// Use CHUNKING when offered; when false, the offer is ignored.
    pub(crate) chunking: bool,
}

/// Appends one command line (the parts, then CRLF) to `buf`.
pub(crate) fn command(buf: &mut Vec<u8>, parts: &[&[u8]]) {
    for part in parts {
        buf.extend_from_slice(part);
    }
    buf.extend_from_slice(b"\r\n");
}

/// Connects and runs the session up to the point where a transaction can start. With
/// opportunistic TLS, a failed (or timed-out) handshake is followed by one more connection
/// that does not try STARTTLS (as Postfix's `may` level does): the message goes in clear
/// text rather than not at all. That connection is marked `downgraded`.
pub(crate) async fn open(settings: &Settings) -> Result<Connection, SmtpError> {
    match open_with(settings, true).await {
        Err(SmtpError::Tls(reason)) if settings.tls == UpstreamTls::Opportunistic => {
            tracing::info!(host = %settings.host, port = settings.port, %reason, "opportunistic TLS failed; connecting again without it");
            let mut conn = open_with(settings, false).await?;
            conn.downgraded = true;
            Ok(conn)
        }
        other => other,
    }
}

/// `open`, trying STARTTLS only if `try_starttls` (for opportunistic TLS).
async fn open_with(settings: &Settings, try_starttls: bool) -> Result<Connection, SmtpError> {
    let limit = settings.timeout;
    let connect = TcpStream::connect((settings.host.as_str(), settings.port));
    let tcp = match timeout(limit, connect).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => {
            let addr = format!("{}:{}", settings.host, settings.port);
            return Err(SmtpError::Connect { addr, source });
        }
        Err(_) => return Err(SmtpError::Timeout(limit, "the TCP connection")),
    };
    // Commands are already batched in one buffer; Nagle would only delay them.
    let _ = tcp.set_nodelay(true);
    let helo = helo_name(&settings.helo_name, tcp.local_addr().ok());
    let stream = match settings.tls {
        UpstreamTls::Implicit => match timeout(limit, settings.target.handshake(tcp)).await {
            Ok(stream) => stream?,
            Err(_) => return Err(SmtpError::Timeout(limit, "the TLS handshake")),
        },
        UpstreamTls::Starttls | UpstreamTls::None | UpstreamTls::Opportunistic => {
            Stream::Plain(tcp)
        }
    };
    let mut conn = Connection::new(stream, limit);
    let greeting = conn.read_reply().await?;
    if greeting.code != 220 {
        return Err(SmtpError::Refused(greeting));
    }
    hello(&mut conn, &helo).await?;
    let offered = conn.caps.has(EXT_START_TLS);
    let tls = match settings.tls {
        UpstreamTls::Starttls => true,
        UpstreamTls::Opportunistic => offered && try_starttls,
        UpstreamTls::Implicit | UpstreamTls::None => false,
    };
    if tls {
        conn = match settings.tls {
            UpstreamTls::Opportunistic => try_tls(conn, &settings.target).await?,
            _ => start_tls(conn, &settings.target).await?,
        };
        if conn.is_tls() {
            hello(&mut conn, &helo)
                .await
                .map_err(|e| after_handshake(e, settings.tls))?;
        }
    }
    match settings.auth {
        UpstreamAuth::None => {}
        UpstreamAuth::Plain => auth_plain(&mut conn, settings).await?,
        UpstreamAuth::Login => auth_login(&mut conn, settings).await?,
        UpstreamAuth::Xoauth2 | UpstreamAuth::Oauthbearer => {
            auth_oauth(&mut conn, settings).await?
        }
    }
    if !settings.chunking {
        conn.caps.extensions &= !EXT_CHUNKING;
    }
    Ok(conn)
}

/// A failure of the first exchange over opportunistic TLS (other than a refusal) counts
/// as a failed handshake: with TLS 1.3 a server that rejects the client's side of the
/// handshake says so only after the client has finished it.
fn after_handshake(error: SmtpError, tls: UpstreamTls) -> SmtpError {
    match (tls, error) {
        (
            UpstreamTls::Opportunistic,
            e @ (SmtpError::Io(_) | SmtpError::Eof | SmtpError::Protocol(_)),
        ) => SmtpError::Tls(format!("after the handshake: {e}")),
        (_, e) => e,
    }
}

/// The configured name, or the local address as an RFC 5321 address literal.
fn helo_name(configured: &str, local: Option<SocketAddr>) -> String {
    match (configured.is_empty(), local) {
        (false, _) => configured.to_string(),
        (true, Some(SocketAddr::V4(addr))) => format!("[{}]", addr.ip()),
        (true, Some(SocketAddr::V6(addr))) => format!("[IPv6:{}]", addr.ip()),
        (true, None) => "localhost".to_string(),
    }
}

/// EHLO, or HELO when the upstream refuses EHLO with 5xx (then no extension is used).
async fn hello(conn: &mut Connection, helo: &str) -> Result<(), SmtpError> {
    command(&mut conn.wbuf, &[b"EHLO ", helo.as_bytes()]);
    conn.flush().await?;
    let reply = conn.read_ehlo().await?;
    if reply.code == 250 {
        return Ok(());
    }
    if !(500..600).contains(&reply.code) {
        return Err(SmtpError::Refused(reply));
    }
    command(&mut conn.wbuf, &[b"HELO ", helo.as_bytes()]);
    conn.flush().await?;
    let reply = conn.read_reply().await?;
    if reply.is_positive() {
        Ok(())
    } else {
        Err(SmtpError::Refused(reply))
    }
}

/// Opportunistic STARTTLS: a server that offered it but refuses it gets the message in
/// clear text on the same connection (a failed handshake is an error: the connection is
/// gone).
async fn try_tls(mut conn: Connection, target: &TlsTarget) -> Result<Connection, SmtpError> {
    command(&mut conn.wbuf, &[b"STARTTLS"]);
    conn.flush().await?;
    let reply = conn.read_reply().await?;
    match reply.code {
        // A handshake that hangs failed as much as one that broke.
        220 => conn.start_tls(target).await.map_err(|e| match e {
            SmtpError::Timeout(..) => SmtpError::Tls(e.to_string()),
            e => e,
        }),
        421 => Err(SmtpError::Closing(reply)),
        _ => Ok(conn),
    }
}

/// STARTTLS: required when configured, so a missing offer is an error, not a downgrade.
async fn start_tls(mut conn: Connection, target: &TlsTarget) -> Result<Connection, SmtpError> {
    if !conn.caps.has(EXT_START_TLS) {
        return Err(SmtpError::Tls("upstream does not offer STARTTLS".into()));
    }
    command(&mut conn.wbuf, &[b"STARTTLS"]);
    conn.flush().await?;
    let reply = conn.read_reply().await?;
    if reply.code != 220 {
        return Err(SmtpError::Tls(format!("STARTTLS refused: {reply}")));
    }
    conn.start_tls(target).await
}

/// Fails unless the upstream offered `mechanism` after the last EHLO.
fn require_mechanism(conn: &Connection, mechanism: u64, name: &str) -> Result<(), SmtpError> {
    if conn.caps.auth & mechanism == 0 {
        return Err(SmtpError::Auth(format!(
            "upstream does not offer AUTH {name}"
        )));
    }
    Ok(())
}

/// Maps the final AUTH reply: 235 is success, 421 a closing server, the rest a refusal.
fn auth_result(reply: Reply) -> Result<(), SmtpError> {
    match reply.code {
        235 => Ok(()),
        421 => Err(SmtpError::Closing(reply)),
        _ => Err(SmtpError::Auth(reply.text)),
    }
}

/// AUTH PLAIN with the initial response (RFC 4616): one round trip.
async fn auth_plain(conn: &mut Connection, settings: &Settings) -> Result<(), SmtpError> {
    require_mechanism(conn, AUTH_PLAIN, "PLAIN")?;
    let mut token = Vec::with_capacity(settings.username.len() + settings.password.len() + 2);
    token.push(0);
    token.extend_from_slice(settings.username.as_bytes());
    token.push(0);
    token.extend_from_slice(settings.password.as_bytes());
    let encoded = BASE64.encode(&token);
    command(&mut conn.wbuf, &[b"AUTH PLAIN ", encoded.as_bytes()]);
    conn.flush().await?;
    auth_result(conn.read_reply().await?)
}

/// AUTH LOGIN: user name and password each answer a 334 challenge.
async fn auth_login(conn: &mut Connection, settings: &Settings) -> Result<(), SmtpError> {
    require_mechanism(conn, AUTH_LOGIN, "LOGIN")?;
    command(&mut conn.wbuf, &[b"AUTH LOGIN"]);
    for secret in [&settings.username, &settings.password] {
        conn.flush().await?;
        let reply = conn.read_reply().await?;
        if reply.code != 334 {
            return auth_result(reply);
        }
        command(&mut conn.wbuf, &[BASE64.encode(secret).as_bytes()]);
    }
    conn.flush().await?;
    auth_result(conn.read_reply().await?)
}

/// AUTH XOAUTH2 / OAUTHBEARER with the initial response. A refused token gets a 334 with
/// the server's error (JSON); the client answers it (empty line, or `^A` for OAUTHBEARER)
/// to read the final reply, and the token is forgotten so the next attempt fetches one.
async fn auth_oauth(conn: &mut Connection, settings: &Settings) -> Result<(), SmtpError> {
    let source = settings
        .oauth
        .as_ref()
        .ok_or_else(|| SmtpError::Config("auth xoauth2/oauthbearer needs [oauth]".into()))?;
    let bearer = settings.auth == UpstreamAuth::Oauthbearer;
    match bearer {
        true => require_mechanism(conn, AUTH_OAUTHBEARER, "OAUTHBEARER")?,
        false => require_mechanism(conn, AUTH_XOAUTH2, "XOAUTH2")?,
    }
    let token = source.token().await.map_err(SmtpError::Token)?;
    let (mechanism, response, abort) = match bearer {
        true => (
            "OAUTHBEARER",
            oauth::oauthbearer(&settings.username, &settings.host, settings.port, &token),
            BASE64.encode([1u8]),
        ),
        false => (
            "XOAUTH2",
            oauth::xoauth2(&settings.username, &token),
            String::new(),
        ),
    };
    let encoded = BASE64.encode(response);
    command(
        &mut conn.wbuf,
        &[b"AUTH ", mechanism.as_bytes(), b" ", encoded.as_bytes()],
    );
    conn.flush().await?;
    let mut reply = conn.read_reply().await?;
    // The error challenge (334) is the server saying the token is not good; a 535 says the
    // same. Other refusals (454, 421, a policy 5.7.139) are not about the token.
    let challenged = reply.code == 334;
    if challenged {
        command(&mut conn.wbuf, &[abort.as_bytes()]);
        conn.flush().await?;
        reply = conn.read_reply().await?;
    }
    if challenged || reply.code == 535 {
        source.reject(&token).await;
    }
    auth_result(reply)
}
