//! Schema algebra on JSON values: `allOf` merging (intersection of two
//! schemas as one schema), distribution of sibling constraints into `anyOf`/
//! `oneOf` branches, and the disjointness test that lets `oneOf` be compiled
//! exactly as `anyOf`.
//!
//! Every function here either returns an exact equivalent or an error naming
//! the keyword it could not combine; nothing is approximated.

use serde_json::{Map, Value};

/// Keywords that never constrain (dropped from merged schemas' comparisons):
/// annotations, and words that are no JSON Schema keyword at all (`_id`,
/// `@type`, vendor extensions), which validators ignore.
pub(crate) fn is_annotation(k: &str) -> bool {
    // `title`, `description`, `$comment`, `$defs`… are in neither list.
    !super::is_constraint(k)
}

/// Keywords that evaluate members of an object (see
/// [`super::unevaluated`]).
const PROPERTY_EVALUATORS: &[&str] =
    &["properties", "patternProperties", "additionalProperties", "unevaluatedProperties"];

/// Keywords that evaluate items of an array.
const ITEM_EVALUATORS: &[&str] =
    &["prefixItems", "items", "additionalItems", "contains", "x-grammask-contains-also", "unevaluatedItems"];
// (`x-grammask-contains4-also` is draft 4 only, where nothing is unevaluated.)

/// Keywords applying subschemas in place, which may evaluate either.
const IN_PLACE: &[&str] = &[
    "allOf",
    "anyOf",
    "oneOf",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependencies",
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
];

fn all_of(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Bool(true), x) | (x, Value::Bool(true)) => x.clone(),
        (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
        _ if a == b => a.clone(),
        _ => serde_json::json!({"allOf": [a, b]}),
    }
}

/// `m` without `minContains`/`maxContains` when it has no `contains`.
fn vacuous_counts_dropped(m: &Map<String, Value>) -> std::borrow::Cow<'_, Map<String, Value>> {
    let counts = ["minContains", "maxContains"];
    if m.contains_key("contains") || !counts.iter().any(|k| m.contains_key(*k)) {
        return std::borrow::Cow::Borrowed(m);
    }
    let mut m = m.clone();
    for k in counts {
        m.remove(k);
    }
    std::borrow::Cow::Owned(m)
}

/// `b` with its `contains` moved to `x-grammask-contains-also` (its
/// draft-4 stand-in `x-grammask-contains` to `x-grammask-contains4-also`:
/// a draft-4 array reads only the latter, as `contains` is no keyword
/// there), when `a` has a different one and neither side counts
/// (`minContains`/`maxContains`).
fn contains_moved(a: &Map<String, Value>, b: &Map<String, Value>) -> Option<Map<String, Value>> {
    let counted = |m: &Map<String, Value>| m.contains_key("minContains") || m.contains_key("maxContains");
    if counted(a) || counted(b) {
        return None;
    }
    let (kw, list) = [("contains", "x-grammask-contains-also"), ("x-grammask-contains", "x-grammask-contains4-also")]
        .into_iter()
        .find(|(k, _)| a.contains_key(*k) && b.contains_key(*k))?;
    if a.get(kw) == b.get(kw) {
        return None;
    }
    let mut m = b.clone();
    let c = m.remove(kw).expect("present");
    let mut also = match m.remove(list) {
        Some(Value::Array(xs)) => xs,
        Some(_) => return None,
        None => Vec::new(),
    };
    if !also.contains(&c) {
        also.push(c);
    }
    m.insert(list.into(), Value::Array(also));
    Some(m)
}

fn types_of(m: &Map<String, Value>) -> Option<Vec<String>> {
    match m.get("type")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(a.iter().filter_map(|t| t.as_str().map(String::from)).collect()),
        _ => None,
    }
}

fn intersect_types(a: &[String], b: &[String]) -> Vec<String> {
    let has = |v: &[String], t: &str| v.iter().any(|x| x == t);
    let mut out = Vec::new();
    for t in ["null", "boolean", "object", "array", "string", "number", "integer"] {
        let ok = match t {
            "integer" => {
                (has(a, "integer") || has(a, "number"))
                    && (has(b, "integer") || has(b, "number"))
                    && !(has(a, "number") && has(b, "number"))
            }
            _ => has(a, t) && has(b, t),
        };
        if ok {
            out.push(t.to_string());
        }
    }
    out
}

