//! The real `crmsync` binary: import, analyze, contact, vars, outbox, and their bad-input errors.
//! Each test runs in its own tempdir holding the rules, a config naming the active connection,
//! and the sample files (relative paths keep the output free of machine-specific paths).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The example rule set from `rules/` (the example of `docs/rule-language.md`, split into files).
const RULES: &str = concat!(
    include_str!("../rules/fields.rules"),
    "\n",
    include_str!("../rules/analysis.rules"),
    "\n",
    include_str!("../rules/salesforce.rules"),
    "\n",
    include_str!("../rules/hubspot.rules"),
);

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(dir.path().join("rules/crm.rules"), RULES).unwrap();
        std::fs::write(
            dir.path().join("crmsync.yaml"),
            "active_connection: salesforce\n",
        )
        .unwrap();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for (from, to) in [
            ("records/salesforce_contacts.json", "salesforce.json"),
            ("records/hubspot_contacts.json", "hubspot.json"),
            ("events/call_analyzed.json", "call.json"),
            ("events/chat_analyzed.json", "chat.json"),
            ("events/generic_call.json", "generic.json"),
            ("events/web_call_analyzed.json", "web.json"),
        ] {
            std::fs::copy(examples.join(from), dir.path().join(to)).unwrap();
        }
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_crmsync"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects exit 1 with nothing on stdout; returns stderr.
    fn bad(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn contact_count(&self) -> usize {
        self.json(&["contact", "list"]).as_array().unwrap().len()
    }
}

