//! The grammar: a set of byte-level *machines* (deterministic automata whose
//! edges are bytes or calls to other machines) compiled into flat tables.
//!
//! This module owns the grammar IR ([`nfa`]), its compilation
//! ([`GrammarBuilder::build`]: trimming, byte classes, subset construction,
//! structural checks) and the compiled form ([`Grammar`]) that the pushdown
//! runtime in [`crate::runtime`] executes. It knows nothing of JSON Schema (that is
//! [`crate::json_schema`]) nor of tokens (that is [`crate::vocab`]).

pub(crate) mod counted;
pub(crate) mod graph;
pub(crate) mod keyset;
pub(crate) mod nfa;

pub(crate) use crate::automata::{group_by_key, partition, Layout, DEAD};
use crate::error::{CompileError, CompileErrorKind};
use counted::Counted;
use keyset::Keyset;
use nfa::{Frag, MachineId, Nfa};

/// One machine under construction.
#[derive(Debug)]
pub(crate) struct MachineDef {
    pub nfa: Nfa,
    pub body: Frag,
    /// For error messages and debugging (a JSON pointer or a terminal name).
    pub name: String,
    /// A counted string: the machine is this table with virtual states (see
    /// [`counted`]), and `nfa` is unused.
    pub counted: Option<crate::automata::strings::CountedTable>,
    /// A table terminal (strings with constraints, numbers, key sets): the
    /// machine is the table's [`Layout`], and `nfa` is unused.
    pub table: Option<std::sync::Arc<crate::automata::strings::TableDfa>>,
    /// A keyset machine (see [`keyset`]): its states are virtual, and `nfa`
    /// is the shadow that decides emptiness.
    pub keyset: Option<keyset::KeysetDef>,
    /// A `uniqueItems` array of strings, checked at run time
    /// ([`crate::unique`]).
    pub unique: Option<Unique>,
}

/// How a `uniqueItems` array's items are known to behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unique {
    /// Distinct values the items may take, when they are finitely many
    /// known strings (`enum`s, `const`s).
    pub values: Option<u64>,
    /// Those values (decoded, as UTF-16 code units, sorted), when every
    /// item has the same schema: liveness is then set arithmetic.
    pub strings: Option<std::sync::Arc<Vec<Vec<u16>>>>,
    /// The items have so many values (infinitely, or over 2^20) that no
    /// array uses them up: a new item can always differ from the others.
    pub plenty: bool,
    /// Every prefix of an item goes on to infinitely many values (free
    /// strings, search patterns not anchored at the start): an open item
    /// can always end as a new value.
    pub open_ended: bool,
    /// Items that may be any JSON value but numbers (see
    /// [`crate::unique::values`]), compared as values: the bytes that may
    /// close an item (`}`, `]`, `"`). `None`: items are strings, compared
    /// as above.
    pub closers: Option<Vec<u8>>,
}

/// Collects machines, then compiles them.
#[derive(Debug, Default)]
pub(crate) struct GrammarBuilder {
    pub machines: Vec<MachineDef>,
}

/// The compiled grammar: flat, immutable tables.
#[derive(Debug)]
pub(crate) struct Grammar {
    /// Byte → equivalence class, over the whole grammar (the coarsest
    /// partition that respects every machine's ranges).
    pub classes: [u8; 256],
    pub nclasses: usize,
    /// Transition rows: state `s` reads byte `b` at
    /// `trans[rows[s].0 + class_maps[rows[s].1][b]]`, [`DEAD`] when absent.
    /// Each machine has its own (usually much coarser) byte classes, so an
    /// object machine's row is a handful of entries, not the grammar's
    /// dozens.
    pub trans: Vec<u32>,
    /// Per explicit state: (row start, class map).
    pub rows: Vec<(u32, u32)>,
    /// Distinct per-machine class maps.
    pub class_maps: Vec<[u8; 256]>,
    /// Whether the machine owning the state may end here.
    pub accept: Vec<bool>,
    /// Call edges of state `s`: `call_edges[call_off[s]..call_off[s+1]]`, each
    /// `(callee start state, return state)`.
    pub call_off: Vec<u32>,
    pub call_edges: Vec<(u32, u32)>,
    /// Bytes that can be consumed from the state without leaving its machine
    /// (directly or through calls): 256-bit sets.
    pub first: Vec<[u64; 4]>,
    /// Whether the state has any byte or call edge.
    pub has_out: Vec<bool>,
    /// Start state of each machine.
    pub machine_start: Vec<u32>,
    /// Machine owning each state.
    pub machine_of: Vec<u32>,
    /// Start state of the root machine.
    pub root: u32,
    /// Ids from here on are virtual states of counted machines.
    pub nreal: u32,
    /// Counted machines, by increasing `base`.
    pub counted: Vec<Counted>,
    /// Ids from here on are virtual states of keyset machines (after the
    /// counted ones).
    pub keyset_from: u32,
    /// Keyset machines, by increasing `base`.
    pub keysets: Vec<Keyset>,
    /// Representative bytes for the reach searches of [`crate::mask`],
    /// computed from `classes` at first use.
    pub reach_reps: crate::slot::Slot,
    /// The same per class map (see `mask::ReachReps::of`).
    pub map_reach_reps: Vec<crate::slot::Slot>,
    /// Per machine: the bytes that may come right after it returns, in any
    /// caller (FOLLOW). Empty for the root (the document ends there).
    pub follow: Vec<[u64; 4]>,
    /// Per explicit state: the fewest bytes that reach an accepting state
    /// of its machine (computed at first use, see [`Grammar::exit_dist`]).
    pub exit_dist: std::sync::OnceLock<Vec<u32>>,
    /// Per machine: `Some` for a `uniqueItems` array of strings (see
    /// [`crate::unique`]). Empty when the grammar has none.
    pub unique: Vec<Option<Unique>>,
    /// Some `uniqueItems` array compares its items as values
    /// ([`Unique::closers`]).
    pub values_unique: bool,
    /// The states inside the keys of free keyset members (see
    /// [`crate::keys`]). Empty when the grammar has none.
    pub free_keys: ahash::AHashMap<u32, KeyAt>,
}

