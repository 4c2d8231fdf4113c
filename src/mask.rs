//! Masks: the trie walk that turns a parse position into the set of allowed
//! tokens, and the per-state cache that makes it cheap.
//!
//! For each grammar state `s` we compute once (lazily, shared by every
//! matcher of a compiled grammar) a [`LocalMask`]: the tokens accepted from
//! `s` *without leaving `s`'s machine* — which does not depend on the call
//! stack — plus the trie subtrees where the walk had to return to the caller
//! ("dependent" subtrees). At run time a mask is the local bits OR a walk of
//! the dependent subtrees with the real stack. Inside a free string nearly
//! the whole vocabulary is local and only tokens containing the closing
//! quote need the stack; at a structural position few tokens survive at all.

use crate::cache::ContentCache;
use crate::grammar::counted::REACH_BUDGET_COUNTED;
use crate::grammar::{Grammar, DEAD};
use crate::runtime::{step_in_place, Config, Stacks, StepFlags, BASE};
use crate::vocab::trie::{byte_cat, length_tier, plain_next, Node, ASCII_CATS, PLAIN_STATES, SHORT_TOKEN_BYTES};
use crate::vocab::{TokTrie, Vocabulary};
use std::sync::Arc;

/// Reusable buffers for [`walk`]; owned by a matcher so that computing a
/// mask does not allocate once warm.
#[derive(Default, Debug, Clone)]
pub(crate) struct Scratch {
    buf: Vec<Config>,
    lvl: Vec<usize>,
    pub init: Vec<Config>,
    /// When set, [`walk`] also lists every token it allows in `rec`.
    pub recording: bool,
    pub rec: Vec<u32>,
    /// The smallest stack depth read by walks since last reset (see
    /// [`crate::runtime::StepFlags::min_read`]).
    pub min_read: u32,
    /// A [`DepCache`] key being built.
    pub key: Vec<u32>,
    /// All zero between uses: a mask-wide bit set for [`DepCache::insert`].
    pub bitmap: Vec<u32>,
}

/// Configurations at a dependent subtree's parent, and the subtree roots.
#[derive(Debug)]
pub(crate) struct DepGroup {
    pub configs: Vec<Config>,
    pub nodes: Vec<u32>,
}

/// The stack-independent part of the mask at one grammar state.
#[derive(Debug)]
pub(crate) struct LocalMask {
    /// Shared with every state of the same class (see [`Leaf`]).
    pub bits: Arc<Vec<u32>>,
    pub groups: Vec<DepGroup>,
    /// Stacks referenced by `groups` (rooted at [`BASE`]).
    pub stacks: Stacks,
    /// The set bits of `bits` as token ids, when there are few (see
    /// [`LocalMask::sparse`]).
    pub sparse: std::sync::OnceLock<Option<Box<[u32]>>>,
}

/// Most tokens a [`LocalMask`] lists in its sparse form: setting this many
/// bits one by one costs about what ORing a 100k-token mask does.
const SPARSE_MAX: usize = 256;

impl LocalMask {
    pub fn new(bits: Arc<Vec<u32>>, groups: Vec<DepGroup>, stacks: Stacks) -> LocalMask {
        LocalMask { bits, groups, stacks, sparse: Default::default() }
    }

    /// The allowed tokens as ids when there are at most [`SPARSE_MAX`]:
    /// a key's next bytes, a punctuation mark, `true`. Then a mask with
    /// many such configurations (after `{"` in an object of many optional
    /// members, one per member) sets a few bits per configuration instead
    /// of ORing the whole vocabulary's words each time. Worked out on first
    /// use (one pass over the bits).
    pub fn sparse(&self) -> Option<&[u32]> {
        self.sparse
            .get_or_init(|| {
                // More nonzero words than ids allowed settles it; most
                // masks are dense and stop early. (No popcount per word:
                // it is a dozen instructions on baseline x86-64.)
                let mut nonzero = 0usize;
                for &w in self.bits.iter() {
                    nonzero += usize::from(w != 0);
                    if nonzero > SPARSE_MAX {
                        return None;
                    }
                }
                let mut ids = Vec::new();
                for (i, &w) in self.bits.iter().enumerate() {
                    let mut w = w;
                    while w != 0 {
                        ids.push(i as u32 * 32 + w.trailing_zeros());
                        w &= w - 1;
                    }
                    if ids.len() > SPARSE_MAX {
                        return None;
                    }
                }
                Some(ids.into_boxed_slice())
            })
            .as_deref()
    }

    pub fn memory_bytes(&self) -> usize {
        self.bits.capacity() * 4
            + self.groups.iter().map(|g| g.configs.capacity() * 8 + g.nodes.capacity() * 4 + 48).sum::<usize>()
            + self.stacks.memory_bytes()
            + self.sparse.get().and_then(|s| s.as_ref()).map_or(0, |s| s.len() * 4)
    }
}

/// Per compiled grammar, shared by its matchers: the tokens that the walk
/// of a [`LocalMask`]'s dependent groups allowed on a real stack, keyed by
/// the local mask and the top stack frames the walk read. A walk that read
/// the top `n` frames (return states) gives the same tokens on any stack
/// with the same top `n` frames; one that met the bottom of the stack is
/// keyed by the whole stack and a bottom marker. So one instance's walk
/// after `"x": 1` serves every later `"x": <number>` in the same caller,
/// in this sequence and in every other one.
#[derive(Debug, Default)]
pub(crate) struct DepCache {
    inner: std::sync::RwLock<DepInner>,
}

#[derive(Debug, Default)]
struct DepInner {
    /// Local mask (address) → the frame counts of its keys so far.
    counts: ahash::AHashMap<usize, Vec<u32>>,
    /// [address (2 words), frames…] → allowed tokens as (word, bits).
    map: ahash::AHashMap<Box<[u32]>, SparseBits>,
    bytes: usize,
}

/// Mask bits as `(word index, bits)` for the nonzero words only.
type SparseBits = Arc<[(u32, u32)]>;

/// Frame marker for the bottom of a stack in a [`DepCache`] key.
const BOTTOM: u32 = u32::MAX;

impl DepCache {
    /// Most bytes kept per compiled grammar; past it new walks are not kept.
    pub const MAX_BYTES: usize = 32 << 20;

    /// Writes the key of local mask `lm` with the top `n` frames of `stack`.
    fn key(key: &mut Vec<u32>, lm: usize, stacks: &Stacks, mut stack: u32, n: u32) {
        key.clear();
        key.push(lm as u32);
        key.push((lm as u64 >> 32) as u32);
        for _ in 0..n {
            if stack == crate::runtime::EMPTY {
                key.push(BOTTOM);
                break;
            }
            let (r, p) = stacks.get(stack);
            key.push(r);
            stack = p;
        }
    }

