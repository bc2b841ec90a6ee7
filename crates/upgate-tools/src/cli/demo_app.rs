//! `upgate demo-app`: the reference application server, until SIGINT/SIGTERM.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::demo::{parse_ext_list, parse_size, DemoApp, DemoConfig, Rules};

/// `upgate demo-app [--listen ADDR] [--appid ID] [--register-with URL] [--token T]
/// [--node-url URL] [--cors-origin ORIGIN]… [--max-size N] [--allow-ext jpg,png,…]`
#[derive(Args, Debug)]
#[command(after_help = "\
Routes: POST /pre, POST /post (the node's callbacks, signature-checked), GET / (a page that \
uploads from the browser straight to the node and lists the uploads), GET /token[?name=N] (a form \
target with a signed upload token), GET /rows, GET /uploads.json.
Every callback must carry a valid signature from the secret the app got by registering itself \
(--register-with) or was given (--secret); without any secret every callback gets 401.")]
pub struct DemoAppArgs {
    /// Address to listen on (port 0: any free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// The application's id.
    #[arg(long, default_value = "demo")]
    pub appid: String,
    /// Register this app (its /pre and /post URLs) with the node at this URL at start.
    #[arg(long, value_name = "URL")]
    pub register_with: Option<String>,
    /// For an https:// --register-with: a PEM file of the CA(s) to trust, instead of the
    /// system's store.
    #[arg(long, value_name = "FILE", requires = "register_with")]
    pub cacert: Option<std::path::PathBuf>,
    /// The node's admin token, for --register-with.
    #[arg(long, env = "UPGATE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A secret (whsec_…) from an earlier `upgate register`, to verify callbacks with.
    #[arg(long, env = "UPGATE_DEMO_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The base URL the node should call this app at (default: http://ADDR, the bound address).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// The node as browsers reach it, where the page uploads (default: --register-with).
    #[arg(long, value_name = "URL")]
    pub node_url: Option<String>,
    /// Another origin (http://host:port) whose pages may upload to the node for this app and
    /// ask the app for tokens; repeat for more (the app's own origin is always allowed).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// The `expect` to register: `optional` (browsers never send `Expect`) or `require`.
    #[arg(long, default_value = "optional", value_parser = ["require", "optional"])]
    pub expect: String,
    /// Veto files larger than this (bytes, or with K/M/G suffix).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,
    /// Veto files whose extension is not in this list (comma-separated; default: any).
    #[arg(long, value_name = "EXT,…")]
    pub allow_ext: Option<String>,
}

pub fn demo_app(args: DemoAppArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("UPGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("upgate demo-app: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let mut cfg = DemoConfig::new(args.listen, args.appid.clone());
    cfg.register_with = args.register_with.clone();
    cfg.cacert = args.cacert.clone();
    cfg.token = args.token.clone();
    cfg.public_url = args.public_url.clone();
    cfg.secrets = args.secret.iter().cloned().collect();
    cfg.node_url = args.node_url.clone();
    cfg.cors_origins = args.cors_origins.clone();
    cfg.expect = Some(args.expect.clone());
    cfg.rules = Rules {
        max_size: args.max_size,
        allow_ext: args
            .allow_ext
            .as_deref()
            .map(parse_ext_list)
            .unwrap_or_default(),
    };
    let app = match DemoApp::start(cfg) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("upgate demo-app: {e}");
            return ExitCode::from(1);
        }
    };
    println!("upgate demo-app listening on http://{}", app.local_addr());
    if let Some(node) = &args.register_with {
        println!(
            "registered appid {} with {node}: pre {} post {} (secret kept in memory)",
            args.appid,
            app.url("/pre"),
            app.url("/post")
        );
    }
    signals.forever().next();
    app.shutdown();
    ExitCode::SUCCESS
}
