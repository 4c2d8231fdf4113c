//! Mask = reference: at states along random walks, every mask bit equals
//! what a slow byte-by-byte check says about appending that token. A set bit
//! the reference rejects is a soundness bug; a clear bit it accepts is a
//! completeness bug. On a small vocabulary every token is checked; on real
//! vocabularies every allowed token plus a sample of the others, weighted to
//! the structural ones where bugs hide.

mod common;
use common::*;
use grammask::{allowed_tokens, Compiler, Rng, Vocabulary};
use proptest::prelude::*;
use std::sync::Arc;

fn check_state(
    m: &mut grammask::Matcher,
    vocab: &Vocabulary,
    rng: &mut Rng,
    exhaustive: bool,
    ctx: &str,
) -> Result<(), TestCaseError> {
    let mask = m.compute_mask().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let allowed = allowed_tokens(&mask);
    let check = |t: u32, m: &mut grammask::Matcher| -> Result<(), TestCaseError> {
        let slow = m.is_token_allowed_slow(t);
        prop_assert_eq!(
            bit(&mask, t),
            slow,
            "{}: token {} {:?} after {:?}",
            ctx,
            t,
            String::from_utf8_lossy(vocab.token_bytes(t)),
            String::from_utf8_lossy(m.output())
        );
        Ok(())
    };
    if exhaustive {
        for t in 0..vocab.size() as u32 {
            check(t, m)?;
        }
        return Ok(());
    }
    // Every allowed token (soundness side), capped for speed by sampling.
    if allowed.len() <= 4000 {
        for &t in &allowed {
            check(t, m)?;
        }
    } else {
        for _ in 0..4000 {
            check(allowed[rng.below(allowed.len())], m)?;
        }
    }
    // Completeness side: structural tokens and a uniform sample.
    for _ in 0..1500 {
        let t = rng.below(vocab.size()) as u32;
        check(t, m)?;
    }
    for t in 0..vocab.size() as u32 {
        let b = vocab.token_bytes(t);
        if b.len() <= 4 && b.iter().any(|c| b"\"{}[],:\\".contains(c)) && rng.chance(0.3) {
            check(t, m)?;
        }
    }
    Ok(())
}

/// Every single byte plus JSON-ish multi-byte pieces (shared with the fuzz targets).
fn small_vocab() -> Arc<Vocabulary> {
    grammask::fuzzing::small_vocab()
}

