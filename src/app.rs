//! Everything the handlers share across io_uring threads: configuration, the sled registry and
//! outbox, the file store, the callback pool and the callback URL policy.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};

use crate::callback::{CallbackPolicy, CallbackPool};
use crate::config::{Config, RegistryKind, StoreKind};
use crate::registry::{Durability, EtcdSettings, Registry};
use crate::storage::{LocalStore, Store};

/// The node's shared state. Handlers hold it through an `Arc`.
pub struct App {
    pub config: Arc<Config>,
    pub registry: Registry,
    pub store: Store,
    pub pool: CallbackPool,
    /// Every app's quota usage on this node.
    pub quotas: Arc<crate::quota::Quotas>,
    /// `node_id` (or the host name), in the callbacks this node makes.
    pub node_id: String,
    policy: RwLock<Arc<CallbackPolicy>>,
    /// Wakes the outbox sender before its next tick (a retry asked through the API).
    pub outbox_wake: crate::notify::wake::Wake,
    /// The address actually bound (differs from `listen` when its port is 0).
    bound: OnceLock<SocketAddr>,
    /// The S3 origin (`store = "s3"`), set once by [`App::open`].
    origin: OnceLock<crate::origin::Origin>,
}

/// Why the node could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl App {
    /// Opens the registry, opens the store (removing temporary files a crash left behind) and
    /// starts the callback pool. Nothing is sent or accepted yet; the node's composition root
    /// (`crate::node`) reconciles the outbox with the stored files before it starts anything.
    pub fn open(config: Config) -> Result<Arc<App>, StartError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StartError(format!("data_dir {}: {e}", config.data_dir.display())))?;
        let durability = match config.fsync {
            true => Durability::Synced,
            false => Durability::Written,
        };
        let etcd = (config.registry == RegistryKind::Etcd).then(|| EtcdSettings {
            endpoints: config.etcd_endpoints.clone(),
            prefix: config.etcd_prefix.clone(),
        });
        let registry = Registry::open_node(&config.data_dir, durability, etcd.as_ref())
            .map_err(|e| StartError(format!("registry: {e}")))?;
        let store = LocalStore::open(&config.data_dir)
            .map(|s| Store::Local(s.with_cache_ttl(config.open_file_cache_ttl())))
            .map_err(|e| StartError(format!("store: {e}")))?;
        let pool = CallbackPool::try_new(
            config.callback_workers,
            config.callback_queue,
            config.callback_timeout(),
        )
        .map_err(|e| StartError(format!("callback pool: {e}")))?;
        // Quotas count the files stored now (recomputed at every start: see `crate::quota`).
        let stored = crate::quota::stored_bytes_by_app(&store)
            .map_err(|e| StartError(format!("store: counting stored bytes: {e}")))?;
        let origin = match config.store {
            StoreKind::Local => None,
            StoreKind::S3 => Some(open_origin(&config)?),
        };
        let app = App::new(config, registry, store, pool)?;
        app.quotas.set_stored(stored);
        if let Some(origin) = origin {
            let _ = app.origin.set(origin);
        }
        Ok(app)
    }

    /// The shared state from parts already open: the node's own (sled, files, HTTP callbacks)
    /// through [`App::open`], or in-memory twins in tests of the whole flow without sockets or
    /// disk (`Registry::in_memory`, `Store::Memory`, a pool whose calls a function answers).
    pub fn new(
        config: Config,
        registry: Registry,
        store: Store,
        pool: CallbackPool,
    ) -> Result<Arc<App>, StartError> {
        let policy = CallbackPolicy::try_new(&config.callback_allow)
            .map_err(|e| StartError(format!("callback_allow: {e}")))?;
        let node_id = config.node_id();
        crate::logging::set_node_id(&node_id);
        Ok(Arc::new(App {
            node_id,
            config: Arc::new(config),
            registry,
            store,
            pool,
            quotas: crate::quota::Quotas::new(),
            policy: RwLock::new(Arc::new(policy)),
            outbox_wake: crate::notify::wake::Wake::default(),
            bound: OnceLock::new(),
            origin: OnceLock::new(),
        }))
    }

    /// The S3 origin, with `store = "s3"`.
    pub fn origin(&self) -> Option<&crate::origin::Origin> {
        self.origin.get()
    }

    /// Records the bound address, for download URLs when `public_url` is not set.
    pub fn set_bound_addr(&self, addr: SocketAddr) {
        let _ = self.bound.set(addr);
    }

    /// Base of download URLs: `public_url`, else `http://<bound address>`.
    pub fn public_base(&self) -> String {
        match (&self.config.public_url, self.bound.get()) {
            (Some(_), _) | (None, None) => self.config.public_base(),
            (None, Some(addr)) => format!("http://{addr}"),
        }
    }

    /// The callback URL policy in force.
    pub fn policy(&self) -> Arc<CallbackPolicy> {
        self.policy
            .read()
            .map_or_else(|p| p.into_inner().clone(), |p| p.clone())
    }

    /// Replaces the policy (SIGHUP reload of `callback_allow`).
    pub fn set_policy(&self, policy: CallbackPolicy) {
        if let Ok(mut p) = self.policy.write() {
            *p = Arc::new(policy);
        }
    }
}

/// The origin of `store = "s3"`: credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
fn open_origin(config: &Config) -> Result<crate::origin::Origin, StartError> {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| StartError(format!("store = \"s3\": {name} is not set")))
    };
    let settings = crate::origin::OriginSettings {
        s3: crate::origin::S3Settings {
            endpoint: config.s3_endpoint.clone().unwrap_or_default(),
            bucket: config.s3_bucket.clone(),
            region: config.s3_region.clone(),
            access_key: env("AWS_ACCESS_KEY_ID")?,
            secret_key: env("AWS_SECRET_ACCESS_KEY")?,
        },
        write: config.origin_write,
        node_id: config.node_id(),
        data_dir: config.data_dir.clone(),
        etcd: (config.registry == RegistryKind::Etcd)
            .then(|| (config.etcd_endpoints.clone(), config.etcd_prefix.clone())),
        fsync: config.fsync,
    };
    crate::origin::Origin::start(settings).map_err(|e| StartError(format!("origin: {e}")))
}
