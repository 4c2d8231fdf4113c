//! Lark grammar text → definitions: the syntax of the Lark dialect
//! llguidance documents, with the line and column of every error.
//!
//! A grammar is a list of lines: definitions `name: expansions` (a rule,
//! lowercase, may start with `_`, `?` or `!`) and `NAME: expansions` (a
//! terminal, uppercase), and directives (`%ignore`, `%import common…`,
//! `%llguidance {}`). A definition goes on over the following lines while
//! they start with `|`, and across lines inside `(…)`/`[…]`. Comments run
//! from `//` or `#` to the end of the line. Names may hold `-` (an
//! llguidance addition). What the dialect has and grammask does not
//! enforce (templates, priorities, lexeme options such as `lazy`, special
//! tokens, `%declare`, `%override`) is refused by name here.

use crate::error::{CompileError, CompileErrorKind};
use regex_syntax::hir::Hir;

/// Largest count in `~n..m` or `{n,m}`.
const MAX_REPEAT: u32 = 10_000;
/// Deepest nesting of groups.
const MAX_DEPTH: usize = 200;

/// One element of a definition's body.
#[derive(Clone, Debug)]
pub(super) enum Expr {
    /// A string literal (UTF-8), `i`: case-insensitive.
    Str {
        bytes: Vec<u8>,
        icase: bool,
    },
    /// A `/regex/flags`.
    Regex(Box<Hir>),
    /// `"a".."z"`: one character in the range.
    Range(char, char),
    /// A reference by name, at byte offset `at`.
    Ref {
        name: String,
        at: usize,
    },
    /// `%json {…}`: a JSON value valid against the schema.
    Json {
        schema: Box<serde_json::Value>,
        at: usize,
    },
    Seq(Vec<Expr>),
    Alt(Vec<Expr>),
    /// `min` to `max` (unbounded when `None`) copies.
    Repeat(Box<Expr>, u32, Option<u32>),
}

/// `name: body` (a terminal when `terminal`).
#[derive(Clone, Debug)]
pub(super) struct Def {
    pub name: String,
    pub at: usize,
    pub terminal: bool,
    pub body: Expr,
}

/// A parsed grammar.
#[derive(Debug, Default)]
pub(super) struct Parsed {
    pub defs: Vec<Def>,
    /// `%ignore` bodies, with their offsets.
    pub ignore: Vec<(Expr, usize)>,
    /// `%import common.NAME -> ALIAS`: (NAME, ALIAS, offset).
    pub imports: Vec<(String, String, usize)>,
}

/// An error of `kind` at byte offset `pos` of `src`, keyword `lark`.
pub(super) fn error_at(src: &str, pos: usize, kind: CompileErrorKind, msg: impl std::fmt::Display) -> CompileError {
    let (line, col) = crate::error::line_col(src, pos);
    CompileError::new(kind, "", msg.to_string()).with_keyword("lark").with_position(line, col)
}

pub(super) struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    /// Open `(`/`[` groups: newlines inside them are spaces.
    open: usize,
    /// Lenient: a non-greedy repetition is read as greedy (the set of
    /// strings is the same) and its offset kept in `lazy`.
    lenient: bool,
    pub lazy: Vec<usize>,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// A name is a terminal's when its first letter is uppercase.
