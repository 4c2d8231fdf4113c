//! JSON Schema → grammar. Owns keyword classification (what is enforced,
//! what is an annotation, what is refused by name), `$ref` resolution, and
//! the translation of each schema form into machines of the grammar IR.
//!
//! Output format (what the grammar emits; documented in the README):
//! - properties in schema order (`properties` order, then `required` names
//!   not in `properties`), then any additional properties;
//! - `const`/`enum` values exactly as `serde_json` serializes them (compact);
//! - declared property names exactly as `serde_json` serializes them;
//! - free strings with any valid JSON escapes;
//! - numbers in JSON syntax with at most 200 integer digits, a fraction of
//!   any length and a 2-digit exponent (so every number parses to a finite
//!   f64);
//!   `integer` without fraction or exponent;
//! - whitespace per [`Whitespace`].
//!
//! Beside it: [`merge`] (schema algebra: `allOf`, disjointness), [`literal`]
//! (exact evaluation on one value), [`subschema`] (borrowed subschemas and
//! the content keys of their machines), [`unevaluated`] (`unevaluated*`
//! rewritten to what they reduce to), [`refs`] (`$id`/`$anchor` bases).

pub(crate) mod literal;
pub(crate) mod merge;
pub(crate) mod refs;
pub(crate) mod subschema;
pub(crate) mod unevaluated;

use crate::automata::lexer;
use crate::automata::numbers;
use crate::automata::strings::{
    self, Lang,
    Reading::{Over, Under},
    StringSpec,
};
use crate::config::{Config, PropertyOrder, Whitespace};
use crate::error::{CompileError, CompileErrorKind};
use crate::grammar::keyset::{self, KeysetDef};
use crate::grammar::nfa::{Frag, MachineId, Nfa};
use crate::grammar::{Grammar, GrammarBuilder, Unique};
use crate::json_schema::subschema::{Kind, Sv, VKey, TRUE};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A keyword that was dropped in lenient mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relaxation {
    /// The keyword, e.g. `"pattern"`.
    pub keyword: String,
    /// JSON pointer of the schema that holds it.
    pub pointer: String,
}

/// Keywords that never constrain an instance here.
pub(crate) const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "examples",
    "example",
    "$comment",
    "default",
    "$schema",
    "$id",
    "id",
    "$anchor",
    "$dynamicAnchor",
    "$vocabulary",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
    "contentSchema",
    "$defs",
    "definitions",
];

/// Keywords this version enforces.
const SUPPORTED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "anyOf",
    "$ref",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "multipleOf",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "allOf",
    "oneOf",
    "not",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    // Internal, made by rewriting `not`: patterns a string must not
    // contain, and strings it must not equal.
    "x-grammask-not-patterns",
    "x-grammask-not-strings",
    // Internal, made by rewriting `not: {format}`: formats a string must
    // lie outside of (outside their supersets, `strings::format_superset`).
    "x-grammask-not-formats",
    // Internal, made by `allOf` merging two patterns.
    "x-grammask-patterns",
    // Internal, made by negating `items` in a draft-4 schema, where
    // `contains` is no keyword: `contains` as draft 6 reads it.
    "x-grammask-contains",
    "x-grammask-contains-also",
    "x-grammask-contains4-also",
    // Internal, made by negating `type: integer` and `multipleOf`: a
    // number that is not an integer (`true`), a number none of these whole
    // divisors divides.
    "x-grammask-fraction",
    "x-grammask-not-multiple-of",
    "dependentRequired",
    "dependencies",
    "contains",
    "minContains",
    "maxContains",
];

/// Most schema-valued dependencies one object may have: each is an `anyOf`
/// of two branches, and the branches multiply when merged.
const MAX_SCHEMA_DEPENDENCIES: usize = 4;

/// Most `if`s among one `allOf`'s members (and its siblings) that are
/// unfolded to merge them: the merged schema is compiled in up to
/// 2^this copies (64, the most branches a merge of two `anyOf`s makes).
const MAX_CONDITIONALS: usize = 6;

/// What [`SchemaCompiler::vacuous_overlap_removed`] found.
enum VacuousOverlap {
    /// Every type is excluded: the `oneOf` is unsatisfiable.
    All,
    /// The branches restricted to the types not excluded.
    Restricted(Vec<Value>),
}

/// Most negations within one another, and most schema nodes, that
/// [`SchemaCompiler::probe_nots`] reads in one rewritten branch.
const MAX_PROBED_NEGATIONS: usize = 16;
const MAX_PROBED_NODES: usize = 20_000;

/// Most branches of a `oneOf` made exclusive (however many pairs of them
/// may overlap: the alternatives the negations make are what multiplies,
/// bounded by [`MAX_EXCLUSIVE_ALTERNATIVES`]).
const MAX_EXCLUSIVE_BRANCHES: usize = 12;

/// Most alternatives (see [`alternatives`]) the exclusive form of one
/// overlapping `oneOf` may have: they share their opening bytes, so a
/// matcher parses them side by side (bounded by `Limits::max_parse_states`,
/// whose default is 512, across every open value).
const MAX_EXCLUSIVE_ALTERNATIVES: usize = 64;

/// How many alternatives a schema's `anyOf`/`oneOf` spell out, counting
/// `allOf` members' as a product: an estimate of the parses a matcher keeps
/// side by side for it (nested values not counted).
fn alternatives(v: &Value) -> usize {
    match v {
        Value::Object(m) => alternatives_of(m),
        _ => 1,
    }
}

fn alternatives_of(m: &Map<String, Value>) -> usize {
    let sum = |k: &str| match m.get(k) {
        Some(Value::Array(xs)) => xs.iter().map(alternatives).fold(0, usize::saturating_add).max(1),
        _ => 1,
    };
    let product = match m.get("allOf") {
        Some(Value::Array(xs)) => xs.iter().map(alternatives).fold(1, usize::saturating_mul),
        _ => 1,
    };
    sum("anyOf").saturating_mul(sum("oneOf")).saturating_mul(product)
}

/// Fewest string branches one `anyOf` is compiled into one automaton from.
const MIN_UNION_LEAVES: usize = 4;

/// Most string branches one `anyOf` is compiled into one automaton from
/// (each adds its constraints' automata to the product).
const MAX_UNION_LEAVES: usize = 64;

/// Most items `minContains` may ask for: each count is a layer of the
/// array's positions.
const MAX_CONTAINS: u64 = 16;

/// Most `contains` schemas one array counts side by side (an item is read
/// once per subset of them).
const MAX_CONTAINS_GOALS: usize = 3;

/// JSON Schema keywords that constrain instances and are not enforced yet:
/// strict mode refuses them by name.
const UNSUPPORTED: &[&str] = &[
    "if",
    "then",
    "else",
    "dependentSchemas",
    "uniqueItems",
    // Rewritten by `normalize` (see `unevaluated`) from 2019-09 on; before,
    // no keywords, but refused as they always were.
    "unevaluatedProperties",
    "unevaluatedItems",
    "$dynamicRef",
    "$recursiveRef",
    "$recursiveAnchor",
];

/// Whether the schema's `uniqueItems` holds for every instance its other
/// keywords allow: `uniqueItems: false` (or not a boolean `true`), a `type`
/// without `array` (the keyword applies to arrays only), or `maxItems` of 0
/// or 1 (no two items to compare).
fn unique_items_hold(map: &serde_json::Map<String, Value>) -> bool {
    if map.get("uniqueItems") != Some(&Value::Bool(true)) {
        return true;
    }
    let no_array = match map.get("type") {
        Some(Value::String(t)) => t != "array",
        Some(Value::Array(ts)) => !ts.iter().any(|t| t == "array"),
        _ => false,
    };
    no_array || map.get("maxItems").and_then(Value::as_f64).is_some_and(|n| n <= 1.0)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Null,
    Boolean,
    Object,
    Array,
    Number,
    Integer,
    String,
}

const ALL_TYPES: [Ty; 6] = [Ty::Null, Ty::Boolean, Ty::Object, Ty::Array, Ty::Number, Ty::String];

fn parse_type(s: &str) -> Option<Ty> {
    Some(match s {
        "null" => Ty::Null,
        "boolean" => Ty::Boolean,
        "object" => Ty::Object,
        "array" => Ty::Array,
        "number" => Ty::Number,
        "integer" => Ty::Integer,
        "string" => Ty::String,
        _ => return None,
    })
}

