//! Run-time `uniqueItems` for arrays of strings (arrays of other values:
//! [`values`]).
//!
//! No context-free grammar can say "no two items are equal", so a
//! `uniqueItems` array whose items are strings compiles as a plain array
//! machine marked [`Unique`] (its items always called, never inlined), and
//! the matcher checks the rest against the text it has accepted:
//!
//! - **Duplicates.** Right after a byte `"` that leaves a configuration in
//!   the array's own machine, that quote closed an item; the configuration
//!   survives only if the item's decoded value differs from every earlier
//!   item of the same array. Items are found by reading the text backwards
//!   from the end: at the array's level the text is whitespace, commas and
//!   complete JSON strings back to the `[`, and a string's opening quote is
//!   the nearest quote before its closing one not escaped by an odd run of
//!   backslashes, so the reading is unambiguous.
//! - **Liveness.** A token may leave an open item whose every completion
//!   repeats an earlier item (`"a` when the items are `"a"` or `"ab"` and
//!   both are taken), or a comma when every value the items may take is
//!   used. At the end of a token, such a configuration survives only if a
//!   short search over the grammar finds a way on: the open item's decoded
//!   text stops being a prefix of every earlier item, an item closes as a
//!   new value, or the array closes. Open-ended items (free strings,
//!   search patterns not anchored at the start: every prefix goes on to
//!   infinitely many values) need no search, and when the items' values
//!   are known (an `enum` of strings) it is set arithmetic. The search is
//!   bounded ([`SEARCH_STEPS`]); past it the configuration is kept (a
//!   repeat is still refused where it closes).
//!
//! Values are compared as UTF-16 code units, as the validators compare
//! decoded strings (`"\u0061"` equals `"a"`; an escaped surrogate pair
//! equals the character). Masks stay exact: [`plan`] lists the tokens
//! whose answer the check may change (two quotes, or a quote or backslash
//! once an item is finished; tokens spelling the rest of a finished item
//! the open one is a prefix of; every token between items when the items
//! have few values; tokens with `[` and two quotes), and the matcher
//! decides those token by token, most by reading the text alone
//! ([`View::decide`]), the rest byte by byte; every other token leaves the
//! items as the grammar alone would.

use crate::grammar::{Grammar, Unique};
use crate::runtime::{step, Config, Stacks, StepFlags, BASE, EMPTY};

pub(crate) mod values;

/// Most grammar steps one liveness search may take.
pub(crate) const SEARCH_STEPS: usize = 4096;

/// Where a configuration stands towards a `uniqueItems` array.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Place<'g> {
    /// In no such array.
    Outside,
    /// In the array's own machine: right after `[`, between items, or
    /// right after an item's closing quote.
    Array(&'g Unique),
    /// Inside an item (its string is open).
    Item(&'g Unique),
}

/// Where `c` stands: towards the innermost `uniqueItems` array on its
/// stack (an array of strings holds no other; an item of an array of
/// values may hold one, which then decides).
pub(crate) fn place<'g>(g: &'g Grammar, stacks: &Stacks, c: Config) -> Place<'g> {
    if g.unique.is_empty() {
        return Place::Outside;
    }
    if let Some(u) = g.unique_of(c.state) {
        return Place::Array(u);
    }
    let mut k = c.stack;
    while k != EMPTY && k != BASE {
        let (r, p) = stacks.get(k);
        if let Some(u) = g.unique_of(r) {
            return Place::Item(u);
        }
        k = p;
    }
    Place::Outside
}

/// The output so far followed by bytes being tried.
#[derive(Clone, Copy)]
pub(crate) struct Text<'a> {
    pub head: &'a [u8],
    pub tail: &'a [u8],
}

impl Text<'_> {
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
    pub(crate) fn at(&self, i: usize) -> u8 {
        if i < self.head.len() {
            self.head[i]
        } else {
            self.tail[i - self.head.len()]
        }
    }
    pub(crate) fn bytes(&self, a: usize, z: usize) -> Vec<u8> {
        (a..z).map(|i| self.at(i)).collect()
    }
}

/// A decoded string value.
pub(crate) type Units = Vec<u16>;

