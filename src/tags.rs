//! Structural tags, the tool-call request: free text in which every
//! occurrence of a *trigger* (`<function=`, `<tool_call>`) must go on as one
//! of the tagged structures that begin with it — the rest of its `begin`
//! string, one JSON value valid against its schema, its `end` string — after
//! which free text resumes. The output may end in free text, never inside a
//! tag. This is the request format of XGrammar's `structural_tag` as vLLM
//! and SGLang pass it:
//!
//! ```json
//! {"structures": [{"begin": "<function=get_weather>", "schema": {…}, "end": "</function>"}],
//!  "triggers": ["<function="]}
//! ```
//!
//! This module owns the reading of that document and the free-text
//! machine: a byte automaton that is the product of an Aho–Corasick
//! automaton over the triggers (so that the text between tags never holds
//! a trigger) and a UTF-8 validator (so that the text is UTF-8). Where a
//! trigger completes, the edge leads into the tags that begin with it;
//! each tag's JSON body is a call to its schema's machines, compiled by
//! [`crate::json_schema`] into the same grammar.

use crate::config::Config;
use crate::error::{CompileError, CompileErrorKind};
use crate::grammar::nfa::{Frag, Nfa};
use crate::grammar::{Grammar, GrammarBuilder};
use crate::json_schema::Relaxation;
use serde_json::Value;

/// The compiled request: grammar and the reports of its schemas (pointers
/// into the request document, e.g. `/structures/0/schema/properties/x`).
pub(crate) struct Compiled {
    pub grammar: Grammar,
    pub relaxations: Vec<Relaxation>,
    pub annotations: Vec<Relaxation>,
}

struct Structure<'a> {
    begin: &'a str,
    schema: &'a Value,
    end: &'a str,
}

fn invalid(pointer: &str, msg: impl Into<String>) -> CompileError {
    CompileError::new(CompileErrorKind::InvalidSchema, pointer, msg).with_keyword("structural_tag")
}

/// Reads the request document.
fn read(doc: &Value) -> Result<(Vec<Structure<'_>>, Vec<&str>), CompileError> {
    let Some(obj) = doc.as_object() else { return Err(invalid("", "a structural tag request is a JSON object")) };
    if let Some(t) = obj.get("type").and_then(Value::as_str) {
        if t != "structural_tag" {
            return Err(invalid("/type", format!("type {t:?}: only \"structural_tag\" is read here")));
        }
    }
    let Some(list) = obj.get("structures").and_then(Value::as_array) else {
        return Err(invalid("/structures", "`structures` must be an array of {begin, schema, end}"));
    };
    let mut structures = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let at = format!("/structures/{i}");
        let field =
            |k: &str| s.get(k).and_then(Value::as_str).ok_or_else(|| invalid(&at, format!("`{k}` must be a string")));
        let (begin, end) = (field("begin")?, field("end")?);
        if begin.is_empty() {
            return Err(invalid(&format!("{at}/begin"), "`begin` must not be empty"));
        }
        let Some(schema) = s.get("schema") else { return Err(invalid(&at, "`schema` is missing")) };
        structures.push(Structure { begin, schema, end });
    }
    let Some(trig) = obj.get("triggers").and_then(Value::as_array) else {
        return Err(invalid("/triggers", "`triggers` must be an array of strings"));
    };
    let mut triggers = Vec::with_capacity(trig.len());
    for (i, t) in trig.iter().enumerate() {
        match t.as_str() {
            Some(t) if !t.is_empty() => triggers.push(t),
            _ => return Err(invalid(&format!("/triggers/{i}"), "a trigger is a non-empty string")),
        }
    }
    for (i, s) in structures.iter().enumerate() {
        if !triggers.iter().any(|t| s.begin.starts_with(t)) {
            return Err(invalid(
                &format!("/structures/{i}/begin"),
                format!("`begin` {:?} starts with no trigger, so the tag could never be entered", s.begin),
            ));
        }
    }
    Ok((structures, triggers))
}

/// The Aho–Corasick automaton of the triggers as a complete byte DFA:
/// `delta[s * 256 + b]`, and per state the triggers that end there.
struct AhoCorasick {
    delta: Vec<u32>,
    ends: Vec<Vec<usize>>,
}

