//! The GBNF front-end: llama.cpp's grammar format (and the EBNF dialect
//! XGrammar accepts) compiled onto the grammar IR.
//!
//! This module owns the GBNF syntax (parsing with line and column in every
//! error), its meaning (rules over Unicode code points, matched as UTF-8
//! bytes) and its lowering: each rule becomes one machine, a rule reference
//! a call, groups and repetitions NFA fragments. The runtime needs machines
//! that never accept the empty string and never call themselves before
//! reading a byte, so the lowering
//! - gives every machine the language of its rule *minus* the empty string,
//!   and turns a reference to a rule that can be empty into "the call, or
//!   nothing" (the classic ε-rule elimination, done on automata: each
//!   machine's NFA is doubled into "nothing read yet" and "something read"
//!   copies, and only the second may accept);
//! - refuses left recursion (a rule reaching itself through rules that can
//!   all be empty before it) with a typed error naming the cycle, where
//!   llama.cpp would loop or crash.
//!
//! Syntax, as llama.cpp reads it: `name ::= alternatives`, `|`, grouping,
//! `*` `+` `?` `{m}` `{m,}` `{m,n}`, `"literals"` and `[classes]` (ranges,
//! `^` negation) with the escapes `\x.. \u.... \U........ \t \r \n \\ \"
//! \[ \] \-`, `.` (any code point), `#` comments, and `root` as the start.
//! Two additions read XGrammar's dialect: a line that does not start a new
//! rule (`name ::=`) continues the rule above it (so `|` may begin a line),
//! and `'single-quoted'` literals. Lookahead assertions `(= …)` and token
//! references `<[…]>` are refused by name.

use crate::config::Config;
use crate::error::{CompileError, CompileErrorKind};
use crate::grammar::nfa::{Frag, MachineId, Nfa};
use crate::grammar::{Grammar, GrammarBuilder};

/// Largest count in `{m,n}`; larger ones are almost always mistakes and
/// would spell out that many copies.
const MAX_REPEAT: u32 = 10_000;

/// One element of a rule body.
#[derive(Clone, Debug)]
enum Node {
    /// Exactly these bytes (UTF-8 of the literal).
    Lit(Vec<u8>),
    /// One code point in (or, negated, outside) the ranges.
    Class {
        ranges: Vec<(u32, u32)>,
        negated: bool,
    },
    /// A reference to rule `.0`, at byte offset `.1` of the source.
    Ref(usize, usize),
    Seq(Vec<Node>),
    Alt(Vec<Node>),
    /// `min` to `max` (unbounded when `None`) copies.
    Repeat(Box<Node>, u32, Option<u32>),
}

struct Rule {
    name: String,
    /// Byte offset of the definition (for messages).
    at: usize,
    body: Option<Node>,
}

/// A parsed grammar: rules by index, `root` among them.
struct Parsed {
    rules: Vec<Rule>,
    root: usize,
}

