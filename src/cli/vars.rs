//! `crmsync vars PHONE`: the dynamic variables an agent gets for this number.

use clap::Args;

use super::open::{engine, engine_error, print_json};
use super::{CliResult, GlobalOpts};

#[derive(Debug, Args)]
pub struct VarsArgs {
    /// The phone number (any common notation; normalized to E.164).
    pub phone: String,
}

pub fn run(global: &GlobalOpts, args: VarsArgs) -> CliResult {
    let (engine, _config) = engine(global)?;
    let vars = engine
        .dynamic_variables(&args.phone)
        .map_err(engine_error)?
        .unwrap_or_default();
    if global.json {
        return print_json(&vars);
    }
    if vars.is_empty() {
        // Like Retell: no contact, no variables. Say so on stderr; stdout stays empty.
        eprintln!("no contact with this number: no variables");
    }
    for (name, value) in vars {
        println!("{name}={value}");
    }
    Ok(())
}