/// JSON equality with numbers compared by value (1 == 1.0).
pub(crate) use crate::json_schema::literal::json_eq;

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// The literal values a schema allows, when it lists them (`const`/`enum`).
fn literals(m: &Map<String, Value>) -> Option<Vec<Value>> {
    if let Some(c) = m.get("const") {
        return Some(vec![c.clone()]);
    }
    m.get("enum").and_then(|e| e.as_array()).cloned()
}

/// Intersection of two schema objects. `Err(keyword)` when it cannot be
/// written as one schema.
pub(crate) fn merge(a: &Map<String, Value>, b: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    // `unevaluatedProperties`/`unevaluatedItems` see what the rest of their
    // own schema evaluates: merged with a side that evaluates members (or
    // items) too, they would see more.
    for (kw, evaluating) in [("unevaluatedProperties", PROPERTY_EVALUATORS), ("unevaluatedItems", ITEM_EVALUATORS)] {
        let evaluates = |m: &Map<String, Value>| {
            m.keys().any(|k| evaluating.contains(&k.as_str()) || IN_PLACE.contains(&k.as_str()))
        };
        if (a.contains_key(kw) && evaluates(b)) || (b.contains_key(kw) && evaluates(a)) {
            return Err(kw.into());
        }
    }
    // A `$ref` beside other keywords means both apply (2019-09 and later)
    // or the `$ref` alone (draft 7 and earlier): flattening a side with a
    // `$ref` into the other would drop the other side's keywords under
    // the old drafts. Each side stays whole, an `allOf` member, which
    // reads the same in every draft.
    if a.contains_key("$ref") || b.contains_key("$ref") {
        let constraints = |m: &Map<String, Value>| -> Map<String, Value> {
            m.iter().filter(|(k, _)| !is_annotation(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let (a, b) = (constraints(a), constraints(b));
        if b.is_empty() || a == b {
            return Ok(a);
        }
        if a.is_empty() {
            return Ok(b);
        }
        return Ok([("allOf".to_string(), Value::Array(vec![Value::Object(a), Value::Object(b)]))]
            .into_iter()
            .collect());
    }
    // `minContains`/`maxContains` qualify their own side's `contains` (and
    // constrain nothing without one): sides with two different `contains`
    // do not intersect as one, and a bound without its `contains` must not
    // attach to the other side's.
    let (a, b) = (&*vacuous_counts_dropped(a), &*vacuous_counts_dropped(b));
    // Two different `contains` without counts (one matching item each):
    // the other side's is listed in `x-grammask-contains-also`, which the
    // array counts beside this side's.
    let moved;
    let b = match contains_moved(a, b) {
        Some(m) => {
            moved = m;
            &moved
        }
        None => b,
    };
    if a.contains_key("contains") && b.contains_key("contains") && a.get("contains") != b.get("contains") {
        return Err("contains".into());
    }
    // `patternProperties` apply to every matching key, declared or not, so
    // two sides' patterns combine by union (a pattern on both sides gets
    // both schemas) — exactly, as long as neither side restricts the keys
    // its patterns do not match (`additionalProperties` absent or `true`):
    // else a key one side's pattern admits would escape the other side's
    // `additionalProperties`. Telling which declared names a pattern
    // matches is not done here.
    // (A side that admits no keys of its own — no `properties`,
    // `patternProperties` or `additionalProperties` — leaves the other's
    // as they are.)
    let has_pp = a.contains_key("patternProperties") || b.contains_key("patternProperties");
    let open = |m: &Map<String, Value>| m.get("additionalProperties").is_none_or(|v| *v == Value::Bool(true));
    let objectish = |m: &Map<String, Value>| {
        ["properties", "additionalProperties", "patternProperties"].iter().any(|k| m.contains_key(*k))
    };
    // Exact too: an open side whose declared names and patterns the other
    // side all declares (it constrains only keys the other one names or
    // matches with the same pattern, and each gets both schemas).
    let keys_of = |m: &Map<String, Value>, k: &str| -> Option<Vec<String>> {
        match m.get(k) {
            None => Some(Vec::new()),
            Some(Value::Object(o)) => Some(o.keys().cloned().collect()),
            Some(_) => None,
        }
    };
    let within = |x: &Map<String, Value>, y: &Map<String, Value>, k: &str| match (keys_of(x, k), keys_of(y, k)) {
        (Some(xs), Some(ys)) => xs.iter().all(|n| ys.contains(n)),
        _ => false,
    };
    let subsumed = |x: &Map<String, Value>, y: &Map<String, Value>| {
        open(x) && within(x, y, "properties") && within(x, y, "patternProperties")
    };
    if has_pp && objectish(a) && objectish(b) && !(open(a) && open(b)) && !subsumed(a, b) && !subsumed(b, a) {
        return Err("patternProperties".into());
    }
    let mut extra_patterns: Vec<Value> = Vec::new();
    // Object members need both sides' additionalProperties: handled together.
    let object_kw = ["properties", "additionalProperties", "required"];
    let array_kw = ["prefixItems", "items", "additionalItems"];
    // `a`'s constraints, without what is rebuilt from both sides below
    // (object members, array positions) and without annotations: a chain
    // of `allOf` members merges one at a time, and copying each step's
    // descriptions and member schemas again made it quadratic.
    let rebuilt_obj = object_kw.iter().any(|k| b.contains_key(*k));
    let rebuilt_arr = array_kw.iter().any(|k| b.contains_key(*k));
    let mut out: Map<String, Value> = a
        .iter()
        .filter(|(k, _)| {
            let rebuilt =
                (rebuilt_obj && object_kw.contains(&k.as_str())) || (rebuilt_arr && array_kw.contains(&k.as_str()));
            // `then`/`else` without `if` constrain nothing; merged beside
            // the other side's `if` they would.
            let inert = matches!(k.as_str(), "then" | "else") && !a.contains_key("if");
            !is_annotation(k) && !rebuilt && !inert
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, vb) in b {
        // Annotations are dropped, subschema stores too (`$ref` resolves
        // against the document, not against a merge).
        if is_annotation(k) || object_kw.contains(&k.as_str()) || array_kw.contains(&k.as_str()) {
            continue;
        }
        if matches!(k.as_str(), "then" | "else") && !b.contains_key("if") {
            continue;
        }
        let Some(va) = a.get(k) else {
            out.insert(k.clone(), vb.clone());
            continue;
        };
        if va == vb {
            continue;
        }
        let merged: Value = match k.as_str() {
            "type" => {
                let (Some(ta), Some(tb)) = (types_of(a), types_of(b)) else {
                    return Err("type".into());
                };
                Value::Array(intersect_types(&ta, &tb).into_iter().map(Value::String).collect())
            }
            "minimum" | "minLength" | "minItems" | "minProperties" | "exclusiveMinimum" | "minContains" => {
                match (num(va), num(vb)) {
                    (Some(x), Some(y)) => {
                        if x >= y {
                            va.clone()
                        } else {
                            vb.clone()
                        }
                    }
                    _ => return Err(k.clone()),
                }
            }
            "maximum" | "maxLength" | "maxItems" | "maxProperties" | "exclusiveMaximum" | "maxContains" => {
                match (num(va), num(vb)) {
                    (Some(x), Some(y)) => {
                        if x <= y {
                            va.clone()
                        } else {
                            vb.clone()
                        }
                    }
                    _ => return Err(k.clone()),
                }
            }
            "enum" | "const" => {
                let (Some(la), Some(lb)) = (literals(a), literals(b)) else {
                    return Err(k.clone());
                };
                let both: Vec<Value> = la.into_iter().filter(|x| lb.iter().any(|y| json_eq(x, y))).collect();
                out.remove("const");
                out.insert("enum".into(), Value::Array(both));
                continue;
            }
            // Whole divisors: the multiples of both are those of their
            // least common multiple (fractional ones are not merged).
            "multipleOf" => {
                let whole = |v: &Value| v.as_u64().filter(|&n| n > 0 && n <= 1_000_000_000);
                let (Some(x), Some(y)) = (whole(va), whole(vb)) else {
                    return Err(k.clone());
                };
                Value::from(x / gcd(x, y) * y)
            }
            "uniqueItems" => Value::Bool(va.as_bool().unwrap_or(false) || vb.as_bool().unwrap_or(false)),
            "anyOf" | "oneOf" => {
                // (A1|A2) & (B1|B2) = A1&B1 | A1&B2 | ... (oneOf & oneOf stays exact
                // only as anyOf of pairs when each side is disjoint; the caller
                // re-checks disjointness of the result).
                let (Some(x), Some(y)) = (va.as_array(), vb.as_array()) else {
                    return Err(k.clone());
                };
                if x.len() * y.len() > 64 {
                    return Err(k.clone());
                }
                let mut v = Vec::new();
                for p in x {
                    for q in y {
                        v.push(all_of(p, q));
                    }
                }
                Value::Array(v)
            }
            "not" => serde_json::json!({"anyOf": [va, vb]}),
            "pattern" => {
                // Both patterns apply: keep one, list the other (added
                // after the loop, so that b's own list cannot replace it).
                extra_patterns.push(vb.clone());
                continue;
            }
            "x-grammask-patterns"
            | "x-grammask-contains-also"
            | "x-grammask-contains4-also"
            | "x-grammask-not-patterns"
            | "x-grammask-not-strings"
            | "x-grammask-not-formats"
            | "x-grammask-not-multiple-of" => {
                let (Some(x), Some(y)) = (va.as_array(), vb.as_array()) else {
                    return Err(k.clone());
                };
                let mut v = x.clone();
                v.extend(y.iter().filter(|e| !x.contains(e)).cloned());
                Value::Array(v)
            }
            "allOf" => {
                let (Some(x), Some(y)) = (va.as_array(), vb.as_array()) else {
                    return Err(k.clone());
                };
                Value::Array(x.iter().chain(y).cloned().collect())
            }
            "patternProperties" => {
                // Both sides open (checked above): the union.
                let (Some(x), Some(y)) = (va.as_object(), vb.as_object()) else {
                    return Err(k.clone());
                };
                let mut u = x.clone();
                for (p, sb) in y {
                    let both = match x.get(p) {
                        Some(sa) => all_of(sa, sb),
                        None => sb.clone(),
                    };
                    u.insert(p.clone(), both);
                }
                Value::Object(u)
            }
            _ => return Err(k.clone()),
        };
        if k == "not" {
            out.insert("not".into(), merged);
            continue;
        }
        out.insert(k.clone(), merged);
    }
    if !extra_patterns.is_empty() {
        let mut more: Vec<Value> =
            out.get("x-grammask-patterns").and_then(|p| p.as_array()).cloned().unwrap_or_default();
        more.extend(extra_patterns);
        out.insert("x-grammask-patterns".into(), Value::Array(more));
    }
    // Array positions: position i of each side is its prefix schema i, or
    // the schema for the rest of that side; merge position by position.
    if array_kw.iter().any(|k| b.contains_key(*k)) {
        let (pa, ra) = positions(a)?;
        let (pb, rb) = positions(b)?;
        let n = pa.len().max(pb.len());
        let at = |p: &[Value], r: &Value, i: usize| p.get(i).cloned().unwrap_or_else(|| r.clone());
        let prefix: Vec<Value> = (0..n).map(|i| all_of(&at(&pa, &ra, i), &at(&pb, &rb, i))).collect();
        for k in array_kw {
            out.remove(k);
        }
        if !prefix.is_empty() {
            out.insert("prefixItems".into(), Value::Array(prefix));
        }
        let rest = all_of(&ra, &rb);
        if rest != Value::Bool(true) {
            out.insert("items".into(), rest);
        }
    }
    // Object members.
    let has_obj = |m: &Map<String, Value>| object_kw.iter().any(|k| m.contains_key(*k));
    if has_obj(b) {
        let empty = Map::new();
        let pa = a.get("properties").and_then(|p| p.as_object()).unwrap_or(&empty);
        let pb = b.get("properties").and_then(|p| p.as_object()).unwrap_or(&empty);
        let ap_a = a.get("additionalProperties").cloned().unwrap_or(Value::Bool(true));
        let ap_b = b.get("additionalProperties").cloned().unwrap_or(Value::Bool(true));
        let mut props = Map::new();
        for (k, v) in pa {
            let other = pb.get(k).unwrap_or(&ap_b);
            props.insert(k.clone(), all_of(v, other));
        }
        for (k, v) in pb {
            if !pa.contains_key(k) {
                props.insert(k.clone(), all_of(&ap_a, v));
            }
        }
        if !props.is_empty() {
            out.insert("properties".into(), Value::Object(props));
        }
        let ap = all_of(&ap_a, &ap_b);
        if ap != Value::Bool(true) {
            out.insert("additionalProperties".into(), ap);
        } else {
            out.remove("additionalProperties");
        }
        let mut req: Vec<Value> = a.get("required").and_then(|r| r.as_array()).cloned().unwrap_or_default();
        for r in b.get("required").and_then(|r| r.as_array()).into_iter().flatten() {
            if !req.contains(r) {
                req.push(r.clone());
            }
        }
        if !req.is_empty() {
            out.insert("required".into(), Value::Array(req));
        }
    }
    Ok(out)
}

/// Prefix schemas and the schema of the remaining items (2020-12
/// `prefixItems`+`items`, or draft-7 array `items`+`additionalItems`).
fn positions(m: &Map<String, Value>) -> Result<(Vec<Value>, Value), String> {
    match (m.get("prefixItems"), m.get("items")) {
        (_, Some(Value::Array(p))) => Ok((p.clone(), m.get("additionalItems").cloned().unwrap_or(Value::Bool(true)))),
        (Some(Value::Array(p)), it) => Ok((p.clone(), it.cloned().unwrap_or(Value::Bool(true)))),
        (Some(_), _) => Err("prefixItems".into()),
        (None, it) => Ok((Vec::new(), it.cloned().unwrap_or(Value::Bool(true)))),
    }
}

/// The JSON types a (resolved) schema can match, as far as it says.
fn possible_types(m: &Map<String, Value>) -> Vec<&'static str> {
    let all = ["null", "boolean", "object", "array", "string", "number"];
    if let Some(lits) = literals(m) {
        let mut v: Vec<&'static str> = Vec::new();
        for l in &lits {
            let t = match l {
                Value::Null => "null",
                Value::Bool(_) => "boolean",
                Value::Object(_) => "object",
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
            };
            if !v.contains(&t) {
                v.push(t);
            }
        }
        return v;
    }
    match types_of(m) {
        None => all.to_vec(),
        Some(ts) => {
            all.iter().copied().filter(|t| ts.iter().any(|x| x == t || (*t == "number" && x == "integer"))).collect()
        }
    }
}

/// The one JSON type a keyword constrains (`None`: it may constrain any,
/// like `type`, `enum` or `not`). Every other type satisfies it vacuously.
pub(crate) fn keyword_type(k: &str) -> Option<&'static str> {
    Some(match k {
        "pattern" | "minLength" | "maxLength" | "format" => "string",
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => "number",
        "items"
        | "prefixItems"
        | "additionalItems"
        | "minItems"
        | "maxItems"
        | "uniqueItems"
        | "contains"
        | "minContains"
        | "maxContains"
        | "unevaluatedItems"
        | "x-grammask-contains"
        | "x-grammask-contains-also"
        | "x-grammask-contains4-also" => "array",
        "properties"
        | "required"
        | "additionalProperties"
        | "patternProperties"
        | "propertyNames"
        | "minProperties"
        | "maxProperties"
        | "dependentRequired"
        | "dependentSchemas"
        | "dependencies"
        | "unevaluatedProperties" => "object",
        "x-grammask-not-patterns" | "x-grammask-not-strings" | "x-grammask-not-formats" | "x-grammask-patterns" => {
            "string"
        }
        "x-grammask-fraction" | "x-grammask-not-multiple-of" => "number",
        _ => return None,
    })
}

/// The types on which schema `m` holds for every value: those none of its
/// constraint keywords (`is_constraint`) applies to. Empty when a keyword
/// may constrain every type.
pub(crate) fn vacuous_types(m: &Map<String, Value>, is_constraint: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let mut touched: Vec<&'static str> = Vec::new();
    for k in m.keys().filter(|k| is_constraint(k)) {
        match keyword_type(k) {
            Some(t) => touched.push(t),
            None => return Vec::new(),
        }
    }
    ["null", "boolean", "object", "array", "string", "number"].into_iter().filter(|t| !touched.contains(t)).collect()
}

/// What a disjointness proof asks of the compiler: `$ref` targets, and
/// what `patternProperties` patterns match (answered from their automata).
pub(crate) trait Facts {
    /// Follows a `$ref`, borrowing what has none (`true` when it does not
    /// resolve: nothing is proven from it).
    fn resolve<'x>(&self, v: &'x Value) -> Cow<'x, Value>;
    /// Whether string `name` (a key, a listed string) matches pattern `p`;
    /// `None` when unsure.
    fn key_matches(&self, p: &str, name: &str) -> Option<bool>;
    /// Whether some string (a key, a value) may match both patterns
    /// (`true` when unsure).
    fn patterns_meet(&self, p: &str, q: &str) -> bool;
}

use std::borrow::Cow;

/// Whether no instance can satisfy both schemas, by reasons that are cheap
/// and certain: disjoint types, disjoint literal sets, a key one requires
/// whose value the two schemas give disjoint schemas (a discriminator, or
/// a key the other forbids), or two closed objects, one needing a key,
/// that admit no key in common. An `allOf` is disjoint from `b` when one
/// of its members is, an `anyOf`/`oneOf` when all of its branches are.
/// `false` means "not proven"; the proof search is bounded (depth and
/// steps), past which it says `false`.
pub(crate) fn disjoint(a: &Value, b: &Value, facts: &dyn Facts) -> bool {
    let mut steps = DISJOINT_STEPS;
    disjoint_in(a, b, facts, 0, &mut steps)
}

/// How deep [`disjoint`] follows members, branches and properties.
const DISJOINT_DEPTH: usize = 6;
/// How many pairs [`disjoint`] compares in one proof.
const DISJOINT_STEPS: usize = 64;

fn disjoint_in(a: &Value, b: &Value, facts: &dyn Facts, depth: usize, steps: &mut usize) -> bool {
    if *steps == 0 || depth > DISJOINT_DEPTH {
        return false;
    }
    *steps -= 1;
    let (a, b) = (facts.resolve(a), facts.resolve(b));
    let (Some(ma), Some(mb)) = (a.as_object(), b.as_object()) else {
        return *a == Value::Bool(false) || *b == Value::Bool(false);
    };
    if disjoint_flat(ma, mb, facts, depth, steps) {
        return true;
    }
    // An instance of `a` satisfies every `allOf` member and some branch of
    // each `anyOf`/`oneOf`: one disjoint member, or all branches disjoint,
    // rule it out of `b`. The same for `b` against `a`.
    for (x, y) in [(ma, &*b), (mb, &*a)] {
        if let Some(Value::Array(members)) = x.get("allOf") {
            if members.iter().any(|m| disjoint_in(m, y, facts, depth + 1, steps)) {
                return true;
            }
        }
        for kw in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = x.get(kw) {
                if !branches.is_empty() && branches.iter().all(|m| disjoint_in(m, y, facts, depth + 1, steps)) {
                    return true;
                }
            }
        }
    }
    false
}

