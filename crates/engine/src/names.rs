//! Container names: Docker's validation rule, and generated `adjective_scientist` names.

use rand::Rng;

use crate::error::{Error, Result};

const ADJECTIVES: &[&str] = &[
    "able", "agile", "amber", "ardent", "bold", "brave", "bright", "brisk", "calm", "candid", "clever", "cosmic",
    "crisp", "daring", "deft", "eager", "earnest", "fair", "fearless", "fervent", "gentle", "glad", "gracious",
    "hardy", "humble", "jolly", "keen", "kind", "lively", "lucid", "mellow", "merry", "modest", "nimble", "noble",
    "patient", "placid", "plucky", "proud", "quick", "quiet", "rapid", "serene", "sharp", "shrewd", "steady",
    "sturdy", "swift", "tender", "tidy", "upbeat", "valiant", "vivid", "warm", "witty", "zealous",
];

const SCIENTISTS: &[&str] = &[
    "agnesi", "babbage", "banach", "bohr", "boole", "cantor", "curie", "darwin", "dijkstra", "euclid", "euler",
    "faraday", "fermat", "feynman", "franklin", "galois", "gauss", "germain", "hamilton", "hilbert", "hopper",
    "hypatia", "jackson", "johnson", "kepler", "knuth", "kovalevskaya", "lamarr", "laplace", "leavitt",
    "lovelace", "maxwell", "meitner", "mendel", "mirzakhani", "newton", "noether", "pascal", "poincare",
    "ramanujan", "riemann", "shannon", "somerville", "tesla", "thompson", "turing", "volta", "wiles", "wu",
];

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional leading '/'.
pub fn validate(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    let mut chars = n.chars();
    let ok = n.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(n.to_owned())
    } else {
        Err(Error::InvalidParameter(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// A fresh name not rejected by `taken`; after some collisions a digit is appended, as Docker does.
pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::rng();
    for attempt in 0..100 {
        let mut n = format!(
            "{}_{}",
            ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
            SCIENTISTS[rng.random_range(0..SCIENTISTS.len())]
        );
        if attempt > 5 {
            n.push_str(&rng.random_range(0..10).to_string());
        }
        if !taken(&n) {
            return n;
        }
    }
    new_id()[..12].to_owned()
}

/// A container ID: 32 random bytes in hex.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate("/web_1").unwrap(), "web_1");
        assert!(validate("a").is_err());
        assert!(validate("_x").is_err());
        assert!(validate("a b").is_err());
        let n = generate(|_| false);
        assert!(validate(&n).is_ok(), "{n}");
        assert_eq!(new_id().len(), 64);
    }
}
