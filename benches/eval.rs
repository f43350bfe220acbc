//! Rule evaluation: a realistic 15-field Salesforce record through the compiled `Ruleset`,
//! against the same mapping hand-written in Rust, in one run.
//!
//! `cargo bench --bench eval` — see BENCHMARKS.md ("Rule evaluation") for figures.
//!
//! Two scenarios each: `new` (empty stored contact: every field is written) and `unchanged`
//! (the stored contact already holds the record's values: nothing is written — the steady state
//! of an incremental sync).

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

use crmsync::lang::eval::Change;
use crmsync::lang::Ruleset;
use crmsync::value::coerce::{parse_bool, parse_datetime, parse_iso_date, parse_number};
use crmsync::value::phone::PhoneNormalizer;
use crmsync::value::{Fields, Value};

const RULES: &str = r#"
field email: string
field lead_status: enum [new, working, qualified, unqualified]
field deal_size: number
field renewal_date: date
field last_contacted_at: datetime
field company: string
field title: string
field country: string
field employees: number
field is_customer: boolean
field lead_source: string

connection salesforce {
  object Contact
  inbound {
    Phone                -> phone_number
    trim(FirstName)      -> first_name
    trim(LastName)       -> last_name
    DoNotCall            -> do_not_call     when DoNotCall
    lower(trim(Email))   -> email
    Lead_Status__c       -> lead_status {
      "Open - Not Contacted" => new
      "Working - Contacted"  => working
      "Closed - Converted"   => qualified
      else                   => unqualified
    }
    AnnualRevenue        -> deal_size
    Renewal_Date__c      -> renewal_date    fill_if_empty
    Last_Contacted__c    -> last_contacted_at
    Account.Name         -> company
    trim(Title)          -> title
    upper(MailingCountry) -> country
    NumberOfEmployees__c -> employees
    Customer__c          -> is_customer
    LeadSource ?? "unknown" -> lead_source
  }
}
"#;

fn record() -> serde_json::Value {
    json!({
        "attributes": {"type": "Contact", "url": "/services/data/v60.0/sobjects/Contact/003000000000001AAA"},
        "Id": "003000000000001AAA",
        "Phone": "(415) 555-0132",
        "FirstName": " Ada ",
        "LastName": "Lovelace",
        "DoNotCall": false,
        "Email": "  Ada.Lovelace@Example.COM ",
        "Lead_Status__c": "Working - Contacted",
        "AnnualRevenue": 1250000.5,
        "Renewal_Date__c": "2026-09-30",
        "Last_Contacted__c": "2026-03-09T14:05:00.000+0000",
        "Account": {"attributes": {"type": "Account"}, "Name": "Analytical Engines Ltd"},
        "Title": "Head of Research ",
        "MailingCountry": "gb",
        "NumberOfEmployees__c": "250",
        "Customer__c": "Yes",
        "LeadSource": null,
        "LastModifiedDate": "2026-03-09T14:05:00.000+0000"
    })
}

/// The same mapping written by hand against the same primitives (E.164 normalizer, strict
/// parsers), producing the same changes.
struct HandWritten {
    phone: PhoneNormalizer,
}

fn text(v: &serde_json::Value) -> Option<&str> {
    v.as_str()
}

impl HandWritten {
    fn eval(&self, record: &serde_json::Value, current: &Fields) -> (Vec<Change>, Vec<String>) {
        let mut changes = Vec::with_capacity(15);
        let mut errors = Vec::new();
        let r = match record.as_object() {
            Some(r) => r,
            None => return (changes, vec!["not an object".into()]),
        };
        let mut put = |field: &str, value: Value, fill_if_empty: bool| {
            let cur = current.get(field);
            let empty = |v: &Value| {
                matches!(v, Value::Null) || matches!(v, Value::String(s) if s.trim().is_empty())
            };
            if cur == Some(&value) || (cur.is_none_or(empty) && empty(&value)) {
                return;
            }
            if fill_if_empty && !cur.is_none_or(empty) {
                return;
            }
            changes.push(Change::Set {
                field: field.to_string(),
                value,
            });
        };
        match r
            .get("Phone")
            .and_then(text)
            .map(|p| self.phone.normalize(p))
        {
            Some(Ok(p)) => put("phone_number", Value::String(p), false),
            _ => return (Vec::new(), vec!["phone".into()]),
        }
        if let Some(v) = r.get("FirstName").and_then(text) {
            put("first_name", Value::String(v.trim().to_string()), false);
        }
        if let Some(v) = r.get("LastName").and_then(text) {
            put("last_name", Value::String(v.trim().to_string()), false);
        }
        if let Some(true) = r.get("DoNotCall").and_then(|v| v.as_bool()) {
            put("do_not_call", Value::Bool(true), false);
        }
        if let Some(v) = r.get("Email").and_then(text) {
            put("email", Value::String(v.trim().to_lowercase()), false);
        }
        if let Some(v) = r.get("Lead_Status__c").and_then(text) {
            let variant = match v {
                "Open - Not Contacted" => "new",
                "Working - Contacted" => "working",
                "Closed - Converted" => "qualified",
                _ => "unqualified",
            };
            put("lead_status", Value::Enum(variant.to_string()), false);
        }
        if let Some(v) = r.get("AnnualRevenue").and_then(|v| v.as_f64()) {
            put("deal_size", Value::Number(v), false);
        }
        if let Some(v) = r.get("Renewal_Date__c").and_then(text) {
            match parse_iso_date(v).ok_or(()) {
                Ok(d) => put("renewal_date", Value::Date(d), true),
                Err(_) => errors.push("renewal_date".into()),
            }
        }
        if let Some(v) = r.get("Last_Contacted__c").and_then(text) {
            match parse_datetime(v) {
                Ok(d) => put("last_contacted_at", Value::Datetime(d), false),
                Err(e) => errors.push(e),
            }
        }
        if let Some(v) = r.get("Account").and_then(|a| a.get("Name")).and_then(text) {
            put("company", Value::String(v.to_string()), false);
        }
        if let Some(v) = r.get("Title").and_then(text) {
            put("title", Value::String(v.trim().to_string()), false);
        }
        if let Some(v) = r.get("MailingCountry").and_then(text) {
            put("country", Value::String(v.to_uppercase()), false);
        }
        if let Some(v) = r.get("NumberOfEmployees__c").and_then(text) {
            match parse_number(v) {
                Ok(n) => put("employees", Value::Number(n), false),
                Err(e) => errors.push(e),
            }
        }
        if let Some(v) = r.get("Customer__c").and_then(text) {
            match parse_bool(v) {
                Ok(b) => put("is_customer", Value::Bool(b), false),
                Err(e) => errors.push(e),
            }
        }
        let source = r.get("LeadSource").and_then(text).unwrap_or("unknown");
        put("lead_source", Value::String(source.to_string()), false);
        (changes, errors)
    }
}