/// The `patternProperties` of `m` (empty when it has none; `None` when
/// the keyword is malformed).
fn pattern_keys(m: &Map<String, Value>) -> Option<Vec<(&str, &Value)>> {
    match m.get("patternProperties") {
        None => Some(Vec::new()),
        Some(Value::Object(pp)) => Some(pp.iter().map(|(p, s)| (p.as_str(), s)).collect()),
        Some(_) => None,
    }
}

/// A schema that every value of key `k` in an object of `m` satisfies:
/// the declared one, else the first pattern's it surely matches, else
/// `additionalProperties` once it surely matches none. `None` when a
/// match is unsure (nothing is known then).
fn key_schema<'m>(m: &'m Map<String, Value>, k: &str, facts: &dyn Facts) -> Option<Cow<'m, Value>> {
    if let Some(s) = m.get("properties").and_then(|p| p.get(k)) {
        return Some(Cow::Borrowed(s));
    }
    let mut unsure = false;
    for (p, s) in pattern_keys(m)? {
        match facts.key_matches(p, k) {
            Some(true) => return Some(Cow::Borrowed(s)),
            Some(false) => {}
            None => unsure = true,
        }
    }
    if unsure {
        return None;
    }
    Some(m.get("additionalProperties").map_or(Cow::Owned(Value::Bool(true)), Cow::Borrowed))
}

