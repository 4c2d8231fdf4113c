//! The per-sequence half of the API: a [`Matcher`] tracks one generation,
//! fills token masks, accepts tokens, rolls back, and reports forced
//! continuations. Cheap to create; not shared between threads (but `Send`).

use crate::compiled::CompiledGrammar;
use crate::error::MatchError;
use crate::keys;
use crate::mask::{set_bit, walk, LocalMask, Scratch};
use crate::runtime::{can_end, step, Config, Stacks, StepFlags, EMPTY};
use crate::unique::{self, Text};
use crate::vocab::TokenKind;
use std::sync::Arc;

/// Tracks one generation against a [`CompiledGrammar`].
#[derive(Clone)]
pub struct Matcher {
    cg: Arc<CompiledGrammar>,
    stacks: Stacks,
    configs: Vec<Config>,
    /// Per accepted step: configurations before it and output length before it.
    history: Vec<(Vec<Config>, usize, bool)>,
    terminated: bool,
    output: Vec<u8>,
    scratch: Scratch,
    tmp: Vec<Config>,
    /// Items of `uniqueItems` arrays read so far (see [`crate::unique`]).
    memo: unique::Memo,
    /// Keys of objects with free members read so far (see [`crate::keys`]).
    keys: keys::Memo,
    /// The last position in the bytes [`Self::simulate`] stepped where the
    /// text stood at the level of an array of values (noted when they are
    /// accepted; see [`crate::unique::values`]).
    level: Option<usize>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("output", &String::from_utf8_lossy(&self.output))
            .field("terminated", &self.terminated)
            .finish()
    }
}

/// Where [`Matcher::simulate`] stopped.
enum Stop {
    /// The byte at this offset is not allowed.
    Rejected(usize),
    /// The parse fanned out past the parse-state limit.
    TooMany,
}

impl Matcher {
    pub(crate) fn new(cg: Arc<CompiledGrammar>) -> Matcher {
        let root = cg.grammar.root;
        Matcher {
            cg,
            stacks: Stacks::default(),
            configs: vec![Config { state: root, stack: EMPTY }],
            history: Vec::new(),
            terminated: false,
            output: Vec::new(),
            scratch: Scratch::default(),
            tmp: Vec::new(),
            memo: unique::Memo::default(),
            keys: keys::Memo::default(),
            level: None,
        }
    }

    /// The compiled grammar.
    pub fn grammar(&self) -> &Arc<CompiledGrammar> {
        &self.cg
    }

    /// Back to the start of the document.
    pub fn reset(&mut self) {
        *self = Matcher::new(self.cg.clone());
    }

    /// Bytes accepted so far.
    pub fn output(&self) -> &[u8] {
        &self.output
    }

    /// Whether a stop token was accepted.
    pub fn is_terminated(&self) -> bool {
        self.terminated
    }

    /// Whether the output so far is a complete instance (a stop token is
    /// allowed now).
    pub fn can_terminate(&self) -> bool {
        self.terminated || self.configs.iter().any(|&c| can_end(&self.cg.grammar, &self.stacks, c))
    }

