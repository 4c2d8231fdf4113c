//! Completeness: valid instances, serialized in the output format (compact,
//! properties in schema order), are accepted token by token under the
//! tokenizer's canonical encoding and under random segmentations, with the
//! mask allowing each token first, and then terminate. Invalid instances are
//! rejected at some token or cannot terminate. Instances come from
//! `corpora/cases/` and from a schema-driven generator (proptest seeds).

mod common;
use common::*;
use grammask::{CompiledGrammar, Rng, Vocabulary};
use proptest::prelude::*;
use std::sync::Arc;

/// Feeds `tokens`; Ok(true) when all were accepted (each allowed by the
/// mask first) and the matcher can then stop; Ok(false) when rejected.
/// Err when the mask and accept_token disagree.
fn feed(g: &Arc<CompiledGrammar>, vocab: &Vocabulary, tokens: &[u32]) -> Result<bool, String> {
    let mut m = g.matcher();
    for (i, &t) in tokens.iter().enumerate() {
        let mask = m.compute_mask().map_err(|e| e.to_string())?;
        let allowed = bit(&mask, t);
        let accepted = m.accept_token(t).is_ok();
        if allowed != accepted {
            return Err(format!(
                "mask says {allowed} but accept_token says {accepted} for token {i} {:?} after {:?}",
                String::from_utf8_lossy(vocab.token_bytes(t)),
                String::from_utf8_lossy(m.output())
            ));
        }
        if !accepted {
            return Ok(false);
        }
    }
    let mask = m.compute_mask().map_err(|e| e.to_string())?;
    let stop = vocab.stop_tokens()[0];
    if bit(&mask, stop) != m.can_terminate() {
        return Err("stop bit disagrees with can_terminate".into());
    }
    if !m.can_terminate() {
        return Ok(false);
    }
    m.accept_token(stop).map_err(|e| e.to_string())?;
    Ok(m.is_terminated())
}

fn accept_everywhere(
    name: &str,
    schema: &serde_json::Value,
    inst: &serde_json::Value,
    rng: &mut Rng,
) -> Result<(), String> {
    let text = serde_json::to_string(inst).unwrap();
    for tok in all_tokenizers() {
        let g = grammar_for(tok, name, schema);
        match (tok.encode)(&text) {
            Some(ids) => {
                if !feed(&g, &tok.vocab, &ids)? {
                    return Err(format!("{}/{name}: canonical encoding of valid {text} rejected", tok.name));
                }
            }
            None => eprintln!("NOTICE: {} cannot encode {text:?} canonically without extra bytes", tok.name),
        }
        for _ in 0..2 {
            let ids = random_segmentation(&tok.vocab, text.as_bytes(), rng)
                .ok_or_else(|| format!("{}: no segmentation of {text}", tok.name))?;
            if !feed(&g, &tok.vocab, &ids)? {
                return Err(format!("{}/{name}: segmentation of valid {text} rejected", tok.name));
            }
        }
    }
    Ok(())
}

#[test]
fn corpus_valid_instances_are_accepted() {
    let mut rng = Rng::new(11);
    let mut n = 0;
    for (name, schema) in corpus_schemas() {
        let Some(cases) = corpus_cases(name) else {
            continue;
        };
        let val = validator(schema);
        for inst in &cases.valid {
            assert!(val.is_valid(inst), "{name}: case marked valid is not: {inst}");
            accept_everywhere(name, schema, inst, &mut rng).unwrap();
            n += 1;
        }
    }
    assert!(n >= 100, "only {n} valid cases");
}

#[test]
fn corpus_invalid_instances_are_rejected() {
    let mut n = 0;
    for (name, schema) in corpus_schemas() {
        let Some(cases) = corpus_cases(name) else {
            continue;
        };
        let val = validator(schema);
        for inst in &cases.invalid {
            assert!(!val.is_valid(inst), "{name}: case marked invalid is valid: {inst}");
            let text = serde_json::to_string(inst).unwrap();
            for tok in all_tokenizers() {
                let g = grammar_for(tok, name, schema);
                let Some(ids) = (tok.encode)(&text) else {
                    continue;
                };
                let ok = feed(&g, &tok.vocab, &ids).unwrap();
                assert!(!ok, "{}/{name}: invalid instance accepted: {text}", tok.name);
                n += 1;
            }
        }
    }
    assert!(n >= 60, "only {n} invalid checks");
}

fn generated(seed: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng::new(seed);
    for (name, schema) in corpus_schemas() {
        let val = validator(schema);
        let Some(inst) = generate(schema, schema, &mut rng, 0) else {
            continue;
        };
        // The generator is test code: only instances the oracle accepts count.
        if !val.is_valid(&inst) {
            continue;
        }
        accept_everywhere(name, schema, &inst, &mut rng).map_err(TestCaseError::fail)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn generated_instances_are_accepted(seed in any::<u64>()) {
        generated(seed)?;
    }
}

#[test]
fn generator_produces_valid_instances_for_most_schemas() {
    // Guards the test above against a generator that silently yields
    // nothing: for most schemas one of a few draws is valid (the test above
    // draws many times per schema).
    let mut rng = Rng::new(3);
    let mut ok = 0;
    for (_, schema) in corpus_schemas() {
        let val = validator(schema);
        ok += (0..4).any(|_| generate(schema, schema, &mut rng, 0).is_some_and(|inst| val.is_valid(&inst))) as usize;
    }
    assert!(ok * 10 >= corpus_schemas().len() * 8, "generator valid for only {ok} schemas");
}

#[test]
fn short_completions_complete() {
    // From a random prefix of every corpus schema, the bytes
    // `short_completion` returns are accepted and leave a complete output.
    let tok = cl100k();
    let mut done = 0;
    for (name, schema) in corpus_schemas() {
        let g = grammar_for(tok, name, schema);
        for seed in 0..4 {
            let mut m = g.matcher();
            let mut rng = Rng::new(seed);
            let mut mask = vec![0u32; tok.vocab.mask_words()];
            for _ in 0..rng.below(40) {
                m.fill_next_token_bitmask(&mut mask).unwrap();
                let allowed: Vec<u32> =
                    grammask::allowed_tokens(&mask).into_iter().filter(|&t| !tok.vocab.is_stop(t)).collect();
                if allowed.is_empty() {
                    break;
                }
                m.accept_token(allowed[rng.below(allowed.len())]).unwrap();
            }
            let rest = m.short_completion(1 << 14).unwrap_or_else(|| panic!("{name}: no completion"));
            m.accept_bytes(&rest).unwrap_or_else(|e| panic!("{name}: completion rejected: {e}"));
            assert!(m.can_terminate(), "{name}: {:?} does not complete", String::from_utf8_lossy(m.output()));
            done += 1;
        }
    }
    assert!(done >= 100, "only {done} completions");
}
