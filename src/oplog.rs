//! The operation log: one line per LDAP operation, SCIM request and console
//! page, under the target `convergences::ops`.
//!
//! Written through `tracing`'s formatter it cost a third of the server's
//! LDAP throughput (a search's line took more instructions than the search,
//! half of them in ANSI colours, and every line was its own `write(2)` under
//! stderr's lock). Here a line is formatted by hand, byte for byte as
//! `tracing-subscriber` formats it (text or JSON; the unit tests compare
//! both), into a shared buffer; a thread writes the buffer to stderr in
//! batches, every `log_flush_ms` or sooner when it fills. Nothing is lost:
//! a full buffer (`log_buffer_kb`, stderr not keeping up) makes the
//! operation wait for the writer, and [`flush`] at shutdown writes what is
//! left. Lines keep the order in which operations finished.

use std::io::Write;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How lines are written: the `log_format` setting, and colours for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text { ansi: bool },
    Json,
}

/// Where lines go once formatted.
struct Sink {
    format: Format,
    /// Formatted lines waiting for the writer.
    pending: Mutex<Vec<u8>>,
    /// The writer is woken early when `pending` passes a batch.
    filled: Condvar,
    /// Operations waiting for room are woken when the writer took `pending`.
    drained: Condvar,
    /// Held while a batch is taken and written: batches reach stderr in order.
    output: Mutex<()>,
    flush_every: Duration,
    max_pending: usize,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// A batch wakes the writer before its interval when it is this large.
const BATCH_BYTES: usize = 64 * 1024;

/// Start the operation log (once per process: `serve`). Without it, lines
/// are not written (servers started in-process by tests).
pub fn start(format: Format, flush_ms: u64, buffer_kb: usize) {
    let sink = Sink {
        format,
        pending: Mutex::new(Vec::with_capacity(BATCH_BYTES)),
        filled: Condvar::new(),
        drained: Condvar::new(),
        output: Mutex::new(()),
        flush_every: Duration::from_millis(flush_ms.max(1)),
        max_pending: buffer_kb.max(1) * 1024,
    };
    if SINK.set(sink).is_err() {
        return;
    }
    let spawned = std::thread::Builder::new().name("oplog".into()).spawn(|| {
        let Some(sink) = SINK.get() else { return };
        loop {
            if let Ok(pending) = sink.pending.lock() {
                // Spurious wake-ups and timeouts alike end in a write of what is there.
                let _ = sink.filled.wait_timeout_while(pending, sink.flush_every, |p| p.len() < BATCH_BYTES);
            }
            sink.write_pending();
        }
    });
    if let Err(e) = spawned {
        tracing::error!("the operation log's writer did not start ({e}): lines are written at shutdown");
    }
}

/// Whether operation lines are written at all.
pub fn active() -> bool {
    SINK.get().is_some()
}

/// Write every line formatted so far (at shutdown, and before the process exits).
pub fn flush() {
    if let Some(sink) = SINK.get() {
        sink.write_pending();
    }
}

impl Sink {
    fn write_pending(&self) {
        let Ok(_order) = self.output.lock() else { return };
        let batch = match self.pending.lock() {
            Ok(mut p) if !p.is_empty() => std::mem::replace(&mut *p, Vec::with_capacity(BATCH_BYTES)),
            _ => return,
        };
        self.drained.notify_all();
        // A log that cannot be written has nowhere to say so.
        let _ = std::io::stderr().lock().write_all(&batch);
    }

    fn push(&self, line: &[u8]) {
        let Ok(mut pending) = self.pending.lock() else { return };
        while pending.len() >= self.max_pending {
            self.filled.notify_one();
            pending = match self.drained.wait_timeout(pending, self.flush_every) {
                Ok((p, _)) => p,
                Err(_) => return,
            };
        }
        pending.extend_from_slice(line);
        if pending.len() >= BATCH_BYTES {
            self.filled.notify_one();
        }
    }
}

thread_local! {
    /// Each thread formats its lines here, outside the shared buffer's lock.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(512));
}

/// One line's fields, in the order they are given (as `tracing::info!` took them).
pub struct Line<'a> {
    message: &'static str,
    fields: [(&'static str, Value<'a>); MAX_FIELDS],
    len: usize,
}

