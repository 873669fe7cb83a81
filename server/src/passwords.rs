//! Argon2 password hashes, computed on the blocking pool a few at a time. Each takes
//! about 19 MiB and most of a core for a moment; without a bound, a burst of sign-ins
//! (or of guesses) would fill the blocking pool and starve everything else. Checks
//! beyond the bound wait in a short queue; past that they are refused at once, and the
//! caller answers "busy, try again".

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::store::{StoreError, StoreResult};

/// Hashes computed at once: one per core of a small server.
const AT_ONCE: usize = 2;

/// Hashes that may wait for a turn; more are refused.
const MAX_WAITING: usize = 32;

/// Turns at hashing, for one server.
pub struct Passwords {
    turns: Semaphore,
    waiting: AtomicUsize,
}

impl Default for Passwords {
    fn default() -> Self {
        Self {
            turns: Semaphore::new(AT_ONCE),
            waiting: AtomicUsize::new(0),
        }
    }
}

/// A valid Argon2 hash of a password nobody has, for constant-time failed logins.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$cGFybG9yLWR1bW15$0bLLZsA4lqJVa7zXyNH0zhAb4M6fUj2oGrj1Dh1dGPY";

impl Passwords {
    /// Runs `work` on the blocking pool once a turn is free.
    async fn in_turn<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::PasswordsBusy);
        }
        let turn = self.turns.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _turn = turn.map_err(|e| StoreError::Password(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| StoreError::Password(e.to_string()))?
    }

    pub async fn hash(&self, password: String) -> StoreResult<String> {
        self.in_turn(move || hash_password(&password)).await
    }

    pub async fn verify(&self, password: String, hash: String) -> StoreResult<bool> {
        self.in_turn(move || verify_password(&password, &hash))
            .await
    }
}

fn hash_password(password: &str) -> StoreResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Password(e.to_string()))?;
        let salt =
            SaltString::encode_b64(&bytes).map_err(|e| StoreError::Password(e.to_string()))?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| StoreError::Password(e.to_string()))
    }
}

fn verify_password(password: &str, hash: &str) -> StoreResult<bool> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let parsed = PasswordHash::new(hash).map_err(|e| StoreError::Password(e.to_string()))?;
    Ok(argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_valid_argon2_hash() {
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_checks_past_the_queue_is_refused_and_the_rest_run() {
        let passwords = std::sync::Arc::new(Passwords::default());
        let burst: Vec<_> = (0..AT_ONCE + MAX_WAITING + 8)
            .map(|_| {
                let passwords = passwords.clone();
                tokio::spawn(
                    async move { passwords.verify("guess".into(), DUMMY_HASH.into()).await },
                )
            })
            .collect();
        let mut busy = 0;
        let mut checked = 0;
        for check in burst {
            match check.await.expect("joined") {
                Err(StoreError::PasswordsBusy) => busy += 1,
                Ok(false) => checked += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(busy >= 8, "{busy} refused");
        assert!(checked >= AT_ONCE, "{checked} checked");
        assert_eq!(
            passwords.waiting.load(Ordering::SeqCst),
            0,
            "nobody is left waiting"
        );
    }
}
