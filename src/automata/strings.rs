//! Constrained strings: `pattern`, `format`, `minLength`/`maxLength`, and key
//! sets (`propertyNames`, `patternProperties`, additional keys) as exact
//! byte-level automata over JSON string *literals*.
//!
//! The constraint is stated over the decoded value (as regexes over UTF-8,
//! compiled by regex-automata); a hand-written JSON-literal decoder runs in
//! product with them, feeding each decoded byte to every constraint DFA and
//! counting characters for the length bounds. Acceptance at the closing
//! quote: every `must` DFA matches, no `must_not` DFA matches, and the length
//! is in range.
//!
//! Output format for constrained strings (documented in the README): every
//! character appears literally except `"` `\` and control characters, which
//! use a short escape (`\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t`) or `\u00XX`
//! (either hex case). Free strings (no constraint) accept every JSON escape.

use crate::automata::equiv::Equiv;
use crate::automata::lexer::Dfa;
use crate::cache::ContentCache;
use regex_automata::dfa::Automaton;
use regex_automata::util::primitives::StateID;
use regex_automata::{util::start, Anchored};
use std::sync::Arc;

/// A language a decoded string value is checked against: a regex DFA, or
/// a finite set of words as a trie. Key sets (additional-property names
/// that must not equal a declared one, `propertyNames` enums) are words:
/// their trie is built in one pass over the names, where determinizing the
/// alternation of a thousand names was a third of compiling such a schema.
#[derive(Clone, Debug)]
pub(crate) enum Lang {
    Dfa(Arc<Dfa>),
    Words(Box<Words>),
}

/// A finite set of byte strings as a trie automaton over byte classes.
/// Node 0 is off the trie (no word continues there; absorbing and never
/// matching, the "dead" state of a required language), node 1 the root.
#[derive(Clone, Debug)]
pub(crate) struct Words {
    classes: [u8; 256],
    nclasses: usize,
    /// `next[node * nclasses + class]`.
    next: Vec<u32>,
    /// Whether a word ends at the node.
    end: Vec<bool>,
}

impl Words {
    pub fn new<'w>(words: impl IntoIterator<Item = &'w str>) -> Words {
        let words: Vec<&str> = words.into_iter().collect();
        // Class 0: bytes in no word. Words are UTF-8, so at most 243 byte
        // values occur and every class fits a byte.
        let mut classes = [0u8; 256];
        let mut nclasses = 1usize;
        for w in &words {
            for &b in w.as_bytes() {
                if classes[b as usize] == 0 && nclasses < 256 {
                    classes[b as usize] = nclasses as u8;
                    nclasses += 1;
                }
            }
        }
        let mut next = vec![0u32; 2 * nclasses];
        let mut end = vec![false; 2];
        for w in &words {
            let mut node = 1usize;
            for &b in w.as_bytes() {
                let at = node * nclasses + classes[b as usize] as usize;
                if next[at] == 0 {
                    next[at] = end.len() as u32;
                    end.push(false);
                    next.resize(end.len() * nclasses, 0);
                }
                node = next[at] as usize;
            }
            end[node] = true;
        }
        Words { classes, nclasses, next, end }
    }
}

impl From<Arc<Dfa>> for Lang {
    fn from(d: Arc<Dfa>) -> Lang {
        Lang::Dfa(d)
    }
}

impl Lang {
    fn start(&self) -> Result<StateID, String> {
        match self {
            Lang::Dfa(d) => d.start_state(&start::Config::new().anchored(Anchored::Yes)).map_err(|e| e.to_string()),
            Lang::Words(_) => Ok(StateID::new_unchecked(1)),
        }
    }

    #[inline]
    fn next_state(&self, id: StateID, b: u8) -> StateID {
        match self {
            Lang::Dfa(d) => d.next_state(id, b),
            Lang::Words(w) => {
                StateID::new_unchecked(w.next[id.as_usize() * w.nclasses + w.classes[b as usize] as usize] as usize)
            }
        }
    }

    /// No string from here is in the language.
    fn is_dead_state(&self, id: StateID) -> bool {
        match self {
            Lang::Dfa(d) => d.is_dead_state(id),
            Lang::Words(_) => id.as_usize() == 0,
        }
    }

    /// The string read so far is in the language.
    fn full_match(&self, id: StateID) -> bool {
        match self {
            Lang::Dfa(d) => d.is_match_state(d.next_eoi_state(id)),
            Lang::Words(w) => w.end[id.as_usize()],
        }
    }

    fn class(&self, b: u8) -> u8 {
        match self {
            Lang::Dfa(d) => d.byte_classes().get(b),
            Lang::Words(w) => w.classes[b as usize],
        }
    }
}

/// What a constrained string must satisfy.
#[derive(Default)]
pub(crate) struct StringSpec {
    /// Decoded value must fully match each of these.
    pub must: Vec<Lang>,
    /// Decoded value must fully match none of these.
    pub must_not: Vec<Lang>,
    pub min_len: u64,
    pub max_len: Option<u64>,
    /// Raw mode: the DFAs read the literal bytes themselves (no JSON string
    /// decoding, no quotes); used to intersect number constraints.
    pub raw: bool,
    /// Raw mode: a remainder automaton modulo this over the integer digits
    /// and the first [`Self::frac_digits`] fraction digits (the number
    /// scaled by `10^frac_digits`; later fraction digits are zeros; no
    /// exponent). Without `divisors` the scaled number must be a whole
    /// multiple of it (`multipleOf`: `0.25` is modulus 25 over numbers
    /// scaled by 100).
    pub modulus: Option<u64>,
    /// With `modulus`: how many fraction digits the remainder reads.
    pub frac_digits: u32,
    /// With `modulus`: instead, for each `(d, divides)`, whether `d` (a
    /// divisor of `modulus`) divides the number must be `divides` (a
    /// `multipleOf` and negated ones together).
    pub divisors: Vec<(u64, bool)>,
    /// A union: when not empty, the value must satisfy one of these
    /// alternatives instead of every language, each alternative given as
    /// the indices of its languages in `must` and in `must_not` (one
    /// automaton for an `anyOf` of strings, whose branches a matcher would
    /// otherwise follow side by side, each a trie walk per mask).
    pub alternatives: Vec<(Vec<usize>, Vec<usize>)>,
}

/// State of the `multipleOf` automaton over a number scaled by `10^f`
/// (`f` fraction digits read): `r * (f + 2) + phase`, where `r` is the
/// remainder modulo `k` of the digits read so far, and `phase` is 0 in the
/// integer part and `1 + h` after `h` fraction digits.
fn mod_step(m: u64, k: u64, f: u32, x: u8) -> Option<u64> {
    let w = u64::from(f) + 2;
    let (r, phase) = (m / w, m % w);
    let digit = |r: u64| (r * 10 + u64::from(x - b'0')) % k;
    match x {
        b'0'..=b'9' if phase == 0 => Some(digit(r) * w),
        // Fraction digits past the `f` the remainder reads are zeros.
        b'0'..=b'9' if phase <= u64::from(f) => Some(digit(r) * w + phase + 1),
        b'0' => Some(m),
        b'-' if phase == 0 => Some(m),
        b'.' if phase == 0 => Some(m + 1),
        _ => None,
    }
}

/// The remainder modulo `k` of the whole scaled number, from a state of
/// [`mod_step`]: the fraction digits not written count as zeros.
fn mod_value(m: u64, k: u64, f: u32) -> u64 {
    let w = u64::from(f) + 2;
    let (r, phase) = (m / w, m % w);
    let missing = u64::from(f) - phase.saturating_sub(1);
    (0..missing).fold(r, |r, _| r * 10 % k)
}

/// A deterministic byte automaton: `ranges[s]` are `(lo, hi, target)`.
#[derive(Debug)]
pub(crate) struct TableDfa {
    pub ranges: Vec<Vec<(u8, u8, u32)>>,
    pub accept: Vec<bool>,
    /// Its machine form, worked out on its first use in a grammar: tables
    /// are cached across schemas, and so is their layout.
    pub layout: std::sync::OnceLock<crate::automata::Layout>,
}

impl TableDfa {
    pub fn new(ranges: Vec<Vec<(u8, u8, u32)>>, accept: Vec<bool>) -> TableDfa {
        TableDfa { ranges, accept, layout: Default::default() }
    }

    /// Its machine form (see [`crate::automata::Layout`]), worked out once.
    pub fn layout(&self) -> &crate::automata::Layout {
        self.layout.get_or_init(|| crate::automata::Layout::of(self))
    }
}

/// Decoder position inside a JSON string literal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Dec {
    /// Before the opening quote.
    Open,
    /// Between characters.
    Normal,
    /// Inside a multi-byte UTF-8 character: `left` continuation bytes remain,
    /// the next one in `lo..=hi`.
    Cont { left: u8, lo: u8, hi: u8 },
    /// After `\`.
    Esc,
    /// After `\u`, `\u0`, `\u00`, `\u00X` (X = the high nibble).
    U(u8, u8),
    /// After the closing quote.
    Done,
}

/// Constraint DFA states of a product state: nearly always one to four,
/// kept inline so that a product state costs no allocation.
type Ids = smallvec::SmallVec<[StateID; 4]>;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    dec: Dec,
    ids: Ids,
    count: u64,
    /// State of the `multipleOf` automaton (see [`mod_step`]).
    m: u64,
    /// Inside a `\u` escape whose character the DFAs have already read
    /// (see [`control_step`]).
    pre: bool,
}

/// Entering a `\u` escape, which decodes to a control character
/// (`U+0000`..`U+001F`): when every constraint DFA moves alike on all 32 of
/// them, that move, made now (`None` when a required DFA dies). Then the
/// escape's four states do not multiply by the DFA states: a key set's
/// trie node no longer carries its own copy of them.
fn control_step(dfas: &[&Lang], ids: &[StateID], n_must: usize) -> Option<Option<Ids>> {
    let mut out = Ids::with_capacity(ids.len());
    for (j, (d, &id)) in dfas.iter().zip(ids).enumerate() {
        let n = d.next_state(id, 0);
        if (1..0x20u8).any(|x| d.next_state(id, x) != n) {
            return None;
        }
        if j < n_must && d.is_dead_state(n) {
            return Some(None);
        }
        out.push(n);
    }
    Some(Some(out))
}

/// A run of decoder moves alike in (next decoder state, joint class of the
/// decoded byte, whether a character ends): input bytes `lo..=hi`, next
/// decoder state, the decoded byte of `lo` (any byte of the run stands for
/// all: the constraint DFAs treat them alike), whether a character ends.
type DecMove = (u8, u8, Dec, Option<u8>, bool);

