//! `crmsync store check` and `crmsync store backup FILE`.
//!
//! `check` opens the store, walks every table and decodes every row: exit 0 with the rows per
//! table, or exit 3 naming the damage. `backup` writes a consistent copy; when a running daemon
//! holds the store (redb allows one process), the copy is made by the daemon
//! (`GET /v1/store/backup`, bearer token) and streamed here. Either way the copy is checked
//! before it takes its name.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::open::print_json;
use super::{CliError, CliResult, GlobalOpts};
use crate::config::LoadedConfig;
use crate::store::{Store, StoreError};

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Open the store, walk every table and decode every row; exit 3 when it is damaged.
    Check,
    /// Write a consistent copy of the store to FILE (through the daemon when it holds the store).
    Backup(BackupArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (must not exist).
    pub file: PathBuf,
    /// The running daemon's URL [default: http:// and the config's `server.listen`].
    #[arg(long, value_name = "URL")]
    pub daemon: Option<String>,
}

pub fn run(global: &GlobalOpts, args: StoreArgs) -> CliResult {
    let config = global
        .load_config()
        .map_err(|err| CliError::input(err.to_string()))?;
    let store_path = global.store_path(&config);
    match args.command {
        StoreCommand::Check => check(global, &store_path),
        StoreCommand::Backup(args) => backup(global, &config, &store_path, args),
    }
}

fn check(global: &GlobalOpts, path: &Path) -> CliResult {
    let report = Store::check_file(path)?;
    if global.json {
        print_json(&report)?;
    } else {
        match report.format_version {
            Some(version) => println!("store {}: format version {version}", path.display()),
            None => println!("store {}: no format version recorded", path.display()),
        }
        for (table, rows) in &report.tables {
            println!("  {table:<24} {rows:>10} rows");
        }
        for problem in &report.problems {
            println!("  DAMAGED: {problem}");
        }
    }
    if report.problems.is_empty() {
        return Ok(());
    }
    Err(StoreError::Damaged {
        path: path.to_path_buf(),
        detail: format!("{} problem(s) found", report.problems.len()),
    }
    .into())
}

fn backup(global: &GlobalOpts, config: &LoadedConfig, store: &Path, args: BackupArgs) -> CliResult {
    if args.file.exists() {
        return Err(CliError::input(format!(
            "{} exists already; choose another name or remove it first",
            args.file.display()
        )));
    }
    let tables = match Store::open_existing(store) {
        Ok(store) => store.backup_to(&args.file)?.tables,
        Err(StoreError::Locked { .. }) => {
            let url = daemon_url(config, args.daemon.as_deref())?;
            from_daemon(config, &url, &args.file)?
        }
        Err(err) => return Err(err.into()),
    };
    if global.json {
        return print_json(&serde_json::json!({"file": args.file, "tables": tables}));
    }
    let rows: u64 = tables.iter().map(|(_, rows)| rows).sum();
    println!(
        "backed up {} to {} ({rows} rows in {} tables)",
        store.display(),
        args.file.display(),
        tables.len()
    );
    Ok(())
}

/// `--daemon`, else the config's listen address (a wildcard address is reached on loopback).
fn daemon_url(config: &LoadedConfig, flag: Option<&str>) -> Result<String, CliError> {
    if let Some(url) = flag {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let mut listen = config.config.server.listen;
    if listen.port() == 0 {
        return Err(CliError::input(
            "a running daemon holds the store, and the config's server.listen has port 0: pass \
             --daemon URL (the URL it printed when it started)",
        ));
    }
    if listen.ip().is_unspecified() {
        listen.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Ok(format!("http://{listen}"))
}

/// Streams the daemon's backup into a temporary file beside `dest`, checks it, then renames it.
fn from_daemon(
    config: &LoadedConfig,
    url: &str,
    dest: &Path,
) -> Result<Vec<(String, u64)>, CliError> {
    let token = config
        .config
        .server
        .api_token_env
        .resolve("server.api_token_env")
        .map_err(|err| CliError::input(format!("config: {err}")))?;
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let cannot_write = |err: std::io::Error| {
        CliError::runtime(format!("cannot write the backup {}: {err}", dest.display()))
    };
    let mut partial = tempfile::Builder::new()
        .prefix(".crmsync-backup-")
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(cannot_write)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::runtime(format!("cannot start the async runtime: {err}")))?;
    let endpoint = format!("{url}/v1/store/backup");
    runtime.block_on(async {
        let unreachable =
            |err: reqwest::Error| CliError::runtime(format!("the daemon at {url}: {err}"));
        let mut response = reqwest::Client::new()
            .get(&endpoint)
            .bearer_auth(&token)
            .send()
            .await
            .map_err(unreachable)?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(CliError::runtime(format!(
                "the daemon at {url} refused the backup ({status}): {body}"
            )));
        }
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            partial.write_all(&chunk).map_err(cannot_write)?;
        }
        Ok(())
    })?;
    partial.as_file().sync_all().map_err(cannot_write)?;
    let report = Store::check_file(partial.path()).map_err(|err| {
        CliError::runtime(format!("the backup the daemon sent does not check: {err}"))
    })?;
    if !report.problems.is_empty() {
        return Err(CliError::runtime(format!(
            "the backup the daemon sent does not check: {}",
            report.problems.join("; ")
        )));
    }
    partial
        .persist_noclobber(dest)
        .map_err(|err| cannot_write(err.error))?;
    Ok(report.tables)
}
