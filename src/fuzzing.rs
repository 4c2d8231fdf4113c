//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the stable
//! test that replays `fuzz/corpus/`, so that CI exercises the same code
//! without nightly. Not part of the supported API.

use crate::{Compiler, Config, Limits, Vocabulary};
use std::sync::{Arc, OnceLock};

/// A small vocabulary (every byte plus JSON-ish pieces and a stop token), so
/// that each fuzz input runs fast.
pub fn small_vocab() -> Arc<Vocabulary> {
    static V: OnceLock<Arc<Vocabulary>> = OnceLock::new();
    V.get_or_init(|| {
        let mut toks: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        for s in [
            "\"",
            "\",",
            "\":",
            "\"}",
            "\"]",
            "{\"",
            "},",
            "}]",
            "],",
            "]}",
            "true",
            "false",
            "null",
            "12",
            "0.",
            "e+",
            "\\n",
            "\\u00",
            "\\\"",
            "é",
            "name",
            "\"name\":",
            "[{",
            "{}",
            "[]",
            "1,",
            "\":\"",
            "  ",
        ] {
            toks.push(s.as_bytes().to_vec());
        }
        toks.push(b"<eos>".to_vec());
        let n = toks.len() as u32;
        Arc::new(Vocabulary::from_token_bytes(&toks, &[n - 1]).expect("valid"))
    })
    .clone()
}

fn fuzz_config() -> Config {
    Config::new().strict(false).limits(Limits {
        max_states: 20_000,
        max_terminal_bytes: 1 << 20,
        max_array_positions: 256,
        max_parse_states: 64,
        max_schema_depth: 32,
        max_unordered_properties: 14,
        keyset_mask_cache: 16,
        counted_strings_from: 12,
        max_string_states: 5_000,
    })
}

/// Arbitrary bytes as a schema: compiling must return `Ok` or a typed error,
/// and a compiled grammar must serve a few masks, never panic.
pub fn compile_schema(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vocab = small_vocab();
    let Ok(g) = Compiler::with_config(fuzz_config()).compile_str(text, vocab.clone()) else {
        return;
    };
    let mut m = g.matcher();
    for _ in 0..4 {
        let Ok(mask) = m.compute_mask() else { return };
        let Some(t) = crate::allowed_tokens(&mask).into_iter().next() else {
            return;
        };
        assert!(m.accept_token(t).is_ok(), "a token the mask allows was rejected");
    }
}

/// A corpus schema (chosen by the first byte) plus arbitrary token ids (two
/// bytes each): at every step the mask must agree with `accept_token`.
/// Pairs with the top bit set roll back instead; with the next bit set they
/// pick among the allowed tokens.
pub fn matcher_walk(schemas: &[serde_json::Value], data: &[u8]) {
    if schemas.is_empty() || data.is_empty() {
        return;
    }
    let vocab = small_vocab();
    let schema = &schemas[data[0] as usize % schemas.len()];
    // Compiled grammars are cached (with their mask caches) across inputs.
    type Cache = std::sync::Mutex<ahash::AHashMap<String, Arc<crate::CompiledGrammar>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = schema.to_string();
    let cached = CACHE.get_or_init(Default::default).lock().map(|c| c.get(&key).cloned()).ok().flatten();
    let g = match cached {
        Some(g) => g,
        None => {
            let Ok(g) = Compiler::with_config(fuzz_config()).compile(schema, vocab.clone()) else {
                return;
            };
            if let Ok(mut c) = CACHE.get_or_init(Default::default).lock() {
                c.insert(key, g.clone());
            }
            g
        }
    };
    let mut m = g.matcher();
    for pair in data[1..].chunks_exact(2) {
        let raw = u16::from_le_bytes([pair[0], pair[1]]);
        if raw & 0x8000 != 0 {
            let _ = m.rollback((raw & 3) as usize);
            continue;
        }
        let Ok(mask) = m.compute_mask() else { return };
        let t = if raw & 0x4000 != 0 {
            // pick among the allowed tokens, to get deep into the grammar
            let a = crate::allowed_tokens(&mask);
            if a.is_empty() {
                return;
            }
            a[(raw & 0x3fff) as usize % a.len()]
        } else {
            (raw as u32) % (vocab.size() as u32 + 3)
        };
        let allowed = (t as usize) < vocab.size() && mask[t as usize / 32] >> (t % 32) & 1 == 1;
        let accepted = m.accept_token(t).is_ok();
        assert_eq!(allowed, accepted, "mask and accept_token disagree on token {t}");
    }
}

