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

    /// The same language without the empty string: states doubled into "no
    /// byte read yet" (`s`) and "some byte read" (`s + n`); byte and call edges
    /// lead to the second copy (every callee reads at least one byte), epsilons
    /// stay in their copy, and only the second copy's exit accepts.
    pub fn without_empty(&self, body: Frag) -> (Nfa, Frag) {
        let n = self.states.len() as u32;
        let mut out = Nfa { states: Vec::with_capacity(2 * n as usize) };
        for copy in 0..2 {
            for s in &self.states {
                let mut t = s.clone();
                for r in &mut t.ranges {
                    r.2 += n;
                }
                for c in &mut t.calls {
                    c.1 += n;
                }
                for e in &mut t.eps {
                    *e += copy * n;
                }
                out.states.push(t);
            }
        }
        (out, Frag { start: body.start, end: body.end + n })
    }

    /// Drops the edges into states from which `end` cannot be reached
    /// (every callee is taken to read something and return): a machine
    /// then never starts a call, or reads a byte, that cannot finish.
    pub fn prune(&mut self, end: u32) {
        let n = self.states.len();
        let mut preds: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (s, st) in self.states.iter().enumerate() {
            let targets =
                st.ranges.iter().map(|r| r.2).chain(st.eps.iter().copied()).chain(st.calls.iter().map(|c| c.1));
            for t in targets {
                preds[t as usize].push(s as u32);
            }
        }
        let mut live = vec![false; n];
        live[end as usize] = true;
        let mut stack = vec![end];
        while let Some(s) = stack.pop() {
            for &p in &preds[s as usize] {
                if !std::mem::replace(&mut live[p as usize], true) {
                    stack.push(p);
                }
            }
        }
        for st in &mut self.states {
            st.ranges.retain(|r| live[r.2 as usize]);
            st.eps.retain(|e| live[*e as usize]);
            st.calls.retain(|c| live[c.1 as usize]);
        }
    }
}
