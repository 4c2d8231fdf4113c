//! Keyset machines: the body of an object whose declared members may come in
//! any order, with the set of members already written kept in the state id.
//!
//! An object of `n` declared properties, each at most once and in any order,
//! needs one state per subset of members written: an explicit automaton has
//! `2^n` states and `n·2^(n−1)` calls, which is fine up to a dozen members
//! and hopeless past twenty. A keyset machine has no explicit states: id
//! `base + 2·(count·2^w + code) + phase` stands for "the members in `code`
//! are written" (bit `k` for declared member `k`, and bit `n`, when the
//! object has additional or free members, for "a member without a bit of
//! its own was written"; `w` the bits in use) and "`count` free members are
//! written", at one of two phases: *after* a member (or, at code 0, at the
//! start) and *key*, after `,"` (or the start's `"`), where the next
//! member's key goes on. The id past the last count is "after the closing
//! `}`". Its edges are computed from the id:
//!
//! - start: `"` to the key phase; a call to each additional-member machine
//!   (key, colon, value), returning after it with bit `n` set;
//! - after: a call to the *comma-quote* machine (`,`, whitespace, `"`),
//!   returning to the key phase of the same code, while a declared member
//!   (with a bit, or free) is left; a call to each additional-member machine with its comma;
//! - key: a call to each declared member not yet written — the rest of its
//!   key after the quote, colon, value — returning after it with its bit
//!   set; and, while one is left, a call to each *free* member, returning
//!   with bit `n` set and the count one higher;
//! - start and after: `}` to the closing id once every required member is
//!   written and every written member's `dependentRequired` names are too.
//!
//! Free members let objects of more declared properties than a state id can
//! track come in any order: the front-end gives bits to the members that
//! `}` depends on (required ones, `dependentRequired` ones) and makes the
//! others free. The grammar offers every free member at every key while
//! fewer than all are written (it counts them, so that a comma never comes
//! when none is left), and the matcher refuses the repeats
//! ([`crate::keys`]).
//!
//! Reading `,"` in the keyset itself keeps the parse deterministic until a
//! key's first character: the members that share it are the only parallel
//! parses (a call per member right after `,` would make one per member at
//! every nesting level, and nested objects of many members would multiply
//! them past `Limits::max_parse_states`).
//!
//! The object machine that calls it holds `{` and the whitespace after it.
//! The masks of keyset states are computed like any state's and cached per
//! compiled grammar up to a bound (see [`crate::compiled`]). For the grammar
//! builder (trimming) the machine carries a plain NFA, a *shadow*, that
//! reads the needed members in a row: it is non-empty exactly when the
//! keyset is.

use super::nfa::MachineId;
use super::DEAD;

/// Most declared members a keyset machine tracks (a state id then needs
/// `2·2^25` ids).
pub(crate) const MAX_MEMBERS: usize = 24;

const AFTER: u32 = 0;
const KEY: u32 = 1;

/// A keyset machine as the front-end describes it: machine ids, not states.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeysetDef {
    /// Per declared member: the machine of the rest of its key after the
    /// opening quote, the colon and the value.
    pub members: Vec<MachineId>,
    /// Per additional-member region: (without comma, with comma).
    pub regions: Vec<(MachineId, MachineId)>,
    /// `,`, whitespace, `"`.
    pub comma_quote: MachineId,
    /// Bits of the required members.
    pub required: u32,
    /// Bits of the members that may never be written (a `dependentRequired`
    /// name that cannot appear).
    pub never: u32,
    /// `dependentRequired`: (member bit, bits it needs).
    pub deps: Vec<(u32, u32)>,
    /// Free members (see [`crate::keys`]): optional members without a bit,
    /// offered at every key; the matcher refuses a repeated one. Each: its
    /// machine (as `members`) and its key's bytes after the opening quote.
    pub free: Vec<(MachineId, Vec<u8>)>,
}

impl KeysetDef {
    /// Virtual ids the machine takes: two per code and count of free
    /// members written, and the closing id.
    pub fn size(&self) -> u64 {
        Self::ids(self.members.len(), !self.regions.is_empty() || !self.free.is_empty(), self.free.len())
    }