    /// Fills `mask` (at least [`Vocabulary::mask_words`](crate::Vocabulary::mask_words)
    /// words) with the tokens allowed next: bit `i % 32` of word `i / 32` is
    /// set when token `i` is allowed. Stop tokens are allowed exactly when
    /// [`Matcher::can_terminate`]; after termination only stop tokens are.
    ///
    /// # Errors
    /// [`MatchError::MaskTooSmall`], or [`MatchError::TooAmbiguous`] when the
    /// parse fans out past [`Limits::max_parse_states`](crate::Limits).
    pub fn fill_next_token_bitmask(&mut self, mask: &mut [u32]) -> Result<(), MatchError> {
        let words = self.cg.vocab.mask_words();
        if mask.len() < words {
            return Err(MatchError::MaskTooSmall { got: mask.len(), need: words });
        }
        let mask = &mut mask[..words];
        // The first configuration's local bits are copied in, not ORed onto
        // zeros: one pass over the mask instead of two (a warm mask is
        // mostly this copy).
        let mut fresh = true;
        let cg = &*self.cg;
        let g = &cg.grammar;
        let trie = cg.vocab.trie();
        let limit = cg.config.get_limits().max_parse_states;
        if !self.terminated {
            for ci in 0..self.configs.len() {
                let c = self.configs[ci];
                let held;
                let (lm, cached) = if g.is_keyset(c.state) {
                    held = cg.keyset_mask(c.state);
                    (&*held.0, held.1)
                } else {
                    (cg.local_mask(c.state), true)
                };
                if let Some(ids) = lm.sparse() {
                    if fresh {
                        mask.fill(0);
                    }
                    for &t in ids {
                        // In range: the ids come from bits of this vocabulary's width.
                        set_bit(mask, t);
                    }
                } else if fresh && lm.bits.len() == words {
                    mask.copy_from_slice(&lm.bits);
                } else {
                    if fresh {
                        mask.fill(0);
                    }
                    for (m, l) in mask.iter_mut().zip(lm.bits.iter()) {
                        *m |= *l;
                    }
                }
                fresh = false;
                if lm.groups.is_empty() {
                    continue;
                }
                // A mask not in the cache has no lasting address: its
                // dependent walks are not cached either.
                let lm_id = lm as *const LocalMask as usize;
                if cached && cg.deps.apply(lm_id, &self.stacks, c.stack, &mut self.scratch.key, mask) {
                    continue;
                }
                self.scratch.rec.clear();
                self.scratch.recording = true;
                self.scratch.min_read = u32::MAX;
                for grp in &lm.groups {
                    self.scratch.init.clear();
                    for lc in &grp.configs {
                        let k = self.stacks.rebase(&lm.stacks, lc.stack, c.stack);
                        self.scratch.init.push(Config { state: lc.state, stack: k });
                    }
                    let init = std::mem::take(&mut self.scratch.init);
                    for &node in &grp.nodes {
                        let end = trie.nodes[node as usize].subtree_end as usize;
                        walk(
                            g,
                            trie,
                            &mut self.stacks,
                            node as usize,
                            end,
                            &init,
                            &mut self.scratch,
                            mask,
                            limit,
                            &mut |_, _| {},
                        )
                        .map_err(|_| MatchError::TooAmbiguous { limit })?;
                    }
                    self.scratch.init = init;
                }
                self.scratch.recording = false;
                let sc = &mut self.scratch;
                if cached {
                    cg.deps.insert(lm_id, &self.stacks, c.stack, sc.min_read, &mut sc.rec, &mut sc.key, &mut sc.bitmap);
                }
            }
        }
        if fresh {
            mask.fill(0);
        }
        if !self.terminated && !self.cg.grammar.unique.is_empty() {
            self.refine_unique(mask);
        }
        if !self.terminated && !self.cg.grammar.free_keys.is_empty() {
            self.refine_keys(mask);
        }
        if self.can_terminate() {
            for &t in self.cg.vocab.stop_tokens() {
                set_bit(mask, t);
            }
        }
        Ok(())
    }

    /// Clears from `mask` the tokens a `uniqueItems` array refuses: the
    /// grammar's mask is exact for every other token (see
    /// [`crate::unique`]), and the risky ones are decided byte by byte.
    fn refine_unique(&mut self, mask: &mut [u32]) {
        let cg = self.cg.clone();
        let t = Text { head: &self.output, tail: &[] };
        let trie = cg.vocab.trie();
        let plan = unique::plan(&cg.grammar, &self.stacks, &self.configs, &t, &mut self.memo, cg.unique_tokens(), trie);
        let on = |mask: &[u32], t: u32| mask[t as usize / 32] >> (t % 32) & 1 == 1;
        let cands: Vec<u32> = match &plan.cands {
            Some(c) => c.iter().copied().filter(|&t| on(mask, t)).collect(),
            None => crate::sample::allowed_tokens(mask),
        };
        self.clear_refused(mask, cands, |b| plan.decide(b));
    }

