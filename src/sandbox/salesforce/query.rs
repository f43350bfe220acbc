//! `GET query?q=` and `GET query/{locator}`: SOQL over Contact and Task with Salesforce's
//! `totalSize`/`done`/`nextRecordsUrl` paging.
//!
//! A query runs against a snapshot time (`as_of`, the org clock when it started): contacts
//! changed later are left out of its remaining pages and picked up by the next incremental
//! query, which is what a client's `SystemModstamp >= cursor` overlap expects. Contacts in
//! `(SystemModstamp, Id)` order are streamed straight from the org state, generating seeded
//! people only for the page being served; any other order is sorted in memory.
//!
//! Every page position a `nextRecordsUrl` names stays valid, so a client may retry a page
//! after a timeout or a 5xx.

use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Arc;

use axum::extract::{Path, Query as QueryParams, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::OnceCell;

use super::describe::{FieldKind, SObject, Schema, ID, LAST_MODIFIED_DATE, SYSTEM_MODSTAMP};
use super::errors::ApiError;
use super::record::{format_datetime, write_record_json, Record, Val};
use super::soql::{self, CmpOp, Cond, Literal, Select};
use super::state::{seeded_contact, Key, OrgState, Row};
use super::AppState;
use crate::sandbox::faults::lock;

/// A query resolved against the schema.
#[derive(Debug)]
pub struct Compiled {
    pub object: SObject,
    pub count_only: bool,
    pub select: Vec<usize>,
    pub filter: Option<Pred>,
    /// `None`: `(SystemModstamp, Id)` order, served by streaming.
    pub order: Option<Vec<SortKey>>,
    pub limit: Option<u64>,
    pub offset: u64,
    /// The filter only reads Id and timestamps (seeded contacts need not be generated).
    pub light_filter: bool,
    /// Every match has SystemModstamp at or after this (derived from the filter).
    pub lower_stamp: Option<i64>,
}

#[derive(Debug)]
pub struct SortKey {
    field: usize,
    descending: bool,
    nulls_first: bool,
}

/// A filter with fields resolved to schema positions and literals typed.
#[derive(Debug)]
pub enum Pred {
    And(Box<Pred>, Box<Pred>),
    Or(Box<Pred>, Box<Pred>),
    Not(Box<Pred>),
    Cmp(usize, CmpOp, Val, bool),
    In(usize, bool, Vec<Val>, bool),
    Like(usize, String),
}

/// Parse and resolve `soql`.
pub fn compile(soql_text: &str) -> Result<Compiled, ApiError> {
    let query = soql::parse(soql_text).map_err(|e| ApiError::malformed_query(e.0))?;
    let object = SObject::parse(&query.from).ok_or_else(|| {
        ApiError::bad_request(
            "INVALID_TYPE",
            format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                query.from
            ),
        )
    })?;
    let schema = object.schema();
    let (count_only, select) = match &query.select {
        Select::Count => (true, Vec::new()),
        Select::Fields(names) => {
            let mut select = Vec::with_capacity(names.len());
            for name in names {
                let index = resolve(schema, name)?;
                if select.contains(&index) {
                    return Err(ApiError::malformed_query(format!(
                        "duplicate field selected: {name}"
                    )));
                }
                select.push(index);
            }
            (false, select)
        }
    };
    let filter = query
        .filter
        .as_ref()
        .map(|cond| resolve_cond(schema, cond))
        .transpose()?;
    let mut sort = Vec::new();
    for item in &query.order_by {
        let field = resolve(schema, &item.field)?;
        sort.push(SortKey {
            field,
            descending: item.descending,
            nulls_first: item.nulls_first.unwrap_or(!item.descending),
        });
    }
    let native = match sort.as_slice() {
        [] => true,
        [first, rest @ ..] => {
            (first.field == SYSTEM_MODSTAMP || first.field == LAST_MODIFIED_DATE)
                && !first.descending
                && match rest {
                    [] => true,
                    [second] => second.field == ID && !second.descending,
                    _ => false,
                }
        }
    };
    let light_filter = filter.as_ref().is_none_or(is_light);
    let lower_stamp = filter.as_ref().and_then(lower_stamp);
    Ok(Compiled {
        object,
        count_only,
        select,
        filter,
        order: (!native).then_some(sort),
        limit: query.limit,
        offset: query.offset.unwrap_or(0),
        light_filter,
        lower_stamp,
    })
}