    /// Virtual ids a keyset of `members` declared members takes, with or
    /// without members that have no bit of their own (additional or free),
    /// with `free` free members.
    pub fn ids(members: usize, regions: bool, free: usize) -> u64 {
        (2u64 << (members + usize::from(regions))) * (free as u64 + 1) + 1
    }
}

/// One keyset machine in a compiled grammar.
#[derive(Debug)]
pub(crate) struct Keyset {
    /// Machine id in the grammar.
    pub machine: u32,
    /// First virtual id.
    pub base: u32,
    /// Per declared member: its machine's start, [`DEAD`] when it is empty.
    members: Vec<u32>,
    /// Per additional-member region: (start without comma, with comma).
    regions: Vec<(u32, u32)>,
    /// Per free member: its machine's start (live ones only) and its key's
    /// raw bytes (between the quotes), sorted by key.
    pub free: Vec<(u32, Box<[u8]>)>,
    /// (start, index in `free`), sorted.
    free_by_start: Vec<(u32, u32)>,
    comma_quote: u32,
    /// Bits of the declared members that can be written.
    callable: u32,
    /// Codes per count of free members written (`2^(bits + 1)` with a bit
    /// for additional or free members).
    width: u32,
    /// Bit of "a member without a bit of its own (additional or free) was
    /// written" (0 without regions and free members).
    xbit: u32,
    required: u32,
    deps: Vec<(u32, u32)>,
    /// FIRST bytes of the calls at the start, after a member, at a key.
    start_first: [u64; 4],
    after_first: [u64; 4],
    key_first: [u64; 4],
}

impl Keyset {
    /// `start(m)` is machine `m`'s start state (`u32::MAX` when empty).
    pub fn new(def: &KeysetDef, machine: u32, base: u32, start: impl Fn(MachineId) -> u32) -> Keyset {
        let n = def.members.len();
        debug_assert!(n <= MAX_MEMBERS);
        let live = |m: MachineId| {
            let s = start(m);
            if s == u32::MAX {
                DEAD
            } else {
                s
            }
        };
        let members: Vec<u32> = def.members.iter().map(|&m| live(m)).collect();
        let regions: Vec<(u32, u32)> =
            def.regions.iter().map(|&(p, c)| (live(p), live(c))).filter(|&(p, c)| p != DEAD && c != DEAD).collect();
        let mut callable = members
            .iter()
            .enumerate()
            .filter(|&(k, &m)| m != DEAD && def.never >> k & 1 == 0)
            .fold(0u32, |a, (k, _)| a | 1 << k);
        // A member that needs one that cannot be written cannot be written
        // either (else `}` would never come after it).
        let mut changed = true;
        while changed {
            changed = false;
            for &(a, need) in &def.deps {
                if callable & a != 0 && need & !callable != 0 {
                    callable &= !a;
                    changed = true;
                }
            }
        }
        let xbit = if def.regions.is_empty() && def.free.is_empty() { 0 } else { 1 << n };
        let mut free: Vec<(u32, Box<[u8]>)> = def
            .free
            .iter()
            .map(|(m, lit)| (live(*m), lit[..lit.len().saturating_sub(1)].to_vec().into_boxed_slice()))
            .filter(|&(m, _)| m != DEAD)
            .collect();
        free.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        let mut free_by_start: Vec<(u32, u32)> = free.iter().enumerate().map(|(i, f)| (f.0, i as u32)).collect();
        free_by_start.sort_unstable();
        let width = if xbit != 0 { xbit << 1 } else { 1 << n };
        Keyset {
            width,
            machine,
            base,
            members,
            regions,
            free,
            free_by_start,
            comma_quote: live(def.comma_quote),
            callable,
            xbit,
            required: def.required,
            deps: def.deps.clone(),
            start_first: [0; 4],
            after_first: [0; 4],
            key_first: [0; 4],
        }
    }

    /// The state after the closing `}`: accepting, no way on.
    #[inline(always)]
    pub fn done_id(&self) -> u32 {
        self.base + 2 * self.width * (self.free.len() as u32 + 1)
    }

    /// (code, phase) of a state other than [`Keyset::done_id`].
    #[inline(always)]
    fn split(&self, s: u32) -> (u32, u32) {
        let off = s - self.base;
        ((off >> 1) % self.width, off & 1)
    }

