//! `upgate`: parses the command line and configuration, then runs the node.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use upgate::cli;

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

#[derive(Subcommand)]
enum Command {
    /// Run the upload node.
    Serve(cli::ServeArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => cli::serve(args),
    }
}
