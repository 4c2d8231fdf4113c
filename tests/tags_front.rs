//! Structural tags (`Compiler::compile_structural_tag`), judged by an
//! oracle written here: it splits an output into free text and tags (at
//! each earliest trigger, trying every structure that begins with it),
//! parses each body with `serde_json` and validates it with `jsonschema`.
//!
//! On the requests in `corpora/tags/cases.json`, on every tokenizer:
//! accepted/rejected outputs (first checked against the oracle), typed
//! errors with their pointer into the request; random walks that enter a
//! tag (a random prefix of free text, then each structure's `begin`, then
//! the masks' choice) judged by the oracle, with masks equal to the
//! byte-by-byte reference; and completeness: text, a valid instance in its
//! tag, more text, accepted under canonical and random segmentations.

mod common;

use common::*;
use grammask::{Compiler, Rng};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join("corpora/tags/cases.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

/// Whether `text` is free text and tags as `request` says.
fn oracle(request: &Value, text: &str) -> bool {
    let structures = request["structures"].as_array().unwrap();
    let triggers: Vec<&str> = request["triggers"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let validators: Vec<jsonschema::Validator> = structures.iter().map(|s| validator(&s["schema"])).collect();
    fn from(text: &str, pos: usize, s: &[Value], triggers: &[&str], v: &[jsonschema::Validator]) -> bool {
        // The earliest end of a trigger that starts at or after `pos`.
        let rest = &text[pos..];
        let mut end = None;
        for e in 1..=rest.len() {
            if !rest.is_char_boundary(e) {
                continue;
            }
            if triggers.iter().any(|t| rest[..e].ends_with(t)) {
                end = Some(e);
                break;
            }
        }
        let Some(e) = end else { return true };
        for t in triggers.iter().filter(|t| rest[..e].ends_with(**t)) {
            for (si, st) in s.iter().enumerate() {
                let begin = st["begin"].as_str().unwrap();
                let Some(more) = begin.strip_prefix(t) else { continue };
                let after = &rest[e..];
                let Some(body) = after.strip_prefix(more) else { continue };
                // Every split of the body into a JSON value and the end.
                let end_str = st["end"].as_str().unwrap();
                for k in (1..=body.len()).filter(|&k| body.is_char_boundary(k)) {
                    let Some(tail) = body[k..].strip_prefix(end_str) else { continue };
                    let Ok(value) = serde_json::from_str::<Value>(&body[..k]) else { continue };
                    if v[si].is_valid(&value) && from(text, text.len() - tail.len(), s, triggers, v) {
                        return true;
                    }
                }
            }
        }
        false
    }
    from(text, 0, structures, &triggers, &validators)
}

#[test]
fn cases_are_accepted_rejected_or_refused() {
    let tok = cl100k();
    let cases = cases();
    assert!(cases.len() >= 8);
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let compiled = Compiler::new().compile_structural_tag(&c["request"], tok.vocab.clone());
        if let Some(kind) = c["error"].as_str() {
            let e = compiled.expect_err(name);
            assert_eq!(format!("{:?}", e.kind()), kind, "{name}: {e}");
            assert_eq!(e.pointer(), c["pointer"].as_str().unwrap(), "{name}: {e}");
            continue;
        }
        let g = compiled.unwrap_or_else(|e| panic!("{name}: {e}"));
        for (list, want) in [("accepted", true), ("rejected", false)] {
            for s in c[list].as_array().unwrap() {
                let s = s.as_str().unwrap();
                assert_eq!(oracle(&c["request"], s), want, "{name}: the oracle disagrees on {s:?}, a bad case");
                let mut m = g.matcher();
                let ok = m.accept_bytes(s.as_bytes()).is_ok() && m.can_terminate();
                assert_eq!(ok, want, "{name}: {s:?}");
            }
        }
    }
}

#[test]
fn walks_into_tags_are_valid_and_masks_match_the_reference() {
    let walks = std::env::var("GRAMMASK_TAGS_WALKS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let (mut finished, mut in_tag, mut checked) = (0, 0, 0);
    for tok in all_tokenizers() {
        let vocab = &tok.vocab;
        for (ci, c) in cases().iter().enumerate().filter(|(_, c)| c.get("error").is_none()) {
            let req = &c["request"];
            let g = Compiler::new().compile_structural_tag(req, vocab.clone()).unwrap();
            let structures = req["structures"].as_array().unwrap();
            for w in 0..walks {
                let mut rng = Rng::new((ci * 1000 + w) as u64);
                let mut m = g.matcher();
                // Some free text, then a tag's begin, then the masks decide.
                // Up to 3 free-text tokens, never a stop token.
                let mut tokens = Vec::new();
                let mut mask = vec![0u32; vocab.mask_words()];
                for _ in 0..rng.below(4) {
                    m.fill_next_token_bitmask(&mut mask).unwrap();
                    let allowed: Vec<u32> =
                        grammask::allowed_tokens(&mask).into_iter().filter(|&t| !vocab.is_stop(t)).collect();
                    let t = allowed[rng.below(allowed.len())];
                    m.accept_token(t).unwrap();
                    tokens.push(t);
                }
                let begin = structures[w % structures.len()]["begin"].as_str().unwrap();
                let ids = (tok.encode)(begin).unwrap();
                if m.accept_tokens(&ids).is_err() {
                    // The lead text's end and the begin can form a trigger
                    // earlier than the begin's own (e.g. text ending in
                    // `b` before `⟩!`); then the begin is not a tag's.
                    assert!(!oracle(req, &format!("{}{begin}", String::from_utf8_lossy(m.output()))));
                    continue;
                }
                tokens.extend(&ids);
                in_tag += 1;
                let s = grammask::random_walk(&mut m, &mut rng, 60).unwrap();
                tokens.extend(&s.tokens);
                let text = String::from_utf8(m.output().to_vec()).expect("UTF-8 output");
                if s.terminated {
                    finished += 1;
                    assert!(oracle(req, &text), "{} case {ci}: {text:?} is not valid", tok.name);
                }
                let what = format!("{} case {ci}", tok.name);
                checked += masks_match_reference(&g, &tokens, 24, 32, &mut rng, &what);
            }
        }
    }
    // Four requests, `walks` each, on every tokenizer: most walks enter a tag.
    let asked = all_tokenizers().len() * 4 * walks;
    assert!(
        in_tag * 4 >= asked * 3 && finished * 2 >= in_tag,
        "only {finished} finished walks, {in_tag} of {asked} entered a tag"
    );
    eprintln!("{in_tag} walks entered a tag, {finished} finished and valid; {checked} mask bits equal the reference");
}

#[test]
fn instances_in_tags_are_accepted_under_any_segmentation() {
    let mut accepted = 0;
    for tok in all_tokenizers() {
        for c in cases().iter().filter(|c| c.get("error").is_none()) {
            let req = &c["request"];
            let g = Compiler::new().compile_structural_tag(req, tok.vocab.clone()).unwrap();
            let mut rng = Rng::new(5);
            for inst in c["instances"].as_array().unwrap() {
                let s = &req["structures"][inst[0].as_u64().unwrap() as usize];
                let text = format!(
                    "Calling: {}{}{} and done.",
                    s["begin"].as_str().unwrap(),
                    serde_json::to_string(&inst[1]).unwrap(),
                    s["end"].as_str().unwrap()
                );
                assert!(oracle(req, &text), "bad case: {text:?}");
                let segs = [(tok.encode)(&text), random_segmentation(&tok.vocab, text.as_bytes(), &mut rng)];
                for ids in segs.into_iter().flatten() {
                    let mut m = g.matcher();
                    m.accept_tokens(&ids).unwrap_or_else(|e| panic!("{} {text:?}: {e}", tok.name));
                    assert!(m.can_terminate(), "{} {text:?} cannot end", tok.name);
                    accepted += 1;
                }
            }
        }
    }
    assert!(accepted >= 14);
}
