//! The Lark front-end: grammars in the Lark dialect llguidance documents
//! (`docs/syntax.md` there), compiled onto the grammar IR with a lexer's
//! meaning, not a scannerless one.
//!
//! **What a grammar means.** Terminals (uppercase names, string literals,
//! `/regexes/`) are sets of strings; rules are a context-free grammar over
//! them. The output is cut into *lexemes* the way llguidance's lexer cuts
//! it: at each point, among the terminals the grammar allows there (and the
//! `%ignore`d ones), a lexeme goes on as long as the next byte can continue
//! one of them, and ends only where none can — greedy, with one byte of
//! lookahead, no backtracking. A scannerless reading would also accept `ab`
//! as two `NAME`s, or `aab` for `A B` with `A: /a+/` and `B: "ab"`; a
//! lexer never cuts there, so neither does grammask. When several allowed
//! terminals match the same lexeme, any of them may be the one.
//!
//! **How it is enforced.** Each occurrence of a terminal becomes its own
//! small automaton whose accepting states carry the set of bytes that
//! would continue a longer lexeme there (its *follow class*); whatever
//! comes next — the next terminal, `%ignore`d text, the end of a rule —
//! may not start with those bytes. Rules are specialized by the class
//! pending when they start and the class they leave pending when they end,
//! so the condition crosses rule boundaries without a run-time lexer. The
//! terminals "allowed there" are over-approximated from a finite-state view
//! of the grammar (every rule's end returns to every caller); a larger set
//! only forbids more, so every output is still one the lexer reads as
//! intended — in a few grammars a lexeme cut that llguidance would allow
//! (because it knows fewer terminals are possible) is not produced.
//!
//! Also decided here: a terminal that can match the empty string is an
//! optional non-empty lexeme; `""` is nothing; `%ignore` text may come
//! before and after every lexeme, and at the start and end of the output;
//! `%json {…}` is one JSON value valid against the schema (its own
//! whitespace rules; after it no byte that would extend a number may
//! follow, and it may not follow a lexeme its first byte could continue).
//! Direct left recursion (`expr: expr "+" term | term`) is rewritten to
//! repetition; other left recursion is a typed error naming the cycle.

mod syntax;

use crate::automata::strings::TableDfa;
use crate::config::Config;
use crate::error::{CompileError, CompileErrorKind};
use crate::grammar::nfa::{Frag, MachineId, Nfa};
use crate::grammar::GrammarBuilder;
use crate::json_schema::Relaxation;
use ahash::AHashMap;
use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, Repetition};
use std::collections::BTreeSet;
use syntax::{error_at, Def, Expr, Parser};

/// The terminals of `%import common.NAME`.
const COMMON: &str = include_str!("common.lark");
/// Prefix of the `common` module's names inside a grammar.
const COMMON_PREFIX: &str = "common__";
/// Rules up to this many symbol states are spelled out where they are used.
const INLINE_SIZE: usize = 256;
/// Most states of the finite-state view used to find the terminals allowed
/// at each point; past it every terminal counts as allowed everywhere.
const MAX_CONTEXT_STATES: usize = 100_000;

/// The pending class at the start of the output: nothing is forbidden, and
/// no `%ignore`d text may come yet.
const START: u32 = u32::MAX;

/// A compiled Lark grammar and what its `%json` parts report.
pub(crate) struct Compiled {
    pub grammar: crate::grammar::Grammar,
    pub relaxations: Vec<Relaxation>,
    pub annotations: Vec<Relaxation>,
}

/// Where a symbol edge goes in a rule's symbol automaton.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Edge {
    Lex(u32),
    /// An `%ignore`d lexeme: only between two lexemes, so never while the
    /// output is still empty ([`START`] pending).
    Skip(u32),
    Call(u32),
    /// A `%json` value: index into the JSON parts.
    Json(u32),
}

#[derive(Clone, Debug, Default)]
struct SymState {
    eps: Vec<u32>,
    edges: Vec<(Edge, u32)>,
}

/// One rule's automaton over terminals, rule calls and JSON values.
#[derive(Clone, Debug, Default)]
struct Sym {
    states: Vec<SymState>,
    start: u32,
    end: u32,
}

impl Sym {
    fn state(&mut self) -> u32 {
        self.states.push(SymState::default());
        (self.states.len() - 1) as u32
    }
    fn eps(&mut self, a: u32, b: u32) {
        self.states[a as usize].eps.push(b);
    }
}

/// A lexeme: a terminal used in rules (named, or a literal/regex written
/// in a rule) or `%ignore`d.
struct Lexeme {
    shown: String,
    table: TableDfa,
}

/// A lexeme's automaton in one context: state 0 starts, `label[s]` is the
/// follow class of an accepting state.
struct LexMachine {
    ranges: Vec<Vec<(u8, u8, u32)>>,
    label: Vec<Option<u32>>,
}

type Bytes = [u64; 4];

fn has(b: &Bytes, x: u8) -> bool {
    b[(x >> 6) as usize] >> (x & 63) & 1 == 1
}

fn set(b: &mut Bytes, x: u8) {
    b[(x >> 6) as usize] |= 1 << (x & 63);
}

/// Compiles Lark source `src`; the output is a string of rule `start`.
pub(crate) fn compile(src: &str, cfg: &Config) -> Result<Compiled, CompileError> {
    let mut parser = Parser::new(src, !cfg.get_strict());
    let parsed = parser.grammar()?;
    let lazy = parser.lazy;
    let common = Parser::new(COMMON, false).grammar().expect("common.lark parses");
    let mut defs: Vec<Def> = Vec::new();
    let mut index: AHashMap<String, usize> = AHashMap::new();
    for d in parsed.defs {
        if index.contains_key(&d.name) {
            return Err(error_at(src, d.at, CompileErrorKind::InvalidSchema, format!("`{}` is defined twice", d.name)));
        }
        index.insert(d.name.clone(), defs.len());
        defs.push(d);
    }
    for (name, alias, at) in &parsed.imports {
        if !common.defs.iter().any(|d| &d.name == name) || name.starts_with('_') {
            return Err(error_at(
                src,
                *at,
                CompileErrorKind::InvalidSchema,
                format!("`common` has no terminal `{name}`"),
            ));
        }
        if index.contains_key(alias) {
            return Err(error_at(src, *at, CompileErrorKind::InvalidSchema, format!("`{alias}` is defined twice")));
        }
        index.insert(alias.clone(), defs.len());
        defs.push(Def {
            name: alias.clone(),
            at: *at,
            terminal: true,
            body: Expr::Ref { name: format!("{COMMON_PREFIX}{name}"), at: *at },
        });
    }
    if !parsed.imports.is_empty() {
        for d in &common.defs {
            let mut body = d.body.clone();
            prefix_refs(&mut body);
            index.insert(format!("{COMMON_PREFIX}{}", d.name), defs.len());
            defs.push(Def { name: format!("{COMMON_PREFIX}{}", d.name), at: 0, terminal: true, body });
        }
    }
    // Every name used is defined, with the right kind.
    for d in &defs {
        check_refs(src, &d.body, d, &defs, &index)?;
    }
    for (e, _) in &parsed.ignore {
        let fake = Def { name: "%ignore".into(), at: 0, terminal: true, body: Expr::Seq(vec![]) };
        check_refs(src, e, &fake, &defs, &index)?;
    }
    let Some(&start) = index.get("start").filter(|&&i| !defs[i].terminal) else {
        return Err(error_at(src, 0, CompileErrorKind::InvalidSchema, "the grammar has no rule `start`"));
    };
    for d in &mut defs {
        if !d.terminal {
            rewrite_left_recursion(d);
        }
    }
    let limit = cfg.get_limits().max_terminal_bytes;
    let mut lower = Lower {
        src,
        cfg,
        defs: &defs,
        index: &index,
        term_hir: vec![None; defs.len()],
        visiting: vec![false; defs.len()],
        lexemes: Vec::new(),
        lex_ids: AHashMap::new(),
        ignores: Vec::new(),
        limit,
        json: Vec::new(),
        inline: Vec::new(),
        nullable: Vec::new(),
        machine_of_def: vec![None; defs.len()],
        rules: Vec::new(),
    };
    for (e, at) in &parsed.ignore {
        let hir = lower.hir(e, *at)?;
        let id = lower.lexeme(format!("%ignore at {}", crate::error::line_col(src, *at).0), hir, *at)?;
        lower.ignores.push(id);
    }
    lower.nullable = nullable(&defs, &index);
    lower.inline = inlined(&defs, &index);
    lower.inline[start] = false;
    lower.lower_rules(start)?;
    let mut c = lower.finish(start)?;
    for at in lazy {
        let (line, col) = crate::error::line_col(src, at);
        c.relaxations.push(Relaxation {
            keyword: "lazy quantifier (read as greedy)".into(),
            pointer: format!("line {line}, column {col}"),
        });
    }
    Ok(c)
}

