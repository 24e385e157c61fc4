//! The receiver's two memories, both bounded and both per replica: a token bucket per client
//! address ([`RateLimiter`]), and the delivery ids seen lately ([`ReplayCache`]).
//!
//! Both take the current time as an argument, so that their behaviour is decided (and
//! tested) without waiting.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How many requests a client may send: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// The bucket's size: requests a quiet client may send at once.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 20.0,
            burst: 40,
        }
    }
}

impl RateLimit {
    /// Whether limiting is off (a zero rate or burst).
    pub fn is_off(&self) -> bool {
        self.per_second <= 0.0 || self.burst == 0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token bucket per client. At most `max_clients` buckets are kept: past that, the buckets
/// that have refilled (clients quiet long enough to be as good as new) are dropped, and if
/// none has, the stalest one, so a flood of source addresses cannot grow memory.
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    limit: RateLimit,
    max_clients: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter keeping at most `max_clients` buckets.
    pub fn new(limit: RateLimit, max_clients: usize) -> Self {
        RateLimiter {
            limit,
            max_clients: max_clients.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `client` at `now`: `Ok` when it had one, else how long until it has.
    pub fn check(&mut self, client: &K, now: Instant) -> Result<(), Duration> {
        if self.limit.is_off() {
            return Ok(());
        }
        let burst = f64::from(self.limit.burst);
        if !self.buckets.contains_key(client) && self.buckets.len() >= self.max_clients {
            self.evict(now);
        }
        let rate = self.limit.per_second;
        let bucket = self.buckets.entry(client.clone()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
    }

    /// How many clients have a bucket.
    pub fn clients(&self) -> usize {
        self.buckets.len()
    }

    fn evict(&mut self, now: Instant) {
        let full_after = f64::from(self.limit.burst) / self.limit.per_second;
        self.buckets.retain(|_, bucket| {
            now.saturating_duration_since(bucket.updated).as_secs_f64() < full_after
        });
        if self.buckets.len() >= self.max_clients {
            let stalest = self
                .buckets
                .iter()
                .min_by_key(|(_, bucket)| bucket.updated)
                .map(|(client, _)| client.clone());
            if let Some(client) = stalest {
                self.buckets.remove(&client);
            }
        }
    }
}

/// The delivery ids seen within `window`, at most `capacity` of them (the oldest go first).
#[derive(Debug)]
pub struct ReplayCache {
    window: Duration,
    capacity: usize,
    seen: HashMap<String, Instant>,
    order: VecDeque<(String, Instant)>,
}

impl ReplayCache {
    /// A cache remembering ids for `window`, at most `capacity` at a time.
    pub fn new(window: Duration, capacity: usize) -> Self {
        ReplayCache {
            window,
            capacity: capacity.max(1),
            seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `id` as received at `now`; false when it was already received within the
    /// window (a replay).
    pub fn first_time(&mut self, id: &str, now: Instant) -> bool {
        self.expire(now);
        if self.seen.contains_key(id) {
            return false;
        }
        while self.seen.len() >= self.capacity {
            let Some((oldest, at)) = self.order.pop_front() else {
                break;
            };
            self.forget_entry(&oldest, at);
        }
        self.seen.insert(id.to_owned(), now);
        self.order.push_back((id.to_owned(), now));
        true
    }

    /// Forgets `id` (its delivery could not be carried out: the host's retry must pass).
    pub fn forget(&mut self, id: &str) {
        self.seen.remove(id);
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((id, at)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.window {
                break;
            }
            let (id, at) = (id.clone(), *at);
            self.order.pop_front();
            self.forget_entry(&id, at);
        }
    }

    /// Removes `id` if the entry `at` is still its current one (a forgotten and received-again
    /// id has a newer entry further back in the queue).
    fn forget_entry(&mut self, id: &str, at: Instant) {
        if self.seen.get(id) == Some(&at) {
            self.seen.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32, max_clients: usize) -> RateLimiter<u8> {
        RateLimiter::new(RateLimit { per_second, burst }, max_clients)
    }

    #[test]
    fn a_client_gets_its_burst_then_the_rate() {
        let mut limiter = limiter(2.0, 3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(&1, t0), Ok(()));
        }
        let wait = limiter.check(&1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500), "one token takes 1/rate");
        // Half a second later, one token: one request passes, the next waits again.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(limiter.check(&1, t1), Ok(()));
        assert!(limiter.check(&1, t1).is_err());
        // Another client is not affected.
        assert_eq!(limiter.check(&2, t1), Ok(()));
    }

    #[test]
    fn a_quiet_client_refills_only_up_to_its_burst() {
        let mut limiter = limiter(10.0, 2, 10);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(limiter.check(&1, t0), Ok(()));
        assert_eq!(limiter.check(&1, later), Ok(()));
        assert_eq!(limiter.check(&1, later), Ok(()));
        assert!(limiter.check(&1, later).is_err());
    }

    #[test]
    fn a_zero_rate_or_burst_turns_limiting_off() {
        for (rate, burst) in [(0.0, 10), (5.0, 0)] {
            let mut limiter = limiter(rate, burst, 1);
            let now = Instant::now();
            for client in 0..100 {
                assert_eq!(limiter.check(&(client % 3), now), Ok(()));
            }
            assert_eq!(limiter.clients(), 0);
        }
    }

    #[test]
    fn buckets_are_bounded_and_a_flooding_client_stays_limited() {
        let mut limiter = limiter(1.0, 1, 3);
        let t0 = Instant::now();
        assert_eq!(limiter.check(&0, t0), Ok(()));
        assert!(limiter.check(&0, t0).is_err());
        // Many other addresses: never more than three buckets.
        for client in 1..=50u8 {
            let _ = limiter.check(&client, t0 + Duration::from_millis(u64::from(client)));
            assert!(limiter.clients() <= 3);
        }
        // Full buckets (quiet for longer than burst/rate) are the ones dropped first.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(limiter.check(&200, later), Ok(()));
        assert!(limiter.clients() <= 3);
        assert!(
            limiter.check(&200, later).is_err(),
            "its own bucket is kept"
        );
    }

    #[test]
    fn a_delivery_is_new_once_within_the_window() {
        let mut cache = ReplayCache::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        assert!(cache.first_time("a", t0));
        assert!(!cache.first_time("a", t0 + Duration::from_secs(59)));
        assert!(cache.first_time("b", t0));
        // After the window, the same id is new again.
        assert!(cache.first_time("a", t0 + Duration::from_secs(60)));
        assert!(!cache.first_time("a", t0 + Duration::from_secs(61)));
    }

    #[test]
    fn the_cache_keeps_at_most_its_capacity_dropping_the_oldest() {
        let mut cache = ReplayCache::new(Duration::from_secs(3600), 3);
        let t0 = Instant::now();
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            assert!(cache.first_time(id, t0 + Duration::from_secs(i as u64)));
        }
        assert_eq!(cache.len(), 3);
        let now = t0 + Duration::from_secs(10);
        assert!(cache.first_time("a", now), "the oldest was dropped");
        assert!(!cache.first_time("d", now));
    }

    #[test]
    fn a_forgotten_delivery_passes_again_and_keeps_its_new_entry() {
        let mut cache = ReplayCache::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        assert!(cache.first_time("a", t0));
        cache.forget("a");
        assert!(cache.is_empty());
        let t1 = t0 + Duration::from_secs(30);
        assert!(cache.first_time("a", t1));
        // The first entry's expiry must not drop the second one.
        assert!(!cache.first_time("a", t0 + Duration::from_secs(70)));
        assert!(cache.first_time("a", t1 + Duration::from_secs(60)));
    }
}
