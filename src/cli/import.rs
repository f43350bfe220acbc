//! `crmsync import --connection NAME FILE.json`: apply a connection's inbound rules to a file of
//! CRM records (streamed in pages; the whole file in one store transaction).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;

use super::open::{engine, engine_error, print_json};
use super::records::{self, RecordsError, StreamError, PAGE_SIZE};
use super::{CliError, CliResult, GlobalOpts};
use crate::engine::{FreshShare, ImportReport};

/// Prepared pages that may wait for the committing thread.
const QUEUE: usize = 2;

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
    // Records are read with only the keys the import can use (as a sync queries only those).
    let keys = engine.record_keys(&args.connection).map_err(engine_error)?;
    // The whole file is ONE store transaction, committed durably at the end: bad input found
    // anywhere (malformed JSON at record 900,000) or a crash part-way leaves the store as it
    // was, and re-running the import after fixing the file gives a clean result. Inside the
    // transaction every page is applied whole, in file order.
    // One thread parses and prepares pages while this one applies them (2 cores: parsing
    // overlaps the store); how much rule evaluation each does adapts as the import runs
    // (`FreshShare`). The bounded channel keeps at most a few pages in memory.
    let report = engine.import_batch(true, |batch| {
        // Prepared pages not yet taken by this thread (see `FreshShare`).
        let queued = AtomicUsize::new(0);
        let queued = &queued;
        std::thread::scope(|scope| {
            let (sender, pages) = std::sync::mpsc::sync_channel(QUEUE);
            // Applied pages go back to the reader to be freed there (see
            // `PageBatch::apply`); at most the pages in flight wait here.
            let (spent_sender, spent) = std::sync::mpsc::channel::<Vec<serde_json::Value>>();
            let engine_ref = &engine;
            let connection = args.connection.as_str();
            let file = args.file.as_path();
            let reader = scope.spawn(move || {
                // Parsing and the pure half of the import (ids, phone numbers) run here; a
                // send fails only when the importer stopped (its error is reported instead).
                let mut share = FreshShare::balanced();
                records::stream(file, PAGE_SIZE, Some(&keys), |page| {
                    spent.try_iter().for_each(drop);
                    let prepared = {
                        let fresh = share.of(page.len());
                        engine_ref.prepare_page(connection, page, fresh)
                    };
                    share.observe(queued.fetch_add(1, Ordering::Relaxed), QUEUE);
                    sender.send(prepared).map_err(|_| ())
                })
            });
            let mut report = ImportReport::default();
            let mut failure = None;
            for prepared in pages {
                queued.fetch_sub(1, Ordering::Relaxed);
                match prepared.and_then(|page| batch.apply(page, None)) {
                    Ok((page_report, records)) => {
                        report.absorb(page_report);
                        // The reader may be done (then this page is freed here).
                        let _ = spent_sender.send(records);
                    }
                    Err(err) => {
                        failure = Some(engine_error(err));
                        break;
                    }
                }
            }
            // The receiver is gone after the loop, so a blocked reader stops at its next page.
            let read = reader
                .join()
                .map_err(|_| CliError::runtime("the records reader panicked"))?;
            if let Some(err) = failure {
                return Err(err);
            }
            match read {
                Ok(_) | Err(StreamError::Sink(())) => Ok(report),
                Err(StreamError::Records(err)) => Err(records_error(err)),
            }
        })
    })?;
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
        let _ = writeln!(
            out,
            "archived {} (unlinked {})",
            report.archived, report.unlinked
        );
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
    list(
        &mut out,
        "conflicts (a CRM edit of a field with a pending write)",
        &report.conflicts,
        crate::connector::report::describe_conflict,
    );
    list(
        &mut out,
        "first links (local values kept over empty CRM values, and queued for the CRM)",
        &report.first_links,
        |f| {
            format!(
                "{} ({}): kept [{}], queued [{}]",
                f.record_id,
                f.phone,
                f.kept.join(", "),
                f.pushed.join(", ")
            )
        },
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
