//! Keyset machines: the body of an object whose declared members may come in
//! any order, with the set of members already written kept in the state id.
//!
//! An object of `n` declared properties, each at most once and in any order,
//! needs one state per subset of members written: an explicit automaton has
//! `2^n` states and `n·2^(n−1)` calls, which is fine up to a dozen members
//! and hopeless past twenty. A keyset machine has no explicit states: id
//! `base + code` stands for "the members in `code` are written" (bit `k` for
//! declared member `k`, and bit `n` when the object has additional members,
//! for "an additional member was written"), and `base + 2^w` (`w` the bits in
//! use) for "after the closing `}`". Its edges are computed from the code:
//!
//! - a call to each declared member not yet written (the member machine
//!   without a comma at code 0, the comma-prefixed one after), returning to
//!   the code with its bit set;
//! - a call to each additional-member machine, returning to the code with
//!   bit `n` set (additional keys repeat: a regular language cannot tell
//!   them apart, as in the explicit object machines);
//! - `}` to the closing id once every required member is written and every
//!   written member's `dependentRequired` names are too.
//!
//! The object machine that calls it holds `{` and the whitespace after it,
//! so the body is entered on a member's first byte or on `}`. The masks of
//! keyset states are computed like any state's and cached per compiled
//! grammar up to a bound (see [`crate::compiled`]). For the grammar builder
//! (trimming) the machine carries a plain NFA, a *shadow*, that calls the
//! required members in a row: it is non-empty exactly when the keyset is.

use super::nfa::MachineId;
use super::DEAD;

/// Most declared members a keyset machine tracks (the code of a state is
/// then below `2^25`).
pub(crate) const MAX_MEMBERS: usize = 24;

/// A keyset machine as the front-end describes it: machine ids, not states.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeysetDef {
    /// Per declared member: (machine without comma, machine with comma).
    pub members: Vec<(MachineId, MachineId)>,
    /// Per additional-member region: (without comma, with comma).
    pub regions: Vec<(MachineId, MachineId)>,
    /// Bits of the required members.
    pub required: u32,
    /// Bits of the members that may never be written (a `dependentRequired`
    /// name that cannot appear).
    pub never: u32,
    /// `dependentRequired`: (member bit, bits it needs).
    pub deps: Vec<(u32, u32)>,
}

impl KeysetDef {
    /// Virtual ids the machine takes (see [`Keyset::size`]).
    pub fn size(&self) -> u32 {
        let bits = self.members.len() + usize::from(!self.regions.is_empty());
        (1u32 << bits) + 1
    }
}

