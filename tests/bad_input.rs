//! Bad input gets a typed error with a clear message, never a panic.

mod common;
use common::*;
use grammask::{CompileErrorKind, Compiler, Config, MatchError, VocabError, Vocabulary};
use serde_json::json;
use std::sync::Arc;

fn vocab() -> Arc<Vocabulary> {
    cl100k().vocab.clone()
}

fn err(schema: serde_json::Value) -> grammask::CompileError {
    Compiler::new().compile(&schema, vocab()).expect_err("must fail")
}

#[test]
fn malformed_schema_json() {
    let e = Compiler::new().compile_str("{\"type\": ", vocab()).unwrap_err();
    assert_eq!(e.kind(), &CompileErrorKind::MalformedJson);
    assert!(e.to_string().contains("not JSON"), "{e}");
}

#[test]
fn invalid_schema_values() {
    for (s, kw) in [
        (json!({"type": 5}), "type"),
        (json!({"type": "strin"}), "type"),
        (json!({"anyOf": []}), "anyOf"),
        (json!({"anyOf": {}}), "anyOf"),
        (json!({"enum": 3}), "enum"),
        (json!({"type": "array", "minItems": -1}), "minItems"),
        (json!({"type": "object", "required": [1]}), "required"),
        (json!({"$ref": 7}), "$ref"),
    ] {
        let e = err(s.clone());
        assert_eq!(e.kind(), &CompileErrorKind::InvalidSchema, "{s}: {e}");
        assert_eq!(e.keyword(), Some(kw), "{s}: {e}");
    }
    let e = err(json!(42));
    assert_eq!(e.kind(), &CompileErrorKind::InvalidSchema);
}

#[test]
fn unknown_refs_name_the_ref() {
    for r in ["#/$defs/missing", "other.json#/x", "#nope", "#/definitions/%zz"] {
        let e = err(json!({"type": "object", "properties": {"a": {"$ref": r}}}));
        assert_eq!(e.kind(), &CompileErrorKind::UnknownRef, "{r}: {e}");
        assert_eq!(e.pointer(), "/properties/a");
        assert!(e.to_string().contains(r), "{e}");
    }
}

#[test]
fn unsupported_keywords_fail_strict_and_are_reported_lenient() {
    let s = json!({"$schema": "http://json-schema.org/draft-03/schema#", "type": "object", "properties": {
        "name": {"type": "string", "pattern": "^a(?!b)"},
        "n": {"type": "number", "multipleOf": 0.01},
        "tags": {"type": "array", "uniqueItems": true},
        "when": {"type": "string", "format": "color"}}});
    // Strict: the first unsupported keyword met is an error naming it and
    // where it sits (which one is met first is not part of the contract).
    let e = err(s.clone());
    assert_eq!(e.kind(), &CompileErrorKind::Unsupported);
    let named = [
        ("pattern", "/properties/name"),
        ("multipleOf", "/properties/n"),
        ("uniqueItems", "/properties/tags"),
        ("format", "/properties/when"),
    ];
    assert!(named.contains(&(e.keyword().unwrap_or(""), e.pointer())), "{e}");
    let e = err(json!({"type": "string", "pattern": "^a(?!b)"}));
    assert_eq!(e.keyword(), Some("pattern"));
    assert!(e.to_string().contains("`pattern`") && e.to_string().contains("lookahead"), "{e}");
    let g = Compiler::with_config(Config::new().strict(false)).compile(&s, vocab()).unwrap();
    let mut r: Vec<(&str, &str)> = g.relaxations().iter().map(|r| (r.keyword.as_str(), r.pointer.as_str())).collect();
    r.sort();
    assert_eq!(
        r,
        vec![
            ("format", "/properties/when"),
            ("multipleOf", "/properties/n"),
            ("pattern", "/properties/name"),
            ("uniqueItems", "/properties/tags")
        ]
    );
    // strict grammars relax nothing
    let g = Compiler::new().compile(&json!({"type": "string"}), vocab()).unwrap();
    assert!(g.relaxations().is_empty());
}