    /// ORs the cached tokens of `lm` on `stack` into `mask`; false when none
    /// are cached.
    pub fn apply(&self, lm: usize, stacks: &Stacks, stack: u32, key: &mut Vec<u32>, mask: &mut [u32]) -> bool {
        let Ok(inner) = self.inner.read() else { return false };
        let Some(counts) = inner.counts.get(&lm) else { return false };
        for &n in counts {
            Self::key(key, lm, stacks, stack, n);
            if let Some(words) = inner.map.get(key.as_slice()) {
                for &(w, bits) in words.iter() {
                    mask[w as usize] |= bits;
                }
                return true;
            }
        }
        false
    }

    /// Keeps `tokens`, what the walk of `lm` on `stack` allowed, reading no
    /// frame below depth `min_read`.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &self,
        lm: usize,
        stacks: &Stacks,
        stack: u32,
        min_read: u32,
        tokens: &mut [u32],
        key: &mut Vec<u32>,
        bitmap: &mut Vec<u32>,
    ) {
        let depth = stacks.depth(stack);
        let n = match min_read {
            0 => depth + 1,
            m => (depth + 1).saturating_sub(m),
        };
        let words = sparse_words(tokens, bitmap);
        Self::key(key, lm, stacks, stack, n);
        let Ok(mut inner) = self.inner.write() else { return };
        let bytes = words.len() * 8 + key.len() * 4 + 64;
        if inner.bytes + bytes > Self::MAX_BYTES || inner.map.contains_key(key.as_slice()) {
            return;
        }
        inner.bytes += bytes;
        inner.map.insert(key.as_slice().into(), words.into());
        let counts = inner.counts.entry(lm).or_default();
        if !counts.contains(&n) {
            counts.push(n);
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.inner.read().map(|i| i.bytes).unwrap_or(0)
    }
}

/// `tokens` (any order, repeats allowed) as the nonzero words of a mask, in
/// word order. A long list goes through `bitmap` (all zero on entry and on
/// return), which costs a pass over the mask's words; a short one is sorted.
fn sparse_words(tokens: &mut [u32], bitmap: &mut Vec<u32>) -> Vec<(u32, u32)> {
    let mut words: Vec<(u32, u32)> = Vec::new();
    if tokens.len() > 256 {
        let top = tokens.iter().max().map_or(0, |&t| t as usize / 32 + 1);
        if bitmap.len() < top {
            bitmap.resize(top, 0);
        }
        for &t in tokens.iter() {
            set_bit(bitmap, t);
        }
        for (w, bits) in bitmap[..top].iter_mut().enumerate() {
            if *bits != 0 {
                words.push((w as u32, std::mem::take(bits)));
            }
        }
        return words;
    }
    tokens.sort_unstable();
    for &t in tokens.iter() {
        let (w, b) = (t >> 5, 1u32 << (t & 31));
        match words.last_mut() {
            Some(last) if last.0 == w => last.1 |= b,
            _ => words.push((w, b)),
        }
    }
    words
}

/// The parse fanned out past `limit` parallel configurations.
#[derive(Debug)]
pub(crate) struct Overflow;

#[inline(always)]
pub(crate) fn set_bit(mask: &mut [u32], t: u32) {
    mask[(t >> 5) as usize] |= 1 << (t & 31);
}

/// Walks the trie nodes `start..end` (a whole subtree, or the whole trie from
/// node 1) from configurations `init` holding at the parent of `start`.
/// Sets the bit of every token whose bytes the grammar accepts. `on_dep` is
/// told of each node whose answer needs a pop past [`BASE`], with the
/// parent's configurations.
#[allow(clippy::too_many_arguments)]
pub(crate) fn walk(
    g: &Grammar,
    trie: &TokTrie,
    stacks: &mut Stacks,
    start: usize,
    end: usize,
    init: &[Config],
    sc: &mut Scratch,
    mask: &mut [u32],
    limit: usize,
    on_dep: &mut dyn FnMut(usize, &[Config]),
) -> Result<(), Overflow> {
    if start >= end {
        return Ok(());
    }
    let nodes = &trie.nodes;
    let base = nodes[start].depth as usize - 1;
    sc.buf.clear();
    sc.buf.extend_from_slice(init);
    sc.lvl.clear();
    sc.lvl.push(0);
    sc.lvl.push(init.len());
    let mut i = start;
    while i < end {
        let n = nodes[i];
        let d = n.depth as usize - base;
        let (a, z) = (sc.lvl[d - 1], sc.lvl[d]);
        sc.buf.truncate(z);
        sc.lvl.truncate(d + 1);
        let mut flags = StepFlags::default();
        step_in_place(g, stacks, &mut sc.buf, a, z, n.byte, &mut flags);
        sc.min_read = sc.min_read.min(flags.min_read);
        if flags.needs_context {
            on_dep(i, &sc.buf[a..z]);
        }
        let len = sc.buf.len() - z;
        if len == 0 {
            i = n.subtree_end as usize;
            continue;
        }
        if len > limit {
            return Err(Overflow);
        }
        for &t in trie.tokens_at(i) {
            set_bit(mask, t);
        }
        if sc.recording {
            sc.rec.extend_from_slice(trie.tokens_at(i));
        }
        sc.lvl.push(sc.buf.len());
        i += 1;
    }
    Ok(())
}

/// The [`LocalMask`] of a state that starts a *literal run* of at least two
/// bytes (each state on it has one next byte, no calls, and cannot return):
/// an object key after `"`, `true`, the `": ` after a key. The run is
/// followed down the trie by child lookups ([`TokTrie::child`]), taking the
/// tokens that end on it, and only the subtree where the run ends (if a
/// token reaches that far) is walked. A general walk from the root would
/// read every child of every node on the run, and the leaf path would first
/// analyze the machine; for a small member machine after `{"` both cost
/// ten times the answer. `None` when `s` starts no such run (or the walk
/// overflows): the caller takes the usual path.
pub(crate) fn compute_local_run(g: &Grammar, trie: &TokTrie, s: u32, words: usize, limit: usize) -> Option<LocalMask> {
    let single = |q: u32| -> Option<u8> {
        if q >= g.nreal || g.is_accept(q) || g.has_calls(q) {
            return None;
        }
        let f = &g.first[q as usize];
        if f.iter().map(|w| w.count_ones()).sum::<u32>() != 1 {
            return None;
        }
        let (i, w) = f.iter().enumerate().find(|(_, w)| **w != 0)?;
        Some((i * 64 + w.trailing_zeros() as usize) as u8)
    };
    let mut b = single(s)?;
    let (mut q, mut node, mut len) = (s, 0usize, 0usize);
    let mut bits = vec![0u32; words];
    loop {
        let Some(c) = trie.child(node, b) else {
            // No token goes past the run so far: every allowed token ends on it.
            return Some(LocalMask::new(Arc::new(bits), Vec::new(), Stacks::default()));
        };
        q = g.next(q, b);
        if q == DEAD {
            return None; // FIRST said otherwise; take the general path
        }
        node = c;
        len += 1;
        for &t in trie.tokens_at(c) {
            set_bit(&mut bits, t);
        }
        match single(q) {
            Some(nb) => b = nb,
            None => break,
        }
    }
    if len < 2 {
        // A one-byte run (the `"` of a string) leads into a large subtree
        // that the leaf path walks better (plain text wholesale, shared
        // masks).
        return None;
    }
    let end = trie.nodes[node].subtree_end as usize;
    let init = [Config { state: q, stack: BASE }];
    let (groups, stacks) = walk_local(g, trie, node + 1, end, &init, &mut bits, limit).ok()?;
    Some(LocalMask::new(Arc::new(bits), groups, stacks))
}

