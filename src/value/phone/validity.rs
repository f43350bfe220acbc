//! `PhoneNumber::is_valid` of the `phonenumber` crate, answered from the same metadata with the
//! patterns compiled once.
//!
//! WHY: the crate keeps its compiled patterns in one global LRU cache behind one mutex, keyed by
//! the pattern text. Every match locks it (serializing all threads), hashes the pattern (often
//! kilobytes) with SipHash and compares it with memcmp; validating one US number does that a
//! dozen times. Profiles of `crmsync import` put this at ~9% of all samples.
//!
//! The answer must stay the crate's answer exactly, so this mirrors `validator::is_valid_with`,
//! `source_for` and `number_type` step by step (same metadata, same pattern text and flags, same
//! "match found at offset 0" test, same possible-length filter). Anything this module cannot
//! mirror with certainty (a pattern that does not compile here, a region the metadata cannot
//! resolve) falls back to the crate itself. `phone::tests` compares
//! both on many thousands of generated numbers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use phonenumber::country::Id;
use phonenumber::metadata::{Database, Descriptor, Metadata, DATABASE};
use phonenumber::PhoneNumber;
use regex::Regex;

/// Whether the crate would call `number` valid; `national` is `number.national().to_string()`.
pub(super) fn is_valid(number: &PhoneNumber, national: &str) -> bool {
    match code_entry(number.country().code()).as_ref() {
        CodeEntry::Mirrored(source) => source
            .is_valid(national)
            .unwrap_or_else(|| number.is_valid()),
        CodeEntry::Crate => number.is_valid(),
    }
}

/// Whether a national number of calling code `code` is valid, answered from the mirrored
/// metadata; `None` where only the crate can answer (it needs a parsed number then).
pub(super) fn is_valid_for_code(code: u16, national: &str) -> Option<bool> {
    match code_entry(code).as_ref() {
        CodeEntry::Mirrored(source) => source.is_valid(national),
        CodeEntry::Crate => None,
    }
}

/// One entry per country calling code, built on first use (building compiles nothing; each
/// pattern compiles the first time it is needed).
fn code_entry(code: u16) -> Arc<CodeEntry> {
    static CODES: OnceLock<RwLock<HashMap<u16, Arc<CodeEntry>>>> = OnceLock::new();
    let codes = CODES.get_or_init(RwLock::default);
    if let Some(entry) = codes
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&code)
    {
        return entry.clone();
    }
    let entry = Arc::new(CodeEntry::build(&DATABASE, code));
    codes
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(code)
        .or_insert(entry)
        .clone()
}

enum CodeEntry {
    Mirrored(Source),
    /// Ask the crate (see the module comment).
    Crate,
}

/// `source_for`: which region's metadata judges a national number of this code.
enum Source {
    /// The code has no metadata, or its only region id does not parse: never valid.
    None,
    /// One region (or the non-geographic `001` entry): it judges every number.
    Single(Region),
    /// Several regions sharing the code (NANP: US, CA, the Caribbean...), tried in order.
    Shared(Vec<SharedRegion>),
}

struct SharedRegion {
    /// Claims a number whose national digits it matches at offset 0.
    leading_digits: Option<Pattern>,
    /// Without leading digits, claims a number it finds a type for. (The crate then looks
    /// the region up again by its parsed id; `build` checks that finds this same metadata.)
    region: Region,
}

impl Source {
    /// `None` when a pattern does not compile here (the crate answers instead).
    fn is_valid(&self, national: &str) -> Option<bool> {
        match self {
            Source::None => Some(false),
            Source::Single(region) => region.has_type(national),
            Source::Shared(regions) => {
                for shared in regions {
                    match &shared.leading_digits {
                        Some(leading) => {
                            if leading.matches_at_start(national)? {
                                return shared.region.has_type(national);
                            }
                        }
                        None => {
                            if shared.region.has_type(national)? {
                                return Some(true);
                            }
                        }
                    }
                }
                Some(false)
            }
        }
    }
}

impl CodeEntry {
    fn build(database: &'static Database, code: u16) -> CodeEntry {
        let Some(regions) = database.region(&code) else {
            return CodeEntry::Mirrored(Source::None);
        };
        if regions.len() == 1 {
            let meta = if regions[0] == "001" {
                database.by_code(&code).and_then(|m| m.into_iter().next())
            } else {
                match regions[0].parse::<Id>() {
                    Ok(id) => database.by_id(id.as_ref()),
                    Err(_) => return CodeEntry::Mirrored(Source::None),
                }
            };
            return match meta {
                None => CodeEntry::Mirrored(Source::None),
                Some(meta) => CodeEntry::Mirrored(Source::Single(Region::new(meta))),
            };
        }
        let mut shared = Vec::with_capacity(regions.len());
        for name in regions {
            let Some(meta) = database.by_id(name) else {
                return CodeEntry::Crate;
            };
            // The crate judges the claimed number by `by_id(name.parse::<Id>())`: only mirror
            // it when that is the metadata in hand.
            let same = name
                .parse::<Id>()
                .ok()
                .and_then(|id| database.by_id(id.as_ref()))
                .is_some_and(|again| std::ptr::eq(again, meta));
            if !same {
                return CodeEntry::Crate;
            }
            shared.push(SharedRegion {
                leading_digits: meta.leading_digits().map(|p| Pattern::new(p.as_str())),
                region: Region::new(meta),
            });
        }
        CodeEntry::Mirrored(Source::Shared(shared))
    }
}