/// The finished items of one array: those read before (sorted, shared
/// with the [`Memo`]) and those read now (latest first).
#[derive(Clone, Debug, Default)]
pub(crate) struct Finished {
    known: Option<std::sync::Arc<Vec<Units>>>,
    fresh: Vec<Units>,
}

impl Finished {
    pub fn is_empty(&self) -> bool {
        self.fresh.is_empty() && self.known.as_ref().is_none_or(|k| k.is_empty())
    }
    pub fn contains(&self, v: &[u16]) -> bool {
        self.fresh.iter().any(|f| f.as_slice() == v)
            || self.known.as_ref().is_some_and(|k| k.binary_search_by(|x| x.as_slice().cmp(v)).is_ok())
    }
    /// The items that start with `p`.
    pub fn with_prefix<'s>(&'s self, p: &'s [u16]) -> impl Iterator<Item = &'s Units> + 's {
        let known: &[Units] = self.known.as_deref().map_or(&[], |k| k.as_slice());
        let from = known.partition_point(|v| v.as_slice() < p);
        known[from..]
            .iter()
            .take_while(move |v| v.starts_with(p))
            .chain(self.fresh.iter().filter(move |v| v.starts_with(p)))
    }
    /// Whether the latest item (read now) repeats an earlier one.
    fn last_repeats(&self) -> bool {
        match self.fresh.split_first() {
            Some((last, rest)) => {
                rest.contains(last) || self.known.as_ref().is_some_and(|k| k.binary_search(last).is_ok())
            }
            None => false,
        }
    }
    /// The items from the `from`-th read now on, with the known ones, sorted.
    fn sorted_from(&self, from: usize) -> std::sync::Arc<Vec<Units>> {
        let mut all: Vec<Units> = self.fresh[from..].to_vec();
        if let Some(k) = &self.known {
            all.extend(k.iter().cloned());
        }
        all.sort_unstable();
        all.dedup();
        std::sync::Arc::new(all)
    }
}

/// The items of the array around the end of a text.
#[derive(Clone, Debug, Default)]
pub(crate) struct Items {
    /// Finished items.
    pub finished: Finished,
    /// The open item's raw content (after its opening quote), when the
    /// text ends inside one.
    pub open: Option<Vec<u8>>,
    /// The last byte at the array's level, whitespace skipped (`[`, `,`
    /// or an item's closing `"`); `0` inside an item.
    pub last: u8,
}

/// Finished item lists already read, by the end of the text they cover
/// (an array-level position in the accepted output): the scan of an array
/// stops at the first one it meets. Entries past a rollback are dropped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Memo {
    map: ahash::AHashMap<usize, std::sync::Arc<Vec<Units>>>,
    /// The same for arrays of values ([`values`]).
    values: values::Memo,
}

impl Memo {
    pub fn truncate(&mut self, len: usize) {
        self.map.retain(|&k, _| k <= len);
        self.values.truncate(len);
    }
    /// Notes that the accepted output of length `len` ends at the level of
    /// an array of values.
    pub fn at_values_level(&mut self, len: usize) {
        self.values.at_level(len);
    }
}

/// Whether some configuration of `cs` stands at the level of an array of
/// values.
pub(crate) fn at_values_level(g: &Grammar, cs: &[Config]) -> bool {
    cs.iter().any(|&c| g.unique_of(c.state).is_some_and(|u| u.closers.is_some()))
}

pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The nearest unescaped quote before `end`.
pub(crate) fn prev_quote(t: &Text, end: usize) -> Option<usize> {
    let mut j = end;
    while j > 0 {
        j -= 1;
        if t.at(j) == b'"' {
            let mut k = j;
            while k > 0 && t.at(k - 1) == b'\\' {
                k -= 1;
            }
            if (j - k) % 2 == 0 {
                return Some(j);
            }
        }
    }
    None
}