/// Whether the objects of closed schema `a` (`additionalProperties:
/// false`) and of `b`, also closed, have no key in common: every name one
/// admits is forbidden by the other, and no two of their patterns meet.
fn no_common_key(a: &Map<String, Value>, b: &Map<String, Value>, facts: &dyn Facts) -> bool {
    let closed = |m: &Map<String, Value>| m.get("additionalProperties") == Some(&Value::Bool(false));
    if !closed(a) || !closed(b) {
        return false;
    }
    let (Some(pa), Some(pb)) = (pattern_keys(a), pattern_keys(b)) else { return false };
    let names = |m: &Map<String, Value>| -> Vec<String> {
        m.get("properties")
            .and_then(Value::as_object)
            .map(|p| p.iter().filter(|(_, s)| **s != Value::Bool(false)).map(|(k, _)| k.clone()).collect())
            .unwrap_or_default()
    };
    let forbidden = |m: &Map<String, Value>, k: &str| key_schema(m, k, facts).is_some_and(|s| *s == Value::Bool(false));
    names(a).iter().all(|k| forbidden(b, k))
        && names(b).iter().all(|k| forbidden(a, k))
        && pa.iter().all(|(p, _)| pb.iter().all(|(q, _)| !facts.patterns_meet(p, q)))
}

