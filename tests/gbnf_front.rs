//! The GBNF front-end (`Compiler::compile_gbnf`), judged by an independent
//! oracle: a plain Earley recognizer over code points, with its own reading
//! of GBNF written here (newline-insensitive, expanding groups and
//! repetitions into rules), sharing no code with the engine.
//!
//! Over the cases in `corpora/gbnf/cases.json` and llama.cpp's grammars in
//! `shared/corpora/grammars/gbnf`, on every tokenizer:
//! - accepted/rejected strings (first checked against the oracle) and the
//!   typed errors with their line and column;
//! - soundness: random walks through the masks, each finished output
//!   recognized by the oracle, each mask equal to the byte-by-byte
//!   reference on a sample of tokens;
//! - completeness: strings sampled from the oracle's grammar are accepted
//!   under the canonical tokenization and under random segmentations.

mod common;

use common::*;
use grammask::{Compiler, Rng};
use serde_json::Value;
use std::collections::HashSet;

// ---------------------------------------------------------------- oracle

#[derive(Clone, Debug, PartialEq)]
enum Sym {
    /// One code point in (or, negated, outside) the ranges.
    Char(Vec<(u32, u32)>, bool),
    Rule(usize),
}

/// A context-free grammar over code points: per rule, its alternatives.
struct Cfg {
    rules: Vec<Vec<Vec<Sym>>>,
    names: Vec<String>,
    start: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Def,
    Str(Vec<u32>),
    Class(Vec<(u32, u32)>, bool),
    Dot,
    Open,
    Close,
    Bar,
    Op(u32, Option<u32>),
}

fn unescape(cs: &[char], i: &mut usize) -> u32 {
    let c = cs[*i];
    *i += 1;
    if c != '\\' {
        return c as u32;
    }
    let e = cs[*i];
    *i += 1;
    let hex = |i: &mut usize, n: usize| {
        let s: String = cs[*i..*i + n].iter().collect();
        *i += n;
        u32::from_str_radix(&s, 16).unwrap()
    };
    match e {
        'x' => hex(i, 2),
        'u' => hex(i, 4),
        'U' => hex(i, 8),
        'n' => 10,
        'r' => 13,
        't' => 9,
        other => other as u32,
    }
}

fn lex(src: &str) -> Vec<Tok> {
    let cs: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
        } else if c == ':' {
            assert_eq!(&cs[i..i + 3], &[':', ':', '=']);
            out.push(Tok::Def);
            i += 3;
        } else if c == '"' || c == '\'' {
            i += 1;
            let mut s = Vec::new();
            while cs[i] != c {
                s.push(unescape(&cs, &mut i));
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c == '[' {
            i += 1;
            let neg = cs[i] == '^';
            if neg {
                i += 1;
            }
            let mut rs = Vec::new();
            while cs[i] != ']' {
                let lo = unescape(&cs, &mut i);
                let mut hi = lo;
                if cs[i] == '-' && cs[i + 1] != ']' {
                    i += 1;
                    hi = unescape(&cs, &mut i);
                }
                rs.push((lo, hi));
            }
            i += 1;
            out.push(Tok::Class(rs, neg));
        } else if c == '{' {
            let end = i + cs[i..].iter().position(|&x| x == '}').unwrap();
            let body: String = cs[i + 1..end].iter().filter(|c| !c.is_whitespace()).collect();
            let (m, n) = match body.split_once(',') {
                None => (body.parse().unwrap(), Some(body.parse().unwrap())),
                Some((m, "")) => (m.parse().unwrap(), None),
                Some((m, n)) => (m.parse().unwrap(), Some(n.parse().unwrap())),
            };
            out.push(Tok::Op(m, n));
            i = end + 1;
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            let start = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_' || cs[i] == '-') {
                i += 1;
            }
            out.push(Tok::Name(cs[start..i].iter().collect()));
        } else {
            out.push(match c {
                '.' => Tok::Dot,
                '(' => Tok::Open,
                ')' => Tok::Close,
                '|' => Tok::Bar,
                '*' => Tok::Op(0, None),
                '+' => Tok::Op(1, None),
                '?' => Tok::Op(0, Some(1)),
                _ => panic!("oracle: unexpected {c:?}"),
            });
            i += 1;
        }
    }
    out
}

