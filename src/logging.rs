//! Log output: `tracing` events to stderr, filtered by `log_level` (reloadable on SIGHUP) and
//! formatted by `log_format` (`pretty`: one human-readable line per event; `json`: one JSON
//! object per line, fields at the top level). Access-log events have target `upgate::access`
//! (see [`crate::server::access`]).
//!
//! An event is formatted on the thread that emits it, then handed to one writer thread through a
//! bounded queue: no io_uring thread ever blocks on stderr (a slow journald, a full pipe). When
//! the queue is full the line is dropped and counted (`upgate_log_lines_dropped_total`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::config::LogFormat;

/// This process's `node_id`, on every access-log line (set once, when the node starts).
static NODE_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names the node in the access log; the first call wins (one node per process in production).
pub fn set_node_id(id: &str) {
    let _ = NODE_ID.set(id.to_owned());
}

/// The `node_id` given to [`set_node_id`] (empty before).
pub fn node_id() -> &'static str {
    NODE_ID.get().map_or("", String::as_str)
}

/// Formatted lines waiting for the writer thread.
const QUEUE_LINES: usize = 16 * 1024;

/// Changes the filter of the installed subscriber; flushes the writer thread.
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    queue: Sender<Msg>,
}

impl LogHandle {
    /// Replaces the filter (`log_level` syntax); the old one stays on error.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let filter = parse(level)?;
        self.filter.reload(filter).map_err(|e| e.to_string())
    }

    /// Waits (up to a second) until every line logged so far is written.
    pub fn flush(&self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let limit = Duration::from_secs(1);
        if self.queue.send_timeout(Msg::Flush(tx), limit).is_ok() {
            let _ = rx.recv_timeout(limit);
        }
    }
}

enum Msg {
    Line(Vec<u8>),
    Flush(Sender<()>),
}

/// The `MakeWriter` of the fmt layer: one [`LineWriter`] per event.
struct Queue(Sender<Msg>);

impl<'a> MakeWriter<'a> for Queue {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            buf: Vec::with_capacity(256),
            queue: &self.0,
        }
    }
}

/// Collects one formatted event; queues it when dropped.
struct LineWriter<'a> {
    buf: Vec<u8>,
    queue: &'a Sender<Msg>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self
            .queue
            .try_send(Msg::Line(std::mem::take(&mut self.buf)))
        {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => crate::metrics::log_line_dropped(),
            // The writer thread is gone: write in place rather than lose the line.
            Err(TrySendError::Disconnected(Msg::Line(line))) => {
                let _ = std::io::stderr().write_all(&line);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The writer thread: writes what is queued, many lines per `write`.
fn write_lines(rx: Receiver<Msg>) {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        for msg in std::iter::once(first).chain(rx.try_iter().take(1024)) {
            match msg {
                Msg::Line(line) => out.extend_from_slice(&line),
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        let _ = std::io::stderr().lock().write_all(&out);
        out.clear();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

fn parse(level: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder()
        .parse(level)
        .map_err(|e| format!("log_level {level:?}: {e}"))
}

/// Installs the process's subscriber. Fails when the filter does not parse or a subscriber is
/// already installed (tests that start several nodes in one process).
pub fn init(level: &str, format: LogFormat) -> Result<LogHandle, String> {
    let (filter, handle) = reload::Layer::new(parse(level)?);
    let (tx, rx) = crossbeam_channel::bounded(QUEUE_LINES);
    std::thread::Builder::new()
        .name("upgate-log".into())
        .spawn(move || write_lines(rx))
        .map_err(|e| format!("log writer thread: {e}"))?;
    let ansi = std::io::stderr().is_terminal();
    let (json, pretty) = match format {
        LogFormat::Json => (
            Some(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(Queue(tx.clone())),
            ),
            None,
        ),
        LogFormat::Pretty => (
            None,
            Some(fmt::layer().with_ansi(ansi).with_writer(Queue(tx.clone()))),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(pretty)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(LogHandle {
        filter: handle,
        queue: tx,
    })
}