fn walk_and_check(seed: u64) -> Result<(), TestCaseError> {
    let small = small_vocab();
    let mut rng = Rng::new(seed);
    for (name, schema) in corpus_schemas() {
        // Small vocabulary: exhaustive at every step.
        let g = Compiler::new().compile(schema, small.clone()).unwrap();
        let mut m = g.matcher();
        for _ in 0..40 {
            check_state(&mut m, &small, &mut rng, true, &format!("small/{name}"))?;
            let mask = m.compute_mask().unwrap();
            let allowed = allowed_tokens(&mask);
            if allowed.is_empty() || m.is_terminated() {
                break;
            }
            m.accept_token(allowed[rng.below(allowed.len())]).unwrap();
        }
    }
    // Real vocabularies: sampled, at a few states per walk.
    for tok in all_tokenizers() {
        for (name, schema) in corpus_schemas() {
            if !rng.chance(0.25) {
                continue;
            }
            let g = grammar_for(tok, name, schema);
            let mut m = g.matcher();
            for step in 0..60 {
                if step % 7 == 0 {
                    check_state(&mut m, &tok.vocab, &mut rng, false, &format!("{}/{name}", tok.name))?;
                }
                let mask = m.compute_mask().unwrap();
                let allowed = allowed_tokens(&mask);
                if allowed.is_empty() || m.is_terminated() {
                    break;
                }
                // Prefer short tokens so that walks visit structure.
                let short: Vec<u32> =
                    allowed.iter().copied().filter(|&t| tok.vocab.token_bytes(t).len() <= 2).collect();
                let pool = if !short.is_empty() && rng.chance(0.7) { &short } else { &allowed };
                m.accept_token(pool[rng.below(pool.len())]).unwrap();
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn masks_equal_the_byte_by_byte_reference(seed in any::<u64>()) {
        walk_and_check(seed)?;
    }
}

#[test]
fn rollback_restores_masks() {
    let tok = cl100k();
    let mut rng = Rng::new(5);
    for (name, schema) in corpus_schemas() {
        let g = grammar_for(tok, name, schema);
        let mut m = g.matcher();
        let mut masks = vec![m.compute_mask().unwrap()];
        let mut outputs = vec![m.output().to_vec()];
        for _ in 0..20 {
            let allowed = allowed_tokens(masks.last().unwrap());
            if allowed.is_empty() || m.is_terminated() {
                break;
            }
            m.accept_token(allowed[rng.below(allowed.len())]).unwrap();
            masks.push(m.compute_mask().unwrap());
            outputs.push(m.output().to_vec());
        }
        while masks.len() > 1 {
            let k = 1 + rng.below(masks.len() - 1).min(2);
            m.rollback(k).unwrap();
            masks.truncate(masks.len() - k);
            outputs.truncate(outputs.len() - k);
            assert_eq!(m.output(), outputs.last().unwrap().as_slice(), "{name}");
            assert!(m.compute_mask().unwrap() == *masks.last().unwrap(), "{name}: mask differs after rollback");
        }
    }
}

#[test]
fn batch_masks_equal_single_masks() {
    let tok = cl100k();
    let words = tok.vocab.mask_words();
    let mut rng = Rng::new(9);
    let mut ms = Vec::new();
    for (name, schema) in corpus_schemas().iter().take(16) {
        let g = grammar_for(tok, name, schema);
        let mut m = g.matcher();
        for _ in 0..rng.below(10) {
            let a = allowed_tokens(&m.compute_mask().unwrap());
            if a.is_empty() || m.is_terminated() {
                break;
            }
            m.accept_token(a[rng.below(a.len())]).unwrap();
        }
        ms.push(m);
    }
    let mut flat = vec![0u32; words * ms.len()];
    for r in grammask::fill_masks_batch(&mut ms, &mut flat, words) {
        r.unwrap();
    }
    for (i, m) in ms.iter_mut().enumerate() {
        assert_eq!(&flat[i * words..(i + 1) * words], m.compute_mask().unwrap().as_slice());
    }
    // Now every next mask is warm: the batch runs on the calling thread.
    let mut again = vec![u32::MAX; words * ms.len()];
    for r in grammask::fill_masks_batch(&mut ms, &mut again, words) {
        r.unwrap();
    }
    assert_eq!(again, flat, "a warm batch gives the cold batch's masks");
}

#[test]
fn apply_mask_blocks_exactly_the_clear_bits() {
    let mask = vec![0b1010u32, u32::MAX, 0];
    let mut logits = vec![1.0f32; 70];
    grammask::apply_mask(&mut logits, &mask);
    for (i, l) in logits.iter().enumerate() {
        let allowed = mask[i / 32] >> (i % 32) & 1 == 1;
        assert_eq!(l.is_finite(), allowed, "logit {i}");
    }
}

/// Strings whose length is counted at run time (virtual states) give the
/// same masks as the same strings with the count spelled out in the
/// automaton: two independent constructions of one language, compared mask
/// for mask along random walks that run strings up to and past their bounds.
#[test]
fn counted_strings_equal_explicit_automata() {
    use grammask::{Config, Limits};
    let schemas = [
        serde_json::json!({"type": "string", "minLength": 3, "maxLength": 80}),
        serde_json::json!({"type": "string", "minLength": 3, "maxLength": 101, "pattern": "^(ab)*$"}),
        serde_json::json!({"type": "array", "items": {"type": "string", "maxLength": 90, "pattern": "^[a-z]+( [a-z]+)*$"}}),
        serde_json::json!({"type": "object", "properties": {
            "a": {"type": "string", "minLength": 66, "maxLength": 70},
            "b": {"type": "string", "format": "email", "maxLength": 120}}, "additionalProperties": false}),
    ];
    let explicit = Config::new().limits(Limits { counted_strings_from: u64::MAX, ..Limits::default() });
    let counted = Config::new().limits(Limits { counted_strings_from: 0, ..Limits::default() });
    let mut rng = Rng::new(17);
    let mut compared = 0;
    for vocab in [small_vocab(), cl100k().vocab.clone()] {
        for schema in &schemas {
            let ge = Compiler::with_config(explicit.clone()).compile(schema, vocab.clone()).unwrap();
            let gc = Compiler::with_config(counted.clone()).compile(schema, vocab.clone()).unwrap();
            assert!(gc.num_states() < ge.num_states(), "{schema}: counted strings were not used");
            for _walk in 0..8 {
                let (mut me, mut mc) = (ge.matcher(), gc.matcher());
                for _ in 0..150 {
                    let a = me.compute_mask().unwrap();
                    let b = mc.compute_mask().unwrap();
                    assert!(a == b, "{schema}: masks differ after {:?}", String::from_utf8_lossy(me.output()));
                    compared += 1;
                    let allowed = allowed_tokens(&a);
                    if allowed.is_empty() || me.is_terminated() {
                        break;
                    }
                    // Mostly tokens that stay in the string, so that walks reach the bounds.
                    let inner: Vec<u32> = allowed
                        .iter()
                        .copied()
                        .filter(|&t| !vocab.token_bytes(t).contains(&b'"') && vocab.token_bytes(t).len() <= 3)
                        .collect();
                    let pool = if !inner.is_empty() && rng.chance(0.9) { &inner } else { &allowed };
                    let t = pool[rng.below(pool.len())];
                    me.accept_token(t).unwrap();
                    mc.accept_token(t).unwrap();
                }
            }
        }
    }
    assert!(compared > 1500, "only {compared} masks compared");
}

/// Dependent walks are shared by every matcher of a grammar, keyed by the
/// stack frames they read. Prefixes that put the same state under stacks
/// that agree at the top and differ below (`[[1` and `{"a":[1`: the token
/// `]}` reads the frame below the array) must each get their own answer,
/// in whichever order they are seen; every mask is checked exhaustively
/// against the byte-by-byte reference.
#[test]
fn shared_dependent_walks_keep_deeper_frames_apart() -> Result<(), TestCaseError> {
    let small = small_vocab();
    let schema = serde_json::json!({});
    let prefixes = ["[[1", "{\"a\":[1", "[{\"a\":[1", "{\"b\":{\"a\":[1", "[1", "1"];
    let mut rng = Rng::new(3);
    for order in 0..4 {
        let g = Compiler::new().compile(&schema, small.clone()).unwrap();
        let mut ps: Vec<&str> = prefixes.to_vec();
        if order % 2 == 1 {
            ps.reverse();
        }
        for round in 0..2 {
            for p in &ps {
                let mut m = g.matcher();
                m.accept_bytes(p.as_bytes()).unwrap();
                check_state(&mut m, &small, &mut rng, true, &format!("order {order} round {round} after {p:?}"))?;
            }
        }
    }
    Ok(())
}

/// Several random walks on one compiled grammar (small vocabulary, every
/// token checked at every step): later walks are served by the dependent
/// walks that earlier ones left in the grammar's shared cache.
#[test]
fn masks_equal_the_reference_across_matchers_of_one_grammar() {
    let small = small_vocab();
    let mut rng = Rng::new(11);
    for (name, schema) in corpus_schemas() {
        let g = Compiler::new().compile(schema, small.clone()).unwrap();
        for walk in 0..4 {
            let mut m = g.matcher();
            for _ in 0..30 {
                check_state(&mut m, &small, &mut rng, true, &format!("{name} walk {walk}")).unwrap();
                let allowed = allowed_tokens(&m.compute_mask().unwrap());
                if allowed.is_empty() || m.is_terminated() {
                    break;
                }
                m.accept_token(allowed[rng.below(allowed.len())]).unwrap();
            }
        }
    }
}

/// String states whose masks come mostly from precomputed sets (plain text
/// up to its reach, tokens made of whole byte categories such as letters
/// and digits), with the rest walked: every token of a real vocabulary is
/// checked against the byte-by-byte reference along walks through patterns
/// that allow categories forever (`[\w.\- ]+`), for a bounded count
/// (`{3,30}`, a word counter), with a counted length, and patterns that
/// exclude only the line and dialect-dependent space characters (`.`,
/// `\S`), whose tokens must then be walked.
#[test]
fn wholesale_token_sets_equal_the_reference() {
    let tok = cl100k();
    let schemas = [
        serde_json::json!({"type": "string", "pattern": "^[\\w.\\- ]+$"}),
        serde_json::json!({"type": "string", "pattern": "^[a-z0-9_]{3,30}$"}),
        serde_json::json!({"type": "string", "pattern": "^(?:\\S+\\s+){0,9}\\S+$", "maxLength": 100}),
        serde_json::json!({"type": "string", "pattern": "^.{0,40}$"}),
        serde_json::json!({"type": "array", "items": {"type": "string", "pattern": "^[A-Z][\\w-]+$", "maxLength": 70}}),
    ];
    let mut rng = Rng::new(23);
    for schema in &schemas {
        let g = Compiler::new().compile(schema, tok.vocab.clone()).unwrap();
        for walk in 0..2 {
            let mut m = g.matcher();
            for step in 0..24 {
                if step % 4 == 1 {
                    check_state(&mut m, &tok.vocab, &mut rng, true, &format!("{schema} walk {walk}")).unwrap();
                }
                let allowed = allowed_tokens(&m.compute_mask().unwrap());
                if allowed.is_empty() || m.is_terminated() {
                    break;
                }
                // Stay inside the string most of the time.
                let inner: Vec<u32> =
                    allowed.iter().copied().filter(|&t| !tok.vocab.token_bytes(t).contains(&b'"')).collect();
                let pool = if !inner.is_empty() && rng.chance(0.9) { &inner } else { &allowed };
                m.accept_token(pool[rng.below(pool.len())]).unwrap();
            }
        }
    }
}

/// A large `enum` (a trie of a few thousand states: nearly a tree, so its
/// leaf analysis skips refining, every state its own class) inside an
/// object member, and as
/// array items (a machine of its own that only returns, so its masks are
/// composed from short classes): masks along walks equal the reference.
#[test]
fn large_enum_tries_equal_the_reference() {
    let tok = cl100k();
    // Branches that agree on a few bytes and then part into long words
    // (cl100k has single tokens for them), so that a state's class must
    // look past its next four bytes.
    let words = ["international", "information", "interaction", "intermediate", "interesting", "interview"];
    let names: Vec<String> = (0..300)
        .map(|i| {
            format!(
                "{}{}/{}_{}{}",
                ["Europe", "Asia", "America"][i % 3],
                i * 7919 % 1000,
                words[i % 6],
                words[(i / 3) % 6],
                i
            )
        })
        .collect();
    let schemas = [
        serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}, "zone": {"enum": names}}}),
        serde_json::json!({"type": "array", "items": {"enum": names}}),
    ];
    let mut rng = Rng::new(41);
    for (i, schema) in schemas.iter().enumerate() {
        let g = Compiler::new().compile(schema, tok.vocab.clone()).unwrap();
        assert!(g.num_states() > 2048, "the trie is large: {} states", g.num_states());
        // Many walks through the item enum: states of one class sit in
        // different branches, so a wrong class shows only across walks.
        for walk in 0..[4, 60][i] {
            let mut m = g.matcher();
            for step in 0..30 {
                if step % 2 == 0 {
                    check_state(&mut m, &tok.vocab, &mut rng, false, &format!("enum walk {walk}")).unwrap();
                }
                let allowed = allowed_tokens(&m.compute_mask().unwrap());
                if allowed.is_empty() || m.is_terminated() {
                    break;
                }
                m.accept_token(allowed[rng.below(allowed.len())]).unwrap();
            }
        }
    }
}