/// A decoder state's move runs in byte order, each with its move class,
/// and how many classes.
type DecMoves = (Dec, Vec<(DecMove, u16)>, usize);

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// What one input byte does: move the decoder, maybe emit a decoded byte,
/// maybe finish a character.
fn decode(dec: Dec, b: u8) -> Option<(Dec, Option<u8>, bool)> {
    Some(match dec {
        Dec::Open => (if b == b'"' { Dec::Normal } else { return None }, None, false),
        Dec::Done => return None,
        Dec::Normal => match b {
            b'"' => (Dec::Done, None, false),
            b'\\' => (Dec::Esc, None, false),
            0x00..=0x1F => return None,
            0x20..=0x7F => (Dec::Normal, Some(b), true),
            0xC2..=0xDF => (Dec::Cont { left: 1, lo: 0x80, hi: 0xBF }, Some(b), true),
            0xE0 => (Dec::Cont { left: 2, lo: 0xA0, hi: 0xBF }, Some(b), true),
            0xE1..=0xEC | 0xEE..=0xEF => (Dec::Cont { left: 2, lo: 0x80, hi: 0xBF }, Some(b), true),
            0xED => (Dec::Cont { left: 2, lo: 0x80, hi: 0x9F }, Some(b), true),
            0xF0 => (Dec::Cont { left: 3, lo: 0x90, hi: 0xBF }, Some(b), true),
            0xF1..=0xF3 => (Dec::Cont { left: 3, lo: 0x80, hi: 0xBF }, Some(b), true),
            0xF4 => (Dec::Cont { left: 3, lo: 0x80, hi: 0x8F }, Some(b), true),
            _ => return None,
        },
        Dec::Cont { left, lo, hi } => {
            if b < lo || b > hi {
                return None;
            }
            let next = if left == 1 { Dec::Normal } else { Dec::Cont { left: left - 1, lo: 0x80, hi: 0xBF } };
            (next, Some(b), false)
        }
        Dec::Esc => match b {
            b'"' | b'\\' | b'/' => (Dec::Normal, Some(b), true),
            b'b' => (Dec::Normal, Some(0x08), true),
            b'f' => (Dec::Normal, Some(0x0C), true),
            b'n' => (Dec::Normal, Some(b'\n'), true),
            b'r' => (Dec::Normal, Some(b'\r'), true),
            b't' => (Dec::Normal, Some(b'\t'), true),
            b'u' => (Dec::U(0, 0), None, false),
            _ => return None,
        },
        // \u00XX with XX in 00..1F: control characters only.
        Dec::U(0, _) if b == b'0' => (Dec::U(1, 0), None, false),
        Dec::U(1, _) if b == b'0' => (Dec::U(2, 0), None, false),
        Dec::U(2, _) if b == b'0' || b == b'1' => (Dec::U(3, b - b'0'), None, false),
        Dec::U(3, hi) => {
            let lo = hex_val(b)?;
            (Dec::Normal, Some(hi * 16 + lo), true)
        }
        Dec::U(..) => return None,
    })
}

/// Builds the product automaton. `max_states` bounds its size.
pub(crate) fn build(spec: &StringSpec, max_states: usize) -> Result<TableDfa, String> {
    let (ranges, accept) = build_inner(spec, true, max_states)?;
    let ranges = ranges.into_iter().map(|rs| rs.into_iter().map(|(lo, hi, t, _)| (lo, hi, t)).collect()).collect();
    Ok(TableDfa::new(ranges, accept))
}

/// [`build`], cached process-wide by `key`, which must name the spec's
/// whole content (its constraints' sources, bounds, flags; never a place in
/// a schema): the same key sets, formats and number bounds recur across
/// schemas. Bounded in total states.
pub(crate) fn build_cached(key: &str, spec: &StringSpec, max_states: usize) -> Result<Arc<TableDfa>, String> {
    static CACHE: ContentCache<Arc<TableDfa>> = ContentCache::new(1 << 20);
    // Cost: states, and the grammar layout kept with the table (worked out
    // here, so that it is charged), 16 row cells counting as one state.
    CACHE.get_or_build(
        (key.to_string(), max_states),
        |t| t.accept.len() + t.layout().cells() / 16,
        || {
            let t = build(spec, max_states)?;
            t.layout(); // outside the cache's lock
            Ok(Arc::new(t))
        },
    )
}

/// A constrained string whose length bounds are left to the runtime: the
/// product of decoder and constraint DFAs *without* a character counter,
/// each transition marked when it starts a new character. Acceptance here
/// ignores the length; [`crate::grammar`] runs the count beside the state
/// (see `grammar::counted`). Used for long bounds, where a counted product
/// would have `maxLength` times more states.
#[derive(Debug)]
pub(crate) struct CountedTable {
    /// Per state: `(lo, hi, target, starts a character)`.
    pub ranges: Vec<Vec<(u8, u8, u32, bool)>>,
    /// After the closing quote, with every pattern satisfied.
    pub accept: Vec<bool>,
    pub min_len: u64,
    pub max_len: u64,
}

/// Builds a [`CountedTable`]; `spec.max_len` must be set.
pub(crate) fn build_counted(spec: &StringSpec, max_states: usize) -> Result<CountedTable, String> {
    let max_len = spec.max_len.ok_or("a counted string needs maxLength")?;
    let (ranges, accept) = build_inner(spec, false, max_states)?;
    Ok(CountedTable { ranges, accept, min_len: spec.min_len, max_len })
}

type Ranges = Vec<Vec<(u8, u8, u32, bool)>>;

/// Appends byte `b` → `(t, new_char)`, extending the last range when it runs on.
fn push_range(ranges: &mut Vec<(u8, u8, u32, bool)>, (lo, hi): (u8, u8), t: u32, new_char: bool) {
    match ranges.last_mut() {
        Some(r) if r.1 as u16 + 1 == lo as u16 && r.2 == t && r.3 == new_char => r.1 = hi,
        _ => ranges.push((lo, hi, t, new_char)),
    }
}

/// The product automaton; with `count`, the character count is part of
/// each state (up to the bounds), else it is left out and acceptance
/// ignores the bounds.
fn build_inner(spec: &StringSpec, count: bool, max_states: usize) -> Result<(Ranges, Vec<bool>), String> {
    match build_words(spec) {
        Some(t) if t.1.len() <= max_states => Ok(t),
        Some(_) => Err(format!("string automaton exceeds {max_states} states")),
        None => build_product(spec, count, max_states),
    }
}

/// A key set the common way, built straight from its trie: the decoded
/// string must not be one of the words (additional properties beside
/// declared ones) or must be one of them (a `propertyNames` enum), with no
/// other constraint, and every word is printable ASCII without `"`, `\`
/// and `/`. Then no escape can spell a character of a word (escapes decode
/// to `"`, `\`, `/` and control characters only, see [`decode`]), so an
/// escape leaves the trie for good, and every state is a trie node or a
/// state of the free string off the trie. The product finds the same
/// automaton, at some twenty thousand instructions a state where this
/// takes a few hundred: a thousand declared names were half of compiling
/// their schema. `None` when the spec is not of this form.
fn build_words(spec: &StringSpec) -> Option<(Ranges, Vec<bool>)> {
    if spec.raw
        || spec.modulus.is_some()
        || spec.min_len != 0
        || spec.max_len.is_some()
        || !spec.alternatives.is_empty()
    {
        return None;
    }
    let (w, negate) = match (spec.must.as_slice(), spec.must_not.as_slice()) {
        ([], [Lang::Words(w)]) => (w, true),
        ([Lang::Words(w)], []) => (w, false),
        _ => return None,
    };
    let plain = |b: usize| (0x20..=0x7F).contains(&b) && !matches!(b as u8, b'"' | b'\\' | b'/');
    if (0..256).any(|b| w.classes[b] != 0 && !plain(b)) {
        return None;
    }
    // States: the fixed ones, then (negated) the free string off the trie,
    // then the trie's nodes 1.. (all reachable from the root, node 1).
    const OPEN: u32 = 0;
    const DONE: u32 = 1;
    const OFF: u32 = 2;
    const ESC: u32 = 3;
    const U0: u32 = 4; // after \u, \u0, \u00, \u00X: U0 + i
    const CONT: u32 = 8; // continuation states, see `cont`
    let first_node = if negate { CONT + 7 } else { 2 };
    let node = |n: usize| first_node + n as u32 - 1;
    let nnodes = w.end.len() - 1;
    // A UTF-8 lead byte off the trie: its continuation state (as `decode`).
    let cont = |left: u8, lo: u8, hi: u8| -> u32 {
        CONT + match (left, lo, hi) {
            (1, _, _) => 0,
            (2, 0xA0, _) => 1,
            (2, _, 0xBF) => 2,
            (2, _, _) => 3,
            (3, 0x90, _) => 4,
            (3, _, 0xBF) => 5,
            _ => 6,
        }
    };
    // Per state, its move on each byte: (target, starts a character), or none.
    let mut row = [None::<(u32, bool)>; 256];
    let mut ranges: Ranges = Vec::with_capacity(first_node as usize + nnodes);
    let flush = |row: &mut [Option<(u32, bool)>; 256], ranges: &mut Ranges| {
        let mut out: Vec<(u8, u8, u32, bool)> = Vec::new();
        for b in 0..=255u8 {
            if let Some((t, c)) = row[b as usize] {
                push_range(&mut out, (b, b), t, c);
            }
        }
        ranges.push(out);
        *row = [None; 256];
    };
    // Off the trie: where a normal byte `b` goes (escapes and quotes aside).
    let off = |b: u8| -> Option<(u32, bool)> {
        match decode(Dec::Normal, b)? {
            (Dec::Normal, Some(_), _) => Some((OFF, true)),
            (Dec::Cont { left, lo, hi }, _, _) => Some((cont(left, lo, hi), true)),
            _ => None,
        }
    };
    // The free string's row without the closing quote (negated), or
    // nothing: a node's row lays the quote and its children over it, and
    // OFF's the quote alone.
    let mut base: Vec<(u8, u8, u32, bool)> = Vec::new();
    if negate {
        for b in 0..=255u8 {
            if let Some((t, c)) = if b == b'\\' { Some((ESC, false)) } else { off(b) } {
                push_range(&mut base, (b, b), t, c);
            }
        }
    }
    debug_assert_eq!(ranges.len() as u32, OPEN);
    row[b'"' as usize] = Some((node(1), false));
    flush(&mut row, &mut ranges);
    // DONE
    flush(&mut row, &mut ranges);
    if negate {
        // OFF: any character, an escape, or the closing quote.
        ranges.push(overlay(&base, &[(b'"', Some((DONE, false)))]));
        // ESC, then \u00XX (control characters only, see `decode`).
        for b in *b"\"\\/bfnrt" {
            row[b as usize] = Some((OFF, true));
        }
        row[b'u' as usize] = Some((U0, false));
        flush(&mut row, &mut ranges);
        row[b'0' as usize] = Some((U0 + 1, false));
        flush(&mut row, &mut ranges);
        row[b'0' as usize] = Some((U0 + 2, false));
        flush(&mut row, &mut ranges);
        row[b'0' as usize] = Some((U0 + 3, false));
        row[b'1' as usize] = Some((U0 + 3, false));
        flush(&mut row, &mut ranges);
        for b in (b'0'..=b'9').chain(b'a'..=b'f').chain(b'A'..=b'F') {
            row[b as usize] = Some((OFF, true));
        }
        flush(&mut row, &mut ranges);
        // Continuation bytes, in the order of `cont`.
        for (left, lo, hi) in [
            (1, 0x80, 0xBF),
            (2, 0xA0, 0xBF),
            (2, 0x80, 0xBF),
            (2, 0x80, 0x9F),
            (3, 0x90, 0xBF),
            (3, 0x80, 0xBF),
            (3, 0x80, 0x8F),
        ] {
            let to = if left == 1 { OFF } else { cont(left - 1, 0x80, 0xBF) };
            for b in lo..=hi {
                row[b as usize] = Some((to, false));
            }
            flush(&mut row, &mut ranges);
        }
    }
    // The byte of each class (a word's class holds one byte).
    let mut class_byte = vec![0u8; w.nclasses];
    for b in 0..=255u8 {
        class_byte[w.classes[b as usize] as usize] = b;
    }
    let mut points: Vec<(u8, Option<(u32, bool)>)> = Vec::new();
    for n in 1..=nnodes {
        points.clear();
        // The closing quote: the string is a word exactly at a word's end.
        points.push((b'"', (w.end[n] != negate).then_some((DONE, false))));
        for (c, &b) in class_byte.iter().enumerate().skip(1) {
            let t = w.next[n * w.nclasses + c] as usize;
            if t != 0 {
                points.push((b, Some((node(t), true))));
            }
        }
        points.sort_unstable_by_key(|p| p.0);
        ranges.push(overlay(&base, &points));
    }
    let mut accept = vec![false; ranges.len()];
    accept[DONE as usize] = true;
    Some((ranges, accept))
}

