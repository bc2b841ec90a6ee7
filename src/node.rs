//! A whole node: the shared state, the io_uring server with the node's router, the outbox
//! sender and the resumable uploads' expiry sweep. `upgate serve` and the end-to-end tests start it the same way.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::app::{App, StartError};
use crate::config::Config;
use crate::routes::Router;
use crate::server::{self, ServerHandle};

/// A running node.
pub struct Node {
    pub app: Arc<App>,
    server: ServerHandle,
    stop_outbox: Arc<AtomicBool>,
    outbox: JoinHandle<()>,
    sweep: JoinHandle<()>,
}

impl Node {
    /// Opens the registry and store, binds the listeners and starts every thread.
    pub fn start(config: Config) -> Result<Node, StartError> {
        let app = App::open(config.clone())?;
        // Many nodes: an app deleted at another node takes its files here too.
        let (store, quotas) = (app.store.clone(), app.quotas.clone());
        app.registry.on_app_deleted(move |appid| {
            use crate::storage::ObjectStore;
            match store.delete_app_blocking(appid) {
                Ok(had_files) => {
                    quotas.forget_stored(appid);
                    tracing::info!(appid, had_files, "application deleted (seen in etcd): its files on this node removed");
                }
                Err(e) => tracing::warn!(appid, error = %e, "application deleted (seen in etcd): removing its files on this node failed"),
            }
        });
        // Before anything is sent or accepted: drop the notifications whose file a crash kept
        // from appearing, and make interrupted first attempts due now.
        let reconciled = crate::notify::reconcile(&app.registry, &app.store)
            .map_err(|e| StartError(format!("outbox: {e}")))?;
        if reconciled != Default::default() {
            tracing::info!(
                kept = reconciled.kept,
                dropped = reconciled.dropped,
                due_now = reconciled.due_now,
                "outbox reconciled with the stored files"
            );
        }
        // Before anything is accepted: no record of a completed upload survives a crash.
        crate::upload::resumable::sweep::drop_completed(&app)
            .map_err(|e| StartError(format!("resumable uploads: {e}")))?;
        let router_app = app.clone();
        let server = server::start(config, move || Router::new(router_app.clone()))
            .map_err(|e| StartError(format!("cannot listen on {}: {e}", app.config.listen)))?;
        app.set_bound_addr(server.local_addr());
        let stop_outbox = Arc::new(AtomicBool::new(false));
        let outbox = crate::notify::spawn(app.clone(), stop_outbox.clone())
            .map_err(|e| StartError(format!("outbox sender: {e}")))?;
        let sweep = crate::upload::resumable::sweep::spawn(app.clone(), stop_outbox.clone())
            .map_err(|e| StartError(format!("resumable sweep: {e}")))?;
        Ok(Node {
            app,
            server,
            stop_outbox,
            outbox,
            sweep,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The HTTPS listener's address (`tls_listen`).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.server.tls_addr()
    }

    /// Reads the TLS certificate and key again (SIGHUP); `None` without `tls_listen`.
    pub fn reload_tls(&self) -> Option<Result<(), String>> {
        self.server.reload_tls()
    }

    /// Drains in-flight requests (up to `shutdown_timeout_ms`), stops the outbox sender and
    /// flushes the registry.
    pub fn shutdown(self) {
        self.server.shutdown();
        self.stop_outbox.store(true, Ordering::Relaxed);
        let _ = self.outbox.join();
        let _ = self.sweep.join();
        let _ = self.app.registry.flush();
        // Queued origin copies stay queued on disk; the next start sends them.
        if let Some(origin) = self.app.origin() {
            origin.stop();
        }
    }
}
