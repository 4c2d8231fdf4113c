//! Guards MaskBench and the JSON-Schema-Test-Suite results: no invalid
//! instance may ever be accepted; every compiled test-suite group must be
//! judged right; passing/compiled counts may not drop below the ratchets in
//! `corpora/ratchets.json`. Data from `../shared/corpora` (override with
//! GRAMMASK_SHARED_CORPORA); skipped with a notice when absent. The MaskBench
//! sample size comes from GRAMMASK_MASKBENCH_SAMPLE (0 = every file).

mod common;
use common::*;
use grammask::conformance::{maskbench_config, maskbench_file, test_suite_file, Encoder, Outcome, Summary};
use grammask::Config;
use rayon::prelude::*;
use std::path::PathBuf;

fn ratchet(key: &str) -> f64 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("corpora/ratchets.json")).unwrap()).unwrap();
    v[key].as_f64().unwrap_or_else(|| panic!("ratchet {key} missing"))
}

fn files(dir: &PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

fn encoder() -> Encoder {
    Encoder::Tiktoken(tiktoken_rs::cl100k_base_singleton())
}

fn run_suite(draft: &str) -> Option<Vec<Outcome>> {
    let root = shared_corpora()?.join("json-schema-test-suite").join(draft);
    if !root.is_dir() {
        eprintln!("NOTICE: {} absent; skipping", root.display());
        return None;
    }
    let vocab = cl100k().vocab.clone();
    let enc = encoder();
    let cfg = Config::new();
    let list: Vec<PathBuf> = files(&root)
        .into_iter()
        .filter(|p| !grammask::conformance::SUITE_EXCLUDED.iter().any(|(n, _)| p.file_name().unwrap() == *n))
        .collect();
    Some(list.par_iter().flat_map(|p| test_suite_file(p, &vocab, &enc, &cfg)).collect())
}

fn check_suite(draft: &str, min_compiled: f64) {
    let Some(outcomes) = run_suite(draft) else {
        return;
    };
    let s = Summary::of(&outcomes);
    eprintln!("{draft}:\n{}", s.table());
    for o in &outcomes {
        if let Err(k) = &o.compiled {
            eprintln!("skipped ({k}): {}", o.name);
        }
    }
    let wrong: Vec<String> = outcomes
        .iter()
        .filter(|o| o.compiled.is_ok())
        .flat_map(|o| o.failures.iter().map(move |f| format!("{}: {f}", o.name)))
        .collect();
    assert!(wrong.is_empty(), "{draft}: compiled groups judged wrong:\n{}", wrong.join("\n"));
    let compiled = s.schemas - s.compile_errors;
    assert!(compiled as f64 >= min_compiled, "{draft}: only {compiled} groups compile (ratchet {min_compiled})");
}

#[test]
fn test_suite_draft2020_12() {
    check_suite("draft2020-12", ratchet("test_suite_draft2020_12_compiled_groups_min"));
}

#[test]
fn test_suite_draft7() {
    check_suite("draft7", ratchet("test_suite_draft7_compiled_groups_min"));
}

#[test]
fn formats_never_accept_invalid_strings() {
    // optional/format asserts formats: grammask's format languages are
    // subsets, so valid strings may be outside them, but no invalid string
    // may be accepted.
    for draft in ["draft2020-12", "draft7"] {
        let Some(root) = shared_corpora() else { return };
        let dir = root.join("json-schema-test-suite").join(draft).join("optional/format");
        if !dir.is_dir() {
            continue;
        }
        let vocab = cl100k().vocab.clone();
        let enc = encoder();
        let cfg = Config::new();
        let outcomes: Vec<Outcome> =
            files(&dir).par_iter().flat_map(|p| test_suite_file(p, &vocab, &enc, &cfg)).collect();
        let s = Summary::of(&outcomes);
        let bad: Vec<String> = outcomes
            .iter()
            .flat_map(|o| {
                o.failures.iter().filter(|f| f.starts_with("INVALID")).map(move |f| format!("{}: {f}", o.name))
            })
            .collect();
        assert!(bad.is_empty(), "{draft}: {}", bad.join("\n"));
        assert!(s.instances > 200, "{draft}: only {} format instances judged", s.instances);
    }
}

#[test]
fn maskbench_sample() {
    let Some(root) = shared_corpora() else { return };
    let dir = root.join("maskbench/data");
    if !dir.is_dir() {
        eprintln!("NOTICE: {} absent; skipping", dir.display());
        return;
    }
    let all = files(&dir);
    let n: usize = std::env::var("GRAMMASK_MASKBENCH_SAMPLE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(ratchet("maskbench_sample_size") as usize);
    let sample: Vec<PathBuf> = if n == 0 || n >= all.len() {
        all
    } else {
        let step = all.len() as f64 / n as f64;
        (0..n).map(|i| all[(i as f64 * step) as usize].clone()).collect()
    };
    let vocab = cl100k().vocab.clone();
    let enc = encoder();
    let cfg = maskbench_config();
    let outcomes: Vec<Outcome> = sample.par_iter().map(|p| maskbench_file(p, &vocab, &enc, &cfg)).collect();
    let s = Summary::of(&outcomes);
    eprintln!("MaskBench sample of {}:\n{}", sample.len(), s.table());
    let bad: Vec<String> = outcomes
        .iter()
        .flat_map(|o| o.failures.iter().filter(|f| f.starts_with("INVALID")).map(move |f| format!("{}: {f}", o.name)))
        .collect();
    assert!(bad.is_empty(), "invalid instances accepted:\n{}", bad.join("\n"));
    let pass = s.passing as f64 / s.schemas as f64;
    if n as f64 == ratchet("maskbench_sample_size") {
        let min = ratchet("maskbench_passing_min");
        assert!(pass >= min, "MaskBench passing {pass:.3} below the ratchet {min}");
    }
}
