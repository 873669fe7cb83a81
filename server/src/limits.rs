//! Rate limits for what visitors send: chat messages per second and new chats per
//! minute, each counted per visitor token and per IP address (a shared office or a
//! phone network puts many visitors behind one address, so its limits are wider).
//! Token buckets: a burst is allowed, then a steady rate. A refused frame gets a clear
//! `too_fast` error and changes nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use parlor_protocol::{ErrorCode, ProtocolError};

use crate::Config;

/// A steady rate and the burst allowed above it.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub per_sec: f64,
    pub burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets stop being kept once this many exist and they have refilled.
const PRUNE_AT: usize = 50_000;

/// One rate, counted separately per key.
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one from `key`'s bucket; `false` when it is empty.
    pub fn allow(&self, key: &str, now: Instant) -> bool {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= PRUNE_AT {
            let rate = self.rate;
            buckets.retain(|_, bucket| refill(bucket, rate, now) < rate.burst);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.rate.burst,
            at: now,
        });
        if refill(bucket, self.rate, now) >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn refill(bucket: &mut Bucket, rate: Rate, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate.per_sec).min(rate.burst);
    bucket.at = now;
    bucket.tokens
}

/// Every limit on what visitors send.
pub struct Limits {
    messages_per_visitor: Limiter,
    messages_per_ip: Limiter,
    chats_per_visitor: Limiter,
    chats_per_ip: Limiter,
}

/// A visitor may start 5 chats at once, then one every 2 minutes.
pub const CHATS_PER_VISITOR: Rate = Rate {
    per_sec: 1.0 / 120.0,
    burst: 5.0,
};

impl Limits {
    pub fn new(config: &Config) -> Self {
        let visitor_messages = f64::from(config.messages_per_visitor_per_sec);
        let ip_messages = f64::from(config.messages_per_ip_per_sec);
        let ip_chats = f64::from(config.chats_per_ip_per_minute);
        Self {
            messages_per_visitor: Limiter::new(Rate {
                per_sec: visitor_messages,
                burst: visitor_messages * 10.0,
            }),
            messages_per_ip: Limiter::new(Rate {
                per_sec: ip_messages,
                burst: ip_messages * 4.0,
            }),
            chats_per_visitor: Limiter::new(CHATS_PER_VISITOR),
            chats_per_ip: Limiter::new(Rate {
                per_sec: ip_chats / 60.0,
                burst: ip_chats,
            }),
        }
    }

    /// May this visitor (token) at this address send a message now?
    pub fn message(&self, token: &str, ip: &str) -> Result<(), ProtocolError> {
        allow_both(
            (&self.messages_per_visitor, token),
            (&self.messages_per_ip, ip),
            "You are sending messages too quickly. Wait a moment, then send again.",
        )
    }

    /// May this visitor (token) at this address start a chat now?
    pub fn chat(&self, token: &str, ip: &str) -> Result<(), ProtocolError> {
        allow_both(
            (&self.chats_per_visitor, token),
            (&self.chats_per_ip, ip),
            "Too many chats were started from here. Please try again in a few minutes.",
        )
    }
}

/// Takes from the visitor's bucket, then the address's; `refusal` when either is empty.
fn allow_both(
    (per_visitor, token): (&Limiter, &str),
    (per_ip, ip): (&Limiter, &str),
    refusal: &str,
) -> Result<(), ProtocolError> {
    let now = Instant::now();
    if per_visitor.allow(token, now) && per_ip.allow(ip, now) {
        Ok(())
    } else {
        Err(ProtocolError::new(ErrorCode::TooFast, refusal))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RATE: Rate = Rate {
        per_sec: 2.0,
        burst: 3.0,
    };

    #[test]
    fn a_burst_is_allowed_then_the_steady_rate() {
        let limiter = Limiter::new(RATE);
        let start = Instant::now();
        assert!((0..3).all(|_| limiter.allow("v", start)));
        assert!(!limiter.allow("v", start));
        assert!(!limiter.allow("v", start + Duration::from_millis(400)));
        assert!(limiter.allow("v", start + Duration::from_millis(500)));
        assert!(!limiter.allow("v", start + Duration::from_millis(600)));
    }

    #[test]
    fn each_key_has_its_own_bucket() {
        let limiter = Limiter::new(RATE);
        let now = Instant::now();
        assert!((0..3).all(|_| limiter.allow("a", now)));
        assert!(!limiter.allow("a", now));
        assert!(limiter.allow("b", now));
    }

    #[test]
    fn a_bucket_never_holds_more_than_its_burst() {
        let limiter = Limiter::new(RATE);
        let start = Instant::now();
        limiter.allow("v", start);
        let later = start + Duration::from_secs(3600);
        assert!((0..3).all(|_| limiter.allow("v", later)));
        assert!(!limiter.allow("v", later));
    }
}
