//! `unevaluatedProperties` and `unevaluatedItems` (2019-09 on), rewritten
//! to the keywords they reduce to.
//!
//! `unevaluatedProperties: U` constrains the members that no keyword of
//! its schema evaluated: those outside the `properties` and
//! `patternProperties` of the schema and of the subschemas applied in
//! place (`allOf`, `$ref`, and the branches of `anyOf`, `oneOf`,
//! `if`/`then`/`else` and `dependentSchemas` *that hold*); an
//! `additionalProperties` or nested `unevaluatedProperties` evaluates
//! every member. `not` evaluates nothing.
//!
//! What is evaluated is gathered as a short list of *alternatives* (see
//! [`Alt`]): each names the conditions it rests on (the branches that
//! hold) and the names, patterns, item counts it then evaluates. The
//! keyword becomes `anyOf` over the alternatives of `allOf[conditions…,
//! closed]`, where `closed` is `{properties: {name: true}, patternProperties:
//! {pattern: true}, additionalProperties: U}` (for items, `prefixItems` of
//! `n` and `items: U`). This is exact:
//!
//! - each alternative evaluates no more than the instance's branches that
//!   hold do, so an instance it admits is valid;
//! - the alternative made of exactly the branches that hold (among those
//!   that evaluate anything) evaluates what the keyword sees, so a valid
//!   instance passes it. `anyOf` takes every subset of its evaluating
//!   branches (at most [`MAX_ANY_OF`]; the empty one only when a branch
//!   evaluates nothing), `oneOf` one branch (or none, likewise), `if`
//!   the `if ∧ then` side or, when `else` evaluates anything, `not if ∧
//!   else` (the negation goes through the `not` rewrite, refused by name
//!   where it is not expressible); `contains` evaluates the items it
//!   matches, so unevaluated items past the prefix are `anyOf` the
//!   `contains` schemas and `U`.
//!
//! What this module cannot gather (a `$ref` cycle, `$dynamicRef`, more than
//! [`MAX_ALTS`] alternatives) is refused by name. Schemas that still hold
//! one of the two keywords never merge with a side that evaluates members
//! or items ([`super::merge`]): the keyword would see the other side's
//! members too.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::SchemaCompiler;

/// Most alternatives one keyword is rewritten into.
const MAX_ALTS: usize = 16;

/// Most evaluating branches of one `anyOf` (each subset is an alternative).
const MAX_ANY_OF: usize = 4;

/// Most `$ref`s followed in place along one path.
const MAX_DEPTH: usize = 16;

/// Which of the two keywords is rewritten.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Over {
    Properties,
    Items,
}

impl Over {
    pub(super) fn keyword(self) -> &'static str {
        match self {
            Over::Properties => "unevaluatedProperties",
            Over::Items => "unevaluatedItems",
        }
    }
}

/// One way a schema evaluates: when every condition holds, these members
/// (or items) are evaluated.
#[derive(Clone, Debug, Default)]
struct Alt {
    conds: Vec<Value>,
    names: BTreeSet<String>,
    patterns: BTreeSet<String>,
    /// Items evaluated from the start.
    prefix: usize,
    /// Schemas whose matching items are evaluated (`contains`).
    contains: Vec<Value>,
    /// Every member (or item) is evaluated.
    all: bool,
}

impl Alt {
    fn and(&self, o: &Alt) -> Alt {
        let mut a = self.clone();
        a.conds.extend(o.conds.iter().cloned());
        a.names.extend(o.names.iter().cloned());
        a.patterns.extend(o.patterns.iter().cloned());
        a.prefix = a.prefix.max(o.prefix);
        a.contains.extend(o.contains.iter().cloned());
        a.all |= o.all;
        a
    }
    fn evaluates_nothing(&self) -> bool {
        !self.all && self.names.is_empty() && self.patterns.is_empty() && self.prefix == 0 && self.contains.is_empty()
    }
}

