//! The callback pool against real HTTP servers on loopback (std `TcpListener` threads written
//! here; no mock of ureq). Every server thread, worker and wait is bounded in time, and nothing
//! outside 127.0.0.0/8 is ever contacted.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use upgate::error::Fault;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use upgate::callback::sign::{new_secret, verify, DEFAULT_TOLERANCE_SECS};
use upgate::callback::{
    post_delivered, pre_decision, CallbackPolicy, FirstInfo, Guard, Job, Outcome, PoolError, Veto,
    MAX_ANSWER_BYTES,
};
use url::Url;

/// How long any test server waits for a connection or a byte before giving up.
const SERVER_PATIENCE: Duration = Duration::from_secs(10);
/// The pool timeout of the tests that expect an answer (generous: CI machines are slow).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// The pool timeout of the tests that expect a timeout.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------- test HTTP servers

/// A request as a test server read it.
#[derive(Debug)]
struct Captured {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.iter().filter(|(n, _)| n == name);
        let value = values.next().map(|(_, v)| v.as_str());
        assert!(values.next().is_none(), "header {name} repeated");
        value
    }
}

/// Reads one request (head + Content-Length body) from `stream`.
fn read_request(stream: &mut TcpStream) -> Captured {
    stream.set_read_timeout(Some(SERVER_PATIENCE)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).expect("reading the request head");
        assert!(n > 0, "client closed before the end of the head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_owned();
    let target = request_line.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).expect("reading the request body");
        assert!(n > 0, "client closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }
    Captured {
        method,
        target,
        headers,
        body,
    }
}

/// A complete HTTP/1.1 response with a body.
fn response(status: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Binds `ip:0` and, on a thread, serves up to `connections` connections (one request each)
/// with `handler`, which writes whatever it likes. The thread stops after the last connection or
/// after [`SERVER_PATIENCE`] without one, and returns the captured requests.
struct Server {
    addr: SocketAddr,
    thread: JoinHandle<Vec<Captured>>,
}

impl Server {
    fn start(
        ip: Ipv4Addr,
        connections: usize,
        mut handler: impl FnMut(&Captured, &mut TcpStream) + Send + 'static,
    ) -> Server {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let deadline = Instant::now() + SERVER_PATIENCE;
            while seen.len() < connections && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let request = read_request(&mut stream);
                        handler(&request, &mut stream);
                        seen.push(request);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            seen
        });
        Server { addr, thread }
    }

    /// A server answering every request with the same bytes.
    fn answering(connections: usize, bytes: Vec<u8>) -> Server {
        Server::start(Ipv4Addr::LOCALHOST, connections, move |_, stream| {
            // The client may hang up early (bounded answer reads); that is not a server error.
            let _ = stream.write_all(&bytes);
        })
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    fn requests(self) -> Vec<Captured> {
        self.thread.join().expect("server thread panicked")
    }
}

/// Asserts that nobody connected to `listener` (checked after the call finished, so a
/// connection attempt would already be in its backlog).
fn assert_never_connected(listener: &TcpListener) {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("{peer} connected to {}", listener.local_addr().unwrap()),
        Err(e) => panic!("accept: {e}"),
    }
}

// ---------------------------------------------------------------- helpers

fn pool(timeout: Duration) -> upgate::callback::CallbackPool {
    upgate::callback::CallbackPool::new(2, 8, timeout)
}

fn first_info_body() -> Vec<u8> {
    serde_json::to_vec(&FirstInfo {
        appid: "app1".into(),
        filename: "f.bin".into(),
        path: "dir/f.bin".into(),
        size: Some(3),
        content_type: "application/octet-stream".into(),
        upload_id: "up-1".into(),
        client_ip: "127.0.0.1".into(),
        request: None,
        offset: None,
        length: None,
        node_id: None,
    })
    .unwrap()
}

fn job(url: Url, secrets: &[String]) -> Job {
    Job::registered(url, first_info_body(), "evt_1".into(), secrets.to_vec())
}

/// Waits for an outcome, from a plain thread, with a hard cap.
fn wait(rx: oneshot::Receiver<Outcome>) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), rx).await })
        .expect("no outcome within 20 s")
        .expect("worker dropped the reply")
}

