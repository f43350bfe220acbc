//! `POST /crm/v3/objects/{type}/search` (crm_apis.md §1.5): filterGroups (OR of ANDed filters),
//! one sort, `limit` ≤ 200, numeric `after` offsets, the 10,000-result cap (paging past it is a
//! 400), the 3,000-character body limit and the filter-count limits. Archived records never
//! appear, and the index may lag behind writes (see `table.rs`).
//!
//! Searches that sort by the modification time or the id and bound it from below (the incremental
//! sync recipe) start scanning at that bound, so a cursor query costs in proportion to what it
//! returns, not to the portal's size.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::record::parse_ms;
use super::schema::{Computed, ObjectKind, ObjectSchema, PropertyType};
use super::state::{Associations, PortalState};
use super::table::{Candidate, ObjectTable};

/// HubSpot's limits on one search request.
pub const MAX_RESULTS: usize = 10_000;
pub const MAX_PAGE: usize = 200;
pub const DEFAULT_PAGE: usize = 10;
pub const MAX_BODY_CHARS: usize = 3_000;
pub const MAX_GROUPS: usize = 5;
pub const MAX_FILTERS_PER_GROUP: usize = 6;
pub const MAX_FILTERS: usize = 18;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default)]
    pub filter_groups: Vec<FilterGroup>,
    #[serde(default)]
    pub sorts: Vec<Value>,
    #[serde(default)]
    pub properties: Vec<String>,
    #[serde(default)]
    pub limit: Option<Value>,
    #[serde(default)]
    pub after: Option<Value>,
    #[serde(default)]
    pub query: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct FilterGroup {
    #[serde(default)]
    pub filters: Vec<FilterSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterSpec {
    pub property_name: String,
    pub operator: String,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub high_value: Option<Value>,
    #[serde(default)]
    pub values: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    HasProperty,
    NotHasProperty,
    ContainsToken,
    NotContainsToken,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "EQ" => Op::Eq,
            "NEQ" => Op::Neq,
            "LT" => Op::Lt,
            "LTE" => Op::Lte,
            "GT" => Op::Gt,
            "GTE" => Op::Gte,
            "BETWEEN" => Op::Between,
            "IN" => Op::In,
            "NOT_IN" => Op::NotIn,
            "HAS_PROPERTY" => Op::HasProperty,
            "NOT_HAS_PROPERTY" => Op::NotHasProperty,
            "CONTAINS_TOKEN" => Op::ContainsToken,
            "NOT_CONTAINS_TOKEN" => Op::NotContainsToken,
            _ => return None,
        })
    }
}

/// What a filter looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Property(u16),
    /// `associations.contact`: the record is associated with the given contact.
    AssociatedContact,
}

/// A filter value, pre-parsed for the target's type.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone)]
struct Filter {
    target: Target,
    op: Op,
    /// Compare numerically (numbers, dates, datetimes, the id).
    numeric: bool,
    /// Enumeration values compare case-sensitively; everything else ignores case.
    case_sensitive: bool,
    values: Vec<Operand>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Modified,
    Id,
    Property(u16),
}