/// Alternatives of a conjunction: every pair's union.
fn product(a: &[Alt], b: &[Alt]) -> Result<Vec<Alt>, String> {
    if a.len() * b.len() > MAX_ALTS {
        return Err(format!("more than {MAX_ALTS} ways to evaluate"));
    }
    Ok(a.iter().flat_map(|x| b.iter().map(move |y| x.and(y))).collect())
}

/// `alts` with `cond` added to each.
fn given(cond: &Value, alts: Vec<Alt>) -> Vec<Alt> {
    alts.into_iter()
        .map(|mut a| {
            a.conds.push(cond.clone());
            a
        })
        .collect()
}

impl SchemaCompiler<'_> {
    /// The schema `map` with `unevaluatedProperties` and `unevaluatedItems`
    /// rewritten (see the module docs); `None` when it holds neither, or
    /// under drafts where they are no keywords. `Err(why)` with the keyword
    /// when what is evaluated cannot be gathered.
    pub(super) fn unevaluated(&self, map: &Map<String, Value>) -> Result<Option<Value>, (Over, String)> {
        if self.legacy_ref {
            return Ok(None);
        }
        for over in [Over::Properties, Over::Items] {
            let Some(u) = map.get(over.keyword()) else { continue };
            let mut rest = map.clone();
            rest.remove(over.keyword());
            if *u == Value::Bool(true) || u.as_object().is_some_and(|m| m.is_empty()) {
                return Ok(Some(Value::Object(rest)));
            }
            let alts = self.evaluation(&Value::Object(rest.clone()), over, 0).map_err(|why| (over, why))?;
            let mut choices = Vec::new();
            for a in alts {
                let closed = if a.all { None } else { Some(closed(&a, over, u)) };
                let mut all: Vec<Value> = a.conds;
                all.extend(closed);
                if all.is_empty() {
                    // Holds whatever the instance: nothing to add.
                    return Ok(Some(Value::Object(rest)));
                }
                choices.push(if all.len() == 1 { all.pop().expect("one") } else { json!({ "allOf": all }) });
            }
            let check = if choices.len() == 1 { choices.pop().expect("one") } else { json!({ "anyOf": choices }) };
            return Ok(Some(json!({ "allOf": [Value::Object(rest), check] })));
        }
        Ok(None)
    }

    /// The ways `v` evaluates members (or items) of the instance it holds
    /// for (see [`Alt`]).
    fn evaluation(&self, v: &Value, over: Over, depth: usize) -> Result<Vec<Alt>, String> {
        let Value::Object(m) = v else { return Ok(vec![Alt::default()]) };
        if depth > MAX_DEPTH {
            return Err("a `$ref` cycle is applied in place".into());
        }
        if m.contains_key("$dynamicRef") || m.contains_key("$recursiveRef") {
            return Err("what a `$dynamicRef` evaluates is not followed".into());
        }
        let mut own = Alt::default();
        match over {
            Over::Properties => {
                let keys = |k: &str| m.get(k).and_then(Value::as_object).into_iter().flat_map(|o| o.keys().cloned());
                own.names.extend(keys("properties"));
                own.patterns.extend(keys("patternProperties"));
                own.all = m.contains_key("additionalProperties") || m.contains_key("unevaluatedProperties");
            }
            Over::Items => {
                match m.get("items") {
                    Some(Value::Array(xs)) => {
                        own.prefix = xs.len();
                        own.all = m.contains_key("additionalItems");
                    }
                    Some(_) => own.all = true,
                    None => {}
                }
                if let Some(Value::Array(xs)) = m.get("prefixItems") {
                    own.prefix = own.prefix.max(xs.len());
                }
                own.contains.extend(m.get("contains").cloned());
                if let Some(Value::Array(xs)) = m.get("x-grammask-contains-also") {
                    own.contains.extend(xs.iter().cloned());
                }
                own.all |= m.contains_key("unevaluatedItems");
            }
        }
        let mut alts = vec![own];
        if let Some(Value::String(r)) = m.get("$ref") {
            let (target, _) = self.resolve_ref(r, "").map_err(|e| e.to_string())?;
            alts = product(&alts, &self.evaluation(target, over, depth + 1)?)?;
        }
        if let Some(Value::Array(xs)) = m.get("allOf") {
            for x in xs {
                alts = product(&alts, &self.evaluation(x, over, depth + 1)?)?;
            }
        }
        for kw in ["anyOf", "oneOf"] {
            let Some(Value::Array(xs)) = m.get(kw) else { continue };
            let mut branches: Vec<Vec<Alt>> = Vec::new();
            for x in xs {
                let e = self.evaluation(x, over, depth + 1)?;
                if !e.iter().all(Alt::evaluates_nothing) {
                    branches.push(given(x, e));
                }
            }
            // Some branch holds for every valid instance: when all evaluate,
            // the alternative of none is not needed.
            let mut choice = if branches.len() < xs.len() { vec![Alt::default()] } else { Vec::new() };
            if kw == "oneOf" {
                choice.extend(branches.into_iter().flatten());
            } else {
                if branches.len() > MAX_ANY_OF {
                    return Err(format!("more than {MAX_ANY_OF} branches of `anyOf` evaluate"));
                }
                for set in 1..1usize << branches.len() {
                    let mut alts = vec![Alt::default()];
                    for (i, b) in branches.iter().enumerate() {
                        if set >> i & 1 == 1 {
                            alts = product(&alts, b)?;
                        }
                    }
                    choice.extend(alts);
                }
            }
            if choice.len() > MAX_ALTS {
                return Err(format!("more than {MAX_ALTS} ways to evaluate"));
            }
            alts = product(&alts, &choice)?;
        }
        if let Some(cond) = m.get("if") {
            let sub = |k: &str| m.get(k).map_or(Ok(vec![Alt::default()]), |x| self.evaluation(x, over, depth + 1));
            let then = product(&sub("if")?, &sub("then")?)?;
            let els = sub("else")?;
            let (t, e) = (!then.iter().all(Alt::evaluates_nothing), !els.iter().all(Alt::evaluates_nothing));
            // `if` holds or not: with both sides evaluating, one of them
            // is the instance's.
            let mut choice = if t && e { Vec::new() } else { vec![Alt::default()] };
            if t {
                choice.extend(given(cond, then));
            }
            if e {
                choice.extend(given(&json!({ "not": cond }), els));
            }
            alts = product(&alts, &choice)?;
        }
        if let Some(Value::Object(deps)) = m.get("dependentSchemas") {
            for (name, d) in deps {
                let e = self.evaluation(d, over, depth + 1)?;
                if e.iter().all(Alt::evaluates_nothing) {
                    continue;
                }
                let mut choice = vec![Alt::default()];
                choice.extend(given(&json!({ "required": [name] }), e));
                alts = product(&alts, &choice)?;
            }
        }
        Ok(alts)
    }
}

/// The schema admitting what `a` leaves unevaluated only where `u` holds.
fn closed(a: &Alt, over: Over, u: &Value) -> Value {
    match over {
        Over::Properties => {
            let names: Map<String, Value> = a.names.iter().map(|n| (n.clone(), Value::Bool(true))).collect();
            let patterns: Map<String, Value> = a.patterns.iter().map(|p| (p.clone(), Value::Bool(true))).collect();
            let mut out = Map::new();
            if !names.is_empty() {
                out.insert("properties".into(), Value::Object(names));
            }
            if !patterns.is_empty() {
                out.insert("patternProperties".into(), Value::Object(patterns));
            }
            out.insert("additionalProperties".into(), u.clone());
            Value::Object(out)
        }
        Over::Items => {
            let rest = if a.contains.is_empty() {
                u.clone()
            } else {
                let mut any = a.contains.clone();
                any.push(u.clone());
                json!({ "anyOf": any })
            };
            let mut out = Map::new();
            if a.prefix > 0 {
                out.insert("prefixItems".into(), Value::Array(vec![Value::Bool(true); a.prefix]));
            }
            out.insert("items".into(), rest);
            Value::Object(out)
        }
    }
}
