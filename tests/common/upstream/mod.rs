//! A scriptable fake upstream SMTP server on 127.0.0.1:0 for relay tests.
//!
//! It speaks real SMTP (EHLO/HELO, STARTTLS, AUTH PLAIN/LOGIN, MAIL/RCPT/DATA, RSET, QUIT),
//! un-dot-stuffs what it receives and records everything: accepted connections, command
//! lines, successful logins, messages, and which commands arrived before it replied (it
//! sends replies only when it has no complete input line left, like a pipelining server,
//! so commands pipelined by the client show up together in one `batch`). With `chunking`
//! it offers CHUNKING and takes messages with BDAT as well (RFC 3030; `message`).

#![allow(dead_code)]

mod message;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Says whether a (user, bearer token) pair may log in.
pub type TokenCheck = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// How the fake upstream behaves.
#[derive(Clone, Default)]
pub struct Script {
    /// Advertise PIPELINING.
    pub pipelining: bool,
    /// Offer STARTTLS with this certificate.
    pub starttls: Option<Arc<ServerConfig>>,
    /// Speak TLS from the first byte with this certificate.
    pub implicit_tls: Option<Arc<ServerConfig>>,
    /// Offer AUTH PLAIN LOGIN (after TLS when TLS is offered) and require it for MAIL.
    pub auth: Option<(String, String)>,
    /// Offer AUTH XOAUTH2 OAUTHBEARER and require it for MAIL: a login succeeds when this
    /// says the (user, bearer token) pair is good; otherwise the error challenge, then 535.
    pub oauth: Option<TokenCheck>,
    /// Greeting line instead of `220 fake.test ESMTP`.
    pub greeting: Option<String>,
    /// Never send a greeting (the client must time out).
    pub silent: bool,
    /// Refuse EHLO with `502` so the client must fall back to HELO.
    pub no_ehlo: bool,
    /// Reply to MAIL FROM instead of `250`.
    pub mail_reply: Option<String>,
    /// Replies to RCPT TO for given addresses; others get `250 2.1.5 ok`.
    pub rcpt_replies: Vec<(String, String)>,
    /// Final reply after the data instead of `250 2.0.0 queued`.
    pub data_reply: Option<String>,
    /// Answer the first this-many messages (over all connections) with `451 4.3.0`.
    pub tempfail_first: usize,
    /// The reply to those instead of `451 4.3.0 try again later`.
    pub tempfail_reply: Option<String>,
    /// Refuse the first this-many AUTH attempts with `535 5.7.8` whatever the credentials
    /// (then the configured ones work): a provider that turned SMTP AUTH off, then on.
    pub auth_fail_first: usize,
    /// Close each connection right after replying to this many messages on it.
    pub close_after_messages: Option<usize>,
    /// With `close_after_messages`: instead of closing at once, answer the next command
    /// with this line (e.g. `421 4.4.2 idle timeout`) and then close.
    pub goodbye: Option<String>,
    /// Wait this long before answering DATA (a slow upstream, so that the next delivery
    /// finds this one still waiting for its reply).
    pub slow_data: Option<std::time::Duration>,
    /// Advertise CHUNKING and take BDAT.
    pub chunking: bool,
    /// Answer RSET with this line (and reset nothing) instead of `250 2.0.0 reset`.
    pub rset_reply: Option<String>,
}

/// One message as the server received it (data un-dot-stuffed, final CRLF included; a
/// BDAT message exactly as its chunks carried it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub data: Vec<u8>,
    /// It came over TLS.
    pub tls: bool,
}

/// Everything the server saw.
#[derive(Debug, Default)]
pub struct Record {
    /// TCP connections accepted.
    pub connections: usize,
    /// Every command line, with the index of its connection (0-based).
    pub commands: Vec<(usize, String)>,
    /// Verbs of the commands answered by one write of the server.
    pub batches: Vec<Vec<String>>,
    /// Messages accepted with a 2xx final reply.
    pub messages: Vec<Message>,
    /// Messages whose data was received, whatever the reply.
    pub data_attempts: usize,
    /// Successful logins: user, password, whether TLS was up.
    pub logins: Vec<(String, String, bool)>,
    /// AUTH PLAIN / LOGIN attempts, successful or not.
    pub auth_attempts: usize,
}

impl Record {
    /// The command lines only, in order.
    pub fn lines(&self) -> Vec<&str> {
        self.commands
            .iter()
            .map(|(_, line)| line.as_str())
            .collect()
    }
}

/// A running fake upstream.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    record: Arc<Mutex<Record>>,
}

impl FakeUpstream {
    /// Binds 127.0.0.1:0 and serves every connection with `script`.
    pub async fn start(script: Script) -> FakeUpstream {
        FakeUpstream::start_on("127.0.0.1:0".parse().unwrap(), script).await
    }