/// [`disjoint`] by the keywords of the two objects themselves.
fn disjoint_flat(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    facts: &dyn Facts,
    depth: usize,
    steps: &mut usize,
) -> bool {
    let ta = possible_types(a);
    let tb = possible_types(b);
    let common: Vec<&&str> = ta.iter().filter(|t| tb.contains(t)).collect();
    if common.is_empty() {
        return true;
    }
    if let (Some(la), Some(lb)) = (literals(a), literals(b)) {
        if !la.iter().any(|x| lb.iter().any(|y| json_eq(x, y))) {
            return true;
        }
    }
    // Strings both search for patterns that no string matches together,
    // or a listed string the other's pattern surely misses.
    if common.iter().all(|t| **t == "string") {
        let pat = |m: &Map<String, Value>| m.get("pattern").and_then(Value::as_str).map(String::from);
        match (pat(a), pat(b), literals(a), literals(b)) {
            (Some(p), Some(q), _, _) if !facts.patterns_meet(&p, &q) => return true,
            (Some(p), _, _, Some(ls)) | (_, Some(p), Some(ls), _)
                if ls.iter().all(|l| l.as_str().is_some_and(|l| facts.key_matches(&p, l) == Some(false))) =>
            {
                return true
            }
            _ => {}
        }
    }
    if common.iter().all(|t| **t == "object") {
        let req = |m: &Map<String, Value>| -> Vec<String> {
            m.get("required")
                .and_then(|r| r.as_array())
                .map(|r| r.iter().filter_map(|x| x.as_str().map(String::from)).collect())
                .unwrap_or_default()
        };
        let (ra, rb) = (req(a), req(b));
        // A key either requires is in every common instance: its value
        // satisfies what both give it (`false` where one forbids it).
        let mut keys: Vec<&String> = ra.iter().chain(rb.iter()).collect();
        keys.sort_unstable();
        keys.dedup();
        for k in keys {
            if let (Some(sa), Some(sb)) = (key_schema(a, k, facts), key_schema(b, k, facts)) {
                if disjoint_in(&sa, &sb, facts, depth + 1, steps) {
                    return true;
                }
            }
        }
        // Closed objects with no key in common meet only in `{}`.
        let needs_key = |m: &Map<String, Value>, r: &[String]| {
            !r.is_empty() || m.get("minProperties").and_then(Value::as_u64).is_some_and(|n| n > 0)
        };
        if (needs_key(a, &ra) || needs_key(b, &rb)) && no_common_key(a, b, facts) {
            return true;
        }
    }
    false
}