/// Where a state stands in the key of a free keyset member: the member
/// machine's start and the key bytes read after the opening quote (the
/// closing quote counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyAt {
    pub start: u32,
    pub depth: u32,
}

/// Index of the machine holding virtual id `s` among `machines` sorted by
/// first id (`base`).
#[inline(always)]
fn holder<T>(machines: &[T], s: u32, base: impl Fn(&T) -> u32) -> usize {
    if machines.len() == 1 {
        return 0;
    }
    machines.partition_point(|m| base(m) <= s) - 1
}

/// The call edges of one state (see [`Grammar::calls`]): a slice of the
/// tables for an explicit state, computed for a keyset state.
#[derive(Clone, Debug)]
pub(crate) enum Calls<'a> {
    Edges(std::slice::Iter<'a, (u32, u32)>),
    Keyset(keyset::KeysetCalls<'a>),
}

impl Iterator for Calls<'_> {
    type Item = (u32, u32);
    #[inline(always)]
    fn next(&mut self) -> Option<(u32, u32)> {
        match self {
            Calls::Edges(e) => e.next().copied(),
            Calls::Keyset(k) => k.next(),
        }
    }
}

impl Grammar {
    #[inline(always)]
    pub fn next(&self, s: u32, b: u8) -> u32 {
        if s < self.nreal {
            // Indexing is checked; the tables are built with exact sizes.
            let (row, map) = self.rows[s as usize];
            self.trans[row as usize + self.class_maps[map as usize][b as usize] as usize]
        } else if s < self.keyset_from {
            self.counted_of(s).next(s, self.classes[b as usize] as usize, self.nclasses)
        } else {
            self.keyset_of(s).next(s, b)
        }
    }
    #[inline(always)]
    pub fn first_has(&self, s: u32, b: u8) -> bool {
        if s < self.nreal {
            (self.first[s as usize][(b >> 6) as usize] >> (b & 63)) & 1 == 1
        } else if s < self.keyset_from {
            self.next(s, b) != DEAD
        } else {
            self.keyset_of(s).first_has(s, b)
        }
    }
    /// Call edges of state `s`: `(callee start, return state)`.
    #[inline(always)]
    pub fn calls(&self, s: u32) -> Calls<'_> {
        if s < self.nreal {
            Calls::Edges(self.real_calls(s).iter())
        } else if s < self.keyset_from {
            Calls::Edges([].iter())
        } else {
            Calls::Keyset(self.keyset_of(s).calls(s))
        }
    }
    /// Call edges of explicit state `s`.
    #[inline(always)]
    pub fn real_calls(&self, s: u32) -> &[(u32, u32)] {
        &self.call_edges[self.call_off[s as usize] as usize..self.call_off[s as usize + 1] as usize]
    }
    /// Whether `s` has a call edge.
    #[inline]
    pub fn has_calls(&self, s: u32) -> bool {
        self.calls(s).next().is_some()
    }
    /// Whether `s` is a virtual state of a keyset machine.
    #[inline(always)]
    pub fn is_keyset(&self, s: u32) -> bool {
        s >= self.keyset_from
    }
    /// The keyset machine holding virtual id `s` (`s >= keyset_from`).
    #[inline(always)]
    pub fn keyset_of(&self, s: u32) -> &Keyset {
        &self.keysets[self.keyset_index(s)]
    }
    /// Index in [`Grammar::keysets`] of the machine holding virtual id `s`.
    #[inline(always)]
    pub fn keyset_index(&self, s: u32) -> usize {
        holder(&self.keysets, s, |k| k.base)
    }
    /// Whether the machine owning `s` may end in `s`.
    #[inline(always)]
    pub fn is_accept(&self, s: u32) -> bool {
        if s < self.nreal {
            self.accept[s as usize]
        } else if s < self.keyset_from {
            s == self.counted_of(s).done_id()
        } else {
            s == self.keyset_of(s).done_id()
        }
    }
    /// Whether `s` has any byte or call edge.
    #[inline(always)]
    pub fn has_out(&self, s: u32) -> bool {
        if s < self.nreal {
            self.has_out[s as usize]
        } else if s < self.keyset_from {
            s != self.counted_of(s).done_id()
        } else {
            self.keyset_of(s).has_out(s)
        }
    }
    /// Whether byte `b` may follow the return of the machine owning `s`,
    /// in some caller ([`Grammar::follow`]). When it may not, a walk that
    /// would pop past the bottom of its stack on `b` needs no real stack:
    /// no caller takes `b` there.
    #[inline(always)]
    pub fn follows(&self, s: u32, b: u8) -> bool {
        match self.follow.get(self.machine_of(s) as usize) {
            Some(f) => (f[(b >> 6) as usize] >> (b & 63)) & 1 == 1,
            None => true,
        }
    }
    /// The `uniqueItems` array whose own state `s` is, if any.
    #[inline]
    pub fn unique_of(&self, s: u32) -> Option<&Unique> {
        if self.unique.is_empty() {
            return None;
        }
        self.unique[self.machine_of(s) as usize].as_ref()
    }
    /// The machine owning `s`.
    pub fn machine_of(&self, s: u32) -> u32 {
        if s < self.nreal {
            self.machine_of[s as usize]
        } else if s < self.keyset_from {
            self.counted_of(s).machine
        } else {
            self.keyset_of(s).machine
        }
    }
    /// The counted machine holding virtual id `s` (`s >= nreal`).
    #[inline(always)]
    pub fn counted_of(&self, s: u32) -> &Counted {
        &self.counted[self.counted_index(s)]
    }
    /// Index in [`Grammar::counted`] of the machine holding virtual id `s`.
    #[inline(always)]
    pub fn counted_index(&self, s: u32) -> usize {
        holder(&self.counted, s, |c| c.base)
    }
    /// A lower bound on the bytes from state `s` to an accepting state of
    /// its machine: exact for explicit states whose paths stay explicit,
    /// and 0 for virtual states (counted strings) and the edges into them
    /// count one byte; for a keyset state, the required members still
    /// missing and the `}`. Computed once, at first use, by Knuth's
    /// generalization of Dijkstra's algorithm (a call edge `s → (callee,
    /// return)` costs the callee's distance plus the return state's, known
    /// once both are final). `u32::MAX` for a state that cannot exit (none,
    /// after trimming).
    pub fn exit_dist(&self, s: u32) -> u32 {
        if s >= self.keyset_from {
            return self.keyset_of(s).exit_bound(s, |m| self.exit_dist(m));
        }
        if s >= self.nreal {
            return 0;
        }
        self.exit_dist.get_or_init(|| self.compute_exit_dist())[s as usize]
    }

    fn compute_exit_dist(&self) -> Vec<u32> {
        use std::cmp::Reverse;
        let n = self.nreal as usize;
        // Nodes: explicit states, then the start of each keyset machine,
        // whose distance is its needed members' plus the `"`, `,"`s and `}`
        // around them (a call into a keyset costs that, not 0).
        let nk = self.keysets.len();
        let node = |s: u32| -> Option<usize> {
            if s < self.nreal {
                Some(s as usize)
            } else if s >= self.keyset_from {
                let i = self.keyset_index(s);
                (self.keysets[i].base == s).then_some(n + i)
            } else {
                None
            }
        };
        let mut dist = vec![u32::MAX; n + nk];
        let mut fin = vec![false; n + nk];
        let mut by_byte: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut by_call: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n + nk];
        // Keysets waiting on a member start, and how many they still wait on.
        let mut by_member: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut waiting: Vec<(u32, u32)> = vec![(0, 0); nk];
        let mut heap = std::collections::BinaryHeap::new();
        for (i, k) in self.keysets.iter().enumerate() {
            let need: Vec<u32> = k.missing(k.base).collect();
            // `"`, then `,"` before each further member, then `}`.
            let bytes = if need.is_empty() { 1 } else { 2 * need.len() as u32 };
            waiting[i] = (need.len() as u32, bytes);
            if need.is_empty() {
                heap.push(Reverse((bytes, (n + i) as u32)));
            }
            for m in need {
                by_member[m as usize].push(i as u32);
            }
        }
        let widths: Vec<usize> =
            self.class_maps.iter().map(|m| m.iter().copied().max().map_or(0, |x| x as usize + 1)).collect();
        for s in 0..n {
            if self.accept[s] {
                heap.push(Reverse((0u32, s as u32)));
            }
            let (row, map) = self.rows[s];
            for &t in &self.trans[row as usize..row as usize + widths[map as usize]] {
                if t == DEAD {
                    continue;
                }
                if t >= self.nreal {
                    heap.push(Reverse((1, s as u32)));
                } else {
                    by_byte[t as usize].push(s as u32);
                }
            }
            for &(cs, r) in self.real_calls(s as u32) {
                for (a, other) in [(cs, r), (r, cs)] {
                    if let Some(a) = node(a) {
                        by_call[a].push((s as u32, other));
                    }
                }
            }
        }
        while let Some(Reverse((d, s))) = heap.pop() {
            if fin[s as usize] {
                continue;
            }
            fin[s as usize] = true;
            dist[s as usize] = d;
            if (s as usize) < n {
                for &p in &by_byte[s as usize] {
                    if !fin[p as usize] {
                        heap.push(Reverse((d.saturating_add(1), p)));
                    }
                }
                for &i in &by_member[s as usize] {
                    let w = &mut waiting[i as usize];
                    w.0 -= 1;
                    w.1 = w.1.saturating_add(d);
                    if w.0 == 0 {
                        heap.push(Reverse((w.1, n as u32 + i)));
                    }
                }
            }
            for &(p, other) in &by_call[s as usize] {
                let od = match node(other) {
                    Some(o) => fin[o].then(|| dist[o]),
                    None => Some(0),
                };
                if let (Some(od), false) = (od, fin[p as usize]) {
                    heap.push(Reverse((d.saturating_add(od), p)));
                }
            }
        }
        dist.truncate(n);
        dist
    }

    /// Explicit (non-virtual) states; virtual ids start here.
    pub fn num_states(&self) -> usize {
        self.accept.len()
    }
    pub fn memory_bytes(&self) -> usize {
        self.trans.capacity() * 4
            + self.rows.capacity() * 8
            + self.class_maps.capacity() * 256
            + self.accept.capacity()
            + self.call_off.capacity() * 4
            + self.call_edges.capacity() * 8
            + self.first.capacity() * 32
            + self.has_out.capacity()
            + self.machine_of.capacity() * 4
            + self.counted.iter().map(Counted::memory_bytes).sum::<usize>()
    }
}

