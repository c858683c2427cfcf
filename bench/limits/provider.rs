//! A fake provider's SMTP submission host with Exchange Online's sending limits per
//! mailbox (the envelope sender): at most `connections` sessions open at once that sent
//! as it (beyond: `432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded`), and
//! at most `per_minute` messages started in any 60 seconds (beyond: `421 4.7.0`, and the
//! session is closed). It counts what it accepted and what it refused.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What the provider saw.
#[derive(Debug, Default)]
pub struct Counts {
    pub accepted: usize,
    pub refused_connections: usize,
    pub refused_rate: usize,
    pub most_open: usize,
}

#[derive(Default)]
struct State {
    counts: Counts,
    /// Sessions open per mailbox.
    open: HashMap<String, usize>,
    /// When each message of the last minute started, per mailbox.
    starts: HashMap<String, VecDeque<Instant>>,
}

/// The running provider.
pub struct Provider {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Provider {
    pub async fn start(connections: usize, per_minute: usize) -> std::io::Result<Provider> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let mut mailbox = None;
                    let _ = session(tcp, &state, connections, per_minute, &mut mailbox).await;
                    if let Some(mailbox) = mailbox {
                        let mut st = state.lock().unwrap();
                        *st.open.entry(mailbox).or_default() -= 1;
                    }
                });
            }
        });
        Ok(Provider { addr, state })
    }

    /// Accepted messages, refusals (connections, rate), most sessions open at once.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let st = self.state.lock().unwrap();
        let c = &st.counts;
        (
            c.accepted,
            c.refused_connections,
            c.refused_rate,
            c.most_open,
        )
    }
}

async fn session(
    tcp: TcpStream,
    state: &Mutex<State>,
    connections: usize,
    per_minute: usize,
    mailbox: &mut Option<String>,
) -> std::io::Result<()> {
    let (read, mut write) = tcp.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 provider.test ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-provider.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            let from = line[10..]
                .trim()
                .trim_matches(['<', '>'])
                .to_ascii_lowercase();
            match admit(state, mailbox, from, connections, per_minute) {
                Ok(()) => b"250 2.1.0 sender ok\r\n",
                Err(Refusal::Threads) => {
                    b"432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded\r\n"
                }
                Err(Refusal::Rate) => {
                    write
                        .write_all(b"421 4.7.0 Too many messages, try again later\r\n")
                        .await?;
                    return Ok(());
                }
            }
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await?;
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
            }
            state.lock().unwrap().counts.accepted += 1;
            b"250 2.0.0 queued\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 2.0.0 ok\r\n"
        };
        write.write_all(reply).await?;
    }
}

enum Refusal {
    Threads,
    Rate,
}

fn admit(
    state: &Mutex<State>,
    mailbox: &mut Option<String>,
    from: String,
    connections: usize,
    per_minute: usize,
) -> Result<(), Refusal> {
    let mut st = state.lock().unwrap();
    if mailbox.is_none() {
        let open = st.open.entry(from.clone()).or_default();
        *open += 1;
        let open = *open;
        st.counts.most_open = st.counts.most_open.max(open);
        *mailbox = Some(from.clone());
        if open > connections {
            st.counts.refused_connections += 1;
            return Err(Refusal::Threads);
        }
    }
    let now = Instant::now();
    let starts = st.starts.entry(from).or_default();
    while starts
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        starts.pop_front();
    }
    if starts.len() >= per_minute {
        st.counts.refused_rate += 1;
        return Err(Refusal::Rate);
    }
    starts.push_back(now);
    Ok(())
}
