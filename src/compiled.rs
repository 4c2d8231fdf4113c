//! The compile-once half of the API: [`Compiler`] turns a schema into an
//! immutable [`CompiledGrammar`] bound to one vocabulary, which is `Send +
//! Sync`, shared in an `Arc`, and hands out cheap [`Matcher`]s.

use crate::budget::{self, Cancel};
use crate::config::Config;
use crate::error::{CompileError, CompileErrorKind};
use crate::grammar::Grammar;
use crate::json_schema::{self as schema, Relaxation};
use crate::mask::{
    compose_local_leaf, compute_local, compute_local_leaf, compute_local_run, DepCache, Leaf, LocalMask, SharedMasks,
};
use crate::matcher::Matcher;
use crate::vocab::trie::SHORT_TOKEN_BYTES;
use crate::vocab::Vocabulary;
use std::sync::{Arc, OnceLock};

/// Compiles JSON Schemas against a vocabulary.
///
/// ```
/// use std::sync::Arc;
/// use grammask::{Compiler, Vocabulary};
/// let vocab = Arc::new(Vocabulary::from_token_bytes(&["{", "}", "\"a\"", ":", "1", "<eos>"], &[5]).unwrap());
/// let schema = serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false});
/// let grammar = Compiler::new().compile(&schema, vocab).unwrap();
/// let mut m = grammar.matcher();
/// for t in [0, 2, 3, 4, 1] { m.accept_token(t).unwrap(); }
/// assert!(m.can_terminate());
/// m.accept_token(5).unwrap();
/// assert!(m.is_terminated());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Compiler {
    config: Config,
    cancel: Option<Cancel>,
}

impl Compiler {
    /// A compiler with the default [`Config`].
    pub fn new() -> Compiler {
        Compiler::default()
    }
    /// A compiler with `config`.
    pub fn with_config(config: Config) -> Compiler {
        Compiler { config, cancel: None }
    }
    /// This compiler with a cancellation handle: after
    /// [`Cancel::cancel`], its running and later compiles stop with
    /// [`CompileErrorKind::Cancelled`].
    pub fn with_cancel(mut self, cancel: Cancel) -> Compiler {
        self.cancel = Some(cancel);
        self
    }
    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Compiles `schema` for `vocab`.
    ///
    /// # Errors
    /// A [`CompileError`] naming the keyword and JSON pointer for anything
    /// that cannot be enforced (strict mode), an unknown `$ref`, an invalid
    /// or unsatisfiable schema, or an exceeded limit.
    pub fn compile(
        &self,
        schema: &serde_json::Value,
        vocab: Arc<Vocabulary>,
    ) -> Result<Arc<CompiledGrammar>, CompileError> {
        let c = self.bounded(|| schema::compile(schema, &self.config))?;
        let digest = crate::digest::Digest::default().json(schema).hex();
        Ok(self.finish(c.grammar, (c.relaxations, c.annotations), vocab, digest))
    }

    /// Compiles a regex front-end request: the whole output must match the
    /// ECMA-262 `pattern` (as if anchored at both ends; `.` does not match
    /// line terminators). What vLLM's `guided_regex` asks for.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use grammask::{Compiler, Vocabulary};
    /// let vocab = Arc::new(Vocabulary::from_token_bytes(&["a", "b", "ab", "c", "<eos>"], &[4]).unwrap());
    /// let g = Compiler::new().compile_regex("(ab)+c?", vocab).unwrap();
    /// let mut m = g.matcher();
    /// assert!(m.accept_tokens(&[2, 0]).is_ok() && !m.can_terminate());
    /// m.accept_token(1).unwrap(); // "abab"
    /// assert!(m.can_terminate());
    /// m.accept_token(3).unwrap(); // "ababc"
    /// assert!(m.accept_token(0).is_err());
    /// ```
    ///
    /// # Errors
    /// [`CompileErrorKind::Unsupported`] for constructs a DFA cannot
    /// enforce (lookaround, backreferences), `InvalidSchema` for a pattern
    /// that does not parse, `Unsatisfiable` when it matches nothing,
    /// `LimitExceeded` for an automaton over [`Limits`](crate::Limits); the
    /// keyword is `regex`.
    pub fn compile_regex(&self, pattern: &str, vocab: Arc<Vocabulary>) -> Result<Arc<CompiledGrammar>, CompileError> {
        let g = self.bounded(|| crate::regex::compile(pattern, &self.config))?;
        let digest = crate::digest::Digest::default().field(b"regex").field(pattern.as_bytes()).hex();
        Ok(self.finish(g, (Vec::new(), Vec::new()), vocab, digest))
    }

