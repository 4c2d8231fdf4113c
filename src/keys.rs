//! Run-time checks for the free members of large objects.
//!
//! An object of more declared properties than a keyset state id can track
//! (past `Limits::max_unordered_properties`) still takes its members in any
//! order: the front-end gives a bit of the keyset code only to the members
//! that closing the object depends on (required ones, those named by
//! `dependentRequired`), and makes the others *free* (see
//! [`crate::grammar::keyset`]). The grammar offers every free member at
//! every key, so it would let one come twice; the matcher refuses that
//! against the text it has accepted:
//!
//! - **Repeats.** A configuration inside a free member's key (the states of
//!   [`Grammar::free_keys`], its keyset the caller on top of its stack)
//!   survives a byte only while that key is not among the keys the object
//!   already holds. Its key is a literal, so a repeat is known from its
//!   first byte on: such a configuration is dropped at once, not only when
//!   the key closes, and masks never lead into a dead key.
//! - **Liveness** needs no check here: the keyset counts the free members
//!   written (each once, as this module sees to), so it offers a comma only
//!   while a member is left.
//!
//! The keys an object holds are read back from the text: from a position
//! at the object's level (after `{` or a `,` between its members), the
//! text backwards is whitespace, commas, and members `"key": value`, whose
//! values read backwards unambiguously (a string back to its unescaped
//! opening quote, an array or object back to its matching bracket with
//! strings skipped, a number or literal back over its characters). Keys
//! are compared as written: declared names are emitted exactly as
//! serialized, and additional keys never unescape to a declared name. The
//! key lists are remembered per object-level comma of the accepted output
//! ([`Memo`]), so an object is read once however many checks it takes.
//!
//! Masks stay exact ([`candidates`]): inside such an object, only tokens
//! that open a key of a free member (a quote followed by the start of such
//! a key, [`KeyTokens`]) and tokens spelling a written key where a key
//! starts can be refused by these checks; outside, only tokens that open
//! such an object and repeat a key in it. The matcher decides those from the text where it can
//! ([`Plan::decide`]), else byte by byte.

use std::sync::Arc;

use crate::grammar::keyset::Keyset;
use crate::grammar::Grammar;
use crate::runtime::{Config, Stacks, BASE, EMPTY};
use crate::unique::{is_ws, prev_quote, Text};

/// The keys of an object's members, latest first (a shared list).
#[derive(Clone, Debug, Default)]
pub(crate) struct Written(Option<Arc<Node>>);

#[derive(Debug)]
pub(crate) struct Node {
    key: Box<[u8]>,
    hash: u64,
    prev: Option<Arc<Node>>,
}

fn key_hash(key: &[u8]) -> u64 {
    ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(key)
}

impl Written {
    fn push(&self, key: Box<[u8]>) -> Written {
        Written(Some(Arc::new(Node { hash: key_hash(&key), key, prev: self.0.clone() })))
    }
    fn nodes(&self) -> impl Iterator<Item = &Node> + '_ {
        let mut cur = self.0.as_deref();
        std::iter::from_fn(move || {
            let n = cur?;
            cur = n.prev.as_deref();
            Some(n)
        })
    }
    pub fn contains(&self, key: &[u8]) -> bool {
        let h = key_hash(key);
        self.nodes().any(|n| n.hash == h && &*n.key == key)
    }
    /// The keys, for many lookups.
    fn index(&self) -> Index {
        Index { hashes: self.nodes().map(|n| n.hash).collect(), list: self.clone() }
    }
}

/// A key list with a set of its hashes: a lookup costs a hash, and a
/// comparison of bytes only when the hash is there.
#[derive(Debug)]
pub(crate) struct Index {
    hashes: ahash::AHashSet<u64>,
    list: Written,
}

impl Index {
    fn contains(&self, key: &[u8]) -> bool {
        self.hashes.contains(&key_hash(key)) && self.list.contains(key)
    }
}

/// Key lists already read, by the position of an object-level comma in the
/// accepted output: the keys of the members before it. Entries past a
/// rollback are dropped.
#[derive(Clone, Debug, Default)]
pub(crate) struct Memo {
    map: ahash::AHashMap<usize, Written>,
    /// The key list last indexed (it holds the list, so the list's
    /// address names it while it is here).
    index: Option<Arc<Index>>,
}

impl Memo {
    /// `w` indexed, from the cache when `w` is the list indexed last.
    fn indexed(&mut self, w: &Written) -> Arc<Index> {
        let same = |a: &Written, b: &Written| match (&a.0, &b.0) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y),
            (None, None) => true,
            _ => false,
        };
        match &self.index {
            Some(ix) if same(&ix.list, w) => ix.clone(),
            _ => {
                let ix = Arc::new(w.index());
                self.index = Some(ix.clone());
                ix
            }
        }
    }
    pub fn truncate(&mut self, len: usize) {
        // (The index is of a list, which never changes: it stays right.)
        self.map.retain(|&k, _| k < len);
    }
}