impl AhoCorasick {
    fn new(words: &[&str]) -> AhoCorasick {
        let mut goto: Vec<[u32; 256]> = vec![[u32::MAX; 256]];
        let mut ends: Vec<Vec<usize>> = vec![Vec::new()];
        for (wi, w) in words.iter().enumerate() {
            let mut s = 0usize;
            for &b in w.as_bytes() {
                if goto[s][b as usize] == u32::MAX {
                    goto.push([u32::MAX; 256]);
                    ends.push(Vec::new());
                    goto[s][b as usize] = (goto.len() - 1) as u32;
                }
                s = goto[s][b as usize] as usize;
            }
            ends[s].push(wi);
        }
        // Breadth-first: failure links, inherited ends, full transitions.
        let n = goto.len();
        let mut fail = vec![0u32; n];
        let mut delta = vec![0u32; n * 256];
        let mut queue = std::collections::VecDeque::new();
        for b in 0..256 {
            let t = goto[0][b];
            if t == u32::MAX {
                delta[b] = 0;
            } else {
                delta[b] = t;
                fail[t as usize] = 0;
                queue.push_back(t);
            }
        }
        while let Some(s) = queue.pop_front() {
            let s = s as usize;
            let inherited = ends[fail[s] as usize].clone();
            ends[s].extend(inherited);
            for b in 0..256 {
                let t = goto[s][b];
                if t == u32::MAX {
                    delta[s * 256 + b] = delta[fail[s] as usize * 256 + b];
                } else {
                    delta[s * 256 + b] = t;
                    fail[t as usize] = delta[fail[s] as usize * 256 + b];
                    queue.push_back(t);
                }
            }
        }
        AhoCorasick { delta, ends }
    }
}

/// The UTF-8 validator: state 0 is a character boundary; `None` is an
/// invalid byte.
fn utf8_next(u: u8, b: u8) -> Option<u8> {
    match (u, b) {
        (0, 0x00..=0x7F) => Some(0),
        (0, 0xC2..=0xDF) => Some(1),
        (0, 0xE0) => Some(4),
        (0, 0xE1..=0xEC) | (0, 0xEE..=0xEF) => Some(2),
        (0, 0xED) => Some(5),
        (0, 0xF0) => Some(6),
        (0, 0xF1..=0xF3) => Some(3),
        (0, 0xF4) => Some(7),
        (1, 0x80..=0xBF) => Some(0),
        (2, 0x80..=0xBF) => Some(1),
        (3, 0x80..=0xBF) => Some(2),
        (4, 0xA0..=0xBF) => Some(1),
        (5, 0x80..=0x9F) => Some(1),
        (6, 0x90..=0xBF) => Some(2),
        (7, 0x80..=0x8F) => Some(2),
        _ => None,
    }
}

/// Most states of the free-text automaton (triggers' bytes times the UTF-8
/// validator's 8 states).
const MAX_TEXT_STATES: usize = 100_000;

