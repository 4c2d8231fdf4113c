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

mod budget;
mod cache;
mod compiled;
mod config;
pub mod conformance;
mod digest;
mod error;
mod gbnf;
#[doc(hidden)]
pub mod fuzzing;
mod grammar;
mod lexer;
mod literal;
mod mask;
mod matcher;
mod merge;
#[cfg(feature = "oracle")]
pub mod net;
mod numbers;
mod pda;
mod regex;
mod sample;
mod schema;
mod strings;
mod subschema;
mod tags;
mod vocab;

pub use budget::Cancel;
pub use compiled::{CompiledGrammar, Compiler};
pub use config::{Config, Limits, PropertyOrder, Whitespace};
pub use error::{CompileError, CompileErrorKind, MatchError, VocabError};
pub use matcher::{apply_mask, fill_mask_rows, fill_masks_batch, Matcher};
pub use sample::{allowed_tokens, random_walk, Rng, Sample};
pub use schema::Relaxation;
pub use vocab::{Tiktoken, TokTrie, TokenKind, Vocabulary};

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
