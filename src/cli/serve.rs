//! `upgate serve`: load the configuration (defaults < file < `UPGATE_*` environment < flags),
//! start the node, reload on SIGHUP, drain on SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::callback::CallbackPolicy;
use crate::config::source::{Layers, Loaded};
use crate::config::{Config, ConfigError, ExpectPolicy};
use crate::logging::{self, LogHandle};
use crate::node::Node;

/// A second SIGINT/SIGTERM within this time of the first is taken as a duplicate.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(1);

/// Flags override `UPGATE_*` environment variables, which override the config file, which
/// overrides the embedded defaults.
#[derive(Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on, ip:port or host:port [default: 127.0.0.1:8080]
    #[arg(long, value_parser = crate::config::parse_listen)]
    pub listen: Option<std::net::SocketAddr>,
    /// Directory for the registry and stored files [default: ./data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Base of download URLs [default: http://<listen>]
    #[arg(long)]
    pub public_url: Option<String>,
    /// Bearer token for registration (visible in `ps`: prefer the file or UPGATE_ADMIN_TOKEN)
    /// [default: none: only loopback peers may register]
    #[arg(long)]
    pub admin_token: Option<String>,
    /// `require` (patent) or `optional` [default: require]
    #[arg(long, value_parser = parse_expect)]
    pub expect: Option<ExpectPolicy>,
    /// Any configuration key, as KEY=VALUE (repeatable; applied after the flags above; every
    /// key and its default: `upgate config print`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

fn parse_expect(s: &str) -> Result<ExpectPolicy, String> {
    match s {
        "require" => Ok(ExpectPolicy::Require),
        "optional" => Ok(ExpectPolicy::Optional),
        _ => Err("expected `require` or `optional`".into()),
    }
}

impl ServeArgs {
    /// The effective configuration, with the process's environment.
    pub fn load(&self) -> Result<Config, ConfigError> {
        self.resolve(std::env::vars()).map(|l| l.config)
    }

    /// The effective configuration from the file, `env` and the flags, with where each value
    /// came from and the warnings (unknown `UPGATE_*` variables).
    pub fn resolve<I, K, V>(&self, env: I) -> Result<Loaded, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut layers = match &self.config {
            Some(path) => Layers::from_file(path)?,
            None => Layers::default(),
        }
        .env(env)?;
        if let Some(v) = self.listen {
            layers = layers.flag("--listen", "listen", |c| c.listen = v);
        }
        if let Some(v) = &self.data_dir {
            layers = layers.flag("--data-dir", "data_dir", |c| c.data_dir = v.clone());
        }
        if let Some(v) = &self.public_url {
            layers = layers.flag("--public-url", "public_url", |c| {
                c.public_url = Some(v.clone())
            });
        }
        if let Some(v) = &self.admin_token {
            layers = layers.flag("--admin-token", "admin_token", |c| {
                c.admin_token = Some(v.clone())
            });
        }
        if let Some(v) = self.expect {
            layers = layers.flag("--expect", "expect", |c| c.expect = v);
        }
        for assignment in &self.set {
            layers = layers.set_flag(assignment)?;
        }
        layers.finish()
    }
}

