//! Terminals: the regular parts of a JSON document (strings, numbers, keys)
//! as byte-level DFAs built with `regex-automata`.
//!
//! String constraints are written over the *decoded* value (Unicode scalar
//! values) and then translated by [`encode_json_string`] into the language of
//! JSON string *literals*: every decoded character may appear literally (when
//! JSON allows it), as a short escape (`\n`, `\"`, …), or as a `\uXXXX`
//! escape (any hex case; characters outside the BMP as a surrogate pair).
//! Lone surrogates are never produced, since they do not decode.

use crate::automata::strings::TableDfa;
use crate::cache::ContentCache;
use regex_automata::{
    dfa::{dense, StartKind},
    nfa::thompson::{self, WhichCaptures},
    MatchKind,
};
use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look, Repetition};
use std::sync::Arc;

/// A terminal DFA.
pub(crate) type Dfa = dense::DFA<Vec<u32>>;

/// Compiles `hir` as a full-match (anchored at both ends) DFA.
pub(crate) fn compile_hir(hir: &Hir, size_limit: usize) -> Result<Arc<Dfa>, String> {
    // The same regexes recur (formats, common patterns, number bounds),
    // within a schema and across schemas.
    static CACHE: ContentCache<Arc<Dfa>> = ContentCache::new(512);
    CACHE.get_or_build((hir.to_string(), size_limit), |_| 1, || build_hir(hir, size_limit).map(Arc::new))
}

/// The table of a built-in terminal (free string, number, integer) as a
/// [`TableDfa`] (start state 0, dead states dropped), built on its first
/// use in the process and found by name after that: a compile neither
/// rebuilds its regex nor prints it to look it up by content.
pub(crate) fn builtin_table(name: &'static str, hir: fn() -> Hir, size_limit: usize) -> Result<Arc<TableDfa>, String> {
    static CACHE: ContentCache<Arc<TableDfa>> = ContentCache::new(16);
    CACHE.get_or_build(
        (name.to_string(), size_limit),
        |_| 1,
        || Ok(Arc::new(table_of(&build_hir(&hir(), size_limit)?))),
    )
}

/// The states of `dfa` reachable from its anchored start, as byte ranges;
/// a state accepts when the end-of-input transition from it matches.
pub(crate) fn table_of(dfa: &Dfa) -> TableDfa {
    use regex_automata::{dfa::Automaton, util::start, Anchored};
    let cfg = start::Config::new().anchored(Anchored::Yes);
    let Ok(s0) = dfa.start_state(&cfg) else {
        return TableDfa::new(vec![vec![]], vec![false]);
    };
    let classes = dfa.byte_classes();
    let mut map: ahash::AHashMap<regex_automata::util::primitives::StateID, u32> = Default::default();
    let mut order = vec![s0];
    map.insert(s0, 0);
    let mut t = TableDfa::new(Vec::new(), Vec::new());
    let mut i = 0;
    while i < order.len() {
        let sid = order[i];
        i += 1;
        t.accept.push(dfa.is_match_state(dfa.next_eoi_state(sid)));
        let mut ranges: Vec<(u8, u8, u32)> = Vec::new();
        // One lookup per byte class; runs of bytes with one target merge.
        let mut target = [None; 256];
        for b in 0..=255u8 {
            let rep = classes.get(b);
            let nxt = match target[rep as usize] {
                Some(n) => n,
                None => {
                    let n = dfa.next_state(sid, b);
                    target[rep as usize] = Some(n);
                    n
                }
            };
            if dfa.is_dead_state(nxt) || dfa.is_quit_state(nxt) {
                continue;
            }
            let tgt = *map.entry(nxt).or_insert_with(|| {
                order.push(nxt);
                (order.len() - 1) as u32
            });
            match ranges.last_mut() {
                Some(r) if r.1 as u16 + 1 == b as u16 && r.2 == tgt => r.1 = b,
                _ => ranges.push((b, b, tgt)),
            }
        }
        t.ranges.push(ranges);
    }
    t
}

