//! The rule-language front end: every diagnostic code's rendered output, the example rule set,
//! valid rule-set cases, hostile inputs, and a fuzz test of parser + checker.
//!
//! Cases are data: `tests/cases/diagnostics/<CODE>_<what>.rules` (one file per error code and
//! per kind of syntax error; the rendered diagnostics are the snapshot) and
//! `tests/cases/rulesets/*.rules` (valid rule sets; the snapshot is the checked program).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crmsync::lang::diagnostics::{codes, Diagnostics};
use crmsync::lang::{compile_bytes, compile_dir, compile_paths, compile_sources};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

/// A case file's bytes. `# expand: N` on the first line pads the file with comment lines to N
/// bytes (for limits that a checked-in file should not reach by itself).
fn case_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let first_line: String = bytes
        .iter()
        .take_while(|b| **b != b'\n')
        .map(|b| *b as char)
        .collect();
    if let Some(n) = first_line.strip_prefix("# expand: ") {
        let target: usize = n.trim().parse().unwrap();
        while bytes.len() < target {
            bytes.extend_from_slice(b"# padding to reach the size limit\n");
        }
        bytes.truncate(target);
    }
    bytes
}

/// Diagnostics of a compile run, whether it succeeded (warnings) or not.
fn diagnostics_of(result: Result<crmsync::lang::Compiled, Diagnostics>) -> Diagnostics {
    match result {
        Ok(compiled) => compiled.warnings,
        Err(diagnostics) => diagnostics,
    }
}

fn codes_in(d: &Diagnostics) -> BTreeSet<&'static str> {
    d.list.iter().map(|d| d.code.id).collect()
}

/// Codes that a single case file cannot produce, and the test here that covers each.
const COVERED_ELSEWHERE: &[(&str, &str)] = &[
    ("E105", "hostile::parser_limit_is_a_diagnostic"),
    ("E106", "hostile::empty_directory_is_an_error"),
    ("E107", "hostile::missing_path_is_an_error"),
];

mod diagnostics {
    use super::*;

    #[test]
    fn diagnostic_cases() {
        insta::with_settings!({
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::glob!("cases/diagnostics/*.rules", |path| {
                let file_name = path.file_name().unwrap().to_string_lossy().to_string();
                let code = file_name.split('_').next().unwrap().to_string();
                let name = format!("diagnostics/{file_name}");
                let d = diagnostics_of(compile_bytes(vec![(name, case_bytes(path))]));
                assert!(
                    codes_in(&d).contains(code.as_str()),
                    "{file_name}: expected a {code} diagnostic, got {:?}\n{}",
                    codes_in(&d),
                    d.render(false)
                );
                for diagnostic in &d.list {
                    assert!(
                        diagnostic.help.is_some() || diagnostic.code.id == "E102" || diagnostic.labels.is_empty(),
                        "{file_name}: {} has no help line",
                        diagnostic.code.id
                    );
                }
                insta::assert_snapshot!(d.render(false));
            });
        });
    }

