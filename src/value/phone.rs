//! Phone numbers: parse free-form CRM text and format it as E.164, with a default region for
//! numbers written without a country code.
//!
//! Parsing and validation use the `phonenumber` crate (Google libphonenumber metadata). It has
//! known defects (whisperfish/rust-phonenumber #100, #31, #30, #29), so
//! this module guards it on both sides rather than trusting its output:
//! - letters are refused up front (the crate maps `a` to `2` like a keypad, #100): a CRM value
//!   with letters is a typo or a vanity number, and a key must never be guessed;
//! - extensions (`x123`, `ext. 4`, `#5`, `;ext=6`) are cut off first: a contact is keyed by the
//!   line, not the extension;
//! - an `00` international prefix (and `011` in NANP regions) is rewritten to `+` (#29);
//! - the result must be a *valid* number for its country and at most 15 digits (#31), and
//!   its national digits must appear, in order, at the end of the input digits — catching a
//!   digit silently dropped when the wrong region's national prefix is stripped (#30).
//!
//! `rlibphonenumber` was considered; it is younger and its published figures disagree between
//! its own README versions, so the better-known crate plus these guards was preferred.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;

mod validity;

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("unknown region {0:?} (expected an ISO 3166 code such as US or GB)")]
    UnknownRegion(String),
    #[error("the phone number is empty")]
    Empty,
    #[error("{0:?} contains letters; vanity or misspelt numbers are not guessed")]
    Letters(String),
    #[error("{0:?} contains characters a phone number cannot have")]
    BadCharacters(String),
    #[error("{0:?} has more than 15 digits")]
    TooLong(String),
    #[error("{input:?} is not a valid phone number ({why})")]
    Invalid { input: String, why: String },
}

/// Normalizes phone numbers to E.164 for one default region.
///
/// Results are memoized (bounded): libphonenumber-style parsing costs microseconds, and the same
/// numbers come back constantly — the engine reads a record's phone to find the contact and
/// again when applying its mappings, incremental syncs re-read the same records, and every
/// conversation names a number already seen. The memo is shared by clones.
#[derive(Debug, Clone)]
pub struct PhoneNormalizer {
    region: Id,
    region_code: String,
    /// The default region's country calling code (1 for US).
    calling_code: u16,
    memo: Arc<Memo>,
}

/// Input text → result, cleared when full (simple, and the working set is usually small).
#[derive(Debug, Default)]
struct Memo {
    capacity: usize,
    map: Mutex<HashMap<Box<str>, Result<String, PhoneError>>>,
}

/// Default number of memoized phone numbers.
pub const DEFAULT_MEMO_CAPACITY: usize = 65_536;

impl Default for PhoneNormalizer {
    fn default() -> Self {
        // "US" is always in the metadata.
        PhoneNormalizer {
            region: Id::US,
            region_code: "US".to_string(),
            calling_code: 1,
            memo: Arc::new(Memo {
                capacity: DEFAULT_MEMO_CAPACITY,
                map: Mutex::default(),
            }),
        }
    }
}

impl PhoneNormalizer {
    /// A normalizer for `region` (ISO 3166-1 alpha-2, any case).
    pub fn new(region: &str) -> Result<PhoneNormalizer, PhoneError> {
        let code = region.trim().to_ascii_uppercase();
        let id: Id = code
            .parse()
            .map_err(|_| PhoneError::UnknownRegion(region.to_string()))?;
        let meta = DATABASE
            .by_id(id.as_ref())
            .ok_or_else(|| PhoneError::UnknownRegion(region.to_string()))?;
        Ok(PhoneNormalizer {
            region: id,
            region_code: code,
            calling_code: meta.country_code(),
            memo: Arc::new(Memo {
                capacity: DEFAULT_MEMO_CAPACITY,
                map: Mutex::default(),
            }),
        })
    }

    /// The same normalizer with a memo of `capacity` numbers (0: no memo).
    pub fn with_memo_capacity(mut self, capacity: usize) -> PhoneNormalizer {
        self.memo = Arc::new(Memo {
            capacity,
            map: Mutex::default(),
        });
        self
    }