/// [`walk`] of nodes `start..end` from `init` (on [`BASE`]) for a local
/// mask: the dependent nodes grouped by their parent's configurations, and
/// the stacks those configurations use.
fn walk_local(
    g: &Grammar,
    trie: &TokTrie,
    start: usize,
    end: usize,
    init: &[Config],
    bits: &mut [u32],
    limit: usize,
) -> Result<(Vec<DepGroup>, Stacks), Overflow> {
    let mut stacks = Stacks::default();
    let mut groups: Vec<DepGroup> = Vec::new();
    let mut index: ahash::AHashMap<Vec<Config>, usize> = Default::default();
    let mut on_dep = |node: usize, parent: &[Config]| {
        let gi = *index.entry(parent.to_vec()).or_insert_with(|| {
            groups.push(DepGroup { configs: parent.to_vec(), nodes: Vec::new() });
            groups.len() - 1
        });
        groups[gi].nodes.push(node as u32);
    };
    let mut sc = Scratch::default();
    walk(g, trie, &mut stacks, start, end, init, &mut sc, bits, limit, &mut on_dep)?;
    Ok((groups, stacks))
}

/// Computes the [`LocalMask`] of state `s`.
pub(crate) fn compute_local(g: &Grammar, trie: &TokTrie, s: u32, words: usize, limit: usize) -> LocalMask {
    let mut bits = vec![0u32; words];
    let init = [Config { state: s, stack: BASE }];
    match walk_local(g, trie, 1, trie.len(), &init, &mut bits, limit) {
        Ok((groups, stacks)) => LocalMask::new(Arc::new(bits), groups, stacks),
        // An overflow here leaves a partial local mask; the caller's full
        // walk reports the overflow. To stay exact, fall back to
        // "everything is dependent" (one group at the root) in that case.
        Err(Overflow) => LocalMask::new(
            Arc::new(vec![0u32; words]),
            vec![DepGroup { configs: init.to_vec(), nodes: vec![1] }],
            Stacks::default(),
        )
        .whole_trie(trie),
    }
}

/// How far plain text (see [`plain_next`]) can run from leaf state `s`: the
/// largest `L` (up to `cap`) such that every plain-text prefix of at most
/// `L` bytes leads from `s` to a live, non-accepting state. Tokens that are
/// plain text of at most `L` bytes are then all allowed from `s`, and no
/// walk below them can meet a dependent node. A breadth-first search over
/// (plain-text state, grammar state) pairs, each expanded once, stopping
/// early when no new pair turns up.
pub(crate) fn plain_reach(g: &Grammar, s: u32, cap: usize) -> usize {
    if g.is_accept(s) {
        return 0;
    }
    let reps = &ReachReps::of(g, s).plain;
    if s >= g.nreal {
        return g.counted_of(s).plain_reach(s, cap, reps, &g.classes, g.nclasses);
    }
    // Breadth first, each (plain state, grammar state) pair expanded once,
    // at its shortest distance: the first bad step seen is the shortest
    // bad string, and when no new pair turns up every length is safe.
    let mut seen: ahash::AHashSet<(u8, u32)> = Default::default();
    seen.insert((0, s));
    let mut level: Vec<(u8, u32)> = vec![(0, s)];
    let mut next: Vec<(u8, u32)> = Vec::new();
    let mut work = 0;
    for l in 1..=cap {
        next.clear();
        for &(p, q) in &level {
            for &(b, p2) in &reps[p as usize] {
                let t = g.next(q, b);
                if t == DEAD || g.is_accept(t) {
                    return l - 1;
                }
                if seen.insert((p2, t)) {
                    next.push((p2, t));
                }
            }
            work += reps[p as usize].len();
        }
        if next.is_empty() {
            return cap;
        }
        std::mem::swap(&mut level, &mut next);
        if seen.len() > REACH_SEEN || work > REACH_BUDGET {
            return l; // too costly to follow further; what was checked holds
        }
    }
    cap
}

/// Most states a reach search ([`plain_reach`], [`cat_reach`]) keeps.
const REACH_SEEN: usize = 8192;

/// Most steps a reach search ([`plain_reach`], [`cat_reach`]) takes; past
/// it the search stops with the length checked so far (a lower bound, which
/// is all its callers need).
pub(crate) const REACH_BUDGET: usize = 1 << 17;

/// Representative bytes of a byte-class partition for [`plain_reach`] and
/// [`cat_reach`] (they depend on the classes only, so each grammar computes
/// them once per class map: its machines' own classes, and its whole
/// partition for counted strings).
#[derive(Debug)]
pub(crate) struct ReachReps {
    /// Per plain-text state: one `(byte, next plain state)` per distinct
    /// (class, next plain state).
    plain: Vec<Vec<(u8, u8)>>,
    /// Per [`byte_cat`] category allowed wholesale ([`ASCII_CATS`]):
    /// `(category bit, byte)`, one byte for each class among its bytes.
    cats: Vec<(u16, u8)>,
}

impl ReachReps {
    /// The representatives over byte classes `classes`.
    fn new(classes: &[u8; 256]) -> ReachReps {
        let plain = (0..PLAIN_STATES as u8)
            .map(|p| {
                let mut seen: ahash::AHashSet<(u8, u8)> = Default::default();
                (0..=255u8)
                    .filter_map(|b| plain_next(p, b).map(|q| (b, q)))
                    .filter(|&(b, q)| seen.insert((classes[b as usize], q)))
                    .collect()
            })
            .collect();
        let mut seen: ahash::AHashSet<(u16, u8)> = Default::default();
        let cats = (0..=127u8)
            .map(|b| (byte_cat(b), b))
            .filter(|&(cat, b)| cat & ASCII_CATS != 0 && seen.insert((cat, classes[b as usize])))
            .collect();
        ReachReps { plain, cats }
    }

    /// For a search from state `s`: over the byte classes of `s`'s machine
    /// when it is explicit (a leaf search stays in its machine, and a
    /// machine's own classes are a handful where the grammar's are dozens:
    /// each search step is one representative), else the grammar's.
    fn of(g: &Grammar, s: u32) -> &ReachReps {
        if s < g.nreal {
            let map = g.rows[s as usize].1 as usize;
            if let Some(cell) = g.map_reach_reps.get(map) {
                return cell.get_or_init(|| ReachReps::new(&g.class_maps[map]));
            }
        }
        g.reach_reps.get_or_init(|| ReachReps::new(&g.classes))
    }
}

