//! `upgate upload FILE URL`: the reference client. The node's JSON answer goes to stdout
//! (success or error), a one-line explanation of a failure to stderr, and the exit code says
//! what happened (see `docs/client.md`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::client::{
    self, Bar, ClientError, Progress, Quiet, ResumableOptions, RetryLines, UploadOptions,
};
use crate::demo::parse_size;

/// The exit codes, shown by `upgate upload --help` and `upgate register --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  stored (2xx; the completion JSON is on stdout)
  1  unexpected answer (a 1xx or 3xx final status)
  2  usage: bad arguments or URL
  3  vetoed: 403 (the application said no, or the node refused the callback URL)
  4  rejected by the node: any other 4xx (unknown appid, bad path, too large, exists...)
  5  node error: 5xx (callback failed or timed out, queue full, storage failure)
  6  no response: nothing within --timeout-100 after the head (the body was NOT sent),
     or no final response within --response-timeout after the body
  7  network failure: node unreachable, TLS handshake failed (certificate not trusted
     or not for this host, not a TLS port), connection reset/closed/stalled, not HTTP
  8  local file error: cannot open or read FILE, or it is not a regular file
On a 4xx/5xx the node's JSON error is printed on stdout as well.";

/// `upgate upload FILE URL [--appid ID] [--pre URL] [--post URL] [--no-expect] [--timeout-100 MS]
/// [--cacert FILE] [--resumable [--chunk-size SIZE] [--retries N]]`
#[derive(Args, Debug)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct UploadArgs {
    /// The file to upload (a regular file; sent with sendfile(2) over http://).
    pub file: PathBuf,
    /// Where to store it: http://NODE/APPID/PATH/NAME (or https://).
    pub url: String,
    /// For an https:// URL: a PEM file of the CA(s) to trust, instead of the system's store.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// The appid header (default: the URL's first path segment).
    #[arg(long)]
    pub appid: Option<String>,
    /// A callback_url_pre header: the pre-upload callback for this upload.
    #[arg(long, value_name = "URL")]
    pub pre: Option<String>,
    /// A callback_url_post header: the post-upload callback for this upload.
    #[arg(long, value_name = "URL")]
    pub post: Option<String>,
    /// Send the body right after the head, without Expect: 100-continue.
    #[arg(long)]
    pub no_expect: bool,
    /// Longest wait for 100 Continue (or any answer) after the head, in milliseconds.
    #[arg(long = "timeout-100", value_name = "MS", default_value_t = 10_000)]
    pub timeout_100: u64,
    /// Longest wait for the final answer after the body, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 120_000)]
    pub response_timeout: u64,
    /// A Content-Type header (default: none; the node infers it from the extension).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Use PUT instead of POST.
    #[arg(long)]
    pub put: bool,
    /// No progress bar (it is shown only when stderr is a terminal anyway), no retry lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Upload through tus 1.0 (`/upload/tus/{appid}/`, a registered app): in appends of
    /// --chunk-size, resumed after a dropped connection, a timeout or a 5xx.
    #[arg(long, conflicts_with_all = ["pre", "post", "put"])]
    pub resumable: bool,
    /// Bytes per append with --resumable (suffixes K, M, G: powers of 1024).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "32M", requires = "resumable")]
    pub chunk_size: u64,
    /// Failed requests in a row before a --resumable upload gives up (progress resets the count).
    #[arg(long, value_name = "N", default_value_t = 10, requires = "resumable")]
    pub retries: u32,
}

impl UploadArgs {
    pub fn options(&self) -> UploadOptions {
        let mut o = UploadOptions::new(self.url.clone());
        o.cacert = self.cacert.clone();
        o.appid = self.appid.clone();
        o.callback_pre = self.pre.clone();
        o.callback_post = self.post.clone();
        o.content_type = self.content_type.clone();
        o.put = self.put;
        o.expect_continue = !self.no_expect;
        o.timeout_100 = Duration::from_millis(self.timeout_100);
        o.response_timeout = Duration::from_millis(self.response_timeout);
        o
    }
}

/// Runs one upload and maps its outcome to the exit code.
pub fn upload(args: UploadArgs) -> ExitCode {
    let opts = args.options();
    let mut bar = if args.quiet { None } else { Bar::for_stderr() };
    let progress: &mut dyn Progress = match bar.as_mut() {
        Some(bar) => bar,
        None if args.quiet => &mut Quiet,
        None => &mut RetryLines,
    };
    let result = if args.resumable {
        let resumable = ResumableOptions {
            chunk_size: args.chunk_size,
            retries: args.retries,
            ..ResumableOptions::default()
        };
        client::upload_resumable(&args.file, &opts, &resumable, progress)
    } else {
        client::upload(&args.file, &opts, progress)
    };
    match result {
        Ok(done) => {
            println!("{}", done.body.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => report(&e, "upload"),
    }
}

/// Prints a failure (the server's JSON on stdout when there is one) and returns its exit code.
pub fn report(e: &ClientError, what: &str) -> ExitCode {
    if let Some(r) = e.refusal() {
        if !r.body.trim().is_empty() {
            println!("{}", r.body.trim_end());
        }
    }
    eprintln!("upgate {what}: {e}");
    ExitCode::from(e.exit_code())
}