fn build_hir(hir: &Hir, size_limit: usize) -> Result<Dfa, String> {
    let full = Hir::concat(vec![hir.clone(), Hir::look(Look::End)]);
    let nfa = thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .utf8(false)
                .which_captures(WhichCaptures::None)
                .shrink(true)
                .nfa_size_limit(Some(size_limit)),
        )
        .build_from_hir(&full)
        .map_err(|e| e.to_string())?;
    dense::Builder::new()
        .configure(
            dense::Config::new()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored)
                .minimize(false)
                .dfa_size_limit(Some(size_limit))
                .determinize_size_limit(Some(size_limit)),
        )
        .build_from_nfa(&nfa)
        .map_err(|e| e.to_string())
}

/// Parses a regex in `regex-syntax` syntax into a HIR.
pub(crate) fn parse(re: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new().build().parse(re).map_err(|e| e.to_string())
}

fn class(ranges: &[(char, char)]) -> ClassUnicode {
    ClassUnicode::new(ranges.iter().map(|&(a, b)| ClassUnicodeRange::new(a, b)))
}

/// Every Unicode scalar value.
pub(crate) fn any_char() -> ClassUnicode {
    class(&[('\0', char::MAX)])
}

/// The regex for a JSON number (`integer` restricts to no fraction and no
/// exponent). Magnitudes are bounded so that every accepted number parses to
/// a finite `f64` (serde_json rejects infinite ones): at most 200 integer
/// digits and a 2-digit exponent. Fractions have any length (they cannot
/// overflow, and a loop is one state where a bound of 200 digits was 200).
/// An integer is never `-0`: the `jsonschema` crate parses it as the float
/// -0.0 and rejects it as an integer, so emitting it is not safe downstream.
pub(crate) fn number_regex(integer: bool) -> &'static str {
    if integer {
        r"(?:0|-?[1-9][0-9]{0,199})"
    } else {
        r"-?(?:0|[1-9][0-9]{0,199})(?:\.[0-9]+)?(?:[eE][+\-]?[0-9]{1,2})?"
    }
}

/// Short escapes: (decoded char, escape letter).
const SHORT_ESCAPES: [(char, u8); 8] = [
    ('"', b'"'),
    ('\\', b'\\'),
    ('/', b'/'),
    ('\u{8}', b'b'),
    ('\u{c}', b'f'),
    ('\n', b'n'),
    ('\r', b'r'),
    ('\t', b't'),
];

/// The set of digit characters for digit values `lo..=hi` in base 10 or 16
/// (hex digits in either case).
fn digit_class(lo: u32, hi: u32) -> Hir {
    let mut ranges = Vec::new();
    let dec_hi = hi.min(9);
    if lo <= dec_hi {
        ranges.push(ClassUnicodeRange::new(char::from_digit(lo, 10).unwrap(), char::from_digit(dec_hi, 10).unwrap()));
    }
    if hi >= 10 {
        let a = lo.max(10) - 10;
        let b = hi - 10;
        ranges.push(ClassUnicodeRange::new((b'a' + a as u8) as char, (b'a' + b as u8) as char));
        ranges.push(ClassUnicodeRange::new((b'A' + a as u8) as char, (b'A' + b as u8) as char));
    }
    Hir::class(Class::Unicode(ClassUnicode::new(ranges)))
}

/// All fixed-width strings of digits in `base` (10 or 16) whose value is in
/// `lo..=hi`. `lo` and `hi` are given as digit vectors of equal length.
pub(crate) fn digits_range(lo: &[u32], hi: &[u32], base: u32) -> Hir {
    debug_assert_eq!(lo.len(), hi.len());
    if lo.is_empty() {
        return Hir::empty();
    }
    let rest_min = lo[1..].iter().all(|&d| d == 0);
    let rest_max = hi[1..].iter().all(|&d| d == base - 1);
    let any_rest = |n: usize| -> Hir {
        Hir::repetition(Repetition {
            min: n as u32,
            max: Some(n as u32),
            greedy: true,
            sub: Box::new(digit_class(0, base - 1)),
        })
    };
    if lo[0] == hi[0] {
        return Hir::concat(vec![digit_class(lo[0], lo[0]), digits_range(&lo[1..], &hi[1..], base)]);
    }
    if rest_min && rest_max {
        return Hir::concat(vec![digit_class(lo[0], hi[0]), any_rest(lo.len() - 1)]);
    }
    let mut alts = Vec::new();
    let mut mid_lo = lo[0] + 1;
    let mut mid_hi = hi[0] - 1;
    if rest_min {
        mid_lo = lo[0];
    } else {
        let maxes = vec![base - 1; lo.len() - 1];
        alts.push(Hir::concat(vec![digit_class(lo[0], lo[0]), digits_range(&lo[1..], &maxes, base)]));
    }
    if rest_max {
        mid_hi = hi[0];
    }
    if mid_lo <= mid_hi {
        alts.push(Hir::concat(vec![digit_class(mid_lo, mid_hi), any_rest(lo.len() - 1)]));
    }
    if !rest_max {
        let zeros = vec![0; lo.len() - 1];
        alts.push(Hir::concat(vec![digit_class(hi[0], hi[0]), digits_range(&zeros, &hi[1..], base)]));
    }
    Hir::alternation(alts)
}