/// One keyset machine in a compiled grammar.
#[derive(Debug)]
pub(crate) struct Keyset {
    /// Machine id in the grammar.
    pub machine: u32,
    /// First virtual id.
    pub base: u32,
    /// Per declared member: (start without comma, start with comma), or
    /// [`DEAD`] when the member's machine is empty.
    members: Vec<(u32, u32)>,
    regions: Vec<(u32, u32)>,
    /// Bits of the declared members that can be written.
    callable: u32,
    /// Bit of "an additional member was written" (0 without regions).
    xbit: u32,
    required: u32,
    deps: Vec<(u32, u32)>,
    /// FIRST bytes of the members' machines, without and with comma.
    plain_first: [u64; 4],
    comma_first: [u64; 4],
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
        let members: Vec<(u32, u32)> = def
            .members
            .iter()
            .enumerate()
            .map(|(k, &(p, c))| {
                let (p, c) = (live(p), live(c));
                if def.never >> k & 1 == 1 || p == DEAD || c == DEAD {
                    (DEAD, DEAD)
                } else {
                    (p, c)
                }
            })
            .collect();
        let regions: Vec<(u32, u32)> =
            def.regions.iter().map(|&(p, c)| (live(p), live(c))).filter(|&(p, c)| p != DEAD && c != DEAD).collect();
        let mut callable = members.iter().enumerate().filter(|(_, m)| m.0 != DEAD).fold(0u32, |a, (k, _)| a | 1 << k);
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
        let xbit = if def.regions.is_empty() { 0 } else { 1 << n };
        Keyset {
            machine,
            base,
            members,
            regions,
            callable,
            xbit,
            required: def.required,
            deps: def.deps.clone(),
            plain_first: [0; 4],
            comma_first: [0; 4],
        }
    }

    #[inline(always)]
    fn done_code(&self) -> u32 {
        if self.xbit != 0 {
            self.xbit << 1
        } else {
            1 << self.members.len()
        }
    }

    /// The state after the closing `}`: accepting, no way on.
    #[inline(always)]
    pub fn done_id(&self) -> u32 {
        self.base + self.done_code()
    }

    /// Whether `}` may come at `code`.
    #[inline]
    pub fn may_close(&self, code: u32) -> bool {
        code & self.required == self.required && self.deps.iter().all(|&(a, need)| code & a == 0 || code & need == need)
    }

    #[inline]
    pub fn next(&self, s: u32, b: u8) -> u32 {
        let code = s - self.base;
        if b == b'}' && code != self.done_code() && self.may_close(code) {
            self.done_id()
        } else {
            DEAD
        }
    }

    /// Whether some call is left at `code`.
    #[inline]
    fn has_calls(&self, code: u32) -> bool {
        code != self.done_code() && (self.callable & !code != 0 || !self.regions.is_empty())
    }

    /// FIRST at `s` (a superset is enough for callers; this one is exact
    /// for the members' machines).
    #[inline]
    pub fn first_has(&self, s: u32, b: u8) -> bool {
        let code = s - self.base;
        if self.next(s, b) != DEAD {
            return true;
        }
        let f = if code == 0 { &self.plain_first } else { &self.comma_first };
        self.has_calls(code) && (f[(b >> 6) as usize] >> (b & 63)) & 1 == 1
    }

    #[inline]
    pub fn has_out(&self, s: u32) -> bool {
        s != self.done_id()
    }

    /// The call edges at `s`: `(callee start, return state)`.
    #[inline]
    pub fn calls(&self, s: u32) -> KeysetCalls<'_> {
        let code = s - self.base;
        let i = if code == self.done_code() { (self.members.len() + self.regions.len()) as u32 } else { 0 };
        KeysetCalls { k: self, code, i }
    }

    /// Call targets of every state, with no state in particular: each
    /// member machine with and without its comma (for FIRST and FOLLOW).
    pub fn callees(&self) -> impl Iterator<Item = (u32, bool)> + '_ {
        self.members.iter().chain(&self.regions).filter(|m| m.0 != DEAD).flat_map(|&(p, c)| [(p, false), (c, true)])
    }

    /// Sets the FIRST bytes of the member machines (after FIRST is known
    /// for explicit states).
    pub fn set_first(&mut self, plain: [u64; 4], comma: [u64; 4]) {
        self.plain_first = plain;
        self.comma_first = comma;
    }

    /// The required members (and what they need) missing at `s`, as the
    /// starts of their machines: a lower bound on the bytes left is theirs
    /// plus the `}`.
    pub fn missing(&self, s: u32) -> impl Iterator<Item = u32> + '_ {
        let code = s - self.base;
        let mut need = self.required;
        for &(a, n) in &self.deps {
            if code & a != 0 {
                need |= n;
            }
        }
        let need = if code == self.done_code() { 0 } else { need & !code };
        self.members.iter().enumerate().filter(move |(k, _)| need >> k & 1 == 1).map(|(_, m)| m.0)
    }
}

/// Iterator over the calls of one keyset state.
#[derive(Clone, Debug)]
pub(crate) struct KeysetCalls<'a> {
    k: &'a Keyset,
    code: u32,
    i: u32,
}

impl Iterator for KeysetCalls<'_> {
    type Item = (u32, u32);
    #[inline]
    fn next(&mut self) -> Option<(u32, u32)> {
        let k = self.k;
        let n = k.members.len() as u32;
        let code = self.code;
        let pick = |(p, c): (u32, u32)| if code == 0 { p } else { c };
        while self.i < n {
            let i = self.i;
            self.i += 1;
            let bit = 1u32 << i;
            if k.callable & bit != 0 && code & bit == 0 {
                return Some((pick(k.members[i as usize]), k.base + (code | bit)));
            }
        }
        let r = (self.i - n) as usize;
        if r < k.regions.len() {
            self.i += 1;
            return Some((pick(k.regions[r]), k.base + (code | k.xbit)));
        }
        None
    }
}