/// Arbitrary bytes as a vocabulary file: a `tokenizer.json`, or after a
/// `tiktoken\n` line a tiktoken rank file. Loading returns a vocabulary or a
/// typed error; a loaded one answers for every id and serves a mask.
pub fn vocab_load(data: &[u8]) {
    let loaded = match data.strip_prefix(b"tiktoken\n") {
        Some(rest) => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            Vocabulary::from_tiktoken_text("fuzz", text, &[("<eos>", 0)], &["<eos>"])
        }
        None => Vocabulary::from_tokenizer_json_bytes(data, &[]),
    };
    let Ok(v) = loaded else { return };
    if v.size() > 1 << 20 {
        return;
    }
    for id in 0..v.size() as u32 + 2 {
        let kind = v.kind(id);
        assert_eq!(kind.is_some(), (id as usize) < v.size());
        let _ = v.token_bytes(id);
    }
    assert_eq!(v.mask_words(), v.size().div_ceil(32));
    let v = Arc::new(v);
    let Ok(g) = Compiler::with_config(fuzz_config()).compile_str(r#"{"type":"boolean"}"#, v.clone()) else { return };
    let mut m = g.matcher();
    let _ = m.compute_mask();
}

/// An arbitrary ECMA-262 `pattern` (the bytes before the first NUL; the
/// rest choose tokens): compiling returns a grammar or a typed error, and
/// every complete string a walk through the masks produces matches the
/// pattern as translated (in the reading every validator agrees on; its
/// leading lookaheads as languages of the value's start).
pub fn pattern(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(p) = std::str::from_utf8(&data[..split]) else { return };
    let choices = data.get(split + 1..).unwrap_or(&[]);
    let schema = serde_json::json!({"type": "string", "pattern": p});
    let cfg = fuzz_config().strict(true);
    let vocab = small_vocab();
    let Ok(g) = Compiler::with_config(cfg).compile(&schema, vocab) else { return };
    // The languages the value must and must not match (more than one
    // when the pattern opens with lookaheads).
    let Ok((must, must_not)) = crate::automata::strings::ecma_pattern(p, crate::automata::strings::Reading::Under)
    else {
        panic!("pattern {p:?} compiled but does not translate");
    };
    let build = |h: &regex_syntax::hir::Hir| regex_automata::meta::Regex::builder().build_from_hir(h).map_err(|_| ());
    let (Ok(must), Ok(must_not)) = (
        must.iter().map(build).collect::<Result<Vec<_>, _>>(),
        must_not.iter().map(build).collect::<Result<Vec<_>, _>>(),
    ) else {
        return;
    };
    let mut m = g.matcher();
    for &c in choices.iter().take(64) {
        if m.can_terminate() {
            let s: String = serde_json::from_slice(m.output()).expect("a complete JSON string");
            let ok = must.iter().all(|re| re.is_match(&s)) && !must_not.iter().any(|re| re.is_match(&s));
            assert!(ok, "output {s:?} does not match pattern {p:?}");
        }
        let Ok(mask) = m.compute_mask() else { return };
        let allowed: Vec<u32> = crate::allowed_tokens(&mask).into_iter().filter(|&t| !g.vocab().is_stop(t)).collect();
        if allowed.is_empty() {
            return;
        }
        let t = allowed[c as usize % allowed.len()];
        assert!(m.accept_token(t).is_ok(), "a token the mask allows was rejected");
    }
}

/// An arbitrary GBNF grammar (the bytes before the first NUL; the rest
/// choose tokens): compiling returns a grammar or a typed error carrying a
/// line and column, every token a mask allows is accepted, and a finished
/// output is UTF-8 (classes and `.` match code points).
pub fn gbnf(data: &[u8]) {
    grammar_text(data, |c, text, v| c.compile_gbnf(text, v));
}

/// An arbitrary Lark grammar, checked as [`gbnf`] checks GBNF.
pub fn lark(data: &[u8]) {
    grammar_text(data, |c, text, v| c.compile_lark(text, v));
}

type CompileText = fn(&Compiler, &str, Arc<Vocabulary>) -> Result<Arc<crate::CompiledGrammar>, crate::CompileError>;

fn grammar_text(data: &[u8], compile: CompileText) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(text) = std::str::from_utf8(&data[..split]) else { return };
    let choices = data.get(split + 1..).unwrap_or(&[]);
    let g = match compile(&Compiler::with_config(fuzz_config()), text, small_vocab()) {
        Ok(g) => g,
        Err(e) => {
            if let Some((line, col)) = e.position() {
                assert!(line >= 1 && col >= 1 && line <= text.lines().count().max(1) + 1, "{e}");
            }
            return;
        }
    };
    let mut m = g.matcher();
    for &c in choices.iter().take(64) {
        if m.can_terminate() {
            assert!(std::str::from_utf8(m.output()).is_ok(), "a finished output is not UTF-8");
        }
        let Ok(mask) = m.compute_mask() else { return };
        let allowed: Vec<u32> = crate::allowed_tokens(&mask).into_iter().filter(|&t| !g.vocab().is_stop(t)).collect();
        if allowed.is_empty() {
            return;
        }
        let t = allowed[c as usize % allowed.len()];
        match m.accept_token(t) {
            Ok(()) => {}
            // An ambiguous grammar may fan out past the parse-state limit
            // (documented; a typed error, and the matcher is unchanged).
            Err(crate::MatchError::TooAmbiguous { .. }) => return,
            Err(e) => panic!("a token the mask allows was rejected: {e}"),
        }
    }
}