const MAX_FIELDS: usize = 12;

#[derive(Clone, Copy)]
enum Value<'a> {
    /// `%value` in `tracing`: written as it is in text, a string in JSON.
    Text(&'a str),
    /// A `&str` given as is: quoted (Debug) in text, a string in JSON.
    Quoted(&'a str),
    Unsigned(u64),
    Signed(i64),
}

impl<'a> Line<'a> {
    pub fn new(message: &'static str) -> Line<'a> {
        Line { message, fields: [("", Value::Unsigned(0)); MAX_FIELDS], len: 0 }
    }

    fn field(mut self, name: &'static str, value: Value<'a>) -> Self {
        if let Some(slot) = self.fields.get_mut(self.len) {
            *slot = (name, value);
            self.len += 1;
        }
        self
    }

    pub fn text(self, name: &'static str, value: &'a str) -> Self {
        self.field(name, Value::Text(value))
    }

    pub fn quoted(self, name: &'static str, value: &'a str) -> Self {
        self.field(name, Value::Quoted(value))
    }

    pub fn unsigned(self, name: &'static str, value: u64) -> Self {
        self.field(name, Value::Unsigned(value))
    }

    pub fn signed(self, name: &'static str, value: i64) -> Self {
        self.field(name, Value::Signed(value))
    }

    /// Format the line now (its time is now) and hand it to the writer.
    pub fn write(self) {
        let Some(sink) = SINK.get() else { return };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        SCRATCH.with(|scratch| {
            let Ok(mut buf) = scratch.try_borrow_mut() else { return };
            buf.clear();
            self.format(sink.format, now, &mut buf);
            sink.push(&buf);
        });
    }

    fn format(&self, format: Format, now: Duration, out: &mut Vec<u8>) {
        let fields = &self.fields[..self.len];
        match format {
            Format::Text { ansi } => {
                let (dim, off, italic, green) =
                    if ansi { ("\x1b[2m", "\x1b[0m", "\x1b[3m", "\x1b[32m") } else { ("", "", "", "") };
                out.extend_from_slice(dim.as_bytes());
                timestamp(now, out);
                out.extend_from_slice(off.as_bytes());
                out.push(b' ');
                for part in [green, " INFO", off, " ", dim, TARGET, off, dim, ":", off, " ", self.message] {
                    out.extend_from_slice(part.as_bytes());
                }
                for (name, value) in fields {
                    for part in [" ", italic, name, off, dim, "=", off] {
                        out.extend_from_slice(part.as_bytes());
                    }
                    value.write(false, out);
                }
            }
            Format::Json => {
                // tracing-subscriber's JSON: the message, the fields as given, then the target.
                out.extend_from_slice(b"{\"timestamp\":\"");
                timestamp(now, out);
                out.extend_from_slice(b"\",\"level\":\"INFO\"");
                for (name, value) in [("message", Value::Text(self.message))].iter().chain(fields) {
                    out.push(b',');
                    json_str(name, out);
                    out.push(b':');
                    value.write(true, out);
                }
                out.extend_from_slice(b",\"target\":\"");
                out.extend_from_slice(TARGET.as_bytes());
                out.extend_from_slice(b"\"}");
            }
        }
        out.push(b'\n');
    }
}

const TARGET: &str = "convergences::ops";

impl Value<'_> {
    fn write(self, json: bool, out: &mut Vec<u8>) {
        match self {
            Value::Text(s) | Value::Quoted(s) if json => json_str(s, out),
            Value::Text(s) => out.extend_from_slice(s.as_bytes()),
            Value::Quoted(s) => debug_str(s, out),
            Value::Unsigned(n) => number(n, false, out),
            Value::Signed(n) => number(n.unsigned_abs(), n < 0, out),
        }
    }
}

/// RFC 3339 in UTC with microseconds, as tracing-subscriber's `SystemTime` writes it.
fn timestamp(since_epoch: Duration, out: &mut Vec<u8>) {
    let secs = since_epoch.as_secs() as i64;
    let (y, m, d) = crate::calendar::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let micros = since_epoch.subsec_micros();
    let digits = |n: i64, width: usize, out: &mut Vec<u8>| {
        let mut buf = [b'0'; 6];
        let mut n = n.max(0);
        for slot in buf[..width].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&buf[..width]);
    };
    digits(y, 4, out);
    out.push(b'-');
    digits(m, 2, out);
    out.push(b'-');
    digits(d, 2, out);
    out.push(b'T');
    digits(s / 3600, 2, out);
    out.push(b':');
    digits(s / 60 % 60, 2, out);
    out.push(b':');
    digits(s % 60, 2, out);
    out.push(b'.');
    digits(i64::from(micros), 6, out);
    out.push(b'Z');
}

