//! Subschemas as the schema compiler holds them, and the content keys under
//! which their machines are shared.
//!
//! Almost every subschema a compile visits is a part of the caller's
//! document; only rewrites (merged `allOf`, decided `enum`s, `const`
//! objects, pattern-property intersections) build new values. [`Sv`] borrows
//! the first kind and reference-counts the second, so queueing a machine for
//! a subschema copies nothing. (Deep-copying every queued subschema, and
//! printing it to key its machine, were a quarter of the compile time of
//! large nested schemas: each level copied and printed its whole subtree
//! again.)
//!
//! [`VKey`] keys a machine by kind, a few extra bytes and the subschema's
//! content: an order-sensitive structural hash, confirmed by an
//! order-sensitive structural comparison, so two keys are equal exactly when
//! the printed forms would have been.

use serde_json::{Number, Value};
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::rc::Rc;

/// `true`, the schema of anything: the default of `additionalProperties`
/// and of array items.
pub(crate) static TRUE: Value = Value::Bool(true);

/// A subschema: part of the document (`'a`), or built by a rewrite.
#[derive(Clone, Debug)]
pub(crate) enum Sv<'a> {
    Doc(&'a Value),
    Built(Rc<Value>),
}

impl Deref for Sv<'_> {
    type Target = Value;
    fn deref(&self) -> &Value {
        match self {
            Sv::Doc(v) => v,
            Sv::Built(v) => v,
        }
    }
}

impl<'a> Sv<'a> {
    pub fn built(v: Value) -> Sv<'a> {
        Sv::Built(Rc::new(v))
    }

    /// The part of this subschema that `get` picks: borrowed when this one
    /// is, else a copy of that part only.
    pub fn part(&self, get: impl for<'x> FnOnce(&'x Value) -> Option<&'x Value>) -> Option<Sv<'a>> {
        match self {
            Sv::Doc(v) => get(v).map(Sv::Doc),
            Sv::Built(v) => get(v).map(|p| Sv::built(p.clone())),
        }
    }
}

/// What a machine keyed by content is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Object,
    Array,
    Item,
    /// An object member; the key's bytes (or callee id) are the extra bytes.
    Member,
}

/// A machine's content key (see the module docs).
#[derive(Debug)]
pub(crate) struct VKey<'a> {
    kind: Kind,
    extra: Vec<u8>,
    hash: u64,
    value: Sv<'a>,
}

impl<'a> VKey<'a> {
    pub fn new(kind: Kind, extra: Vec<u8>, value: Sv<'a>) -> VKey<'a> {
        let mut h = ahash::AHasher::default();
        kind.hash(&mut h);
        extra.hash(&mut h);
        hash_value(&value, &mut h);
        VKey { kind, extra, hash: h.finish(), value }
    }

    pub fn value(&self) -> &Sv<'a> {
        &self.value
    }
}

impl Hash for VKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for VKey<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.hash == o.hash
            && self.kind == o.kind
            && self.extra == o.extra
            && (std::ptr::eq::<Value>(&*self.value, &*o.value) || same(&self.value, &o.value))
    }
}

impl Eq for VKey<'_> {}

fn hash_number(n: &Number, h: &mut impl Hasher) {
    if let Some(u) = n.as_u64() {
        h.write_u8(0);
        h.write_u64(u);
    } else if let Some(i) = n.as_i64() {
        h.write_u8(1);
        h.write_i64(i);
    } else {
        h.write_u8(2);
        h.write_u64(n.as_f64().map_or(0, f64::to_bits));
    }
}

/// Structural hash, sensitive to member order (like the printed form).
fn hash_value(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => h.write_u8(1 + u8::from(*b)),
        Value::Number(n) => {
            h.write_u8(3);
            hash_number(n, h);
        }
        Value::String(s) => {
            h.write_u8(4);
            s.hash(h);
        }
        Value::Array(a) => {
            h.write_u8(5);
            h.write_usize(a.len());
            for x in a {
                hash_value(x, h);
            }
        }
        Value::Object(m) => {
            h.write_u8(6);
            h.write_usize(m.len());
            for (k, x) in m {
                k.hash(h);
                hash_value(x, h);
            }
        }
    }
}

fn same_number(a: &Number, b: &Number) -> bool {
    match (a.as_u64(), b.as_u64(), a.as_i64(), b.as_i64()) {
        (Some(x), Some(y), _, _) => x == y,
        (None, None, Some(x), Some(y)) => x == y,
        (None, None, None, None) => a.as_f64().map(f64::to_bits) == b.as_f64().map(f64::to_bits),
        _ => false,
    }
}

/// Structural equality, sensitive to member order and to how a number is
/// written (`1` and `1.0` differ), like comparing printed forms.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, p), (l, q))| k == l && same(p, q))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(v: Value) -> VKey<'static> {
        VKey::new(Kind::Object, vec![], Sv::built(v))
    }

    /// Keys are equal exactly when the printed forms are.
    #[test]
    fn keys_match_printed_forms() {
        let vals = [
            json!({"a": 1, "b": 2}),
            json!({"b": 2, "a": 1}),
            json!({"a": 1.0, "b": 2}),
            json!({"a": -1, "b": 2}),
            json!({"a": [1, 2], "b": 2}),
            json!({"a": [2, 1], "b": 2}),
            json!({"a": "1", "b": 2}),
            json!({"a": null, "b": 2}),
            json!({"a": {"x": true}, "b": 2}),
            json!({"a": {"x": false}, "b": 2}),
            json!({"a": 0.0}),
            json!({"a": -0.0}),
            json!({"a": 1}),
            json!([]),
            json!({}),
            json!(""),
        ];
        for x in &vals {
            for y in &vals {
                let (px, py) =
                    (serde_json::to_string(x).expect("printable"), serde_json::to_string(y).expect("printable"));
                let printed = px == py;
                let (kx, ky) = (key(x.clone()), key(y.clone()));
                assert_eq!(kx == ky, printed, "{x} vs {y}");
                if printed {
                    assert_eq!(kx.hash, ky.hash, "{x}");
                }
            }
        }
        let a = VKey::new(Kind::Member, b"\"a\"".to_vec(), Sv::built(json!({})));
        let b = VKey::new(Kind::Member, b"\"b\"".to_vec(), Sv::built(json!({})));
        let c = VKey::new(Kind::Object, b"\"a\"".to_vec(), Sv::built(json!({})));
        assert!(a != b && a != c);
    }

    #[test]
    fn parts_of_document_are_borrowed() {
        let doc = json!({"properties": {"x": {"type": "string"}}});
        let sv = Sv::Doc(&doc);
        let p = sv.part(|v| v.get("properties")?.get("x")).expect("present");
        assert!(matches!(p, Sv::Doc(r) if std::ptr::eq(r, &doc["properties"]["x"])));
        let built = Sv::built(doc.clone());
        assert!(matches!(built.part(|v| v.get("properties")), Some(Sv::Built(_))));
        assert!(sv.part(|v| v.get("items")).is_none());
    }
}