    /// How many normalizations are memoized (0: none).
    pub fn memo_capacity(&self) -> usize {
        self.memo.capacity
    }

    /// The default region's ISO code.
    pub fn region(&self) -> &str {
        &self.region_code
    }

    /// `input` as E.164 (`+14155550123`).
    pub fn normalize(&self, input: &str) -> Result<String, PhoneError> {
        // The shortcut costs less than a memo lookup, and memoizing its answers would only
        // churn the memo during a bulk import of distinct numbers.
        if let Some(e164) = self.nanp_shortcut(input) {
            return Ok(e164);
        }
        if self.memo.capacity == 0 {
            return self.normalize_uncached(input);
        }
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        if let Some(hit) = self
            .memo
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(input)
        {
            return hit.clone();
        }
        let result = self.normalize_uncached(input);
        let mut map = self.memo.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.memo.capacity {
            map.clear();
        }
        map.insert(input.into(), result.clone());
        result
    }

    fn normalize_uncached(&self, input: &str) -> Result<String, PhoneError> {
        self.normalize_with(input, parse_checked)
    }

    /// A valid North American number in a plain notation (`(415) 555-0123`, `415.555.0123`,
    /// `1 415 555 0123`, `+1 415-555-0123`), answered without the crate's parser: its
    /// national number is the 10 digits after an optional leading `1`, so only the validity
    /// check is needed. `None` (ask the full path) for anything else, including every invalid
    /// number, so errors keep one source. WHY: the crate's parse was ~10% of a file import's
    /// samples, and most CRM numbers in a NANP deployment look like this. `phone::tests`
    /// compares the answers with the crate's on many thousands of generated inputs.
    fn nanp_shortcut(&self, input: &str) -> Option<String> {
        let line = input.trim();
        let (plus, rest) = match line.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        if !plus && self.calling_code != 1 {
            return None;
        }
        let mut digits = [0u8; 11];
        let mut count = 0;
        for byte in rest.bytes() {
            match byte {
                b'0'..=b'9' => {
                    *digits.get_mut(count)? = byte;
                    count += 1;
                }
                b' ' | b'-' | b'.' | b'(' | b')' => {}
                _ => return None,
            }
        }
        let national = match (plus, count, digits[0]) {
            (_, 11, b'1') => &digits[1..11],
            (false, 10, _) => &digits[..10],
            _ => return None,
        };
        if !(b'2'..=b'9').contains(&national[0]) {
            return None;
        }
        let national = std::str::from_utf8(national).ok()?;
        (validity::is_valid_for_code(1, national) == Some(true)).then(|| format!("+1{national}"))
    }

    /// The normalization, with the crate-facing step passed in so tests can run the same
    /// steps around the crate's own (slower) calls and compare.
    fn normalize_with(
        &self,
        input: &str,
        parse_checked: impl Fn(&str, Option<Id>, &str) -> Result<String, &'static str>,
    ) -> Result<String, PhoneError> {
        let line = strip_extension(input).trim();
        if line.is_empty() {
            return Err(PhoneError::Empty);
        }
        if line.chars().any(char::is_alphabetic) {
            return Err(PhoneError::Letters(input.to_string()));
        }
        if line
            .chars()
            .any(|c| !(c.is_ascii_digit() || " +-.()/\u{a0}".contains(c)))
        {
            return Err(PhoneError::BadCharacters(input.to_string()));
        }
        let digits: String = line.chars().filter(char::is_ascii_digit).collect();
        if digits.len() > 15 {
            return Err(PhoneError::TooLong(input.to_string()));
        }
        let plus = line.starts_with('+');
        if line[1..].contains('+') || (!plus && line.contains('+')) {
            return Err(PhoneError::BadCharacters(input.to_string()));
        }
        // International prefixes the crate does not understand become `+` (#29).
        let (international, digits) = if plus {
            (true, digits.as_str())
        } else if let Some(rest) = digits.strip_prefix("00") {
            (true, rest)
        } else if self.calling_code == 1 && digits.starts_with("011") {
            (true, &digits[3..])
        } else {
            (false, digits.as_str())
        };
        if international {
            return parse_checked(&format!("+{digits}"), None, digits)
                .map_err(|why| invalid(input, why));
        }
        // National input. The crate strips a leading copy of the country code even when that
        // ruins the number (#68: Italian `3912312312`); then retry with the code prepended.
        parse_checked(digits, Some(self.region), digits)
            .or_else(|first| {
                parse_checked(&format!("+{}{digits}", self.calling_code), None, digits)
                    .map_err(|_| first)
            })
            .map_err(|why| invalid(input, why))
    }
}

