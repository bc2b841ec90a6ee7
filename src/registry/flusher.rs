//! Durable sled writes without blocking an io_uring thread. sled 0.34's own `flush_async`
//! deadlocks when several flushes are awaited at once (spacejam/sled#1308), so one thread per
//! database does the flushing: it takes every request waiting, flushes once, and answers them
//! all (a group commit: N concurrent uploads cost one fsync, not N).

use std::io;
use std::sync::Arc;

use crossbeam_channel::{unbounded, Sender};
use tokio::sync::oneshot;

use super::Cause;

type Waiter = oneshot::Sender<Result<(), Arc<sled::Error>>>;

/// Handle on the flushing thread; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Flusher {
    tx: Arc<Sender<Waiter>>,
}

impl Flusher {
    pub(crate) fn spawn(db: sled::Db) -> io::Result<Flusher> {
        let (tx, rx) = unbounded::<Waiter>();
        std::thread::Builder::new()
            .name("upgate-sled-flush".into())
            .spawn(move || {
                for first in rx.iter() {
                    let mut waiters = vec![first];
                    waiters.extend(rx.try_iter());
                    let result = db.flush().map(drop).map_err(Arc::new);
                    for w in waiters {
                        let _ = w.send(result.clone());
                    }
                }
            })?;
        Ok(Flusher { tx: Arc::new(tx) })
    }

    /// Waits until everything written before the call is on disk. The error is sled's (shared
    /// by every request the failed flush answered), or the thread's end.
    pub(crate) async fn flush(&self) -> Result<(), Cause> {
        let stopped = || -> Cause { Box::new(io::Error::other("the flush thread stopped")) };
        let (reply, rx) = oneshot::channel();
        self.tx.send(reply).map_err(|_| stopped())?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Box::new(e)),
            Err(_) => Err(stopped()),
        }
    }
}
