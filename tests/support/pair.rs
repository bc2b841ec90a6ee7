//! The whole node over in-memory parts, the quinn-proto `Pair` way: the node's real driver,
//! router, phases and outbox on a tokio-uring runtime, against an in-memory transport (the
//! test holds the client's end), an in-memory object store, the in-memory registry and outbox,
//! and a function standing in for the application behind the real callback pool. No socket,
//! no file.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use upgate::app::App;
use upgate::callback::{Answerer, CallbackPool, Job, Outcome};
use upgate::config::Config;
use upgate::registry::{Change, Registration, Registry};
use upgate::routes::Router;
use upgate::server::memory::{pair, MemoryPeer};
use upgate::server::{serve_connection, Transport};
use upgate::storage::{MemoryStore, Store, Target};

/// One callback the application received.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub webhook_id: String,
    pub body: serde_json::Value,
}

/// What the application answers, by callback path.
pub type Script = dyn Fn(&str) -> Outcome + Send + Sync;

/// The application: records every call, answers through `script`.
#[derive(Clone)]
pub struct AppServer {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl AppServer {
    pub fn new() -> Self {
        AppServer {
            calls: Arc::default(),
        }
    }

    pub fn answerer(&self, script: Arc<Script>) -> Answerer {
        let calls = self.calls.clone();
        Answerer::Function(Arc::new(move |job: &Job| {
            let path = job.url.rsplit('/').next().unwrap_or("").to_string();
            calls.lock().unwrap().push(Call {
                path: path.clone(),
                webhook_id: job.webhook_id.clone(),
                body: serde_json::from_slice(&job.body).unwrap(),
            });
            script(&path)
        }))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.path).collect()
    }
}

pub fn ok() -> Outcome {
    Outcome::Answered {
        status: 200,
        body: br#"{"success":"true"}"#.to_vec(),
    }
}

pub fn config() -> Config {
    Config {
        callback_timeout_ms: 500,
        body_idle_timeout_ms: 300,
        header_timeout_ms: 1000,
        linger_ms: 200,
        ..Config::default()
    }
}

/// A node's shared state over in-memory parts, with app `app1` registered (pre and post).
pub fn node(
    config: Config,
    registry: &Registry,
    store: &MemoryStore,
    answerer: Answerer,
) -> Arc<App> {
    let pool = CallbackPool::with_answerer(2, 16, config.callback_timeout(), answerer).unwrap();
    App::new(config, registry.clone(), Store::Memory(store.clone()), pool).unwrap()
}

/// A fresh in-memory registry with `app1` registered, an empty in-memory store, and an
/// application that has seen nothing yet.
pub fn parts() -> (Registry, MemoryStore, AppServer) {
    let registry = Registry::in_memory();
    register_app1(&registry);
    (registry, MemoryStore::new(), AppServer::new())
}

pub fn register_app1(registry: &Registry) {
    let reg = Registration {
        appid: "app1".into(),
        callback_url_pre: Change::Set("http://app.invalid/pre".into()),
        callback_url_post: Change::Set("http://app.invalid/post".into()),
        ..Default::default()
    };
    registry.register(&reg, upgate::clock::unix_secs()).unwrap();
}

pub fn key(rel: &str) -> Target {
    Target {
        appid: "app1".into(),
        rel: rel.into(),
    }
}

/// A response as the client read it.
#[derive(Debug)]
pub struct Wire {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Wire {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Reads the next response from `seen` on, waiting at most 5 s; `seen` moves past it.
pub async fn next_response(peer: &MemoryPeer, seen: &mut usize) -> Wire {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = peer.received();
        let rest = &out[*seen..];
        if let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(rest[..end].to_vec()).unwrap();
            let status = head[9..12].parse().unwrap();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.parse::<usize>().unwrap());
            if rest.len() >= end + 4 + len {
                *seen += end + 4 + len;
                let body = rest[end + 4..end + 4 + len].to_vec();
                return Wire { status, head, body };
            }
        }
        assert!(
            !peer.node_closed(),
            "the node closed with no whole response: {:?}",
            String::from_utf8_lossy(rest)
        );
        tokio::time::timeout_at(deadline, peer.wait_for_more(out.len()))
            .await
            .expect("a response within 5 s");
    }
}

/// Sends `head`, waits for `100 Continue`, sends `body` and returns the final response.
pub async fn send_after_continue(
    peer: &MemoryPeer,
    head: &'static str,
    body: &'static str,
) -> Wire {
    peer.send(head);
    let mut seen = 0;
    let interim = next_response(peer, &mut seen).await;
    assert_eq!(
        interim.status,
        100,
        "{}",
        String::from_utf8_lossy(&interim.body)
    );
    peer.send(body);
    next_response(peer, &mut seen).await
}

/// Serves one in-memory connection of `app` on the current tokio-uring runtime: the node's
/// task, and the client's end for the test.
pub fn serve(app: &Arc<App>) -> (tokio::task::JoinHandle<()>, MemoryPeer) {
    let (stream, peer) = pair();
    // The node is not draining: the sender lives as long as the task.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let addr: SocketAddr = "192.0.2.7:40000".parse().unwrap();
    let router = Rc::new(Router::new(app.clone()));
    let config = app.config.clone();
    let task = tokio_uring::spawn(async move {
        let _stop = stop;
        serve_connection(Transport::Memory(stream), addr, config, shutdown, router).await
    });
    (task, peer)
}

/// Runs `client` against one connection of `app` served on an in-memory transport, on a fresh
/// tokio-uring runtime; returns when the client is done and the connection task ended.
pub fn converse<F, Fut>(app: &Arc<App>, client: F)
where
    F: FnOnce(MemoryPeer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    tokio_uring::start(async {
        let (task, peer) = serve(app);
        client(peer.clone()).await;
        peer.close();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the connection ends once the client closes")
            .unwrap();
    });
}