impl Grammar {
    /// Appends an explicit state of machine `mi` with an empty row of
    /// `nclasses` entries under class map `map`; its id.
    fn push_state(
        &mut self,
        accept: bool,
        (mi, map, nclasses): (u32, u32, usize),
        name: &str,
        max_states: usize,
    ) -> Result<u32, CompileError> {
        let id = self.accept.len() as u32;
        crate::budget::check().map_err(|e| CompileError::new(CompileErrorKind::LimitExceeded, &pointer_of(name), e))?;
        if id as usize >= max_states {
            return Err(CompileError::new(
                CompileErrorKind::LimitExceeded,
                &pointer_of(name),
                format!("grammar exceeds {max_states} states (Limits::max_states) in machine `{name}`"),
            ));
        }
        self.accept.push(accept);
        self.machine_of.push(mi);
        self.rows.push((self.trans.len() as u32, map));
        self.trans.extend(std::iter::repeat_n(DEAD, nclasses));
        Ok(id)
    }
}

/// The JSON pointer in a machine's name (`object:/properties/a` →
/// `/properties/a`), or the root when the name holds none (terminals are
/// named by what they match, not where).
fn pointer_of(name: &str) -> String {
    match name.split_once(':') {
        Some((_, p)) if p.is_empty() || p.starts_with('/') => p.to_string(),
        _ => String::new(),
    }
}