fn applied(changes: &[Change]) -> Fields {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Set { field, value } => Some((field.clone(), value.clone())),
            Change::Merge { .. } => None,
        })
        .collect()
}

/// On a shared machine, criterion's estimates move with other processes' load. Running both
/// implementations in short alternating batches and keeping each one's fastest batch gives a
/// ratio that load disturbs much less; printed before the criterion groups.
fn interleaved_minimum(
    ruleset: &Ruleset,
    hand: &HandWritten,
    record: &serde_json::Value,
    empty: &Fields,
    stored: &Fields,
) {
    const BATCH: u32 = 20_000;
    for (name, current) in [("new", empty), ("unchanged", stored)] {
        let (mut best_r, mut best_h) = (u128::MAX, u128::MAX);
        for _ in 0..60 {
            let t = Instant::now();
            for _ in 0..BATCH {
                black_box(ruleset.eval_inbound(
                    "salesforce",
                    black_box(record),
                    black_box(current),
                ));
            }
            best_r = best_r.min(t.elapsed().as_nanos() / u128::from(BATCH));
            let t = Instant::now();
            for _ in 0..BATCH {
                black_box(hand.eval(black_box(record), black_box(current)));
            }
            best_h = best_h.min(t.elapsed().as_nanos() / u128::from(BATCH));
        }
        println!(
            "interleaved minimum ({name}): ruleset {best_r} ns/record ({:.0} records/s), hand-written {best_h} ns/record, ratio {:.2}",
            1e9 / best_r as f64,
            best_r as f64 / best_h as f64
        );
    }
}

fn bench(c: &mut Criterion) {
    let warm: Ruleset = crmsync::lang::compile_sources(vec![("bench.rules".into(), RULES.into())])
        .expect("the bench rules compile")
        .ruleset;
    let mut cold = warm.clone();
    cold.set_phone_memo_capacity(0);
    let hand_warm = HandWritten {
        phone: PhoneNormalizer::default(),
    };
    let hand_cold = HandWritten {
        phone: PhoneNormalizer::default().with_memo_capacity(0),
    };
    let record = record();
    let empty = Fields::new();

    // Both implementations must agree before their speed is compared.
    let compiled = warm.eval_inbound("salesforce", &record, &empty);
    let (manual, manual_errors) = hand_warm.eval(&record, &empty);
    assert!(compiled.errors.is_empty(), "{:?}", compiled.errors);
    assert!(manual_errors.is_empty(), "{manual_errors:?}");
    assert_eq!(
        compiled.changes, manual,
        "compiled and hand-written disagree"
    );
    assert_eq!(compiled.changes.len(), 14);
    let stored = applied(&compiled.changes);
    assert!(warm
        .eval_inbound("salesforce", &record, &stored)
        .changes
        .is_empty());
    assert!(hand_warm.eval(&record, &stored).0.is_empty());

    interleaved_minimum(&warm, &hand_warm, &record, &empty, &stored);

    // Memoized phone normalization (the engine's steady state: numbers it has seen).
    let mut g = c.benchmark_group("eval_inbound_15_fields");
    g.throughput(Throughput::Elements(1));
    for (name, current) in [("new", &empty), ("unchanged", &stored)] {
        g.bench_function(format!("ruleset/{name}"), |b| {
            b.iter(|| warm.eval_inbound("salesforce", black_box(&record), black_box(current)))
        });
        g.bench_function(format!("hand_written/{name}"), |b| {
            b.iter(|| hand_warm.eval(black_box(&record), black_box(current)))
        });
    }
    g.finish();

    // Every phone number parsed from scratch with libphonenumber metadata (a first full sync).
    let mut g = c.benchmark_group("eval_inbound_15_fields_cold_phone");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ruleset/new", |b| {
        b.iter(|| cold.eval_inbound("salesforce", black_box(&record), black_box(&empty)))
    });
    g.bench_function("hand_written/new", |b| {
        b.iter(|| hand_cold.eval(black_box(&record), black_box(&empty)))
    });
    g.finish();

    let mut g = c.benchmark_group("phone_normalize");
    for (name, input) in [("national", "(415) 555-0132"), ("e164", "+14155550132")] {
        g.bench_function(format!("cold/{name}"), |b| {
            b.iter(|| hand_cold.phone.normalize(black_box(input)))
        });
        g.bench_function(format!("memo/{name}"), |b| {
            b.iter(|| hand_warm.phone.normalize(black_box(input)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
