//! Run-time `uniqueItems` on arrays of open-ended objects (and strings):
//! texts as a model may spell them (members in any order, whitespace,
//! escapes, numbers written differently, a key written twice) accepted
//! exactly when the items differ as values, as both validators judge;
//! masks equal to the byte-by-byte reference along every prefix; repeats
//! inside one token and after a rollback.

mod common;
use common::*;
use grammask::{CompileErrorKind, Compiler};
use serde_json::{json, Value};

/// Schemas by name.
fn schema(name: &str) -> Value {
    match name {
        "objects" => json!({"type": "array", "uniqueItems": true, "items": {"type": "object",
                            "properties": {"a": {"type": "integer"}, "b": {"type": "array"}}}}),
        "either" => json!({"type": "array", "uniqueItems": true, "items": {"type": ["string", "object"]}}),
        "branches" => json!({"type": "array", "uniqueItems": true, "items": {"oneOf": [
                             {"type": "string"}, {"type": "object", "required": ["k"],
                              "properties": {"k": {"enum": [1, 2]}}}]}}),
        "nested" => json!({"type": "array", "uniqueItems": true, "items": {"type": "object",
                           "properties": {"tags": {"$ref": "#/$defs/tags"}}}, "$defs": {"tags": {"type": "array",
                           "uniqueItems": true, "items": {"type": "object"}}}}),
        "inner" => json!({"type": "object", "properties": {"list": {"type": "array", "uniqueItems": true,
                          "minItems": 2, "items": {"type": "object", "required": ["id"]}}}}),
        "vendor" => json!({"type": "array", "uniqueItems": true, "items": {"type": "object",
                           "additionalProperties": false, "required": ["name"], "properties": {"name": {"type": "string"}},
                           "patternProperties": {"^x-": {}}, "dependentRequired": {"x-id": ["name"]}}}),
        _ => unreachable!("{name}"),
    }
}

