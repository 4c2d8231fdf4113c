//! Counted strings: a string machine whose character count lives in the
//! state id instead of in the automaton.
//!
//! A string with `maxLength: 32767` as an explicit automaton has 32,768
//! copies of the JSON-string decoder (times its pattern DFA): hundreds of
//! thousands of states to build, store and analyze. Here the machine is the
//! decoder × pattern table *without* a counter ([`CountedTable`]), and its
//! states are *virtual*: id `base + c·S + s` stands for "table state `s`
//! after `c` characters" (`S` table states, `0 ≤ c ≤ maxLength`), plus one
//! id for "after the closing quote". Transitions are arithmetic on the id.
//!
//! Trimming, which explicit machines get from the grammar builder, is a
//! precomputed bitset: `live(c, s)` holds when some way on from table state
//! `s` closes the string with a total length in `[minLength, maxLength]`.
//! A transition into a state that is not live is dead, so the invariant that
//! every state can reach its machine's exit holds for virtual states too.
//!
//! Masks: what a token can do from `(c, s)` depends on `s` and on liveness
//! for counts `c ..= c + L` (`L` = longest token in bytes; a token adds at
//! most one character per byte). Each count's liveness column is interned
//! ([`Counted::column`]), so a window is a short list of ids: the key under
//! which [`crate::compiled`] shares masks between virtual states.

use super::DEAD;
use crate::strings::CountedTable;

/// Marks a transition that starts a new character.
const INC: u32 = 1 << 31;

/// Bits of table state × count, bounded so that the tables stay small
/// (4 MiB per bitset).
pub(crate) const MAX_CELLS: u64 = 1 << 25;

/// One counted machine in a compiled grammar.
#[derive(Debug)]
pub(crate) struct Counted {
    /// Machine id in the grammar.
    pub machine: u32,
    /// First virtual id.
    pub base: u32,
    /// Table states (`S`).
    pub n: u32,
    /// Largest count (`maxLength`).
    pub max: u32,
    /// `trans[s * nclasses + class]`: target table state, [`INC`] when the
    /// byte starts a character; [`DEAD`] when absent.
    trans: Vec<u32>,
    /// Table states after the closing quote with every pattern satisfied.
    done: Vec<bool>,
    /// `live` bit of `c * n + s`.
    live: Vec<u64>,
    /// Interned liveness column of each count.
    col: Vec<u32>,
    /// Hash of the table and bounds: equal signatures, equal machines (the
    /// key of masks shared across grammars).
    pub sig: u128,
}

/// Liveness of a counted table, before byte classes are known.
#[derive(Debug)]
pub(crate) struct CountedLive {
    live: Vec<u64>,
    col: Vec<u32>,
}

impl CountedLive {
    /// Whether the start state (count 0) is live: the machine accepts
    /// something.
    pub fn nonempty(&self) -> bool {
        bit(&self.live, 0)
    }
}

#[inline(always)]
fn bit(v: &[u64], i: usize) -> bool {
    (v[i >> 6] >> (i & 63)) & 1 == 1
}

#[inline(always)]
fn set(v: &mut [u64], i: usize) {
    v[i >> 6] |= 1 << (i & 63);
}

