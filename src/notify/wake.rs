//! [`Wake`]: how a retry asked through the management API reaches the outbox sender at once.
//! Its own file so that `app.rs`, which holds one, does not import the sender.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Lets a retry asked through the API reach the sender at once instead of at its next tick.
#[derive(Default)]
pub struct Wake {
    asked: Mutex<bool>,
    cond: Condvar,
}

impl Wake {
    /// Asks the sender to look for due entries now.
    pub fn wake(&self) {
        *self.asked.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cond.notify_all();
    }

    /// Sleeps up to `tick`, or less when woken (a wake-up before the wait is not lost).
    pub(super) fn sleep(&self, tick: Duration) {
        let asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut asked, _) = self
            .cond
            .wait_timeout_while(asked, tick, |asked| !*asked)
            .unwrap_or_else(PoisonError::into_inner);
        *asked = false;
    }
}
