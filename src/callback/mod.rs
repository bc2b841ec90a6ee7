//! Callbacks to the application server (patent steps 203/305 and 205/307): through the
//! blocking pool, off the io_uring threads, and for the post-callback's first attempt to a
//! registered `http://` URL with an IP host, from the upload's io_uring thread ([`ring`]).
//!
//! ```text
//!  uring task ──submit(Job)──▶ bounded queue ──▶ upgate-callback-N thread ──POST──▶ app
//!      ▲        (try_send:         (crossbeam)        (ureq, blocking,
//!      │         full → 503)                           one call, no retries)
//!      └──── await oneshot::Receiver<Outcome> ◀──────────────┘
//! ```
//!
//! - [`CallbackPool::submit`] never blocks: a full queue answers [`PoolError::QueueFull`] at once
//!   (the caller is a tokio-uring task, which must not stall its ring).
//! - Every call is signed the Standard Webhooks way ([`sign`](mod@sign)).
//! - The wire types and the signing live in the `upgate-contract` crate, which the tools (the
//!   demo application server) share; they are re-exported here under their old paths.
//! - A registered callback URL is trusted; a client-carried one must first pass
//!   [`CallbackPolicy::check`], and its connection then goes through the [`Guard`] resolver.
//! - [`pre_decision`] and [`post_delivered`] turn an [`Outcome`] into the flow's next step.
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`CallbackPool`], [`Job`], [`Outcome`], [`PoolError`] |
//! | `worker.rs` | worker threads, ureq agents, error → [`Outcome`] |
//! | `ring.rs` | the post-callback from the io_uring thread: kept connections, the answer's reading |
//! | `decision.rs` | [`pre_decision`], [`post_delivered`], [`Veto`] |
//! | `upgate_contract::wire` | [`FirstInfo`], [`SecondInfo`], [`AppAnswer`], [`AppReply`] (re-exported) |
//! | `upgate_contract::sign` | secrets, signatures, [`sign::verify`] (re-exported as [`sign`](mod@sign)) |
//! | `policy.rs` | [`CallbackPolicy`], [`CheckedUrl`], [`PolicyError`] |
//! | `guard.rs` | [`Guard`], the connect-time resolver |
//! | `addr.rs` | [`is_restricted`] |

mod addr;
mod decision;
mod guard;
mod policy;
pub mod ring;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use tokio::sync::oneshot;

pub use addr::is_restricted;
pub use decision::{post_delivered, pre_decision, Veto, MAX_REASON_BYTES};
pub use guard::{Guard, GuardRefusal, ListedAddr};
pub use policy::{AllowEntry, CallbackPolicy, CheckedUrl, EntryError, PolicyError};
/// Standard Webhooks signing, from the contract crate (`upgate::callback::sign::…`).
pub use upgate_contract::sign;
pub use upgate_contract::sign::{new_secret, sign, signature_header, verify, VerifyError};
pub use upgate_contract::wire::{
    AppAnswer, AppReply, FirstInfo, RequestInfo, SecondInfo, SuccessTrue,
};

pub use worker::Answerer;
use worker::Envelope;

/// The `User-Agent` of every callback.
pub const USER_AGENT: &str = "upgate";

/// The most bytes of an application's answer body that are read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The `Retry-After` seconds suggested with a 503 for a full queue.
pub const RETRY_AFTER_SECS: u32 = 1;

/// One callback to make: POST `body` to `url`, signed with every secret of `secrets`.
#[derive(Debug, Clone)]
pub struct Job {
    /// An absolute `http`/`https` URL (a registered one as stored, or a [`CheckedUrl`]'s
    /// normalised form); one that does not parse comes back as [`Outcome::Failed`].
    pub url: String,
    /// The JSON body ([`FirstInfo`] or [`SecondInfo`] serialised), sent as it is and signed.
    pub body: Vec<u8>,
    /// The `webhook-id` header: the upload's event id, the same on every retry.
    pub webhook_id: String,
    /// The app's secrets (`whsec_…`); two during a rotation; none → no `webhook-signature`.
    pub secrets: Vec<String>,
    /// `None` for a registered URL; `Some` for a client-carried URL, whose connection may only
    /// reach addresses the guard permits.
    pub guard: Option<Guard>,
}

impl Job {
    /// A call to a registered (trusted) callback URL.
    pub fn registered(
        url: impl Into<String>,
        body: Vec<u8>,
        webhook_id: String,
        secrets: Vec<String>,
    ) -> Job {
        Job {
            url: url.into(),
            body,
            webhook_id,
            secrets,
            guard: None,
        }
    }

    /// A call to a client-carried URL that passed the policy; it is guarded.
    pub fn client_carried(
        checked: CheckedUrl,
        body: Vec<u8>,
        webhook_id: String,
        secrets: Vec<String>,
    ) -> Job {
        let (url, guard) = checked.into_parts();
        Job {
            url: url.into(),
            body,
            webhook_id,
            secrets,
            guard: Some(guard),
        }
    }