fn prefix_refs(e: &mut Expr) {
    match e {
        Expr::Ref { name, .. } => *name = format!("{COMMON_PREFIX}{name}"),
        Expr::Seq(v) | Expr::Alt(v) => v.iter_mut().for_each(prefix_refs),
        Expr::Repeat(x, ..) => prefix_refs(x),
        _ => {}
    }
}

fn check_refs(src: &str, e: &Expr, d: &Def, defs: &[Def], index: &AHashMap<String, usize>) -> Result<(), CompileError> {
    match e {
        Expr::Ref { name, at } => match index.get(name) {
            None => Err(error_at(src, *at, CompileErrorKind::InvalidSchema, format!("`{name}` is not defined"))),
            Some(&i) if d.terminal && !defs[i].terminal => Err(error_at(
                src,
                *at,
                CompileErrorKind::InvalidSchema,
                format!("terminal `{}` uses rule `{name}`; a terminal may use only terminals", d.name),
            )),
            _ => Ok(()),
        },
        Expr::Json { at, .. } if d.terminal => Err(error_at(
            src,
            *at,
            CompileErrorKind::InvalidSchema,
            format!("`%json` inside terminal `{}`; it belongs in a rule", d.name),
        )),
        Expr::Seq(v) | Expr::Alt(v) => v.iter().try_for_each(|x| check_refs(src, x, d, defs, index)),
        Expr::Repeat(x, ..) => check_refs(src, x, d, defs, index),
        _ => Ok(()),
    }
}

/// `a: a x | a y | b | c` → `a: (b | c) (x | y)*`: the same strings,
/// without a call of `a` before a byte is read.
fn rewrite_left_recursion(d: &mut Def) {
    let alts: Vec<Expr> = match &d.body {
        Expr::Alt(v) => v.clone(),
        other => vec![other.clone()],
    };
    let is_self = |e: &Expr| matches!(e, Expr::Ref { name, .. } if *name == d.name);
    let (mut rec, mut base) = (Vec::new(), Vec::new());
    for a in alts {
        match a {
            Expr::Seq(v) if v.len() >= 2 && is_self(&v[0]) => rec.push(Expr::Seq(v[1..].to_vec())),
            other => base.push(other),
        }
    }
    if rec.is_empty() || base.is_empty() {
        return;
    }
    let base = if base.len() == 1 { base.pop().expect("one") } else { Expr::Alt(base) };
    let rec = if rec.len() == 1 { rec.pop().expect("one") } else { Expr::Alt(rec) };
    d.body = Expr::Seq(vec![base, Expr::Repeat(Box::new(rec), 0, None)]);
}

/// Which rules can derive the empty string (terminals count as optional
/// lexemes when they can match it).
fn nullable(defs: &[Def], index: &AHashMap<String, usize>) -> Vec<bool> {
    fn null(e: &Expr, known: &[bool], index: &AHashMap<String, usize>) -> bool {
        match e {
            Expr::Str { bytes, .. } => bytes.is_empty(),
            Expr::Regex(h) => h.properties().minimum_len() == Some(0),
            Expr::Range(..) | Expr::Json { .. } => false,
            Expr::Ref { name, .. } => index.get(name).is_some_and(|&i| known[i]),
            Expr::Seq(v) => v.iter().all(|x| null(x, known, index)),
            Expr::Alt(v) => v.iter().any(|x| null(x, known, index)),
            Expr::Repeat(x, min, _) => *min == 0 || null(x, known, index),
        }
    }
    let mut known = vec![false; defs.len()];
    loop {
        let mut changed = false;
        for (i, d) in defs.iter().enumerate() {
            if !known[i] && null(&d.body, &known, index) {
                known[i] = true;
                changed = true;
            }
        }
        if !changed {
            return known;
        }
    }
}

/// Rules on no cycle of rule references whose expansion (with the rules
/// they inline in turn) stays small: spelled out where they are used.
fn inlined(defs: &[Def], index: &AHashMap<String, usize>) -> Vec<bool> {
    fn refs(e: &Expr, index: &AHashMap<String, usize>, defs: &[Def], out: &mut Vec<usize>) {
        match e {
            Expr::Ref { name, .. } => {
                if let Some(&i) = index.get(name) {
                    if !defs[i].terminal {
                        out.push(i);
                    }
                }
            }
            Expr::Seq(v) | Expr::Alt(v) => v.iter().for_each(|x| refs(x, index, defs, out)),
            Expr::Repeat(x, ..) => refs(x, index, defs, out),
            _ => {}
        }
    }
    /// Symbol states of `e`, with inlined rules spelled out.
    fn size(e: &Expr, index: &AHashMap<String, usize>, sizes: &[Option<usize>]) -> usize {
        match e {
            Expr::Ref { name, .. } => index.get(name).and_then(|&i| sizes[i]).unwrap_or(3),
            Expr::Seq(v) | Expr::Alt(v) => v.iter().fold(2usize, |a, x| a.saturating_add(size(x, index, sizes))),
            Expr::Repeat(x, min, max) => {
                size(x, index, sizes).saturating_mul(max.unwrap_or(*min) as usize + 1).saturating_add(2)
            }
            _ => 3,
        }
    }
    let n = defs.len();
    let out: Vec<Vec<usize>> = defs
        .iter()
        .map(|d| {
            let mut v = Vec::new();
            if !d.terminal {
                refs(&d.body, index, defs, &mut v);
            }
            v
        })
        .collect();
    let cyclic = crate::grammar::graph::on_cycle(&out);
    // Sizes bottom-up over the rules on no cycle (a DAG); `None`: called.
    let mut sizes: Vec<Option<usize>> = vec![None; n];
    let mut inline = vec![false; n];
    for r in crate::grammar::graph::post_order(&out, &cyclic, (0..n).filter(|&s| !defs[s].terminal && !cyclic[s])) {
        let sz = size(&defs[r].body, index, &sizes);
        if sz <= INLINE_SIZE {
            inline[r] = true;
            sizes[r] = Some(sz);
        }
    }
    inline
}

struct Lower<'a> {
    src: &'a str,
    cfg: &'a Config,
    defs: &'a [Def],
    index: &'a AHashMap<String, usize>,
    term_hir: Vec<Option<Hir>>,
    visiting: Vec<bool>,
    lexemes: Vec<Lexeme>,
    lex_ids: AHashMap<String, u32>,
    ignores: Vec<u32>,
    limit: usize,
    /// `%json` schemas with their offsets.
    json: Vec<(serde_json::Value, usize)>,
    inline: Vec<bool>,
    nullable: Vec<bool>,
    /// Rule definition → index in `rules`.
    machine_of_def: Vec<Option<u32>>,
    /// (definition, symbol automaton); the last is the output's wrapper.
    rules: Vec<(usize, Sym)>,
}

