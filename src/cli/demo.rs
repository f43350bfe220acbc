//! `crmsync demo`: both sandboxes in-process, the example rules, a temporary store, the sample
//! conversation events; prints what happened on each side (see `src/demo.rs`).

use std::path::PathBuf;

use clap::Args;

use super::{CliError, CliResult, GlobalOpts};
use crate::demo::{self, DemoError, DemoOptions};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seeded contacts in each sandbox, besides the sample records.
    #[arg(long, default_value_t = 25)]
    pub contacts: u32,
    /// Seed of the sandboxes' generated data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory with `records/` and `events/` samples.
    #[arg(long, value_name = "DIR", default_value = "examples")]
    pub examples: PathBuf,
}

pub fn run(global: &GlobalOpts, args: DemoArgs) -> CliResult {
    // The demo never reads a config file or an existing store: it is self-contained.
    let options = DemoOptions {
        rules: global
            .rules
            .clone()
            .unwrap_or_else(|| PathBuf::from("rules")),
        examples: args.examples,
        contacts: args.contacts,
        seed: args.seed,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::runtime(format!("cannot start the async runtime: {err}")))?;
    let report = runtime
        .block_on(demo::run(&options))
        .map_err(|err| match err {
            DemoError::Rules { .. } | DemoError::Input { .. } => CliError::input(err.to_string()),
            DemoError::Runtime(_) => CliError::runtime(err.to_string()),
        })?;
    if global.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|err| CliError::runtime(format!("cannot encode the report: {err}")))?;
        println!("{text}");
    } else {
        print!("{}", demo::render(&report));
    }
    Ok(())
}