/// Where the JSON value ending right before `i` starts.
fn value_start(t: &Text, i: usize) -> Option<usize> {
    let last = t.at(i.checked_sub(1)?);
    match last {
        b'"' => prev_quote(t, i - 1),
        b'}' | b']' => {
            let mut depth = 0usize;
            let mut j = i;
            while j > 0 {
                j -= 1;
                match t.at(j) {
                    b'}' | b']' => depth += 1,
                    b'{' | b'[' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j);
                        }
                    }
                    b'"' => j = prev_quote(t, j)?,
                    _ => {}
                }
            }
            None
        }
        _ => {
            let mut j = i;
            while j > 0 && matches!(t.at(j - 1), b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'.' | b'+' | b'-') {
                j -= 1;
            }
            (j < i).then_some(j)
        }
    }
}

fn skip_ws(t: &Text, mut i: usize) -> usize {
    while i > 0 && is_ws(t.at(i - 1)) {
        i -= 1;
    }
    i
}

/// The keys of the members before position `i`, where the text before `i`
/// (whitespace skipped) ends with the object's `{` or a comma between its
/// members. `None` when the text does not read so.
pub(crate) fn written(t: &Text, i: usize, memo: &mut Memo) -> Option<Written> {
    let mut read: Vec<(usize, Box<[u8]>)> = Vec::new();
    let mut i = i;
    let mut base = Written::default();
    loop {
        i = skip_ws(t, i);
        match t.at(i.checked_sub(1)?) {
            b'{' => break,
            b',' => {
                let comma = i - 1;
                if comma < t.head.len() {
                    if let Some(w) = memo.map.get(&comma) {
                        base = w.clone();
                        break;
                    }
                }
                i = skip_ws(t, comma);
                i = skip_ws(t, value_start(t, i)?);
                if t.at(i.checked_sub(1)?) != b':' {
                    return None;
                }
                i = skip_ws(t, i - 1);
                if t.at(i.checked_sub(1)?) != b'"' {
                    return None;
                }
                let open = prev_quote(t, i - 1)?;
                read.push((comma, t.bytes(open + 1, i - 1).into_boxed_slice()));
                i = open;
            }
            _ => return None,
        }
    }
    for (comma, key) in read.into_iter().rev() {
        base = base.push(key);
        if comma < t.head.len() {
            memo.map.insert(comma, base.clone());
        }
    }
    Some(base)
}

/// The keyset a configuration's top frame returns to, when it has free
/// members.
fn caller<'g>(g: &'g Grammar, stacks: &Stacks, c: Config) -> Option<(u32, &'g Keyset)> {
    if c.stack == EMPTY || c.stack == BASE {
        return None;
    }
    let (r, _) = stacks.get(c.stack);
    if !g.is_keyset(r) {
        return None;
    }
    let k = g.keyset_of(r);
    (!k.free.is_empty()).then_some((r, k))
}

/// The free key `c` is reading (or has just closed): its raw bytes and
/// the bytes of it read after the opening quote.
fn free_key<'g>(g: &'g Grammar, stacks: &Stacks, c: Config) -> Option<(&'g [u8], usize)> {
    let at = g.free_keys.get(&c.state)?;
    let (_, k) = caller(g, stacks, c)?;
    Some((k.free_key(at.start)?, at.depth as usize))
}

/// The keys last read in one filtering, by the position read from (the
/// configurations inside keys at one depth share them).
type Last = Option<(usize, Arc<Index>)>;

/// Whether `c` may go on at the end of `t` (see the module docs).
fn keep(g: &Grammar, stacks: &Stacks, c: Config, t: &Text, memo: &mut Memo, last: &mut Last) -> bool {
    let Some((raw, depth)) = free_key(g, stacks, c) else { return true };
    let Some(open) = t.len().checked_sub(depth + 1) else { return false };
    if t.at(open) != b'"' {
        return false;
    }
    if last.as_ref().is_none_or(|l| l.0 != open) {
        let Some(w) = written(t, open, memo) else { return false };
        *last = Some((open, memo.indexed(&w)));
    }
    last.as_ref().is_some_and(|(_, w)| !w.contains(raw))
}

/// Drops the configurations of `cs` that the text so far rules out (see
/// the module docs).
pub(crate) fn filter(g: &Grammar, stacks: &Stacks, cs: &mut Vec<Config>, t: &Text, memo: &mut Memo) {
    if g.free_keys.is_empty() {
        return;
    }
    let mut last = None;
    cs.retain(|&c| keep(g, stacks, c, t, memo, &mut last));
}

/// Whether configuration `c` is inside an object with free members (its
/// state, or a frame of its stack, in such a keyset or its members).
fn involved(g: &Grammar, stacks: &Stacks, c: Config) -> bool {
    if g.is_keyset(c.state) && !g.keyset_of(c.state).free.is_empty() {
        return true;
    }
    let mut k = c.stack;
    while k != EMPTY && k != BASE {
        let (r, p) = stacks.get(k);
        if g.is_keyset(r) && !g.keyset_of(r).free.is_empty() {
            return true;
        }
        k = p;
    }
    false
}

/// Tokens the checks may refuse, per compiled grammar and vocabulary.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyTokens {
    /// Tokens with a quote followed by the start of a free key (or a whole
    /// free key and its closing quote, and more).
    pub opening: Vec<u32>,
    /// Those of `opening` with two quotes or more: what a token may refuse
    /// from outside such an object (it must open one and repeat a key in
    /// it).
    pub outside: Vec<u32>,
}

