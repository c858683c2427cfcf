//! The null relay: the least any SMTP relay can do, as a yardstick for `bench/compare.sh`
//! (`SYSTEMS=null`). It is not Postern and shares no code with it.
//!
//! `cargo bench --bench nullrelay -- LISTEN UPSTREAM [SYNC_FILE]`, `HOST:PORT` both. It
//! accepts SMTP (EHLO offers PIPELINING only), checks nothing, rewrites nothing, and relays
//! each message over a pooled upstream connection (a new one when none is free): `MAIL`,
//! the `RCPT`s and `DATA` in one write, then the client's data as it came (dot-stuffing
//! kept) with the end-of-data line in a second. Without a `SYNC_FILE` it relays before it
//! answers the client's final dot, as it keeps nothing. Tokio's multi-thread runtime, two
//! workers on this machine, as Postern runs.
//!
//! With `SYNC_FILE`, each message is made durable the way Postern's journal does it, then
//! answered `250`, then relayed by a task of its own: queued for one writer thread, which
//! writes everything queued with one `pwrite` into a preallocated, zero-filled file (used
//! as a ring), `fdatasync`s, and wakes the batch (group commit). Without it nothing
//! touches the disk.
//!
//! What it measures: the CPU a message costs on the path smtp-source → relay → smtp-sink
//! when the relay adds only the second hop (and the sync), and the share of the smtp-sink
//! ceiling that reaches on the same machine. A yardstick, not a bound: a relay that writes
//! less per message can do a little better (Postern sends the next envelope in the same
//! write as the data before it).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{mpsc, Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// One upstream connection: buffered reader and its writer.
struct Upstream {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

/// What every session shares: the upstream's address, its idle connections, the writer.
struct Relay {
    upstream: String,
    pool: Mutex<Vec<Upstream>>,
    sync: Option<mpsc::Sender<Commit>>,
}

/// A message's bytes for the writer, and who waits for them to be synced.
type Commit = (Vec<u8>, tokio::sync::oneshot::Sender<()>);

/// Size of the sync file, written as a ring.
const RING: u64 = 64 << 20;

#[tokio::main]
async fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (listen, upstream, sync) = match &args[..] {
        [listen, upstream] => (listen, upstream, None),
        [listen, upstream, file] => (listen, upstream, Some(writer(file)?)),
        _ => {
            eprintln!("usage: nullrelay LISTEN UPSTREAM [SYNC_FILE] (HOST:PORT both)");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(listen).await?;
    let relay = Arc::new(Relay {
        upstream: upstream.clone(),
        pool: Mutex::default(),
        sync,
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let relay = relay.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, &relay).await {
                eprintln!("nullrelay: session: {e}");
            }
        });
    }
}

/// Serves one client until QUIT or end of stream.
async fn session(stream: TcpStream, relay: &Arc<Relay>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 null ESMTP\r\n").await?;
    let mut envelope = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match &verb[..] {
            b"EHLO" => b"250-null\r\n250 PIPELINING\r\n",
            b"MAIL" | b"RCPT" => {
                envelope.extend_from_slice(&line);
                b"250 2.0.0 Ok\r\n"
            }
            b"DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut read).await?;
                message(relay, std::mem::take(&mut envelope), data).await?
            }
            b"RSET" => {
                envelope.clear();
                b"250 2.0.0 Ok\r\n"
            }
            b"QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 2.0.0 Ok\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// One message: relayed before the reply, or synced, answered and relayed by a task.
async fn message(
    relay: &Arc<Relay>,
    envelope: Vec<u8>,
    data: Vec<u8>,
) -> io::Result<&'static [u8]> {
    let Some(sync) = &relay.sync else {
        send(relay, &envelope, &data).await?;
        return Ok(b"250 2.0.0 Ok: relayed\r\n");
    };
    commit(sync, data.clone()).await?;
    let relay = relay.clone();
    tokio::spawn(async move {
        if let Err(e) = send(&relay, &envelope, &data).await {
            eprintln!("nullrelay: relay: {e}");
        }
    });
    Ok(b"250 2.0.0 Ok: queued\r\n")
}

