//! Deterministic, lazily generated CRM people for the sandbox servers.
//!
//! A [`Population`] of `N` contacts is a pure function of `(N, seed)`: [`Population::person`]
//! builds person `i` on demand from an RNG seeded with `(seed, i)`, so a million contacts cost
//! no memory until a page of them is served, and the same seed always yields the same data.
//!
//! The data is deliberately messy the way real CRM data is: phones in many national and
//! international formats, with extensions, a few invalid or missing, some numbers shared by
//! several records; emails with stray case and whitespace; optional fields left empty.
//!
//! Modification times are spread over the year before [`SANDBOX_EPOCH`] and are monotone in
//! the index with ties (every three consecutive people share a timestamp), so that a client's
//! `(timestamp, id)` tiebreak is exercised by real data, including across page boundaries.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The instant the sandbox clocks start at (2026-01-01T00:00:00Z). Seeded records were all
/// modified before it; every sandbox-side edit happens after it.
pub const SANDBOX_EPOCH_MS: i64 = 1_767_225_600_000;

/// How many consecutive people share one modification timestamp.
pub const TIE_GROUP: u32 = 3;

/// Seeded modification times cover this many seconds before the epoch (one year minus one hour).
const HISTORY_SECS: i64 = 365 * 86_400 - 3_600;

/// The sandbox epoch as a `DateTime`.
pub fn sandbox_epoch() -> DateTime<Utc> {
    Utc.timestamp_millis_opt(SANDBOX_EPOCH_MS)
        .single()
        .unwrap_or_default()
}

/// A lead status in CRM-neutral terms; each sandbox maps it to its own picklist values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeadStage {
    New,
    Working,
    Qualified,
    Unqualified,
}

impl LeadStage {
    /// The value of Salesforce's `Lead_Status__c` picklist for this stage.
    pub fn salesforce_value(self) -> &'static str {
        match self {
            LeadStage::New => "Open - Not Contacted",
            LeadStage::Working => "Working - Contacted",
            LeadStage::Qualified => "Closed - Converted",
            LeadStage::Unqualified => "Closed - Not Converted",
        }
    }
}

/// One generated person, as a CRM user would have typed them in.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Position in the population (0-based); also the order of `modified_ms`.
    pub index: u32,
    pub first_name: String,
    pub last_name: String,
    /// As entered: sometimes with capitals or surrounding spaces; `None` when not filled in.
    pub email: Option<String>,
    /// As entered, in one of many formats; a few are invalid; `None` when missing.
    pub phone: Option<String>,
    pub mobile_phone: Option<String>,
    pub title: Option<String>,
    /// `None` for a few records where nobody set a status.
    pub lead_stage: Option<LeadStage>,
    pub renewal_date: Option<NaiveDate>,
    /// Whole currency units.
    pub annual_revenue: Option<f64>,
    pub do_not_call: bool,
    pub notes: Option<String>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// `N` people generated from a seed. Cheap to copy; generates on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Population {
    len: u32,
    seed: u64,
}

