//! The config file as `crmsync` reads it: `check` follows its `rules:`, and a seeded mutation
//! fuzz of the example config asserts that no mutation panics, and that every refusal names the
//! file and the key (or line) at fault.
//!
//! The fuzz is bounded (`CRMSYNC_CONFIG_FUZZ_CASES`, default 400) so CI runs it on every
//! change; a failure prints its seed, and `CRMSYNC_CONFIG_FUZZ_SEED=<seed>` replays exactly
//! that case.

use std::path::Path;
use std::process::{Command, Output};

use crmsync::config::LoadedConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const RULES: &str = concat!(
    include_str!("../rules/fields.rules"),
    "\n",
    include_str!("../rules/analysis.rules"),
    "\n",
    include_str!("../rules/salesforce.rules"),
    "\n",
    include_str!("../rules/hubspot.rules"),
);

fn crmsync(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crmsync"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// `crmsync --config deploy/crmsync.yaml check` checks the rules that config names (relative
/// to the config file), not `./rules`.
#[test]
fn check_reads_the_rules_the_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("deploy/crm_rules")).unwrap();
    std::fs::write(root.join("deploy/crm_rules/crm.rules"), RULES).unwrap();
    std::fs::write(
        root.join("deploy/crmsync.yaml"),
        "rules: crm_rules\nactive_connection: salesforce\n",
    )
    .unwrap();
    // No ./rules at all: only the config says where the rules are.
    let out = crmsync(root, &["--config", "deploy/crmsync.yaml", "check"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("ok: "), "{stdout}");

    // Valid rules in ./rules, broken ones where the config points: the broken ones are judged.
    std::fs::create_dir(root.join("rules")).unwrap();
    std::fs::write(root.join("rules/crm.rules"), RULES).unwrap();
    std::fs::write(
        root.join("deploy/crm_rules/crm.rules"),
        "field email: strin\n",
    )
    .unwrap();
    let out = crmsync(root, &["--config", "deploy/crmsync.yaml", "check"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("crm.rules"), "{stderr}");

    // `--rules` still wins over the config; explicit paths win over both.
    let out = crmsync(
        root,
        &[
            "--config",
            "deploy/crmsync.yaml",
            "--rules",
            "rules",
            "check",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = crmsync(root, &["--config", "deploy/crmsync.yaml", "check", "rules"]);
    assert!(out.status.success(), "{out:?}");

    // A config that does not load is an error naming it, not a silent fallback to ./rules.
    std::fs::write(root.join("deploy/crmsync.yaml"), "rulez: crm_rules\n").unwrap();
    let out = crmsync(root, &["--config", "deploy/crmsync.yaml", "check"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("crmsync.yaml"), "{stderr}");
    assert!(stderr.contains("rulez"), "{stderr}");
}

/// Values a hand-edited or corrupted config could hold where a valid one was.
const HOSTILE_VALUES: &[&str] = &[
    "",
    "~",
    "0",
    "-1",
    "1e-300",
    "1e308",
    "-1e308",
    ".nan",
    ".inf",
    "99999999999999999999999",
    "[]",
    "{}",
    "[1, [2, [3]]]",
    "{a: {b: {c: 1}}}",
    "\"\"",
    "'unterminated",
    "\"\\u0000\"",
    "&anchor value",
    "*undefined_alias",
    "!!binary aGVsbG8=",
    "!!float 1e-300",
    "0s",
    "1ns",
    "18446744073709551615s",
    "999999999999h",
    "http://",
    "ftp://example.com",
    "http://[::1",
    "/etc/passwd",
    "../../../../tmp/x",
    "xx",
    "ZZ",
    "yes",
    "null",
    "---",
    "- a\n- b",
    "key: value: other",
    "\t",
    "|\n  block",
];

/// Lines a mutation may insert.
const HOSTILE_LINES: &[&str] = &[
    "unknown_key: 1",
    "connections:",
    "  nosuch:",
    "    kind: salesforce",
    "    kind: pipedrive",
    "    rate_limit: {requests_per_second: 1e-300, burst: 0}",
    "    page_size: 0",
    "    page_size: 4294967296",
    "server: {listen: 'not an address'}",
    "llm: {base_url: 'http://x', model: '', timeout_ms: 0}",
    "retell: {chat_number_keys: [1, {}, []]}",
    "<<: *missing",
    "? complex key",
    "%YAML 1.2",
    "...",
    "\u{feff}store: bom.redb",
];

/// One mutated config text (as bytes: a mutation may break UTF-8) and what was done to it.
fn mutate(original: &str, seed: u64) -> (Vec<u8>, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let mut bytes_phase: Vec<(usize, u8)> = Vec::new();
    let mut truncate_at: Option<f64> = None;
    let mut done = Vec::new();
    for _ in 0..rng.gen_range(1..=3) {
        let at = rng.gen_range(0..lines.len().max(1));
        match rng.gen_range(0..8) {
            0 => {
                // Replace the value of a `key: value` line (comments included in the choice:
                // a value may be written into a comment, which must change nothing).
                let candidates: Vec<usize> = (0..lines.len())
                    .filter(|&i| lines[i].contains(": ") || lines[i].trim_end().ends_with(':'))
                    .collect();
                if let Some(&i) = candidates.get(rng.gen_range(0..candidates.len().max(1))) {
                    let value = HOSTILE_VALUES[rng.gen_range(0..HOSTILE_VALUES.len())];
                    let key_end = lines[i].find(':').unwrap_or(0);
                    lines[i] = format!("{}: {value}", &lines[i][..key_end]);
                    done.push(format!("line {}: value -> {value:?}", i + 1));
                }
            }
            1 if !lines.is_empty() => {
                done.push(format!("delete line {}", at + 1));
                lines.remove(at);
            }
            2 if !lines.is_empty() => {
                done.push(format!("duplicate line {}", at + 1));
                let line = lines[at].clone();
                lines.insert(at, line);
            }
            3 if !lines.is_empty() => {
                let other = rng.gen_range(0..lines.len());
                done.push(format!("swap lines {} and {}", at + 1, other + 1));
                lines.swap(at, other);
            }
            4 if !lines.is_empty() => {
                if rng.gen_bool(0.5) {
                    lines[at].insert_str(0, "  ");
                    done.push(format!("indent line {}", at + 1));
                } else {
                    let trimmed = lines[at].trim_start().to_string();
                    done.push(format!("dedent line {}", at + 1));
                    lines[at] = trimmed;
                }
            }
            5 => {
                let line = HOSTILE_LINES[rng.gen_range(0..HOSTILE_LINES.len())];
                done.push(format!("insert {line:?} at line {}", at + 1));
                lines.insert(at.min(lines.len()), line.to_string());
            }
            6 => {
                let fraction = rng.gen_range(0.0..1.0);
                done.push(format!("truncate at {:.0}%", fraction * 100.0));
                truncate_at = Some(fraction);
            }
            _ => {
                let position = rng.gen_range(0..original.len());
                let byte: u8 = rng.gen();
                done.push(format!("byte {position} -> {byte:#04x}"));
                bytes_phase.push((position, byte));
            }
        }
    }
    let mut bytes = lines.join("\n").into_bytes();
    bytes.push(b'\n');
    for (position, byte) in bytes_phase {
        if let Some(b) = bytes.get_mut(position) {
            *b = byte;
        }
    }
    if let Some(fraction) = truncate_at {
        bytes.truncate((bytes.len() as f64 * fraction) as usize);
    }
    (bytes, done)
}

/// Loads and validates the config at `path` as `crmsync` does, connections included (their
/// secrets read from a stand-in environment); returns the refusal, if any.
fn load_and_validate(path: &Path) -> Result<(), String> {
    let loaded = LoadedConfig::load(path).map_err(|e| e.to_string())?;
    let _ = loaded.store_path(None);
    let _ = loaded.rules_path(None);
    for (name, connection) in &loaded.config.connections {
        for kind in [
            crmsync::connector::ConnectorKind::Salesforce,
            crmsync::connector::ConnectorKind::Hubspot,
        ] {
            // Either kind may be refused (the config names the other); neither may panic.
            if let Err(err) = connection.resolve(name, kind, |_| Some("stand-in".to_string())) {
                let text = err.to_string();
                if !text.contains(name.as_str()) {
                    return Err(format!("UNNAMED connection error: {text}"));
                }
            }
        }
    }
    Ok(())
}

fn fuzz_cases() -> Vec<u64> {
    if let Ok(seed) = std::env::var("CRMSYNC_CONFIG_FUZZ_SEED") {
        return vec![seed
            .trim()
            .parse()
            .expect("CRMSYNC_CONFIG_FUZZ_SEED is a number")];
    }
    let cases: u64 = std::env::var("CRMSYNC_CONFIG_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    (0..cases).collect()
}

/// Seeded mutations of `examples/crmsync.yaml`: every one loads or is refused with an error
/// that names the file (and, for a YAML or value error, the key); none panics.
#[test]
fn mutated_configs_are_refused_by_name_never_with_a_panic() {
    let original = include_str!("../examples/crmsync.yaml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crmsync.yaml");
    std::fs::write(&path, original).unwrap();
    load_and_validate(&path).expect("the example config itself loads");

    let mut failures = Vec::new();
    let mut refused = 0;
    let cases = fuzz_cases();
    for &seed in &cases {
        let (text, done) = mutate(original, seed);
        std::fs::write(&path, &text).unwrap();
        let outcome = std::panic::catch_unwind(|| load_and_validate(&path));
        let problem = match outcome {
            Err(panic) => Some(format!(
                "PANIC: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
            Ok(Ok(())) => None,
            Ok(Err(message)) => {
                refused += 1;
                // `crmsync.yaml: <key>: <why>` or `cannot read config file <path>: <why>`.
                let names_file = message.contains("crmsync.yaml");
                let names_key = message.starts_with("cannot read config file")
                    || message
                        .split_once("crmsync.yaml: ")
                        .is_some_and(|(_, rest)| {
                            rest.split_once(": ").is_some_and(|(k, _)| !k.is_empty())
                        });
                (!names_file || !names_key || message.starts_with("UNNAMED"))
                    .then(|| format!("UNNAMED: {message}"))
            }
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "seed {seed} ({}): {problem}\n--- mutated config ---\n{}",
                done.join(", "),
                String::from_utf8_lossy(&text)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} mutated configs failed (replay one with CRMSYNC_CONFIG_FUZZ_SEED=<seed>):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    // The mutations do reach the validation: a fuzz where everything loads tests nothing.
    if cases.len() >= 100 {
        assert!(
            refused * 4 > cases.len(),
            "only {refused} of {} refused",
            cases.len()
        );
    }
}