pub(super) fn is_terminal_name(name: &str) -> bool {
    name.bytes().find(|c| c.is_ascii_alphabetic()).is_some_and(|c| c.is_ascii_uppercase())
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a str, lenient: bool) -> Self {
        Parser { src, b: src.as_bytes(), pos: 0, open: 0, lenient, lazy: Vec::new() }
    }

    fn err(&self, msg: impl std::fmt::Display) -> CompileError {
        error_at(self.src, self.pos, CompileErrorKind::InvalidSchema, msg)
    }

    fn unsupported(&self, at: usize, msg: impl std::fmt::Display) -> CompileError {
        error_at(self.src, at, CompileErrorKind::Unsupported, msg)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Skips spaces and comments; newlines too inside a group.
    fn space(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'\n' if self.open > 0 => self.pos += 1,
                b'#' => self.skip_comment(),
                b'/' if self.b.get(self.pos + 1) == Some(&b'/') => self.skip_comment(),
                _ => break,
            }
        }
    }

    fn skip_comment(&mut self) {
        while self.peek().is_some_and(|c| c != b'\n') {
            self.pos += 1;
        }
    }

    /// Past blank lines and comment lines.
    fn blank_lines(&mut self) {
        loop {
            self.space();
            if self.peek() == Some(b'\n') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// At a newline, whether the next non-blank line continues the
    /// definition (starts with `|`); if so, moves to the `|`.
    fn continues(&mut self) -> bool {
        let save = self.pos;
        self.blank_lines();
        if self.peek() == Some(b'|') {
            return true;
        }
        self.pos = save;
        false
    }

    fn name(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        while self.peek().is_some_and(is_name) {
            self.pos += 1;
        }
        Some(&self.src[start..self.pos])
    }

    fn number(&mut self) -> Result<u32, CompileError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a number"));
        }
        let n: u64 = self.src[start..self.pos].parse().unwrap_or(u64::MAX);
        if n > u64::from(MAX_REPEAT) {
            self.pos = start;
            return Err(error_at(
                self.src,
                start,
                CompileErrorKind::LimitExceeded,
                format!("repetition count {n} is over {MAX_REPEAT}"),
            ));
        }
        Ok(n as u32)
    }

    pub fn grammar(&mut self) -> Result<Parsed, CompileError> {
        let mut out = Parsed::default();
        loop {
            self.blank_lines();
            let Some(c) = self.peek() else { break };
            let at = self.pos;
            if c == b'%' {
                self.directive(&mut out)?;
            } else {
                // Rule modifiers `?` (inline) and `!` (keep tokens) change
                // the parse tree, not the language.
                if matches!(c, b'?' | b'!') {
                    self.pos += 1;
                }
                let name_at = self.pos;
                let Some(name) = self.name() else {
                    return Err(self.err("expected a rule or terminal definition (`name: …`)"));
                };
                let terminal = is_terminal_name(name);
                if self.peek() == Some(b'{') {
                    return Err(
                        self.unsupported(self.pos, format!("`{name}` is a template; templates are not supported"))
                    );
                }
                if self.peek() == Some(b'.') {
                    let p = self.pos;
                    self.pos += 1;
                    self.number()?;
                    if terminal {
                        return Err(self.unsupported(
                            p,
                            format!(
                                "terminal `{name}` has a priority; priorities are not supported (every terminal that \
                                 matches is tried)"
                            ),
                        ));
                    }
                }
                if self.peek() == Some(b'[') {
                    return Err(self.unsupported(
                        self.pos,
                        format!("`{name}` has lexeme options (`[lazy]`, `[stop=…]`, …); they are not supported"),
                    ));
                }
                self.space();
                if self.peek() != Some(b':') {
                    return Err(self.err(format!("expected `:` after `{name}`")));
                }
                self.pos += 1;
                let body = self.alternatives(0)?;
                out.defs.push(Def { name: name.to_string(), at: name_at, terminal, body });
                let _ = at;
            }
            self.space();
            match self.peek() {
                None => break,
                Some(b'\n') => self.pos += 1,
                Some(_) => return Err(self.err("unexpected text at the end of the definition")),
            }
        }
        Ok(out)
    }

    fn directive(&mut self, out: &mut Parsed) -> Result<(), CompileError> {
        let at = self.pos;
        self.pos += 1;
        let word = self.name().unwrap_or("");
        match word {
            "ignore" => {
                let body = self.alternatives(0)?;
                out.ignore.push((body, at));
            }
            "import" => {
                self.space();
                let path_at = self.pos;
                let Some(module) = self.name() else { return Err(self.err("expected a module name")) };
                if module != "common" {
                    return Err(self.unsupported(
                        path_at,
                        format!("`%import {module}`: only the built-in `common` module can be imported"),
                    ));
                }
                if self.peek() == Some(b'.') {
                    self.pos += 1;
                    let Some(name) = self.name() else { return Err(self.err("expected a name after `common.`")) };
                    self.space();
                    let mut alias = name;
                    if self.b[self.pos..].starts_with(b"->") {
                        self.pos += 2;
                        self.space();
                        alias = self.name().ok_or_else(|| self.err("expected a name after `->`"))?;
                    }
                    out.imports.push((name.to_string(), alias.to_string(), path_at));
                } else {
                    self.space();
                    if self.peek() != Some(b'(') {
                        return Err(self.err("expected `.NAME` or `(NAME, …)` after `%import common`"));
                    }
                    self.pos += 1;
                    self.open += 1;
                    loop {
                        self.space();
                        let Some(name) = self.name() else { return Err(self.err("expected a name")) };
                        out.imports.push((name.to_string(), name.to_string(), path_at));
                        self.space();
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b')') => {
                                self.pos += 1;
                                self.open -= 1;
                                break;
                            }
                            _ => return Err(self.err("expected `,` or `)`")),
                        }
                    }
                }
            }
            "llguidance" => {
                self.space();
                let v = self.json_value()?;
                if v.as_object().is_none_or(|o| !o.is_empty()) {
                    return Err(self.unsupported(at, "`%llguidance` options are not supported (only `%llguidance {}`)"));
                }
            }
            "declare" | "override" | "extend" => {
                return Err(self.unsupported(at, format!("`%{word}` is not supported")));
            }
            _ => {
                return Err(error_at(
                    self.src,
                    at,
                    CompileErrorKind::InvalidSchema,
                    format!("unknown directive `%{word}`"),
                ))
            }
        }
        Ok(())
    }

    /// A JSON value starting here (for `%json` and `%llguidance`).
    fn json_value(&mut self) -> Result<serde_json::Value, CompileError> {
        let mut de = serde_json::Deserializer::from_str(&self.src[self.pos..]).into_iter::<serde_json::Value>();
        match de.next() {
            Some(Ok(v)) => {
                self.pos += de.byte_offset();
                Ok(v)
            }
            Some(Err(e)) => Err(self.err(format!("invalid JSON: {e}"))),
            None => Err(self.err("expected a JSON value")),
        }
    }

    /// `alias ('|' alias)*`, where an alternative may start a new line.
    fn alternatives(&mut self, depth: usize) -> Result<Expr, CompileError> {
        if depth > MAX_DEPTH {
            return Err(error_at(
                self.src,
                self.pos,
                CompileErrorKind::LimitExceeded,
                format!("groups nest deeper than {MAX_DEPTH}"),
            ));
        }
        let mut alts = vec![self.sequence(depth)?];
        loop {
            self.space();
            if self.peek() == Some(b'\n') && self.open == 0 && !self.continues() {
                break;
            }
            if self.peek() != Some(b'|') {
                break;
            }
            self.pos += 1;
            alts.push(self.sequence(depth)?);
        }
        Ok(if alts.len() == 1 { alts.pop().expect("one") } else { Expr::Alt(alts) })
    }

    /// Items up to `|`, `)`, `]`, or the end of the line; `-> alias` is
    /// read and dropped (it names a tree node).
    fn sequence(&mut self, depth: usize) -> Result<Expr, CompileError> {
        let mut items = Vec::new();
        loop {
            self.space();
            match self.peek() {
                None | Some(b'|' | b')' | b']' | b'\n') => break,
                Some(b'-') if self.b.get(self.pos + 1) == Some(&b'>') => {
                    self.pos += 2;
                    self.space();
                    self.name().ok_or_else(|| self.err("expected a name after `->`"))?;
                    continue;
                }
                _ => {}
            }
            let atom = self.atom(depth)?;
            items.push(self.ops(atom)?);
        }
        Ok(if items.len() == 1 { items.pop().expect("one") } else { Expr::Seq(items) })
    }

    /// Postfix operators after an atom.
    fn ops(&mut self, mut e: Expr) -> Result<Expr, CompileError> {
        loop {
            match self.peek() {
                Some(b'?') => {
                    self.pos += 1;
                    e = Expr::Repeat(Box::new(e), 0, Some(1));
                }
                Some(b'*') => {
                    self.pos += 1;
                    e = Expr::Repeat(Box::new(e), 0, None);
                }
                Some(b'+') => {
                    self.pos += 1;
                    e = Expr::Repeat(Box::new(e), 1, None);
                }
                Some(b'~') => {
                    let at = self.pos;
                    self.pos += 1;
                    self.space();
                    let lo = self.number()?;
                    let mut hi = Some(lo);
                    if self.b[self.pos..].starts_with(b"..") {
                        self.pos += 2;
                        hi = Some(self.number()?);
                    }
                    e = self.repeat(e, lo, hi, at)?;
                }
                Some(b'{') => {
                    let at = self.pos;
                    self.pos += 1;
                    self.space();
                    let lo = if self.peek().is_some_and(|c| c.is_ascii_digit()) { self.number()? } else { 0 };
                    self.space();
                    let hi = if self.peek() == Some(b',') {
                        self.pos += 1;
                        self.space();
                        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                            Some(self.number()?)
                        } else {
                            None
                        }
                    } else {
                        Some(lo)
                    };
                    self.space();
                    if self.peek() != Some(b'}') {
                        return Err(self.err("expected `}` to close the count (templates are not supported)"));
                    }
                    self.pos += 1;
                    e = self.repeat(e, lo, hi, at)?;
                }
                _ => return Ok(e),
            }
        }
    }

    fn repeat(&self, e: Expr, lo: u32, hi: Option<u32>, at: usize) -> Result<Expr, CompileError> {
        if hi.is_some_and(|h| h < lo) {
            return Err(error_at(
                self.src,
                at,
                CompileErrorKind::InvalidSchema,
                format!("repetition range {lo}..{} is empty", hi.unwrap_or(0)),
            ));
        }
        Ok(Expr::Repeat(Box::new(e), lo, hi))
    }

    fn atom(&mut self, depth: usize) -> Result<Expr, CompileError> {
        let at = self.pos;
        match self.peek() {
            Some(b'(') | Some(b'[') => {
                let close = if self.peek() == Some(b'(') { b')' } else { b']' };
                self.pos += 1;
                self.open += 1;
                let inner = self.alternatives(depth + 1)?;
                self.space();
                if self.peek() != Some(close) {
                    return Err(self.err(format!("expected `{}`", close as char)));
                }
                self.pos += 1;
                self.open -= 1;
                Ok(if close == b']' { Expr::Repeat(Box::new(inner), 0, Some(1)) } else { inner })
            }
            Some(b'"') | Some(b'\'') => {
                let (s, icase) = self.string()?;
                self.space();
                if self.b[self.pos..].starts_with(b"..") {
                    self.pos += 2;
                    self.space();
                    if !matches!(self.peek(), Some(b'"' | b'\'')) {
                        return Err(self.err("expected a string after `..`"));
                    }
                    let (t, _) = self.string()?;
                    let (mut a, mut b) = (s.chars(), t.chars());
                    match (a.next(), a.next(), b.next(), b.next()) {
                        (Some(lo), None, Some(hi), None) if lo <= hi => return Ok(Expr::Range(lo, hi)),
                        _ => {
                            return Err(error_at(
                                self.src,
                                at,
                                CompileErrorKind::InvalidSchema,
                                "a range `\"a\"..\"z\"` needs one character on each side, the first not after the \
                                 second",
                            ))
                        }
                    }
                }
                Ok(Expr::Str { bytes: s.into_bytes(), icase })
            }
            Some(b'/') => self.regex(),
            Some(b'%') => {
                self.pos += 1;
                let word = self.name().unwrap_or("");
                match word {
                    "json" => {
                        self.space();
                        let schema = self.json_value()?;
                        Ok(Expr::Json { schema: Box::new(schema), at })
                    }
                    "regex" => Err(self.unsupported(at, "`%regex {…}` is not supported")),
                    _ => Err(self.err(format!("unexpected `%{word}` in an expansion"))),
                }
            }
            Some(b'<') => Err(self.unsupported(at, "special tokens (`<…>`) are not supported")),
            Some(b'@') => Err(self.unsupported(at, "references to other grammars (`@…`) are not supported")),
            Some(c) if is_name_start(c) => {
                let name = self.name().expect("a name starts here");
                if self.peek() == Some(b'{')
                    && !self.b.get(self.pos + 1).is_some_and(|c| c.is_ascii_digit() || *c == b',')
                {
                    return Err(self
                        .unsupported(self.pos, format!("`{name}{{…}}` uses a template; templates are not supported")));
                }
                Ok(Expr::Ref { name: name.to_string(), at })
            }
            _ => Err(self.err("expected a string, a /regex/, a name, `(` or `[`")),
        }
    }

    /// A string literal with Python-style escapes, and its `i` flag.
    fn string(&mut self) -> Result<(String, bool), CompileError> {
        let quote = self.peek().expect("at a quote");
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(error_at(self.src, start, CompileErrorKind::InvalidSchema, "unterminated string"));
            };
            if c == quote {
                self.pos += 1;
                break;
            }
            if c == b'\n' {
                return Err(error_at(self.src, start, CompileErrorKind::InvalidSchema, "unterminated string"));
            }
            if c == b'\\' {
                self.pos += 1;
                let e = self.peek().ok_or_else(|| self.err("unterminated escape"))?;
                self.pos += 1;
                let hex = |p: &mut Self, n: usize| -> Result<char, CompileError> {
                    let digits = p.src.get(p.pos..p.pos + n).filter(|d| d.bytes().all(|x| x.is_ascii_hexdigit()));
                    let Some(d) = digits else { return Err(p.err(format!("expected {n} hex digits"))) };
                    p.pos += n;
                    char::from_u32(u32::from_str_radix(d, 16).expect("hex"))
                        .ok_or_else(|| p.err("not a Unicode scalar value"))
                };
                let ch = match e {
                    b'n' => '\n',
                    b't' => '\t',
                    b'r' => '\r',
                    b'f' => '\x0c',
                    b'v' => '\x0b',
                    b'a' => '\x07',
                    b'b' => '\x08',
                    b'0' => '\0',
                    b'\\' => '\\',
                    b'"' => '"',
                    b'\'' => '\'',
                    b'x' => hex(self, 2)?,
                    b'u' => hex(self, 4)?,
                    b'U' => hex(self, 8)?,
                    _ => {
                        // Lark keeps an unknown escape as written.
                        out.push('\\');
                        self.pos -= 1;
                        continue;
                    }
                };
                out.push(ch);
                continue;
            }
            let ch = self.src[self.pos..].chars().next().expect("a char");
            out.push(ch);
            self.pos += ch.len_utf8();
        }
        let icase = self.peek() == Some(b'i') && !self.b.get(self.pos + 1).is_some_and(|c| is_name(*c));
        if icase {
            self.pos += 1;
        }
        Ok((out, icase))
    }

    /// `/pattern/flags`, in the `regex` crate's syntax (as llguidance reads
    /// it); `\/` is a slash.
    fn regex(&mut self) -> Result<Expr, CompileError> {
        let start = self.pos;
        self.pos += 1;
        let mut pat = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(error_at(self.src, start, CompileErrorKind::InvalidSchema, "unterminated /regex/"));
            };
            if c == b'\n' {
                return Err(error_at(self.src, start, CompileErrorKind::InvalidSchema, "unterminated /regex/"));
            }
            if c == b'/' {
                self.pos += 1;
                break;
            }
            if c == b'\\' && self.b.get(self.pos + 1) == Some(&b'/') {
                pat.push('/');
                self.pos += 2;
                continue;
            }
            let ch = self.src[self.pos..].chars().next().expect("a char");
            pat.push(ch);
            self.pos += ch.len_utf8();
            if c == b'\\' {
                if let Some(next) = self.src[self.pos..].chars().next() {
                    pat.push(next);
                    self.pos += next.len_utf8();
                }
            }
        }
        let mut b = regex_syntax::ParserBuilder::new();
        while let Some(f) = self.peek().filter(|c| c.is_ascii_alphabetic()) {
            match f {
                b'i' => b.case_insensitive(true),
                b's' => b.dot_matches_new_line(true),
                b'm' => b.multi_line(true),
                b'x' => b.ignore_whitespace(true),
                b'u' => b.unicode(true),
                _ => return Err(self.err(format!("unknown regex flag `{}`", f as char))),
            };
            self.pos += 1;
        }
        let hir = b
            .build()
            .parse(&pat)
            .map_err(|e| error_at(self.src, start, CompileErrorKind::InvalidSchema, format!("regex /{pat}/: {e}")))?;
        if !hir.properties().look_set().is_empty() {
            return Err(error_at(
                self.src,
                start,
                CompileErrorKind::Unsupported,
                format!("regex /{pat}/ has an anchor or word boundary; a terminal matches whole lexemes, so they are not supported"),
            ));
        }
        if has_lazy(&hir) && self.lenient {
            self.lazy.push(start);
        } else if has_lazy(&hir) {
            return Err(error_at(
                self.src,
                start,
                CompileErrorKind::Unsupported,
                format!(
                    "regex /{pat}/ has a non-greedy repetition (`*?`, `+?`, `??`): a terminal is a set of strings \
                     here and a lexeme is as long as it can be, so write it without the `?` (or compile leniently \
                     to read it so, reported)"
                ),
            ));
        }
        Ok(Expr::Regex(Box::new(hir)))
    }
}

