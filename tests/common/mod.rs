//! Test harness: an in-process gateway on 127.0.0.1:0 with a temporary data dir, a raw
//! SMTP client, a minimal HTTP/1.1 client, and the fake upstream server; `browser` drives
//! headless chromium.

#![allow(dead_code)]

pub mod accounts;
pub use postgres::apt;
pub mod backup;
pub mod browser;
pub mod console;
pub mod desk;
pub mod dns;
pub mod dovecot;
pub mod graph;
pub mod helpdesk;
pub mod helpdesk_console;
pub mod load;
pub mod logs;
pub mod nodes;
pub mod oauth;
pub mod people;
pub mod postgres;
pub mod receiver;
pub mod relay;
pub mod tls;
pub mod upstream;

use postern::app::{self, Running};
use postern::config::{ApiConfig, Config, ListenerConfig, TlsConfig, TlsMode, UpstreamConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const TOKEN: &str = "test-admin-token-0123456789abcdef0123456789";
pub const HOST: &str = "gw.test";

/// A running gateway and its temporary directory.
pub struct Gateway {
    pub running: Running,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

/// The test configuration: three submission listeners (plain with plaintext AUTH,
/// STARTTLS, implicit TLS), a plain-text `inbound` listener, API on port 0, maildir
/// upstream `local`.
pub fn test_config(dir: &std::path::Path) -> Config {
    let listener = |name: &str, tls: TlsMode, plain_auth: bool| ListenerConfig {
        name: name.into(),
        bind: "127.0.0.1:0".parse().unwrap(),
        tls,
        allow_plaintext_auth: plain_auth,
        ..ListenerConfig::default()
    };
    Config {
        data_dir: dir.join("data"),
        hostname: HOST.into(),
        api: ApiConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
        },
        tls: TlsConfig {
            cert: dir.join("certs/cert.pem"),
            key: dir.join("certs/key.pem"),
        },
        shutdown_grace_secs: 2,
        // No lookups against the machine's resolver; the authentication test runs its own.
        inbound: postern::config::InboundConfig {
            authenticate: false,
        },
        listeners: vec![
            listener("plain", TlsMode::None, true),
            listener("starttls", TlsMode::Starttls, false),
            listener("implicit", TlsMode::Implicit, false),
            ListenerConfig {
                purpose: postern::config::Purpose::Inbound,
                ..listener("inbound", TlsMode::None, false)
            },
        ],
        ..Config::default()
    }
}

/// A gateway whose default upstream, `sink`, is an SMTP upstream that answers every
/// message `451` (so messages wait in the queue); retries come only after an hour.
pub async fn gateway_with_deferring_upstream() -> (upstream::FakeUpstream, Gateway) {
    let upstream = upstream::FakeUpstream::start(upstream::Script {
        pipelining: true,
        tempfail_first: usize::MAX,
        ..upstream::Script::default()
    })
    .await;
    let port = upstream.addr.port();
    let gw = Gateway::start(move |c| {
        c.upstreams.insert("sink".into(), sink_upstream(port));
        c.default_upstream = "sink".into();
        c.queue.retry_intervals_secs = vec![3600];
    })
    .await;
    (upstream, gw)
}

impl Gateway {
    /// Starts a gateway on the test configuration after `configure` has adjusted it.
    pub async fn start(configure: impl FnOnce(&mut Config)) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        configure(&mut config);
        let running = app::start(config.clone(), Some(TOKEN.into()))
            .await
            .expect("gateway starts");
        Gateway {
            running,
            dir,
            config,
        }
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.running.listener(listener).expect("listener exists")
    }

    /// Creates a user through the API and returns its JSON.
    pub async fn create_user(&self, login: &str, kind: &str, password: &str) -> serde_json::Value {
        let body =
            serde_json::json!({"login": login, "email": login, "kind": kind, "password": password});
        let (status, text) = http(
            self.running.api,
            "POST",
            "/api/v1/users",
            Some(TOKEN),
            Some(&body.to_string()),
        )
        .await;
        assert_eq!(status, 201, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The maildir outbox of the default `local` upstream.
    pub fn outbox(&self) -> PathBuf {
        match self.config.upstreams.get("local") {
            Some(UpstreamConfig::Maildir(m)) => m
                .path
                .clone()
                .unwrap_or_else(|| self.config.data_dir.join("outbox")),
            _ => self.config.data_dir.join("outbox"),
        }
    }

    /// Waits until `n` messages are in the outbox; returns their contents.
    pub async fn wait_outbox(&self, n: usize) -> Vec<Vec<u8>> {
        let new = self.outbox().join("new");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            if files.len() >= n || Instant::now() > deadline {
                files.sort();
                return files.iter().map(|f| std::fs::read(f).unwrap()).collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of a metric line (exact name with labels) in `/metrics`.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, text) = http(self.running.api, "GET", "/metrics", None, None).await;
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }
}

/// One SMTP reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// A raw SMTP client over TCP.
pub struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    /// Connects and reads the greeting.
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut client = Client {
            stream: BufReader::new(stream),
        };
        let greeting = client.reply().await;
        assert_eq!(greeting.code, 220, "{greeting:?}");
        client
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.unwrap();
    }

    /// Reads one (possibly multi-line) reply; code 0 if the server closed the connection.
    pub async fn reply(&mut self) -> Reply {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let read =
                tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
                    .await
                    .expect("reply within 10 s")
                    .unwrap_or(0);
            if read == 0 {
                return Reply { code: 0, text };
            }
            text.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                return Reply { code, text };
            }
        }
    }

    /// Sends a command line (CRLF appended) and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends a command and asserts the reply code.
    pub async fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line).await;
        assert_eq!(reply.code, code, "{line} -> {reply:?}");
        reply
    }

    /// EHLO + AUTH PLAIN.
    pub async fn login(&mut self, user: &str, password: &str) {
        self.expect("EHLO client.test", 250).await;
        let token = base64(&format!("\0{user}\0{password}"));
        self.expect(&format!("AUTH PLAIN {token}"), 235).await;
    }

    /// True once the server has closed the connection.
    pub async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    pub fn into_inner(self) -> TcpStream {
        self.stream.into_inner()
    }
}

