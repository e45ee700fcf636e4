//! The per-principal rate limit (contract 1.1, `rate_limited`): a token bucket for each
//! known principal, taken from by every submit and query it sends, over any transport.
//! A principal that sends more than its share is answered `rate_limited` (HTTP 429 with
//! `Retry-After`) until its bucket refills, so no principal can starve the others.
//! Buckets exist only for principals in the principals file, so their number is bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use tafel_contract::PrincipalId;
use tafel_contract::reply::{ErrorCode, Refusal};

/// Submits and queries per second each principal may send, and how many at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` with a burst of twice as many; `None` for 0 (no limit).
    pub fn per_second(per_second: u32) -> Option<Self> {
        (per_second > 0).then(|| Self { per_second, burst: per_second.saturating_mul(2) })
    }
}

/// What `tafel serve` allows each principal unless told otherwise: far above what a
/// person or a well-behaved client sends, well below what floods a 2-core machine.
pub const DEFAULT_PER_SECOND: u32 = 2000;

#[derive(Debug, Default)]
pub struct Limiter {
    limit: Mutex<Option<RateLimit>>,
    buckets: Mutex<HashMap<PrincipalId, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limiter {
    /// Sets (or, with `None`, lifts) the limit; buckets start full again.
    pub fn set(&self, limit: Option<RateLimit>) {
        if let Ok(mut current) = self.limit.lock() {
            *current = limit;
        }
        if let Ok(mut buckets) = self.buckets.lock() {
            buckets.clear();
        }
    }

    pub fn limit(&self) -> Option<RateLimit> {
        self.limit.lock().ok().and_then(|limit| *limit)
    }

    /// Takes one token of `principal`'s bucket, or says when to ask again.
    pub fn take(&self, principal: &PrincipalId) -> Result<(), Refusal> {
        let Some(limit) = self.limit() else { return Ok(()) };
        let now = Instant::now();
        let mut buckets =
            self.buckets.lock().map_err(|_| Refusal::new(ErrorCode::Unavailable, "the rate limiter failed"))?;
        let bucket = buckets.entry(principal.clone()).or_insert(Bucket { tokens: f64::from(limit.burst), at: now });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * f64::from(limit.per_second);
        bucket.tokens = (bucket.tokens + refilled).min(f64::from(limit.burst));
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Refusal::new(
            ErrorCode::RateLimited,
            format!("{principal} sent more than {} submits and queries per second; retry after 1 s", limit.per_second),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_others_are_not_touched() {
        let limiter = Limiter::default();
        let (acme, rival) = (PrincipalId::parse("acme").unwrap(), PrincipalId::parse("rival").unwrap());
        assert!((0..10_000).all(|_| limiter.take(&acme).is_ok()), "no limit, nothing refused");
        limiter.set(Some(RateLimit { per_second: 1, burst: 5 }));
        assert!((0..5).all(|_| limiter.take(&acme).is_ok()));
        let refused = limiter.take(&acme).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(limiter.take(&rival).is_ok(), "another principal has its own bucket");
        limiter.set(None);
        assert!(limiter.take(&acme).is_ok());
    }
}
