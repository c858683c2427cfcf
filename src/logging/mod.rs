//! Log output off the hot path: `serve` logs a line or two per message, and writing each
//! one to stderr was a `write` system call on a session's thread, twice per message.
//!
//! [`Output`] is the `tracing` writer. A line at `INFO` or below is appended to a shared
//! buffer, and a writer thread empties the buffer [`INTERVAL`] after its first line (at
//! once past [`HIGH_WATER`] octets), in one `write`. A `WARN` or `ERROR` line is written
//! at once, together with everything buffered before it, so order is kept and what needs
//! attention is never held back. Past [`MAX_BUFFERED`] octets (a stalled stderr) the
//! logging thread writes itself instead of buffering more.
//!
//! Dropping the [`Flusher`] writes what is left and stops the thread. A process killed
//! with SIGKILL loses at most the last [`INTERVAL`] of informational lines; the spool,
//! not the log, is what keeps mail.

mod plain;

pub use plain::Plain;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long a buffered line waits at most.
pub const INTERVAL: Duration = Duration::from_millis(50);
/// A buffer this full is written without waiting for the interval.
pub const HIGH_WATER: usize = 64 * 1024;
/// A buffer this full is written by the thread that logs (back-pressure).
pub const MAX_BUFFERED: usize = 8 * 1024 * 1024;

/// The `tracing` writer (cheap to clone).
#[derive(Clone)]
pub struct Output {
    inner: Arc<Inner>,
}

/// Owns the writer thread: dropping it writes what is buffered and stops the thread.
pub struct Flusher {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

struct Inner {
    interval: Duration,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while writing; a buffer is only taken under it, so lines leave in order.
    out: Mutex<Out>,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    closed: bool,
}

struct Out {
    target: Box<dyn Write + Send>,
    spare: Vec<u8>,
}

/// One event's writer: `tracing-subscriber` formats a whole line, then writes it once.
pub struct Line<'a> {
    inner: &'a Inner,
    urgent: bool,
}

/// A buffered output to stderr, and its thread.
pub fn stderr() -> io::Result<(Output, Flusher)> {
    to(Box::new(io::stderr()), INTERVAL)
}

/// A buffered output to `target` that holds lines for `interval` at most, and its thread.
pub fn to(target: Box<dyn Write + Send>, interval: Duration) -> io::Result<(Output, Flusher)> {
    let inner = Arc::new(Inner {
        interval,
        pending: Mutex::default(),
        wake: Condvar::new(),
        out: Mutex::new(Out {
            target,
            spare: Vec::new(),
        }),
    });
    let thread = std::thread::Builder::new()
        .name("postern-log".into())
        .spawn({
            let inner = inner.clone();
            move || inner.run()
        })?;
    let output = Output {
        inner: inner.clone(),
    };
    let flusher = Flusher {
        inner,
        thread: Some(thread),
    };
    Ok((output, flusher))
}