#[test]
fn constraints_that_cannot_be_combined_are_named() {
    let e = err(json!({"allOf": [{"type": "string", "format": "date"}, {"format": "email"}]}));
    assert_eq!(e.keyword(), Some("allOf"));
    assert!(e.to_string().contains("`format`"), "{e}");
    // (`duration` has no written superset, so its negation is refused;
    // `email` has one and the same `oneOf` of it compiles.)
    let e = err(json!({"oneOf": [{"type": "string", "format": "duration"}, {"type": "string", "maxLength": 5}]}));
    assert_eq!(e.keyword(), Some("oneOf"));
    assert!(e.to_string().contains("overlap"), "{e}");
    let email = json!({"oneOf": [{"type": "string", "format": "email"}, {"type": "string", "maxLength": 5}]});
    assert!(Compiler::new().compile(&email, vocab()).is_ok());
    // Patterns of two members combine only where neither member closes its
    // other keys: else `b1` (admitted by the second member's pattern) would
    // escape the first member's `additionalProperties: false`.
    let e = err(json!({"allOf": [
        {"patternProperties": {"^a": {}}, "additionalProperties": false},
        {"patternProperties": {"^b": {}}}]}));
    assert_eq!(e.keyword(), Some("allOf"));
    assert!(e.to_string().contains("`patternProperties`"), "{e}");
    // Two `minContains` for two different `contains` do not merge.
    let e = err(json!({"allOf": [{"contains": {"const": 1}}, {"contains": {"const": 2}, "minContains": 2}]}));
    assert!(e.to_string().contains("`contains`"), "{e}");
    // More than the array's size of matching items may be allowed; fewer
    // needs the complement of `contains`.
    let e = err(json!({"type": "array", "contains": {"type": "integer"}, "maxContains": 1}));
    assert_eq!(e.keyword(), Some("maxContains"));
    // `minProperties` that only two free keys could reach: the grammar
    // cannot tell free keys apart (a repeated key would count twice).
    let e = err(json!({"type": "object", "properties": {"a": {}}, "minProperties": 2}));
    assert_eq!(e.keyword(), Some("minProperties"));
    // A dependency whose branches do not merge with a closed object is
    // refused under its own name; lenient, it is the one thing dropped (a
    // failure inside the rewrite once dropped the object's other keywords,
    // `type` with them, while naming only `allOf`).
    let dep = json!({"type": "object", "patternProperties": {"^[a-e]$": true}, "additionalProperties": false,
        "dependencies": {"a": {"required": ["b"]}}, "required": ["d"]});
    assert_eq!(err(dep.clone()).keyword(), Some("dependencies"));
    let g = Compiler::with_config(Config::new().strict(false)).compile(&dep, vocab()).unwrap();
    let r: Vec<&str> = g.relaxations().iter().map(|r| r.keyword.as_str()).collect();
    assert_eq!(r, ["dependencies"]);
    for text in ["true", "\"x\"", "{}", "{\"x\":1}"] {
        let mut m = g.matcher();
        assert!(m.accept_bytes(text.as_bytes()).is_err() || !m.can_terminate(), "{text} accepted");
    }
    let mut m = g.matcher();
    assert!(m.accept_bytes(b"{\"d\":1,\"a\":2}").is_ok() && m.can_terminate());
    // Overlapping branches made exclusive only while the alternatives a
    // matcher would parse side by side stay few: past that a refusal names
    // `oneOf` (once this compiled, and a matcher failed mid-generation on
    // too many parallel parses).
    let branch = |k: &str, own: &str, extra: &str| json!({"required": [own], "properties": {"kind": {"enum": [k]}, own: {"type": "string"}, extra: {}}});
    let many = json!({"type": "object", "required": ["name"], "oneOf": [
        branch("x", "a", "p"), branch("y", "b", "q"), branch("z", "c", "r"), branch("w", "d", "s")]});
    let e = err(many);
    assert_eq!(e.keyword(), Some("oneOf"));
    assert!(e.to_string().contains("alternatives"), "{e}");
    // Lenient: the overlap is reported, and the schema compiles as anyOf.
    let g = Compiler::with_config(Config::new().strict(false))
        .compile(
            &json!({"oneOf": [{"type": "string", "format": "duration"}, {"type": "string", "maxLength": 5}]}),
            vocab(),
        )
        .unwrap();
    assert_eq!(g.relaxations()[0].keyword, "oneOf");
}