/// Which byte categories (see [`byte_cat`]) leaf state `s` allows
/// wholesale, and for how many bytes: `(cats, L)` such that every string of
/// at most `L` bytes from categories `cats` leads from `s` to a live state
/// that is not accepting. Tokens made of such bytes are then allowed from
/// `s` with no dependent node below them (`^[\w.-]+$` inside its string:
/// letters, digits, `_`, `.` and `-`). A breadth-first search by length;
/// a category that fails before [`SHORT_TOKEN_BYTES`] is dropped and the
/// search restarts without it (most tokens are short, so a long reach over
/// fewer categories is worth more). `(0, 0)` when nothing qualifies.
pub(crate) fn cat_reach(g: &Grammar, s: u32, cap: usize) -> (u16, usize) {
    if g.is_accept(s) {
        return (0, 0);
    }
    let reps = &ReachReps::of(g, s).cats;
    if s >= g.nreal {
        // Over (count, table state) pairs; closing the string ends the reach.
        let c = g.counted_of(s);
        let step = |(k, q): (u32, u32), b: u8| {
            c.step_pair(k, q, g.classes[b as usize] as usize, g.nclasses).filter(|&p| p != DONE_PAIR)
        };
        return reach_by_levels(c.split(s), cap, reps, REACH_BUDGET_COUNTED, step);
    }
    reach_by_levels(s, cap, reps, REACH_BUDGET, |q, b| {
        let t = g.next(q, b);
        (t != DEAD && !g.is_accept(t)).then_some(t)
    })
}

/// The search of [`cat_reach`] over any state space: `step(q, b)` is the
/// state after byte `b` (`None`: dead or accepting).
fn reach_by_levels<S: Copy + Eq + std::hash::Hash>(
    s: S,
    cap: usize,
    reps: &[(u16, u8)],
    budget: usize,
    step: impl Fn(S, u8) -> Option<S>,
) -> (u16, usize) {
    let mut cats = ASCII_CATS;
    let mut level: Vec<S> = Vec::new();
    let mut next: Vec<S> = Vec::new();
    let mut seen: ahash::AHashSet<S> = Default::default();
    let mut work = 0;
    'restart: loop {
        if cats == 0 {
            return (0, 0);
        }
        // As in plain_reach: each state expanded once, at its shortest
        // distance; the bad categories of a length are all seen together.
        level.clear();
        level.push(s);
        seen.clear();
        seen.insert(s);
        for l in 1..=cap {
            next.clear();
            let mut bad = 0u16;
            for &q in &level {
                for &(cat, b) in reps {
                    if cat & cats == 0 {
                        continue;
                    }
                    work += 1;
                    match step(q, b) {
                        Some(t) => {
                            if seen.insert(t) {
                                next.push(t);
                            }
                        }
                        None => bad |= cat,
                    }
                }
            }
            if bad != 0 {
                if l - 1 < SHORT_TOKEN_BYTES {
                    cats &= !bad;
                    continue 'restart;
                }
                return (cats, l - 1);
            }
            if next.is_empty() {
                return (cats, cap);
            }
            std::mem::swap(&mut level, &mut next);
            if seen.len() > REACH_SEEN || work > budget {
                return (cats, l); // too costly to follow further; what was checked holds
            }
        }
        return (cats, cap);
    }
}

/// The tokens a leaf state allows without walking them: plain text up to
/// its [`plain_reach`], and tokens made of the categories of its
/// [`cat_reach`], each rounded down to a length tier of the trie's
/// precomputed masks. A walk skips a subtree holding only such tokens.
struct Wholesale {
    plain: usize,
    cats: u16,
    cat_len: usize,
}

impl Wholesale {
    fn of(g: &Grammar, trie: &TokTrie, s: u32) -> Wholesale {
        let longest = trie.max_token_len();
        let plain = length_tier(plain_reach(g, s, longest), longest).unwrap_or(0);
        if plain >= longest {
            return Wholesale { plain, cats: 0, cat_len: 0 };
        }
        let (cats, reach) = cat_reach(g, s, longest);
        match length_tier(reach, longest) {
            Some(l) if cats != 0 && l > plain => Wholesale { plain, cats, cat_len: l },
            _ => Wholesale { plain, cats: 0, cat_len: 0 },
        }
    }

    /// ORs the plain tokens into `bits`.
    fn or_plain(&self, trie: &TokTrie, bits: &mut [u32]) {
        if let Some((_, m)) = trie.plain_masks.iter().find(|(l, _)| (*l).min(trie.max_token_len()) == self.plain) {
            for (b, m) in bits.iter_mut().zip(m.iter()) {
                *b |= m;
            }
        }
    }

    /// ORs the category tokens into `bits`.
    fn or_cats(&self, trie: &TokTrie, bits: &mut [u32]) {
        if self.cat_len > 0 {
            for (b, m) in bits.iter_mut().zip(trie.cat_mask(self.cats, self.cat_len).iter()) {
                *b |= m;
            }
        }
    }

    #[inline]
    fn skips(&self, trie: &TokTrie, i: usize) -> bool {
        let n = &trie.nodes[i];
        let d = n.sub_depth as usize;
        (d <= self.plain && n.plain) || (d <= self.cat_len && n.sub_cats & !self.cats == 0)
    }
}

/// Records trie node `i` as dependent below leaf state `p` (one group per
/// state, configurations on [`BASE`]).
fn add_dep(groups: &mut Vec<DepGroup>, p: u32, i: usize) {
    match groups.iter().position(|gr| gr.configs[0].state == p) {
        Some(k) => groups[k].nodes.push(i as u32),
        None => groups.push(DepGroup { configs: vec![Config { state: p, stack: BASE }], nodes: vec![i as u32] }),
    }
}

/// [`compute_local`] for a state of a leaf machine (no calls): one
/// configuration per trie node, so the walk is a DFA run over the trie — a
/// table lookup per node, no configuration sets, no stacks. Where plain text
/// runs far from `s` ([`plain_reach`]), the plain tokens come from a
/// precomputed mask and subtrees holding only such tokens are skipped. Same
/// result as the general walk (tests compare both).
pub(crate) fn compute_local_leaf(g: &Grammar, trie: &TokTrie, s: u32, words: usize) -> LocalMask {
    let mut bits = vec![0u32; words];
    let w = Wholesale::of(g, trie, s);
    w.or_plain(trie, &mut bits);
    w.or_cats(trie, &mut bits);
    let mut groups: Vec<DepGroup> = Vec::new();
    if s >= g.nreal {
        // A counted string: step its table directly (no machine lookup and
        // no division per node); the closed string is its only accepting
        // state.
        let c = g.counted_of(s);
        let done = c.done_id();
        let start = if s == done { DONE_PAIR } else { c.split(s) };
        leaf_walk(
            trie,
            &w,
            &mut bits,
            start,
            |(k, q), b| c.step_pair(k, q, g.classes[b as usize] as usize, g.nclasses),
            |p, b| (p == DONE_PAIR && g.follows(done, b)).then_some(done),
            &mut groups,
        );
    } else {
        leaf_walk(
            trie,
            &w,
            &mut bits,
            s,
            |p, b| Some(g.next(p, b)).filter(|&t| t != DEAD),
            |p, b| (g.is_accept(p) && g.follows(p, b)).then_some(p),
            &mut groups,
        );
    }
    LocalMask::new(Arc::new(bits), groups, Stacks::default())
}