/// `base` (byte ranges in order) with the bytes of `points` (in order)
/// sent elsewhere, or nowhere.
fn overlay(base: &[(u8, u8, u32, bool)], points: &[(u8, Option<(u32, bool)>)]) -> Vec<(u8, u8, u32, bool)> {
    let mut out: Vec<(u8, u8, u32, bool)> = Vec::with_capacity(base.len() + 2 * points.len());
    let mut p = 0;
    let put = |out: &mut Vec<(u8, u8, u32, bool)>, lo: u8, hi: u8, t: u32, c: bool| push_range(out, (lo, hi), t, c);
    for &(lo, hi, t, c) in base {
        // Points before this range.
        while p < points.len() && points[p].0 < lo {
            if let (b, Some((pt, pc))) = points[p] {
                put(&mut out, b, b, pt, pc);
            }
            p += 1;
        }
        let mut from = lo as u16;
        while p < points.len() && points[p].0 <= hi {
            let b = points[p].0;
            if from < b as u16 {
                put(&mut out, from as u8, b - 1, t, c);
            }
            if let Some((pt, pc)) = points[p].1 {
                put(&mut out, b, b, pt, pc);
            }
            from = b as u16 + 1;
            p += 1;
        }
        if from <= hi as u16 {
            put(&mut out, from as u8, hi, t, c);
        }
    }
    for &(b, x) in &points[p..] {
        if let Some((pt, pc)) = x {
            put(&mut out, b, b, pt, pc);
        }
    }
    out
}

/// [`build_inner`] in general: the product of the decoder and the
/// constraint automata, state by state.
fn build_product(spec: &StringSpec, count: bool, max_states: usize) -> Result<(Ranges, Vec<bool>), String> {
    let dfas: Vec<&Lang> = spec.must.iter().chain(&spec.must_not).collect();
    let n_must = spec.must.len();
    // Counting only matters up to max (or min when unbounded).
    let cap = if count { spec.max_len.map(|m| m + 1).unwrap_or(spec.min_len) } else { 0 };
    // In a product of several constraints, each regex component steps to
    // its class representative, so product states differ only where the
    // components' futures do (see [`crate::automata::equiv`]). One
    // constraint gains little: its redundant states add, not multiply.
    let equiv: Vec<Option<Arc<Equiv>>> = dfas
        .iter()
        .map(|d| match d {
            Lang::Dfa(d) if dfas.len() > 1 => Equiv::cached(d),
            _ => None,
        })
        .collect();
    let canon = |j: usize, id: StateID| equiv[j].as_ref().map_or(id, |e| e.rep(id));
    let mut ids = Ids::with_capacity(dfas.len());
    for (j, d) in dfas.iter().enumerate() {
        ids.push(canon(j, d.start()?));
    }
    let start = Key { dec: if spec.raw { Dec::Normal } else { Dec::Open }, ids, count: 0, m: 0, pre: false };
    let modulus = spec.modulus.filter(|_| spec.raw);
    // A state's work grows with the constraints stepped and hashed in its
    // key (about 1 + k/10 µs for k of them): a state of a product of k > 4
    // constraints counts (10 + k)/14 toward `max_states`, so that a
    // refusal comes within about the same time.
    let weight14 = (10 + dfas.len()).max(14);
    let mut index: ahash::AHashMap<Key, u32> = Default::default();
    let mut keys: Vec<Key> = vec![start.clone()];
    index.insert(start, 0);
    let mut out_ranges: Ranges = Vec::new();
    let mut out_accept: Vec<bool> = Vec::new();
    // Decoded bytes that every constraint DFA treats alike share a joint
    // class; within one state, (decoder move, joint class, new char)
    // determines the target, so each is worked out once per state.
    let joint: Vec<u16> = {
        let mut ids: ahash::AHashMap<Vec<u8>, u16> = Default::default();
        (0..=255u8)
            .map(|x| {
                let mut sig: Vec<u8> = dfas.iter().map(|d| d.class(x)).collect();
                if modulus.is_some() {
                    // Every byte the remainder automaton reads is its own class.
                    sig.push(if x.is_ascii_digit() || x == b'-' || x == b'.' { x } else { 0 });
                }
                let l = ids.len() as u16;
                *ids.entry(sig).or_insert(l)
            })
            .collect()
    };
    // Per state: the target of each move class, worked out once.
    const UNSET: u32 = u32::MAX - 1;
    let mut memo: Vec<u32> = Vec::new();
    // The decoder's moves from each of its states, worked out once, each
    // with its move class: moves alike in (decoder move, joint class, new
    // char) have one target.
    let mut dec_moves: Vec<DecMoves> = Vec::new();
    let mut i = 0;
    let alts = &spec.alternatives;
    let union = !alts.is_empty();
    let holds = |ids: &[StateID], (pos, neg): &(Vec<usize>, Vec<usize>)| {
        pos.iter().all(|&j| dfas[j].full_match(ids[j]))
            && neg.iter().all(|&j| !dfas[n_must + j].full_match(ids[n_must + j]))
    };
    let accepts = |k: &Key| {
        (spec.raw || k.dec == Dec::Done)
            && (!count || k.count >= spec.min_len)
            && if union {
                alts.iter().any(|a| holds(&k.ids, a))
            } else {
                (0..n_must).all(|j| dfas[j].full_match(k.ids[j]))
                    && (n_must..dfas.len()).all(|j| !dfas[j].full_match(k.ids[j]))
            }
            && modulus.is_none_or(|md| {
                let r = mod_value(k.m, md, spec.frac_digits);
                if spec.divisors.is_empty() {
                    r == 0
                } else {
                    spec.divisors.iter().all(|&(d, divides)| (r % d == 0) == divides)
                }
            })
    };
    // In a union, a state is dead when every alternative has a language
    // that can no longer match (single languages die one by one below).
    let all_dead = |ids: &[StateID]| alts.iter().all(|(pos, _)| pos.iter().any(|&j| dfas[j].is_dead_state(ids[j])));
    // Languages that kill the state on their own when dead.
    let n_killing = if union { 0 } else { n_must };
    // After the closing quote nothing moves, so all that matters is
    // acceptance: a closed string that fails is dead, and every one that
    // passes is the one state `done` (one per constraint state before, which
    // doubled a key set's automaton).
    let done = Key { dec: Dec::Done, ids: Ids::new(), count: 0, m: 0, pre: false };
    // Inside an escape only `"`, `\`, `/` and control characters can be
    // decoded (see [`decode`]), so constraint states that move alike on those
    // make one escape state: each is replaced by the first state met with its
    // moves on them. (Else every trie node of a key set had an escape state
    // of its own.)
    let esc_chars: Vec<u8> = b"\"\\/".iter().copied().chain(0..0x20).collect();
    let mut esc_canon: Vec<ahash::AHashMap<StateID, StateID>> = vec![Default::default(); dfas.len()];
    let mut esc_reps: Vec<ahash::AHashMap<Vec<StateID>, StateID>> = vec![Default::default(); dfas.len()];
    while i < keys.len() {
        let k = keys[i].clone();
        i += 1;
        out_accept.push(if k == done { true } else { accepts(&k) });
        let mut ranges: Vec<(u8, u8, u32, bool)> = Vec::new();
        let moves = match dec_moves.iter().position(|(d, _, _)| *d == k.dec) {
            Some(p) => p,
            None => {
                let mut kinds: Vec<(Dec, u16, bool)> = Vec::new();
                let mut mv: Vec<(DecMove, u16)> = Vec::new();
                for b in 0..=255u8 {
                    let m = if spec.raw { Some((Dec::Normal, Some(b), false)) } else { decode(k.dec, b) };
                    let Some((d, x, c)) = m else { continue };
                    let kind = (d, x.map_or(u16::MAX, |x| joint[x as usize]), c);
                    let id = kinds.iter().position(|&q| q == kind).unwrap_or_else(|| {
                        kinds.push(kind);
                        kinds.len() - 1
                    }) as u16;
                    match mv.last_mut() {
                        Some((r, last)) if *last == id && r.1 as u16 + 1 == b as u16 => r.1 = b,
                        _ => mv.push(((b, b, d, x, c), id)),
                    }
                }
                dec_moves.push((k.dec, mv, kinds.len()));
                dec_moves.len() - 1
            }
        };
        memo.clear();
        // One constraint, a plain character step (the common case, and the
        // whole of a key set): the targets of the last two such steps, as
        // (next decoder state, new char, next constraint state) → target,
        // checked before any key is built. Most kinds of a state lead to one
        // or two product states (off a key trie, all letters but a node's
        // children go to the same place).
        let plain_step = dfas.len() == 1 && !k.pre && modulus.is_none() && !union;
        let mut recent1: [(Dec, bool, StateID, u32); 2] = [(Dec::Open, false, StateID::ZERO, UNSET); 2];
        memo.resize(dec_moves[moves].2, UNSET);
        for &((b, hi, dec, byte, new_char), kind) in &dec_moves[moves].1 {
            let next_count = if new_char && count { (k.count + 1).min(cap.max(1)) } else { k.count };
            if let (Some(max), true) = (spec.max_len, count) {
                if new_char && k.count + 1 > max {
                    continue;
                }
            }
            let t = memo[kind as usize];
            if t != UNSET {
                if t != u32::MAX {
                    push_range(&mut ranges, (b, hi), t, new_char);
                }
                continue;
            }
            let quick = match (plain_step, byte) {
                (true, Some(x)) if matches!(dec, Dec::Normal | Dec::Cont { .. }) => {
                    let n1 = canon(0, dfas[0].next_state(k.ids[0], x));
                    if n_must == 1 && dfas[0].is_dead_state(n1) {
                        memo[kind as usize] = u32::MAX;
                        continue;
                    }
                    match recent1.iter().find(|r| r.0 == dec && r.1 == new_char && r.2 == n1 && r.3 != UNSET) {
                        Some(r) => {
                            memo[kind as usize] = r.3;
                            push_range(&mut ranges, (b, hi), r.3, new_char);
                            continue;
                        }
                        None => Some(n1),
                    }
                }
                _ => None,
            };
            let mut nids = k.ids.clone();
            let mut dead = false;
            let mut nm = k.m;
            if let (Some(md), Some(x)) = (modulus, byte) {
                match mod_step(k.m, md, spec.frac_digits, x) {
                    Some(v) => nm = v,
                    None => dead = true,
                }
            }
            // Carried through the escape; the closing digit's character
            // was read on entering it.
            let mut pre = k.pre && byte.is_none();
            if let (Some(x), false, false) = (byte, dead, k.pre) {
                for (j, d) in dfas.iter().enumerate() {
                    nids[j] = canon(j, d.next_state(nids[j], x));
                    if j < n_killing && d.is_dead_state(nids[j]) {
                        dead = true;
                        break;
                    }
                }
            }
            if dec == Dec::U(0, 0) && !dead && !spec.raw {
                match control_step(&dfas, &nids, n_killing) {
                    Some(Some(adv)) => {
                        nids = adv.iter().enumerate().map(|(j, &id)| canon(j, id)).collect();
                        pre = true;
                    }
                    Some(None) => dead = true,
                    None => {}
                }
            }
            if union && !dead && all_dead(&nids) {
                dead = true;
            }
            if dead {
                memo[kind as usize] = u32::MAX;
                continue;
            }
            if dec == Dec::Esc && !spec.raw {
                for (j, id) in nids.iter_mut().enumerate() {
                    *id = *esc_canon[j].entry(*id).or_insert_with(|| {
                        let sig: Vec<StateID> = esc_chars.iter().map(|&x| dfas[j].next_state(*id, x)).collect();
                        *esc_reps[j].entry(sig).or_insert(*id)
                    });
                }
            }
            let mut nk = Key { dec, ids: nids, count: next_count, m: nm, pre };
            if dec == Dec::Done && !spec.raw {
                if !accepts(&nk) {
                    memo[kind as usize] = u32::MAX;
                    continue;
                }
                nk = done.clone();
            }
            let t = match index.get(&nk) {
                Some(&t) => t,
                None => {
                    let t = keys.len() as u32;
                    crate::budget::check()?;
                    if keys.len() * weight14 >= max_states * 14 {
                        return Err(if weight14 == 14 {
                            format!("string automaton exceeds {max_states} states")
                        } else {
                            format!(
                                "string automaton exceeds {max_states} states (a product of {} constraints counts \
                                 each state as {weight14}/14)",
                                dfas.len()
                            )
                        });
                    }
                    index.insert(nk.clone(), t);
                    keys.push(nk);
                    t
                }
            };
            if let Some(n1) = quick {
                recent1.swap(0, 1);
                recent1[0] = (dec, new_char, n1, t);
            }
            memo[kind as usize] = t;
            push_range(&mut ranges, (b, hi), t, new_char);
        }
        out_ranges.push(ranges);
    }
    Ok((out_ranges, out_accept))
}