impl KeyTokens {
    pub fn new(g: &Grammar, vocab: &crate::vocab::Vocabulary) -> KeyTokens {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for k in &g.keysets {
            for (_, raw) in &k.free {
                let mut q = raw.to_vec();
                q.push(b'"');
                keys.push(q);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let mut l = KeyTokens::default();
        if keys.is_empty() {
            return l;
        }
        for t in 0..vocab.size() as u32 {
            if vocab.kind(t) != Some(crate::vocab::TokenKind::Normal) {
                continue;
            }
            let b = vocab.token_bytes(t);
            let opens = b.iter().enumerate().filter(|&(_, &x)| x == b'"').any(|(i, _)| {
                let s = &b[i + 1..];
                !s.is_empty() && {
                    // Keys sorted: those `s` may start, and those starting `s`.
                    let from = keys.partition_point(|k| k.as_slice() < s);
                    keys.get(from).is_some_and(|k| k.starts_with(s)) || keys.iter().any(|k| s.starts_with(k))
                }
            });
            let quotes = b.iter().filter(|&&x| x == b'"').count();
            if opens {
                l.opening.push(t);
            }
            if opens && quotes >= 2 {
                l.outside.push(t);
            }
        }
        l
    }
}

/// What [`candidates`] found: the tokens to decide, and when the one
/// configuration is at a key, what decides most of them from the text.
#[derive(Debug, Default)]
pub(crate) struct Plan<'g> {
    pub cands: Vec<u32>,
    at_key: Option<AtKey<'g>>,
}

#[derive(Debug)]
struct AtKey<'g> {
    /// Free keys written (raw) and not written (sorted).
    written: ahash::AHashSet<&'g [u8]>,
    unwritten: Vec<&'g [u8]>,
    /// Only free members may come (no bit left, no additional member).
    only_free: bool,
    /// The configuration at the key is the only one.
    alone: bool,
}

impl Plan<'_> {
    /// The verdict on a candidate the grammar allows, from its bytes alone
    /// where they tell: at a key, a token inside a key is allowed when an
    /// unwritten free name goes on with it; and when that configuration is
    /// the only one, a token whose key closes on a written free name is
    /// refused, one that closes on another name and reads no further quote
    /// or comma is allowed, and one inside a key that no unwritten free name
    /// goes on with is refused when only free names may come. `None`:
    /// decide byte by byte.
    pub fn decide(&self, bytes: &[u8]) -> Option<bool> {
        let a = self.at_key.as_ref()?;
        if bytes.contains(&b'\\') {
            return None;
        }
        let verdict = match bytes.iter().position(|&b| b == b'"') {
            Some(q) if a.written.contains(&bytes[..q]) => Some(false),
            Some(q) => (!bytes[q + 1..].iter().any(|&b| b == b'"' || b == b',')).then_some(true),
            None => {
                let from = a.unwritten.partition_point(|&k| k < bytes);
                if a.unwritten.get(from).is_some_and(|k| k.starts_with(bytes)) {
                    // This configuration takes it (an unwritten key goes on).
                    return Some(true);
                }
                a.only_free.then_some(false)
            }
        };
        verdict.filter(|_| a.alone)
    }
}

/// The tokens whose answer the checks may change at the configurations
/// `cs` after the text `t` (see the module docs); the caller decides them
/// with [`Plan::decide`], else byte by byte.
pub(crate) fn candidates<'g>(
    g: &'g Grammar,
    stacks: &Stacks,
    cs: &[Config],
    t: &Text,
    memo: &mut Memo,
    lists: &KeyTokens,
    trie: &crate::vocab::trie::TokTrie,
) -> Plan<'g> {
    let mut plan = Plan::default();
    if g.free_keys.is_empty() {
        return plan;
    }
    if !cs.iter().any(|&c| involved(g, stacks, c)) {
        plan.cands.extend_from_slice(&lists.outside);
        return plan;
    }
    let out = &mut plan.cands;
    out.extend_from_slice(&lists.opening);
    for &c in cs {
        if !g.is_keyset(c.state) {
            continue;
        }
        let k = g.keyset_of(c.state);
        if k.free.is_empty() || !k.at_key(c.state) {
            continue;
        }
        let Some(w) = t.len().checked_sub(1).and_then(|q| written(t, q, memo)) else { continue };
        let w = memo.indexed(&w);
        // Sorted, as `free` is.
        let (words, unwritten): (Vec<&[u8]>, Vec<&[u8]>) =
            k.free.iter().map(|(_, raw)| &**raw).partition(|raw| w.contains(raw));
        trie.tokens_along(&words, b'"', out);
        if plan.at_key.is_none() {
            // Other configurations may take a token this one refuses: then
            // only the verdicts that allow are read from the text.
            let alone = cs.len() == 1;
            let only_free = !k.bits_left(c.state);
            plan.at_key = Some(AtKey { written: words.into_iter().collect(), unwritten, only_free, alone });
        }
    }
    plan
}
