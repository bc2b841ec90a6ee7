//! The tools' subcommands of `upgate`, one file each; the binary flattens [`Command`] after the
//! node's own (`serve`, `config`).

use std::process::ExitCode;

use clap::Subcommand;

pub mod bench;
pub mod demo_app;
pub mod files;
pub mod outbox;
pub mod register;
pub mod sign_upload;
pub mod sign_url;
pub mod upload;

/// `upgate <command>`, for the tools.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Upload a file to a node (the reference client).
    Upload(upload::UploadArgs),
    /// Register an application's callbacks with a node.
    Register(register::RegisterArgs),
    /// Run the reference application server.
    DemoApp(demo_app::DemoAppArgs),
    /// Load generator (uploads/downloads against a node or a peer) and its fast callback app.
    Bench(bench::BenchArgs),
    /// Print a signed upload token that lets a browser upload straight to the node.
    SignUpload(sign_upload::SignUploadArgs),
    /// List, retry or drop an app's undelivered post-upload notifications on a node.
    Outbox(outbox::OutboxArgs),
    /// Print a signed download URL for an app registered with downloads = "signed".
    SignUrl(sign_url::SignUrlArgs),
    /// List or delete an app's files on a node.
    Files(files::FilesArgs),
}

/// Runs a parsed command.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Upload(args) => upload::upload(args),
        Command::Register(args) => register::register(args),
        Command::DemoApp(args) => demo_app::demo_app(args),
        Command::Bench(args) => bench::bench(args),
        Command::SignUpload(args) => sign_upload::sign_upload(args),
        Command::Outbox(args) => outbox::outbox(args),
        Command::SignUrl(args) => sign_url::sign_url(args),
        Command::Files(args) => files::files(args),
    }
}