/// Whether a `pattern`'s search language is infinite: when a match need
/// not start at the value's start (or end at its end), anything may stand
/// before (after) it; else it is the pattern's own language, infinite when
/// its length is unbounded. `false` when unsure (untranslatable pattern).
pub(crate) fn infinite_pattern(p: &str) -> bool {
    use regex_syntax::hir::Look;
    let Ok(h) = translate_ecma(p, Reading::Under).and_then(|t| crate::automata::lexer::parse(&t)) else {
        return false;
    };
    let props = h.properties();
    let anchored = props.look_set_prefix().contains(Look::Start) && props.look_set_suffix().contains(Look::End);
    !anchored || props.maximum_len().is_none()
}

/// Whether every prefix of a value a `pattern` accepts (search semantics)
/// goes on to infinitely many values: true when some match need not start
/// at the value's start, since a match may then follow any prefix. `false`
/// when unsure.
pub(crate) fn open_ended_pattern(p: &str) -> bool {
    use regex_syntax::hir::Look;
    match translate_ecma(p, Reading::Under).and_then(|t| crate::automata::lexer::parse(&t)) {
        Ok(h) => !h.properties().look_set_prefix().contains(Look::Start),
        Err(_) => false,
    }
}

/// A JSON Schema `pattern` with its search semantics (matches anywhere in
/// the value), as a regex over the whole decoded value.
pub(crate) fn ecma_search(p: &str, reading: Reading) -> Result<regex_syntax::hir::Hir, String> {
    use regex_syntax::hir::{Class, Hir};
    let inner = trim_ends(translate_ecma(p, reading).and_then(|t| crate::automata::lexer::parse(&t))?, true, true);
    let any = || {
        Hir::repetition(regex_syntax::hir::Repetition {
            min: 0,
            max: None,
            greedy: true,
            sub: Box::new(Hir::class(Class::Unicode(crate::automata::lexer::any_char()))),
        })
    };
    Ok(Hir::concat(vec![any(), inner, any()]))
}

/// A `pattern` as languages the whole decoded value must match and must
/// not match, read as `reading` says: one search language, plus one per
/// lookahead that opens the pattern right after `^` (`^(?!org\.)[a-z.]+$`,
/// `^(?=.{1,255}$)(?!\s+$).+`). Such a lookahead says what the value
/// starts with (`(?=A)`: a match of `^A` must be found, `(?!A)`: must
/// not), so it is one more language in the conjunction. Lookaround
/// anywhere else, and any in a reading where non-matches are allowed
/// (`Over`: a conjunction has no single complement), is refused.
pub(crate) fn ecma_pattern(
    p: &str,
    reading: Reading,
) -> Result<(Vec<regex_syntax::hir::Hir>, Vec<regex_syntax::hir::Hir>), String> {
    let Some((ahead, rest)) = leading_lookaheads(p) else {
        return Ok((vec![ecma_search(p, reading)?], Vec::new()));
    };
    if reading == Reading::Over {
        return Err("lookahead in a negated pattern".into());
    }
    let mut must = vec![ecma_search(&rest, reading)?];
    let mut must_not = Vec::new();
    for (body, positive) in ahead {
        let anchored = format!("^(?:{body})");
        if positive {
            must.push(ecma_search(&anchored, reading)?);
        } else {
            must_not.push(ecma_search(&anchored, reading.flip())?);
        }
    }
    Ok((must, must_not))
}

/// The languages of [`ecma_pattern`] each under both readings, for
/// judging one string: `(under, over, must_match)`; `under` ⊆ `over`.
pub(crate) fn pattern_languages(
    p: &str,
) -> Result<Vec<(regex_syntax::hir::Hir, regex_syntax::hir::Hir, bool)>, String> {
    let both = |q: &str, positive| {
        Ok::<_, String>((ecma_search(q, Reading::Under)?, ecma_search(q, Reading::Over)?, positive))
    };
    let Some((ahead, rest)) = leading_lookaheads(p) else {
        return Ok(vec![both(p, true)?]);
    };
    let mut out = vec![both(&rest, true)?];
    for (body, positive) in ahead {
        out.push(both(&format!("^(?:{body})"), positive)?);
    }
    Ok(out)
}

/// Splits `^(?=A)(?!B)rest` into its lookaheads (`(A, true)`, `(B,
/// false)`) and `^rest`. `None` when the pattern does not open that way,
/// or when `rest` has a `|` outside groups (the lookaheads would bind to
/// its first branch only).
fn leading_lookaheads(p: &str) -> Option<(Vec<(String, bool)>, String)> {
    let chars: Vec<char> = p.chars().collect();
    if chars.first() != Some(&'^') {
        return None;
    }
    let mut i = 1;
    let mut ahead = Vec::new();
    while chars.get(i) == Some(&'(') && chars.get(i + 1) == Some(&'?') && matches!(chars.get(i + 2), Some('=' | '!')) {
        let end = group_end(&chars, i)?;
        ahead.push((chars[i + 3..end].iter().collect::<String>(), chars[i + 2] == '='));
        i = end + 1;
    }
    if ahead.is_empty() {
        return None;
    }
    let rest: Vec<char> = chars[i..].to_vec();
    // A `|` at depth 0 of the rest.
    let mut j = 0;
    while j < rest.len() {
        match rest[j] {
            '\\' => j += 1,
            '[' => j = class_end(&rest, j)?,
            '(' => j = group_end(&rest, j)?,
            '|' => return None,
            _ => {}
        }
        j += 1;
    }
    Some((ahead, format!("^{}", rest.iter().collect::<String>())))
}

/// The index of the `)` closing the group opened at `chars[open]`.
fn group_end(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = open;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 1,
            '[' => j = class_end(chars, j)?,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

/// The index of the `]` closing the class opened at `chars[open]` (ECMA:
/// a `]` right after `[` or `[^` closes it, an empty class).
fn class_end(chars: &[char], open: usize) -> Option<usize> {
    let mut j = open + 1;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 1,
            ']' => return Some(j),
            _ => {}
        }
        j += 1;
    }
    None
}

/// A pattern that is one character class repeated, anchored at both ends
/// (`^[A-Za-z0-9 ]{1,200}$`), as what it says about the value: every
/// character is in the class, and the length (in characters) is within
/// `min..=max`. Returns the full-match language of "every character in the
/// class" and the bounds. Each match of the class is one code point of
/// the translated pattern (the UTF-16 reading of ECMA classes is settled by
/// [`translate_ecma`] before), so the two readings are the same language;
/// the second lets a long count run beside a small automaton (see
/// [`CountedTable`]) where the first spells out `max` copies of the class.
pub(crate) fn counted_class(p: &str, reading: Reading) -> Option<(regex_syntax::hir::Hir, u64, Option<u64>)> {
    use regex_syntax::hir::{Hir, HirKind, Look, Repetition};
    // Most patterns are not anchored at both ends: spare them a second
    // translation (the caller translates them for search).
    if !(p.starts_with('^') && p.ends_with('$')) {
        return None;
    }
    let h = crate::automata::lexer::parse(&translate_ecma(p, reading).ok()?).ok()?;
    let HirKind::Concat(parts) = h.kind() else { return None };
    let [start, rep, end] = parts.as_slice() else { return None };
    if !matches!(start.kind(), HirKind::Look(Look::Start)) || !matches!(end.kind(), HirKind::Look(Look::End)) {
        return None;
    }
    let mut rep = rep;
    while let HirKind::Capture(c) = rep.kind() {
        rep = &c.sub;
    }
    let HirKind::Repetition(r) = rep.kind() else { return None };
    let one_char = match r.sub.kind() {
        HirKind::Class(regex_syntax::hir::Class::Unicode(_)) => true,
        HirKind::Literal(l) => std::str::from_utf8(&l.0).is_ok_and(|s| s.chars().count() == 1),
        _ => false,
    };
    if !one_char {
        return None;
    }
    let every = Hir::repetition(Repetition { min: 0, max: None, greedy: true, sub: r.sub.clone() });
    Some((every, u64::from(r.min), r.max.map(u64::from)))
}