    pub fn is_guarded(&self) -> bool {
        self.guard.is_some()
    }
}

/// What one call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The application answered with `status` (any status, 3xx included: redirects are not
    /// followed). `body` holds at most [`MAX_ANSWER_BYTES`].
    Answered { status: u16, body: Vec<u8> },
    /// No complete answer within the pool's timeout (connect, send and read together).
    TimedOut,
    /// The host did not resolve, or the connection was refused or failed.
    ConnectFailed(String),
    /// The guard refused every address of a client-carried URL's host; nothing was dialled.
    Refused(String),
    /// Anything else: a malformed answer, a reset mid-answer, https without a TLS backend, a
    /// panicking worker.
    Failed(String),
}

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// The queue is at its bound (`callback_queue`). 503 with `Retry-After`.
    QueueFull,
    /// Every worker is gone (cannot happen while a pool handle lives, unless workers panicked
    /// outside a call). 503.
    Closed,
}

impl PoolError {
    /// The `Retry-After` value, in seconds.
    pub fn retry_after_secs(&self) -> u32 {
        RETRY_AFTER_SECS
    }
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PoolError::QueueFull => "the callback queue is full; retry later",
            PoolError::Closed => "the callback pool is not running",
        })
    }
}

impl std::error::Error for PoolError {}

/// The handle to the blocking callback pool: cheap to clone, `Send + Sync`. The worker threads
/// stop once every handle is dropped and the queue is drained.
#[derive(Debug, Clone)]
pub struct CallbackPool {
    tx: Sender<Envelope>,
    timeout: Duration,
    workers: usize,
    alive: Arc<AtomicUsize>,
    /// The application answers over HTTP (not a test's function), so a call may also be made
    /// from an io_uring thread ([`ring`]).
    over_http: bool,
}

impl CallbackPool {
    /// Starts `workers` threads (`callback_workers`, at least 1) behind a queue of `queue` jobs
    /// (`callback_queue`, at least 1); `timeout` (`callback_timeout_ms`) bounds each whole call.
    ///
    /// # Panics
    ///
    /// When a thread cannot be spawned; see [`CallbackPool::try_new`].
    pub fn new(workers: usize, queue: usize, timeout: Duration) -> CallbackPool {
        CallbackPool::try_new(workers, queue, timeout).expect("spawning callback workers")
    }

    /// Like [`CallbackPool::new`], returning the spawn error. Threads already started stop by
    /// themselves when the error is returned.
    pub fn try_new(
        workers: usize,
        queue: usize,
        timeout: Duration,
    ) -> std::io::Result<CallbackPool> {
        CallbackPool::with_answerer(workers, queue, timeout, Answerer::Http)
    }

    /// Like [`CallbackPool::try_new`], with the calls answered by `answerer` (a function
    /// standing in for the application, in tests of the flow without sockets).
    pub fn with_answerer(
        workers: usize,
        queue: usize,
        timeout: Duration,
        answerer: Answerer,
    ) -> std::io::Result<CallbackPool> {
        let workers = workers.max(1);
        let over_http = matches!(answerer, Answerer::Http);
        let (tx, rx) = crossbeam_channel::bounded(queue.max(1));
        let alive = Arc::new(AtomicUsize::new(0));
        for index in 0..workers {
            // Detached: a worker ends when the channel disconnects.
            worker::spawn(index, rx.clone(), timeout, alive.clone(), answerer.clone())?;
        }
        Ok(CallbackPool {
            tx,
            timeout,
            workers,
            alive,
            over_http,
        })
    }

    /// Whether the application answers over HTTP (in tests a function may stand in for it).
    pub fn over_http(&self) -> bool {
        self.over_http
    }

    /// Queues `job` without ever blocking; the receiver yields its [`Outcome`]. Await it from
    /// async code, or call `blocking_recv()` from a plain thread (the outbox). The sender is
    /// dropped without a value only if the worker thread died.
    pub fn submit(&self, job: Job) -> Result<oneshot::Receiver<Outcome>, PoolError> {
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(Envelope { job, reply }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(PoolError::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(PoolError::Closed),
        }
    }

    /// Jobs waiting in the queue (not counting calls in progress).
    pub fn queue_depth(&self) -> usize {
        self.tx.len()
    }

    /// The queue bound.
    pub fn queue_capacity(&self) -> usize {
        self.tx.capacity().unwrap_or(0)
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Worker threads running now (readiness: 0 means no callback can be made).
    pub fn workers_alive(&self) -> usize {
        self.alive.load(Ordering::Acquire)
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

// The pool handle crosses threads (one per io_uring core); keep that a compile-time fact.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<CallbackPool>();
    assert_send_sync::<Arc<CallbackPolicy>>();
};
