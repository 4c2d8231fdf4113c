//! Equivalent states of a regex DFA: which states accept the same
//! continuations, so that a product of several DFAs can key its states by
//! one representative per class instead of by whatever state each DFA
//! happened to reach.
//!
//! regex-automata's DFAs are built without minimization (minimizing every
//! DFA cost more than it saved on large `format` and key-set DFAs), and a
//! product multiplies each component's redundant states: `^.{60}$` beside
//! three search patterns reached tens of thousands of pairs that differ only
//! in which of two equivalent states a component was in. [`Equiv`] is the
//! coarsest partition Moore's refinement reaches (observable: does the
//! string read so far match), computed over the states reachable from the
//! anchored start, one representative byte per byte class. The block of the
//! dead state is represented by the dead state itself, so callers that test
//! `is_dead_state` prune every state that can no longer match.
//!
//! The refinement runs to a fixed point or not at all: a partition stopped
//! early is coarser than equivalence and would merge states that differ.
//! Over the budget (reachable states × classes × rounds), [`Equiv::of`]
//! returns `None` and the caller keeps the DFA's own states.

use crate::automata::lexer::Dfa;
use regex_automata::dfa::Automaton;
use regex_automata::util::primitives::StateID;
use regex_automata::{util::start, Anchored};
use std::sync::{Arc, Mutex, OnceLock};

/// DFAs whose classes the process keeps (as many as `compile_hir` keeps).
const CACHED: usize = 512;

/// Work allowed for one refinement, in (state, class) visits over all rounds.
const BUDGET: usize = 1 << 22;

/// A map from each reachable state of a DFA to its class representative.
#[derive(Debug)]
pub(crate) struct Equiv {
    stride2: usize,
    /// Indexed by the state's table index (`id >> stride2`); states never
    /// reached from the start map to themselves.
    rep: Vec<StateID>,
    /// Number of classes among the reachable states.
    #[cfg_attr(not(test), allow(dead_code))]
    blocks: usize,
}

impl Equiv {
    /// The classes of `d`'s states, or `None` when the refinement would
    /// exceed its budget.
    pub fn of(d: &Dfa) -> Option<Equiv> {
        let start = d.start_state(&start::Config::new().anchored(Anchored::Yes)).ok()?;
        let reps: Vec<u8> = d.byte_classes().representatives(..).filter_map(|u| u.as_u8()).collect();
        let k = reps.len();
        let stride2 = d.stride2();
        let index = |id: StateID| id.as_usize() >> stride2;
        // Reachable states in breadth-first order; `num[index]` = position.
        let mut states: Vec<StateID> = vec![start];
        let mut num: Vec<u32> = Vec::new();
        let set = |num: &mut Vec<u32>, i: usize, v: u32| {
            if num.len() <= i {
                num.resize(i + 1, u32::MAX);
            }
            num[i] = v;
        };
        set(&mut num, index(start), 0);
        let mut next: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < states.len() {
            let s = states[i];
            i += 1;
            for &b in &reps {
                let t = d.next_state(s, b);
                let ti = index(t);
                let n = match num.get(ti) {
                    Some(&n) if n != u32::MAX => n,
                    _ => {
                        let n = states.len() as u32;
                        if (n as usize).saturating_mul(k) > BUDGET {
                            return None;
                        }
                        set(&mut num, ti, n);
                        states.push(t);
                        n
                    }
                };
                next.push(n);
            }
        }
        let n = states.len();
        // Initial blocks: matches or not.
        let mut block: Vec<u32> = states.iter().map(|&s| u32::from(d.is_match_state(d.next_eoi_state(s)))).collect();
        let mut blocks = block.iter().collect::<std::collections::BTreeSet<_>>().len();
        let mut work = 0usize;
        let mut sig: ahash::AHashMap<Vec<u32>, u32> = Default::default();
        loop {
            work += n * k;
            if work > BUDGET {
                return None;
            }
            sig.clear();
            let mut fresh = vec![0u32; n];
            for s in 0..n {
                let mut key = Vec::with_capacity(k + 1);
                key.push(block[s]);
                key.extend(next[s * k..(s + 1) * k].iter().map(|&t| block[t as usize]));
                let l = sig.len() as u32;
                fresh[s] = *sig.entry(key).or_insert(l);
            }
            let now = sig.len();
            block = fresh;
            if now == blocks {
                break;
            }
            blocks = now;
        }
        // One representative per block: the dead state where the block
        // holds it, else the block's first state in breadth-first order.
        let mut chosen: Vec<Option<StateID>> = vec![None; blocks];
        for &s in &states {
            if d.is_dead_state(s) {
                chosen[block[num[index(s)] as usize] as usize] = Some(s);
            }
        }
        for (p, &s) in states.iter().enumerate() {
            chosen[block[p] as usize].get_or_insert(s);
        }
        let size = states.iter().map(|&s| index(s)).max().unwrap_or(0) + 1;
        let mut rep: Vec<StateID> = (0..size).map(|i| StateID::new_unchecked(i << stride2)).collect();
        for (p, &s) in states.iter().enumerate() {
            rep[index(s)] = chosen[block[p] as usize].expect("every block has a state");
        }
        Some(Equiv { stride2, rep, blocks })
    }