    /// Compiles a GBNF grammar (llama.cpp's format; XGrammar's EBNF reads
    /// the same): the whole output must be a string of its `root` rule.
    /// Character classes and `.` match Unicode code points, emitted as
    /// UTF-8.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use grammask::{Compiler, Vocabulary};
    /// let vocab = Arc::new(Vocabulary::from_token_bytes(&["1", "+", "2", "+2", " ", "<eos>"], &[5]).unwrap());
    /// let gbnf = r#"
    /// root ::= num ("+" num)*   # a sum
    /// num  ::= [0-9]+
    /// "#;
    /// let g = Compiler::new().compile_gbnf(gbnf, vocab).unwrap();
    /// let mut m = g.matcher();
    /// m.accept_tokens(&[0, 3]).unwrap(); // "1+2"
    /// assert!(m.can_terminate());
    /// assert!(m.accept_token(4).is_err()); // no blank in this grammar
    /// ```
    ///
    /// # Errors
    /// `InvalidSchema` for text that does not parse or an undefined rule,
    /// `Unsupported` for left recursion (named with its cycle) and for
    /// constructs outside the format (token references, lookahead),
    /// `Unsatisfiable` when `root` matches nothing, `LimitExceeded` for
    /// grammars over [`Limits`](crate::Limits); each carries the
    /// [`position`](CompileError::position) and the keyword `gbnf`.
    pub fn compile_gbnf(&self, grammar: &str, vocab: Arc<Vocabulary>) -> Result<Arc<CompiledGrammar>, CompileError> {
        let g = self.bounded(|| crate::gbnf::compile(grammar, &self.config))?;
        let digest = crate::digest::Digest::default().field(b"gbnf").field(grammar.as_bytes()).hex();
        Ok(self.finish(g, (Vec::new(), Vec::new()), vocab, digest))
    }

    /// Compiles a Lark grammar (the dialect llguidance documents): the whole
    /// output must be a string of rule `start`, cut into lexemes the way a
    /// greedy lexer cuts it — a terminal never ends where the next byte
    /// could continue one the grammar allows there, so `NAME NAME` does not
    /// accept `ab` as two names. `%ignore`, `%import common.…` and
    /// `%json {…}` are read; see the README for the whole dialect.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use grammask::{Compiler, Vocabulary};
    /// let vocab = Arc::new(Vocabulary::from_token_bytes(&["x", "=", "1", " ", "y", "<eos>"], &[5]).unwrap());
    /// let lark = r#"
    /// start: NAME "=" NUMBER
    /// NAME: /[a-z]+/
    /// %import common.NUMBER
    /// %ignore " "
    /// "#;
    /// let g = Compiler::new().compile_lark(lark, vocab).unwrap();
    /// let mut m = g.matcher();
    /// m.accept_tokens(&[0, 3, 1, 2]).unwrap(); // "x =1"
    /// assert!(m.can_terminate());
    /// ```
    ///
    /// # Errors
    /// `InvalidSchema` for text that does not parse or a name not defined,
    /// `Unsupported` for what the dialect has and grammask does not enforce
    /// (indirect left recursion, named with its cycle; lazy quantifiers,
    /// priorities, templates, special tokens, lexeme options),
    /// `Unsatisfiable` when `start` matches nothing, `LimitExceeded` for
    /// grammars over [`Limits`](crate::Limits); each carries the
    /// [`position`](CompileError::position) and the keyword `lark` (errors
    /// inside a `%json` schema carry its pointer and position).
    pub fn compile_lark(&self, grammar: &str, vocab: Arc<Vocabulary>) -> Result<Arc<CompiledGrammar>, CompileError> {
        let c = self.bounded(|| crate::lark::compile(grammar, &self.config))?;
        let digest = crate::digest::Digest::default().field(b"lark").field(grammar.as_bytes()).hex();
        Ok(self.finish(c.grammar, (c.relaxations, c.annotations), vocab, digest))
    }