    /// Clears from `mask` the tokens that would repeat a free member of an
    /// object (see [`crate::keys`]), deciding the candidates from the text
    /// where it tells, else byte by byte.
    fn refine_keys(&mut self, mask: &mut [u32]) {
        let cg = self.cg.clone();
        let t = Text { head: &self.output, tail: &[] };
        let trie = cg.vocab.trie();
        let mut plan =
            keys::candidates(&cg.grammar, &self.stacks, &self.configs, &t, &mut self.keys, cg.key_tokens(), trie);
        let on = |mask: &[u32], t: u32| mask[t as usize / 32] >> (t % 32) & 1 == 1;
        let mut cands = std::mem::take(&mut plan.cands);
        cands.retain(|&t| on(mask, t));
        self.clear_refused(mask, cands, |b| plan.decide(b));
    }

    /// Clears from `mask` the candidates (tokens it allows) that a run-time
    /// check refuses: `decide` answers from a token's bytes where it can,
    /// the rest go byte by byte.
    fn clear_refused(&mut self, mask: &mut [u32], mut cands: Vec<u32>, decide: impl Fn(&[u8]) -> Option<bool>) {
        let vocab = self.cg.vocab.clone();
        cands.sort_unstable();
        cands.dedup();
        let mut slow = Vec::new();
        for t in cands {
            if vocab.kind(t) != Some(TokenKind::Normal) {
                continue;
            }
            match decide(vocab.token_bytes(t)) {
                Some(true) => {}
                Some(false) => mask[t as usize / 32] &= !(1 << (t % 32)),
                None => slow.push(t),
            }
        }
        slow.sort_unstable_by(|&a, &b| vocab.token_bytes(a).cmp(vocab.token_bytes(b)));
        for (t, ok) in slow.iter().zip(self.allowed_sorted(&slow)) {
            if !ok {
                mask[*t as usize / 32] &= !(1 << (t % 32));
            }
        }
    }

    /// Whether each of the normal tokens `toks` (sorted by their bytes) is
    /// allowed, as [`Self::is_token_allowed_slow`] decides it, stepping the
    /// bytes that neighbouring tokens share once.
    fn allowed_sorted(&mut self, toks: &[u32]) -> Vec<bool> {
        if self.terminated {
            return vec![false; toks.len()];
        }
        let cg = self.cg.clone();
        let (g, vocab) = (&cg.grammar, &cg.vocab);
        let bound = cg.config.get_limits().max_parse_states.saturating_mul(64);
        let (checked, keyed) = (!g.unique.is_empty(), !g.free_keys.is_empty());
        // `path[d]`: the configurations after `d` bytes of the previous
        // token, and whether they fanned out past `bound`.
        let mut path: Vec<(Vec<Config>, bool)> = vec![(self.configs.clone(), false)];
        let mut prev: &[u8] = &[];
        let mut out = Vec::with_capacity(toks.len());
        for &t in toks {
            let bytes = vocab.token_bytes(t);
            let shared = prev.iter().zip(bytes).take_while(|(a, b)| a == b).count();
            path.truncate(shared.min(path.len() - 1) + 1);
            while path.len() <= bytes.len() {
                let (cur, many) = path.last().expect("never empty");
                if cur.is_empty() || *many {
                    break;
                }
                let i = path.len() - 1;
                let mut next = Vec::new();
                let mut flags = StepFlags::default();
                step(g, &mut self.stacks, cur, bytes[i], &mut next, &mut flags);
                let tx = Text { head: &self.output, tail: &bytes[..=i] };
                if checked {
                    unique::filter(g, &mut self.stacks, &mut next, &tx, false, &mut self.memo);
                }
                if keyed {
                    keys::filter(g, &self.stacks, &mut next, &tx, &mut self.keys);
                }
                let many = next.len() > bound;
                path.push((next, many));
            }
            let (cur, many) = path.last().expect("never empty");
            out.push(if path.len() <= bytes.len() {
                // Stopped inside the token: rejected, or fanned out
                // (counted as allowed, as `simulate` does).
                *many
            } else if checked && !cur.is_empty() {
                let mut cs = cur.clone();
                let tx = Text { head: &self.output, tail: bytes };
                unique::filter(g, &mut self.stacks, &mut cs, &tx, true, &mut self.memo);
                !cs.is_empty()
            } else {
                !cur.is_empty()
            });
            prev = bytes;
        }
        out
    }