/// A pattern that finds the same strings as `h` *somewhere* in a string
/// (search semantics), with counted repetitions at its ends cut to their
/// minimum: a string holds a match of `A B{n,m}` exactly when it holds one
/// of `A B{n}` (the rest of the run is any text after it), and likewise at
/// the start; `B{0,m}` at an end is nothing. Without this, a pattern such
/// as `[A-Za-z0-9_.:-]{1,255}` (a `patternProperties` key) builds a DFA
/// that counts to 255, where one character decides the search. `front`
/// and `back`: which ends of `h` are ends of the whole pattern.
fn trim_ends(h: regex_syntax::hir::Hir, front: bool, back: bool) -> regex_syntax::hir::Hir {
    use regex_syntax::hir::{Capture, Hir, HirKind, Repetition};
    match h.kind() {
        HirKind::Repetition(r) if r.min == 0 => Hir::empty(),
        HirKind::Repetition(r) => Hir::repetition(Repetition { max: Some(r.min), ..r.clone() }),
        HirKind::Capture(c) => {
            Hir::capture(Capture { sub: Box::new(trim_ends((*c.sub).clone(), front, back)), ..c.clone() })
        }
        HirKind::Alternation(alts) => {
            Hir::alternation(alts.iter().map(|a| trim_ends(a.clone(), front, back)).collect())
        }
        HirKind::Concat(parts) if parts.len() >= 2 => {
            // A part at an end that can match the empty string (and holds
            // no anchor) decides nothing: a string holds a match of `P S`
            // exactly when it holds one of `P`. Dropping it spares the DFA
            // every way that part could go on (a URI pattern's optional
            // authority, path and query).
            let droppable = |x: &Hir| x.properties().minimum_len() == Some(0) && x.properties().look_set().is_empty();
            let mut parts = parts.clone();
            if back {
                while parts.len() > 1 && parts.last().is_some_and(droppable) {
                    parts.pop();
                }
            }
            if front {
                while parts.len() > 1 && droppable(&parts[0]) {
                    parts.remove(0);
                }
            }
            if parts.len() == 1 {
                return trim_ends(parts.pop().expect("one part"), front, back);
            }
            if back {
                let last = parts.pop().expect("two parts or more");
                parts.push(trim_ends(last, false, true));
            }
            if front {
                let first = std::mem::replace(&mut parts[0], Hir::empty());
                parts[0] = trim_ends(first, true, false);
            }
            Hir::concat(parts)
        }
        _ => h,
    }
}

/// Which way a translation may err where validators read a pattern
/// differently (`\s`: ECMA-262, the Rust `regex` crate and `boon` each have
/// their own set of space characters; `.`: ECMA-262 excludes the line
/// terminators `\n \r` U+2028 U+2029, validators built on the `regex`
/// crate exclude only `\n`). `Under` matches only what every
/// reading matches: for `pattern`, whose matches are allowed. `Over`
/// matches whatever some reading matches: for `not` of a pattern, whose
/// non-matches are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reading {
    Under,
    Over,
}

impl Reading {
    fn flip(self) -> Reading {
        match self {
            Reading::Under => Reading::Over,
            Reading::Over => Reading::Under,
        }
    }
    /// `.` under this reading.
    fn dot(self) -> &'static str {
        match self {
            Reading::Under => r"[^\n\r\x{2028}\x{2029}]",
            Reading::Over => r"[^\n]",
        }
    }
    /// The class items of `\s` under this reading. Every reading holds
    /// `\t \n \v \f \r`, space, U+00A0, U+2003 and U+2029; ECMA-262 and the
    /// `regex` crate add the other Unicode spaces (U+1680, U+2000–U+200A,
    /// U+2028, U+202F, U+205F, U+3000), `regex` U+0085, ECMA and `boon`
    /// U+FEFF.
    fn space(self) -> &'static str {
        match self {
            Reading::Under => r"\t\n\x0B\x0C\r \xA0\x{2003}\x{2029}",
            Reading::Over => {
                r"\t\n\x0B\x0C\r \x{85}\xA0\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}"
            }
        }
    }
}

/// One ECMA class atom: a character (may end a range) or a set.
enum Atom {
    Char(char),
    Set(String),
}

/// Reads an escape after `\` at `chars[i]` (the letter), in or out of a
/// class; returns the atom and the index after it.
fn ecma_escape(chars: &[char], mut i: usize, in_class: bool, r: Reading) -> Result<(Atom, usize), String> {
    let Some(&n) = chars.get(i) else {
        return Err("trailing backslash".into());
    };
    i += 1;
    let set = |s: &str| Atom::Set(s.to_string());
    let atom = match n {
        'd' => set("0-9"),
        'D' => set("[^0-9]"),
        'w' => set("0-9A-Za-z_"),
        'W' => set("[^0-9A-Za-z_]"),
        's' => set(r.space()),
        // Not a space in the reading: the complement of the other side.
        'S' => Atom::Set(format!("[^{}]", r.flip().space())),
        'b' if in_class => Atom::Char('\u{8}'),
        'b' | 'B' => return Err("word boundary inside a class".into()),
        '1'..='9' => return Err("backreference".into()),
        'c' => return Err("control escape \\c".into()),
        'k' => return Err("named backreference".into()),
        'u' => {
            let (hex, next) = if chars.get(i) == Some(&'{') {
                let end = chars[i..].iter().position(|&x| x == '}').ok_or("bad \\u{")?;
                (chars[i + 1..i + end].iter().collect::<String>(), i + end + 1)
            } else {
                (chars.get(i..i + 4).ok_or("bad \\u escape")?.iter().collect::<String>(), i + 4)
            };
            if hex.is_empty() || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                return Err("bad \\u escape".into());
            }
            i = next;
            let v = u32::from_str_radix(&hex, 16).map_err(|_| "bad \\u escape")?;
            // A lone surrogate never occurs in a decoded JSON string.
            Atom::Char(char::from_u32(v).ok_or("\\u escape of a surrogate")?)
        }
        'x' => {
            let hex: String = chars.get(i..i + 2).ok_or("bad \\x escape")?.iter().collect();
            i += 2;
            Atom::Char(char::from_u32(u32::from_str_radix(&hex, 16).map_err(|_| "bad \\x escape")?).expect("byte"))
        }
        'n' => Atom::Char('\n'),
        'r' => Atom::Char('\r'),
        't' => Atom::Char('\t'),
        'f' => Atom::Char('\u{c}'),
        'v' => Atom::Char('\u{b}'),
        '0' => Atom::Char('\0'),
        'p' | 'P' => {
            let mut t = format!("\\{n}");
            if chars.get(i) == Some(&'{') {
                let end = chars[i..].iter().position(|&x| x == '}').ok_or("bad \\p{")?;
                t.extend(&chars[i..=i + end]);
                i += end + 1;
            } else {
                t.push(*chars.get(i).ok_or("bad \\p")?);
                i += 1;
            }
            Atom::Set(t)
        }
        c if c.is_ascii_alphanumeric() => return Err(format!("unknown escape \\{c}")),
        // ECMA reads `\<` as `<`; Rust-based validators (the `regex` crate:
        // `jsonschema`, `boon`) as a word boundary. No sound reading.
        '<' | '>' if !in_class => {
            return Err(format!("\\{n} is a literal to ECMA-262, a word boundary to Rust regexes"))
        }
        c => Atom::Char(c), // identity escape of punctuation
    };
    Ok((atom, i))
}

/// A character as a regex-syntax class member or literal: `\x{..}` for
/// everything but ASCII letters and digits, so that no character of the
/// pattern is read as syntax (`-`, `&&`, `~~`, `[` inside a class).
fn lit(c: char) -> String {
    if c.is_ascii_alphanumeric() {
        c.to_string()
    } else {
        format!("\\x{{{:X}}}", c as u32)
    }
}

/// Translates an ECMA class starting after its `[` at `chars[i]`; returns
/// the regex-syntax class and the index after its `]`. ECMA reads `a-b` as
/// a range only between two characters (`\d-x` is three members), `-` at
/// either end as itself, and `[` as itself.
fn ecma_class(chars: &[char], mut i: usize, r: Reading) -> Result<(String, usize), String> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    // Members of a negated class are complemented: read them the other way.
    let mr = if negated { r.flip() } else { r };
    let mut items = String::new();
    let atom = |i: usize| -> Result<(Atom, usize), String> {
        match chars.get(i) {
            None => Err("unterminated character class".into()),
            Some('\\') => ecma_escape(chars, i + 1, true, mr),
            Some(&c) => Ok((Atom::Char(c), i + 1)),
        }
    };
    loop {
        match chars.get(i) {
            None => return Err("unterminated character class".into()),
            Some(']') => break,
            // ECMA reads these as members; Rust-based validators as a
            // nested class or a set operation. No sound reading.
            Some('[') => return Err("`[` inside a class: a member to ECMA-262, a nested class to Rust regexes".into()),
            Some(&c @ ('-' | '&' | '~')) if chars.get(i + 1) == Some(&c) => {
                return Err(format!("`{c}{c}` inside a class: members to ECMA-262, a set operation to Rust regexes"))
            }
            _ => {}
        }
        let (a, next) = atom(i)?;
        i = next;
        if chars.get(i) == Some(&'-') && chars.get(i + 1) == Some(&'-') {
            return Err("`--` inside a class: a range to ECMA-262, a set difference to Rust regexes".into());
        }
        let range_end = chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']');
        if range_end {
            let (b, next) = atom(i + 1)?;
            match (&a, &b) {
                (Atom::Char(x), Atom::Char(y)) => {
                    if x > y {
                        return Err("class range out of order".into());
                    }
                    items.push_str(&format!("{}-{}", lit(*x), lit(*y)));
                    i = next;
                    continue;
                }
                _ => {
                    // Annex B: a set beside `-` makes the `-` a member.
                    for m in [&a, &Atom::Char('-'), &b] {
                        match m {
                            Atom::Char(c) => items.push_str(&lit(*c)),
                            Atom::Set(s) => items.push_str(s),
                        }
                    }
                    i = next;
                    continue;
                }
            }
        }
        match a {
            Atom::Char(c) => items.push_str(&lit(c)),
            Atom::Set(s) => items.push_str(&s),
        }
    }
    let out = match (negated, items.is_empty()) {
        (false, true) => return Err("empty character class".into()),
        (true, true) => r"(?s:.)".to_string(),
        (false, false) => format!("[{items}]"),
        (true, false) => format!("[^{items}]"),
    };
    Ok((out, i + 1))
}