impl Lower<'_> {
    fn limit_err(&self, at: usize, what: impl std::fmt::Display) -> CompileError {
        error_at(self.src, at, CompileErrorKind::LimitExceeded, what)
    }

    /// A terminal expression as a regex.
    fn hir(&mut self, e: &Expr, at: usize) -> Result<Hir, CompileError> {
        Ok(match e {
            Expr::Str { bytes, icase: false } => Hir::literal(bytes.clone()),
            Expr::Str { bytes, icase: true } => {
                let text = String::from_utf8_lossy(bytes);
                regex_syntax::ParserBuilder::new()
                    .case_insensitive(true)
                    .build()
                    .parse(&regex_syntax::escape(&text))
                    .expect("an escaped literal parses")
            }
            Expr::Regex(h) => (**h).clone(),
            Expr::Range(a, b) => Hir::class(Class::Unicode(ClassUnicode::new([ClassUnicodeRange::new(*a, *b)]))),
            Expr::Ref { name, at } => {
                let i = self.index[name];
                self.terminal(i, *at)?
            }
            Expr::Json { .. } => unreachable!("checked: no %json in terminals"),
            Expr::Seq(v) => Hir::concat(v.iter().map(|x| self.hir(x, at)).collect::<Result<_, _>>()?),
            Expr::Alt(v) => Hir::alternation(v.iter().map(|x| self.hir(x, at)).collect::<Result<_, _>>()?),
            Expr::Repeat(x, min, max) => {
                Hir::repetition(Repetition { min: *min, max: *max, greedy: true, sub: Box::new(self.hir(x, at)?) })
            }
        })
    }

    fn terminal(&mut self, i: usize, at: usize) -> Result<Hir, CompileError> {
        if let Some(h) = &self.term_hir[i] {
            return Ok(h.clone());
        }
        if std::mem::replace(&mut self.visiting[i], true) {
            return Err(error_at(
                self.src,
                at,
                CompileErrorKind::InvalidSchema,
                format!("terminal `{}` refers to itself; terminals are regular (use a rule)", self.defs[i].name),
            ));
        }
        let h = self.hir(&self.defs[i].body.clone(), self.defs[i].at)?;
        self.visiting[i] = false;
        self.term_hir[i] = Some(h.clone());
        Ok(h)
    }

    /// The lexeme of `hir` (one per distinct regex).
    fn lexeme(&mut self, shown: String, hir: Hir, at: usize) -> Result<u32, CompileError> {
        let key = hir.to_string();
        if let Some(&id) = self.lex_ids.get(&key) {
            return Ok(id);
        }
        let dfa = crate::automata::lexer::compile_hir(&hir, self.limit)
            .map_err(|e| self.limit_err(at, format!("terminal {shown}: automaton too large: {e}")))?;
        let table = crate::automata::trim(crate::automata::lexer::table_of(&dfa));
        let id = self.lexemes.len() as u32;
        self.lexemes.push(Lexeme { shown, table });
        self.lex_ids.insert(key, id);
        Ok(id)
    }

    /// `from` → optional `%ignore` lexemes → `edge` → `to`.
    fn lexical_edge(&self, sym: &mut Sym, edge: Edge, optional: bool) -> Frag {
        let start = sym.state();
        let end = sym.state();
        let hub = if self.ignores.is_empty() {
            start
        } else {
            let h = sym.state();
            sym.eps(start, h);
            for &i in &self.ignores {
                sym.states[h as usize].edges.push((Edge::Skip(i), h));
            }
            h
        };
        sym.states[hub as usize].edges.push((edge, end));
        if optional {
            sym.eps(start, end);
        }
        Frag { start, end }
    }

    fn sym_frag(&mut self, e: &Expr, sym: &mut Sym, rule_at: usize) -> Result<Frag, CompileError> {
        if sym.states.len() > self.cfg.get_limits().max_states {
            return Err(self.limit_err(
                rule_at,
                format!("rule spells out more than {} states (Limits::max_states)", self.cfg.get_limits().max_states),
            ));
        }
        Ok(match e {
            Expr::Str { bytes, .. } if bytes.is_empty() => {
                let s = sym.state();
                Frag { start: s, end: s }
            }
            Expr::Str { .. } | Expr::Regex(_) | Expr::Range(..) => {
                let hir = self.hir(e, rule_at)?;
                let shown = match e {
                    Expr::Str { bytes, .. } => format!("{:?}", String::from_utf8_lossy(bytes)),
                    _ => format!("/{hir}/"),
                };
                let nullable = hir.properties().minimum_len() == Some(0);
                let id = self.lexeme(shown, hir, rule_at)?;
                self.lexical_edge(sym, Edge::Lex(id), nullable)
            }
            Expr::Ref { name, at } => {
                let i = self.index[name];
                if self.defs[i].terminal {
                    let hir = self.terminal(i, *at)?;
                    let nullable = hir.properties().minimum_len() == Some(0);
                    let id = self.lexeme(name.clone(), hir, *at)?;
                    self.lexical_edge(sym, Edge::Lex(id), nullable)
                } else if self.inline[i] {
                    let defs = self.defs;
                    self.sym_frag(&defs[i].body, sym, rule_at)?
                } else {
                    let m = self.machine_of_def[i].expect("every called rule has a machine");
                    let start = sym.state();
                    let end = sym.state();
                    sym.states[start as usize].edges.push((Edge::Call(m), end));
                    Frag { start, end }
                }
            }
            Expr::Json { schema, at } => {
                self.json.push(((**schema).clone(), *at));
                self.lexical_edge(sym, Edge::Json(self.json.len() as u32 - 1), false)
            }
            Expr::Seq(v) => {
                let parts = v.iter().map(|x| self.sym_frag(x, sym, rule_at)).collect::<Result<Vec<_>, _>>()?;
                if parts.is_empty() {
                    let s = sym.state();
                    return Ok(Frag { start: s, end: s });
                }
                for w in parts.windows(2) {
                    sym.eps(w[0].end, w[1].start);
                }
                Frag { start: parts[0].start, end: parts[parts.len() - 1].end }
            }
            Expr::Alt(v) => {
                let start = sym.state();
                let end = sym.state();
                for x in v {
                    let f = self.sym_frag(x, sym, rule_at)?;
                    sym.eps(start, f.start);
                    sym.eps(f.end, end);
                }
                Frag { start, end }
            }
            Expr::Repeat(x, min, max) => {
                let start = sym.state();
                let mut cur = start;
                for _ in 0..*min {
                    let f = self.sym_frag(x, sym, rule_at)?;
                    sym.eps(cur, f.start);
                    cur = f.end;
                }
                match max {
                    None => {
                        let f = self.sym_frag(x, sym, rule_at)?;
                        let hub = sym.state();
                        sym.eps(cur, hub);
                        sym.eps(hub, f.start);
                        sym.eps(f.end, hub);
                        cur = hub;
                    }
                    Some(max) => {
                        let end = sym.state();
                        for _ in *min..*max {
                            let f = self.sym_frag(x, sym, rule_at)?;
                            sym.eps(cur, end);
                            sym.eps(cur, f.start);
                            cur = f.end;
                        }
                        sym.eps(cur, end);
                        cur = end;
                    }
                }
                Frag { start, end: cur }
            }
        })
    }

    /// Symbol automata of the rules reachable from `start` that are not
    /// inlined, then of the wrapper (`start`, then `%ignore`d text).
    fn lower_rules(&mut self, start: usize) -> Result<(), CompileError> {
        // Machines for reachable non-inlined rules, numbered first.
        let defs = self.defs;
        let mut order = vec![start];
        self.machine_of_def[start] = Some(0);
        let mut expanded = vec![false; defs.len()];
        let mut i = 0;
        while i < order.len() {
            let d = order[i];
            i += 1;
            let mut stack = vec![&defs[d].body];
            while let Some(e) = stack.pop() {
                match e {
                    Expr::Ref { name, .. } => {
                        let r = self.index[name];
                        if defs[r].terminal {
                            continue;
                        }
                        if self.inline[r] {
                            if !std::mem::replace(&mut expanded[r], true) {
                                stack.push(&defs[r].body);
                            }
                        } else if self.machine_of_def[r].is_none() {
                            self.machine_of_def[r] = Some(order.len() as u32);
                            order.push(r);
                        }
                    }
                    Expr::Seq(v) | Expr::Alt(v) => stack.extend(v.iter()),
                    Expr::Repeat(x, ..) => stack.push(x),
                    _ => {}
                }
            }
        }
        for &d in &order {
            crate::budget::check().map_err(|m| CompileError::new(CompileErrorKind::LimitExceeded, "", m))?;
            let mut sym = Sym::default();
            let f = self.sym_frag(&defs[d].body, &mut sym, defs[d].at)?;
            sym.start = f.start;
            sym.end = f.end;
            self.rules.push((d, sym));
        }
        // The wrapper: `start` (no `%ignore`d text after the last lexeme,
        // as llguidance reads it).
        let mut sym = Sym::default();
        let s0 = sym.state();
        let s1 = sym.state();
        sym.states[s0 as usize].edges.push((Edge::Call(0), s1));
        sym.start = s0;
        sym.end = s1;
        self.rules.push((start, sym));
        Ok(())
    }

    /// First global symbol state of each rule (rules numbered one after
    /// another).
    fn offsets(&self) -> Vec<usize> {
        self.rules
            .iter()
            .scan(0usize, |acc, r| {
                let o = *acc;
                *acc += r.1.states.len();
                Some(o)
            })
            .collect()
    }

    fn finish(mut self, start: usize) -> Result<Compiled, CompileError> {
        let cfg = self.cfg;
        // JSON parts first: their machines go into the builder.
        let mut gb = GrammarBuilder::default();
        let mut json_roots = Vec::new();
        let (mut relaxations, mut annotations) = (Vec::new(), Vec::new());
        for (schema, at) in std::mem::take(&mut self.json) {
            let (line, col) = crate::error::line_col(self.src, at);
            let part = crate::json_schema::compile_into(gb, &schema, cfg).map_err(|e| e.with_position(line, col))?;
            gb = part.gb;
            json_roots.push(part.root);
            relaxations.extend(part.relaxations);
            annotations.extend(part.annotations);
        }
        self.check_left_recursion()?;
        let json_first = {
            let mut b = [0u64; 4];
            for c in b"{[\"-0123456789tfn \t\r\n" {
                set(&mut b, *c);
            }
            b
        };
        let offsets = self.offsets();
        let ctx = self.contexts(&offsets);
        let mut lx = Lexing::new(&self.lexemes, cfg.get_limits().max_states);
        let json_exit = {
            let mut b = [0u64; 4];
            for c in b"0123456789.eE+-" {
                set(&mut b, *c);
            }
            lx.class(b)
        };
        let nullable: Vec<bool> = self.rules.iter().map(|r| self.nullable[r.0]).collect();
        let err = |e: String| CompileError::new(CompileErrorKind::LimitExceeded, "", e).with_keyword("lark");
        // Every follow class, so that the byte blocks below refine them all.
        let all: Vec<u32> = (0..self.lexemes.len() as u32).collect();
        for (r, (_, sym)) in self.rules.iter().enumerate() {
            for (i, st) in sym.states.iter().enumerate() {
                for &(e, _) in &st.edges {
                    if let Edge::Lex(l) | Edge::Skip(l) = e {
                        lx.machine(l, context(&ctx, &all, offsets[r] + i, l)).map_err(err)?;
                    }
                }
            }
        }
        let blocks = Blocks::of(&lx.classes);
        let (first, can_end) = self.local_first(&offsets, &json_first, &nullable);
        // Follow classes each rule can end with (of its last terminal).
        let mut ec: Vec<BTreeSet<u32>> = vec![BTreeSet::new(); self.rules.len()];
        loop {
            let mut changed = false;
            for (m, (_, sym)) in self.rules.iter().enumerate() {
                let mut cur = ec[m].clone();
                for (i, st) in sym.states.iter().enumerate() {
                    for &(e, t) in &st.edges {
                        if !can_end[offsets[m] + t as usize] {
                            continue;
                        }
                        match e {
                            Edge::Lex(l) | Edge::Skip(l) => {
                                let lm = lx.machine(l, context(&ctx, &all, offsets[m] + i, l)).map_err(err)?;
                                cur.extend(lm.label.iter().flatten().copied());
                            }
                            Edge::Call(r) => cur.extend(ec[r as usize].iter().copied()),
                            Edge::Json(_) => {
                                cur.insert(json_exit);
                            }
                        }
                    }
                }
                if cur != ec[m] {
                    ec[m] = cur;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let ec: Vec<Vec<Bytes>> = ec.iter().map(|s| s.iter().map(|&c| lx.classes[c as usize]).collect()).collect();
        let ex = Explore {
            rules: &self.rules,
            ec,
            ctx: &ctx,
            first: &first,
            can_end: &can_end,
            blocks: &blocks,
            offsets,
            nullable: &nullable,
            json_first,
            json_exit,
            all,
        };
        // Which (rule, entry class, follow block) machines can finish, to a
        // fixpoint from "none".
        let root = (self.rules.len() - 1) as u32;
        let root_key = (root, START, END);
        let mut live: AHashMap<Key, bool> = AHashMap::new();
        live.insert(root_key, false);
        loop {
            let keys: Vec<Key> = live.keys().copied().collect();
            let mut changed = false;
            for k in keys {
                crate::budget::check().map_err(|m| CompileError::new(CompileErrorKind::LimitExceeded, "", m))?;
                let (ok, callees) = ex.explore(k, &live, &mut lx)?;
                for c in callees {
                    if let std::collections::hash_map::Entry::Vacant(v) = live.entry(c) {
                        v.insert(false);
                        changed = true;
                    }
                }
                if ok && !live[&k] {
                    live.insert(k, true);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let unsat = || {
            error_at(self.src, self.defs[start].at, CompileErrorKind::Unsatisfiable, "rule `start` matches no string")
        };
        let empty_ok = nullable[root as usize];
        if !live[&root_key] && !empty_ok {
            return Err(unsat());
        }
        let max_states = cfg.get_limits().max_states;
        let mut ids: AHashMap<Key, MachineId> = AHashMap::new();
        let mut keys: Vec<Key> = live.iter().filter(|(_, &ok)| ok).map(|(k, _)| *k).collect();
        keys.sort_unstable();
        for &k in &keys {
            ids.insert(k, gb.add(format!("lark:{}", self.defs[self.rules[k.0 as usize].0].name)));
        }
        let mut total = 0usize;
        for &k in &keys {
            crate::budget::check().map_err(|m| CompileError::new(CompileErrorKind::LimitExceeded, "", m))?;
            let (mut nfa, body) = ex.emit(k, &ids, &json_roots, &mut lx)?;
            nfa.prune(body.end);
            total += nfa.states.len();
            if total > 4 * max_states {
                return Err(self.limit_err(
                    self.defs[start].at,
                    format!(
                        "the grammar spells out more than {} automaton states (Limits::max_states)",
                        4 * max_states
                    ),
                ));
            }
            let (nfa, body) = nfa.without_empty(body);
            let id = ids[&k] as usize;
            gb.machines[id].nfa = nfa;
            gb.machines[id].body = body;
        }
        let w = gb.add("lark:".to_string());
        let mut nfa = Nfa::default();
        let mut alts: Vec<Frag> = ids.get(&root_key).map(|&id| nfa.call(id)).into_iter().collect();
        if empty_ok {
            alts.push(nfa.empty());
        }
        let body = nfa.alt(&alts);
        gb.machines[w as usize].nfa = nfa;
        gb.machines[w as usize].body = body;
        let g = if empty_ok { gb.build_with_empty_root(w, max_states) } else { gb.build(w, max_states) };
        let grammar = g.map_err(|e| match e.kind() {
            CompileErrorKind::Unsatisfiable => unsat(),
            _ => e,
        })?;
        Ok(Compiled { grammar, relaxations, annotations })
    }

    /// Refuses a rule that can call itself before reading a byte (through
    /// rules that can all be empty before the call), naming the cycle.
    fn check_left_recursion(&self) -> Result<(), CompileError> {
        let n = self.rules.len();
        let mut left: Vec<Vec<(usize, ())>> = vec![Vec::new(); n];
        for (m, (_, sym)) in self.rules.iter().enumerate() {
            let mut seen = vec![false; sym.states.len()];
            let mut stack = vec![sym.start];
            seen[sym.start as usize] = true;
            while let Some(s) = stack.pop() {
                let st = &sym.states[s as usize];
                let mut next: Vec<u32> = st.eps.clone();
                for &(e, t) in &st.edges {
                    if let Edge::Call(r) = e {
                        left[m].push((r as usize, ()));
                        if self.nullable[self.rules[r as usize].0] {
                            next.push(t);
                        }
                    }
                }
                for t in next {
                    if !std::mem::replace(&mut seen[t as usize], true) {
                        stack.push(t);
                    }
                }
            }
        }
        if let Some((cycle, ())) = crate::grammar::graph::find_cycle(&left) {
            let names: Vec<&str> = cycle.iter().map(|&m| self.defs[self.rules[m].0].name.as_str()).collect();
            let at = self.defs[self.rules[cycle[0]].0].at;
            return Err(error_at(
                self.src,
                at,
                CompileErrorKind::Unsupported,
                format!(
                    "left recursion through {} (a rule reached again before any text); only direct left recursion \
                     (`a: a x | y`) is rewritten",
                    names.join(" → ")
                ),
            ));
        }
        Ok(())
    }

    /// Per symbol state (global numbering): the bytes that may be read
    /// next without leaving its rule, and whether the rule can end there
    /// without reading.
    fn local_first(&self, offs: &[usize], json_first: &Bytes, nullable: &[bool]) -> (Vec<Bytes>, Vec<bool>) {
        let n = self.rules.iter().map(|r| r.1.states.len()).sum();
        let mut first: Vec<Bytes> = vec![[0; 4]; n];
        let mut end: Vec<bool> = vec![false; n];
        for (m, (_, sym)) in self.rules.iter().enumerate() {
            end[offs[m] + sym.end as usize] = true;
        }
        loop {
            let mut changed = false;
            for (m, (_, sym)) in self.rules.iter().enumerate() {
                for (i, st) in sym.states.iter().enumerate().rev() {
                    let g = offs[m] + i;
                    let mut f = first[g];
                    let mut e = end[g];
                    for &t in &st.eps {
                        let h = offs[m] + t as usize;
                        f = or(f, first[h]);
                        e |= end[h];
                    }
                    for &(edge, t) in &st.edges {
                        let h = offs[m] + t as usize;
                        match edge {
                            Edge::Lex(l) | Edge::Skip(l) => {
                                for &(lo, hi, _) in &self.lexemes[l as usize].table.ranges[0] {
                                    for b in lo..=hi {
                                        set(&mut f, b);
                                    }
                                }
                            }
                            Edge::Json(_) => f = or(f, *json_first),
                            Edge::Call(r) => {
                                let cs = offs[r as usize] + self.rules[r as usize].1.start as usize;
                                f = or(f, first[cs]);
                                if nullable[r as usize] {
                                    f = or(f, first[h]);
                                    e |= end[h];
                                }
                            }
                        }
                    }
                    if f != first[g] || e != end[g] {
                        first[g] = f;
                        end[g] = e;
                        changed = true;
                    }
                }
            }
            if !changed {
                return (first, end);
            }
        }
    }

    /// For each symbol state with a terminal edge, the terminals the
    /// grammar may allow where that terminal starts (over-approximated).
    fn contexts(&self, offsets: &[usize]) -> Vec<Vec<u32>> {
        let all: Vec<u32> = (0..self.lexemes.len() as u32).collect();
        let n = self.rules.iter().map(|r| r.1.states.len()).sum();
        let fallback = |out: &mut Vec<Vec<u32>>| {
            for (r, (_, s)) in self.rules.iter().enumerate() {
                for (i, st) in s.states.iter().enumerate() {
                    if st.edges.iter().any(|e| matches!(e.0, Edge::Lex(_) | Edge::Skip(_))) {
                        out[offsets[r] + i] = all.clone();
                    }
                }
            }
        };
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); n];
        // The finite-state view: a call goes to the callee's start, its end
        // returns to every caller.
        let mut eps: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut sym_edges: Vec<Vec<(Edge, u32)>> = vec![Vec::new(); n];
        for (r, (_, s)) in self.rules.iter().enumerate() {
            let o = offsets[r] as u32;
            for (i, st) in s.states.iter().enumerate() {
                let g = o as usize + i;
                eps[g].extend(st.eps.iter().map(|&t| t + o));
                for &(e, t) in &st.edges {
                    match e {
                        Edge::Call(c) => {
                            let (_, cs) = &self.rules[c as usize];
                            let oc = offsets[c as usize] as u32;
                            eps[g].push(oc + cs.start);
                            eps[(oc + cs.end) as usize].push(t + o);
                        }
                        _ => sym_edges[g].push((e, t + o)),
                    }
                }
            }
        }
        // Closure under ε, with a mark per state (stamped per call).
        let mut mark: Vec<u32> = vec![0; n];
        let mut stamp = 0u32;
        let mut closure = |set: &mut Vec<u32>| {
            stamp += 1;
            for &s in set.iter() {
                mark[s as usize] = stamp;
            }
            let mut stack = set.clone();
            while let Some(s) = stack.pop() {
                for &t in &eps[s as usize] {
                    if mark[t as usize] != stamp {
                        mark[t as usize] = stamp;
                        set.push(t);
                        stack.push(t);
                    }
                }
            }
            set.sort_unstable();
        };
        // What each lexeme state may meet, as a bitset over lexemes; the
        // result does not depend on the order states are explored in.
        let words = self.lexemes.len().div_ceil(64);
        let mut allowed_at: Vec<Vec<u64>> = vec![Vec::new(); n];
        let root = self.rules.len() - 1;
        let mut start = vec![offsets[root] as u32 + self.rules[root].1.start];
        closure(&mut start);
        let mut states: AHashMap<Vec<u32>, ()> = AHashMap::new();
        let mut list: Vec<Vec<u32>> = vec![start.clone()];
        states.insert(start, ());
        let mut work = 0usize;
        let mut i = 0;
        let mut next: AHashMap<Edge, Vec<u32>> = AHashMap::new();
        let mut allowed = vec![0u64; words];
        while i < list.len() {
            if list.len() > MAX_CONTEXT_STATES || work > 20_000_000 {
                fallback(&mut out);
                return out;
            }
            let d = std::mem::take(&mut list[i]);
            i += 1;
            work += d.len();
            allowed.iter_mut().for_each(|w| *w = 0);
            for &s in &d {
                for &(e, t) in &sym_edges[s as usize] {
                    if let Edge::Lex(l) | Edge::Skip(l) = e {
                        allowed[l as usize / 64] |= 1 << (l % 64);
                    }
                    next.entry(e).or_default().push(t);
                }
            }
            for &s in &d {
                if sym_edges[s as usize].iter().any(|e| matches!(e.0, Edge::Lex(_) | Edge::Skip(_))) {
                    let cur = &mut allowed_at[s as usize];
                    if cur.is_empty() {
                        cur.resize(words, 0);
                    }
                    cur.iter_mut().zip(&allowed).for_each(|(c, a)| *c |= a);
                }
            }
            for (_, mut t) in next.drain() {
                t.sort_unstable();
                t.dedup();
                closure(&mut t);
                if let std::collections::hash_map::Entry::Vacant(v) = states.entry(t) {
                    list.push(v.key().clone());
                    v.insert(());
                }
            }
        }
        for (s, bits) in allowed_at.iter().enumerate() {
            for (w, &b) in bits.iter().enumerate() {
                let mut b = b;
                while b != 0 {
                    out[s].push(w as u32 * 64 + b.trailing_zeros());
                    b &= b - 1;
                }
            }
        }
        out
    }
}

/// The lexeme automata per context, and the interned follow classes
/// (class 0: nothing follows forbidden).
struct Lexing<'a> {
    lexemes: &'a [Lexeme],
    max_states: usize,
    classes: Vec<Bytes>,
    class_ids: AHashMap<Bytes, u32>,
    contexts: AHashMap<Vec<u32>, std::rc::Rc<Union>>,
    machines: AHashMap<(u32, Vec<u32>), std::rc::Rc<LexMachine>>,
    reach: AHashMap<(u32, Vec<u32>, u32), Vec<u32>>,
}

/// The lexemes of one context run side by side: each state lists the
/// (lexeme, state) pairs still alive.
struct Union {
    members: Vec<Vec<(u32, u32)>>,
    next: Vec<Vec<(u8, u8, u32)>>,
}

impl<'a> Lexing<'a> {
    fn new(lexemes: &'a [Lexeme], max_states: usize) -> Self {
        let mut l = Lexing {
            lexemes,
            max_states,
            classes: Vec::new(),
            class_ids: AHashMap::new(),
            contexts: AHashMap::new(),
            machines: AHashMap::new(),
            reach: AHashMap::new(),
        };
        l.class([0; 4]);
        l
    }

    /// The bytes class `q` forbids ([`START`] forbids none).
    fn forbidden(&self, q: u32) -> Bytes {
        if q == START {
            [0; 4]
        } else {
            self.classes[q as usize]
        }
    }

    fn class(&mut self, b: Bytes) -> u32 {
        if let Some(&c) = self.class_ids.get(&b) {
            return c;
        }
        self.classes.push(b);
        self.class_ids.insert(b, self.classes.len() as u32 - 1);
        self.classes.len() as u32 - 1
    }

    fn union(&mut self, ctx: &[u32]) -> Result<std::rc::Rc<Union>, String> {
        if let Some(u) = self.contexts.get(ctx) {
            return Ok(u.clone());
        }
        let start: Vec<(u32, u32)> = ctx.iter().map(|&l| (l, 0)).collect();
        let mut ids: AHashMap<Vec<(u32, u32)>, u32> = AHashMap::new();
        let mut u = Union { members: vec![start.clone()], next: Vec::new() };
        ids.insert(start, 0);
        let mut i = 0;
        while i < u.members.len() {
            if u.members.len() > self.max_states {
                let names: Vec<&str> = ctx.iter().take(8).map(|&l| self.lexemes[l as usize].shown.as_str()).collect();
                return Err(format!(
                    "the terminals allowed together ({}{}) need more than {} states (Limits::max_states)",
                    names.join(", "),
                    if ctx.len() > 8 { ", …" } else { "" },
                    self.max_states
                ));
            }
            let cur = u.members[i].clone();
            i += 1;
            // Per byte, the members' next states.
            let mut per_byte: Vec<Vec<(u32, u32)>> = vec![Vec::new(); 256];
            for &(l, s) in &cur {
                for &(lo, hi, t) in &self.lexemes[l as usize].table.ranges[s as usize] {
                    for b in lo..=hi {
                        per_byte[b as usize].push((l, t));
                    }
                }
            }
            let mut row: Vec<(u8, u8, u32)> = Vec::new();
            for (b, m) in per_byte.into_iter().enumerate() {
                if m.is_empty() {
                    continue;
                }
                let next_id = match ids.get(&m) {
                    Some(&x) => x,
                    None => {
                        let x = u.members.len() as u32;
                        ids.insert(m.clone(), x);
                        u.members.push(m);
                        x
                    }
                };
                match row.last_mut() {
                    Some(r) if r.1 as usize + 1 == b && r.2 == next_id => r.1 = b as u8,
                    _ => row.push((b as u8, b as u8, next_id)),
                }
            }
            u.next.push(row);
        }
        let u = std::rc::Rc::new(u);
        self.contexts.insert(ctx.to_vec(), u.clone());
        Ok(u)
    }

    /// Lexeme `l` in context `ctx`: its path through the context's union,
    /// minimized, accepting states labeled with their follow class.
    fn machine(&mut self, l: u32, ctx: &[u32]) -> Result<std::rc::Rc<LexMachine>, String> {
        let key = (l, ctx.to_vec());
        if let Some(m) = self.machines.get(&key) {
            return Ok(m.clone());
        }
        let u = self.union(ctx)?;
        let table = &self.lexemes[l as usize].table;
        let state_of = |d: u32| u.members[d as usize].iter().find(|x| x.0 == l).map(|x| x.1);
        // Reachable union states where `l` is alive.
        // The start is its own state: a lexeme reads a byte before it can
        // end, even where the union comes back to its first state.
        let mut order: Vec<(u32, bool)> = vec![(0, true)];
        let mut local: AHashMap<u32, u32> = AHashMap::new();
        let mut ranges: Vec<Vec<(u8, u8, u32)>> = Vec::new();
        let mut label: Vec<Option<u32>> = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let (d, first) = order[i];
            i += 1;
            let mine = state_of(d).expect("alive");
            let accepting = !first && table.accept[mine as usize];
            let lab = if accepting {
                let mut f = [0u64; 4];
                for &(lo, hi, _) in &u.next[d as usize] {
                    for b in lo..=hi {
                        set(&mut f, b);
                    }
                }
                Some(self.class(f))
            } else {
                None
            };
            label.push(lab);
            let mut row = Vec::new();
            for &(lo, hi, t) in &u.next[d as usize] {
                if state_of(t).is_none() {
                    continue;
                }
                let lt = *local.entry(t).or_insert_with(|| {
                    order.push((t, false));
                    (order.len() - 1) as u32
                });
                row.push((lo, hi, lt));
            }
            ranges.push(row);
        }
        let m = std::rc::Rc::new(minimize(ranges, label));
        self.machines.insert(key, m.clone());
        Ok(m)
    }

    /// Follow classes lexeme `l` can end with in `ctx` when its first byte
    /// may not be in class `pending`.
    fn ends(&mut self, l: u32, ctx: &[u32], pending: u32) -> Result<Vec<u32>, String> {
        let key = (l, ctx.to_vec(), pending);
        if let Some(v) = self.reach.get(&key) {
            return Ok(v.clone());
        }
        let m = self.machine(l, ctx)?;
        let forbid = self.forbidden(pending);
        let mut seen = vec![false; m.ranges.len()];
        let mut stack = Vec::new();
        for &(lo, hi, t) in &m.ranges[0] {
            if (lo..=hi).any(|b| !has(&forbid, b)) && !seen[t as usize] {
                seen[t as usize] = true;
                stack.push(t);
            }
        }
        let mut out = BTreeSet::new();
        while let Some(s) = stack.pop() {
            if let Some(c) = m.label[s as usize] {
                out.insert(c);
            }
            for &(_, _, t) in &m.ranges[s as usize] {
                if !std::mem::replace(&mut seen[t as usize], true) {
                    stack.push(t);
                }
            }
        }
        let v: Vec<u32> = out.into_iter().collect();
        self.reach.insert(key, v.clone());
        Ok(v)
    }
}

/// Moore minimization of a DFA whose states carry labels.
fn minimize(ranges: Vec<Vec<(u8, u8, u32)>>, label: Vec<Option<u32>>) -> LexMachine {
    let n = ranges.len();
    let mut block: Vec<u32> = {
        let mut ids: AHashMap<Option<u32>, u32> = AHashMap::new();
        label
            .iter()
            .map(|l| {
                let k = ids.len() as u32;
                *ids.entry(*l).or_insert(k)
            })
            .collect()
    };
    loop {
        let mut ids: AHashMap<(u32, Vec<(u8, u8, u32)>), u32> = AHashMap::new();
        let next: Vec<u32> = (0..n)
            .map(|s| {
                let mut sig: Vec<(u8, u8, u32)> = Vec::new();
                for &(lo, hi, t) in &ranges[s] {
                    let b = block[t as usize];
                    match sig.last_mut() {
                        Some(r) if r.1 as u16 + 1 == lo as u16 && r.2 == b => r.1 = hi,
                        _ => sig.push((lo, hi, b)),
                    }
                }
                let k = ids.len() as u32;
                *ids.entry((block[s], sig)).or_insert(k)
            })
            .collect();
        let before = block.iter().collect::<BTreeSet<_>>().len();
        let after = next.iter().collect::<BTreeSet<_>>().len();
        block = next;
        if after == before {
            break;
        }
    }
    // Renumber with the start state's block first.
    let mut new_id: AHashMap<u32, u32> = AHashMap::new();
    new_id.insert(block[0], 0);
    for &b in &block {
        let k = new_id.len() as u32;
        new_id.entry(b).or_insert(k);
    }
    let m = new_id.len();
    let mut out_ranges = vec![Vec::new(); m];
    let mut out_label = vec![None; m];
    let mut done = vec![false; m];
    for s in 0..n {
        let b = new_id[&block[s]] as usize;
        if std::mem::replace(&mut done[b], true) {
            continue;
        }
        out_label[b] = label[s];
        let mut row: Vec<(u8, u8, u32)> = Vec::new();
        for &(lo, hi, t) in &ranges[s] {
            let tb = new_id[&block[t as usize]];
            match row.last_mut() {
                Some(r) if r.1 as u16 + 1 == lo as u16 && r.2 == tb => r.1 = hi,
                _ => row.push((lo, hi, tb)),
            }
        }
        out_ranges[b] = row;
    }
    LexMachine { ranges: out_ranges, label: out_label }
}

/// A machine: (rule, pending class on entry, the set of bytes one of which
/// follows it, as a class id, or [`END`]).
type Key = (u32, u32, u32);

/// The follow set of the output's end: nothing comes after it.
const END: u32 = u32::MAX;

/// The coarsest partition of the bytes that every follow class respects:
/// a block lies inside or outside each class.
struct Blocks {
    sets: Vec<Bytes>,
}

impl Blocks {
    fn of(classes: &[Bytes]) -> Blocks {
        let mut sig: AHashMap<Vec<bool>, usize> = AHashMap::new();
        let mut sets: Vec<Bytes> = Vec::new();
        for b in 0..=255u8 {
            let key: Vec<bool> = classes.iter().map(|c| has(c, b)).collect();
            let i = *sig.entry(key).or_insert_with(|| {
                sets.push([0; 4]);
                sets.len() - 1
            });
            set(&mut sets[i], b);
        }
        Blocks { sets }
    }
}

/// The bytes of follow set `follow` (a class id; [`END`]: none).
fn follow_bytes(lx: &Lexing, follow: u32) -> Bytes {
    if follow == END {
        [0; 4]
    } else {
        lx.classes[follow as usize]
    }
}

/// The product of a rule's symbol automaton with the pending follow class,
/// for a given follow block.
struct Explore<'a> {
    rules: &'a [(usize, Sym)],
    /// Follow classes each rule can end with.
    ec: Vec<Vec<Bytes>>,
    ctx: &'a [Vec<u32>],
    /// Bytes readable next from each (global) symbol state within its rule.
    first: &'a [Bytes],
    /// Whether the rule can end from each symbol state without reading.
    can_end: &'a [bool],
    blocks: &'a Blocks,
    /// First global symbol state of each rule.
    offsets: Vec<usize>,
    nullable: &'a [bool],
    json_first: Bytes,
    json_exit: u32,
    all: Vec<u32>,
}

