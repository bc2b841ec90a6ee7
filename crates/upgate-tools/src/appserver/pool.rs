//! The acceptor and the cached pool of connection threads: `idle` counts workers waiting on the
//! channel that no connection has been promised to. The acceptor takes one of them or, when
//! there is none, spawns a worker; a worker idle for [`IDLE_WORKER_EXIT`] leaves.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::{conn, Shared};

/// How long a worker waits for a connection before it leaves the pool.
pub const IDLE_WORKER_EXIT: Duration = Duration::from_secs(30);

/// Stack of a connection thread: the handlers keep little on theirs.
const WORKER_STACK: usize = 512 * 1024;

struct Pool {
    tx: Sender<TcpStream>,
    rx: Receiver<TcpStream>,
    idle: Arc<AtomicUsize>,
    shared: Arc<Shared>,
}

/// Accepts until the server stops, handing each connection to a pooled thread.
pub fn accept_loop(listener: &TcpListener, shared: Arc<Shared>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let pool = Pool {
        tx,
        rx,
        idle: Arc::new(AtomicUsize::new(0)),
        shared,
    };
    loop {
        let accepted = listener.accept();
        if pool.shared.stop.load(Ordering::Acquire) {
            break;
        }
        let Ok((conn, _)) = accepted else {
            // Out of descriptors or memory: let some connections end first.
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let reserved = pool
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !reserved && spawn_worker(&pool).is_err() {
            continue; // out of threads: drop the connection
        }
        if pool.tx.send(conn).is_err() {
            break;
        }
    }
}

fn spawn_worker(pool: &Pool) -> io::Result<()> {
    let (rx, idle, shared) = (pool.rx.clone(), pool.idle.clone(), pool.shared.clone());
    std::thread::Builder::new()
        .name(format!("{}-conn", shared.options.name))
        .stack_size(WORKER_STACK)
        .spawn(move || loop {
            match rx.recv_timeout(IDLE_WORKER_EXIT) {
                Ok(stream) => {
                    conn::serve(stream, &shared);
                    idle.fetch_add(1, Ordering::AcqRel);
                }
                Err(RecvTimeoutError::Timeout) => {
                    // Leave only if no connection was promised to an idle worker meanwhile.
                    if idle
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        })?;
    Ok(())
}
