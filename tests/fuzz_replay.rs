//! Replays every file under `fuzz/corpus/` (seeds and minimized crashes)
//! through the fuzz targets' code, on stable, so CI exercises them.

mod common;
use common::*;

fn files(target: &str) -> Vec<std::path::PathBuf> {
    let dir = repo().join("fuzz/corpus").join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn replay_compile_schema() {
    let f = files("compile_schema");
    assert!(f.len() >= 30);
    for p in f {
        let data = std::fs::read(&p).unwrap();
        grammask::fuzzing::compile_schema(&data);
    }
}

#[test]
fn replay_matcher_walk() {
    let schemas: Vec<serde_json::Value> = corpus_schemas().iter().map(|s| s.1.clone()).collect();
    let f = files("matcher_walk");
    assert!(!f.is_empty());
    for p in f {
        let data = std::fs::read(&p).unwrap();
        grammask::fuzzing::matcher_walk(&schemas, &data);
    }
}

/// Replays every file of a target's corpus (at least `min` of them).
fn replay(target: &str, min: usize, run: impl Fn(&[u8])) {
    let f = files(target);
    assert!(f.len() >= min, "{target}: {} corpus files", f.len());
    for p in f {
        run(&std::fs::read(&p).unwrap());
    }
}

#[test]
fn replay_vocab_load() {
    replay("vocab_load", 4, grammask::fuzzing::vocab_load);
}

#[test]
fn replay_gbnf() {
    replay("gbnf", 30, grammask::fuzzing::gbnf);
}

#[test]
fn replay_lark() {
    replay("lark", 25, grammask::fuzzing::lark);
}

#[test]
fn replay_pattern() {
    replay("pattern", 20, grammask::fuzzing::pattern);
}

#[test]
fn random_token_walks_agree_with_masks() {
    // Stable stand-in for a short fuzz run: pseudo-random inputs.
    let schemas: Vec<serde_json::Value> = corpus_schemas().iter().map(|s| s.1.clone()).collect();
    let mut rng = grammask::Rng::new(1234);
    for i in 0..(cases() as usize * 20) {
        let mut data = vec![i as u8];
        data.extend((0..240).map(|j| {
            let b = rng.next_u64() as u8;
            // high byte of each pair: mostly "pick an allowed token"
            if j % 2 == 1 {
                (b & 0x7f) | if b < 200 { 0x40 } else { 0 }
            } else {
                b
            }
        }));
        grammask::fuzzing::matcher_walk(&schemas, &data);
    }
}
