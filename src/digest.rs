//! Stable digests for fingerprints a server logs: the same input gives the
//! same digest on every run, machine and version of the hashing code's
//! dependencies (unlike `ahash`, which is seeded per process). Two FNV-1a
//! lanes of 64 bits with different offset bases give 128 bits; this is an
//! identifier, not a cryptographic hash.

use serde_json::Value;

/// A 128-bit FNV-1a digest being built.
#[derive(Clone, Debug)]
pub(crate) struct Digest {
    a: u64,
    b: u64,
}

const PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Digest {
    fn default() -> Self {
        // The standard FNV-1a offset basis, and a second basis taken from
        // the digits of pi so the lanes differ from the first byte on.
        Digest { a: 0xcbf2_9ce4_8422_2325, b: 0x2438_6a88_85a3_08d3 }
    }
}

impl Digest {
    /// Feeds bytes.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &x in bytes {
            self.a = (self.a ^ x as u64).wrapping_mul(PRIME);
            self.b = (self.b ^ x as u64).wrapping_mul(PRIME).rotate_left(5);
        }
        self
    }
    /// Feeds a length-prefixed field, so that `("ab", "c")` and `("a",
    /// "bc")` differ.
    pub(crate) fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes(&(bytes.len() as u64).to_le_bytes()).bytes(bytes)
    }
    /// Feeds a JSON value in canonical form: object members sorted by key,
    /// so that member order does not change the digest.
    pub(crate) fn json(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Null => self.bytes(b"n"),
            Value::Bool(b) => self.bytes(if *b { b"t" } else { b"f" }),
            Value::Number(n) => self.bytes(b"#").field(n.to_string().as_bytes()),
            Value::String(s) => self.bytes(b"s").field(s.as_bytes()),
            Value::Array(a) => {
                self.bytes(b"[").bytes(&(a.len() as u64).to_le_bytes());
                a.iter().for_each(|x| {
                    self.json(x);
                });
                self
            }
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                self.bytes(b"{").bytes(&(keys.len() as u64).to_le_bytes());
                for k in keys {
                    self.field(k.as_bytes()).json(&o[k]);
                }
                self
            }
        }
    }
    /// The digest as 32 lowercase hex digits.
    pub(crate) fn hex(&self) -> String {
        format!("{:016x}{:016x}", self.a, self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_order_does_not_matter_and_content_does() {
        let d = |v: Value| Digest::default().json(&v).hex();
        let a = d(serde_json::json!({"a": 1, "b": [true, null]}));
        let b = d(serde_json::json!({"b": [true, null], "a": 1}));
        assert_eq!(a, b);
        assert_ne!(a, d(serde_json::json!({"a": 1, "b": [null, true]})));
        assert_ne!(d(serde_json::json!(["ab", "c"])), d(serde_json::json!(["a", "bc"])));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn digest_is_stable_across_releases() {
        // A fingerprint a server logged must mean the same schema later: this
        // value (computed independently, in Python) changes only if the
        // digest's definition does.
        assert_eq!(Digest::default().bytes(b"grammask").hex(), "ce24f9d50005d10e8133eb094cfdab4d");
    }
}