/// (schema, text, whole text accepted as a complete instance).
const TEXTS: &[(&str, &str, bool)] = &[
    ("objects", r#"[{},{"a":1}]"#, true),
    ("objects", r#"[{},{}]"#, false),
    ("objects", r#"[{"a":1},{"b":[]},{"a":2}]"#, true),
    ("objects", r#"[{"a":1,"b":[1]},{"b":[1],"a":1}]"#, false),
    ("objects", r#"[{"a":1,"b":[1]} , { "b" : [ 1.0 ] , "a" : 1 }]"#, false),
    ("objects", r#"[{"a":1,"b":[1e0]},{"b":[1],"a":1}]"#, false),
    ("objects", r#"[{"b":[1,2]},{"b":[2,1]}]"#, true),
    ("objects", r#"[{"b":[true]},{"b":[1]}]"#, true),
    ("objects", r#"[{"b":[null,{}]},{"b":[null,{}]}]"#, false),
    ("objects", r#"[{"x":"\u0041"},{"x":"A"}]"#, false),
    ("objects", r#"[{"\u0078":"A"},{"x":"A"}]"#, false),
    ("objects", r#"[{"x":"}\"]"},{"x":"}\"]"}]"#, false),
    ("objects", r#"[{"x":"}\"]"},{"x":"}\"] "}]"#, true),
    ("objects", r#"[{"a":1},{"a":2},{"c":"{"},{"a":2}]"#, false),
    ("either", r#"["a",{"a":"a"},"b",{}]"#, true),
    ("either", r#"[{"s":"a"},"a",{"s":"a"}]"#, false),
    ("either", r#"["{}",{}]"#, true),
    ("either", r#"["x","\u0078"]"#, false),
    ("branches", r#"["k",{"k":1},{"k":2}]"#, true),
    ("branches", r#"[{"k":1},{"k":1.0}]"#, false),
    ("nested", r#"[{"tags":[{},{"a":1}]},{"tags":[{"a":1},{}]}]"#, true),
    ("nested", r#"[{"tags":[{},{"a":1}]},{"tags":[{},{"a":1}]}]"#, false),
    ("nested", r#"[{"tags":[{"a":1},{"a":1}]}]"#, false),
    ("vendor", r#"[{"name":"a"},{"name":"a","x-b":1}]"#, true),
    ("vendor", r#"[{"name":"a","x-b":1},{"x-b":1.0,"name":"a"}]"#, false),
    ("vendor", r#"[{"name":"a","x-b":{"c":[]}},{"name":"a","x-b":{"c":[]}}]"#, false),
    ("inner", r#"{"list":[{"id":1},{"id":2}]}"#, true),
    ("inner", r#"{"list":[{"id":1},{"id":1}]}"#, false),
    ("inner", r#"{"list":[{"id":"1"},{"id":1}],"list2":[{"id":1},{"id":1}]}"#, true),
];

#[test]
fn items_are_compared_as_values() {
    let vocab = cl100k().vocab.clone();
    for &(name, text, want) in TEXTS {
        judged_as_validators_judge(&schema(name), &vocab, name, text, want);
    }
}

#[test]
fn masks_match_the_reference() {
    // Along every prefix of every text, as cl100k tokenizes it: each mask
    // equals the reference on every token with a byte that can touch an
    // item and on a random sample of the rest.
    masks_along_table(schema, TEXTS, b"\"\\[]{},", 11);
}

#[test]
fn repeats_within_one_token_are_refused() {
    let v = std::sync::Arc::new(
        grammask::Vocabulary::from_token_bytes(
            &["[{},{}]", "[{},{\"a\":1}]", "[{}", ",{}", ",{ }]", "]", "{\"a\":1}", "}", "{", ","],
            &[],
        )
        .expect("vocabulary"),
    );
    let g = Compiler::new().compile(&schema("objects"), v.clone()).expect("compiles");
    let mut m = g.matcher();
    let mask = m.compute_mask().expect("mask");
    assert!(!bit(&mask, 0) && bit(&mask, 1) && bit(&mask, 2), "{mask:?}");
    m.accept_token(2).expect("first item");
    let mask = m.compute_mask().expect("mask");
    assert!(!bit(&mask, 3) && !bit(&mask, 4) && bit(&mask, 9), "{mask:?}");
    assert!(m.clone().accept_token(3).is_err());
    m.accept_token(9).expect("comma");
    m.accept_token(8).expect("open");
    let mask = m.compute_mask().expect("mask");
    assert!(!bit(&mask, 7), "{{}} again: {mask:?}");
}

#[test]
fn rollback_forgets_items() {
    let g = Compiler::new().compile(&schema("objects"), cl100k().vocab.clone()).expect("compiles");
    let mut m = g.matcher();
    m.accept_bytes(br#"[{"a":1},"#).expect("one item");
    m.accept_bytes(br#"{"a":2},"#).expect("two items");
    assert!(m.clone().accept_bytes(br#"{"a":2}"#).is_err());
    m.rollback(1).expect("rollback");
    m.accept_bytes(br#"{"a":3},"#).expect("another second item");
    assert!(m.clone().accept_bytes(br#"{"a":2}"#).is_ok(), "{{\"a\":2}} was rolled back");
    assert!(m.clone().accept_bytes(br#"{ "a" : 3 }"#).is_err());
}

#[test]
fn what_is_not_compared_is_refused_by_name() {
    for s in [
        json!({"type": "array", "items": {"type": ["object", "number"]}, "uniqueItems": true}),
        json!({"type": "array", "items": {"type": "object", "additionalProperties": false}, "uniqueItems": true}),
        json!({"type": "array", "items": {"type": "object", "maxProperties": 3}, "uniqueItems": true}),
        json!({"type": "array", "items": {"type": "object", "additionalProperties": false,
               "patternProperties": {"^a$": {}}}, "uniqueItems": true}),
        json!({"type": "array", "items": {"type": "object", "patternProperties": {"^a": false}}, "uniqueItems": true}),
        json!({"type": "array", "items": {"type": ["object", "string"], "maxLength": 3}, "uniqueItems": true}),
        json!({"type": "array", "items": {"type": "string", "pattern": "^(ab|cd)$"}, "uniqueItems": true,
               "prefixItems": [{"type": "object"}]}),
        json!({"type": "array", "items": {"type": "boolean"}, "uniqueItems": true}),
        json!({"type": "array", "items": {"oneOf": [{"type": "object"}, {"type": "object", "required": ["a"]}]},
               "uniqueItems": true}),
        json!({"type": "array", "items": {"type": "object"}, "contains": {"required": ["a"]}, "uniqueItems": true}),
    ] {
        let e = Compiler::new().compile(&s, cl100k().vocab.clone()).expect_err("refused");
        assert_eq!(e.kind(), &CompileErrorKind::Unsupported, "{s}: {e}");
        assert_eq!(e.keyword(), Some("uniqueItems"), "{s}: {e}");
        assert!(e.to_string().contains("few completions"), "{s}: {e}");
    }
}