impl Population {
    pub fn new(len: u32, seed: u64) -> Self {
        Population { len, seed }
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Modification time of person `i` in epoch milliseconds (whole seconds), without
    /// generating the person: monotone non-decreasing in `i`, ties in groups of [`TIE_GROUP`].
    pub fn modified_ms(&self, index: u32) -> i64 {
        let groups = i64::from(self.len.div_ceil(TIE_GROUP).max(1));
        let group = i64::from(index / TIE_GROUP);
        let offset_secs = group * HISTORY_SECS / groups;
        SANDBOX_EPOCH_MS - (HISTORY_SECS + 3_600) * 1_000 + offset_secs * 1_000
    }

    /// The latest seeded modification time (or the start of history for an empty population).
    pub fn last_modified_ms(&self) -> i64 {
        if self.len == 0 {
            self.modified_ms(0)
        } else {
            self.modified_ms(self.len - 1)
        }
    }

    /// Person `i` (any `i`, also beyond `len`; callers bound it).
    pub fn person(&self, index: u32) -> Person {
        let mut rng = self.rng_for(index);
        let first_name = pick(&mut rng, FIRST_NAMES).to_string();
        let last_name = pick(&mut rng, LAST_NAMES).to_string();
        let email = make_email(&mut rng, &first_name, &last_name, index);
        let phone = self.make_phone(&mut rng, index);
        let mobile_phone = if rng.gen_bool(0.25) {
            Some(format_us(
                &mut rng,
                self.phone_digits(self.len.saturating_add(index)),
            ))
        } else {
            None
        };
        let title = rng
            .gen_bool(0.6)
            .then(|| pick(&mut rng, TITLES).to_string());
        let lead_stage = match rng.gen_range(0..100) {
            0..=29 => Some(LeadStage::New),
            30..=59 => Some(LeadStage::Working),
            60..=74 => Some(LeadStage::Qualified),
            75..=94 => Some(LeadStage::Unqualified),
            _ => None,
        };
        let renewal_date = rng.gen_bool(0.4).then(|| {
            let days = rng.gen_range(-365..365);
            (sandbox_epoch() + Duration::days(days)).date_naive()
        });
        let annual_revenue = rng.gen_bool(0.5).then(|| {
            let exponent: f64 = rng.gen_range(4.0..7.5);
            (10f64.powf(exponent) / 100.0).round() * 100.0
        });
        let do_not_call = rng.gen_bool(0.05);
        let notes = rng.gen_bool(0.1).then(|| pick(&mut rng, NOTES).to_string());
        let modified_ms = self.modified_ms(index);
        let created_ms = modified_ms - rng.gen_range(0..400 * 86_400) * 1_000;
        Person {
            index,
            first_name,
            last_name,
            email,
            phone,
            mobile_phone,
            title,
            lead_stage,
            renewal_date,
            annual_revenue,
            do_not_call,
            notes,
            created_ms,
            modified_ms,
        }
    }

    /// A per-person RNG: independent of generation order, so person `i` is the same whether
    /// generated first or after a million others.
    fn rng_for(&self, index: u32) -> StdRng {
        StdRng::seed_from_u64(splitmix64(self.seed ^ splitmix64(u64::from(index))))
    }

    fn make_phone(&self, rng: &mut StdRng, index: u32) -> Option<String> {
        let roll = rng.gen_range(0..1000);
        // About 3% of records share the number of one of the few records before them
        // (duplicates in the CRM), typed in a possibly different format.
        let owner = if roll < 30 && index > 0 {
            index - rng.gen_range(1..=index.min(50))
        } else {
            index
        };
        match rng.gen_range(0..1000) {
            0..=19 => None,
            20..=34 => Some(pick(rng, INVALID_PHONES).to_string()),
            35..=54 => Some(format_uk(rng, owner)),
            _ => Some(format_us(rng, self.phone_digits(owner))),
        }
    }

    /// A distinct valid US number (area code, exchange, line) for each owner index.
    fn phone_digits(&self, owner: u32) -> (u16, u16, u16) {
        // An affine bijection on [0, 20 areas × 8,000,000 local numbers): the multiplier is
        // coprime to 2 and 5, so distinct owners get distinct numbers, and neighbours land far
        // apart (no "200-0001, 200-0002" runs).
        const LOCAL: u64 = 8_000_000;
        let space = AREA_CODES.len() as u64 * LOCAL;
        let offset = splitmix64(self.seed) % space;
        let mixed = (u64::from(owner).wrapping_mul(97_654_321) % space + offset) % space;
        let area = AREA_CODES[(mixed % AREA_CODES.len() as u64) as usize];
        let local = mixed / AREA_CODES.len() as u64;
        let exchange = 200 + (local / 10_000) as u16;
        let line = (local % 10_000) as u16;
        (area, exchange, line)
    }
}

fn format_us(rng: &mut StdRng, (area, exchange, line): (u16, u16, u16)) -> String {
    let base = match rng.gen_range(0..100) {
        0..=29 => format!("({area}) {exchange}-{line:04}"),
        30..=44 => format!("{area}-{exchange}-{line:04}"),
        45..=54 => format!("{area}.{exchange}.{line:04}"),
        55..=64 => format!("+1 {area}-{exchange}-{line:04}"),
        65..=74 => format!("+1{area}{exchange}{line:04}"),
        75..=82 => format!("{area} {exchange} {line:04}"),
        83..=89 => format!("{area}{exchange}{line:04}"),
        _ => format!("1-{area}-{exchange}-{line:04}"),
    };
    match rng.gen_range(0..100) {
        0..=1 => format!("{base} x{}", rng.gen_range(10..999)),
        2 => format!("{base} ext. {}", rng.gen_range(1..99)),
        _ => base,
    }
}

/// London numbers in Ofcom's range reserved for fiction (020 7946 0000–0999).
fn format_uk(rng: &mut StdRng, owner: u32) -> String {
    let line = owner % 1000;
    if rng.gen_bool(0.5) {
        format!("+44 20 7946 0{line:03}")
    } else {
        format!("+442079460{line:03}")
    }
}

fn make_email(rng: &mut StdRng, first: &str, last: &str, index: u32) -> Option<String> {
    if rng.gen_bool(0.1) {
        return None;
    }
    let domain = pick(rng, EMAIL_DOMAINS);
    let local = match rng.gen_range(0..3) {
        0 => format!("{}.{}{}", first, last, index),
        1 => format!("{}{}{}", &first[..1], last, index),
        _ => format!("{}_{}{}", first, last, index),
    };
    let email = format!("{local}@{domain}");
    Some(match rng.gen_range(0..20) {
        0 => format!(" {email} "),
        1 | 2 => email,
        _ => email.to_lowercase(),
    })
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const AREA_CODES: &[u16] = &[
    415, 212, 312, 617, 206, 303, 512, 404, 213, 646, 702, 615, 503, 971, 919, 305, 214, 713, 602,
    858,
];

const INVALID_PHONES: &[&str] = &[
    "555-0134",
    "n/a",
    "12345",
    "call front desk",
    "000-000-0000",
    "+1 (415) 55",
];

const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Sandra",
    "Mark",
    "Margaret",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Andrew",
    "Emily",
    "Paul",
    "Donna",
    "Joshua",
    "Michelle",
    "Kenji",
    "Aisha",
    "Mateo",
    "Priya",
    "Wei",
    "Fatima",
    "Lukas",
    "Sofia",
    "Olu",
    "Ines",
    "Dmitri",
    "Chloe",
    "Rahul",
    "Yuki",
    "Carlos",
    "Amara",
    "Noah",
    "Zoe",
    "Omar",
    "Hannah",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Okafor",
    "Tanaka",
    "Patel",
    "Kowalski",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Ivanova",
    "Chen",
    "Kim",
    "Haddad",
    "Novak",
    "O'Brien",
    "Van der Berg",
    "Silva",
];

const TITLES: &[&str] = &[
    "VP Sales",
    "Office Manager",
    "Head of Operations",
    "CTO",
    "Procurement Lead",
    "Owner",
    "Customer Success Manager",
    "Director of Marketing",
];

const EMAIL_DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "acme.test",
    "globex.test",
    "initech.test",
];