impl Cfg {
    fn parse(src: &str) -> Cfg {
        let toks = lex(src);
        let mut cfg = Cfg { rules: Vec::new(), names: Vec::new(), start: 0 };
        // Rule bodies: the tokens between `name ::=` and the next `name ::=`.
        let mut defs: Vec<(String, Vec<Tok>)> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            if let (Tok::Name(n), Some(Tok::Def)) = (&toks[i], toks.get(i + 1)) {
                defs.push((n.clone(), Vec::new()));
                i += 2;
                continue;
            }
            defs.last_mut().unwrap().1.push(toks[i].clone());
            i += 1;
        }
        for (n, _) in &defs {
            cfg.id(n);
        }
        for (n, body) in &defs {
            let id = cfg.id(n);
            let mut pos = 0;
            let alts = cfg.alts(body, &mut pos);
            assert_eq!(pos, body.len(), "oracle: trailing tokens in {n}");
            cfg.rules[id] = alts;
        }
        cfg.start = cfg.id("root");
        cfg
    }
    fn id(&mut self, n: &str) -> usize {
        if let Some(i) = self.names.iter().position(|x| x == n) {
            return i;
        }
        self.names.push(n.to_string());
        self.rules.push(Vec::new());
        self.rules.len() - 1
    }
    fn fresh(&mut self, alts: Vec<Vec<Sym>>) -> Sym {
        let n = format!("_{}", self.names.len());
        let id = self.id(&n);
        self.rules[id] = alts;
        Sym::Rule(id)
    }
    fn alts(&mut self, t: &[Tok], pos: &mut usize) -> Vec<Vec<Sym>> {
        let mut alts = vec![Vec::new()];
        while *pos < t.len() {
            let item = match &t[*pos] {
                Tok::Close => break,
                Tok::Bar => {
                    alts.push(Vec::new());
                    *pos += 1;
                    continue;
                }
                Tok::Name(n) => vec![Sym::Rule(self.id(&n.clone()))],
                Tok::Str(s) => s.iter().map(|&c| Sym::Char(vec![(c, c)], false)).collect(),
                Tok::Class(r, neg) => vec![Sym::Char(r.clone(), *neg)],
                Tok::Dot => vec![Sym::Char(Vec::new(), true)],
                Tok::Open => {
                    *pos += 1;
                    let inner = self.alts(t, pos);
                    assert_eq!(t[*pos], Tok::Close);
                    vec![self.fresh(inner)]
                }
                Tok::Op(..) | Tok::Def => panic!("oracle: misplaced {:?}", t[*pos]),
            };
            *pos += 1;
            // Postfix operators apply to the item as one symbol.
            let mut item = item;
            while let Some(Tok::Op(m, n)) = t.get(*pos) {
                let one = if item.len() == 1 { item[0].clone() } else { self.fresh(vec![item.clone()]) };
                item = self.repeat(one, *m, *n);
                *pos += 1;
            }
            alts.last_mut().unwrap().extend(item);
        }
        alts
    }
    fn repeat(&mut self, x: Sym, m: u32, n: Option<u32>) -> Vec<Sym> {
        let mut out = vec![x.clone(); m as usize];
        match n {
            None => {
                // star ::= ε | x star
                let id = self.id(&format!("_{}", self.names.len()));
                self.rules[id] = vec![vec![], vec![x, Sym::Rule(id)]];
                out.push(Sym::Rule(id));
            }
            Some(n) => {
                let mut tail: Option<Sym> = None;
                for _ in m..n {
                    let mut more = vec![x.clone()];
                    more.extend(tail.clone());
                    tail = Some(self.fresh(vec![vec![], more]));
                }
                out.extend(tail);
            }
        }
        out
    }

    fn char_ok(ranges: &[(u32, u32)], neg: bool, c: u32) -> bool {
        ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != neg
    }

    fn nullable(&self) -> Vec<bool> {
        let mut null = vec![false; self.rules.len()];
        loop {
            let mut changed = false;
            for (r, alts) in self.rules.iter().enumerate() {
                if !null[r] && alts.iter().any(|a| a.iter().all(|s| matches!(s, Sym::Rule(q) if null[*q]))) {
                    null[r] = true;
                    changed = true;
                }
            }
            if !changed {
                return null;
            }
        }
    }

    /// Earley recognition of `text` (with the nullable-completion fix of
    /// Aycock and Horspool).
    fn recognizes(&self, text: &str) -> bool {
        let input: Vec<u32> = text.chars().map(|c| c as u32).collect();
        let null = self.nullable();
        // Item: (rule, alternative, dot, origin).
        type Item = (usize, usize, usize, usize);
        let mut sets: Vec<Vec<Item>> = vec![Vec::new(); input.len() + 1];
        let mut seen: Vec<HashSet<Item>> = vec![HashSet::new(); input.len() + 1];
        // Per set, the items whose next symbol is a given rule.
        let mut waiting: Vec<std::collections::HashMap<usize, Vec<Item>>> = vec![Default::default(); input.len() + 1];
        let add = |sets: &mut Vec<Vec<Item>>, seen: &mut Vec<HashSet<Item>>, k: usize, it: Item| {
            if seen[k].insert(it) {
                sets[k].push(it);
            }
        };
        for a in 0..self.rules[self.start].len() {
            add(&mut sets, &mut seen, 0, (self.start, a, 0, 0));
        }
        for k in 0..=input.len() {
            let mut i = 0;
            while i < sets[k].len() {
                let (r, a, dot, origin) = sets[k][i];
                i += 1;
                let alt = &self.rules[r][a];
                if let Some(Sym::Rule(q)) = alt.get(dot) {
                    waiting[k].entry(*q).or_default().push((r, a, dot, origin));
                }
                match alt.get(dot) {
                    None => {
                        // Complete: advance the items waiting on `r`.
                        let ready = waiting[origin].get(&r).cloned().unwrap_or_default();
                        for (r2, a2, d2, o2) in ready {
                            add(&mut sets, &mut seen, k, (r2, a2, d2 + 1, o2));
                        }
                    }
                    Some(Sym::Rule(q)) => {
                        for a2 in 0..self.rules[*q].len() {
                            add(&mut sets, &mut seen, k, (*q, a2, 0, k));
                        }
                        if null[*q] {
                            add(&mut sets, &mut seen, k, (r, a, dot + 1, origin));
                        }
                    }
                    Some(Sym::Char(rs, neg)) => {
                        if k < input.len() && Self::char_ok(rs, *neg, input[k]) {
                            add(&mut sets, &mut seen, k + 1, (r, a, dot + 1, origin));
                        }
                    }
                }
            }
        }
        sets[input.len()].iter().any(|&(r, a, dot, o)| r == self.start && o == 0 && dot == self.rules[r][a].len())
    }

    /// A random string of the language, derivations bounded by `budget`
    /// symbols (past it, each rule takes its shortest alternative).
    fn sample(&self, rng: &mut Rng, budget: usize) -> String {
        let short = self.shortest();
        let mut out = String::new();
        let mut stack: Vec<Sym> = vec![Sym::Rule(self.start)];
        let mut spent = 0;
        while let Some(s) = stack.pop() {
            spent += 1;
            match s {
                Sym::Char(rs, neg) => out.push(Self::pick_char(&rs, neg, rng)),
                Sym::Rule(r) => {
                    let alts: Vec<usize> = (0..self.rules[r].len()).filter(|&a| short.1[r][a] < usize::MAX).collect();
                    let a = if spent > budget { short.0[r] } else { alts[rng.below(alts.len())] };
                    stack.extend(self.rules[r][a].iter().rev().cloned());
                }
            }
        }
        out
    }
    /// Per rule its shortest alternative, and per alternative its shortest
    /// expansion length.
    fn shortest(&self) -> (Vec<usize>, Vec<Vec<usize>>) {
        let mut len = vec![usize::MAX; self.rules.len()];
        loop {
            let mut changed = false;
            for (r, alts) in self.rules.iter().enumerate() {
                for a in alts {
                    let l = a.iter().try_fold(0usize, |acc, s| match s {
                        Sym::Char(..) => Some(acc + 1),
                        Sym::Rule(q) => (len[*q] < usize::MAX).then(|| acc + len[*q]),
                    });
                    if let Some(l) = l {
                        if l < len[r] {
                            len[r] = l;
                            changed = true;
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let per_alt: Vec<Vec<usize>> = self
            .rules
            .iter()
            .map(|alts| {
                alts.iter()
                    .map(|a| {
                        a.iter()
                            .try_fold(0usize, |acc, s| match s {
                                Sym::Char(..) => Some(acc + 1),
                                Sym::Rule(q) => (len[*q] < usize::MAX).then(|| acc + len[*q]),
                            })
                            .unwrap_or(usize::MAX)
                    })
                    .collect()
            })
            .collect();
        let best = per_alt.iter().map(|v| (0..v.len()).min_by_key(|&a| v[a]).unwrap_or(0)).collect();
        (best, per_alt)
    }
    fn pick_char(rs: &[(u32, u32)], neg: bool, rng: &mut Rng) -> char {
        if !neg {
            let (lo, hi) = rs[rng.below(rs.len())];
            for _ in 0..100 {
                if let Some(c) = char::from_u32(lo + rng.below((hi - lo + 1) as usize) as u32) {
                    return c;
                }
            }
            return char::from_u32(lo).unwrap();
        }
        let pool: Vec<char> =
            ('!'..='~').chain(" \té日😀ß\n".chars()).filter(|&c| Self::char_ok(rs, true, c as u32)).collect();
        pool[rng.below(pool.len())]
    }
}

// ---------------------------------------------------------------- inputs

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join("corpora/gbnf/cases.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

/// Every grammar that compiles: (name, text).
fn grammars() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = cases()
        .iter()
        .filter(|c| c.get("error").is_none())
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["grammar"].as_str().unwrap().to_string()))
        .collect();
    match shared_corpora() {
        Some(dir) => {
            let dir = dir.join("grammars/gbnf");
            let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
            files.sort();
            let n = out.len();
            for p in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "gbnf")) {
                out.push((p.file_name().unwrap().to_string_lossy().into(), std::fs::read_to_string(&p).unwrap()));
            }
            assert!(out.len() >= n + 9, "expected llama.cpp's 9 grammars in {}", dir.display());
        }
        None => eprintln!("notice: shared corpora absent; llama.cpp's GBNF grammars not checked"),
    }
    out
}

