//! Exact evaluation of a schema on one literal value.
//!
//! When a schema's values are drawn from a finite set (`enum`/`const`,
//! directly or in an `allOf` member), whatever else it says can be decided
//! literal by literal, even keywords a grammar cannot express (`not` of an
//! object, `uniqueItems`, `oneOf` with overlapping branches): the schema then
//! compiles as the `enum` of the literals that satisfy it. This module is
//! that decision. It answers `Some(true)`/`Some(false)` only when the answer
//! is certain under the specification, and `None` otherwise (a keyword it
//! does not know how to judge exactly, an unresolvable `$ref`, a fractional
//! `multipleOf`, a `format` it cannot confirm), and then the caller keeps
//! its usual path. It is not a validator for instances at run time: the
//! engine never validates output, its grammar does.

use crate::automata::lexer;
use crate::automata::numbers;
use crate::automata::strings;
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// Evaluates schemas of one document on literals.
pub(crate) struct Eval<'a> {
    pub root: &'a Value,
    /// Draft 4–7: `$ref` hides its siblings.
    pub legacy_ref: bool,
    pub max_terminal_bytes: usize,
}

const MAX_DEPTH: usize = 48;

/// JSON equality: numbers by value (`1` equals `1.0`).
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (numbers::parse_dec(&x.to_string()), numbers::parse_dec(&y.to_string())) {
                (Some(p), Some(q)) => numbers::cmp_dec(&p, &q) == Ordering::Equal,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => a == b,
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn dec(n: &serde_json::Number) -> Option<numbers::Dec> {
    numbers::parse_dec(&n.to_string())
}

/// Whether value `x` meets numeric bound keyword `k` of value `bound` in
/// schema `m` (draft-4 boolean `exclusive*` read beside their bound).
pub(crate) fn within_bound(k: &str, x: &numbers::Dec, bound: &numbers::Dec, m: &Map<String, Value>) -> bool {
    let o = numbers::cmp_dec(x, bound);
    let strict = |x: &str| m.get(x) == Some(&Value::Bool(true));
    match k {
        "minimum" if strict("exclusiveMinimum") => o == Ordering::Greater,
        "maximum" if strict("exclusiveMaximum") => o == Ordering::Less,
        "minimum" => o != Ordering::Less,
        "maximum" => o != Ordering::Greater,
        "exclusiveMinimum" => o == Ordering::Greater,
        _ => o == Ordering::Less,
    }
}

/// All `Some(true)`: true; any `Some(false)`: false (even if others are
/// unknown); else unknown.
fn all(it: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for r in it {
        match r {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(true)
    }
}

fn count(it: impl IntoIterator<Item = Option<bool>>) -> Option<usize> {
    let mut n = 0;
    for r in it {
        n += usize::from(r?);
    }
    Some(n)
}

impl Eval<'_> {
    fn resolve(&self, r: &str) -> Option<&Value> {
        let ptr = crate::json_schema::percent_decode(r.strip_prefix('#')?)?;
        if !ptr.is_empty() && !ptr.starts_with('/') {
            return None;
        }
        self.root.pointer(&ptr)
    }

    fn matches(&self, hir: &regex_syntax::hir::Hir, s: &str) -> Option<bool> {
        let d = lexer::compile_hir(hir, self.max_terminal_bytes).ok()?;
        Some(lexer::dfa_matches(&d, s.as_bytes()))
    }

    /// ECMA-262 search semantics: a match under every reading is certain,
    /// so is a miss under every reading; a string that validators read
    /// differently (`\s`) is not decided. A pattern with leading lookaheads
    /// is several languages, each decided so.
    fn pattern(&self, p: &str, s: &str) -> Option<bool> {
        let mut all = Some(true);
        for (under, over, positive) in strings::pattern_languages(p).ok()? {
            let answer = if self.matches(&under, s)? {
                Some(positive)
            } else if !self.matches(&over, s)? {
                Some(!positive)
            } else {
                None
            };
            match answer {
                Some(false) => return Some(false),
                Some(true) => {}
                None => all = None,
            }
        }
        all
    }

    /// Whether `v` satisfies `schema` (see module docs).
    pub fn satisfies(&self, v: &Value, schema: &Value, depth: usize) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        let m = match schema {
            Value::Bool(b) => return Some(*b),
            Value::Object(m) => m,
            _ => return None,
        };
        if let Some(r) = m.get("$ref") {
            let target = self.resolve(r.as_str()?)?;
            let t = self.satisfies(v, target, depth + 1);
            if self.legacy_ref || t == Some(false) {
                return t;
            }
            let rest: Map<String, Value> =
                m.iter().filter(|(k, _)| *k != "$ref").map(|(k, x)| (k.clone(), x.clone())).collect();
            return all([t, self.satisfies(v, &Value::Object(rest), depth + 1)]);
        }
        all(m.iter().map(|(k, b)| self.keyword(v, k, b, m, depth)))
    }

    fn keyword(&self, v: &Value, k: &str, b: &Value, m: &Map<String, Value>, depth: usize) -> Option<bool> {
        let d = depth + 1;
        let num = |x: &Value| x.as_number().and_then(dec);
        let count_kw =
            |x: &Value| x.as_u64().or_else(|| x.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
        Some(match (k, v) {
            _ if crate::json_schema::ANNOTATIONS.contains(&k) => true,
            ("type", _) => {
                let ok = |t: &Value| -> Option<bool> {
                    Some(match (t.as_str()?, v) {
                        ("null", Value::Null) | ("boolean", Value::Bool(_)) | ("string", Value::String(_)) => true,
                        ("number", Value::Number(_)) | ("array", Value::Array(_)) | ("object", Value::Object(_)) => {
                            true
                        }
                        ("integer", Value::Number(n)) => is_integer(n),
                        ("null" | "boolean" | "string" | "number" | "integer" | "array" | "object", _) => false,
                        _ => return None,
                    })
                };
                match b {
                    Value::Array(ts) => {
                        let mut any = false;
                        for t in ts {
                            any |= ok(t)?;
                        }
                        any
                    }
                    t => ok(t)?,
                }
            }
            ("enum", _) => b.as_array()?.iter().any(|x| json_eq(x, v)),
            ("const", _) => json_eq(b, v),
            ("allOf", _) => return all(b.as_array()?.iter().map(|s| self.satisfies(v, s, d))),
            ("anyOf", _) => {
                let mut unknown = false;
                for s in b.as_array()? {
                    match self.satisfies(v, s, d) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if unknown {
                    return None;
                }
                false
            }
            ("oneOf", _) => count(b.as_array()?.iter().map(|s| self.satisfies(v, s, d)))? == 1,
            ("not", _) => !self.satisfies(v, b, d)?,
            ("if", _) => {
                let branch = if self.satisfies(v, b, d)? { m.get("then") } else { m.get("else") };
                match branch {
                    Some(s) => self.satisfies(v, s, d)?,
                    None => true,
                }
            }
            ("then" | "else", _) => true, // read with `if`
            // Numbers.
            ("minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum", Value::Number(n)) => {
                if let Value::Bool(_) = b {
                    // Draft 4: a modifier of its bound; alone it means nothing.
                    return Some(true);
                }
                within_bound(k, &dec(n)?, &num(b)?, m)
            }
            ("multipleOf", Value::Number(n)) => {
                let k = b.as_f64()?;
                if k > 0.0 && (k.fract() != 0.0 || k > 9.0e15) {
                    // Validators differ: Python `jsonschema` and `boon`
                    // divide f64 values and ask whether the quotient is
                    // whole; the `jsonschema` crate divides the shortest
                    // decimals of the two f64 values exactly. An answer
                    // only where both readings give it.
                    let x = n.as_f64()?;
                    let q = x / k;
                    let float = q.is_finite().then_some(q.fract() == 0.0)?;
                    let shortest = |f: f64| serde_json::Number::from_f64(f).map(|n| n.to_string());
                    let exact = numbers::decimal_multiple(&shortest(x)?, &shortest(k)?)?;
                    return (float == exact).then_some(float);
                }
                if k <= 0.0 {
                    return None;
                }
                let k = k as u64;
                if let Some(x) = n.as_u64() {
                    x % k == 0
                } else if let Some(x) = n.as_i64() {
                    x.unsigned_abs() % k == 0
                } else {
                    let f = n.as_f64()?;
                    if f.fract() != 0.0 {
                        false
                    } else if f.abs() < 9.0e15 {
                        (f.abs() as u64) % k == 0
                    } else {
                        return None;
                    }
                }
            }
            // Strings.
            ("minLength", Value::String(s)) => s.chars().count() as u64 >= count_kw(b)?,
            ("maxLength", Value::String(s)) => s.chars().count() as u64 <= count_kw(b)?,
            ("pattern", Value::String(s)) => self.pattern(b.as_str()?, s)?,
            ("format", Value::String(s)) => {
                // Our format languages are subsets of what validators accept:
                // a match is certain, a miss is not.
                let re = strings::format_regex(b.as_str()?)?;
                if self.matches(&lexer::parse(re).ok()?, s)? {
                    true
                } else {
                    return None;
                }
            }
            // Arrays.
            ("minItems", Value::Array(a)) => a.len() as u64 >= count_kw(b)?,
            ("maxItems", Value::Array(a)) => a.len() as u64 <= count_kw(b)?,
            ("uniqueItems", Value::Array(a)) => {
                !b.as_bool()? || (0..a.len()).all(|i| (i + 1..a.len()).all(|j| !json_eq(&a[i], &a[j])))
            }
            ("prefixItems", Value::Array(a)) => {
                return all(b.as_array()?.iter().zip(a).map(|(s, x)| self.satisfies(x, s, d)))
            }
            ("items", Value::Array(a)) => match b {
                Value::Array(tuple) => return all(tuple.iter().zip(a).map(|(s, x)| self.satisfies(x, s, d))),
                s => {
                    let skip = m.get("prefixItems").and_then(|p| p.as_array()).map_or(0, |p| p.len());
                    return all(a.iter().skip(skip).map(|x| self.satisfies(x, s, d)));
                }
            },
            ("additionalItems", Value::Array(a)) => match m.get("items") {
                Some(Value::Array(tuple)) => return all(a.iter().skip(tuple.len()).map(|x| self.satisfies(x, b, d))),
                _ => true,
            },
            ("contains", Value::Array(a)) => {
                let n = count(a.iter().map(|x| self.satisfies(x, b, d)))? as u64;
                let min = match m.get("minContains") {
                    Some(x) => count_kw(x)?,
                    None => 1,
                };
                let max = match m.get("maxContains") {
                    Some(x) => Some(count_kw(x)?),
                    None => None,
                };
                n >= min && max.is_none_or(|mx| n <= mx)
            }
            ("minContains" | "maxContains", _) => true, // read with `contains`
            // Objects.
            ("required", Value::Object(o)) => {
                let mut ok = true;
                for r in b.as_array()? {
                    ok &= o.contains_key(r.as_str()?);
                }
                ok
            }
            ("minProperties", Value::Object(o)) => o.len() as u64 >= count_kw(b)?,
            ("maxProperties", Value::Object(o)) => o.len() as u64 <= count_kw(b)?,
            ("properties", Value::Object(o)) => {
                let props = b.as_object()?;
                return all(o.iter().filter_map(|(key, x)| props.get(key).map(|s| self.satisfies(x, s, d))));
            }
            ("patternProperties", Value::Object(o)) => {
                let pats = b.as_object()?;
                let mut checks = Vec::new();
                for (key, x) in o {
                    for (p, s) in pats {
                        if self.pattern(p, key)? {
                            checks.push(self.satisfies(x, s, d));
                        }
                    }
                }
                return all(checks);
            }
            ("additionalProperties", Value::Object(o)) => {
                let props = m.get("properties").and_then(|p| p.as_object());
                let pats = m.get("patternProperties").and_then(|p| p.as_object());
                let mut checks = Vec::new();
                for (key, x) in o {
                    if props.is_some_and(|p| p.contains_key(key)) {
                        continue;
                    }
                    let mut matched = false;
                    for p in pats.into_iter().flat_map(|p| p.keys()) {
                        matched |= self.pattern(p, key)?;
                    }
                    if !matched {
                        checks.push(self.satisfies(x, b, d));
                    }
                }
                return all(checks);
            }
            ("propertyNames", Value::Object(o)) => {
                return all(o.keys().map(|key| self.satisfies(&Value::String(key.clone()), b, d)))
            }
            ("dependentRequired", Value::Object(o)) => {
                let mut ok = true;
                for (key, names) in b.as_object()? {
                    if o.contains_key(key) {
                        for n in names.as_array()? {
                            ok &= o.contains_key(n.as_str()?);
                        }
                    }
                }
                ok
            }
            ("dependentSchemas" | "dependencies", Value::Object(o)) => {
                let mut checks = Vec::new();
                for (key, dep) in b.as_object()? {
                    if !o.contains_key(key) {
                        continue;
                    }
                    match dep {
                        Value::Array(names) if k == "dependencies" => {
                            let mut ok = true;
                            for n in names {
                                ok &= o.contains_key(n.as_str()?);
                            }
                            checks.push(Some(ok));
                        }
                        s => checks.push(self.satisfies(v, s, d)),
                    }
                }
                return all(checks);
            }
            // Keywords whose meaning depends on evaluation of siblings or
            // on dynamic scope, and internal rewrites: not judged here.
            (
                "unevaluatedProperties" | "unevaluatedItems" | "$dynamicRef" | "$recursiveRef" | "$recursiveAnchor",
                _,
            ) => return None,
            (k, _) if k.starts_with("x-grammask-") => return None,
            // A keyword for another type, or one that is not a keyword.
            _ => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(v: Value, s: Value) -> Option<bool> {
        let root = s.clone();
        Eval { root: &root, legacy_ref: false, max_terminal_bytes: 1 << 20 }.satisfies(&v, &s, 0)
    }

    #[test]
    fn decides_literals_exactly_or_not_at_all() {
        let cases = [
            (json!(1.0), json!({"type": "integer"}), Some(true)),
            (json!([1, 2, 3]), json!({"not": {"enum": [[{"foo": "bar"}]]}}), Some(true)),
            (json!(0), json!({"not": {"enum": [false]}}), Some(true)),
            (json!([1, 1.0]), json!({"uniqueItems": true}), Some(false)),
            (json!({"a": 1}), json!({"properties": {"a": {"type": "string"}}}), Some(false)),
            (
                json!({"a": 1, "bx": "s"}),
                json!({"patternProperties": {"^b": {"type": "string"}}, "additionalProperties": false}),
                Some(false),
            ),
            (
                json!({"a": 1}),
                json!({"patternProperties": {"^b": {"type": "string"}}, "additionalProperties": {"type": "integer"}}),
                Some(true),
            ),
            (json!(5), json!({"oneOf": [{"minimum": 2}, {"maximum": 6}]}), Some(false)),
            (json!(9), json!({"oneOf": [{"minimum": 2}, {"maximum": 6}]}), Some(true)),
            // 0.3 / 0.1 is 2.9999999999999996 in f64, 3 in decimals:
            // validators differ.
            (json!(0.3), json!({"multipleOf": 0.1}), None),
            (json!(0.35), json!({"multipleOf": 0.1}), Some(false)),
            (json!(0.5), json!({"multipleOf": 0.1}), Some(true)),
            (json!(2.75), json!({"multipleOf": 0.25}), Some(true)),
            (json!(12), json!({"multipleOf": 4}), Some(true)),
            (json!("ab"), json!({"pattern": "^a", "maxLength": 2}), Some(true)),
            (json!("org.x"), json!({"pattern": "^(?!org\\.)[a-z.]+$"}), Some(false)),
            (json!("com.x"), json!({"pattern": "^(?!org\\.)[a-z.]+$"}), Some(true)),
            (json!([1, "x"]), json!({"contains": {"type": "string"}, "maxContains": 1}), Some(true)),
            (json!("x"), json!({"if": {"minLength": 1}, "then": {"const": "y"}}), Some(false)),
            (json!({}), json!({"unevaluatedProperties": false}), None),
            (json!("2024-01-01"), json!({"format": "date"}), Some(true)),
            (json!("nope"), json!({"format": "date"}), None),
            (json!({"a": 1}), json!({"dependentRequired": {"a": ["b"]}}), Some(false)),
            (json!(3), json!({"anyOf": [{"type": "string"}, {"not": {"type": "integer"}}]}), Some(false)),
        ];
        for (v, s, want) in cases {
            assert_eq!(eval(v.clone(), s.clone()), want, "{v} against {s}");
        }
    }
}