    /// Free members written at a state other than [`Keyset::done_id`].
    #[inline(always)]
    fn count(&self, s: u32) -> u32 {
        ((s - self.base) >> 1) / self.width
    }

    #[inline(always)]
    fn id(&self, code: u32, count: u32, phase: u32) -> u32 {
        self.base + 2 * (count * self.width + code) + phase
    }

    /// Whether `}` may come at `code`.
    #[inline]
    pub fn may_close(&self, code: u32) -> bool {
        code & self.required == self.required && self.deps.iter().all(|&(a, need)| code & a == 0 || code & need == need)
    }

    #[inline]
    pub fn next(&self, s: u32, b: u8) -> u32 {
        if s == self.done_id() {
            return DEAD;
        }
        let (code, phase) = self.split(s);
        match (b, phase) {
            (b'}', AFTER) if self.may_close(code) => self.done_id(),
            (b'"', AFTER) if code == 0 && (self.callable != 0 || !self.free.is_empty()) => self.id(0, 0, KEY),
            _ => DEAD,
        }
    }

    #[inline]
    pub fn first_has(&self, s: u32, b: u8) -> bool {
        if self.next(s, b) != DEAD {
            return true;
        }
        let (code, phase) = self.split(s);
        let f = match phase {
            KEY => &self.key_first,
            _ if code == 0 => &self.start_first,
            _ => &self.after_first,
        };
        (f[(b >> 6) as usize] >> (b & 63)) & 1 == 1 && self.calls(s).next().is_some()
    }

    #[inline]
    pub fn has_out(&self, s: u32) -> bool {
        s != self.done_id()
    }

    /// The call edges at `s`: `(callee start, return state)`.
    #[inline]
    pub fn calls(&self, s: u32) -> KeysetCalls<'_> {
        if s == self.done_id() {
            return KeysetCalls { k: self, code: 0, count: 0, phase: AFTER, i: u32::MAX };
        }
        let (code, phase) = self.split(s);
        KeysetCalls { k: self, code, count: self.count(s), phase, i: 0 }
    }

    /// Every machine a state may call, with where it is called (`0` at the
    /// start, `1` after a member, `2` at a key, `3` the comma-quote, after
    /// a member too), for FIRST and FOLLOW.
    pub fn callees(&self) -> impl Iterator<Item = (u32, u8)> + '_ {
        let members =
            self.members.iter().chain(self.free.iter().map(|(m, _)| m)).filter(|&&m| m != DEAD).map(|&m| (m, 2));
        let regions = self.regions.iter().flat_map(|&(p, c)| [(p, 0), (c, 1)]);
        let cq = std::iter::once(self.comma_quote).filter(|&c| c != DEAD).map(|c| (c, 3));
        members.chain(regions).chain(cq)
    }

    /// Sets the FIRST bytes of the calls of each phase (after FIRST is
    /// known for machine starts).
    pub fn set_first(&mut self, start: [u64; 4], after: [u64; 4], key: [u64; 4]) {
        self.start_first = start;
        self.after_first = after;
        self.key_first = key;
    }

    /// The raw key of the free member whose machine starts at `start`.
    #[inline]
    pub fn free_key(&self, start: u32) -> Option<&[u8]> {
        let i = self.free_by_start.binary_search_by_key(&start, |x| x.0).ok()?;
        Some(&self.free[self.free_by_start[i].1 as usize].1)
    }

    /// The state whose local mask serves `s`: counts of free members that
    /// no token can take to the last one (a token completes fewer than
    /// `reach` members) share the masks of count 0 — the walks from them
    /// read the same bytes.
    pub fn mask_rep(&self, s: u32, reach: u32) -> u32 {
        if s == self.done_id() {
            return s;
        }
        let (code, phase) = self.split(s);
        let count = self.count(s);
        if count.saturating_add(reach) < self.free.len() as u32 {
            self.id(code, 0, phase)
        } else {
            s
        }
    }

    /// Whether `s` (a state of this keyset) is at a key, after its quote.
    #[inline]
    pub fn at_key(&self, s: u32) -> bool {
        s != self.done_id() && self.split(s).1 == KEY
    }

    /// Whether a member with a bit of its own or an additional one may
    /// still come at `s` (a state of this keyset): if not, only free ones
    /// (or none).
    pub fn bits_left(&self, s: u32) -> bool {
        s != self.done_id() && (self.callable & !self.split(s).0 != 0 || !self.regions.is_empty())
    }

    /// FIRST bytes of the members' machines.
    pub fn key_first(&self) -> [u64; 4] {
        self.key_first
    }

    /// A lower bound on the bytes from `s` to the closing `}`, given each
    /// member machine's (`dist` of its start): the needed members, the
    /// `"` or `,"` before each, the `}`; at a key with none needed, the
    /// cheapest member left. Exact bounds matter: the search for a short
    /// completion widens with every byte a bound misses, per byte class.
    pub fn exit_bound(&self, s: u32, dist: impl Fn(u32) -> u32) -> u32 {
        if s == self.done_id() {
            return 0;
        }
        let (code, phase) = self.split(s);
        let (mut k, mut sum) = (0u32, 0u32);
        for m in self.missing(s) {
            k += 1;
            sum = sum.saturating_add(dist(m));
        }
        match phase {
            KEY if k == 0 => {
                let cheapest = (0..self.members.len())
                    .filter(|&i| self.callable >> i & 1 == 1 && code >> i & 1 == 0)
                    .map(|i| dist(self.members[i]))
                    .chain(self.free.iter().filter(|_| self.count(s) < self.free.len() as u32).map(|&(m, _)| dist(m)))
                    .min()
                    .unwrap_or(u32::MAX);
                cheapest.saturating_add(1)
            }
            // The first member's quote is read already.
            KEY => sum.saturating_add(2 * k - 1),
            _ if k == 0 => 1,
            _ => sum.saturating_add(2 * k + 1) - u32::from(code == 0),
        }
    }

    /// The starts of the machines of the required members (and of what they
    /// need) missing at `s`: a lower bound on the bytes left is theirs plus
    /// the `}`.
    pub fn missing(&self, s: u32) -> impl Iterator<Item = u32> + '_ {
        let mut need = 0;
        if s != self.done_id() {
            let (code, _) = self.split(s);
            need = self.required;
            for &(a, n) in &self.deps {
                if code & a != 0 {
                    need |= n;
                }
            }
            need &= !code;
        }
        self.members.iter().enumerate().filter(move |&(k, &m)| need >> k & 1 == 1 && m != DEAD).map(|(_, &m)| m)
    }
}