/// A region's descriptors, as `number_type` consults them.
struct Region {
    general: Desc,
    /// Premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail, fixed
    /// line, mobile. `number_type` is not `Unknown` exactly when the general descriptor
    /// matches and one of these does (fixed line returns a type whatever mobile says).
    types: Vec<Desc>,
    /// Per national number length, the `types` allowing that length as ONE pattern: it matches
    /// at offset 0 exactly when one of theirs does (an alternation matches at 0 iff one of its
    /// branches does). WHY: a valid number used to run up to ten searches here, one per type;
    /// that was a tenth of a file import's reading thread.
    any_type: Vec<OnceLock<AnyType>>,
}

/// National number lengths with a combined type pattern; longer ones ask each type.
const LENGTHS: usize = 18;

enum AnyType {
    /// No type allows the length.
    NoneAllowed,
    Combined(Pattern),
}

impl Region {
    fn new(meta: &'static Metadata) -> Region {
        let d = meta.descriptors();
        let types = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ]
        .into_iter()
        .flatten()
        .map(Desc::new)
        .collect();
        Region {
            general: Desc::new(d.general()),
            types,
            any_type: (0..LENGTHS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// `number_type(..) != Unknown`; `None` when a pattern does not compile here.
    fn has_type(&self, national: &str) -> Option<bool> {
        if !self.general.is_match(national)? {
            return Some(false);
        }
        let Some(slot) = self.any_type.get(national.len()) else {
            return self.has_type_one_by_one(national);
        };
        let combined = slot.get_or_init(|| {
            let allowed: Vec<&str> = self
                .types
                .iter()
                .filter(|kind| kind.allows_length(national.len()))
                .map(|kind| kind.pattern.source.as_ref())
                .collect();
            if allowed.is_empty() {
                return AnyType::NoneAllowed;
            }
            AnyType::Combined(Pattern::any_of(&allowed))
        });
        match combined {
            AnyType::NoneAllowed => Some(false),
            AnyType::Combined(pattern) => match pattern.matches_at_start(national) {
                Some(found) => Some(found),
                None => self.has_type_one_by_one(national),
            },
        }
    }

    fn has_type_one_by_one(&self, national: &str) -> Option<bool> {
        for kind in &self.types {
            if kind.is_match(national)? {
                return Some(true);
            }
        }
        Some(false)
    }
}

/// `Descriptor::is_match` with the pattern compiled here.
struct Desc {
    possible_length: &'static [u16],
    pattern: Pattern,
}

impl Desc {
    fn new(desc: &'static Descriptor) -> Desc {
        Desc {
            possible_length: desc.possible_length(),
            pattern: Pattern::new(desc.national_number().as_str()),
        }
    }

    fn allows_length(&self, len: usize) -> bool {
        self.possible_length.is_empty()
            || u16::try_from(len).is_ok_and(|len| self.possible_length.contains(&len))
    }

    fn is_match(&self, value: &str) -> Option<bool> {
        if !self.allows_length(value.len()) {
            return Some(false);
        }
        self.pattern.matches_at_start(value)
    }
}

/// A metadata pattern, compiled on first use with the crate's flags (the `x` flag; the other
/// options it sets are size limits, which change no match).
struct Pattern {
    /// The metadata's text (one pattern), or several joined by `any_of`.
    source: Cow<'static, str>,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    fn new(source: &'static str) -> Pattern {
        Pattern {
            source: Cow::Borrowed(source),
            compiled: OnceLock::new(),
        }
    }

    /// A pattern that matches at offset 0 where one of `sources` does.
    fn any_of(sources: &[&str]) -> Pattern {
        // Each branch ends with a newline: under the `x` flag a `#` would otherwise comment out
        // the rest of the alternation.
        let branches: Vec<String> = sources.iter().map(|s| format!("(?:{s}\n)")).collect();
        Pattern {
            source: Cow::Owned(branches.join("|")),
            compiled: OnceLock::new(),
        }
    }

    /// Whether the leftmost match starts at offset 0 (the crate's test, not a full match);
    /// `None` when the pattern does not compile here. Asked as "is there a match anchored at
    /// offset 0", which is the same question (the leftmost match starts at the smallest
    /// offset that has one) and stops at the first match instead of finding its end.
    fn matches_at_start(&self, text: &str) -> Option<bool> {
        let compiled = self.compiled.get_or_init(|| {
            regex::RegexBuilder::new(&format!("^(?:{}\n)", self.source))
                .ignore_whitespace(true)
                .build()
                .ok()
        });
        let regex = compiled.as_ref()?;
        Some(regex.is_match(text))
    }
}
