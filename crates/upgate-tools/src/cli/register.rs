//! `upgate register`: registers an application's callbacks with a node and prints the answer,
//! which carries the signing secret (shown this once).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::client::{self, Registration};

/// `upgate register --server URL --appid ID --pre URL --post URL [--hosts H,…] [--token T]
/// [--cacert FILE]`
#[derive(Args, Debug)]
#[command(after_help = super::upload::EXIT_CODES_HELP)]
pub struct RegisterArgs {
    /// The node: http://HOST:PORT or https://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// For an https:// node: a PEM file of the CA(s) to trust, instead of the system's store.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// The application's id (1-64 of A-Z a-z 0-9 _ -).
    #[arg(long)]
    pub appid: String,
    /// The pre-upload callback URL.
    #[arg(long, value_name = "URL")]
    pub pre: String,
    /// The post-upload callback URL.
    #[arg(long, value_name = "URL")]
    pub post: String,
    /// Hosts (host or host:port) the app's clients may name in callback headers.
    #[arg(long, value_name = "HOST,…", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// The app's upload limit in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<u64>,
    /// Origins (https://app.example.com) whose pages may upload and download from a browser.
    #[arg(long, value_name = "ORIGIN,…", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Whether the app's raw uploads need `Expect: 100-continue` (default: the node's).
    #[arg(long, value_parser = ["require", "optional"])]
    pub expect: Option<String>,
    /// Ask for a new secret even when the app is already registered.
    #[arg(long)]
    pub rotate_secret: bool,
    /// The node's admin token (without one, only loopback clients may register).
    #[arg(long, env = "UPGATE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub fn register(args: RegisterArgs) -> ExitCode {
    let reg = Registration {
        appid: args.appid.clone(),
        callback_url_pre: args.pre.clone(),
        callback_url_post: args.post.clone(),
        callback_hosts: args.hosts.clone(),
        max_body_bytes: args.max_body_bytes,
        rotate_secret: args.rotate_secret,
        cors_origins: args.cors_origins.clone(),
        expect: args.expect.clone(),
    };
    match client::register_with_ca(
        &args.server,
        &reg,
        args.token.as_deref(),
        Duration::from_secs(30),
        args.cacert.as_deref(),
    ) {
        Ok(done) => {
            println!("{}", done.body.trim_end());
            match &done.secret {
                Some(_) => eprintln!(
                    "registered {}: the \"secret\" above signs its callbacks; it is shown only \
                     this once, keep it",
                    done.appid
                ),
                None => eprintln!("registered {} (its secret is unchanged)", done.appid),
            }
            ExitCode::SUCCESS
        }
        Err(e) => super::upload::report(&e, "register"),
    }
}