    /// Compiles a structural tag request (tool calls): free text in which
    /// each occurrence of a trigger must go on as one of the structures
    /// that begin with it — the rest of its `begin`, one JSON value valid
    /// against its `schema`, its `end` — before free text resumes. The
    /// request is XGrammar's `structural_tag` document, as vLLM and SGLang
    /// pass it; the free text is UTF-8 and holds no trigger.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use grammask::{Compiler, Vocabulary};
    /// let vocab = Arc::new(Vocabulary::from_token_bytes(
    ///     &["Hi", " ", "<f=", "w>", "{\"c\":", "\"Oslo\"", "}", "</f>", "<", "<eos>"], &[9]).unwrap());
    /// let request = serde_json::json!({
    ///     "structures": [{"begin": "<f=w>", "end": "</f>", "schema": {
    ///         "type": "object", "properties": {"c": {"type": "string"}}, "required": ["c"]}}],
    ///     "triggers": ["<f="]
    /// });
    /// let g = Compiler::new().compile_structural_tag(&request, vocab).unwrap();
    /// let mut m = g.matcher();
    /// m.accept_tokens(&[0, 1, 2, 3, 4, 5]).unwrap(); // Hi <f=w>{"c":"Oslo"
    /// assert!(!m.can_terminate() && m.accept_token(7).is_err()); // the object is open
    /// m.accept_tokens(&[6, 7]).unwrap(); // }</f>
    /// assert!(m.can_terminate());
    /// ```
    ///
    /// # Errors
    /// `InvalidSchema` (keyword `structural_tag`) for a malformed request
    /// (a `begin` that starts with no trigger, an empty trigger), and every
    /// error of [`Compiler::compile`] for a structure's schema, its
    /// pointer inside the request (`/structures/0/schema/…`).
    pub fn compile_structural_tag(
        &self,
        request: &serde_json::Value,
        vocab: Arc<Vocabulary>,
    ) -> Result<Arc<CompiledGrammar>, CompileError> {
        let c = self.bounded(|| crate::tags::compile(request, &self.config))?;
        let text = serde_json::to_string(request).unwrap_or_default();
        let digest = crate::digest::Digest::default().field(b"structural_tag").field(text.as_bytes()).hex();
        Ok(self.finish(c.grammar, (c.relaxations, c.annotations), vocab, digest))
    }

    /// Runs a front-end under this compiler's deadline and cancel handle.
    fn bounded<T>(&self, f: impl FnOnce() -> Result<T, CompileError>) -> Result<T, CompileError> {
        if self.config.get_deadline().is_none() && self.cancel.is_none() {
            // No budget installed: `budget::check` returns at once.
            return f();
        }
        let scope = budget::Scope::enter(self.config.get_deadline(), self.cancel.clone());
        f().map_err(|e| match scope.stopped() {
            Some(budget::Stop::Cancelled) => {
                CompileError::new(CompileErrorKind::Cancelled, e.pointer(), "compile cancelled")
            }
            Some(budget::Stop::Deadline) => CompileError::new(
                CompileErrorKind::LimitExceeded,
                e.pointer(),
                format!(
                    "compile deadline of {:?} passed (Config::deadline)",
                    self.config.get_deadline().unwrap_or_default()
                ),
            ),
            None => e,
        })
    }