fn number(n: u64, negative: bool, out: &mut Vec<u8>) {
    if negative {
        out.push(b'-');
    }
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A string as `{:?}` writes it; plain ASCII without quotes or backslashes directly.
fn debug_str(s: &str, out: &mut Vec<u8>) {
    if s.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = write!(out, "{s:?}");
    }
}

fn json_str(s: &str, out: &mut Vec<u8>) {
    // serde_json's escaping, which tracing-subscriber's JSON uses.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// What tracing-subscriber writes for the same event, with `ansi` or as JSON.
    fn tracing_line(format: Format, event: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl Write for Captured {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let builder = tracing_subscriber::fmt().with_writer(move || writer.clone());
        match format {
            Format::Json => tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), event),
            Format::Text { ansi } => tracing::subscriber::with_default(builder.with_ansi(ansi).finish(), event),
        }
        let bytes = captured.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    fn ours(format: Format, line: Line<'_>) -> String {
        let mut out = Vec::new();
        line.format(format, SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The line without its time, which differs between the two writers.
    fn untimed(line: &str) -> String {
        let t = line.find("Z").map(|i| i + 1).unwrap_or(0);
        let start = line.find("20").unwrap_or(0);
        format!("{}{}", &line[..start], &line[t..])
    }

    fn ldap_line(diagnostic: &str) -> Line<'_> {
        Line::new("ldap")
            .unsigned("conn", 7)
            .signed("msgid", -3)
            .quoted("op", "search")
            .text("who", "uid=agnès,ou=agents,o=219400280,dc=cig,dc=fr")
            .text("object", "Sub (&(sn=Dup*)(cn=\"x\"))")
            .signed("result", 32)
            .text("diagnostic", diagnostic)
            .unsigned("us", 1234)
    }

    fn ldap_event(diagnostic: &str) {
        tracing::info!(
            target: "convergences::ops",
            conn = 7u64,
            msgid = -3i64,
            op = "search",
            who = %"uid=agnès,ou=agents,o=219400280,dc=cig,dc=fr",
            object = %"Sub (&(sn=Dup*)(cn=\"x\"))",
            result = 32i64,
            diagnostic = %diagnostic,
            us = 1234u64,
            "ldap"
        );
    }

    #[test]
    fn an_operation_line_is_what_tracing_would_have_written_in_every_format() {
        for format in [Format::Text { ansi: false }, Format::Text { ansi: true }, Format::Json] {
            for diagnostic in ["", "no such object: \"uid=x\" \\ tab\there", "entrée"] {
                let expected = tracing_line(format, || ldap_event(diagnostic));
                let got = ours(format, ldap_line(diagnostic));
                assert_eq!(untimed(&got), untimed(&expected), "{format:?}");
            }
        }
        let expected = tracing_line(
            Format::Json,
            || tracing::info!(target: "convergences::ops", method = %"GET", path = %"/scim/v2/Users", status = 200u64, us = 9u64, "scim"),
        );
        let got = ours(
            Format::Json,
            Line::new("scim")
                .text("method", "GET")
                .text("path", "/scim/v2/Users")
                .unsigned("status", 200)
                .unsigned("us", 9),
        );
        assert_eq!(untimed(&got), untimed(&expected));
    }

    #[test]
    fn the_time_is_rfc_3339_utc_with_microseconds() {
        let mut out = Vec::new();
        timestamp(Duration::new(1_796_691_133, 781_812_345), &mut out);
        assert_eq!(String::from_utf8(out).unwrap_or_default(), "2026-12-08T00:52:13.781812Z");
        let mut out = Vec::new();
        timestamp(Duration::ZERO, &mut out);
        assert_eq!(String::from_utf8(out).unwrap_or_default(), "1970-01-01T00:00:00.000000Z");
    }
}