/// Reads the array's items back from the end of `t`; `in_item`: the text
/// ends inside an item. `None` when the text does not read as an array of
/// strings (the caller then refuses).
pub(crate) fn scan(t: &Text, in_item: bool, memo: &mut Memo) -> Option<Items> {
    let mut i = t.len();
    let mut items = Items::default();
    if in_item {
        let open = prev_quote(t, i)?;
        items.open = Some(t.bytes(open + 1, i));
        i = open;
    }
    // The first array-level position inside the accepted output, where
    // this scan's result is remembered.
    let mut entry: Option<(usize, usize)> = None;
    loop {
        while i > 0 && is_ws(t.at(i - 1)) {
            i -= 1;
        }
        if i <= t.head.len() {
            if let Some(known) = memo.map.get(&i).cloned() {
                items.finished.known = Some(known);
                if let Some((at, from)) = entry.filter(|&(at, _)| at != i) {
                    memo.map.insert(at, items.finished.sorted_from(from));
                }
                break;
            }
            entry.get_or_insert((i, items.finished.fresh.len()));
        }
        if i == 0 {
            return None;
        }
        let b = t.at(i - 1);
        if !in_item && items.last == 0 {
            items.last = b;
        }
        match b {
            b'[' => {
                if let Some((at, from)) = entry {
                    memo.map.insert(at, items.finished.sorted_from(from));
                }
                break;
            }
            b',' => i -= 1,
            b'"' => {
                let open = prev_quote(t, i - 1)?;
                let (units, pending) = decode(&t.bytes(open + 1, i - 1));
                if pending {
                    return None;
                }
                items.finished.fresh.push(units);
                i = open;
            }
            _ => return None,
        }
    }
    if !in_item && items.last == 0 {
        // A memo hit before any byte was read: look at the byte itself.
        let mut j = t.len();
        while j > 0 && is_ws(t.at(j - 1)) {
            j -= 1;
        }
        items.last = if j > 0 { t.at(j - 1) } else { 0 };
    }
    Some(items)
}

/// Decodes a JSON string's raw content to UTF-16 code units; `true` when
/// it ends inside an escape or a UTF-8 sequence (those bytes left out).
pub(crate) fn decode(raw: &[u8]) -> (Units, bool) {
    let mut out = Units::new();
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\\' {
            let Some(&e) = raw.get(i + 1) else { return (out, true) };
            let u = match e {
                b'"' => 0x22,
                b'\\' => 0x5c,
                b'/' => 0x2f,
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => 0x0a,
                b'r' => 0x0d,
                b't' => 0x09,
                b'u' => {
                    let Some(h) = raw.get(i + 2..i + 6) else { return (out, true) };
                    match std::str::from_utf8(h).ok().and_then(|h| u16::from_str_radix(h, 16).ok()) {
                        Some(u) => {
                            out.push(u);
                            i += 6;
                            continue;
                        }
                        None => return (out, true),
                    }
                }
                _ => return (out, true),
            };
            out.push(u);
            i += 2;
            continue;
        }
        let n = match b {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        };
        let Some(seq) = raw.get(i..i + n) else { return (out, true) };
        match std::str::from_utf8(seq) {
            Ok(s) => {
                out.extend(s.encode_utf16());
                i += n;
            }
            // Not UTF-8 (the grammar keeps strings UTF-8): a lone
            // surrogate unit per byte, equal to nothing a string decodes
            // to but the same bytes.
            Err(_) => {
                out.push(0xdc00 | u16::from(b));
                i += 1;
            }
        }
    }
    (out, false)
}

/// Whether `open` (an open item's raw content) may still become some
/// finished item: its decoded text is a prefix of one, and the bytes not
/// decoded yet (an escape or a UTF-8 sequence begun) may still spell that
/// item's next character.
fn open_may_repeat(finished: &Finished, open: &[u8]) -> bool {
    let (p, pending) = decode(open);
    if !pending {
        return finished.with_prefix(&p).next().is_some();
    }
    let rests: Vec<Units> = finished.with_prefix(&p).map(|v| v[p.len()..].to_vec()).collect();
    match pending_spellings(&open[pending_start(open)..], &rests) {
        Some(tails) => !tails.is_empty(),
        None => true,
    }
}

/// Whether some value in sorted `vals` starts with `p` and is not taken.
fn free_value(vals: &[Units], p: &[u16], taken: impl Fn(&Units) -> bool) -> bool {
    let from = vals.partition_point(|v| v.as_slice() < p);
    vals[from..].iter().take_while(|v| v.starts_with(p)).any(|v| !taken(v))
}

