//! The `crmsync` command line: argument parsing and dispatch to one module per subcommand.
//!
//! Exit codes (README "CLI reference"): 0 ok, 1 bad input, 2 usage, 3 runtime failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub mod analyze;
pub mod check;
pub mod conflicts;
pub mod contact;
pub mod demo;
pub mod import;
pub mod open;
pub mod outbox;
pub mod records;
pub mod run;
pub mod sandbox;
mod signals;
pub mod store;
pub mod sync;
pub mod vars;

/// Options every subcommand understands.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Directory holding the `*.rules` files.
    #[arg(long, global = true, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    // Resolved with `GlobalOpts::store_path` (src/config.rs): flag, else config, else default.
    /// The contact store (a redb file) [default: the config's `store`, else ./crmsync.redb]
    #[arg(long, global = true, value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// YAML config; `./crmsync.yaml` is used when present.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "crmsync",
    version,
    about = "Two-way contact sync between an AI agent platform and Salesforce/HubSpot",
    long_about = "crmsync compiles rule files that map CRM fields and post-conversation analysis onto \
contacts, keeps the contacts in an embedded redb store, and pushes changes and call/chat \
activities back to Salesforce or HubSpot.\n\nExit codes: 0 ok, 1 bad input, 2 usage, 3 runtime failure."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile rule files and print diagnostics (exit 1 on errors).
    Check(check::CheckArgs),
    /// Apply a connection's inbound rules to a JSON file of CRM records.
    Import(import::ImportArgs),
    /// Apply one conversation event (Retell call_analyzed/chat_analyzed body, or generic).
    Analyze(analyze::AnalyzeArgs),
    /// Show, list or edit contacts.
    Contact(contact::ContactArgs),
    /// The dynamic variables an agent gets for a phone number.
    Vars(vars::VarsArgs),
    /// Pending outbound writes, activities and dead letters.
    Outbox(outbox::OutboxArgs),
    /// Conflicts between pending writes and CRM edits: both values and times, and the winner.
    Conflicts(conflicts::ConflictsArgs),
    /// One inbound sync of a connection plus a dispatch of the outbox, then exit.
    Sync(sync::SyncArgs),
    /// The daemon: HTTP API and Retell webhooks, scheduled sync, continuous outbox dispatch.
    Run(run::RunArgs),
    /// End to end on sandboxes: full sync, sample conversations, write-back; prints a report.
    Demo(demo::DemoArgs),
    /// Salesforce- and HubSpot-compatible servers on 127.0.0.1 with seeded contacts; prints
    /// their URLs and credentials and runs until interrupted.
    Sandbox(sandbox::SandboxArgs),
    /// The store file: `check` it, or `backup` it (consistently, also while the daemon runs).
    Store(store::StoreArgs),
}

/// A failed command: the exit code to use and what to tell the user.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl From<crate::store::StoreError> for CliError {
    fn from(err: crate::store::StoreError) -> Self {
        CliError::runtime(err.to_string())
    }
}

impl From<crate::engine::EngineError> for CliError {
    fn from(err: crate::engine::EngineError) -> Self {
        open::engine_error(err)
    }
}

impl CliError {
    /// Bad input: exit 1.
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            code: 1,
            message: message.into(),
        }
    }
    /// Runtime failure: exit 3.
    pub fn runtime(message: impl Into<String>) -> Self {
        CliError {
            code: 3,
            message: message.into(),
        }
    }
    /// Errors already printed (diagnostics): exit with `code` and print nothing more.
    pub fn silent(code: u8) -> Self {
        CliError {
            code,
            message: String::new(),
        }
    }
}

pub type CliResult = Result<(), CliError>;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&cli.global, args),
        Command::Import(args) => import::run(&cli.global, args),
        Command::Analyze(args) => analyze::run(&cli.global, args),
        Command::Contact(args) => contact::run(&cli.global, args),
        Command::Vars(args) => vars::run(&cli.global, args),
        Command::Outbox(args) => outbox::run(&cli.global, args),
        Command::Conflicts(args) => conflicts::run(&cli.global, args),
        Command::Sync(args) => sync::run(&cli.global, args),
        Command::Run(args) => run::run(&cli.global, args),
        Command::Demo(args) => demo::run(&cli.global, args),
        Command::Sandbox(args) => sandbox::run(&cli.global, args),
        Command::Store(args) => store::run(&cli.global, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !err.message.is_empty() {
                eprintln!("error: {}", err.message);
            }
            ExitCode::from(err.code)
        }
    }
}
