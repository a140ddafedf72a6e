//! Rate limits and per-key request counts.
//!
//! Limits are fixed one-minute windows per bucket (a key, and a project or org when they have a
//! limit of their own). On one node the counters live in memory; with `shared` they live in the
//! database (one atomic upsert per bucket), so several nodes on one PostgreSQL enforce one limit.

use std::collections::HashMap;
use std::sync::Mutex;

use canopy_core::Error;
use canopy_store::Store;
use canopy_store::limits::{UsageRow, add_usage, incr_counter};

pub const WINDOW_SECS: i64 = 60;
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// One limit to enforce: a bucket name and its allowance per window.
#[derive(Clone, Debug)]
pub struct Limit {
    pub bucket: String,
    pub per_minute: u32,
}

/// The outcome for the tightest of a request's limits.
#[derive(Clone, Copy, Debug)]
pub struct RateDecision {
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds when the window resets.
    pub reset: i64,
    pub exceeded: bool,
}

impl RateDecision {
    pub fn retry_after(&self, now_secs: i64) -> i64 {
        (self.reset - now_secs).max(1)
    }
}

pub struct RateLimiter {
    shared: bool,
    /// bucket → (window start, count). A std mutex: held for a few instructions, never across `.await`.
    local: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    pub fn new(shared: bool) -> RateLimiter {
        RateLimiter {
            shared,
            local: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request against every limit and reports the tightest.
    pub async fn hit(
        &self,
        store: &Store,
        limits: &[Limit],
        now_secs: i64,
    ) -> Result<RateDecision, Error> {
        let window = now_secs - now_secs.rem_euclid(WINDOW_SECS);
        let mut tightest: Option<RateDecision> = None;
        for l in limits {
            let count = if self.shared {
                let n = incr_counter(store, &l.bucket, window).await?;
                u32::try_from(n).unwrap_or(u32::MAX)
            } else {
                self.local_hit(&l.bucket, window)
            };
            let d = RateDecision {
                limit: l.per_minute,
                remaining: l.per_minute.saturating_sub(count),
                reset: window + WINDOW_SECS,
                exceeded: count > l.per_minute,
            };
            tightest = Some(match tightest {
                Some(t)
                    if (t.exceeded, u32::MAX - t.remaining)
                        >= (d.exceeded, u32::MAX - d.remaining) =>
                {
                    t
                }
                _ => d,
            });
        }
        tightest.ok_or_else(|| Error::internal("no rate limit configured"))
    }

    fn local_hit(&self, bucket: &str, window: i64) -> u32 {
        let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 50_000 {
            map.retain(|_, (w, _)| *w == window);
        }
        let entry = map.entry(bucket.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1
    }
}

/// Request counts per key, day and route group, gathered in memory and flushed in batches
/// (every few seconds and at shutdown) so that counting costs no write per request.
#[derive(Default)]
pub struct UsageMeter {
    pending: Mutex<HashMap<UsageKey, (i64, i64)>>,
}

/// (key id, day, route group).
type UsageKey = (String, String, String);

impl UsageMeter {
    pub fn record(&self, key_id: &str, day: String, group: &str, rate_limited: bool) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let e = map
            .entry((key_id.to_owned(), day, group.to_owned()))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 += i64::from(rate_limited);
    }

    pub async fn flush(&self, store: &Store) -> Result<(), Error> {
        let batch: Vec<UsageRow> = {
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            map.drain()
                .map(
                    |((key_id, day, route_group), (requests, rate_limited))| UsageRow {
                        key_id,
                        day,
                        route_group,
                        requests,
                        rate_limited,
                    },
                )
                .collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = store.begin().await?;
        add_usage(&mut tx, &batch).await?;
        tx.commit().await
    }
}