/// Whether the array `c` is in at the end of `t` may still be finished
/// without repeating an item (see the module docs). `true` outside such an
/// array.
pub(crate) fn live(g: &Grammar, stacks: &mut Stacks, c: Config, t: &Text, memo: &mut Memo) -> bool {
    let (u, in_item) = match place(g, stacks, c) {
        Place::Outside => return true,
        Place::Array(u) => (u, false),
        Place::Item(u) => (u, true),
    };
    if u.closers.is_some() {
        // Open-ended items only (see [`values`]).
        return true;
    }
    let Some(items) = scan(t, in_item, memo) else { return false };
    if items.finished.is_empty() {
        return true;
    }
    if let Some(vals) = &u.strings {
        let taken = |w: &Units| items.finished.contains(w);
        match &items.open {
            Some(open) => {
                let (p, pending) = decode(open);
                if !pending {
                    return free_value(vals, &p, taken);
                }
            }
            None => return items.last != b',' || free_value(vals, &[], taken),
        }
    }
    match &items.open {
        // A fresh item with plenty of values can always differ, and any
        // open item of an open-ended schema.
        Some(open) if open.is_empty() && u.plenty || u.open_ended => return true,
        Some(open) if !open_may_repeat(&items.finished, open) => return true,
        Some(_) => {}
        // After `[` or an item, `]` or a comma comes; after a comma, a new
        // item must differ from all: certain when the values are plenty.
        None if items.last != b',' || u.plenty => return true,
        None => {}
    }
    search(g, stacks, c, &items)
}

/// Breadth-first over the bytes that may follow: one grammar step per
/// byte class (bytes of a class step alike), then each byte of the class
/// judged by the text it makes. `true` at the first way on (see [`live`]).
fn search(g: &Grammar, stacks: &mut Stacks, c: Config, items: &Items) -> bool {
    let mut members: Vec<Vec<u8>> = vec![Vec::new(); g.nclasses];
    for b in 0..=255u8 {
        members[g.classes[b as usize] as usize].push(b);
    }
    // A node: configurations, and the open item's raw content (None
    // between items).
    let start = (vec![c], items.open.clone());
    let mut seen: ahash::AHashSet<(Vec<Config>, Option<Vec<u8>>)> = ahash::AHashSet::new();
    seen.insert(start.clone());
    let mut queue = std::collections::VecDeque::from([start]);
    let mut steps = 0;
    let mut out = Vec::new();
    while let Some((cs, open)) = queue.pop_front() {
        for class in &members {
            steps += 1;
            if steps > SEARCH_STEPS {
                // Undecided: taken as live, as the masks' candidate
                // lists assume (a repeat is still refused when it closes).
                return true;
            }
            out.clear();
            let mut flags = StepFlags::default();
            step(g, stacks, &cs, class[0], &mut out, &mut flags);
            if out.is_empty() {
                continue;
            }
            out.sort_unstable();
            for &b in class {
                let next_open = match &open {
                    None if b == b'"' => Some(Vec::new()),
                    // `]` closes the array, the grammar allowing it.
                    None if b == b']' => return true,
                    None => None,
                    Some(o) => {
                        let backslashes = o.iter().rev().take_while(|&&x| x == b'\\').count();
                        if b == b'"' && backslashes % 2 == 0 {
                            // The item closes: a new value is a way on.
                            let (v, _) = decode(o);
                            if items.finished.contains(&v) {
                                continue;
                            }
                            return true;
                        }
                        let mut o = o.clone();
                        o.push(b);
                        if !open_may_repeat(&items.finished, &o) {
                            return true;
                        }
                        Some(o)
                    }
                };
                let node = (out.clone(), next_open);
                if seen.insert(node.clone()) {
                    queue.push_back(node);
                }
            }
        }
    }
    false
}

