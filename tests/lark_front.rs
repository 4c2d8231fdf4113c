//! The Lark front-end (`Compiler::compile_lark`).
//!
//! Over the cases in `corpora/lark/cases.json` (each verdict also checked
//! against llguidance, the reference for the dialect, by
//! `python/tests/test_lark.py`) and the Lark grammars in
//! `shared/corpora/grammars/lark`, on every tokenizer:
//! - accepted/rejected strings, whole and under random segmentations, and
//!   the typed errors with their line and column (`stricter`: strings
//!   rejected here that llguidance accepts, the documented differences:
//!   `%ignore`d text after the last lexeme, and `common`'s strings holding a
//!   newline, as Lark's own definition does not);
//! - random walks through the masks: each mask equal to the byte-by-byte
//!   reference on a sample of tokens, each finished output accepted again
//!   by a fresh matcher fed byte by byte.
//!
//! The soundness oracle for walks is llguidance, in the Python tests.

mod common;

use common::*;
use grammask::{CompileErrorKind, Compiler, Config, Rng};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join("corpora/lark/cases.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// Grammars to walk: the compilable cases and the shared corpus's Lark
/// files (lenient, for `lark.lark`'s lazy quantifiers).
fn grammars() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = cases()
        .iter()
        .filter(|c| c.get("error").is_none())
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["grammar"].as_str().unwrap().to_string()))
        .collect();
    match shared_corpora() {
        Some(dir) => {
            for name in ["rfc.lark", "lark.lark"] {
                let p = dir.join("grammars/lark").join(name);
                out.push((name.to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
        None => eprintln!("notice: shared corpora absent; the corpus Lark grammars are not walked"),
    }
    out
}

fn lenient() -> Compiler {
    Compiler::with_config(Config::new().strict(false))
}

#[test]
fn cases_are_accepted_rejected_or_refused() {
    let cases = cases();
    assert!(cases.len() >= 20);
    let tok = cl100k();
    let mut rng = Rng::new(5);
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let src = c["grammar"].as_str().unwrap();
        let compiled = Compiler::new().compile_lark(src, tok.vocab.clone());
        if let Some(err) = c.get("error") {
            let e = compiled.err().unwrap_or_else(|| panic!("{name}: compiled"));
            assert_eq!(format!("{:?}", e.kind()), err["kind"].as_str().unwrap(), "{name}: {e}");
            assert_eq!(e.keyword(), Some("lark"), "{name}: {e}");
            if let Some(line) = err.get("line") {
                let want = (line.as_u64().unwrap() as usize, err["column"].as_u64().unwrap() as usize);
                assert_eq!(e.position(), Some(want), "{name}: {e}");
            }
            continue;
        }
        let g = compiled.unwrap_or_else(|e| panic!("{name}: {e}"));
        for (list, want) in [("accepted", true), ("rejected", false), ("stricter", false)] {
            for s in c.get(list).and_then(|v| v.as_array()).into_iter().flatten() {
                let s = s.as_str().unwrap();
                let mut m = g.matcher();
                let ok = m.accept_bytes(s.as_bytes()).is_ok() && m.can_terminate();
                assert_eq!(ok, want, "{name}: {s:?}");
                if want {
                    let ids = random_segmentation(&tok.vocab, s.as_bytes(), &mut rng).unwrap();
                    let mut m = g.matcher();
                    m.accept_tokens(&ids).unwrap_or_else(|e| panic!("{name}: {s:?} as {ids:?}: {e}"));
                    assert!(m.can_terminate(), "{name}: {s:?} as {ids:?} cannot end");
                }
            }
        }
    }
}

#[test]
fn corpus_grammars_compile_or_are_refused_by_name() {
    let Some(dir) = shared_corpora() else {
        eprintln!("notice: shared corpora absent; skipping the corpus Lark grammars");
        return;
    };
    let vocab = cl100k().vocab.clone();
    let rfc = std::fs::read_to_string(dir.join("grammars/lark/rfc.lark")).unwrap();
    Compiler::new().compile_lark(&rfc, vocab.clone()).unwrap();
    // Lark's grammar of itself reads strings with `/.*?/`: refused by
    // name when strict, read greedily and reported when lenient.
    let lark = std::fs::read_to_string(dir.join("grammars/lark/lark.lark")).unwrap();
    let e = Compiler::new().compile_lark(&lark, vocab.clone()).unwrap_err();
    assert_eq!(e.kind(), &CompileErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("non-greedy"), "{e}");
    let g = lenient().compile_lark(&lark, vocab).unwrap();
    assert!(g.relaxations().iter().any(|r| r.keyword.contains("lazy")), "{:?}", g.relaxations());
    // A grammar of itself (one string per line: under the greedy reading
    // a string runs to the last quote of its line; and no blank before a
    // regex, which its COMMENT terminal, `/\s*/ "//" …`, would take).
    let mut m = g.matcher();
    m.accept_bytes(b"start: NAME+ // names\nNAME:/[a-z]+/\n%ignore \" \"\n").unwrap();
    assert!(m.can_terminate());
}

#[test]
fn random_walks_match_the_reference_masks() {
    let walks = std::env::var("GRAMMASK_LARK_WALKS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let (mut finished, mut checked, mut too_ambiguous) = (0, 0, 0);
    let grammars = grammars();
    for tok in all_tokenizers() {
        for (gi, (name, src)) in grammars.iter().enumerate() {
            let g = lenient().compile_lark(src, tok.vocab.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            for w in 0..walks {
                let mut rng = Rng::new((gi * 1000 + w) as u64);
                let mut m = g.matcher();
                let s = match grammask::random_walk(&mut m, &mut rng, 48) {
                    Ok(s) => s,
                    // Read leniently, Lark's own grammar has string terminals
                    // that can hold anything but a newline: each open
                    // parenthesis multiplies the ways a lexeme can end, and
                    // deep nesting passes `Limits::max_parse_states` (a typed
                    // error, documented).
                    Err(grammask::MatchError::TooAmbiguous { .. }) if name == "lark.lark" => {
                        too_ambiguous += 1;
                        continue;
                    }
                    Err(e) => panic!("{} {name}: {e}", tok.name),
                };
                let out = m.output().to_vec();
                let what = format!("{} {name}", tok.name);
                if s.terminated {
                    finished += 1;
                    let mut again = g.matcher();
                    for b in &out {
                        again.accept_bytes(&[*b]).unwrap_or_else(|e| panic!("{what}: {out:?}: {e}"));
                    }
                    assert!(again.can_terminate(), "{what}: {out:?}");
                }
                checked += masks_match_reference(&g, &s.tokens, 8, 32, &mut rng, &what);
            }
        }
    }
    assert!(finished * 3 >= all_tokenizers().len() * walks, "only {finished} walks finished");
    eprintln!(
        "{finished} finished walks; {checked} mask bits equal the reference; {too_ambiguous} walks of lark.lark \
         too ambiguous"
    );
}