fn error_at(src: &str, pos: usize, kind: CompileErrorKind, msg: impl std::fmt::Display) -> CompileError {
    let (line, col) = crate::error::line_col(src, pos);
    CompileError::new(kind, "", msg.to_string()).with_keyword("gbnf").with_position(line, col)
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    rules: Vec<Rule>,
    ids: ahash::AHashMap<String, usize>,
    depth: usize,
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

impl<'a> Parser<'a> {
    fn err(&self, msg: impl std::fmt::Display) -> CompileError {
        error_at(self.src, self.pos, CompileErrorKind::InvalidSchema, msg)
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }
    /// Skips blanks and comments, and line ends when `newlines`.
    fn space(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' => self.pos += 1,
                b'\r' | b'\n' if newlines => self.pos += 1,
                b'#' => {
                    while !matches!(self.peek(), None | Some(b'\n') | Some(b'\r')) {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }
    fn name(&mut self) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(is_word) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.src[start..self.pos])
    }
    fn rule_id(&mut self, name: &str, at: usize) -> usize {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        self.rules.push(Rule { name: name.to_string(), at, body: None });
        self.ids.insert(name.to_string(), self.rules.len() - 1);
        self.rules.len() - 1
    }
    /// Whether a rule definition (`name ::=`) starts at the current position.
    fn at_definition(&self) -> bool {
        let mut p = self.pos;
        while p < self.b.len() && is_word(self.b[p]) {
            p += 1;
        }
        if p == self.pos {
            return false;
        }
        while p < self.b.len() && matches!(self.b[p], b' ' | b'\t') {
            p += 1;
        }
        self.b[p..].starts_with(b"::=")
    }

    fn grammar(mut self) -> Result<Parsed, CompileError> {
        self.space(true);
        while self.pos < self.b.len() {
            let at = self.pos;
            let Some(name) = self.name() else {
                return Err(self.err("expected a rule name"));
            };
            self.space(false);
            if !self.b[self.pos..].starts_with(b"::=") {
                return Err(self.err(format!("expected `::=` after rule name `{name}`")));
            }
            self.pos += 3;
            let id = self.rule_id(name, at);
            if self.rules[id].body.is_some() {
                return Err(error_at(
                    self.src,
                    at,
                    CompileErrorKind::InvalidSchema,
                    format!("rule `{name}` is defined twice"),
                ));
            }
            self.rules[id].at = at;
            self.space(true);
            let body = self.alternatives(false)?;
            self.rules[id].body = Some(body);
            self.space(true);
        }
        for r in &self.rules {
            if r.body.is_none() {
                return Err(error_at(
                    self.src,
                    r.at,
                    CompileErrorKind::InvalidSchema,
                    format!("rule `{}` is used but never defined", r.name),
                ));
            }
        }
        let Some(&root) = self.ids.get("root") else {
            return Err(error_at(self.src, 0, CompileErrorKind::InvalidSchema, "the grammar has no `root` rule"));
        };
        Ok(Parsed { rules: self.rules, root })
    }

    /// `seq ('|' seq)*`. At the top level (`nested` false) a line end ends a
    /// sequence; the rule goes on when the next line is not a definition.
    fn alternatives(&mut self, nested: bool) -> Result<Node, CompileError> {
        self.depth += 1;
        if self.depth > 200 {
            return Err(error_at(self.src, self.pos, CompileErrorKind::LimitExceeded, "groups nested deeper than 200"));
        }
        let mut alts = vec![self.sequence(nested)?];
        loop {
            if !nested {
                // A continuation line: `| …` or more elements (XGrammar).
                let save = self.pos;
                self.space(true);
                if self.pos >= self.b.len() || self.at_definition() {
                    self.pos = save;
                    break;
                }
                if self.peek() != Some(b'|') {
                    if self.pos == save {
                        break;
                    }
                    let more = self.sequence(nested)?;
                    let last = alts.pop().unwrap_or(Node::Seq(Vec::new()));
                    alts.push(Node::Seq(vec![last, more]));
                    continue;
                }
            }
            if self.peek() != Some(b'|') {
                break;
            }
            self.pos += 1;
            self.space(true);
            alts.push(self.sequence(nested)?);
        }
        self.depth -= 1;
        Ok(if alts.len() == 1 { alts.pop().unwrap_or(Node::Seq(Vec::new())) } else { Node::Alt(alts) })
    }

    fn sequence(&mut self, nested: bool) -> Result<Node, CompileError> {
        let mut items: Vec<Node> = Vec::new();
        loop {
            let at = self.pos;
            let Some(c) = self.peek() else { break };
            let item = match c {
                b'"' | b'\'' => {
                    self.pos += 1;
                    let mut bytes = Vec::new();
                    loop {
                        match self.peek() {
                            None | Some(b'\n') | Some(b'\r') => return Err(self.err("unterminated literal")),
                            Some(q) if q == c => break,
                            _ => {
                                let cp = self.char()?;
                                push_utf8(&mut bytes, cp);
                            }
                        }
                    }
                    self.pos += 1;
                    Node::Lit(bytes)
                }
                b'[' => {
                    self.pos += 1;
                    let negated = self.peek() == Some(b'^');
                    if negated {
                        self.pos += 1;
                    }
                    let mut ranges = Vec::new();
                    loop {
                        match self.peek() {
                            None => {
                                return Err(error_at(
                                    self.src,
                                    at,
                                    CompileErrorKind::InvalidSchema,
                                    "unterminated character class",
                                ))
                            }
                            Some(b']') => break,
                            _ => {
                                let lo_at = self.pos;
                                let lo = self.char()?;
                                let mut hi = lo;
                                if self.peek() == Some(b'-') && self.b.get(self.pos + 1).is_some_and(|&n| n != b']') {
                                    self.pos += 1;
                                    hi = self.char()?;
                                }
                                if hi < lo {
                                    return Err(error_at(
                                        self.src,
                                        lo_at,
                                        CompileErrorKind::InvalidSchema,
                                        "character range out of order",
                                    ));
                                }
                                ranges.push((lo, hi));
                            }
                        }
                    }
                    self.pos += 1;
                    Node::Class { ranges, negated }
                }
                b'.' => {
                    self.pos += 1;
                    Node::Class { ranges: Vec::new(), negated: true }
                }
                b'(' => {
                    self.pos += 1;
                    self.space(true);
                    if self.peek() == Some(b'=') {
                        return Err(error_at(
                            self.src,
                            at,
                            CompileErrorKind::Unsupported,
                            "lookahead assertions `(= …)` are not supported",
                        ));
                    }
                    let inner = self.alternatives(true)?;
                    if self.peek() != Some(b')') {
                        return Err(self.err("expected `)`"));
                    }
                    self.pos += 1;
                    inner
                }
                b'<' | b'!' => {
                    return Err(error_at(
                        self.src,
                        at,
                        CompileErrorKind::Unsupported,
                        "token references `<[…]>` are not supported (grammask constrains text, not token ids)",
                    ))
                }
                b'*' | b'+' | b'?' | b'{' => {
                    let Some(last) = items.pop() else {
                        return Err(self.err(format!("`{}` has nothing to repeat", c as char)));
                    };
                    self.pos += 1;
                    let (min, max) = match c {
                        b'*' => (0, None),
                        b'+' => (1, None),
                        b'?' => (0, Some(1)),
                        _ => self.counts(at)?,
                    };
                    Node::Repeat(Box::new(last), min, max)
                }
                c if is_word(c) => {
                    let name = self.name().unwrap_or_default();
                    Node::Ref(self.rule_id(name, at), at)
                }
                _ => break,
            };
            items.push(item);
            self.space(nested);
        }
        Ok(if items.len() == 1 { items.pop().unwrap_or(Node::Seq(Vec::new())) } else { Node::Seq(items) })
    }

    /// The inside of `{m}`, `{m,}`, `{m,n}` (after the brace).
    fn counts(&mut self, at: usize) -> Result<(u32, Option<u32>), CompileError> {
        let int = |p: &mut Self| -> Result<Option<u32>, CompileError> {
            p.space(true);
            let start = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            if p.pos == start {
                return Ok(None);
            }
            match p.src[start..p.pos].parse::<u32>() {
                Ok(n) if n <= MAX_REPEAT => Ok(Some(n)),
                _ => Err(error_at(
                    p.src,
                    at,
                    CompileErrorKind::LimitExceeded,
                    format!("repetition count above {MAX_REPEAT}"),
                )),
            }
        };
        let Some(min) = int(self)? else { return Err(self.err("expected a number in `{…}`")) };
        self.space(true);
        let max = match self.peek() {
            Some(b'}') => Some(min),
            Some(b',') => {
                self.pos += 1;
                let max = int(self)?;
                self.space(true);
                if self.peek() != Some(b'}') {
                    return Err(self.err("expected `}`"));
                }
                if max.is_some_and(|m| m < min) {
                    return Err(error_at(
                        self.src,
                        at,
                        CompileErrorKind::InvalidSchema,
                        "repetition `{m,n}` with n < m",
                    ));
                }
                max
            }
            _ => return Err(self.err("expected `,` or `}`")),
        };
        self.pos += 1;
        Ok((min, max))
    }

    /// One code point of a literal or class, escapes decoded.
    fn char(&mut self) -> Result<u32, CompileError> {
        let rest = &self.src[self.pos..];
        let Some(c) = rest.chars().next() else { return Err(self.err("unexpected end of input")) };
        if c != '\\' {
            self.pos += c.len_utf8();
            return Ok(c as u32);
        }
        let at = self.pos;
        self.pos += 1;
        let Some(e) = self.peek() else { return Err(self.err("trailing backslash")) };
        self.pos += 1;
        let hex = |p: &mut Self, n: usize| -> Result<u32, CompileError> {
            let digits = p.src.get(p.pos..p.pos + n).filter(|d| d.bytes().all(|c| c.is_ascii_hexdigit()));
            let Some(d) = digits else {
                return Err(error_at(p.src, at, CompileErrorKind::InvalidSchema, format!("expected {n} hex digits")));
            };
            p.pos += n;
            let v = u32::from_str_radix(d, 16).unwrap_or(u32::MAX);
            if char::from_u32(v).is_none() {
                return Err(error_at(
                    p.src,
                    at,
                    CompileErrorKind::InvalidSchema,
                    format!("U+{v:X} is not a Unicode scalar value"),
                ));
            }
            Ok(v)
        };
        Ok(match e {
            b'x' => hex(self, 2)?,
            b'u' => hex(self, 4)?,
            b'U' => hex(self, 8)?,
            b't' => 9,
            b'r' => 13,
            b'n' => 10,
            b'\\' | b'"' | b'\'' | b'[' | b']' | b'-' | b'^' => e as u32,
            _ => {
                return Err(error_at(
                    self.src,
                    at,
                    CompileErrorKind::InvalidSchema,
                    format!("unknown escape `\\{}`", e as char),
                ))
            }
        })
    }
}

fn push_utf8(out: &mut Vec<u8>, cp: u32) {
    let c = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
}

/// Which rules can match the empty string (a least fixed point).
fn nullable(rules: &[Rule]) -> Vec<bool> {
    fn null(n: &Node, known: &[bool]) -> bool {
        match n {
            Node::Lit(b) => b.is_empty(),
            Node::Class { .. } => false,
            Node::Ref(r, _) => known[*r],
            Node::Seq(v) => v.iter().all(|x| null(x, known)),
            Node::Alt(v) => v.iter().any(|x| null(x, known)),
            Node::Repeat(x, min, _) => *min == 0 || null(x, known),
        }
    }
    let mut known = vec![false; rules.len()];
    loop {
        let mut changed = false;
        for (i, r) in rules.iter().enumerate() {
            if !known[i] && r.body.as_ref().is_some_and(|b| null(b, &known)) {
                known[i] = true;
                changed = true;
            }
        }
        if !changed {
            return known;
        }
    }
}

/// The rules a node may call before reading a byte: `(rule, offset)`.
fn left_calls(n: &Node, null: &[bool], out: &mut Vec<(usize, usize)>) -> bool {
    // Returns whether `n` can be empty (so what follows is also at the left).
    match n {
        Node::Lit(b) => b.is_empty(),
        Node::Class { .. } => false,
        Node::Ref(r, at) => {
            out.push((*r, *at));
            null[*r]
        }
        Node::Seq(v) => v.iter().all(|x| left_calls(x, null, out)),
        Node::Alt(v) => v.iter().fold(false, |any, x| left_calls(x, null, out) | any),
        Node::Repeat(x, min, _) => left_calls(x, null, out) || *min == 0,
    }
}

/// A typed error naming the first left-recursive cycle, if any.
fn check_left_recursion(src: &str, p: &Parsed, null: &[bool]) -> Result<(), CompileError> {
    let edges: Vec<Vec<(usize, usize)>> = p
        .rules
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            if let Some(b) = &r.body {
                left_calls(b, null, &mut out);
            }
            out
        })
        .collect();
    if let Some((cycle, at)) = crate::grammar::graph::find_cycle(&edges) {
        let names: Vec<&str> = cycle.iter().map(|&x| p.rules[x].name.as_str()).collect();
        let name = &p.rules[*cycle.last().expect("a cycle")].name;
        return Err(error_at(
            src,
            at,
            CompileErrorKind::Unsupported,
            format!(
                "rule `{name}` is left-recursive ({}): rewrite it with repetition, e.g. `a ::= a \"x\" | \"y\"` as `a ::= \"y\" \"x\"*`",
                names.join(" → ")
            ),
        ));
    }
    Ok(())
}

