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
//! (see [`Counted::window`]), so a window is a short list of ids: the key under
//! which [`crate::compiled`] shares masks between virtual states.

/// The step budget of a counted string's reach searches (in
/// [`crate::mask`] and [`Counted`]'s own), below the mask layer's general
/// one: searches run length by length over (count, state) pairs that never
/// repeat, so a long one rarely ends in a proof, and a state's mask is
/// computed again at every table state a string passes.
pub(crate) const REACH_BUDGET_COUNTED: usize = 1 << 14;

use super::DEAD;
use crate::automata::strings::CountedTable;

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
    // reach(k, s): from s the string can close after exactly k more
    // characters. Column k (over table states) is a function of column
    // k − 1 alone, so the sequence of columns is eventually periodic: it
    // is computed until a column repeats (`maxLength: 65535` over free text
    // repeats after a few characters), and column k ≥ `j` is column
    // `j + (k − j) mod p`.
    let cw = s_n.div_ceil(64);
    let mut reach: Vec<u64> = Vec::new();
    let mut seen: ahash::AHashMap<Vec<u64>, usize> = Default::default();
    let (mut j, mut p) = (max + 1, 1);
    let mut col_k = vec![0u64; cw];
    for k in 0..=max {
        col_k.iter_mut().for_each(|w| *w = 0);
        for &s in &order {
            let s = s as usize;
            let r = (k == 0 && t.accept[s])
                || zero[s].iter().any(|&to| bit(&col_k, to as usize))
                || (k > 0 && one[s].iter().any(|&to| bit(&reach[(k - 1) * cw..k * cw], to as usize)));
            if r {
                set(&mut col_k, s);
            }
        }
        if let Some(&first) = seen.get(&col_k) {
            (j, p) = (first, k - first);
            break;
        }
        seen.insert(col_k.clone(), k);
        reach.extend_from_slice(&col_k);
    }
    let base_col = |k: usize| if k < j { k } else { j + (k - j) % p };
    // live(c, s): some k in [min − c, max − c] with reach(k, s). A window
    // is reduced to the base columns it covers: its part before `j`, and at
    // most one period after; consecutive counts mostly share a window.
    let min = t.min_len.min(max as u64 + 1) as usize;
    let window = |c: usize| -> (usize, usize, usize, usize) {
        let (lo, hi) = (min.saturating_sub(c), max - c);
        if lo > hi {
            return (0, 0, 0, 0);
        }
        let pre = if lo < j { (lo, hi.min(j - 1) + 1) } else { (0, 0) };
        let from = lo.max(j);
        let per = if hi >= from { (base_col(from), (hi - from + 1).min(p)) } else { (0, 0) };
        (pre.0, pre.1, per.0, per.1)
    };
    let mut ids: ahash::AHashMap<Vec<u64>, u32> = Default::default();
    let mut cols: Vec<u64> = Vec::new();
    let mut col: Vec<u32> = Vec::with_capacity(max + 1);
    let mut last = None;
    let mut acc = vec![0u64; cw];
    for c in 0..=max {
        let w = window(c);
        if let (Some((lw, id)), true) = (last, c > 0) {
            if lw == w {
                col.push(id);
                continue;
            }
        }
        acc.iter_mut().for_each(|x| *x = 0);
        let (a, b, from, len) = w;
        let ks = (a..b).chain((0..len).map(|i| base_col(from + i)));
        for k in ks {
            for (x, y) in acc.iter_mut().zip(&reach[k * cw..(k + 1) * cw]) {
                *x |= y;
            }
        }
        let n_ids = ids.len() as u32;
        let id = *ids.entry(acc.clone()).or_insert_with(|| {
            cols.extend_from_slice(&acc);
            n_ids
        });
        last = Some((w, id));
        col.push(id);
    }
    // The flat bitset the transitions read: column `col[c]` at bit c·S.
    let words = ((max + 1) * s_n).div_ceil(64);
    let mut live = vec![0u64; words];
    for (c, &id) in col.iter().enumerate() {
        let o = c * s_n;
        for (i, &x) in cols[id as usize * cw..(id as usize + 1) * cw].iter().enumerate() {
            let at = o + i * 64;
            live[at >> 6] |= x << (at & 63);
            if at & 63 != 0 && x >> (64 - (at & 63)) != 0 {
                live[(at >> 6) + 1] |= x >> (64 - (at & 63));
            }
        }
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
            if level.len() > 256 || work > REACH_BUDGET_COUNTED {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `live(c, s)` by its definition: some k in `[min − c, max − c]` with
    /// reach(k, s), reach by dynamic programming over every k.
    fn live_by_definition(t: &CountedTable) -> Vec<bool> {
        let (n, max) = (t.accept.len(), t.max_len as usize);
        let mut reach = vec![vec![false; n]; max + 1];
        for k in 0..=max {
            // Zero edges go to higher states only: fill from the top.
            for s in (0..n).rev() {
                reach[k][s] = (k == 0 && t.accept[s])
                    || t.ranges[s].iter().any(|&(_, _, to, inc)| {
                        if inc {
                            k > 0 && reach[k - 1][to as usize]
                        } else {
                            reach[k][to as usize]
                        }
                    });
            }
        }
        let min = t.min_len as usize;
        let mut live = vec![false; (max + 1) * n];
        for c in 0..=max {
            for s in 0..n {
                live[c * n + s] = (min.saturating_sub(c)..=max - c).any(|k| reach[k][s]);
            }
        }
        live
    }

    /// Random tables, including periodic ones (cycles of character edges)
    /// and long counts: the periodic shortcut must agree with the definition.
    #[test]
    fn liveness_equals_its_definition() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for case in 0..400 {
            let n = 1 + rnd(9) as usize;
            let mut ranges = vec![Vec::new(); n];
            for (s, r) in ranges.iter_mut().enumerate() {
                for _ in 0..rnd(4) {
                    let inc = s + 1 >= n || rnd(3) != 0;
                    let to = if inc { rnd(n as u64) as u32 } else { (s + 1 + rnd((n - s - 1) as u64) as usize) as u32 };
                    r.push((b'a', b'a', to, inc));
                }
            }
            let accept = (0..n).map(|_| rnd(3) == 0).collect();
            let max_len = if case % 4 == 0 { 200 + rnd(300) } else { rnd(12) };
            let min_len = rnd(max_len + 3);
            let t = CountedTable { ranges, accept, min_len, max_len };
            let got = liveness(&t).expect("small table");
            let want = live_by_definition(&t);
            for (i, &w) in want.iter().enumerate() {
                assert_eq!(bit(&got.live, i), w, "case {case}: cell {i} (count {}, state {})", i / n, i % n);
            }
            for c in 1..=max_len as usize {
                let same = (0..n).all(|s| want[c * n + s] == want[(c - 1) * n + s]);
                assert_eq!(same, got.col[c] == got.col[c - 1], "case {case}: column ids at count {c}");
            }
        }
    }
}
