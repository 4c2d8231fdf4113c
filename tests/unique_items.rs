//! Run-time `uniqueItems` on arrays of strings: texts as a model may spell
//! them (escapes, surrogate pairs, whitespace, items split across tokens)
//! accepted exactly when the items differ as decoded strings, masks equal
//! to the byte-by-byte reference along every prefix, and no dead end (a
//! prefix the masks let through always has a finished array ahead).

mod common;
use common::*;
use grammask::{CompileErrorKind, Compiler, Config, Matcher};
use serde_json::{json, Value};

/// Schemas by name.
fn schema(name: &str) -> Value {
    match name {
        "free" => json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true}),
        "enum" => json!({"type": "array", "items": {"enum": ["a", "ab", "abc"]}, "uniqueItems": true}),
        "few" => json!({"type": "array", "items": {"type": "string", "pattern": "^[ab]?$"}, "uniqueItems": true}),
        "prefix" => json!({"type": "array", "prefixItems": [{"const": "x"}, {"type": "string"}], "items": false,
                           "uniqueItems": true}),
        "nested" => json!({"type": "array", "items": {"type": "array", "items": {"type": "string"},
                           "uniqueItems": true}}),
        "either" => json!({"anyOf": [
                           {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                           {"type": "array", "items": {"type": "string", "maxLength": 1}}]}),
        "mixed" => {
            json!({"type": "array", "items": {"anyOf": [{"enum": ["x", "y"]}, {"type": "string", "pattern": "^z+$"}]},
                          "uniqueItems": true})
        }
        "narrowed" => json!({"type": "array", "items": {"enum": ["a", "bb", "c"], "maxLength": 1}, "uniqueItems": true,
                             "minItems": 2}),
        _ => unreachable!("{name}"),
    }
}

