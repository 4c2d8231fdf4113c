//! GBNF → llguidance Lark, for the side-by-side only: llguidance reads Lark,
//! not GBNF, so each llama.cpp grammar is given to it in Lark form.
//!
//! A rule that uses only literals, classes and other such rules (no
//! recursion) is regular and becomes a Lark *terminal* (`T_NAME`), so that
//! llguidance lexes it as one lexeme, as its own GBNF converter does; the
//! other rules become Lark rules, with every literal, class and `.` an
//! inline regex terminal. Names are mangled (`-` → `_`, a suffix on a
//! clash), and `root` becomes `start` (`start: T_ROOT` when it is regular).
//! Strings are decoded and re-escaped as `\x{..}`. A lexer cuts text where
//! a scannerless reading need not, so the two engines may differ on some
//! outputs.
//! Sequences the two engines read differently show up in the comparison as
//! tokens one engine refuses on the other's walks; they are counted.

use std::collections::HashMap;

/// The Lark text of `src`, or what the translation could not read.
pub fn translate(src: &str) -> Result<String, String> {
    let toks = lex(src)?;
    // Each rule's references, then which rules are regular (a fixpoint: a
    // rule all of whose references are regular rules, itself excluded).
    let mut refs: HashMap<String, Vec<String>> = HashMap::new();
    let mut current = None;
    for (i, t) in toks.iter().enumerate() {
        if let Tok::Name(n) = t {
            if matches!(toks.get(i + 1), Some(Tok::Def)) {
                current = Some(n.clone());
                refs.entry(n.clone()).or_default();
            } else if let Some(c) = &current {
                refs.get_mut(c).expect("rule").push(n.clone());
            }
        }
    }
    let mut regular: std::collections::HashSet<String> = Default::default();
    loop {
        let before = regular.len();
        for (n, r) in &refs {
            if !regular.contains(n) && r.iter().all(|x| x != n && regular.contains(x)) {
                regular.insert(n.clone());
            }
        }
        if regular.len() == before {
            break;
        }
    }
    // Rule heads: a name followed by `::=`.
    let mut names: HashMap<String, String> = HashMap::new();
    let mut taken: HashMap<String, usize> = HashMap::new();
    for w in toks.windows(2) {
        if let (Tok::Name(n), Tok::Def) = (&w[0], &w[1]) {
            if names.contains_key(n) {
                continue;
            }
            let mangled = n.replace('-', "_");
            let mut m = if regular.contains(n) {
                format!("T_{}", mangled.to_uppercase())
            } else if n == "root" {
                "start".to_string()
            } else {
                format!("r_{}", mangled.to_lowercase())
            };
            let k = taken.entry(m.clone()).or_insert(0);
            *k += 1;
            if *k > 1 {
                m = format!("{m}_{k}");
            }
            names.insert(n.clone(), m);
        }
    }
    let mut out = String::new();
    if regular.contains("root") {
        out += &format!("start: {}", names["root"]);
    }
    let mut i = 0;
    while i < toks.len() {
        match (&toks[i], toks.get(i + 1)) {
            (Tok::Name(n), Some(Tok::Def)) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                out += &names[n];
                out += ":";
                i += 2;
            }
            (t, _) => {
                // Quantifiers stick to their atom.
                if !matches!(t, Tok::Punct(p) if p != "(" && p != ")" && p != "|") {
                    out.push(' ');
                }
                match t {
                    Tok::Name(n) => out += names.get(n).ok_or_else(|| format!("undefined rule {n}"))?,
                    Tok::Lit(s) if s.is_empty() => out += "\"\"",
                    Tok::Lit(s) => {
                        out.push('/');
                        for c in s.chars() {
                            if c.is_ascii_alphanumeric() || c == ' ' {
                                out.push(c);
                            } else {
                                out += &format!("\\x{{{:x}}}", c as u32);
                            }
                        }
                        out.push('/');
                    }
                    Tok::Class(c) => {
                        out += "/[";
                        out += c;
                        out += "]/";
                    }
                    Tok::Any => out += "/(?s:.)/",
                    Tok::Punct(p) => out += p,
                    Tok::Def => return Err("`::=` without a rule name".into()),
                }
                i += 1;
            }
        }
    }
    out.push('\n');
    Ok(out)
}