struct Lower<'a> {
    null: &'a [bool],
    /// Rules spelled out in place of a call (see [`inlined`]).
    inline: &'a [bool],
    rules: &'a [Rule],
    /// Bounds the NFA states of one machine (repetitions multiply).
    max_states: usize,
    src: &'a str,
    rule_at: usize,
}

impl Lower<'_> {
    fn frag(&self, n: &Node, nfa: &mut Nfa) -> Result<Frag, CompileError> {
        if nfa.states.len() > self.max_states {
            return Err(error_at(
                self.src,
                self.rule_at,
                CompileErrorKind::LimitExceeded,
                format!("rule spells out more than {} automaton states (Limits::max_states)", self.max_states),
            ));
        }
        Ok(match n {
            Node::Lit(b) => nfa.lit(b),
            Node::Class { ranges, negated } => class(nfa, ranges, *negated),
            Node::Ref(r, _) if self.inline[*r] => match &self.rules[*r].body {
                Some(b) => self.frag(b, nfa)?,
                None => nfa.never(),
            },
            Node::Ref(r, _) => {
                let call = nfa.call(*r as MachineId);
                if self.null[*r] {
                    let e = nfa.empty();
                    nfa.alt(&[call, e])
                } else {
                    call
                }
            }
            Node::Seq(v) => {
                let parts = v.iter().map(|x| self.frag(x, nfa)).collect::<Result<Vec<_>, _>>()?;
                nfa.seq(&parts)
            }
            Node::Alt(v) => {
                let parts = v.iter().map(|x| self.frag(x, nfa)).collect::<Result<Vec<_>, _>>()?;
                nfa.alt(&parts)
            }
            Node::Repeat(x, min, max) => {
                let mut parts = Vec::new();
                for _ in 0..*min {
                    parts.push(self.frag(x, nfa)?);
                }
                match max {
                    None => {
                        let body = self.frag(x, nfa)?;
                        let hub = nfa.state();
                        nfa.eps(hub, body.start);
                        nfa.eps(body.end, hub);
                        parts.push(Frag { start: hub, end: hub });
                    }
                    Some(max) => {
                        // (x (x (…)?)?)? — each optional copy may stop.
                        let end = nfa.state();
                        for _ in *min..*max {
                            let body = self.frag(x, nfa)?;
                            nfa.eps(body.start, end);
                            parts.push(body);
                        }
                        parts.push(Frag { start: end, end });
                        let f = nfa.seq(&parts);
                        return Ok(f);
                    }
                }
                nfa.seq(&parts)
            }
        })
    }
}