fn resolve(schema: &Schema, name: &str) -> Result<usize, ApiError> {
    schema.index_of(name).ok_or_else(|| {
        ApiError::invalid_field(format!(
            "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            schema.label
        ))
    })
}

fn resolve_cond(schema: &Schema, cond: &Cond) -> Result<Pred, ApiError> {
    Ok(match cond {
        Cond::And(a, b) => Pred::And(
            Box::new(resolve_cond(schema, a)?),
            Box::new(resolve_cond(schema, b)?),
        ),
        Cond::Or(a, b) => Pred::Or(
            Box::new(resolve_cond(schema, a)?),
            Box::new(resolve_cond(schema, b)?),
        ),
        Cond::Not(a) => Pred::Not(Box::new(resolve_cond(schema, a)?)),
        Cond::Cmp(name, op, literal) => {
            let index = resolve(schema, name)?;
            let kind = schema.field(index).kind;
            Pred::Cmp(index, *op, typed(schema, index, literal)?, kind.is_text())
        }
        Cond::In(name, negated, literals) => {
            let index = resolve(schema, name)?;
            let kind = schema.field(index).kind;
            let values = literals
                .iter()
                .map(|l| typed(schema, index, l))
                .collect::<Result<_, _>>()?;
            Pred::In(index, *negated, values, kind.is_text())
        }
        Cond::Like(name, pattern) => {
            let index = resolve(schema, name)?;
            Pred::Like(index, pattern.to_lowercase())
        }
    })
}

/// A literal as a value of the field's type, refusing mismatches the way Salesforce does
/// (e.g. a quoted datetime).
fn typed(schema: &Schema, index: usize, literal: &Literal) -> Result<Val, ApiError> {
    let field = schema.field(index);
    let mismatch = |wanted: &str, quoted: bool| {
        ApiError::invalid_field(format!(
            "value of filter criterion for field '{}' must be of type {wanted} and should {}be enclosed in quotes",
            field.name,
            if quoted { "" } else { "not " }
        ))
    };
    Ok(match (field.kind, literal) {
        (_, Literal::Null) => Val::Null,
        (FieldKind::DateTime, Literal::DateTime(ms)) => Val::DateTime(*ms),
        (FieldKind::DateTime, _) => return Err(mismatch("dateTime", false)),
        (FieldKind::Date, Literal::Date(d)) => Val::Date(*d),
        (FieldKind::Date, _) => return Err(mismatch("date", false)),
        (FieldKind::Boolean, Literal::Bool(b)) => Val::Bool(*b),
        (FieldKind::Boolean, _) => return Err(mismatch("boolean", false)),
        (FieldKind::Currency | FieldKind::Int, Literal::Num(n)) => Val::Num(*n),
        (FieldKind::Currency | FieldKind::Int, _) => return Err(mismatch("number", false)),
        (_, Literal::Str(s)) => Val::Str(s.clone()),
        _ => return Err(mismatch("string", true)),
    })
}

fn is_light(pred: &Pred) -> bool {
    let light =
        |field: &usize| *field == ID || *field == SYSTEM_MODSTAMP || *field == LAST_MODIFIED_DATE;
    match pred {
        Pred::And(a, b) | Pred::Or(a, b) => is_light(a) && is_light(b),
        Pred::Not(a) => is_light(a),
        Pred::Cmp(field, ..) | Pred::In(field, ..) | Pred::Like(field, _) => light(field),
    }
}