pub(crate) fn compile(doc: &Value, cfg: &Config) -> Result<Compiled, CompileError> {
    let (structures, triggers) = read(doc)?;
    let trigger_bytes: usize = triggers.iter().map(|t| t.len()).sum();
    if trigger_bytes * 8 > MAX_TEXT_STATES {
        return Err(CompileError::new(
            CompileErrorKind::LimitExceeded,
            "/triggers",
            format!("triggers of {trigger_bytes} bytes in all; at most {} are supported", MAX_TEXT_STATES / 8),
        )
        .with_keyword("structural_tag"));
    }
    // Each structure's schema, into one builder.
    let mut gb = GrammarBuilder::default();
    let mut bodies = Vec::with_capacity(structures.len());
    let (mut relaxations, mut annotations) = (Vec::new(), Vec::new());
    for (i, s) in structures.iter().enumerate() {
        let prefix = format!("/structures/{i}/schema");
        let part = crate::json_schema::compile_into(gb, s.schema, cfg).map_err(|e| e.prefixed(&prefix))?;
        gb = part.gb;
        bodies.push(part.root);
        for mut r in part.relaxations {
            r.pointer = format!("{prefix}{}", r.pointer);
            relaxations.push(r);
        }
        for mut r in part.annotations {
            r.pointer = format!("{prefix}{}", r.pointer);
            annotations.push(r);
        }
    }
    let ac = AhoCorasick::new(&triggers);
    let root = gb.add("structural_tag:".to_string());
    let mut nfa = Nfa::default();
    let exit = nfa.state();
    // Text states by (Aho–Corasick state, UTF-8 state), made on first use.
    let mut ids: ahash::AHashMap<(u32, u8), u32> = Default::default();
    let mut todo: Vec<(u32, u8)> = Vec::new();
    let start = nfa.state();
    ids.insert((0, 0), start);
    todo.push((0, 0));
    // Where a trigger completes (keyed by the automaton state that ends
    // it): a state leading into every tag that begins with those triggers.
    let mut dispatch: ahash::AHashMap<u32, u32> = Default::default();
    while let Some((a, u)) = todo.pop() {
        let from = ids[&(a, u)];
        if u == 0 {
            nfa.eps(from, exit);
        }
        let mut edges: Vec<(u8, u32)> = Vec::with_capacity(256);
        for b in 0..=255u8 {
            let Some(u2) = utf8_next(u, b) else { continue };
            let a2 = ac.delta[a as usize * 256 + b as usize];
            let to = if ac.ends[a2 as usize].is_empty() {
                match ids.get(&(a2, u2)) {
                    Some(&t) => t,
                    None => {
                        if ids.len() >= MAX_TEXT_STATES {
                            return Err(CompileError::new(
                                CompileErrorKind::LimitExceeded,
                                "/triggers",
                                "the free-text automaton is too large",
                            )
                            .with_keyword("structural_tag"));
                        }
                        let t = nfa.state();
                        ids.insert((a2, u2), t);
                        todo.push((a2, u2));
                        t
                    }
                }
            } else if let Some(&d) = dispatch.get(&a2) {
                d
            } else {
                let d = nfa.state();
                dispatch.insert(a2, d);
                // The triggers ending here; the tags that begin with one.
                for &ti in &ac.ends[a2 as usize] {
                    let t = triggers[ti];
                    for (si, s) in structures.iter().enumerate() {
                        if let Some(rest) = s.begin.strip_prefix(t) {
                            let parts: [Frag; 3] =
                                [nfa.lit(rest.as_bytes()), nfa.call(bodies[si]), nfa.lit(s.end.as_bytes())];
                            let f = nfa.seq(&parts);
                            nfa.eps(d, f.start);
                            nfa.eps(f.end, start);
                        }
                    }
                }
                d
            };
            edges.push((b, to));
        }
        // Runs of bytes with one target become one range.
        let mut i = 0;
        while i < edges.len() {
            let (lo, to) = edges[i];
            let mut hi = lo;
            while i + 1 < edges.len() && edges[i + 1].1 == to && edges[i + 1].0 == hi.wrapping_add(1) {
                i += 1;
                hi = edges[i].0;
            }
            nfa.states[from as usize].ranges.push((lo, hi, to));
            i += 1;
        }
    }
    let def = &mut gb.machines[root as usize];
    def.nfa = nfa;
    def.body = Frag { start, end: exit };
    let grammar = gb.build_with_empty_root(root, cfg.get_limits().max_states)?;
    Ok(Compiled { grammar, relaxations, annotations })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aho_corasick_finds_overlapping_triggers() {
        let ac = AhoCorasick::new(&["<f", "ab", "b<f"]);
        let run = |text: &str| {
            let mut s = 0u32;
            let mut hits = Vec::new();
            for (i, &b) in text.as_bytes().iter().enumerate() {
                s = ac.delta[s as usize * 256 + b as usize];
                for &w in &ac.ends[s as usize] {
                    hits.push((i, w));
                }
            }
            hits
        };
        assert_eq!(run("xab<f"), vec![(2, 1), (4, 2), (4, 0)]);
        assert_eq!(run("<<f"), vec![(2, 0)]);
    }

    #[test]
    fn utf8_validator_matches_std() {
        for text in ["a", "é", "日本", "😀", "\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}"] {
            let mut u = Some(0u8);
            for &b in text.as_bytes() {
                u = u.and_then(|u| utf8_next(u, b));
            }
            assert_eq!(u, Some(0), "{text:?}");
        }
        for bad in [&[0xC0u8, 0x80][..], &[0xED, 0xA0, 0x80], &[0xF4, 0x90, 0x80, 0x80], &[0x80], &[0xE0, 0x80, 0x80]] {
            let mut u = Some(0u8);
            for &b in bad {
                u = u.and_then(|u| utf8_next(u, b));
            }
            assert_ne!(u, Some(0), "{bad:?}");
        }
    }
}