fn value_has_type(v: &Value, t: Ty) -> bool {
    match (v, t) {
        (Value::Null, Ty::Null) => true,
        (Value::Bool(_), Ty::Boolean) => true,
        (Value::Object(_), Ty::Object) => true,
        (Value::Array(_), Ty::Array) => true,
        (Value::String(_), Ty::String) => true,
        (Value::Number(_), Ty::Number) => true,
        (Value::Number(n), Ty::Integer) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

enum Job<'a> {
    /// A whole value of the schema at this pointer (targets of `$ref`, `true`).
    Value(Sv<'a>, String),
    Object(Sv<'a>, String),
    Array(Sv<'a>, String),
    /// A built-in terminal (free string, number, integer): its name and
    /// how to build its regex HIR, on the first use in the process.
    Terminal(&'static str, fn() -> regex_syntax::hir::Hir),
    /// A terminal built as a table (constrained strings, bounded numbers).
    Table(std::sync::Arc<crate::automata::strings::TableDfa>),
    /// A string with long length bounds (see [`crate::grammar::counted`]).
    Counted(crate::automata::strings::CountedTable),
    /// One object member: key, colon, value of the schema.
    Member(MemberKey, Sv<'a>, String),
    /// `,`, the whitespace after it, then a call to the member machine.
    Comma(MachineId),
    /// `,`, the whitespace after it, `"` (see `grammar::keyset`).
    CommaQuote,
}

/// What an item schema's strings are known to be (see
/// [`SchemaCompiler::string_items`]).
struct ItemStrings {
    /// A finite set holding every value, when one is known.
    bound: Option<std::collections::BTreeSet<String>>,
    /// `bound` is exactly the values.
    exact: bool,
    /// Infinitely (or over 2^20) many values.
    plenty: bool,
    /// Every prefix of a value goes on to infinitely many values.
    open_ended: bool,
}

/// What `propertyNames` asks of a key: patterns it must match and must
/// avoid, length bounds, and (`enum`/`const`) the only names allowed.
struct NameSpec {
    must: Vec<Arc<lexer::Dfa>>,
    must_not: Vec<Arc<lexer::Dfa>>,
    min: u64,
    max: Option<u64>,
    names: Option<Vec<String>>,
}

/// How a member's key is written: a literal (declared property, JSON-encoded
/// with quotes) or a key machine (additional and pattern properties).
#[derive(Clone)]
enum MemberKey {
    Lit(Vec<u8>),
    Machine(MachineId),
}

/// Result of compiling a schema: the grammar and the relaxations made.
pub(crate) struct Compiled {
    pub grammar: Grammar,
    pub relaxations: Vec<Relaxation>,
    pub annotations: Vec<Relaxation>,
}

pub(crate) fn compile(root: &Value, cfg: &Config) -> Result<Compiled, CompileError> {
    let part = compile_into(GrammarBuilder::default(), root, cfg)?;
    let grammar = part.gb.build(part.root, cfg.get_limits().max_states)?;
    Ok(Compiled { grammar, relaxations: part.relaxations, annotations: part.annotations })
}

/// A schema's machines added to a builder that may hold other front-ends'
/// machines (structural tags put one schema per tag beside free text).
pub(crate) struct Part {
    pub gb: GrammarBuilder,
    /// The machine of one instance of the schema.
    pub root: MachineId,
    pub relaxations: Vec<Relaxation>,
    pub annotations: Vec<Relaxation>,
}

/// Adds the machines of `root` (a whole schema document) to `gb`.
pub(crate) fn compile_into(gb: GrammarBuilder, root: &Value, cfg: &Config) -> Result<Part, CompileError> {
    let draft = |names: &[&str]| {
        root.get("$schema").and_then(|s| s.as_str()).is_some_and(|s| names.iter().any(|d| s.contains(d)))
    };
    let legacy_ref = draft(&["draft-03", "draft-04", "draft-06", "draft-07"]);
    let draft4 = draft(&["draft-03", "draft-04"]);
    // Every `$ref` a pointer from the root, resolved where it stands.
    let absolute = refs::absolutized(root, draft4, legacy_ref);
    let root = absolute.as_ref().unwrap_or(root);
    let base = gb.machines.len();
    let mut c = SchemaCompiler {
        root,
        cfg,
        gb,
        keys: Default::default(),
        vkeys: Default::default(),
        jobs: Vec::new(),
        relaxations: Vec::new(),
        annotations: Vec::new(),
        probing: false,
        depth: 0,
        legacy_ref,
        draft4,
        draft3: draft(&["draft-03"]),
        keyset_ids: 0,
        conditionals: !draft(&["draft-03", "draft-04", "draft-06"]),
    };
    let root_m = c.machine("value:".to_string(), || Job::Value(Sv::Doc(root), String::new()));
    while let Some((m, job)) = c.jobs.pop() {
        if c.gb.machines.len() - base > cfg.get_limits().max_states / 8 {
            return Err(CompileError::new(
                CompileErrorKind::LimitExceeded,
                "",
                "schema expands into too many distinct subschemas (Limits::max_states)",
            ));
        }
        let mut nfa = Nfa::default();
        let body = match job {
            Job::Value(v, ptr) => c.value(&mut nfa, v, &ptr)?,
            Job::Object(v, ptr) => c.object(&mut nfa, v, &ptr)?,
            Job::Array(v, ptr) => {
                let (frag, unique) = c.array(&mut nfa, v, &ptr)?;
                c.gb.machines[m as usize].unique = unique;
                frag
            }
            Job::Terminal(name, hir) => {
                let table = lexer::builtin_table(name, hir, cfg.get_limits().max_terminal_bytes).map_err(|e| {
                    CompileError::new(CompileErrorKind::LimitExceeded, name, format!("terminal too large: {e}"))
                })?;
                c.gb.machines[m as usize].table = Some(table);
                continue;
            }
            Job::Table(t) => {
                c.gb.machines[m as usize].table = Some(t);
                continue;
            }
            Job::Counted(t) => {
                c.gb.machines[m as usize].counted = Some(t);
                continue;
            }
            Job::Member(key, v, ptr) => c.member(&mut nfa, &key, v, &ptr)?,
            Job::Comma(member) => {
                let comma = c.punct(&mut nfa, b",", false, true);
                let call = nfa.call(member);
                nfa.seq(&[comma, call])
            }
            Job::CommaQuote => {
                let comma = c.punct(&mut nfa, b",", false, true);
                let quote = nfa.lit(b"\"");
                nfa.seq(&[comma, quote])
            }
        };
        let def = &mut c.gb.machines[m as usize];
        def.nfa = nfa;
        def.body = body;
    }
    Ok(Part { gb: c.gb, root: root_m, relaxations: c.relaxations, annotations: c.annotations })
}

struct SchemaCompiler<'a> {
    root: &'a Value,
    cfg: &'a Config,
    gb: GrammarBuilder,
    keys: ahash::AHashMap<String, MachineId>,
    /// Machines of subschemas, keyed by content (see [`crate::json_schema::subschema`]).
    vkeys: ahash::AHashMap<VKey<'a>, MachineId>,
    jobs: Vec<(MachineId, Job<'a>)>,
    relaxations: Vec<Relaxation>,
    /// Formats JSON Schema does not define, left free (see
    /// [`strings::is_defined_format`]).
    annotations: Vec<Relaxation>,
    /// Trying a rewrite: every unsupported keyword is an error, whatever
    /// the mode, so that a failed attempt leaves no relaxation behind.
    probing: bool,
    depth: usize,
    /// Draft 7 and earlier: keywords beside `$ref` are ignored.
    legacy_ref: bool,
    /// Draft 4 and earlier: a number with a fraction (`2.0`) is no
    /// integer, so integral literals are written without one.
    draft4: bool,
    /// The document declares draft 3, whose formats include `color`,
    /// `host-name` and others later drafts dropped.
    draft3: bool,
    /// Draft 7 and later: `if`/`then`/`else` are keywords (before, they
    /// are unknown words and constrain nothing).
    conditionals: bool,
    /// Virtual ids taken by keyset machines so far (see [`KEYSET_ID_BUDGET`]).
    keyset_ids: u64,
}

/// Objects of at most this many declared members in any order get a state
/// per member subset in their own machine; larger ones a keyset machine.
const EXPLICIT_UNORDERED: usize = 10;

/// Most `patternProperties` patterns in one object (each key language is a
/// product over all of them).
const MAX_KEY_PATTERNS: usize = 32;

/// Most combinations of `patternProperties` patterns a key may match
/// together, each a key language (see `pattern_regions`).
const MAX_KEY_REGIONS: usize = 40;

/// Virtual state ids all keyset machines of one grammar may take (half
/// of the id space): past it, further large objects keep schema order.
const KEYSET_ID_BUDGET: u64 = 1 << 31;

/// A merge of two schemas, or the keyword that did not merge.
type Merged = Result<Map<String, Value>, String>;

fn ptr_push(ptr: &str, seg: &str) -> String {
    format!("{}/{}", ptr, seg.replace('~', "~0").replace('/', "~1"))
}

impl<'a> SchemaCompiler<'a> {
    /// The machine for `key`, creating it (and queueing its body) if new.
    fn machine(&mut self, key: String, job: impl FnOnce() -> Job<'a>) -> MachineId {
        if let Some(&m) = self.keys.get(&key) {
            return m;
        }
        let name: String = key.chars().take(120).collect();
        let m = self.gb.add(name);
        self.keys.insert(key, m);
        self.jobs.push((m, job()));
        m
    }

    /// The machine of a subschema, keyed by its content: a schema reached
    /// again (a repeated subschema, or recursion through merged `$ref`s)
    /// reuses its machine. `name` names it in errors.
    fn vmachine(
        &mut self,
        kind: Kind,
        extra: Vec<u8>,
        v: &Sv<'a>,
        name: impl FnOnce() -> String,
        job: impl FnOnce(Sv<'a>) -> Job<'a>,
    ) -> MachineId {
        let key = VKey::new(kind, extra, v.clone());
        if let Some(&m) = self.vkeys.get(&key) {
            return m;
        }
        let m = self.gb.add(name());
        let job = job(key.value().clone());
        self.vkeys.insert(key, m);
        self.jobs.push((m, job));
        m
    }

    fn terminal(&mut self, nfa: &mut Nfa, name: &'static str, hir: fn() -> regex_syntax::hir::Hir) -> Frag {
        let m = self.machine(format!("terminal:{name}"), || Job::Terminal(name, hir));
        nfa.call(m)
    }

    fn string_terminal(&mut self, nfa: &mut Nfa) -> Frag {
        let m = self.string_machine();
        nfa.call(m)
    }

    fn string_machine(&mut self) -> MachineId {
        self.machine("terminal:string".to_string(), || {
            Job::Terminal("string", || lexer::encode_json_string(&lexer::any_string()).expect("encodable"))
        })
    }

    fn any_value(&mut self, nfa: &mut Nfa) -> Frag {
        let m =
            self.machine("value:~any".to_string(), || Job::Value(Sv::built(Value::Object(Map::new())), "~any".into()));
        nfa.call(m)
    }

    fn ws(&self, nfa: &mut Nfa) -> Option<Frag> {
        match self.cfg.get_whitespace() {
            Whitespace::Compact => None,
            Whitespace::Flexible { .. } => {
                let start = nfa.state();
                let run = self.ws_run(nfa, start);
                let end = nfa.state();
                for p in run {
                    nfa.eps(p, end);
                }
                Some(Frag { start, end })
            }
        }
    }

    /// `lit` with whitespace around it per policy.
    fn punct(&self, nfa: &mut Nfa, lit: &[u8], before: bool, after: bool) -> Frag {
        let mut parts = Vec::new();
        if before {
            parts.extend(self.ws(nfa));
        }
        parts.push(nfa.lit(lit));
        if after {
            parts.extend(self.ws(nfa));
        }
        nfa.seq(&parts)
    }

    /// A `format` without a language here: an annotation when JSON Schema
    /// does not define it (recorded, the string stays free), else refused
    /// by name (or relaxed in lenient mode).
    fn unbuilt_format(&mut self, ptr: &str, name: &str) -> Result<(), CompileError> {
        if strings::is_defined_format(name, self.draft3) {
            return self.unsupported(ptr, "format", &format!("format {name:?} is not supported"));
        }
        let r = Relaxation { keyword: format!("format:{name}"), pointer: ptr.to_string() };
        if !self.annotations.contains(&r) {
            self.annotations.push(r);
        }
        Ok(())
    }

    fn unsupported(&mut self, ptr: &str, kw: &str, why: &str) -> Result<(), CompileError> {
        if self.cfg.get_strict() || self.probing {
            Err(CompileError::unsupported(ptr, kw, why))
        } else {
            let r = Relaxation { keyword: kw.to_string(), pointer: ptr.to_string() };
            if !self.relaxations.contains(&r) {
                self.relaxations.push(r);
            }
            Ok(())
        }
    }

    /// [`Self::unevaluated`], with what it cannot gather refused by name
    /// (strict) or dropped as a relaxation (lenient).
    fn unevaluated_or_refused(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Option<Value>, CompileError> {
        match self.unevaluated(map) {
            Ok(v) => Ok(v),
            Err((over, why)) => {
                self.unsupported(ptr, over.keyword(), &why)?;
                let mut m = map.clone();
                m.remove(over.keyword());
                Ok(Some(Value::Object(m)))
            }
        }
    }

    /// A subschema about to be merged into another (an `allOf` member, an
    /// `anyOf` branch taking its siblings), with its own `unevaluated*`
    /// keywords rewritten first: they must not see the other side.
    fn before_merge(&mut self, m: Map<String, Value>, ptr: &str) -> Result<Map<String, Value>, CompileError> {
        Ok(match self.unevaluated_or_refused(&m, ptr)? {
            Some(Value::Object(x)) => x,
            Some(other) => [("allOf".to_string(), Value::Array(vec![other]))].into_iter().collect(),
            None => m,
        })
    }

    /// The schema a `$ref` names in this document, borrowed, with its
    /// decoded JSON pointer.
    fn resolve_ref(&self, r: &str, ptr: &str) -> Result<(&'a Value, String), CompileError> {
        let unknown = || {
            CompileError::new(
                CompileErrorKind::UnknownRef,
                ptr,
                format!("$ref {r:?} does not resolve in this document"),
            )
            .with_keyword("$ref")
        };
        let frag = r.strip_prefix('#').ok_or_else(unknown)?;
        let decoded = percent_decode(frag).ok_or_else(unknown)?;
        if !decoded.is_empty() && !decoded.starts_with('/') {
            return Err(unknown());
        }
        let target = self.root.pointer(&decoded).ok_or_else(unknown)?;
        Ok((target, decoded))
    }

    /// [`Self::resolved`] for proofs that only read the schema: borrowed
    /// when there is no `$ref` to follow, `true` (nothing proven) when it
    /// does not resolve.
    fn resolved_or_true<'v>(&self, v: &'v Value, ptr: &str) -> std::borrow::Cow<'v, Value> {
        if v.get("$ref").is_none() {
            return std::borrow::Cow::Borrowed(v);
        }
        std::borrow::Cow::Owned(self.resolved(v, ptr).unwrap_or(Value::Bool(true)))
    }

    /// What a disjointness proof at `ptr` may ask (see [`merge::Facts`]).
    fn facts<'c>(&'c self, ptr: &'c str) -> ProofFacts<'c> {
        ProofFacts { c: self, ptr }
    }

    /// Follows `$ref` (with its siblings merged in) to a schema object.
    fn resolved(&self, v: &Value, ptr: &str) -> Result<Value, CompileError> {
        let merged = |t: &Map<String, Value>, s: &Map<String, Value>| {
            merge::merge(t, s).map_err(|k| {
                CompileError::unsupported(ptr, &k, format!("cannot intersect `{k}` constraints while applying `$ref`"))
            })
        };
        let mut cur = v.clone();
        // The siblings of every `$ref` along the chain (2019-09 and later;
        // draft 7 and earlier ignore them), merged in at its end.
        let mut siblings: Map<String, Value> = Map::new();
        for _ in 0..32 {
            let Some(Value::String(r)) = cur.get("$ref").cloned() else {
                return Ok(match cur {
                    _ if siblings.keys().all(|k| !is_constraint(k)) => cur,
                    Value::Object(t) => Value::Object(merged(&t, &siblings)?),
                    Value::Bool(false) => Value::Bool(false),
                    _ => Value::Object(siblings),
                });
            };
            let (target, _) = self.resolve_ref(&r, ptr)?;
            if !self.legacy_ref {
                let mut own = cur.as_object().cloned().unwrap_or_default();
                own.remove("$ref");
                siblings = merged(&siblings, &own)?;
            }
            cur = target.clone();
        }
        Err(CompileError::new(CompileErrorKind::LimitExceeded, ptr, "too many chained $refs").with_keyword("$ref"))
    }

    fn merge_or_err(
        &mut self,
        a: &Map<String, Value>,
        b: &Map<String, Value>,
        ptr: &str,
        kw: &str,
    ) -> Result<Map<String, Value>, CompileError> {
        self.merge_schemas(a, b, ptr)?.map_err(|k| {
            CompileError::unsupported(ptr, &k, format!("cannot intersect `{k}` constraints while applying `{kw}`"))
        })
    }

    /// `if`/`then`/`else` as `base ∧ anyOf[if ∧ then, not-if ∧ else]` (a
    /// missing `then` or `else` is `true`; without `if` both are inert).
    /// The two branches are disjoint, and `not-if` is the exact negation
    /// the `not` keyword uses; when `if` has none, strict mode refuses
    /// `if` by name and lenient mode drops the three keywords (one
    /// relaxation, keyword `if`).
    fn if_then_else(
        &mut self,
        map: &Map<String, Value>,
        base: Map<String, Value>,
        ptr: &str,
    ) -> Result<Value, CompileError> {
        use serde_json::json;
        let Some(cond) = map.get("if").filter(|_| self.conditionals) else { return Ok(Value::Object(base)) };
        let cond = self.resolved(cond, ptr)?;
        let branch = |this: &mut Self, kw: &str| -> Result<Value, CompileError> {
            match map.get(kw) {
                None => Ok(Value::Bool(true)),
                Some(v @ (Value::Bool(_) | Value::Object(_))) => this.resolved(v, ptr),
                Some(_) => {
                    Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, format!("{kw} must be a schema"))
                        .with_keyword(kw))
                }
            }
        };
        let (then, els) = (branch(self, "then")?, branch(self, "else")?);
        let not_cond = match &cond {
            Value::Bool(b) => Some(Value::Bool(!b)),
            Value::Object(m) if !m.keys().any(|k| is_constraint(k)) => Some(Value::Bool(false)),
            Value::Object(m) => {
                // Probe: a failed negation must leave no relaxation behind.
                let saved = self.probing;
                self.probing = true;
                let neg = self.negate(m, Some(&base), ptr);
                self.probing = saved;
                neg.ok().flatten()
            }
            _ => {
                return Err(
                    CompileError::new(CompileErrorKind::InvalidSchema, ptr, "if must be a schema").with_keyword("if")
                )
            }
        };
        let Some(not_cond) = not_cond else {
            self.unsupported(ptr, "if", "the negation of `if` is not expressible, so `else` cannot be enforced")?;
            return Ok(Value::Object(base));
        };
        let choice = json!({"anyOf": [{"allOf": [cond, then]}, {"allOf": [not_cond, els]}]});
        Ok(if base.keys().any(|k| is_constraint(k)) { json!({"allOf": [Value::Object(base), choice]}) } else { choice })
    }

    /// Schema-valued `dependentSchemas` (2019-09 on) and `dependencies`
    /// entries, rewritten: name `a` with schema `S` holds for an object when
    /// `a` is absent or `S` holds, so the schema becomes the rest of itself
    /// and, per entry, `anyOf` of `{required: [a]} ∧ S` and
    /// `{properties: {a: false}}` (the branches differ on whether `a` is
    /// present; neither constrains a non-object, which the second lets
    /// through, as the keyword does). At most [`MAX_SCHEMA_DEPENDENCIES`]
    /// entries (each doubles the branches); `None` when there is nothing
    /// to rewrite.
    fn schema_dependencies(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Option<Value>, CompileError> {
        use serde_json::json;
        let kws: &[&str] = if self.legacy_ref { &["dependencies"] } else { &["dependencies", "dependentSchemas"] };
        // Most schemas have neither keyword: spare them the copy below.
        if !kws
            .iter()
            .any(|k| map.get(*k).and_then(Value::as_object).is_some_and(|d| d.values().any(|v| !v.is_array())))
        {
            return Ok(None);
        }
        let mut entries: Vec<(String, Value)> = Vec::new();
        let mut rest = map.clone();
        for &kw in kws {
            let Some(Value::Object(dm)) = map.get(kw) else { continue };
            let mut kept = Map::new();
            for (a, dep) in dm {
                match dep {
                    Value::Object(o) if o.keys().any(|k| is_constraint(k)) => entries.push((a.clone(), dep.clone())),
                    Value::Bool(false) => entries.push((a.clone(), dep.clone())),
                    // Name lists stay (the object machine enforces them);
                    // `true` and annotation-only schemas constrain nothing.
                    Value::Array(_) => {
                        kept.insert(a.clone(), dep.clone());
                    }
                    Value::Bool(true) | Value::Object(_) => {}
                    _ => {
                        return Err(CompileError::new(
                            CompileErrorKind::InvalidSchema,
                            ptr,
                            format!(
                                "{kw} values must be schemas{}",
                                if kw == "dependencies" { " or name lists" } else { "" }
                            ),
                        )
                        .with_keyword(kw))
                    }
                }
            }
            if kept.is_empty() {
                rest.remove(kw);
            } else {
                rest.insert(kw.to_string(), Value::Object(kept));
            }
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let kw = if map.contains_key("dependentSchemas") { "dependentSchemas" } else { "dependencies" };
        if entries.len() > MAX_SCHEMA_DEPENDENCIES {
            self.unsupported(
                ptr,
                kw,
                &format!("more than {MAX_SCHEMA_DEPENDENCIES} schema dependencies (each doubles the branches)"),
            )?;
            return Ok(Some(Value::Object(rest)));
        }
        let rest: Map<String, Value> = rest.into_iter().filter(|(k, _)| !merge::is_annotation(k)).collect();
        let mut all = vec![Value::Object(rest.clone())];
        for (a, dep) in entries {
            let dep = self.resolved(&dep, ptr)?;
            // Each branch must merge with the rest of the schema; else the
            // keyword is refused (or, lenient, dropped and reported) here,
            // under its own name, rather than failing later inside the
            // rewrite where a relaxation would name the wrong keyword.
            let present = match &dep {
                Value::Object(d) => merge::merge(&[("required".to_string(), json!([a]))].into_iter().collect(), d)
                    .and_then(|m| merge::merge(&rest, &m))
                    .is_ok(),
                _ => true,
            };
            let absent = merge::merge(&rest, &[("properties".to_string(), json!({ &a: false }))].into_iter().collect());
            if !present || absent.is_err() {
                self.unsupported(ptr, kw, "a dependency's schema does not merge with the object's other keywords")?;
                return Ok(Some(Value::Object(rest)));
            }
            all.push(json!({"anyOf": [{"allOf": [{"required": [a]}, dep]}, {"properties": {a: false}}]}));
        }
        Ok(Some(json!({ "allOf": all })))
    }

    /// Whether key `name` matches `patternProperties` pattern `p`, when
    /// every reading of the pattern agrees (`None` otherwise).
    fn name_matches(&mut self, p: &str, name: &str, ptr: &str) -> Result<Option<bool>, CompileError> {
        let under = self.pattern_dfa(p, ptr, "patternProperties", strings::Reading::Under)?;
        let over = self.pattern_dfa(p, ptr, "patternProperties", strings::Reading::Over)?;
        Ok(certain_match(under.as_deref(), || over, name))
    }

    /// [`merge::merge`], and where it fails on `patternProperties` because
    /// one side is a closed object (`additionalProperties: false`, no
    /// patterns), the other side's patterns folded into the closed side's
    /// named keys first: within the closed side no other key occurs, and a
    /// named key that certainly matches a pattern takes the pattern's
    /// schema as a declared property (so it is no longer additional,
    /// as under the pattern). A match that is not certain keeps the error.
    fn merge_schemas(
        &mut self,
        a: &Map<String, Value>,
        b: &Map<String, Value>,
        ptr: &str,
    ) -> Result<Result<Map<String, Value>, String>, CompileError> {
        let first = merge::merge(a, b);
        if first.as_ref().err().map(String::as_str) != Some("patternProperties") {
            return Ok(first);
        }
        if let Some(declared) = self.names_declared(a, b, ptr)? {
            return Ok(declared);
        }
        let closed = |m: &Map<String, Value>| {
            m.get("additionalProperties") == Some(&Value::Bool(false)) && !m.contains_key("patternProperties")
        };
        let (c, o) = match (closed(a), closed(b)) {
            (true, _) => (a, b),
            (_, true) => (b, a),
            _ => return Ok(first),
        };
        let (Some(Value::Object(pp)), Some(names)) = (
            o.get("patternProperties"),
            c.get("properties").map(|p| p.as_object()).unwrap_or(Some(&Map::new())).cloned(),
        ) else {
            return Ok(first);
        };
        let mut props = match o.get("properties") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Ok(first),
        };
        for (name, allowed) in &names {
            if *allowed == Value::Bool(false) {
                continue;
            }
            let mut schemas: Vec<Value> = props.get(name).into_iter().cloned().collect();
            let mut matched = false;
            for (p, s) in pp {
                match self.name_matches(p, name, ptr)? {
                    Some(true) => {
                        schemas.push(s.clone());
                        matched = true;
                    }
                    Some(false) => {}
                    None => return Ok(first),
                }
            }
            if matched {
                let v = if schemas.len() == 1 {
                    schemas.pop().expect("one")
                } else {
                    serde_json::json!({ "allOf": schemas })
                };
                props.insert(name.clone(), v);
            }
        }
        let mut folded = o.clone();
        folded.remove("patternProperties");
        folded.insert("properties".into(), Value::Object(props));
        Ok(if std::ptr::eq(c, a) { merge::merge(a, &folded) } else { merge::merge(&folded, b) })
    }

    /// The merge of `a` and `b` where one side restricts its other keys
    /// (`additionalProperties` other than `true`) and the other is open,
    /// with patterns only among the first's: the open side's names the
    /// first does not declare are declared there first, each with the
    /// schema the first gives it (its `additionalProperties` when no pattern
    /// of it matches the name, else `true`: the patterns still apply). Then
    /// the open side constrains only keys the other declares or matches
    /// with the same pattern, which [`merge::merge`] combines exactly.
    /// `None` when the sides are not so, or a match is not certain.
    fn names_declared(
        &mut self,
        a: &Map<String, Value>,
        b: &Map<String, Value>,
        ptr: &str,
    ) -> Result<Option<Merged>, CompileError> {
        let open = |m: &Map<String, Value>| m.get("additionalProperties").is_none_or(|v| *v == Value::Bool(true));
        let (c, o) = match (open(a), open(b)) {
            (false, true) => (a, b),
            (true, false) => (b, a),
            _ => return Ok(None),
        };
        let empty = Map::new();
        let obj = |m: &Map<String, Value>, k: &str| match m.get(k) {
            None => Some(empty.clone()),
            Some(Value::Object(x)) => Some(x.clone()),
            Some(_) => None,
        };
        let (Some(cp), Some(cpp), Some(op), Some(opp)) =
            (obj(c, "properties"), obj(c, "patternProperties"), obj(o, "properties"), obj(o, "patternProperties"))
        else {
            return Ok(None);
        };
        if !opp.keys().all(|p| cpp.contains_key(p)) {
            return Ok(None);
        }
        let mut props = cp.clone();
        for name in op.keys().filter(|n| !cp.contains_key(*n)) {
            let mut matched = false;
            for p in cpp.keys() {
                match self.name_matches(p, name, ptr)? {
                    Some(true) => matched = true,
                    Some(false) => {}
                    None => return Ok(None),
                }
            }
            let s = if matched { Value::Bool(true) } else { c["additionalProperties"].clone() };
            props.insert(name.clone(), s);
        }
        let mut c2 = c.clone();
        c2.insert("properties".into(), Value::Object(props));
        let merged = if std::ptr::eq(c, a) { merge::merge(&c2, b) } else { merge::merge(a, &c2) };
        Ok(merged.is_ok().then_some(merged))
    }

    /// [`merge::merge`] of two `allOf` members; where both carry a
    /// conditional (`if`/`then`/`else` do not merge), each side's
    /// conditional is first rewritten to its `anyOf` form (see
    /// [`Self::if_then_else`]) and the merge tried again, when `unfold`
    /// (the caller's `allOf` holds at most [`MAX_CONDITIONALS`]). The inner
    /// `Err` names the keyword that still does not merge.
    fn merge_members(
        &mut self,
        a: &Map<String, Value>,
        b: &Map<String, Value>,
        unfold: bool,
        ptr: &str,
    ) -> Result<Result<Map<String, Value>, String>, CompileError> {
        let first = self.merge_schemas(a, b, ptr)?;
        let conditional = |m: &Map<String, Value>| ["if", "then", "else"].iter().any(|k| m.contains_key(*k));
        match first {
            Err(k) if unfold && matches!(k.as_str(), "if" | "then" | "else") && conditional(a) && conditional(b) => {
                let unfold = |this: &mut Self, m: &Map<String, Value>| -> Result<Map<String, Value>, CompileError> {
                    let base: Map<String, Value> = m
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "if" | "then" | "else"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Ok(match this.if_then_else(m, base, ptr)? {
                        Value::Object(o) => o,
                        other => [("allOf".to_string(), Value::Array(vec![other]))].into_iter().collect(),
                    })
                };
                let (ua, ub) = (unfold(self, a)?, unfold(self, b)?);
                self.merge_schemas(&ua, &ub, ptr)
            }
            other => Ok(other),
        }
    }

    /// A schema equivalent to `not sub`, built as `anyOf` the negations of
    /// `sub`'s conjuncts (each keyword is one conjunct). A keyword that
    /// constrains one type only is vacuously true for the others, so its
    /// negation is "of that type and violating it". `Ok(None)` means a
    /// keyword could not be negated and lenient mode dropped the `not`.
    /// `ctx`, when given, is a
    /// schema the negation will only be used intersected with: a closed
    /// object there (`additionalProperties: false`) lets "some key breaks
    /// `additionalProperties`/`patternProperties`" become a choice among
    /// its named keys.
    fn negate(
        &mut self,
        sub: &Map<String, Value>,
        ctx: Option<&Map<String, Value>>,
        ptr: &str,
    ) -> Result<Option<Value>, CompileError> {
        self.negate_at(sub, ctx, ptr, 0)
    }

    /// Within `ctx`, the objects where a key of `sub`'s object breaks
    /// `kw` (`additionalProperties` or `patternProperties`, value `v`):
    /// one branch per key `ctx` admits whose value must then fail the
    /// schema `sub` gives it there. `None` when `ctx` is not a closed
    /// object of named keys, or a key's match against a pattern is not
    /// certain.
    fn closed_key_breaches(
        &mut self,
        kw: &str,
        v: &Value,
        sub: &Map<String, Value>,
        ctx: Option<&Map<String, Value>>,
        ptr: &str,
    ) -> Result<Option<Vec<Value>>, CompileError> {
        use serde_json::json;
        let Some(ctx) = ctx else { return Ok(None) };
        if ctx.get("additionalProperties") != Some(&Value::Bool(false))
            || ctx.get("patternProperties").is_some_and(|pp| pp.as_object().is_none_or(|m| !m.is_empty()))
        {
            return Ok(None);
        }
        let empty = Map::new();
        let names = match ctx.get("properties") {
            None => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return Ok(None),
        };
        let patterns = match sub.get("patternProperties") {
            None => &empty,
            Some(Value::Object(m)) => m,
            Some(_) => return Ok(None),
        };
        let declared = sub.get("properties").and_then(Value::as_object);
        let matches = |this: &mut Self, p: &str, name: &str| this.name_matches(p, name, ptr);
        let mut out = Vec::new();
        for (name, allowed) in names {
            if *allowed == Value::Bool(false) {
                continue;
            }
            // The schemas `sub`'s `kw` gives this key's value.
            let mut given: Vec<&Value> = Vec::new();
            if kw == "patternProperties" {
                let Value::Object(pp) = v else { return Ok(None) };
                for (p, s) in pp {
                    match matches(self, p, name)? {
                        Some(true) => given.push(s),
                        Some(false) => {}
                        None => return Ok(None),
                    }
                }
            } else {
                if declared.is_some_and(|d| d.contains_key(name)) {
                    continue;
                }
                let mut extra = true;
                for p in patterns.keys() {
                    match matches(self, p, name)? {
                        Some(true) => extra = false,
                        Some(false) => {}
                        None => return Ok(None),
                    }
                }
                if extra {
                    given.push(v);
                }
            }
            for s in given {
                match s {
                    Value::Bool(true) => {}
                    Value::Bool(false) => out.push(json!({ "type": "object", "required": [name] })),
                    s => {
                        out.push(json!({ "type": "object", "required": [name], "properties": { name: { "not": s } } }))
                    }
                }
            }
        }
        Ok(Some(out))
    }

    fn negate_at(
        &mut self,
        sub: &Map<String, Value>,
        ctx: Option<&Map<String, Value>>,
        ptr: &str,
        depth: usize,
    ) -> Result<Option<Value>, CompileError> {
        use serde_json::json;
        let mut branches: Vec<Value> = Vec::new();
        let bail = |this: &mut Self, kw: &str| -> Result<Option<Value>, CompileError> {
            this.unsupported(ptr, "not", &format!("`not` of `{kw}` is not supported"))?;
            Ok(None)
        };
        for (k, v) in sub {
            if !is_constraint(k) {
                continue;
            }
            let n = v.as_u64();
            match (k.as_str(), v) {
                ("type", _) => {
                    let ts: Vec<&str> = match v {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(a) => a.iter().filter_map(|t| t.as_str()).collect(),
                        _ => return Err(bad_type(ptr)),
                    };
                    // "A number but not an integer" has no schema, unless
                    // the context admits no such numbers.
                    let ctx_types: Option<Vec<&str>> = ctx.and_then(|c| match c.get("type") {
                        Some(Value::String(t)) => Some(vec![t.as_str()]),
                        Some(Value::Array(a)) => Some(a.iter().filter_map(|t| t.as_str()).collect()),
                        _ => None,
                    });
                    let fractions_excluded = ctx_types.is_some_and(|c| !c.contains(&"number"));
                    // Not an integer: some other type, or a number with a
                    // fraction (none within such a context, where every
                    // number is an integer).
                    let integers_cover = ts.contains(&"integer");
                    if integers_cover && !ts.contains(&"number") && !fractions_excluded {
                        branches.push(json!({ "type": "number", "x-grammask-fraction": true }));
                    }
                    let rest: Vec<&str> = ["null", "boolean", "object", "array", "number", "string"]
                        .into_iter()
                        .filter(|t| !(ts.contains(t) || (*t == "number" && integers_cover)))
                        .collect();
                    if !rest.is_empty() {
                        branches.push(json!({ "type": rest }));
                    }
                }
                ("not", x) => branches.push(x.clone()),
                // Exactly one member holds: its negation is "none holds"
                // or "two overlapping members hold".
                ("oneOf", Value::Array(xs)) if xs.len() > 1 => {
                    if xs.len() > 8 {
                        return bail(self, k);
                    }
                    let mut both = Vec::new();
                    for i in 0..xs.len() {
                        for j in i + 1..xs.len() {
                            if !merge::disjoint(&xs[i], &xs[j], &self.facts(ptr)) {
                                both.push(json!({ "allOf": [xs[i], xs[j]] }));
                            }
                        }
                    }
                    let mut none = Map::new();
                    none.insert("anyOf".into(), v.clone());
                    match self.negate_at(&none, ctx, ptr, depth + 1)? {
                        Some(n) => branches.push(n),
                        None => return Ok(None),
                    }
                    branches.extend(both);
                }
                // Not keywords before draft 6.
                ("contains" | "minContains" | "maxContains", _) if self.draft4 => {}
                // Every item fails the schema (one matching item is what
                // `contains` asks before 2019-09, and by default after).
                ("contains", _)
                    if !self.draft4
                        && !sub.contains_key("maxContains")
                        && sub.get("minContains").is_none_or(|m| m.as_u64() == Some(1) || self.legacy_ref) =>
                {
                    branches.push(json!({ "type": "array", "items": { "not": v } }))
                }
                ("minContains" | "maxContains", _) if !self.legacy_ref && !sub.contains_key("contains") => {}
                ("minContains", _) if self.legacy_ref || sub.get("minContains").and_then(Value::as_u64) == Some(1) => {}
                // A format JSON Schema does not define is an annotation:
                // it always holds.
                ("format", Value::String(f)) if !strings::is_defined_format(f, self.draft3) => {}
                ("anyOf", Value::Array(xs)) => {
                    // Negated here, not left as `not`s in an `allOf`: merging
                    // those would rebuild `not: {anyOf}` and loop.
                    if depth > 16 {
                        return Err(CompileError::new(CompileErrorKind::LimitExceeded, ptr, "`not` nests too deeply")
                            .with_keyword("not"));
                    }
                    let mut all = Vec::new();
                    for x in xs {
                        match self.resolved(x, ptr)? {
                            Value::Bool(b) => all.push(Value::Bool(!b)),
                            Value::Object(m) => match self.negate_at(&m, ctx, ptr, depth + 1)? {
                                Some(n) => all.push(n),
                                None => return Ok(None),
                            },
                            _ => {
                                return Err(CompileError::new(
                                    CompileErrorKind::InvalidSchema,
                                    ptr,
                                    "anyOf members must be schemas",
                                )
                                .with_keyword("anyOf"))
                            }
                        }
                    }
                    branches.push(json!({ "allOf": all }));
                }
                ("allOf", Value::Array(xs)) => branches.extend(xs.iter().map(|x| json!({ "not": x }))),
                ("oneOf", Value::Array(xs)) if xs.len() == 1 => branches.push(json!({ "not": xs[0] })),
                // Some key breaks `propertyNames` (an object, as the keyword
                // holds for every other value): any key when it is `false`,
                // one of the listed names when it excludes a `const`/`enum`.
                ("propertyNames", _) if excluded_names(&self.resolved(v, ptr)?).is_some() => {
                    match excluded_names(&self.resolved(v, ptr)?).expect("checked") {
                        None => branches.push(json!({ "type": "object", "minProperties": 1 })),
                        Some(names) => {
                            branches.extend(names.into_iter().map(|n| json!({ "type": "object", "required": [n] })))
                        }
                    }
                }
                ("$ref", _) => {
                    let mut only = Map::new();
                    only.insert("$ref".into(), v.clone());
                    let r = self.resolved(&Value::Object(only), ptr)?;
                    branches.push(json!({ "not": r }));
                }
                ("required", Value::Array(rs)) => {
                    for r in rs {
                        if let Some(r) = r.as_str() {
                            branches.push(json!({ "type": "object", "properties": { r: false } }));
                        }
                    }
                }
                // A dependency broken: its key present and a name it needs
                // absent, or (schema form) the object failing its schema.
                // `dependentRequired` is a keyword from 2019-09 on only
                // (validators ignore it before, so its negation would not
                // hold); `dependencies` is read in every draft.
                ("dependencies" | "dependentRequired", Value::Object(deps))
                    if k == "dependencies" || !self.legacy_ref =>
                {
                    for (name, dep) in deps {
                        match dep {
                            Value::Array(needs) => {
                                for r in needs.iter().filter_map(Value::as_str).filter(|r| r != name) {
                                    branches.push(
                                        json!({ "type": "object", "required": [name], "properties": { r: false } }),
                                    );
                                }
                            }
                            Value::Bool(_) | Value::Object(_) if k == "dependencies" => {
                                branches.push(json!({ "type": "object", "required": [name], "not": dep }))
                            }
                            _ => return bail(self, k),
                        }
                    }
                }
                ("properties", Value::Object(ps)) => {
                    for (name, s) in ps {
                        branches.push(
                            json!({ "type": "object", "required": [name], "properties": { name: { "not": s } } }),
                        );
                    }
                }
                // Some item fails the schema: `contains` its negation (no
                // `contains` before draft 6; tuple forms not here).
                ("items", Value::Bool(true)) => {}
                ("items", Value::Bool(false)) if !sub.contains_key("prefixItems") => {
                    branches.push(json!({ "type": "array", "minItems": 1 }))
                }
                ("items", Value::Object(_)) if !sub.contains_key("prefixItems") => {
                    let contains = if self.draft4 { "x-grammask-contains" } else { "contains" };
                    branches.push(json!({ "type": "array", contains: { "not": v } }))
                }
                ("x-grammask-contains", _) => branches.push(json!({ "type": "array", "items": { "not": v } })),
                ("x-grammask-contains-also", _) if self.draft4 => {}
                ("x-grammask-contains4-also", _) if !self.draft4 => {}
                ("x-grammask-contains-also" | "x-grammask-contains4-also", Value::Array(xs)) => {
                    branches.extend(xs.iter().map(|x| json!({ "type": "array", "items": { "not": x } })))
                }
                ("additionalProperties" | "patternProperties", _) => {
                    match self.closed_key_breaches(k, v, sub, ctx, ptr)? {
                        Some(bs) => branches.extend(bs),
                        None => match some_key_outside(k, v, sub) {
                            Some(bs) => branches.extend(bs),
                            None => return bail(self, k),
                        },
                    }
                }
                ("pattern", Value::String(p)) => {
                    branches.push(json!({ "type": "string", "x-grammask-not-patterns": [p] }))
                }
                // Outside a superset of what validators accept as the format.
                ("format", Value::String(f)) if strings::format_superset(f).is_some() => {
                    branches.push(json!({ "type": "string", "x-grammask-not-formats": [f] }))
                }
                // A whole divisor: an integral number it does not divide,
                // or a number with a fraction (which no whole number
                // divides).
                ("multipleOf", Value::Number(d))
                    if d.as_f64().is_some_and(|f| f >= 1.0 && f.fract() == 0.0 && f <= 1e6) =>
                {
                    branches.push(json!({ "type": "number", "x-grammask-not-multiple-of": [v] }));
                    branches.push(json!({ "type": "number", "x-grammask-fraction": true }));
                }
                ("x-grammask-fraction", _) => branches.push(json!({ "type": "integer" })),
                ("minLength", _) if n.is_some() => {
                    if let Some(m) = n.and_then(|n| n.checked_sub(1)) {
                        branches.push(json!({ "type": "string", "maxLength": m }));
                    }
                }
                ("maxLength", _) if n.is_some() => {
                    branches.push(json!({ "type": "string", "minLength": n.map(|n| n + 1) }))
                }
                ("minItems", _) if n.is_some() => {
                    if let Some(m) = n.and_then(|n| n.checked_sub(1)) {
                        branches.push(json!({ "type": "array", "maxItems": m }));
                    }
                }
                ("maxItems", _) if n.is_some() => {
                    branches.push(json!({ "type": "array", "minItems": n.map(|n| n + 1) }))
                }
                ("minProperties", _) if n.is_some() => {
                    if let Some(m) = n.and_then(|n| n.checked_sub(1)) {
                        branches.push(json!({ "type": "object", "maxProperties": m }));
                    }
                }
                ("maxProperties", _) if n.is_some() => {
                    branches.push(json!({ "type": "object", "minProperties": n.map(|n| n + 1) }))
                }
                // Draft 4: a boolean exclusive* modifies its bound.
                ("exclusiveMinimum" | "exclusiveMaximum", Value::Bool(_)) => {}
                ("minimum", Value::Number(_)) if sub.get("exclusiveMinimum") == Some(&Value::Bool(true)) => {
                    branches.push(json!({ "type": "number", "maximum": v }))
                }
                ("maximum", Value::Number(_)) if sub.get("exclusiveMaximum") == Some(&Value::Bool(true)) => {
                    branches.push(json!({ "type": "number", "minimum": v }))
                }
                ("minimum", Value::Number(_)) => branches.push(json!({ "type": "number", "exclusiveMaximum": v })),
                ("maximum", Value::Number(_)) => branches.push(json!({ "type": "number", "exclusiveMinimum": v })),
                ("exclusiveMinimum", Value::Number(_)) => branches.push(json!({ "type": "number", "maximum": v })),
                ("exclusiveMaximum", Value::Number(_)) => branches.push(json!({ "type": "number", "minimum": v })),
                ("enum" | "const", _) => {
                    let vals: Vec<&Value> = match (k.as_str(), v) {
                        ("const", c) => vec![c],
                        (_, Value::Array(e)) => e.iter().collect(),
                        _ => {
                            return Err(CompileError::new(
                                CompileErrorKind::InvalidSchema,
                                ptr,
                                "enum must be an array",
                            )
                            .with_keyword("enum"))
                        }
                    };
                    // Any value but these: strings avoid the listed ones;
                    // null and booleans drop out by type; numbers lie in
                    // the open intervals between the listed ones; arrays
                    // and objects in the list are not supported here.
                    let mut strs: Vec<Value> = Vec::new();
                    let mut nums: Vec<(numbers::Dec, Value)> = Vec::new();
                    let (mut null, mut t, mut f) = (false, false, false);
                    // One object or array literal: values of its type are
                    // those that differ from it somewhere.
                    let mut composite: Option<&Value> = None;
                    for x in vals {
                        match x {
                            Value::Object(_) | Value::Array(_) if composite.is_none_or(|c| c == x) => {
                                composite = Some(x);
                            }
                            Value::String(_) => strs.push(x.clone()),
                            Value::Null => null = true,
                            Value::Bool(true) => t = true,
                            Value::Bool(false) => f = true,
                            Value::Number(n) => match numbers::parse_dec(&n.to_string()) {
                                Some(d) => nums.push((d, x.clone())),
                                None => return bail(self, k),
                            },
                            _ => return bail(self, k),
                        }
                    }
                    let mut types: Vec<&str> = vec!["object", "array"];
                    match composite {
                        Some(Value::Object(o)) => {
                            types.retain(|t| *t != "object");
                            branches.extend(other_objects(o));
                        }
                        Some(Value::Array(a)) => {
                            types.retain(|t| *t != "array");
                            branches.extend(other_arrays(a));
                        }
                        _ => {}
                    }
                    if nums.is_empty() {
                        types.push("number");
                    } else {
                        if nums.len() > 16 {
                            return bail(self, k);
                        }
                        nums.sort_by(|a, b| numbers::cmp_dec(&a.0, &b.0));
                        nums.dedup_by(|a, b| numbers::cmp_dec(&a.0, &b.0) == std::cmp::Ordering::Equal);
                        branches.push(json!({ "type": "number", "exclusiveMaximum": nums[0].1 }));
                        for w in nums.windows(2) {
                            branches.push(
                                json!({ "type": "number", "exclusiveMinimum": w[0].1, "exclusiveMaximum": w[1].1 }),
                            );
                        }
                        branches.push(json!({ "type": "number", "exclusiveMinimum": nums[nums.len() - 1].1 }));
                    }
                    if !null {
                        types.push("null");
                    }
                    if !t && !f {
                        types.push("boolean");
                    }
                    branches.push(json!({ "type": types }));
                    if t != f {
                        branches.push(json!({ "const": !t }));
                    }
                    branches.push(json!({ "type": "string", "x-grammask-not-strings": strs }));
                }
                _ => return bail(self, k),
            }
        }
        Ok(Some(match branches.len() {
            0 => Value::Bool(false),
            1 => branches.pop().expect("one"),
            _ => json!({ "anyOf": branches }),
        }))
    }

    /// Rewrites `allOf`, `$ref` with sibling constraints, and constraints
    /// beside `anyOf`/`oneOf` into forms the compiler handles directly;
    /// proves `oneOf` branches disjoint (then it is an `anyOf`) or makes
    /// them exclusive. `None` when nothing applies.
    fn normalize(&mut self, map: &Map<String, Value>, ptr: &str) -> Result<Option<Value>, CompileError> {
        // Rewritten schemas carry constraints only, as merges do
        // (`merge::is_annotation`): `$ref` resolves against the document,
        // never a rewrite, and copying a root's `$defs` into a rewrite copied
        // the whole document.
        let siblings_of = |skip: &[&str]| -> Map<String, Value> {
            map.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()) && !merge::is_annotation(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let has_constraints = |m: &Map<String, Value>| m.keys().any(|k| is_constraint(k));
        // First, while the schema still reads as written: what its
        // `unevaluated*` keywords see (merges below would widen it).
        if let Some(v) = self.unevaluated_or_refused(map, ptr)? {
            return Ok(Some(v));
        }
        // $ref with constraints beside it: both apply (2019-09 and later).
        if map.contains_key("$ref") && self.legacy_ref {
            // Draft 7 and earlier: `$ref` overrides its siblings.
            let mut only = Map::new();
            only.insert("$ref".into(), map["$ref"].clone());
            if map.len() > 1 {
                return Ok(Some(Value::Object(only)));
            }
            return Ok(None);
        }
        if map.contains_key("$ref") && map.keys().any(|k| k != "$ref" && is_constraint(k)) {
            return Ok(Some(self.resolved(&Value::Object(map.clone()), ptr)?));
        }
        if let Some(v) = self.schema_dependencies(map, ptr)? {
            return Ok(Some(v));
        }
        if map.contains_key("if") || map.contains_key("then") || map.contains_key("else") {
            return self.if_then_else(map, siblings_of(&["if", "then", "else"]), ptr).map(Some);
        }
        if let Some(not) = map.get("not") {
            let mut base = siblings_of(&["not"]);
            let sub = self.resolved(not, ptr)?;
            let sub_kws: Vec<String> = match &sub {
                Value::Object(m) => m.keys().filter(|k| is_constraint(k)).cloned().collect(),
                _ => vec![],
            };
            match &sub {
                Value::Bool(false) => return Ok(Some(Value::Object(base))),
                Value::Bool(true) => return Ok(Some(Value::Bool(false))),
                _ if sub_kws.is_empty() => return Ok(Some(Value::Bool(false))),
                _ => {}
            }
            let sm = sub.as_object().expect("object");
            if sub_kws == ["type"] {
                let excluded: Vec<&str> = match &sm["type"] {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(a) => a.iter().filter_map(|t| t.as_str()).collect(),
                    _ => vec![],
                };
                let current: Vec<String> = match base.get("type") {
                    Some(Value::String(t)) => vec![t.clone()],
                    Some(Value::Array(a)) => a.iter().filter_map(|t| t.as_str().map(String::from)).collect(),
                    _ => ["null", "boolean", "object", "array", "number", "string"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                };
                let mut keep: Vec<Value> = Vec::new();
                for t in &current {
                    let gone = excluded.contains(&t.as_str()) || (t == "integer" && excluded.contains(&"number"));
                    if t == "number" && excluded.contains(&"integer") && !excluded.contains(&"number") {
                        // A number but not an integer: one with a fraction.
                        base.insert("x-grammask-fraction".into(), Value::Bool(true));
                    }
                    if !gone {
                        keep.push(Value::String(t.clone()));
                    }
                }
                base.insert("type".into(), Value::Array(keep));
                return Ok(Some(Value::Object(base)));
            }
            match self.negate(sm, Some(&base), ptr)? {
                Some(neg) => {
                    let mut out = Map::new();
                    out.insert("allOf".into(), Value::Array(vec![Value::Object(base), neg]));
                    return Ok(Some(Value::Object(out)));
                }
                None => return Ok(Some(Value::Object(base))),
            }
        }
        if let Some(all) = map.get("allOf") {
            let Value::Array(items) = all else {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "allOf must be an array")
                    .with_keyword("allOf"));
            };
            let mut acc = siblings_of(&["allOf"]);
            // Each unfolded conditional doubles the copies of the merged
            // schema (an `anyOf` of whole objects).
            let has_if = |v: &Value| v.get("if").is_some();
            let unfold =
                items.iter().filter(|i| has_if(i)).count() + usize::from(acc.contains_key("if")) <= MAX_CONDITIONALS;
            for item in items {
                match self.resolved(item, ptr)? {
                    Value::Bool(true) => {}
                    Value::Bool(false) => return Ok(Some(Value::Bool(false))),
                    Value::Object(m) => {
                        match self.before_merge(m, ptr).and_then(|m| self.merge_members(&acc, &m, unfold, ptr))? {
                            Ok(x) => acc = x,
                            Err(k) => {
                                self.unsupported(
                                    ptr,
                                    "allOf",
                                    &format!("cannot intersect `{k}` constraints of allOf members"),
                                )?;
                            }
                        }
                    }
                    _ => {
                        return Err(CompileError::new(
                            CompileErrorKind::InvalidSchema,
                            ptr,
                            "allOf members must be schemas",
                        )
                        .with_keyword("allOf"))
                    }
                }
            }
            return Ok(Some(Value::Object(acc)));
        }
        for kw in ["anyOf", "oneOf"] {
            let Some(branches) = map.get(kw) else {
                continue;
            };
            let Value::Array(branches) = branches else {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, format!("{kw} must be an array"))
                    .with_keyword(kw));
            };
            if branches.is_empty() {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, format!("{kw} must not be empty"))
                    .with_keyword(kw));
            }
            // "Exactly one of these required sets": branch i also excludes
            // every other branch (some name of each other set is absent).
            let required_only = |b: &Value| -> Option<Vec<String>> {
                let m = b.as_object()?;
                if m.keys().any(|k| is_constraint(k) && k != "required") {
                    return None;
                }
                let r: Vec<String> =
                    m.get("required")?.as_array()?.iter().filter_map(|x| x.as_str().map(String::from)).collect();
                (!r.is_empty()).then_some(r)
            };
            let rewritten: Vec<Value>;
            let mut disjoint_by_construction = false;
            let branches = if kw == "oneOf"
                && branches.len() <= 6
                && branches.iter().all(|b| required_only(b).is_some())
            {
                let sets: Vec<Vec<String>> = branches.iter().map(|b| required_only(b).expect("checked")).collect();
                // `required` holds vacuously for non-objects, where every
                // branch holds: with two or more branches no non-object
                // satisfies exactly one, so each branch is an object.
                let only_objects = sets.len() >= 2;
                rewritten = (0..sets.len())
                    .map(|i| {
                        let mut all = vec![if only_objects {
                            serde_json::json!({ "type": "object", "required": sets[i] })
                        } else {
                            serde_json::json!({ "required": sets[i] })
                        }];
                        for (j, other) in sets.iter().enumerate() {
                            if j != i {
                                let absent: Vec<Value> =
                                    other.iter().map(|r| serde_json::json!({ "properties": { r: false } })).collect();
                                all.push(serde_json::json!({ "anyOf": absent }));
                            }
                        }
                        serde_json::json!({ "allOf": all })
                    })
                    .collect();
                // Branch i is an object with all of set i and without some
                // name of every other set, so no instance satisfies two.
                disjoint_by_construction = true;
                &rewritten
            } else {
                branches
            };
            let base = siblings_of(&[kw]);
            let distribute = has_constraints(&base);
            if !distribute && kw == "anyOf" {
                return Ok(None);
            }
            let mut merged: Vec<Value> = Vec::new();
            for b in branches {
                if distribute {
                    match self.resolved(b, ptr)? {
                        Value::Object(bm) => {
                            let bm = self.before_merge(bm, ptr)?;
                            merged.push(Value::Object(self.merge_or_err(&base, &bm, ptr, kw)?))
                        }
                        Value::Bool(true) => merged.push(Value::Object(base.clone())),
                        other => merged.push(other),
                    }
                } else {
                    merged.push(b.clone());
                }
            }
            if kw == "oneOf" && !disjoint_by_construction {
                match self.vacuous_overlap_removed(&merged, ptr)? {
                    Some(VacuousOverlap::All) => return Ok(Some(Value::Bool(false))),
                    Some(VacuousOverlap::Restricted(r)) => merged = r,
                    None => {}
                }
                let mut overlap: Option<(usize, usize)> = None;
                {
                    let facts = self.facts(ptr);
                    'outer: for i in 0..merged.len() {
                        for j in i + 1..merged.len() {
                            if !merge::disjoint(&merged[i], &merged[j], &facts) {
                                overlap = Some((i, j));
                                break 'outer;
                            }
                        }
                    }
                }
                if let Some((i, j)) = overlap {
                    let why = match self.exclusive_branches(&merged, branches, ptr) {
                        Ok(excl) => {
                            let mut out = Map::new();
                            out.insert("anyOf".into(), Value::Array(excl));
                            return Ok(Some(Value::Object(out)));
                        }
                        Err(why) => why,
                    };
                    self.unsupported(
                        ptr,
                        "oneOf",
                        &format!(
                            "branches {i} and {j} may overlap and exactly-one cannot be enforced ({why}); compiled as anyOf"
                        ),
                    )?;
                }
            }
            let mut out = Map::new();
            out.insert("anyOf".into(), Value::Array(merged));
            return Ok(Some(Value::Object(out)));
        }
        Ok(None)
    }

    /// The types on which two `oneOf` branches both hold for every value
    /// (no keyword of either constrains them, like an untyped object schema
    /// on strings): every value of such a type satisfies two branches, so
    /// the `oneOf` rejects it. Returns the branches restricted to the other
    /// types (`All` when none is left), `None` when no type is excluded or a
    /// branch does not take the restriction.
    fn vacuous_overlap_removed(&self, merged: &[Value], ptr: &str) -> Result<Option<VacuousOverlap>, CompileError> {
        const ALL: [&str; 6] = ["null", "boolean", "object", "array", "string", "number"];
        // Each branch resolved once (`None`: it does not resolve here).
        let resolved: Vec<Option<Value>> = merged.iter().map(|b| self.resolved(b, ptr).ok()).collect();
        let vacuous: Vec<Vec<&str>> = resolved
            .iter()
            .map(|b| match b {
                Some(Value::Object(m)) => merge::vacuous_types(m, is_constraint),
                Some(Value::Bool(true)) => ALL.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        let mut excluded: Vec<&str> = Vec::new();
        for i in 0..vacuous.len() {
            for j in i + 1..vacuous.len() {
                for t in &vacuous[i] {
                    if vacuous[j].contains(t) && !excluded.contains(t) {
                        excluded.push(t);
                    }
                }
            }
        }
        if excluded.is_empty() {
            return Ok(None);
        }
        let keep: Vec<Value> = ALL.iter().filter(|t| !excluded.contains(t)).map(|t| Value::from(*t)).collect();
        if keep.is_empty() {
            return Ok(Some(VacuousOverlap::All));
        }
        let restriction: Map<String, Value> = [("type".to_string(), Value::Array(keep))].into_iter().collect();
        let mut out = Vec::with_capacity(merged.len());
        for b in resolved {
            match b {
                Some(Value::Object(m)) => match merge::merge(&m, &restriction) {
                    Ok(r) => out.push(Value::Object(r)),
                    Err(_) => return Ok(None),
                },
                Some(Value::Bool(true)) => out.push(Value::Object(restriction.clone())),
                Some(Value::Bool(false)) => out.push(Value::Bool(false)),
                _ => return Ok(None),
            }
        }
        Ok(Some(VacuousOverlap::Restricted(out)))
    }

    /// `oneOf` branches that may overlap made exclusive: branch `i` becomes
    /// `i` and not `j` for every branch `j` not proven disjoint from it
    /// (exactly one holds iff some branch holds and no other does).
    /// `merged[i]` is branch `i` with the `oneOf`'s siblings merged in,
    /// `raw[i]` the branch as written: within the siblings, not `raw[j]`
    /// is not `merged[j]`, and it leaves the siblings' keywords out of the
    /// negation. `Err` says why when a negation or a merge is not
    /// representable (the caller reports the overlap). At most
    /// [`MAX_EXCLUSIVE_BRANCHES`] branches and
    /// [`MAX_EXCLUSIVE_ALTERNATIVES`] alternatives: the negations multiply.
    fn exclusive_branches(&mut self, merged: &[Value], raw: &[Value], ptr: &str) -> Result<Vec<Value>, String> {
        if merged.len() > MAX_EXCLUSIVE_BRANCHES {
            return Err(format!("{} branches, the rewrite takes at most {MAX_EXCLUSIVE_BRANCHES}", merged.len()));
        }
        let saved = self.probing;
        self.probing = true;
        let r = self.exclusive_branches_inner(merged, raw, ptr);
        self.probing = saved;
        r.map_err(|e| e.message().to_string())
    }

    /// `neg` without the `anyOf` alternatives proven disjoint from `ctx`
    /// (it is used only intersected with `ctx`): negations list a branch
    /// per keyword, and most cannot hold beside the branch they refine, so
    /// merging them would multiply alternatives for nothing.
    fn within(&self, neg: Value, ctx: &Map<String, Value>, ptr: &str) -> Value {
        let Value::Object(m) = &neg else { return neg };
        let Some(Value::Array(alts)) = m.get("anyOf") else { return neg };
        if m.len() != 1 {
            return neg;
        }
        let ctx = Value::Object(ctx.clone());
        let facts = self.facts(ptr);
        let mut kept: Vec<Value> = alts.iter().filter(|a| !merge::disjoint(a, &ctx, &facts)).cloned().collect();
        match kept.len() {
            0 => Value::Bool(false),
            1 => kept.pop().expect("one"),
            _ => serde_json::json!({ "anyOf": kept }),
        }
    }

    fn exclusive_branches_inner(
        &mut self,
        merged: &[Value],
        raw: &[Value],
        ptr: &str,
    ) -> Result<Vec<Value>, CompileError> {
        let fail = || CompileError::unsupported(ptr, "oneOf", "not exclusive");
        let as_map = |v: Value| match v {
            Value::Object(m) => Ok(m),
            Value::Bool(true) => Ok(Map::new()),
            _ => Err(fail()),
        };
        let resolved: Vec<Value> = merged.iter().map(|b| self.resolved(b, ptr)).collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(merged.len());
        let too_many = |n: usize| {
            CompileError::unsupported(
                ptr,
                "oneOf",
                format!(
                    "the exclusive branches make {n} alternatives or more, past {MAX_EXCLUSIVE_ALTERNATIVES} \
                     (a matcher parses them side by side)"
                ),
            )
        };
        // Alternatives of the branches made so far.
        let mut total = 0usize;
        'branch: for i in 0..resolved.len() {
            if resolved[i] == Value::Bool(false) {
                continue;
            }
            let mut acc = as_map(resolved[i].clone())?;
            for j in 0..resolved.len() {
                if j == i || resolved[j] == Value::Bool(false) {
                    continue;
                }
                let disjoint = { merge::disjoint(&resolved[i], &resolved[j], &self.facts(ptr)) };
                if disjoint {
                    continue;
                }
                let other = match self.resolved(&raw[j], ptr)? {
                    Value::Bool(true) => continue 'branch,
                    Value::Bool(false) => continue,
                    other => as_map(other)?,
                };
                // A branch of listed values keeps those outside branch `j`,
                // decided value by value where that is exact.
                if acc.contains_key("enum") || acc.contains_key("const") {
                    // Its other keywords stay in `acc`: the values only.
                    let mut probe: Map<String, Value> = acc
                        .iter()
                        .filter(|(k, _)| *k == "enum" || *k == "const")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    probe.insert("not".into(), Value::Object(other.clone()));
                    if let Some(kept) = self.decided_literals(&probe) {
                        if kept.is_empty() {
                            continue 'branch;
                        }
                        acc.remove("const");
                        acc.insert("enum".into(), Value::Array(kept));
                        continue;
                    }
                }
                let neg = self.negate(&other, Some(&acc), ptr)?.ok_or_else(fail)?;
                match self.within(neg, &acc, ptr) {
                    // Branch `j` holds wherever `i` does: `i` never holds alone.
                    Value::Bool(false) => continue 'branch,
                    neg => {
                        let neg = as_map(neg)?;
                        acc = self.merge_or_err(&acc, &neg, ptr, "oneOf")?;
                    }
                }
                // Merging only multiplies alternatives: stop early.
                let n = total.saturating_add(alternatives_of(&acc));
                if n > MAX_EXCLUSIVE_ALTERNATIVES {
                    return Err(too_many(n));
                }
            }
            let acc = Value::Object(acc);
            total = total.saturating_add(alternatives(&acc));
            if total > MAX_EXCLUSIVE_ALTERNATIVES {
                return Err(too_many(total));
            }
            self.probe_nots(&acc, ptr)?;
            out.push(acc);
        }
        if out.is_empty() {
            return Err(fail());
        }
        Ok(out)
    }

    /// Negations left inside a rewritten schema (under `properties`,
    /// `items`, …) are compiled later; try each now, so that a rewrite is
    /// only taken when all of it compiles. Bounded: at most
    /// [`MAX_PROBED_NEGATIONS`] negations within one another (a `not`
    /// whose negation holds a `not`, through `$ref`s too), and
    /// [`MAX_PROBED_NODES`] schema nodes in all.
    fn probe_nots(&mut self, v: &Value, ptr: &str) -> Result<(), CompileError> {
        let mut nodes = MAX_PROBED_NODES;
        self.probe_nots_in(v, ptr, 0, &mut nodes)
    }

    fn probe_nots_in(&mut self, v: &Value, ptr: &str, nots: usize, nodes: &mut usize) -> Result<(), CompileError> {
        if nots > MAX_PROBED_NEGATIONS || *nodes == 0 {
            return Err(CompileError::unsupported(ptr, "oneOf", "rewrite nests too deeply"));
        }
        *nodes -= 1;
        match v {
            Value::Object(m) => {
                if let Some(n) = m.get("not") {
                    match self.resolved(n, ptr)? {
                        Value::Object(sub) => {
                            let neg = self.negate(&sub, None, ptr)?;
                            if let Some(neg) = neg {
                                self.probe_nots_in(&neg, ptr, nots + 1, nodes)?;
                            }
                        }
                        Value::Bool(_) => {}
                        _ => return Err(CompileError::unsupported(ptr, "not", "not a schema")),
                    }
                }
                for (k, x) in m {
                    if k != "not" && k != "enum" && k != "const" {
                        self.probe_nots_in(x, ptr, nots, nodes)?;
                    }
                }
                Ok(())
            }
            Value::Array(a) => a.iter().try_for_each(|x| self.probe_nots_in(x, ptr, nots, nodes)),
            _ => Ok(()),
        }
    }

    /// A fragment matching one JSON value valid under `schema`.
    fn value(&mut self, nfa: &mut Nfa, schema: Sv<'a>, ptr: &str) -> Result<Frag, CompileError> {
        crate::budget::check().map_err(|m| CompileError::new(CompileErrorKind::LimitExceeded, ptr, m))?;
        self.depth += 1;
        if self.depth > self.cfg.get_limits().max_schema_depth {
            self.depth -= 1;
            return Err(CompileError::new(
                CompileErrorKind::LimitExceeded,
                ptr,
                "schema nests inline subschemas too deeply (Limits::max_schema_depth)",
            ));
        }
        let r = self.value_inner(nfa, schema, ptr);
        self.depth -= 1;
        r
    }

    fn value_inner(&mut self, nfa: &mut Nfa, sv: Sv<'a>, ptr: &str) -> Result<Frag, CompileError> {
        let schema: &Value = &sv;
        let map = match schema {
            Value::Bool(true) => return Ok(self.any_value(nfa)),
            Value::Bool(false) => return Ok(nfa.never()),
            Value::Object(m) => m,
            _ => {
                return Err(CompileError::new(
                    CompileErrorKind::InvalidSchema,
                    ptr,
                    "a schema must be an object or a boolean",
                ))
            }
        };
        if let Some(lits) = self.decided_literals(map) {
            let kept = if lits.is_empty() { Value::Bool(false) } else { serde_json::json!({ "enum": lits }) };
            return self.value(nfa, Sv::built(kept), ptr);
        }
        if let Some(rewritten) = self.normalize(map, ptr)? {
            return self.value(nfa, Sv::built(rewritten), ptr);
        }
        // Classify keywords.
        let mut constraints: Vec<&str> = Vec::new();
        for k in map.keys() {
            let k = k.as_str();
            if SUPPORTED.contains(&k) {
                constraints.push(k);
            } else if k == "uniqueItems" && unique_items_hold(map) {
                // Every instance satisfies it: nothing to enforce.
            } else if k == "uniqueItems" {
                // Enforced at run time for arrays of strings (`array`).
                if let Err(why) = self.unique_plan(map, ptr)? {
                    self.unsupported(ptr, k, &why)?;
                }
            } else if UNSUPPORTED.contains(&k) {
                self.unsupported(ptr, k, "this keyword is not supported yet")?;
            } else if ANNOTATIONS.contains(&k) {
                // annotations never constrain
            }
            // Unknown keywords are ignored, as the specification requires.
        }
        // `$ref` with siblings: 2019+ semantics apply both, which needs schema
        // intersection.
        if let Some(r) = map.get("$ref") {
            let Value::String(r) = r else {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "$ref must be a string")
                    .with_keyword("$ref"));
            };
            if let Some(other) = constraints.iter().find(|k| **k != "$ref") {
                self.unsupported(
                    ptr,
                    other,
                    "constraints beside `$ref` are not supported yet (they would be dropped)",
                )?;
            }
            let (_, target) = self.resolve_ref(r, ptr)?;
            let key = format!("value:{target}");
            let m = match self.keys.get(&key) {
                Some(&m) => m,
                None => {
                    let (v, t) = self.resolve_ref(r, ptr)?;
                    self.machine(key, || Job::Value(Sv::Doc(v), t))
                }
            };
            return Ok(nfa.call(m));
        }
        if let Some(any_of) = map.get("anyOf") {
            let Value::Array(branches) = any_of else {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "anyOf must be an array")
                    .with_keyword("anyOf"));
            };
            if branches.is_empty() {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "anyOf must not be empty")
                    .with_keyword("anyOf"));
            }
            if let Some(other) = constraints.iter().find(|k| **k != "anyOf") {
                self.unsupported(
                    ptr,
                    other,
                    "constraints beside `anyOf` are not supported yet (they would be dropped)",
                )?;
            }
            if let Some(frag) = self.string_union(nfa, branches, ptr)? {
                return Ok(frag);
            }
            let mut frags = Vec::new();
            for i in 0..branches.len() {
                let b = sv.part(|v| v.get("anyOf")?.get(i)).expect("a branch");
                frags.push(self.value(nfa, b, &ptr_push(&ptr_push(ptr, "anyOf"), &i.to_string()))?);
            }
            return Ok(nfa.alt(&frags));
        }
        // Types.
        let types: Vec<Ty> = match map.get("type") {
            None => ALL_TYPES.to_vec(),
            Some(Value::String(s)) => vec![parse_type(s).ok_or_else(|| bad_type(ptr))?],
            Some(Value::Array(a)) => {
                let mut v = Vec::new();
                for t in a {
                    let t = t.as_str().and_then(parse_type).ok_or_else(|| bad_type(ptr))?;
                    if !v.contains(&t) {
                        v.push(t);
                    }
                }
                v
            }
            Some(_) => return Err(bad_type(ptr)),
        };
        // const / enum: a finite set of literals, filtered by type.
        if map.contains_key("const") || map.contains_key("enum") {
            let mut values: Vec<&Value> = Vec::new();
            if let Some(c) = map.get("const") {
                values.push(c);
            }
            if let Some(e) = map.get("enum") {
                let Value::Array(e) = e else {
                    return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "enum must be an array")
                        .with_keyword("enum"));
                };
                if map.contains_key("const") {
                    // both: the const must be among the enum values
                    values.retain(|c| e.iter().any(|x| merge::json_eq(x, c)));
                } else {
                    values.extend(e.iter());
                }
            }
            let mut lits: Vec<Vec<u8>> = Vec::new();
            // Dedup by hash: an enum may have 100,000 values.
            let mut seen: ahash::AHashSet<Vec<u8>> = Default::default();
            for v in values {
                let ok = types.iter().any(|&t| value_has_type(v, t))
                    || (types.contains(&Ty::Number) && matches!(v, Value::Number(_)));
                // Every other constraint beside the literals must hold too.
                if ok && self.literal_ok(v, map, ptr)? {
                    let s = serde_json::to_vec(&canonical_numbers(v)).expect("serializable");
                    if seen.insert(s.clone()) {
                        lits.push(s);
                    }
                }
            }
            let mut frags = Vec::with_capacity(lits.len());
            for l in &lits {
                let v: Value = serde_json::from_slice(l).expect("just serialized");
                frags.push(self.literal_frag(nfa, &v, ptr));
            }
            return Ok(if frags.is_empty() { nfa.never() } else { nfa.alt(&frags) });
        }
        let mut frags = Vec::new();
        let has_number = types.contains(&Ty::Number);
        for t in types {
            let f = match t {
                Ty::Null => nfa.lit(b"null"),
                Ty::Boolean => {
                    let a = nfa.lit(b"true");
                    let b = nfa.lit(b"false");
                    nfa.alt(&[a, b])
                }
                Ty::Integer if has_number => continue,
                Ty::Integer => self.number_frag(nfa, map, ptr, true)?,
                Ty::Number => self.number_frag(nfa, map, ptr, false)?,
                Ty::String => self.string_frag(nfa, map, ptr)?,
                Ty::Object | Ty::Array => {
                    let (kind, name, job): (_, _, fn(Sv<'a>, String) -> Job<'a>) = if t == Ty::Object {
                        (Kind::Object, "object", Job::Object)
                    } else {
                        (Kind::Array, "array", Job::Array)
                    };
                    let m = self.vmachine(kind, vec![], &sv, || format!("{name}:{ptr}"), |v| job(v, ptr.to_string()));
                    nfa.call(m)
                }
            };
            frags.push(f);
        }
        Ok(if frags.is_empty() { nfa.never() } else { nfa.alt(&frags) })
    }

    /// One `enum`/`const` literal in the output format: scalars exactly as
    /// `serde_json` writes them; arrays with whitespace around their
    /// punctuation per policy; non-empty objects through the object machine
    /// (every key required with a `const` value, nothing else), so that their
    /// members may come in any order and with whitespace like any object.
    fn literal_frag(&mut self, nfa: &mut Nfa, v: &Value, ptr: &str) -> Frag {
        match v {
            Value::Object(o) if !o.is_empty() => {
                let props: Map<String, Value> =
                    o.iter().map(|(k, x)| (k.clone(), serde_json::json!({ "const": x }))).collect();
                let schema = serde_json::json!({
                    "type": "object",
                    "properties": props,
                    "required": o.keys().collect::<Vec<_>>(),
                    "additionalProperties": false,
                });
                let m = self.vmachine(
                    Kind::Object,
                    vec![],
                    &Sv::built(schema),
                    || format!("object:{ptr}"),
                    |v| Job::Object(v, ptr.to_string()),
                );
                nfa.call(m)
            }
            Value::Object(_) => {
                let open = self.punct(nfa, b"{", false, true);
                let close = nfa.lit(b"}");
                nfa.seq(&[open, close])
            }
            Value::Array(a) => {
                let mut parts = vec![self.punct(nfa, b"[", false, true)];
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        parts.push(self.punct(nfa, b",", true, true));
                    }
                    parts.push(self.literal_frag(nfa, x, ptr));
                }
                parts.push(self.punct(nfa, b"]", true, false));
                nfa.seq(&parts)
            }
            Value::Number(_) => {
                // Any spelling of the same value with trailing fraction
                // zeros (`1`, `1.0`, `1.50`): writers differ on floats.
                let text = serde_json::to_vec(v).expect("serializable");
                if text.iter().any(|&b| b == b'e' || b == b'E') {
                    return nfa.lit(&text);
                }
                // Draft 4 reads `2.0` as no integer: an integral value is
                // written as one.
                if self.draft4 && !text.contains(&b'.') {
                    return nfa.lit(&text);
                }
                let head = nfa.lit(&text);
                let zeros = {
                    let x = nfa.state();
                    let z = nfa.lit(b"0");
                    nfa.eps(x, z.start);
                    nfa.eps(z.end, x);
                    Frag { start: x, end: x }
                };
                let tail = if text.contains(&b'.') {
                    zeros
                } else {
                    let dot = nfa.lit(b".0");
                    let frac = nfa.seq(&[dot, zeros]);
                    let none = nfa.empty();
                    nfa.alt(&[frac, none])
                };
                nfa.seq(&[head, tail])
            }
            _ => nfa.lit(&serde_json::to_vec(v).expect("serializable")),
        }
    }

    /// A schema whose values come from a finite set (`enum`/`const` here or
    /// in an `allOf` member) beside other constraints: the literals that
    /// satisfy the whole schema, when [`crate::json_schema::literal`] can decide each of
    /// them exactly. `None` leaves the schema to the usual path (which
    /// handles plain `enum`/`const`/`type` itself).
    fn decided_literals(&self, map: &Map<String, Value>) -> Option<Vec<Value>> {
        if map.keys().all(|k| matches!(k.as_str(), "enum" | "const" | "type") || !is_constraint(k)) {
            return None;
        }
        if self.legacy_ref && map.contains_key("$ref") {
            return None; // siblings of `$ref` are ignored: no finite set here
        }
        let finite = |m: &Map<String, Value>| -> Option<Vec<Value>> {
            if let Some(c) = m.get("const") {
                return Some(vec![c.clone()]);
            }
            m.get("enum").and_then(|e| e.as_array()).cloned()
        };
        let mut cands = finite(map);
        if cands.is_none() {
            for m in map.get("allOf").and_then(|a| a.as_array()).into_iter().flatten() {
                if let Some(c) = m.as_object().and_then(finite) {
                    cands = Some(c);
                    break;
                }
            }
        }
        let cands = cands?;
        if cands.len() > 256 {
            return None;
        }
        let eval = crate::json_schema::literal::Eval {
            root: self.root,
            legacy_ref: self.legacy_ref,
            max_terminal_bytes: self.cfg.get_limits().max_terminal_bytes,
        };
        let schema = Value::Object(map.clone());
        let mut kept: Vec<Value> = Vec::new();
        for v in cands {
            if eval.satisfies(&v, &schema, 0)? && !kept.iter().any(|k| crate::json_schema::literal::json_eq(k, &v)) {
                kept.push(v);
            }
        }
        Some(kept)
    }

    /// Whether literal `v` (from `enum`/`const`) meets the other constraints
    /// of `map`. A keyword that applies to `v`'s type and cannot be checked
    /// here is refused by name (lenient: dropped, so the literal stays).
    fn literal_ok(&mut self, v: &Value, map: &Map<String, Value>, ptr: &str) -> Result<bool, CompileError> {
        let dec = |x: &Value| match x {
            Value::Number(n) => numbers::parse_dec(&n.to_string()),
            _ => None,
        };
        for (k, b) in map {
            let k = k.as_str();
            if !is_constraint(k) || matches!(k, "type" | "enum" | "const") {
                continue;
            }
            let ok = match (k, v) {
                ("pattern", Value::String(s)) => {
                    match self.pattern_dfa(b.as_str().unwrap_or(""), ptr, "pattern", Under)? {
                        Some(d) => lexer::dfa_matches(&d, s.as_bytes()),
                        None => true,
                    }
                }
                ("x-grammask-patterns" | "x-grammask-not-patterns", Value::String(s)) => {
                    let neg = k == "x-grammask-not-patterns";
                    let mut all = true;
                    for p in b.as_array().into_iter().flatten().filter_map(|p| p.as_str()) {
                        let (kw, reading) = if neg { ("not", Over) } else { ("pattern", Under) };
                        if let Some(d) = self.pattern_dfa(p, ptr, kw, reading)? {
                            all &= lexer::dfa_matches(&d, s.as_bytes()) != neg;
                        }
                    }
                    all
                }
                ("x-grammask-not-strings", Value::String(_)) => !b.as_array().is_some_and(|a| a.contains(v)),
                ("x-grammask-not-formats", Value::String(s)) => {
                    let mut outside = true;
                    for f in b.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        let d = self.superset_dfa(f, ptr)?;
                        outside &= !lexer::dfa_matches(&d, s.as_bytes());
                    }
                    outside
                }
                ("x-grammask-fraction", Value::Number(_)) => dec(v).is_some_and(|d| !d.frac.is_empty()),
                ("x-grammask-not-multiple-of", Value::Number(_)) => match dec(v) {
                    Some(d) if !d.frac.is_empty() => true,
                    Some(d) => b
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_u64)
                        .all(|k| k == 0 || d.int.iter().fold(0u64, |r, &x| (r * 10 + u64::from(x)) % k) != 0),
                    None => false,
                },
                ("minLength", Value::String(s)) => b.as_u64().is_none_or(|n| s.chars().count() as u64 >= n),
                ("maxLength", Value::String(s)) => b.as_u64().is_none_or(|n| s.chars().count() as u64 <= n),
                ("format", Value::String(s)) => match strings::format_regex(b.as_str().unwrap_or("")) {
                    Some(re) => {
                        let d = self.dfa(&lexer::parse(re).expect("valid"), ptr, "format")?;
                        lexer::dfa_matches(&d, s.as_bytes())
                    }
                    None => {
                        self.unbuilt_format(ptr, b.as_str().unwrap_or(""))?;
                        true
                    }
                },
                ("minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum", Value::Number(_)) => {
                    if matches!(b, Value::Bool(_)) {
                        true // draft 4 modifier, read with its bound
                    } else {
                        let (Some(x), Some(y)) = (dec(v), dec(b)) else {
                            return Err(CompileError::new(
                                CompileErrorKind::InvalidSchema,
                                ptr,
                                "bound must be a number",
                            )
                            .with_keyword(k));
                        };
                        crate::json_schema::literal::within_bound(k, &x, &y, map)
                    }
                }
                ("minItems", Value::Array(a)) => b.as_u64().is_none_or(|n| a.len() as u64 >= n),
                ("maxItems", Value::Array(a)) => b.as_u64().is_none_or(|n| a.len() as u64 <= n),
                ("minProperties", Value::Object(o)) => b.as_u64().is_none_or(|n| o.len() as u64 >= n),
                ("maxProperties", Value::Object(o)) => b.as_u64().is_none_or(|n| o.len() as u64 <= n),
                ("required", Value::Object(o)) => {
                    b.as_array().into_iter().flatten().all(|r| r.as_str().is_none_or(|r| o.contains_key(r)))
                }
                _ => {
                    // A keyword constrains values of its own type only.
                    let applies = match merge::keyword_type(k) {
                        Some("string") => v.is_string(),
                        Some("number") => v.is_number(),
                        Some("array") => v.is_array(),
                        Some("object") => v.is_object(),
                        _ => true,
                    };
                    if applies {
                        self.unsupported(ptr, k, "constraints beside `enum`/`const` are not supported yet")?;
                    }
                    true
                }
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn dfa(&self, hir: &regex_syntax::hir::Hir, ptr: &str, kw: &str) -> Result<Arc<lexer::Dfa>, CompileError> {
        lexer::compile_hir(hir, self.cfg.get_limits().max_terminal_bytes).map_err(|e| {
            CompileError::new(CompileErrorKind::LimitExceeded, ptr, format!("automaton too large: {e}"))
                .with_keyword(kw)
        })
    }

    fn table_machine(
        &mut self,
        nfa: &mut Nfa,
        key: String,
        spec: StringSpec,
        ptr: &str,
        kw: &str,
    ) -> Result<Frag, CompileError> {
        let m = self.table_machine_id(key, spec, ptr, kw, true, None)?;
        Ok(nfa.call(m))
    }

    /// The machine of a table terminal, built once per key; with `global`
    /// the key names the table's whole content, and the table is shared
    /// across schemas ([`strings::build_cached`]). `max_states` overrides
    /// `Limits::max_string_states` when given.
    fn table_machine_id(
        &mut self,
        key: String,
        spec: StringSpec,
        ptr: &str,
        kw: &str,
        global: bool,
        max_states: Option<usize>,
    ) -> Result<MachineId, CompileError> {
        let max_states = max_states.unwrap_or(self.cfg.get_limits().max_string_states);
        if let Some(&m) = self.keys.get(&key) {
            return Ok(m);
        }
        let mut limits = self.cfg.get_limits().clone();
        limits.max_string_states = max_states;
        let err = |e: String| CompileError::new(CompileErrorKind::LimitExceeded, ptr, e).with_keyword(kw);
        if !spec.raw && spec.max_len.is_some_and(|m| m >= limits.counted_strings_from) {
            let table = strings::build_counted(&spec, limits.max_string_states).map_err(err)?;
            return Ok(self.machine(key, || Job::Counted(table)));
        }
        let table = if global {
            strings::build_cached(&key, &spec, limits.max_string_states)
        } else {
            strings::build(&spec, limits.max_string_states).map(std::sync::Arc::new)
        }
        .map_err(err)?;
        Ok(self.machine(key, || Job::Table(table)))
    }

    fn count_kw(&self, map: &Map<String, Value>, kw: &str, ptr: &str) -> Result<Option<u64>, CompileError> {
        match map.get(kw) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f.min(u64::MAX as f64) as u64))
                .map(Some)
                .ok_or_else(|| {
                    CompileError::new(
                        CompileErrorKind::InvalidSchema,
                        ptr,
                        format!("{kw} must be a non-negative integer"),
                    )
                    .with_keyword(kw)
                }),
        }
    }

    /// A string value with `minLength`, `maxLength`, `pattern`, `format`.
    fn string_frag(&mut self, nfa: &mut Nfa, map: &Map<String, Value>, ptr: &str) -> Result<Frag, CompileError> {
        let (spec, key, kw) = self.string_spec(map, ptr)?;
        if spec.must.is_empty() && spec.must_not.is_empty() && spec.min_len == 0 && spec.max_len.is_none() {
            return Ok(self.string_terminal(nfa));
        }
        if let Some(m) = spec.max_len {
            if m < spec.min_len {
                return Ok(nfa.never());
            }
        }
        self.table_machine(nfa, key, spec, ptr, kw)
    }

    /// An `anyOf` whose branches (after rewriting, nested `anyOf`s
    /// flattened) are all strings with the same length bounds, at least
    /// [`MIN_UNION_LEAVES`] of them, as one
    /// string automaton that accepts where some branch does. Branch by
    /// branch, a matcher would follow each one's automaton side by side,
    /// and each new state of each costs a trie walk in a mask. `None` when
    /// the branches are not of that form (then they compile one by one, and
    /// report what they report).
    fn string_union(&mut self, nfa: &mut Nfa, branches: &[Value], ptr: &str) -> Result<Option<Frag>, CompileError> {
        if branches.len() < 2 {
            return Ok(None);
        }
        let saved = self.probing;
        self.probing = true;
        let mut leaves = Vec::new();
        let flat = self.string_leaves(branches, ptr, 0, &mut leaves);
        self.probing = saved;
        // A few branches side by side cost a few trie walks: not worth a
        // product that may fail.
        if !matches!(flat, Ok(true)) || leaves.len() < MIN_UNION_LEAVES {
            return Ok(None);
        }
        let mut spec = StringSpec::default();
        let mut key = String::from("union");
        let mut bounds = None;
        for leaf in &leaves {
            let saved = self.probing;
            self.probing = true;
            let one = self.string_spec(leaf, ptr);
            self.probing = saved;
            let Ok((s, k, _)) = one else { return Ok(None) };
            if s.raw || s.modulus.is_some() || !s.alternatives.is_empty() {
                return Ok(None);
            }
            match bounds {
                None => bounds = Some((s.min_len, s.max_len)),
                Some(b) if b == (s.min_len, s.max_len) => {}
                Some(_) => return Ok(None),
            }
            let pos = (spec.must.len()..spec.must.len() + s.must.len()).collect();
            let neg = (spec.must_not.len()..spec.must_not.len() + s.must_not.len()).collect();
            spec.must.extend(s.must);
            spec.must_not.extend(s.must_not);
            spec.alternatives.push((pos, neg));
            key.push('|');
            key.push_str(&k);
        }
        let (min, max) = bounds.expect("two leaves");
        if max.is_some_and(|m| m < min) {
            return Ok(Some(nfa.never()));
        }
        spec.min_len = min;
        spec.max_len = max;
        // The union's product may be larger than its branches' together:
        // past a quarter of the limit, the branches compile one by one.
        let cap = self.cfg.get_limits().max_string_states / 2;
        match self.table_machine_id(key, spec, ptr, "anyOf", true, Some(cap)) {
            Ok(m) => Ok(Some(nfa.call(m))),
            Err(e) if *e.kind() == CompileErrorKind::LimitExceeded => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Collects into `leaves` the string schemas an `anyOf`'s branches come
    /// to: `Ok(false)` as soon as one is something else.
    fn string_leaves(
        &mut self,
        branches: &[Value],
        ptr: &str,
        depth: usize,
        leaves: &mut Vec<Map<String, Value>>,
    ) -> Result<bool, CompileError> {
        const STRING_KEYWORDS: [&str; 9] = [
            "type",
            "pattern",
            "minLength",
            "maxLength",
            "format",
            "x-grammask-patterns",
            "x-grammask-not-patterns",
            "x-grammask-not-strings",
            "x-grammask-not-formats",
        ];
        if depth > 8 {
            return Ok(false);
        }
        // Cheap first: a branch that names another type, or object or
        // array keywords, is no string (spares rewriting big branches).
        let surely_not = |v: &Value| match v {
            Value::Object(m) => {
                m.get("type").is_some_and(|t| t.as_str() != Some("string"))
                    || ["properties", "required", "items", "prefixItems", "additionalProperties"]
                        .iter()
                        .any(|k| m.contains_key(*k))
            }
            _ => false,
        };
        if branches.iter().any(surely_not) {
            return Ok(false);
        }
        for b in branches {
            let mut cur = self.resolved(b, ptr)?;
            if surely_not(&cur) {
                return Ok(false);
            }
            for _ in 0..16 {
                let Value::Object(m) = &cur else { break };
                if self.decided_literals(m).is_some() {
                    return Ok(false);
                }
                match self.normalize(m, ptr)? {
                    Some(next) => cur = self.resolved(&next, ptr)?,
                    None => break,
                }
            }
            match cur {
                Value::Bool(false) => {}
                Value::Object(m) => {
                    let constraints: Vec<&String> = m.keys().filter(|k| is_constraint(k)).collect();
                    if constraints.len() == 1 && constraints[0] == "anyOf" {
                        let Some(Value::Array(xs)) = m.get("anyOf") else { return Ok(false) };
                        if !self.string_leaves(xs, ptr, depth + 1, leaves)? {
                            return Ok(false);
                        }
                        continue;
                    }
                    if m.get("type") != Some(&Value::String("string".into()))
                        || !constraints.iter().all(|k| STRING_KEYWORDS.contains(&k.as_str()))
                    {
                        return Ok(false);
                    }
                    leaves.push(m);
                    if leaves.len() > MAX_UNION_LEAVES {
                        return Ok(false);
                    }
                }
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The constraints of a string schema as a [`StringSpec`], with the
    /// key naming its content and the keyword to blame for its size.
    fn string_spec(
        &mut self,
        map: &Map<String, Value>,
        ptr: &str,
    ) -> Result<(StringSpec, String, &'static str), CompileError> {
        let min = self.count_kw(map, "minLength", ptr)?.unwrap_or(0);
        let max = self.count_kw(map, "maxLength", ptr)?;
        let mut spec = StringSpec { min_len: min, max_len: max, ..Default::default() };
        let mut key = format!("cstring:{min}:{max:?}");
        let mut kw = if max.is_some() { "maxLength" } else { "minLength" };
        if let Some(p) = map.get("pattern") {
            let Value::String(p) = p else {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "pattern must be a string")
                    .with_keyword("pattern"));
            };
            if let Some((every, lo, hi)) = strings::counted_class(p, Under) {
                // `^C{m,n}$`: the class for every character, the count as
                // length bounds (exactly the same strings).
                spec.must.push(self.dfa(&every, ptr, "pattern")?.into());
                spec.min_len = spec.min_len.max(lo);
                spec.max_len = match (spec.max_len, hi) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                key.push_str(&format!(":p{p:?}"));
                kw = "pattern";
            } else {
                if let Some((must, must_not)) = self.pattern_dfas(p, ptr, "pattern")? {
                    spec.must.extend(must.into_iter().map(Lang::from));
                    spec.must_not.extend(must_not.into_iter().map(Lang::from));
                    key.push_str(&format!(":p{p:?}"));
                    kw = "pattern";
                }
            }
        }
        for (name, neg) in [("x-grammask-patterns", false), ("x-grammask-not-patterns", true)] {
            let Some(v) = map.get(name) else { continue };
            let ps: Vec<&str> = v.as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect();
            for p in ps {
                let shown = if neg { "not" } else { "pattern" };
                // Negated (`Over`): one search language, no lookahead.
                let langs = if neg {
                    self.pattern_dfa(p, ptr, shown, Over)?.map(|d| (Vec::new(), vec![d]))
                } else {
                    self.pattern_dfas(p, ptr, shown)?
                };
                if let Some((must, must_not)) = langs {
                    spec.must.extend(must.into_iter().map(Lang::from));
                    spec.must_not.extend(must_not.into_iter().map(Lang::from));
                    key.push_str(&format!(":{}{p:?}", if neg { "n" } else { "p" }));
                    kw = shown;
                }
            }
        }
        if let Some(v) = map.get("x-grammask-not-strings") {
            let lits: Vec<&str> = v.as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect();
            if !lits.is_empty() {
                let hir = regex_syntax::hir::Hir::alternation(
                    lits.iter().map(|n| regex_syntax::hir::Hir::literal(n.as_bytes().to_vec())).collect(),
                );
                spec.must_not.push(self.dfa(&hir, ptr, "not")?.into());
                key.push_str(&format!(":n{lits:?}"));
                kw = "not";
            }
        }
        for f in map.get("x-grammask-not-formats").and_then(Value::as_array).into_iter().flatten() {
            let name = f.as_str().unwrap_or("");
            spec.must_not.push(self.superset_dfa(name, ptr)?.into());
            key.push_str(&format!(":nf{name}"));
            kw = "not";
        }
        if let Some(f) = map.get("format") {
            let name = f.as_str().unwrap_or("");
            match strings::format_regex(name) {
                Some(re) => {
                    let hir = lexer::parse(re).expect("format regexes are valid");
                    spec.must.push(self.dfa(&hir, ptr, "format")?.into());
                    key.push_str(&format!(":f{name}"));
                    kw = "format";
                }
                None => self.unbuilt_format(ptr, name)?,
            }
        }
        Ok((spec, key, kw))
    }

    /// A number (or integer) value with bounds.
    fn number_frag(
        &mut self,
        nfa: &mut Nfa,
        map: &Map<String, Value>,
        ptr: &str,
        integer: bool,
    ) -> Result<Frag, CompileError> {
        use numbers::Cmp;
        let num = |kw: &str| -> Result<Option<numbers::Dec>, CompileError> {
            match map.get(kw) {
                None | Some(Value::Bool(_)) => Ok(None),
                Some(Value::Number(n)) => numbers::parse_dec(&n.to_string()).map(Some).ok_or_else(|| {
                    CompileError::new(CompileErrorKind::LimitExceeded, ptr, format!("{kw} {n} is out of range"))
                        .with_keyword(kw)
                }),
                Some(_) => {
                    Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, format!("{kw} must be a number"))
                        .with_keyword(kw))
                }
            }
        };
        let mut bounds: Vec<(numbers::Dec, Cmp, &str)> = Vec::new();
        let draft4_excl = |kw: &str| map.get(kw) == Some(&Value::Bool(true));
        if let Some(d) = num("minimum")? {
            bounds.push((d, if draft4_excl("exclusiveMinimum") { Cmp::Gt } else { Cmp::Ge }, "minimum"));
        }
        if let Some(d) = num("maximum")? {
            bounds.push((d, if draft4_excl("exclusiveMaximum") { Cmp::Lt } else { Cmp::Le }, "maximum"));
        }
        if let Some(d) = num("exclusiveMinimum")? {
            bounds.push((d, Cmp::Gt, "exclusiveMinimum"));
        }
        if let Some(d) = num("exclusiveMaximum")? {
            bounds.push((d, Cmp::Lt, "exclusiveMaximum"));
        }
        // `multipleOf`: a remainder automaton (see `StringSpec::modulus`)
        // over the number scaled by `10^frac_digits`. A fractional divisor
        // is taken where validators, which divide f64 values, agree with
        // exact decimal arithmetic: a divisor an f64 holds exactly (a
        // binary fraction: 0.5, 0.25, 0.125, …), over numbers small
        // enough that every multiple and quotient is exact. Others (0.1,
        // 0.01: `0.07 / 0.01` is 7.000000000000001 in f64) are refused.
        let (modulus, frac_digits) = match map.get("multipleOf") {
            None => (None, 0),
            Some(v) => {
                let Some(f) = v.as_f64().filter(|f| *f > 0.0) else {
                    return Err(CompileError::new(
                        CompileErrorKind::InvalidSchema,
                        ptr,
                        "multipleOf must be a number greater than 0",
                    )
                    .with_keyword("multipleOf"));
                };
                if f.fract() == 0.0 && f <= 1e6 {
                    (Some(f as u64).filter(|&k| !(integer && k == 1)), 0)
                } else if let Some((scaled, k)) = numbers::binary_fraction(v) {
                    (Some(scaled), k)
                } else {
                    self.unsupported(
                        ptr,
                        "multipleOf",
                        "only whole divisors up to 1,000,000 and binary fractions (0.5, 0.25, 0.125, …) are \
                         supported (validators divide f64 values, where 0.07 is no multiple of 0.01)",
                    )?;
                    (None, 0)
                }
            }
        };
        let fraction = map.get("x-grammask-fraction") == Some(&Value::Bool(true));
        if fraction && (integer || (modulus.is_some() && frac_digits == 0)) {
            // Integers only (a whole divisor divides integers only).
            return Ok(nfa.never());
        }
        // Negated whole divisors: integral numbers none of them divides.
        let mut not_divisors: Vec<u64> = Vec::new();
        for d in map.get("x-grammask-not-multiple-of").and_then(Value::as_array).into_iter().flatten() {
            match d.as_f64() {
                Some(f) if f >= 1.0 && f.fract() == 0.0 && f <= 1e6 => not_divisors.push(f as u64),
                _ => {
                    return Err(
                        CompileError::unsupported(ptr, "not", "`not` of a fractional `multipleOf`").with_keyword("not")
                    )
                }
            }
        }
        not_divisors.sort_unstable();
        not_divisors.dedup();
        if frac_digits > 0 && !not_divisors.is_empty() {
            self.unsupported(ptr, "not", "`not` of `multipleOf` beside a fractional `multipleOf`")?;
            return Ok(nfa.never());
        }
        if not_divisors.contains(&1) || modulus.is_some_and(|m| not_divisors.iter().any(|d| m % d == 0)) {
            // Every integer (every multiple of the divisor) is divided.
            return Ok(nfa.never());
        }
        let (modulus, divisors) = if not_divisors.is_empty() {
            (modulus, Vec::new())
        } else {
            let mut l = modulus.unwrap_or(1);
            for &d in &not_divisors {
                l = l / merge::gcd(l, d) * d;
                if l > 1_000_000 {
                    self.unsupported(
                        ptr,
                        "not",
                        "`multipleOf` and negated ones need a remainder past 1,000,000 (their least common multiple)",
                    )?;
                    return Ok(nfa.never());
                }
            }
            let mut divs: Vec<(u64, bool)> = modulus.into_iter().map(|m| (m, true)).collect();
            divs.extend(not_divisors.iter().map(|&d| (d, false)));
            (Some(l), divs)
        };
        if bounds.is_empty() && modulus.is_none() && !fraction {
            return Ok(if integer {
                self.terminal(nfa, "integer", || lexer::parse(lexer::number_regex(true)).expect("valid"))
            } else {
                self.terminal(nfa, "number", || lexer::parse(lexer::number_regex(false)).expect("valid"))
            });
        }
        // Integer digits: at most 200 (every number a finite f64); under
        // `multipleOf` at most 15 (below 2^53, where every validator's
        // arithmetic, often on f64, is exact); with a bound on each side, no
        // more than the larger bound has (|x| ≤ max(|lower|, |upper|)), which
        // keeps `minimum: 0, maximum: 32767` at 5 digits instead of
        // automata with a counter to 200.
        let lower = bounds.iter().find(|b| matches!(b.1, Cmp::Ge | Cmp::Gt)).map(|b| b.0.int.len());
        let upper = bounds.iter().find(|b| matches!(b.1, Cmp::Le | Cmp::Lt)).map(|b| b.0.int.len());
        let mut digits = match modulus {
            // A binary fraction with `k` decimal digits: at most 15 - k
            // integer digits, so that every multiple has at most 15
            // significant digits (its f64's shortest decimal, which the
            // `jsonschema` crate divides, is the text itself) and stays
            // below 2^53 / 2^k (exact in f64, as its quotient, for the
            // validators that divide floats).
            Some(_) if frac_digits > 0 => 15 - frac_digits as usize,
            Some(_) => 15,
            None => 200,
        }
        .max(1);
        if let (Some(l), Some(u)) = (lower, upper) {
            digits = digits.min(l.max(u).max(1));
        }
        let syntax = match (integer, modulus.is_some()) {
            // No `-0` for integers: the `jsonschema` crate reads it as the
            // float -0.0 and calls it no integer (see the output format).
            (true, _) => format!(r"(?:0|-?[1-9][0-9]{{0,{}}})", digits - 1),
            // A fraction with a digit other than zero, no exponent.
            (false, false) if fraction => format!(r"-?(?:0|[1-9][0-9]{{0,{}}})\.[0-9]*[1-9][0-9]*", digits - 1),
            (false, false) => format!(r"-?(?:0|[1-9][0-9]{{0,{}}})(?:\.[0-9]+)?", digits - 1),
            // The remainder automaton reads the fraction digits.
            (false, true) => format!(r"-?(?:0|[1-9][0-9]{{0,{}}})(?:\.[0-9]+)?", digits - 1),
        };
        let mut spec = StringSpec { raw: true, modulus, frac_digits, divisors, ..Default::default() };
        spec.must.push(self.dfa(&lexer::parse(&syntax).expect("valid"), ptr, "minimum")?.into());
        if fraction {
            // Validators read numbers as f64, where 1e15 + 0.5 rounds to an
            // integer: with an integer part, at most 15 digits in all
            // (below 2^53, and a fraction the rounding keeps); below 1, at
            // most 200 fraction digits (no underflow to 0).
            let exact = r"-?(?:0\.[0-9]{1,200}|[1-9][0-9.]{2,15})";
            spec.must.push(self.dfa(&lexer::parse(exact).expect("valid"), ptr, "not")?.into());
        }
        let mut key = format!("num:{integer}:{modulus:?}/{frac_digits}:{fraction}:{:?}", spec.divisors);
        for (d, cmp, kw) in &bounds {
            let hir = numbers::cmp_regex(d, *cmp, integer, digits);
            spec.must.push(self.dfa(&hir, ptr, kw)?.into());
            key.push_str(&format!(":{cmp:?}{d:?}"));
        }
        let kw = bounds.first().map_or("multipleOf", |b| b.2);
        self.table_machine(nfa, key, spec, ptr, kw)
    }

    /// Fails when a machine's NFA grows past the budget (a guard against
    /// schemas whose counts multiply: positions × members × values).
    fn check_nfa(&self, nfa: &Nfa, ptr: &str, kw: &str) -> Result<(), CompileError> {
        let budget = self.cfg.get_limits().max_states.saturating_mul(4);
        if nfa.states.len() > budget {
            return Err(CompileError::new(
                CompileErrorKind::LimitExceeded,
                ptr,
                format!("grammar for this schema exceeds {budget} automaton states (Limits::max_states)"),
            )
            .with_keyword(kw));
        }
        Ok(())
    }

    /// The regions of `patternProperties` keys worth a key language: each
    /// set `r` (a bit per pattern) of patterns a key may match together,
    /// the others not. Two patterns whose keys never meet (`^name:` and
    /// `^title_`: their intersection, read both `Under`, is empty) share
    /// no region, so pairwise disjoint patterns make `n + 1` regions, not
    /// `2^n`. More than [`MAX_KEY_REGIONS`] is refused by name.
    fn pattern_regions<T>(
        &mut self,
        patterns: &[(Arc<lexer::Dfa>, T, String, String)],
        ptr: &str,
    ) -> Result<Vec<usize>, CompileError> {
        let n = patterns.len();
        // A small product decides most pairs; past it they count as meeting.
        let max_states = self.cfg.get_limits().max_string_states.min(4096);
        // `meets[i]`: the patterns whose keys may also match pattern `i`.
        let mut meets = vec![0usize; n];
        for i in 0..n {
            for j in i + 1..n {
                let spec = StringSpec {
                    must: vec![patterns[i].0.clone().into(), patterns[j].0.clone().into()],
                    ..Default::default()
                };
                // Past the state limit: taken as meeting.
                if strings::build(&spec, max_states).ok().is_none_or(|t| t.accept.iter().any(|&a| a)) {
                    meets[i] |= 1 << j;
                    meets[j] |= 1 << i;
                }
            }
        }
        // Sets whose patterns meet pairwise, depth first, up to one past
        // the limit (never 2^n steps).
        let mut regions = vec![0usize];
        let mut stack = vec![(0usize, 0usize)];
        while let Some((r, from)) = stack.pop() {
            for (i, &m) in meets.iter().enumerate().skip(from) {
                if regions.len() > MAX_KEY_REGIONS {
                    break;
                }
                if r & !m == 0 {
                    regions.push(r | 1 << i);
                    stack.push((r | 1 << i, i + 1));
                }
            }
        }
        regions.sort_unstable();
        if regions.len() > MAX_KEY_REGIONS {
            self.unsupported(
                ptr,
                "patternProperties",
                &format!("keys may match the patterns in more than {MAX_KEY_REGIONS} combinations"),
            )?;
            return Ok(vec![0]);
        }
        Ok(regions)
    }

    /// The DFA of `format`'s superset ([`strings::format_superset`]), which
    /// a negated format must avoid. Made only for formats with a superset,
    /// but a schema may spell the internal keyword itself: an error then.
    fn superset_dfa(&mut self, format: &str, ptr: &str) -> Result<Arc<lexer::Dfa>, CompileError> {
        let re = strings::format_superset(format).ok_or_else(|| no_superset(ptr, format))?;
        self.dfa(&lexer::parse(re).expect("format supersets are valid"), ptr, "not")
    }

    /// Decoded-string DFA of a pattern's search, read as `reading` says
    /// (`Under` where matches are allowed, `Over` where non-matches are).
    fn pattern_dfa(
        &mut self,
        p: &str,
        ptr: &str,
        kw: &str,
        reading: strings::Reading,
    ) -> Result<Option<Arc<lexer::Dfa>>, CompileError> {
        match strings::ecma_search(p, reading) {
            Ok(hir) => Ok(Some(self.dfa(&hir, ptr, kw)?)),
            Err(e) => {
                self.unsupported(ptr, kw, &format!("cannot translate pattern {p:?}: {e}"))?;
                Ok(None)
            }
        }
    }

    /// A required pattern as the DFAs the value must and must not match
    /// (more than one when it opens with lookaheads, see
    /// [`strings::ecma_pattern`]); `None` when refused in lenient mode.
    #[allow(clippy::type_complexity)]
    fn pattern_dfas(
        &mut self,
        p: &str,
        ptr: &str,
        kw: &str,
    ) -> Result<Option<(Vec<Arc<lexer::Dfa>>, Vec<Arc<lexer::Dfa>>)>, CompileError> {
        match strings::ecma_pattern(p, strings::Reading::Under) {
            Ok((must, must_not)) => {
                let must = must.iter().map(|h| self.dfa(h, ptr, kw)).collect::<Result<Vec<_>, _>>()?;
                let must_not = must_not.iter().map(|h| self.dfa(h, ptr, kw)).collect::<Result<Vec<_>, _>>()?;
                Ok(Some((must, must_not)))
            }
            Err(e) => {
                self.unsupported(ptr, kw, &format!("cannot translate pattern {p:?}: {e}"))?;
                Ok(None)
            }
        }
    }

    /// `propertyNames` as string constraints on keys: pattern, lengths,
    /// format, enum/const. Returns (must DFAs, min, max, allowed literal names).
    #[allow(clippy::type_complexity)]
    fn property_names(&mut self, pn: &Value, ptr: &str) -> Result<NameSpec, CompileError> {
        let ptr = ptr_push(ptr, "propertyNames");
        let none = |names| NameSpec { must: vec![], must_not: vec![], min: 0, max: None, names };
        // A `$ref` (with its siblings, as the draft reads them) followed.
        let resolved = self.resolved(pn, &ptr)?;
        let m = match &resolved {
            Value::Bool(true) => return Ok(none(None)),
            Value::Bool(false) => return Ok(none(Some(vec![]))),
            Value::Object(m) => m,
            _ => {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, &ptr, "propertyNames must be a schema")
                    .with_keyword("propertyNames"))
            }
        };
        let mut must = Vec::new();
        let mut must_not = Vec::new();
        let mut names = None;
        for (k, v) in m {
            match k.as_str() {
                "pattern" => {
                    if let Some((yes, no)) = self.pattern_dfas(v.as_str().unwrap_or(""), &ptr, "pattern")? {
                        must.extend(yes);
                        must_not.extend(no);
                    }
                }
                "type" => {
                    let strings = match v {
                        Value::String(t) => t == "string",
                        Value::Array(a) => a.iter().any(|t| t == "string"),
                        _ => true,
                    };
                    if !strings {
                        return Ok(none(Some(vec![])));
                    }
                }
                "not" => {
                    // Names are strings: `not` of a pattern or of a string set
                    // is a pattern the name must avoid.
                    let sub = self.resolved(v, &ptr)?;
                    let kws: Vec<&String> = sub.as_object().into_iter().flatten().map(|(k, _)| k).collect();
                    let lits: Option<Vec<&str>> = match (sub.get("enum"), sub.get("const")) {
                        (Some(Value::Array(e)), None) => e.iter().map(|x| x.as_str()).collect(),
                        (None, Some(c)) => c.as_str().map(|c| vec![c]),
                        _ => None,
                    };
                    if kws.len() == 1 && kws[0] == "pattern" {
                        if let Some(d) = self.pattern_dfa(sub["pattern"].as_str().unwrap_or(""), &ptr, "not", Over)? {
                            must_not.push(d);
                        }
                    } else if let (1, Some(lits)) = (kws.len(), lits) {
                        if !lits.is_empty() {
                            let hir = regex_syntax::hir::Hir::alternation(
                                lits.iter().map(|n| regex_syntax::hir::Hir::literal(n.as_bytes().to_vec())).collect(),
                            );
                            must_not.push(self.dfa(&hir, &ptr, "not")?);
                        }
                    } else {
                        self.unsupported(&ptr, "not", "inside propertyNames only `not` of a pattern or enum")?;
                    }
                }
                "format" => match strings::format_regex(v.as_str().unwrap_or("")) {
                    Some(re) => must.push(self.dfa(&lexer::parse(re).expect("valid"), &ptr, "format")?),
                    None => self.unbuilt_format(&ptr, v.as_str().unwrap_or(""))?,
                },
                "enum" | "const" => {
                    let vals: Vec<&Value> =
                        if k == "const" { vec![v] } else { v.as_array().into_iter().flatten().collect() };
                    names = Some(vals.iter().filter_map(|x| x.as_str().map(String::from)).collect());
                }
                "minLength" | "maxLength" => {}
                k if is_constraint(k) => self.unsupported(&ptr, k, "not supported inside propertyNames")?,
                _ => {}
            }
        }
        let min = self.count_kw(m, "minLength", &ptr)?.unwrap_or(0);
        let max = self.count_kw(m, "maxLength", &ptr)?;
        Ok(NameSpec { must, must_not, min, max, names })
    }

    fn object(&mut self, nfa: &mut Nfa, sv: Sv<'a>, ptr: &str) -> Result<Frag, CompileError> {
        let map = sv.as_object().expect("object schema");
        let empty = Map::new();
        let props = match map.get("properties") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "properties must be an object")
                    .with_keyword("properties"))
            }
        };
        let mut required: Vec<&str> = Vec::new();
        // A set beside the list: objects with hundreds of required names
        // would otherwise compare every name with every other.
        let mut required_set: ahash::AHashSet<&str> = Default::default();
        match map.get("required") {
            None => {}
            Some(Value::Array(a)) => {
                for r in a {
                    let r = r.as_str().ok_or_else(|| {
                        CompileError::new(CompileErrorKind::InvalidSchema, ptr, "required must list strings")
                            .with_keyword("required")
                    })?;
                    if required_set.insert(r) {
                        required.push(r);
                    }
                }
            }
            Some(_) => {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "required must be an array")
                    .with_keyword("required"))
            }
        }
        let additional: Sv<'a> = sv.part(|v| v.get("additionalProperties")).unwrap_or(Sv::Doc(&TRUE));
        let add_ptr = ptr_push(ptr, "additionalProperties");
        let min_props = self.count_kw(map, "minProperties", ptr)?.unwrap_or(0);
        let max_props = self.count_kw(map, "maxProperties", ptr)?;
        // Pattern properties: (dfa, schema, pointer, source). Where
        // validators read a pattern differently (`\s`, `.`), `dfa` holds the
        // keys every reading matches and `over` those some reading matches;
        // a key between the two is emitted by no region below, so each key
        // that is emitted gets the same schemas under every reading.
        let mut patterns: Vec<(Arc<lexer::Dfa>, Sv<'a>, String, String)> = Vec::new();
        let mut over: Vec<Arc<lexer::Dfa>> = Vec::new();
        if let Some(pp) = map.get("patternProperties") {
            let Value::Object(pp) = pp else {
                return Err(CompileError::new(
                    CompileErrorKind::InvalidSchema,
                    ptr,
                    "patternProperties must be an object",
                )
                .with_keyword("patternProperties"));
            };
            if pp.len() > MAX_KEY_PATTERNS {
                self.unsupported(ptr, "patternProperties", &format!("more than {MAX_KEY_PATTERNS} patterns"))?;
            } else {
                for p in pp.keys() {
                    // Where both readings agree the two DFAs are one
                    // (built once: DFAs are cached by content).
                    let Some(d) = self.pattern_dfa(p, ptr, "patternProperties", Under)? else { continue };
                    let Some(o) = self.pattern_dfa(p, ptr, "patternProperties", Over)? else { continue };
                    let s = sv.part(|v| v.get("patternProperties")?.get(p.as_str())).expect("a pattern's schema");
                    patterns.push((d, s, ptr_push(&ptr_push(ptr, "patternProperties"), p), p.clone()));
                    over.push(o);
                }
            }
        }
        let NameSpec { must: name_must, must_not: name_must_not, min: name_min, max: name_max, names: name_enum } =
            match map.get("propertyNames") {
                Some(pn) => self.property_names(pn, ptr)?,
                None => NameSpec { must: vec![], must_not: vec![], min: 0, max: None, names: None },
            };
        // Whether a literal key passes propertyNames.
        let name_ok = |n: &str| -> bool {
            let len = n.chars().count() as u64;
            name_enum.as_ref().is_none_or(|e| e.iter().any(|x| x == n))
                && len >= name_min
                && name_max.is_none_or(|m| len <= m)
                && name_must.iter().all(|d| lexer::dfa_matches(d, n.as_bytes()))
                && !name_must_not.iter().any(|d| lexer::dfa_matches(d, n.as_bytes()))
        };
        // Declared members in schema order, then required names that are not
        // declared; each value schema also meets every matching pattern's.
        let mut members: Vec<(String, Sv<'a>, String, bool)> = Vec::new();
        let fallback = |n: &str| -> Sv<'a> {
            // A pattern's schema applies when some reading matches.
            let hits: Vec<Value> = patterns
                .iter()
                .zip(&over)
                .filter(|(_, o)| lexer::dfa_matches(o, n.as_bytes()))
                .map(|(p, _)| Value::clone(&p.1))
                .collect();
            if hits.is_empty() {
                additional.clone()
            } else {
                Sv::built(serde_json::json!({ "allOf": hits }))
            }
        };
        for (k, v) in props {
            let hits: Vec<Value> = patterns
                .iter()
                .zip(&over)
                .filter(|(_, o)| lexer::dfa_matches(o, k.as_bytes()))
                .map(|(p, _)| Value::clone(&p.1))
                .collect();
            let sub = if hits.is_empty() {
                sv.part(|x| x.get("properties")?.get(k.as_str())).expect("a declared property")
            } else {
                let mut all = vec![v.clone()];
                all.extend(hits);
                Sv::built(serde_json::json!({ "allOf": all }))
            };
            let req = required_set.contains(k.as_str());
            // A name that cannot pass (`propertyNames`, or a `false`
            // schema) is no member: it cannot appear, and counted as one
            // it would vouch for a key `minProperties` cannot have.
            if !name_ok(k) || *sub == Value::Bool(false) || *v == Value::Bool(false) {
                if req {
                    return Ok(nfa.never());
                }
                continue;
            }
            members.push((k.clone(), sub, ptr_push(&ptr_push(ptr, "properties"), k), req));
        }
        for r in &required {
            if !props.contains_key(*r) {
                if !name_ok(r) {
                    return Ok(nfa.never());
                }
                members.push((r.to_string(), fallback(r), add_ptr.clone(), true));
            }
        }
        // dependentRequired (and draft-7 `dependencies` with name lists): a
        // name whose presence requires others. Every name involved becomes a
        // declared member (with the schema it would get as an additional
        // one), so that the any-order state knows which are present.
        let mut deps: Vec<(String, Vec<String>)> = Vec::new();
        let mut dep_kw = "";
        for kw in ["dependentRequired", "dependencies"] {
            let Some(v) = map.get(kw) else { continue };
            let Value::Object(dm) = v else {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, format!("{kw} must be an object"))
                    .with_keyword(kw));
            };
            dep_kw = kw;
            for (a, bs) in dm {
                match bs {
                    Value::Array(bs) => {
                        let mut names = Vec::new();
                        for b in bs {
                            let b = b.as_str().ok_or_else(|| {
                                CompileError::new(CompileErrorKind::InvalidSchema, ptr, format!("{kw} must list names"))
                                    .with_keyword(kw)
                            })?;
                            names.push(b.to_string());
                        }
                        if !names.is_empty() {
                            deps.push((a.clone(), names));
                        }
                    }
                    Value::Bool(true) => {}
                    Value::Object(o) if o.keys().all(|k| !is_constraint(k)) => {}
                    _ => self.unsupported(ptr, kw, "schema dependencies are not supported yet")?,
                }
            }
        }
        for (a, bs) in &deps {
            for n in std::iter::once(a).chain(bs) {
                // A declared property that is no member cannot appear.
                if name_ok(n) && !props.contains_key(n.as_str()) && !members.iter().any(|m| &m.0 == n) {
                    members.push((n.clone(), fallback(n), add_ptr.clone(), false));
                }
            }
        }
        // Additional members: one key language per region of the patterns
        // (keys matching exactly the patterns in R), never a declared name.
        let mut declared: Vec<&str> =
            members.iter().map(|m| m.0.as_str()).chain(props.keys().map(|k| k.as_str())).collect();
        // Members hold the declared properties again: each name once.
        let mut seen = ahash::AHashSet::with_capacity(declared.len());
        declared.retain(|n| seen.insert(*n));
        let n = patterns.len();
        let regions = self.pattern_regions(&patterns, ptr)?;
        let mut regions_src: Vec<(MemberKey, Sv<'a>, String)> = Vec::new();
        for r in regions {
            let sub: Sv<'a> = if r == 0 {
                additional.clone()
            } else {
                let all: Vec<&Sv<'a>> = (0..n).filter(|i| r >> i & 1 == 1).map(|i| &patterns[i].1).collect();
                if all.len() == 1 {
                    all[0].clone()
                } else {
                    let all: Vec<Value> = all.into_iter().map(|s| Value::clone(s)).collect();
                    Sv::built(serde_json::json!({ "allOf": all }))
                }
            };
            if *sub == Value::Bool(false) {
                continue;
            }
            let mut spec = StringSpec { min_len: name_min, max_len: name_max, ..Default::default() };
            let mut key = format!(
                "key:{}:{name_min}:{name_max:?}:{:?}",
                serde_json::to_string(&declared).expect("ser"),
                name_enum
            );
            // Table keys name content, never places: the tables are cached
            // across schemas (see `strings::build_cached`).
            for (i, ((d, _, _, p), o)) in patterns.iter().zip(&over).enumerate() {
                if r >> i & 1 == 1 {
                    spec.must.push(d.clone().into());
                    key.push_str(&format!(":+{p:?}"));
                } else {
                    spec.must_not.push(o.clone().into());
                    key.push_str(&format!(":-{p:?}"));
                }
            }
            for d in &name_must {
                spec.must.push(d.clone().into());
            }
            for d in &name_must_not {
                spec.must_not.push(d.clone().into());
            }
            if !name_must.is_empty() || !name_must_not.is_empty() {
                // Name constraints come from a schema that may hold `$ref`s:
                // a place, so this table stays out of the global cache.
                key.push_str(&format!(":names@{ptr}"));
            }
            if let Some(e) = &name_enum {
                let allowed: Vec<&str> = e.iter().map(|s| s.as_str()).filter(|s| !declared.contains(s)).collect();
                if allowed.is_empty() {
                    continue;
                }
                spec.must.push(Lang::Words(Box::new(strings::Words::new(allowed))));
            }
            if !declared.is_empty() {
                spec.must_not.push(Lang::Words(Box::new(strings::Words::new(declared.iter().copied()))));
            }
            let region_ptr = if r == 0 { add_ptr.clone() } else { ptr_push(ptr, "patternProperties") };
            let k = if spec.must.is_empty() && spec.must_not.is_empty() && name_min == 0 && name_max.is_none() {
                self.string_machine()
            } else {
                let global = name_must.is_empty() && name_must_not.is_empty();
                self.table_machine_id(key, spec, ptr, "additionalProperties", global, None)?
            };
            regions_src.push((MemberKey::Machine(k), sub, region_ptr));
        }
        // Past the any-order limit, the members that closing the object
        // depends on (required ones, those `dependentRequired` names) keep
        // a bit of the keyset code and come first; the others are free,
        // checked by the matcher (`crate::keys`), when the bits fit and no
        // count is tracked.
        let limit = self.cfg.get_limits().max_unordered_properties.min(keyset::MAX_MEMBERS);
        let dep_names: ahash::AHashSet<&str> =
            deps.iter().flat_map(|(a, bs)| std::iter::once(a).chain(bs)).map(String::as_str).collect();
        let with_bit = |m: &(String, Sv<'a>, String, bool)| m.3 || dep_names.contains(m.0.as_str());
        let n_bits = members.iter().filter(|m| with_bit(m)).count();
        let hybrid = self.cfg.get_property_order() == PropertyOrder::Any
            && members.len() > limit
            && n_bits <= limit
            && max_props.is_none()
            && min_props <= members.iter().filter(|m| m.3).count() as u64
            && self.keyset_ids + KeysetDef::ids(n_bits, true, members.len() - n_bits) <= KEYSET_ID_BUDGET;
        if hybrid {
            members.sort_by_key(|m| !with_bit(m));
        }
        let decl_src: Vec<(MemberKey, Sv<'a>, String)> = members
            .iter()
            .map(|(name, sub, sub_ptr, _)| {
                let key = serde_json::to_vec(&Value::String(name.clone())).expect("serializable");
                (MemberKey::Lit(key), sub.clone(), sub_ptr.clone())
            })
            .collect();
        let req: Vec<bool> = members.iter().map(|m| m.3).collect();
        // Counting. Additional keys are not proven distinct from each other
        // (a regular language cannot), so toward `minProperties` they count
        // at most once; toward `maxProperties` each counts (duplicates only
        // lower the real count, so this is sound).
        let nd = members.len();
        let extra_slot = u64::from(!regions_src.is_empty());
        if min_props > nd as u64 + extra_slot && regions_src.is_empty() {
            return Ok(nfa.never());
        }
        // A valid object may reach `minProperties` with two or more
        // additional members (the required ones plus two free keys) when
        // the minimum exceeds the required members by two or more: such
        // objects are outside what the grammar can emit, so it is refused
        // by name rather than left silently incomplete.
        let required_members = members.iter().filter(|m| m.3).count() as u64;
        if !regions_src.is_empty()
            && min_props >= required_members + 2
            && max_props.is_none_or(|m| m >= required_members + 2)
        {
            self.unsupported(
                ptr,
                "minProperties",
                "a valid object may need two or more distinct additional property names, which a grammar cannot track",
            )?;
        }
        if let Some(m) = max_props {
            if m > self.cfg.get_limits().max_array_positions as u64 {
                return Err(CompileError::new(CompileErrorKind::LimitExceeded, ptr, "too many member counts to track")
                    .with_keyword("maxProperties"));
            }
        }
        // Any order: up to EXPLICIT_UNORDERED members with a state per subset
        // in the object machine; past that, without `maxProperties` and
        // with no `minProperties` beyond the required members, a keyset
        // machine (the subset in the state id, see `grammar::keyset`) while
        // the grammar's virtual ids last; else schema order.
        let unordered = self.cfg.get_property_order() == PropertyOrder::Any
            && nd <= self.cfg.get_limits().max_unordered_properties.min(keyset::MAX_MEMBERS);
        let any_order = unordered && nd <= EXPLICIT_UNORDERED;
        let keyset_ids = KeysetDef::ids(nd, !regions_src.is_empty(), 0);
        let use_keyset = hybrid
            || unordered
                && !any_order
                && max_props.is_none()
                && min_props <= required_members
                && self.keyset_ids + keyset_ids <= KEYSET_ID_BUDGET;
        // Member machines: (plain, comma-prefixed); see the state loop. A
        // keyset takes its declared members' machines otherwise (below).
        let (regions, decl) = {
            let mut pair = |(key, sub, p): &(MemberKey, Sv<'a>, String)| {
                let plain = self.member_machine(key, sub, p);
                let comma = self.machine(format!(",{plain}"), || Job::Comma(plain));
                (plain, comma)
            };
            let regions: Vec<(MachineId, MachineId)> = regions_src.iter().map(&mut pair).collect();
            let decl: Vec<(MachineId, MachineId)> =
                if use_keyset { Vec::new() } else { decl_src.iter().map(&mut pair).collect() };
            (regions, decl)
        };
        // Dependencies as bit masks over declared members: (a, needed). A
        // needed name that can never appear (propertyNames) forbids `a`.
        let mut dep_masks: Vec<(u64, u64, bool)> = Vec::new();
        if !deps.is_empty() {
            if !any_order && !use_keyset {
                self.unsupported(
                    ptr,
                    dep_kw,
                    "needs an object of at most Limits::max_unordered_properties names, in any order",
                )?;
            } else {
                let bit = |n: &str| members.iter().position(|m| m.0 == n).map(|k| 1u64 << k);
                for (a, bs) in &deps {
                    let Some(ab) = bit(a) else { continue };
                    let mut need = 0u64;
                    let mut impossible = false;
                    for b in bs {
                        match bit(b) {
                            Some(bb) => need |= bb,
                            None => impossible = true,
                        }
                    }
                    dep_masks.push((ab, need, impossible));
                }
            }
        }
        if use_keyset {
            // A keyset reads each declared member's opening quote itself
            // (see `grammar::keyset`): its member machines start after it.
            let mut rest: Vec<(MachineId, Vec<u8>)> = members
                .iter()
                .map(|(name, sub, sub_ptr, _)| {
                    let key = serde_json::to_vec(&Value::String(name.clone())).expect("serializable");
                    (self.member_machine(&MemberKey::Lit(key[1..].to_vec()), sub, sub_ptr), key[1..].to_vec())
                })
                .collect();
            let free = if hybrid { rest.split_off(n_bits) } else { Vec::new() };
            let rest: Vec<MachineId> = rest.into_iter().map(|r| r.0).collect();
            let req = &req[..rest.len()];
            return self.keyset_object(nfa, ptr, rest, free, regions, req, &dep_masks);
        }
        // A state: declared members done (a bit set in any order, else the
        // index of the next member to consider), declared count (saturating
        // at the minimum), total count (tracked only under maxProperties),
        // and whether an additional member was emitted.
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        struct St {
            done: u64,
            d: u64,
            t: u64,
            x: bool,
        }
        let dcap = min_props.max(1);
        // The object machine has no epsilons, so that it maps one to one
        // onto DFA states (no subset construction): a state is one NFA state
        // (the start also has the whitespace run after `{`), the comma and
        // the whitespace before the next `,` or `}` belong to the member
        // machines, and skipping an optional member (schema order) is
        // folded into the edges.
        let open = nfa.lit(b"{");
        let end = nfa.state();
        let mut ids: ahash::AHashMap<St, u32> = Default::default();
        let start = St { done: 0, d: 0, t: 0, x: false };
        ids.insert(start, open.end);
        let mut work = vec![start];
        let kw = if max_props.is_some() { "maxProperties" } else { "properties" };
        let total_ok = |t: u64| max_props.is_none_or(|m| t < m);
        let next_t = |t: u64| if max_props.is_some() { t + 1 } else { 0 };
        while let Some(st) = work.pop() {
            let from = ids[&st];
            let first = st.d == 0 && !st.x;
            // The states this one stands for: itself, and in schema order
            // the ones reached by skipping optional members.
            let mut views = vec![st];
            if !any_order {
                let mut v = st;
                while (v.done as usize) < nd && !req[v.done as usize] {
                    v = St { done: v.done + 1, ..v };
                    views.push(v);
                }
            }
            // (plain machine, comma-prefixed machine, next state).
            let mut targets: Vec<(MachineId, MachineId, St)> = Vec::new();
            let mut close = false;
            for v in &views {
                if any_order {
                    for (k, &(mk, mc)) in decl.iter().enumerate().take(nd) {
                        if v.done >> k & 1 == 0 && total_ok(v.t) {
                            let to = St { done: v.done | 1 << k, d: (v.d + 1).min(dcap), t: next_t(v.t), x: v.x };
                            targets.push((mk, mc, to));
                        }
                    }
                } else if (v.done as usize) < nd && total_ok(v.t) {
                    let i = v.done as usize;
                    let to = St { done: v.done + 1, d: (v.d + 1).min(dcap), t: next_t(v.t), x: v.x };
                    targets.push((decl[i].0, decl[i].1, to));
                }
                let decl_done = any_order || v.done as usize == nd;
                if decl_done && total_ok(v.t) {
                    for &(m, c) in &regions {
                        if !targets.iter().any(|x| x.0 == m) {
                            targets.push((m, c, St { t: next_t(v.t), x: true, ..*v }));
                        }
                    }
                }
                let all_required =
                    if any_order { (0..nd).all(|k| !req[k] || v.done >> k & 1 == 1) } else { v.done as usize == nd };
                let deps_met = dep_masks
                    .iter()
                    .all(|&(a, need, impossible)| v.done & a == 0 || (!impossible && v.done & need == need));
                close |= all_required && deps_met && v.d + u64::from(v.x) >= min_props;
            }
            // Whitespace after `{` is the object's; after a member, the
            // member machine's (its trailing run), so that a state after
            // members is one NFA state, not one per whitespace position:
            // in any order that halves the subset states and their calls.
            let positions = if st == start { self.ws_run(nfa, from) } else { vec![from] };
            for &p in &positions {
                nfa.states[p as usize].calls.reserve(targets.len());
            }
            for (m, mc, mut to) in targets {
                // Once the declared count reaches its cap (at least one
                // member, at least `minProperties`), whether an additional
                // member was emitted no longer matters: one state, not two.
                if to.d == dcap {
                    to.x = false;
                }
                let t = match ids.get(&to) {
                    Some(&t) => t,
                    None => {
                        let t = nfa.state();
                        ids.insert(to, t);
                        work.push(to);
                        t
                    }
                };
                let callee = if first { m } else { mc };
                for &p in &positions {
                    nfa.states[p as usize].calls.push((callee, t));
                }
            }
            if close {
                for &p in &positions {
                    nfa.states[p as usize].ranges.push((b'}', b'}', end));
                }
            }
            self.check_nfa(nfa, ptr, kw)?;
        }
        Ok(Frag { start: open.start, end })
    }

    /// An object whose declared members come in any order, tracked by a
    /// keyset machine: `{`, the whitespace after it, then a call to the
    /// keyset body (members and `}`). `members`: each declared member's
    /// machine from after its key's opening quote; `deps`: (member bit, bits
    /// it needs, whether a needed name can never appear).
    #[allow(clippy::too_many_arguments)]
    fn keyset_object(
        &mut self,
        nfa: &mut Nfa,
        ptr: &str,
        members: Vec<MachineId>,
        free: Vec<(MachineId, Vec<u8>)>,
        regions: Vec<(MachineId, MachineId)>,
        req: &[bool],
        deps: &[(u64, u64, bool)],
    ) -> Result<Frag, CompileError> {
        let comma_quote = self.machine("comma-quote".to_string(), || Job::CommaQuote);
        let mut def = KeysetDef { members, free, regions, comma_quote, ..Default::default() };
        def.required = req.iter().enumerate().filter(|(_, &r)| r).fold(0u32, |a, (k, _)| a | 1 << k);
        for &(a, need, impossible) in deps {
            if impossible {
                def.never |= a as u32;
            } else {
                def.deps.push((a as u32, need as u32));
            }
        }
        // What a closed object must hold: the required members and, in
        // turn, what they need.
        let mut need = def.required;
        loop {
            let more = def.deps.iter().filter(|&&(a, _)| need & a != 0).fold(need, |n, &(_, b)| n | b);
            if more == need {
                break;
            }
            need = more;
        }
        if need & def.never != 0 {
            return Ok(nfa.never());
        }
        self.keyset_ids += def.size();
        // The shadow: the needed members in a row, then `}`. It accepts
        // something exactly when each needed member does, which is when the
        // keyset can close.
        let mut shadow = Nfa::default();
        let mut parts = Vec::new();
        for (k, &rest) in def.members.iter().enumerate() {
            if need >> k & 1 == 1 {
                parts.push(shadow.lit(if parts.is_empty() { b"\"" } else { b",\"" }));
                parts.push(shadow.call(rest));
            }
        }
        parts.push(shadow.lit(b"}"));
        let shadow_body = shadow.seq(&parts);
        let body = self.gb.add(format!("keyset:{ptr}"));
        let m = &mut self.gb.machines[body as usize];
        m.nfa = shadow;
        m.body = shadow_body;
        m.keyset = Some(def);
        let open = nfa.lit(b"{");
        let end = nfa.state();
        for p in self.ws_run(nfa, open.end) {
            nfa.states[p as usize].calls.push((body, end));
        }
        self.check_nfa(nfa, ptr, "properties")?;
        Ok(Frag { start: open.start, end })
    }

    /// The machine for one object member: key, colon, value.
    fn member_machine(&mut self, key: &MemberKey, schema: &Sv<'a>, ptr: &str) -> MachineId {
        let extra = match key {
            MemberKey::Lit(b) => b.clone(),
            // Not a JSON string: never the bytes of a literal key.
            MemberKey::Machine(m) => format!("#{m}").into_bytes(),
        };
        let job = |v| Job::Member(key.clone(), v, ptr.to_string());
        self.vmachine(Kind::Member, extra, schema, || format!("member:{ptr}"), job)
    }

    fn member(&mut self, nfa: &mut Nfa, key: &MemberKey, schema: Sv<'a>, ptr: &str) -> Result<Frag, CompileError> {
        let k = match key {
            MemberKey::Lit(b) => nfa.lit(b),
            MemberKey::Machine(m) => nfa.call(*m),
        };
        let colon = self.punct(nfa, b":", true, true);
        let v = self.value(nfa, schema, ptr)?;
        // The whitespace before the next `,` or the closing `}` (see the
        // object's state loop).
        let mut parts = vec![k, colon, v];
        parts.extend(self.ws(nfa));
        Ok(nfa.seq(&parts))
    }

    /// `from` and the states of a whitespace run after it (per policy):
    /// `from --ws--> w1 --ws--> w2 …`, each a place where the run may stop.
    fn ws_run(&self, nfa: &mut Nfa, from: u32) -> Vec<u32> {
        let mut run = vec![from];
        if let Whitespace::Flexible { max_run } = self.cfg.get_whitespace() {
            for _ in 0..max_run {
                let n = nfa.state();
                let cur = *run.last().expect("non-empty");
                for b in [b' ', b'\t', b'\n', b'\r'] {
                    nfa.states[cur as usize].ranges.push((b, b, n));
                }
                run.push(n);
            }
        }
        run
    }

    /// An array machine's body, and how its `uniqueItems` is enforced at
    /// run time (`None`: it holds by construction, or was relaxed).
    fn array(&mut self, nfa: &mut Nfa, sv: Sv<'a>, ptr: &str) -> Result<(Frag, Option<Unique>), CompileError> {
        let map = sv.as_object().expect("array schema");
        let min = self.count_kw(map, "minItems", ptr)?.unwrap_or(0);
        let mut max = self.count_kw(map, "maxItems", ptr)?;
        let unique = if unique_items_hold(map) { None } else { self.unique_plan(map, ptr)?.ok() };
        if let Some(Unique { values: Some(n), .. }) = &unique {
            let n = *n;
            // No more distinct items than the values the items may take.
            max = Some(max.map_or(n, |m| m.min(n)));
        }
        let frag = self.array_body(nfa, &sv, map, min, max, unique.is_some(), ptr)?;
        Ok((frag, unique))
    }

    #[allow(clippy::too_many_arguments)]
    fn array_body(
        &mut self,
        nfa: &mut Nfa,
        sv: &Sv<'a>,
        map: &Map<String, Value>,
        min: u64,
        max: Option<u64>,
        unique: bool,
        ptr: &str,
    ) -> Result<Frag, CompileError> {
        let part = |kw: &str| sv.part(|v| v.get(kw));
        let parts = |kw: &str, n: usize| -> Vec<Sv<'a>> {
            (0..n).map(|i| sv.part(|v| v.get(kw)?.get(i)).expect("an item schema")).collect()
        };
        // Prefix schemas and the schema of the rest.
        let (prefix, prefix_kw, rest, rest_ptr): (Vec<Sv<'a>>, &str, Sv<'a>, String) =
            match (map.get("prefixItems"), map.get("items")) {
                (_, Some(Value::Array(items))) => (
                    parts("items", items.len()),
                    "items",
                    part("additionalItems").unwrap_or(Sv::Doc(&TRUE)),
                    ptr_push(ptr, "additionalItems"),
                ),
                (Some(Value::Array(p)), _) => (
                    parts("prefixItems", p.len()),
                    "prefixItems",
                    part("items").unwrap_or(Sv::Doc(&TRUE)),
                    ptr_push(ptr, "items"),
                ),
                (Some(_), _) => {
                    return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "prefixItems must be an array")
                        .with_keyword("prefixItems"))
                }
                (None, _) => {
                    (Vec::new(), "prefixItems", part("items").unwrap_or(Sv::Doc(&TRUE)), ptr_push(ptr, "items"))
                }
            };
        let k = prefix.len() as u64;
        let rest_ok = *rest != Value::Bool(false);
        let cap: Option<u64> = match (max, rest_ok) {
            (Some(m), true) => Some(m),
            (Some(m), false) => Some(m.min(k)),
            (None, true) => None,
            (None, false) => Some(k),
        };
        let open = self.punct(nfa, b"[", false, true);
        if let Some(c) = cap {
            if min > c {
                return Ok(nfa.never());
            }
        }
        // `contains`: at least `need` items must also match it. Layer `l`
        // of a position counts the matching items read so far (capped at
        // `need`); each item is read both ways, as the item schema alone
        // (same layer) and as the item schema with `contains` (next layer),
        // so the grammar needs no complement of `contains`, and the array
        // closes from the last layer only.
        // Several `contains` (merged from `allOf` members, the others in
        // `x-grammask-contains-also`, one matching item each) count side by
        // side: a layer is a vector of counts (mixed radix), and an item is
        // read once per subset of them.
        let (need, contains) = self.contains_need(map, cap, ptr)?;
        if need == u64::MAX || cap.is_some_and(|c| c < need) {
            return Ok(nfa.never());
        }
        let mut goals: Vec<(u64, Value)> = if need > 0 { vec![(need, contains)] } else { Vec::new() };
        let also_kw = if self.draft4 { "x-grammask-contains4-also" } else { "x-grammask-contains-also" };
        if let Some(also) = map.get(also_kw) {
            let Value::Array(xs) = also else {
                return Err(CompileError::new(CompileErrorKind::InvalidSchema, ptr, "contains lists must be arrays"));
            };
            goals.extend(xs.iter().map(|x| (1, x.clone())));
        }
        if !goals.is_empty() && cap == Some(0) {
            return Ok(nfa.never());
        }
        let layers = goals.iter().fold(1usize, |n, (g, _)| n.saturating_mul(*g as usize + 1));
        if goals.len() > MAX_CONTAINS_GOALS || layers > MAX_CONTAINS as usize + 1 {
            return Err(CompileError::new(
                CompileErrorKind::LimitExceeded,
                ptr,
                format!(
                    "{} `contains` schemas with {layers} counts (at most {MAX_CONTAINS_GOALS} and {})",
                    goals.len(),
                    MAX_CONTAINS + 1
                ),
            )
            .with_keyword("contains"));
        }
        // Layer after reading an item that matches the goals in `mask`.
        let advance = |l: usize, mask: usize| -> usize {
            let (mut stride, mut out) = (1usize, 0usize);
            for (j, (g, _)) in goals.iter().enumerate() {
                let radix = *g as usize + 1;
                let mut c = l / stride % radix;
                if mask >> j & 1 == 1 {
                    c = (c + 1).min(*g as usize);
                }
                out += c * stride;
                stride *= radix;
            }
            out
        };
        let contains_ptr = ptr_push(ptr, "contains");
        let matching = |s: &Sv<'a>, mask: usize| {
            let mut all = vec![(**s).clone()];
            all.extend(goals.iter().enumerate().filter(|(j, _)| mask >> j & 1 == 1).map(|(_, (_, c))| c.clone()));
            Sv::built(serde_json::json!({ "allOf": all }))
        };
        // Explicit positions 0..=t, then (if unbounded) a loop at t.
        let t = k.max(min);
        let explicit = match cap {
            Some(c) => c,
            None => t.max(1),
        };
        if explicit > self.cfg.get_limits().max_array_positions as u64 {
            // The positions spelled out are the cap when there is one (set
            // by maxItems, or by the prefix when no more items may follow),
            // else the larger of minItems and the prefix.
            let kw = if cap.is_some() && max == Some(explicit) {
                "maxItems"
            } else if min > k {
                "minItems"
            } else {
                prefix_kw
            };
            return Err(CompileError::new(
                CompileErrorKind::LimitExceeded,
                ptr,
                format!("{explicit} array positions exceed Limits::max_array_positions"),
            )
            .with_keyword(kw));
        }
        let item_schema = |i: u64| -> (Sv<'a>, String) {
            if i < k {
                (prefix[i as usize].clone(), ptr_push(&ptr_push(ptr, prefix_kw), &i.to_string()))
            } else {
                (rest.clone(), rest_ptr.clone())
            }
        };
        let end = nfa.state();
        let close = self.punct(nfa, b"]", true, false);
        nfa.eps(close.end, end);
        let close_empty = nfa.lit(b"]");
        nfa.eps(close_empty.end, end);
        // An item schema used at two or more places (positions, the loop) is
        // a machine of its own, called from each: inlined, a large `enum`
        // would be copied per position, and the array's automaton would
        // hold positions × literals states.
        // (Prefix items have a place each and stay inline.)
        // Items of a `uniqueItems` array are always called: the run-time
        // check tells the array's own states from an item's by the machine.
        let rest_shared = unique || !goals.is_empty() || explicit.saturating_sub(k) + u64::from(cap.is_none()) > 1;
        // Readings: the subsets of the goals an item matches (0: none).
        let reads: Vec<usize> = (0..1usize << goals.len()).collect();
        let rest_machines: Option<Vec<MachineId>> = if rest_shared {
            let mut ms = Vec::new();
            for &mask in &reads {
                ms.push(if mask == 0 {
                    let name = || format!("item:{rest_ptr}");
                    self.vmachine(Kind::Item, vec![], &rest, name, |v| Job::Value(v, rest_ptr.clone()))
                } else {
                    let name = || format!("item:{contains_ptr}#{mask}");
                    let v = matching(&rest, mask);
                    self.vmachine(Kind::Item, vec![], &v, name, |v| Job::Value(v, contains_ptr.clone()))
                });
            }
            Some(ms)
        } else {
            None
        };
        // Reading (as the item schema, with the goals of `mask` too) the
        // item at position `i`.
        let item_at = |c: &mut Self, nfa: &mut Nfa, i: u64, mask: usize| -> Result<Frag, CompileError> {
            Ok(match (i < k, &rest_machines, mask) {
                (false, Some(ms), _) => nfa.call(ms[mask]),
                (_, _, 0) if unique => {
                    let (s, p) = item_schema(i);
                    let name = || format!("item:{p}");
                    nfa.call(c.vmachine(Kind::Item, vec![], &s, name, |v| Job::Value(v, p.clone())))
                }
                (_, _, _) if unique => {
                    let name = || format!("item:{contains_ptr}#{mask}");
                    let v = matching(&item_schema(i).0, mask);
                    nfa.call(c.vmachine(Kind::Item, vec![], &v, name, |v| Job::Value(v, contains_ptr.clone())))
                }
                (_, _, 0) => {
                    let (s, p) = item_schema(i);
                    c.value(nfa, s, &p)?
                }
                (_, _, _) => c.value(nfa, matching(&item_schema(i).0, mask), &contains_ptr)?,
            })
        };
        // pos[i][l]: i items emitted, l of them matching `contains`.
        let mut pos: Vec<Vec<Option<u32>>> = vec![vec![None; layers]];
        pos[0][0] = Some(open.end);
        for i in 0..explicit {
            let mut next: Vec<Option<u32>> = vec![None; layers];
            for (l, from) in pos[i as usize].clone().into_iter().enumerate() {
                let Some(from) = from else { continue };
                for &mask in &reads {
                    let item = item_at(self, nfa, i, mask)?;
                    self.check_nfa(nfa, ptr, "maxItems")?;
                    if i == 0 {
                        nfa.eps(from, item.start);
                    } else {
                        let comma = self.punct(nfa, b",", true, true);
                        nfa.eps(from, comma.start);
                        nfa.eps(comma.end, item.start);
                    }
                    let to = advance(l, mask);
                    match next[to] {
                        Some(at) => nfa.eps(item.end, at),
                        None => next[to] = Some(item.end),
                    }
                }
            }
            pos.push(next);
        }
        if cap.is_none() {
            // Loop: more items of the rest schema after position `explicit`
            // (layers in increasing order: a matching item moves up).
            let last = pos.len() - 1;
            for l in 0..layers {
                let Some(at) = pos[last][l] else { continue };
                for &mask in &reads {
                    let item = item_at(self, nfa, explicit, mask)?;
                    let comma = self.punct(nfa, b",", true, true);
                    nfa.eps(at, comma.start);
                    nfa.eps(comma.end, item.start);
                    let to = advance(l, mask);
                    let target = *pos[last][to].get_or_insert_with(|| nfa.state());
                    nfa.eps(item.end, target);
                }
            }
        }
        for (i, p) in pos.iter().enumerate() {
            let Some(p) = p[layers - 1] else { continue };
            if i as u64 >= min {
                if i == 0 {
                    nfa.eps(p, close_empty.start);
                } else {
                    nfa.eps(p, close.start);
                }
            }
        }
        Ok(Frag { start: open.start, end })
    }

    /// Whether this array's `uniqueItems` can be enforced at run time (see
    /// [`crate::unique`]), and how; else why not. The matcher compares
    /// finished items of an open array as decoded strings, so every item
    /// schema must admit strings only (`type: "string"`, or an `enum`/`const`
    /// of strings). When `minItems` asks for two or more items, the item
    /// schemas must be seen to have that many distinct values: a liveness
    /// search in the matcher only looks one item ahead.
    fn unique_plan(&self, map: &Map<String, Value>, ptr: &str) -> Result<Result<Unique, String>, CompileError> {
        let min = self.count_kw(map, "minItems", ptr)?.unwrap_or(0);
        let max = self.count_kw(map, "maxItems", ptr)?;
        let mut schemas: Vec<&Value> = Vec::new();
        let (prefix, rest) = match (map.get("prefixItems"), map.get("items")) {
            (_, Some(Value::Array(items))) => (items.as_slice(), map.get("additionalItems")),
            (Some(Value::Array(p)), rest) => (p.as_slice(), rest),
            (_, rest) => (&[][..], rest),
        };
        schemas.extend(prefix.iter().take(max.unwrap_or(u64::MAX).min(usize::MAX as u64) as usize));
        if max.is_none_or(|m| m > prefix.len() as u64) {
            schemas.push(rest.unwrap_or(&TRUE));
        }
        let mut values: Option<std::collections::BTreeSet<String>> = Some(Default::default());
        let mut plenty = true;
        let mut open_ended = true;
        let mut exact = true;
        let single = schemas.len() == 1;
        for &s in &schemas {
            let Some(it) = self.string_items(s, ptr, 0)? else {
                return self.values_plan(map, &schemas, ptr);
            };
            plenty &= it.plenty;
            open_ended &= it.open_ended;
            exact &= it.exact;
            match (values.as_mut(), it.bound) {
                (Some(all), Some(b)) => all.extend(b),
                _ => values = None,
            }
        }
        let n = values.as_ref().map(|v| v.len() as u64);
        // One item schema (no prefix, no `contains`): its values decide
        // liveness exactly.
        let strings = values
            .clone()
            .filter(|_| single && exact && !map.contains_key("contains"))
            .map(|v| std::sync::Arc::new(v.iter().map(|s| s.encode_utf16().collect::<Vec<u16>>()).collect::<Vec<_>>()))
            .map(|mut v| {
                std::sync::Arc::make_mut(&mut v).sort_unstable();
                v
            });
        if min >= 2 && !plenty && n.is_none() {
            return Ok(Err(format!("minItems {min} with item schemas not seen to have {min} distinct strings")));
        }
        Ok(Ok(Unique { values: n, strings, plenty, open_ended, closers: None }))
    }

    /// The run-time `uniqueItems` of an array whose items are not all
    /// strings: compared as values (see [`crate::unique::values`]) when
    /// every item schema admits open-ended objects and strings only.
    fn values_plan(
        &self,
        map: &Map<String, Value>,
        schemas: &[&Value],
        ptr: &str,
    ) -> Result<Result<Unique, String>, CompileError> {
        let why = "items that may be numbers, or values with few completions (run time `uniqueItems` compares \
                   strings, and objects that accept any further key)";
        if map.contains_key("contains") {
            return Ok(Err(why.into()));
        }
        let mut closers = Vec::new();
        for &s in schemas {
            match self.value_closers(s, ptr, 0)? {
                Some(c) => closers.extend(c),
                None => return Ok(Err(why.into())),
            }
        }
        closers.sort_unstable();
        closers.dedup();
        Ok(Ok(Unique { values: None, strings: None, plenty: true, open_ended: true, closers: Some(closers) }))
    }

    /// The bytes that may close an item of schema `s` in an array of
    /// values, when every value `s` admits is open-ended: an object that
    /// accepts further keys without bound (so every prefix of one goes on
    /// to infinitely many objects) or a free string; `None` otherwise (a
    /// number, whose end no byte of its own marks, or a value with few
    /// completions).
    fn value_closers(&self, s: &Value, ptr: &str, depth: usize) -> Result<Option<Vec<u8>>, CompileError> {
        let r = self.resolved(s, ptr)?;
        let m = match &r {
            Value::Bool(false) => return Ok(Some(Vec::new())),
            Value::Object(m) if depth < 8 => m,
            _ => return Ok(None),
        };
        for kw in ["anyOf", "oneOf"] {
            let Some(bs) = m.get(kw) else { continue };
            let Value::Array(bs) = bs else { return Ok(None) };
            if m.keys().any(|k| is_constraint(k) && k != kw) {
                return Ok(None);
            }
            let mut all: Vec<u8> = Vec::new();
            for b in bs {
                let Some(c) = self.value_closers(b, ptr, depth + 1)? else { return Ok(None) };
                // `oneOf` branches of one type may overlap.
                if kw == "oneOf" && c.iter().any(|x| all.contains(x)) {
                    return Ok(None);
                }
                all.extend(c);
            }
            return Ok(Some(all));
        }
        let types: Vec<&str> = match m.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Ok(None),
        };
        const OPEN: [&str; 9] = [
            "type",
            "properties",
            "required",
            "additionalProperties",
            "patternProperties",
            "minProperties",
            "dependentRequired",
            "minLength",
            "pattern",
        ];
        if m.keys().any(|k| is_constraint(k) && !OPEN.contains(&k.as_str())) {
            return Ok(None);
        }
        // An object takes further keys without bound: any name (an
        // `additionalProperties` that admits values), or the names of a
        // pattern with infinitely many matches; no pattern's schema is
        // `false` (which could forbid every name).
        let admits = |this: &Self, v: &Value| -> Result<bool, CompileError> {
            Ok(match this.resolved(v, ptr)? {
                Value::Bool(b) => b,
                Value::Object(o) => !["enum", "const", "not"].iter().any(|k| o.contains_key(*k)),
                _ => false,
            })
        };
        let pp = match m.get("patternProperties") {
            None => Map::new(),
            Some(Value::Object(pp)) => pp.clone(),
            Some(_) => return Ok(None),
        };
        let mut pattern_names = false;
        for (p, v) in &pp {
            if !admits(self, v)? {
                return Ok(None);
            }
            pattern_names |= strings::infinite_pattern(p);
        }
        let any_name = match m.get("additionalProperties") {
            None => true,
            Some(a) => admits(self, a)?,
        };
        if types.contains(&"object") && !any_name && !pattern_names {
            return Ok(None);
        }
        if m.get("pattern").is_some_and(|p| p.as_str().is_none_or(|p| !strings::open_ended_pattern(p))) {
            return Ok(None);
        }
        let mut closers = Vec::new();
        for t in types {
            match t {
                "object" => closers.push(b'}'),
                "string" => closers.push(b'"'),
                _ => return Ok(None),
            }
        }
        Ok(Some(closers))
    }

    /// What the values of an item schema that admits strings only are
    /// known to be (`None`: it may admit other values, or cannot be seen
    /// to admit strings only).
    fn string_items(&self, s: &Value, ptr: &str, depth: usize) -> Result<Option<ItemStrings>, CompileError> {
        let r = self.resolved(s, ptr)?;
        let m = match &r {
            Value::Bool(false) => {
                return Ok(Some(ItemStrings {
                    bound: Some(Default::default()),
                    exact: true,
                    plenty: false,
                    open_ended: true,
                }))
            }
            Value::Object(m) if depth < 8 => m,
            _ => return Ok(None),
        };
        let string_type = match m.get("type") {
            Some(Value::String(t)) => t == "string",
            Some(Value::Array(ts)) => ts.len() == 1 && ts[0] == "string",
            _ => false,
        };
        // Constraints besides the one read here make the values a subset.
        let others = |own: &[&str]| m.keys().any(|k| is_constraint(k) && k != "type" && !own.contains(&k.as_str()));
        let finite = match (m.get("enum"), m.get("const")) {
            (Some(Value::Array(e)), _) => Some(e.clone()),
            (None, Some(c)) => Some(vec![c.clone()]),
            _ => None,
        };
        if let Some(vs) = finite {
            let strings: Vec<String> = vs.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
            if strings.len() < vs.len() && !string_type {
                return Ok(None);
            }
            let exact = strings.len() == vs.len() && !others(&["enum", "const"]);
            return Ok(Some(ItemStrings {
                bound: Some(strings.into_iter().collect()),
                exact,
                plenty: false,
                open_ended: false,
            }));
        }
        if string_type {
            let open_ended =
                !m.keys().any(|k| is_constraint(k) && !["type", "minLength", "pattern"].contains(&k.as_str()))
                    && m.get("pattern").is_none_or(|p| p.as_str().is_some_and(strings::open_ended_pattern));
            return Ok(Some(ItemStrings { bound: None, exact: false, plenty: self.plenty_strings(m), open_ended }));
        }
        for kw in ["anyOf", "oneOf"] {
            let Some(Value::Array(bs)) = m.get(kw) else { continue };
            let mut union =
                ItemStrings { bound: Some(Default::default()), exact: !others(&[kw]), plenty: false, open_ended: true };
            for b in bs {
                let Some(it) = self.string_items(b, ptr, depth + 1)? else { return Ok(None) };
                union.exact &= it.exact;
                union.plenty |= it.plenty;
                union.open_ended &= it.open_ended;
                match (union.bound.as_mut(), it.bound) {
                    (Some(all), Some(b)) => all.extend(b),
                    _ => union.bound = None,
                }
            }
            // `oneOf` may drop values two branches share; siblings narrow.
            union.exact &= kw == "anyOf";
            union.plenty &= !others(&[kw]) && kw == "anyOf";
            union.open_ended &= !others(&[kw]) && kw == "anyOf";
            return Ok(Some(union));
        }
        if let Some(Value::Array(ms)) = m.get("allOf") {
            for x in ms {
                if let Some(it) = self.string_items(x, ptr, depth + 1)? {
                    return Ok(Some(ItemStrings { bound: it.bound, exact: false, plenty: false, open_ended: false }));
                }
            }
        }
        Ok(None)
    }

    /// Whether a `type: "string"` schema has infinitely (or more than
    /// 2^20) many values, so that no array can use them all up: length
    /// bounds alone (`maxLength` ≥ 1), or an unbounded `pattern` or a
    /// `format` without `maxLength`, and no other constraint.
    fn plenty_strings(&self, m: &Map<String, Value>) -> bool {
        if m.keys()
            .any(|k| is_constraint(k) && !["type", "minLength", "maxLength", "pattern", "format"].contains(&k.as_str()))
        {
            return false;
        }
        let max_len = m.get("maxLength").and_then(Value::as_f64);
        let pattern = m.get("pattern").and_then(Value::as_str);
        if m.contains_key("pattern") || m.contains_key("format") {
            return max_len.is_none() && pattern.is_none_or(strings::infinite_pattern);
        }
        max_len.is_none_or(|n| n >= 1.0)
    }

    /// How many items must match `contains` (0: no such constraint), and
    /// the `contains` schema. `contains` is a keyword from draft 6 on,
    /// `minContains`/`maxContains` from 2019-09 on (earlier drafts ignore
    /// them as unknown). `maxContains` needs the complement of `contains`
    /// to count the items that do not match; it is refused unless the
    /// array cannot hold more items than it allows (`cap`). `u64::MAX`:
    /// `minContains` above `maxContains`, no array qualifies.
    fn contains_need(
        &mut self,
        map: &Map<String, Value>,
        cap: Option<u64>,
        ptr: &str,
    ) -> Result<(u64, Value), CompileError> {
        let c = if self.draft4 { map.get("x-grammask-contains") } else { map.get("contains") };
        let Some(c) = c else {
            return Ok((0, Value::Bool(true)));
        };
        let (min, max) = if self.legacy_ref {
            (Some(1), None)
        } else {
            (self.count_kw(map, "minContains", ptr)?, self.count_kw(map, "maxContains", ptr)?)
        };
        let need = min.unwrap_or(1);
        if let Some(mx) = max {
            if cap.is_none_or(|c| c > mx) && need <= mx {
                self.unsupported(ptr, "maxContains", "an upper bound on the items matching `contains`")?;
            }
            if need > mx {
                // No array has more matching items than it may have.
                return Ok((u64::MAX, c.clone()));
            }
        }
        if need > MAX_CONTAINS {
            return Err(CompileError::new(
                CompileErrorKind::LimitExceeded,
                ptr,
                format!("minContains {need} exceeds {MAX_CONTAINS} (each count is a copy of the array's positions)"),
            )
            .with_keyword("minContains"));
        }
        Ok((need, c.clone()))
    }
}