// ---------------------------------------------------------------- tests

#[test]
fn cases_are_accepted_rejected_or_refused() {
    let cases = cases();
    assert!(cases.len() >= 30);
    let tok = cl100k();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let src = c["grammar"].as_str().unwrap();
        let compiled = Compiler::new().compile_gbnf(src, tok.vocab.clone());
        if let Some(kind) = c["error"].as_str() {
            let e = compiled.expect_err(name);
            assert_eq!(format!("{:?}", e.kind()), kind, "{name}: {e}");
            assert_eq!(e.keyword(), Some("gbnf"), "{name}: {e}");
            if let Some(line) = c.get("line") {
                let want = (line.as_u64().unwrap() as usize, c["column"].as_u64().unwrap() as usize);
                assert_eq!(e.position(), Some(want), "{name}: {e}");
            }
            continue;
        }
        let g = compiled.unwrap_or_else(|e| panic!("{name}: {e}"));
        let oracle = Cfg::parse(src);
        for (list, want) in [("accepted", true), ("rejected", false)] {
            for s in c[list].as_array().unwrap() {
                let s = s.as_str().unwrap();
                assert_eq!(oracle.recognizes(s), want, "{name}: the oracle disagrees on {s:?}, a bad case");
                let mut m = g.matcher();
                let ok = m.accept_bytes(s.as_bytes()).is_ok() && m.can_terminate();
                assert_eq!(ok, want, "{name}: {s:?}");
            }
        }
    }
}