/// One code point in the ranges (or outside them), as UTF-8 byte chains.
fn class(nfa: &mut Nfa, ranges: &[(u32, u32)], negated: bool) -> Frag {
    let mut set: Vec<(u32, u32)> = ranges.to_vec();
    set.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (lo, hi) in set {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    if negated {
        let mut out = Vec::new();
        let mut next = 0u32;
        for &(lo, hi) in &merged {
            if lo > next {
                out.push((next, lo - 1));
            }
            next = hi.saturating_add(1);
        }
        if next <= 0x10FFFF {
            out.push((next, 0x10FFFF));
        }
        merged = out;
    }
    let start = nfa.state();
    let end = nfa.state();
    for (lo, hi) in merged {
        // Surrogates are not scalar values: clip them out.
        for (lo, hi) in [(lo, hi.min(0xD7FF)), (lo.max(0xE000), hi)] {
            let (Some(lo), Some(hi)) = (char::from_u32(lo), char::from_u32(hi)) else { continue };
            if lo > hi {
                continue;
            }
            for seq in regex_syntax::utf8::Utf8Sequences::new(lo, hi) {
                let mut cur = start;
                let n = seq.as_slice().len();
                for (i, r) in seq.as_slice().iter().enumerate() {
                    let to = if i + 1 == n { end } else { nfa.state() };
                    nfa.states[cur as usize].ranges.push((r.start, r.end, to));
                    cur = to;
                }
            }
        }
    }
    Frag { start, end }
}

/// Rules small enough to spell out where they are used, instead of calling
/// them: those on no cycle of references whose expansion (with the rules
/// they inline) stays under [`INLINE_SIZE`] NFA states. A grammar's
/// regular parts (`ws`, `digit`, `en-char` …) then become one automaton in
/// their caller, whose per-state masks are computed once, where a call per
/// character walks the pushdown stack at every byte.
fn inlined(rules: &[Rule]) -> Vec<bool> {
    const INLINE_SIZE: usize = 256;
    let n = rules.len();
    let mut inline = vec![false; n];
    if n > 2_000 {
        return inline;
    }
    let refs: Vec<Vec<usize>> = rules
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            if let Some(b) = &r.body {
                refs_of(b, &mut out);
            }
            out
        })
        .collect();
    let cyclic = crate::grammar::graph::on_cycle(&refs);
    // Sizes in dependency order: a non-cyclic rule's references are sized
    // first (they form a DAG among the non-cyclic rules).
    let mut size: Vec<Option<usize>> = vec![None; n];
    fn size_of(n: &Node, inline: &[bool], size: &[Option<usize>]) -> usize {
        match n {
            Node::Lit(b) => b.len() + 1,
            Node::Class { .. } => 8,
            Node::Ref(r, _) if inline[*r] => size[*r].unwrap_or(usize::MAX / 4),
            Node::Ref(..) => 2,
            Node::Seq(v) | Node::Alt(v) => v.iter().fold(2usize, |a, x| a.saturating_add(size_of(x, inline, size))),
            Node::Repeat(x, min, max) => {
                size_of(x, inline, size).saturating_mul(max.unwrap_or(*min) as usize + 1).saturating_add(2)
            }
        }
    }
    let order = crate::grammar::graph::post_order(&refs, &cyclic, (0..n).filter(|&s| !cyclic[s]));
    for r in order {
        let sz = rules[r].body.as_ref().map_or(1, |b| size_of(b, &inline, &size));
        size[r] = Some(sz);
        inline[r] = sz <= INLINE_SIZE;
    }
    inline
}