/// Iterator over the calls of one keyset state.
#[derive(Clone, Debug)]
pub(crate) struct KeysetCalls<'a> {
    k: &'a Keyset,
    code: u32,
    count: u32,
    phase: u32,
    i: u32,
}

impl Iterator for KeysetCalls<'_> {
    type Item = (u32, u32);
    #[inline]
    fn next(&mut self) -> Option<(u32, u32)> {
        let k = self.k;
        let code = self.code;
        let count = self.count;
        if self.phase == KEY {
            let n = k.members.len() as u32;
            while self.i < n {
                let i = self.i;
                self.i += 1;
                let bit = 1u32 << i;
                if k.callable & bit != 0 && code & bit == 0 {
                    return Some((k.members[i as usize], k.id(code | bit, count, AFTER)));
                }
            }
            // Free members add to the count (the matcher refuses repeats),
            // while one is left.
            let f = (self.i - n) as usize;
            if f < k.free.len() && count < k.free.len() as u32 {
                self.i += 1;
                return Some((k.free[f].0, k.id(code | k.xbit, count + 1, AFTER)));
            }
            return None;
        }
        // After a member (or at the start): the comma-quote (not at the
        // start, and only while a declared member is left), then regions.
        if self.i == 0 {
            self.i = 1;
            if code != 0 && (k.callable & !code != 0 || count < k.free.len() as u32) && k.comma_quote != DEAD {
                return Some((k.comma_quote, k.id(code, count, KEY)));
            }
        }
        let r = (self.i - 1) as usize;
        if r < k.regions.len() {
            self.i += 1;
            let (p, c) = k.regions[r];
            return Some((if code == 0 { p } else { c }, k.id(code | k.xbit, count, AFTER)));
        }
        None
    }
}
