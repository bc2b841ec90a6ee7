//! The blocking side of the pool: worker threads that take jobs off the bounded queue, make one
//! HTTP call each with ureq (no retries inside), and answer through the job's one-shot channel.

use std::io::{self, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;
use tokio::sync::oneshot;
use ureq::{Agent, AgentBuilder};

use super::guard::{Guard, GuardRefusal};
use super::sign::signature_header;
use super::{Job, Outcome, MAX_ANSWER_BYTES, USER_AGENT};

/// Who answers the pool's calls.
#[derive(Clone)]
pub enum Answerer {
    /// The application, over HTTP (ureq): every node.
    Http,
    /// A function standing in for the application: tests of the whole upload flow without
    /// sockets. It runs on the worker thread, as a call would, and may block.
    Function(Arc<dyn Fn(&Job) -> Outcome + Send + Sync>),
}

impl std::fmt::Debug for Answerer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Answerer::Http => "Http",
            Answerer::Function(_) => "Function",
        })
    }
}

/// A queued job with the channel its outcome goes back on.
pub(crate) struct Envelope {
    pub(crate) job: Job,
    pub(crate) reply: oneshot::Sender<Outcome>,
}

/// Starts worker `index` (thread name `upgate-callback-<index>`). It runs until every sender of
/// `rx` (every [`CallbackPool`](super::CallbackPool) clone) is gone and the queue is drained.
/// `alive` counts it from now until its thread ends.
pub(crate) fn spawn(
    index: usize,
    rx: Receiver<Envelope>,
    timeout: Duration,
    alive: Arc<AtomicUsize>,
    answerer: Answerer,
) -> io::Result<JoinHandle<()>> {
    let counted = Alive::new(alive);
    std::thread::Builder::new()
        .name(format!("upgate-callback-{index}"))
        .spawn(move || {
            let _counted = counted;
            run(rx, timeout, answerer)
        })
}

/// One running worker in the pool's count, removed when dropped (the thread ended, or never
/// started).
struct Alive(Arc<AtomicUsize>);

impl Alive {
    fn new(count: Arc<AtomicUsize>) -> Alive {
        count.fetch_add(1, Ordering::AcqRel);
        Alive(count)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn run(rx: Receiver<Envelope>, timeout: Duration, answerer: Answerer) {
    let trusted = trusted_agent(timeout);
    for Envelope { job, reply } in rx.iter() {
        let outcome = catch_unwind(AssertUnwindSafe(|| match &answerer {
            Answerer::Http => call(&trusted, timeout, &job),
            Answerer::Function(answer) => answer(&job),
        }))
        .unwrap_or_else(|_| Outcome::Failed("callback worker panicked".to_owned()));
        tracing::debug!(url = %job.url, webhook_id = %job.webhook_id, ?outcome, "callback done");
        // The waiting task may be gone (client disconnected); the outcome is then dropped.
        let _ = reply.send(outcome);
    }
}

fn builder() -> AgentBuilder {
    AgentBuilder::new().redirects(0).user_agent(USER_AGENT)
}

/// For registered callbacks: URLs an authenticated registration set, so any address goes.
/// Keeps idle connections to application servers for reuse.
///
/// The timeout bounds the connect, each write and each read, and [`call`] turns an answer
/// that came later than `timeout` in all into [`Outcome::TimedOut`], as a whole-call deadline
/// would. Not a whole-call deadline itself: ureq enforces one by setting both socket timeouts
/// before every read (about fifteen `setsockopt`s per call, a tenth of a callback worker's
/// CPU under load). An application that trickles its answer can hold a worker longer than
/// the timeout (the waiting upload still gives up at its own bound); it is the application's
/// own registration.
fn trusted_agent(timeout: Duration) -> Agent {
    builder()
        .timeout_connect(timeout)
        .timeout_read(timeout)
        .timeout_write(timeout)
        .build()
}

/// For client-carried callbacks: every connection resolves through `guard`, and the whole call
/// has one deadline (the URL is a client's). Built per call, because a guard's listed
/// addresses come from the job's app, and without a pool, because a reused connection would
/// skip the resolver.
fn guarded_agent(timeout: Duration, guard: Guard) -> Agent {
    builder()
        .timeout(timeout)
        .resolver(guard)
        .max_idle_connections(0)
        .build()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One signed POST of `job.body` to `job.url`.
fn call(trusted: &Agent, timeout: Duration, job: &Job) -> Outcome {
    let agent = match &job.guard {
        None => trusted.clone(),
        Some(guard) => guarded_agent(timeout, guard.clone()),
    };
    let timestamp = unix_now();
    let mut request = agent
        .post(&job.url)
        .set("content-type", "application/json")
        .set("webhook-id", &job.webhook_id)
        .set("webhook-timestamp", &timestamp.to_string());
    if !job.secrets.is_empty() {
        let signature = signature_header(&job.secrets, &job.webhook_id, timestamp, &job.body);
        request = request.set("webhook-signature", &signature);
    }
    let started = std::time::Instant::now();
    let outcome = match request.send_bytes(&job.body) {
        Ok(response) | Err(ureq::Error::Status(_, response)) => answered(response),
        Err(ureq::Error::Transport(transport)) => transport_outcome(&transport),
    };
    // The trusted agent bounds each step, not the call (see `trusted_agent`).
    match outcome {
        Outcome::Answered { .. } if started.elapsed() > timeout => Outcome::TimedOut,
        outcome => outcome,
    }
}

/// Reads at most [`MAX_ANSWER_BYTES`] of the answer body (a longer body arrives cut, and so does
/// not parse as JSON).
fn answered(response: ureq::Response) -> Outcome {
    let status = response.status();
    let mut body = Vec::new();
    match response
        .into_reader()
        .take(MAX_ANSWER_BYTES as u64)
        .read_to_end(&mut body)
    {
        Ok(_) => Outcome::Answered { status, body },
        Err(e) if is_timeout(&e) => Outcome::TimedOut,
        Err(e) => Outcome::Failed(format!("reading the answer body: {e}")),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// Maps a ureq transport error: a guard refusal (found in the source chain) → `Refused`; a
/// timed-out connect, write or read → `TimedOut`; DNS or connect failure → `ConnectFailed`;
/// anything else (bad status line, no TLS backend for https, reset) → `Failed`.
fn transport_outcome(err: &ureq::Transport) -> Outcome {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(refusal) = io.get_ref().and_then(|i| i.downcast_ref::<GuardRefusal>()) {
                return Outcome::Refused(refusal.to_string());
            }
            if is_timeout(io) {
                return Outcome::TimedOut;
            }
        }
        source = e.source();
    }
    match err.kind() {
        ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed => {
            Outcome::ConnectFailed(err.to_string())
        }
        _ => Outcome::Failed(err.to_string()),
    }
}
