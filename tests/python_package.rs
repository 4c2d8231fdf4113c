//! The Python package end to end, as a vLLM/SGLang backend uses it: builds
//! and installs `python/` into a virtual environment (`target/py-venv`,
//! created on first use with PyPI's maturin, numpy, pytest, tokenizers and
//! llguidance),
//! records masks the Rust crate computes along canonical token paths of
//! MaskBench schemas (a sample of `GRAMMASK_PY_MASKBENCH` files, default
//! 24) and the repo's schemas, then runs `pytest python/tests`, which
//! replays the same paths through Python and compares every mask.
//!
//! Without `python3` (override: `GRAMMASK_PYTHON`) it prints a notice and
//! passes; any failure after that (pip, build, pytest) fails the test.

mod common;

use common::{run_ok, target_dir};

use grammask::conformance::{self, Encoder};
use grammask::{Compiler, Config, Vocabulary};
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The venv's python, with the test's PyPI packages installed.
fn venv() -> Option<PathBuf> {
    let python = std::env::var("GRAMMASK_PYTHON").unwrap_or_else(|_| "python3".into());
    if Command::new(&python).arg("--version").output().is_err() {
        eprintln!("notice: {python} not found; the Python package is not tested");
        return None;
    }
    let dir = target_dir().join("py-venv");
    let py = dir.join("bin/python");
    if !py.exists() {
        run_ok(Command::new(&python).args(["-m", "venv"]).arg(&dir));
    }
    let have = Command::new(&py).args(["-c", "import maturin, numpy, pytest, tokenizers, llguidance"]).output();
    if !have.is_ok_and(|o| o.status.success()) {
        run_ok(Command::new(&py).args([
            "-m",
            "pip",
            "install",
            "-q",
            "maturin>=1.5,<2",
            "numpy",
            "pytest",
            "tokenizers",
            // The reference for the Lark dialect (python/tests/test_lark.py).
            "llguidance",
        ]));
    }
    Some(py)
}

/// One recorded path: the schema, how it was compiled, the tokens, and
/// where its masks (one before each token and one after the last) start in
/// the masks file, in words.
fn record(
    out: &mut Vec<Value>,
    masks: &mut impl Write,
    offset: &mut usize,
    (name, schema, text): (&str, &Value, &str),
    cfg: (&Config, u8),
    vocab: (&Arc<Vocabulary>, &str, &Encoder),
) -> bool {
    let Ok(g) = Compiler::with_config(cfg.0.clone()).compile(schema, vocab.0.clone()) else { return false };
    let tokens = vocab.2.encode(text);
    let mut m = g.matcher();
    let mut rows = Vec::new();
    for &t in &tokens {
        rows.push(m.compute_mask().expect("mask"));
        if m.accept_token(t).is_err() {
            return false;
        }
    }
    rows.push(m.compute_mask().expect("mask"));
    let words = vocab.0.mask_words();
    for r in &rows {
        for w in r {
            masks.write_all(&w.to_le_bytes()).unwrap();
        }
    }
    out.push(json!({
        "name": name,
        "schema": serde_json::to_string(schema).unwrap(),
        "whitespace": cfg.1,
        "vocab": vocab.1,
        "tokens": tokens,
        "offset": *offset,
        "words": words,
        "fingerprint": g.fingerprint(),
    }));
    *offset += rows.len() * words;
    true
}

/// Writes `paths.json` and `masks.bin` into `dir`.
fn write_fixture(dir: &Path) -> usize {
    let mut vocabs: Vec<(Arc<Vocabulary>, String, Encoder)> = vec![(
        Arc::new(Vocabulary::tiktoken(grammask::Tiktoken::Cl100k).unwrap()),
        "cl100k_base".into(),
        Encoder::Tiktoken(tiktoken_rs::cl100k_base_singleton()),
    )];
    let shared = common::shared_corpora();
    if let Some(s) = &shared {
        let p = s.join("tokenizers/llama3_1/tokenizer.json");
        vocabs.push((
            Arc::new(Vocabulary::from_tokenizer_json(&p).unwrap()),
            p.display().to_string(),
            Encoder::from_tokenizer_json(&p).unwrap(),
        ));
    }
    let mut schemas: Vec<(String, Value, String, (Config, u8))> = Vec::new();
    for (name, schema) in common::corpus_schemas() {
        if let Some(cases) = common::corpus_cases(name) {
            if let Some(v) = cases.valid.first() {
                let text = conformance::output_format(schema, v);
                schemas.push((name.clone(), schema.clone(), text, (Config::new(), 0)));
            }
        }
    }
    if let Some(s) = &shared {
        let n = std::env::var("GRAMMASK_PY_MASKBENCH").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
        let files = conformance::json_files(&s.join("maskbench/data"), false).expect("maskbench");
        for f in conformance::sample_files(files, Some(n)) {
            let Ok(v) = std::fs::read_to_string(&f).map(|t| serde_json::from_str::<Value>(&t).unwrap_or(Value::Null))
            else {
                continue;
            };
            let valid = v["tests"].as_array().and_then(|a| a.iter().find(|t| t["valid"] == true));
            if let Some(t) = valid {
                let text = conformance::python_dumps(&t["data"]);
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                schemas.push((name, v["schema"].clone(), text, (conformance::maskbench_config(), 1)));
            }
        }
    }
    let mut paths = Vec::new();
    let mut masks = std::io::BufWriter::new(std::fs::File::create(dir.join("masks.bin")).unwrap());
    let mut offset = 0;
    for (vocab, label, enc) in &vocabs {
        for (name, schema, text, (cfg, ws)) in &schemas {
            record(&mut paths, &mut masks, &mut offset, (name, schema, text), (cfg, *ws), (vocab, label, enc));
        }
    }
    masks.flush().unwrap();
    std::fs::write(dir.join("paths.json"), serde_json::to_string(&paths).unwrap()).unwrap();
    paths.len()
}

#[test]
fn python_package_matches_the_crate() {
    let Some(py) = venv() else { return };
    let repo = common::repo();
    // Build and install the package from source, as `pip install ./python`
    // does, sharing the crate's target directory so dependencies compiled
    // for the crate's tests are reused.
    // The venv's bin first on PATH: maturin is called by name.
    let bin = py.parent().expect("venv bin").to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    run_ok(
        Command::new(&py)
            .args(["-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--force-reinstall"])
            .arg(repo.join("python"))
            .env("PATH", path)
            .env("CARGO_TARGET_DIR", target_dir()),
    );
    let fixture = target_dir().join(format!("py-fixture-{}", std::process::id()));
    std::fs::create_dir_all(&fixture).unwrap();
    let n = write_fixture(&fixture);
    assert!(n >= 10, "only {n} recorded paths");
    let out = Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(repo.join("python/tests"))
        .env("GRAMMASK_PY_FIXTURE", &fixture)
        .env("GRAMMASK_REPO", &repo)
        .current_dir(&fixture)
        .output()
        .expect("pytest runs");
    let _ = std::fs::remove_dir_all(&fixture);
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "pytest failed ({n} recorded paths)");
    assert!(!text.contains(" skipped"), "a Python test was skipped:\n{text}");
}