/// After byte `"` (or, for an array of values, `}`, `]` or `"`) was read:
/// whether configuration `c` (now in the array's own machine, so the byte
/// closed an item) repeats an earlier item.
pub(crate) fn closes_repeat(g: &Grammar, stacks: &Stacks, c: Config, t: &Text, memo: &mut Memo) -> bool {
    let Place::Array(u) = place(g, stacks, c) else { return false };
    let last = t.at(t.len() - 1);
    if let Some(closers) = &u.closers {
        return closers.contains(&last) && values::last_repeats(t, &mut memo.values);
    }
    if last != b'"' {
        return false;
    }
    match scan(t, false, memo) {
        Some(items) => items.finished.last_repeats(),
        None => true,
    }
}

/// Drops from `cs` the configurations a `uniqueItems` array rules out
/// after the last byte of `t` (a closing quote that repeats an item);
/// with `at_end`, also those that can no longer finish their array.
pub(crate) fn filter(g: &Grammar, stacks: &mut Stacks, cs: &mut Vec<Config>, t: &Text, at_end: bool, memo: &mut Memo) {
    if g.unique.is_empty() {
        return;
    }
    if t.len() > 0 && matches!(t.at(t.len() - 1), b'"' | b'}' | b']') {
        cs.retain(|&c| !closes_repeat(g, stacks, c, t, memo));
    }
    if at_end {
        let mut keep = Vec::with_capacity(cs.len());
        for &c in cs.iter() {
            if live(g, stacks, c, t, memo) {
                keep.push(c);
            }
        }
        *cs = keep;
    }
}

/// What a mask knows of the array around the matcher's configurations,
/// read once per mask when they all stand in `uniqueItems` arrays and
/// agree on whether an item is open: the text then decides most risky
/// tokens without stepping the grammar ([`View::decide`]).
#[derive(Debug)]
pub(crate) struct View {
    /// Finished items.
    finished: Finished,
    /// The open item: its decoded text, the raw bytes not decoded yet (in
    /// an escape or a UTF-8 sequence), and the rests of the finished items
    /// it is a prefix of (sorted). `None` between items.
    open: Option<(Units, Vec<u8>, Vec<Units>)>,
    /// Every configuration's array has plenty of values.
    plenty: bool,
    /// Every configuration's array is open-ended (see [`Unique::open_ended`]).
    open_ended: bool,
    /// The values the items may take, when known (see [`Unique::strings`]).
    strings: Option<std::sync::Arc<Vec<Units>>>,
}

/// How a mask decides its risky tokens: by a view of the array per kind
/// of place its configurations stand in (in an item, between items), byte
/// by byte where the views cannot tell.
#[derive(Debug)]
pub(crate) struct Plan {
    views: Vec<View>,
    /// Some configuration stands in no array: a view's refusal may be
    /// another parse's acceptance, and a token that opens an array there
    /// is checked byte by byte.
    outside: bool,
    /// Some configuration stands in an array of values ([`values`]): its
    /// risky tokens go byte by byte.
    values: bool,
    /// The text's nesting read from the array's level, when known: a token
    /// that finishes no value directly in an array closes no item.
    lex: Option<values::Lex>,
    /// The risky tokens (`None`: every allowed token).
    pub cands: Option<Vec<u32>>,
}

impl Plan {
    /// The verdict on an allowed token's `bytes`, `None` when only the
    /// byte-by-byte check can tell.
    pub fn decide(&self, bytes: &[u8]) -> Option<bool> {
        if self.values && !self.lex.as_ref().is_some_and(|l| l.closes_nothing(bytes)) {
            return None;
        }
        if self.outside && bytes.contains(&b'[') {
            return None;
        }
        let mut verdict = Some(true);
        for v in &self.views {
            match v.decide(bytes)? {
                true => {}
                false if self.outside || self.views.len() > 1 => return None,
                false => verdict = Some(false),
            }
        }
        verdict
    }
}

