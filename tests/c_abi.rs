//! The C ABI end to end, as a C server uses it: builds the `grammask-capi`
//! static library, compiles `examples/c/decode.c` against the checked-in
//! `include/grammask.h` with warnings as errors, runs it (seeded random
//! "model" decoding the incident schema on cl100k and, when the shared
//! corpora are present, a Hugging Face tokenizer), and judges its output
//! with an independent validator. Also checks the header is what cbindgen
//! generates from `capi/src/lib.rs` when cbindgen is installed.

mod common;

use common::run_ok;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the static library and the example; returns the example's path.
fn build_example() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    if Command::new(&cc).arg("--version").output().is_err() {
        eprintln!("notice: no C compiler ({cc}); the C ABI example is not built");
        return None;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_ok(Command::new(cargo).current_dir(root()).args(["build", "--release", "-p", "grammask-capi"]));
    let target = common::target_dir();
    let lib = target.join("release").join("libgrammask_c.a");
    assert!(lib.exists(), "{} was not built", lib.display());
    let exe = target.join("c-example-decode");
    run_ok(
        Command::new(&cc)
            .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root().join("include"))
            .arg(root().join("examples/c/decode.c"))
            .arg(&lib)
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&exe),
    );
    Some(exe)
}

fn validates(schema: &serde_json::Value, doc: &serde_json::Value) -> bool {
    jsonschema::validator_for(schema).expect("schema").is_valid(doc)
}

/// Runs the example on `vocab` with `seed`; returns what it printed.
fn decode(exe: &Path, schema: &Path, vocab: &str, seed: u64) -> String {
    let out = run_ok(Command::new(exe).arg(schema).arg(vocab).arg(seed.to_string()));
    String::from_utf8(out.stdout).expect("the example prints UTF-8 (JSON output is UTF-8)")
}

#[test]
fn c_example_decodes_valid_documents_and_reports_bad_input() {
    let Some(exe) = build_example() else { return };
    let schema_path = root().join("corpora/schemas/implementation.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
    let mut vocabs = vec!["cl100k_base".to_string()];
    match common::shared_corpora() {
        Some(dir) => vocabs.push(dir.join("tokenizers/llama3_1/tokenizer.json").display().to_string()),
        None => eprintln!("notice: shared corpora absent; the C example runs on cl100k only"),
    }
    for vocab in &vocabs {
        for seed in 1..=3 {
            let text = decode(&exe, &schema_path, vocab, seed);
            // Bad input came back as messages naming the problem.
            assert!(
                text.contains("check: bad schema -> InvalidSchema error at /properties/a (keyword `type`)"),
                "{text}"
            );
            assert!(text.contains("check: short mask -> mask buffer has"), "{text}");
            assert!(text.contains("check: bad token -> token id 4294967295 is out of range"), "{text}");
            assert!(text.contains("check: regex -> bytes \"x\" are not allowed here"), "{text}");
            // Jump-forward sees the wrapper before any token is sampled.
            assert!(text.contains("forced: {\"implementation\":{\""), "{text}");
            let output = text.lines().find_map(|l| l.strip_prefix("output: ")).expect("an output line");
            let doc: serde_json::Value = serde_json::from_str(output)
                .unwrap_or_else(|e| panic!("{vocab} seed {seed}: output is not JSON ({e}): {output}"));
            assert!(validates(&schema, &doc), "{vocab} seed {seed}: output does not validate: {output}");
            assert!(doc.get("implementation").is_some());
        }
    }
}

#[test]
fn header_is_what_cbindgen_generates() {
    let Ok(out) = Command::new("cbindgen").arg("--version").output() else {
        eprintln!("notice: cbindgen not installed; include/grammask.h is not compared with capi/src/lib.rs");
        return;
    };
    assert!(out.status.success());
    let fresh = std::env::temp_dir().join(format!("grammask-{}.h", std::process::id()));
    run_ok(
        Command::new("cbindgen")
            .current_dir(root())
            .args(["--config", "capi/cbindgen.toml", "--crate", "grammask-capi", "--output"])
            .arg(&fresh),
    );
    let want = std::fs::read_to_string(&fresh).unwrap();
    let _ = std::fs::remove_file(&fresh);
    let have = std::fs::read_to_string(root().join("include/grammask.h")).unwrap();
    assert!(
        want == have,
        "include/grammask.h is stale: regenerate with `cbindgen --config capi/cbindgen.toml --crate grammask-capi --output include/grammask.h`"
    );
}
