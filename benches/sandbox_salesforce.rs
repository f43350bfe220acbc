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

async fn read_all(contacts: u32) -> Run {
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
    let instance = token["instance_url"]
        .as_str()
        .expect("instance_url")
        .to_string();
    let bearer = token["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let soql = format!("SELECT {FIELDS} FROM Contact ORDER BY SystemModstamp, Id");
    let mut url = format!("{instance}/services/data/v62.0/query");
    let mut first = true;
    let (mut records, mut requests, mut bytes) = (0u64, 0u64, 0u64);
    loop {
        let mut request = http.get(&url).bearer_auth(&bearer);
        if first {
            request = request.query(&[("q", soql.as_str())]);
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
        records += page["records"].as_array().map_or(0, |r| r.len() as u64);
        match page["nextRecordsUrl"].as_str() {
            Some(next) => url = format!("{instance}{next}"),
            None => break,
        }
        first = false;
    }
    let wall = started.elapsed();
    assert_eq!(records, u64::from(contacts));
    assert_eq!(
        sandbox.counters().get("sf.query") + sandbox.counters().get("sf.query_more"),
        requests
    );
    Run {
        wall,
        records,
        requests,
        bytes,
    }
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
        "{:>9}  {:>10}  {:>8}  {:>9}  {:>12}  {:>14}  {:>6}  {:>9}",
        "contacts",
        "http read",
        "requests",
        "MB",
        "records/s",
        "gen+serialize",
        "ratio",
        "peak RSS"
    );
    for contacts in sizes {
        let (floor, _) = generate_and_serialize(contacts);
        let run = runtime.block_on(read_all(contacts));
        println!(
            "{:>9}  {:>9.2}s  {:>8}  {:>9.1}  {:>12.0}  {:>13.2}s  {:>5.1}x  {:>6.0} MB",
            contacts,
            run.wall.as_secs_f64(),
            run.requests,
            run.bytes as f64 / 1e6,
            run.records as f64 / run.wall.as_secs_f64(),
            floor.as_secs_f64(),
            run.wall.as_secs_f64() / floor.as_secs_f64(),
            peak_rss_mb(),
        );
    }
}
