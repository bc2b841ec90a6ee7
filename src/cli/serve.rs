//! `upgate serve`: load the configuration, start the node, drain on SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{Config, ExpectPolicy};
use crate::node::Node;

/// `upgate serve`: flags override the config file, which overrides the embedded defaults.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Directory for the registry and stored files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Base of download URLs.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Bearer token for registration.
    #[arg(long)]
    pub admin_token: Option<String>,
    /// `require` (patent) or `optional`.
    #[arg(long, value_parser = parse_expect)]
    pub expect: Option<ExpectPolicy>,
}

fn parse_expect(s: &str) -> Result<ExpectPolicy, String> {
    match s {
        "require" => Ok(ExpectPolicy::Require),
        "optional" => Ok(ExpectPolicy::Optional),
        _ => Err("expected `require` or `optional`".into()),
    }
}

impl ServeArgs {
    /// The effective configuration.
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &self.public_url {
            config.public_url = Some(v.clone());
        }
        if let Some(v) = &self.admin_token {
            config.admin_token = Some(v.clone());
        }
        if let Some(v) = self.expect {
            config.expect = v;
        }
        config.validate()?;
        Ok(config)
    }
}

/// Runs the node until SIGINT or SIGTERM, then drains and exits 0.
pub fn serve(args: ServeArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("UPGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let config = match args.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("upgate: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // Block the signals before any runtime thread starts, so only the iterator sees them.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("upgate: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let node = match Node::start(config.clone()) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("upgate: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    println!("upgate listening on http://{}", node.local_addr());
    tracing::info!(addr = %node.local_addr(), threads = config.thread_count(), "listening");
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "shutting down: draining in-flight requests");
    }
    // A second signal skips the drain.
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            std::process::exit(1);
        }
    });
    node.shutdown();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