/// The plan for the configurations `cs` after text `t`.
pub(crate) fn plan(
    g: &Grammar,
    stacks: &Stacks,
    cs: &[Config],
    t: &Text,
    memo: &mut Memo,
    lists: &TokenLists,
    trie: &crate::vocab::TokTrie,
) -> Plan {
    let places: Vec<Place> = cs.iter().map(|&c| place(g, stacks, c)).collect();
    let outside = places.iter().any(|p| matches!(p, Place::Outside));
    let mut cands: Vec<u32> = if outside { lists.bracket.clone() } else { Vec::new() };
    if outside && g.values_unique {
        cands.extend(&lists.bracket_closer);
    }
    // Arrays of values: every token that may close an item, byte by byte.
    let mut closers: Vec<u8> = Vec::new();
    for p in &places {
        if let Place::Array(u) | Place::Item(u) = p {
            closers.extend(u.closers.iter().flatten());
        }
    }
    closers.sort_unstable();
    closers.dedup();
    for b in &closers {
        cands.extend(match b {
            b'}' => &lists.brace,
            b']' => &lists.square,
            _ => &lists.quoted,
        });
    }
    let values = !closers.is_empty();
    let mut lex = None;
    if values {
        if t.tail.is_empty() && places.iter().any(|p| matches!(p, Place::Array(u) if u.closers.is_some())) {
            memo.values.at_level(t.head.len());
        }
        if t.tail.is_empty() {
            lex = memo.values.lex(t.head);
        }
    }
    let mut all = false;
    let mut views = Vec::new();
    for item in [false, true] {
        let group: Vec<&Unique> = places
            .iter()
            .filter_map(|p| match *p {
                Place::Array(u) if !item && u.closers.is_none() => Some(u),
                Place::Item(u) if item && u.closers.is_none() => Some(u),
                _ => None,
            })
            .collect();
        if group.is_empty() {
            continue;
        }
        let plenty = group.iter().all(|u| u.plenty);
        let open_ended = group.iter().all(|u| u.open_ended);
        let strings = group[0]
            .strings
            .clone()
            .filter(|a| group.iter().all(|u| u.strings.as_ref().is_some_and(|b| std::sync::Arc::ptr_eq(a, b))));
        let Some(items) = scan(t, item, memo) else {
            // Not an array of strings after all (cannot happen): every
            // allowed token byte by byte.
            return Plan { views: Vec::new(), outside: true, values, lex: None, cands: None };
        };
        let (mut view, c) = view(items, plenty, strings, lists, trie);
        view.open_ended = open_ended;
        match c {
            Some(c) => cands.extend(c),
            None => all = true,
        }
        views.push(view);
    }
    Plan { views, outside, values, lex, cands: if all { None } else { Some(cands) } }
}

/// The view of one array's items and its risky tokens (`None`: all).
fn view(
    items: Items,
    plenty: bool,
    strings: Option<std::sync::Arc<Vec<Units>>>,
    lists: &TokenLists,
    trie: &crate::vocab::TokTrie,
) -> (View, Option<Vec<u32>>) {
    let finished = items.finished;
    let mut cands: Vec<u32> = Vec::new();
    let mut all = false;
    let open = items.open.map(|raw| {
        // Decode up to the last complete character or escape.
        let (p, pending) = decode(&raw);
        let cut = if pending { pending_start(&raw) } else { raw.len() };
        let mut rests: Vec<Units> = finished.with_prefix(&p).map(|v| v[p.len()..].to_vec()).collect();
        rests.sort_unstable();
        rests.dedup();
        (p, raw[cut..].to_vec(), rests)
    });
    if !plenty {
        cands.extend(&lists.quoted);
        all |= open.is_none();
    }
    if finished.is_empty() {
        cands.extend(&lists.two_quotes);
    } else {
        match &open {
            None => cands.extend(&lists.quoted),
            Some((_, _, rests)) if rests.is_empty() => cands.extend(&lists.two_quotes),
            Some((_, pending, rests)) if !pending.is_empty() => match pending_spellings(pending, rests) {
                Some(mut tails) => {
                    cands.extend(&lists.backslash);
                    cands.extend(&lists.two_quotes);
                    tails.sort_unstable();
                    tails.dedup();
                    trie.tokens_along(&tails, b'"', &mut cands);
                }
                None => all = true,
            },
            Some((_, _, rests)) => {
                cands.extend(&lists.backslash);
                cands.extend(&lists.two_quotes);
                let mut raws: Vec<Vec<u8>> = rests.iter().map(|r| String::from_utf16_lossy(r).into_bytes()).collect();
                raws.sort_unstable();
                raws.dedup();
                trie.tokens_along(&raws, b'"', &mut cands);
            }
        }
    }
    (View { finished, open, plenty, open_ended: false, strings }, if all { None } else { Some(cands) })
}