impl GrammarBuilder {
    pub fn add(&mut self, name: String) -> MachineId {
        self.machines.push(MachineDef {
            nfa: Nfa::default(),
            body: Frag { start: 0, end: 0 },
            name,
            counted: None,
            table: None,
            keyset: None,
            unique: None,
        });
        (self.machines.len() - 1) as MachineId
    }

    /// Compiles the machines into tables; `root` is the machine of the whole
    /// document. `max_states` bounds the total number of DFA states.
    pub fn build(self, root: MachineId, max_states: usize) -> Result<Grammar, CompileError> {
        self.build_checked(root, max_states, false)
    }

    /// [`GrammarBuilder::build`] for a root that may accept the empty
    /// output (a regex such as `[a-z]*`): allowed only when no machine calls
    /// the root, so that no step can loop on it.
    pub fn build_with_empty_root(self, root: MachineId, max_states: usize) -> Result<Grammar, CompileError> {
        let called = self.machines.iter().any(|m| m.nfa.states.iter().any(|s| s.calls.iter().any(|c| c.0 == root)));
        self.build_checked(root, max_states, !called)
    }

    fn build_checked(mut self, root: MachineId, max_states: usize, empty_root: bool) -> Result<Grammar, CompileError> {
        let mut lives: Vec<Option<counted::CountedLive>> = Vec::with_capacity(self.machines.len());
        for m in &self.machines {
            lives.push(match &m.counted {
                Some(t) => Some(counted::liveness(t).map_err(|e| {
                    CompileError::new(CompileErrorKind::LimitExceeded, &pointer_of(&m.name), e)
                        .with_keyword("maxLength")
                })?),
                None => None,
            });
        }
        let tables: Vec<Option<std::sync::Arc<crate::automata::strings::TableDfa>>> =
            self.machines.iter().map(|m| m.table.clone()).collect();
        let layouts: Vec<Option<&Layout>> = tables.iter().map(|t| t.as_ref().map(|t| t.layout())).collect();
        let fixed: Vec<Option<bool>> = lives
            .iter()
            .zip(&layouts)
            .map(|(l, t)| l.as_ref().map(|l| l.nonempty()).or(t.map(|t| t.nonempty())))
            .collect();
        let nonempty = self.trim(&fixed);
        if !nonempty[root as usize] {
            return Err(CompileError::new(CompileErrorKind::Unsatisfiable, "", "no JSON value satisfies the schema"));
        }
        // Byte classes: the coarsest partition that respects every range.
        let (classes, nclasses) = partition(self.machines.iter().zip(&layouts).flat_map(|(m, t)| {
            let counted = m.counted.iter().flat_map(|t| &t.ranges).flatten().map(|&(lo, hi, _, _)| (lo, hi));
            let table = t.iter().flat_map(|t| t.ranges.iter().copied());
            m.nfa.states.iter().flat_map(|s| s.ranges.iter().map(|&(lo, hi, _)| (lo, hi))).chain(counted).chain(table)
        }));

        let mut g = Grammar {
            classes,
            nclasses,
            trans: Vec::new(),
            rows: Vec::new(),
            class_maps: Vec::new(),
            accept: Vec::new(),
            call_off: vec![0],
            call_edges: Vec::new(),
            first: Vec::new(),
            has_out: Vec::new(),
            machine_start: vec![u32::MAX; self.machines.len()],
            machine_of: Vec::new(),
            root: 0,
            nreal: 0,
            counted: Vec::new(),
            keyset_from: 0,
            keysets: Vec::new(),
            reach_reps: Default::default(),
            map_reach_reps: Vec::new(),
            exit_dist: Default::default(),
            follow: Vec::new(),
            unique: if self.machines.iter().any(|m| m.unique.is_some()) {
                self.machines.iter().map(|m| m.unique.clone()).collect()
            } else {
                Vec::new()
            },
            values_unique: self.machines.iter().any(|m| m.unique.as_ref().is_some_and(|u| u.closers.is_some())),
            free_keys: Default::default(),
        };
        // Calls recorded as (machine id, return state) until all starts are known.
        let mut pending_calls: Vec<(u32, u32)> = Vec::new();
        let mut map_ids: ahash::AHashMap<[u8; 256], u32> = Default::default();
        // Per callee machine: (stamp = DFA state + 1, rank in that state);
        // DFA state ids are grammar-wide, so one array serves every machine.
        let mut callee_rank: Vec<(u32, u32)> = vec![(0, 0); self.machines.len()];
        // Reserve the tables once: a table machine's size is known, an NFA
        // machine's is estimated by its NFA (rows a few classes wide).
        let (mut states, mut cells) = (0usize, 0usize);
        for (mi, m) in self.machines.iter().enumerate() {
            match layouts[mi] {
                _ if !nonempty[mi] || m.counted.is_some() || m.keyset.is_some() => {}
                Some(t) => (states, cells) = (states + t.accept.len(), cells + t.cells()),
                None => (states, cells) = (states + m.nfa.states.len(), cells + 4 * m.nfa.states.len()),
            }
        }
        g.accept.reserve(states);
        g.rows.reserve(states);
        g.machine_of.reserve(states);
        g.call_off.reserve(states + 1);
        g.trans.reserve(cells);
        for (mi, m) in self.machines.iter().enumerate() {
            if !nonempty[mi] || m.counted.is_some() || m.keyset.is_some() {
                continue;
            }
            if let Some(t) = layouts[mi] {
                let map = *map_ids.entry(t.classes).or_insert_with(|| {
                    g.class_maps.push(t.classes);
                    (g.class_maps.len() - 1) as u32
                });
                let base = g.accept.len() as u32;
                for (s, &acc) in t.accept.iter().enumerate() {
                    let id = g.push_state(acc, (mi as u32, map, t.nclasses), &m.name, max_states)?;
                    let row = g.rows[id as usize].0 as usize;
                    for (c, &to) in t.rows[s * t.nclasses..(s + 1) * t.nclasses].iter().enumerate() {
                        g.trans[row + c] = if to == DEAD { DEAD } else { base + to };
                    }
                    g.call_off.push(pending_calls.len() as u32);
                }
                g.machine_start[mi] = base;
                continue;
            }
            let (local, n) = local_classes(m);
            let map = *map_ids.entry(local).or_insert_with(|| {
                g.class_maps.push(local);
                (g.class_maps.len() - 1) as u32
            });
            determinize(m, mi as u32, (&local, n, map), &mut g, &mut pending_calls, max_states, &mut callee_rank)?;
        }
        // Counted machines take virtual ids after every explicit state.
        g.nreal = g.accept.len() as u32;
        let mut base = g.nreal as u64;
        for (mi, (m, live)) in self.machines.iter().zip(lives).enumerate() {
            let (Some(t), Some(live)) = (&m.counted, live) else { continue };
            if !nonempty[mi] {
                continue;
            }
            let c = Counted::new(t, live, mi as u32, base as u32, &classes, nclasses);
            base += c.size() as u64;
            if base >= (u32::MAX - 2) as u64 {
                return Err(CompileError::new(
                    CompileErrorKind::LimitExceeded,
                    &pointer_of(&m.name),
                    "counted strings exceed the state id space",
                )
                .with_keyword("maxLength"));
            }
            g.machine_start[mi] = c.start();
            g.counted.push(c);
        }
        // Keyset machines after them: starts first (a keyset's members may
        // be any machine), then the machines.
        g.keyset_from = base as u32;
        let mut keysets: Vec<(usize, u32)> = Vec::new();
        for (mi, m) in self.machines.iter().enumerate() {
            let Some(def) = &m.keyset else { continue };
            if !nonempty[mi] {
                continue;
            }
            let size = def.size();
            if base + size >= (u32::MAX - 2) as u64 {
                return Err(CompileError::new(
                    CompileErrorKind::LimitExceeded,
                    &pointer_of(&m.name),
                    "objects of many properties in any order exceed the state id space",
                )
                .with_keyword("properties"));
            }
            g.machine_start[mi] = base as u32;
            keysets.push((mi, base as u32));
            base += size;
        }
        for (mi, b) in keysets {
            let def = self.machines[mi].keyset.as_ref().expect("a keyset machine");
            let starts = &g.machine_start;
            g.keysets.push(Keyset::new(def, mi as u32, b, |m| starts[m as usize]));
        }
        g.call_edges = pending_calls.iter().map(|&(m, r)| (g.machine_start[m as usize], r)).collect();
        g.root = g.machine_start[root as usize];
        let n = g.accept.len();
        g.has_out = (0..n)
            .map(|s| {
                let row = g.rows[s].0 as usize;
                let end = g.rows.get(s + 1).map_or(g.trans.len(), |r| r.0 as usize);
                g.call_off[s] != g.call_off[s + 1] || g.trans[row..end].iter().any(|&t| t != DEAD)
            })
            .collect();
        // Structural checks: no machine accepts the empty string, and no
        // machine reaches itself through calls at its start (left recursion):
        // both would make a step loop forever.
        for (mi, &st) in g.machine_start.iter().enumerate() {
            if st != u32::MAX && g.is_accept(st) && !(empty_root && mi as MachineId == root) {
                return Err(CompileError::new(
                    CompileErrorKind::InvalidSchema,
                    &self.machines[mi].name,
                    "internal: a value grammar accepts the empty string",
                ));
            }
        }
        check_left_recursion(&g, &self.machines)?;
        compute_first(&mut g);
        compute_follow(&mut g);
        g.free_keys = free_key_states(&g, &self.machines);
        g.map_reach_reps = g.class_maps.iter().map(|_| Default::default()).collect();
        Ok(g)
    }