    /// A compiled grammar with empty mask caches.
    fn finish(
        &self,
        grammar: Grammar,
        (relaxations, annotations): (Vec<Relaxation>, Vec<Relaxation>),
        vocab: Arc<Vocabulary>,
        schema_digest: String,
    ) -> Arc<CompiledGrammar> {
        let n = grammar.num_states();
        let machines = grammar.machine_start.len();
        let virt = grammar.counted.iter().map(|m| VirtualMasks::new(m.size())).collect();
        Arc::new(CompiledGrammar {
            grammar,
            vocab,
            relaxations,
            annotations,
            local: (0..n).map(|_| OnceLock::new()).collect(),
            leaves: (0..machines).map(|_| OnceLock::new()).collect(),
            virt,
            keyset_masks: Default::default(),
            deps: DepCache::default(),
            config: self.config.clone(),
            schema_digest,
            fingerprint: OnceLock::new(),
            unique_tokens: OnceLock::new(),
            key_tokens: OnceLock::new(),
        })
    }

    /// Like [`Compiler::compile`], from schema text.
    ///
    /// # Errors
    /// [`CompileErrorKind::MalformedJson`] when the text is not JSON, else as
    /// [`Compiler::compile`].
    pub fn compile_str(&self, schema: &str, vocab: Arc<Vocabulary>) -> Result<Arc<CompiledGrammar>, CompileError> {
        let v: serde_json::Value = serde_json::from_str(schema)
            .map_err(|e| CompileError::new(CompileErrorKind::MalformedJson, "", format!("schema is not JSON: {e}")))?;
        self.compile(&v, vocab)
    }

    /// Like [`Compiler::compile_structural_tag`], from the request's text.
    ///
    /// # Errors
    /// [`CompileErrorKind::MalformedJson`] when the text is not JSON, else as
    /// [`Compiler::compile_structural_tag`].
    pub fn compile_structural_tag_str(
        &self,
        request: &str,
        vocab: Arc<Vocabulary>,
    ) -> Result<Arc<CompiledGrammar>, CompileError> {
        let v: serde_json::Value = serde_json::from_str(request).map_err(|e| {
            CompileError::new(CompileErrorKind::MalformedJson, "", format!("structural tag request is not JSON: {e}"))
        })?;
        self.compile_structural_tag(&v, vocab)
    }
}

/// A schema compiled against a vocabulary. Immutable apart from a lazily
/// filled per-state mask cache; share it in an `Arc` across threads.
pub struct CompiledGrammar {
    pub(crate) grammar: Grammar,
    pub(crate) vocab: Arc<Vocabulary>,
    relaxations: Vec<Relaxation>,
    annotations: Vec<Relaxation>,
    local: Vec<OnceLock<Arc<LocalMask>>>,
    /// Per machine: its [`Leaf`] analysis when it makes no calls.
    leaves: Vec<OnceLock<Option<Leaf>>>,
    /// Per counted machine: masks of its virtual states.
    virt: Vec<VirtualMasks>,
    /// Masks of keyset states (see [`CompiledGrammar::keyset_mask`]).
    keyset_masks: std::sync::RwLock<ahash::AHashMap<u32, Arc<LocalMask>>>,
    /// Results of dependent walks, shared by all matchers.
    pub(crate) deps: DepCache,
    pub(crate) config: Config,
    /// Digest of the schema as given (members in canonical order).
    schema_digest: String,
    /// [`CompiledGrammar::fingerprint`], computed on first use.
    fingerprint: OnceLock<String>,
    /// The tokens a `uniqueItems` check may refuse, by kind (first use).
    unique_tokens: OnceLock<crate::unique::TokenLists>,
    /// The tokens a free-member check may refuse (first use).
    key_tokens: OnceLock<crate::keys::KeyTokens>,
}

/// Slots per page of [`VirtualMasks`].
const PAGE: usize = 1024;

/// The mask cache of one counted machine (see [`crate::grammar::counted`]):
/// a slot per virtual state, in pages allocated on first use (a string with
/// `maxLength: 65535` has a million virtual states, of which a run visits a
/// few), and one mask per window class, shared by its states.
struct VirtualMasks {
    pages: Vec<OnceLock<Page>>,
    classes: std::sync::Mutex<WindowMasks>,
}