/// The bytes that, after the undecoded `pending` (an escape or a UTF-8
/// sequence begun), spell some rest in `rests` (its first character in
/// every spelling that starts with `pending`, the others raw); `None` for
/// a rest that starts with a surrogate (escaped pairs: not enumerated).
fn pending_spellings(pending: &[u8], rests: &[Units]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for r in rests {
        let Some(&c) = r.first() else { continue };
        if (0xd800..0xe000).contains(&c) {
            return None;
        }
        let ch = char::from_u32(u32::from(c))?;
        let mut spellings: Vec<Vec<u8>> = vec![ch.to_string().into_bytes()];
        let short = match ch {
            '"' => Some(b'"'),
            '\\' => Some(b'\\'),
            '/' => Some(b'/'),
            '\u{8}' => Some(b'b'),
            '\u{c}' => Some(b'f'),
            '\n' => Some(b'n'),
            '\r' => Some(b'r'),
            '\t' => Some(b't'),
            _ => None,
        };
        if let Some(x) = short {
            spellings.push(vec![b'\\', x]);
        }
        // `\u` and four hex digits, each letter in either case.
        let hex = format!("{c:04x}").into_bytes();
        let letters: Vec<usize> = (0..4).filter(|&i| hex[i].is_ascii_alphabetic()).collect();
        for m in 0..1u32 << letters.len() {
            let mut h = hex.clone();
            for (j, &i) in letters.iter().enumerate() {
                if m >> j & 1 == 1 {
                    h[i] = h[i].to_ascii_uppercase();
                }
            }
            let mut sp = b"\\u".to_vec();
            sp.extend(h);
            spellings.push(sp);
        }
        let after = String::from_utf16_lossy(&r[1..]).into_bytes();
        for sp in spellings {
            if sp.len() >= pending.len() && sp.starts_with(pending) {
                let mut tail = sp[pending.len()..].to_vec();
                tail.extend(&after);
                out.push(tail);
            }
        }
    }
    Some(out)
}

/// Where the undecoded tail of a raw string content starts (the last
/// backslash or UTF-8 lead byte that `decode` stopped at).
fn pending_start(raw: &[u8]) -> usize {
    let mut i = 0;
    let mut start = 0;
    while i < raw.len() {
        start = i;
        if raw[i] == b'\\' {
            let n = match raw.get(i + 1) {
                Some(b'u') => 6,
                _ => 2,
            };
            i += n;
        } else {
            i += match raw[i] {
                0x00..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => 1,
            };
        }
    }
    if i > raw.len() {
        start
    } else {
        raw.len()
    }
}

impl View {
    fn is_finished(&self, v: &Units) -> bool {
        self.finished.contains(v)
    }
    /// Whether some member of sorted `set` starts with `p`.
    fn has_prefix(set: &[Units], p: &[u16]) -> bool {
        let i = set.partition_point(|v| v.as_slice() < p);
        set.get(i).is_some_and(|v| v.starts_with(p))
    }

