//! The soundness net: random walks through the masks of every schema at
//! hand, and mutants of their valid instances, each judged by two
//! independent validators (`jsonschema` and `boon`, formats asserted;
//! a `pattern` with lookaround by `jsonschema` alone, see [`Oracle`]).
//!
//! Promise one says a completion the masks let through, and that
//! terminates, validates. The net checks it where nobody chose the cases:
//! for each schema (a MaskBench file, a JSON-Schema-Test-Suite group, a
//! schema file) it compiles every configuration that compiles (strict and,
//! when strict refuses, lenient; compact and flexible whitespace), walks
//! the masks with a random "model" ([`crate::random_walk`]: uniform over
//! the allowed tokens, pressed toward closing tokens so walks end), and
//! hands each finished output to both validators. A lenient grammar is
//! judged against the schema with its reported relaxations removed (and
//! with them the `unevaluated*` keywords, which see what they evaluate; a
//! relaxed `oneOf` read as the `anyOf` it compiles to: what
//! lenient promises). Then it mutates the schema's valid instances (a
//! value's type changed, a key dropped or added, a bound broken, a value
//! wrapped in or unwrapped from an array or object: the incident's missing
//! wrapper is one) and checks that each mutant the grammar accepts
//! validates too.
//!
//! A harness for tests and the CLI (`grammask walks`), behind the `oracle`
//! feature; the engine never calls it. Walk seeds derive from the subject's
//! label, so a failure names what reproduces it: label, configuration,
//! seed and text.

use crate::conformance::python_dumps;
use crate::{random_walk, CompiledGrammar, Compiler, Config, Relaxation, Rng, Vocabulary, Whitespace};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One schema to walk, with valid instances to mutate when it has some.
#[derive(Clone, Debug)]
pub struct Subject {
    /// Where it came from (`file`, or `file#group` for the test suite).
    pub label: String,
    /// The schema document.
    pub schema: Value,
    /// Instances known to be valid (MaskBench's, the suite's).
    pub valid: Vec<Value>,
}

/// Reads subjects from `path`: a MaskBench data folder (files holding
/// `schema` and `tests`), a JSON-Schema-Test-Suite draft folder (arrays of
/// groups; `optional/` too, the draft named in each schema), a folder of
/// schema files, or one file of any of these kinds. Sorted by label;
/// `sample` keeps every k-th file, deterministically.
pub fn subjects(path: &Path, sample: Option<usize>) -> Result<Vec<Subject>, String> {
    let files = if path.is_dir() {
        crate::conformance::sample_files(crate::conformance::json_files(path, true)?, sample)
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for f in files {
        out.extend(file_subjects(path, &f)?);
    }
    Ok(out)
}

fn file_subjects(root: &Path, f: &Path) -> Result<Vec<Subject>, String> {
    let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", f.display()))?;
    let label = f.strip_prefix(root).unwrap_or(f).to_string_lossy().into_owned();
    let label = if label.is_empty() { f.to_string_lossy().into_owned() } else { label };
    let valid_of = |tests: &Value| -> Vec<Value> {
        tests
            .as_array()
            .map(|a| a.iter().filter(|t| t["valid"] == Value::Bool(true)).map(|t| t["data"].clone()).collect())
            .unwrap_or_default()
    };
    Ok(match &v {
        Value::Object(m) if m.contains_key("schema") && m.contains_key("tests") => {
            vec![Subject { label, schema: m["schema"].clone(), valid: valid_of(&m["tests"]) }]
        }
        Value::Array(groups) if groups.iter().all(|g| g.get("schema").is_some() && g.get("tests").is_some()) => {
            let draft = crate::conformance::draft_uri(f);
            groups
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    let mut schema = g["schema"].clone();
                    if let (Some(d), Value::Object(m)) = (draft, &mut schema) {
                        m.entry("$schema").or_insert(Value::String(d.into()));
                    }
                    Subject { label: format!("{label}#{i}"), schema, valid: valid_of(&g["tests"]) }
                })
                .collect()
        }
        _ => vec![Subject { label, schema: v, valid: vec![] }],
    })
}

