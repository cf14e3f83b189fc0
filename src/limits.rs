//! Abuse limits kept in this process's memory, keyed by OAuth client id: failed client
//! authentications, and the rate of token and authorization requests.
//!
//! These counters are **per process**: with several Tessera processes on one PostgreSQL, a client
//! gets each limit once per process. (Login throttling, in [`crate::accounts::login`], is kept in
//! the database and shared by every process.) Only client ids that name a registered application
//! are ever counted, so the tables cannot be grown by inventing ids; they are also capped and
//! pruned of idle entries.
//!
//! Like the rest of the core, every method takes the current time (`now`, UTC seconds).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::config::LimitSettings;

/// The most keys a limiter remembers; past this, idle entries are pruned, and if none is idle a
/// new key is not tracked (and so not limited) until some are.
const MAX_KEYS: usize = 100_000;

/// A limit was reached; retry after this many seconds (at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: i64,
}

/// The limiters one server shares between its requests.
#[derive(Debug)]
pub struct Limits {
    /// Failed client authentications per client id at the token, revocation and introspection
    /// endpoints.
    pub client_auth: FailureLimiter,
    /// Token requests per authenticated client.
    pub token: RateLimiter,
    /// Authorization requests per client.
    pub authorize: RateLimiter,
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Limits {
        Limits {
            client_auth: FailureLimiter::new(settings.client_auth_failures, settings.client_auth_window),
            token: RateLimiter::per_minute(settings.token_requests_per_minute),
            authorize: RateLimiter::per_minute(settings.authorize_requests_per_minute),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a counter half-updated in a harmful way.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts attempts in a fixed window per key: once `limit` attempts are counted, further ones
/// are refused until the window closes. An attempt is counted *before* the secret is checked
/// (so parallel guesses cannot all slip under the limit) and taken back when it succeeds.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    window: i64,
    entries: Mutex<HashMap<String, Window>>,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: i64,
    count: u32,
}

impl FailureLimiter {
    pub fn new(limit: u32, window: i64) -> FailureLimiter {
        FailureLimiter { limit, window: window.max(1), entries: Mutex::new(HashMap::new()) }
    }

    fn open_window(&self, entry: &Window, now: i64) -> bool {
        now < entry.start + self.window
    }

    fn refusal(&self, entry: &Window, now: i64) -> Option<Throttled> {
        (self.open_window(entry, now) && entry.count >= self.limit)
            .then(|| Throttled { retry_after: (entry.start + self.window - now).max(1) })
    }

    /// Refuses `key` if its limit is reached, without counting anything.
    pub fn check(&self, key: &str, now: i64) -> Result<(), Throttled> {
        match lock(&self.entries).get(key).and_then(|entry| self.refusal(entry, now)) {
            Some(throttled) => Err(throttled),
            None => Ok(()),
        }
    }

    /// Counts one attempt for `key`, or refuses it if the limit is already reached.
    pub fn attempt(&self, key: &str, now: i64) -> Result<(), Throttled> {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get_mut(key) {
            if let Some(throttled) = self.refusal(entry, now) {
                return Err(throttled);
            }
            if !self.open_window(entry, now) {
                *entry = Window { start: now, count: 0 };
            }
            entry.count += 1;
            return Ok(());
        }
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, entry| self.open_window(entry, now));
            if entries.len() >= MAX_KEYS {
                return Ok(());
            }
        }
        entries.insert(key.to_owned(), Window { start: now, count: 1 });
        Ok(())
    }

    /// Takes back the attempt of a client that authenticated.
    pub fn forgive(&self, key: &str) {
        if let Some(entry) = lock(&self.entries).get_mut(key) {
            entry.count = entry.count.saturating_sub(1);
        }
    }
}

/// A token bucket per key: up to `capacity` requests at once, refilled at `capacity` per
/// `period` seconds.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    refill_per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: i64,
}

impl RateLimiter {
    pub fn per_minute(requests: u32) -> RateLimiter {
        let capacity = f64::from(requests.max(1));
        RateLimiter { capacity, refill_per_second: capacity / 60.0, buckets: Mutex::new(HashMap::new()) }
    }

    fn refilled(&self, bucket: &Bucket, now: i64) -> f64 {
        let elapsed = (now - bucket.updated).max(0) as f64;
        (bucket.tokens + elapsed * self.refill_per_second).min(self.capacity)
    }

    /// Takes one request from `key`'s bucket, or says how long until one is available.
    pub fn take(&self, key: &str, now: i64) -> Result<(), Throttled> {
        let mut buckets = lock(&self.buckets);
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            buckets.retain(|_, bucket| self.refilled(bucket, now) < self.capacity);
            if buckets.len() >= MAX_KEYS {
                return Ok(());
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.capacity, updated: now });
        let tokens = self.refilled(bucket, now);
        if tokens < 1.0 {
            let wait = ((1.0 - tokens) / self.refill_per_second).ceil() as i64;
            return Err(Throttled { retry_after: wait.max(1) });
        }
        *bucket = Bucket { tokens: tokens - 1.0, updated: now };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_refused_after_the_limit_until_the_window_closes() {
        let limiter = FailureLimiter::new(3, 60);
        for _ in 0..3 {
            assert_eq!(limiter.check("app", 1000), Ok(()));
            assert_eq!(limiter.attempt("app", 1000), Ok(()));
        }
        assert_eq!(limiter.check("app", 1010), Err(Throttled { retry_after: 50 }));
        assert_eq!(limiter.attempt("app", 1010), Err(Throttled { retry_after: 50 }));
        assert_eq!(limiter.check("other", 1010), Ok(()), "keys are independent");
        assert_eq!(limiter.attempt("app", 1060), Ok(()), "a new window opens");
    }

    #[test]
    fn a_forgiven_attempt_does_not_count() {
        let limiter = FailureLimiter::new(2, 60);
        for _ in 0..10 {
            assert_eq!(limiter.attempt("app", 1000), Ok(()));
            limiter.forgive("app");
        }
        assert_eq!(limiter.attempt("app", 1000), Ok(()));
        assert_eq!(limiter.attempt("app", 1000), Ok(()));
        assert!(limiter.attempt("app", 1000).is_err());
    }

    #[test]
    fn a_bucket_allows_a_burst_then_refills_at_its_rate() {
        let limiter = RateLimiter::per_minute(6); // one more every 10 seconds
        for _ in 0..6 {
            assert_eq!(limiter.take("app", 1000), Ok(()));
        }
        assert_eq!(limiter.take("app", 1000), Err(Throttled { retry_after: 10 }));
        assert_eq!(limiter.take("app", 1005), Err(Throttled { retry_after: 5 }));
        assert_eq!(limiter.take("app", 1010), Ok(()));
        assert!(limiter.take("app", 1010).is_err());
        assert_eq!(limiter.take("other", 1010), Ok(()));
        assert_eq!(limiter.take("app", 2000), Ok(()), "a long pause refills the bucket");
    }
}