    /// Removes states that cannot reach their machine's exit and calls to
    /// machines that accept nothing. Returns which machines are non-empty.
    /// `fixed[m]` is set for counted machines, whose emptiness is known.
    ///
    /// One backward search over every machine at once, linear in the edges:
    /// from each machine's exit, follow byte and epsilon edges backwards; a
    /// call edge is followed once its callee is known non-empty, and waits
    /// on the callee until then. A machine is non-empty when its start is
    /// reached, which releases the edges waiting on it. (Re-running a
    /// per-machine search each time a callee turned non-empty was a third of
    /// the build on schemas with a thousand machines.)
    fn trim(&mut self, fixed: &[Option<bool>]) -> Vec<bool> {
        let nm = self.machines.len();
        let mut nonempty: Vec<bool> = fixed.iter().map(|f| f.unwrap_or(false)).collect();
        // Global state ids: machine `m`'s states start at `base[m]`.
        let mut base = Vec::with_capacity(nm + 1);
        base.push(0usize);
        for m in &self.machines {
            base.push(base.last().copied().unwrap_or(0) + m.nfa.states.len());
        }
        let n = base[nm];
        // Reverse edges: (source state, callee or NONE).
        const NONE: u32 = u32::MAX;
        let (off, rev) = group_by_key(n, |f: &mut dyn FnMut(usize, (u32, u32))| {
            for (mi, m) in self.machines.iter().enumerate() {
                if fixed[mi].is_some() {
                    continue;
                }
                for (u, s) in m.nfa.states.iter().enumerate() {
                    let u = (base[mi] + u) as u32;
                    let plain = s.ranges.iter().map(|r| (r.2, NONE)).chain(s.eps.iter().map(|&e| (e, NONE)));
                    for (v, callee) in plain.chain(s.calls.iter().map(|c| (c.1, c.0))) {
                        f(base[mi] + v as usize, (u, callee));
                    }
                }
            }
        });
        // Machine of each global state, for the start check.
        let mut owner = vec![0u32; n];
        for mi in 0..nm {
            owner[base[mi]..base[mi + 1]].fill(mi as u32);
        }
        let mut live = vec![false; n];
        let mut waiting: Vec<Vec<u32>> = vec![Vec::new(); nm];
        let mut stack: Vec<u32> = Vec::new();
        for (mi, m) in self.machines.iter().enumerate() {
            if fixed[mi].is_none() && !m.nfa.states.is_empty() {
                let end = base[mi] + m.body.end as usize;
                live[end] = true;
                stack.push(end as u32);
            }
        }
        while let Some(v) = stack.pop() {
            let mi = owner[v as usize] as usize;
            if v as usize == base[mi] + self.machines[mi].body.start as usize && !nonempty[mi] {
                nonempty[mi] = true;
                for u in std::mem::take(&mut waiting[mi]) {
                    if !live[u as usize] {
                        live[u as usize] = true;
                        stack.push(u);
                    }
                }
            }
            for &(u, callee) in &rev[off[v as usize] as usize..off[v as usize + 1] as usize] {
                if live[u as usize] {
                    continue;
                }
                if callee == NONE || nonempty[callee as usize] {
                    live[u as usize] = true;
                    stack.push(u);
                } else {
                    waiting[callee as usize].push(u);
                }
            }
        }
        for (mi, m) in self.machines.iter_mut().enumerate() {
            if fixed[mi].is_some() {
                continue;
            }
            let live = &live[base[mi]..base[mi + 1]];
            for s in &mut m.nfa.states {
                s.ranges.retain(|r| live[r.2 as usize]);
                s.eps.retain(|e| live[*e as usize]);
                s.calls.retain(|c| nonempty[c.0 as usize] && live[c.1 as usize]);
            }
        }
        nonempty
    }
}

