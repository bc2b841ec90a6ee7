//! The node's command-line entry points, kept out of `main.rs` so they can be tested. One file
//! per subcommand. The tools' subcommands (`upload`, `register`, `demo-app`, `bench`) live in
//! `upgate_tools::cli`; `main.rs` puts both under one `upgate`.

use std::process::ExitCode;

use clap::Subcommand;

pub mod config_cmd;
pub mod serve;

pub use serve::ServeArgs;

/// `upgate <command>`, for the node.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the upload node.
    Serve(serve::ServeArgs),
    /// Check or print the configuration.
    Config(config_cmd::ConfigArgs),
}

/// Runs a parsed command.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve(args) => serve::serve(args),
        Command::Config(args) => config_cmd::run(args),
    }
}