    #[test]
    fn every_registered_code_has_a_case_and_every_case_a_code() {
        let mut case_codes = BTreeSet::new();
        for entry in std::fs::read_dir(cases_dir().join("diagnostics")).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if !name.ends_with(".rules") {
                continue;
            }
            let code = name.split('_').next().unwrap().to_string();
            assert!(
                codes::lookup(&code).is_some(),
                "case {name} names a code that is not in the registry"
            );
            case_codes.insert(code);
        }
        for code in codes::ALL {
            let elsewhere = COVERED_ELSEWHERE.iter().any(|(c, _)| *c == code.id);
            assert!(
                case_codes.contains(code.id) || elsewhere,
                "code {} ({}) has no case under tests/cases/diagnostics/",
                code.id,
                code.title
            );
        }
    }

    #[test]
    fn every_code_is_documented() {
        let guide = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rule-language.md"),
        )
        .unwrap();
        for code in codes::ALL {
            assert!(
                guide.contains(&format!("\n#### {}\n", code.id)),
                "docs/rule-language.md has no section for {}",
                code.id
            );
        }
    }

    #[test]
    fn codes_are_unique_and_never_retired_ones() {
        let mut seen = BTreeSet::new();
        for code in codes::ALL {
            assert!(seen.insert(code.id), "code {} registered twice", code.id);
            assert!(
                !codes::RETIRED.contains(&code.id),
                "{} was retired",
                code.id
            );
        }
    }

    #[test]
    fn errors_of_all_files_come_in_one_run() {
        let result = compile_sources(vec![
            ("a.rules".into(), "field email string\n".into()),
            (
                "b.rules".into(),
                "field deal_size: number\nanalysis {\n  x -> dela_size\n}\n".into(),
            ),
            (
                "c.rules".into(),
                "connection hubspot {\n  inbound {\n    email -> deal_size\n  }\n}\n".into(),
            ),
        ]);
        let d = result.unwrap_err();
        let by_file: BTreeSet<&str> = d
            .list
            .iter()
            .filter_map(|x| x.file)
            .map(|f| d.sources.name(f))
            .collect();
        assert_eq!(
            by_file.into_iter().collect::<Vec<_>>(),
            ["a.rules", "b.rules", "c.rules"]
        );
        let found = codes_in(&d);
        for code in ["E100", "E201", "E503"] {
            assert!(found.contains(code), "missing {code}: {found:?}");
        }
    }

    #[test]
    fn json_output_has_positions_and_codes() {
        let d = compile_sources(vec![(
            "x.rules".into(),
            "field email: string\nanalysis {\n  a -> emial\n}\n".into(),
        )])
        .unwrap_err();
        let json = d.to_json();
        assert_eq!(json["errors"], 1);
        let first = &json["diagnostics"][0];
        assert_eq!(first["code"], "E201");
        assert_eq!(first["file"], "x.rules");
        assert_eq!(first["line"], 3);
        assert_eq!(first["column"], 8);
        assert_eq!(first["help"], "did you mean `email`?");
        assert_eq!(first["labels"][0]["primary"], true);
    }
}

mod example {
    use super::*;

    #[test]
    fn example_rules_compile_without_errors_or_warnings() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let compiled = match compile_dir(&dir) {
            Ok(c) => c,
            Err(d) => panic!("{}", d.render(false)),
        };
        assert!(compiled.warnings.is_empty(), "{}", compiled.warnings);
        let names: Vec<&str> = compiled
            .warnings
            .sources
            .ids()
            .map(|id| compiled.warnings.sources.name(id))
            .map(|n| n.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "analysis.rules",
                "fields.rules",
                "hubspot.rules",
                "salesforce.rules"
            ]
        );
        insta::assert_snapshot!(compiled.summary(), @"11 fields, analysis 5 mappings, hubspot 5 inbound / 1 outbound, salesforce 8 inbound / 2 outbound");
    }
}

mod rulesets {
    use super::*;
    use crmsync::lang::check::{CheckedProgram, TypedExpr, TypedExprKind};
    use std::fmt::Write as _;

    /// A compact, stable rendering of a checked program for snapshots.
    fn describe(p: &CheckedProgram) -> String {
        let mut out = String::new();
        for (_, f) in p.fields.iter().filter(|(_, f)| !f.builtin) {
            let _ = writeln!(out, "field {}: {:?}", f.name, f.ty);
        }
        let field = |id| p.fields.get(id).name.clone();
        for m in &p.analysis {
            let _ = writeln!(
                out,
                "analysis {} -> {} {:?}{}{}",
                expr(&m.source, p),
                field(m.target),
                m.mode,
                m.guard
                    .as_ref()
                    .map(|g| format!(" when {}", expr(g, p)))
                    .unwrap_or_default(),
                m.value_map
                    .as_ref()
                    .map(|v| format!(" map {:?} else {:?}", v.entries, v.default))
                    .unwrap_or_default(),
            );
        }
        for c in &p.connections {
            let _ = writeln!(
                out,
                "connection {} object={:?} activity={:?}",
                c.kind.name(),
                c.object,
                c.activity
            );
            for m in &c.inbound {
                let _ = writeln!(
                    out,
                    "  in  {} -> {} {:?}{}{}",
                    expr(&m.source, p),
                    field(m.target),
                    m.mode,
                    m.guard
                        .as_ref()
                        .map(|g| format!(" when {}", expr(g, p)))
                        .unwrap_or_default(),
                    m.value_map
                        .as_ref()
                        .map(|v| format!(" map {:?} else {:?}", v.entries, v.default))
                        .unwrap_or_default(),
                );
            }
            for m in &c.outbound {
                let _ = writeln!(
                    out,
                    "  out {} -> {} reads {:?}{}",
                    expr(&m.source, p),
                    m.target,
                    m.reads.iter().map(|r| field(*r)).collect::<Vec<_>>(),
                    m.value_map
                        .as_ref()
                        .map(|v| format!(" map {:?} else {:?}", v.entries, v.default))
                        .unwrap_or_default(),
                );
            }
        }
        out
    }

