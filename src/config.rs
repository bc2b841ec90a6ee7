//! The node's configuration: every key of the contract, with its embedded default. Loaded in
//! layers — embedded defaults < TOML file (`--config FILE`) < `UPGATE_*` environment variables
//! < command-line flags ([`source`]). Unknown keys are errors; every error names the key and
//! where its value came from (file and line, variable, or flag).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::Limits;

/// Whether uploads must carry `Expect: 100-continue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectPolicy {
    /// As in the patent: a request without the expectation is refused (400 `expect_required`).
    Require,
    /// Browsers never send `Expect`: the pre-callback still decides before any body byte is read.
    Optional,
}

/// Body digest mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checksum {
    None,
    Sha256,
}

/// Where registrations live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryKind {
    /// In this node's sled database only.
    Local,
    /// In etcd; this node's sled database is its cache, kept current by a watch.
    Etcd,
}

/// Where committed files live (`store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Files under `data_dir` only.
    Local,
    /// Also on an S3-compatible origin; the local disk is this node's cache of it.
    S3,
}

/// When a committed file is written to the origin (`origin_write`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginWrite {
    /// Before the post-callback and the `201`: the origin holds every file a client was told of.
    BeforeCallback,
    /// After the local commit, from a durable queue retried until the origin takes it.
    Background,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Every configuration key. Field names are the contract's key names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `ip:port`, or `host:port` resolved once at load (`localhost:8080`).
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Base of download URLs; `http://<listen>` when unset.
    pub public_url: Option<String>,
    /// io_uring runtimes; 0 means one per core.
    pub threads: usize,
    /// Each io_uring runtime's thread kept on one CPU of those the node may use.
    pub pin_threads: bool,
    pub admin_token: Option<String>,
    pub expect: ExpectPolicy,
    pub callback_allow: Vec<String>,
    pub callback_timeout_ms: u64,
    pub callback_workers: usize,
    pub callback_queue: usize,
    /// Bytes, or with a `K`/`M`/`G`/`T` suffix (`"10G"`).
    #[serde(deserialize_with = "size")]
    pub max_body_bytes: u64,
    pub max_head_bytes: usize,
    pub header_timeout_ms: u64,
    pub body_idle_timeout_ms: u64,
    pub keepalive_timeout_ms: u64,
    pub max_connections: usize,
    pub fsync: bool,
    pub overwrite: bool,
    pub zero_copy: bool,
    pub checksum: Checksum,
    /// Unfinished resumable uploads are removed after this many seconds without an append.
    pub resumable_expiry_s: u64,
    /// A post-callback still undelivered this many seconds after it was recorded moves to the
    /// outbox's dead list (kept, listed, no longer retried on its own).
    pub notify_max_age_s: u64,
    /// Peers (addresses or CIDR blocks) whose `Forwarded` / `X-Forwarded-For` give `client_ip`.
    pub trusted_proxies: Vec<String>,
    /// An HTTPS listener beside `listen` (`ip:port` or `host:port`), with `tls_cert` and
    /// `tls_key`.
    #[serde(deserialize_with = "opt_listen_addr")]
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain, leaf first.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// This node's name in logs, metrics and stored records; the host name when unset.
    pub node_id: Option<String>,
    /// `local` or `etcd`.
    pub registry: RegistryKind,
    /// etcd client URLs (`registry = "etcd"`).
    pub etcd_endpoints: Vec<String>,
    /// Key prefix in etcd.
    pub etcd_prefix: String,
    /// `local` or `s3`.
    pub store: StoreKind,
    /// The origin's S3 endpoint URL (`store = "s3"`), path-style requests.
    pub s3_endpoint: Option<String>,
    /// The origin's bucket.
    pub s3_bucket: String,
    /// The origin's region (signed into every request).
    pub s3_region: String,
    /// When the origin copy is made.
    pub origin_write: OriginWrite,
    // Keys beyond the contract, documented in docs/operations.md.
    /// Header fields in one head.
    pub max_headers: usize,
    /// Request-target bytes (414 beyond).
    pub max_target_bytes: usize,
    /// How long SIGTERM/SIGINT waits for in-flight requests before exiting.
    pub shutdown_timeout_ms: u64,
    /// Longest lingering close after a response sent without reading the body.
    pub linger_ms: u64,
    /// Longest delay between two attempts of a post-callback in the outbox.
    pub outbox_retry_max_ms: u64,
    /// How long a download may serve a file from its thread's open-file cache without opening
    /// it again (files changed behind the node's back); 0 turns the cache off.
    pub open_file_cache_ttl_ms: u64,
    /// `tracing` filter directives: a level (`info`) or per-target (`info,upgate::access=off`).
    /// Reloaded on SIGHUP.
    pub log_level: String,
    /// `pretty` or `json`.
    pub log_format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            public_url: None,
            threads: 0,
            pin_threads: false,
            admin_token: None,
            expect: ExpectPolicy::Require,
            callback_allow: Vec::new(),
            callback_timeout_ms: 5000,
            callback_workers: 32,
            callback_queue: 4096,
            max_body_bytes: 10 << 30,
            max_head_bytes: 65536,
            header_timeout_ms: 10_000,
            body_idle_timeout_ms: 30_000,
            keepalive_timeout_ms: 60_000,
            max_connections: 10_000,
            fsync: true,
            overwrite: false,
            zero_copy: true,
            checksum: Checksum::None,
            resumable_expiry_s: 86_400,
            notify_max_age_s: 604_800,
            trusted_proxies: Vec::new(),
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            node_id: None,
            registry: RegistryKind::Local,
            etcd_endpoints: vec!["http://127.0.0.1:2379".to_string()],
            etcd_prefix: "/upgate/".to_string(),
            store: StoreKind::Local,
            s3_endpoint: None,
            s3_bucket: "upgate".to_string(),
            s3_region: "us-east-1".to_string(),
            origin_write: OriginWrite::BeforeCallback,
            max_headers: 100,
            max_target_bytes: 8192,
            shutdown_timeout_ms: 30_000,
            linger_ms: 5000,
            outbox_retry_max_ms: 600_000,
            open_file_cache_ttl_ms: 1000,
            log_level: "info".to_string(),
            log_format: LogFormat::Pretty,
        }
    }
}