/// [`PAGE`] mask slots.
type Page = Box<[OnceLock<Arc<LocalMask>>]>;
/// (table state, window) → mask.
type WindowMasks = ahash::AHashMap<(u32, Vec<u32>), Arc<LocalMask>>;

impl VirtualMasks {
    fn new(size: u32) -> VirtualMasks {
        let pages = (size as usize).div_ceil(PAGE);
        VirtualMasks { pages: (0..pages).map(|_| OnceLock::new()).collect(), classes: Default::default() }
    }
    fn slot(&self, off: usize) -> &OnceLock<Arc<LocalMask>> {
        let page = self.pages[off / PAGE].get_or_init(|| (0..PAGE).map(|_| OnceLock::new()).collect());
        &page[off % PAGE]
    }
    /// Whether the mask at `off` is computed (allocates nothing).
    fn has(&self, off: usize) -> bool {
        self.pages[off / PAGE].get().is_some_and(|page| page[off % PAGE].get().is_some())
    }
    fn memory_bytes(&self) -> usize {
        self.pages.capacity() * 8 + self.pages.iter().filter(|p| p.get().is_some()).count() * PAGE * 8
    }
}

impl std::fmt::Debug for CompiledGrammar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledGrammar")
            .field("states", &self.grammar.num_states())
            .field("vocab", &self.vocab.name())
            .field("relaxations", &self.relaxations)
            .finish()
    }
}

impl CompiledGrammar {
    /// Token lists for free members (see [`crate::keys::KeyTokens`]).
    pub(crate) fn key_tokens(&self) -> &crate::keys::KeyTokens {
        self.key_tokens.get_or_init(|| crate::keys::KeyTokens::new(&self.grammar, &self.vocab))
    }

    /// Token lists for run-time `uniqueItems` (see [`crate::unique::TokenLists`]).
    pub(crate) fn unique_tokens(&self) -> &crate::unique::TokenLists {
        self.unique_tokens.get_or_init(|| crate::unique::TokenLists::new(&self.vocab))
    }