    fn expr(e: &TypedExpr, p: &CheckedProgram) -> String {
        let inner = match &e.kind {
            TypedExprKind::Input(path) => format!("input{path:?}"),
            TypedExprKind::Conversation(c) => format!("conversation.{}", c.name()),
            TypedExprKind::Contact(id) => format!("contact.{}", p.fields.get(*id).name),
            TypedExprKind::Literal(v) => format!("{v:?}"),
            TypedExprKind::Call { function, args } => format!(
                "{function}({})",
                args.iter()
                    .map(|a| expr(a, p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TypedExprKind::Not(x) => format!("(not {})", expr(x, p)),
            TypedExprKind::Binary { op, lhs, rhs } => {
                format!("({} {} {})", expr(lhs, p), op.symbol(), expr(rhs, p))
            }
        };
        format!("{inner}:{}", e.ty.describe())
    }

    #[test]
    fn ruleset_cases() {
        insta::with_settings!({
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::glob!("cases/rulesets/*.rules", |path| {
                let file_name = path.file_name().unwrap().to_string_lossy().to_string();
                let result = compile_bytes(vec![(format!("rulesets/{file_name}"), case_bytes(path))]);
                let compiled = match result {
                    Ok(c) => c,
                    Err(d) => panic!("{file_name} should compile:\n{}", d.render(false)),
                };
                let mut text = describe(&compiled.program);
                text.push_str(&compiled.warnings.render(false));
                insta::assert_snapshot!(text);
            });
        });
    }
}

mod hostile {
    use super::*;

    fn one(text: String) -> Diagnostics {
        diagnostics_of(compile_sources(vec![("hostile.rules".into(), text)]))
    }

    fn mapping_with(source: &str) -> String {
        format!(
            "field email: string\nconnection hubspot {{\n  inbound {{\n    phone -> phone_number\n    {source} -> email\n  }}\n}}\n"
        )
    }

    #[test]
    fn ten_thousand_nested_parentheses() {
        let deep = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
        let d = one(mapping_with(&deep));
        assert_eq!(codes_in(&d), BTreeSet::from(["E103"]));
        // Unbalanced and mixed brackets too.
        let d = one(format!("analysis {}", "{[(".repeat(10_000)));
        assert!(codes_in(&d).contains("E103"));
    }

    #[test]
    fn long_operator_chains_hit_the_expression_limit() {
        let nots = format!("{}x", "not ".repeat(10_000));
        assert_eq!(
            codes_in(&one(mapping_with(&nots))),
            BTreeSet::from(["E104"])
        );
        let chain = vec!["x"; 10_000].join(" ?? ");
        assert_eq!(
            codes_in(&one(mapping_with(&chain))),
            BTreeSet::from(["E104"])
        );
        let call = format!("concat({})", vec!["x"; 10_000].join(", "));
        assert_eq!(
            codes_in(&one(mapping_with(&call))),
            BTreeSet::from(["E104"])
        );
    }

    #[test]
    fn fifty_megabyte_file_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.rules");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(50 * 1024 * 1024).unwrap();
        let d = compile_paths(&[path]).unwrap_err();
        assert_eq!(codes_in(&d), BTreeSet::from(["E101"]));
        assert!(d
            .render(false)
            .contains("huge.rules: rule file is 52428800 bytes"));
        // The same through the in-memory entry point.
        let d = one("#".repeat(50 * 1024 * 1024));
        assert_eq!(codes_in(&d), BTreeSet::from(["E101"]));
    }

    #[test]
    fn invalid_utf8_names_the_file_and_the_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.rules");
        std::fs::write(&path, b"field email: string\n# caf\xe9\n").unwrap();
        let d = compile_paths(&[path]).unwrap_err();
        assert_eq!(codes_in(&d), BTreeSet::from(["E102"]));
        let rendered = d.render(false);
        assert!(
            rendered.contains("latin1.rules` is not valid UTF-8 (byte 25)"),
            "{rendered}"
        );
        assert!(rendered.contains(":2:6"), "{rendered}");
    }

    #[test]
    fn empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a rule file").unwrap();
        let d = compile_dir(dir.path()).unwrap_err();
        assert_eq!(codes_in(&d), BTreeSet::from(["E106"]));
        assert!(d.render(false).contains("no `*.rules` files in"));
    }