#[test]
fn unsatisfiable_and_left_recursive_schemas() {
    assert_eq!(err(json!(false)).kind(), &CompileErrorKind::Unsatisfiable);
    assert_eq!(err(json!({"type": "array", "minItems": 3, "maxItems": 2})).kind(), &CompileErrorKind::Unsatisfiable);
    assert_eq!(
        err(json!({"type": "object", "required": ["a"], "additionalProperties": false})).kind(),
        &CompileErrorKind::Unsatisfiable
    );
    let e = err(json!({"anyOf": [{"$ref": "#"}, {"type": "null"}]}));
    assert_eq!(e.kind(), &CompileErrorKind::InvalidSchema);
    assert!(e.to_string().contains("left-recursive"), "{e}");
}

#[test]
fn limits_are_typed_errors() {
    let e = err(json!({"type": "array", "minItems": 100000}));
    assert_eq!(e.kind(), &CompileErrorKind::LimitExceeded);
    assert_eq!(e.keyword(), Some("minItems"));
    let mut deep = json!({"type": "null"});
    for _ in 0..100 {
        deep = json!({"anyOf": [deep]});
    }
    assert_eq!(err(deep).kind(), &CompileErrorKind::LimitExceeded);
}

#[test]
fn matcher_errors() {
    let g = Compiler::new().compile(&json!({"type": "integer"}), vocab()).unwrap();
    let mut m = g.matcher();
    let size = vocab().size() as u32;
    assert!(matches!(m.accept_token(size + 5), Err(MatchError::TokenOutOfRange { .. })));
    let quote = tiktoken_rs::cl100k_base_singleton().encode_ordinary("\"")[0];
    let e = m.accept_token(quote).unwrap_err();
    assert!(matches!(e, MatchError::TokenRejected { .. }), "{e}");
    assert!(e.to_string().contains("not allowed"));
    let eos = vocab().stop_tokens()[0];
    assert!(matches!(m.accept_token(eos), Err(MatchError::StopNotAllowed { .. })));
    assert!(matches!(m.accept_bytes(b"12x"), Err(MatchError::BytesRejected { offset: 2, .. })));
    assert_eq!(m.output(), b"", "failed calls leave the matcher unchanged");
    let mut small = vec![0u32; 3];
    assert!(matches!(m.fill_next_token_bitmask(&mut small), Err(MatchError::MaskTooSmall { .. })));
    assert!(matches!(m.rollback(1), Err(MatchError::RollbackTooFar { .. })));
    m.accept_bytes(b"12").unwrap();
    m.accept_token(eos).unwrap();
    assert!(matches!(m.accept_token(quote), Err(MatchError::Terminated)));
    // special non-stop tokens are never allowed
    let special =
        (0..size).find(|&t| vocab().kind(t) == Some(grammask::TokenKind::Special) && !vocab().is_stop(t)).unwrap();
    let mut m = g.matcher();
    assert!(matches!(m.accept_token(special), Err(MatchError::TokenRejected { .. })));
}