    /// Whether the next mask needs no new local mask (see
    /// [`fill_masks_batch`]).
    fn next_mask_is_warm(&self) -> bool {
        self.terminated || self.configs.iter().all(|c| self.cg.has_local_mask(c.state))
    }

    /// Convenience: a freshly allocated mask.
    pub fn compute_mask(&mut self) -> Result<Vec<u32>, MatchError> {
        let mut m = vec![0u32; self.cg.vocab.mask_words()];
        self.fill_next_token_bitmask(&mut m)?;
        Ok(m)
    }

    /// Steps the current configurations through `bytes` without committing,
    /// keeping at most `limit` of them. Returns the resulting
    /// configurations, or where it stopped: the offset of the first
    /// rejected byte, or [`Stop::TooMany`] when the parse fanned out past
    /// `limit` (the bytes may still be allowed).
    fn simulate(&mut self, bytes: &[u8], limit: usize) -> Result<Vec<Config>, Stop> {
        let g = &self.cg.grammar;
        let mut cur = self.configs.clone();
        let checked = !g.unique.is_empty();
        self.level = None;
        let keyed = !g.free_keys.is_empty();
        for (i, &b) in bytes.iter().enumerate() {
            self.tmp.clear();
            let mut flags = StepFlags::default();
            step(g, &mut self.stacks, &cur, b, &mut self.tmp, &mut flags);
            if checked {
                let t = Text { head: &self.output, tail: &bytes[..=i] };
                unique::filter(g, &mut self.stacks, &mut self.tmp, &t, i + 1 == bytes.len(), &mut self.memo);
                if g.values_unique && unique::at_values_level(g, &self.tmp) {
                    self.level = Some(self.output.len() + i + 1);
                }
            }
            if keyed {
                let t = Text { head: &self.output, tail: &bytes[..=i] };
                keys::filter(g, &self.stacks, &mut self.tmp, &t, &mut self.keys);
            }
            if self.tmp.is_empty() {
                return Err(Stop::Rejected(i));
            }
            if self.tmp.len() > limit {
                return Err(Stop::TooMany);
            }
            std::mem::swap(&mut cur, &mut self.tmp);
        }
        Ok(cur)
    }

    /// Whether token `t` is allowed now, decided byte by byte (slow; the
    /// reference that masks are tested against).
    pub fn is_token_allowed_slow(&mut self, t: u32) -> bool {
        match self.cg.vocab.kind(t) {
            None | Some(TokenKind::Hole) => false,
            Some(TokenKind::Special) => self.cg.vocab.is_stop(t) && self.can_terminate(),
            Some(TokenKind::Normal) => {
                if self.terminated {
                    return false;
                }
                let bytes = self.cg.vocab.token_bytes(t).to_vec();
                // The grammar's answer, past the parse-state limit (the
                // mask answers per configuration, so it is exact too); a
                // fan-out beyond even this bound counts as allowed.
                let bound = self.cg.config.get_limits().max_parse_states.saturating_mul(64);
                !bytes.is_empty() && !matches!(self.simulate(&bytes, bound), Err(Stop::Rejected(_)))
            }
        }
    }