/// Computes which (count, table state) pairs can still end in range.
pub(crate) fn liveness(t: &CountedTable) -> Result<CountedLive, String> {
    let s_n = t.accept.len();
    let max = t.max_len;
    let cells = (max + 1).saturating_mul(s_n as u64);
    if cells > MAX_CELLS || max >= u32::MAX as u64 / 2 {
        return Err(format!("counted string needs {cells} cells (more than {MAX_CELLS})"));
    }
    let max = max as usize;
    // Edges (s, t, starts a character), deduplicated.
    let mut zero: Vec<Vec<u32>> = vec![Vec::new(); s_n];
    let mut one: Vec<Vec<u32>> = vec![Vec::new(); s_n];
    for (s, rs) in t.ranges.iter().enumerate() {
        for &(_, _, to, inc) in rs {
            let e = if inc { &mut one[s] } else { &mut zero[s] };
            if !e.contains(&to) {
                e.push(to);
            }
        }
    }
    // Edges that start no character form a DAG (the decoder always finishes
    // a character before it loops); order it so that targets come first.
    let mut indeg = vec![0u32; s_n];
    for z in &zero {
        for &to in z {
            indeg[to as usize] += 1;
        }
    }
    let mut order: Vec<u32> = (0..s_n as u32).filter(|&s| indeg[s as usize] == 0).collect();
    let mut i = 0;
    while i < order.len() {
        let s = order[i] as usize;
        i += 1;
        for &to in &zero[s] {
            indeg[to as usize] -= 1;
            if indeg[to as usize] == 0 {
                order.push(to);
            }
        }
    }
    if order.len() != s_n {
        return Err("internal: a counted string loops without reading a character".into());
    }
    order.reverse();
    // reach(k, s): from s the string can close after exactly k more characters.
    let words = ((max + 1) * s_n).div_ceil(64);
    let mut reach = vec![0u64; words];
    let same_column = |v: &[u64], a: usize, b: usize| (0..s_n).all(|s| bit(v, a * s_n + s) == bit(v, b * s_n + s));
    for k in 0..=max {
        for &s in &order {
            let s = s as usize;
            let r = (k == 0 && t.accept[s])
                || zero[s].iter().any(|&to| bit(&reach, k * s_n + to as usize))
                || (k > 0 && one[s].iter().any(|&to| bit(&reach, (k - 1) * s_n + to as usize)));
            if r {
                set(&mut reach, k * s_n + s);
            }
        }
        // For k ≥ 1 each column is one function of the previous one: once
        // two agree, every later column is the same (free text reaches this
        // after a few characters; `maxLength: 65535` need not run 65,535
        // rounds).
        if k >= 2 && same_column(&reach, k, k - 1) {
            for k2 in k + 1..=max {
                for s in 0..s_n {
                    if bit(&reach, k * s_n + s) {
                        set(&mut reach, k2 * s_n + s);
                    }
                }
            }
            break;
        }
    }
    // live(c, s): some k in [min − c, max − c] with reach(k, s).
    let min = t.min_len.min(max as u64 + 1) as usize;
    let mut live = vec![0u64; words];
    let mut next_true = vec![usize::MAX; max + 2];
    for s in 0..s_n {
        next_true[max + 1] = usize::MAX;
        for k in (0..=max).rev() {
            next_true[k] = if bit(&reach, k * s_n + s) { k } else { next_true[k + 1] };
        }
        for c in 0..=max {
            let lo = min.saturating_sub(c);
            if lo <= max && next_true[lo] <= max - c {
                set(&mut live, c * s_n + s);
            }
        }
    }
    // Intern each count's column of liveness bits.
    // Neighbouring columns mostly agree: compare with the previous one first.
    let mut ids: ahash::AHashMap<Vec<bool>, u32> = Default::default();
    let mut col: Vec<u32> = Vec::with_capacity(max + 1);
    for c in 0..=max {
        if c > 0 && same_column(&live, c, c - 1) {
            col.push(col[c - 1]);
            continue;
        }
        let key: Vec<bool> = (0..s_n).map(|s| bit(&live, c * s_n + s)).collect();
        let l = ids.len() as u32;
        col.push(*ids.entry(key).or_insert(l));
    }
    Ok(CountedLive { live, col })
}

impl Counted {
    /// Lays out the machine at virtual id `base` over the grammar's byte
    /// classes (which respect every range of `t`).
    pub fn new(
        t: &CountedTable,
        live: CountedLive,
        machine: u32,
        base: u32,
        classes: &[u8; 256],
        nclasses: usize,
    ) -> Counted {
        let n = t.accept.len();
        let mut trans = vec![DEAD; n * nclasses];
        for (s, rs) in t.ranges.iter().enumerate() {
            for &(lo, hi, to, inc) in rs {
                for c in classes[lo as usize]..=classes[hi as usize] {
                    trans[s * nclasses + c as usize] = to | if inc { INC } else { 0 };
                }
            }
        }
        let sig = {
            use std::hash::{Hash, Hasher};
            let mut h1 = std::collections::hash_map::DefaultHasher::new();
            let mut h2 = std::collections::hash_map::DefaultHasher::new();
            0x5bd1_e995u64.hash(&mut h2);
            for h in [&mut h1, &mut h2] {
                (&t.ranges, &t.accept, t.min_len, t.max_len).hash(h);
            }
            (h1.finish() as u128) << 64 | h2.finish() as u128
        };
        Counted {
            sig,
            machine,
            base,
            n: n as u32,
            max: t.max_len as u32,
            trans,
            done: t.accept.clone(),
            live: live.live,
            col: live.col,
        }
    }

    /// Virtual ids taken: every (count, state) pair and the closed state.
    pub fn size(&self) -> u32 {
        self.n * (self.max + 1) + 1
    }

    /// The state after the closing quote: accepting, no way on.
    #[inline(always)]
    pub fn done_id(&self) -> u32 {
        self.base + self.n * (self.max + 1)
    }

    /// The start state (count 0, table state 0).
    pub fn start(&self) -> u32 {
        self.base
    }

    /// `(count, table state)` of a virtual id other than [`Counted::done_id`].
    #[inline(always)]
    pub fn split(&self, v: u32) -> (u32, u32) {
        let off = v - self.base;
        (off / self.n, off % self.n)
    }