/// A bound every match satisfies: `SystemModstamp >= bound`. LastModifiedDate equals
/// SystemModstamp in the sandbox (no system-only changes), so it bounds too.
fn lower_stamp(pred: &Pred) -> Option<i64> {
    match pred {
        Pred::Cmp(field, op, Val::DateTime(ms), _)
            if *field == SYSTEM_MODSTAMP || *field == LAST_MODIFIED_DATE =>
        {
            matches!(op, CmpOp::Gt | CmpOp::Ge | CmpOp::Eq).then_some(*ms)
        }
        Pred::And(a, b) => match (lower_stamp(a), lower_stamp(b)) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        },
        Pred::Or(a, b) => Some(lower_stamp(a)?.min(lower_stamp(b)?)),
        _ => None,
    }
}

impl Pred {
    pub fn matches(&self, record: &Record) -> bool {
        match self {
            Pred::And(a, b) => a.matches(record) && b.matches(record),
            Pred::Or(a, b) => a.matches(record) || b.matches(record),
            Pred::Not(a) => !a.matches(record),
            Pred::Cmp(field, op, literal, text) => {
                let value = record.get(*field);
                match (value, literal, op) {
                    (Val::Null, Val::Null, CmpOp::Eq) => true,
                    (Val::Null, Val::Null, CmpOp::Ne) => false,
                    (_, Val::Null, CmpOp::Eq) | (Val::Null, _, CmpOp::Eq) => false,
                    (_, Val::Null, CmpOp::Ne) | (Val::Null, _, CmpOp::Ne) => true,
                    _ => match compare(value, literal, *text) {
                        Some(ordering) => match op {
                            CmpOp::Eq => ordering == Ordering::Equal,
                            CmpOp::Ne => ordering != Ordering::Equal,
                            CmpOp::Lt => ordering == Ordering::Less,
                            CmpOp::Le => ordering != Ordering::Greater,
                            CmpOp::Gt => ordering == Ordering::Greater,
                            CmpOp::Ge => ordering != Ordering::Less,
                        },
                        None => false,
                    },
                }
            }
            Pred::In(field, negated, values, text) => {
                let value = record.get(*field);
                let found = values.iter().any(|candidate| match (value, candidate) {
                    (Val::Null, Val::Null) => true,
                    (Val::Null, _) | (_, Val::Null) => false,
                    _ => compare(value, candidate, *text) == Some(Ordering::Equal),
                });
                found != *negated
            }
            Pred::Like(field, pattern) => match record.get(*field) {
                Val::Str(s) => like(&s.to_lowercase(), pattern),
                _ => false,
            },
        }
    }
}

/// Compare two non-null values; `text`: case-insensitive, as SOQL compares text fields.
fn compare(a: &Val, b: &Val, text: bool) -> Option<Ordering> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) if text => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Int(x), Val::Num(y)) => (*x as f64).partial_cmp(y),
        (Val::Num(x), Val::Int(y)) => x.partial_cmp(&(*y as f64)),
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Date(x), Val::Date(y)) => Some(x.cmp(y)),
        (Val::DateTime(x), Val::DateTime(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// SOQL LIKE: `%` any run, `_` one character; both sides already lower-cased.
fn like(text: &str, pattern: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(&t[i..], rest)),
            Some(('_', rest)) => !t.is_empty() && go(&t[1..], rest),
            Some((c, rest)) => t.first() == Some(c) && go(&t[1..], rest),
        }
    }
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    go(&t, &p)
}

/// Where the next page of a query starts.
#[derive(Debug, Clone)]
enum Position {
    /// Streaming in contact order: strictly after this key (`None`: from the start).
    Stream(Option<Key>),
    /// Index into the sorted id list.
    Sorted(usize),
}

/// An open query cursor.
#[derive(Debug)]
pub struct Locator {
    query: Arc<Compiled>,
    as_of: i64,
    total: u64,
    /// For sorted queries: the matching ids, in order, fixed when the query ran.
    sorted_ids: Option<Arc<Vec<String>>>,
    /// Page start (records already returned) → where that page starts.
    checkpoints: HashMap<u64, Position>,
}

