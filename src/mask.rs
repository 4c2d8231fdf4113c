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

use crate::grammar::Grammar;
use crate::pda::{step_in_place, Config, Stacks, StepFlags, BASE};
use crate::vocab::TokTrie;

/// Reusable buffers for [`walk`]; owned by a matcher so that computing a
/// mask does not allocate once warm.
#[derive(Default, Debug, Clone)]
pub(crate) struct Scratch {
    buf: Vec<Config>,
    lvl: Vec<usize>,
    pub init: Vec<Config>,
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
    pub bits: Vec<u32>,
    pub groups: Vec<DepGroup>,
    /// Stacks referenced by `groups` (rooted at [`BASE`]).
    pub stacks: Stacks,
}

impl LocalMask {
    pub fn memory_bytes(&self) -> usize {
        self.bits.capacity() * 4
            + self.groups.iter().map(|g| g.configs.capacity() * 8 + g.nodes.capacity() * 4 + 48).sum::<usize>()
            + self.stacks.memory_bytes()
    }
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
        sc.lvl.push(sc.buf.len());
        i += 1;
    }
    Ok(())
}

/// Computes the [`LocalMask`] of state `s`.
pub(crate) fn compute_local(g: &Grammar, trie: &TokTrie, s: u32, words: usize, limit: usize) -> LocalMask {
    let mut stacks = Stacks::default();
    let mut bits = vec![0u32; words];
    let mut groups: Vec<DepGroup> = Vec::new();
    let mut index: ahash::AHashMap<Vec<Config>, usize> = Default::default();
    let mut sc = Scratch::default();
    let init = [Config { state: s, stack: BASE }];
    let mut on_dep = |node: usize, parent: &[Config]| {
        let gi = match index.get(parent) {
            Some(&gi) => gi,
            None => {
                groups.push(DepGroup { configs: parent.to_vec(), nodes: Vec::new() });
                index.insert(parent.to_vec(), groups.len() - 1);
                groups.len() - 1
            }
        };
        groups[gi].nodes.push(node as u32);
    };
    // An overflow here leaves a partial local mask; the caller's full walk
    // reports the overflow. To stay exact, fall back to "everything is
    // dependent" (one group at the root) in that case.
    let r = walk(g, trie, &mut stacks, 1, trie.len(), &init, &mut sc, &mut bits, limit, &mut on_dep);
    if r.is_err() {
        bits.iter_mut().for_each(|w| *w = 0);
        return LocalMask {
            bits,
            groups: vec![DepGroup { configs: init.to_vec(), nodes: vec![1] }],
            stacks: Stacks::default(),
        }
        .whole_trie(trie);
    }
    LocalMask { bits, groups, stacks }
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
