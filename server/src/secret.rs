//! Random tokens (visitor tokens, session cookies, system message ids) and the digests
//! under which they are stored.

use sha2::{Digest, Sha256};

/// A new 192-bit random token, as 48 lowercase hex digits.
pub fn token() -> String {
    let mut bytes = [0u8; 24];
    // The operating system's generator does not fail on any platform Parlor runs on;
    // if it ever did, serving with a predictable token would be worse than stopping.
    getrandom::fill(&mut bytes).expect("the operating system's random generator works");
    hex(&bytes)
}

/// Whether `token` looks like one [`token`] made, before it is looked up.
pub fn is_token(token: &str) -> bool {
    token.len() == 48
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The SHA-256 of a token, as hex: what the database keeps instead of the token.
pub fn digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_recognised() {
        let (a, b) = (token(), token());
        assert_ne!(a, b);
        assert!(is_token(&a));
        assert!(!is_token("guess"));
        assert!(!is_token(&a.to_uppercase()));
    }

    #[test]
    fn the_digest_is_not_the_token() {
        let t = token();
        assert_ne!(digest(&t), t);
        assert_eq!(digest(&t), digest(&t));
    }
}
