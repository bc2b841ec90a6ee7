//! Command-line entry points, kept out of `main.rs` so they can be tested. One file per
//! subcommand.

use std::process::ExitCode;

use clap::Subcommand;

pub mod bench;
pub mod config_cmd;
pub mod demo_app;
pub mod register;
pub mod serve;
pub mod upload;

pub use serve::ServeArgs;

/// `upgate <command>`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the upload node.
    Serve(serve::ServeArgs),
    /// Check or print the configuration.
    Config(config_cmd::ConfigArgs),
    /// Upload a file to a node (the reference client).
    Upload(upload::UploadArgs),
    /// Register an application's callbacks with a node.
    Register(register::RegisterArgs),
    /// Run the reference application server.
    DemoApp(demo_app::DemoAppArgs),
    /// Load generator (uploads/downloads against a node or a peer) and its fast callback app.
    Bench(bench::BenchArgs),
}

/// Runs a parsed command.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve(args) => serve::serve(args),
        Command::Config(args) => config_cmd::run(args),
        Command::Upload(args) => upload::upload(args),
        Command::Register(args) => register::register(args),
        Command::DemoApp(args) => demo_app::demo_app(args),
        Command::Bench(args) => bench::bench(args),
    }
}
