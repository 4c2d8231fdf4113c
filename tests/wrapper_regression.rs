//! The incident that started the project: a schema whose top level requires
//! the `implementation` wrapper came back as the inner object alone. These
//! tests prove the wrapper is enforced on every tokenizer.

mod common;
use common::*;
use grammask::{allowed_tokens, random_walk, Compiler, Config, Rng};

fn schema() -> serde_json::Value {
    corpus_schemas().iter().find(|(n, _)| n == "implementation").expect("implementation.json").1.clone()
}

#[test]
fn stopping_is_never_allowed_before_the_wrapper_is_complete() {
    let schema = schema();
    let val = validator(&schema);
    for tok in all_tokenizers() {
        let g = grammar_for(tok, "implementation", &schema);
        let mut rng = Rng::new(42);
        for _ in 0..(cases() * 2) {
            let mut m = g.matcher();
            for _ in 0..400 {
                let mask = m.compute_mask().unwrap();
                let stop_allowed = tok.vocab.stop_tokens().iter().any(|&s| bit(&mask, s));
                if stop_allowed {
                    let v: serde_json::Value = serde_json::from_slice(m.output()).expect("stop allowed only on JSON");
                    assert!(v.get("implementation").is_some(), "{}: stop allowed without the wrapper", tok.name);
                    assert!(val.is_valid(&v));
                }
                let allowed = allowed_tokens(&mask);
                assert!(!allowed.is_empty());
                let t = if stop_allowed && rng.chance(0.5) {
                    tok.vocab.stop_tokens()[0]
                } else {
                    allowed[rng.below(allowed.len())]
                };
                m.accept_token(t).unwrap();
                if m.is_terminated() {
                    break;
                }
            }
        }
    }
}

#[test]
fn inner_object_alone_is_rejected_at_its_first_diverging_token() {
    let schema = schema();
    let inner = r#"{"body_statements":["x = 1"],"variables":[],"imports":[]}"#;
    let wrapper_prefix = r#"{"implementation":"#;
    // Byte where the inner object leaves every valid prefix.
    let diverge = inner.bytes().zip(wrapper_prefix.bytes()).take_while(|(a, b)| a == b).count();
    for tok in all_tokenizers() {
        let g = grammar_for(tok, "implementation", &schema);
        let ids = (tok.encode)(inner).expect("encodable");
        let mut m = g.matcher();
        let mut consumed = 0;
        let mut rejected_at = None;
        for (i, &t) in ids.iter().enumerate() {
            let mask = m.compute_mask().unwrap();
            let len = tok.vocab.token_bytes(t).len();
            let ok = m.accept_token(t).is_ok();
            assert_eq!(bit(&mask, t), ok, "{}: mask and accept disagree", tok.name);
            if !ok {
                rejected_at = Some((i, consumed, len));
                break;
            }
            consumed += len;
        }
        let (i, start, len) = rejected_at.unwrap_or_else(|| panic!("{}: inner object accepted", tok.name));
        // The rejected token is the one that covers the first diverging byte.
        assert!(
            start <= diverge && diverge < start + len,
            "{}: rejected token {i} at bytes {start}..{} but divergence at {diverge}",
            tok.name,
            start + len
        );
    }
}

#[test]
fn every_random_completion_has_the_wrapper() {
    let schema = schema();
    for tok in all_tokenizers() {
        let g = grammar_for(tok, "implementation", &schema);
        let mut rng = Rng::new(7);
        let mut finished = 0;
        for _ in 0..(cases() * 2) {
            let mut m = g.matcher();
            let s = random_walk(&mut m, &mut rng, 600).unwrap();
            if s.terminated {
                finished += 1;
                let v: serde_json::Value = serde_json::from_slice(m.output()).unwrap();
                let imp = v.get("implementation").expect("wrapper present");
                for k in ["body_statements", "variables", "imports"] {
                    assert!(imp.get(k).is_some(), "{}: {k} missing", tok.name);
                }
                assert_eq!(v.as_object().unwrap().len(), 1, "only the wrapper at the top level");
            }
        }
        assert!(finished > 0, "{}: no walk finished", tok.name);
    }
}

#[test]
fn the_wrapper_is_forced_at_the_start() {
    let schema = schema();
    let g = grammar_for(cl100k(), "implementation", &schema);
    let mut m = g.matcher();
    // Members may come in any order (the default), so the forced prefix ends
    // where the three inner keys diverge.
    let forced = m.forced_bytes(100);
    assert_eq!(String::from_utf8_lossy(&forced), r#"{"implementation":{""#);
    let toks = m.forced_tokens(100);
    assert_eq!(cl100k().vocab.decode(&toks), forced, "forced tokens spell the forced bytes");
    m.accept_tokens(&toks).unwrap();
    // Under schema order the first inner member is forced too.
    let ordered = Compiler::with_config(Config::new().property_order(grammask::PropertyOrder::Schema))
        .compile(&schema, cl100k().vocab.clone())
        .unwrap();
    let mut m = ordered.matcher();
    let forced = m.forced_bytes(100);
    assert!(forced.starts_with(br#"{"implementation":{"body_statements":["#), "{:?}", String::from_utf8_lossy(&forced));
}