/// Hands `data` to the writer and waits until it is synced.
async fn commit(sync: &mpsc::Sender<Commit>, data: Vec<u8>) -> io::Result<()> {
    let (done, synced) = tokio::sync::oneshot::channel();
    sync.send((data, done)).map_err(io::Error::other)?;
    synced.await.map_err(io::Error::other)
}

/// Starts the writer thread over `path`, a fresh zero-filled file of `RING` octets.
fn writer(path: &str) -> io::Result<mpsc::Sender<Commit>> {
    let file = File::create(path)?;
    let zeros = vec![0u8; 1 << 20];
    for at in (0..RING).step_by(zeros.len()) {
        file.write_all_at(&zeros, at)?;
    }
    file.sync_all()?;
    let (tx, rx) = mpsc::channel::<Commit>();
    std::thread::spawn(move || {
        let mut at = 0u64;
        while let Ok(first) = rx.recv() {
            let batch: Vec<Commit> = std::iter::once(first).chain(rx.try_iter()).collect();
            let bytes: Vec<u8> = batch.iter().flat_map(|(b, _)| b.iter().copied()).collect();
            if at + bytes.len() as u64 > RING {
                at = 0;
            }
            file.write_all_at(&bytes, at).expect("sync file write");
            file.sync_data().expect("sync file fdatasync");
            at += bytes.len() as u64;
            for (_, done) in batch {
                let _ = done.send(());
            }
        }
    });
    Ok(tx)
}

/// Reads message data up to the end-of-data line, which it leaves out.
async fn read_data(read: &mut BufReader<OwnedReadHalf>) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(8192);
    loop {
        let start = data.len();
        if read.read_until(b'\n', &mut data).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if &data[start..] == b".\r\n" {
            data.truncate(start);
            return Ok(data);
        }
    }
}

/// Sends one message over a pooled upstream connection (a new one if none is free).
async fn send(relay: &Relay, envelope: &[u8], data: &[u8]) -> io::Result<()> {
    let pooled = relay.pool.lock().expect("pool lock").pop();
    let mut up = match pooled {
        Some(up) => up,
        None => connect(&relay.upstream).await?,
    };
    let mut head = Vec::with_capacity(envelope.len() + 6);
    head.extend_from_slice(envelope);
    head.extend_from_slice(b"DATA\r\n");
    up.write.write_all(&head).await?;
    let commands = envelope.iter().filter(|&&b| b == b'\n').count() + 1;
    for _ in 0..commands {
        expect(&mut up.read, b'2', b'3').await?;
    }
    let mut body = Vec::with_capacity(data.len() + 3);
    body.extend_from_slice(data);
    body.extend_from_slice(b".\r\n");
    up.write.write_all(&body).await?;
    expect(&mut up.read, b'2', b'2').await?;
    relay.pool.lock().expect("pool lock").push(up);
    Ok(())
}

/// Opens an upstream connection: greeting and EHLO.
async fn connect(upstream: &str) -> io::Result<Upstream> {
    let stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut up = Upstream {
        read: BufReader::new(read),
        write,
    };
    expect(&mut up.read, b'2', b'2').await?;
    up.write.write_all(b"EHLO nullrelay\r\n").await?;
    expect(&mut up.read, b'2', b'2').await?;
    Ok(up)
}

/// Reads one (possibly multi-line) reply; its code must start with `low`..=`high`.
async fn expect(read: &mut BufReader<OwnedReadHalf>, low: u8, high: u8) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line.get(3) != Some(&b'-') {
            break;
        }
    }
    match line.first() {
        Some(c) if (low..=high).contains(c) => Ok(()),
        _ => Err(io::Error::other(format!(
            "upstream replied {}",
            String::from_utf8_lossy(&line).trim_end()
        ))),
    }
}