/// Greatest common divisor.
pub(crate) fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Patterns as plain prefixes (`^abc`), enough for the table.
    struct Prefixes;
    impl Facts for Prefixes {
        fn resolve<'x>(&self, v: &'x Value) -> Cow<'x, Value> {
            Cow::Borrowed(v)
        }
        fn key_matches(&self, p: &str, name: &str) -> Option<bool> {
            p.strip_prefix('^').map(|pre| name.starts_with(pre))
        }
        fn patterns_meet(&self, p: &str, q: &str) -> bool {
            match (p.strip_prefix('^'), q.strip_prefix('^')) {
                (Some(x), Some(y)) => x.starts_with(y) || y.starts_with(x),
                _ => true,
            }
        }
    }

    fn proven(a: &Value, b: &Value) -> bool {
        let ab = disjoint(a, b, &Prefixes);
        assert_eq!(ab, disjoint(b, a, &Prefixes), "disjoint is not symmetric on {a} and {b}");
        ab
    }

    #[test]
    fn disjointness_proofs() {
        let site = json!({"type": "object", "properties": {"type": {"enum": ["site"]}}, "required": ["type"]});
        let reference =
            json!({"type": "object", "properties": {"type": {"enum": ["reference"]}}, "required": ["type"]});
        let open = json!({"type": "object", "required": ["type"]});
        // (a, b, proven disjoint)
        let table = [
            (json!({"type": "string"}), json!({"type": "integer"}), true),
            (json!({"type": "number"}), json!({"type": "integer"}), false),
            (site.clone(), reference.clone(), true),
            (site.clone(), open.clone(), false),
            (json!({"allOf": [reference.clone(), {"minProperties": 1}]}), site.clone(), true),
            (json!({"allOf": [open.clone(), {"minProperties": 1}]}), site.clone(), false),
            (json!({"anyOf": [{"type": "string"}, {"type": "boolean"}]}), json!({"type": "integer"}), true),
            (json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}), json!({"type": "integer"}), false),
            (json!({"oneOf": [reference.clone(), {"type": "array"}]}), site.clone(), true),
            // A discriminator one level down.
            (
                json!({"type": "object", "properties": {"k": site.clone()}, "required": ["k"]}),
                json!({"type": "object", "properties": {"k": reference.clone()}, "required": ["k"]}),
                true,
            ),
            // One side requires it: every common instance has `k`.
            (
                json!({"type": "object", "properties": {"k": site.clone()}, "required": ["k"]}),
                json!({"type": "object", "properties": {"k": reference.clone()}}),
                true,
            ),
            // Neither requires it: `{}` satisfies both.
            (
                json!({"type": "object", "properties": {"k": site.clone()}}),
                json!({"type": "object", "properties": {"k": reference.clone()}}),
                false,
            ),
            // A required key no pattern of a closed object matches.
            (
                json!({"type": "object", "required": ["a"]}),
                json!({"additionalProperties": false, "patternProperties": {"^b": {}}}),
                true,
            ),
            // A required key whose pattern schema is disjoint.
            (
                json!({"type": "object", "required": ["ab"], "properties": {"ab": {"type": "string"}}}),
                json!({"patternProperties": {"^a": {"type": "number"}}}),
                true,
            ),
            // Closed objects with no key in common, one needing a key.
            (
                json!({"type": "object", "properties": {"x": {}}, "additionalProperties": false, "minProperties": 1}),
                json!({"type": "object", "properties": {"y": {}}, "additionalProperties": false}),
                true,
            ),
            (
                json!({"type": "object", "properties": {"x": {}}, "additionalProperties": false}),
                json!({"type": "object", "properties": {"y": {}}, "additionalProperties": false}),
                false,
            ),
            (
                json!({"type": "object", "properties": {"x": {}}, "additionalProperties": false, "minProperties": 1}),
                json!({"type": "object", "properties": {"x": {}, "y": {}}, "additionalProperties": false}),
                false,
            ),
            (
                json!({"type": "object", "patternProperties": {"^a": {}}, "additionalProperties": false, "minProperties": 1}),
                json!({"patternProperties": {"^b": {}}, "additionalProperties": false}),
                true,
            ),
            (
                json!({"type": "object", "patternProperties": {"^a": {}}, "additionalProperties": false, "minProperties": 1}),
                json!({"patternProperties": {"^ab": {}}, "additionalProperties": false}),
                false,
            ),
            (
                json!({"type": "object", "patternProperties": {"^a": {}}, "additionalProperties": false, "required": ["b"]}),
                json!({"properties": {"b": {}}, "additionalProperties": false}),
                true,
            ),
            (json!({"type": "object", "required": ["a"]}), json!({"properties": {"a": false}}), true),
            (json!({"type": "object", "required": ["a"]}), json!({"additionalProperties": false}), true),
            (
                json!({"type": "object", "required": ["a"]}),
                json!({"additionalProperties": false, "patternProperties": {"^a": {}}}),
                false,
            ),
            (json!({"type": "string", "pattern": "^a"}), json!({"type": "string", "pattern": "^b"}), true),
            (json!({"type": "string", "pattern": "^a"}), json!({"type": "string", "pattern": "^ab"}), false),
            // Other types satisfy both.
            (json!({"pattern": "^a"}), json!({"pattern": "^b"}), false),
            (json!({"type": "string", "pattern": "^a"}), json!({"enum": ["b", "c"]}), true),
            (json!({"type": "string", "pattern": "^a"}), json!({"enum": ["b", "ab"]}), false),
            (json!({"enum": [1, 2]}), json!({"const": 2.0}), false),
            (json!({"enum": [1, 2]}), json!({"const": 3}), true),
            (json!(false), json!({}), true),
            (json!({}), json!(true), false),
        ];
        for (a, b, want) in &table {
            assert_eq!(proven(a, b), *want, "disjoint({a}, {b})");
        }
    }

    #[test]
    fn disjointness_search_is_bounded() {
        // A chain deeper than the search: not proven, and quickly.
        let mut a = json!({"type": "string"});
        let mut b = json!({"type": "integer"});
        for _ in 0..64 {
            a = json!({"allOf": [a]});
            b = json!({"anyOf": [b, {"type": "integer"}]});
        }
        assert!(!proven(&a, &b));
    }
}