pub fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A minimal HTTP/1.1 request; returns (status, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let (status, _, body) = http_full(addr, method, path, token, body).await;
    (status, body)
}

/// A minimal HTTP/1.1 request; returns (status, headers, body).
pub async fn http_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The body of a stored message: everything after the first empty line.
pub fn body_of(message: &[u8]) -> &[u8] {
    let pos = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header block ends");
    &message[pos + 4..]
}

/// A TLS SMTP client that trusts any certificate (the gateway's is self-signed).
pub struct TlsClient {
    stream: BufReader<tokio_rustls::client::TlsStream<TcpStream>>,
}

/// Performs the TLS handshake on `tcp` (after STARTTLS or for implicit TLS).
pub async fn tls_client(tcp: TcpStream) -> TlsClient {
    use std::sync::Arc;
    use tokio_rustls::rustls::{self, pki_types::ServerName};
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAny))
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    TlsClient {
        stream: BufReader::new(tls),
    }
}

impl TlsClient {
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.stream
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        let mut text = String::new();
        loop {
            let mut l = String::new();
            if self.stream.read_line(&mut l).await.unwrap_or(0) == 0 {
                return Reply { code: 0, text };
            }
            text.push_str(&l);
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return Reply {
                    code: l[..3].parse().unwrap_or(0),
                    text,
                };
            }
        }
    }

    pub async fn expect(&mut self, line: &str, code: u16) -> Reply {
        let reply = self.cmd(line).await;
        assert_eq!(reply.code, code, "{line} -> {reply:?}");
        reply
    }
}

#[derive(Debug)]
struct AcceptAny;

