//! The grammar IR under construction: one byte-level NFA per *machine*, whose
//! edges are byte ranges, epsilons, or *calls* to another machine (a
//! recursive transition network). A call edge means "a complete instance of
//! that machine's language goes here"; it is how nesting and recursion
//! (`$ref`) are expressed without copying.

use smallvec::SmallVec;

/// Index of a machine in [`GrammarBuilder::machines`](super::GrammarBuilder).
pub(crate) type MachineId = u32;

/// One NFA state. Nearly every state has at most two ranges, two epsilons
/// and one call, so they are stored inline: building a grammar creates
/// tens of thousands of states, and a heap allocation for each edge list
/// was a quarter of compile time.
#[derive(Clone, Debug, Default)]
pub(crate) struct NState {
    /// Byte ranges `lo..=hi` leading to a state.
    pub ranges: SmallVec<[(u8, u8, u32); 2]>,
    pub eps: SmallVec<[u32; 2]>,
    /// Call machine, then continue at the state.
    pub calls: SmallVec<[(MachineId, u32); 1]>,
}

/// A Thompson fragment: one entry, one exit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frag {
    pub start: u32,
    pub end: u32,
}

/// One machine's NFA. The machine accepts at `exit` of its body fragment.
#[derive(Clone, Debug, Default)]
pub(crate) struct Nfa {
    pub states: Vec<NState>,
}

impl Nfa {
    pub fn state(&mut self) -> u32 {
        self.states.push(NState::default());
        (self.states.len() - 1) as u32
    }
    pub fn eps(&mut self, a: u32, b: u32) {
        self.states[a as usize].eps.push(b);
    }
    /// Matches exactly `bytes`.
    pub fn lit(&mut self, bytes: &[u8]) -> Frag {
        let start = self.state();
        let mut cur = start;
        for &b in bytes {
            let n = self.state();
            self.states[cur as usize].ranges.push((b, b, n));
            cur = n;
        }
        Frag { start, end: cur }
    }
    /// Matches the empty string.
    pub fn empty(&mut self) -> Frag {
        let s = self.state();
        Frag { start: s, end: s }
    }
    /// Matches nothing.
    pub fn never(&mut self) -> Frag {
        Frag { start: self.state(), end: self.state() }
    }
    /// A call to machine `m`.
    pub fn call(&mut self, m: MachineId) -> Frag {
        let start = self.state();
        let end = self.state();
        self.states[start as usize].calls.push((m, end));
        Frag { start, end }
    }
    pub fn seq(&mut self, parts: &[Frag]) -> Frag {
        match parts {
            [] => self.empty(),
            [one] => *one,
            _ => {
                for w in parts.windows(2) {
                    self.eps(w[0].end, w[1].start);
                }
                Frag { start: parts[0].start, end: parts[parts.len() - 1].end }
            }
        }
    }
    pub fn alt(&mut self, parts: &[Frag]) -> Frag {
        if parts.len() == 1 {
            return parts[0];
        }
        let start = self.state();
        let end = self.state();
        for p in parts {
            self.eps(start, p.start);
            self.eps(p.end, end);
        }
        Frag { start, end }
    }
}