const NOTES: &[&str] = &[
    "Prefers calls after 3pm.",
    "Asked about annual billing.",
    "Met at the spring trade show.",
    "Gatekeeper: ask for the assistant first.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_people_other_seed_other_people() {
        let a = Population::new(1_000, 7);
        let b = Population::new(1_000, 7);
        let c = Population::new(1_000, 8);
        assert_eq!(a.person(123), b.person(123));
        let differs = (0..50).any(|i| a.person(i) != c.person(i));
        assert!(differs);
    }

    #[test]
    fn modified_times_are_monotone_with_ties_and_before_the_epoch() {
        let p = Population::new(10_000, 1);
        let mut ties = 0;
        for i in 1..p.len() {
            let (prev, cur) = (p.modified_ms(i - 1), p.modified_ms(i));
            assert!(prev <= cur, "not monotone at {i}");
            if prev == cur {
                ties += 1;
            }
            assert_eq!(cur % 1_000, 0, "whole seconds");
        }
        assert!(ties > 5_000, "ties: {ties}");
        assert!(p.last_modified_ms() < SANDBOX_EPOCH_MS);
        assert_eq!(p.person(42).modified_ms, p.modified_ms(42));
        assert!(p.person(42).created_ms <= p.person(42).modified_ms);
    }

    #[test]
    fn phones_are_messy_some_missing_some_invalid_some_shared() {
        let p = Population::new(5_000, 3);
        let phones: Vec<Option<String>> = (0..p.len()).map(|i| p.person(i).phone).collect();
        let missing = phones.iter().filter(|ph| ph.is_none()).count();
        let invalid = phones
            .iter()
            .flatten()
            .filter(|ph| INVALID_PHONES.contains(&ph.as_str()))
            .count();
        let national = phones
            .iter()
            .flatten()
            .filter(|ph| ph.starts_with('('))
            .count();
        let extensions = phones
            .iter()
            .flatten()
            .filter(|ph| ph.contains(" x") || ph.contains("ext."))
            .count();
        assert!((50..200).contains(&missing), "missing {missing}");
        assert!((30..150).contains(&invalid), "invalid {invalid}");
        assert!(national > 1_000, "national {national}");
        assert!(extensions > 20, "extensions {extensions}");
        // Shared numbers: compare digits only, since formats differ.
        let mut seen = std::collections::HashMap::new();
        let mut shared = 0;
        for ph in phones.iter().flatten() {
            let digits: String = ph.chars().filter(|c| c.is_ascii_digit()).collect();
            let key = digits.trim_start_matches('1').to_string();
            if key.len() >= 10 && seen.insert(key, ()).is_some() {
                shared += 1;
            }
        }
        assert!(shared > 50, "shared {shared}");
    }

    #[test]
    fn most_us_numbers_are_valid_and_distinct_owners_get_distinct_numbers() {
        let p = Population::new(2_000, 11);
        let mut digits = std::collections::HashSet::new();
        for owner in 0..p.len() {
            assert!(digits.insert(p.phone_digits(owner)), "owner {owner}");
        }
        let phones: Vec<String> = (0..p.len()).filter_map(|i| p.person(i).phone).collect();
        let valid = phones
            .iter()
            .filter(|ph| {
                phonenumber::parse(Some(phonenumber::country::Id::US), ph.as_str())
                    .map(|n| phonenumber::is_valid(&n))
                    .unwrap_or(false)
            })
            .count();
        let share = valid as f64 / phones.len() as f64;
        assert!((0.9..0.995).contains(&share), "valid share {share}");
    }
}
