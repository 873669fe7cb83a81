//! Rate limits for what visitors send: chat messages per second and new chats per
//! minute, each counted per visitor token and per IP address (a shared office or a
//! phone network puts many visitors behind one address, so its limits are wider).
//! Token buckets: a burst is allowed, then a steady rate. A refused frame gets a clear
//! `too_fast` error and changes nothing. Sign-ins are throttled too ([`LoginThrottle`]).
//!
//! Every map here is bounded: a periodic [`Limits::sweep`] forgets what has refilled or
//! gone quiet, and between sweeps a map that is full refuses new keys rather than grow
//! (so a flood of new addresses costs its sender, not the server's memory).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

/// The most keys one map holds between sweeps.
const MAX_KEYS: usize = 100_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

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
        let mut buckets = lock(&self.buckets);
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            return false;
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

    /// Forgets the buckets that have refilled: they are as good as new.
    pub fn sweep(&self, now: Instant) {
        let rate = self.rate;
        lock(&self.buckets).retain(|_, bucket| refill(bucket, rate, now) < rate.burst);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.buckets).len()
    }
}

fn refill(bucket: &mut Bucket, rate: Rate, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate.per_sec).min(rate.burst);
    bucket.at = now;
    bucket.tokens
}

/// Every limit on what visitors send, and on signing in.
pub struct Limits {
    messages_per_visitor: Limiter,
    messages_per_ip: Limiter,
    chats_per_visitor: Limiter,
    chats_per_ip: Limiter,
    pub login: LoginThrottle,
    /// What one widget's socket may send, frames of every kind together: far above what
    /// a person typing does (a message, a typing note every few seconds, a ping every
    /// 20 s), far below a flood.
    pub visitor_frames: Rate,
    /// What one console's socket may send: an agent working many chats sends more. The
    /// burst stays under a socket's outbox (256 frames), so that answering a whole burst
    /// cannot by itself overflow it.
    pub agent_frames: Rate,
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
            login: LoginThrottle::default(),
            visitor_frames: Rate {
                per_sec: f64::from(config.frames_per_visitor_per_sec),
                burst: f64::from(config.frames_per_visitor_per_sec) * 6.0,
            },
            agent_frames: Rate {
                per_sec: f64::from(config.frames_per_agent_per_sec),
                burst: (f64::from(config.frames_per_agent_per_sec) * 3.0).min(200.0),
            },
        }
    }

    /// Forgets what no longer limits anyone; run every few seconds.
    pub fn sweep(&self, now: Instant) {
        for limiter in [
            &self.messages_per_visitor,
            &self.messages_per_ip,
            &self.chats_per_visitor,
            &self.chats_per_ip,
        ] {
            limiter.sweep(now);
        }
        self.login.sweep(now);
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

/// What a socket may still read. Owned by the socket's own task: no lock.
pub struct FrameBudget {
    rate: Rate,
    bucket: Bucket,
    /// Frames refused since the last one read.
    refused: u32,
}

/// What to do with the frame just arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Read,
    /// Refuse it; `say` for the first of a streak (the rest are refused silently).
    Refuse {
        say: bool,
    },
    /// The socket keeps sending past its budget: close it.
    Close,
}

impl FrameBudget {
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            bucket: Bucket {
                tokens: rate.burst,
                at: now,
            },
            refused: 0,
        }
    }

    pub fn take(&mut self, now: Instant) -> Verdict {
        if refill(&mut self.bucket, self.rate, now) >= 1.0 {
            self.bucket.tokens -= 1.0;
            self.refused = 0;
            return Verdict::Read;
        }
        self.refused += 1;
        // A whole burst's worth refused in a row: that is not a person.
        if f64::from(self.refused) > self.rate.burst {
            Verdict::Close
        } else {
            Verdict::Refuse {
                say: self.refused == 1,
            }
        }
    }
}

/// The error a refused frame gets.
pub fn too_fast() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::TooFast,
        "Too many frames at once: slow down, then try again.",
    )
}

/// Failed sign-ins, per account and per client address: a few are free, then each
/// further try must wait twice as long as the one before (1 s, 2 s, 4 s … up to 15
/// minutes), answered `429` with `Retry-After` without checking the password at all. An
/// account's count is cleared by a successful sign-in; any count is forgotten after an
/// hour without failures.
#[derive(Default)]
pub struct LoginThrottle {
    accounts: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<String, Failures>>,
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failures before an account has to wait; an address (an office, a phone network)
/// gets more.
const ACCOUNT_FREE_FAILURES: u32 = 5;
const ADDRESS_FREE_FAILURES: u32 = 20;
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);
const FORGET_FAILURES_AFTER: Duration = Duration::from_secs(60 * 60);

impl Failures {
    /// How long after the last failure the next try must wait.
    fn wait(&self, free: u32) -> Duration {
        match self.count.checked_sub(free) {
            None => Duration::ZERO,
            Some(over) => Duration::from_secs(1_u64 << over.min(20)).min(LONGEST_WAIT),
        }
    }

    fn retry_after(&self, free: u32, now: Instant) -> Option<Duration> {
        let until = self.last + self.wait(free);
        (now < until).then(|| until - now)
    }
}

