//! Shared test helpers: corpora, vocabularies (cl100k always; the shared
//! tokenizers when present), canonical encoders, the independent validator,
//! random segmentations and a schema-driven instance generator.
#![allow(dead_code)]

use grammask::{CompiledGrammar, Compiler, Config, Rng, Tiktoken, Vocabulary};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Case count for heavy property tests: `GRAMMASK_CASES`, default 6.
pub fn cases() -> u32 {
    std::env::var("GRAMMASK_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(6)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd`, failing the test with its output when it fails.
pub fn run_ok(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| repo().join("target"))
}

/// `../shared/corpora` (override: `GRAMMASK_SHARED_CORPORA`), if present.
pub fn shared_corpora() -> Option<PathBuf> {
    let p = std::env::var("GRAMMASK_SHARED_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("../shared/corpora"));
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "NOTICE: shared corpora not found at {} (set GRAMMASK_SHARED_CORPORA); skipping those inputs",
            p.display()
        );
        None
    }
}

/// `corpora/schemas/*.json`, sorted by name.
pub fn corpus_schemas() -> &'static [(String, Value)] {
    static S: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    S.get_or_init(|| {
        let mut v: Vec<(String, Value)> = std::fs::read_dir(repo().join("corpora/schemas"))
            .expect("corpora/schemas")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                (name, v)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    })
}

pub struct Cases {
    pub valid: Vec<Value>,
    pub invalid: Vec<Value>,
}

pub fn corpus_cases(name: &str) -> Option<Cases> {
    let p = repo().join("corpora/cases").join(format!("{name}.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).ok()?).unwrap();
    Some(Cases {
        valid: v["valid"].as_array().cloned().unwrap_or_default(),
        invalid: v["invalid"].as_array().cloned().unwrap_or_default(),
    })
}

type Encoder = Box<dyn Fn(&str) -> Option<Vec<u32>> + Send + Sync>;

pub struct Tok {
    pub name: String,
    pub vocab: Arc<Vocabulary>,
    /// Canonical encoding of a text as the tokenizer itself produces it
    /// (`None` when the tokenizer cannot encode it without adding bytes).
    pub encode: Encoder,
}

/// cl100k from tiktoken-rs, always.
pub fn cl100k() -> &'static Tok {
    static T: OnceLock<Tok> = OnceLock::new();
    T.get_or_init(|| Tok {
        name: "cl100k".into(),
        vocab: Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).unwrap()),
        encode: Box::new(|s| Some(tiktoken_rs::cl100k_base_singleton().encode_ordinary(s))),
    })
}

fn hf_tok(dir: PathBuf) -> Tok {
    let file = dir.join("tokenizer.json");
    let vocab = Arc::new(Vocabulary::from_tokenizer_json(&file).unwrap());
    let hf = tokenizers::Tokenizer::from_file(&file).unwrap();
    let v2 = vocab.clone();
    let encode: Encoder = Box::new(move |s: &str| {
        let ids = hf.encode(s, false).ok()?.get_ids().to_vec();
        if v2.decode(&ids) == s.as_bytes() {
            return Some(ids);
        }
        // SentencePiece prepends a space at the start of a text; the JSON
        // follows other text in real use, so encode it after a newline and
        // drop the newline's token when it stands alone.
        let ids = hf.encode(format!("\n{s}"), false).ok()?.get_ids().to_vec();
        for k in 1..ids.len().min(4) {
            if v2.decode(&ids[..k]).ends_with(b"\n") && v2.decode(&ids[k..]) == s.as_bytes() {
                return Some(ids[k..].to_vec());
            }
        }
        None
    });
    Tok { name: dir.file_name().unwrap().to_string_lossy().into_owned(), vocab, encode }
}

/// The shared tokenizers present under `shared/corpora/tokenizers`.
pub fn shared_tokenizers() -> &'static [Tok] {
    static T: OnceLock<Vec<Tok>> = OnceLock::new();
    T.get_or_init(|| {
        let Some(root) = shared_corpora() else {
            return vec![];
        };
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("tokenizers"))
            .map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.join("tokenizer.json").is_file()).collect())
            .unwrap_or_default();
        dirs.sort();
        dirs.into_iter().map(hf_tok).collect()
    })
}

/// Every tokenizer the suite runs on.
pub fn all_tokenizers() -> Vec<&'static Tok> {
    let mut v = vec![cl100k()];
    v.extend(shared_tokenizers().iter());
    v
}

pub fn compile(schema: &Value, tok: &Tok) -> Arc<CompiledGrammar> {
    Compiler::with_config(Config::new()).compile(schema, tok.vocab.clone()).unwrap_or_else(|e| panic!("{e}"))
}