/// Two independent validators of one schema, formats asserted.
pub struct Oracle {
    js: jsonschema::Validator,
    boon: boon::Schemas,
    boon_idx: boon::SchemaIndex,
}

impl Oracle {
    /// Builds both validators; `Err` when either refuses the schema (then
    /// the schema cannot be judged and the net skips it, counted).
    pub fn new(schema: &Value) -> Result<Oracle, String> {
        // `contentMediaType`/`contentEncoding` are annotations (2019-09 on;
        // optional in draft 7); grammask does not assert them, and the
        // `jsonschema` crate would on draft 6/7 schemas: judged as the
        // specification's current drafts read them.
        let js = std::panic::catch_unwind(|| {
            jsonschema::options()
                .should_validate_formats(true)
                .without_content_media_type_support("application/json")
                .without_content_encoding_support("base64")
                .build(schema)
        })
        .map_err(|_| "jsonschema panicked".to_string())?
        .map_err(|e| format!("jsonschema: {e}"))?;
        // boon's regex engine has no lookaround: it judges the schema with
        // such `pattern`s matching everything, and the `jsonschema` crate
        // (a backtracking engine) judges those patterns alone.
        let mut for_boon = schema.clone();
        without_lookaround(&mut for_boon);
        let mut c = boon::Compiler::new();
        c.enable_format_assertions();
        let loc = "http://grammask.invalid/schema.json";
        c.add_resource(loc, for_boon).map_err(|e| format!("boon: {e}"))?;
        let mut boon = boon::Schemas::new();
        let boon_idx = c.compile(loc, &mut boon).map_err(|e| format!("boon: {e}"))?;
        Ok(Oracle { js, boon, boon_idx })
    }

    /// The validators that reject `v` (empty when both accept), with their
    /// messages.
    pub fn rejections(&self, v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = self.js.validate(v) {
            out.push(format!("jsonschema: {e}"));
        }
        if let Err(e) = self.boon.validate(v, self.boon_idx) {
            out.push(format!("boon: {}", e.to_string().replace('\n', " ")));
        }
        out
    }
}

/// Replaces each `pattern` that holds a lookaround (`(?=`, `(?!`, `(?<=`,
/// `(?<!`) with `""`, which matches every string; values (`enum`, `const`,
/// `default`, `examples`) are left alone.
fn without_lookaround(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                match (k.as_str(), &*x) {
                    ("enum" | "const" | "default" | "examples", _) => {}
                    ("pattern", Value::String(p)) if ["(?=", "(?!", "(?<=", "(?<!"].iter().any(|l| p.contains(l)) => {
                        *x = Value::String(String::new())
                    }
                    _ => without_lookaround(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(without_lookaround),
        _ => {}
    }
}

/// The schema with each relaxed keyword removed where it was reported:
/// what a lenient grammar promises to enforce. The compiler shares one
/// machine between equal subschemas and merges a `$ref` target into the
/// schema beside it, so a relaxation reported at one place holds at every
/// subschema equal to the one there and at the targets of its `$ref`s;
/// the keyword is removed from those too. `None` when a relaxation's
/// pointer or keyword is not in the document (then it cannot be judged).
pub fn without_relaxations(schema: &Value, relaxations: &[Relaxation]) -> Option<Value> {
    let mut s = schema.clone();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for r in relaxations {
        if seen.contains(&(r.pointer.as_str(), r.keyword.as_str())) {
            continue;
        }
        seen.push((&r.pointer, &r.keyword));
        let at = schema.pointer(&r.pointer)?;
        at.as_object()?.get(&r.keyword)?;
        let mut places = Vec::new();
        equal_places(schema, at, &mut String::new(), &mut places);
        // `$ref` targets merged into it, transitively.
        let mut cur = at;
        for _ in 0..16 {
            let Some(t) = cur.get("$ref").and_then(|r| r.as_str()).and_then(|r| r.strip_prefix('#')) else { break };
            let Some(target) = schema.pointer(t) else { break };
            equal_places(schema, target, &mut String::new(), &mut places);
            cur = target;
        }
        for p in places {
            if let Some(m) = s.pointer_mut(&p).and_then(|v| v.as_object_mut()) {
                let removed = m.remove(&r.keyword);
                // A relaxed `oneOf` is compiled as `anyOf` (some branch
                // holds), not dropped: under a negation the two differ.
                if let (Some(branches), "oneOf") = (removed, r.keyword.as_str()) {
                    let any = serde_json::json!({ "anyOf": branches });
                    match m.get_mut("allOf") {
                        Some(Value::Array(all)) => all.push(any),
                        _ => {
                            m.insert("allOf".into(), Value::Array(vec![any]));
                        }
                    }
                }
            }
        }
    }
    // `unevaluatedProperties`/`unevaluatedItems` read what the keywords
    // beside them and below them evaluate: with one of those removed they
    // would see less (and refuse more) than the grammar enforces, so they
    // are removed too.
    if !relaxations.is_empty() {
        drop_unevaluated(&mut s);
    }
    Some(s)
}

/// `v` without `unevaluatedProperties` and `unevaluatedItems` anywhere.
fn drop_unevaluated(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("unevaluatedProperties");
            m.remove("unevaluatedItems");
            m.values_mut().for_each(drop_unevaluated);
        }
        Value::Array(xs) => xs.iter_mut().for_each(drop_unevaluated),
        _ => {}
    }
}