enum Tok {
    Name(String),
    Def,
    Lit(String),
    /// A class's inside as Rust regex text (escapes kept or rewritten).
    Class(String),
    Any,
    Punct(String),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let b: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < b.len() && b[i] != '\n' {
                    i += 1;
                }
            }
            ':' if b[i..].starts_with(&[':', ':', '=']) => {
                toks.push(Tok::Def);
                i += 3;
            }
            '"' => {
                i += 1;
                let mut s = String::new();
                while i < b.len() && b[i] != '"' {
                    let (ch, n) = escaped(&b[i..])?;
                    s.push(ch);
                    i += n;
                }
                i += 1;
                toks.push(Tok::Lit(s));
            }
            '[' => {
                i += 1;
                let mut s = String::new();
                if b.get(i) == Some(&'^') {
                    s.push('^');
                    i += 1;
                }
                while i < b.len() && b[i] != ']' {
                    let (ch, n) = escaped(&b[i..])?;
                    // `-` between two characters is a range; anything else
                    // that Rust's class syntax reads specially is escaped.
                    if b[i] == '-' && n == 1 {
                        s.push('-');
                    } else if ch.is_ascii_alphanumeric() {
                        s.push(ch);
                    } else {
                        s += &format!("\\x{{{:x}}}", ch as u32);
                    }
                    i += n;
                }
                i += 1;
                toks.push(Tok::Class(s));
            }
            '.' => {
                toks.push(Tok::Any);
                i += 1;
            }
            '(' | ')' | '|' | '*' | '+' | '?' => {
                toks.push(Tok::Punct(c.to_string()));
                i += 1;
            }
            '{' => {
                let end = b[i..].iter().position(|&x| x == '}').ok_or("unclosed `{`")?;
                toks.push(Tok::Punct(b[i..=i + end].iter().filter(|c| !c.is_whitespace()).collect()));
                i += end + 1;
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' => {
                let start = i;
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '-') {
                    i += 1;
                }
                toks.push(Tok::Name(b[start..i].iter().collect()));
            }
            c => return Err(format!("unexpected {c:?}")),
        }
    }
    Ok(toks)
}

/// One character of a literal or class, with its escape decoded; and how
/// many source characters it took.
fn escaped(b: &[char]) -> Result<(char, usize), String> {
    if b[0] != '\\' {
        return Ok((b[0], 1));
    }
    let hex = |n: usize| -> Result<(char, usize), String> {
        let h: String = b.iter().skip(2).take(n).collect();
        let v = u32::from_str_radix(&h, 16).map_err(|_| format!("bad escape \\{}{h}", b[1]))?;
        Ok((char::from_u32(v).ok_or("escape is not a character")?, n + 2))
    };
    match b.get(1) {
        Some('n') => Ok(('\n', 2)),
        Some('r') => Ok(('\r', 2)),
        Some('t') => Ok(('\t', 2)),
        Some('x') => hex(2),
        Some('u') => hex(4),
        Some('U') => hex(8),
        Some(&c) => Ok((c, 2)),
        None => Err("trailing backslash".into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rules_literals_classes() {
        let l = super::translate("root ::= item-list # c\nitem-list ::= [a-z\\-]+ (\", \" \"x\\n\")* .{2,3}\n").unwrap();
        assert_eq!(
            l,
            "start: T_ROOT\nT_ROOT: T_ITEM_LIST\nT_ITEM_LIST: /[a-z\\x{2d}]/+ ( /\\x{2c} / /x\\x{a}/ )* /(?s:.)/{2,3}\n"
        );
        let l = super::translate("root ::= \"(\" root? \")\" ws\nws ::= [ ]*\n").unwrap();
        assert_eq!(l, "start: /\\x{28}/ start? /\\x{29}/ T_WS\nT_WS: /[\\x{20}]/*\n");
    }
}
