//! The soundness net (`grammask::net`) over schemas nobody picked: a
//! deterministic sample of MaskBench files, every JSON-Schema-Test-Suite
//! group, and `corpora/schemas`, on cl100k and every shared tokenizer.
//! Random walks through the masks and mutants of valid instances, judged by
//! `jsonschema` and `boon`. Sizes: `GRAMMASK_NET_SCHEMAS` (MaskBench files,
//! default 120; 0 = all), `GRAMMASK_NET_WALKS` (finished walks per schema
//! and configuration, default 4). The full run is
//! `cargo run --release -- walks` (see the README).
//!
//! `corpora/regressions/soundness.json` lists what the net (or a user)
//! found, as texts the grammar must reject and texts it must accept.

mod common;
use common::*;
use grammask::net::{self, NetOptions, Oracle};
use grammask::{Compiler, Config, Whitespace};
use serde_json::Value;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[test]
fn regressions_stay_fixed() {
    let text = std::fs::read_to_string(repo().join("corpora/regressions/soundness.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 4);
    let tok = cl100k();
    for case in &cases {
        let schema = &case["schema"];
        let why = case["why"].as_str().unwrap();
        let oracle = Oracle::new(schema).unwrap();
        for ws in [Whitespace::Compact, Whitespace::Flexible { max_run: 1 }] {
            let g = Compiler::with_config(Config::new().whitespace(ws)).compile(schema, tok.vocab.clone()).unwrap();
            let accepts = |t: &str| {
                let mut m = g.matcher();
                m.accept_bytes(t.as_bytes()).is_ok() && m.can_terminate()
            };
            for t in case["rejected"].as_array().unwrap() {
                let t = t.as_str().unwrap();
                let v: Value = serde_json::from_str(t).unwrap();
                if case.get("validators_reject") != Some(&Value::Bool(false)) {
                    assert!(
                        !oracle.rejections(&v).is_empty(),
                        "{why}: the validators accept {t}, not a regression case"
                    );
                }
                assert!(!accepts(t), "{why}: grammar accepts {t}");
            }
            for t in case["accepted"].as_array().unwrap() {
                let t = t.as_str().unwrap();
                let v: Value = serde_json::from_str(t).unwrap();
                assert!(oracle.rejections(&v).is_empty(), "{why}: validators reject {t}");
                assert!(accepts(t), "{why}: grammar rejects valid {t}");
            }
        }
    }
}

fn subjects() -> Vec<net::Subject> {
    let mut out = net::subjects(&repo().join("corpora/schemas"), None).unwrap();
    // Our own schemas' valid cases are mutated too.
    for s in &mut out {
        if let Some(cases) = corpus_cases(s.label.trim_end_matches(".json")) {
            s.valid = cases.valid;
        }
    }
    if let Some(root) = shared_corpora() {
        let sample = match env("GRAMMASK_NET_SCHEMAS", 120) {
            0 => None,
            n => Some(n),
        };
        let mb = root.join("maskbench/data");
        if mb.is_dir() {
            out.extend(net::subjects(&mb, sample).unwrap());
        }
        for d in ["json-schema-test-suite/draft2020-12", "json-schema-test-suite/draft7"] {
            let p = root.join(d);
            if p.is_dir() {
                out.extend(net::subjects(&p, None).unwrap());
            }
        }
    }
    out
}

#[test]
fn walks_and_mutants_validate_on_every_tokenizer() {
    let subjects = subjects();
    let opts = NetOptions { walks: env("GRAMMASK_NET_WALKS", 4), mutants: 8, ..NetOptions::default() };
    let mut failures = Vec::new();
    for tok in all_tokenizers() {
        let r = net::run_all(&subjects, &tok.vocab, &opts, &|_| {});
        eprintln!("soundness net on {} ({} subjects):\n{}", tok.name, subjects.len(), r.summary());
        // A net whose walks do not finish judges nothing.
        assert!(r.finished * 10 >= r.walks * 9, "{}: only {} of {} walks finished", tok.name, r.finished, r.walks);
        assert!(r.compiled * 2 >= subjects.len(), "{}: only {} subjects compiled", tok.name, r.compiled);
        assert!(r.mutants_accepted > 0, "{}: no mutant was accepted (mutation is vacuous)", tok.name);
        failures.extend(r.failures.iter().map(|f| format!("{}: {f}", tok.name)));
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}