    /// Accepts token `t`.
    ///
    /// # Errors
    /// [`MatchError::TokenOutOfRange`], [`MatchError::TokenRejected`] (the
    /// grammar does not allow it; the matcher is unchanged),
    /// [`MatchError::StopNotAllowed`], [`MatchError::Terminated`],
    /// [`MatchError::TooAmbiguous`] (an ambiguous grammar fanned out past
    /// [`Limits::max_parse_states`](crate::Limits); unchanged too).
    pub fn accept_token(&mut self, t: u32) -> Result<(), MatchError> {
        let vocab = self.cg.vocab.clone();
        let kind = vocab.kind(t).ok_or(MatchError::TokenOutOfRange { token: t, vocab_size: vocab.size() })?;
        let rejected =
            || MatchError::TokenRejected { token: t, text: String::from_utf8_lossy(vocab.token_bytes(t)).into_owned() };
        if vocab.is_stop(t) {
            if !self.can_terminate() {
                return Err(MatchError::StopNotAllowed { token: t });
            }
            self.history.push((self.configs.clone(), self.output.len(), self.terminated));
            self.terminated = true;
            return Ok(());
        }
        if self.terminated {
            return Err(MatchError::Terminated);
        }
        if kind != TokenKind::Normal {
            return Err(rejected());
        }
        let bytes = vocab.token_bytes(t);
        if bytes.is_empty() {
            return Err(rejected());
        }
        let limit = self.cg.config.get_limits().max_parse_states;
        match self.simulate(bytes, limit) {
            Ok(next) => {
                let prev = std::mem::replace(&mut self.configs, next);
                self.history.push((prev, self.output.len(), false));
                self.output.extend_from_slice(bytes);
                if let Some(p) = self.level.take() {
                    self.memo.at_values_level(p);
                }
                Ok(())
            }
            Err(Stop::Rejected(_)) => Err(rejected()),
            Err(Stop::TooMany) => Err(MatchError::TooAmbiguous { limit }),
        }
    }

    /// Accepts several tokens; stops at the first error (tokens before it
    /// stay accepted).
    pub fn accept_tokens(&mut self, ts: &[u32]) -> Result<(), MatchError> {
        ts.iter().try_for_each(|&t| self.accept_token(t))
    }

    /// Accepts raw bytes (forced text, a prompt prefix). Counts as one step
    /// for [`Matcher::rollback`].
    ///
    /// # Errors
    /// [`MatchError::BytesRejected`] with the offset of the first bad byte
    /// (the matcher is unchanged), [`MatchError::Terminated`],
    /// [`MatchError::TooAmbiguous`].
    pub fn accept_bytes(&mut self, bytes: &[u8]) -> Result<(), MatchError> {
        if self.terminated {
            return Err(MatchError::Terminated);
        }
        let limit = self.cg.config.get_limits().max_parse_states;
        match self.simulate(bytes, limit) {
            Ok(next) => {
                let prev = std::mem::replace(&mut self.configs, next);
                self.history.push((prev, self.output.len(), false));
                self.output.extend_from_slice(bytes);
                if let Some(p) = self.level.take() {
                    self.memo.at_values_level(p);
                }
                Ok(())
            }
            Err(Stop::Rejected(offset)) => {
                Err(MatchError::BytesRejected { text: String::from_utf8_lossy(bytes).into_owned(), offset })
            }
            Err(Stop::TooMany) => Err(MatchError::TooAmbiguous { limit }),
        }
    }

    /// Undoes the last `n` accepted steps (tokens, stop tokens, or
    /// `accept_bytes` calls), e.g. after a rejected speculative draft.
    pub fn rollback(&mut self, n: usize) -> Result<(), MatchError> {
        if n > self.history.len() {
            return Err(MatchError::RollbackTooFar { requested: n, available: self.history.len() });
        }
        for _ in 0..n {
            let (configs, len, term) = self.history.pop().expect("checked");
            self.configs = configs;
            self.output.truncate(len);
            self.terminated = term;
        }
        self.memo.truncate(self.output.len());
        self.keys.truncate(self.output.len());
        Ok(())
    }

    /// Number of steps that [`Matcher::rollback`] can undo.
    pub fn num_steps(&self) -> usize {
        self.history.len()
    }

    /// The bytes the grammar forces next (the only way forward), up to
    /// `max_len`: e.g. `{"implementation":` right at the start of the
    /// implementation schema. Empty when there is a choice or the output
    /// may end here.
    pub fn forced_bytes(&mut self, max_len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        if self.terminated {
            return out;
        }
        let g = &self.cg.grammar;
        let mut cur = self.configs.clone();
        let mut tmp = Vec::new();
        while out.len() < max_len {
            if cur.iter().any(|&c| can_end(g, &self.stacks, c)) {
                break;
            }
            let mut only: Option<(u8, Vec<Config>)> = None;
            let mut many = false;
            for b in 0..=255u8 {
                tmp.clear();
                let mut flags = StepFlags::default();
                step(g, &mut self.stacks, &cur, b, &mut tmp, &mut flags);
                if !tmp.is_empty() {
                    if only.is_some() {
                        many = true;
                        break;
                    }
                    only = Some((b, tmp.clone()));
                }
            }
            match (many, only) {
                (false, Some((b, next))) => {
                    out.push(b);
                    cur = next;
                }
                _ => break,
            }
        }
        out
    }