#[test]
fn random_walks_are_recognized_and_masks_match_the_reference() {
    let walks = std::env::var("GRAMMASK_GBNF_WALKS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    let (mut finished, mut checked) = (0, 0);
    let grammars = grammars();
    for tok in all_tokenizers() {
        let vocab = &tok.vocab;
        for (gi, (name, src)) in grammars.iter().enumerate() {
            let g = Compiler::new().compile_gbnf(src, vocab.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let oracle = Cfg::parse(src);
            for w in 0..walks {
                let mut rng = Rng::new((gi * 1000 + w) as u64);
                let mut m = g.matcher();
                let s = grammask::random_walk(&mut m, &mut rng, 64).unwrap();
                let out = m.output().to_vec();
                let text =
                    String::from_utf8(out).unwrap_or_else(|e| panic!("{} {name}: output not UTF-8: {e}", tok.name));
                if s.terminated {
                    finished += 1;
                    assert!(oracle.recognizes(&text), "{} {name}: output {text:?} is not in the language", tok.name);
                }
                let what = format!("{} {name}", tok.name);
                checked += masks_match_reference(&g, &s.tokens, 10, 48, &mut rng, &what);
            }
        }
    }
    assert!(finished >= 50, "only {finished} walks finished");
    eprintln!("{finished} finished walks recognized by the oracle; {checked} mask bits equal the reference");
}

#[test]
fn sampled_strings_are_accepted_under_any_segmentation() {
    let samples = std::env::var("GRAMMASK_GBNF_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let mut accepted = 0;
    for tok in all_tokenizers() {
        for (gi, (name, src)) in grammars().iter().enumerate() {
            let g = Compiler::new().compile_gbnf(src, tok.vocab.clone()).unwrap();
            let oracle = Cfg::parse(src);
            let mut rng = Rng::new(gi as u64 + 77);
            for _ in 0..samples {
                let s = oracle.sample(&mut rng, 60);
                assert!(oracle.recognizes(&s), "{name}: sampler produced {s:?} outside the language");
                let mut m = g.matcher();
                m.accept_bytes(s.as_bytes()).unwrap_or_else(|e| panic!("{name}: {s:?}: {e}"));
                assert!(m.can_terminate(), "{name}: {s:?} cannot end");
                let mut segs = vec![(tok.encode)(&s)];
                segs.push(random_segmentation(&tok.vocab, s.as_bytes(), &mut rng));
                for ids in segs.into_iter().flatten() {
                    let mut m = g.matcher();
                    m.accept_tokens(&ids).unwrap_or_else(|e| panic!("{} {name}: {s:?} as {ids:?}: {e}", tok.name));
                    assert!(m.can_terminate(), "{} {name}: {s:?} cannot end", tok.name);
                    accepted += 1;
                }
            }
        }
    }
    assert!(accepted >= 100, "only {accepted} segmentations checked");
    eprintln!("{accepted} segmentations of sampled strings accepted");
}

#[test]
fn hostile_grammars_are_refused_quickly() {
    // A deep group nesting and a long rule chain: typed answers, no stack
    // overflow.
    let deep = format!("root ::= {}\"a\"{}", "(".repeat(5000), ")".repeat(5000));
    let e = Compiler::new().compile_gbnf(&deep, cl100k().vocab.clone()).unwrap_err();
    assert_eq!(*e.kind(), grammask::CompileErrorKind::LimitExceeded, "{e}");
    let mut chain = String::from("root ::= r0\n");
    for i in 0..3000 {
        chain.push_str(&format!("r{i} ::= \"x\" r{}\n", i + 1));
    }
    chain.push_str("r3000 ::= \"y\"\n");
    let g = Compiler::new().compile_gbnf(&chain, cl100k().vocab.clone()).unwrap();
    let mut m = g.matcher();
    m.accept_bytes(&[b'x'; 3000]).unwrap();
    m.accept_bytes(b"y").unwrap();
    assert!(m.can_terminate());
}