fn hex4(v: u32) -> Vec<u32> {
    vec![(v >> 12) & 15, (v >> 8) & 15, (v >> 4) & 15, v & 15]
}

/// `\u` followed by 4 hex digits with a value in `lo..=hi`.
fn u_escape(lo: u32, hi: u32) -> Hir {
    Hir::concat(vec![Hir::literal(*b"\\u"), digits_range(&hex4(lo), &hex4(hi), 16)])
}

/// The encoded forms (inside a JSON string literal) of one decoded character
/// from `cls`.
pub(crate) fn encode_class(cls: &ClassUnicode) -> Hir {
    let mut alts = Vec::new();
    // Literal characters: everything but `"`, `\` and controls.
    let mut lit = cls.clone();
    lit.difference(&class(&[('\0', '\u{1f}'), ('"', '"'), ('\\', '\\')]));
    if !lit.ranges().is_empty() {
        alts.push(Hir::class(Class::Unicode(lit)));
    }
    for &(ch, letter) in &SHORT_ESCAPES {
        if cls.ranges().iter().any(|r| r.start() <= ch && ch <= r.end()) {
            alts.push(Hir::literal([b'\\', letter]));
        }
    }
    for r in cls.ranges() {
        let (a, b) = (r.start() as u32, r.end() as u32);
        // BMP below the surrogates, BMP above them.
        for (lo, hi) in [(a, b.min(0xD7FF)), (a.max(0xE000), b.min(0xFFFF))] {
            if lo <= hi {
                alts.push(u_escape(lo, hi));
            }
        }
        // Supplementary planes: surrogate pairs.
        let (lo, hi) = (a.max(0x10000), b);
        if lo <= hi {
            let hs = |cp: u32| 0xD800 + ((cp - 0x10000) >> 10);
            let ls = |cp: u32| 0xDC00 + ((cp - 0x10000) & 0x3FF);
            let (h1, h2) = (hs(lo), hs(hi));
            if h1 == h2 {
                alts.push(Hir::concat(vec![u_escape(h1, h1), u_escape(ls(lo), ls(hi))]));
            } else {
                alts.push(Hir::concat(vec![u_escape(h1, h1), u_escape(ls(lo), 0xDFFF)]));
                if h1 + 1 < h2 {
                    alts.push(Hir::concat(vec![u_escape(h1 + 1, h2 - 1), u_escape(0xDC00, 0xDFFF)]));
                }
                alts.push(Hir::concat(vec![u_escape(h2, h2), u_escape(0xDC00, ls(hi))]));
            }
        }
    }
    Hir::alternation(alts)
}

/// Translates a HIR over decoded characters into the HIR of JSON string
/// literals (with the quotes) whose decoded value it matches.
pub(crate) fn encode_json_string(decoded: &Hir) -> Result<Hir, String> {
    Ok(Hir::concat(vec![Hir::literal(*b"\""), encode(decoded)?, Hir::literal(*b"\"")]))
}

