//! A seeded random "model" for demos, tests and benchmarks: it picks among
//! the tokens a mask allows, with a bias toward closing structures so that
//! walks end. Not a language model; its only job is to exercise the masks.

use crate::error::MatchError;
use crate::matcher::Matcher;

/// A small deterministic PRNG (xorshift64*), so that runs are reproducible
/// without a dependency.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (any seed, including 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// One sampled completion.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Tokens accepted, in order (the stop token last when `terminated`).
    pub tokens: Vec<u32>,
    /// Whether the walk ended with a stop token (else it hit `max_tokens`).
    pub terminated: bool,
    /// Nanoseconds spent in each `fill_next_token_bitmask` call.
    pub mask_nanos: Vec<u64>,
}

/// Lists the ids set in `mask`.
pub fn allowed_tokens(mask: &[u32]) -> Vec<u32> {
    let mut out = Vec::new();
    for (w, &bits) in mask.iter().enumerate() {
        let mut b = bits;
        while b != 0 {
            let j = b.trailing_zeros();
            out.push(w as u32 * 32 + j);
            b &= b - 1;
        }
    }
    out
}

/// The `k`-th set bit (0-based) of `mask & filter` (`filter` all ones when
/// `None`), found a word at a time.
fn kth_bit(mask: &[u32], filter: Option<&[u32]>, mut k: usize) -> Option<u32> {
    for (w, &bits) in mask.iter().enumerate() {
        let mut b = bits & filter.map_or(u32::MAX, |f| f[w]);
        let n = b.count_ones() as usize;
        if k >= n {
            k -= n;
            continue;
        }
        for _ in 0..k {
            b &= b - 1;
        }
        return Some(w as u32 * 32 + b.trailing_zeros());
    }
    None
}

/// A uniform pick among the tokens of `mask & filter`, `None` when empty.
fn pick(mask: &[u32], filter: Option<&[u32]>, rng: &mut Rng) -> Option<u32> {
    let n: usize = match filter {
        Some(f) => mask.iter().zip(f).map(|(a, b)| (a & b).count_ones() as usize).sum(),
        None => mask.iter().map(|a| a.count_ones() as usize).sum(),
    };
    (n > 0).then(|| kth_bit(mask, filter, rng.below(n))).flatten()
}

/// Runs the random model from the matcher's current state for at most
/// `max_tokens` steps. Each step fills the mask, picks a token the mask
/// allows (uniformly, or with growing probability a stop token or a short
/// *closing* token: at most 3 bytes, holding `"`, `]` or `}` and none of
/// `[`, `{`, `,`, `:`), and accepts it. A pick costs a pass over the mask words,
/// not over the vocabulary. A walk not ended after `max_tokens` tokens is
/// then finished along [`Matcher::short_completion`], token by token
/// through the masks (the longest allowed token that spells the next
/// bytes), and a stop token; `terminated` is false only when no completion
/// was found or no allowed token spells it.
///
/// # Errors
/// Whatever the matcher reports; an empty mask before termination is
/// reported as [`MatchError::TokenRejected`] with token `u32::MAX` (it would
/// be a completeness bug).
pub fn random_walk(m: &mut Matcher, rng: &mut Rng, max_tokens: usize) -> Result<Sample, MatchError> {
    let vocab = m.grammar().vocab().clone();
    let words = vocab.mask_words();
    let mut mask = vec![0u32; words];
    let (mut stops, mut closing) = (vec![0u32; words], vec![0u32; words]);
    for t in 0..vocab.size() as u32 {
        let b = vocab.token_bytes(t);
        if vocab.is_stop(t) {
            crate::mask::set_bit(&mut stops, t);
        } else if b.len() <= 3
            && b.iter().any(|c| matches!(c, b'"' | b']' | b'}'))
            && !b.iter().any(|c| matches!(c, b'[' | b'{' | b',' | b':'))
        {
            crate::mask::set_bit(&mut closing, t);
        }
    }
    let mut s = Sample { tokens: Vec::new(), terminated: false, mask_nanos: Vec::new() };
    for step in 0..max_tokens {
        let t0 = std::time::Instant::now();
        m.fill_next_token_bitmask(&mut mask)?;
        s.mask_nanos.push(t0.elapsed().as_nanos() as u64);
        // Pressure to close grows with length.
        let pressure = (step as f64 / (max_tokens as f64 * 0.5)).min(0.95);
        let mut choice = None;
        if rng.chance(0.3 + pressure) {
            choice = pick(&mask, Some(&stops), rng);
        }
        if choice.is_none() && rng.chance(0.15 + pressure) {
            choice = pick(&mask, Some(&closing), rng);
        }
        if choice.is_none() {
            choice = pick(&mask, None, rng);
        }
        let Some(t) = choice else {
            return Err(MatchError::TokenRejected { token: u32::MAX, text: "<empty mask>".into() });
        };
        m.accept_token(t)?;
        s.tokens.push(t);
        if m.is_terminated() {
            s.terminated = true;
            return Ok(s);
        }
    }
    // Not ended within the budget: finish along a short completion,
    // still through the masks (each token must be allowed), longest
    // allowed token first, then a stop token.
    let Some(rest) = m.short_completion(COMPLETION_POSITIONS) else { return Ok(s) };
    let trie = vocab.trie();
    let mut pos = 0;
    loop {
        let t0 = std::time::Instant::now();
        m.fill_next_token_bitmask(&mut mask)?;
        s.mask_nanos.push(t0.elapsed().as_nanos() as u64);
        let allowed = |t: u32| mask[t as usize / 32] >> (t % 32) & 1 == 1;
        let t = if pos == rest.len() {
            pick(&mask, Some(&stops), rng)
        } else {
            trie.prefix_tokens(&rest[pos..]).into_iter().rev().find(|&(_, t)| allowed(t)).map(|(len, t)| {
                pos += len;
                t
            })
        };
        let Some(t) = t else { return Ok(s) };
        m.accept_token(t)?;
        s.tokens.push(t);
        if m.is_terminated() {
            s.terminated = true;
            return Ok(s);
        }
    }
}

/// Parse positions a walk may search for its completion.
const COMPLETION_POSITIONS: usize = 4096;