/// The state pair of a closed counted string in [`leaf_walk`].
const DONE_PAIR: (u32, u32) = (u32::MAX, u32::MAX);

/// The trie walk of [`compute_local_leaf`] over any leaf state space:
/// `step` is the state after a byte (`None`: dead), `accept` the grammar
/// state of an accepting state (where a token may leave the machine).
fn leaf_walk<S: Copy>(
    trie: &TokTrie,
    w: &Wholesale,
    bits: &mut [u32],
    s: S,
    step: impl Fn(S, u8) -> Option<S>,
    accept: impl Fn(S, u8) -> Option<u32>,
    groups: &mut Vec<DepGroup>,
) {
    if w.plain >= trie.max_token_len() {
        // Every all-plain subtree is skipped: walk the dense rest.
        let sk = &trie.impure;
        let orig = |i: usize| sk.orig[i] as usize;
        return leaf_walk_nodes(
            trie.max_token_len(),
            &sk.nodes,
            sk.kids.iter().copied(),
            &sk.tokens,
            |_| false,
            orig,
            bits,
            s,
            step,
            accept,
            groups,
        );
    }
    leaf_walk_nodes(
        trie.max_token_len(),
        &trie.nodes,
        trie.kids(0),
        &trie.tokens,
        |i| w.skips(trie, i),
        |i| i,
        bits,
        s,
        step,
        accept,
        groups,
    );
}

/// [`leaf_walk`] over a pre-order node array (a [`TokTrie`]'s or its
/// [`crate::vocab::trie::Skeleton`]'s): `skip(i)` skips node `i`'s subtree,
/// `orig(i)` is node `i`'s index in the full trie (for dependent nodes).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn leaf_walk_nodes<S: Copy>(
    longest: usize,
    nodes: &[Node],
    kids: impl Iterator<Item = (u8, u32)>,
    tokens: &[u32],
    skip: impl Fn(usize) -> bool,
    orig: impl Fn(usize) -> usize,
    bits: &mut [u32],
    s: S,
    step: impl Fn(S, u8) -> Option<S>,
    accept: impl Fn(S, u8) -> Option<u32>,
    groups: &mut Vec<DepGroup>,
) {
    // st[d]: the state after the node on the current path at depth d.
    let mut st = vec![s; longest + 1];
    // The root's children come from `kids` (a child list), so that a first byte that is
    // dead from `s` costs a table lookup, not a read of its node: root
    // children lie far apart in the array, and reading a few hundred of
    // them was most of a small leaf mask's time.
    for (b, i0) in kids {
        if accept(s, b).is_none() && step(s, b).is_none() {
            continue;
        }
        let mut i = i0 as usize;
        let end = nodes[i].subtree_end as usize;
        while i < end {
            let n = nodes[i];
            if skip(i) {
                i = n.subtree_end as usize;
                continue;
            }
            let d = n.depth as usize;
            let p = st[d - 1];
            if let Some(a) = accept(p, n.byte) {
                // The token may end the machine here and go on in the caller.
                add_dep(groups, a, orig(i));
            }
            let Some(t) = step(p, n.byte) else {
                i = n.subtree_end as usize;
                continue;
            };
            st[d] = t;
            for &tok in &tokens[n.tok_start as usize..nodes[i + 1].tok_start as usize] {
                set_bit(bits, tok);
            }
            i += 1;
        }
    }
}

/// The local mask of leaf state `s` from `short`, the local mask of a state
/// that agrees with `s` on every string of at most [`SHORT_TOKEN_BYTES`]
/// bytes: its bits and dependent nodes for short tokens carry over, and only
/// the paths to longer tokens are walked from `s` (subtrees holding no long
/// token are skipped). Only for machines whose accepting states can only
/// return ([`Leaf::return_only`]): a dependent group taken from `short`
/// then behaves exactly as `s`'s own would.
pub(crate) fn compose_local_leaf(g: &Grammar, trie: &TokTrie, s: u32, short: &LocalMask) -> LocalMask {
    let d = SHORT_TOKEN_BYTES;
    let mut bits: Vec<u32> = short.bits.as_ref().clone();
    for &t in &trie.long_tokens {
        bits[(t >> 5) as usize] &= !(1 << (t & 31));
    }
    // Long tokens that `s` allows wholesale are skipped below.
    let w = Wholesale::of(g, trie, s);
    w.or_plain(trie, &mut bits);
    w.or_cats(trie, &mut bits);
    let mut groups: Vec<DepGroup> = short
        .groups
        .iter()
        .map(|gr| DepGroup {
            configs: gr.configs.clone(),
            nodes: gr.nodes.iter().copied().filter(|&i| trie.nodes[i as usize].depth as usize <= d).collect(),
        })
        .filter(|gr| !gr.nodes.is_empty())
        .collect();
    let nodes = &trie.nodes;
    let mut st = vec![s; trie.max_token_len() + 1];
    let mut i = 1;
    let end = trie.len();
    while i < end {
        let n = nodes[i];
        if n.sub_depth as usize <= d || w.skips(trie, i) {
            i = n.subtree_end as usize;
            continue;
        }
        let depth = n.depth as usize;
        let p = st[depth - 1];
        if depth > d && g.is_accept(p) && g.follows(p, n.byte) {
            add_dep(&mut groups, p, i);
        }
        let t = g.next(p, n.byte);
        if t == DEAD {
            i = n.subtree_end as usize;
            continue;
        }
        st[depth] = t;
        if depth > d {
            for &tok in trie.tokens_at(i) {
                set_bit(&mut bits, tok);
            }
        }
        i += 1;
    }
    LocalMask::new(Arc::new(bits), groups, Stacks::default())
}

impl LocalMask {
    /// Rewrites a fallback mask's single group to cover every root child.
    fn whole_trie(mut self, trie: &TokTrie) -> LocalMask {
        let mut roots = Vec::new();
        let mut i = 1;
        while i < trie.len() {
            roots.push(i as u32);
            i = trie.nodes[i].subtree_end as usize;
        }
        self.groups[0].nodes = roots;
        self
    }
}

