//! Rate limits and per-key request counts.
//!
//! Limits are fixed one-minute windows per bucket (a key, and a project or org when they have a
//! limit of their own). On one node the counters live in memory; with `shared` they live in the
//! database (one atomic upsert per bucket), so several nodes on one PostgreSQL enforce one limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use canopy_core::{Error, KeyId};
use canopy_store::Store;
use canopy_store::limits::{UsageRow, add_usage, incr_counter};

pub const WINDOW_SECS: i64 = 60;
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// One limit to enforce: a bucket name and its allowance per window.
#[derive(Clone, Debug)]
pub struct Limit {
    /// `key:<id>`, `prj:<id>` or `org:<id>`; shared, so counting a request copies no text.
    pub bucket: Arc<str>,
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
    local: Mutex<HashMap<Arc<str>, (i64, u32)>>,
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

    fn local_hit(&self, bucket: &Arc<str>, window: i64) -> u32 {
        let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 50_000 {
            map.retain(|_, (w, _)| *w == window);
        }
        let entry = match map.get_mut(&**bucket) {
            Some(e) => e,
            None => map.entry(bucket.clone()).or_insert((window, 0)),
        };
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
    /// (key, UTC day number) → per route group: (group, requests, rate limited). A key uses a
    /// handful of groups a day, so a short list beats a map and needs no owned key to look up.
    pending: Mutex<HashMap<(KeyId, i64), Vec<GroupCount>>>,
}

/// (route group, requests, of which rate limited).
type GroupCount = (Box<str>, i64, i64);

const DAY_MS: i64 = 86_400_000;

impl UsageMeter {
    /// Counts one request of `key_id` at `at_ms` (Unix milliseconds) on route group `group`.
    pub fn record(&self, key_id: KeyId, at_ms: i64, group: &str, rate_limited: bool) {
        let day = at_ms.div_euclid(DAY_MS);
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let groups = map.entry((key_id, day)).or_default();
        let i = match groups.iter().position(|(g, _, _)| &**g == group) {
            Some(i) => i,
            None => {
                groups.push((group.into(), 0, 0));
                groups.len() - 1
            }
        };
        if let Some(e) = groups.get_mut(i) {
            e.1 += 1;
            e.2 += i64::from(rate_limited);
        }
    }

    pub async fn flush(&self, store: &Store) -> Result<(), Error> {
        let batch: Vec<UsageRow> = {
            let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            map.drain()
                .flat_map(|((key_id, day), groups)| {
                    let key_id = key_id.db();
                    let day = canopy_core::time::day(day * DAY_MS);
                    groups
                        .into_iter()
                        .map(move |(route_group, requests, rate_limited)| UsageRow {
                            key_id: key_id.clone(),
                            day: day.clone(),
                            route_group: route_group.into(),
                            requests,
                            rate_limited,
                        })
                })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_windows_count_and_reset() {
        let l = RateLimiter::new(false);
        let b: Arc<str> = "key:a".into();
        assert_eq!(l.local_hit(&b, 60), 1);
        assert_eq!(l.local_hit(&b, 60), 2);
        assert_eq!(l.local_hit(&"key:b".into(), 60), 1);
        assert_eq!(l.local_hit(&b, 120), 1);
    }

    #[test]
    fn usage_groups_by_key_day_and_group() {
        let m = UsageMeter::default();
        let k = KeyId::new();
        let t = 1_710_500_000_123; // 2024-03-15
        m.record(k, t, "v1/clients", false);
        m.record(k, t + 1000, "v1/clients", true);
        m.record(k, t, "api/auth", false);
        m.record(k, t + DAY_MS, "v1/clients", false);
        let map = m.pending.lock().unwrap_or_else(|p| p.into_inner());
        let day = t.div_euclid(DAY_MS);
        assert_eq!(canopy_core::time::day(day * DAY_MS), "2024-03-15");
        let today = map.get(&(k, day)).cloned().unwrap_or_default();
        assert_eq!(
            today,
            vec![("v1/clients".into(), 2, 1), ("api/auth".into(), 1, 0)]
        );
        assert_eq!(map.get(&(k, day + 1)).map(Vec::len), Some(1));
    }
}
