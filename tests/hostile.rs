//! The hostile-schema corpus (`corpora/hostile/cases.json`): deep nesting,
//! huge enums, a 50 MB schema, catastrophic patterns, `$ref` cycles that
//! make no progress, enormous bounds. Each is compiled from its JSON text on
//! cl100k, as a server receives it, and must give its expected answer: it
//! compiles (and its first mask fills), or it is refused with the named
//! error kind. No panic, no hang: each answer runs on its own thread under a
//! watchdog (a hang detector, not a timing assertion); times and memory are
//! printed.

mod common;

use grammask::{CompileErrorKind, Compiler};
use serde_json::{json, Value};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The schema text a `generate` spec describes.
fn generate(g: &Value) -> String {
    let n = |k: &str| g[k].as_u64().unwrap() as usize;
    match g["kind"].as_str().unwrap() {
        "nest" => {
            let d = n("depth");
            let (open, close) = match g["via"].as_str().unwrap() {
                "properties" => (r#"{"type":"object","properties":{"a":"#, "}}"),
                "items" => (r#"{"type":"array","items":"#, "}"),
                "anyOf" => (r#"{"anyOf":[{"type":"null"},"#, "]}"),
                v => panic!("unknown nesting {v}"),
            };
            format!("{}{}{}", open.repeat(d), r#"{"type":"integer"}"#, close.repeat(d))
        }
        "ref_chain" => {
            let len = n("length");
            let mut defs = serde_json::Map::new();
            for i in 0..len {
                defs.insert(format!("d{i}"), json!({"$ref": format!("#/$defs/d{}", i + 1)}));
            }
            defs.insert(format!("d{len}"), json!({"type": "integer"}));
            json!({"$defs": defs, "$ref": "#/$defs/d0"}).to_string()
        }
        "enum" => json!({"enum": (0..n("count")).map(|i| format!("value-{i}")).collect::<Vec<_>>()}).to_string(),
        "int_enum" => json!({"enum": (0..n("count") as i64).map(|i| i * 7 - 3).collect::<Vec<_>>()}).to_string(),
        "wide" => {
            let pad = "x".repeat(n("pad"));
            let props: serde_json::Map<String, Value> =
                (0..n("count")).map(|i| (format!("p{i}"), json!({"type": "string", "description": pad}))).collect();
            json!({"type": "object", "properties": props}).to_string()
        }
        "product" => {
            let all: Vec<Value> = (0..n("factors"))
                .map(|i| {
                    json!({"anyOf": [
                        {"properties": {format!("a{i}"): {"type": "integer"}}},
                        {"properties": {format!("b{i}"): {"type": "string"}}}
                    ]})
                })
                .collect();
            json!({"type": "object", "allOf": all}).to_string()
        }
        "huge_number" => format!(r#"{{"type":"number","minimum":1{}}}"#, "0".repeat(n("digits"))),
        "pattern_props" => {
            let pp: serde_json::Map<String, Value> =
                (0..n("count")).map(|i| (format!("^p{i}_[a-z]+$"), json!({"type": "integer"}))).collect();
            json!({"type": "object", "patternProperties": pp, "additionalProperties": false}).to_string()
        }
        "overlap_props" => {
            // Unanchored: a key may hold every pattern.
            let pp: serde_json::Map<String, Value> =
                (0..n("count")).map(|i| (format!("p{i}"), json!({"type": "integer"}))).collect();
            json!({"type": "object", "patternProperties": pp, "additionalProperties": false}).to_string()
        }
        "nots" => {
            let d = n("depth");
            format!("{}{}{}", r#"{"not":"#.repeat(d), r#"{"type":"string"}"#, "}".repeat(d))
        }
        k => panic!("unknown generator {k}"),
    }
}

/// `"compiles"` or the error kind's name (with its keyword and pointer),
/// the time and the grammar's memory.
fn answer(text: String) -> (String, Option<(Option<String>, String)>, Duration, usize) {
    let vocab = common::cl100k().vocab.clone();
    let t = Instant::now();
    match Compiler::new().compile_str(&text, vocab.clone()) {
        Ok(g) => {
            let mut m = g.matcher();
            let mut mask = vec![0u32; vocab.mask_words()];
            m.fill_next_token_bitmask(&mut mask).expect("first mask");
            assert!(mask.iter().any(|&w| w != 0), "a compiled grammar allows a first token");
            ("compiles".into(), None, t.elapsed(), g.memory_bytes())
        }
        Err(e) => {
            let kind = format!("{:?}", e.kind());
            assert!(!e.to_string().is_empty());
            if *e.kind() != CompileErrorKind::MalformedJson {
                eprintln!("      {e}");
            }
            (kind, Some((e.keyword().map(str::to_string), e.pointer().to_string())), t.elapsed(), 0)
        }
    }
}

#[test]
fn hostile_schemas_get_their_expected_answer() {
    let file = common::repo().join("corpora/hostile/cases.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    let mut wrong = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap().to_string();
        let text = match (&case["schema"], &case["generate"]) {
            (Value::Null, g) => generate(g),
            (s, _) => s.to_string(),
        };
        let bytes = text.len();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || {
                let _ = tx.send(answer(text));
            })
            .unwrap();
        // A hang detector: far above any answer's time.
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok((got, blame, took, mem)) => {
                eprintln!(
                    "{name}: {got} in {:.1} ms ({:.1} MB schema, {:.1} MB grammar)",
                    took.as_secs_f64() * 1e3,
                    bytes as f64 / 1e6,
                    mem as f64 / 1e6
                );
                let want = case["expect"].as_str().unwrap();
                if got != want {
                    wrong.push(format!("{name}: expected {want}, got {got}"));
                }
                // The refusal names the keyword and the schema location.
                let (keyword, pointer) = blame.unwrap_or_default();
                if let Some(k) = case["keyword"].as_str() {
                    if keyword.as_deref() != Some(k) {
                        wrong.push(format!("{name}: expected keyword {k}, got {keyword:?}"));
                    }
                }
                if let Some(p) = case["pointer"].as_str() {
                    if pointer != p {
                        wrong.push(format!("{name}: expected pointer {p:?}, got {pointer:?}"));
                    }
                }
            }
            Err(_) => wrong.push(format!("{name}: no answer (panic or hang)")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn deadline_and_cancel_stop_a_long_compile() {
    // An enum of 100,000 strings takes hundreds of milliseconds to refuse.
    let text = generate(&json!({"kind": "enum", "count": 100000}));
    let vocab = common::cl100k().vocab.clone();
    let deadline = grammask::Config::new().deadline(Duration::from_millis(5));
    let e = Compiler::with_config(deadline).compile_str(&text, vocab.clone()).unwrap_err();
    assert_eq!(e.kind(), &CompileErrorKind::LimitExceeded);
    assert!(e.to_string().contains("deadline"), "{e}");

    let cancel = grammask::Cancel::new();
    let compiler = Compiler::new().with_cancel(cancel.clone());
    let e = std::thread::scope(|s| {
        let h = s.spawn(|| compiler.compile_str(&text, vocab.clone()));
        std::thread::sleep(Duration::from_millis(5));
        cancel.cancel();
        h.join().unwrap().unwrap_err()
    });
    assert_eq!(e.kind(), &CompileErrorKind::Cancelled, "{e}");

    // A generous deadline changes nothing, not even the fingerprint.
    let schema = r#"{"type":"object","properties":{"a":{"enum":[1,2,3]}}}"#;
    let relaxed = grammask::Config::new().deadline(Duration::from_secs(600));
    let a = Compiler::with_config(relaxed).compile_str(schema, vocab.clone()).unwrap();
    let b = Compiler::new().compile_str(schema, vocab).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
}