impl LoginThrottle {
    /// May `account` sign in from `address` now? Otherwise, how long to wait.
    pub fn check(&self, account: &str, address: &str, now: Instant) -> Result<(), Duration> {
        let waits = [
            lock(&self.accounts)
                .get(account)
                .and_then(|f| f.retry_after(ACCOUNT_FREE_FAILURES, now)),
            lock(&self.addresses)
                .get(address)
                .and_then(|f| f.retry_after(ADDRESS_FREE_FAILURES, now)),
        ];
        match waits.into_iter().flatten().max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// A wrong password (or an unknown account).
    pub fn failed(&self, account: &str, address: &str, now: Instant) {
        for (map, key) in [(&self.accounts, account), (&self.addresses, address)] {
            let mut map = lock(map);
            if !map.contains_key(key) && map.len() >= MAX_KEYS {
                continue;
            }
            let failures = map.entry(key.to_owned()).or_insert(Failures {
                count: 0,
                last: now,
            });
            failures.count = failures.count.saturating_add(1);
            failures.last = now;
        }
    }

    /// The right password: the account starts afresh.
    pub fn succeeded(&self, account: &str) {
        lock(&self.accounts).remove(account);
    }

    fn sweep(&self, now: Instant) {
        for map in [&self.accounts, &self.addresses] {
            lock(map).retain(|_, f| now.saturating_duration_since(f.last) < FORGET_FAILURES_AFTER);
        }
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

    #[test]
    fn refilled_buckets_are_swept_and_a_full_map_refuses_new_keys() {
        let limiter = Limiter::new(RATE);
        let start = Instant::now();
        assert!(limiter.allow("a", start));
        limiter.sweep(start);
        assert_eq!(limiter.len(), 1, "a is still short of its burst");
        limiter.sweep(start + Duration::from_secs(10));
        assert_eq!(limiter.len(), 0);
        for i in 0..MAX_KEYS {
            limiter.allow(&i.to_string(), start);
        }
        assert!(!limiter.allow("one more", start));
        assert!(limiter.allow("0", start), "known keys go on");
    }

    #[test]
    fn failed_sign_ins_make_the_account_wait_longer_and_longer() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..ACCOUNT_FREE_FAILURES {
            assert_eq!(throttle.check("ada", "1.2.3.4", start), Ok(()));
            throttle.failed("ada", "1.2.3.4", start);
        }
        assert_eq!(
            throttle.check("ada", "1.2.3.4", start),
            Err(Duration::from_secs(1))
        );
        let later = start + Duration::from_secs(1);
        assert_eq!(throttle.check("ada", "1.2.3.4", later), Ok(()));
        throttle.failed("ada", "1.2.3.4", later);
        assert_eq!(
            throttle.check("ada", "5.6.7.8", later),
            Err(Duration::from_secs(2)),
            "from any address"
        );
        assert_eq!(
            throttle.check("grace", "1.2.3.4", later),
            Ok(()),
            "other accounts"
        );
        throttle.succeeded("ada");
        assert_eq!(throttle.check("ada", "1.2.3.4", later), Ok(()));
    }

    #[test]
    fn the_wait_is_capped_and_failures_are_forgotten_after_an_hour() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..200 {
            throttle.failed("ada", "1.2.3.4", start);
        }
        assert_eq!(throttle.check("ada", "9.9.9.9", start), Err(LONGEST_WAIT));
        throttle.sweep(start + FORGET_FAILURES_AFTER);
        assert_eq!(
            throttle.check("ada", "1.2.3.4", start + FORGET_FAILURES_AFTER),
            Ok(())
        );
    }

    #[test]
    fn one_address_guessing_many_accounts_is_held_back() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..ADDRESS_FREE_FAILURES {
            throttle.failed(&format!("user{i}"), "1.2.3.4", now);
        }
        assert!(throttle.check("someone-new", "1.2.3.4", now).is_err());
        assert_eq!(throttle.check("someone-new", "5.6.7.8", now), Ok(()));
    }

    #[test]
    fn a_socket_over_its_frame_budget_is_told_once_then_closed() {
        let start = Instant::now();
        let mut budget = FrameBudget::new(RATE, start);
        assert!((0..3).all(|_| budget.take(start) == Verdict::Read));
        assert_eq!(budget.take(start), Verdict::Refuse { say: true });
        assert_eq!(budget.take(start), Verdict::Refuse { say: false });
        assert_eq!(budget.take(start), Verdict::Refuse { say: false });
        assert_eq!(budget.take(start), Verdict::Close);
    }

    #[test]
    fn a_socket_that_slows_down_is_read_again() {
        let start = Instant::now();
        let mut budget = FrameBudget::new(RATE, start);
        (0..3).for_each(|_| assert_eq!(budget.take(start), Verdict::Read));
        assert_eq!(budget.take(start), Verdict::Refuse { say: true });
        let later = start + Duration::from_millis(500);
        assert_eq!(budget.take(later), Verdict::Read);
        assert_eq!(
            budget.take(later),
            Verdict::Refuse { say: true },
            "a new streak"
        );
    }
}
