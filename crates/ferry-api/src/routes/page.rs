//! EMQX paging: `page` (from 1) and `limit` in the query, `{data, meta}` in the answer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Largest `limit` accepted.
pub(crate) const MAX_LIMIT: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Meta {
    pub(crate) page: usize,
    pub(crate) limit: usize,
    pub(crate) count: usize,
    pub(crate) hasnext: bool,
}

/// One page of results.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub(crate) struct Paged<T> {
    pub(crate) data: Vec<T>,
    pub(crate) meta: Meta,
}

/// Checks `page` and `limit`, applying the defaults.
fn check(page: Option<usize>, limit: Option<usize>) -> Result<(usize, usize), ApiError> {
    let page = page.unwrap_or(1);
    let limit = limit.unwrap_or(100);
    if page == 0 {
        return Err(ApiError::bad_request("page: must be at least 1"));
    }
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit: must be from 1 to {MAX_LIMIT}"
        )));
    }
    Ok((page, limit))
}

/// Cuts `all` into the page asked for.
pub(crate) fn paginate<T>(
    all: Vec<T>,
    page: Option<usize>,
    limit: Option<usize>,
) -> Result<Paged<T>, ApiError> {
    let (page, limit) = check(page, limit)?;
    let count = all.len();
    let start = (page - 1).saturating_mul(limit);
    let data: Vec<T> = all.into_iter().skip(start).take(limit).collect();
    Ok(Paged {
        meta: Meta {
            page,
            limit,
            count,
            hasnext: start.saturating_add(limit) < count,
        },
        data,
    })
}
