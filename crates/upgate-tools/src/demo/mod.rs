//! The reference application server (patent claims 9-11): `upgate demo-app`.
//!
//! It is the third party of the patent's method, kept small enough to read in one sitting and
//! built on the tools' shared app server ([`AppServer`] with a [`DemoHandler`]), which frames
//! HTTP/1.1 with the node's own protocol crate:
//!
//! 1. With a node URL, it registers itself (`POST /upload/register`: its appid, its own
//!    `/pre` and `/post` URLs, its origin as `cors_origins` and `expect = optional`, for
//!    browsers) and keeps the secret the node issues.
//! 2. `POST /pre` (first file info): verifies the Standard Webhooks signature and timestamp,
//!    then accepts or vetoes by its [`Rules`] (size, extension) with a reason.
//! 3. `POST /post` (second file info): verifies, records the file once per upload id, answers
//!    `{"success":"true"}`.
//! 4. `GET /` is a page that uploads from the browser straight to the node
//!    (`POST /upload/form/{appid}`, with an upload token the app signs: `GET /token`), and
//!    shows, as `GET /uploads.json` does, what the app was told about.
//!
//! **Secret rule.** The application verifies every callback and fails closed: without a secret
//! (it did not register itself and no `--secret` was given) it says so in its log at start and
//! refuses every callback with `401` (which the node relays to the client as a veto). See
//! `docs/demo.md`.
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`DemoConfig`], [`DemoApp`] (start, register, stop) |
//! | `handler.rs` | the routes and the signature check |
//! | `browser.rs` | [`Browser`]: the node's form endpoint, upload tokens for the page, origins |
//! | `rules.rs` | [`Rules`]: the pre-upload decision |
//! | `state.rs` | secrets and received uploads, de-duplicated |
//! | `page.rs`, `page.js` | the HTML page and its uploader, the JSON list |

mod browser;
mod handler;
mod page;
mod rules;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use browser::{origin_of, Browser, Fields, FormTarget, TargetError};
pub use handler::DemoHandler;
pub use page::{escape, human_size, utc};
pub use rules::{parse_ext_list, parse_size, Rules};
pub use state::{State, Upload};

use crate::appserver::{AppServer, Options};
use crate::client::{self, ClientError, Registration};

/// How long [`DemoApp::shutdown`] lets requests in progress finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A keep-alive connection with no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How to run the demo application.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub listen: SocketAddr,
    pub appid: String,
    /// A node to register with at start (`http://host:port` or `https://…`).
    pub register_with: Option<String>,
    /// For an `https://` node: a PEM file of the CAs to trust instead of the system's store.
    pub cacert: Option<std::path::PathBuf>,
    /// The node's admin token, for the registration.
    pub token: Option<String>,
    /// The base URL the node uses to reach this app (default `http://<bound address>`).
    pub public_url: Option<String>,
    /// A secret obtained earlier (`upgate register`), for an app that does not register itself.
    pub secrets: Vec<String>,
    pub rules: Rules,
    /// The node as browsers reach it (default: `register_with`); the page's form posts there.
    pub node_url: Option<String>,
    /// Origins besides the app's own whose pages may upload (registered as `cors_origins`) and
    /// ask the app for tokens.
    pub cors_origins: Vec<String>,
    /// The `expect` registered: `optional` by default (browsers never send `Expect`); `None`
    /// leaves the node's own policy.
    pub expect: Option<String>,
}

impl DemoConfig {
    pub fn new(listen: SocketAddr, appid: impl Into<String>) -> Self {
        DemoConfig {
            listen,
            appid: appid.into(),
            register_with: None,
            cacert: None,
            token: None,
            public_url: None,
            secrets: Vec::new(),
            rules: Rules::default(),
            node_url: None,
            cors_origins: Vec::new(),
            expect: Some("optional".into()),
        }
    }
}