#[test]
fn vocabulary_files_that_do_not_parse() {
    let dir = std::env::temp_dir().join(format!("grammask-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_json = dir.join("tokenizer.json");
    std::fs::write(&bad_json, "{not json").unwrap();
    assert!(matches!(Vocabulary::from_tokenizer_json(&bad_json), Err(VocabError::Parse(_))));
    std::fs::write(&bad_json, r#"{"model": {"type": "Nope"}}"#).unwrap();
    assert!(matches!(Vocabulary::from_tokenizer_json(&bad_json), Err(VocabError::Parse(_))));
    assert!(matches!(Vocabulary::from_tokenizer_json(dir.join("missing.json")), Err(VocabError::Io { .. })));
    let tt = dir.join("bad.tiktoken");
    std::fs::write(&tt, "IQ== 0\n!!!notbase64 1\n").unwrap();
    let e = Vocabulary::from_tiktoken_file(&tt, &[], &[]).unwrap_err();
    assert!(matches!(e, VocabError::Parse(_)) && e.to_string().contains("line 2"), "{e}");
    std::fs::write(&tt, "IQ== zero\n").unwrap();
    assert!(matches!(Vocabulary::from_tiktoken_file(&tt, &[], &[]), Err(VocabError::Parse(_))));
    std::fs::write(&tt, "IQ== 0\nIg== 1\n").unwrap();
    let v = Vocabulary::from_tiktoken_file(&tt, &[("<|end|>", 5)], &["<|end|>"]).unwrap();
    assert_eq!(v.size(), 6);
    assert_eq!(v.token_bytes(1), b"\"");
    assert!(v.is_stop(5));
    assert!(matches!(Vocabulary::from_token_bytes::<&[u8]>(&[], &[]), Err(VocabError::Invalid(_))));
    assert!(matches!(Vocabulary::from_token_bytes(&[b"a"], &[3]), Err(VocabError::Invalid(_))));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn draft3_formats_follow_the_declared_draft() {
    // Later drafts dropped `color` and `host-name`: an annotation there
    // (every validator lets any string through), a refusal in draft 3.
    for name in ["color", "host-name", "utc-millisec"] {
        let later = json!({"$schema": "http://json-schema.org/draft-04/schema#", "type": "string", "format": name});
        let g = Compiler::new().compile(&later, vocab()).unwrap();
        assert_eq!(g.annotations()[0].keyword, format!("format:{name}"));
        let d3 = json!({"$schema": "http://json-schema.org/draft-03/schema#", "type": "string", "format": name});
        assert_eq!(err(d3).keyword(), Some("format"));
    }
}

#[test]
fn dependent_required_is_negated_only_where_it_is_a_keyword() {
    // Validators read `dependentRequired` from 2019-09 on: its negation is
    // built there, and refused by name in a draft-7 schema (where `not` of
    // it would be `not {}`, which no validator of that draft satisfies).
    let not_dep = |schema: &str| json!({"$schema": schema, "not": {"dependentRequired": {"a": ["b"]}}});
    let g = Compiler::new().compile(&not_dep("https://json-schema.org/draft/2020-12/schema"), vocab()).unwrap();
    let mut m = g.matcher();
    assert!(m.accept_bytes(br#"{"a":1}"#).is_ok() && m.can_terminate());
    let mut m = g.matcher();
    assert!(!(m.accept_bytes(br#"{"a":1,"b":2}"#).is_ok() && m.can_terminate()));
    let e = err(not_dep("http://json-schema.org/draft-07/schema#"));
    assert_eq!(e.kind(), &CompileErrorKind::Unsupported, "{e}");
    assert_eq!(e.keyword(), Some("not"), "{e}");
}

#[test]
fn internal_keywords_spelled_by_a_schema_are_typed_errors() {
    // `x-grammask-not-formats` is made by `not: {format}`, for formats with
    // a superset only; a schema spelling it with another format gets an
    // error, not a panic (string and literal paths).
    for s in [
        json!({"type": "string", "x-grammask-not-formats": ["bogus"]}),
        json!({"enum": ["a"], "x-grammask-not-formats": ["bogus"]}),
    ] {
        let e = err(s);
        assert_eq!(e.kind(), &CompileErrorKind::InvalidSchema, "{e}");
    }
}
