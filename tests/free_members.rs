//! Objects past the any-order limit: members the closing `}` depends on
//! keep a keyset bit, the others are free and checked at run time
//! (`grammask::keys`). Texts as a model may spell them are accepted exactly
//! when no declared name comes twice (and the schema holds), masks equal
//! the byte-by-byte reference along every prefix, and no prefix the masks
//! let through is a dead end.

mod common;
use common::*;
use grammask::{Compiler, Matcher, Rng};
use serde_json::{json, Value};

/// 30 optional members, some of them prefixes of others; `r` required and
/// `u` needing `h` when `required` is set; additional keys `x-…` when `open`.
fn schema(required: bool, open: bool) -> Value {
    let mut props = serde_json::Map::new();
    for i in 0..26 {
        props.insert(format!("k{i}"), json!({"type": "integer"}));
    }
    props.insert("n".into(), json!({"type": "string"}));
    props.insert("na".into(), json!({"type": "object", "properties": {"a": {"type": "integer"}}}));
    props.insert("nam".into(), json!({"type": "array", "items": {"type": "string"}}));
    props.insert("q\"".into(), json!({"type": "boolean"}));
    let mut s = json!({"type": "object", "properties": props, "additionalProperties": false});
    if required {
        s["properties"]["r"] = json!({"type": "integer"});
        s["properties"]["u"] = json!({"type": "string"});
        s["properties"]["h"] = json!({"type": "string"});
        s["required"] = json!(["r"]);
        s["dependentRequired"] = json!({"u": ["h"]});
    }
    if open {
        s["patternProperties"] = json!({"^x-": {"type": "integer"}});
    }
    s
}

