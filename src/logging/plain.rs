//! The log line of `serve`, written without the formatting machinery where it can be.
//!
//! The lines are those of `tracing-subscriber`'s default ("full") format without colours,
//! character for character: `2026-11-30T17:48:24.621551Z  INFO target: message k=v …`.
//! That format goes through `write!` for the timestamp, the level, the target and every
//! field name; at two lines per message it was a sixth of the user-space instructions of
//! the hot path. Here the fixed parts, strings and integers are written directly; only
//! values logged with `%` or `?` still go through their `Display` or `Debug`.

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter (no colours; `serve` uses it when stderr is not a terminal).
pub struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let sanitize = writer.sanitizes_ansi_escapes();
        timestamp(&mut writer, SystemTime::now())?;
        writer.write_str(level(meta.level()))?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = Fields {
            out: &mut writer,
            sanitize,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// The level as the default format pads it, between spaces.
fn level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE ",
        Level::DEBUG => "DEBUG ",
        Level::INFO => " INFO ",
        Level::WARN => " WARN ",
        _ => "ERROR ",
    }
}

/// RFC 3339 in UTC with microseconds, and a space: `2026-11-30T17:48:24.621551Z `.
fn timestamp(out: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let Ok(since) = now.duration_since(UNIX_EPOCH) else {
        return out.write_str("<unknown time> ");
    };
    let secs = since.as_secs() as i64;
    let (year, month, day) = crate::rewrite::date::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400) as u64;
    let mut buf = *b"0000-00-00T00:00:00.000000Z ";
    digits(&mut buf[0..4], year.clamp(0, 9999) as u64);
    digits(&mut buf[5..7], u64::from(month));
    digits(&mut buf[8..10], u64::from(day));
    digits(&mut buf[11..13], rem / 3600);
    digits(&mut buf[14..16], rem % 3600 / 60);
    digits(&mut buf[17..19], rem % 60);
    digits(&mut buf[20..26], u64::from(since.subsec_micros()));
    // Only ASCII digits were written into an ASCII template.
    out.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
}

/// Writes `value` into `buf` as decimal digits, right-aligned, zero-padded.
fn digits(buf: &mut [u8], mut value: u64) {
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Writes an event's fields as the default format does: the message first as it is,
/// then ` name=value` with strings quoted (`Debug`), fields from the `log` crate left out.
struct Fields<'w, W: fmt::Write> {
    out: &'w mut W,
    /// Whether escapes that could drive a terminal are defused in the message.
    sanitize: bool,
    first: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> Fields<'_, W> {
    /// The separator and the field's name (and `=`), unless it is the message.
    fn start(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.out.write_char(' ')?;
        }
        match field.name() {
            "message" => Ok(()),
            name => {
                self.out
                    .write_str(name.strip_prefix("r#").unwrap_or(name))?;
                self.out.write_char('=')
            }
        }
    }

    fn record(&mut self, field: &Field, write: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = self.start(field).and_then(|()| write(self.out));
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let message = field.name() == "message";
        let sanitize = self.sanitize;
        self.record(field, |out| match message {
            true => message_text(out, value, sanitize),
            false => quoted(out, value),
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, |out| decimal(out, value, false));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, |out| decimal(out, value.unsigned_abs(), value < 0));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, |out| {
            out.write_str(if value { "true" } else { "false" })
        });
    }

    /// As the default format: the error's `Display`, then its sources, if any, as
    /// ` name.sources=[first, second]`.
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let sanitize = self.sanitize;
        let name = field.name();
        self.record(field, |out| {
            displayed(out, value, sanitize)?;
            let Some(mut source) = value.source() else {
                return Ok(());
            };
            write!(out, " {name}.sources=[")?;
            displayed(out, source, sanitize)?;
            while let Some(next) = source.source() {
                out.write_str(", ")?;
                displayed(out, next, sanitize)?;
                source = next;
            }
            out.write_char(']')
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let message = field.name() == "message";
        let sanitize = self.sanitize;
        self.record(field, |out| match message && sanitize {
            true => write!(Defused { out }, "{value:?}"),
            false => write!(out, "{value:?}"),
        });
    }
}

/// An error's `Display`, defused like a message.
fn displayed(
    out: &mut impl fmt::Write,
    error: &dyn std::error::Error,
    sanitize: bool,
) -> fmt::Result {
    match sanitize {
        true => write!(Defused { out }, "{error}"),
        false => write!(out, "{error}"),
    }
}

