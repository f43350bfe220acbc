//! `crmsync import --connection NAME FILE.json`: apply a connection's inbound rules to a file of
//! CRM records (streamed in pages; one store transaction per page).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use super::open::{engine, engine_error, print_json};
use super::records::{self, RecordsError, StreamError, PAGE_SIZE};
use super::{CliError, CliResult, GlobalOpts};
use crate::engine::ImportReport;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The connection whose inbound rules apply (a `connection` block of the rule set).
    #[arg(long, value_name = "NAME")]
    pub connection: String,
    /// A JSON array of records as the CRM's API returns them, a Salesforce query result
    /// (`{"records": [...]}`) or a HubSpot response (`{"results": [...]}`).
    pub file: PathBuf,
}

pub fn run(global: &GlobalOpts, args: ImportArgs) -> CliResult {
    let (engine, _config) = engine(global)?;
    engine
        .require_connection(&args.connection)
        .map_err(engine_error)?;
    // Syntax and shape first, so bad input leaves the store unchanged.
    records::validate(&args.file).map_err(records_error)?;
    let mut report = ImportReport::default();
    let result = records::stream(&args.file, PAGE_SIZE, |page| {
        let page_report = engine.import_page(&args.connection, page, None)?;
        report.absorb(page_report);
        Ok(())
    });
    match result {
        Ok(_) => {}
        Err(StreamError::Records(err)) => return Err(records_error(err)),
        Err(StreamError::Sink(err)) => return Err(engine_error(err)),
    }
    if global.json {
        print_json(&report)
    } else {
        print!("{}", human(&args.connection, &report));
        Ok(())
    }
}

fn records_error(err: RecordsError) -> CliError {
    match err {
        RecordsError::Io { .. } => CliError::input(err.to_string()),
        RecordsError::Input { .. } => CliError::input(err.to_string()),
    }
}

/// At most this many lines per list in the human summary (the JSON output has all of them).
const LIST_LIMIT: usize = 20;

/// The human summary.
pub fn human(connection: &str, report: &ImportReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "import {connection}: read {}, created {}, updated {}, unchanged {}, skipped {}, duplicates {}, field errors {}",
        report.read,
        report.created,
        report.updated,
        report.unchanged,
        report.skipped.len(),
        report.duplicates.len(),
        report.field_errors.len(),
    );
    if report.archived > 0 {
        let _ = writeln!(out, "unlinked {} archived records", report.archived);
    }
    list(&mut out, "skipped", &report.skipped, |s| {
        format!("{}: {}", s.record_id, s.reason)
    });
    list(
        &mut out,
        "duplicates (same phone)",
        &report.duplicates,
        |d| {
            format!(
                "{}: {} belongs to the more recently modified {}",
                d.record_id, d.phone, d.kept_record_id
            )
        },
    );
    list(
        &mut out,
        "field errors (the record's other fields applied)",
        &report.field_errors,
        |e| format!("{}: {} = {}: {}", e.record_id, e.field, e.value, e.reason),
    );
    out
}

fn list<T>(out: &mut String, title: &str, items: &[T], line: impl Fn(&T) -> String) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for item in items.iter().take(LIST_LIMIT) {
        let _ = writeln!(out, "  {}", line(item));
    }
    if items.len() > LIST_LIMIT {
        let _ = writeln!(
            out,
            "  ... and {} more (use --json for all)",
            items.len() - LIST_LIMIT
        );
    }
}