    /// Binds `addr` (another loopback address, a chosen port) and serves it with `script`.
    pub async fn start_on(addr: SocketAddr, script: Script) -> FakeUpstream {
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let record = Arc::new(Mutex::new(Record::default()));
        let shared = record.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let index = {
                    let mut record = shared.lock().unwrap();
                    record.connections += 1;
                    record.connections - 1
                };
                let script = script.clone();
                let record = shared.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(tcp, index, script, record).await;
                });
            }
        });
        FakeUpstream { addr, record }
    }

    /// What the server has seen so far.
    pub fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap()
    }
}

enum End {
    Close,
    StartTls,
}

async fn serve_connection(
    tcp: TcpStream,
    index: usize,
    script: Script,
    record: Arc<Mutex<Record>>,
) -> std::io::Result<()> {
    if script.silent {
        let mut tcp = tcp;
        let mut sink = [0u8; 512];
        while tcp.read(&mut sink).await? > 0 {}
        return Ok(());
    }
    if let Some(config) = &script.implicit_tls {
        let tls = TlsAcceptor::from(config.clone()).accept(tcp).await?;
        let mut session = Session::new(tls, index, true, &script, &record);
        session.greet();
        session.serve().await?;
        return Ok(());
    }
    let mut session = Session::new(tcp, index, false, &script, &record);
    session.greet();
    if let End::StartTls = session.serve().await? {
        let config = script.starttls.clone().expect("STARTTLS only when offered");
        assert!(session.input.is_empty(), "client pipelined after STARTTLS");
        let tls = TlsAcceptor::from(config).accept(session.stream).await?;
        let mut session = Session::new(tls, index, true, &script, &record);
        session.serve().await?;
    }
    Ok(())
}

