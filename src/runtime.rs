//! The pushdown runtime: executes a compiled [`Grammar`] byte by byte.
//!
//! A *configuration* is a machine state plus a call stack. Stacks are
//! hash-consed in a [`Stacks`] arena, so a configuration is two `u32`s, cheap
//! to copy, compare and hash. A parse position is a small *set* of
//! configurations (a schema's `anyOf` can keep several parses alive); the set
//! is kept deduplicated and in insertion order.
//!
//! Two stack sentinels exist: [`EMPTY`], the bottom of a real parse (popping
//! it is impossible: the document is complete), and [`BASE`], the bottom of a
//! *context-free* walk used to precompute masks per state (popping it means
//! "the answer depends on the caller": the walker records the spot and
//! resolves it later with the real stack).

use crate::grammar::{Grammar, DEAD};

/// The bottom of a real parse stack.
pub(crate) const EMPTY: u32 = u32::MAX;
/// The bottom of a context-free walk (see module docs).
pub(crate) const BASE: u32 = u32::MAX - 1;

/// A machine state with its call stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Config {
    pub state: u32,
    pub stack: u32,
}

/// Hash-consed stacks: node `k` is `(return state, parent stack)`, with its
/// depth (frames from the bottom; [`EMPTY`] and [`BASE`] have depth 0).
#[derive(Clone, Debug, Default)]
pub(crate) struct Stacks {
    nodes: Vec<(u32, u32)>,
    depth: Vec<u32>,
    map: ahash::AHashMap<(u32, u32), u32>,
}

impl Stacks {
    #[inline]
    pub fn push(&mut self, ret: u32, parent: u32) -> u32 {
        if let Some(&k) = self.map.get(&(ret, parent)) {
            return k;
        }
        let k = self.nodes.len() as u32;
        debug_assert!(k < BASE);
        let d = self.depth(parent) + 1;
        self.nodes.push((ret, parent));
        self.depth.push(d);
        self.map.insert((ret, parent), k);
        k
    }
    #[inline]
    pub fn get(&self, k: u32) -> (u32, u32) {
        self.nodes[k as usize]
    }
    /// Frames in stack `k`.
    #[inline]
    pub fn depth(&self, k: u32) -> u32 {
        if k >= BASE {
            0
        } else {
            self.depth[k as usize]
        }
    }
    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * 8 + self.depth.capacity() * 4 + self.map.capacity() * 16
    }
    /// Rebuilds a stack of `from` (rooted at [`BASE`]) in `self`, with
    /// [`BASE`] replaced by `bottom`.
    pub fn rebase(&mut self, from: &Stacks, k: u32, bottom: u32) -> u32 {
        if k == BASE {
            return bottom;
        }
        if k == EMPTY {
            return EMPTY;
        }
        let (r, p) = from.get(k);
        let p2 = self.rebase(from, p, bottom);
        self.push(r, p2)
    }
}

/// Step results are appended to a caller-owned buffer; these flags report
/// what happened besides.
#[derive(Clone, Copy)]
pub(crate) struct StepFlags {
    /// A pop past [`BASE`] would have been needed.
    pub needs_context: bool,
    /// The smallest depth of a stack frame the step read (popped), 0 when
    /// it met the bottom of a real stack ([`EMPTY`]), `u32::MAX` when it
    /// read none. A walk that read no frame below depth `m` gives the same
    /// answer on every stack that agrees with this one down to depth `m`.
    pub min_read: u32,
}

impl Default for StepFlags {
    fn default() -> StepFlags {
        StepFlags { needs_context: false, min_read: u32::MAX }
    }
}

/// Consumes byte `b` from every configuration in `from`, appending the
/// (deduplicated) results to `out` from index `out_start` on.
#[inline]
pub(crate) fn step(
    g: &Grammar,
    stacks: &mut Stacks,
    from: &[Config],
    b: u8,
    out: &mut Vec<Config>,
    flags: &mut StepFlags,
) {
    let out_start = out.len();
    for &c in from {
        advance(g, stacks, c.state, c.stack, b, out, out_start, flags);
    }
}

/// Same as [`step`] but reading the source set from `out[a..z]` (used by the
/// trie walker, which keeps every level in one buffer).
#[inline]
pub(crate) fn step_in_place(
    g: &Grammar,
    stacks: &mut Stacks,
    out: &mut Vec<Config>,
    a: usize,
    z: usize,
    b: u8,
    flags: &mut StepFlags,
) {
    let out_start = out.len();
    for i in a..z {
        let c = out[i];
        advance(g, stacks, c.state, c.stack, b, out, out_start, flags);
    }
}

#[allow(clippy::too_many_arguments)]
fn advance(
    g: &Grammar,
    stacks: &mut Stacks,
    s: u32,
    k: u32,
    b: u8,
    out: &mut Vec<Config>,
    out_start: usize,
    flags: &mut StepFlags,
) {
    if g.first_has(s, b) {
        let t = g.next(s, b);
        if t != DEAD {
            emit(g, stacks, t, k, out, out_start, flags);
        }
        if s < g.nreal {
            for &(cs, r) in g.real_calls(s) {
                if g.first_has(cs, b) {
                    let nk = stacks.push(r, k);
                    advance(g, stacks, cs, nk, b, out, out_start, flags);
                }
            }
        } else {
            // Virtual states: only keyset states have calls.
            for (cs, r) in g.calls(s) {
                if g.first_has(cs, b) {
                    let nk = stacks.push(r, k);
                    advance(g, stacks, cs, nk, b, out, out_start, flags);
                }
            }
        }
    }
    if g.is_accept(s) {
        match k {
            EMPTY => flags.min_read = 0,
            // No caller takes `b` after this machine: nothing to ask.
            BASE => flags.needs_context |= g.follows(s, b),
            _ => {
                flags.min_read = flags.min_read.min(stacks.depth(k));
                let (r, p) = stacks.get(k);
                advance(g, stacks, r, p, b, out, out_start, flags);
            }
        }
    }
}

/// Adds a configuration, first popping through states that can only return.
#[inline]
fn emit(
    g: &Grammar,
    stacks: &Stacks,
    mut t: u32,
    mut k: u32,
    out: &mut Vec<Config>,
    out_start: usize,
    flags: &mut StepFlags,
) {
    while !g.has_out(t) && k != EMPTY && k != BASE {
        // A state with no edges is final (states are trimmed), so it returns.
        flags.min_read = flags.min_read.min(stacks.depth(k));
        let (r, p) = stacks.get(k);
        t = r;
        k = p;
    }
    if k == EMPTY && !g.has_out(t) {
        flags.min_read = 0;
    }
    let c = Config { state: t, stack: k };
    if !out[out_start..].contains(&c) {
        out.push(c);
    }
}

/// Whether the document may end in configuration `c`.
pub(crate) fn can_end(g: &Grammar, stacks: &Stacks, c: Config) -> bool {
    let (mut s, mut k) = (c.state, c.stack);
    loop {
        if !g.is_accept(s) {
            return false;
        }
        if k == EMPTY {
            return true;
        }
        if k == BASE {
            return false;
        }
        let (r, p) = stacks.get(k);
        s = r;
        k = p;
    }
}
