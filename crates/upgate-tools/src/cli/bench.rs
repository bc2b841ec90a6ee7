//! `upgate bench`: the load generator (see `crate::loadgen`), and with `--serve-callbacks ADDR`
//! the fast callback app it uses.
//!
//! Exit codes: 0 when every request succeeded, 1 when some failed (the report still says how
//! many and why), 2 when the run could not be made (bad arguments, registration or setup
//! failed).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::loadgen::callback_app::CallbackApp;
use crate::loadgen::{self, BenchConfig, Callbacks, Mode, Stop};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    Upload,
    /// Uploads as multipart/form-data to /upload/form/APPID (the file part last).
    Form,
    /// Uploads as tus 1.0: a creation, then PATCH appends of --chunk-size bytes (registered
    /// apps only: use --register).
    Tus,
    Download,
    /// A new connection per request (a full TLS handshake for https://): GET /healthz with
    /// Connection: close. Measures new connections per second.
    Connect,
}

/// `upgate bench --target URL -c C (-n N | -d SECS) --size BYTES --mode upload|form|download …`
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The node (or peer) to load: http://HOST:PORT.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// For an https:// target: the CA certificates (PEM) to trust instead of the system's.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Keep-alive connections, one thread each.
    #[arg(long, short = 'c', default_value_t = 16)]
    pub connections: usize,
    /// Total requests (default 1000 unless --duration is given).
    #[arg(long, short = 'n', conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Run for this many seconds instead of a request count.
    #[arg(long, short = 'd', value_name = "SECS")]
    pub duration: Option<f64>,
    /// Body size of each upload or downloaded file: 1024, 4k, 1M, 1GiB…
    #[arg(long, default_value = "1k", value_parser = loadgen::parse_size)]
    pub size: u64,
    #[arg(long, value_enum, default_value_t = BenchMode::Upload)]
    pub mode: BenchMode,
    /// `--mode tus`: the bytes of each append (8MiB, 1M…).
    #[arg(long, default_value = "8MiB", value_parser = loadgen::parse_size)]
    pub chunk_size: u64,
    /// The appid (first path segment and `appid` header).
    #[arg(long, default_value = "bench")]
    pub appid: String,
    /// Path segments after the appid (default: a fresh `run-<ms>-<pid>`).
    #[arg(long)]
    pub path_prefix: Option<String>,
    /// A callback app at ADDR: its /pre and /post are sent as callback_url_pre/post headers
    /// (or registered, with --register).
    #[arg(long, value_name = "ADDR")]
    pub callback_app: Option<SocketAddr>,
    /// Start the built-in callback app in this process on a free loopback port, and use it.
    #[arg(long, conflicts_with = "callback_app")]
    pub spawn_callback_app: bool,
    /// Register the appid with the callback app's URLs before the run instead of carrying
    /// them in headers.
    #[arg(long)]
    pub register: bool,
    /// With --register: the app answers its pre-callbacks with `valid_for_s` SECS, so the
    /// appends of a resumable upload (--mode tus) skip the call within that time.
    #[arg(long, value_name = "SECS")]
    pub pre_valid_for: Option<u64>,
    /// Send bodies right after the head, without Expect: 100-continue.
    #[arg(long)]
    pub no_expect: bool,
    /// Downloads: how many distinct files to cycle over (default: --connections).
    #[arg(long)]
    pub files: Option<usize>,
    /// Downloads: the files /APPID/PREFIX/f{0..files}.bin exist already (don't upload them).
    #[arg(long)]
    pub no_setup: bool,
    /// Socket timeout in seconds.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub timeout: f64,
    /// Report peak RSS and CPU time of these processes (comma-separated pids).
    #[arg(long, value_delimiter = ',', value_name = "PID,…")]
    pub watch_pid: Vec<u32>,
    /// A name for this run, carried into the report.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Print the report as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Only run the callback app on ADDR (POST /pre, POST /post, GET /auth, POST /nginx-post)
    /// until killed.
    #[arg(long, value_name = "ADDR")]
    pub serve_callbacks: Option<SocketAddr>,
}

pub fn bench(args: BenchArgs) -> ExitCode {
    if let Some(addr) = args.serve_callbacks {
        return match CallbackApp::start(addr) {
            Ok(app) => {
                println!("callback app listening on http://{}", app.addr());
                app.wait();
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("upgate bench: cannot listen on {addr}: {e}");
                ExitCode::from(2)
            }
        };
    }
    let (target, host, https) = match loadgen::parse_target(&args.target) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("upgate bench: {e}");
            return ExitCode::from(2);
        }
    };
    let tls = match https {
        false => None,
        true => match crate::client::trust::Trust::load(args.cacert.as_deref()) {
            // New connections are measured with full handshakes.
            Ok(trust) if args.mode == BenchMode::Connect => Some(trust.without_resumption()),
            Ok(trust) => Some(trust),
            Err(e) => {
                eprintln!("upgate bench: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let spawned = if args.spawn_callback_app {
        match CallbackApp::start("127.0.0.1:0".parse().expect("literal")) {
            Ok(app) => Some(app),
            Err(e) => {
                eprintln!("upgate bench: callback app: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let app_addr = spawned.as_ref().map(|a| a.addr()).or(args.callback_app);
    let mut cfg = BenchConfig::new(target);
    cfg.tls = tls.map(|trust| loadgen::client::Tls {
        trust,
        host: host
            .rsplit_once(':')
            .map_or(host.as_str(), |(h, _)| h)
            .to_string(),
    });
    cfg.host = host;
    cfg.connections = args.connections;
    cfg.stop = match (args.requests, args.duration) {
        (Some(n), _) => Stop::Requests(n),
        (None, Some(s)) => Stop::Duration(Duration::from_secs_f64(s.max(0.0))),
        (None, None) => Stop::Requests(1000),
    };
    cfg.size = args.size;
    cfg.mode = match args.mode {
        BenchMode::Upload => Mode::Upload,
        BenchMode::Form => Mode::Form,
        BenchMode::Tus => Mode::Tus,
        BenchMode::Download => Mode::Download,
        BenchMode::Connect => Mode::Connect,
    };
    cfg.chunk = args.chunk_size.max(1);
    cfg.appid = args.appid;
    if let Some(p) = args.path_prefix {
        cfg.path_prefix = p.trim_matches('/').to_string();
    }
    cfg.callbacks = match (app_addr, args.register) {
        (None, _) => Callbacks::None,
        (Some(a), false) => Callbacks::carried(a),
        (Some(a), true) => match (Callbacks::registered(a), args.pre_valid_for) {
            (Callbacks::Register { post, .. }, Some(secs)) => Callbacks::Register {
                pre: format!("http://{a}/pre/valid/{secs}"),
                post,
            },
            (c, _) => c,
        },
    };
    cfg.expect = !args.no_expect;
    cfg.files = args.files.unwrap_or(args.connections).max(1);
    cfg.setup = !args.no_setup;
    cfg.timeout = Duration::from_secs_f64(args.timeout.max(0.001));
    cfg.watch_pids = args.watch_pid;
    cfg.label = args.label;
    let report = match loadgen::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("upgate bench: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    drop(spawned);
    if report.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