fn has_lazy(h: &Hir) -> bool {
    use regex_syntax::hir::HirKind;
    match h.kind() {
        HirKind::Repetition(r) => !r.greedy && r.min != r.max.unwrap_or(u32::MAX) || has_lazy(&r.sub),
        HirKind::Capture(c) => has_lazy(&c.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(has_lazy),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Parsed, CompileError> {
        Parser::new(src, false).grammar()
    }

    #[test]
    fn definitions_continue_on_bar_lines_and_inside_groups() {
        let p = parse("start: a\n  | b // two\n\n  | \"c\"\na: (\"x\"\n \"y\")+\nb: A\nA: /[0-9]+/i\n").unwrap();
        assert_eq!(p.defs.len(), 4);
        assert!(matches!(&p.defs[0].body, Expr::Alt(v) if v.len() == 3));
        assert!(matches!(&p.defs[1].body, Expr::Repeat(_, 1, None)));
        assert!(p.defs[3].terminal);
    }

    #[test]
    fn errors_carry_line_and_column() {
        for (src, line, col, kind) in [
            ("start: \"a\n", 1, 8, CompileErrorKind::InvalidSchema),
            ("start: x\nx: /a*?/\n", 2, 4, CompileErrorKind::Unsupported),
            ("start: A\nA.2: \"a\"\n", 2, 2, CompileErrorKind::Unsupported),
            ("start: <|eot|>\n", 1, 8, CompileErrorKind::Unsupported),
            ("%import foo.BAR\n", 1, 9, CompileErrorKind::Unsupported),
            ("start: \"a\"~5..2\n", 1, 11, CompileErrorKind::InvalidSchema),
            ("start: x\n%declare X\n", 2, 1, CompileErrorKind::Unsupported),
            ("start x\n", 1, 7, CompileErrorKind::InvalidSchema),
            ("start: \"a\"..\n", 1, 13, CompileErrorKind::InvalidSchema),
        ] {
            let e = parse(src).unwrap_err();
            assert_eq!((e.position(), e.kind()), (Some((line, col)), &kind), "{src:?}: {e}");
        }
    }
}