/// (required, open, text, whole text accepted as a complete instance).
const TEXTS: &[(bool, bool, &str, bool)] = &[
    (false, false, r#"{"k3":1,"k1":2}"#, true),
    (false, false, r#"{"k3":1,"k3":2}"#, false),
    (false, false, r#"{"k1":1,"k12":2,"k1":3}"#, false),
    (false, false, r#"{"n":"a","na":{},"nam":[]}"#, true),
    (false, false, r#"{"nam":[],"na":{"a":1},"n":"x","na":{}}"#, false),
    (false, false, r#"{ "n" : "}\",", "k0" : 1 , "n" : ""}"#, false),
    (false, false, r#"{"n":"{\"k0\":1","k0":1}"#, true),
    (false, false, r#"{"na":{"a":1},"k0":1}"#, true),
    (false, false, r#"{"q\"":true,"q\"":false}"#, false),
    (false, false, r#"{"k0":[],"k1":2}"#, false),
    (true, false, r#"{"k0":1}"#, false),
    (true, false, r#"{"k0":1,"r":2}"#, true),
    (true, false, r#"{"r":2,"r":3}"#, false),
    (true, false, r#"{"u":"a","r":2}"#, false),
    (true, false, r#"{"u":"a","r":2,"h":"b"}"#, true),
    (true, false, r#"{"k5":1,"r":2,"k5":1}"#, false),
    (false, true, r#"{"x-a":1,"k2":2,"x-b":3}"#, true),
    (false, true, r#"{"x-a":1,"k2":2,"k2":3}"#, false),
    (false, true, r#"{"x-a":"s"}"#, false),
];

fn fed(m: &mut Matcher, text: &str) -> bool {
    m.accept_bytes(text.as_bytes()).is_ok() && m.can_terminate()
}

#[test]
fn declared_names_come_once() {
    let vocab = cl100k().vocab.clone();
    for &(req, open, text, want) in TEXTS {
        let s = schema(req, open);
        let g = Compiler::new().compile(&s, vocab.clone()).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(fed(&mut g.matcher(), text), want, "{text}");
        let mut m = g.matcher();
        let bytewise = text.bytes().all(|b| m.accept_bytes(&[b]).is_ok()) && m.can_terminate();
        assert_eq!(bytewise, want, "{text} byte by byte");
        // Where the text has no repeated key, the validator agrees.
        let v: Value = serde_json::from_str(text).expect("JSON text");
        let keys = text.matches("\":").count();
        if want || v.as_object().is_some_and(|o| o.len() == keys) {
            assert_eq!(validator(&s).is_valid(&v), want, "{text} per jsonschema");
        }
    }
}

#[test]
fn all_members_written_leaves_no_comma() {
    // Every member written: a comma would lead nowhere.
    let s = json!({"type": "object", "additionalProperties": false,
        "properties": (0..30).map(|i| (format!("k{i}"), json!({"type": "integer"}))).collect::<serde_json::Map<_, _>>()});
    let g = Compiler::new().compile(&s, cl100k().vocab.clone()).expect("compiles");
    let mut m = g.matcher();
    let all: Vec<String> = (0..30).rev().map(|i| format!("\"k{i}\":{i}")).collect();
    m.accept_bytes(format!("{{{}", all.join(",")).as_bytes()).expect("every member");
    assert!(m.clone().accept_bytes(b",").is_err(), "no member left after a comma");
    let mask = m.compute_mask().expect("mask");
    for t in 0..cl100k().vocab.size() as u32 {
        assert_eq!(bit(&mask, t), m.clone().is_token_allowed_slow(t), "token {t}");
    }
    assert!(m.accept_bytes(b"}").is_ok());
    // One left: it alone may follow the comma.
    let mut m = g.matcher();
    m.accept_bytes(format!("{{{},", all[..29].join(",")).as_bytes()).expect("all but k0");
    assert!(m.clone().accept_bytes(br#""k1""#).is_err());
    assert!(m.accept_bytes(br#""k0":0}"#).is_ok());
}

#[test]
fn masks_match_the_reference_and_never_dead_end() {
    // Along every prefix of every text, as cl100k would tokenize it: each
    // mask equals the reference on every token with a quote, a comma or a
    // key byte and a random sample of the rest, and some token is allowed.
    let tok = cl100k();
    let mut rng = Rng::new(11);
    let touching: Vec<u32> = (0..tok.vocab.size() as u32)
        .filter(|&t| tok.vocab.token_bytes(t).iter().any(|b| b"\",{}[]knqrux ".contains(b)))
        .collect();
    for &(req, open, text, _) in TEXTS.iter().step_by(2) {
        let g = Compiler::new().compile(&schema(req, open), tok.vocab.clone()).expect("compiles");
        masks_along_text(&g, tok, text, &touching, 300, &mut rng, &format!("required {req}, open {open}"));
    }
}

#[test]
fn rollback_forgets_members() {
    let g = Compiler::new().compile(&schema(false, false), cl100k().vocab.clone()).expect("compiles");
    let mut m = g.matcher();
    m.accept_bytes(br#"{"k1":1,"#).expect("one member");
    m.accept_bytes(br#""k2":2,"#).expect("two members");
    assert!(m.clone().accept_bytes(br#""k2""#).is_err());
    m.rollback(1).expect("rollback");
    m.accept_bytes(br#""k3":3,"#).expect("another second member");
    assert!(m.clone().accept_bytes(br#""k2""#).is_ok(), "k2 was rolled back");
    assert!(m.accept_bytes(br#""k3""#).is_err());
}

#[test]
fn keys_within_one_token_are_checked() {
    // A vocabulary whose tokens close keys, open the next ones and hold
    // whole members: at every prefix, each token's mask bit equals the
    // reference.
    let pieces = [
        "{",
        "}",
        ",",
        "\"",
        ":",
        "1",
        "k3",
        "k3\"",
        "k3\":",
        "k3\":1",
        "k3\":1,\"k3",
        "k3\":1,\"k4",
        ",\"k3",
        ",\"k3\":",
        "\"k3",
        "\"k3\":1,\"k3\":",
        "k",
        "n",
        "na",
        "na\"",
        "nam\"",
        "\":",
        "\",\"",
        "\":\"",
        "a",
        "x\",\"na",
        "q\\\"\"",
        "q\\\"",
        "\\\"",
        " ",
        "[]",
        "{}",
        "k1",
        "k12",
        "k1\"",
    ];
    let v = std::sync::Arc::new(grammask::Vocabulary::from_token_bytes(&pieces, &[]).expect("vocabulary"));
    let prefixes = [
        "",
        r#"{"#,
        r#"{""#,
        r#"{"k3":1,"#,
        r#"{"k3":1,""#,
        r#"{"k3":1,"k"#,
        r#"{"k3":1,"k1":1,"k"#,
        r#"{"na":{},"n":"x","#,
        r#"{"na":{},"n":"x",""#,
        r#"{"n":"x"#,
        r#"{"q\"":true,""#,
        r#"{"q\"":true,"q"#,
    ];
    for (req, open) in [(false, false), (true, false), (false, true)] {
        let g = Compiler::new().compile(&schema(req, open), v.clone()).expect("compiles");
        for p in prefixes {
            let mut m = g.matcher();
            if m.accept_bytes(p.as_bytes()).is_err() {
                continue;
            }
            let mask = m.compute_mask().expect("mask");
            for t in 0..v.size() as u32 {
                assert_eq!(
                    bit(&mask, t),
                    m.clone().is_token_allowed_slow(t),
                    "{req} {open} after {p:?}: {:?}",
                    pieces[t as usize]
                );
            }
        }
    }
}