/// Per canonical state: the canonical index of its class representative,
/// full and short (see [`Leaf`]).
type CanonReps = Arc<(Vec<u32>, Vec<u32>)>;

/// Most Moore rounds spent on a leaf machine's full classes (see
/// [`Leaf::analyze`]).
const FULL_ROUNDS: usize = 40;
/// A leaf machine of at least this many states that is nearly a tree
/// gives every state its own class without refining (see
/// [`Leaf::analyze`]).
const TREE_STATES: usize = 1024;

/// A leaf machine (no calls: a string, number or key lexer) seen up to
/// token length: its states in a canonical order, a content signature, and
/// for each state the representative of its class of states that no token
/// can tell apart. States in one class have the same [`LocalMask`]; with the
/// signature, so do the same states of the same machine in another grammar.
#[derive(Debug)]
pub(crate) struct Leaf {
    first: u32,
    /// Canonical index → state id.
    canon: Vec<u32>,
    /// (state − first) → canonical index.
    canon_of: Vec<u32>,
    /// (state − first) → representative state id.
    rep: Vec<u32>,
    /// (state − first) → representative among states that agree on every
    /// string of at most [`SHORT_TOKEN_BYTES`] bytes.
    rep_short: Vec<u32>,
    /// Every accepting state has no way on: the machine can only return
    /// there (strings, keys, literals). Then which accepting state a
    /// dependent group starts from makes no difference.
    pub return_only: bool,
    /// The key its masks are shared under: its signature (a hash of its
    /// transition table, which also keys its classes) and the machine's
    /// FOLLOW bytes in this grammar ([`Grammar::follow`]), since where a
    /// token may leave the machine (its dependent nodes) depends on them.
    share: u128,
}