fn closure(nfa: &Nfa, set: &mut Vec<u32>, mark: &mut [u32], stamp: u32) {
    let mut i = 0;
    for &s in set.iter() {
        mark[s as usize] = stamp;
    }
    while i < set.len() {
        let s = set[i];
        for &e in &nfa.states[s as usize].eps {
            if mark[e as usize] != stamp {
                mark[e as usize] = stamp;
                set.push(e);
            }
        }
        i += 1;
    }
    set.sort_unstable();
}

/// The byte classes of one machine (its transition rows are this wide).
fn local_classes(m: &MachineDef) -> ([u8; 256], usize) {
    partition(m.nfa.states.iter().flat_map(|s| s.ranges.iter().map(|&(lo, hi, _)| (lo, hi))))
}

fn determinize(
    m: &MachineDef,
    mi: u32,
    (classes, nclasses, map): (&[u8; 256], usize, u32),
    g: &mut Grammar,
    calls: &mut Vec<(u32, u32)>,
    max_states: usize,
    callee_rank: &mut [(u32, u32)],
) -> Result<(), CompileError> {
    if is_one_to_one(m, classes, nclasses) {
        return import_one_to_one(m, mi, (classes, nclasses, map), g, calls, max_states);
    }
    let nfa = &m.nfa;
    let mut mark = vec![0u32; nfa.states.len()];
    let mut stamp = 0u32;
    let mut ids: ahash::AHashMap<Vec<u32>, u32> = Default::default();
    // sets[i] is the NFA-state set of DFA state base + i; processed in order.
    let mut sets: Vec<Vec<u32>> = Vec::new();
    let mut start = vec![m.body.start];
    stamp += 1;
    closure(nfa, &mut start, &mut mark, stamp);
    let base = g.accept.len() as u32;
    // Takes the set by reference: most targets already exist, and then
    // nothing is allocated.
    let mut intern = |set: &[u32], g: &mut Grammar, sets: &mut Vec<Vec<u32>>| -> Result<u32, CompileError> {
        if let Some(&id) = ids.get(set) {
            return Ok(id);
        }
        let id = g.push_state(set.contains(&m.body.end), (mi, map, nclasses), &m.name, max_states)?;
        ids.insert(set.to_vec(), id);
        sets.push(set.to_vec());
        Ok(id)
    };
    let s0 = intern(&start, g, &mut sets)?;
    g.machine_start[mi as usize] = s0;
    let mut targets: Vec<Vec<u32>> = vec![Vec::new(); nclasses];
    // (rank of the callee by first appearance, callee, target) of one state.
    let mut call_pairs: Vec<(u32, u32, u32)> = Vec::new();
    let mut call_set: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < sets.len() {
        let set = std::mem::take(&mut sets[i]);
        let sid = base + i as u32;
        i += 1;
        call_pairs.clear();
        let mut ranks = 0u32;
        for &s in &set {
            let st = &nfa.states[s as usize];
            for &(lo, hi, t) in &st.ranges {
                for c in classes[lo as usize]..=classes[hi as usize] {
                    targets[c as usize].push(t);
                }
            }
            for &(cm, t) in &st.calls {
                // Callees in order of first appearance, targets grouped.
                let r = &mut callee_rank[cm as usize];
                if r.0 != sid + 1 {
                    *r = (sid + 1, ranks);
                    ranks += 1;
                }
                call_pairs.push((r.1, cm, t));
            }
        }
        for (c, t) in targets.iter_mut().enumerate() {
            if t.is_empty() {
                continue;
            }
            t.sort_unstable();
            t.dedup();
            stamp += 1;
            closure(nfa, t, &mut mark, stamp);
            let tid = intern(t, g, &mut sets)?;
            let row = g.rows[sid as usize].0 as usize;
            g.trans[row + c] = tid;
            t.clear();
        }
        call_pairs.sort_unstable();
        let mut k = 0;
        while k < call_pairs.len() {
            let (rank, cm, _) = call_pairs[k];
            call_set.clear();
            while k < call_pairs.len() && call_pairs[k].0 == rank {
                call_set.push(call_pairs[k].2);
                k += 1;
            }
            call_set.dedup();
            stamp += 1;
            closure(nfa, &mut call_set, &mut mark, stamp);
            let tid = intern(&call_set, g, &mut sets)?;
            calls.push((cm, tid));
        }
        g.call_off.push(calls.len() as u32);
    }
    Ok(())
}

