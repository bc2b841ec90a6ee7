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
    /// The upload ended, well or not; clear whatever was drawn.
    fn finish(&mut self) {}
}

/// Shows nothing.
pub struct Quiet;

impl Progress for Quiet {}

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

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