/// Translates an ECMA-262 regex (JSON Schema `pattern`) into regex-syntax
/// syntax under `reading` (see [`Reading`]), or says why it cannot be.
///
/// Differences handled: `\d` `\w` are ASCII in ECMA; `\s`/`\S` per
/// [`Reading`]; `.` excludes ECMA line terminators; classes are read by
/// ECMA's rules (ranges between characters only, `[` a member, no set
/// operations) and every non-alphanumeric member written as `\x{..}`;
/// `[^]` is any character, `[]` nothing; `\/` and other identity escapes.
/// Refused: lookaround, backreferences, `\c`. Unicode property escapes are
/// kept as they are.
pub(crate) fn translate_ecma(p: &str, reading: Reading) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                match chars.get(i + 1) {
                    Some('b') => {
                        out.push_str(r"(?-u:\b)");
                        i += 2;
                    }
                    Some('B') => {
                        out.push_str(r"(?-u:\B)");
                        i += 2;
                    }
                    _ => {
                        let (a, next) = ecma_escape(&chars, i + 1, false, reading)?;
                        match a {
                            Atom::Char(c) => out.push_str(&lit(c)),
                            Atom::Set(s) if s.starts_with('[') || s.starts_with("\\p") || s.starts_with("\\P") => {
                                out.push_str(&s)
                            }
                            Atom::Set(s) => out.push_str(&format!("[{s}]")),
                        }
                        i = next;
                    }
                }
                continue;
            }
            '[' => {
                let (cls, next) = ecma_class(&chars, i + 1, reading)?;
                out.push_str(&cls);
                i = next;
                continue;
            }
            '.' => out.push_str(reading.dot()),
            '(' if chars.get(i + 1) == Some(&'?') => match chars.get(i + 2) {
                Some('=') | Some('!') => return Err("lookahead".into()),
                Some('<') if matches!(chars.get(i + 3), Some('=') | Some('!')) => return Err("lookbehind".into()),
                _ => out.push('('),
            },
            '{' => {
                // A `{` that does not start a valid quantifier is a literal.
                let rest: String = chars[i..].iter().collect();
                let ok = rest.find('}').map(|e| {
                    let inner = &rest[1..e];
                    !inner.is_empty()
                        && inner.split(',').count() <= 2
                        && inner
                            .split(',')
                            .next()
                            .is_some_and(|a| !a.is_empty() && a.chars().all(|d| d.is_ascii_digit()))
                        && inner.split(',').nth(1).is_none_or(|b| b.chars().all(|d| d.is_ascii_digit()))
                });
                if ok == Some(true) {
                    out.push('{');
                } else {
                    out.push_str(r"\{");
                }
            }
            '}' => {
                // balanced with a quantifier `{` above only if one is open
                let open = out.rfind('{').is_some_and(|p| !out[..p].ends_with('\\') && !out[p..].contains('}'));
                out.push_str(if open { "}" } else { r"\}" });
            }
            ']' => out.push_str(r"\]"),
            '#' | ' ' | '&' | '~' | '-' => out.push_str(&lit(c)),
            c => out.push(c),
        }
        i += 1;
    }
    Ok(out)
}

/// Whether JSON Schema defines the format `name` for a schema of draft 4
/// or later, or with `draft3`, for a draft-3 schema. A format it does not
/// define (OpenAPI's `int32`, `byte`, names such as `url` or `path`, and
/// draft 3's `color` or `host-name` in a later draft) is an annotation to
/// every validator: it cannot make an instance invalid, so the grammar
/// leaves the string free and reports it
/// ([`crate::CompiledGrammar::annotations`]). A defined one is enforced, or
/// refused by name when its language is not built.
pub(crate) fn is_defined_format(name: &str, draft3: bool) -> bool {
    let draft3_only = matches!(name, "ip-address" | "host-name" | "color" | "style" | "phone" | "utc-millisec");
    if draft3_only {
        return draft3;
    }
    matches!(
        name,
        "date-time"
            | "date"
            | "time"
            | "duration"
            | "email"
            | "idn-email"
            | "hostname"
            | "idn-hostname"
            | "ipv4"
            | "ipv6"
            | "uri"
            | "uri-reference"
            | "iri"
            | "iri-reference"
            | "uuid"
            | "uri-template"
            | "json-pointer"
            | "relative-json-pointer"
            | "regex"
    )
}

/// Decoded-value regexes for `format` values: each is a *subset* of what
/// validators accept (so output always validates), covering the common
/// forms. `None` for a format we do not enforce.
pub(crate) fn format_regex(name: &str) -> Option<&'static str> {
    Some(match name {
        "date" => DATE,
        "time" => TIME,
        "date-time" => DATE_TIME,
        "duration" => DURATION,
        "email" => EMAIL,
        "idn-email" => IDN_EMAIL,
        "hostname" => HOSTNAME,
        "ipv4" => IPV4,
        "ipv6" => IPV6,
        "uuid" => UUID,
        "uri" => URI,
        "uri-reference" => URI_REFERENCE,
        // Every URI is an IRI (RFC 3987): URIs of the subset above with a
        // host after `//` and no empty path segment (some IRI checkers
        // reject an empty host).
        "iri" => IRI,
        "iri-reference" => IRI_REFERENCE,
        "uri-template" => URI_TEMPLATE,
        "json-pointer" => JSON_POINTER,
        "relative-json-pointer" => RELATIVE_JSON_POINTER,
        "regex" => regex_subset(),
        "idn-hostname" => IDN_HOSTNAME,
        _ => return None,
    })
}

/// Decoded-value regexes that every value a validator accepts for the
/// format matches: *supersets* of what `jsonschema` (Rust and Python) and
/// `boon` accept, read from their checkers (`boon` parses date and time
/// fields as unsigned integers, which take a leading `+`; Python's UUID
/// check strips `urn:`, `uuid:` and braces; Python's `email` only asks for
/// an `@`). `not: {format}` is built as "does not match the superset":
/// every output is then outside the format for all of them, at the cost of
/// the few strings in the superset that no validator accepts. `None` where
/// no useful superset is written (`not` of that format stays a named
/// refusal).
pub(crate) fn format_superset(name: &str) -> Option<&'static str> {
    const DATE: &str = r"[0-9+]{4}-[0-9+]{2}-[0-9+]{2}";
    const TIME: &str = r"[0-9+]{2}:[0-9+]{2}:[0-9+]{2}(?:\.[0-9]+)?(?:[Zz]|[+\-][0-9+]{2}:[0-9+]{2})";
    Some(match name {
        "date" => DATE,
        "time" => TIME,
        "date-time" => {
            r"[0-9+]{4}-[0-9+]{2}-[0-9+]{2}[Tt ][0-9+]{2}:[0-9+]{2}:[0-9+]{2}(?:\.[0-9]+)?(?:[Zz]|[+\-][0-9+]{2}:[0-9+]{2})"
        }
        "ipv4" => r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}",
        // Python's addresses may carry a `%scope`.
        "ipv6" => r"[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?s:%.*)?",
        "uuid" => r"[0-9A-Fa-f{}:urnid\-]{32,}",
        "hostname" => r"[A-Za-z0-9._\-]*",
        "email" => r"(?s:.*@.*)",
        // A scheme, then anything.
        "uri" => r"[A-Za-z][A-Za-z0-9+.\-]*:(?s:.*)",
        "json-pointer" => r"(?s:(?:/(?:[^/~]|~[01])*)*)",
        _ => return None,
    })
}

const IRI: &str = r"[A-Za-z][A-Za-z0-9+.\-]{0,31}:(?://(?:[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3}\.){0,4}[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3}(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~\-!$&'()*+,;=:@]{1,64}){0,8}/?|[A-Za-z0-9._~\-!$&'()*+,;=:@]{1,64}(?:/[A-Za-z0-9._~\-!$&'()*+,;=:@]{1,64}){0,8})(?:\?[A-Za-z0-9._~\-!$&'()*+,;=:@/?]{0,60})?(?:#[A-Za-z0-9._~\-!$&'()*+,;=:@/?]{0,60})?";
const IRI_REFERENCE: &str = r"(?:[A-Za-z][A-Za-z0-9+.\-]{0,31}://(?:[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3}\.){0,4}[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3}(?::[0-9]{1,5})?)?(?:/[A-Za-z0-9._~\-!$&'()*+,;=]{1,64}){0,8}/?(?:\?[A-Za-z0-9._~\-!$&'()*+,;=:@/?]{0,60})?(?:#[A-Za-z0-9._~\-!$&'()*+,;=:@/?]{0,60})?";
// RFC 6570 templates without expressions: an IRI reference of the subset
// above without `'`, which template literals exclude.
const URI_TEMPLATE: &str = r"(?:[A-Za-z][A-Za-z0-9+.\-]{0,15}://(?:[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3}\.){0,4}[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3}(?::[0-9]{1,5})?)?(?:/[A-Za-z0-9._~\-!$&()*+,;=]{1,40}){0,8}/?(?:\?[A-Za-z0-9._~\-!$&()*+,;=:@/?]{0,60})?(?:#[A-Za-z0-9._~\-!$&()*+,;=:@/?]{0,60})?";
// RFC 6901, exactly (control characters left out).
const JSON_POINTER: &str = r"(?:/(?:[^/~\x00-\x1f]|~[01])*)*";
// A non-negative integer (up to 9 digits), then `#` or a JSON pointer.
const RELATIVE_JSON_POINTER: &str = r"(?:0|[1-9][0-9]{0,8})(?:#|(?:/(?:[^/~\x00-\x1f]|~[01])*)*)";
/// Regular expressions that Python's `re`, ECMAScript (unicode mode) and
/// Rust's `regex` all accept: literal characters, `.`, escaped
/// metacharacters, `\d \w \s` and their negations, classes of letters,
/// digits, `_`, space, ``, : ; = @ ! % < > / ' " #``, the ranges `a-z`,
/// `A-Z`, `0-9` and those escapes;
/// `* + ?`, `{n}`, `{n,}` (n < 100) and `{n,m}` (n ≤ m, n < 10, m < 100)
/// after an atom;
/// alternation; groups (plain or `(?:`) not nested; `^` first and `$`
/// last.
fn regex_subset() -> &'static str {
    static RE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        let literal = r##"[A-Za-z0-9 _,:;=@!%&<>/'"#~\-]"##;
        let escape = r"\\[.^$|?*+()\[\]{}\\dDwWsS]";
        // In a class, no `&`, `~` or `-` (doubled they are set operations
        // to Rust `regex`), no `[` (a nested set to Python).
        let class = r##"\[\^?(?:[A-Za-z0-9_ ,:;=@!%<>/'"#]|a-z|A-Z|0-9|\\[dws\].\\-])+\]"##;
        // `{n,m}` only with n ≤ m (else every flavor refuses it), n below
        // 10 and m below 100.
        let mut ranges: Vec<String> = Vec::new();
        for a in 0..10 {
            ranges.push(format!("{a},[{a}-9]"));
            ranges.push(format!("{a},[1-9][0-9]"));
        }
        let quant = format!(r"(?:[*+?]|\{{(?:[0-9]|[1-9][0-9]),?\}}|\{{(?:{})\}})", ranges.join("|"));
        let mut atom = format!("(?:{literal}|{escape}|{class}|\\.)");
        for _ in 0..1 {
            let alt = format!("(?:{atom}{quant}?)+(?:\\|(?:{atom}{quant}?)+)*");
            atom = format!("(?:{literal}|{escape}|{class}|\\.|\\((?:\\?:)?{alt}\\))");
        }
        format!("\\^?(?:(?:{atom}{quant}?)+(?:\\|(?:{atom}{quant}?)+)*)?\\$?")
    })
}

// Hostnames of the subset above in lowercase: IDNA 2008 disallows
// uppercase letters (they map), and the subset has no `xn--` label.
const IDN_HOSTNAME: &str = r"(?:[a-z0-9]{1,15}(?:-[a-z0-9]{1,15}){0,2}\.){0,4}[a-z0-9]{1,15}(?:-[a-z0-9]{1,15}){0,2}";

