//! Input generators shared by the end-to-end benchmarks (and the crash test): Salesforce-shaped
//! Contact records, generic conversation events, and the rule set they are evaluated with.
//!
//! Everything is deterministic in the record index (and a seed), so two runs see the same data
//! and the numbers are comparable.

#![allow(dead_code)] // each bench binary uses a different part of this module

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::{json, Value};

pub mod daemon_process;
pub mod sandbox_crm;

/// The rule set the benchmarks run: the example rule set of `docs/rule-language.md` (Salesforce connection active).
pub const RULES: &str = r#"
field email: string
field lead_status: enum [new, working, qualified, unqualified]
field interaction_summary: string "Running notes from conversations. Keep the ten most recent points."
field deal_size: number
field demo_requested: boolean
field renewal_date: date
field last_contacted_at: datetime

analysis {
  lead_qualification_status -> lead_status          overwrite
  email_address             -> email                fill_if_empty
  customer_notes            -> interaction_summary  merge
  conversation.end_time     -> last_contacted_at
  demo_requested            -> demo_requested       when conversation.successful
}

connection salesforce {
  object Contact
  inbound {
    Phone              -> phone_number
    FirstName          -> first_name
    LastName           -> last_name
    DoNotCall          -> do_not_call   when DoNotCall
    lower(trim(Email)) -> email
    Lead_Status__c     -> lead_status {
      "Open - Not Contacted" => new
      "Working - Contacted"  => working
      "Closed - Converted"   => qualified
      else                   => unqualified
    }
    AnnualRevenue      -> deal_size
    Renewal_Date__c    -> renewal_date           fill_if_empty
  }
  outbound {
    lead_status -> Lead_Status__c {
      new => "Open - Not Contacted"
      working => "Working - Contacted"
      qualified => "Closed - Converted"
      unqualified => "Closed - Not Converted"
    }
    interaction_summary -> Notes__c
  }
  activity {
    log calls
    log chats
  }
}
"#;

/// Writes [`RULES`] as `dir/contacts.rules`.
pub fn write_rules(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("contacts.rules"), RULES)
}

const AREA_CODES: [&str; 10] = [
    "212", "415", "646", "718", "312", "617", "213", "305", "404", "512",
];
const FIRST_NAMES: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const LAST_NAMES: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];
const STATUSES: [&str; 5] = [
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
    "Nurturing",
];

/// A distinct, valid US number for every index below 80 million: (AAA) EEE-LLLL with a real
/// area code and an exchange in 200..999.
pub fn national_phone(index: u64) -> (String, String, String) {
    let area = AREA_CODES[(index % 10) as usize];
    let rest = index / 10;
    let exchange = 200 + (rest / 10_000) % 800;
    let line = rest % 10_000;
    (area.to_string(), exchange.to_string(), format!("{line:04}"))
}

/// The E.164 form of [`national_phone`].
pub fn e164(index: u64) -> String {
    let (a, e, l) = national_phone(index);
    format!("+1{a}{e}{l}")
}

/// The Salesforce record id for an index (18 characters, `003` prefix as for Contacts).
pub fn salesforce_id(index: u64) -> String {
    format!("003{index:015}")
}

/// One Contact as Salesforce's query API returns it. Every 100th record has no phone (it must
/// be skipped and reported); phone formats vary as real CRM data does.
pub fn salesforce_record(index: u64) -> Value {
    let id = salesforce_id(index);
    let (a, e, l) = national_phone(index);
    let phone = match index % 100 {
        99 => Value::Null,
        n if n % 3 == 0 => json!(format!("({a}) {e}-{l}")),
        n if n % 3 == 1 => json!(format!("+1 {a}-{e}-{l}")),
        _ => json!(format!("{a}.{e}.{l}")),
    };
    let first = FIRST_NAMES[(index % 8) as usize];
    let last = LAST_NAMES[(index / 8 % 8) as usize];
    let minute = index % 60;
    let modified = format!("2024-03-{:02}T10:{minute:02}:00.000+0000", 1 + index % 28);
    json!({
        "attributes": {"type": "Contact", "url": format!("/services/data/v60.0/sobjects/Contact/{id}")},
        "Id": id,
        "FirstName": first,
        "LastName": last,
        "Phone": phone,
        "Email": format!("  {}.{}{index}@Example.COM ", first, last),
        "DoNotCall": index.is_multiple_of(17),
        "Lead_Status__c": STATUSES[(index % 5) as usize],
        "AnnualRevenue": (index % 1000) as f64 * 1250.0,
        "Renewal_Date__c": if index.is_multiple_of(4) { Value::Null } else { json!(format!("2025-{:02}-{:02}", 1 + index % 12, 1 + index % 28)) },
        "Title": "Head of Operations",
        "MailingCity": "San Francisco",
        "AccountId": format!("001{:015}", index / 3),
        "CreatedDate": "2023-01-05T09:00:00.000+0000",
        "LastModifiedDate": modified,
        "SystemModstamp": modified,
        "IsDeleted": false,
    })
}

/// Writes records `0..count` as one JSON array (the `crmsync import` input), streaming, so
/// generating a million records needs no more memory than one record.
pub fn write_salesforce_file(path: &Path, count: u64) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    out.write_all(b"[\n")?;
    for index in 0..count {
        if index > 0 {
            out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut out, &salesforce_record(index))?;
    }
    out.write_all(b"\n]\n")?;
    // On disk before anyone times a read of it: the kernel writing back 600 MB of dirty pages
    // would otherwise compete with the import being measured.
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()
}

/// A generic conversation event (`src/event.rs`, `docs/sync-semantics.md`) for contact `contact_index`, with id
/// `conv-{serial}`.
pub fn conversation_event(serial: u64, contact_index: u64) -> Value {
    let direction = if serial.is_multiple_of(2) {
        "inbound"
    } else {
        "outbound"
    };
    let contact = e164(contact_index);
    let agent = "+14155550100";
    let (from, to) = if direction == "inbound" {
        (contact.as_str(), agent)
    } else {
        (agent, contact.as_str())
    };
    let start = 1_717_000_000_000i64 + serial as i64 * 60_000;
    let lead_status = ["new", "working", "qualified"][(serial % 3) as usize];
    json!({
        "id": format!("conv-{serial}"),
        "kind": if serial % 5 == 4 { "chat" } else { "call" },
        "direction": direction,
        "from_number": from,
        "to_number": to,
        "start_time": start,
        "end_time": start + 45_000,
        "duration_ms": 45_000,
        "summary": format!("Caller asked about plan {} and pricing.", serial % 7),
        "sentiment": "Positive",
        "successful": !serial.is_multiple_of(3),
        "disconnection_reason": "user_hangup",
        "analysis": {
            "lead_qualification_status": lead_status,
            "email_address": format!("caller{contact_index}@example.com"),
            "demo_requested": serial.is_multiple_of(2),
        },
    })
}