#[test]
fn import_prints_a_summary_with_reasons() {
    let ws = Workspace::new();
    let out = ws.ok(&["import", "--connection", "salesforce", "salesforce.json"]);
    insta::assert_snapshot!(out);
    let again = ws.json(&["import", "--connection", "salesforce", "salesforce.json"]);
    assert_eq!(again["created"], 0);
    assert_eq!(again["unchanged"], 3);
    assert_eq!(again["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(again["field_errors"][0]["record_id"], "003Dn00000A1bQ7IAJ");
}

#[test]
fn import_hubspot_results() {
    let ws = Workspace::new();
    let report = ws.json(&["import", "--connection", "hubspot", "hubspot.json"]);
    assert_eq!(report["read"], 3);
    assert_eq!(report["created"], 2);
    assert_eq!(report["skipped"][0]["record_id"], "53");
    let contact = ws.json(&["contact", "get", "+16465550144"]);
    assert_eq!(contact["fields"]["lead_status"], "new");
    assert_eq!(contact["links"]["hubspot"], "52");
}

#[test]
fn import_streams_a_plain_array_in_pages() {
    let ws = Workspace::new();
    // 2,500 records: three pages of at most 1,000.
    let records: Vec<serde_json::Value> = (0..2500)
        .map(|i| {
            serde_json::json!({
                "Id": format!("003{i:012}"),
                "Phone": format!("+1415555{:04}", i),
                "FirstName": format!("P{i}"),
                "SystemModstamp": "2026-11-20T10:00:00Z"
            })
        })
        .collect();
    ws.write("many.json", &serde_json::to_string(&records).unwrap());
    let report = ws.json(&["import", "--connection", "salesforce", "many.json"]);
    assert_eq!(report["read"], 2500);
    assert_eq!(report["created"], 2500);
    let list = ws.json(&["contact", "list", "--limit", "5000"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2500);
    // Paging: the next 1,000 after the 1,000th contact are the listing's 1,001st to 2,000th.
    let after = list[999]["phone_number"].as_str().unwrap();
    let page = ws.json(&["contact", "list", "--limit", "1000", "--after", after]);
    assert_eq!(page.as_array().unwrap()[..], list[1000..2000]);
    // A reader that stops early (`| head -1`) ends the listing quietly, without an error. The
    // listing is about 1 MB, far more than a pipe holds, so the writer does see the pipe close.
    for json in [true, false] {
        let mut args = vec!["contact", "list", "--limit", "5000"];
        if json {
            args.insert(0, "--json");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_crmsync"))
            .args(&args)
            .current_dir(ws.dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut first,
        )
        .unwrap();
        assert!(!first.is_empty());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn a_bad_record_after_many_pages_leaves_the_store_unchanged() {
    let ws = Workspace::new();
    ws.ok(&["import", "--connection", "salesforce", "salesforce.json"]);
    let before = ws.json(&["contact", "list"]);
    // 2,500 good records (more than two pages), then one that is not an object.
    let mut text = String::from("[");
    for i in 0..2500 {
        text.push_str(&format!(
            "{{\"Id\":\"003{i:012}\",\"Phone\":\"+1415555{i:04}\",\"FirstName\":\"P{i}\"}},"
        ));
    }
    text.push_str("42]");
    ws.write("late.json", &text);
    let err = ws.bad(&["import", "--connection", "salesforce", "late.json"]);
    assert!(
        err.contains("late.json: record #2500 is not a JSON object"),
        "{err}"
    );
    assert_eq!(ws.json(&["contact", "list"]), before);
}

#[test]
fn analyze_applies_once_and_queues_intents() {
    let ws = Workspace::new();
    ws.ok(&["import", "--connection", "salesforce", "salesforce.json"]);
    let first = ws.ok(&["analyze", "call.json"]);
    let second = ws.ok(&["analyze", "call.json"]);
    let chat = ws.ok(&["analyze", "chat.json"]);
    let generic = ws.ok(&["analyze", "generic.json"]);
    let web = ws.ok(&["analyze", "web.json"]);
    insta::assert_snapshot!(format!("{first}{second}{chat}{generic}{web}"));
    insta::assert_snapshot!(
        "contact_after_call",
        ws.ok(&["contact", "get", "(415) 555-0101"])
    );
    insta::assert_snapshot!("outbox_after_events", ws.ok(&["outbox"]));
    let outbox = ws.json(&["outbox"]);
    assert_eq!(outbox["counts"]["pending_writes"], 2);
    assert_eq!(outbox["counts"]["pending_activities"], 2);
}

#[test]
fn analyze_refuses_an_event_without_an_id() {
    let ws = Workspace::new();
    let generic = |id: Option<&str>| {
        let mut event = serde_json::json!({"kind": "call", "direction": "inbound",
            "from_number": "+14155550123", "analysis": {"customer_notes": "no id"}});
        if let Some(id) = id {
            event["id"] = serde_json::json!(id);
        }
        event.to_string()
    };
    for (name, body, field) in [
        ("missing.json", generic(None), "id"),
        ("empty.json", generic(Some("")), "`id`"),
        ("blank.json", generic(Some("  ")), "`id`"),
        (
            "call.json",
            serde_json::json!({"event": "call_analyzed", "call": {"call_id": " ",
                "direction": "inbound", "from_number": "+14155550123"}})
            .to_string(),
            "call.call_id",
        ),
        (
            "chat.json",
            serde_json::json!({"event": "chat_analyzed", "chat": {"chat_id": "",
                "metadata": {"customer_phone": "+14155550123"}}})
            .to_string(),
            "chat.chat_id",
        ),
    ] {
        ws.write(name, &body);
        let err = ws.bad(&["analyze", name]);
        assert!(err.contains(name), "{name}: {err}");
        assert!(err.contains(field), "{name}: {err}");
    }
    assert_eq!(ws.contact_count(), 0);
}

#[test]
fn an_outbound_value_that_cannot_be_computed_is_listed_by_outbox() {
    let ws = Workspace::new();
    let rules = RULES.replace(
        "interaction_summary -> Notes__c",
        "interaction_summary -> Notes__c\n    to_number(interaction_summary) -> Score__c",
    );
    assert_ne!(rules, RULES, "the example rules changed: update this test");
    ws.write("rules/crm.rules", &rules);
    ws.ok(&["import", "--connection", "salesforce", "salesforce.json"]);
    ws.ok(&["analyze", "call.json"]);
    let out = ws.ok(&["outbox"]);
    let dead: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("dead letters:"))
        .collect();
    insta::assert_snapshot!(dead.join("\n"));
    let view = ws.json(&["outbox"]);
    assert_eq!(view["counts"]["dead_letters"], 1);
    assert_eq!(view["dead_letters"][0]["kind"], "outbound_mapping");
    assert_eq!(view["dead_letters"][0]["payload"]["field"], "Score__c");
}

#[test]
fn contact_set_get_list_and_vars() {
    let ws = Workspace::new();
    ws.ok(&["import", "--connection", "salesforce", "salesforce.json"]);
    let out = ws.ok(&[
        "contact",
        "set",
        "415-555-0101",
        "lead_status=qualified",
        "deal_size=12.5",
        "demo_requested=yes",
        "renewal_date=",
    ]);
    assert_eq!(
        out,
        "updated contact +14155550101: changed deal_size, demo_requested, lead_status, renewal_date\n  queued CRM write: Lead_Status__c\n"
    );
    insta::assert_snapshot!(ws.ok(&["contact", "list"]));
    insta::assert_snapshot!(ws.ok(&["vars", "+14155550101"]));
    let vars = ws.json(&["vars", "4155550101"]);
    assert_eq!(vars["deal_size"], "12.5");
    assert_eq!(vars["demo_requested"], "true");
    assert!(vars.get("renewal_date").is_none());
    // No contact: no variables, exit 0.
    assert_eq!(ws.json(&["vars", "+12025550173"]), serde_json::json!({}));
}

/// A manual edit of a field that only inbound sync writes and nothing sends back is kept,
/// with a warning on stderr that the next sync replaces it; a field that is sent is not warned.
#[test]
fn contact_set_warns_when_a_crm_owns_the_field() {
    let ws = Workspace::new();
    ws.ok(&["import", "--connection", "salesforce", "salesforce.json"]);
    let out = ws.run(&[
        "contact",
        "set",
        "+14155550101",
        "first_name=Augusta",
        "lead_status=qualified",
    ]);
    assert!(out.status.success(), "{out:?}");
    insta::assert_snapshot!(format!(
        "stdout:\n{}stderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ));
    let contact = ws.json(&["contact", "get", "+14155550101"]);
    assert_eq!(contact["fields"]["first_name"], "Augusta");
    let quiet = ws.run(&["contact", "set", "+14155550101", "lead_status=unqualified"]);
    assert!(
        quiet.status.success() && quiet.stderr.is_empty(),
        "{quiet:?}"
    );
}

#[test]
fn bad_input_is_named_exits_1_and_changes_nothing() {
    let ws = Workspace::new();
    ws.write(
        "broken.json",
        "[{\"Id\": \"1\", \"Phone\": \"+14155550101\"},\n {\"Id\": \"2\", \"Phone\": }]",
    );
    ws.write("object.json", "{\"totalSize\": 1}");
    ws.write("numbers.json", "[1, 2]");
    ws.write(
        "event.json",
        "{\"id\": \"c1\", \"kind\": \"sms\", \"direction\": \"inbound\"}",
    );
    ws.write(
        "retell.json",
        "{\"event\": \"call_analyzed\", \"call\": {\"direction\": \"inbound\"}}",
    );
    let errors = [
        ws.bad(&["import", "--connection", "salesforce", "broken.json"]),
        ws.bad(&["import", "--connection", "salesforce", "object.json"]),
        ws.bad(&["import", "--connection", "salesforce", "numbers.json"]),
        ws.bad(&["import", "--connection", "pipedrive", "salesforce.json"]),
        ws.bad(&["import", "--connection", "salesforce", "nowhere.json"]),
        ws.bad(&["analyze", "event.json"]),
        ws.bad(&["analyze", "retell.json"]),
        ws.bad(&["contact", "set", "555", "first_name=Ada"]),
        ws.bad(&["contact", "set", "+14155550101", "frist_name=Ada"]),
        ws.bad(&["contact", "set", "+14155550101", "deal_size=lots"]),
        ws.bad(&["contact", "set", "+14155550101", "lead_status=hot"]),
        ws.bad(&[
            "contact",
            "set",
            "+14155550101",
            "phone_number=+14155550102",
        ]),
        ws.bad(&["contact", "set", "+14155550101", "first_name"]),
        ws.bad(&["contact", "get", "+14155550101"]),
    ];
    insta::assert_snapshot!(errors.join(""));
    assert_eq!(ws.contact_count(), 0, "the store is unchanged");
}

#[test]
fn broken_rules_print_diagnostics_and_exit_1() {
    let ws = Workspace::new();
    ws.write("rules/crm.rules", "field email: strin\n");
    let stderr = ws.bad(&["vars", "+14155550101"]);
    assert!(stderr.contains("crm.rules"), "{stderr}");
    assert!(stderr.contains("error"), "{stderr}");
}

/// Dead letters are retried and discarded from the command line: a mapping that still fails is
/// not retried (exit 1, the letter stays open); once the contact's value computes, the retry
/// queues it; a discard keeps its reason, and a resolved letter cannot be acted on again.
#[test]
fn outbox_retry_and_discard_act_on_dead_letters() {
    let ws = Workspace::new();
    let rules = RULES.replace(
        "interaction_summary -> Notes__c",
        "interaction_summary -> Notes__c\n    to_number(interaction_summary) -> Score__c",
    );
    assert_ne!(rules, RULES, "the example rules changed: update this test");
    ws.write("rules/crm.rules", &rules);
    ws.ok(&["import", "--connection", "salesforce", "salesforce.json"]);
    ws.ok(&["analyze", "call.json"]);
    let still_fails = ws.bad(&["outbox", "retry", "1"]);
    ws.ok(&["contact", "set", "415-555-0101", "interaction_summary=42"]);
    let retried = ws.ok(&["outbox", "retry", "1"]);
    ws.ok(&["contact", "set", "415-555-0101", "interaction_summary=n/a"]);
    let view = ws.json(&["outbox"]);
    assert_eq!(view["counts"]["dead_letters"], 1, "{view}");
    assert_eq!(view["dead_letters"][0]["id"], 2, "{view}");
    let discarded = ws.ok(&["outbox", "discard", "2", "--reason", "n/a is a placeholder"]);
    let listed = ws.ok(&["outbox"]);
    insta::assert_snapshot!(format!(
        "$ crmsync outbox retry 1  (the notes are no number yet)\n{still_fails}\
         $ crmsync outbox retry 1\n{retried}\
         $ crmsync outbox discard 2 --reason ...\n{discarded}\
         $ crmsync outbox\n{listed}"
    ));
    let view = ws.json(&["outbox"]);
    assert_eq!(view["counts"]["dead_letters"], 0, "{view}");
    let history: Vec<_> = view["pending_writes"].as_array().unwrap().to_vec();
    assert_eq!(history.len(), 1, "{history:?}");

    let again = ws.bad(&["outbox", "retry", "1"]);
    assert!(
        again.contains("dead letter #1 was already retried at"),
        "{again}"
    );
    let again = ws.bad(&["outbox", "discard", "2", "--reason", "twice"]);
    assert!(again.contains("already discarded"), "{again}");
    assert!(ws
        .bad(&["outbox", "retry", "9"])
        .contains("no dead letter #9"));
    let none = ws.ok(&["outbox", "retry", "--all"]);
    assert_eq!(none, "retried 0, not retried 0\n");
}
