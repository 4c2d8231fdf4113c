//! Run-time `uniqueItems` for items that are objects, arrays or strings
//! (any JSON value but a number), compared as values.
//!
//! Such an item always ends on a byte that returns from its machine at
//! once: `}`, `]` or `"` (a number would end only at the byte after it,
//! inside the array's own machine, so numbers are refused at compile
//! time). Right after such a byte, a configuration standing in the array's
//! own machine has just finished an item; it survives only if the item's
//! value differs from every earlier item's. The items are read back from
//! the end of the text: at the array's level the text is whitespace,
//! commas and complete values back to the `[`, and reading backwards a
//! `"` outside a string always ends one (its opening quote is the nearest
//! unescaped quote before it), so brackets can be matched without a
//! forward parse.
//!
//! Values are compared as the validators compare them: objects by their
//! members whatever the order (a repeated key: the last one counts, as a
//! JSON parser keeps it), strings by their decoded UTF-16 units, numbers
//! by their value as a double (`1`, `1.0` and `1e0` are one value; two
//! numbers a double cannot tell apart count as equal, which may refuse a
//! valid array but never lets a repeat through), `true` never equal to
//! `1`.
//!
//! Liveness needs nothing at run time: only arrays whose items are
//! *open-ended* compile this way (objects that accept further keys without
//! bound, free strings): every prefix of an item goes on to infinitely
//! many values, so no open item and no new item after a comma is ever
//! forced into a repeat.

use std::sync::Arc;

use super::{decode, is_ws, prev_quote, Text, Units};

/// A JSON value in a form where equal values (as `uniqueItems` compares
/// them) are equal Rust values.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Canon {
    Null,
    False,
    True,
    /// The bits of the value as a double, `-0` read as `0`.
    Num(u64),
    Str(Units),
    Arr(Vec<Canon>),
    /// Members sorted by key, one per key (the last written).
    Obj(Vec<(Units, Canon)>),
}

/// Deepest nesting [`parse`] reads (deeper items are refused as repeats).
pub(crate) const MAX_DEPTH: usize = 256;

/// The value of the complete JSON text `b` (whitespace around allowed);
/// `None` when it is not one, or nests past [`MAX_DEPTH`].
pub(crate) fn parse(b: &[u8]) -> Option<Canon> {
    let mut i = 0;
    let v = value(b, &mut i, 0)?;
    skip_ws(b, &mut i);
    (i == b.len()).then_some(v)
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && is_ws(b[*i]) {
        *i += 1;
    }
}

fn string(b: &[u8], i: &mut usize) -> Option<Units> {
    // At the opening quote; the closing one is the first unescaped quote.
    let start = *i + 1;
    let mut j = start;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => {
                let (u, pending) = decode(&b[start..j]);
                *i = j + 1;
                return (!pending).then_some(u);
            }
            _ => j += 1,
        }
    }
    None
}

fn value(b: &[u8], i: &mut usize, depth: usize) -> Option<Canon> {
    if depth > MAX_DEPTH {
        return None;
    }
    skip_ws(b, i);
    let c = *b.get(*i)?;
    match c {
        b'"' => string(b, i).map(Canon::Str),
        b'{' => {
            *i += 1;
            let mut members: Vec<(Units, Canon)> = Vec::new();
            skip_ws(b, i);
            if b.get(*i) == Some(&b'}') {
                *i += 1;
                return Some(Canon::Obj(members));
            }
            loop {
                skip_ws(b, i);
                if b.get(*i) != Some(&b'"') {
                    return None;
                }
                let k = string(b, i)?;
                skip_ws(b, i);
                if b.get(*i) != Some(&b':') {
                    return None;
                }
                *i += 1;
                let v = value(b, i, depth + 1)?;
                // The last of a repeated key counts.
                members.retain(|(x, _)| *x != k);
                members.push((k, v));
                skip_ws(b, i);
                match b.get(*i)? {
                    b',' => *i += 1,
                    b'}' => {
                        *i += 1;
                        members.sort_unstable();
                        return Some(Canon::Obj(members));
                    }
                    _ => return None,
                }
            }
        }
        b'[' => {
            *i += 1;
            let mut items = Vec::new();
            skip_ws(b, i);
            if b.get(*i) == Some(&b']') {
                *i += 1;
                return Some(Canon::Arr(items));
            }
            loop {
                items.push(value(b, i, depth + 1)?);
                skip_ws(b, i);
                match b.get(*i)? {
                    b',' => *i += 1,
                    b']' => {
                        *i += 1;
                        return Some(Canon::Arr(items));
                    }
                    _ => return None,
                }
            }
        }
        _ => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E') {
                *i += 1;
            }
            match &b[start..*i] {
                b"null" => Some(Canon::Null),
                b"true" => Some(Canon::True),
                b"false" => Some(Canon::False),
                n => {
                    let f: f64 = std::str::from_utf8(n).ok()?.parse().ok()?;
                    Some(Canon::Num(if f == 0.0 { 0 } else { f.to_bits() }))
                }
            }
        }
    }
}

