//! `upgate`: parses the command line and hands it to the node's `upgate::cli` (`serve`,
//! `config`) or to the tools' `upgate_tools::cli` (`upload`, `register`, `demo-app`, `bench`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "upgate",
    version,
    about = "HTTP/1.1 upload edge node on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand: the node's first, then the tools'.
#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Node(upgate::cli::Command),
    #[command(flatten)]
    Tools(upgate_tools::cli::Command),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Node(command) => upgate::cli::run(command),
        Command::Tools(command) => upgate_tools::cli::run(command),
    }
}