impl Leaf {
    /// Analyzes machine `m` of `g` if it is a leaf; `depth` is the longest
    /// token in bytes (classes are equivalence up to that many bytes).
    pub fn analyze(g: &Grammar, m: u32, depth: usize) -> Option<Leaf> {
        use std::hash::{Hash, Hasher};
        let first = g.machine_start[m as usize];
        if first == u32::MAX || first >= g.nreal {
            return None; // empty, or counted (virtual states)
        }
        let mut last = first as usize;
        while last < g.num_states() && g.machine_of[last] == m {
            last += 1;
        }
        let n = last - first as usize;
        if (first as usize..last).any(|s| g.has_calls(s as u32)) {
            return None;
        }
        // The machine's own byte classes (shared by all its states; usually
        // a handful, against the grammar's dozens): a state's transition
        // row has one entry per class.
        let map = &g.class_maps[g.rows[first as usize].1 as usize];
        let nlocal = map.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
        // Each state's row as runs of classes with one target: (first class
        // of the run, target numbered from `first`, or DEAD), state s's runs
        // at adj[adj_off[s]..adj_off[s + 1]]. Literal tries have one or two
        // live classes per state; a key set's trie node sends most classes
        // to one "not a declared name" state, a single run where a list of
        // live classes had fifty entries.
        let mut adj: Vec<(u32, u32)> = Vec::with_capacity(n * 2);
        let mut adj_off: Vec<u32> = Vec::with_capacity(n + 1);
        adj_off.push(0);
        for s in 0..n {
            let row = g.rows[first as usize + s].0 as usize;
            let mut prev = DEAD;
            for (j, &t) in g.trans[row..row + nlocal].iter().enumerate() {
                let t = if t == DEAD { DEAD } else { t - first };
                if t != prev {
                    adj.push((j as u32, t));
                    prev = t;
                }
            }
            adj_off.push(adj.len() as u32);
        }
        let succ = |s: usize| &adj[adj_off[s] as usize..adj_off[s + 1] as usize];
        // Canonical order: breadth first from the start, bytes ascending.
        let mut canon_of = vec![u32::MAX; n];
        let mut canon = vec![first];
        canon_of[0] = 0;
        let mut i = 0;
        while i < canon.len() {
            let s = (canon[i] - first) as usize;
            for &(_, t) in succ(s) {
                if t != DEAD && canon_of[t as usize] == u32::MAX {
                    canon_of[t as usize] = canon.len() as u32;
                    canon.push(first + t);
                }
            }
            i += 1;
        }
        for (s, c) in canon_of.iter_mut().enumerate() {
            if *c == u32::MAX {
                *c = canon.len() as u32;
                canon.push(first + s as u32);
            }
        }
        // Signature: the transition function in canonical numbering, as a
        // flat list: the class map, then per state its flags and (class,
        // target) for each live class. It depends on the machine only (its
        // class map comes from its own ranges), not on the grammar around it.
        let mut flat: Vec<u32> = Vec::with_capacity(n * 4 + 256 + 1);
        flat.push(n as u32);
        flat.extend(map.iter().map(|&c| c as u32));
        for &s in &canon {
            flat.push(u32::from(g.is_accept(s)) | u32::from(g.has_out(s)) << 1 | 1 << 8);
            for &(j, t) in succ((s - first) as usize) {
                flat.push(j);
                flat.push(if t == DEAD { DEAD } else { canon_of[t as usize] });
            }
        }
        let mut h1 = std::collections::hash_map::DefaultHasher::new();
        let mut h2 = std::collections::hash_map::DefaultHasher::new();
        0x9e37_79b9_7f4a_7c15u64.hash(&mut h2);
        flat.hash(&mut h1);
        flat.hash(&mut h2);
        let sig = (h1.finish() as u128) << 64 | h2.finish() as u128;
        // Classes: Moore refinement for `depth` rounds (or until stable),
        // starting from what a walk observes at a state (accept, has_out).
        // Classes depend on the machine only (its signature) and the depth:
        // computed once per process, in canonical numbering.
        static CLASSES: ContentCache<CanonReps> = ContentCache::new(1 << 22);
        let refine = || -> Result<CanonReps, String> {
            let mut class: Vec<u32> = (0..n)
                .map(|s| {
                    let st = first as usize + s;
                    u32::from(g.accept[st]) | u32::from(g.has_out[st]) << 1
                })
                .collect();
            let mut count = 0usize;
            // A state's key in a round: its class, then (class index, target's
            // class) per live successor, in class-index order.
            let mut keys: Vec<u32> = Vec::with_capacity(n + 2 * adj.len());
            let mut key_off: Vec<usize> = Vec::with_capacity(n + 1);
            // A round costs at most n + row runs (later rounds revisit only what
            // changed; the budget counts the worst case). Short classes (strings of up to
            // SHORT_TOKEN_BYTES) are always computed. Full classes take up to
            // `depth + 1` rounds, within a budget and at most [`FULL_ROUNDS`];
            // a machine over budget or not settled by then (counters, long
            // number bounds) gives each state its own full class (exact,
            // merely without sharing of whole masks).
            let cost = n + 2 * adj.len();
            let full_rounds = (depth + 1).min(FULL_ROUNDS);
            let full_ok = cost.saturating_mul(full_rounds) <= 4_000_000;
            let rounds = if full_ok { full_rounds } else { (SHORT_TOKEN_BYTES + 2).min(depth + 1) };
            let mut short: Option<Vec<u32>> = None;
            let mut stable = false;
            let mut gave_up = false;
            // A state's key: (first class of a run, the target's class) at
            // each change along its row. Equal rows of classes, equal keys.
            let key_of = |s: usize, class: &[u32], keys: &mut Vec<u32>| {
                let mut prev = DEAD;
                for &(j, t) in &adj[adj_off[s] as usize..adj_off[s + 1] as usize] {
                    let c = if t == DEAD { DEAD } else { class[t as usize] };
                    if c != prev {
                        keys.push(j);
                        keys.push(c);
                        prev = c;
                    }
                }
            };
            // After the first round, a round only revisits classes holding
            // a predecessor of a state that changed class in the last one
            // (the others cannot split): Moore's rounds exactly, at the cost
            // of what changes. A key trie splits one level per round, and
            // recomputing every state's key each round was most of a first
            // visit to an object of a few hundred declared names.
            let (pred_off, preds) = crate::grammar::group_by_key(n, |f: &mut dyn FnMut(usize, u32)| {
                for s in 0..n {
                    for &(_, t) in &adj[adj_off[s] as usize..adj_off[s + 1] as usize] {
                        if t != DEAD {
                            f(t as usize, s as u32);
                        }
                    }
                }
            });
            let mut members: Vec<Vec<u32>> = Vec::new();
            let mut dirty: Vec<u32> = Vec::new();
            let mut in_dirty: Vec<bool> = Vec::new();
            for round in 0..rounds {
                if round == SHORT_TOKEN_BYTES + 1 {
                    short = Some(class.clone());
                    // Most states already stand alone (a large key trie): more
                    // rounds would buy little sharing for their cost.
                    if count * 2 > n {
                        gave_up = true;
                        break;
                    }
                }
                if round == 0 {
                    keys.clear();
                    key_off.clear();
                    key_off.push(0);
                    for s in 0..n {
                        keys.push(class[s]);
                        key_of(s, &class, &mut keys);
                        key_off.push(keys.len());
                    }
                    (class, count) = intern_keys(&keys, &key_off);
                    members = vec![Vec::new(); count];
                    for (s, &c) in class.iter().enumerate() {
                        members[c as usize].push(s as u32);
                    }
                    dirty = (0..count as u32).collect();
                    in_dirty = vec![true; count];
                    continue;
                }
                let prev = class.clone();
                let mut moved: Vec<u32> = Vec::new();
                for c in std::mem::take(&mut dirty) {
                    in_dirty[c as usize] = false;
                    if members[c as usize].len() < 2 {
                        continue;
                    }
                    let ms = std::mem::take(&mut members[c as usize]);
                    keys.clear();
                    key_off.clear();
                    key_off.push(0);
                    for &s in &ms {
                        key_of(s as usize, &prev, &mut keys);
                        key_off.push(keys.len());
                    }
                    let (group, ngroups) = intern_keys(&keys, &key_off);
                    if ngroups == 1 {
                        members[c as usize] = ms;
                        continue;
                    }
                    // Group 0 keeps the class id; the others take new ones.
                    let base = members.len() as u32;
                    members.extend((1..ngroups).map(|_| Vec::new()));
                    in_dirty.resize(members.len(), false);
                    let mut stay = Vec::new();
                    for (&s, &gi) in ms.iter().zip(&group) {
                        if gi == 0 {
                            stay.push(s);
                        } else {
                            class[s as usize] = base + gi - 1;
                            members[(base + gi - 1) as usize].push(s);
                            moved.push(s);
                        }
                    }
                    members[c as usize] = stay;
                }
                if moved.is_empty() {
                    stable = true;
                    break;
                }
                count = members.len();
                for &t in &moved {
                    for &p in &preds[pred_off[t as usize] as usize..pred_off[t as usize + 1] as usize] {
                        let cp = class[p as usize];
                        if !in_dirty[cp as usize] {
                            in_dirty[cp as usize] = true;
                            dirty.push(cp);
                        }
                    }
                }
            }
            // Stable before the snapshot: the final classes are the short ones.
            let short = short.unwrap_or_else(|| class.clone());
            if gave_up || (!stable && rounds < depth + 1) {
                class = (0..n as u32).collect();
            }
            // Representative: the class member first in canonical order, as
            // a canonical index (so that another grammar holding the same
            // machine can use it).
            let reps_of = |class: &[u32]| -> Vec<u32> {
                let mut rep_of_class: ahash::AHashMap<u32, u32> = Default::default();
                (0..n as u32)
                    .map(|ci| *rep_of_class.entry(class[(canon[ci as usize] - first) as usize]).or_insert(ci))
                    .collect()
            };
            Ok(Arc::new((reps_of(&class), reps_of(&short))))
        };
        // A large tree (an `enum` trie: nearly every state entered from one
        // place) has few states with the same future, and each of its
        // states' masks is a short walk: every state is its own class,
        // without refining (the first rounds of a 5,600-state trie were
        // most of the first mask at its start).
        let tree = n >= TREE_STATES && {
            let mut entered = vec![0u8; n];
            for &(_, t) in &adj {
                if t != DEAD {
                    entered[t as usize] = entered[t as usize].saturating_add(1);
                }
            }
            entered.iter().filter(|&&e| e == 1).count() * 10 >= n * 9
        };
        let (rep, rep_short) = if tree {
            let own: Vec<u32> = (first..first + n as u32).collect();
            (own.clone(), own)
        } else {
            let key = (format!("{sig:032x}"), depth);
            let reps = CLASSES.get_or_build(key, |r| r.0.len() * 2, refine).ok()?;
            let mut rep = vec![0u32; n];
            let mut rep_short = vec![0u32; n];
            for (ci, &s) in canon.iter().enumerate() {
                rep[(s - first) as usize] = canon[reps.0[ci] as usize];
                rep_short[(s - first) as usize] = canon[reps.1[ci] as usize];
            }
            (rep, rep_short)
        };
        let return_only = (first as usize..last).all(|s| !g.accept[s] || !g.has_out[s]);
        let share = sig ^ follow_key(g, m);
        Some(Leaf { first, canon, canon_of, rep, rep_short, return_only, share })
    }

    pub fn rep(&self, s: u32) -> u32 {
        self.rep[(s - self.first) as usize]
    }

    pub fn rep_short(&self, s: u32) -> u32 {
        self.rep_short[(s - self.first) as usize]
    }

    fn key(&self, s: u32, limit: usize) -> (u128, u32, usize) {
        (self.share, self.canon_of[(s - self.first) as usize], limit)
    }
}