/// Where the complete value ending at `end` (at the array's level) starts:
/// brackets matched backwards, strings skipped whole.
fn value_start(t: &Text, end: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = end;
    loop {
        if j == 0 {
            return None;
        }
        j -= 1;
        match t.at(j) {
            b'"' => {
                j = prev_quote(t, j)?;
                if depth == 0 {
                    return Some(j);
                }
            }
            b'}' | b']' => depth += 1,
            b'{' | b'[' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(j);
                }
            }
            // A literal or a number: back to its first byte.
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E' if depth == 0 => {
                while j > 0 && matches!(t.at(j - 1), b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E') {
                    j -= 1;
                }
                return Some(j);
            }
            _ => {}
        }
    }
}

/// Finished item lists already read, by the array-level position in the
/// accepted output they end at (see [`super::Memo`]); and where the text
/// stands, read forwards from a position known to be at the level of an
/// array of values (see [`Lex`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct Memo {
    map: ahash::AHashMap<usize, Known>,
    /// The latest array-level position seen in the accepted output.
    level: Option<usize>,
    /// The text read from `level` up to a position.
    lex: Option<(usize, Lex)>,
}

impl Memo {
    pub fn truncate(&mut self, len: usize) {
        self.map.retain(|&k, _| k <= len);
        if self.level.is_some_and(|p| p > len) {
            self.level = None;
        }
        if self.lex.as_ref().is_some_and(|(p, _)| *p > len) {
            self.lex = None;
        }
    }

    /// Notes that the accepted output `head` ends at the level of an array
    /// of values.
    pub fn at_level(&mut self, len: usize) {
        if self.level != Some(len) {
            self.level = Some(len);
            self.lex = Some((len, Lex::default()));
        }
    }

    /// The text's nesting at the end of `head`, read from the latest
    /// array-level position; `None` when none is known or the text left
    /// that array.
    pub fn lex(&mut self, head: &[u8]) -> Option<Lex> {
        let (from, mut lex) = self.lex.clone()?;
        for &b in &head[from..] {
            if lex.read(b) == Read::Left {
                self.lex = None;
                return None;
            }
        }
        self.lex = Some((head.len(), lex.clone()));
        Some(lex)
    }
}

/// The nesting of a text read from the level of an array: the containers
/// opened since (`[` or `{`), whether a string is open and an escape
/// pending in it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Lex {
    open: Vec<u8>,
    in_string: bool,
    escaped: bool,
}

/// What a byte did to a [`Lex`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Read {
    /// Nothing that matters.
    Inside,
    /// Finished a value directly inside an array (an item of the starting
    /// array, or of one opened since).
    Item,
    /// Closed the starting array.
    Left,
}

impl Lex {
    pub fn read(&mut self, b: u8) -> Read {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
                return self.finished();
            }
            return Read::Inside;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.open.push(b),
            b'}' | b']' => {
                if self.open.pop().is_none() {
                    return Read::Left;
                }
                return self.finished();
            }
            _ => {}
        }
        Read::Inside
    }
    /// A value just finished: is its container an array? (The starting
    /// level is one.)
    fn finished(&self) -> Read {
        match self.open.last() {
            None | Some(b'[') => Read::Item,
            _ => Read::Inside,
        }
    }
    /// Whether `bytes` read from here finish no value directly inside an
    /// array and leave no array: no item of an array of values can close
    /// within them.
    pub fn closes_nothing(&self, bytes: &[u8]) -> bool {
        let mut l = self.clone();
        bytes.iter().all(|&b| l.read(b) == Read::Inside)
    }
}

/// Finished items: those remembered, those read now (latest first).
pub(crate) type Finished = (Known, Vec<Canon>);

/// Finished items remembered: a list, latest first, shared by every memo
/// entry of the array (so an array of `n` items holds `n` nodes, not `n²/2`
/// items), with a sorted copy of all items so far every [`SNAPSHOT`] nodes
/// (a lookup reads at most that many nodes, then searches the copy).
pub(crate) type Known = Option<Arc<Node>>;

/// Items between two sorted copies.
const SNAPSHOT: usize = 64;

#[derive(Debug)]
pub(crate) struct Node {
    item: Canon,
    prev: Known,
    len: usize,
    /// This item and all before, sorted (every [`SNAPSHOT`] nodes).
    sorted: Option<Arc<Vec<Canon>>>,
}

impl Node {
    /// `known` with `item` after it.
    fn push(known: Known, item: Canon) -> Arc<Node> {
        let len = known.as_ref().map_or(0, |k| k.len) + 1;
        let sorted = (len % SNAPSHOT == 0).then(|| {
            let mut all = vec![item.clone()];
            let mut k = known.as_deref();
            while let Some(n) = k {
                if let Some(s) = &n.sorted {
                    all.extend(s.iter().cloned());
                    break;
                }
                all.push(n.item.clone());
                k = n.prev.as_deref();
            }
            all.sort_unstable();
            all.dedup();
            Arc::new(all)
        });
        Arc::new(Node { item, prev: known, len, sorted })
    }
}