    /// Bytes that make the output so far a complete instance (empty when
    /// it already is): an A* search over parse positions, ordered by bytes
    /// so far plus a lower bound on the bytes still needed (each frame's
    /// distance to the exit of its machine, precomputed per state), each
    /// position expanded once. The shortest when the bound is exact (no
    /// counted strings on the way). `None` when nothing is found within
    /// `max_positions` expanded positions, or after termination. For a
    /// server that must end a generation within its token budget (force
    /// these bytes, then a stop token), and for walkers that must finish.
    /// Work is bounded by `max_positions` × (byte classes) steps.
    pub fn short_completion(&mut self, max_positions: usize) -> Option<Vec<u8>> {
        use std::cmp::Reverse;
        if self.terminated {
            return None;
        }
        let g = &self.cg.grammar;
        let need = |stacks: &Stacks, cs: &[Config]| -> u32 {
            cs.iter()
                .map(|c| {
                    let mut d = g.exit_dist(c.state);
                    let mut k = c.stack;
                    while k != EMPTY && k < crate::runtime::BASE {
                        let (r, p) = stacks.get(k);
                        d = d.saturating_add(g.exit_dist(r));
                        k = p;
                    }
                    d
                })
                .min()
                .unwrap_or(u32::MAX)
        };
        let mut start = self.configs.clone();
        start.sort_unstable();
        // Positions in discovery order: (configurations, parent, byte, length).
        let mut seen: ahash::AHashSet<Vec<Config>> = ahash::AHashSet::new();
        let mut nodes: Vec<(Vec<Config>, usize, u8, u32)> = Vec::new();
        let mut heap = std::collections::BinaryHeap::new();
        heap.push(Reverse((need(&self.stacks, &start), u32::MAX, 0usize)));
        seen.insert(start.clone());
        nodes.push((start, usize::MAX, 0, 0));
        // One byte per grammar-wide class: bytes of a class step every
        // state alike, so the others would find the same positions.
        let mut reps: Vec<u8> = Vec::with_capacity(g.nclasses);
        let mut have = vec![false; g.nclasses];
        for b in 0..=255u8 {
            let c = g.classes[b as usize] as usize;
            if !have[c] {
                have[c] = true;
                reps.push(b);
            }
        }
        let mut tmp = Vec::new();
        let mut expanded = 0;
        while let Some(Reverse((_, _, i))) = heap.pop() {
            if nodes[i].0.iter().any(|&c| can_end(g, &self.stacks, c)) {
                let mut path = Vec::new();
                let mut k = i;
                while nodes[k].1 != usize::MAX {
                    path.push(nodes[k].2);
                    k = nodes[k].1;
                }
                path.reverse();
                return Some(path);
            }
            expanded += 1;
            if expanded > max_positions {
                return None;
            }
            for &b in &reps {
                tmp.clear();
                let mut flags = StepFlags::default();
                step(g, &mut self.stacks, &nodes[i].0, b, &mut tmp, &mut flags);
                let uniq = b == b'"' && !g.unique.is_empty();
                let keyed = tmp.iter().any(|c| g.free_keys.contains_key(&c.state));
                if uniq || keyed {
                    // A closing quote may repeat an item, a key a member:
                    // the bytes so far decide.
                    let mut path = vec![b];
                    let mut k = i;
                    while nodes[k].1 != usize::MAX {
                        path.push(nodes[k].2);
                        k = nodes[k].1;
                    }
                    path.reverse();
                    let t = Text { head: &self.output, tail: &path };
                    if uniq {
                        unique::filter(g, &mut self.stacks, &mut tmp, &t, false, &mut self.memo);
                    }
                    if keyed {
                        keys::filter(g, &self.stacks, &mut tmp, &t, &mut self.keys);
                    }
                }
                if tmp.is_empty() {
                    continue;
                }
                tmp.sort_unstable();
                if !seen.contains(&tmp) {
                    seen.insert(tmp.clone());
                    let len = nodes[i].3 + 1;
                    // Among equal estimates the longest prefix first: the search
                    // runs down one of many equally short completions (members
                    // in any order) instead of widening over all of them.
                    heap.push(Reverse((len.saturating_add(need(&self.stacks, &tmp)), u32::MAX - len, nodes.len())));
                    nodes.push((std::mem::take(&mut tmp), i, b, len));
                }
            }
        }
        None
    }