/// A checked search, ready to run against a table.
#[derive(Debug)]
pub struct CompiledSearch {
    groups: Vec<Vec<Filter>>,
    sort: SortKey,
    ascending: bool,
    pub properties: Vec<String>,
    pub limit: usize,
    pub offset: usize,
    query: Option<String>,
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn bad_filter(message: String) -> ApiError {
    ApiError::validation(message)
}

fn operand(
    schema: &ObjectSchema,
    filter: &FilterSpec,
    numeric: bool,
    value: &Value,
) -> Result<Operand, ApiError> {
    let text = value_text(value);
    if !numeric {
        return Ok(Operand::Text(text));
    }
    let kind = schema.get(&filter.property_name).map(|def| def.kind);
    let parsed = match kind {
        Some(PropertyType::Date | PropertyType::Datetime) => parse_ms(&text).map(|ms| ms as f64),
        _ => text.trim().parse::<f64>().ok(),
    };
    parsed.map(Operand::Number).ok_or_else(|| {
        bad_filter(format!(
            "{text:?} is not a valid value for property {} (operator {})",
            filter.property_name, filter.operator
        ))
    })
}

fn compile_filter(schema: &ObjectSchema, spec: &FilterSpec) -> Result<Filter, ApiError> {
    let op = Op::parse(&spec.operator).ok_or_else(|| {
        bad_filter(format!(
            "Unknown operator {:?} for property {}",
            spec.operator, spec.property_name
        ))
    })?;
    let (target, numeric, case_sensitive) = if spec.property_name == "associations.contact" {
        (Target::AssociatedContact, true, false)
    } else {
        let index = schema.index_of(&spec.property_name).ok_or_else(|| {
            bad_filter(format!(
                "Property {:?} does not exist on {}",
                spec.property_name,
                schema.kind.path_name()
            ))
        })?;
        let def = schema.def(index);
        let numeric = def.computed.is_some()
            || matches!(
                def.kind,
                PropertyType::Number | PropertyType::Date | PropertyType::Datetime
            );
        let case_sensitive = def.kind == PropertyType::Enumeration;
        (Target::Property(index), numeric, case_sensitive)
    };
    let raw: Vec<&Value> = match op {
        Op::HasProperty | Op::NotHasProperty => Vec::new(),
        Op::In | Op::NotIn => spec
            .values
            .as_ref()
            .map(|values| values.iter().collect())
            .unwrap_or_default(),
        Op::Between => match (&spec.value, &spec.high_value) {
            (Some(low), Some(high)) => vec![low, high],
            _ => {
                return Err(bad_filter(format!(
                    "BETWEEN on {} needs value and highValue",
                    spec.property_name
                )))
            }
        },
        _ => match &spec.value {
            Some(value) => vec![value],
            None => {
                return Err(bad_filter(format!(
                    "{} on {} needs a value",
                    spec.operator, spec.property_name
                )))
            }
        },
    };
    if matches!(op, Op::In | Op::NotIn) && raw.is_empty() {
        return Err(bad_filter(format!(
            "{} on {} needs values",
            spec.operator, spec.property_name
        )));
    }
    let values = raw
        .into_iter()
        .map(|value| {
            operand(
                schema,
                spec,
                numeric && !matches!(op, Op::ContainsToken | Op::NotContainsToken),
                value,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Filter {
        target,
        op,
        numeric,
        case_sensitive,
        values,
    })
}

fn parse_count(value: &Option<Value>, name: &str, default: usize) -> Result<usize, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value_text(value).trim().parse::<usize>().map_err(|_| {
            ApiError::validation(format!(
                "{name} must be a non-negative integer, got {value}"
            ))
        }),
    }
}

/// Checks a search body against HubSpot's limits and the object's properties.
pub fn compile(kind: ObjectKind, body: &[u8]) -> Result<CompiledSearch, ApiError> {
    if body.len() > MAX_BODY_CHARS {
        return Err(ApiError::validation(format!(
            "The search request body is {} characters; the maximum is {MAX_BODY_CHARS}.",
            body.len()
        )));
    }
    let request: SearchRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SearchRequest::default()
    } else {
        super::params::json_body(&bytes::Bytes::copy_from_slice(body))?
    };
    let schema = kind.schema();
    let total_filters: usize = request.filter_groups.iter().map(|g| g.filters.len()).sum();
    if request.filter_groups.len() > MAX_GROUPS
        || request
            .filter_groups
            .iter()
            .any(|g| g.filters.len() > MAX_FILTERS_PER_GROUP)
        || total_filters > MAX_FILTERS
    {
        return Err(ApiError::validation(format!(
            "Too many filters: at most {MAX_GROUPS} filterGroups with {MAX_FILTERS_PER_GROUP} filters each and {MAX_FILTERS} filters in total are allowed (got {} groups, {total_filters} filters).",
            request.filter_groups.len()
        )));
    }
    let groups = request
        .filter_groups
        .iter()
        .map(|g| {
            g.filters
                .iter()
                .map(|f| compile_filter(schema, f))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    if request.sorts.len() > 1 {
        return Err(ApiError::validation(
            "Only one sort is allowed per search request.",
        ));
    }
    let (sort, ascending) = match request.sorts.first() {
        None => (SortKey::Id, true),
        Some(spec) => {
            let (name, ascending) = match spec {
                Value::String(s) => match s.strip_prefix('-') {
                    Some(name) => (name.to_string(), false),
                    None => (s.clone(), true),
                },
                other => (
                    other
                        .get("propertyName")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    other.get("direction").and_then(Value::as_str) != Some("DESCENDING"),
                ),
            };
            let index = schema.index_of(&name).ok_or_else(|| {
                ApiError::validation(format!(
                    "Cannot sort by {name:?}: no such property on {}",
                    kind.path_name()
                ))
            })?;
            let key = match schema.def(index).computed {
                Some(Computed::UpdatedAt) => SortKey::Modified,
                Some(Computed::ObjectId) => SortKey::Id,
                _ => SortKey::Property(index),
            };
            (key, ascending)
        }
    };
    let limit = parse_count(&request.limit, "limit", DEFAULT_PAGE)?;
    if limit > MAX_PAGE {
        return Err(ApiError::validation(format!(
            "limit must be at most {MAX_PAGE}, got {limit}"
        )));
    }
    let offset = parse_count(&request.after, "after", 0)?;
    if offset >= MAX_RESULTS {
        return Err(ApiError::validation(format!(
            "Paging beyond {MAX_RESULTS} results is not allowed (after={offset}). Narrow the query, e.g. by restarting from the last lastmodifieddate seen."
        )));
    }
    let properties = if request.properties.is_empty() {
        kind.default_properties()
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        request.properties
    };
    Ok(CompiledSearch {
        groups,
        sort,
        ascending,
        properties,
        limit,
        offset,
        query: request.query.filter(|q| !q.trim().is_empty()),
    })
}

impl Filter {
    fn matches(
        &self,
        kind: ObjectKind,
        candidate: &Candidate<'_>,
        associations: &Associations,
    ) -> bool {
        let index = match self.target {
            Target::Property(index) => index,
            Target::AssociatedContact => {
                let contacts = associations.of((kind, candidate.id()), ObjectKind::Contacts);
                let wanted: Vec<f64> = self
                    .values
                    .iter()
                    .filter_map(|v| match v {
                        Operand::Number(n) => Some(*n),
                        Operand::Text(_) => None,
                    })
                    .collect();
                let hit = contacts.iter().any(|e| wanted.contains(&(e.to_id as f64)));
                return match self.op {
                    Op::Neq | Op::NotIn => !hit,
                    Op::HasProperty => !contacts.is_empty(),
                    Op::NotHasProperty => contacts.is_empty(),
                    _ => hit,
                };
            }
        };
        match self.op {
            Op::HasProperty => return candidate.value(index).is_some_and(|v| !v.is_empty()),
            Op::NotHasProperty => return candidate.value(index).is_none_or(|v| v.is_empty()),
            Op::ContainsToken | Op::NotContainsToken => {
                let found = candidate.value(index).is_some_and(|v| {
                    self.values.iter().any(|pattern| match pattern {
                        Operand::Text(p) => contains_token(&v, p),
                        Operand::Number(n) => contains_token(&v, &n.to_string()),
                    })
                });
                return found == (self.op == Op::ContainsToken);
            }
            _ => {}
        }
        let ordering = |operand: &Operand| -> Option<Ordering> {
            if self.numeric {
                let have = candidate.numeric(index)?;
                match operand {
                    Operand::Number(want) => have.partial_cmp(want),
                    Operand::Text(_) => None,
                }
            } else {
                let have = candidate.value(index)?;
                let want = match operand {
                    Operand::Text(t) => t.clone(),
                    Operand::Number(n) => n.to_string(),
                };
                // Stored text may carry stray whitespace (seeded emails do); HubSpot's index
                // normalizes it away.
                let (have, want) = (have.trim(), want.trim());
                Some(if self.case_sensitive {
                    have.cmp(want)
                } else {
                    have.to_lowercase().cmp(&want.to_lowercase())
                })
            }
        };
        let first = || self.values.first().and_then(ordering);
        match self.op {
            Op::Eq => first() == Some(Ordering::Equal),
            // A record without the property is "not equal".
            Op::Neq => first() != Some(Ordering::Equal),
            Op::Lt => first() == Some(Ordering::Less),
            Op::Lte => matches!(first(), Some(Ordering::Less | Ordering::Equal)),
            Op::Gt => first() == Some(Ordering::Greater),
            Op::Gte => matches!(first(), Some(Ordering::Greater | Ordering::Equal)),
            Op::Between => {
                let low = self.values.first().and_then(ordering);
                let high = self.values.get(1).and_then(ordering);
                matches!(low, Some(Ordering::Greater | Ordering::Equal))
                    && matches!(high, Some(Ordering::Less | Ordering::Equal))
            }
            Op::In => self
                .values
                .iter()
                .any(|v| ordering(v) == Some(Ordering::Equal)),
            Op::NotIn => !self
                .values
                .iter()
                .any(|v| ordering(v) == Some(Ordering::Equal)),
            Op::HasProperty | Op::NotHasProperty | Op::ContainsToken | Op::NotContainsToken => {
                false
            }
        }
    }

    /// The smallest value this filter lets through on a numeric property, if it bounds it.
    fn lower_bound(&self, index: u16) -> Option<f64> {
        if self.target != Target::Property(index) {
            return None;
        }
        let first = match self.values.first() {
            Some(Operand::Number(n)) => *n,
            _ => return None,
        };
        match self.op {
            Op::Eq | Op::Gte | Op::Gt | Op::Between => Some(first),
            _ => None,
        }
    }
}

/// Token match: the value split on anything but letters, digits, `@`, `.`, `_` and `-`; `*` in
/// the pattern matches any run of characters. Case-insensitive.
fn contains_token(value: &str, pattern: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let value = value.to_lowercase();
    let tokens = value
        .split(|c: char| !(c.is_alphanumeric() || "@._-".contains(c)))
        .filter(|t| !t.is_empty());
    let mut all = tokens.chain(std::iter::once(value.as_str()));
    all.any(|token| glob(token, &pattern))
}

fn glob(text: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return text == pattern;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

impl CompiledSearch {
    fn matches(
        &self,
        kind: ObjectKind,
        candidate: &Candidate<'_>,
        associations: &Associations,
    ) -> bool {
        if let Some(query) = &self.query {
            let schema = kind.schema();
            let query = query.to_lowercase();
            let hit = [
                "firstname",
                "lastname",
                "email",
                "phone",
                "company",
                "hs_call_title",
            ]
            .iter()
            .filter_map(|name| schema.index_of(name))
            .any(|index| {
                candidate
                    .value(index)
                    .is_some_and(|v| v.to_lowercase().contains(&query))
            });
            if !hit {
                return false;
            }
        }
        self.groups.is_empty()
            || self.groups.iter().any(|group| {
                group
                    .iter()
                    .all(|f| f.matches(kind, candidate, associations))
            })
    }

    /// The lowest value every filter group bounds a numeric property to, so the scan can start
    /// there; `None` when some group leaves it unbounded.
    fn common_lower_bound(&self, index: Option<u16>) -> Option<f64> {
        let index = index?;
        if self.groups.is_empty() {
            return None;
        }
        self.groups
            .iter()
            .map(|group| {
                group
                    .iter()
                    .filter_map(|f| f.lower_bound(index))
                    .fold(None, |acc: Option<f64>, b| {
                        Some(acc.map_or(b, |a| a.max(b)))
                    })
            })
            .try_fold(f64::INFINITY, |acc, bound| bound.map(|b| acc.min(b)))
    }

    /// Runs the search: the page of results (as JSON) and the total number of matches.
    pub fn run(&self, state: &PortalState, kind: ObjectKind) -> (Vec<Value>, usize) {
        let table = state.table(kind);
        let schema = table.schema;
        let associations = &state.associations;
        let names: Vec<&str> = self.properties.iter().map(String::as_str).collect();
        // Never return more than the 10,000-result window allows.
        let end = (self.offset + self.limit).min(MAX_RESULTS);
        let mut page = Vec::new();
        let mut total = 0usize;
        let mut take = |candidate: Candidate<'_>| {
            if total >= self.offset && total < end {
                page.push(candidate.record().to_json(schema, &names));
            }
            total += 1;
        };
        match self.sort {
            SortKey::Modified | SortKey::Id => {
                for candidate in self.ordered(table) {
                    if self.matches(kind, &candidate, associations) {
                        take(candidate);
                    }
                }
            }
            SortKey::Property(index) => {
                let def = schema.def(index);
                let numeric = matches!(
                    def.kind,
                    PropertyType::Number | PropertyType::Date | PropertyType::Datetime
                );
                let mut hits: Vec<(SortValue, u64, Candidate<'_>)> = table
                    .search_by_id(0, true)
                    .filter(|c| self.matches(kind, c, associations))
                    .map(|c| {
                        let key = if numeric {
                            SortValue::Number(c.numeric(index))
                        } else {
                            SortValue::Text(c.value(index).map(|v| v.to_lowercase()))
                        };
                        (key, c.id(), c)
                    })
                    .collect();
                hits.sort_by(|a, b| {
                    let order = a.0.cmp(&b.0).then(a.1.cmp(&b.1));
                    if self.ascending {
                        order
                    } else {
                        order.reverse()
                    }
                });
                for (_, _, candidate) in hits {
                    take(candidate);
                }
            }
        }
        (page, total)
    }

    fn ordered<'t>(&self, table: &'t ObjectTable) -> Box<dyn Iterator<Item = Candidate<'t>> + 't> {
        let schema = table.schema;
        match self.sort {
            SortKey::Modified => {
                let bound = self
                    .common_lower_bound(schema.index_of(schema.kind.modified_property()))
                    .filter(|_| self.ascending)
                    .map_or(i64::MIN, |b| b.floor() as i64);
                table.search_by_modified(bound, self.ascending)
            }
            _ => {
                let bound = self
                    .common_lower_bound(schema.index_of("hs_object_id"))
                    .filter(|_| self.ascending)
                    .map_or(0, |b| b.max(0.0).floor() as u64);
                table.search_by_id(bound, self.ascending)
            }
        }
    }
}

/// A sort key for arbitrary properties; records without the value sort last.
#[derive(Debug, PartialEq)]
enum SortValue {
    Number(Option<f64>),
    Text(Option<String>),
}

impl Eq for SortValue {}

impl PartialOrd for SortValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SortValue {
    fn cmp(&self, other: &Self) -> Ordering {
        fn last<T>(a: &Option<T>, b: &Option<T>, inner: impl Fn(&T, &T) -> Ordering) -> Ordering {
            match (a, b) {
                (Some(a), Some(b)) => inner(a, b),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        match (self, other) {
            (SortValue::Number(a), SortValue::Number(b)) => last(a, b, |x, y| x.total_cmp(y)),
            (SortValue::Text(a), SortValue::Text(b)) => last(a, b, |x, y| x.cmp(y)),
            _ => Ordering::Equal,
        }
    }
}

/// The response body for one page.
pub fn response(search: &CompiledSearch, results: Vec<Value>, total: usize) -> Value {
    let next = search.offset + results.len();
    let mut body = json!({"total": total, "results": results});
    if next < total && !body["results"].as_array().is_some_and(Vec::is_empty) {
        body["paging"] = json!({"next": {"after": next.to_string()}});
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_and_tokens() {
        assert!(contains_token("Ada Lovelace", "ada"));
        assert!(contains_token("ada@example.com", "*@example.com"));
        assert!(contains_token("Prefers calls after 3pm.", "pref*"));
        assert!(!contains_token("Ada", "bob"));
        assert!(glob("abcdef", "a*c*f"));
        assert!(!glob("abcdef", "a*x*f"));
    }

    #[test]
    fn limits_are_enforced() {
        let kind = ObjectKind::Contacts;
        assert!(compile(kind, br#"{"limit": 201}"#).is_err());
        assert!(compile(kind, br#"{"limit": 200, "after": "9999"}"#).is_ok());
        let err = compile(kind, br#"{"after": "10000"}"#).unwrap_err();
        assert_eq!(err.status, 400);
        let two_sorts = br#"{"sorts": [{"propertyName": "email"}, {"propertyName": "phone"}]}"#;
        assert!(compile(kind, two_sorts).is_err());
        let filter = r#"{"propertyName": "email", "operator": "HAS_PROPERTY"}"#;
        let group = format!(r#"{{"filters": [{}]}}"#, [filter; 7].join(","));
        assert!(compile(kind, format!(r#"{{"filterGroups": [{group}]}}"#).as_bytes()).is_err());
        let long = format!(r#"{{"query": "{}"}}"#, "x".repeat(3_000));
        assert!(compile(kind, long.as_bytes()).is_err());
        assert!(compile(kind, br#"{"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]}"#).is_err());
        assert!(compile(kind, b"").is_ok());
    }

    #[test]
    fn lower_bounds_take_the_loosest_group() {
        let body = br#"{"filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "2000"}]},
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "1000"},
                         {"propertyName": "email", "operator": "HAS_PROPERTY"}]}]}"#;
        let search = compile(ObjectKind::Contacts, body).unwrap();
        let index = ObjectKind::Contacts.schema().index_of("lastmodifieddate");
        assert_eq!(search.common_lower_bound(index), Some(1000.0));
        let unbounded = br#"{"filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "2000"}]},
            {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}]}"#;
        let search = compile(ObjectKind::Contacts, unbounded).unwrap();
        assert_eq!(search.common_lower_bound(index), None);
    }

    #[test]
    fn datetime_filters_accept_epoch_ms_and_iso() {
        let body = br#"{"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "BETWEEN", "value": "2025-01-01T00:00:00Z", "highValue": 1767225600000}]}]}"#;
        assert!(compile(ObjectKind::Contacts, body).is_ok());
        let bad = br#"{"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "yesterday"}]}]}"#;
        assert!(compile(ObjectKind::Contacts, bad).is_err());
    }
}
