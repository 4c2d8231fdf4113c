//! Threads sharing one `CompiledGrammar` (and one vocabulary's shared mask
//! caches) while each drives its own matchers, as a server's workers do,
//! get exactly the masks a single thread gets.
//!
//! The reference: per schema, seeded random walks on a vocabulary and
//! grammars used by one thread, every mask hashed. The run under test: a
//! second, cold copy of the vocabulary and of every grammar, and four
//! threads replaying all paths in different orders, so that they race to
//! fill the per-state, per-vocabulary and dependent-walk caches.
//! `GRAMMASK_CONC_SCHEMAS` MaskBench files are added to the repo's schemas
//! when the shared corpora are present (default 16).

mod common;

use grammask::{Compiler, Config, Rng, Tiktoken, Vocabulary, Whitespace};
use serde_json::Value;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

fn schemas() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = common::corpus_schemas().to_vec();
    if let Some(dir) = common::shared_corpora() {
        let n = std::env::var("GRAMMASK_CONC_SCHEMAS").ok().and_then(|s| s.parse().ok()).unwrap_or(16);
        let files = grammask::conformance::json_files(&dir.join("maskbench/data"), false).unwrap();
        for f in grammask::conformance::sample_files(files, Some(n)) {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            out.push((f.file_name().unwrap().to_string_lossy().into_owned(), v["schema"].clone()));
        }
    }
    out
}

fn mask_hash(mask: &[u32]) -> u64 {
    let mut h = DefaultHasher::new();
    mask.hash(&mut h);
    h.finish()
}

/// One path: which grammar, its tokens, and the hash of the mask before
/// each token and after the last.
struct Path {
    grammar: usize,
    tokens: Vec<u32>,
    masks: Vec<u64>,
}

fn replay(g: &Arc<grammask::CompiledGrammar>, tokens: &[u32]) -> Vec<u64> {
    let mut m = g.matcher();
    let mut mask = vec![0u32; g.vocab().mask_words()];
    let mut out = Vec::with_capacity(tokens.len() + 1);
    for &t in tokens {
        m.fill_next_token_bitmask(&mut mask).unwrap();
        out.push(mask_hash(&mask));
        m.accept_token(t).unwrap();
    }
    m.fill_next_token_bitmask(&mut mask).unwrap();
    out.push(mask_hash(&mask));
    out
}

#[test]
fn threads_sharing_grammars_get_single_threaded_masks() {
    let cfg = Config::new().whitespace(Whitespace::Flexible { max_run: 1 });
    let compiler = Compiler::with_config(cfg);
    let schemas = schemas();
    // The reference, one thread.
    let vocab_a = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).unwrap());
    let mut compiled = Vec::new();
    let mut paths = Vec::new();
    for (name, schema) in &schemas {
        let Ok(g) = compiler.compile(schema, vocab_a.clone()) else { continue };
        for seed in 0..2u64 {
            let mut rng = Rng::new(seed ^ name.len() as u64);
            let mut m = g.matcher();
            let Ok(s) = grammask::random_walk(&mut m, &mut rng, 120) else { continue };
            let tokens: Vec<u32> = s.tokens.into_iter().filter(|&t| !vocab_a.is_stop(t)).collect();
            let masks = replay(&g, &tokens);
            paths.push(Path { grammar: compiled.len(), tokens, masks });
        }
        compiled.push(schema.clone());
    }
    let total: usize = paths.iter().map(|p| p.masks.len()).sum();
    assert!(paths.len() >= 20 && total >= 500, "{} paths, {total} masks", paths.len());

    // Cold copies shared by four threads.
    let vocab_b = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).unwrap());
    let grammars: Vec<_> = compiled.iter().map(|s| compiler.compile(s, vocab_b.clone()).unwrap()).collect();
    let threads = 4;
    let mismatches: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (paths, grammars) = (&paths, &grammars);
                scope.spawn(move || {
                    let mut bad = Vec::new();
                    // Each thread its own order: forward from its offset, or backward.
                    let order: Vec<usize> = if i % 2 == 0 {
                        (0..paths.len()).map(|k| (k + i * paths.len() / threads) % paths.len()).collect()
                    } else {
                        (0..paths.len()).rev().collect()
                    };
                    for k in order {
                        let p = &paths[k];
                        if replay(&grammars[p.grammar], &p.tokens) != p.masks {
                            bad.push(format!("thread {i}: path {k} (grammar {})", p.grammar));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("no panic")).collect()
    });
    assert!(mismatches.is_empty(), "masks differ from the single-threaded run: {mismatches:?}");
    eprintln!("{} paths, {total} masks, {threads} threads: all equal", paths.len());
}