/// Machine `m`'s FOLLOW bytes as a 128-bit key (zero when there are none),
/// to tell apart masks of one machine in grammars where different bytes may
/// follow it.
pub(crate) fn follow_key(g: &Grammar, m: u32) -> u128 {
    use std::hash::{Hash, Hasher};
    let f = g.follow.get(m as usize).copied().unwrap_or([u64::MAX; 4]);
    if f == [0; 4] {
        return 0;
    }
    let mut h1 = std::collections::hash_map::DefaultHasher::new();
    let mut h2 = std::collections::hash_map::DefaultHasher::new();
    0x51_7cc1_b727_220au64.hash(&mut h2);
    f.hash(&mut h1);
    f.hash(&mut h2);
    (h1.finish() as u128) << 64 | h2.finish() as u128
}

/// Numbers the keys `keys[key_off[i]..key_off[i + 1]]` by first
/// appearance (equal keys, equal numbers); returns the numbers and how many.
fn intern_keys(keys: &[u32], key_off: &[usize]) -> (Vec<u32>, usize) {
    let mut ids: ahash::AHashMap<&[u32], u32> = ahash::AHashMap::with_capacity(16);
    let out = key_off
        .windows(2)
        .map(|w| {
            let l = ids.len() as u32;
            *ids.entry(&keys[w[0]..w[1]]).or_insert(l)
        })
        .collect();
    (out, ids.len())
}

/// A leaf state's [`LocalMask`] with states in canonical numbering, so that
/// another grammar holding the same machine can use it.
#[derive(Debug)]
struct Portable {
    bits: Arc<Vec<u32>>,
    groups: Vec<(Vec<u32>, Vec<u32>)>,
}

/// (machine signature, canonical state, parse limit) → mask.
type PortableMap = ahash::AHashMap<(u128, u32, usize), Arc<Portable>>;

/// Per-vocabulary cache of leaf-machine masks, keyed by machine signature,
/// canonical state and parse limit. Bounded: past [`SharedMasks::MAX_BYTES`]
/// new masks are computed but not kept.
#[derive(Debug, Default)]

pub(crate) struct SharedMasks {
    map: std::sync::Mutex<(PortableMap, usize)>,
    /// Counted-string masks: (table signature, table state, window) → bits
    /// and the trie nodes that close the string (the only dependent group).
    virt: std::sync::Mutex<VirtualMap>,
}

type VirtualMap = ahash::AHashMap<(u128, u32, Vec<u32>), (Arc<Vec<u32>>, Arc<Vec<u32>>)>;

impl SharedMasks {
    /// The cache of `vocab` (kept in its slot, see [`crate::slot`]).
    pub(crate) fn of(vocab: &Vocabulary) -> &SharedMasks {
        vocab.shared_masks.get_or_init(SharedMasks::default)
    }
    /// Most bytes of mask bits kept per vocabulary.
    pub const MAX_BYTES: usize = 256 << 20;

    /// The local mask of virtual state `s` of a counted machine (`key`:
    /// its signature and window, see [`crate::grammar::counted`]), from the
    /// cache or computed and cached. The only accepting state is the closed
    /// one, `done`, so a mask has at most one dependent group, from there.
    pub fn get_or_compute_virtual(
        &self,
        key: (u128, u32, Vec<u32>),
        done: u32,
        compute: impl FnOnce() -> LocalMask,
    ) -> LocalMask {
        let from = |bits: Arc<Vec<u32>>, nodes: &Arc<Vec<u32>>| {
            let groups = if nodes.is_empty() {
                Vec::new()
            } else {
                vec![DepGroup { configs: vec![Config { state: done, stack: BASE }], nodes: nodes.to_vec() }]
            };
            LocalMask::new(bits, groups, Stacks::default())
        };
        if let Some((bits, nodes)) = self.virt.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return from(bits, &nodes);
        }
        let lm = compute();
        debug_assert!(
            lm.groups.len() <= 1 && lm.groups.iter().all(|g| g.configs == [Config { state: done, stack: BASE }])
        );
        let nodes: Vec<u32> = lm.groups.iter().flat_map(|g| g.nodes.iter().copied()).collect();
        if let (Ok(mut v), Ok(mut m)) = (self.virt.lock(), self.map.lock()) {
            let bytes = lm.bits.len() * 4 + nodes.len() * 4;
            if m.1 + bytes <= Self::MAX_BYTES {
                m.1 += bytes;
                v.insert(key, (lm.bits.clone(), Arc::new(nodes)));
            }
        }
        lm
    }

    /// The local mask of leaf state `s` (a class representative), from the
    /// cache or computed and cached.
    pub fn get_or_compute(&self, leaf: &Leaf, s: u32, limit: usize, compute: impl FnOnce() -> LocalMask) -> LocalMask {
        let key = leaf.key(s, limit);
        let hit = self.map.lock().map(|m| m.0.get(&key).cloned()).unwrap_or(None);
        if let Some(p) = hit {
            let to_state = |c: u32| Config { state: leaf.canon[c as usize], stack: BASE };
            let groups = p
                .groups
                .iter()
                .map(|(cs, nodes)| DepGroup {
                    configs: cs.iter().map(|&c| to_state(c)).collect(),
                    nodes: nodes.clone(),
                })
                .collect();
            return LocalMask::new(p.bits.clone(), groups, Stacks::default());
        }
        let lm = compute();
        // Leaf walks never push: every configuration sits on BASE.
        let portable = lm.groups.iter().all(|g| g.configs.iter().all(|c| c.stack == BASE));
        if portable {
            let p = Portable {
                bits: lm.bits.clone(),
                groups: lm
                    .groups
                    .iter()
                    .map(|g| {
                        (
                            g.configs.iter().map(|c| leaf.canon_of[(c.state - leaf.first) as usize]).collect(),
                            g.nodes.clone(),
                        )
                    })
                    .collect(),
            };
            if let Ok(mut m) = self.map.lock() {
                let bytes = p.bits.len() * 4;
                if m.1 + bytes <= Self::MAX_BYTES {
                    m.1 += bytes;
                    m.0.insert(key, Arc::new(p));
                }
            }
        }
        lm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bitmap path and the sorting path give the same words, and the
    /// bitmap is left all zero.
    #[test]
    fn sparse_words_agree_on_both_paths() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut bitmap = Vec::new();
        for n in [0usize, 1, 5, 256, 257, 1000, 5000] {
            let tokens: Vec<u32> = (0..n).map(|_| (next() % 128_256) as u32).collect();
            let got = sparse_words(&mut tokens.clone(), &mut bitmap);
            let mut want: std::collections::BTreeMap<u32, u32> = Default::default();
            for &t in &tokens {
                *want.entry(t / 32).or_default() |= 1 << (t % 32);
            }
            assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{n} tokens");
            assert!(bitmap.iter().all(|&w| w == 0), "bitmap left dirty after {n} tokens");
        }
    }
}