/// The terminals allowed with terminal `l` at global symbol state `g`:
/// every terminal when the finite-state view did not reach it (a larger set
/// only forbids more).
fn context<'c>(ctx: &'c [Vec<u32>], all: &'c [u32], g: usize, l: u32) -> &'c [u32] {
    let c = &ctx[g];
    if c.binary_search(&l).is_ok() {
        c
    } else {
        all
    }
}

fn and(a: Bytes, b: Bytes) -> Bytes {
    [a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3]]
}

fn or(a: Bytes, b: Bytes) -> Bytes {
    [a[0] | b[0], a[1] | b[1], a[2] | b[2], a[3] | b[3]]
}

fn empty(a: Bytes) -> bool {
    a == [0; 4]
}

impl Explore<'_> {
    fn ctx_of(&self, g: usize, l: u32) -> &[u32] {
        context(self.ctx, &self.all, g, l)
    }

    /// Class `q` cut to the bytes that may come next at global state `g`
    /// of a machine whose follow block is `beta`.
    fn norm(&self, lx: &mut Lexing, g: usize, beta: u32, q: u32) -> u32 {
        if q == 0 || q == START {
            return q;
        }
        let mut next = self.first[g];
        if self.can_end[g] {
            next = or(next, follow_bytes(lx, beta));
        }
        lx.class(and(lx.classes[q as usize], next))
    }

    /// The follow sets a call of `r` returning to global state `g` is made
    /// with: the byte blocks readable there, and the machine's own follow
    /// set if the rule can end there, grouped where no class `r` can end
    /// with tells them apart (one variant of `r` for each group).
    fn call_groups(&self, lx: &mut Lexing, r: u32, g: usize, beta: u32) -> Vec<u32> {
        let mut sets: Vec<Bytes> =
            self.blocks.sets.iter().filter(|b| !empty(and(**b, self.first[g]))).copied().collect();
        let mut out = Vec::new();
        if self.can_end[g] {
            if beta == END {
                out.push(END);
            } else {
                sets.push(lx.classes[beta as usize]);
            }
        }
        let mut groups: Vec<(Vec<bool>, Bytes)> = Vec::new();
        for set_ in sets {
            let b = (0..=255u8).find(|&b| has(&set_, b)).expect("non-empty");
            let sig: Vec<bool> = self.ec[r as usize].iter().map(|f| has(f, b)).collect();
            match groups.iter_mut().find(|(s, _)| *s == sig) {
                Some((_, acc)) => *acc = or(*acc, set_),
                None => groups.push((sig, set_)),
            }
        }
        out.extend(groups.into_iter().map(|(_, b)| lx.class(b)));
        out
    }

    /// The pending class after a call made with follow set `follow`: the
    /// next byte must be in it.
    fn restrict(&self, lx: &mut Lexing, follow: u32) -> u32 {
        let b = follow_bytes(lx, follow);
        lx.class([!b[0], !b[1], !b[2], !b[3]])
    }

    fn entry(&self, lx: &mut Lexing, r: u32, q: u32, block: u32) -> Key {
        if q == START || q == 0 {
            return (r, q, block);
        }
        let g = self.offsets[r as usize] + self.rules[r as usize].1.start as usize;
        (r, lx.class(and(lx.classes[q as usize], self.first[g])), block)
    }

    fn json_ok(&self, lx: &Lexing, pending: u32) -> bool {
        empty(and(lx.forbidden(pending), self.json_first))
    }

    /// Whether machine `key` can finish (calling only `live` machines),
    /// and the machines it calls.
    fn explore(&self, key: Key, live: &AHashMap<Key, bool>, lx: &mut Lexing) -> Result<(bool, Vec<Key>), CompileError> {
        let (m, p, beta) = key;
        let sym = &self.rules[m as usize].1;
        let off = self.offsets[m as usize];
        let err = |e: String| CompileError::new(CompileErrorKind::LimitExceeded, "", e).with_keyword("lark");
        let start = (sym.start, self.norm(lx, off + sym.start as usize, beta, p), false);
        let mut seen: ahash::AHashSet<(u32, u32, bool)> = Default::default();
        seen.insert(start);
        let mut stack = vec![start];
        let (mut ok, mut callees) = (false, Vec::new());
        let mut todo: Vec<(u32, u32, bool)> = Vec::new();
        let beta_bytes = follow_bytes(lx, beta);
        while let Some((s, q, read)) = stack.pop() {
            if s == sym.end && read && empty(and(lx.forbidden(q), beta_bytes)) {
                ok = true;
            }
            let st = &sym.states[s as usize];
            for &t in &st.eps {
                todo.push((t, q, read));
            }
            for &(e, t) in &st.edges {
                match e {
                    Edge::Skip(_) if q == START => {}
                    Edge::Lex(l) | Edge::Skip(l) => {
                        for k in lx.ends(l, self.ctx_of(off + s as usize, l), q).map_err(err)? {
                            todo.push((t, k, true));
                        }
                    }
                    Edge::Call(r) => {
                        if self.nullable[r as usize] {
                            todo.push((t, q, read));
                        }
                        for block in self.call_groups(lx, r, off + t as usize, beta) {
                            let callee = self.entry(lx, r, q, block);
                            callees.push(callee);
                            if live.get(&callee) == Some(&true) {
                                let k = self.restrict(lx, block);
                                todo.push((t, k, true));
                            }
                        }
                    }
                    Edge::Json(_) => {
                        if self.json_ok(lx, q) {
                            todo.push((t, self.json_exit, true));
                        }
                    }
                }
            }
            for (t, k, r) in todo.drain(..) {
                let x = (t, self.norm(lx, off + t as usize, beta, k), r);
                if seen.insert(x) {
                    stack.push(x);
                }
            }
        }
        Ok((ok, callees))
    }

    /// The byte NFA of machine `key`.
    fn emit(
        &self,
        key: Key,
        ids: &AHashMap<Key, MachineId>,
        json_roots: &[MachineId],
        lx: &mut Lexing,
    ) -> Result<(Nfa, Frag), CompileError> {
        let (m, p, beta) = key;
        let sym = &self.rules[m as usize].1;
        let off = self.offsets[m as usize];
        let err = |e: String| CompileError::new(CompileErrorKind::LimitExceeded, "", e).with_keyword("lark");
        let beta_bytes = follow_bytes(lx, beta);
        let mut nfa = Nfa::default();
        let fin = nfa.state();
        let mut node: AHashMap<(u32, u32), u32> = AHashMap::new();
        let first = (sym.start, self.norm(lx, off + sym.start as usize, beta, p));
        let start = nfa.state();
        node.insert(first, start);
        let mut stack = vec![first];
        // Edges into (symbol state, class) pairs, created on first use.
        enum Out {
            Eps(u32),
            Call(MachineId, u32),
        }
        while let Some((s, q)) = stack.pop() {
            let n = node[&(s, q)];
            if s == sym.end && empty(and(lx.forbidden(q), beta_bytes)) {
                nfa.eps(n, fin);
            }
            let mut outs: Vec<(Out, u32, u32)> = Vec::new();
            let st = &sym.states[s as usize];
            for &t in &st.eps {
                outs.push((Out::Eps(n), t, q));
            }
            for &(edge, t) in &st.edges {
                match edge {
                    Edge::Skip(_) if q == START => {}
                    Edge::Lex(l) | Edge::Skip(l) => {
                        let ctx = self.ctx_of(off + s as usize, l);
                        if lx.ends(l, ctx, q).map_err(err)?.is_empty() {
                            continue;
                        }
                        let lm = lx.machine(l, ctx).map_err(err)?;
                        let forbid = lx.forbidden(q);
                        let copies: Vec<u32> = (0..lm.ranges.len()).map(|_| nfa.state()).collect();
                        // Entry: the start state's bytes outside the pending class.
                        let entry = nfa.state();
                        nfa.eps(n, entry);
                        for &(lo, hi, to) in &lm.ranges[0] {
                            let mut b = lo;
                            loop {
                                if !has(&forbid, b) {
                                    let mut c = b;
                                    while c < hi && !has(&forbid, c + 1) {
                                        c += 1;
                                    }
                                    nfa.states[entry as usize].ranges.push((b, c, copies[to as usize]));
                                    b = c;
                                }
                                if b == hi {
                                    break;
                                }
                                b += 1;
                            }
                        }
                        for (i, row) in lm.ranges.iter().enumerate() {
                            for &(lo, hi, to) in row {
                                nfa.states[copies[i] as usize].ranges.push((lo, hi, copies[to as usize]));
                            }
                            if let Some(k) = lm.label[i] {
                                outs.push((Out::Eps(copies[i]), t, k));
                            }
                        }
                    }
                    Edge::Call(r) => {
                        if self.nullable[r as usize] {
                            outs.push((Out::Eps(n), t, q));
                        }
                        for block in self.call_groups(lx, r, off + t as usize, beta) {
                            let callee = self.entry(lx, r, q, block);
                            if let Some(&id) = ids.get(&callee) {
                                let k = self.restrict(lx, block);
                                outs.push((Out::Call(id, n), t, k));
                            }
                        }
                    }
                    Edge::Json(j) => {
                        if self.json_ok(lx, q) {
                            outs.push((Out::Call(json_roots[j as usize], n), t, self.json_exit));
                        }
                    }
                }
            }
            for (o, t, k) in outs {
                let x = (t, self.norm(lx, off + t as usize, beta, k));
                let to = *node.entry(x).or_insert_with(|| {
                    stack.push(x);
                    nfa.state()
                });
                match o {
                    Out::Eps(from) => nfa.eps(from, to),
                    Out::Call(machine, from) => nfa.states[from as usize].calls.push((machine, to)),
                }
            }
        }
        Ok((nfa, Frag { start, end: fin }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_parses() {
        let p = Parser::new(COMMON, false).grammar().unwrap();
        assert!(p.defs.iter().any(|d| d.name == "ESCAPED_STRING"));
    }

    #[test]
    fn direct_left_recursion_becomes_repetition() {
        let mut d =
            Parser::new("expr: expr \"+\" term | expr \"-\" term | term\n", false).grammar().unwrap().defs.remove(0);
        rewrite_left_recursion(&mut d);
        assert!(matches!(&d.body, Expr::Seq(v) if matches!(&v[1], Expr::Repeat(_, 0, None))));
    }
}
