//! Output text judged raw: object member order, duplicates and counts (a
//! parsed `Value` cannot show order or duplicate keys), and number syntax
//! under bounds (digit counts, fraction lengths, exponents). Data-driven
//! from `corpora/text/objects.json` and `corpora/text/numbers.json`: each
//! case lists texts a matcher must accept in full (and may stop after) and
//! texts it must refuse somewhere.

mod common;

use common::*;
use grammask::{Compiler, Config, PropertyOrder, Whitespace};
use serde_json::Value;

fn accepts(g: &std::sync::Arc<grammask::CompiledGrammar>, text: &str) -> bool {
    let mut m = g.matcher();
    m.accept_bytes(text.as_bytes()).is_ok() && m.can_terminate()
}

#[test]
fn object_texts() {
    text_cases("objects.json");
}

#[test]
fn number_texts() {
    text_cases("numbers.json");
}

fn text_cases(file: &str) {
    let path = format!("{}/corpora/text/{file}", env!("CARGO_MANIFEST_DIR"));
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 5);
    for case in &cases {
        let note = case["note"].as_str().unwrap();
        let order = match case.get("order").and_then(|o| o.as_str()) {
            Some("schema") => PropertyOrder::Schema,
            _ => PropertyOrder::Any,
        };
        let ws = match case.get("ws").and_then(|w| w.as_u64()) {
            Some(n) => Whitespace::Flexible { max_run: n as u8 },
            None => Whitespace::Compact,
        };
        let g = Compiler::with_config(Config::new().property_order(order).whitespace(ws))
            .compile(&case["schema"], cl100k().vocab.clone())
            .unwrap_or_else(|e| panic!("{note}: {e}"));
        let v = validator(&case["schema"]);
        for t in case["accept"].as_array().unwrap() {
            let t = t.as_str().unwrap();
            assert!(accepts(&g, t), "{note}: {t} refused");
            // The oracle agrees on what we accept (texts have no duplicates).
            assert!(v.is_valid(&serde_json::from_str(t).unwrap()), "{note}: {t} is not valid");
        }
        for t in case["reject"].as_array().unwrap() {
            let t = t.as_str().unwrap();
            assert!(!accepts(&g, t), "{note}: {t} accepted");
        }
    }
}