fn call(timeout: Duration, job: Job) -> Outcome {
    wait(pool(timeout).submit(job).unwrap())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------- answers

#[test]
fn accept_answer_is_approved() {
    let server = Server::answering(1, response("200 OK", "", r#"{"success":"true"}"#));
    let outcome = call(ANSWER_TIMEOUT, job(server.url("/pre"), &[]));
    assert_eq!(
        outcome,
        Outcome::Answered {
            status: 200,
            body: br#"{"success":"true"}"#.to_vec()
        }
    );
    assert_eq!(pre_decision(&outcome).map(|_| ()), Ok(()));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn json_false_with_reason_is_denied_with_that_reason() {
    let body = r#"{"success":"false","reason":"quota exceeded"}"#;
    let server = Server::answering(1, response("200 OK", "", body));
    let veto = pre_decision(&call(ANSWER_TIMEOUT, job(server.url("/pre"), &[]))).unwrap_err();
    assert_eq!(
        veto,
        Veto::Denied {
            reason: "quota exceeded".into()
        }
    );
    assert_eq!((veto.status(), veto.code()), (403, "vetoed"));
}

#[test]
fn client_error_status_is_denied() {
    let server = Server::answering(1, response("403 Forbidden", "", "go away"));
    let outcome = call(ANSWER_TIMEOUT, job(server.url("/pre"), &[]));
    assert!(
        matches!(outcome, Outcome::Answered { status: 403, .. }),
        "{outcome:?}"
    );
    let veto = pre_decision(&outcome).unwrap_err();
    assert_eq!((veto.status(), veto.code()), (403, "vetoed"));
}

#[test]
fn server_error_status_is_bad_gateway() {
    let server = Server::answering(1, response("500 Internal Server Error", "", "oops"));
    let outcome = call(ANSWER_TIMEOUT, job(server.url("/pre"), &[]));
    assert_eq!(
        outcome,
        Outcome::Answered {
            status: 500,
            body: b"oops".to_vec()
        }
    );
    let veto = pre_decision(&outcome).unwrap_err();
    assert_eq!((veto.status(), veto.code()), (502, "callback_failed"));
    assert_eq!(post_delivered(&outcome), None);
}

#[test]
fn garbage_2xx_body_is_bad_gateway() {
    let server = Server::answering(1, response("200 OK", "", "<html>hello</html>"));
    let veto = pre_decision(&call(ANSWER_TIMEOUT, job(server.url("/pre"), &[]))).unwrap_err();
    assert!(matches!(veto, Veto::BadGateway { .. }), "{veto:?}");
    assert_eq!((veto.status(), veto.code()), (502, "callback_failed"));
}

#[test]
fn malformed_response_is_failed_and_bad_gateway() {
    let server = Server::answering(1, b"this is not HTTP\r\n\r\n".to_vec());
    let outcome = call(ANSWER_TIMEOUT, job(server.url("/pre"), &[]));
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    assert_eq!(pre_decision(&outcome).unwrap_err().status(), 502);
}

#[test]
fn answer_body_is_bounded() {
    let big = "x".repeat(MAX_ANSWER_BYTES + 10_000);
    let server = Server::answering(1, response("200 OK", "", &big));
    match call(ANSWER_TIMEOUT, job(server.url("/post"), &[])) {
        Outcome::Answered { status: 200, body } => assert_eq!(body.len(), MAX_ANSWER_BYTES),
        other => panic!("{other:?}"),
    }
}

#[test]
fn post_callback_answer_is_relayed() {
    let app = json!({"success":"true","thumbnail":"t.png"});
    let server = Server::answering(1, response("200 OK", "", &app.to_string()));
    let outcome = call(ANSWER_TIMEOUT, job(server.url("/post"), &[]));
    assert_eq!(post_delivered(&outcome), Some(app));
}

// ---------------------------------------------------------------- failures

#[test]
fn silent_server_times_out_within_the_timeout() {
    // Reads the request, then waits (bounded) until the client gives up and closes.
    let server = Server::start(Ipv4Addr::LOCALHOST, 1, |_, stream| {
        let _ = stream.read(&mut [0u8; 64]);
    });
    let started = Instant::now();
    let outcome = call(SHORT_TIMEOUT, job(server.url("/pre"), &[]));
    let elapsed = started.elapsed();
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(
        elapsed >= SHORT_TIMEOUT - Duration::from_millis(50),
        "{elapsed:?}"
    );
    assert!(
        elapsed < SHORT_TIMEOUT + Duration::from_secs(3),
        "{elapsed:?}"
    );
    let veto = pre_decision(&outcome).unwrap_err();
    assert_eq!((veto.status(), veto.code()), (504, "callback_timeout"));
    assert_eq!(server.requests().len(), 1);
}

/// An application that trickles its answer, each piece well within the timeout but the whole
/// answer later than it, still counts as a timeout (the whole call is what is bounded).
#[test]
fn an_answer_trickled_past_the_timeout_is_a_timeout() {
    let piece = SHORT_TIMEOUT * 2 / 5;
    let server = Server::start(Ipv4Addr::LOCALHOST, 1, move |_, stream| {
        let answer = response("200 OK", "", r#"{"success":"true"}"#);
        let (head, body) = answer.split_at(answer.len() - 8);
        for part in [&head[..10], &head[10..], body] {
            std::thread::sleep(piece);
            if stream.write_all(part).is_err() {
                return;
            }
        }
    });
    let outcome = call(SHORT_TIMEOUT, job(server.url("/pre"), &[]));
    assert_eq!(outcome, Outcome::TimedOut);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn refused_connection_is_connect_failed() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The listener is dropped: nothing listens on `port` any more.
    let url = Url::parse(&format!("http://127.0.0.1:{port}/pre")).unwrap();
    let outcome = call(ANSWER_TIMEOUT, job(url, &[]));
    assert!(matches!(outcome, Outcome::ConnectFailed(_)), "{outcome:?}");
    let veto = pre_decision(&outcome).unwrap_err();
    assert_eq!((veto.status(), veto.code()), (502, "callback_failed"));
}

#[test]
fn redirect_is_not_followed() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let location = format!(
        "Location: http://{}/elsewhere\r\n",
        target.local_addr().unwrap()
    );
    let server = Server::answering(1, response("302 Found", &location, ""));
    let outcome = call(ANSWER_TIMEOUT, job(server.url("/pre"), &[]));
    assert!(
        matches!(outcome, Outcome::Answered { status: 302, .. }),
        "{outcome:?}"
    );
    assert_never_connected(&target);
    let veto = pre_decision(&outcome).unwrap_err();
    assert_eq!((veto.status(), veto.code()), (502, "callback_failed"));
    assert_eq!(post_delivered(&outcome), None);
}

/// This build has no TLS backend (ureq without its `tls` feature): an `https` callback fails
/// after the TCP connect, before any byte is sent, and the pre-callback answers 502.
#[test]
fn https_without_a_tls_backend_is_failed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("https://{}/pre", listener.local_addr().unwrap())).unwrap();
    let outcome = call(ANSWER_TIMEOUT, job(url, &[]));
    match &outcome {
        Outcome::Failed(detail) => assert!(detail.contains("TLS"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pre_decision(&outcome).unwrap_err().status(), 502);
}

// ---------------------------------------------------------------- the wire

#[test]
fn app_receives_exact_body_and_verifiable_webhook_headers() {
    let secret = new_secret();
    let server = Server::answering(1, response("200 OK", "", r#"{"success":"true"}"#));
    let url = server.url("/callback_url_pre?app=1");
    let before = unix_now();
    let outcome = call(ANSWER_TIMEOUT, job(url, std::slice::from_ref(&secret)));
    let after = unix_now();
    assert_eq!(pre_decision(&outcome).map(|_| ()), Ok(()));

    let requests = server.requests();
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.target, "/callback_url_pre?app=1");
    assert_eq!(req.body, first_info_body());
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["size"], 3);
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some("upgate"));
    assert_eq!(req.header("webhook-id"), Some("evt_1"));
    let ts = req.header("webhook-timestamp").unwrap();
    let ts_num: u64 = ts.parse().unwrap();
    assert!(
        (before..=after).contains(&ts_num),
        "{ts} not in {before}..={after}"
    );
    let signature = req.header("webhook-signature").unwrap();
    assert!(signature.starts_with("v1,"), "{signature}");
    assert!(!signature.contains(' '), "{signature}");
    let now = unix_now();
    let secrets = [secret];
    assert_eq!(
        verify(
            &secrets,
            "evt_1",
            ts,
            signature,
            &req.body,
            now,
            DEFAULT_TOLERANCE_SECS
        ),
        Ok(())
    );
    // The signature covers the body: any other body fails.
    assert!(verify(&secrets, "evt_1", ts, signature, b"{}", now, 300).is_err());
}

#[test]
fn rotation_sends_two_signatures_each_verifiable_alone() {
    let (old, new) = (new_secret(), new_secret());
    let server = Server::answering(1, response("200 OK", "", r#"{"success":true}"#));
    let outcome = call(
        ANSWER_TIMEOUT,
        job(server.url("/pre"), &[old.clone(), new.clone()]),
    );
    assert_eq!(pre_decision(&outcome).map(|_| ()), Ok(()));
    let requests = server.requests();
    let req = &requests[0];
    let ts = req.header("webhook-timestamp").unwrap();
    let signature = req.header("webhook-signature").unwrap();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    let now = unix_now();
    for secret in [old, new] {
        assert_eq!(
            verify(&[secret], "evt_1", ts, signature, &req.body, now, 300),
            Ok(())
        );
    }
    assert!(verify(&[new_secret()], "evt_1", ts, signature, &req.body, now, 300).is_err());
}

#[test]
fn no_secret_means_no_signature_header() {
    let server = Server::answering(1, response("200 OK", "", r#"{"success":"true"}"#));
    call(ANSWER_TIMEOUT, job(server.url("/pre"), &[]));
    let requests = server.requests();
    assert_eq!(requests[0].header("webhook-signature"), None);
    assert_eq!(requests[0].header("webhook-id"), Some("evt_1"));
    assert!(requests[0].header("webhook-timestamp").is_some());
}

// ---------------------------------------------------------------- backpressure

#[test]
fn full_queue_answers_queue_full_at_once() {
    let (accepted_tx, accepted_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    // Holds its request until released (or until its own patience runs out).
    let hung = Server::start(Ipv4Addr::LOCALHOST, 1, move |_, stream| {
        accepted_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(SERVER_PATIENCE);
        let _ = stream.write_all(&response("200 OK", "", r#"{"success":"true"}"#));
    });
    let quick = Server::answering(1, response("200 OK", "", r#"{"success":"true"}"#));
    let pool = upgate::callback::CallbackPool::new(1, 1, ANSWER_TIMEOUT);
    assert_eq!((pool.workers(), pool.queue_capacity()), (1, 1));

    let mut first = pool.submit(job(hung.url("/hang"), &[])).unwrap();
    // The only worker is now inside the first call.
    accepted_rx.recv_timeout(SERVER_PATIENCE).unwrap();
    let second = pool.submit(job(quick.url("/quick"), &[])).unwrap();
    assert_eq!(pool.queue_depth(), 1);
    let third = pool.submit(job(quick.url("/never"), &[]));
    assert_eq!(third.err(), Some(PoolError::QueueFull));
    // It answered while the first call was still hanging: submit did not wait for a slot.
    assert_eq!(first.try_recv(), Err(oneshot::error::TryRecvError::Empty));
    let err = PoolError::QueueFull;
    assert_eq!(
        (err.status(), err.code(), err.retry_after_secs()),
        (503, "callback_queue_full", 1)
    );

    release_tx.send(()).unwrap();
    assert_eq!(pre_decision(&wait(first)).map(|_| ()), Ok(()));
    assert_eq!(pre_decision(&wait(second)).map(|_| ()), Ok(()));
    assert_eq!(pool.queue_depth(), 0);
    assert_eq!(hung.requests().len(), 1);
    let quick_requests = quick.requests();
    assert_eq!(quick_requests.len(), 1);
    assert_eq!(quick_requests[0].target, "/quick");
}

#[test]
fn outcome_reaches_an_async_waiter_and_a_blocking_thread() {
    let server = Server::answering(2, response("200 OK", "", r#"{"success":"true"}"#));
    let pool = pool(ANSWER_TIMEOUT);
    // A plain thread (the outbox) uses blocking_recv.
    let rx = pool.submit(job(server.url("/a"), &[])).unwrap();
    let blocking = std::thread::spawn(move || rx.blocking_recv().unwrap());
    // An async task awaits the receiver.
    let rx = pool.submit(job(server.url("/b"), &[])).unwrap();
    assert_eq!(pre_decision(&wait(rx)).map(|_| ()), Ok(()));
    assert_eq!(pre_decision(&blocking.join().unwrap()).map(|_| ()), Ok(()));
    assert_eq!(server.requests().len(), 2);
}

// ---------------------------------------------------------------- guarded (client-carried) jobs

#[test]
fn guarded_job_to_unlisted_loopback_is_refused_before_connecting() {
    // Linux routes all of 127.0.0.0/8 to lo, so 127.0.0.2 is a real, distinct listener.
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let url = Url::parse(&format!("http://{}/pre", listener.local_addr().unwrap())).unwrap();
    // The policy alone refuses it...
    let policy = CallbackPolicy::new(vec![]);
    assert!(policy.check(url.as_str(), &[]).is_err());
    // ...and a guarded job that skipped the policy is refused again by the resolver.
    let mut guarded = job(url, &[]);
    guarded.guard = Some(Guard::none());
    let outcome = call(ANSWER_TIMEOUT, guarded);
    assert!(matches!(outcome, Outcome::Refused(_)), "{outcome:?}");
    assert_never_connected(&listener);
    let veto = pre_decision(&outcome).unwrap_err();
    assert_eq!((veto.status(), veto.code()), (403, "callback_not_allowed"));
}

#[test]
fn guarded_name_that_resolves_to_loopback_is_refused() {
    // `localhost` is allowed by name, but it resolves to 127.0.0.1, which is not listed.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let policy = CallbackPolicy::new(vec!["localhost".into()]);
    let checked = policy
        .check(&format!("http://localhost:{port}/pre"), &[])
        .unwrap();
    let guarded = Job::client_carried(checked, first_info_body(), "evt_1".into(), vec![]);
    assert!(guarded.is_guarded());
    let outcome = call(ANSWER_TIMEOUT, guarded);
    match &outcome {
        Outcome::Refused(detail) => assert!(detail.contains("localhost"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_never_connected(&listener);
}

#[test]
fn guarded_job_to_a_listed_loopback_address_is_answered() {
    let server = Server::answering(1, response("200 OK", "", r#"{"success":"true"}"#));
    let policy = CallbackPolicy::new(vec![server.addr.to_string()]);
    let checked = policy
        .check(server.url("/pre").as_str(), &[])
        .expect("listed address");
    let guarded = Job::client_carried(checked, first_info_body(), "evt_1".into(), vec![]);
    let outcome = call(ANSWER_TIMEOUT, guarded);
    assert_eq!(pre_decision(&outcome).map(|_| ()), Ok(()));
    assert_eq!(server.requests()[0].target, "/pre");
}

#[test]
fn guarded_job_to_an_app_listed_name_and_address_is_answered() {
    // The app lists `localhost` by name and the address it resolves to: both halves pass.
    let server = Server::answering(1, response("200 OK", "", r#"{"success":"true"}"#));
    let port = server.addr.port();
    let app_hosts = vec![format!("localhost:{port}"), format!("127.0.0.1:{port}")];
    let checked = CallbackPolicy::new(vec![])
        .check(&format!("http://LOCALHOST:{port}/pre"), &app_hosts)
        .unwrap();
    let outcome = call(
        ANSWER_TIMEOUT,
        Job::client_carried(checked, first_info_body(), "evt_1".into(), vec![]),
    );
    assert_eq!(pre_decision(&outcome).map(|_| ()), Ok(()));
    assert_eq!(server.requests().len(), 1);
}