// Email: a dot-atom local part; domain labels of 1-35 characters, no
// leading, trailing or doubled hyphen, 2 to 5 labels, the last letters only.
const EMAIL: &str = r"[A-Za-z0-9](?:[A-Za-z0-9_+\-]|\.[A-Za-z0-9_+\-]){0,40}@(?:[A-Za-z0-9]{1,8}(?:-[A-Za-z0-9]{1,8}){0,3}\.){1,4}[A-Za-z]{2,10}";
// RFC 6531 addresses: a local part of up to 3 lowercase labels (boon reads
// it as an IDNA domain too), at most 59 characters, and the email subset's
// domain in lowercase (as `idn-hostname`: IDNA 2008 disallows uppercase).
const IDN_EMAIL: &str = r"[a-z0-9]{1,9}(?:-[a-z0-9]{1,9})?(?:\.[a-z0-9]{1,9}(?:-[a-z0-9]{1,9})?){0,2}@(?:[a-z0-9]{1,8}(?:-[a-z0-9]{1,8}){0,3}\.){1,4}[a-z]{2,10}";
// Hostnames: labels of 1-47 characters (up to three runs of 1-15 letters or
// digits joined by single hyphens: never a leading, trailing or doubled
// hyphen, so never an IDNA `xn--` label), at most 5 labels: at most 239
// characters, always a valid hostname (labels up to 63, 253 in all).
const HOSTNAME: &str =
    r"(?:[A-Za-z0-9]{1,15}(?:-[A-Za-z0-9]{1,15}){0,2}\.){0,4}[A-Za-z0-9]{1,15}(?:-[A-Za-z0-9]{1,15}){0,2}";
const IPV4: &str =
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}";
const IPV6: &str = r"(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|::|(?:[0-9a-fA-F]{1,4}:){1,7}:|:(?::[0-9a-fA-F]{1,4}){1,7}|(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}";
const UUID: &str = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const URI: &str = r"[A-Za-z][A-Za-z0-9+.\-]{0,31}:(?://(?:(?:[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3}\.){0,4}[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3})?(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~\-!$&'()*+,;=:@]{0,64}){0,8}|[A-Za-z0-9._~\-!$&'()*+,;=:@]{1,64}(?:/[A-Za-z0-9._~\-!$&'()*+,;=:@]{0,64}){0,8})(?:\?[A-Za-z0-9._~\-!$&'()*+,;=:@/?]{0,60})?(?:#[A-Za-z0-9._~\-!$&'()*+,;=:@/?]{0,60})?";
const URI_REFERENCE: &str = r"(?:(?:[A-Za-z][A-Za-z0-9+.\-]{0,31}://(?:[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3}\.){0,4}[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20}){0,3}(?::[0-9]{1,5})?)?(?:/[A-Za-z0-9._~\-!$&'()*+,;=]{0,64}){0,8}|[A-Za-z0-9._~\-!$&'()*+,;=@]{1,64}(?:/[A-Za-z0-9._~\-!$&'()*+,;=]{0,64}){0,8})(?:\?[A-Za-z0-9._~\-!$&'()*+,;=:@/?]{0,60})?(?:#[A-Za-z0-9._~\-!$&'()*+,;=:@/?]{0,60})?";

// RFC 3339 appendix A durations.
const DURATION: &str = r"P(?:(?:[0-9]{1,9}D|[0-9]{1,9}M(?:[0-9]{1,9}D)?|[0-9]{1,9}Y(?:[0-9]{1,9}M(?:[0-9]{1,9}D)?)?)(?:T(?:[0-9]{1,9}H(?:[0-9]{1,9}M(?:[0-9]{1,9}S)?)?|[0-9]{1,9}M(?:[0-9]{1,9}S)?|[0-9]{1,9}S))?|T(?:[0-9]{1,9}H(?:[0-9]{1,9}M(?:[0-9]{1,9}S)?)?|[0-9]{1,9}M(?:[0-9]{1,9}S)?|[0-9]{1,9}S)|[0-9]{1,9}W)";

