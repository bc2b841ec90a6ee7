//! Log output: `tracing` events to stderr, filtered by `log_level` (reloadable on SIGHUP) and
//! formatted by `log_format` (`pretty`: one human-readable line per event; `json`: one JSON
//! object per line, fields at the top level). Access-log events have target `upgate::access`
//! (see [`crate::server::access`]).

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::config::LogFormat;

/// Changes the filter of the installed subscriber.
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
}

impl LogHandle {
    /// Replaces the filter (`log_level` syntax); the old one stays on error.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let filter = parse(level)?;
        self.filter.reload(filter).map_err(|e| e.to_string())
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
    let ansi = std::io::stderr().is_terminal();
    let (json, pretty) = match format {
        LogFormat::Json => (
            Some(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            ),
            None,
        ),
        LogFormat::Pretty => (
            None,
            Some(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr)),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(pretty)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(LogHandle { filter: handle })
}
