//! What the user sees while an upload runs: nothing, or (when stderr is a terminal) an
//! `indicatif` bar with bytes sent, rate and ETA.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Receives the phases of one upload. Every method has a no-op default.
pub trait Progress {
    /// The request head went out; the node and the application are deciding.
    fn waiting(&mut self, _total: u64) {}
    /// `100 Continue` came (or was not asked for): the body of `total` bytes starts.
    fn sending(&mut self, _total: u64) {}
    /// `n` more body bytes went out.
    fn advance(&mut self, _n: u64) {}
    /// The body went out whole; waiting for the final response.
    fn sent(&mut self) {}
    /// A resumable upload lost its request (`why`) and tries again after `delay`.
    fn retrying(&mut self, _why: &str, _delay: Duration) {}
    /// The node holds `offset` bytes of a resumable upload: what was sent past it counts no
    /// more.
    fn resumed(&mut self, _offset: u64) {}
    /// The upload ended, well or not; clear whatever was drawn.
    fn finish(&mut self) {}
}

/// Shows nothing.
pub struct Quiet;

impl Progress for Quiet {}

/// No bar (stderr is not a terminal), but a resumable upload's retries as lines on stderr, so
/// logs say why an upload took longer.
pub struct RetryLines;

impl Progress for RetryLines {
    fn retrying(&mut self, why: &str, delay: Duration) {
        eprintln!("upgate upload: {why}; retrying in {} ms", delay.as_millis());
    }
}

/// A progress bar on stderr.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    /// A bar when stderr is a terminal, otherwise `None`.
    pub fn for_stderr() -> Option<Bar> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Some(Bar { bar })
    }
}

impl Progress for Bar {
    fn waiting(&mut self, _total: u64) {
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar
            .set_message("waiting for 100 Continue (the application decides)");
        self.bar.enable_steady_tick(Duration::from_millis(100));
    }

    fn sending(&mut self, total: u64) {
        self.bar.disable_steady_tick();
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.reset_eta();
        self.bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar.set_message("uploading");
    }

    fn advance(&mut self, n: u64) {
        self.bar.inc(n);
    }

    fn sent(&mut self) {
        self.bar.set_message("sent, waiting for the answer");
    }

    fn retrying(&mut self, why: &str, delay: Duration) {
        self.bar
            .println(format!("{why}; retrying in {} ms", delay.as_millis()));
        self.bar.set_message("retrying");
    }

    fn resumed(&mut self, offset: u64) {
        self.bar.set_position(offset);
        self.bar.set_message("uploading");
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
