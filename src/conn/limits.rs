//! Abuse limits: the per-connection message rate (token bucket) and per-address connection counts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

pub use crate::config::RateLimit;

/// What the bucket says about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit.
    Allow,
    /// Over the limit: refuse this frame with ERROR_MSG RATE_LIMITED.
    Refuse,
    /// Over the limit for too long: close the connection.
    Disconnect,
}

/// One connection's token bucket. Invariant: `0 <= tokens <= burst`.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    /// Frames that may be sent now.
    tokens: f64,
    /// When `tokens` was last refilled.
    last: Instant,
    /// Frames refused since the last allowed one.
    refused: u32,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(limit: &RateLimit, now: Instant) -> Self {
        TokenBucket { tokens: limit.burst, last: now, refused: 0 }
    }

    /// Takes a token for one frame.
    pub fn check(&mut self, limit: &RateLimit, now: Instant) -> Verdict {
        if limit.rate <= 0.0 {
            return Verdict::Allow;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * limit.rate).min(limit.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            return Verdict::Allow;
        }
        self.refused += 1;
        if self.refused >= limit.disconnect_after {
            Verdict::Disconnect
        } else {
            Verdict::Refuse
        }
    }
}

/// Open connections per source address, for the per-address cap.
#[derive(Debug, Default)]
pub struct PerAddress {
    /// Count per address. Invariant: no zero entries.
    counts: HashMap<IpAddr, u32>,
}

impl PerAddress {
    /// Counts a new connection from `ip` unless that would pass `max`. Returns false if refused.
    pub fn admit(&mut self, ip: IpAddr, max: u32) -> bool {
        let n = self.counts.entry(ip).or_insert(0);
        if *n >= max {
            if *n == 0 {
                self.counts.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// Forgets one connection from `ip`.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.counts.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refuses_then_refills() {
        let limit = RateLimit { rate: 10.0, burst: 3.0, disconnect_after: 4 };
        let t0 = Instant::now();
        let mut b = TokenBucket::new(&limit, t0);
        assert_eq!([0; 3].map(|_| b.check(&limit, t0)), [Verdict::Allow; 3]);
        assert_eq!(b.check(&limit, t0), Verdict::Refuse);
        // 100 ms at 10/s refills one token.
        assert_eq!(b.check(&limit, t0 + Duration::from_millis(100)), Verdict::Allow);
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!([0; 3].map(|_| b.check(&limit, t1)), [Verdict::Refuse; 3]);
        assert_eq!(b.check(&limit, t1), Verdict::Disconnect);
    }

    #[test]
    fn zero_rate_disables() {
        let limit = RateLimit { rate: 0.0, ..RateLimit::default() };
        let now = Instant::now();
        let mut b = TokenBucket::new(&limit, now);
        assert!((0..10_000).all(|_| b.check(&limit, now) == Verdict::Allow));
    }

    #[test]
    fn per_address_cap() {
        let mut p = PerAddress::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(p.admit(ip, 2) && p.admit(ip, 2));
        assert!(!p.admit(ip, 2));
        p.release(ip);
        assert!(p.admit(ip, 2));
        assert!(!p.admit(ip, 0));
    }
}