pub fn validator(schema: &Value) -> jsonschema::Validator {
    // Formats are asserted, so that grammask's format languages must be
    // subsets of what the validator accepts.
    jsonschema::options().should_validate_formats(true).build(schema).expect("oracle accepts the schema")
}

/// Whether `boon` (the second validator) accepts `v` under `schema`, with
/// formats asserted as for the first.
pub fn boon_valid(schema: &Value, v: &Value) -> bool {
    let mut c = boon::Compiler::new();
    c.enable_format_assertions();
    let loc = "http://grammask.invalid/schema.json";
    c.add_resource(loc, schema.clone()).expect("boon resource");
    let mut all = boon::Schemas::new();
    let idx = c.compile(loc, &mut all).expect("boon compiles");
    all.validate(v, idx).is_ok()
}

/// A table row for a run-time check: `text` (JSON) fed whole and byte by
/// byte is accepted as a complete instance exactly when `want`, and both
/// validators agree with the row.
pub fn judged_as_validators_judge(schema: &Value, vocab: &Arc<Vocabulary>, name: &str, text: &str, want: bool) {
    let g = Compiler::new().compile(schema, vocab.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut m = g.matcher();
    assert_eq!(m.accept_bytes(text.as_bytes()).is_ok() && m.can_terminate(), want, "{name}: {text}");
    let mut m = g.matcher();
    let bytewise = text.bytes().all(|b| m.accept_bytes(&[b]).is_ok()) && m.can_terminate();
    assert_eq!(bytewise, want, "{name}: {text} byte by byte");
    let v: Value = serde_json::from_str(text).expect("JSON text");
    assert_eq!(validator(schema).is_valid(&v), want, "{name}: {text} per jsonschema");
    assert_eq!(boon_valid(schema, &v), want, "{name}: {text} per boon");
}

/// A random split of `bytes` into vocabulary tokens, or `None` if some
/// position has no token.
pub fn random_segmentation(vocab: &Vocabulary, bytes: &[u8], rng: &mut Rng) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let opts = vocab.trie().prefix_tokens(&bytes[pos..]);
        if opts.is_empty() {
            return None;
        }
        let (len, t) = opts[rng.below(opts.len())];
        out.push(t);
        pos += len;
    }
    Some(out)
}

pub fn bit(mask: &[u32], t: u32) -> bool {
    mask[t as usize / 32] >> (t % 32) & 1 == 1
}