    /// The transition on a byte of class `cls` from virtual id `v`.
    #[inline(always)]
    pub fn next(&self, v: u32, cls: usize, nclasses: usize) -> u32 {
        if v == self.done_id() {
            return DEAD;
        }
        let (c, s) = self.split(v);
        let raw = self.trans[s as usize * nclasses + cls];
        if raw == DEAD {
            return DEAD;
        }
        let to = raw & !INC;
        let c2 = c + u32::from(raw & INC != 0);
        if c2 > self.max {
            return DEAD;
        }
        let cell = c2 as usize * self.n as usize + to as usize;
        if !bit(&self.live, cell) {
            return DEAD;
        }
        if self.done[to as usize] {
            self.done_id()
        } else {
            self.base + cell as u32
        }
    }

    /// Bytes of plain text that surely stay live from virtual id `v` (at
    /// most `cap`), for [`crate::mask::plain_reach`]: a search over (plain
    /// state, table state) pairs, which stay few, where the explicit search
    /// over virtual ids would carry every count a path can have. A table
    /// state reached within `l` bytes must be live at every count from `c`
    /// to `c + l` (a byte adds at most one character): a lower bound, which
    /// is all a caller needs. `plain[p]`: one byte per distinct (grammar
    /// class, next plain state) from plain state `p`.
    pub fn plain_reach(
        &self,
        v: u32,
        cap: usize,
        plain: &[Vec<(u8, u8)>],
        classes: &[u8; 256],
        nclasses: usize,
    ) -> usize {
        if v == self.done_id() {
            return 0;
        }
        let (c, s0) = self.split(v);
        let live = |q: u32, k: u32| k <= self.max && bit(&self.live, k as usize * self.n as usize + q as usize);
        // Every table state met so far must stay live at every count it can
        // have (from `c`: a byte inside an escape starts no character, up
        // to `c + l`): at level `l` each met state is checked at count
        // `c + l`, and a state met for the first time at every count from
        // `c` on.
        let mut met: Vec<u32> = vec![s0];
        let mut level: Vec<(u8, u32)> = vec![(0, s0)];
        let mut next: Vec<(u8, u32)> = Vec::new();
        let mut work = 0;
        for l in 1..=cap {
            let k = c + l as u32;
            next.clear();
            for &(p, q) in &level {
                for &(b, p2) in &plain[p as usize] {
                    let raw = self.trans[q as usize * nclasses + classes[b as usize] as usize];
                    if raw == DEAD || self.done[(raw & !INC) as usize] {
                        return l - 1;
                    }
                    next.push((p2, raw & !INC));
                }
            }
            work += next.len() + met.len();
            next.sort_unstable();
            next.dedup();
            if !met.iter().all(|&q| live(q, k)) {
                return l - 1;
            }
            for &(_, q) in &next {
                if !met.contains(&q) {
                    if met.len() == 512 || !(c..=k).all(|j| live(q, j)) {
                        return l - 1;
                    }
                    met.push(q);
                }
            }
            std::mem::swap(&mut level, &mut next);
            if level.len() > 256 || work > crate::mask::REACH_BUDGET {
                return l; // too costly to follow further; what was checked holds
            }
        }
        cap
    }

    /// The transition on a byte of class `cls` from `(count, table state)`:
    /// the pair after it, `(u32::MAX, u32::MAX)` once the string is closed
    /// (no way on from there), `None` when dead. [`Counted::next`] without
    /// the virtual ids.
    #[inline(always)]
    pub fn step_pair(&self, c: u32, s: u32, cls: usize, nclasses: usize) -> Option<(u32, u32)> {
        if c == u32::MAX {
            return None;
        }
        let raw = self.trans[s as usize * nclasses + cls];
        if raw == DEAD {
            return None;
        }
        let to = raw & !INC;
        let c2 = c + u32::from(raw & INC != 0);
        if c2 > self.max || !bit(&self.live, c2 as usize * self.n as usize + to as usize) {
            return None;
        }
        Some(if self.done[to as usize] { (u32::MAX, u32::MAX) } else { (c2, to) })
    }

    /// What decides the mask at `v` for tokens of at most `depth` bytes:
    /// the table state and the liveness columns of the counts a token can
    /// reach. Equal keys, equal masks.
    pub fn window(&self, v: u32, depth: usize) -> (u32, Vec<u32>) {
        if v == self.done_id() {
            return (u32::MAX, Vec::new());
        }
        let (c, s) = self.split(v);
        let hi = (c as usize + depth).min(self.max as usize);
        (s, self.col[c as usize..=hi].to_vec())
    }

    pub fn memory_bytes(&self) -> usize {
        self.trans.capacity() * 4 + self.done.capacity() + self.live.capacity() * 8 + self.col.capacity() * 4
    }
}
