//! Cursor pagination: `?limit=&cursor=` in, `{items, next_cursor}` out.
//!
//! Lists are ordered by id. Ids are UUID v7, so that is creation order, stable while items
//! are added or removed. The cursor is the last id of a page, encoded so that clients treat
//! it as opaque.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::{ApiError, ApiResult, ErrorCode};

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// Most items per page; a larger `limit` is lowered to this.
pub const MAX_LIMIT: i64 = 200;

const CURSOR_PREFIX: &str = "c1:";

/// Which page to return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Return items whose id is greater than this (empty: from the start).
    pub after: String,
    /// Items per page.
    pub limit: i64,
}

impl PageRequest {
    /// Reads `limit` and `cursor` from a query string's parameters.
    pub fn from_query(query: &HashMap<String, String>) -> ApiResult<Self> {
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<i64>() {
                Ok(limit) if limit >= 1 => limit.min(MAX_LIMIT),
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::BadRequest,
                        format!(
                            "`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{text}`"
                        ),
                    ));
                }
            },
        };
        let after = match query.get("cursor").filter(|cursor| !cursor.is_empty()) {
            None => String::new(),
            Some(cursor) => decode_cursor(cursor).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    "`cursor` is not valid; pass the `next_cursor` of the previous page unchanged",
                )
            })?,
        };
        Ok(Self { after, limit })
    }

    /// How many rows to fetch: one more than a page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// Cuts fetched rows down to one page and computes the next cursor.
    pub fn paginate<T>(
        &self,
        mut rows: Vec<T>,
        id_of: impl Fn(&T) -> &str,
    ) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        let next = if more {
            rows.last().map(|row| encode_cursor(id_of(row)))
        } else {
            None
        };
        (rows, next)
    }
}

/// A page of a list, as every list endpoint answers.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{id}"))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let id = text.strip_prefix(CURSOR_PREFIX)?;
    (!id.is_empty() && id.len() <= 128).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn limits_are_defaulted_capped_and_checked() {
        assert_eq!(
            PageRequest::from_query(&query(&[])).unwrap().limit,
            DEFAULT_LIMIT
        );
        assert_eq!(
            PageRequest::from_query(&query(&[("limit", "5000")]))
                .unwrap()
                .limit,
            MAX_LIMIT
        );
        for bad in ["0", "-1", "ten", ""] {
            assert!(
                PageRequest::from_query(&query(&[("limit", bad)])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let page = PageRequest {
            after: String::new(),
            limit: 2,
        };
        let (items, next) = page.paginate(vec!["a", "b", "c"], |s| s);
        assert_eq!(items, ["a", "b"]);
        let next = next.unwrap();
        let following = PageRequest::from_query(&query(&[("cursor", &next)])).unwrap();
        assert_eq!(following.after, "b");
        let (_, last) = page.paginate(vec!["a"], |s| s);
        assert!(last.is_none());
        assert!(PageRequest::from_query(&query(&[("cursor", "not-a-cursor")])).is_err());
    }
}