    /// Token `bytes` (allowed by the grammar) read as the text goes on:
    /// `Some(false)` when it closes an item that repeats one, `Some(true)`
    /// when it leaves the array live for certain, `None` when only the
    /// byte-by-byte check can tell (an item left open that may still
    /// repeat, a comma when values are few, a new array after this one).
    pub fn decide(&self, bytes: &[u8]) -> Option<bool> {
        // The item open at the start is the view's (`base`); items opened
        // in the token start empty.
        let mut base = self.open.is_some();
        let mut in_item = base;
        let mut raw: Vec<u8> = self.open.as_ref().map(|o| o.1.clone()).unwrap_or_default();
        let mut closed: Vec<Units> = Vec::new();
        let mut last = 0u8;
        for (i, &b) in bytes.iter().enumerate() {
            if in_item {
                let escaped = raw.iter().rev().take_while(|&&x| x == b'\\').count() % 2 == 1;
                if b != b'"' || escaped {
                    raw.push(b);
                    continue;
                }
                let (v, pending) = decode(&raw);
                if pending {
                    return None;
                }
                let repeat = if base {
                    let rests = &self.open.as_ref().expect("base item").2;
                    rests.binary_search(&v).is_ok()
                } else {
                    self.is_finished(&v) || closed.contains(&v)
                };
                if repeat {
                    return Some(false);
                }
                if base {
                    let mut full = self.open.as_ref().expect("base item").0.clone();
                    full.extend(v);
                    closed.push(full);
                } else {
                    closed.push(v);
                }
                base = false;
                in_item = false;
                raw.clear();
                last = b'"';
            } else {
                match b {
                    b' ' | b'\t' | b'\n' | b'\r' => {}
                    b',' => last = b',',
                    b'"' => {
                        in_item = true;
                        last = 0;
                    }
                    // The array ends; another may start later in the token.
                    b']' => return if bytes[i..].contains(&b'[') { None } else { Some(true) },
                    _ => return None,
                }
            }
        }
        if let Some(vals) = &self.strings {
            // Known values: is one left that the open item (or a new one
            // after a comma) may still become?
            let taken = |w: &Units| self.is_finished(w) || closed.contains(w);
            if in_item {
                let (v, pending) = decode(&raw);
                if pending {
                    return None;
                }
                let mut p = if base { self.open.as_ref().expect("base item").0.clone() } else { Vec::new() };
                p.extend(v);
                return Some(free_value(vals, &p, taken));
            }
            return Some(last != b',' || free_value(vals, &[], taken));
        }
        if in_item && self.open_ended {
            return Some(true);
        }
        if in_item {
            let (v, _) = decode(&raw);
            let may_repeat = if base {
                let rests = &self.open.as_ref().expect("base item").2;
                Self::has_prefix(rests, &v)
            } else {
                // A fresh item: with plenty of values it can always differ.
                !(self.plenty && raw.is_empty())
                    && (self.finished.with_prefix(&v).next().is_some() || closed.iter().any(|c| c.starts_with(&v)))
            };
            return if may_repeat { None } else { Some(true) };
        }
        if last == b',' && !self.plenty {
            return None;
        }
        Some(true)
    }
}

/// Normal tokens by the bytes that make them risky.
#[derive(Debug, Default)]
pub(crate) struct TokenLists {
    /// With a quote or a backslash.
    pub quoted: Vec<u32>,
    /// With a backslash.
    pub backslash: Vec<u32>,
    /// With two quotes or more.
    pub two_quotes: Vec<u32>,
    /// With `[` and two quotes after it.
    pub bracket: Vec<u32>,
    /// With `}`.
    pub brace: Vec<u32>,
    /// With `]`.
    pub square: Vec<u32>,
    /// With `[` and then `}`, `]` or `"`.
    pub bracket_closer: Vec<u32>,
}

impl TokenLists {
    pub fn new(vocab: &crate::vocab::Vocabulary) -> TokenLists {
        let mut l = TokenLists::default();
        for t in 0..vocab.size() as u32 {
            if vocab.kind(t) != Some(crate::vocab::TokenKind::Normal) {
                continue;
            }
            let b = vocab.token_bytes(t);
            let quotes = b.iter().filter(|&&x| x == b'"').count();
            if quotes > 0 || b.contains(&b'\\') {
                l.quoted.push(t);
            }
            if b.contains(&b'\\') {
                l.backslash.push(t);
            }
            if quotes >= 2 {
                l.two_quotes.push(t);
            }
            if let Some(at) = b.iter().position(|&x| x == b'[') {
                if b[at..].iter().filter(|&&x| x == b'"').count() >= 2 {
                    l.bracket.push(t);
                }
                if b[at..].iter().any(|&x| matches!(x, b'}' | b']' | b'"')) {
                    l.bracket_closer.push(t);
                }
            }
            if b.contains(&b'}') {
                l.brace.push(t);
            }
            if b.contains(&b']') {
                l.square.push(t);
            }
        }
        l
    }
}