fn invalid(input: &str, why: &str) -> PhoneError {
    PhoneError::Invalid {
        input: input.to_string(),
        why: why.to_string(),
    }
}

/// Parse with the crate, then insist on validity and that no input digit was lost.
fn parse_checked(text: &str, region: Option<Id>, digits: &str) -> Result<String, &'static str> {
    let number = phonenumber::parse(region, text).map_err(|_| "not a phone number")?;
    let national = number.national().to_string();
    // `number.is_valid()`, without the crate's global regex-cache lock and hashing.
    if !validity::is_valid(&number, &national) {
        return Err("no such number in its country's numbering plan");
    }
    // Every national digit must come from the input, in order, at its end (#30): the crate
    // may drop a digit it took for a national prefix.
    if !digits.ends_with(&national) {
        return Err("digits were lost while parsing");
    }
    // What `number.format().mode(Mode::E164)` prints; the crate's formatter would also pick
    // a national format by regex first, which E.164 never uses.
    let e164 = format!("+{}{national}", number.country().code());
    if e164.len() > 16 {
        return Err("more than 15 digits");
    }
    Ok(e164)
}

/// Cut an extension off: `x123`, `ext 4`, `ext. 4`, `extension 4`, `#5`, `;ext=6`.
fn strip_extension(input: &str) -> &str {
    // Every marker has a letter, `#` or `;`: most CRM numbers have none, so skip the search.
    if !input
        .bytes()
        .any(|b| b.is_ascii_alphabetic() || b == b'#' || b == b';')
    {
        return input;
    }
    let lower = input.to_ascii_lowercase();
    let mut cut = input.len();
    for marker in [";ext=", "extension", "ext.", "ext", "#", "x"] {
        if let Some(at) = lower.find(marker) {
            // Only when digits follow: "x" inside a word is a letter, not an extension.
            let rest = lower[at + marker.len()..].trim_start_matches([' ', '.', ':']);
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                cut = cut.min(at);
            }
        }
    }
    &input[..cut]
}