/// `listen`: an address, or a host name and port resolved now (an IPv4 address preferred, as
/// `localhost` usually means 127.0.0.1 to the people who write it).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if text
        .rsplit_once(':')
        .is_none_or(|(_, port)| port.parse::<u16>().is_err())
    {
        return Err(format!(
            "{text:?}: expected host:port, such as 127.0.0.1:8080, [::1]:8080 or localhost:8080"
        ));
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("{text:?}: the host name does not resolve: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?}: the host name resolves to no address"))
}

fn listen_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_listen(&text).map_err(serde::de::Error::custom)
}

fn opt_listen_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_listen(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// A size: a whole number of bytes, or text with a suffix (`"10G"`, `"512K"`).
fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(t) => upgate_contract::parse_size(&t).map_err(serde::de::Error::custom),
    }
}

/// A configuration that cannot be used, with the key (and line) at fault.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A value that cannot be used: the key, and why. [`source`] adds where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: &'static str,
    pub message: String,
}

impl Invalid {
    fn new(key: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            key,
            message: message.into(),
        }
    }
}

impl Config {
    /// Parses and validates TOML text; `origin` names the file in errors, which read
    /// `origin:line: key: message`.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config = source::parse_toml(text, origin)?;
        config
            .check()
            .map_err(|inv| source::in_file(text, origin, &inv))?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// Every key, as spelled in TOML (taken from serialising the defaults, so a new field is a
    /// new key everywhere: environment variables, `config print`, the documentation test).
    pub fn keys() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => unreachable!("Config serialises to a map"),
        }
    }

    /// The environment variable of `key`: `UPGATE_` and the key in upper case.
    pub fn env_var(key: &str) -> String {
        format!("UPGATE_{}", key.to_ascii_uppercase())
    }

    /// Checks values serde cannot: ranges and relations between keys (`key: message`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check()
            .map_err(|inv| ConfigError(format!("{}: {}", inv.key, inv.message)))
    }

    /// [`Config::validate`] with the failing key kept apart (the first of [`Config::problems`]).
    pub fn check(&self) -> Result<(), Invalid> {
        match self.problems().into_iter().next() {
            Some(inv) => Err(inv),
            None => Ok(()),
        }
    }

    /// Every value that cannot be used, in key order of the checks (`config check` reports
    /// them all at once).
    pub fn problems(&self) -> Vec<Invalid> {
        let mut out = Vec::new();
        let positive = [
            ("callback_timeout_ms", self.callback_timeout_ms),
            ("callback_workers", self.callback_workers as u64),
            ("callback_queue", self.callback_queue as u64),
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_idle_timeout_ms", self.body_idle_timeout_ms),
            ("keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("max_connections", self.max_connections as u64),
            ("max_headers", self.max_headers as u64),
            ("resumable_expiry_s", self.resumable_expiry_s),
            ("notify_max_age_s", self.notify_max_age_s),
        ];
        for (key, value) in positive {
            if value == 0 {
                out.push(Invalid::new(key, "must be greater than 0"));
            }
        }
        if self.max_head_bytes < 1024 {
            out.push(Invalid::new("max_head_bytes", "must be at least 1024"));
        }
        if self.max_head_bytes > crate::http::MAX_HEAD_BYTES_CEILING {
            out.push(Invalid::new(
                "max_head_bytes",
                format!("must be at most {}", crate::http::MAX_HEAD_BYTES_CEILING),
            ));
        }
        if self.max_headers > crate::http::MAX_HEADERS_CEILING {
            out.push(Invalid::new(
                "max_headers",
                format!("must be at most {}", crate::http::MAX_HEADERS_CEILING),
            ));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                out.push(Invalid::new(
                    "public_url",
                    "must start with http:// or https://",
                ));
            } else if let Err(e) = url::Url::parse(url) {
                out.push(Invalid::new("public_url", format!("not a URL: {e}")));
            }
        }
        if self.admin_token.as_deref() == Some("") {
            out.push(Invalid::new(
                "admin_token",
                "must not be empty (leave it unset for loopback-only registration)",
            ));
        }
        if let Err(e) = crate::callback::CallbackPolicy::try_new(&self.callback_allow) {
            out.push(Invalid::new("callback_allow", e.to_string()));
        }
        if let Some(e) = self
            .trusted_proxies
            .iter()
            .find_map(|t| crate::upload::forwarded::Cidr::parse(t).err())
        {
            out.push(Invalid::new("trusted_proxies", e));
        }
        match (&self.tls_listen, &self.tls_cert, &self.tls_key) {
            (None, None, None) | (Some(_), Some(_), Some(_)) => {}
            _ => out.push(Invalid::new(
                "tls_listen",
                "tls_listen, tls_cert and tls_key go together: set all three or none",
            )),
        }
        if let Some(a) = &self.tls_listen {
            if *a == self.listen && a.port() != 0 {
                out.push(Invalid::new("tls_listen", "must differ from listen"));
            }
        }
        if self.registry == RegistryKind::Etcd {
            if self.etcd_endpoints.is_empty() {
                out.push(Invalid::new(
                    "etcd_endpoints",
                    "must name at least one etcd member",
                ));
            }
            if let Some(bad) = self
                .etcd_endpoints
                .iter()
                .find(|e| !e.starts_with("http://"))
            {
                out.push(Invalid::new(
                    "etcd_endpoints",
                    format!("{bad:?}: must be an http:// URL of etcd's client port"),
                ));
            }
        }
        if !self.etcd_prefix.starts_with('/') || !self.etcd_prefix.ends_with('/') {
            out.push(Invalid::new("etcd_prefix", "must start and end with '/'"));
        }
        if self.store == StoreKind::S3 {
            match self.s3_endpoint.as_deref() {
                None => out.push(Invalid::new(
                    "s3_endpoint",
                    "store = \"s3\" needs the origin's URL (http:// or https://)",
                )),
                Some(e) if !(e.starts_with("http://") || e.starts_with("https://")) => {
                    out.push(Invalid::new(
                        "s3_endpoint",
                        format!("{e:?}: must be an http:// or https:// URL"),
                    ))
                }
                Some(_) => {}
            }
            if self.s3_bucket.is_empty() {
                out.push(Invalid::new("s3_bucket", "must not be empty"));
            }
        }
        if let Some(id) = &self.node_id {
            if id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                out.push(Invalid::new("node_id", "must be 1-64 of [A-Za-z0-9._-]"));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log_level) {
            out.push(Invalid::new("log_level", e.to_string()));
        }
        out
    }

    /// `node_id`, or this host's name (`localhost` when it has none).
    pub fn node_id(&self) -> String {
        if let Some(id) = &self.node_id {
            return id.clone();
        }
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
        match std::str::from_utf8(&buf[..end]) {
            Ok(name) if ok && !name.is_empty() => name.to_owned(),
            _ => "localhost".to_owned(),
        }
    }

    /// io_uring runtimes to start.
    pub fn thread_count(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        }
    }

    /// The protocol layer's limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_head_bytes: self.max_head_bytes,
            max_headers: self.max_headers,
            max_target_bytes: self.max_target_bytes,
            ..Limits::default()
        }
    }

    /// `trusted_proxies`, parsed (entries that do not parse were refused by [`Config::check`]).
    pub fn trusted_proxies(&self) -> Vec<crate::upload::forwarded::Cidr> {
        self.trusted_proxies
            .iter()
            .filter_map(|t| crate::upload::forwarded::Cidr::parse(t).ok())
            .collect()
    }

    /// Base URL of downloads.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    pub fn callback_timeout(&self) -> Duration {
        Duration::from_millis(self.callback_timeout_ms)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub fn body_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.body_idle_timeout_ms)
    }

    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.keepalive_timeout_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }

    pub fn open_file_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.open_file_cache_ttl_ms)
    }
}

pub mod source;

#[cfg(test)]
mod tests;