/// A message given as a plain string (`message = "…"`).
fn message_text(out: &mut impl fmt::Write, text: &str, sanitize: bool) -> fmt::Result {
    match sanitize {
        true => Defused { out }.write_str(text),
        false => out.write_str(text),
    }
}

/// A string as `Debug` writes it, without the formatting machinery when nothing in it
/// needs escaping.
fn quoted(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let plain = text
        .bytes()
        .all(|b| (b' '..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if !plain {
        return write!(out, "{text:?}");
    }
    out.write_char('"')?;
    out.write_str(text)?;
    out.write_char('"')
}

fn decimal(out: &mut impl fmt::Write, value: u64, negative: bool) -> fmt::Result {
    if negative {
        out.write_char('-')?;
    }
    crate::digits::decimal(out, value, 1)
}

/// Writes through `out`, defusing the characters that could drive a terminal, as the
/// default format does for messages (ESC, BEL, BS, FF, DEL and the C1 controls).
struct Defused<'a, W: fmt::Write> {
    out: &'a mut W,
}

impl<W: fmt::Write> fmt::Write for Defused<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let risky = |c: char| {
            matches!(
                c,
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
            )
        };
        if !text.contains(risky) {
            return self.out.write_str(text);
        }
        for c in text.chars() {
            match c {
                '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' => {
                    write!(self.out, "\\x{:02x}", c as u32)?
                }
                '\u{80}'..='\u{9f}' => write!(self.out, "\\u{{{:x}}}", c as u32)?,
                c => self.out.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[derive(Debug)]
    struct Failure(&'static str, Option<Box<Failure>>);

    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    /// Every kind of field `serve` logs, and the awkward ones.
    fn events() {
        let peer: std::net::SocketAddr = "127.0.0.1:39176".parse().unwrap();
        let id = "00000000000004E2";
        tracing::info!(queue_id = %id, from = %"load@postern.bench", rcpts = 1usize, size = 4421u64, peer = %peer, "queued");
        tracing::debug!(queue_id = id, upstream = "sink", delivered = 1, "relayed");
        tracing::warn!(error = %"421 4.4.2 closing", "delivery failed");
        let nested = Failure(
            "outer",
            Some(Box::new(Failure(
                "middle",
                Some(Box::new(Failure("inner", None))),
            ))),
        );
        tracing::error!(error = &nested as &dyn std::error::Error, "with sources");
        tracing::error!(error = &Failure("alone", None) as &dyn std::error::Error);
        tracing::info!(n = -5i64, ok = true, r#type = "x", ratio = 1.5f64, list = ?[1, 2], "fields");
        tracing::info!(
            text = "needs \"escape\"\\ and\r\n\t",
            utf8 = "Grüße",
            "escapes"
        );
        tracing::info!("a message with \x1b[31m, \x07 and \u{85} {}", 1);
        tracing::trace!(only = 1);
    }

    fn lines(plain: bool) -> Vec<String> {
        let captured = Captured::default();
        let out = captured.clone();
        let builder = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(move || out.clone());
        match plain {
            true => tracing::subscriber::with_default(builder.event_format(Plain).finish(), events),
            false => tracing::subscriber::with_default(builder.finish(), events),
        }
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn lines_are_those_of_the_default_format() {
        let (plain, full) = (lines(true), lines(false));
        assert_eq!(plain.len(), 9, "{plain:#?}");
        assert_eq!(plain.len(), full.len());
        for (mine, theirs) in plain.iter().zip(&full) {
            // The timestamps differ by the moment; their shape is the same.
            assert_eq!(mine.as_bytes()[27], b' ', "{mine}");
            assert_eq!(
                mine[..27].len(),
                theirs.find(' ').unwrap(),
                "{mine} / {theirs}"
            );
            assert_eq!(&mine[27..], &theirs[27..]);
        }
        assert!(plain[0].ends_with(" INFO postern::logging::plain::tests: queued queue_id=00000000000004E2 from=load@postern.bench rcpts=1 size=4421 peer=127.0.0.1:39176"), "{}", plain[0]);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let at = |secs: u64, micros: u64| {
            let mut out = String::new();
            let when = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            timestamp(&mut out, when).unwrap();
            out
        };
        assert_eq!(at(1_796_060_904, 621_551), "2026-11-30T17:48:24.621551Z ");
        assert_eq!(at(951_782_405, 7), "2000-02-29T00:00:05.000007Z ");
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z ");
    }
}