    /// Forced bytes split greedily into tokens (longest token first), for
    /// jump-forward decoding. Only whole tokens that the grammar accepts are
    /// returned; the tail that no token covers exactly is left out.
    pub fn forced_tokens(&mut self, max_len: usize) -> Vec<u32> {
        let bytes = self.forced_bytes(max_len);
        let trie = self.cg.vocab.trie();
        let mut toks = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            match trie.prefix_tokens(&bytes[pos..]).last() {
                Some(&(len, t)) => {
                    toks.push(t);
                    pos += len;
                }
                None => break,
            }
        }
        toks
    }

    /// Heap bytes held by this matcher (stacks, history, buffers).
    pub fn memory_bytes(&self) -> usize {
        self.stacks.memory_bytes()
            + self.history.iter().map(|h| h.0.capacity() * 8 + 40).sum::<usize>()
            + self.output.capacity()
            + self.configs.capacity() * 8
    }
}

/// Fills one mask per matcher in parallel (rayon). `masks` holds
/// `matchers.len()` masks of `words` words each, back to back. The matchers
/// may be owned (`&mut [Matcher]`) or borrowed (`&mut [&mut Matcher]`, as a
/// server holding them in per-request slots has them).
pub fn fill_masks_batch<M>(matchers: &mut [M], masks: &mut [u32], words: usize) -> Vec<Result<(), MatchError>>
where
    M: std::borrow::BorrowMut<Matcher> + Send,
{
    let mut rows: Vec<(&mut Matcher, &mut [u32])> =
        matchers.iter_mut().map(|m| m.borrow_mut()).zip(masks.chunks_mut(words.max(1))).collect();
    fill_mask_rows(&mut rows)
}

/// Fills each row's mask from its matcher, in parallel (rayon): the
/// general form of [`fill_masks_batch`] for rows that are not back to back
/// (a server's bitmask tensor indexed by request slot).
pub fn fill_mask_rows(rows: &mut [(&mut Matcher, &mut [u32])]) -> Vec<Result<(), MatchError>> {
    use rayon::prelude::*;
    // A warm mask (every configuration's local mask computed) is a copy of
    // cached bits, well under a microsecond: waking rayon's threads costs
    // more than a batch of those, so such a batch runs here.
    if rows.iter().all(|(m, _)| m.next_mask_is_warm()) {
        return rows.iter_mut().map(|(m, mask)| m.fill_next_token_bitmask(mask)).collect();
    }
    rows.par_iter_mut().map(|(m, mask)| m.fill_next_token_bitmask(mask)).collect()
}

/// Sets `logits[i]` to negative infinity for every token `i` not allowed by
/// `mask`. Logits past the mask's length are disallowed too.
pub fn apply_mask(logits: &mut [f32], mask: &[u32]) {
    for (w, chunk) in logits.chunks_mut(32).enumerate() {
        let bits = mask.get(w).copied().unwrap_or(0);
        match bits {
            u32::MAX => {}
            0 => chunk.fill(f32::NEG_INFINITY),
            _ => {
                // Branch-free select so random masks do not mispredict.
                for (j, l) in chunk.iter_mut().enumerate() {
                    let keep = (bits >> j) & 1 == 1;
                    *l = if keep { *l } else { f32::NEG_INFINITY };
                }
            }
        }
    }
}
