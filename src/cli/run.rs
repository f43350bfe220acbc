//! `crmsync run`: the daemon. Loads and validates the config, compiles the rules (refusing to
//! start on errors, with the diagnostics printed), opens the store, reads the secrets from the
//! environment variables the config names, then serves until SIGINT or SIGTERM.
//!
//! Once listening it prints one line on stdout, `crmsync listening on http://ADDR`, so a
//! supervisor (or a test) started with `listen: 127.0.0.1:0` can find the port.

use std::sync::Arc;

use clap::Args;

use super::{open, CliError, CliResult, GlobalOpts};
use crate::config::LoadedConfig;
use crate::daemon::{self, DaemonOptions};
use crate::engine::Engine;
use crate::value::phone::PhoneNormalizer;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Listen on this address instead of the config's `server.listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

pub fn run(global: &GlobalOpts, args: RunArgs) -> CliResult {
    init_logging();
    // Everything that can be checked without the store is checked first, so a bad start
    // leaves no store file behind.
    let loaded = global
        .load_config()
        .map_err(|err| CliError::input(err.to_string()))?;
    secrets(&loaded)?;
    let (engine, config) = open::engine(global)?;
    let options = options(engine, &config, args.listen)?;
    let shutdown_timeout = config.config.server.shutdown_timeout;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::runtime(format!("cannot start the async runtime: {err}")))?;
    runtime.block_on(async move {
        let running = daemon::start_with_shutdown(options, shutdown_signal())
            .await
            .map_err(|err| CliError::runtime(err.to_string()))?;
        println!("crmsync listening on {}", running.base_url());
        let stopped = running
            .wait()
            .await
            .map_err(|err| CliError::runtime(err.to_string()))?;
        if stopped.clean() {
            eprintln!("crmsync stopped cleanly");
        } else {
            // Still a normal stop (exit 0): nothing cut short was acknowledged, and the outbox
            // and sync cursor resume at the next start.
            eprintln!(
                "crmsync stopped at the shutdown timeout ({}): {} connection(s) closed unanswered{}",
                humantime_serde::re::humantime::format_duration(shutdown_timeout),
                stopped.connections_cut,
                if stopped.background_cut {
                    ", background sync/dispatch stopped"
                } else {
                    ""
                }
            );
        }
        Ok(())
    })
}

/// Everything the daemon needs, from the config and the environment.
pub fn options(
    engine: Engine,
    loaded: &LoadedConfig,
    listen: Option<std::net::SocketAddr>,
) -> Result<DaemonOptions, CliError> {
    let config = &loaded.config;
    let (api_token, retell_api_key) = secrets(loaded)?;
    let phone = PhoneNormalizer::new(&config.default_region)
        .map_err(|err| CliError::input(format!("config: default_region: {err}")))?;
    let merger = crate::merge::merger_for(config.llm.as_ref());
    let engine = Arc::new(engine);
    let backend = daemon::backend::from_config(&engine, config).map_err(CliError::input)?;
    Ok(DaemonOptions {
        listen: listen.unwrap_or(config.server.listen),
        api_token,
        retell_api_key,
        body_limit: config.server.body_limit,
        engine,
        merger,
        backend,
        phone,
        // Slow LLM merges must not hold up everyone's events in a shared transaction.
        group_commit: config.llm.is_none(),
        sync_interval: config.sync_interval,
        dispatch_interval: config.dispatch_interval,
        chat_number_keys: config.retell.chat_number_keys.clone(),
        limits: crate::daemon::serve::Limits {
            header_read_timeout: config.server.header_read_timeout,
            body_read_timeout: config.server.body_read_timeout,
            max_connections: config.server.max_connections,
            shutdown_timeout: config.server.shutdown_timeout,
        },
    })
}

/// The API bearer token and the Retell API key, from the environment variables the config
/// names. An unset variable is an input error naming the key and the variable.
fn secrets(loaded: &LoadedConfig) -> Result<(String, String), CliError> {
    let server = &loaded.config.server;
    let input = |err: crate::config::ConfigError| CliError::input(format!("config: {err}"));
    let api_token = server
        .api_token_env
        .resolve("server.api_token_env")
        .map_err(input)?;
    let retell_api_key = server
        .retell_api_key_env
        .resolve("server.retell_api_key_env")
        .map_err(input)?;
    Ok((api_token, retell_api_key))
}

/// [`super::signals::shutdown_signal`], then says so on stderr.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    let signal = super::signals::shutdown_signal();
    async move {
        signal.await;
        eprintln!("crmsync: shutting down (finishing in-flight requests)");
    }
}

/// Logs to stderr; `CRMSYNC_LOG` (e.g. `debug`, `crmsync=trace`) overrides the `info` default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CRMSYNC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (tests running several commands in one process) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
