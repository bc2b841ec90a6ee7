//! `upgate outbox list|retry|drop`: an app's undelivered post-upload notifications on a node,
//! for people (a table) and scripts (`list --json` prints the node's answer as it came).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};

use crate::client::{Manage, Notification};

/// `upgate outbox <list|retry|drop> --server URL --appid ID --token T …`
#[derive(Args, Debug)]
#[command(after_help = super::upload::EXIT_CODES_HELP)]
pub struct OutboxArgs {
    #[command(subcommand)]
    pub action: Action,
}

/// Where and as whom (every action; `upgate files` takes the same).
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// The node: http://HOST:PORT or https://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// For an https:// node: a PEM file of the CA(s) to trust, instead of the system's store.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// The application's id.
    #[arg(long)]
    pub appid: String,
    /// The app's whsec_ secret or the node's admin token.
    #[arg(long, env = "UPGATE_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Subcommand, Debug)]
pub enum Action {
    /// The app's pending and dead notifications: event id, upload id, state, attempts, last
    /// error, next attempt.
    List {
        #[command(flatten)]
        target: Target,
        /// Print the node's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Attempt a notification now (a dead one becomes pending again).
    Retry {
        #[command(flatten)]
        target: Target,
        event_id: String,
    },
    /// Drop a notification for good (it is never sent).
    Drop {
        #[command(flatten)]
        target: Target,
        event_id: String,
    },
}

fn manage(t: &Target) -> Manage<'_> {
    Manage {
        server: &t.server,
        cacert: t.cacert.as_deref(),
        appid: &t.appid,
        token: &t.token,
        timeout: Duration::from_secs(30),
    }
}

pub fn outbox(args: OutboxArgs) -> ExitCode {
    match &args.action {
        Action::List { target, json } => match manage(target).list() {
            Ok(listing) if *json => {
                println!("{}", listing.body.trim_end());
                ExitCode::SUCCESS
            }
            Ok(listing) => {
                print!("{}", table(&listing.pending, &listing.dead, now()));
                ExitCode::SUCCESS
            }
            Err(e) => super::upload::report(&e, "outbox list"),
        },
        Action::Retry { target, event_id } => match manage(target).retry(event_id) {
            Ok(()) => {
                eprintln!("{event_id}: attempting now");
                ExitCode::SUCCESS
            }
            Err(e) => super::upload::report(&e, "outbox retry"),
        },
        Action::Drop { target, event_id } => match manage(target).drop(event_id) {
            Ok(()) => {
                eprintln!("{event_id}: dropped");
                ExitCode::SUCCESS
            }
            Err(e) => super::upload::report(&e, "outbox drop"),
        },
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The listing as aligned columns, pending first; a line saying so when there is nothing.
fn table(pending: &[Notification], dead: &[Notification], now: u64) -> String {
    if pending.is_empty() && dead.is_empty() {
        return "no undelivered notifications\n".into();
    }
    let rows: Vec<[String; 6]> = pending
        .iter()
        .map(|n| (n, "pending"))
        .chain(dead.iter().map(|n| (n, "dead")))
        .map(|(n, state)| {
            [
                n.event_id.clone(),
                n.upload_id.clone().unwrap_or_else(|| "-".into()),
                state.into(),
                n.attempts.to_string(),
                n.last_error.clone().unwrap_or_else(|| "-".into()),
                match n.next_attempt {
                    None => "- (retry to resend)".into(),
                    Some(at) if at <= now => "now".into(),
                    Some(at) => format!("in {}s", at - now),
                },
            ]
        })
        .collect();
    let head = [
        "EVENT ID",
        "UPLOAD ID",
        "STATE",
        "ATTEMPTS",
        "LAST ERROR",
        "NEXT ATTEMPT",
    ];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&head);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: &str, next: Option<u64>, error: Option<&str>) -> Notification {
        Notification {
            event_id: id.into(),
            upload_id: Some(format!("u_{id}")),
            url: None,
            attempts: 3,
            last_error: error.map(str::to_owned),
            next_attempt: next,
            created: 1,
        }
    }

    #[test]
    fn the_table_names_state_attempts_error_and_when() {
        let t = table(
            &[n("evt_a", Some(110), Some("connection failed"))],
            &[n("evt_b", None, Some("the app answered 500"))],
            100,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("EVENT ID"), "{t}");
        assert!(
            lines[1].contains("evt_a")
                && lines[1].contains("pending")
                && lines[1].ends_with("in 10s"),
            "{t}"
        );
        assert!(
            lines[2].contains("dead") && lines[2].contains("the app answered 500"),
            "{t}"
        );
        assert_eq!(table(&[], &[], 0), "no undelivered notifications\n");
    }
}
