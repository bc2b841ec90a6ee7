//! `upgate`: parses the command line and hands it to `upgate::cli`.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "upgate",
    version,
    about = "HTTP/1.1 upload edge node on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    command: upgate::cli::Command,
}

fn main() -> ExitCode {
    upgate::cli::run(Cli::parse().command)
}