/// `v` with every integral float written as an integer (`-2.0` → `-2`), so
/// that a literal has one spelling whatever its source wrote (output format).
pub(crate) fn canonical_numbers(v: &Value) -> Value {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Value::from(f as i64),
            _ => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(canonical_numbers).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), canonical_numbers(x))).collect()),
        _ => v.clone(),
    }
}

/// Whether `k` is a keyword that constrains instances.
/// The names a `propertyNames` schema refuses, when it refuses every name
/// (`Some(None)`: `false`, `{not: {}}`) or exactly the strings of a
/// `not: {const}` / `not: {enum}` (`Some(Some(names))`).
fn excluded_names(pn: &Value) -> Option<Option<Vec<String>>> {
    let strings = |xs: &[Value]| -> Vec<String> { xs.iter().filter_map(|x| x.as_str().map(String::from)).collect() };
    match pn {
        Value::Bool(false) => Some(None),
        Value::Object(m) if m.len() == 1 => {
            let n = m.get("not")?;
            match n {
                Value::Bool(true) => Some(None),
                Value::Object(x) if x.is_empty() => Some(None),
                Value::Object(x) if x.len() == 1 => match (x.get("const"), x.get("enum")) {
                    (Some(c), None) => Some(Some(strings(std::slice::from_ref(c)))),
                    (None, Some(Value::Array(e))) => Some(Some(strings(e))),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_constraint(k: &str) -> bool {
    // Asked of every key of every (sub)schema a merge or rewrite reads.
    static KEYWORDS: std::sync::OnceLock<ahash::AHashSet<&'static str>> = std::sync::OnceLock::new();
    KEYWORDS.get_or_init(|| SUPPORTED.iter().chain(UNSUPPORTED).copied().collect()).contains(k)
}

fn bad_type(ptr: &str) -> CompileError {
    CompileError::new(CompileErrorKind::InvalidSchema, ptr, "type must be a type name or a list of them")
        .with_keyword("type")
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The compiler's answers to a disjointness proof: `$ref` targets, and
/// pattern facts from the patterns' automata (`Under` for a sure match,
/// `Over` for a sure miss or a sure empty meet).
struct ProofFacts<'c> {
    c: &'c SchemaCompiler<'c>,
    ptr: &'c str,
}

impl ProofFacts<'_> {
    /// A pattern's automaton for a proof, within a small size budget
    /// (past it nothing is proven: a proof must not cost a compile).
    fn pattern(&self, p: &str, reading: strings::Reading) -> Option<Arc<lexer::Dfa>> {
        const PROOF_DFA_BYTES: usize = 1 << 18;
        let hir = strings::ecma_search(p, reading).ok()?;
        lexer::compile_hir(&hir, self.c.cfg.get_limits().max_terminal_bytes.min(PROOF_DFA_BYTES)).ok()
    }
}

impl merge::Facts for ProofFacts<'_> {
    fn resolve<'x>(&self, v: &'x Value) -> std::borrow::Cow<'x, Value> {
        self.c.resolved_or_true(v, self.ptr)
    }

    fn key_matches(&self, p: &str, name: &str) -> Option<bool> {
        let under = self.pattern(p, strings::Reading::Under);
        certain_match(under.as_deref(), || self.pattern(p, strings::Reading::Over), name)
    }

    fn patterns_meet(&self, p: &str, q: &str) -> bool {
        if p == q {
            return true;
        }
        let (Some(a), Some(b)) = (self.pattern(p, strings::Reading::Over), self.pattern(q, strings::Reading::Over))
        else {
            return true;
        };
        let spec = StringSpec { must: vec![a.into(), b.into()], ..Default::default() };
        let max_states = self.c.cfg.get_limits().max_string_states.min(4096);
        strings::build(&spec, max_states).ok().is_none_or(|t| t.accept.iter().any(|&x| x))
    }
}

/// The error for an `x-grammask-not-formats` naming a format without a
/// superset (only a schema that spells the internal keyword itself has one).
fn no_superset(ptr: &str, format: &str) -> CompileError {
    CompileError::new(
        CompileErrorKind::InvalidSchema,
        ptr,
        format!("x-grammask-not-formats: format {format:?} has no superset (an internal keyword)"),
    )
    .with_keyword("not")
}

/// Most declared names for which `not` of `additionalProperties: false`
/// is spelled out by counting (2^n alternatives).
const MAX_COUNTED_NAMES: usize = 3;

/// `not` of `additionalProperties: false` beside declared names `N` and no
/// `patternProperties`: an object with some key outside `N`, whatever else
/// it admits. Members are distinct, so that is exactly: for the set `S` of
/// names of `N` it holds, more than `|S|` members — one alternative per
/// `S ⊆ N` (`required: S`, the rest of `N` absent, `minProperties: |S| + 1`).
/// `None` for other forms, or more than [`MAX_COUNTED_NAMES`] names.
fn some_key_outside(kw: &str, v: &Value, sub: &Map<String, Value>) -> Option<Vec<Value>> {
    use serde_json::json;
    if kw != "additionalProperties" || *v != Value::Bool(false) || sub.contains_key("patternProperties") {
        return None;
    }
    let names: Vec<&String> = match sub.get("properties") {
        None => Vec::new(),
        Some(Value::Object(p)) => p.keys().collect(),
        Some(_) => return None,
    };
    if names.len() > MAX_COUNTED_NAMES {
        return None;
    }
    let mut out = Vec::with_capacity(1 << names.len());
    for bits in 0u32..1 << names.len() {
        let held: Vec<&String> = (0..names.len()).filter(|i| bits >> i & 1 == 1).map(|i| names[i]).collect();
        let absent: Map<String, Value> =
            (0..names.len()).filter(|i| bits >> i & 1 == 0).map(|i| (names[i].clone(), Value::Bool(false))).collect();
        out.push(json!({
            "type": "object",
            "required": held,
            "properties": absent,
            "minProperties": held.len() + 1,
        }));
    }
    Some(out)
}

/// Whether `name` matches a pattern whatever reading the validators take:
/// `Some(true)` when its `Under` automaton (matches every reading allows)
/// matches, `Some(false)` when its `Over` automaton (what some reading may
/// match) does not, `None` otherwise or without the automata. `over` is
/// built only when `under` does not decide.
fn certain_match(
    under: Option<&lexer::Dfa>,
    over: impl FnOnce() -> Option<Arc<lexer::Dfa>>,
    name: &str,
) -> Option<bool> {
    if under.is_some_and(|u| lexer::dfa_matches(u, name.as_bytes())) {
        return Some(true);
    }
    match over() {
        Some(o) if !lexer::dfa_matches(&o, name.as_bytes()) => Some(false),
        _ => None,
    }
}

/// The objects other than `o`, as `anyOf` alternatives: one of its keys
/// missing, or holding another value, or a key beyond them (all of its
/// keys present and more members than it has: one more name to track).
fn other_objects(o: &Map<String, Value>) -> Vec<Value> {
    use serde_json::json;
    let mut out = Vec::with_capacity(2 * o.len() + 1);
    for (k, v) in o {
        out.push(json!({ "type": "object", "properties": { k: false } }));
        out.push(json!({ "type": "object", "required": [k], "properties": { k: { "not": { "const": v } } } }));
    }
    let keys: Vec<&String> = o.keys().collect();
    out.push(json!({ "type": "object", "required": keys, "minProperties": o.len() + 1 }));
    out
}

/// The arrays other than `a`, as `anyOf` alternatives: another length,
/// or another value at one of its positions.
fn other_arrays(a: &[Value]) -> Vec<Value> {
    use serde_json::json;
    let mut out = Vec::with_capacity(a.len() + 2);
    if !a.is_empty() {
        out.push(json!({ "type": "array", "maxItems": a.len() - 1 }));
    }
    out.push(json!({ "type": "array", "minItems": a.len() + 1 }));
    for (i, v) in a.iter().enumerate() {
        let mut prefix = vec![Value::Bool(true); i];
        prefix.push(json!({ "not": { "const": v } }));
        out.push(json!({ "type": "array", "minItems": i + 1, "prefixItems": prefix }));
    }
    out
}
