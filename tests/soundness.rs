//! Soundness, property-based: random walks that pick among the tokens the
//! mask allows end in JSON that the independent validator accepts, for every
//! corpus schema and every tokenizer (cl100k always; the shared ones when
//! present). Case count: GRAMMASK_CASES.

mod common;
use common::*;
use grammask::{random_walk, Rng};
use proptest::prelude::*;

fn check_walks(seed: u64) -> Result<(), TestCaseError> {
    for tok in all_tokenizers() {
        for (name, schema) in corpus_schemas() {
            let g = grammar_for(tok, name, schema);
            let val = validator(schema);
            let mut rng = Rng::new(seed ^ name.len() as u64);
            let mut m = g.matcher();
            let s = random_walk(&mut m, &mut rng, 300)
                .map_err(|e| TestCaseError::fail(format!("{}/{name}: walk failed: {e}", tok.name)))?;
            if !s.terminated {
                continue;
            }
            let text = String::from_utf8(m.output().to_vec())
                .map_err(|_| TestCaseError::fail(format!("{}/{name}: output is not UTF-8", tok.name)))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{}/{name}: not JSON ({e}): {text}", tok.name)))?;
            prop_assert!(val.is_valid(&v), "{}/{name}: invalid completion {text}", tok.name);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_walks_validate(seed in any::<u64>()) {
        check_walks(seed)?;
    }
}

#[test]
fn corpus_has_at_least_30_schemas() {
    assert!(corpus_schemas().len() >= 30, "only {} schemas", corpus_schemas().len());
}

#[test]
fn most_walks_terminate() {
    // A walker that never finishes would make the soundness check vacuous.
    let tok = cl100k();
    let mut finished = 0;
    let mut total = 0;
    for (name, schema) in corpus_schemas() {
        let g = grammar_for(tok, name, schema);
        for seed in 0..3 {
            let mut m = g.matcher();
            let s = random_walk(&mut m, &mut Rng::new(seed), 300).unwrap();
            total += 1;
            finished += s.terminated as usize;
        }
    }
    assert!(finished * 10 >= total * 9, "only {finished}/{total} walks terminated");
}