/// Objects past 10 declared properties keep the set of members written in
/// the state id (keyset machines), with masks cached per state up to a
/// bound and computed afresh past it: along walks that write many members
/// in random order, every mask equals the reference, on the small
/// vocabulary at every step and on cl100k at every third.
#[test]
fn keyset_masks_equal_the_reference() {
    let names: Vec<String> = (0..20).map(|i| ((b'a' + i) as char).to_string()).collect();
    let props: serde_json::Map<String, serde_json::Value> =
        names.iter().map(|n| (n.clone(), serde_json::json!({"type": "integer", "maximum": 9}))).collect();
    let schemas = [
        serde_json::json!({"type": "object", "properties": props, "required": ["c", "q"],
            "dependentRequired": {"e": ["f"]}, "additionalProperties": false}),
        serde_json::json!({"type": "object", "properties": props, "additionalProperties": {"type": "boolean"}}),
        corpus_schemas().iter().find(|(n, _)| n == "any_order_large").expect("corpus schema").1.clone(),
    ];
    let small = small_vocab();
    let tok = cl100k();
    let mut rng = Rng::new(17);
    let mut keyset_steps = 0;
    for (i, schema) in schemas.iter().enumerate() {
        // The default cache, and one of 8 masks that walks outgrow.
        let tiny = grammask::Config::new().limits(grammask::Limits { keyset_mask_cache: 8, ..Default::default() });
        for (vocab, every, walks, cfg) in [
            (&small, 1, 6, grammask::Config::new()),
            (&tok.vocab, 3, 6, grammask::Config::new()),
            (&small, 1, 3, tiny.clone()),
            (&tok.vocab, 3, 3, tiny),
        ] {
            let g = Compiler::with_config(cfg).compile(schema, vocab.clone()).unwrap();
            for w in 0..walks {
                let mut m = g.matcher();
                for step in 0..160 {
                    if step % every == 0 {
                        check_state(&mut m, vocab, &mut rng, every == 1, &format!("keyset schema {i} walk {w}"))
                            .unwrap();
                    }
                    let allowed = allowed_tokens(&m.compute_mask().unwrap());
                    if allowed.is_empty() || m.is_terminated() {
                        break;
                    }
                    // Short tokens, and rarely `}`, so that walks write many members.
                    let pool: Vec<u32> = allowed
                        .iter()
                        .copied()
                        .filter(|&t| vocab.token_bytes(t).len() <= 3 && !vocab.token_bytes(t).contains(&b'}'))
                        .collect();
                    let pool = if !pool.is_empty() && rng.chance(0.9) { &pool } else { &allowed };
                    m.accept_token(pool[rng.below(pool.len())]).unwrap();
                    keyset_steps += usize::from(m.output().iter().filter(|&&b| b == b',').count() >= 2);
                }
            }
        }
    }
    // The walks reach states past the second member.
    assert!(keyset_steps > 500, "{keyset_steps}");
}
