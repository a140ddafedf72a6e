//! Cursor pagination. A cursor is opaque to clients: base64url JSON of the last row's
//! `(created_at, id)`, so the store can run a keyset query without `OFFSET` or `COUNT(*)`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::{Code, Error};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// The position after which the next page starts (newest-first order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// `created_at` of the last row, Unix milliseconds.
    pub t: i64,
    /// Id of the last row in its database form.
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(s: &str) -> Result<Self, Error> {
        URL_SAFE_NO_PAD
            .decode(s.as_bytes())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                Error::new(
                    Code::InvalidCursor,
                    "The cursor is not one this server issued. Pass `next_cursor` back unchanged.",
                )
                .with_field("cursor")
            })
    }
}

/// A validated page request: `limit` within 1..=100 and a decoded cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

impl PageRequest {
    /// Checks the raw query values; the one place `limit` and `cursor` are validated.
    pub fn new(limit: Option<i64>, cursor: Option<&str>) -> Result<Self, Error> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=i64::from(MAX_LIMIT)).contains(&n) => n as u32,
            Some(n) => {
                return Err(Error::validation(
                    "limit",
                    format!("limit must be between 1 and {MAX_LIMIT}; got {n}."),
                ));
            }
        };
        let after = match cursor {
            None | Some("") => None,
            Some(c) => Some(Cursor::decode(c)?),
        };
        Ok(PageRequest { limit, after })
    }

    /// Rows to fetch: one more than the page, so the extra row tells whether more exist.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// The `pagination` member of every list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pagination {
    pub has_more: bool,
    pub next_cursor: Option<String>,
    pub limit: u32,
}

/// One page of results: `{"data": [...], "pagination": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

impl<T> Paged<T> {
    /// Builds a page from up to `limit + 1` rows, in order; `key` gives each row's cursor.
    pub fn from_rows(mut rows: Vec<T>, page: &PageRequest, key: impl Fn(&T) -> Cursor) -> Self {
        let has_more = rows.len() > page.limit as usize;
        rows.truncate(page.limit as usize);
        let next_cursor = if has_more {
            rows.last().map(|r| key(r).encode())
        } else {
            None
        };
        Paged {
            data: rows,
            pagination: Pagination {
                has_more,
                next_cursor,
                limit: page.limit,
            },
        }
    }

    /// Builds a page from `(created_at, id)`-keyed rows and converts each kept row.
    pub fn try_from_rows<R, E>(
        rows: Vec<R>,
        page: &PageRequest,
        key: impl Fn(&R) -> (i64, &str),
        convert: impl FnMut(R) -> Result<T, E>,
    ) -> Result<Paged<T>, E> {
        let paged = Paged::from_rows(rows, page, |r| {
            let (t, id) = key(r);
            Cursor {
                t,
                id: id.to_owned(),
            }
        });
        let data = paged
            .data
            .into_iter()
            .map(convert)
            .collect::<Result<Vec<_>, E>>()?;
        Ok(Paged {
            data,
            pagination: paged.pagination,
        })
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            data: self.data.into_iter().map(f).collect(),
            pagination: self.pagination,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_bounds() {
        assert_eq!(PageRequest::new(None, None).map(|p| p.limit).ok(), Some(20));
        assert_eq!(
            PageRequest::new(Some(100), None).map(|p| p.limit).ok(),
            Some(100)
        );
        let err = PageRequest::new(Some(101), None).err();
        assert_eq!(err.as_ref().and_then(|e| e.field.as_deref()), Some("limit"));
        assert!(PageRequest::new(Some(0), None).is_err());
    }

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = Cursor {
            t: 42,
            id: "x".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).ok(), Some(c));
        let err = Cursor::decode("!!!").err().map(|e| e.code);
        assert_eq!(err, Some(Code::InvalidCursor));
    }

    #[test]
    fn from_rows_sets_has_more() {
        let page = PageRequest {
            limit: 2,
            after: None,
        };
        let p = Paged::from_rows(vec![1, 2, 3], &page, |n| Cursor {
            t: *n,
            id: n.to_string(),
        });
        assert_eq!(p.data, vec![1, 2]);
        assert!(p.pagination.has_more);
        let c = p
            .pagination
            .next_cursor
            .as_deref()
            .map(Cursor::decode)
            .and_then(Result::ok);
        assert_eq!(c.map(|c| c.t), Some(2));
    }
}

/// A single resource in the v1 envelope: `{"data": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Data<T> {
    pub data: T,
}

/// What a delete answers: `{"data": {"id": "...", "deleted": true}}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}