fn encode(h: &Hir) -> Result<Hir, String> {
    Ok(match h.kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(lit) => {
            let s = std::str::from_utf8(&lit.0).map_err(|_| "non-UTF-8 literal".to_string())?;
            Hir::concat(s.chars().map(|c| encode_class(&class(&[(c, c)]))).collect())
        }
        HirKind::Class(Class::Unicode(c)) => encode_class(c),
        HirKind::Class(Class::Bytes(c)) => {
            // Only ASCII byte classes can be interpreted as characters.
            let mut ranges = Vec::new();
            for r in c.ranges() {
                if r.end() > 0x7F {
                    return Err("byte class beyond ASCII".into());
                }
                ranges.push((r.start() as char, r.end() as char));
            }
            encode_class(&class(&ranges))
        }
        HirKind::Look(_) => return Err("assertion inside a string pattern".into()),
        HirKind::Repetition(r) => {
            Hir::repetition(Repetition { min: r.min, max: r.max, greedy: r.greedy, sub: Box::new(encode(&r.sub)?) })
        }
        HirKind::Capture(c) => encode(&c.sub)?,
        HirKind::Concat(v) => Hir::concat(v.iter().map(encode).collect::<Result<_, _>>()?),
        HirKind::Alternation(v) => Hir::alternation(v.iter().map(encode).collect::<Result<_, _>>()?),
    })
}

/// Any decoded string.
pub(crate) fn any_string() -> Hir {
    Hir::repetition(Repetition {
        min: 0,
        max: None,
        greedy: true,
        sub: Box::new(Hir::class(Class::Unicode(any_char()))),
    })
}

/// Whether a DFA (full match, anchored) accepts `s`.
pub(crate) fn dfa_matches(d: &Dfa, s: &[u8]) -> bool {
    use regex_automata::dfa::Automaton;
    let Ok(mut id) = d.start_state(&regex_automata::util::start::Config::new().anchored(regex_automata::Anchored::Yes))
    else {
        return false;
    };
    for &b in s {
        id = d.next_state(id, b);
    }
    d.is_match_state(d.next_eoi_state(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::dfa::Automaton;
    use regex_automata::{util::start, Anchored};

    fn full_match(dfa: &Dfa, s: &[u8]) -> bool {
        let mut id = dfa.start_state(&start::Config::new().anchored(Anchored::Yes)).unwrap();
        for &b in s {
            id = dfa.next_state(id, b);
            if dfa.is_dead_state(id) {
                return false;
            }
        }
        dfa.is_match_state(dfa.next_eoi_state(id))
    }

    #[test]
    fn hex_ranges_are_exact() {
        for (lo, hi) in [(0u32, 0xFFFFu32), (0x1F, 0x1F), (0xDC00, 0xDFFF), (0x0123, 0xE0F1), (0xD800, 0xDBFF)] {
            let dfa = compile_hir(&u_escape(lo, hi), 1 << 24).unwrap();
            for v in (0..=0xFFFFu32).step_by(7).chain([lo, hi, lo.saturating_sub(1), hi + 1]) {
                let lower = format!("\\u{v:04x}");
                let upper = format!("\\u{v:04X}");
                let want = lo <= v && v <= hi && v <= 0xFFFF;
                assert_eq!(full_match(&dfa, lower.as_bytes()), want, "{lower} in {lo:x}..{hi:x}");
                assert_eq!(full_match(&dfa, upper.as_bytes()), want, "{upper}");
            }
        }
    }

    #[test]
    fn json_strings_decode_to_what_they_claim() {
        let dfa = compile_hir(&encode_json_string(&any_string()).unwrap(), 1 << 24).unwrap();
        for ok in [r#""""#, r#""abc""#, r#""a\"b""#, r#""\u00e9\n\/""#, r#""\ud83d\ude00""#, "\"é😀\""] {
            assert!(full_match(&dfa, ok.as_bytes()), "{ok}");
            assert!(serde_json::from_str::<String>(ok).is_ok());
        }
        for bad in [r#""\ud83d""#, r#""\x""#, "\"a\nb\"", r#""abc"#, r#""\ude00\ud83d""#, r#""a"b""#] {
            assert!(!full_match(&dfa, bad.as_bytes()), "{bad}");
        }
        assert!(!full_match(&dfa, b"\"\xff\""));
    }

    #[test]
    fn number_regexes() {
        let int = compile_hir(&parse(number_regex(true)).unwrap(), 1 << 24).unwrap();
        let num = compile_hir(&parse(number_regex(false)).unwrap(), 1 << 24).unwrap();
        for (s, i, n) in [
            ("0", true, true),
            ("-12", true, true),
            ("01", false, false),
            ("1.5e-3", false, true),
            ("1.", false, false),
            ("-", false, false),
            ("1e999", false, false),
        ] {
            assert_eq!(full_match(&int, s.as_bytes()), i, "{s}");
            assert_eq!(full_match(&num, s.as_bytes()), n, "{s}");
        }
    }
}
