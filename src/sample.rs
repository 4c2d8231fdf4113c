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

/// Runs the random model from the matcher's current state for at most
/// `max_tokens` steps. Each step fills the mask, picks a token the mask
/// allows (uniformly, or with growing probability one that contains a
/// closing byte `"`, `]`, `}` or a stop token), and accepts it.
///
/// # Errors
/// Whatever the matcher reports; an empty mask before termination is
/// reported as [`MatchError::TokenRejected`] with token `u32::MAX` (it would
/// be a completeness bug).
pub fn random_walk(m: &mut Matcher, rng: &mut Rng, max_tokens: usize) -> Result<Sample, MatchError> {
    let vocab = m.grammar().vocab().clone();
    let mut mask = vec![0u32; vocab.mask_words()];
    let mut s = Sample { tokens: Vec::new(), terminated: false, mask_nanos: Vec::new() };
    for step in 0..max_tokens {
        let t0 = std::time::Instant::now();
        m.fill_next_token_bitmask(&mut mask)?;
        s.mask_nanos.push(t0.elapsed().as_nanos() as u64);
        let allowed = allowed_tokens(&mask);
        if allowed.is_empty() {
            return Err(MatchError::TokenRejected { token: u32::MAX, text: "<empty mask>".into() });
        }
        // Pressure to close grows with length.
        let pressure = (step as f64 / (max_tokens as f64 * 0.5)).min(0.95);
        let stops: Vec<u32> = allowed.iter().copied().filter(|&t| vocab.is_stop(t)).collect();
        let pick = if !stops.is_empty() && rng.chance(0.3 + pressure) {
            stops[rng.below(stops.len())]
        } else if rng.chance(0.15 + pressure) {
            let closing: Vec<u32> = allowed
                .iter()
                .copied()
                .filter(|&t| {
                    let b = vocab.token_bytes(t);
                    b.len() <= 3 && b.iter().any(|c| matches!(c, b'"' | b']' | b'}'))
                })
                .collect();
            if closing.is_empty() {
                allowed[rng.below(allowed.len())]
            } else {
                closing[rng.below(closing.len())]
            }
        } else {
            allowed[rng.below(allowed.len())]
        };
        m.accept_token(pick)?;
        s.tokens.push(pick);
        if m.is_terminated() {
            s.terminated = true;
            break;
        }
    }
    Ok(s)
}
