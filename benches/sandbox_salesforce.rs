//! How fast the Salesforce sandbox serves a full read: every contact, in pages of 2,000,
//! through real HTTP on 127.0.0.1, with a reqwest client that parses each page into
//! `serde_json::Value` (as a connector does). Sandbox and client share this process, as in the
//! 1M-import benchmark, so the peak RSS printed is theirs together.
//!
//! `cargo bench --bench sandbox_salesforce` (sizes default to 100000 1000000; pass others as
//! arguments: `cargo bench --bench sandbox_salesforce -- 200000`).
//!
//! Baseline measured in the same run, on the same data: `generate+serialize`, the same records
//! generated and written as page JSON in-process, without HTTP or parsing (the server's floor).
//! After the full read, 1% of the contacts are edited CRM-side and read back with the
//! incremental query (`SystemModstamp > last seen`): its cost should follow the changes.

use std::time::{Duration, Instant};

use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crmsync::sandbox::salesforce::describe::SObject;
use crmsync::sandbox::salesforce::record::write_record_json;
use crmsync::sandbox::salesforce::state::seeded_contact;
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
use crmsync::sandbox::Population;
use serde_json::Value;

const FIELDS: &str = "Id, FirstName, LastName, Phone, Email, DoNotCall, Lead_Status__c, \
                      AnnualRevenue, Renewal_Date__c, SystemModstamp";
const SEED: u64 = 42;

struct Run {
    wall: Duration,
    records: u64,
    requests: u64,
    bytes: u64,
}

/// A client session: the token response's instance URL and bearer token.
struct Session {
    http: reqwest::Client,
    instance: String,
    bearer: String,
}

impl Session {
    /// Read every page of `soql`; returns the run and the last record's SystemModstamp.
    async fn read(&self, soql: &str) -> (Run, String) {
        let started = Instant::now();
        let mut url = format!("{}/services/data/v62.0/query", self.instance);
        let mut first = true;
        let (mut records, mut requests, mut bytes) = (0u64, 0u64, 0u64);
        let mut last_stamp = String::new();
        loop {
            let mut request = self.http.get(&url).bearer_auth(&self.bearer);
            if first {
                request = request.query(&[("q", soql)]);
            }
            let body = request
                .send()
                .await
                .expect("page")
                .bytes()
                .await
                .expect("body");
            requests += 1;
            bytes += body.len() as u64;
            let page: Value = serde_json::from_slice(&body).expect("page json");
            if let Some(rows) = page["records"].as_array() {
                records += rows.len() as u64;
                if let Some(stamp) = rows.last().and_then(|r| r["SystemModstamp"].as_str()) {
                    last_stamp = stamp.to_string();
                }
            }
            match page["nextRecordsUrl"].as_str() {
                Some(next) => url = format!("{}{next}", self.instance),
                None => break,
            }
            first = false;
        }
        let run = Run {
            wall: started.elapsed(),
            records,
            requests,
            bytes,
        };
        (run, last_stamp)
    }
}

/// A full read of `contacts`, then a CRM-side edit of 1% of them and the incremental read
/// (`SystemModstamp > last seen`) that picks those up.
async fn full_then_incremental(contacts: u32) -> (Run, Run) {
    let sandbox = SalesforceSandbox::start(SalesforceSandboxConfig {
        contacts,
        seed: SEED,
        ..SalesforceSandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let http = reqwest::Client::new();
    let started = Instant::now();
    let token: Value = http
        .post(format!("{}/services/oauth2/token", sandbox.login_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", SALESFORCE_CLIENT_ID),
            ("client_secret", SALESFORCE_CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let session = Session {
        http,
        instance: token["instance_url"]
            .as_str()
            .expect("instance_url")
            .to_string(),
        bearer: token["access_token"]
            .as_str()
            .expect("access_token")
            .to_string(),
    };
    let (mut full, last_stamp) = session
        .read(&format!(
            "SELECT {FIELDS} FROM Contact ORDER BY SystemModstamp, Id"
        ))
        .await;
    full.wall = started.elapsed();
    assert_eq!(full.records, u64::from(contacts));
    let reads = sandbox.counters().get("sf.query") + sandbox.counters().get("sf.query_more");
    assert_eq!(reads, full.requests);

    let changed = contacts / 100;
    for i in 0..changed {
        let id = SalesforceSandbox::contact_id(i * 100);
        sandbox
            .edit_contact(&id, serde_json::json!({"Notes__c": "edited in the CRM"}))
            .expect("edit");
    }
    let cursor = last_stamp.replace(".000+0000", "Z");
    let (incremental, _) = session
        .read(&format!(
            "SELECT {FIELDS} FROM Contact WHERE SystemModstamp > {cursor} ORDER BY SystemModstamp, Id"
        ))
        .await;
    assert_eq!(incremental.records, u64::from(changed));
    (full, incremental)
}

/// The server's floor: generate and serialize every record, no HTTP, no parsing.
fn generate_and_serialize(contacts: u32) -> (Duration, u64) {
    let population = Population::new(contacts, SEED);
    let schema = SObject::Contact.schema();
    let fields: Vec<usize> = FIELDS
        .split(',')
        .map(|f| schema.index_of(f.trim()).expect("field"))
        .collect();
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut out = Vec::with_capacity(2_000 * 512);
    for index in 0..contacts {
        let record = seeded_contact(population, index);
        write_record_json(&mut out, &record, &fields, "v62.0");
        out.push(b',');
        if out.len() > 900_000 {
            bytes += out.len() as u64;
            out.clear();
        }
    }
    bytes += out.len() as u64;
    (started.elapsed(), bytes)
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{:>9}  {:>11}  {:>9}  {:>8}  {:>7}  {:>10}  {:>13}  {:>6}  {:>8}",
        "contacts",
        "read",
        "wall",
        "requests",
        "MB",
        "records/s",
        "gen+serialize",
        "ratio",
        "peak RSS"
    );
    for contacts in sizes {
        let (floor, _) = generate_and_serialize(contacts);
        let (full, incremental) = runtime.block_on(full_then_incremental(contacts));
        for (label, run, baseline) in [
            ("full", &full, Some(floor)),
            ("1% changed", &incremental, None),
        ] {
            println!(
                "{:>9}  {:>11}  {:>8.3}s  {:>8}  {:>7.1}  {:>10.0}  {:>13}  {:>6}  {:>5.0} MB",
                contacts,
                label,
                run.wall.as_secs_f64(),
                run.requests,
                run.bytes as f64 / 1e6,
                run.records as f64 / run.wall.as_secs_f64(),
                baseline.map_or("-".to_string(), |b| format!("{:.2}s", b.as_secs_f64())),
                baseline.map_or("-".to_string(), |b| format!(
                    "{:.1}x",
                    run.wall.as_secs_f64() / b.as_secs_f64()
                )),
                peak_rss_mb(),
            );
        }
    }
}