struct Session<'a, S> {
    stream: S,
    index: usize,
    tls: bool,
    script: &'a Script,
    record: &'a Mutex<Record>,
    input: Vec<u8>,
    output: Vec<u8>,
    batch: Vec<String>,
    authed: bool,
    mail_from: Option<String>,
    rcpts: Vec<String>,
    messages: usize,
    closing: bool,
    /// BDAT chunks of the message in progress.
    chunks: Vec<u8>,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Session<'a, S> {
    fn new(
        stream: S,
        index: usize,
        tls: bool,
        script: &'a Script,
        record: &'a Mutex<Record>,
    ) -> Self {
        Session {
            stream,
            index,
            tls,
            script,
            record,
            input: Vec::new(),
            output: Vec::new(),
            batch: Vec::new(),
            authed: false,
            mail_from: None,
            rcpts: Vec::new(),
            messages: 0,
            closing: false,
            chunks: Vec::new(),
        }
    }

    fn greet(&mut self) {
        let greeting = self.script.greeting.clone();
        self.reply(greeting.as_deref().unwrap_or("220 fake.test ESMTP"));
    }

    fn reply(&mut self, line: &str) {
        self.output.extend_from_slice(line.as_bytes());
        self.output.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await?;
            self.output.clear();
            if !self.batch.is_empty() {
                let batch = std::mem::take(&mut self.batch);
                self.record.lock().unwrap().batches.push(batch);
            }
        }
        Ok(())
    }

    /// The next line with its CRLF; replies are sent only when no complete line is buffered.
    async fn read_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(lf) = self.input.iter().position(|&b| b == b'\n') {
                return Ok(Some(self.input.drain(..=lf).collect()));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Sends the replies gathered so far, then reads more input; false at end of stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        self.flush().await?;
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        self.input.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    async fn serve(&mut self) -> std::io::Result<End> {
        loop {
            let Some(line) = self.read_line().await? else {
                return Ok(End::Close);
            };
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            let verb = text
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            self.record
                .lock()
                .unwrap()
                .commands
                .push((self.index, text.clone()));
            self.batch.push(verb.clone());
            if self.closing {
                let goodbye = self.script.goodbye.clone().unwrap_or_default();
                self.reply(&goodbye);
                self.flush().await?;
                return Ok(End::Close);
            }
            match verb.as_str() {
                "EHLO" if self.script.no_ehlo => self.reply("502 5.5.2 EHLO not supported"),
                "EHLO" => self.ehlo(),
                "HELO" => self.reply("250 fake.test"),
                "STARTTLS" if self.script.starttls.is_some() && !self.tls => {
                    self.reply("220 2.0.0 go ahead");
                    self.flush().await?;
                    return Ok(End::StartTls);
                }
                "AUTH" if self.offers_auth() => self.auth(&text).await?,
                "MAIL"
                    if (self.script.auth.is_some() || self.script.oauth.is_some())
                        && !self.authed =>
                {
                    self.reply("530 5.7.0 authentication required")
                }
                "MAIL" => self.mail(&text),
                "RCPT" => self.rcpt(&text),
                "DATA" => {
                    if self.data().await? {
                        return Ok(End::Close);
                    }
                }
                "BDAT" if self.script.chunking => {
                    if self.bdat(&text).await? {
                        return Ok(End::Close);
                    }
                }
                "RSET" => match self.script.rset_reply.clone() {
                    Some(reply) => self.reply(&reply),
                    None => {
                        self.mail_from = None;
                        self.rcpts.clear();
                        self.reply("250 2.0.0 reset");
                    }
                },
                "NOOP" => self.reply("250 2.0.0 ok"),
                "QUIT" => {
                    self.reply("221 2.0.0 bye");
                    self.flush().await?;
                    return Ok(End::Close);
                }
                _ => self.reply("502 5.5.2 not supported"),
            }
        }
    }

    fn offers_auth(&self) -> bool {
        (self.script.auth.is_some() || self.script.oauth.is_some())
            && (self.tls || self.script.starttls.is_none())
    }

    fn ehlo(&mut self) {
        self.reply("250-fake.test");
        if self.script.pipelining {
            self.reply("250-PIPELINING");
        }
        if self.script.chunking {
            self.reply("250-CHUNKING");
        }
        if self.script.starttls.is_some() && !self.tls {
            self.reply("250-STARTTLS");
        }
        match (self.offers_auth(), self.script.oauth.is_some()) {
            (true, true) => self.reply("250-AUTH XOAUTH2 OAUTHBEARER"),
            (true, false) => self.reply("250-AUTH PLAIN LOGIN"),
            _ => {}
        }
        self.reply("250-8BITMIME");
        self.reply("250-SMTPUTF8");
        self.reply("250 ENHANCEDSTATUSCODES");
    }

    async fn auth(&mut self, text: &str) -> std::io::Result<()> {
        let words: Vec<&str> = text.split(' ').collect();
        let credentials = match words.get(1).map(|m| m.to_ascii_uppercase()).as_deref() {
            Some("PLAIN") => {
                let token = match words.get(2) {
                    Some(token) => token.to_string(),
                    None => self.challenge("334 ").await?,
                };
                let decoded = BASE64.decode(token.trim()).unwrap_or_default();
                let parts: Vec<String> = decoded
                    .split(|&b| b == 0)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect();
                (
                    parts.get(1).cloned().unwrap_or_default(),
                    parts.get(2).cloned().unwrap_or_default(),
                )
            }
            Some("LOGIN") => {
                let user = self.challenge("334 VXNlcm5hbWU6").await?;
                let pass = self.challenge("334 UGFzc3dvcmQ6").await?;
                (decode_text(&user), decode_text(&pass))
            }
            Some(mechanism @ ("XOAUTH2" | "OAUTHBEARER")) if self.script.oauth.is_some() => {
                let response = match words.get(2) {
                    Some(token) => token.to_string(),
                    None => self.challenge("334 ").await?,
                };
                return self.oauth(mechanism, &decode_text(&response)).await;
            }
            _ => {
                self.reply("504 5.5.4 unknown mechanism");
                return Ok(());
            }
        };
        let refused_anyway = {
            let mut record = self.record.lock().unwrap();
            record.auth_attempts += 1;
            record.auth_attempts <= self.script.auth_fail_first
        };
        if !refused_anyway && self.script.auth.as_ref() == Some(&credentials) {
            self.authed = true;
            let (user, pass) = credentials;
            self.record
                .lock()
                .unwrap()
                .logins
                .push((user, pass, self.tls));
            self.reply("235 2.7.0 authenticated");
        } else {
            self.reply("535 5.7.8 bad credentials");
        }
        Ok(())
    }

    /// XOAUTH2 (`user=U^Aauth=Bearer T^A^A`) or OAUTHBEARER (`n,a=U,^A...auth=Bearer T^A^A`).
    async fn oauth(&mut self, mechanism: &str, response: &str) -> std::io::Result<()> {
        let fields: Vec<&str> = response.split('\x01').collect();
        let user = match mechanism {
            "XOAUTH2" => fields.first().and_then(|f| f.strip_prefix("user=")),
            _ => fields
                .first()
                .and_then(|f| f.strip_prefix("n,a="))
                .map(|f| f.trim_end_matches(',')),
        }
        .unwrap_or("")
        .to_string();
        let token = fields
            .iter()
            .find_map(|f| f.strip_prefix("auth=Bearer "))
            .unwrap_or("")
            .to_string();
        let check = self.script.oauth.clone().expect("oauth offered");
        if !user.is_empty() && check(&user, &token) {
            self.authed = true;
            let tls = self.tls;
            self.record.lock().unwrap().logins.push((user, token, tls));
            self.reply("235 2.7.0 Accepted");
            return Ok(());
        }
        // The provider's error challenge; the client answers it to get the final reply.
        let error = BASE64.encode(r#"{"status":"401","schemes":"bearer"}"#);
        self.challenge(&format!("334 {error}")).await?;
        self.reply("535 5.7.8 Username and Password not accepted");
        Ok(())
    }

    async fn challenge(&mut self, prompt: &str) -> std::io::Result<String> {
        self.reply(prompt);
        let line = self.read_line().await?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&line).trim_end().to_string())
    }
}

fn decode_text(token: &str) -> String {
    String::from_utf8_lossy(&BASE64.decode(token.trim()).unwrap_or_default()).into_owned()
}
