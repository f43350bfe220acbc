//! `crmsync check [PATH...]`: compile rule files and print diagnostics.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, CliResult, GlobalOpts};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Rule files or directories (default: --rules, else ./rules).
    pub paths: Vec<PathBuf>,
}

pub fn run(_global: &GlobalOpts, _args: CheckArgs) -> CliResult {
    Err(CliError::runtime("check is not built yet"))
}