/// Normalize with a region given by code; a convenience for one-off calls.
pub fn normalize(input: &str, region: &str) -> Result<String, PhoneError> {
    PhoneNormalizer::new(region)?.normalize(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// `parse_checked` as it was before the fast paths: every answer from the crate itself.
    fn parse_checked_by_crate(
        text: &str,
        region: Option<Id>,
        digits: &str,
    ) -> Result<String, &'static str> {
        let number = phonenumber::parse(region, text).map_err(|_| "not a phone number")?;
        if !number.is_valid() {
            return Err("no such number in its country's numbering plan");
        }
        let national = number.national().to_string();
        if !digits.ends_with(&national) {
            return Err("digits were lost while parsing");
        }
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        if e164.len() > 16 {
            return Err("more than 15 digits");
        }
        Ok(e164)
    }

    /// `strip_extension` without its early return.
    fn strip_extension_always(input: &str) -> &str {
        let lower = input.to_ascii_lowercase();
        let mut cut = input.len();
        for marker in [";ext=", "extension", "ext.", "ext", "#", "x"] {
            if let Some(at) = lower.find(marker) {
                let rest = lower[at + marker.len()..].trim_start_matches([' ', '.', ':']);
                if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                    cut = cut.min(at);
                }
            }
        }
        &input[..cut]
    }

    /// A phone-like text: a real example number of some region (often with digits changed,
    /// cut or added) or random digits, written with or without its country code in one of
    /// the notations CRMs hold, sometimes with an extension, a letter or a stray character.
    fn random_phone(rng: &mut StdRng, metas: &[&phonenumber::metadata::Metadata]) -> String {
        let meta = metas[rng.gen_range(0..metas.len())];
        let d = meta.descriptors();
        let examples: Vec<&str> = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.voip(),
            d.uan(),
            Some(d.general()),
        ]
        .into_iter()
        .flatten()
        .filter_map(|x| x.example())
        .collect();
        let mut national: Vec<u8> = if examples.is_empty() || rng.gen_bool(0.15) {
            let len = rng.gen_range(3..15);
            (0..len).map(|_| b'0' + rng.gen_range(0..10)).collect()
        } else {
            examples[rng.gen_range(0..examples.len())].bytes().collect()
        };
        match rng.gen_range(0..10) {
            0..=3 => {}
            4..=6 => {
                // Change the line digits (keeps the number's shape, often still valid).
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(national.len().saturating_sub(4)..national.len());
                    national[at] = b'0' + rng.gen_range(0..10);
                }
            }
            7 => {
                let at = rng.gen_range(0..national.len());
                national[at] = b'0' + rng.gen_range(0..10);
            }
            8 => national.push(b'0' + rng.gen_range(0..10)),
            _ => {
                national.pop();
            }
        }
        let national = String::from_utf8(national).unwrap_or_default();
        let code = meta.country_code();
        let spaced: String = national
            .chars()
            .enumerate()
            .flat_map(|(i, c)| [(i > 0 && i % 3 == 0).then_some(' '), Some(c)])
            .flatten()
            .collect();
        let mut text = match rng.gen_range(0..9) {
            0 => format!("+{code}{national}"),
            1 => format!("+{code} {spaced}"),
            2 => format!("00{code}{national}"),
            3 => format!("011 {code} {spaced}"),
            4 => national.clone(),
            5 => format!("0{national}"),
            6 if national.len() > 6 => format!(
                "({}) {}-{}",
                &national[..3],
                &national[3..6],
                &national[6..]
            ),
            7 => format!("{code}{}", national.replace("", ".").trim_matches('.')),
            _ => format!("{code}{national}"),
        };
        match rng.gen_range(0..20) {
            0 => text.push_str(" x12"),
            1 => text.push_str(" ext. 7"),
            2 => text.push_str("#3"),
            3 => text.push('a'),
            4 => text.insert(0, '+'),
            5 => text.push('*'),
            _ => {}
        }
        text
    }

    #[test]
    fn fast_paths_answer_exactly_as_the_crate() {
        let metas: Vec<&phonenumber::metadata::Metadata> = DATABASE.iter().collect();
        let mut regions: Vec<PhoneNormalizer> = ["US", "CA", "GB", "IT", "BE", "DE", "FR", "AU"]
            .into_iter()
            .chain([
                "IN", "BR", "JP", "MX", "DO", "JM", "NL", "CH", "AR", "RU", "CN",
            ])
            .map(|r| PhoneNormalizer::new(r).unwrap().with_memo_capacity(0))
            .collect();
        regions.push(PhoneNormalizer::default().with_memo_capacity(0));
        let mut rng = StdRng::seed_from_u64(0x5eed_1234);
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..4_000 {
            let text = random_phone(&mut rng, &metas);
            let normalizer = &regions[rng.gen_range(0..regions.len())];
            let fast = normalizer.normalize(&text);
            let slow = normalizer.normalize_with(&text, parse_checked_by_crate);
            assert_eq!(fast, slow, "{text:?} in {}", normalizer.region());
            assert_eq!(
                strip_extension(&text),
                strip_extension_always(&text),
                "{text:?}"
            );
            match fast {
                Ok(_) => valid += 1,
                Err(_) => invalid += 1,
            }
        }
        // The inputs must exercise both answers in earnest.
        assert!(
            valid > 600 && invalid > 600,
            "{valid} valid, {invalid} invalid"
        );
    }

    #[test]
    fn the_nanp_shortcut_answers_exactly_as_the_crate() {
        let regions: Vec<PhoneNormalizer> = ["US", "CA", "JM", "GB", "DE"]
            .into_iter()
            .map(|r| PhoneNormalizer::new(r).unwrap().with_memo_capacity(0))
            .collect();
        let mut rng = StdRng::seed_from_u64(7);
        let (mut short, mut total) = (0, 0);
        for _ in 0..20_000 {
            let len = rng.gen_range(9..13);
            let d: String = (0..len)
                .map(|i| {
                    // Mostly plausible area codes and exchanges, sometimes anything.
                    let low = if (i == 0 || i == 3) && rng.gen_bool(0.8) {
                        2
                    } else {
                        0
                    };
                    char::from(b'0' + rng.gen_range(low..10))
                })
                .collect();
            let text = match rng.gen_range(0..8) {
                0 => d.clone(),
                1 => format!("+{d}"),
                2 => format!("1{d}"),
                3 => format!("+1 {d}"),
                4 if d.len() >= 10 => format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..]),
                5 if d.len() >= 10 => format!("{}.{}.{}", &d[..3], &d[3..6], &d[6..]),
                6 if d.len() >= 10 => format!(" 1-{}-{}-{} ", &d[..3], &d[3..6], &d[6..]),
                _ => format!("+1 ({}) {}", &d[..3], &d[3..]),
            };
            let normalizer = &regions[rng.gen_range(0..regions.len())];
            let fast = normalizer.normalize(&text);
            let slow = normalizer.normalize_with(&text, parse_checked_by_crate);
            assert_eq!(fast, slow, "{text:?} in {}", normalizer.region());
            total += 1;
            short += usize::from(normalizer.nanp_shortcut(&text).is_some());
        }
        // The shortcut must have answered a good share, and the full path the rest.
        assert!(
            short > 1_000 && total - short > 10_000,
            "{short} of {total}"
        );
    }

    #[test]
    fn validity_matches_the_crate_on_shared_calling_codes() {
        // +1 numbers go through the NANP regions' leading digits (US, CA, the Caribbean...),
        // +7 through RU/KZ, +44 through GB/GG/IM/JE: random area codes reach all of them.
        let mut rng = StdRng::seed_from_u64(42);
        let (mut valid, mut total) = (0, 0);
        // Single-region codes too (DE, FR, JP, BR, IN, CN): every region's number types are
        // asked through one combined pattern per length (`validity.rs`).
        const CODES: [(u16, usize); 13] = [
            (1, 10),
            (7, 10),
            (44, 10),
            (47, 8),
            (61, 9),
            (39, 10),
            (262, 9),
            (49, 10),
            (33, 9),
            (81, 10),
            (55, 11),
            (91, 10),
            (86, 11),
        ];
        // `PHONE_VALIDITY_SAMPLES=100000` for a deeper check (the crate's side is slow).
        let samples: usize = std::env::var("PHONE_VALIDITY_SAMPLES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(6_000);
        for _ in 0..samples {
            let (code, len) = CODES[rng.gen_range(0..CODES.len())];
            let len = len + rng.gen_range(0..3) - 1;
            let digits: String = (0..len)
                .map(|i| {
                    let low = if i == 0 { 1 } else { 0 };
                    char::from(b'0' + rng.gen_range(low..10))
                })
                .collect();
            let Ok(number) = phonenumber::parse(None, format!("+{code}{digits}")) else {
                continue;
            };
            let national = number.national().to_string();
            let fast = validity::is_valid(&number, &national);
            assert_eq!(fast, number.is_valid(), "+{code}{digits}");
            valid += usize::from(fast);
            total += 1;
        }
        assert!(valid > 300 && total - valid > 300, "{valid} of {total}");
    }

    fn us(s: &str) -> Result<String, PhoneError> {
        let cold = PhoneNormalizer::default()
            .with_memo_capacity(0)
            .normalize(s);
        // The memo must never change an answer: ask a memoizing normalizer twice.
        let warm = PhoneNormalizer::default().with_memo_capacity(2);
        assert_eq!(warm.normalize(s), cold);
        assert_eq!(warm.normalize(s), cold);
        cold
    }

    #[test]
    fn memo_is_bounded() {
        let p = PhoneNormalizer::default().with_memo_capacity(2);
        for n in ["4155550132", "4155550133", "4155550134", "4155550135"] {
            assert!(p.normalize(n).is_ok());
        }
        assert!(p.memo.map.lock().unwrap().len() <= 2);
    }

    #[test]
    fn national_formats_use_the_default_region() {
        for s in [
            "(415) 555-0132",
            "415-555-0132",
            "415.555.0132",
            "4155550132",
            "1 415 555 0132",
            "+1 415 555 0132",
            "+14155550132",
        ] {
            assert_eq!(us(s).as_deref(), Ok("+14155550132"), "{s}");
        }
        let gb = PhoneNormalizer::new("gb").unwrap();
        assert_eq!(
            gb.normalize("020 7946 0018").as_deref(),
            Ok("+442079460018")
        );
        assert_eq!(gb.normalize("07911 123456").as_deref(), Ok("+447911123456"));
    }

    #[test]
    fn letters_are_refused_not_mapped_to_digits() {
        // rust-phonenumber #100 turns the `a` into a 2.
        assert!(matches!(us("+3367a829916"), Err(PhoneError::Letters(_))));
        assert!(matches!(us("1-800-FLOWERS"), Err(PhoneError::Letters(_))));
        assert!(matches!(us("call me"), Err(PhoneError::Letters(_))));
    }

    #[test]
    fn over_long_numbers_are_refused() {
        // #31: accepted as valid by the crate alone.
        assert!(us("+1415555013212345").is_err());
        assert!(us("+14155550132999").is_err());
        assert!(us("41555501329").is_err());
    }

    #[test]
    fn double_zero_and_011_prefixes() {
        // #29.
        assert_eq!(us("0032474123456").as_deref(), Ok("+32474123456"));
        assert_eq!(us("011 32 474 12 34 56").as_deref(), Ok("+32474123456"));
        let be = PhoneNormalizer::new("BE").unwrap();
        assert_eq!(
            be.normalize("00 1 415 555 0132").as_deref(),
            Ok("+14155550132")
        );
        assert_eq!(be.normalize("0474 12 34 56").as_deref(), Ok("+32474123456"));
    }

    #[test]
    fn no_digit_is_dropped_with_the_wrong_region() {
        // #68/#30: an Italian mobile starting with 39, parsed with region IT, keeps every digit.
        let it = PhoneNormalizer::new("IT").unwrap();
        assert_eq!(it.normalize("3912312312").as_deref(), Ok("+393912312312"));
        // A US-shaped number under region GB is not silently shortened into some valid number.
        let gb = PhoneNormalizer::new("GB").unwrap();
        if let Ok(e164) = gb.normalize("4155550132") {
            assert!(e164.ends_with("4155550132"), "{e164}");
        }
    }

    #[test]
    fn extensions_are_stripped() {
        for s in [
            "415-555-0132 x123",
            "415-555-0132 ext. 45",
            "415-555-0132 ext 45",
            "415-555-0132 extension 9",
            "415-555-0132#77",
            "+1-415-555-0132;ext=6",
        ] {
            assert_eq!(us(s).as_deref(), Ok("+14155550132"), "{s}");
        }
    }

    #[test]
    fn garbage_and_invalid_numbers() {
        assert_eq!(us(""), Err(PhoneError::Empty));
        assert_eq!(us("   "), Err(PhoneError::Empty));
        assert!(us("555-0132").is_err()); // too short for the US
        assert!(us("+1 000 555 0132").is_err()); // no such area code
        assert!(us("415*555*0132").is_err());
        assert!(us("+1+4155550132").is_err());
        assert!(matches!(
            PhoneNormalizer::new("XX"),
            Err(PhoneError::UnknownRegion(_))
        ));
    }
}
