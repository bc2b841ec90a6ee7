//! `upgate config check FILE` (validate a file: exit 0, or 2 with the error) and
//! `upgate config print [--config FILE] [serve flags]` (the effective configuration as TOML,
//! each value annotated with where it came from, secrets masked).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::source::{Loaded, Origin};
use crate::config::Config;

use super::serve::ServeArgs;

/// What a masked secret prints as.
pub const MASK: &str = "********";

/// `upgate config …`.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate a configuration file (exit 0 when valid, 2 with every problem otherwise).
    Check {
        /// The TOML file.
        file: PathBuf,
    },
    /// Print the effective configuration (defaults < file < UPGATE_* environment < flags) as
    /// TOML, secrets masked. Takes the same flags as `upgate serve`.
    Print(ServeArgs),
}

pub fn run(args: ConfigArgs) -> ExitCode {
    match args.command {
        ConfigCommand::Check { file } => match crate::config::source::check_file(&file) {
            Ok(()) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(problems) => {
                for p in &problems {
                    eprintln!("upgate: {p}");
                }
                if problems.len() > 1 {
                    eprintln!("upgate: {} problems in {}", problems.len(), file.display());
                }
                ExitCode::from(2)
            }
        },
        ConfigCommand::Print(serve) => match serve.resolve(std::env::vars()) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    eprintln!("upgate: warning: {warning}");
                }
                print!("{}", render(&loaded));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("upgate: configuration error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// The configuration as TOML, with secrets masked and a comment naming each value's origin
/// when it is not the default. The output is itself a valid configuration file.
pub fn render(loaded: &Loaded) -> String {
    let mut shown = loaded.config.clone();
    if shown.admin_token.is_some() {
        shown.admin_token = Some(MASK.to_owned());
    }
    let text = toml::to_string(&shown).unwrap_or_default();
    let mut out = String::from(
        "# upgate: effective configuration (defaults < file < UPGATE_* environment < flags)\n",
    );
    let mut present = Vec::new();
    for line in text.lines() {
        out.push_str(line);
        if let Some((key, _)) = line.split_once(" = ") {
            present.push(key.to_owned());
            match loaded.origin(key) {
                Origin::Default => {}
                origin => out.push_str(&format!("  # {origin}")),
            }
            if key == "threads" && shown.threads == 0 {
                out.push_str(&format!(
                    "  # 0: one per core ({} here)",
                    shown.thread_count()
                ));
            }
        }
        out.push('\n');
    }
    for key in Config::keys() {
        if !present.contains(&key) {
            let note = match (key.as_str(), loaded.origin(&key)) {
                ("public_url", _) => {
                    format!("unset: download URLs use {}", loaded.config.public_base())
                }
                (_, Origin::Default) => "unset".to_owned(),
                (_, origin) => format!("unset by {origin}"),
            };
            out.push_str(&format!("# {key}: {note}\n"));
        }
    }
    out
}