/// Whether subset construction would map `m`'s NFA states one to one: every
/// epsilon leads to the body's end, the end has no edges, and no state has
/// two byte edges on one class or two calls to one machine. Imported tables
/// and object machines are built this way.
fn is_one_to_one(m: &MachineDef, classes: &[u8; 256], nclasses: usize) -> bool {
    let end = m.body.end;
    let e = &m.nfa.states[end as usize];
    if !e.ranges.is_empty() || !e.calls.is_empty() || !e.eps.is_empty() {
        return false;
    }
    let mut seen = vec![0u32; nclasses];
    let mut callees: Vec<u32> = Vec::new();
    for (i, st) in m.nfa.states.iter().enumerate() {
        let stamp = i as u32 + 1;
        if st.eps.iter().any(|&x| x != end) {
            return false;
        }
        for &(lo, hi, _) in &st.ranges {
            for c in classes[lo as usize]..=classes[hi as usize] {
                if seen[c as usize] == stamp {
                    return false;
                }
                seen[c as usize] = stamp;
            }
        }
        if st.calls.len() > 1 {
            callees.clear();
            callees.extend(st.calls.iter().map(|c| c.0));
            callees.sort_unstable();
            if callees.windows(2).any(|w| w[0] == w[1]) {
                return false;
            }
        }
    }
    true
}

/// [`determinize`] for a machine that [`is_one_to_one`]: the DFA states are
/// the NFA states reachable from the start, renumbered; no sets, no hashing.
fn import_one_to_one(
    m: &MachineDef,
    mi: u32,
    (classes, nclasses, map): (&[u8; 256], usize, u32),
    g: &mut Grammar,
    calls: &mut Vec<(u32, u32)>,
    max_states: usize,
) -> Result<(), CompileError> {
    let nfa = &m.nfa;
    let end = m.body.end;
    let mut id = vec![DEAD; nfa.states.len()];
    let mut order: Vec<u32> = Vec::new();
    let base = g.accept.len() as u32;
    let mut visit = |s: u32, g: &mut Grammar, order: &mut Vec<u32>| -> Result<u32, CompileError> {
        if id[s as usize] != DEAD {
            return Ok(id[s as usize]);
        }
        let accept = s == end || !nfa.states[s as usize].eps.is_empty();
        let n = g.push_state(accept, (mi, map, nclasses), &m.name, max_states)?;
        id[s as usize] = n;
        order.push(s);
        Ok(n)
    };
    g.machine_start[mi as usize] = visit(m.body.start, g, &mut order)?;
    let mut i = 0;
    while i < order.len() {
        let s = order[i];
        let sid = base + i as u32;
        i += 1;
        let st = &nfa.states[s as usize];
        for &(lo, hi, t) in &st.ranges {
            let tid = visit(t, g, &mut order)?;
            let row = g.rows[sid as usize].0 as usize;
            for c in classes[lo as usize]..=classes[hi as usize] {
                g.trans[row + c as usize] = tid;
            }
        }
        for &(cm, t) in &st.calls {
            let tid = visit(t, g, &mut order)?;
            calls.push((cm, tid));
        }
        g.call_off.push(calls.len() as u32);
    }
    Ok(())
}

fn check_left_recursion(g: &Grammar, machines: &[MachineDef]) -> Result<(), CompileError> {
    // Edge m -> m' when m's start state calls m'. A cycle means a machine can
    // call itself without consuming a byte.
    let nm = g.machine_start.len();
    let start_to_machine = |st: u32| g.machine_of(st) as usize;
    let mut color = vec![0u8; nm];
    fn dfs(
        m: usize,
        g: &Grammar,
        color: &mut [u8],
        s2m: &dyn Fn(u32) -> usize,
        machines: &[MachineDef],
    ) -> Result<(), CompileError> {
        color[m] = 1;
        let st = g.machine_start[m];
        for (cs, _) in g.calls(st) {
            let m2 = s2m(cs);
            if color[m2] == 1 {
                return Err(CompileError::new(
                    CompileErrorKind::InvalidSchema,
                    &machines[m2].name,
                    "schema is left-recursive: it refers to itself without consuming any input",
                )
                .with_keyword("$ref"));
            }
            if color[m2] == 0 {
                dfs(m2, g, color, s2m, machines)?;
            }
        }
        color[m] = 2;
        Ok(())
    }
    for m in 0..nm {
        if g.machine_start[m] != u32::MAX && color[m] == 0 {
            dfs(m, g, &mut color, &start_to_machine, machines)?;
        }
    }
    Ok(())
}