// Calendar-exact dates: 29 February only in leap years.
const DATE: &str = r"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)";
const TIME: &str =
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+\-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
const DATE_TIME: &str = r"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+\-](?:[01][0-9]|2[0-3]):[0-5][0-9])";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automata::lexer::{compile_hir, parse};

    fn run(t: &TableDfa, s: &[u8]) -> bool {
        let mut st = 0usize;
        for &b in s {
            match t.ranges[st].iter().find(|r| r.0 <= b && b <= r.1) {
                Some(r) => st = r.2 as usize,
                None => return false,
            }
        }
        t.accept[st]
    }

    /// A key set as the regex DFA of its alternation and as [`Words`]: the
    /// two must give the same product.
    fn both(names: &[&str]) -> [Lang; 2] {
        let alt = names.iter().map(|n| regex_syntax::escape(n)).collect::<Vec<_>>().join("|");
        [
            compile_hir(&parse(&alt).unwrap(), 1 << 20).unwrap().into(),
            Lang::Words(Box::new(Words::new(names.iter().copied()))),
        ]
    }

    /// A table run as a plain DFA with its character marks.
    fn run_marked(r: &Ranges, acc: &[bool], s: &[u8]) -> (bool, Vec<bool>) {
        let mut st = 0usize;
        let mut marks = Vec::new();
        for &b in s {
            match r[st].iter().find(|x| x.0 <= b && b <= x.1) {
                Some(x) => {
                    st = x.2 as usize;
                    marks.push(x.3);
                }
                None => return (false, marks),
            }
        }
        (acc[st], marks)
    }

    /// Key sets built from their trie equal the product, on every string up
    /// to length 5 over an alphabet of quotes, escapes, word bytes and a
    /// two-byte character (and on the character marks); sets the direct
    /// path cannot take (a `/`, non-ASCII) are left to the product.
    #[test]
    fn key_sets_from_the_trie_equal_the_product() {
        let sets: [&[&str]; 5] = [&["ab", "a", "x"], &["", "b"], &["abc"], &[], &["u", "0", "n"]];
        let alphabet: Vec<&[u8]> =
            vec![b"\"", b"\\", b"a", b"b", b"c", b"x", b"u", b"0", b"1", b"n", "é".as_bytes(), &[0xC3], b"/"];
        let mut inputs: Vec<Vec<u8>> = vec![vec![]];
        let mut layer: Vec<Vec<u8>> = vec![vec![]];
        for _ in 0..5 {
            layer = layer.iter().flat_map(|w| alphabet.iter().map(move |c| [w.as_slice(), c].concat())).collect();
            inputs.extend(layer.iter().cloned());
        }
        for names in sets {
            for negate in [true, false] {
                let lang = || Lang::Words(Box::new(Words::new(names.iter().copied())));
                let spec = if negate {
                    StringSpec { must_not: vec![lang()], ..Default::default() }
                } else {
                    StringSpec { must: vec![lang()], ..Default::default() }
                };
                let (dr, da) = build_words(&spec).expect("plain words take the direct path");
                let (pr, pa) = build_product(&spec, true, 1 << 20).unwrap();
                assert!(da.len() <= pa.len() + 2, "{names:?}: {} states vs {}", da.len(), pa.len());
                for w in &inputs {
                    let q = [b"\"".as_slice(), w].concat();
                    // Same strings accepted, with the same character marks
                    // (the product may keep paths that cannot be completed;
                    // the grammar trims them).
                    let (d, p) = (run_marked(&dr, &da, &q), run_marked(&pr, &pa, &q));
                    assert_eq!(d.0, p.0, "{names:?} negate {negate} on {:?}", String::from_utf8_lossy(&q));
                    if d.0 {
                        assert_eq!(d.1, p.1, "{names:?} marks on {:?}", String::from_utf8_lossy(&q));
                    }
                }
            }
        }
        for names in [&["a/b"][..], &["é"]] {
            let spec = StringSpec {
                must_not: vec![Lang::Words(Box::new(Words::new(names.iter().copied())))],
                ..Default::default()
            };
            assert!(build_words(&spec).is_none(), "{names:?}");
        }
    }

    /// Cutting counted repetitions at a search pattern's ends finds the
    /// same strings as the pattern itself (every string over a small
    /// alphabet up to length 6), and makes the DFA smaller where it counts.
    #[test]
    fn search_trim_keeps_the_language() {
        let patterns = [
            "[A-Za-z0-9-_.:]{1,255}",
            "a{2,5}",
            "^a{2,5}",
            "a{2,5}$",
            "^a{2,5}$",
            "ba{1,3}",
            "a{1,3}b",
            "a{2,}b{1,3}a",
            "(a{1,4}|b{2,3})",
            "(?:ab){1,3}",
            "a*b",
            "ba?",
            "\\bab{1,2}",
            "x{0,3}",
            "^(a|b{1,2})c{2,4}$",
            "[ab]{3}",
            "a(bc)?(x|b*)",
            "(a?|b)c(b(a|x)?)?",
            "(ab)?(c|$)",
            "(b|^)a(x*b)?",
            "a?b?",
            "(a(b)?)?c(x?)(a|b?)",
            "ca(bc)?$",
        ];
        let alphabet = [b'a', b'b', b'c', b'x', b' '];
        let mut inputs: Vec<Vec<u8>> = vec![vec![]];
        let mut layer: Vec<Vec<u8>> = vec![vec![]];
        for _ in 0..6 {
            layer = layer.iter().flat_map(|w| alphabet.iter().map(move |&c| [w.as_slice(), &[c]].concat())).collect();
            inputs.extend(layer.iter().cloned());
        }
        for p in patterns {
            let t = translate_ecma(p, Reading::Under).unwrap();
            let plain = compile_hir(&parse(&format!("(?s:.)*(?:{t})(?s:.)*")).unwrap(), 1 << 22).unwrap();
            let trimmed = compile_hir(&ecma_search(p, Reading::Under).unwrap(), 1 << 22).unwrap();
            for w in &inputs {
                assert_eq!(
                    crate::automata::lexer::dfa_matches(&plain, w),
                    crate::automata::lexer::dfa_matches(&trimmed, w),
                    "{p} on {:?}",
                    String::from_utf8_lossy(w)
                );
            }
        }
        let t = translate_ecma(patterns[0], Reading::Under).unwrap();
        let plain = compile_hir(&parse(&format!("(?s:.)*(?:{t})(?s:.)*")).unwrap(), 1 << 24).unwrap();
        let trimmed = compile_hir(&ecma_search(patterns[0], Reading::Under).unwrap(), 1 << 24).unwrap();
        assert!(
            trimmed.memory_usage() * 10 < plain.memory_usage(),
            "{} vs {}",
            trimmed.memory_usage(),
            plain.memory_usage()
        );
    }

    #[test]
    fn key_exclusion_sees_through_escapes() {
        for names in both(&["ab", "a", "x"]) {
            let kind = format!("{names:?}").chars().take(5).collect::<String>();
            let spec = StringSpec { must_not: vec![names], ..Default::default() };
            let t = build(&spec, 10_000).unwrap();
            for (s, want) in [
                (r#""ab""#, false),
                (r#""a""#, false),
                (r#""x""#, false),
                (r#""""#, true),
                (r#""abc""#, true),
                (r#""b""#, true),
                (r#""a\"""#, true),
                (r#""\n""#, true),
                (r#""\u001f""#, true),
                (r#""\u0061""#, false), // not in the constrained output format
                (r#""é""#, true),
            ] {
                assert_eq!(run(&t, s.as_bytes()), want, "{kind}: {s}");
            }
        }
        // Names holding control characters: `\u` escapes are read ahead only
        // when every control character moves the DFAs alike.
        for names in both(&["a\x01b", "a\x02", "\x1f"]) {
            let kind = format!("{names:?}").chars().take(5).collect::<String>();
            let spec = StringSpec { must_not: vec![names], ..Default::default() };
            let t = build(&spec, 10_000).unwrap();
            for (s, want) in [
                (r#""a\u0001b""#, false),
                (r#""a\u0002""#, false),
                (r#""\u001f""#, false),
                (r#""\u001F""#, false),
                (r#""a\u0002b""#, true),
                (r#""a\u0001""#, true),
                (r#""\u001e""#, true),
                (r#""b\u0001b""#, true),
                (r#""ab""#, true),
            ] {
                assert_eq!(run(&t, s.as_bytes()), want, "{kind}: {s}");
            }
        }
        // A required pattern that no control character can continue.
        let spec = StringSpec {
            must: vec![compile_hir(&parse("a[a-z]*").unwrap(), 1 << 20).unwrap().into()],
            ..Default::default()
        };
        let t = build(&spec, 10_000).unwrap();
        assert!(run(&t, br#""abc""#));
        assert!(!run(&t, br#""a\u0001""#));
        assert!(!run(&t, br#""a\u00""#));
    }

    #[test]
    fn lengths_count_decoded_characters() {
        let spec = StringSpec { min_len: 2, max_len: Some(3), ..Default::default() };
        let t = build(&spec, 10_000).unwrap();
        for (s, want) in [
            (r#""a""#, false),
            (r#""ab""#, true),
            ("\"é😀\"", true),
            (r#""\n\t\"""#, true),
            (r#""abcd""#, false),
            (r#""\u0001\u0002""#, true),
        ] {
            assert_eq!(run(&t, s.as_bytes()), want, "{s}");
        }
    }

    #[test]
    fn leading_lookaheads_are_languages() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (r"^(?!org\.bukkit\.)[a-z.]+$", &["com.x", "org.bukkitx", "org.bukki"], &["org.bukkit.x", "Org"]),
            (r"^(?=[^=]+$)(?!\s+$)(.|\n)+$", &["a b", "x\ny"], &["a=b", "   ", ""]),
            (r"^(?=.*\d)(?=.*[a-z]).{8,}$", &["abcdefg1", "1a345678"], &["abcdefgh", "12345678", "a1"]),
            (r"^(?![)(])", &["x)", ""], &[")x", "("]),
            (r"^(?!pattern$).*$", &["patterns", "x", ""], &["pattern"]),
            (r"^(?=a)(?=ab)", &["abc"], &["acb", "b"]),
        ];
        for (p, yes, no) in cases {
            let (must, must_not) = ecma_pattern(p, Reading::Under).unwrap();
            let compile = |h: &regex_syntax::hir::Hir| Lang::from(compile_hir(h, 1 << 22).unwrap());
            let spec = StringSpec {
                must: must.iter().map(compile).collect(),
                must_not: must_not.iter().map(compile).collect(),
                ..Default::default()
            };
            let table = build(&spec, 100_000).unwrap();
            let lit = |s: &str| serde_json::to_string(s).unwrap();
            for y in *yes {
                assert!(run(&table, lit(y).as_bytes()), "{p} should match {y:?}");
            }
            for n in *no {
                assert!(!run(&table, lit(n).as_bytes()), "{p} should not match {n:?}");
            }
        }
        // Refused: lookaround past the opening, a `|` the lookahead would
        // bind to one branch of, any under the reading of a negation.
        for p in [r"^a(?!b)", r"^(?!a)b|c", r"(?!a)b", r"^(?<!a)b"] {
            assert!(ecma_pattern(p, Reading::Under).is_err(), "{p}");
        }
        assert!(ecma_pattern(r"^(?!a)b", Reading::Over).is_err());
        assert!(ecma_pattern(r"^(?!a)(b|c)", Reading::Under).is_ok());
    }

    #[test]
    fn ecma_translation() {
        for (p, yes, no) in [
            (r"^\d{3}$", "123", "12a"),
            (r"^[\w.-]+$", "a.b-c_1", "a b"),
            (r"^a.c$", "abc", "a\nc"),
            (r"\/x", "/x", "x"),
            (r"^[^]$", "\n", ""),
        ] {
            let t = translate_ecma(p, Reading::Under).unwrap();
            let dfa = compile_hir(&parse(&format!("(?s:.)*(?:{t})(?s:.)*")).unwrap(), 1 << 22).unwrap();
            let spec = StringSpec { must: vec![dfa.into()], ..Default::default() };
            let table = build(&spec, 100_000).unwrap();
            let lit = |s: &str| serde_json::to_string(s).unwrap();
            assert!(run(&table, lit(yes).as_bytes()), "{p} -> {t} should match {yes:?}");
            assert!(!run(&table, lit(no).as_bytes()), "{p} -> {t} should not match {no:?}");
        }
        // Classes by ECMA's rules, and `\s` read both ways.
        let cases: &[(&str, Reading, &[&str], &[&str])] = &[
            ("^[\"-\\-]$", Reading::Under, &["\"", "#", "-"], &[">", ".", "a"]),
            ("^[a-]$", Reading::Under, &["a", "-"], &["b"]),
            ("^[-a]$", Reading::Under, &["a", "-"], &["b"]),
            ("^[\\d-x]$", Reading::Under, &["5", "-", "x"], &["a"]),
            ("^[a&b~]$", Reading::Under, &["a", "&", "b", "~"], &["c"]),
            ("^[\\--/]$", Reading::Under, &["-", ".", "/"], &["a", ","]),
            ("^[\\[a]$", Reading::Under, &["[", "a"], &["]"]),
            ("^[^]$", Reading::Under, &["\n", "x"], &[""]),
            ("^\\s$", Reading::Under, &[" ", "\t", "\u{2003}"], &["\u{1680}", "\u{3000}", "\u{feff}", "a"]),
            ("^\\s$", Reading::Over, &[" ", "\u{1680}", "\u{3000}", "\u{feff}", "\u{85}"], &["a"]),
            ("^[^\\s]$", Reading::Under, &["a"], &[" ", "\u{1680}", "\u{feff}"]),
            ("^\\S$", Reading::Under, &["a"], &[" ", "\u{1680}", "\u{feff}", "\u{85}"]),
            ("^\\S$", Reading::Over, &["a", "\u{1680}"], &[" ", "\u{2003}"]),
            ("^[\\S]$", Reading::Under, &["a"], &[" ", "\u{3000}"]),
            ("^a{2}}$", Reading::Under, &["aa}"], &["a}"]),
        ];
        for &(p, reading, yes, no) in cases {
            let t = translate_ecma(p, reading).unwrap();
            let dfa = compile_hir(&parse(&format!("(?:{t})")).unwrap(), 1 << 22).unwrap();
            for y in yes {
                assert!(
                    crate::automata::lexer::dfa_matches(&dfa, y.as_bytes()),
                    "{p} ({reading:?}) -> {t} should match {y:?}"
                );
            }
            for n in no {
                assert!(
                    !crate::automata::lexer::dfa_matches(&dfa, n.as_bytes()),
                    "{p} ({reading:?}) -> {t} should not match {n:?}"
                );
            }
        }
        for bad in [
            r"(?=a)",
            r"(a)\1",
            r"(?<!a)b",
            r"[a",
            r"[z-a]",
            "[\"--\u{ad}]",
            r"[a&&b]",
            r"[a~~b]",
            r"[--/]",
            r"[[a]",
            r"^.+\<.+@.+\>$",
        ] {
            assert!(translate_ecma(bad, Reading::Under).is_err(), "{bad}");
        }
    }
}

/// `format_superset` against the validators themselves: strings near
/// valid ones (random edits of seeds) that `jsonschema` or `boon` accepts
/// as the format must match the superset.
#[cfg(test)]
mod superset_tests {
    use super::*;

    fn accepted(format: &str, s: &str) -> bool {
        let schema = serde_json::json!({ "type": "string", "format": format });
        let v = serde_json::Value::String(s.to_string());
        let rs = jsonschema::options().should_validate_formats(true).build(&schema).unwrap().is_valid(&v);
        let mut c = boon::Compiler::new();
        c.enable_format_assertions();
        c.add_resource("http://grammask.invalid/f.json", schema).unwrap();
        let mut all = boon::Schemas::new();
        let idx = c.compile("http://grammask.invalid/f.json", &mut all).unwrap();
        rs || all.validate(&v, idx).is_ok()
    }

    #[test]
    fn supersets_hold_every_accepted_value() {
        let seeds: &[(&str, &[&str])] = &[
            ("date", &["2024-02-29", "1999-12-31", "+999-01-01"]),
            ("time", &["23:59:60Z", "08:30:00.25+05:30", "00:00:00z"]),
            ("date-time", &["2024-02-29T23:59:59Z", "1999-12-31t08:30:00.5-01:00"]),
            ("ipv4", &["192.168.0.1", "0.0.0.0", "255.255.255.255"]),
            ("ipv6", &["::1", "fe80::1:2", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8"]),
            ("uuid", &["123e4567-e89b-12d3-a456-426614174000", "ABCDEF01-2345-6789-ABCD-EF0123456789"]),
            ("hostname", &["example.com", "a-b.c.", "xn--nxasmq6b.com", "localhost"]),
            ("email", &["a@b.co", "\"x y\"@example.com", "a.b+c@[1.2.3.4]"]),
            ("uri", &["http://a.b/c?d#e", "urn:isbn:0451450523", "mailto:a@b.c", "x:"]),
            ("json-pointer", &["", "/a~0b/~1", "/ x/\u{7f}"]),
        ];
        let alphabet: Vec<char> = "0123456789+-:.TtZz aAfF{}urnid@/%~x[]\"é_".chars().collect();
        // A small generator of its own (the automata layer imports nothing above it).
        struct Lcg(u64);
        impl Lcg {
            fn below(&mut self, n: usize) -> usize {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((self.0 >> 33) % n as u64) as usize
            }
        }
        let mut rng = Lcg(5);
        let (mut checked, mut held) = (0, 0);
        for (format, examples) in seeds {
            let re = format_superset(format).unwrap();
            let dfa =
                crate::automata::lexer::compile_hir(&crate::automata::lexer::parse(re).unwrap(), 1 << 24).unwrap();
            for seed in *examples {
                assert!(accepted(format, seed), "{format}: seed {seed:?} is not valid");
                assert!(crate::automata::lexer::dfa_matches(&dfa, seed.as_bytes()), "{format}: seed {seed:?}");
                for _ in 0..400 {
                    let mut s: Vec<char> = seed.chars().collect();
                    for _ in 0..1 + rng.below(3) {
                        let i = rng.below(s.len() + 1);
                        let c = alphabet[rng.below(alphabet.len())];
                        match rng.below(3) {
                            0 => s.insert(i, c),
                            1 if i < s.len() => s[i] = c,
                            _ if i < s.len() => {
                                s.remove(i);
                            }
                            _ => s.push(c),
                        }
                    }
                    let s: String = s.into_iter().collect();
                    if accepted(format, &s) {
                        checked += 1;
                        assert!(
                            crate::automata::lexer::dfa_matches(&dfa, s.as_bytes()),
                            "{format}: {s:?} is accepted by a validator but outside the superset"
                        );
                    } else {
                        held += 1;
                    }
                }
            }
        }
        assert!(checked > 1000 && held > 1000, "{checked} accepted, {held} refused");
    }
}
