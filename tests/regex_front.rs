//! The regex front-end (`Compiler::compile_regex`), judged like the JSON
//! Schema one, on every tokenizer: the cases in `corpora/regex/cases.json`
//! (accepted outputs reachable under the canonical tokenization, rejected
//! ones never complete, bad patterns refused with their kind), random walks
//! through the masks whose finished outputs the `regex` crate must match
//! (reading the original pattern, not our translation), and masks equal to
//! the byte-by-byte reference along the walks.

mod common;

use common::*;
use grammask::{Compiler, Rng};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join("corpora/regex/cases.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

/// The independent oracle: the `regex` crate on the pattern as written,
/// anchored at both ends.
fn oracle(p: &str) -> regex::Regex {
    regex::Regex::new(&format!(r"\A(?:{p})\z")).unwrap()
}

#[test]
fn cases_are_reachable_or_refused() {
    let cases = cases();
    assert!(cases.len() >= 15);
    for tok in all_tokenizers() {
        for c in &cases {
            let p = c["pattern"].as_str().unwrap();
            let compiled = Compiler::new().compile_regex(p, tok.vocab.clone());
            if let Some(kind) = c["error"].as_str() {
                let e = compiled.expect_err(p);
                assert_eq!(format!("{:?}", e.kind()), kind, "{p}: {e}");
                assert_eq!(e.keyword(), Some("regex"), "{p}: {e}");
                continue;
            }
            let g = compiled.unwrap_or_else(|e| panic!("{p}: {e}"));
            let re = oracle(p);
            for s in c["accepted"].as_array().unwrap() {
                let s = s.as_str().unwrap();
                assert!(re.is_match(s), "{p}: the oracle rejects {s:?}, a bad case");
                let mut m = g.matcher();
                if let Some(ids) = (tok.encode)(s) {
                    m.accept_tokens(&ids).unwrap_or_else(|e| panic!("{} {p}: {s:?}: {e}", tok.name));
                    assert!(m.can_terminate(), "{} {p}: {s:?} cannot end", tok.name);
                }
                let mut m = g.matcher();
                m.accept_bytes(s.as_bytes()).unwrap();
                assert!(m.can_terminate());
            }
            for s in c["rejected"].as_array().unwrap() {
                let s = s.as_str().unwrap();
                assert!(!re.is_match(s), "{p}: the oracle accepts {s:?}, a bad case");
                let mut m = g.matcher();
                assert!(m.accept_bytes(s.as_bytes()).is_err() || !m.can_terminate(), "{p}: {s:?} accepted");
            }
            for s in c.get("rejected_by_ecma").and_then(Value::as_array).into_iter().flatten() {
                let s = s.as_str().unwrap();
                let mut m = g.matcher();
                assert!(m.accept_bytes(s.as_bytes()).is_err() || !m.can_terminate(), "{p}: {s:?} accepted");
            }
        }
    }
}

#[test]
fn random_walks_match_the_pattern_and_masks_match_the_reference() {
    let walks = std::env::var("GRAMMASK_REGEX_WALKS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let mut finished = 0;
    let mut checked = 0;
    for tok in all_tokenizers() {
        let vocab = &tok.vocab;
        for (ci, c) in cases().iter().enumerate() {
            if c.get("error").is_some() {
                continue;
            }
            let p = c["pattern"].as_str().unwrap();
            let g = Compiler::new().compile_regex(p, vocab.clone()).unwrap();
            let re = oracle(p);
            for w in 0..walks {
                let mut rng = Rng::new((ci * 1000 + w) as u64);
                let mut m = g.matcher();
                let s = grammask::random_walk(&mut m, &mut rng, 48).unwrap();
                if s.terminated {
                    finished += 1;
                    let out = m.output().to_vec();
                    let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{p}: output not UTF-8: {e}"));
                    assert!(re.is_match(&text), "{} {p}: output {text:?} does not match", tok.name);
                }
                // Replay the walk: every mask equals the byte-by-byte reference
                // on its allowed tokens and a sample of the others.
                let what = format!("{} {p}", tok.name);
                checked += masks_match_reference(&g, &s.tokens, 12, 64, &mut rng, &what);
            }
        }
    }
    assert!(finished >= 20, "only {finished} walks finished");
    assert!(checked >= 1000);
    eprintln!("{finished} finished walks matched; {checked} mask bits equal the reference");
}
