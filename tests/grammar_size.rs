//! Grammar sizes stay linear where the construction promises it: an object
//! state is one state (plus its whitespace run) per set of members present,
//! an array item used at many positions is one machine, and an
//! additional-key set stays about one state per trie node. Each case bounds
//! the state count of a schema whose blow-up a regression would bring back.
//! Measured under the 2026-11-29 construction: 21,317 / 17,192 / 1,116 /
//! 1,775 / 25,505 states (the two 40-property cases were already linear;
//! they guard it), today 2,925 / 1,859 / 1,157 / 1,728 / 550.

mod common;
use common::*;
use grammask::{Compiler, Config, Whitespace};
use serde_json::{json, Value};

fn states(schema: &Value, ws: Whitespace) -> usize {
    Compiler::with_config(Config::new().whitespace(ws))
        .compile(schema, cl100k().vocab.clone())
        .expect("compiles")
        .num_states()
}

/// `n` optional integer properties named `p0`, `p1`, …
fn object(n: usize) -> Value {
    let props: serde_json::Map<String, Value> = (0..n).map(|i| (format!("p{i}"), json!({"type": "integer"}))).collect();
    json!({"type": "object", "properties": props})
}

#[test]
fn grammar_sizes_stay_linear() {
    let countries: Vec<String> = (0..200).map(|i| format!("C{i:03}")).collect();
    let names: Vec<String> = (0..40).map(|i| format!("field_number_{i}")).collect();
    let many: serde_json::Map<String, Value> = names.iter().map(|n| (n.clone(), json!({"type": "integer"}))).collect();
    let cases: Vec<(&str, Value, Whitespace, usize)> = vec![
        // 2^10 member sets, each one state plus one whitespace state, plus
        // the "additional member seen" bit only while nothing is declared:
        // 20,480 states before objects lost their epsilons.
        ("10 properties, any order", object(10), Whitespace::Flexible { max_run: 1 }, 4_000),
        ("10 properties, compact", object(10), Whitespace::Compact, 2_500),
        // 40 optional properties in schema order: the skips are folded into
        // the edges, not an epsilon chain per position.
        (
            "40 properties, schema order",
            json!({"type": "object", "properties": many, "additionalProperties": false}),
            Whitespace::Compact,
            1_500,
        ),
        // The same with additional keys allowed: the key machine excludes
        // 40 names, escapes included.
        ("40 properties, additional keys", json!({"type": "object", "properties": many}), Whitespace::Compact, 2_200),
        // 60 positions of a 200-literal enum: one item machine, not 60 copies.
        (
            "array of enum, maxItems 60",
            json!({"type": "array", "items": {"enum": countries}, "maxItems": 60}),
            Whitespace::Compact,
            3_000,
        ),
    ];
    for (name, schema, ws, bound) in cases {
        let n = states(&schema, ws);
        eprintln!("{name}: {n} states (bound {bound})");
        assert!(n <= bound, "{name}: {n} states, more than {bound}");
    }
}
