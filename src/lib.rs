//! # grammask
//!
//! Makes a language model's output obey a JSON Schema, token by token. At
//! each decoding step a [`Matcher`] fills a bitmask over the vocabulary with
//! the tokens that keep the output on a path to a valid instance.
//!
//! Promises: **sound** (a completion the masks let through validates),
//! **complete** within the supported keywords (every valid instance in the
//! output format can be produced), **never silent** (an unsupported keyword
//! is a [`CompileError`] naming it, or with [`Config::strict`]`(false)` a
//! listed [`Relaxation`]), and **fast** (masks from a per-state cache plus a
//! short trie walk).
//!
//! ```
//! use std::sync::Arc;
//! use grammask::{Compiler, Vocabulary, Tiktoken};
//! let vocab = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).unwrap());
//! let schema = serde_json::json!({
//!     "type": "object",
//!     "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
//!     "required": ["name", "age"],
//!     "additionalProperties": false
//! });
//! let grammar = Compiler::new().compile(&schema, vocab.clone()).unwrap();
//! let mut m = grammar.matcher();
//! let mut mask = vec![0u32; vocab.mask_words()];
//! m.fill_next_token_bitmask(&mut mask).unwrap();
//! // The output must start with `{"name":`; a bare `{` token is allowed, `[` is not.
//! let allowed = |m: &[u32], t: u32| m[t as usize / 32] >> (t % 32) & 1 == 1;
//! let tok = |s: &str| tiktoken_rs::cl100k_base_singleton().encode_ordinary(s)[0];
//! assert!(allowed(&mask, tok("{")));
//! assert!(!allowed(&mask, tok("[")));
//! m.accept_bytes(br#"{"name":"Ada","age":36}"#).unwrap();
//! assert!(m.can_terminate());
//! ```
//!
//! See `ARCHITECTURE.md` for the pipeline: vocabulary → trie; schema →
//! grammar (machines of byte automata with calls) → pushdown runtime; parse
//! state → mask.

#![deny(missing_docs)]

// The pipeline, bottom up; a module imports only from its own layer and
// the layers above it in this list (checked by `tests/layers.rs`).
//
// Support: errors, options, bounds, caches, digests.
mod budget;
mod cache;
mod config;
mod digest;
mod error;
mod slot;
// 1. Vocabulary: token bytes, kinds, the token trie.
mod vocab;
// 2. Byte automata: regex DFAs, constrained strings, numeric bounds.
mod automata;
// 3. Grammar IR: machines of byte automata with calls, compiled to tables.
mod grammar;
// 4. Runtime: the pushdown configurations that execute a grammar.
mod runtime;
// Run-time checks beside the pushdown runtime: `uniqueItems` of strings,
// free members of large objects.
mod keys;
mod unique;
// 5. Masks: trie walks against the runtime, per-state mask caches.
mod mask;
// 6. Front-ends: request kinds compiled onto the grammar IR.
mod gbnf;
mod json_schema;
mod lark;
mod regex;
mod tags;
// 7. API: compiler, compiled grammar, matcher, sampling.
mod compiled;
mod matcher;
mod sample;
// 8. Tools over the API: conformance runners, the soundness net, fuzzing.
pub mod conformance;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "oracle")]
pub mod net;

pub use budget::Cancel;
pub use compiled::{CompiledGrammar, Compiler};
pub use config::{Config, Limits, PropertyOrder, Whitespace};
pub use error::{CompileError, CompileErrorKind, MatchError, VocabError};
pub use json_schema::Relaxation;
pub use matcher::{apply_mask, fill_mask_rows, fill_masks_batch, Matcher};
pub use sample::{allowed_tokens, random_walk, Rng, Sample};
pub use vocab::{Tiktoken, TokTrie, TokenKind, Vocabulary};

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
