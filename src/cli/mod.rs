//! Command-line entry points, kept out of `main.rs` so they can be tested. One file per
//! subcommand.

use std::process::ExitCode;

use clap::Subcommand;

pub mod serve;

pub use serve::ServeArgs;

/// `upgate <command>`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the upload node.
    Serve(serve::ServeArgs),
}

/// Runs a parsed command.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve(args) => serve::serve(args),
    }
}