    /// [`Equiv::of`] computed once per DFA in the process (the DFAs of
    /// [`compile_hir`](crate::automata::lexer::compile_hir) are shared, so a
    /// format or pattern used in many products is refined once). Keyed by
    /// the DFA's address, with the DFA kept alive beside its entry so that
    /// no other DFA can take that address; past [`CACHED`] entries, computed
    /// and not kept.
    pub fn cached(d: &Arc<Dfa>) -> Option<Arc<Equiv>> {
        type Entries = ahash::AHashMap<usize, (Arc<Dfa>, Option<Arc<Equiv>>)>;
        static CACHE: OnceLock<Mutex<Entries>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = Arc::as_ptr(d) as usize;
        if let Some((_, e)) = cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return e;
        }
        let e = Equiv::of(d).map(Arc::new);
        if let Ok(mut m) = cache.lock() {
            if m.len() < CACHED {
                m.insert(key, (d.clone(), e.clone()));
            }
        }
        e
    }

    /// The representative of `id`'s class.
    #[inline]
    pub fn rep(&self, id: StateID) -> StateID {
        self.rep.get(id.as_usize() >> self.stride2).copied().unwrap_or(id)
    }

    /// Number of classes among the states reachable from the start.
    #[cfg(test)]
    pub fn classes(&self) -> usize {
        self.blocks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::automata::lexer::compile_hir;

    fn dfa(re: &str) -> Arc<Dfa> {
        compile_hir(&crate::automata::lexer::parse(re).unwrap(), 1 << 24).unwrap()
    }

    /// Runs `d` over `s` from the anchored start, through representatives
    /// when `e` is given.
    fn run(d: &Dfa, e: Option<&Equiv>, s: &[u8]) -> (bool, bool) {
        let mut id = d.start_state(&start::Config::new().anchored(Anchored::Yes)).unwrap();
        for &b in s {
            id = d.next_state(id, b);
            if let Some(e) = e {
                id = e.rep(id);
            }
        }
        (d.is_match_state(d.next_eoi_state(id)), d.is_dead_state(id))
    }

    #[test]
    fn representatives_keep_the_language() {
        let cases = ["(ab|cb)*c", "^.{6}$", "(a|b)*abb", "[a-z]+[0-9]?", "x?y?z?", "(aa|a)*"];
        for re in cases {
            let d = dfa(re);
            let e = Equiv::of(&d).expect("small DFA");
            let mut rng = 7u64;
            for _ in 0..2000 {
                let len = (rng % 9) as usize;
                let mut s = Vec::new();
                for _ in 0..len {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    s.push(b"abcxyz019 "[(rng >> 33) as usize % 10]);
                }
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
                let plain = run(&d, None, &s);
                let merged = run(&d, Some(&e), &s);
                assert_eq!(plain.0, merged.0, "{re} on {:?}", String::from_utf8_lossy(&s));
                // A dead plain run stays dead; representatives may find
                // death earlier, never miss it.
                assert!(!plain.1 || merged.1, "{re} on {:?}", String::from_utf8_lossy(&s));
            }
        }
    }

    #[test]
    fn merges_redundant_states() {
        // `(aa|a)*` is `a*`: one live class and the dead one.
        let d = dfa("(aa|a)*");
        let e = Equiv::of(&d).unwrap();
        assert!(e.classes() <= 3, "{} classes", e.classes());
        // A dead end that is not the dead state joins the dead block.
        let d = dfa("ab|ac");
        let e = Equiv::of(&d).unwrap();
        let (m, dead) = run(&d, Some(&e), b"ad");
        assert!(!m && dead);
    }
}