/// (schema, text, whole text accepted as a complete instance).
const TEXTS: &[(&str, &str, bool)] = &[
    ("free", r#"["a","b"]"#, true),
    ("free", r#"["a","a"]"#, false),
    ("free", r#"["a","\u0061"]"#, false),
    ("free", r#"["\u0061","a"]"#, false),
    ("free", r#"["\u00e9","é"]"#, false),
    ("free", r#"["\u00E9","\u00e9"]"#, false),
    ("free", r#"["😀","\ud83d\ude00"]"#, false),
    ("free", r#"["\ud83d\ude00","\uD83D\uDE00"]"#, false),
    ("free", r#"["\/","/"]"#, false),
    ("free", r#"["\n","\u000a"]"#, false),
    ("free", r#"["\"","\u0022"]"#, false),
    ("free", r#"["\\","\\\\"]"#, true),
    ("free", r#"["\\\"","\\\""]"#, false),
    ("free", r#"[ "a" , "b" , "a" ]"#, false),
    ("free", r#"["a","b","c","d","e","c"]"#, false),
    ("free", r#"["a","A","a "," a"]"#, true),
    ("free", r#"["","\"","\\"]"#, true),
    ("free", r#"["ab","a","b"]"#, true),
    ("enum", r#"["a","ab","abc"]"#, true),
    ("enum", r#"["abc","a","abc"]"#, false),
    ("few", r#"["","a","b"]"#, true),
    ("few", r#"["","a",""]"#, false),
    ("prefix", r#"["x","y"]"#, true),
    ("prefix", r#"["x","x"]"#, false),
    ("nested", r#"[["a","b"],["a","b"]]"#, true),
    ("nested", r#"[["a"],["b","b"]]"#, false),
    ("nested", r#"[["a","b"],["b","a","b"]]"#, false),
    ("either", r#"["a","a"]"#, true),
    ("either", r#"["ab","ab"]"#, false),
    ("mixed", r#"["x","z","zz","y"]"#, true),
    ("mixed", r#"["zz","x","zz"]"#, false),
    ("narrowed", r#"["c","a"]"#, true),
    ("narrowed", r#"["a","a"]"#, false),
];

fn fed(m: &mut Matcher, text: &str) -> bool {
    m.accept_bytes(text.as_bytes()).is_ok() && m.can_terminate()
}

#[test]
fn items_are_compared_as_decoded_strings() {
    let vocab = cl100k().vocab.clone();
    for &(name, text, want) in TEXTS {
        judged_as_validators_judge(&schema(name), &vocab, name, text, want);
    }
}

#[test]
fn masks_match_the_reference_and_never_dead_end() {
    // Along every prefix of every text, as cl100k would tokenize it and
    // byte by byte: each mask equals the reference, and some allowed token
    // or a stop is always there; where the text is refused, the refusing
    // token is masked.
    // Compared: every token with a byte that can touch an item (quote,
    // backslash, brackets, comma) and a random sample of the rest.
    masks_along_table(schema, TEXTS, b"\"\\[],", 7);
}

#[test]
fn repeats_within_one_token_are_refused() {
    // A vocabulary whose tokens hold whole arrays: the check reads inside
    // a token, and the masks agree.
    let v = std::sync::Arc::new(
        grammask::Vocabulary::from_token_bytes(
            &[r#"["a","a"]"#, r#"["a","b"]"#, r#"["a",""#, r#"a""#, r#"b""#, "]", "[", "\"", "a", ","],
            &[],
        )
        .expect("vocabulary"),
    );
    let g = Compiler::new().compile(&schema("free"), v.clone()).expect("compiles");
    let mut m = g.matcher();
    let mask = m.compute_mask().expect("mask");
    assert!(!bit(&mask, 0) && bit(&mask, 1) && bit(&mask, 2), "{mask:?}");
    m.accept_token(2).expect("opens the second item");
    let mask = m.compute_mask().expect("mask");
    assert!(!bit(&mask, 3) && bit(&mask, 4), "{mask:?}");
    assert!(m.accept_token(3).is_err());
}

#[test]
fn liveness_looks_ahead_within_an_item() {
    // Items "a", "ab", "abc": after two of them, the third is forced, and
    // a comma after all three is not allowed.
    let g = Compiler::new().compile(&schema("enum"), cl100k().vocab.clone()).expect("compiles");
    let mut m = g.matcher();
    m.accept_bytes(br#"["abc","a","a"#).expect("prefix of the third");
    assert!(m.clone().accept_bytes(b"\"").is_err(), "\"a\" repeats");
    assert!(m.clone().accept_bytes(b"b\"]").is_ok());
    let mut m = g.matcher();
    m.accept_bytes(br#"["abc","ab","#).expect("two items");
    assert!(m.clone().accept_bytes(br#""a"]"#).is_ok());
    assert!(m.clone().accept_bytes(br#""ab"#).is_err(), "\"ab\" can only close as a repeat");
    let mut m = g.matcher();
    m.accept_bytes(br#"["abc","ab","a""#).expect("all three");
    assert!(m.clone().accept_bytes(b",").is_err(), "no fourth value");
    // An infinite pattern whose "a" cannot go on: after "a", a second
    // item that starts with "a" has no way to differ.
    let s = json!({"type": "array", "items": {"type": "string", "pattern": "^(a|b+)$"}, "uniqueItems": true});
    let g = Compiler::new().compile(&s, cl100k().vocab.clone()).expect("compiles");
    assert!(g.matcher().accept_bytes(br#"["a","a"#).is_err(), "a dead end is refused");
    assert!(g.matcher().accept_bytes(br#"["a","bb","b"]"#).is_ok());
    // A search pattern not anchored at the start: any prefix goes on.
    let s = json!({"type": "array", "items": {"type": "string", "pattern": "x$"}, "uniqueItems": true});
    let g = Compiler::new().compile(&s, cl100k().vocab.clone()).expect("compiles");
    assert!(g.matcher().accept_bytes(br#"["ax","ax"#).is_ok());
    assert!(g.matcher().accept_bytes(br#"["ax","ax""#).is_err());
    // A finite pattern: after "", "a", "b" the array must close.
    let g = Compiler::new().compile(&schema("few"), cl100k().vocab.clone()).expect("compiles");
    let mut m = g.matcher();
    m.accept_bytes(br#"["b","","a""#).expect("all three");
    assert!(m.clone().accept_bytes(b",").is_err());
    assert!(m.accept_bytes(b"]").is_ok());
}

#[test]
fn rollback_forgets_items() {
    let g = Compiler::new().compile(&schema("free"), cl100k().vocab.clone()).expect("compiles");
    let mut m = g.matcher();
    m.accept_bytes(br#"["a","#).expect("one item");
    m.accept_bytes(br#""b","#).expect("two items");
    assert!(m.clone().accept_bytes(br#""b""#).is_err());
    m.rollback(1).expect("rollback");
    m.accept_bytes(br#""c","#).expect("another second item");
    assert!(m.clone().accept_bytes(br#""b""#).is_ok(), "b was rolled back");
    assert!(m.clone().accept_bytes(br#""c""#).is_err());
}

#[test]
fn what_is_not_compared_is_refused_by_name() {
    for (s, why) in [
        (json!({"type": "array", "items": {"type": "integer"}, "uniqueItems": true}), "may be numbers"),
        (json!({"type": "array", "uniqueItems": true}), "may be numbers"),
        (json!({"type": "array", "items": {"enum": ["a", 1]}, "uniqueItems": true}), "may be numbers"),
        (
            json!({"type": "array", "items": {"type": "string", "maxLength": 1, "pattern": "^a"},
                   "uniqueItems": true, "minItems": 2}),
            "distinct",
        ),
    ] {
        let e = Compiler::new().compile(&s, cl100k().vocab.clone()).expect_err("refused");
        assert_eq!(e.kind(), &CompileErrorKind::Unsupported, "{s}: {e}");
        assert_eq!(e.keyword(), Some("uniqueItems"), "{s}: {e}");
        assert!(e.to_string().contains(why), "{s}: {e}");
    }
    // Lenient: relaxed and reported, never silent.
    let s = json!({"type": "array", "items": {"type": "integer"}, "uniqueItems": true});
    let g = Compiler::with_config(Config::new().strict(false)).compile(&s, cl100k().vocab.clone()).expect("lenient");
    assert_eq!(g.relaxations().len(), 1);
    // An enum with fewer values than minItems has no valid array.
    let s = json!({"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true, "minItems": 3});
    let g = Compiler::new().compile(&s, cl100k().vocab.clone());
    assert!(g.is_err() || !fed(&mut g.expect("compiled").matcher(), r#"["a","b","a"]"#));
}
