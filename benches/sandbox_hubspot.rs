//! How fast the HubSpot sandbox serves what a connector asks of it, through real HTTP on
//! 127.0.0.1 with a reqwest client that parses every page into `serde_json::Value`:
//!
//! - full read: every contact via `GET /crm/v3/objects/contacts`, pages of 100 (HubSpot's max);
//! - incremental read: 1% of the contacts edited CRM-side, then the cursor search
//!   (`lastmodifieddate GTE <cursor>`, sorted ascending, pages of 200) that finds them.
//!
//! `cargo bench --bench sandbox_hubspot` (size defaults to 100000; pass others as arguments:
//! `cargo bench --bench sandbox_hubspot -- 20000 100000`).
//!
//! Baseline measured in the same run, on the same data: `generate+serialize`, the same records
//! generated and rendered to page JSON in-process, without HTTP or parsing (the server's floor).

use std::time::{Duration, Instant};

use crmsync::sandbox::hubspot::schema::ObjectKind;
use crmsync::sandbox::hubspot::seed_contacts::SeededContacts;
use crmsync::sandbox::hubspot::{HubSpotSandbox, HubSpotSandboxConfig};
use crmsync::sandbox::Population;
use serde_json::{json, Value};

const PROPERTIES: &str = "phone,mobilephone,firstname,lastname,email,hs_lead_status,notes";
const SEED: u64 = 42;

struct Run {
    wall: Duration,
    records: u64,
    requests: u64,
    bytes: u64,
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> (Value, u64) {
    let body = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("page")
        .bytes()
        .await
        .expect("body");
    let len = body.len() as u64;
    (serde_json::from_slice(&body).expect("page json"), len)
}

async fn full_read(sandbox: &HubSpotSandbox, http: &reqwest::Client) -> Run {
    let started = Instant::now();
    let (mut records, mut requests, mut bytes) = (0u64, 0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/crm/v3/objects/contacts?limit=100&properties={PROPERTIES}",
            sandbox.base_url()
        );
        if let Some(a) = &after {
            url.push_str("&after=");
            url.push_str(a);
        }
        let (page, len) = get_json(http, &url, sandbox.token()).await;
        requests += 1;
        bytes += len;
        records += page["results"].as_array().map_or(0, |r| r.len() as u64);
        match page["paging"]["next"]["after"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    Run {
        wall: started.elapsed(),
        records,
        requests,
        bytes,
    }
}

async fn incremental_read(sandbox: &HubSpotSandbox, http: &reqwest::Client, cursor_ms: i64) -> Run {
    let started = Instant::now();
    let (mut records, mut requests, mut bytes) = (0u64, 0u64, 0u64);
    let mut after = "0".to_string();
    loop {
        let body = json!({
            "filterGroups": [{"filters": [
                {"propertyName": "lastmodifieddate", "operator": "GTE", "value": cursor_ms.to_string()}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": PROPERTIES.split(',').collect::<Vec<_>>(),
            "limit": 200,
            "after": after,
        });
        let reply = http
            .post(format!(
                "{}/crm/v3/objects/contacts/search",
                sandbox.base_url()
            ))
            .bearer_auth(sandbox.token())
            .json(&body)
            .send()
            .await
            .expect("search")
            .bytes()
            .await
            .expect("body");
        requests += 1;
        bytes += reply.len() as u64;
        let page: Value = serde_json::from_slice(&reply).expect("search json");
        records += page["results"].as_array().map_or(0, |r| r.len() as u64);
        match page["paging"]["next"]["after"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    Run {
        wall: started.elapsed(),
        records,
        requests,
        bytes,
    }
}

/// Generation alone (the seeded people, mapped to HubSpot records), for the floor's split.
fn generate_only(contacts: u32) -> Duration {
    let seeded = SeededContacts::new(Population::new(contacts, SEED));
    let started = Instant::now();
    let mut properties = 0usize;
    for index in 0..contacts {
        properties += seeded.record(index).stored_values().count();
    }
    assert!(properties > 0);
    started.elapsed()
}

/// The server's floor: generate every record and render it as the list page would.
fn generate_and_serialize(contacts: u32) -> Duration {
    let seeded = SeededContacts::new(Population::new(contacts, SEED));
    let schema = ObjectKind::Contacts.schema();
    let names: Vec<&str> = PROPERTIES.split(',').collect();
    let started = Instant::now();
    let mut page = Vec::with_capacity(100);
    let mut bytes = 0usize;
    for index in 0..contacts {
        page.push(seeded.record(index).to_json(schema, &names));
        if page.len() == 100 {
            bytes += serde_json::to_vec(&json!({"results": page})).map_or(0, |b| b.len());
            page = Vec::with_capacity(100);
        }
    }
    bytes += serde_json::to_vec(&json!({"results": page})).map_or(0, |b| b.len());
    assert!(bytes > 0);
    started.elapsed()
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
        vec![100_000]
    } else {
        sizes
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{:>9}  {:<12}  {:>9}  {:>8}  {:>7}  {:>10}  {:>13}  {:>6}  {:>8}",
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
        let floor = generate_and_serialize(contacts);
        let generation = generate_only(contacts);
        println!(
            "{contacts:>9}  floor split: generate {:.2}s, render+serialize {:.2}s",
            generation.as_secs_f64(),
            (floor.saturating_sub(generation)).as_secs_f64()
        );
        runtime.block_on(async {
            let sandbox = HubSpotSandbox::start(HubSpotSandboxConfig {
                contacts,
                seed: SEED,
                ..HubSpotSandboxConfig::default()
            })
            .await
            .expect("sandbox");
            let http = reqwest::Client::new();
            let full = full_read(&sandbox, &http).await;
            assert_eq!(full.records, u64::from(contacts));
            assert_eq!(sandbox.counters().get("hs.contacts.list"), full.requests);
            let print = |label: &str, run: &Run, floor: Option<Duration>| {
                let (floor_text, ratio) = match floor {
                    Some(f) => (
                        format!("{:.2}s", f.as_secs_f64()),
                        format!("{:.1}x", run.wall.as_secs_f64() / f.as_secs_f64()),
                    ),
                    None => ("-".to_string(), "-".to_string()),
                };
                println!(
                    "{:>9}  {:<12}  {:>8.3}s  {:>8}  {:>7.1}  {:>10.0}  {:>13}  {:>6}  {:>5.0} MB",
                    contacts,
                    label,
                    run.wall.as_secs_f64(),
                    run.requests,
                    run.bytes as f64 / 1e6,
                    run.records as f64 / run.wall.as_secs_f64(),
                    floor_text,
                    ratio,
                    peak_rss_mb(),
                );
            };
            print("full list", &full, Some(floor));

            // 1% edited CRM-side, spread over the id range; the cursor is the sandbox clock
            // before the edits (every seeded record is older).
            let cursor = sandbox.now_ms();
            let changed = (contacts / 100).max(1);
            let step = contacts / changed;
            for k in 0..changed {
                let id = HubSpotSandbox::contact_id(k * step);
                sandbox
                    .edit_contact(id, &[("notes", "edited for the bench")])
                    .expect("edit");
            }
            let incremental = incremental_read(&sandbox, &http, cursor).await;
            assert_eq!(incremental.records, u64::from(changed));
            print("1% search", &incremental, None);
        });
    }
}