/// Pointers of every subschema of `v` equal to `target`.
fn equal_places(v: &Value, target: &Value, at: &mut String, out: &mut Vec<String>) {
    if v == target {
        out.push(at.clone());
    }
    let len = at.len();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                equal_places(x, target, at, out);
                at.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push_str(&format!("/{i}"));
                equal_places(x, target, at, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// How hard the net pulls.
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// Finished walks wanted per schema and configuration.
    pub walks: usize,
    /// Attempts per configuration, as a multiple of `walks` (walks that hit
    /// `max_tokens` do not finish).
    pub attempts_factor: usize,
    /// Token budget of one walk.
    pub max_tokens: usize,
    /// Mutants tried per valid instance (at most 4 instances a schema).
    pub mutants: usize,
    /// Also walk lenient grammars of schemas strict mode refuses.
    pub lenient: bool,
    /// Slowest masks kept per subject (for the tail report).
    pub slowest: usize,
    /// Seed mixed into every walk's seed.
    pub seed: u64,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions { walks: 20, attempts_factor: 2, max_tokens: 400, mutants: 16, lenient: true, slowest: 3, seed: 0 }
    }
}

/// A configuration the net compiles: name and compiler configuration.
fn configurations(lenient: bool) -> Vec<(&'static str, Config)> {
    let flex = Whitespace::Flexible { max_run: 1 };
    let mut v = vec![("strict/compact", Config::new()), ("strict/flexible", Config::new().whitespace(flex))];
    if lenient {
        v.push(("lenient/compact", Config::new().strict(false)));
        v.push(("lenient/flexible", Config::new().strict(false).whitespace(flex)));
    }
    v
}

/// One output or mutant that a validator rejected, or a walk that broke.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The subject's label.
    pub label: String,
    /// The configuration (`strict/compact`, …).
    pub config: String,
    /// The walk's seed (0 for mutants).
    pub seed: u64,
    /// What went wrong: `walk`, `mutant`, `error`.
    pub kind: String,
    /// The output text.
    pub text: String,
    /// The validators' or the matcher's messages.
    pub why: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}] {} seed {}: {}\n    text: {}",
            self.label,
            self.config,
            self.kind,
            self.seed,
            self.why.join("; "),
            self.text
        )
    }
}