    /// A new matcher at the start of the document.
    pub fn matcher(self: &Arc<Self>) -> Matcher {
        Matcher::new(self.clone())
    }
    /// The vocabulary this grammar was compiled for.
    pub fn vocab(&self) -> &Arc<Vocabulary> {
        &self.vocab
    }
    /// Formats JSON Schema does not define (`int32`, `byte`, `url`, …),
    /// which every validator treats as annotations: the strings they
    /// describe are left free, in strict mode too. `keyword` is
    /// `format:<name>`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use grammask::{Compiler, Vocabulary};
    /// let vocab = Arc::new(Vocabulary::from_token_bytes(&["\"", "a", "<eos>"], &[2]).unwrap());
    /// let g = Compiler::new().compile_str(r#"{"type":"string","format":"int32"}"#, vocab).unwrap();
    /// assert_eq!(g.annotations()[0].keyword, "format:int32");
    /// ```
    pub fn annotations(&self) -> &[Relaxation] {
        &self.annotations
    }
    /// Keywords dropped in lenient mode (empty in strict mode).
    pub fn relaxations(&self) -> &[Relaxation] {
        &self.relaxations
    }
    /// A stable identifier (32 hex digits) of what constrains the output:
    /// the schema (member order ignored), the configuration, the keywords
    /// relaxed in lenient mode, and the vocabulary's
    /// [digest](Vocabulary::digest). A server logs it with each request to
    /// prove which schema was in force; equal fingerprints give equal masks.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use grammask::{Compiler, Vocabulary};
    /// let vocab = Arc::new(Vocabulary::from_token_bytes(&["{", "}", "<eos>"], &[2]).unwrap());
    /// let a = Compiler::new().compile_str(r#"{"type":"object","maxProperties":0}"#, vocab.clone()).unwrap();
    /// let b = Compiler::new().compile_str(r#"{"maxProperties":0,"type":"object"}"#, vocab).unwrap();
    /// assert_eq!(a.fingerprint(), b.fingerprint());
    /// ```
    pub fn fingerprint(&self) -> &str {
        self.fingerprint.get_or_init(|| {
            let mut d = crate::digest::Digest::default();
            d.field(b"grammask-fingerprint-1")
                .field(self.schema_digest.as_bytes())
                .field(self.config.output_key().as_bytes())
                .field(self.vocab.digest().as_bytes());
            for r in &self.relaxations {
                d.field(r.keyword.as_bytes()).field(r.pointer.as_bytes());
            }
            d.hex()
        })
    }
    /// Number of automaton states.
    pub fn num_states(&self) -> usize {
        self.grammar.num_states()
    }
    /// Heap bytes: tables plus the mask cache filled so far.
    pub fn memory_bytes(&self) -> usize {
        // States of one class share one mask, and masks share bits: count
        // each allocation once.
        let mut seen = ahash::AHashSet::new();
        let mut seen_bits = ahash::AHashSet::new();
        let mut bytes = self.grammar.memory_bytes() + self.local.capacity() * 8 + self.deps.memory_bytes();
        let keyset: Vec<Arc<LocalMask>> =
            self.keyset_masks.read().map(|m| m.values().cloned().collect()).unwrap_or_default();
        let virt = self.virt.iter().flat_map(|v| {
            bytes += v.memory_bytes();
            let classes: Vec<Arc<LocalMask>> =
                v.classes.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
            classes
        });
        let virt: Vec<Arc<LocalMask>> = virt.collect();
        for l in self.local.iter().filter_map(|l| l.get()).chain(virt.iter()).chain(keyset.iter()) {
            if seen.insert(Arc::as_ptr(l)) {
                bytes += l.memory_bytes() - l.bits.capacity() * 4;
                if seen_bits.insert(Arc::as_ptr(&l.bits)) {
                    bytes += l.bits.capacity() * 4;
                }
            }
        }
        bytes
    }
    /// Computes the per-state mask cache for every state now (in parallel),
    /// instead of lazily at first use.
    pub fn precompute(&self) {
        use rayon::prelude::*;
        (0..self.local.len() as u32).into_par_iter().for_each(|s| {
            self.local_mask(s);
        });
    }

    /// Whether state `s`'s local mask is computed already (its next mask
    /// is a copy plus, at most, a dependent walk).
    pub(crate) fn has_local_mask(&self, s: u32) -> bool {
        if self.grammar.is_keyset(s) {
            return self.keyset_masks.read().is_ok_and(|m| m.contains_key(&self.keyset_rep(s)));
        }
        if s >= self.grammar.nreal {
            let ci = self.grammar.counted_index(s);
            return self.virt[ci].has((s - self.grammar.counted[ci].base) as usize);
        }
        self.local[s as usize].get().is_some()
    }

    /// The local mask of explicit or counted state `s` (keyset states:
    /// [`CompiledGrammar::keyset_mask`]).
    pub(crate) fn local_mask(&self, s: u32) -> &LocalMask {
        debug_assert!(!self.grammar.is_keyset(s));
        if s >= self.grammar.nreal {
            return self.virtual_mask(s);
        }
        self.local[s as usize].get_or_init(|| self.make_local(s))
    }

    /// The local mask of keyset state `s`, and whether it is the cached one
    /// (its address then identifies it for [`DepCache`]); at most
    /// [`Limits::keyset_mask_cache`](crate::Limits) are cached.
    pub(crate) fn keyset_mask(&self, s: u32) -> (Arc<LocalMask>, bool) {
        let s = self.keyset_rep(s);
        if let Some(m) = self.keyset_masks.read().ok().and_then(|m| m.get(&s).cloned()) {
            return (m, true);
        }
        let limit = self.config.get_limits().max_parse_states;
        let lm = Arc::new(compute_local(&self.grammar, self.vocab.trie(), s, self.vocab.mask_words(), limit));
        if let Ok(mut map) = self.keyset_masks.write() {
            if map.len() < self.config.get_limits().keyset_mask_cache {
                return (map.entry(s).or_insert(lm).clone(), true);
            }
        }
        (lm, false)
    }