/// Why the demo application could not start.
#[derive(Debug)]
pub enum DemoError {
    Listen(std::io::Error),
    Register(ClientError),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Listen(e) => write!(f, "cannot listen: {e}"),
            DemoError::Register(e) => write!(f, "registration failed: {e}"),
        }
    }
}

impl std::error::Error for DemoError {}

/// A running demo application.
pub struct DemoApp {
    pub state: Arc<State>,
    server: AppServer,
    base: String,
    registered: bool,
}

impl DemoApp {
    /// Listens, then (with `register_with`) registers its own callback URLs with the node.
    pub fn start(cfg: DemoConfig) -> Result<DemoApp, DemoError> {
        let state = Arc::new(State::new(
            cfg.appid.clone(),
            cfg.rules.clone(),
            cfg.secrets.clone(),
        ));
        let options = Options {
            max_body: handler::MAX_CALLBACK_BODY,
            idle_timeout: Some(IDLE_TIMEOUT),
            name: "demo-app",
        };
        let server = AppServer::start(cfg.listen, options, DemoHandler::new(state.clone()))
            .map_err(DemoError::Listen)?;
        let base = cfg
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", server.local_addr()))
            .trim_end_matches('/')
            .to_string();
        let mut origins: Vec<String> = Vec::new();
        for o in origin_of(&base)
            .into_iter()
            .chain(cfg.cors_origins.iter().cloned())
        {
            let o = o.trim_end_matches('/').to_string();
            if !origins.contains(&o) {
                origins.push(o);
            }
        }
        state.set_browser(Browser {
            node_url: cfg.node_url.clone().or_else(|| cfg.register_with.clone()),
            origins,
        });
        let mut app = DemoApp {
            state,
            server,
            base,
            registered: false,
        };
        if let Some(node) = &cfg.register_with {
            let (token, cacert) = (cfg.token.as_deref(), cfg.cacert.as_deref());
            if let Err(e) = app.register(node, token, cacert, cfg.expect.clone()) {
                return Err(DemoError::Register(e)); // dropping the app stops its server
            }
        }
        if app.state.secrets().is_empty() {
            tracing::warn!(
                appid = %cfg.appid,
                "no secret: this app did not register itself (--register-with) and was given \
                 none (--secret), so it cannot verify callbacks and will refuse every one with 401"
            );
        }
        Ok(app)
    }

    /// Registers `appid` with its `/pre` and `/post` URLs, its browser origins as
    /// `cors_origins` and `expect`. When the node keeps an existing secret (the app was
    /// registered before), asks for a rotation to learn a fresh one.
    fn register(
        &mut self,
        node: &str,
        token: Option<&str>,
        cacert: Option<&std::path::Path>,
        expect: Option<String>,
    ) -> Result<(), ClientError> {
        let mut reg = Registration {
            appid: self.state.appid.clone(),
            callback_url_pre: self.url("/pre"),
            callback_url_post: self.url("/post"),
            cors_origins: self.state.browser().origins,
            expect,
            ..Registration::default()
        };
        let timeout = Duration::from_secs(10);
        let mut done = client::register_with_ca(node, &reg, token, timeout, cacert)?;
        if done.secret.is_none() && self.state.secrets().is_empty() {
            reg.rotate_secret = true;
            done = client::register_with_ca(node, &reg, token, timeout, cacert)?;
        }
        if let Some(secret) = done.secret {
            self.state.add_secret(secret);
        }
        self.registered = true;
        tracing::info!(appid = %self.state.appid, node, pre = %reg.callback_url_pre,
            post = %reg.callback_url_post, cors_origins = ?reg.cors_origins,
            "registered with the node; secret kept in memory");
        Ok(())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// `base` + `path`, e.g. `url("/uploads.json")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether it registered itself with a node.
    pub fn registered(&self) -> bool {
        self.registered
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.state.uploads()
    }

    /// Stops serving (in-flight requests finish first, up to 2 s).
    pub fn shutdown(self) {
        self.server.shutdown(SHUTDOWN_GRACE);
    }
}

/// The wall clock in unix seconds (callback timestamps, when an upload was received).
fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