/// Whether `known` holds `v`.
fn holds(known: &Known, v: &Canon) -> bool {
    let mut k = known.as_deref();
    while let Some(n) = k {
        if let Some(s) = &n.sorted {
            return s.binary_search(v).is_ok();
        }
        if n.item == *v {
            return true;
        }
        k = n.prev.as_deref();
    }
    false
}

/// `known` with the items `newest_first` after it, oldest first.
fn extended(mut known: Known, newest_first: &[Canon]) -> Known {
    for item in newest_first.iter().rev() {
        known = Some(Node::push(known, item.clone()));
    }
    known
}

/// The finished items of the array around the end of `t` (which stands at
/// the array's level): those remembered, and those read now (latest
/// first). `None` when the text does not read as such an array.
pub(crate) fn scan(t: &Text, memo: &mut Memo) -> Option<Finished> {
    let mut i = t.len();
    let mut fresh: Vec<Canon> = Vec::new();
    let mut known = None;
    let mut entry: Option<(usize, usize)> = None;
    loop {
        while i > 0 && is_ws(t.at(i - 1)) {
            i -= 1;
        }
        if i <= t.head.len() {
            if let Some(k) = memo.map.get(&i).cloned() {
                if let Some((at, from)) = entry.filter(|&(at, _)| at != i) {
                    memo.map.insert(at, extended(k.clone(), &fresh[from..]));
                }
                known = k;
                break;
            }
            entry.get_or_insert((i, fresh.len()));
        }
        if i == 0 {
            return None;
        }
        match t.at(i - 1) {
            b'[' => {
                if let Some((at, from)) = entry {
                    memo.map.insert(at, extended(None, &fresh[from..]));
                }
                break;
            }
            b',' => i -= 1,
            _ => {
                let start = value_start(t, i)?;
                fresh.push(parse(&t.bytes(start, i))?);
                i = start;
            }
        }
    }
    Some((known, fresh))
}

/// Whether the item that ends `t` (which has just closed it, at the
/// array's level) repeats an earlier item of its array. A text that does
/// not read back as such an array counts as a repeat (refused).
pub(crate) fn last_repeats(t: &Text, memo: &mut Memo) -> bool {
    let Some((known, fresh)) = scan(t, memo) else { return true };
    match fresh.split_first() {
        Some((last, rest)) => rest.contains(last) || holds(&known, last),
        // The memo already covers the whole text: the item was read (and
        // let through) before.
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        parse(a.as_bytes()).expect(a) == parse(b.as_bytes()).expect(b)
    }

    #[test]
    fn equal_as_the_validators_compare() {
        assert!(same(r#"{"a":1,"b":[true,null]}"#, r#" { "b" : [ true , null ] , "a" : 1.0 } "#));
        assert!(same(r#"{"a":1,"a":2}"#, r#"{"a":2}"#));
        assert!(same(r#""\u0061\ud83d\ude00""#, "\"a\u{1F600}\""));
        assert!(same("[1e2, -0]", "[100, 0]"));
        assert!(!same("[1, 2]", "[2, 1]"));
        assert!(!same("true", "1"));
        assert!(!same("{}", "[]"));
        assert!(!same(r#"{"a":"1"}"#, r#"{"a":1}"#));
        assert!(!same(r#"{"a":1,"a":2}"#, r#"{"a":1}"#));
        assert!(parse(b"{\"a\":").is_none());
        assert!(parse(&[b'['; MAX_DEPTH + 2]).is_none());
    }

    #[test]
    fn remembered_items_are_found_past_the_sorted_copies() {
        let item = |i: usize| parse(format!("{{\"n\":{i}}}").as_bytes()).expect("object");
        let items: Vec<Canon> = (0..3 * SNAPSHOT + 5).map(item).collect();
        let newest_first: Vec<Canon> = items.iter().rev().cloned().collect();
        // Built in two steps, as the memo grows.
        let half = extended(None, &newest_first[newest_first.len() / 2..]);
        let known = extended(half, &newest_first[..newest_first.len() / 2]);
        assert_eq!(known.as_ref().map(|k| k.len), Some(items.len()));
        assert!(items.iter().all(|v| holds(&known, v)));
        assert!(!holds(&known, &item(items.len())));
        assert!(!holds(&None, &item(0)));
    }

    #[test]
    fn items_read_back_from_the_end() {
        let text = br#"{"x": [ {"a": "]}\"[{"}, "s\"", [1, [2]] , {"b":{}} ,{ "a" : "]}\"[{" }"#;
        let t = Text { head: text, tail: &[] };
        let mut memo = Memo::default();
        let (known, fresh) = scan(&t, &mut memo).expect("reads");
        assert!(known.is_none());
        assert_eq!(fresh.len(), 5);
        assert!(last_repeats(&t, &mut Memo::default()));
        // Remembered: a longer text reads only its new items.
        let longer = [&text[..], br#", "t""#].concat();
        let t2 = Text { head: &longer, tail: &[] };
        let (known, fresh) = scan(&t2, &mut memo).expect("reads");
        assert_eq!((known.map(|k| k.len), fresh.len()), (Some(5), 1));
        assert!(!last_repeats(&t2, &mut memo));
    }
}