    /// The keyset state whose local mask serves keyset state `s` (see
    /// `Keyset::mask_rep`): a token completes at most one member per five
    /// bytes (`,"":0`).
    fn keyset_rep(&self, s: u32) -> u32 {
        let reach = (self.vocab.trie().max_token_len() / 5 + 2) as u32;
        self.grammar.keyset_of(s).mask_rep(s, reach)
    }

    /// The mask of a virtual state of a counted machine: shared by every
    /// state with the same window (table state and liveness ahead), here
    /// and, through the vocabulary's cache, in other grammars. A new window
    /// is composed like a leaf state's: the bits of short tokens from the
    /// first state seen with the same *short* window, and a walk of the
    /// paths to long tokens only.
    fn virtual_mask(&self, s: u32) -> &LocalMask {
        let g = &self.grammar;
        let ci = g.counted_index(s);
        let cm = &g.counted[ci];
        let vm = &self.virt[ci];
        vm.slot((s - cm.base) as usize).get_or_init(|| {
            let trie = self.vocab.trie();
            let words = self.vocab.mask_words();
            let cached = |key: (u32, Vec<u32>), compute: &dyn Fn() -> LocalMask| -> Arc<LocalMask> {
                if let Some(m) = vm.classes.lock().ok().and_then(|m| m.get(&key).cloned()) {
                    return m;
                }
                let m = Arc::new(SharedMasks::of(&self.vocab).get_or_compute_virtual(
                    (cm.sig ^ crate::mask::follow_key(g, cm.machine), key.0, key.1.clone()),
                    cm.done_id(),
                    compute,
                ));
                if let Ok(mut map) = vm.classes.lock() {
                    map.insert(key, m.clone());
                }
                m
            };
            let full = cm.window(s, trie.max_token_len());
            if trie.max_token_len() <= SHORT_TOKEN_BYTES {
                return cached(full, &|| compute_local_leaf(g, trie, s, words));
            }
            // Short windows are told apart from full ones by the high bit.
            let (ts, cols) = cm.window(s, SHORT_TOKEN_BYTES);
            let short = cached((ts | 1 << 31, cols), &|| compute_local_leaf(g, trie, s, words));
            cached(full, &|| compose_local_leaf(g, trie, s, &short))
        })
    }