/// FOLLOW of every machine: for each call edge `(callee start, return
/// state r)`, the bytes `r` can take (FIRST, calls included), and when `r`
/// may end its own machine, that machine's FOLLOW too (a fixpoint over the
/// distinct (callee, caller) pairs).
fn compute_follow(g: &mut Grammar) {
    let nm = g.machine_start.len();
    let mut follow = vec![[0u64; 4]; nm];
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    // A keyset state returned to after a member takes a comma or `}`;
    // after the comma-quote, a key's first byte.
    for k in &g.keysets {
        let mut after = [0u64; 4];
        after[(b',' >> 6) as usize] |= 1 << (b',' & 63);
        after[(b'}' >> 6) as usize] |= 1 << (b'}' & 63);
        for (cs, at) in k.callees() {
            let f = if at == 3 { k.key_first() } else { after };
            for (dst, src) in follow[g.machine_of(cs) as usize].iter_mut().zip(f) {
                *dst |= src;
            }
        }
    }
    for s in 0..g.nreal {
        for &(cs, r) in g.real_calls(s) {
            let callee = g.machine_of(cs) as usize;
            for (dst, src) in follow[callee].iter_mut().zip(g.first[r as usize]) {
                *dst |= src;
            }
            if g.accept[r as usize] {
                pairs.push((callee as u32, g.machine_of[r as usize]));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut changed = true;
    while changed {
        changed = false;
        for &(callee, caller) in &pairs {
            let from = follow[caller as usize];
            for (dst, src) in follow[callee as usize].iter_mut().zip(from) {
                changed |= *dst | src != *dst;
                *dst |= src;
            }
        }
    }
    g.follow = follow;
}

fn compute_first(g: &mut Grammar) {
    let n = g.accept.len();
    // Per class map: the byte set of each of its classes.
    let map_bits: Vec<Vec<[u64; 4]>> = g
        .class_maps
        .iter()
        .map(|cm| {
            let k = cm.iter().map(|&c| c as usize).max().unwrap_or(0) + 1;
            let mut bits = vec![[0u64; 4]; k];
            for b in 0..256usize {
                bits[cm[b] as usize][b >> 6] |= 1 << (b & 63);
            }
            bits
        })
        .collect();
    let mut first: Vec<[u64; 4]> = vec![[0; 4]; n];
    for (s, f) in first.iter_mut().enumerate() {
        let (row, map) = g.rows[s];
        let bits = &map_bits[map as usize];
        let row = &g.trans[row as usize..row as usize + bits.len()];
        // Branch-free: whether a class is live is unpredictable.
        for (&t, b) in row.iter().zip(bits) {
            let keep = 0u64.wrapping_sub(u64::from(t != DEAD));
            for w in 0..4 {
                f[w] |= b[w] & keep;
            }
        }
    }
    // A counted machine is called at its start only: its first bytes, once.
    let counted_first: Vec<[u64; 4]> = g
        .counted
        .iter()
        .map(|c| {
            let mut f = [0u64; 4];
            for b in 0..=255u8 {
                if g.next(c.start(), b) != DEAD {
                    f[(b >> 6) as usize] |= 1 << (b & 63);
                }
            }
            f
        })
        .collect();
    // FIRST of each machine's start: its own bytes and its callees' starts'
    // FIRST. Calls at starts form a DAG (left recursion was rejected), so
    // one post-order pass, with an explicit stack (nesting can be deep).
    let nm = g.machine_start.len();
    let mut start_first = vec![[0u64; 4]; nm];
    let mut state = vec![0u8; nm]; // 0 new, 1 entered, 2 done
    let mut stack: Vec<(u32, bool)> = Vec::new();
    for m0 in 0..nm as u32 {
        if g.machine_start[m0 as usize] == u32::MAX || state[m0 as usize] != 0 {
            continue;
        }
        stack.push((m0, false));
        while let Some((m, expanded)) = stack.pop() {
            let st = g.machine_start[m as usize];
            if st >= g.nreal && st < g.keyset_from {
                start_first[m as usize] = counted_first[g.counted_index(st)];
                state[m as usize] = 2;
                continue;
            }
            if expanded {
                let mut acc = if st < g.nreal { first[st as usize] } else { own_first(g, st) };
                for (cs, _) in g.calls(st) {
                    let f = start_first[g.machine_of(cs) as usize];
                    for w in 0..4 {
                        acc[w] |= f[w];
                    }
                }
                start_first[m as usize] = acc;
                state[m as usize] = 2;
            } else if state[m as usize] == 0 {
                state[m as usize] = 1;
                stack.push((m, true));
                for (cs, _) in g.calls(st) {
                    let cm = g.machine_of(cs);
                    if state[cm as usize] == 0 {
                        stack.push((cm, false));
                    }
                }
            }
        }
    }
    for (s, acc) in first.iter_mut().enumerate() {
        for &(cs, _) in g.real_calls(s as u32) {
            let f = start_first[g.machine_of(cs) as usize];
            for w in 0..4 {
                acc[w] |= f[w];
            }
        }
    }
    g.first = first;
    for i in 0..g.keysets.len() {
        // Per place: the start, after a member, at a key.
        let mut firsts = [[0u64; 4]; 3];
        for (cs, at) in g.keysets[i].callees() {
            let f = start_first[g.machine_of(cs) as usize];
            let acc = &mut firsts[[0, 1, 2, 1][at as usize]];
            for w in 0..4 {
                acc[w] |= f[w];
            }
        }
        g.keysets[i].set_first(firsts[0], firsts[1], firsts[2]);
    }
}

/// The states along each free member's key (see [`Grammar::free_keys`]):
/// a key is a literal, so its machine reads it one state per byte.
fn free_key_states(g: &Grammar, machines: &[MachineDef]) -> ahash::AHashMap<u32, KeyAt> {
    let mut out = ahash::AHashMap::new();
    for m in machines {
        let Some(def) = &m.keyset else { continue };
        for (mid, lit) in &def.free {
            let start = g.machine_start[*mid as usize];
            if start == u32::MAX {
                continue;
            }
            let mut s = start;
            for (j, &b) in lit.iter().enumerate() {
                s = g.next(s, b);
                if s == DEAD || s >= g.nreal {
                    break;
                }
                out.insert(s, KeyAt { start, depth: j as u32 + 1 });
            }
        }
    }
    out
}

/// The bytes a virtual keyset state reads itself (`"` at the start, `}`).
fn own_first(g: &Grammar, s: u32) -> [u64; 4] {
    let mut f = [0u64; 4];
    for b in [b'"', b'}'] {
        if g.next(s, b) != DEAD {
            f[(b >> 6) as usize] |= 1 << (b & 63);
        }
    }
    f
}