/// Open query cursors, oldest evicted first (Salesforce also expires idle locators).
#[derive(Debug, Default)]
pub struct Locators {
    open: HashMap<String, Locator>,
    order: VecDeque<String>,
    next: u64,
}

const MAX_OPEN_LOCATORS: usize = 200;

impl Locators {
    fn insert(&mut self, locator: Locator) -> String {
        self.next += 1;
        let id = format!("01gSB{:013}", self.next);
        self.open.insert(id.clone(), locator);
        self.order.push_back(id.clone());
        while self.order.len() > MAX_OPEN_LOCATORS {
            if let Some(oldest) = self.order.pop_front() {
                self.open.remove(&oldest);
            }
        }
        id
    }
}

/// One page of rows picked under the lock; seeded rows are generated after it is released.
enum PageRow {
    Seeded(u32),
    Stored(Record),
}

struct Page {
    rows: Vec<PageRow>,
    /// Where the following page starts, when the scan did not run out.
    next: Option<Position>,
}

/// Rows for one page of `query` starting at `position`, at most `max`.
fn collect_page(
    org: &OrgState,
    query: &Compiled,
    as_of: i64,
    sorted_ids: Option<&[String]>,
    position: &Position,
    max: usize,
) -> Page {
    match position {
        Position::Sorted(start) => {
            let ids = sorted_ids.unwrap_or(&[]);
            let mut rows = Vec::new();
            let mut i = *start;
            while i < ids.len() && rows.len() < max {
                if let Some(record) = org.get(query.object, &ids[i]) {
                    rows.push(PageRow::Stored(record.into_owned()));
                }
                i += 1;
            }
            Page {
                rows,
                next: (i < ids.len()).then_some(Position::Sorted(i)),
            }
        }
        Position::Stream(after) => {
            let mut rows = Vec::new();
            let mut last: Option<Key> = None;
            let mut exhausted = true;
            scan_matches(org, query, after.as_ref(), as_of, |row, key| {
                if rows.len() == max {
                    exhausted = false;
                    return false;
                }
                rows.push(row);
                last = Some(key);
                true
            });
            Page {
                rows,
                next: (!exhausted).then_some(Position::Stream(last)),
            }
        }
    }
}

/// Visit the contacts matching `query` in contact order after `after`.
fn scan_matches(
    org: &OrgState,
    query: &Compiled,
    after: Option<&Key>,
    as_of: i64,
    mut visit: impl FnMut(PageRow, Key) -> bool,
) {
    org.scan_contacts(after, query.lower_stamp, as_of, |row| {
        let key = org.row_key(&row);
        let matched = match &query.filter {
            None => true,
            Some(pred) => match &row {
                Row::Seeded(index) if query.light_filter => pred.matches(&org.seeded_light(*index)),
                Row::Seeded(index) => pred.matches(&org.seeded_full(*index)),
                Row::Stored(record) => pred.matches(record),
            },
        };
        if !matched {
            return true;
        }
        let row = match row {
            Row::Seeded(index) => PageRow::Seeded(index),
            Row::Stored(record) => PageRow::Stored(record.clone()),
        };
        visit(row, key)
    });
}

/// Count matches (streamed queries), honouring OFFSET and LIMIT.
fn count_stream(org: &OrgState, query: &Compiled, as_of: i64) -> u64 {
    let unfiltered_full_scan = query.filter.is_none() && query.lower_stamp.is_none();
    let mut total = if unfiltered_full_scan {
        // Every live contact not changed after the snapshot: no need to visit them.
        org.contact_count()
    } else {
        let mut n = 0u64;
        org.scan_contacts(None, query.lower_stamp, as_of, |row| {
            let matched = match (&query.filter, &row) {
                (None, _) => true,
                (Some(pred), Row::Seeded(index)) if query.light_filter => {
                    pred.matches(&org.seeded_light(*index))
                }
                (Some(pred), Row::Seeded(index)) => pred.matches(&org.seeded_full(*index)),
                (Some(pred), Row::Stored(record)) => pred.matches(record),
            };
            n += u64::from(matched);
            true
        });
        n
    };
    total = total.saturating_sub(query.offset);
    query.limit.map_or(total, |limit| total.min(limit))
}

