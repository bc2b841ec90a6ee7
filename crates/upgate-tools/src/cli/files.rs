//! `upgate files list|delete`: an app's files on a node, through the management API
//! (`GET /upload/files/{appid}`, `DELETE /{appid}/{path}`), with the app's secret or the admin
//! token. A listing follows `next` across pages, so people and scripts see every file.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::client;

/// `upgate files <list|delete> --server URL --appid ID --token T …`
#[derive(Args, Debug)]
pub struct FilesArgs {
    #[command(subcommand)]
    pub command: FilesCommand,
}

/// Where and as whom (the same flags as `upgate outbox`), and how to print.
#[derive(Args, Debug, Clone)]
pub struct FilesTarget {
    #[command(flatten)]
    pub app: super::outbox::Target,
    /// Print JSON for scripts: one file per line (list), the answer (delete).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum FilesCommand {
    /// List the app's files, sorted by path: path, size, content type, modified.
    List {
        #[command(flatten)]
        target: FilesTarget,
        /// Only paths starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Files asked per request (1-1000); every page is fetched.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Delete one file (its path relative to the appid, as listed); the app is notified.
    Delete {
        #[command(flatten)]
        target: FilesTarget,
        /// The file's path, e.g. docs/a.pdf.
        path: String,
    },
}

/// Why a call failed: exit 1 for a refusal (its JSON error printed), 3 for no answer.
enum Failure {
    Refused(u16, String),
    Transport(String),
}

/// The node's URL and an agent for it (trusting `--cacert` for https://).
fn base(t: &FilesTarget) -> Result<(url::Url, ureq::Agent), String> {
    let url = client::node_url(&t.app.server, "--server").map_err(|e| e.to_string())?;
    let agent = client::agent(&url, Duration::from_secs(30), t.app.cacert.as_deref())
        .map_err(|e| e.to_string())?;
    Ok((url, agent))
}

fn call(req: ureq::Request, token: &str) -> Result<(u16, String), Failure> {
    match req.set("Authorization", &format!("Bearer {token}")).call() {
        Ok(resp) => Ok((resp.status(), resp.into_string().unwrap_or_default())),
        Err(ureq::Error::Status(status, resp)) => Err(Failure::Refused(
            status,
            resp.into_string().unwrap_or_default(),
        )),
        Err(ureq::Error::Transport(t)) => Err(Failure::Transport(t.to_string())),
    }
}

fn failed(what: &str, f: Failure) -> ExitCode {
    match f {
        Failure::Refused(status, body) => {
            let code = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            eprintln!(
                "upgate files {what}: refused: {status} {code}: {}",
                body.trim()
            );
            ExitCode::from(1)
        }
        Failure::Transport(e) => {
            eprintln!("upgate files {what}: {e}");
            ExitCode::from(3)
        }
    }
}

pub fn files(args: FilesArgs) -> ExitCode {
    match args.command {
        FilesCommand::List {
            target,
            prefix,
            limit,
        } => list(&target, &prefix, limit),
        FilesCommand::Delete { target, path } => delete(&target, &path),
    }
}

fn list(t: &FilesTarget, prefix: &str, limit: u32) -> ExitCode {
    let (mut url, agent) = match base(t) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("upgate files list: {e}");
            return ExitCode::from(2);
        }
    };
    url.set_path(&format!("/upload/files/{}", t.app.appid));
    let mut after: Option<String> = None;
    let mut rows = Vec::new();
    loop {
        let mut page = url.clone();
        {
            let mut q = page.query_pairs_mut();
            q.clear();
            q.append_pair("limit", &limit.to_string());
            if !prefix.is_empty() {
                q.append_pair("prefix", prefix);
            }
            if let Some(a) = &after {
                q.append_pair("after", a);
            }
        }
        let body = match call(agent.get(page.as_str()), &t.app.token) {
            Ok((_, body)) => body,
            Err(f) => return failed("list", f),
        };
        let Ok(v) = serde_json::from_str::<Value>(&body) else {
            eprintln!("upgate files list: the answer is not JSON: {body}");
            return ExitCode::from(3);
        };
        for f in v["files"].as_array().into_iter().flatten() {
            if t.json {
                println!("{f}");
            } else {
                rows.push(f.clone());
            }
        }
        match v["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    if !t.json {
        print_table(&rows);
    }
    ExitCode::SUCCESS
}

/// path, size, content type, modified; columns as wide as their widest value.
fn print_table(rows: &[Value]) {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|f| {
            [
                f["path"].as_str().unwrap_or("").to_owned(),
                f["size"].to_string(),
                f["content_type"].as_str().unwrap_or("").to_owned(),
                f["modified"].as_str().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    let head = ["PATH", "SIZE", "CONTENT TYPE", "MODIFIED"].map(str::to_owned);
    let mut width = head.clone().map(|h| h.len());
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for row in std::iter::once(&head).chain(&cells) {
        println!(
            "{:<w0$}  {:>w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        );
    }
    eprintln!("{} file(s)", cells.len());
}

fn delete(t: &FilesTarget, path: &str) -> ExitCode {
    let (mut url, agent) = match base(t) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("upgate files delete: {e}");
            return ExitCode::from(2);
        }
    };
    let rel = path.trim_start_matches('/');
    let encoded: Vec<String> = rel
        .split('/')
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect();
    url.set_path(&format!("/{}/{}", t.app.appid, encoded.join("/")));
    url.set_query(None);
    match call(agent.delete(url.as_str()), &t.app.token) {
        Ok(_) => {
            if t.json {
                println!(
                    "{}",
                    serde_json::json!({"appid": t.app.appid, "path": rel, "deleted": true})
                );
            } else {
                eprintln!("deleted {}/{rel}", t.app.appid);
            }
            ExitCode::SUCCESS
        }
        Err(f) => failed("delete", f),
    }
}

/// What a path segment percent-encodes: everything but unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