/// Generates a valid instance of `schema` in grammask's output format
/// (properties in schema order, additional ones after), independent of the
/// engine. Supports the keywords the engine supports.
pub fn generate(schema: &Value, root: &Value, rng: &mut Rng, depth: usize) -> Option<Value> {
    let m = match schema {
        Value::Bool(true) => return Some(gen_any(rng, depth)),
        Value::Bool(false) => return None,
        Value::Object(m) => m,
        _ => return None,
    };
    if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
        let target = root.pointer(&percent(r.trim_start_matches('#')))?;
        return generate(target, root, rng, depth + 1);
    }
    if let Some(all) = m.get("allOf").and_then(|b| b.as_array()) {
        // Shallow merge (test code; the oracle judges the result).
        let mut acc: serde_json::Map<String, Value> =
            m.iter().filter(|(k, _)| *k != "allOf").map(|(k, v)| (k.clone(), v.clone())).collect();
        for item in all {
            let mut item = item.clone();
            if let Some(r) = item.get("$ref").and_then(|r| r.as_str()) {
                item = root.pointer(&percent(r.trim_start_matches('#')))?.clone();
            }
            for (k, v) in item.as_object()? {
                match (k.as_str(), acc.get_mut(k)) {
                    ("properties", Some(Value::Object(p))) => p.extend(v.as_object()?.clone()),
                    ("required", Some(Value::Array(r))) => r.extend(v.as_array()?.clone()),
                    _ => {
                        acc.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        return generate(&Value::Object(acc), root, rng, depth + 1);
    }
    if let Some(b) = m.get("anyOf").and_then(|b| b.as_array()) {
        for _ in 0..4 {
            let pick = &b[rng.below(b.len())];
            if let Some(v) = generate(pick, root, rng, depth + 1) {
                return Some(v);
            }
        }
        return None;
    }
    if let Some(b) = m.get("oneOf").and_then(|b| b.as_array()) {
        // A value from one branch that no other branch accepts (branches
        // judged by the oracle, with the root's definitions in reach).
        let in_root = |branch: &Value| -> Value {
            let mut s = match branch {
                Value::Object(o) => o.clone(),
                other => return other.clone(),
            };
            for k in ["definitions", "$defs"] {
                if let Some(d) = root.get(k) {
                    s.entry(k).or_insert(d.clone());
                }
            }
            Value::Object(s)
        };
        let vals: Vec<jsonschema::Validator> = b.iter().map(|x| validator(&in_root(x))).collect();
        for _ in 0..8 {
            let pick = &b[rng.below(b.len())];
            if let Some(v) = generate(pick, root, rng, depth + 1) {
                if vals.iter().filter(|val| val.is_valid(&v)).count() == 1 {
                    return Some(v);
                }
            }
        }
        return None;
    }
    let types: Vec<String> = match m.get("type") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().map(|t| t.as_str().unwrap().to_string()).collect(),
        _ => vec!["null", "boolean", "object", "array", "number", "string"].into_iter().map(String::from).collect(),
    };
    if let Some(c) = m.get("const") {
        return Some(c.clone());
    }
    if let Some(e) = m.get("enum").and_then(|e| e.as_array()) {
        let ok: Vec<&Value> = e.iter().filter(|v| types.iter().any(|t| has_type(v, t))).collect();
        return ok.get(rng.below(ok.len().max(1))).map(|v| (*v).clone());
    }
    let t = if depth > 6 {
        // prefer leaves deep down
        types.iter().find(|t| !matches!(t.as_str(), "object" | "array")).unwrap_or(&types[0]).clone()
    } else {
        types[rng.below(types.len())].clone()
    };
    Some(match t.as_str() {
        "null" => Value::Null,
        "boolean" => Value::Bool(rng.chance(0.5)),
        "integer" | "number" if m.contains_key("minimum") || m.contains_key("maximum") => {
            // Inclusive bounds: a whole number between them (a window of
            // 2,000 from the one that is given).
            let lo = m.get("minimum").and_then(Value::as_f64).map(f64::ceil);
            let hi = m.get("maximum").and_then(Value::as_f64).map(f64::floor);
            let (lo, hi) = match (lo, hi) {
                (Some(l), Some(h)) => (l, h),
                (Some(l), None) => (l, l + 2000.0),
                (None, Some(h)) => (h - 2000.0, h),
                (None, None) => (-1000.0, 1000.0),
            };
            if hi < lo || hi - lo > 1e15 {
                return None;
            }
            Value::from(lo as i64 + rng.below((hi - lo) as usize + 1) as i64)
        }
        "integer" => Value::from(rng.below(2001) as i64 - 1000),
        "number" => {
            if rng.chance(0.5) {
                Value::from(rng.below(1000) as i64)
            } else {
                serde_json::Number::from_f64((rng.below(100000) as f64 - 50000.0) / 128.0).map(Value::Number)?
            }
        }
        "string" => {
            // A pattern or format the generator cannot follow: an example the
            // schema gives (the oracle still judges it).
            if let Some(ex) = m.get("examples").and_then(|e| e.as_array()).filter(|e| !e.is_empty()) {
                return Some(ex[rng.below(ex.len())].clone());
            }
            let mut s: Vec<char> = gen_string(rng).chars().collect();
            let min = m.get("minLength").and_then(|x| x.as_u64()).unwrap_or(0) as usize;
            let max = m.get("maxLength").and_then(|x| x.as_u64()).map(|x| x as usize);
            while s.len() < min {
                s.push('a');
            }
            if let Some(max) = max {
                s.truncate(max);
            }
            Value::String(s.into_iter().collect())
        }
        "object" => {
            let mut out = serde_json::Map::new();
            let required: Vec<&str> = m
                .get("required")
                .and_then(|r| r.as_array())
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            let empty = serde_json::Map::new();
            let props = m.get("properties").and_then(|p| p.as_object()).unwrap_or(&empty);
            let additional = m.get("additionalProperties").cloned().unwrap_or(Value::Bool(true));
            for (k, s) in props {
                if required.contains(&k.as_str()) || (depth < 5 && rng.chance(0.5)) {
                    match generate(s, root, rng, depth + 1) {
                        Some(v) => {
                            out.insert(k.clone(), v);
                        }
                        None if required.contains(&k.as_str()) => return None,
                        None => {}
                    }
                }
            }
            for r in &required {
                if !props.contains_key(*r) {
                    out.insert(r.to_string(), generate(&additional, root, rng, depth + 1)?);
                }
            }
            if additional != Value::Bool(false) && depth < 4 && rng.chance(0.3) {
                let k = format!("x{}", rng.below(100));
                if !props.contains_key(&k) && !out.contains_key(&k) {
                    if let Some(v) = generate(&additional, root, rng, depth + 1) {
                        out.insert(k, v);
                    }
                }
            }
            // dependentRequired (and draft-7 name lists): a member present
            // brings the names it needs.
            for kw in ["dependentRequired", "dependencies"] {
                let Some(deps) = m.get(kw).and_then(|d| d.as_object()) else { continue };
                for _ in 0..2 {
                    for (a, names) in deps {
                        let Some(names) = names.as_array() else { continue };
                        if !out.contains_key(a) {
                            continue;
                        }
                        for n in names.iter().filter_map(|n| n.as_str()) {
                            if !out.contains_key(n) {
                                let s = props.get(n).unwrap_or(&additional);
                                out.insert(n.to_string(), generate(s, root, rng, depth + 1)?);
                            }
                        }
                    }
                }
            }
            // Members in a random order: the default PropertyOrder::Any
            // accepts any order up to 10 declared properties, and up to 24
            // without maxProperties or a minProperties past the required.
            let min_props = m.get("minProperties").and_then(|x| x.as_u64()).unwrap_or(0) as usize;
            let shuffles = props.len() <= 10
                || (props.len() <= 24 && m.get("maxProperties").is_none() && min_props <= required.len());
            if shuffles && rng.chance(0.5) {
                let mut items: Vec<(String, Value)> = out.into_iter().collect();
                for i in (1..items.len()).rev() {
                    items.swap(i, rng.below(i + 1));
                }
                out = items.into_iter().collect();
            }
            Value::Object(out)
        }
        "array" => {
            let min = m.get("minItems").and_then(|x| x.as_u64()).unwrap_or(0) as usize;
            let max = m.get("maxItems").and_then(|x| x.as_u64()).map(|x| x as usize);
            let (prefix, rest) = match (m.get("prefixItems"), m.get("items")) {
                (_, Some(Value::Array(p))) => {
                    (p.clone(), m.get("additionalItems").cloned().unwrap_or(Value::Bool(true)))
                }
                (Some(Value::Array(p)), it) => (p.clone(), it.cloned().unwrap_or(Value::Bool(true))),
                (None, it) => (vec![], it.cloned().unwrap_or(Value::Bool(true))),
                _ => return None,
            };
            let mut cap = max.unwrap_or(min + 4);
            if rest == Value::Bool(false) {
                cap = cap.min(prefix.len());
            }
            if cap < min {
                return None;
            }
            let n = if depth > 5 { min } else { min + rng.below(cap - min + 1).min(4) };
            let mut out = Vec::new();
            for i in 0..n {
                let s = if i < prefix.len() { &prefix[i] } else { &rest };
                out.push(generate(s, root, rng, depth + 1)?);
            }
            // `contains`: the items it asks for, from its own schema, after
            // the prefix (the oracle drops what breaks `items`).
            if let Some(c) = m.get("contains") {
                let need = m.get("minContains").and_then(|x| x.as_u64()).unwrap_or(1) as usize;
                // Both schemas' keywords side by side (enough for the
                // corpus: `contains` without a `type` takes the items').
                let both = match (&rest, c) {
                    (Value::Object(r), Value::Object(cm)) => {
                        let mut b = r.clone();
                        b.extend(cm.iter().map(|(k, v)| (k.clone(), v.clone())));
                        Value::Object(b)
                    }
                    _ => c.clone(),
                };
                while out.len() < prefix.len().min(cap) {
                    out.push(generate(&prefix[out.len()], root, rng, depth + 1)?);
                }
                for j in 0..need {
                    let item = generate(&both, root, rng, depth + 1)?;
                    let at = prefix.len() + j;
                    if at < out.len() {
                        out[at] = item;
                    } else if out.len() < cap {
                        out.push(item);
                    }
                }
            }
            Value::Array(out)
        }
        _ => return None,
    })
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn percent(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() + 1 {
            if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

pub fn gen_string(rng: &mut Rng) -> String {
    const POOL: &[&str] =
        &["a", "b", "Z", " ", "0", "é", "日", "😀", "\"", "\\", "\n", "\t", "/", "{", "}", "\u{1}", "word", "_x"];
    (0..rng.below(8)).map(|_| POOL[rng.below(POOL.len())]).collect()
}

fn gen_any(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 4 } else { 6 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(0.5)),
        2 => Value::from(rng.below(100) as i64 - 50),
        3 => Value::String(gen_string(rng)),
        4 => Value::Array((0..rng.below(3)).map(|_| gen_any(rng, depth + 1)).collect()),
        _ => Value::Object((0..rng.below(3)).map(|i| (format!("k{i}"), gen_any(rng, depth + 1))).collect()),
    }
}

/// Compiled grammars cached per (tokenizer, schema name), so the per-state
/// mask cache is shared by every case of a test binary.
pub fn grammar_for(tok: &Tok, name: &str, schema: &Value) -> Arc<CompiledGrammar> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Cache = Mutex<HashMap<(String, String), Arc<CompiledGrammar>>>;
    static G: OnceLock<Cache> = OnceLock::new();
    let map = G.get_or_init(Default::default);
    let key = (tok.name.clone(), name.to_string());
    if let Some(g) = map.lock().unwrap().get(&key) {
        return g.clone();
    }
    let g = compile(schema, tok);
    map.lock().unwrap().insert(key, g.clone());
    g
}

/// Replays `tokens` (their first `steps`) through a fresh matcher of `g`:
/// before each, the mask must equal the byte-by-byte reference on `probes`
/// allowed tokens and `probes` random ones. Returns the bits compared.
#[allow(dead_code)]
pub fn masks_match_reference(
    g: &Arc<CompiledGrammar>,
    tokens: &[u32],
    steps: usize,
    probes: usize,
    rng: &mut Rng,
    what: &str,
) -> usize {
    let vocab = g.vocab();
    let mut r = g.matcher();
    let mut mask = vec![0u32; vocab.mask_words()];
    let mut checked = 0;
    for &t in tokens.iter().take(steps) {
        r.fill_next_token_bitmask(&mut mask).unwrap();
        let allowed = grammask::allowed_tokens(&mask);
        let mut probe: Vec<u32> = (0..probes).map(|_| allowed[rng.below(allowed.len())]).collect();
        probe.extend((0..probes).map(|_| rng.below(vocab.size()) as u32));
        for id in probe {
            let bit = mask[id as usize / 32] >> (id % 32) & 1 == 1;
            assert_eq!(bit, r.is_token_allowed_slow(id), "{what}: token {id}");
            checked += 1;
        }
        r.accept_token(t).unwrap();
    }
    checked
}

/// [`masks_along_text`] over every row of a table of `(schema name,
/// text, _)`, comparing every token with one of the `touch` bytes and a
/// random sample of the rest.
pub fn masks_along_table(schema: impl Fn(&str) -> Value, texts: &[(&str, &str, bool)], touch: &[u8], seed: u64) {
    let tok = cl100k();
    let mut rng = Rng::new(seed);
    let touching: Vec<u32> =
        (0..tok.vocab.size() as u32).filter(|&t| tok.vocab.token_bytes(t).iter().any(|b| touch.contains(b))).collect();
    for &(name, text, _) in texts {
        let g = Compiler::new().compile(&schema(name), tok.vocab.clone()).expect("compiles");
        masks_along_text(&g, tok, text, &touching, 300, &mut rng, name);
    }
}

/// Along `text` as `tok` splits it: before each token, the mask of `g`
/// leaves some token allowed, and equals the byte-by-byte reference on
/// `touching` and on `sample` random tokens; a masked token of the text
/// must be refused (and ends the walk), an allowed one accepted. `what`
/// names the case in messages.
#[allow(dead_code)]
pub fn masks_along_text(
    g: &Arc<CompiledGrammar>,
    tok: &Tok,
    text: &str,
    touching: &[u32],
    sample: usize,
    rng: &mut Rng,
    what: &str,
) {
    let mut m = g.matcher();
    for piece in (tok.encode)(text).expect("encodable") {
        let mask = m.compute_mask().expect("mask");
        let mut reference = m.clone();
        let any = (0..tok.vocab.size() as u32).any(|t| bit(&mask, t));
        assert!(any, "{what}: {text}: dead end after {:?}", String::from_utf8_lossy(m.output()));
        let randoms: Vec<u32> = (0..sample).map(|_| rng.below(tok.vocab.size()) as u32).collect();
        for &t in touching.iter().chain(&randoms) {
            assert_eq!(
                bit(&mask, t),
                reference.is_token_allowed_slow(t),
                "{what}: {text}: token {t} {:?} after {:?}",
                String::from_utf8_lossy(tok.vocab.token_bytes(t)),
                String::from_utf8_lossy(m.output())
            );
        }
        if !bit(&mask, piece) {
            assert!(m.clone().accept_token(piece).is_err(), "{what}: {text}: masked token accepted");
            break;
        }
        m.accept_token(piece).expect("allowed token accepted");
    }
}
