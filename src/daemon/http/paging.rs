//! Page sizes of the listing routes (`GET /v1/contacts`, `GET /v1/conflicts`): one rule, one
//! error, so every listing answers a bad `limit` the same way.

use super::error::{ApiError, ApiResult};

/// The page size when a request names none.
pub const DEFAULT_PAGE: usize = 100;
/// The largest page a request may ask for.
pub const MAX_PAGE: usize = 1000;

/// The page size a request asked for (`limit`), checked: 1..=[`MAX_PAGE`], default
/// [`DEFAULT_PAGE`]; anything else is a 400 `invalid_limit` naming the bounds.
pub fn page_limit(limit: Option<usize>) -> ApiResult<usize> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_PAGE}, got {limit}"),
        ))
    }
}
