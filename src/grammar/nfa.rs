//! The grammar IR under construction: one byte-level NFA per *machine*, whose
//! edges are byte ranges, epsilons, or *calls* to another machine (a
//! recursive transition network). A call edge means "a complete instance of
//! that machine's language goes here"; it is how nesting and recursion
//! (`$ref`) are expressed without copying.

use regex_automata::dfa::Automaton;

/// Index of a machine in [`GrammarBuilder::machines`](super::build::GrammarBuilder).
pub(crate) type MachineId = u32;

#[derive(Clone, Debug, Default)]
pub(crate) struct NState {
    /// Byte ranges `lo..=hi` leading to a state.
    pub ranges: Vec<(u8, u8, u32)>,
    pub eps: Vec<u32>,
    /// Call machine, then continue at the state.
    pub calls: Vec<(MachineId, u32)>,
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
    /// Copies a regex-automata dense DFA (built anchored, with `$` at the end
    /// of the pattern so that only full matches are reported) into this NFA.
    /// Dead states are dropped; a state is final when the end-of-input
    /// transition from it is a match.
    pub fn import_dfa(&mut self, dfa: &regex_automata::dfa::dense::DFA<Vec<u32>>) -> Frag {
        use regex_automata::{util::start, Anchored};
        let end = self.state();
        let cfg = start::Config::new().anchored(Anchored::Yes);
        let Ok(s0) = dfa.start_state(&cfg) else {
            let s = self.state();
            return Frag { start: s, end };
        };
        let mut map: ahash::AHashMap<regex_automata::util::primitives::StateID, u32> = Default::default();
        let mut queue = vec![s0];
        let first = self.state();
        map.insert(s0, first);
        while let Some(sid) = queue.pop() {
            let me = map[&sid];
            if dfa.is_match_state(dfa.next_eoi_state(sid)) {
                self.eps(me, end);
            }
            let mut b: u16 = 0;
            while b < 256 {
                let nxt = dfa.next_state(sid, b as u8);
                let lo = b as u8;
                let mut hi = b;
                while hi + 1 < 256 && dfa.next_state(sid, (hi + 1) as u8) == nxt {
                    hi += 1;
                }
                if !dfa.is_dead_state(nxt) && !dfa.is_quit_state(nxt) {
                    let tgt = match map.get(&nxt) {
                        Some(&t) => t,
                        None => {
                            let t = self.state();
                            map.insert(nxt, t);
                            queue.push(nxt);
                            t
                        }
                    };
                    self.states[me as usize].ranges.push((lo, hi as u8, tgt));
                }
                b = hi + 1;
            }
        }
        Frag { start: first, end }
    }

    /// Copies a table automaton (start state 0) into this NFA.
    pub fn import_table(&mut self, t: &crate::strings::TableDfa) -> Frag {
        let base = self.states.len() as u32;
        for _ in 0..t.accept.len() {
            self.state();
        }
        let end = self.state();
        for (i, rs) in t.ranges.iter().enumerate() {
            let me = base + i as u32;
            for &(lo, hi, tgt) in rs {
                self.states[me as usize].ranges.push((lo, hi, base + tgt));
            }
            if t.accept[i] {
                self.eps(me, end);
            }
        }
        Frag { start: base, end }
    }
}