/// What the net saw on one subject, or summed over many.
#[derive(Clone, Debug, Default)]
pub struct NetReport {
    /// Subjects read.
    pub subjects: usize,
    /// Subjects the validators could not both build (not judged).
    pub unjudged: usize,
    /// Subjects with at least one configuration compiled.
    pub compiled: usize,
    /// Configurations compiled (per subject: up to 4).
    pub configs: usize,
    /// Lenient configurations compiled whose relaxations could not be
    /// located in the document (walked, not judged).
    pub lenient_unjudged: usize,
    /// Walks run.
    pub walks: usize,
    /// Walks that ended with a complete output.
    pub finished: usize,
    /// Configurations that got fewer finished walks than asked.
    pub short_configs: usize,
    /// The first few of those: label, configuration, finished walks.
    pub short: Vec<(String, String, usize)>,
    /// Mutants tried.
    pub mutants: usize,
    /// Mutants the grammar accepted (each then validated).
    pub mutants_accepted: usize,
    /// Failures (invalid outputs or mutants, broken walks).
    pub failures: Vec<Failure>,
    /// Every mask's time, ns.
    pub mask_nanos: Vec<u64>,
    /// Slowest masks: (ns, label, configuration, output prefix).
    pub slowest: Vec<(u64, String, String, String)>,
    /// Compile times, ms (every configuration tried).
    pub compile_ms: Vec<f64>,
}

impl NetReport {
    /// Adds another report's counts.
    pub fn absorb(&mut self, o: NetReport, keep_slowest: usize) {
        self.subjects += o.subjects;
        self.unjudged += o.unjudged;
        self.compiled += o.compiled;
        self.configs += o.configs;
        self.lenient_unjudged += o.lenient_unjudged;
        self.walks += o.walks;
        self.finished += o.finished;
        self.short_configs += o.short_configs;
        self.short.extend(o.short);
        self.short.truncate(50);
        self.mutants += o.mutants;
        self.mutants_accepted += o.mutants_accepted;
        self.failures.extend(o.failures);
        self.mask_nanos.extend(o.mask_nanos);
        self.compile_ms.extend(o.compile_ms);
        self.slowest.extend(o.slowest);
        self.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
        self.slowest.truncate(keep_slowest);
    }

    /// A few lines: counts, then mask and compile percentiles.
    pub fn summary(&self) -> String {
        let mut ns = self.mask_nanos.clone();
        ns.sort_unstable();
        let q = |p: f64| {
            ns.get(((ns.len() as f64 * p) as usize).min(ns.len().saturating_sub(1))).copied().unwrap_or(0) as f64 / 1e3
        };
        let mean = if ns.is_empty() { 0.0 } else { ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1e3 };
        let mut cm = self.compile_ms.clone();
        cm.sort_by(|a, b| a.total_cmp(b));
        let qc =
            |p: f64| cm.get(((cm.len() as f64 * p) as usize).min(cm.len().saturating_sub(1))).copied().unwrap_or(0.0);
        format!(
            "subjects {} (unjudged {}), compiled {} ({} configurations, {} lenient not judged)\n\
             walks {}, finished {} ({} configurations short of the walks asked)\n\
             mutants {}, accepted by the grammar {}\n\
             failures {}\n\
             masks {}: mean {:.1} µs, p50 {:.1}, p90 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}\n\
             compile ms (per configuration): p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
            self.subjects,
            self.unjudged,
            self.compiled,
            self.configs,
            self.lenient_unjudged,
            self.walks,
            self.finished,
            self.short_configs,
            self.mutants,
            self.mutants_accepted,
            self.failures.len(),
            ns.len(),
            mean,
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            ns.last().copied().unwrap_or(0) as f64 / 1e3,
            qc(0.5),
            qc(0.9),
            qc(0.99),
            cm.last().copied().unwrap_or(0.0),
        )
    }
}