/// Every match of a sorted query (or any Task query), sorted, as ids.
fn sorted_matches(org: &OrgState, query: &Compiled, as_of: i64) -> Vec<String> {
    let mut records: Vec<Record> = Vec::new();
    match query.object {
        SObject::Contact => scan_matches(org, query, None, as_of, |row, _| {
            records.push(match row {
                PageRow::Seeded(index) => org.seeded_full(index),
                PageRow::Stored(record) => record,
            });
            true
        }),
        SObject::Task => {
            for task in org.tasks() {
                if task.modstamp() <= as_of && query.filter.as_ref().is_none_or(|p| p.matches(task))
                {
                    records.push(task.clone());
                }
            }
        }
    }
    let native = [
        SortKey {
            field: SYSTEM_MODSTAMP,
            descending: false,
            nulls_first: true,
        },
        SortKey {
            field: ID,
            descending: false,
            nulls_first: true,
        },
    ];
    let keys: &[SortKey] = query.order.as_deref().unwrap_or(&native);
    records.sort_by(|a, b| {
        for key in keys {
            let ordering = sort_compare(a.get(key.field), b.get(key.field), key);
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        a.id().cmp(b.id())
    });
    let skip = usize::try_from(query.offset).unwrap_or(usize::MAX);
    let take = query
        .limit
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(usize::MAX);
    records
        .into_iter()
        .skip(skip)
        .take(take)
        .map(|r| r.id().to_string())
        .collect()
}

fn sort_compare(a: &Val, b: &Val, key: &SortKey) -> Ordering {
    match (a, b) {
        (Val::Null, Val::Null) => Ordering::Equal,
        (Val::Null, _) => {
            if key.nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (_, Val::Null) => {
            if key.nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => {
            let ordering = compare(a, b, true).unwrap_or(Ordering::Equal);
            if key.descending {
                ordering.reverse()
            } else {
                ordering
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct QueryParamsQ {
    q: Option<String>,
}

/// `GET /services/data/{v}/query?q=…`
pub async fn query(
    State(app): State<AppState>,
    Path(version): Path<String>,
    QueryParams(params): QueryParams<QueryParamsQ>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let text = params
        .q
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::malformed_query("A query string (q) is required"))?;
    let compiled = Arc::new(compile(&text)?);
    let page_size = page_size(app.page_size, &headers);
    let (page, total, locator_id) = {
        let org = lock(&app.org);
        let as_of = org.now();
        let streamed = compiled.object == SObject::Contact && compiled.order.is_none();
        let (total, sorted_ids, mut position) = if streamed {
            (
                count_stream(&org, &compiled, as_of),
                None,
                Position::Stream(None),
            )
        } else {
            let ids = Arc::new(sorted_matches(&org, &compiled, as_of));
            (ids.len() as u64, Some(ids), Position::Sorted(0))
        };
        if compiled.count_only {
            drop(org);
            return Ok(json_response(count_body(total)));
        }
        if streamed && compiled.offset > 0 {
            // Skip OFFSET matches once; later pages resume from keys.
            let mut skipped = 0;
            let mut last = None;
            scan_matches(&org, &compiled, None, as_of, |_, key| {
                if skipped == compiled.offset {
                    return false;
                }
                skipped += 1;
                last = Some(key);
                true
            });
            position = Position::Stream(last);
        }
        let max = page_size.min(usize::try_from(total).unwrap_or(usize::MAX));
        let page = collect_page(
            &org,
            &compiled,
            as_of,
            sorted_ids.as_deref().map(Vec::as_slice),
            &position,
            max,
        );
        let returned = page.rows.len() as u64;
        let locator_id = match &page.next {
            Some(next) if returned < total => {
                let mut checkpoints = HashMap::new();
                checkpoints.insert(returned, next.clone());
                Some(lock(&app.locators).insert(Locator {
                    query: compiled.clone(),
                    as_of,
                    total,
                    sorted_ids,
                    checkpoints,
                }))
            }
            _ => None,
        };
        (page, total, locator_id)
    };
    let returned = page.rows.len() as u64;
    let next_url = locator_id
        .as_ref()
        .map(|id| format!("/services/data/{version}/query/{id}-{returned}"));
    if let Some(id) = locator_id {
        prefetch(
            &app,
            PageKey {
                locator: id,
                offset: returned,
                page_size,
                version: version.clone(),
            },
        );
    }
    Ok(json_response(page_body(
        &app, &compiled, &version, total, next_url, page.rows,
    )))
}

/// `GET /services/data/{v}/query/{locator}-{offset}`
pub async fn query_more(
    State(app): State<AppState>,
    Path((version, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let invalid = || ApiError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator");
    let (id, offset) = locator.rsplit_once('-').ok_or_else(invalid)?;
    let offset: u64 = offset.parse().map_err(|_| invalid())?;
    let key = PageKey {
        locator: id.to_string(),
        offset,
        page_size: page_size(app.page_size, &headers),
        version,
    };
    let cell = {
        let slot = lock(&app.prefetch);
        match slot.as_ref() {
            Some(prefetch) if prefetch.key == key => prefetch.cell.clone(),
            _ => Arc::new(OnceCell::new()),
        }
    };
    let (body, next_offset) = render_in(&app, &cell, &key).await.ok_or_else(invalid)?;
    match next_offset {
        Some(next) => prefetch(
            &app,
            PageKey {
                offset: next,
                ..key
            },
        ),
        None => {
            let mut slot = lock(&app.prefetch);
            if slot.as_ref().is_some_and(|p| p.key == key) {
                *slot = None;
            }
        }
    }
    Ok(json_response(body))
}

/// Identifies one page of an open query as a client asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    locator: String,
    offset: u64,
    page_size: usize,
    version: String,
}

/// A rendered page body and the offset of the page after it (`None` when done).
type Rendered = Option<(Bytes, Option<u64>)>;

/// The next page of the query being read, rendered while the client digests the current one.
/// One slot for the whole org: enough for a sync reading pages in order, and it bounds memory
/// to one page however many queries are abandoned half-read.
#[derive(Debug)]
pub struct Prefetch {
    key: PageKey,
    cell: Arc<OnceCell<Rendered>>,
}

/// Render `key` into `cell` once (on a blocking thread: generating a page is CPU work);
/// concurrent callers wait for the same result.
async fn render_in(app: &AppState, cell: &Arc<OnceCell<Rendered>>, key: &PageKey) -> Rendered {
    cell.get_or_init(|| {
        let app = app.clone();
        let key = key.clone();
        async move {
            tokio::task::spawn_blocking(move || render_more(&app, &key))
                .await
                .ok()
                .flatten()
        }
    })
    .await
    .clone()
}

fn prefetch(app: &AppState, key: PageKey) {
    let cell = Arc::new(OnceCell::new());
    *lock(&app.prefetch) = Some(Prefetch {
        key: key.clone(),
        cell: cell.clone(),
    });
    let app = app.clone();
    tokio::spawn(async move {
        render_in(&app, &cell, &key).await;
    });
}

/// One page of an open query; `None` when the locator or offset is unknown.
fn render_more(app: &AppState, key: &PageKey) -> Rendered {
    let (compiled, total, page) = {
        let org = lock(&app.org);
        let mut locators = lock(&app.locators);
        let locator = locators.open.get_mut(&key.locator)?;
        let position = locator.checkpoints.get(&key.offset).cloned()?;
        let remaining = locator.total - key.offset.min(locator.total);
        let max = key
            .page_size
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let page = collect_page(
            &org,
            &locator.query,
            locator.as_of,
            locator.sorted_ids.as_deref().map(Vec::as_slice),
            &position,
            max,
        );
        if let Some(next) = &page.next {
            locator
                .checkpoints
                .insert(key.offset + page.rows.len() as u64, next.clone());
        }
        (locator.query.clone(), locator.total, page)
    };
    let returned = key.offset + page.rows.len() as u64;
    let more = page.next.is_some() && returned < total && !page.rows.is_empty();
    let next_url = more.then(|| {
        format!(
            "/services/data/{}/query/{}-{returned}",
            key.version, key.locator
        )
    });
    let body = page_body(app, &compiled, &key.version, total, next_url, page.rows);
    Some((Bytes::from(body), more.then_some(returned)))
}

/// Page size for this request: the server's configured batch size, lowered by a
/// `Sforce-Query-Options: batchSize=N` header (Salesforce clamps N to 200..=2000).
fn page_size(configured: usize, headers: &HeaderMap) -> usize {
    let requested = headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|part| {
                let (key, value) = part.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("batchSize")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
        })
        .map(|n| n.clamp(200, 2_000));
    requested.map_or(configured, |n| n.min(configured)).max(1)
}

fn count_body(total: u64) -> Vec<u8> {
    format!("{{\"totalSize\":{total},\"done\":true,\"records\":[]}}").into_bytes()
}

fn page_body(
    app: &AppState,
    query: &Compiled,
    version: &str,
    total: u64,
    next_url: Option<String>,
    rows: Vec<PageRow>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + rows.len() * 512);
    let _ = write!(
        out,
        "{{\"totalSize\":{total},\"done\":{}",
        next_url.is_none()
    );
    if let Some(url) = &next_url {
        let _ = write!(out, ",\"nextRecordsUrl\":\"{url}\"");
    }
    out.extend_from_slice(b",\"records\":[");
    let population = app.population;
    for (i, row) in rows.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let record = match row {
            PageRow::Seeded(index) => seeded_contact(population, index),
            PageRow::Stored(record) => record,
        };
        write_record_json(&mut out, &record, &query.select, version);
    }
    out.extend_from_slice(b"]}");
    out
}

fn json_response(body: impl Into<axum::body::Body>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.into(),
    )
        .into_response()
}

/// The `latestDateCovered`-style rendering shared with the updated/deleted endpoints.
pub fn sf_datetime(ms: i64) -> String {
    format_datetime(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_quoted_datetimes_are_refused_like_salesforce() {
        let err = compile("SELECT Id, Fax__c FROM Contact").unwrap_err();
        assert_eq!(err.code, "INVALID_FIELD");
        assert!(err.message.contains("'Fax__c'"));
        let err = compile("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01T00:00:00Z'")
            .unwrap_err();
        assert_eq!(err.code, "INVALID_FIELD");
        assert!(err.message.contains("dateTime"));
        let err = compile("SELECT Id FROM Account").unwrap_err();
        assert_eq!(err.code, "INVALID_TYPE");
        let err = compile("SELECT Id FROM Contact WHERE").unwrap_err();
        assert_eq!(err.code, "MALFORMED_QUERY");
    }

    #[test]
    fn native_order_and_lower_bounds_are_recognised() {
        let q = compile(
            "SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01T00:00:00Z OR \
             (SystemModstamp = 2024-01-01T00:00:00Z AND Id > '003SB0000000001AAA') \
             ORDER BY SystemModstamp, Id",
        )
        .unwrap();
        assert!(q.order.is_none());
        assert!(q.light_filter);
        assert_eq!(
            q.lower_stamp,
            super::super::record::parse_datetime("2024-01-01T00:00:00Z")
        );
        let q = compile("SELECT Id FROM Contact WHERE Phone = 'x' ORDER BY LastName DESC").unwrap();
        assert!(q.order.is_some());
        assert!(!q.light_filter);
        assert_eq!(q.lower_stamp, None);
    }

    #[test]
    fn like_matches_sql_wildcards() {
        assert!(like("call 123", "call %"));
        assert!(like("call 123", "call _23"));
        assert!(!like("chat 123", "call%"));
        assert!(like("", "%"));
    }
}