    /// A state of a leaf machine shares the mask of its class
    /// representative, which comes from the vocabulary's cache when another
    /// grammar already computed it; other states walk the trie.
    fn make_local(&self, s: u32) -> Arc<LocalMask> {
        let g = &self.grammar;
        let limit = self.config.get_limits().max_parse_states;
        let compute = |s: u32| compute_local(g, self.vocab.trie(), s, self.vocab.mask_words(), limit);
        if let Some(lm) = compute_local_run(g, self.vocab.trie(), s, self.vocab.mask_words(), limit) {
            return Arc::new(lm);
        }
        let m = g.machine_of(s);
        let leaf = self.leaves[m as usize].get_or_init(|| Leaf::analyze(g, m, self.vocab.trie().max_token_len()));
        let Some(leaf) = leaf else {
            return Arc::new(compute(s));
        };
        let rep = leaf.rep(s);
        if rep != s {
            return self.local[rep as usize].get_or_init(|| self.make_local(rep)).clone();
        }
        let trie = self.vocab.trie();
        Arc::new(SharedMasks::of(&self.vocab).get_or_compute(leaf, s, limit, || {
            let rs = leaf.rep_short(s);
            if leaf.return_only && rs != s {
                let short = self.local[rs as usize].get_or_init(|| self.make_local(rs));
                compose_local_leaf(g, trie, s, short)
            } else {
                compute_local_leaf(g, trie, s, self.vocab.mask_words())
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Tiktoken;

    /// The leaf walk gives exactly the general walk's local mask.
    #[test]
    fn leaf_walk_matches_general_walk() {
        let vocab = Arc::new(Vocabulary::tiktoken(Tiktoken::R50k).unwrap());
        let schemas = [
            serde_json::json!({"type": "string", "maxLength": 4, "pattern": "^[a-c\\d]+"}),
            serde_json::json!({"type": "object", "properties": {"n": {"type": "number", "minimum": -2.5, "maximum": 70}},
                "additionalProperties": {"type": "integer"}}),
            serde_json::json!({"type": "array", "items": {"enum": ["ab", "a\"b", 3]}}),
            serde_json::json!({"type": "array", "items": {"type": "string", "maxLength": 30}}),
            serde_json::json!({"type": "array", "items": {"type": "string", "pattern": "^[^x]*$"}}),
            serde_json::json!({"type": "array", "items": {"type": "string", "pattern": "^[\\w.\\- ]+$"}}),
            serde_json::json!({"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9_]{3,30}$"}}),
        ];
        let mut leaves = 0;
        for schema in schemas {
            let g = Compiler::new().compile(&schema, vocab.clone()).unwrap();
            let gr = &g.grammar;
            for s in 0..gr.num_states() as u32 {
                let m = gr.machine_of[s as usize];
                if Leaf::analyze(gr, m, vocab.trie().max_token_len()).is_none() {
                    continue;
                }
                leaves += 1;
                if leaves % 3 != 0 {
                    continue; // a third of them keeps the test quick
                }
                let a = compute_local(gr, vocab.trie(), s, vocab.mask_words(), 64);
                let b = compute_local_leaf(gr, vocab.trie(), s, vocab.mask_words());
                assert_eq!(a.bits, b.bits, "{schema} state {s}");
                let groups = |l: &LocalMask| {
                    let mut v: Vec<(Vec<crate::runtime::Config>, Vec<u32>)> =
                        l.groups.iter().map(|g| (g.configs.clone(), g.nodes.clone())).collect();
                    v.sort();
                    v
                };
                assert_eq!(groups(&a), groups(&b), "{schema} state {s}");
            }
        }
        assert!(leaves > 30, "only {leaves} leaf states");
    }

    /// Masks composed from a short-token class representative plus a walk
    /// of long tokens equal the full walk: same bits, same dependent nodes,
    /// and every dependent group starts from a state that can only return.
    #[test]
    fn composed_leaf_masks_match_full_walks() {
        let vocab = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).unwrap());
        let schema = serde_json::json!({"type": "object", "properties": {
            "a": {"type": "string", "maxLength": 60},
            "b": {"type": "string", "minLength": 3, "maxLength": 40, "pattern": "^[a-z ]*$"}}});
        let g = Compiler::new().compile(&schema, vocab.clone()).unwrap();
        let gr = &g.grammar;
        let mut composed = 0;
        for s in 0..gr.num_states() as u32 {
            let m = gr.machine_of[s as usize];
            let Some(leaf) = Leaf::analyze(gr, m, vocab.trie().max_token_len()) else { continue };
            if !leaf.return_only || leaf.rep_short(s) == s || leaf.rep(s) != s {
                continue;
            }
            composed += 1;
            let a = g.local_mask(s);
            let b = compute_local_leaf(gr, vocab.trie(), s, vocab.mask_words());
            assert_eq!(a.bits, b.bits, "state {s}");
            let nodes = |l: &LocalMask| {
                let mut v: Vec<u32> = l.groups.iter().flat_map(|g| g.nodes.iter().copied()).collect();
                v.sort();
                v
            };
            assert_eq!(nodes(a), nodes(&b), "state {s}");
            for gr2 in &a.groups {
                let p = gr2.configs[0].state as usize;
                assert!(gr.accept[p] && !gr.has_out[p]);
            }
        }
        assert!(composed > 20, "only {composed} composed states");
    }
}