impl tokio_rustls::rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        _: &[tokio_rustls::rustls::pki_types::CertificateDer<'_>],
        _: &tokio_rustls::rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: tokio_rustls::rustls::pki_types::UnixTime,
    ) -> Result<tokio_rustls::rustls::client::danger::ServerCertVerified, tokio_rustls::rustls::Error>
    {
        Ok(tokio_rustls::rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        _: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        Ok(tokio_rustls::rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &tokio_rustls::rustls::pki_types::CertificateDer<'_>,
        _: &tokio_rustls::rustls::DigitallySignedStruct,
    ) -> Result<
        tokio_rustls::rustls::client::danger::HandshakeSignatureValid,
        tokio_rustls::rustls::Error,
    > {
        Ok(tokio_rustls::rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<tokio_rustls::rustls::SignatureScheme> {
        tokio_rustls::rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl Gateway {
    /// True if the outbox stays empty for half a second.
    pub async fn wait_outbox_none(&self) -> bool {
        tokio::time::sleep(Duration::from_millis(500)).await;
        std::fs::read_dir(self.outbox().join("new"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    }
}

/// `N` distinct loopback ports that were free a moment ago (for configs of the spawned
/// binary): all bound at once, so no two are the same.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// Where `spawn_binary` writes the binary's stderr: `postern.stderr` beside `config`.
pub fn binary_log(config: &std::path::Path) -> PathBuf {
    config.with_file_name("postern.stderr")
}

/// Starts the real `postern serve --config CONFIG` with the test admin token; its stderr
/// is appended to `binary_log(config)`.
pub fn spawn_binary(config: &std::path::Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(binary_log(config))
        .expect("log file for the binary");
    // POSTERN_TEST_BIN runs these tests against another build (an older commit, say).
    let binary = std::env::var("POSTERN_TEST_BIN").unwrap_or(env!("CARGO_BIN_EXE_postern").into());
    std::process::Command::new(binary)
        .args(["serve", "--config"])
        .arg(config)
        .env("POSTERN_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("postern starts")
}

/// Waits until the API at `api` answers `/readyz` with 200; fails at once, with the
/// binary's log, if `child` exits first.
pub async fn wait_ready(api: SocketAddr, child: &mut std::process::Child, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if TcpStream::connect(api).await.is_ok()
            && http(api, "GET", "/readyz", None, None).await.0 == 200
        {
            return;
        }
        let exited = child.try_wait().expect("child status");
        if exited.is_some() || Instant::now() >= deadline {
            let stderr = std::fs::read_to_string(log).unwrap_or_default();
            panic!("gateway not ready ({exited:?}); its stderr:\n{stderr}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plain-text SMTP upstream on 127.0.0.1:`port` (the fake upstream of a test).
pub fn sink_upstream(port: u16) -> UpstreamConfig {
    UpstreamConfig::Smtp(postern::config::SmtpUpstream {
        host: "127.0.0.1".into(),
        port,
        tls: postern::config::UpstreamTls::None,
        auth: Default::default(),
        username: String::new(),
        password: String::new(),
        ca_file: None,
        pool_size: 4,
        pool_idle_secs: 30,
        max_connections: 8,
        timeout_secs: 5,
        chunking: true,
        oauth: None,
        limits: None,
    })
}

/// Starts the real binary on `config`, waits for its API on `api_port`, and creates the
/// staff user alice@example.com (password `alice-password`).
pub async fn start_with_alice(config: &std::path::Path, api_port: u16) -> std::process::Child {
    let mut child = spawn_binary(config);
    let api: SocketAddr = format!("127.0.0.1:{api_port}").parse().unwrap();
    wait_ready(api, &mut child, &binary_log(config)).await;
    let body = r#"{"login":"alice@example.com","email":"alice@example.com","kind":"staff","password":"alice-password"}"#;
    let (status, text) = http(api, "POST", "/api/v1/users", Some(TOKEN), Some(body)).await;
    assert_eq!(status, 201, "{text}");
    child
}

/// A caller of the API holding a user's token.
pub struct As<'a> {
    pub gw: &'a Gateway,
    pub token: String,
}

impl As<'_> {
    /// `method path` with an optional JSON body: status and the parsed answer.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(
            self.gw.running.api,
            method,
            path,
            Some(&self.token),
            body.as_deref(),
        )
        .await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// POSTs an HTML form (`application/x-www-form-urlencoded`) the way a browser does; the
/// status and the whole answer.
pub async fn post_form(api: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(api).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw)
}
