//! Conformance runners over published data: MaskBench (JSONSchemaBench
//! schemas with valid and invalid instances) and the official
//! JSON-Schema-Test-Suite. Used by the CLI (`grammask maskbench`,
//! `grammask test-suite`) and by the guarding integration tests.
//!
//! MaskBench's method: serialize each instance like Python's
//! `json.dumps(data)` (separators `", "` and `": "`, non-ASCII kept, the
//! instance's own key order), tokenize it canonically, and for each token
//! compute the mask and commit the token. A valid instance must be accepted
//! to the end (and the output must then be complete); an invalid one must be
//! rejected at some token (or be incomplete at the end). A schema *passes*
//! when it compiles and all its instances are judged right.

use crate::{CompiledGrammar, Compiler, Config, Vocabulary, Whitespace};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Canonical tokenization of text, as the tokenizer itself does it.
pub enum Encoder {
    /// A tiktoken-rs encoding.
    Tiktoken(&'static tiktoken_rs::CoreBPE),
    /// A Hugging Face tokenizer.
    Hf(Box<tokenizers::Tokenizer>),
}

impl Encoder {
    /// Loads the encoder of a `tokenizer.json`.
    pub fn from_tokenizer_json(path: &Path) -> Result<Encoder, String> {
        tokenizers::Tokenizer::from_file(path).map(|t| Encoder::Hf(Box::new(t))).map_err(|e| e.to_string())
    }
    /// Token ids of `s` (no special tokens added).
    pub fn encode(&self, s: &str) -> Vec<u32> {
        match self {
            Encoder::Tiktoken(b) => b.encode_ordinary(s),
            Encoder::Hf(t) => t.encode(s, false).map(|e| e.get_ids().to_vec()).unwrap_or_default(),
        }
    }
}

/// Python `json.dumps(v)` (default separators, `ensure_ascii=False`).
pub fn python_dumps(v: &Value) -> String {
    let mut out = String::new();
    dumps(v, &mut out);
    out
}

fn dumps(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                out.push_str(&n.to_string());
            } else {
                out.push_str(&python_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\u{8}' => out.push_str("\\b"),
                    '\u{c}' => out.push_str("\\f"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dumps(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dumps(&Value::String(k.clone()), out);
                out.push_str(": ");
                dumps(x, out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation
/// when the exponent is below -4 or at least 16.
pub fn python_float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let e = format!("{f:e}"); // e.g. "-1.25e-5"
    let (mant, exp) = e.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("exponent");
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if neg { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits.clone() };
        return format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let point = exp + 1; // digits before the point
    if point <= 0 {
        format!("{sign}0.{}{}", "0".repeat((-point) as usize), digits)
    } else if point as usize >= digits.len() {
        format!("{sign}{}{}.0", digits, "0".repeat(point as usize - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..point as usize], &digits[point as usize..])
    }
}

/// Feeds `text` token by token (mask, then commit). Returns whether every
/// token was allowed and the output is then complete, and the mask times.
pub fn check_instance(g: &Arc<CompiledGrammar>, enc: &Encoder, text: &str, nanos: &mut Vec<u64>) -> bool {
    let vocab = g.vocab().clone();
    let mut m = g.matcher();
    let mut mask = vec![0u32; vocab.mask_words()];
    for t in enc.encode(text) {
        let t0 = Instant::now();
        if m.fill_next_token_bitmask(&mut mask).is_err() {
            return false;
        }
        nanos.push(t0.elapsed().as_nanos() as u64);
        if (t as usize) >= vocab.size() || mask[t as usize / 32] >> (t % 32) & 1 == 0 {
            return false;
        }
        if m.accept_token(t).is_err() {
            return false;
        }
    }
    m.can_terminate()
}

/// JSON-Schema-Test-Suite files whose expectations contradict grammask's
/// output contract, with why; the runners leave them out (and say so).
pub const SUITE_EXCLUDED: &[(&str, &str)] = &[
    ("format.json", "the core suite treats `format` as an annotation; grammask asserts formats (see optional/format)"),
    ("vocabulary.json", "custom metaschemas without the validation vocabulary"),
];

/// The outcome of one schema.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// File (or group) name.
    pub name: String,
    /// `Err(keyword or kind)` when the schema did not compile.
    pub compiled: Result<(), String>,
    /// Compile time, ms.
    pub compile_ms: f64,
    /// Heap bytes of the compiled grammar after all its instances ran
    /// (tables plus the masks cached along the way).
    pub memory_bytes: usize,
    /// Valid instances rejected.
    pub validation_errors: usize,
    /// Invalid instances accepted.
    pub invalidation_errors: usize,
    /// Instances judged.
    pub instances: usize,
    /// Mask times, ns.
    pub mask_nanos: Vec<u64>,
    /// Descriptions of the wrong verdicts.
    pub failures: Vec<String>,
}

impl Outcome {
    /// Compiled and every instance judged right.
    pub fn passed(&self) -> bool {
        self.compiled.is_ok() && self.validation_errors == 0 && self.invalidation_errors == 0
    }
}

fn compile_err_key(e: &crate::CompileError) -> String {
    match e.keyword() {
        Some(k) => k.to_string(),
        None => format!("{:?}", e.kind()),
    }
}

/// Runs one schema with its instances `(data, valid)`.
pub fn run_schema(
    name: &str,
    schema: &Value,
    tests: &[(Value, bool)],
    vocab: &Arc<Vocabulary>,
    enc: &Encoder,
    cfg: &Config,
    serialize: &dyn Fn(&Value, &Value) -> String,
) -> Outcome {
    let t0 = Instant::now();
    let compiled = Compiler::with_config(cfg.clone()).compile(schema, vocab.clone());
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    let mut o = Outcome {
        name: name.to_string(),
        compiled: Ok(()),
        compile_ms,
        memory_bytes: 0,
        validation_errors: 0,
        invalidation_errors: 0,
        instances: 0,
        mask_nanos: Vec::new(),
        failures: Vec::new(),
    };
    let g = match compiled {
        Ok(g) => g,
        Err(e) => {
            o.compiled = Err(compile_err_key(&e));
            o.failures.push(format!("compile error: {e}"));
            return o;
        }
    };
    for (data, valid) in tests {
        let text = serialize(schema, data);
        let accepted = check_instance(&g, enc, &text, &mut o.mask_nanos);
        o.instances += 1;
        if *valid && !accepted {
            o.validation_errors += 1;
            o.failures.push(format!("valid instance rejected: {text}"));
        } else if !*valid && accepted {
            o.invalidation_errors += 1;
            o.failures.push(format!("INVALID instance accepted: {text}"));
        }
    }
    o.memory_bytes = g.memory_bytes();
    o
}

/// The compile configuration MaskBench needs: `json.dumps` puts one space
/// after `,` and `:`.
pub fn maskbench_config() -> Config {
    Config::new().whitespace(Whitespace::Flexible { max_run: 1 })
}

/// Runs one MaskBench file.
pub fn maskbench_file(path: &Path, vocab: &Arc<Vocabulary>, enc: &Encoder, cfg: &Config) -> Outcome {
    let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let parsed: Result<Value, String> = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
    let v = match parsed {
        Ok(v) => v,
        Err(e) => {
            return Outcome {
                name,
                compiled: Err(format!("unreadable file: {e}")),
                compile_ms: 0.0,
                memory_bytes: 0,
                validation_errors: 0,
                invalidation_errors: 0,
                instances: 0,
                mask_nanos: vec![],
                failures: vec![],
            }
        }
    };
    let tests: Vec<(Value, bool)> = v["tests"]
        .as_array()
        .map(|a| a.iter().map(|t| (t["data"].clone(), t["valid"].as_bool().unwrap_or(false))).collect())
        .unwrap_or_default();
    run_schema(&name, &v["schema"], &tests, vocab, enc, cfg, &|_, d| python_dumps(d))
}

/// Serializes `data` in grammask's output format for `schema`: compact, with
/// object keys reordered as the grammar emits them (declared properties in
/// schema order, then the rest in their original order). Used for the
/// JSON-Schema-Test-Suite, whose instances list keys in arbitrary order.
pub fn output_format(schema: &Value, data: &Value) -> String {
    serde_json::to_string(&crate::json_schema::canonical_numbers(&reorder(schema, schema, data, 0))).unwrap_or_default()
}

fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    let mut s = s;
    for _ in 0..16 {
        match s.get("$ref").and_then(|r| r.as_str()).and_then(|r| r.strip_prefix('#')) {
            Some(p) => match root.pointer(p) {
                Some(t) => s = t,
                None => break,
            },
            None => break,
        }
    }
    s
}

fn reorder(root: &Value, schema: &Value, data: &Value, depth: usize) -> Value {
    if depth > 64 {
        return data.clone();
    }
    let s = resolve(root, schema);
    // A literal (`const`/`enum`) is emitted as written: use its key order.
    if data.is_object() {
        let lits = s.get("const").into_iter().chain(s.get("enum").and_then(|e| e.as_array()).into_iter().flatten());
        for l in lits {
            if l.is_object() && crate::json_schema::merge::json_eq(l, data) {
                return l.clone();
            }
        }
    }
    match data {
        Value::Object(m) => {
            let mut order: Vec<String> = Vec::new();
            let mut subs: Vec<&Value> = vec![s];
            for kw in ["anyOf", "oneOf", "allOf"] {
                if let Some(Value::Array(b)) = s.get(kw) {
                    subs.extend(b.iter().map(|x| resolve(root, x)));
                }
            }
            for sub in &subs {
                if let Some(Value::Object(p)) = sub.get("properties") {
                    for k in p.keys() {
                        if !order.contains(k) {
                            order.push(k.clone());
                        }
                    }
                }
                if let Some(Value::Array(r)) = sub.get("required") {
                    for k in r.iter().filter_map(|k| k.as_str()) {
                        if !order.iter().any(|o| o == k) {
                            order.push(k.to_string());
                        }
                    }
                }
            }
            let sub_for = |k: &str| -> Value {
                for sub in &subs {
                    if let Some(p) = sub.get("properties").and_then(|p| p.get(k)) {
                        return p.clone();
                    }
                }
                s.get("additionalProperties").cloned().unwrap_or(Value::Bool(true))
            };
            let mut out = serde_json::Map::new();
            for k in order.iter().filter(|k| m.contains_key(*k)).chain(m.keys().filter(|k| !order.contains(k))) {
                out.insert(k.clone(), reorder(root, &sub_for(k), &m[k], depth + 1));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| {
                    let sub = s
                        .get("prefixItems")
                        .and_then(|p| p.get(i))
                        .or_else(|| s.get("items").filter(|it| it.is_object() || it.is_boolean()))
                        .cloned()
                        .unwrap_or(Value::Bool(true));
                    reorder(root, &sub, x, depth + 1)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The `.json` files of `dir` (with its subfolders when `recursive`),
/// sorted.
pub fn json_files(dir: &Path, recursive: bool) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.is_dir() {
                if recursive {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A deterministic sample of `n` files (every k-th), or all of them.
pub fn sample_files(files: Vec<std::path::PathBuf>, n: Option<usize>) -> Vec<std::path::PathBuf> {
    match n {
        Some(n) if n < files.len() => {
            let step = files.len() as f64 / n as f64;
            (0..n).map(|i| files[(i as f64 * step) as usize].clone()).collect()
        }
        _ => files,
    }
}

/// The `$schema` URI a test-suite folder (`draft7`, `draft2020-12`) names.
pub(crate) fn draft_uri(path: &Path) -> Option<&'static str> {
    let p = path.to_string_lossy();
    if p.contains("draft7") {
        Some("http://json-schema.org/draft-07/schema#")
    } else if p.contains("draft2020-12") {
        Some("https://json-schema.org/draft/2020-12/schema")
    } else {
        None
    }
}

/// Runs one JSON-Schema-Test-Suite file: one [`Outcome`] per group.
pub fn test_suite_file(path: &Path, vocab: &Arc<Vocabulary>, enc: &Encoder, cfg: &Config) -> Vec<Outcome> {
    let file = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![];
    };
    let Ok(Value::Array(groups)) = serde_json::from_str::<Value>(&text) else {
        return vec![];
    };
    groups
        .iter()
        .map(|g| {
            let name = format!("{file}: {}", g["description"].as_str().unwrap_or(""));
            let tests: Vec<(Value, bool)> = g["tests"]
                .as_array()
                .map(|a| a.iter().map(|t| (t["data"].clone(), t["valid"].as_bool().unwrap_or(false))).collect())
                .unwrap_or_default();
            // The suite's folder names the draft; say it in the schema.
            let mut schema = g["schema"].clone();
            if let (Some(d), Value::Object(m)) = (draft_uri(path), &mut schema) {
                m.entry("$schema").or_insert(Value::String(d.into()));
            }
            run_schema(&name, &schema, &tests, vocab, enc, cfg, &output_format)
        })
        .collect()
}

/// Totals over many outcomes, printed as the MaskBench table.
#[derive(Default, Debug, Clone)]
pub struct Summary {
    /// Schemas run.
    pub schemas: usize,
    /// Schemas passing.
    pub passing: usize,
    /// Schemas that did not compile.
    pub compile_errors: usize,
    /// Compile errors by keyword (sorted, most first).
    pub compile_errors_by_keyword: Vec<(String, usize)>,
    /// Schemas with a valid instance rejected.
    pub schemas_with_validation_errors: usize,
    /// Valid instances rejected.
    pub validation_errors: usize,
    /// Invalid instances accepted.
    pub invalidation_errors: usize,
    /// Instances judged.
    pub instances: usize,
    /// Mask time percentiles µs: mean, p50, p90, p99, p99.9, max.
    pub mask_us: [f64; 6],
    /// Masks timed.
    pub masks: usize,
    /// Compile ms: p50, p90, p99, max.
    pub compile_ms: [f64; 4],
    /// Compiled-grammar memory, KiB: p50, p99, max (compiled schemas).
    pub memory_kib: [f64; 3],
}

impl Summary {
    /// Aggregates outcomes.
    pub fn of(outcomes: &[Outcome]) -> Summary {
        let mut s = Summary { schemas: outcomes.len(), ..Default::default() };
        let mut by_kw: std::collections::BTreeMap<String, usize> = Default::default();
        let mut nanos: Vec<u64> = Vec::new();
        let mut compile: Vec<f64> = Vec::new();
        let mut memory: Vec<f64> = Vec::new();
        for o in outcomes {
            s.passing += o.passed() as usize;
            match &o.compiled {
                Err(k) => {
                    s.compile_errors += 1;
                    *by_kw.entry(k.clone()).or_default() += 1;
                }
                Ok(()) => {
                    compile.push(o.compile_ms);
                    memory.push(o.memory_bytes as f64 / 1024.0);
                }
            }
            s.schemas_with_validation_errors += (o.validation_errors > 0) as usize;
            s.validation_errors += o.validation_errors;
            s.invalidation_errors += o.invalidation_errors;
            s.instances += o.instances;
            nanos.extend(&o.mask_nanos);
        }
        let mut kw: Vec<(String, usize)> = by_kw.into_iter().collect();
        kw.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        s.compile_errors_by_keyword = kw;
        nanos.sort_unstable();
        s.masks = nanos.len();
        if !nanos.is_empty() {
            let q = |p: f64| nanos[((nanos.len() as f64 * p) as usize).min(nanos.len() - 1)] as f64 / 1e3;
            s.mask_us = [
                nanos.iter().sum::<u64>() as f64 / nanos.len() as f64 / 1e3,
                q(0.5),
                q(0.9),
                q(0.99),
                q(0.999),
                *nanos.last().unwrap() as f64 / 1e3,
            ];
        }
        compile.sort_by(|a, b| a.total_cmp(b));
        if !compile.is_empty() {
            let q = |p: f64| compile[((compile.len() as f64 * p) as usize).min(compile.len() - 1)];
            s.compile_ms = [q(0.5), q(0.9), q(0.99), *compile.last().unwrap()];
        }
        memory.sort_by(|a, b| a.total_cmp(b));
        if !memory.is_empty() {
            let q = |p: f64| memory[((memory.len() as f64 * p) as usize).min(memory.len() - 1)];
            s.memory_kib = [q(0.5), q(0.99), *memory.last().unwrap()];
        }
        s
    }

    /// The table, as Markdown.
    pub fn table(&self) -> String {
        let pct = |n: usize| {
            if self.schemas == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.schemas as f64
            }
        };
        let mut t = String::new();
        t.push_str("| schemas | passing | compile errors | schemas w/ validation errors | validation errors (valid rejected) | invalidation errors (invalid accepted) | instances |\n");
        t.push_str("|---|---|---|---|---|---|---|\n");
        t.push_str(&format!(
            "| {} | {} ({:.1}%) | {} ({:.1}%) | {} ({:.2}%) | {} | {} | {} |\n\n",
            self.schemas,
            self.passing,
            pct(self.passing),
            self.compile_errors,
            pct(self.compile_errors),
            self.schemas_with_validation_errors,
            pct(self.schemas_with_validation_errors),
            self.validation_errors,
            self.invalidation_errors,
            self.instances
        ));
        let m = self.mask_us;
        t.push_str(&format!(
            "mask µs over {} masks: mean {:.1}, p50 {:.1}, p90 {:.1}, p99 {:.1}, p99.9 {:.1}, max {:.1}\n",
            self.masks, m[0], m[1], m[2], m[3], m[4], m[5]
        ));
        let c = self.compile_ms;
        t.push_str(&format!("compile ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}\n", c[0], c[1], c[2], c[3]));
        let mk = self.memory_kib;
        t.push_str(&format!(
            "compiled grammar KiB (tables + masks cached by its runs): p50 {:.0}, p99 {:.0}, max {:.0}\n",
            mk[0], mk[1], mk[2]
        ));
        if !self.compile_errors_by_keyword.is_empty() {
            t.push_str("\ncompile errors by keyword: ");
            let parts: Vec<String> =
                self.compile_errors_by_keyword.iter().take(15).map(|(k, n)| format!("{k} {n}")).collect();
            t.push_str(&parts.join(", "));
            t.push('\n');
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_matches_repr() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456.789, "123456.789"),
            (-2.5, "-2.5"),
            (1e15, "1000000000000000.0"),
            (1.2345e-7, "1.2345e-07"),
            (3e100, "3e+100"),
        ] {
            assert_eq!(python_float(f), s);
        }
        let v: Value = serde_json::from_str(r#"{"a": [1, 2.5, "x\"y\n\u0001é"], "b": {}, "c": null}"#).unwrap();
        assert_eq!(python_dumps(&v), r#"{"a": [1, 2.5, "x\"y\n\u0001é"], "b": {}, "c": null}"#);
    }
}