impl Inner {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The writer thread: sleeps until a line arrives, lets the interval pass (or the
    /// buffer fill), writes, and again.
    fn run(&self) {
        loop {
            let mut pending = self.pending();
            while pending.buf.is_empty() && !pending.closed {
                pending = self.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
            }
            if pending.closed {
                break;
            }
            let (pending, _) = self
                .wake
                .wait_timeout_while(pending, self.interval, |p| {
                    p.buf.len() < HIGH_WATER && !p.closed
                })
                .unwrap_or_else(|p| p.into_inner());
            drop(pending);
            self.drain();
        }
        self.drain();
    }

    /// Appends one line; wakes the writer thread when the buffer was empty or just filled.
    fn append(&self, line: &[u8]) {
        let mut pending = self.pending();
        let before = pending.buf.len();
        pending.buf.extend_from_slice(line);
        let after = pending.buf.len();
        drop(pending);
        if after >= MAX_BUFFERED {
            self.drain();
        } else if before == 0 || (before < HIGH_WATER && after >= HIGH_WATER) {
            self.wake.notify_one();
        }
    }

    /// Writes everything buffered so far. Errors are dropped: there is nowhere left to
    /// report a failing stderr.
    fn drain(&self) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let Out { target, spare } = &mut *out;
        std::mem::swap(&mut self.pending().buf, spare);
        if !spare.is_empty() {
            let _ = target.write_all(spare);
            let _ = target.flush();
            spare.clear();
        }
    }
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.append(buf);
        if self.urgent {
            self.inner.drain();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Output {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            inner: &self.inner,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            inner: &self.inner,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.inner.pending().closed = true;
        self.inner.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A target that records each `write_all` as one chunk.
    #[derive(Clone, Default)]
    struct Chunks(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Chunks {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Chunks {
        fn joined(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().concat()).unwrap()
        }
        fn count(&self) -> usize {
            self.0.lock().unwrap().len()
        }
    }

    fn line(output: &Output, level: Level, text: &str) {
        let urgent = level <= Level::WARN;
        let mut w = Line {
            inner: &output.inner,
            urgent,
        };
        w.write_all(text.as_bytes()).unwrap();
    }

    /// Long enough that nothing in a test is written by the timer.
    const NEVER: Duration = Duration::from_secs(3600);

    #[test]
    fn info_lines_leave_together_after_the_interval() {
        let chunks = Chunks::default();
        let (output, _flusher) = to(Box::new(chunks.clone()), Duration::from_millis(20)).unwrap();
        {
            // The writer thread cannot take the buffer while we hold the output.
            let _out = output.inner.out.lock().unwrap();
            for n in 0..100 {
                line(&output, Level::INFO, &format!("line {n}\n"));
            }
            assert_eq!(chunks.count(), 0);
        }
        let started = Instant::now();
        while chunks.count() == 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        let expected: String = (0..100).map(|n| format!("line {n}\n")).collect();
        assert_eq!(chunks.joined(), expected);
        assert_eq!(chunks.count(), 1, "one write for the hundred lines");
    }

    #[test]
    fn a_warning_is_written_at_once_after_what_came_before() {
        let chunks = Chunks::default();
        let (output, _flusher) = to(Box::new(chunks.clone()), NEVER).unwrap();
        line(&output, Level::INFO, "first\n");
        assert_eq!(chunks.count(), 0);
        line(&output, Level::WARN, "careful\n");
        assert_eq!(chunks.joined(), "first\ncareful\n");
        line(&output, Level::ERROR, "broken\n");
        assert_eq!(chunks.joined(), "first\ncareful\nbroken\n");
    }

    #[test]
    fn dropping_the_flusher_writes_the_rest() {
        let chunks = Chunks::default();
        let (output, flusher) = to(Box::new(chunks.clone()), NEVER).unwrap();
        line(&output, Level::INFO, "last words\n");
        assert_eq!(chunks.count(), 0);
        drop(flusher);
        assert_eq!(chunks.joined(), "last words\n");
    }

    #[test]
    fn a_full_buffer_does_not_wait_for_the_interval() {
        let chunks = Chunks::default();
        let (output, _flusher) = to(Box::new(chunks.clone()), NEVER).unwrap();
        let big = "x".repeat(MAX_BUFFERED);
        line(&output, Level::INFO, &big);
        assert_eq!(chunks.joined().len(), MAX_BUFFERED, "written by the caller");
    }

    #[test]
    fn through_tracing_info_waits_and_a_warning_does_not() {
        let chunks = Chunks::default();
        let (output, _flusher) = to(Box::new(chunks.clone()), NEVER).unwrap();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(output)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(queue_id = "q1", "queued");
            assert_eq!(chunks.count(), 0);
            tracing::warn!("upstream slow");
        });
        let text = chunks.joined();
        let queued = text
            .find("queued")
            .expect("info line written with the warning");
        assert!(queued < text.find("upstream slow").unwrap(), "{text}");
        assert!(text.contains("queue_id=\"q1\""), "{text}");
    }
}