fn hash_label(s: &str) -> u64 {
    // FNV-1a: stable across runs and platforms (seeds must reproduce).
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Runs the net on one subject.
pub fn run_subject(s: &Subject, vocab: &Arc<Vocabulary>, opts: &NetOptions) -> NetReport {
    let mut r = NetReport { subjects: 1, ..NetReport::default() };
    let oracle = match Oracle::new(&s.schema) {
        Ok(o) => o,
        Err(_) => {
            r.unjudged = 1;
            return r;
        }
    };
    let base = hash_label(&s.label) ^ opts.seed;
    let mut strict_ok = false;
    for (ci, (cname, cfg)) in configurations(opts.lenient).into_iter().enumerate() {
        let lenient = !cfg.get_strict();
        if lenient && strict_ok {
            break; // lenient compiles the same grammar when strict does
        }
        let t0 = std::time::Instant::now();
        let compiled = Compiler::with_config(cfg.clone()).compile(&s.schema, vocab.clone());
        r.compile_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        let Ok(g) = compiled else { continue };
        strict_ok |= !lenient;
        r.configs += 1;
        // The oracle for this grammar: the schema itself, or with the
        // lenient grammar's relaxations removed.
        let relaxed;
        let judge: &Oracle = if g.relaxations().is_empty() {
            &oracle
        } else {
            match without_relaxations(&s.schema, g.relaxations()).map(|v| Oracle::new(&v)) {
                Some(Ok(o)) => {
                    relaxed = o;
                    &relaxed
                }
                _ => {
                    r.lenient_unjudged += 1;
                    continue;
                }
            }
        };
        walk_config(s, &g, judge, cname, base ^ (ci as u64) << 56, opts, &mut r);
        mutate_config(s, &g, judge, cname, cfg.get_whitespace(), base, opts, &mut r);
    }
    r.compiled = usize::from(r.configs > 0);
    r
}

fn walk_config(
    s: &Subject,
    g: &Arc<CompiledGrammar>,
    judge: &Oracle,
    cname: &str,
    seed0: u64,
    opts: &NetOptions,
    r: &mut NetReport,
) {
    let mut finished = 0;
    let mut slow: Vec<(u64, String, String, String)> = Vec::new();
    for i in 0..opts.walks * opts.attempts_factor.max(1) {
        if finished >= opts.walks {
            break;
        }
        let seed = seed0.wrapping_add(i as u64);
        let mut m = g.matcher();
        let walked = random_walk(&mut m, &mut Rng::new(seed), opts.max_tokens);
        r.walks += 1;
        let text = String::from_utf8_lossy(m.output()).into_owned();
        let fail = |kind: &str, why: Vec<String>| Failure {
            label: s.label.clone(),
            config: cname.to_string(),
            seed,
            kind: kind.to_string(),
            text: text.clone(),
            why,
        };
        let sample = match walked {
            Ok(x) => x,
            Err(e) => {
                r.failures.push(fail("error", vec![e.to_string()]));
                continue;
            }
        };
        // The slowest masks of this walk, with the prefix they were for.
        if opts.slowest > 0 {
            let mut idx: Vec<usize> = (0..sample.mask_nanos.len()).collect();
            idx.sort_by(|&a, &b| sample.mask_nanos[b].cmp(&sample.mask_nanos[a]));
            for &k in idx.iter().take(opts.slowest) {
                let prefix = String::from_utf8_lossy(&g.vocab().decode(&sample.tokens[..k])).into_owned();
                slow.push((sample.mask_nanos[k], s.label.clone(), cname.to_string(), prefix));
            }
            slow.sort_by_key(|s| std::cmp::Reverse(s.0));
            slow.truncate(opts.slowest);
        }
        r.mask_nanos.extend(&sample.mask_nanos);
        if !sample.terminated {
            continue;
        }
        finished += 1;
        r.finished += 1;
        match serde_json::from_str::<Value>(&text) {
            Err(e) => r.failures.push(fail("walk", vec![format!("not JSON: {e}")])),
            Ok(v) => {
                let mut why = judge.rejections(&v);
                // Validators keep the last of two equal keys: a declared
                // name must not come twice (README, output format).
                let mut names = ahash::AHashSet::new();
                property_names(&s.schema, &mut names);
                if let Some(k) = repeated_key(&text, &names) {
                    why.push(format!("declared name {k:?} twice in one object"));
                }
                if !why.is_empty() {
                    r.failures.push(fail("walk", why));
                }
            }
        }
    }
    if finished < opts.walks {
        r.short_configs += 1;
        r.short.push((s.label.clone(), cname.to_string(), finished));
    }
    r.slowest.extend(slow);
}

#[allow(clippy::too_many_arguments)]
fn mutate_config(
    s: &Subject,
    g: &Arc<CompiledGrammar>,
    judge: &Oracle,
    cname: &str,
    ws: Whitespace,
    seed0: u64,
    opts: &NetOptions,
    r: &mut NetReport,
) {
    if opts.mutants == 0 {
        return;
    }
    let mut rng = Rng::new(seed0 ^ 0x6d75_7461_6e74);
    for inst in s.valid.iter().take(4) {
        for _ in 0..opts.mutants {
            let Some(mutant) = mutate(inst, &s.schema, &mut rng) else { continue };
            r.mutants += 1;
            let text = match ws {
                Whitespace::Compact => serde_json::to_string(&mutant).unwrap_or_default(),
                Whitespace::Flexible { .. } => python_dumps(&mutant),
            };
            let mut m = g.matcher();
            if m.accept_bytes(text.as_bytes()).is_err() || !m.can_terminate() {
                continue;
            }
            r.mutants_accepted += 1;
            let why = judge.rejections(&mutant);
            if !why.is_empty() {
                r.failures.push(Failure {
                    label: s.label.clone(),
                    config: cname.to_string(),
                    seed: 0,
                    kind: "mutant".into(),
                    text,
                    why,
                });
            }
        }
    }
}

/// Paths to every value inside `v` (the root is the empty path).
fn value_paths(v: &Value, at: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(at.clone());
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(PathStep::Index(i));
                value_paths(x, at, out);
                at.pop();
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                at.push(PathStep::Key(k.clone()));
                value_paths(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Index(usize),
    Key(String),
}

fn at_path<'v>(v: &'v mut Value, path: &[PathStep]) -> Option<&'v mut Value> {
    let mut cur = v;
    for p in path {
        cur = match (p, cur) {
            (PathStep::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            (PathStep::Key(k), Value::Object(m)) => m.get_mut(k)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Property names the schema declares anywhere (candidates for added keys).
fn declared_names(schema: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > 8 || out.len() > 64 {
        return;
    }
    match schema {
        Value::Object(m) => {
            if let Some(Value::Object(p)) = m.get("properties") {
                out.extend(p.keys().cloned());
            }
            if let Some(Value::Array(r)) = m.get("required") {
                out.extend(r.iter().filter_map(|x| x.as_str().map(String::from)));
            }
            for x in m.values() {
                declared_names(x, out, depth + 1);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| declared_names(x, out, depth + 1)),
        _ => {}
    }
}

/// Every name under a `properties` of `schema`.
fn property_names(schema: &Value, out: &mut ahash::AHashSet<String>) {
    match schema {
        Value::Object(m) => {
            if let Some(Value::Object(p)) = m.get("properties") {
                out.extend(p.keys().cloned());
            }
            m.values().for_each(|x| property_names(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| property_names(x, out)),
        _ => {}
    }
}

/// A key among `names` that some object of the JSON `text` holds twice.
fn repeated_key(text: &str, names: &ahash::AHashSet<String>) -> Option<String> {
    let b = text.as_bytes();
    // Per open object its keys, per open array nothing.
    let mut open: Vec<Option<ahash::AHashSet<String>>> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'{' => open.push(Some(Default::default())),
            b'[' => open.push(None),
            b'}' | b']' => {
                open.pop();
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let raw = text.get(start..=i.min(b.len() - 1))?;
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if b.get(j) == Some(&b':') {
                    let key: String = serde_json::from_str(raw).ok()?;
                    if let Some(Some(keys)) = open.last_mut() {
                        if names.contains(&key) && !keys.insert(key.clone()) {
                            return Some(key);
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// One mutant of `inst`: at a random value inside it, one of: another
/// type, a key dropped, a key added (a declared name or a fresh one), a
/// bound broken (numbers moved far, strings lengthened or emptied, arrays
/// grown or emptied), wrapped in an array or an object, unwrapped.
fn mutate(inst: &Value, schema: &Value, rng: &mut Rng) -> Option<Value> {
    let mut paths = Vec::new();
    value_paths(inst, &mut Vec::new(), &mut paths);
    // The root a quarter of the time: the incident was a root wrapper.
    let path = if rng.chance(0.25) { Vec::new() } else { paths[rng.below(paths.len())].clone() };
    let mut out = inst.clone();
    let target = at_path(&mut out, &path)?;
    let others = [
        Value::Null,
        Value::Bool(true),
        Value::from(0),
        Value::from(-7),
        serde_json::json!(2.5),
        Value::from("x"),
        Value::from(""),
        Value::Array(vec![]),
        Value::Object(Map::new()),
    ];
    match rng.below(7) {
        0 => *target = others[rng.below(others.len())].clone(),
        1 => match target {
            Value::Object(m) if !m.is_empty() => {
                let k = m.keys().nth(rng.below(m.len()))?.clone();
                m.remove(&k);
            }
            Value::Array(a) if !a.is_empty() => {
                a.remove(rng.below(a.len()));
            }
            _ => return None,
        },
        2 => {
            let Value::Object(m) = target else { return None };
            let mut names = Vec::new();
            declared_names(schema, &mut names, 0);
            names.retain(|n| !m.contains_key(n));
            let key = if !names.is_empty() && rng.chance(0.7) {
                names[rng.below(names.len())].clone()
            } else {
                format!("zz_extra{}", rng.below(10))
            };
            m.insert(key, others[rng.below(others.len())].clone());
        }
        3 => match target {
            Value::Number(n) => {
                let f = n.as_f64()?;
                let big = [1e6, -1e6, 1e12, 0.5, -1.0, 1e-3][rng.below(6)];
                let moved = if rng.chance(0.5) { f + big } else { f * 1000.0 + 1.0 };
                *target = if moved.fract() == 0.0 && moved.abs() < 9e15 {
                    Value::from(moved as i64)
                } else {
                    serde_json::Number::from_f64(moved).map(Value::Number)?
                };
            }
            Value::String(x) => {
                if rng.chance(0.5) {
                    x.clear()
                } else {
                    let more = x.repeat(3) + "Zz9 !";
                    *x = more;
                }
            }
            Value::Array(a) => {
                if rng.chance(0.5) {
                    a.clear()
                } else if let Some(first) = a.first().cloned() {
                    for _ in 0..3 {
                        a.push(first.clone());
                    }
                } else {
                    a.push(Value::Null)
                }
            }
            _ => return None,
        },
        4 => *target = Value::Array(vec![target.clone()]),
        5 => {
            let mut names = Vec::new();
            declared_names(schema, &mut names, 0);
            let key = if names.is_empty() { "value".to_string() } else { names[rng.below(names.len())].clone() };
            let mut m = Map::new();
            m.insert(key, target.clone());
            *target = Value::Object(m);
        }
        _ => {
            let inner = match target {
                Value::Array(a) if !a.is_empty() => a[rng.below(a.len())].clone(),
                Value::Object(m) if !m.is_empty() => m.values().nth(rng.below(m.len()))?.clone(),
                _ => return None,
            };
            *target = inner;
        }
    }
    (out != *inst).then_some(out)
}

/// Runs the net over many subjects in parallel (rayon), summing reports.
/// `progress` is called after each subject with the number done.
pub fn run_all(
    subjects: &[Subject],
    vocab: &Arc<Vocabulary>,
    opts: &NetOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> NetReport {
    use rayon::prelude::*;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let reports: Vec<NetReport> = subjects
        .par_iter()
        .map(|s| {
            let r = run_subject(s, vocab, opts);
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            r
        })
        .collect();
    let mut total = NetReport::default();
    for r in reports {
        total.absorb(r, 20);
    }
    total
}

/// `../shared/corpora`-style folders that hold subjects, for the CLI's
/// defaults: the MaskBench data and both test-suite drafts under `root`.
pub fn corpus_folders(root: &Path) -> Vec<PathBuf> {
    ["maskbench/data", "json-schema-test-suite/draft2020-12", "json-schema-test-suite/draft7"]
        .iter()
        .map(|p| root.join(p))
        .filter(|p| p.is_dir())
        .collect()
}