/// Runs the node until SIGINT or SIGTERM, then drains and exits 0. SIGHUP reloads
/// `callback_allow` and `log_level`.
pub fn serve(args: ServeArgs) -> ExitCode {
    let loaded = match args.resolve(std::env::vars()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("upgate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let config = loaded.config;
    let log = match logging::init(&config.log_level, config.log_format) {
        Ok(handle) => Some(handle),
        Err(e) => {
            eprintln!("upgate: logging not set up: {e}");
            None
        }
    };
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let code = run(&args, config, log.as_ref());
    if let Some(log) = &log {
        log.flush();
    }
    code
}

/// Starts the node and serves until the drain is over.
fn run(args: &ServeArgs, mut config: Config, log: Option<&LogHandle>) -> ExitCode {
    // Block the signals before any runtime thread starts, so only the iterator sees them.
    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("upgate: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    raise_open_file_limit(&config);
    let node = match Node::start(config.clone()) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("upgate: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    println!("upgate listening on http://{}", node.local_addr());
    if let Some(tls) = node.tls_addr() {
        println!("upgate listening on https://{tls}");
        match crate::server::tls::probe_kernel_tls() {
            Err(why) => {
                tracing::info!(addr = %tls, "listening (TLS, rustls in user space); kernel TLS unavailable: {why}")
            }
            Ok(()) => {
                tracing::info!(addr = %tls, "listening (TLS, rustls in user space); kernel TLS is available but not used yet")
            }
        }
    }
    tracing::info!(addr = %node.local_addr(), threads = config.thread_count(), node_id = %config.node_id(), registry = ?config.registry, "listening");
    for signal in signals.forever() {
        if signal == SIGHUP {
            reload(args, &node, log, &mut config);
            continue;
        }
        tracing::info!(signal, "shutting down: draining in-flight requests");
        break;
    }
    // A second SIGINT/SIGTERM skips the drain, unless it is the same signal delivered twice:
    // `make`, shells and supervisors often signal the process group and forward it as well.
    let first = Instant::now();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal != SIGHUP && first.elapsed() >= DUPLICATE_WINDOW {
                std::process::exit(1);
            }
        }
    });
    node.shutdown();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// Descriptors the node holds besides client connections (listeners, rings, the registry, files
/// and pipes of uploads in flight, callback sockets): a rough reserve for the warning below.
const FD_RESERVE: u64 = 256;

/// Raises the soft open-file limit to the hard one (every connection is a descriptor; the
/// usual soft default of 1024 is far below `max_connections`) and warns when even that is too
/// low for `max_connections`: beyond the limit accepts fail with EMFILE and connections wait in
/// the kernel's queue (the accept loop pauses instead of spinning).
fn raise_open_file_limit(config: &Config) {
    match crate::server::raise_nofile_limit() {
        Ok((before, after)) => {
            if after > before {
                tracing::info!(
                    from = before,
                    to = after,
                    "raised the open-file limit (RLIMIT_NOFILE) to its hard limit"
                );
            }
            let wanted = config.max_connections as u64 + FD_RESERVE;
            if after < wanted {
                tracing::warn!(
                    limit = after,
                    max_connections = config.max_connections,
                    "the open-file limit is below max_connections + {FD_RESERVE}: connections \
                     beyond it wait in the accept queue (raise LimitNOFILE / ulimit -Hn)"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit (RLIMIT_NOFILE)"),
    }
}

/// SIGHUP: reads the configuration again and applies what can change without a restart
/// (`callback_allow`, `log_level`); connections are untouched. An invalid file changes nothing.
fn reload(args: &ServeArgs, node: &Node, log: Option<&LogHandle>, running: &mut Config) {
    let new = match args.resolve(std::env::vars()) {
        Ok(l) => l.config,
        Err(e) => {
            tracing::error!(error = %e, "reload failed; the running configuration stays");
            return;
        }
    };
    if new.callback_allow != running.callback_allow {
        match CallbackPolicy::try_new(&new.callback_allow) {
            Ok(policy) => {
                node.app.set_policy(policy);
                running.callback_allow = new.callback_allow.clone();
                tracing::info!(callback_allow = ?running.callback_allow, "reloaded callback_allow");
            }
            Err(e) => tracing::error!(error = %e, "reload: callback_allow rejected"),
        }
    }
    if new.log_level != running.log_level {
        match log.map(|l| l.set_level(&new.log_level)) {
            Some(Ok(())) => {
                running.log_level = new.log_level.clone();
                tracing::info!(log_level = %running.log_level, "reloaded log_level");
            }
            Some(Err(e)) => tracing::error!(error = %e, "reload: log_level rejected"),
            None => {}
        }
    }
    match node.reload_tls() {
        Some(Ok(())) => tracing::info!("reloaded tls_cert and tls_key: new connections use them"),
        Some(Err(e)) => {
            tracing::error!(error = %e, "reload: the TLS certificate stays as it was")
        }
        None => {}
    }
    for key in changed_keys(running, &new) {
        tracing::warn!(
            key,
            "changed in the configuration; takes effect after a restart"
        );
    }
    tracing::info!("configuration reloaded");
}

/// Keys whose values differ between `a` and `b`.
fn changed_keys(a: &Config, b: &Config) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    Config::keys()
        .into_iter()
        .filter(|k| a.get(k) != b.get(k))
        .collect()
}