    #[test]
    fn missing_path_is_an_error() {
        let d = compile_paths(&[PathBuf::from("does/not/exist.rules")]).unwrap_err();
        assert_eq!(codes_in(&d), BTreeSet::from(["E107"]));
        assert!(d
            .render(false)
            .contains("cannot read `does/not/exist.rules`"));
    }

    #[test]
    fn parser_limit_is_a_diagnostic() {
        // pest refuses to recurse when little native stack is left ("stack limit reached") or
        // when a parse exceeds its call budget; either must surface as E105, not a crash.
        // Nesting within the limit, parsed on a thread with a deliberately small stack (so
        // small that debug and release builds alike hit it), runs into pest's stack guard.
        let nested = format!("{}x{}", "(".repeat(60), ")".repeat(60));
        let text = mapping_with(&nested);
        let parsed = std::thread::Builder::new()
            .stack_size(80 * 1024)
            .spawn(move || {
                crmsync::lang::syntax::parse_file(crmsync::lang::syntax::ast::FileId(0), &text)
                    .diagnostics
                    .iter()
                    .map(|d| d.code.id)
                    .collect::<Vec<_>>()
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(
            !parsed.is_empty() && parsed.iter().all(|c| *c == "E105"),
            "{parsed:?}"
        );
        // The same text on an ordinary thread parses cleanly: the limit is the stack, not the
        // input.
        let ok = crmsync::lang::syntax::parse_file(
            crmsync::lang::syntax::ast::FileId(0),
            &mapping_with(&nested),
        );
        assert!(ok.diagnostics.is_empty(), "{:?}", ok.diagnostics);
    }

    #[test]
    fn tens_of_thousands_of_fields_and_misses_are_reported_not_hung() {
        // Name lookups are hashed and suggestions bounded, so this stays linear.
        let mut fields = String::new();
        let mut n = 0;
        while fields.len() < 1_000_000 {
            fields.push_str(&format!("field f{n}: string\n"));
            n += 1;
        }
        let mut mappings = String::from("analysis {\n");
        let mut m = 0;
        while mappings.len() < 1_000_000 {
            mappings.push_str(&format!("  x -> g{m}\n"));
            m += 1;
        }
        mappings.push_str("}\n");
        let d = compile_sources(vec![
            ("fields.rules".into(), fields),
            ("mappings.rules".into(), mappings),
        ])
        .unwrap_err();
        assert_eq!(
            d.list.iter().filter(|x| x.code.id == "E206").count(),
            1,
            "one E206 for the whole schema"
        );
        assert_eq!(d.list.iter().filter(|x| x.code.id == "E201").count(), m);
    }

    #[test]
    fn a_large_realistic_file_compiles() {
        let mut text = String::new();
        for i in 0..200 {
            text.push_str(&format!("field f{i:03}: string \"Field number {i}\"\n"));
        }
        text.push_str("connection salesforce {\n  inbound {\n    Phone -> phone_number\n");
        let mut i = 0;
        while text.len() < 1_000_000 {
            text.push_str(&format!(
                "    lower(trim(Custom_{i}__c ?? Other_{i}__c)) -> f{:03} when Active__c == true\n",
                i % 200
            ));
            i += 1;
        }
        text.push_str("  }\n}\n");
        match compile_sources(vec![("big.rules".into(), text)]) {
            Ok(c) => assert_eq!(c.program.connections[0].inbound.len(), i + 1),
            Err(d) => panic!("{}", &d.render(false)[..2000.min(d.render(false).len())]),
        }
    }
}

mod fuzz {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const TOKENS: &[&str] = &[
        "field",
        "analysis",
        "connection",
        "inbound",
        "outbound",
        "activity",
        "object",
        "log",
        "calls",
        "enum",
        "[",
        "]",
        "{",
        "}",
        "(",
        ")",
        "->",
        "=>",
        "??",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "and",
        "or",
        "not",
        "when",
        "else",
        "merge",
        "overwrite",
        "fill_if_empty",
        "null",
        "true",
        "false",
        "\"",
        "`",
        "#",
        "\n",
        ",",
        ":",
        ".",
        "-1.5e3",
        "1e999",
        "lower(",
        "trim(",
        "concat(",
        "conversation.",
        "contact.",
        "phone_number",
        "email",
        "salesforce",
        "hubspot",
        "\\",
        "é",
        "\u{FEFF}",
        "\u{0}",
        "💥",
    ];

    fn example() -> Vec<(String, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rules"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().to_string(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    }

    fn mutate(rng: &mut StdRng, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        let at = if len == 0 { 0 } else { rng.gen_range(0..=len) };
        match rng.gen_range(0..6) {
            0 if len > 0 => {
                let end = (at + rng.gen_range(1..20)).min(len);
                bytes.drain(at.min(end)..end);
            }
            1 => {
                let token = TOKENS[rng.gen_range(0..TOKENS.len())];
                bytes.splice(at..at, token.bytes());
            }
            2 if len > 0 => {
                let start = rng.gen_range(0..len);
                let end = (start + rng.gen_range(1..80)).min(len);
                let chunk: Vec<u8> = bytes[start..end].to_vec();
                bytes.splice(at..at, chunk);
            }
            3 => {
                let b: u8 = rng.gen();
                bytes.insert(at, b);
            }
            4 if len > 0 => {
                let i = rng.gen_range(0..len);
                bytes[i] = rng.gen();
            }
            _ => {
                // Swap two chunks (reorders tokens and lines).
                if len > 4 {
                    let a = rng.gen_range(0..len / 2);
                    let b = rng.gen_range(len / 2..len);
                    bytes.swap(a, b);
                }
            }
        }
    }

    /// Compiles and renders; panics propagate and fail the test with the seed printed.
    fn run(files: Vec<(String, Vec<u8>)>) {
        let d = diagnostics_of(compile_bytes(files));
        for diagnostic in &d.list {
            for label in &diagnostic.labels {
                let text = d.sources.text(label.span.file);
                let r = label.span.range();
                assert!(
                    r.start <= r.end && r.end <= text.len(),
                    "span out of bounds"
                );
                assert!(
                    text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
                    "span not on a char boundary"
                );
            }
        }
        let _ = d.render(false);
        let _ = d.to_json();
        // Syntax errors speak in plain words, never in grammar rule names.
        for diagnostic in d.list.iter().filter(|x| x.code.id == "E100") {
            let text = format!(
                "{} {:?} {:?}",
                diagnostic.message,
                diagnostic
                    .labels
                    .iter()
                    .map(|l| &l.message)
                    .collect::<Vec<_>>(),
                diagnostic.help
            );
            for name in internal_rule_names() {
                assert!(
                    !text
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|w| w == name),
                    "rule name `{name}` leaked into: {text}"
                );
            }
        }
    }

    /// Grammar rule names that must never reach a user.
    fn internal_rule_names() -> Vec<String> {
        use crmsync::lang::syntax::parser::Rule;
        const PLAIN: &[&str] = &[
            "string", "number", "mapping", "guard", "mode", "file", "item", "section", "name",
            "literal", "escape", "path", "call",
        ];
        Rule::all_rules()
            .iter()
            .map(|r| format!("{r:?}"))
            .filter(|n| !PLAIN.contains(&n.as_str()))
            .collect()
    }

    #[test]
    fn mutated_example_rules_never_panic() {
        let base = example();
        for seed in 0..2_500u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut files = base.clone();
            let n = rng.gen_range(1..=8);
            for _ in 0..n {
                let which = rng.gen_range(0..files.len());
                mutate(&mut rng, &mut files[which].1);
            }
            let result = std::panic::catch_unwind(|| run(files.clone()));
            if result.is_err() {
                panic!(
                    "seed {seed} panicked; input:\n{}",
                    files
                        .iter()
                        .map(|(n, b)| format!("== {n}\n{}", String::from_utf8_lossy(b)))
                        .collect::<String>()
                );
            }
        }
    }

    #[test]
    fn random_token_soup_never_panics() {
        for seed in 0..1_500u64 {
            let mut rng = StdRng::seed_from_u64(1_000_000 + seed);
            let mut text = Vec::new();
            for _ in 0..rng.gen_range(0..120) {
                if rng.gen_bool(0.8) {
                    text.extend_from_slice(TOKENS[rng.gen_range(0..TOKENS.len())].as_bytes());
                } else {
                    text.extend((0..rng.gen_range(1..6)).map(|_| rng.gen::<u8>()));
                }
                if rng.gen_bool(0.5) {
                    text.push(b' ');
                }
            }
            let input = text.clone();
            let result = std::panic::catch_unwind(|| run(vec![("soup.rules".into(), input)]));
            if result.is_err() {
                panic!(
                    "seed {seed} panicked on {:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }
}

mod cli {
    use super::*;
    use std::process::Command;

    fn crmsync(dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_crmsync"))
            .current_dir(dir)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    #[test]
    fn check_example_rules_prints_a_summary() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = crmsync(root, &["check", "rules"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "ok: 11 fields, analysis 5 mappings, hubspot 5 inbound / 1 outbound, salesforce 8 inbound / 2 outbound\n"
        );
        // `--rules DIR` is the default path.
        let out = crmsync(root, &["--rules", "rules", "check"]);
        assert_eq!(out.status.code(), Some(0));
    }

    #[test]
    fn check_reports_errors_with_relative_paths_and_exit_1() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(
            dir.path().join("rules/a.rules"),
            "field email: string\nanalysis {\n  mail -> emial\n}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("rules/b.rules"), "connection hubspt {\n}\n").unwrap();
        let out = crmsync(dir.path(), &["check"]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("error[E201]: unknown contact field `emial`"),
            "{stderr}"
        );
        assert!(stderr.contains("┌─ rules/a.rules:3:11"), "{stderr}");
        assert!(stderr.contains("error[E501]"), "{stderr}");
        assert!(stderr.contains("┌─ rules/b.rules:1:12"), "{stderr}");
        assert!(
            !stderr.contains(&dir.path().display().to_string()),
            "{stderr}"
        );
        assert!(!stderr.contains('\u{1b}'), "no colours when not a terminal");
        assert!(
            stderr.ends_with("error: the rules do not compile: 3 errors\n"),
            "{stderr}"
        );
    }

    #[test]
    fn check_json_goes_to_stdout() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.rules"),
            "analysis {\n  a -> phone_number\n}\n",
        )
        .unwrap();
        let out = crmsync(dir.path(), &["check", "--json", "x.rules"]);
        assert_eq!(out.status.code(), Some(1));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["diagnostics"][0]["code"], "E505");
        assert_eq!(doc["diagnostics"][0]["file"], "x.rules");
        assert_eq!(doc["diagnostics"][0]["line"], 2);

        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = crmsync(root, &["check", "--json"]);
        assert_eq!(out.status.code(), Some(0));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["ok"], true);
        assert_eq!(doc["summary"]["fields"], 11);
        assert_eq!(doc["summary"]["connections"][1]["name"], "salesforce");
        assert_eq!(doc["summary"]["connections"][1]["inbound"], 8);
    }
}