fn refs_of(n: &Node, out: &mut Vec<usize>) {
    match n {
        Node::Ref(r, _) => out.push(*r),
        Node::Seq(v) | Node::Alt(v) => v.iter().for_each(|x| refs_of(x, out)),
        Node::Repeat(x, ..) => refs_of(x, out),
        Node::Lit(_) | Node::Class { .. } => {}
    }
}

/// Compiles GBNF source `src` into a grammar whose outputs are the strings
/// of its `root` rule.
pub(crate) fn compile(src: &str, cfg: &Config) -> Result<Grammar, CompileError> {
    let parser = Parser { src, b: src.as_bytes(), pos: 0, rules: Vec::new(), ids: Default::default(), depth: 0 };
    let parsed = parser.grammar()?;
    let null = nullable(&parsed.rules);
    check_left_recursion(src, &parsed, &null)?;
    let max_states = cfg.get_limits().max_states;
    let inline = inlined(&parsed.rules);
    let mut gb = GrammarBuilder::default();
    let mut total = 0usize;
    for r in &parsed.rules {
        crate::budget::check().map_err(|m| CompileError::new(CompileErrorKind::LimitExceeded, "", m))?;
        let m = gb.add(format!("gbnf:{}", r.name));
        let lower = Lower { null: &null, inline: &inline, rules: &parsed.rules, max_states, src, rule_at: r.at };
        let mut nfa = Nfa::default();
        let body = match &r.body {
            // A rule inlined wherever it is used needs no machine.
            Some(_) if inline[m as usize] && m as usize != parsed.root => nfa.never(),
            Some(b) => lower.frag(b, &mut nfa)?,
            None => nfa.never(),
        };
        total += nfa.states.len();
        if total > 4 * max_states {
            return Err(error_at(
                src,
                r.at,
                CompileErrorKind::LimitExceeded,
                format!("the grammar spells out more than {} automaton states (Limits::max_states)", 4 * max_states),
            ));
        }
        let (nfa, body) = nfa.without_empty(body);
        let def = &mut gb.machines[m as usize];
        def.nfa = nfa;
        def.body = body;
    }
    let root = parsed.root as MachineId;
    let g = if null[parsed.root] {
        // The empty output is in the language: a wrapper nobody calls.
        let w = gb.add("gbnf:".to_string());
        let mut nfa = Nfa::default();
        let call = nfa.call(root);
        let e = nfa.empty();
        let body = nfa.alt(&[call, e]);
        gb.machines[w as usize].nfa = nfa;
        gb.machines[w as usize].body = body;
        gb.build_with_empty_root(w, max_states)
    } else {
        gb.build(root, max_states)
    };
    g.map_err(|e| match e.kind() {
        CompileErrorKind::Unsatisfiable => error_at(
            src,
            parsed.rules[parsed.root].at,
            CompileErrorKind::Unsatisfiable,
            "rule `root` matches no string",
        ),
        _ => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Parsed, CompileError> {
        Parser { src, b: src.as_bytes(), pos: 0, rules: Vec::new(), ids: Default::default(), depth: 0 }.grammar()
    }

    #[test]
    fn errors_carry_line_and_column() {
        for (src, line, col, what) in [
            ("root ::= \"a\n", 1, 12, "unterminated"),
            ("root ::= a\n", 1, 10, "never defined"),
            ("root ::= \"a\"\nb ::= \"x\" ]", 2, 11, "expected a rule name"),
            ("root ::= *", 1, 10, "nothing to repeat"),
            ("x ::= \"a\"", 1, 1, "no `root`"),
            ("root ::= [b-a]", 1, 11, "out of order"),
            ("root ::= \"\\q\"", 1, 11, "unknown escape"),
            ("root ::= \"a\"{3,1}", 1, 13, "n < m"),
            ("root ::= (\"a\"", 1, 14, "expected `)`"),
            ("root ::= \"a\"\nroot ::= \"b\"", 2, 1, "defined twice"),
        ] {
            let e = parse(src).err().unwrap_or_else(|| panic!("{src:?} parsed"));
            assert_eq!(e.position(), Some((line, col)), "{src:?}: {e}");
            assert!(e.to_string().contains(what), "{src:?}: {e}");
        }
    }

    #[test]
    fn continuation_lines_and_comments() {
        let p = parse("root ::= \"a\" # c\n  | \"b\"\n  \"c\"\nx ::= \"d\"").unwrap();
        assert_eq!(p.rules.len(), 2);
        // root ::= "a" | ("b" "c")
        match p.rules[0].body.as_ref().unwrap() {
            Node::Alt(v) => assert_eq!(v.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nullable_and_left_recursion() {
        let src = "root ::= a \"x\"\na ::= b? a | \"y\"\nb ::= \"z\"";
        let p = parse(src).unwrap();
        let null = nullable(&p.rules);
        assert_eq!(null, vec![false, false, false]);
        let e = check_left_recursion(src, &p, &null).unwrap_err();
        assert!(e.to_string().contains("a → a"), "{e}");
        let src = "root ::= ws root \"x\" | \"y\"\nws ::= \" \"*";
        let p = parse(src).unwrap();
        let null = nullable(&p.rules);
        assert_eq!(null, vec![false, true]);
        assert!(check_left_recursion(src, &p, &null).is_err());
    }
}
