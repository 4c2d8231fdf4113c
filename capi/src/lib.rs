//! The C ABI of grammask (`include/grammask.h`, generated from this file by
//! cbindgen): what a C or C++ server (llama.cpp's shape) needs to constrain
//! decoding with a JSON Schema.
//!
//! Three opaque handles mirror the Rust API: a [`GmVocab`] (one per
//! tokenizer, shared), a [`GmGrammar`] (one per schema, shared by threads)
//! and a [`GmMatcher`] (one per sequence, used by one thread at a time).
//!
//! Contract, kept by every function here:
//! - a null handle or buffer, or a buffer shorter than needed, is an error
//!   status (or a null result), never a crash;
//! - no Rust panic crosses the boundary (each body runs under
//!   `catch_unwind`; a panic becomes [`GmStatus::Internal`]);
//! - a failed call leaves the matcher as it was, and
//!   [`gm_matcher_last_error`] says why it failed.
//!
//! What C cannot be protected from: a dangling pointer, a pointer to the
//! wrong handle type, or a length larger than the buffer really is.

use grammask::{
    CompiledGrammar, Compiler, Config, MatchError, Matcher, PropertyOrder, Tiktoken, Vocabulary, Whitespace,
};
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// A vocabulary: token id → bytes, special and stop tokens.
pub struct GmVocab(Arc<Vocabulary>);

/// A compiled schema, bound to one vocabulary. Thread-safe.
pub struct GmGrammar {
    grammar: Arc<CompiledGrammar>,
    fingerprint: CString,
    relaxations: CString,
}

/// The state of one generation.
pub struct GmMatcher {
    matcher: Matcher,
    error: CString,
}

/// Result of a call that can fail. `GM_STATUS_OK` is zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GmStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was null.
    NullArgument = 1,
    /// A buffer is shorter than needed (e.g. a mask of fewer than
    /// `gm_vocab_mask_words` words).
    BadLength = 2,
    /// A string argument is not UTF-8.
    InvalidUtf8 = 3,
    /// The token id is not in the vocabulary.
    TokenOutOfRange = 4,
    /// The grammar does not allow this token or these bytes here.
    Rejected = 5,
    /// A stop token before the output is a complete instance.
    StopNotAllowed = 6,
    /// The matcher already accepted a stop token.
    Terminated = 7,
    /// `gm_matcher_rollback` asked for more steps than were taken.
    RollbackTooFar = 8,
    /// The parse fanned out past the configured limit.
    TooAmbiguous = 9,
    /// A bug in grammask (a caught panic). Please report it.
    Internal = 10,
}

/// How a schema is compiled. Get the defaults from
/// `gm_compile_options_default()` and change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GmCompileOptions {
    /// Strict mode (default true): an unsupported keyword is a compile
    /// error. When false it is dropped and listed by `gm_grammar_relaxations`.
    pub strict: bool,
    /// 0 (default): no whitespace between JSON tokens. N > 0: up to N bytes
    /// of whitespace wherever JSON allows it inside objects and arrays.
    pub whitespace_max_run: u8,
    /// False (default): object members in any order. True: in the order the
    /// schema declares them.
    pub schema_property_order: bool,
    /// 0 (default): no deadline. N > 0: a compile still running after N
    /// milliseconds fails (the error names the deadline).
    pub deadline_ms: u32,
}

impl GmCompileOptions {
    fn config(&self) -> Config {
        let ws = match self.whitespace_max_run {
            0 => Whitespace::Compact,
            n => Whitespace::Flexible { max_run: n },
        };
        let order = if self.schema_property_order { PropertyOrder::Schema } else { PropertyOrder::Any };
        let c = Config::new().strict(self.strict).whitespace(ws).property_order(order);
        match self.deadline_ms {
            0 => c,
            ms => c.deadline(std::time::Duration::from_millis(ms as u64)),
        }
    }
}

/// Runs `f`, turning a panic into `on_panic`.
fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// Copies `msg` into the caller's `err` buffer, truncated and
/// NUL-terminated. Does nothing when `err` is null or `err_len` is 0.
///
/// # Safety
/// `err` is null or points to `err_len` writable bytes.
unsafe fn write_err(err: *mut c_char, err_len: usize, msg: &str) {
    if err.is_null() || err_len == 0 {
        return;
    }
    let n = msg.len().min(err_len - 1);
    // SAFETY: the caller promises `err_len` writable bytes at `err`; we
    // write `n + 1 <= err_len` of them.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), err as *mut u8, n);
        *err.add(n) = 0;
    }
}

fn cstring(s: String) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

/// The library's version, a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn gm_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Loads a Hugging Face `tokenizer.json`. Returns null on failure, with the
/// reason in `err` (when not null; `err_len` bytes, NUL-terminated).
///
/// # Safety
/// `path` is null or a NUL-terminated string; `err` is null or points to
/// `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn gm_vocab_from_tokenizer_json(
    path: *const c_char,
    err: *mut c_char,
    err_len: usize,
) -> *mut GmVocab {
    guard(std::ptr::null_mut(), || {
        // SAFETY: null or NUL-terminated by the contract.
        let v = unsafe { c_str(path, "path") }
            .and_then(|path| Vocabulary::from_tokenizer_json(path).map_err(|e| e.to_string()));
        // SAFETY: `err` as the contract says.
        unsafe { vocab_out(v, err, err_len) }
    })
}

/// A NUL-terminated argument as UTF-8 (`what` names it in the error).
///
/// # Safety
/// `p` is null or a NUL-terminated string that outlives the result.
unsafe fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, String> {
    if p.is_null() {
        return Err(format!("{what} is null"));
    }
    // SAFETY: non-null and NUL-terminated by the contract.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| format!("{what} is not UTF-8"))
}

/// A vocabulary handle, or null with the error written to `err`.
///
/// # Safety
/// `err` is null or points to `err_len` writable bytes.
unsafe fn vocab_out(v: Result<Vocabulary, String>, err: *mut c_char, err_len: usize) -> *mut GmVocab {
    match v {
        Ok(v) => Box::into_raw(Box::new(GmVocab(Arc::new(v)))),
        Err(e) => {
            // SAFETY: as the caller promises.
            unsafe { write_err(err, err_len, &e) };
            std::ptr::null_mut()
        }
    }
}

/// Loads a vocabulary shipped with grammask: `"cl100k_base"`,
/// `"o200k_base"` or `"r50k_base"`. Returns null on failure.
///
/// # Safety
/// As [`gm_vocab_from_tokenizer_json`].
#[no_mangle]
pub unsafe extern "C" fn gm_vocab_from_tiktoken(name: *const c_char, err: *mut c_char, err_len: usize) -> *mut GmVocab {
    guard(std::ptr::null_mut(), || {
        // SAFETY: null or NUL-terminated by the contract.
        let v = unsafe { c_str(name, "name") }.and_then(|name| {
            let which = match name {
                "cl100k_base" => Tiktoken::Cl100k,
                "o200k_base" => Tiktoken::O200k,
                "r50k_base" => Tiktoken::R50k,
                other => {
                    return Err(format!("unknown tiktoken vocabulary {other:?} (cl100k_base, o200k_base, r50k_base)"))
                }
            };
            Vocabulary::tiktoken(which).map_err(|e| e.to_string())
        });
        // SAFETY: `err` as the contract says.
        unsafe { vocab_out(v, err, err_len) }
    })
}

/// Builds a vocabulary from token byte strings: token `i` is
/// `tokens[i][0..lens[i]]`; a null `tokens[i]` is a hole (an id with no
/// token). Ids in `stop` (`n_stop` of them) stop generation. Returns null on
/// failure.
///
/// # Safety
/// `tokens` and `lens` are null or point to `n_tokens` entries; each
/// non-null `tokens[i]` points to `lens[i]` readable bytes; `stop` is null
/// or points to `n_stop` ids; `err` as in [`gm_vocab_from_tokenizer_json`].
#[no_mangle]
pub unsafe extern "C" fn gm_vocab_from_token_bytes(
    tokens: *const *const u8,
    lens: *const usize,
    n_tokens: usize,
    stop: *const u32,
    n_stop: usize,
    err: *mut c_char,
    err_len: usize,
) -> *mut GmVocab {
    guard(std::ptr::null_mut(), || {
        if tokens.is_null() || lens.is_null() || (stop.is_null() && n_stop > 0) {
            unsafe { write_err(err, err_len, "tokens, lens or stop is null") };
            return std::ptr::null_mut();
        }
        // SAFETY: non-null, `n_tokens` entries each, by the contract.
        let (ptrs, lens) =
            unsafe { (std::slice::from_raw_parts(tokens, n_tokens), std::slice::from_raw_parts(lens, n_tokens)) };
        let toks: Vec<Option<Vec<u8>>> = ptrs
            .iter()
            .zip(lens)
            .map(|(&p, &n)| {
                // SAFETY: a non-null entry points to `n` readable bytes.
                (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, n) }.to_vec())
            })
            .collect();
        let stop: &[u32] = if n_stop == 0 {
            &[]
        } else {
            // SAFETY: non-null with `n_stop` ids by the contract.
            unsafe { std::slice::from_raw_parts(stop, n_stop) }
        };
        let v = Vocabulary::from_parts("c", toks, &[], stop).map_err(|e| e.to_string());
        // SAFETY: `err` as the contract says.
        unsafe { vocab_out(v, err, err_len) }
    })
}

/// Number of token ids (the mask's width in bits); 0 for a null handle.
///
/// # Safety
/// `vocab` is null or a live handle from a `gm_vocab_*` constructor.
#[no_mangle]
pub unsafe extern "C" fn gm_vocab_size(vocab: *const GmVocab) -> usize {
    // SAFETY: null or live by the contract.
    unsafe { vocab.as_ref() }.map_or(0, |v| v.0.size())
}

/// Number of `uint32_t` words a mask needs; 0 for a null handle.
///
/// # Safety
/// As [`gm_vocab_size`].
#[no_mangle]
pub unsafe extern "C" fn gm_vocab_mask_words(vocab: *const GmVocab) -> usize {
    // SAFETY: null or live by the contract.
    unsafe { vocab.as_ref() }.map_or(0, |v| v.0.mask_words())
}

/// Frees a vocabulary handle (grammars compiled from it keep their own
/// reference). Null is ignored.
///
/// # Safety
/// `vocab` is null or a live handle, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn gm_vocab_free(vocab: *mut GmVocab) {
    if !vocab.is_null() {
        // SAFETY: created by Box::into_raw and freed once, by the contract.
        drop(unsafe { Box::from_raw(vocab) });
    }
}

/// The default compile options: strict, compact, any member order.
#[no_mangle]
pub extern "C" fn gm_compile_options_default() -> GmCompileOptions {
    GmCompileOptions { strict: true, whitespace_max_run: 0, schema_property_order: false, deadline_ms: 0 }
}

/// Compiles a JSON Schema (`schema_len` bytes of UTF-8 JSON text, no NUL
/// needed) for `vocab`. `options` may be null for the defaults. Returns null
/// on failure, with the reason in `err`: the error kind, the JSON pointer of
/// the schema location and the keyword to blame.
///
/// # Safety
/// `vocab` is null or live; `schema` is null or points to `schema_len`
/// readable bytes; `options` is null or points to a `GmCompileOptions`;
/// `err` as in [`gm_vocab_from_tokenizer_json`].
#[no_mangle]
pub unsafe extern "C" fn gm_compile_json_schema(
    vocab: *const GmVocab,
    schema: *const c_char,
    schema_len: usize,
    options: *const GmCompileOptions,
    err: *mut c_char,
    err_len: usize,
) -> *mut GmGrammar {
    unsafe { compile_with(vocab, schema, schema_len, options, err, err_len, |c, text, v| c.compile_str(text, v)) }
}

/// Compiles a regex request: the whole output must match the ECMA-262
/// pattern (`pattern_len` bytes of UTF-8, as if anchored at both ends).
/// Arguments, result and errors as [`gm_compile_json_schema`].
///
/// # Safety
/// As [`gm_compile_json_schema`], with `pattern` for `schema`.
#[no_mangle]
pub unsafe extern "C" fn gm_compile_regex(
    vocab: *const GmVocab,
    pattern: *const c_char,
    pattern_len: usize,
    options: *const GmCompileOptions,
    err: *mut c_char,
    err_len: usize,
) -> *mut GmGrammar {
    unsafe { compile_with(vocab, pattern, pattern_len, options, err, err_len, |c, text, v| c.compile_regex(text, v)) }
}

/// Compiles a GBNF grammar (llama.cpp's format, `grammar_len` bytes of
/// UTF-8): the whole output must be a string of its `root` rule. Arguments,
/// result and errors as [`gm_compile_json_schema`]; the message of a
/// grammar error names its line and column.
///
/// # Safety
/// As [`gm_compile_json_schema`], with `grammar` for `schema`.
#[no_mangle]
pub unsafe extern "C" fn gm_compile_gbnf(
    vocab: *const GmVocab,
    grammar: *const c_char,
    grammar_len: usize,
    options: *const GmCompileOptions,
    err: *mut c_char,
    err_len: usize,
) -> *mut GmGrammar {
    unsafe { compile_with(vocab, grammar, grammar_len, options, err, err_len, |c, text, v| c.compile_gbnf(text, v)) }
}

/// Compiles a Lark grammar (llguidance's dialect, `grammar_len` bytes of
/// UTF-8): the whole output must be a string of its rule `start`, cut into
/// lexemes as a greedy lexer cuts it. Arguments, result and errors as
/// [`gm_compile_json_schema`]; the message of a grammar error names its
/// line and column.
///
/// # Safety
/// As [`gm_compile_json_schema`], with `grammar` for `schema`.
#[no_mangle]
pub unsafe extern "C" fn gm_compile_lark(
    vocab: *const GmVocab,
    grammar: *const c_char,
    grammar_len: usize,
    options: *const GmCompileOptions,
    err: *mut c_char,
    err_len: usize,
) -> *mut GmGrammar {
    unsafe { compile_with(vocab, grammar, grammar_len, options, err, err_len, |c, text, v| c.compile_lark(text, v)) }
}

/// Compiles a structural tag request (tool calls: XGrammar's
/// `structural_tag` JSON, `request_len` bytes of UTF-8): free text in which
/// each trigger must go on as a tag that begins with it, its JSON body valid
/// against the tag's schema. Arguments, result and errors as
/// [`gm_compile_json_schema`]; pointers in messages point into the request.
///
/// # Safety
/// As [`gm_compile_json_schema`], with `request` for `schema`.
#[no_mangle]
pub unsafe extern "C" fn gm_compile_structural_tag(
    vocab: *const GmVocab,
    request: *const c_char,
    request_len: usize,
    options: *const GmCompileOptions,
    err: *mut c_char,
    err_len: usize,
) -> *mut GmGrammar {
    unsafe {
        compile_with(vocab, request, request_len, options, err, err_len, |c, text, v| {
            c.compile_structural_tag_str(text, v)
        })
    }
}

/// The checks and handle-making shared by the compile entry points.
///
/// # Safety
/// As [`gm_compile_json_schema`].
unsafe fn compile_with(
    vocab: *const GmVocab,
    text: *const c_char,
    text_len: usize,
    options: *const GmCompileOptions,
    err: *mut c_char,
    err_len: usize,
    compile: impl FnOnce(&Compiler, &str, Arc<Vocabulary>) -> Result<Arc<CompiledGrammar>, grammask::CompileError>,
) -> *mut GmGrammar {
    guard(std::ptr::null_mut(), || {
        // SAFETY: null or live by the contract.
        let (Some(vocab), false) = (unsafe { vocab.as_ref() }, text.is_null()) else {
            unsafe { write_err(err, err_len, "vocab or text is null") };
            return std::ptr::null_mut();
        };
        // SAFETY: `text_len` readable bytes by the contract.
        let bytes = unsafe { std::slice::from_raw_parts(text as *const u8, text_len) };
        let Ok(text) = std::str::from_utf8(bytes) else {
            unsafe { write_err(err, err_len, "text is not UTF-8") };
            return std::ptr::null_mut();
        };
        // SAFETY: null or a valid options struct by the contract.
        let options = unsafe { options.as_ref() }.copied().unwrap_or_else(|| gm_compile_options_default());
        match compile(&Compiler::with_config(options.config()), text, vocab.0.clone()) {
            Ok(g) => {
                let fingerprint = cstring(g.fingerprint().to_string());
                let relaxed: Vec<String> = g
                    .relaxations()
                    .iter()
                    .map(|r| {
                        format!("{{\"keyword\":{},\"pointer\":{}}}", json_string(&r.keyword), json_string(&r.pointer))
                    })
                    .collect();
                let relaxations = cstring(format!("[{}]", relaxed.join(",")));
                Box::into_raw(Box::new(GmGrammar { grammar: g, fingerprint, relaxations }))
            }
            Err(e) => {
                unsafe { write_err(err, err_len, &e.to_string()) };
                std::ptr::null_mut()
            }
        }
    })
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The grammar's stable fingerprint (32 hex digits): schema, options and
/// vocabulary. Valid while the grammar lives; "" for a null handle.
///
/// # Safety
/// `grammar` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn gm_grammar_fingerprint(grammar: *const GmGrammar) -> *const c_char {
    // SAFETY: null or live by the contract.
    unsafe { grammar.as_ref() }.map_or(c"".as_ptr(), |g| g.fingerprint.as_ptr())
}

/// The keywords dropped in lenient mode, as a JSON array of
/// `{"keyword": …, "pointer": …}` (`[]` in strict mode). Valid while the
/// grammar lives; "" for a null handle.
///
/// # Safety
/// `grammar` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn gm_grammar_relaxations(grammar: *const GmGrammar) -> *const c_char {
    // SAFETY: null or live by the contract.
    unsafe { grammar.as_ref() }.map_or(c"".as_ptr(), |g| g.relaxations.as_ptr())
}

/// Frees a grammar handle (matchers made from it keep their own
/// reference). Null is ignored.
///
/// # Safety
/// `grammar` is null or a live handle, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn gm_grammar_free(grammar: *mut GmGrammar) {
    if !grammar.is_null() {
        // SAFETY: created by Box::into_raw and freed once, by the contract.
        drop(unsafe { Box::from_raw(grammar) });
    }
}

/// A matcher at the start of the document; null for a null grammar.
///
/// # Safety
/// `grammar` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_new(grammar: *const GmGrammar) -> *mut GmMatcher {
    guard(std::ptr::null_mut(), || {
        // SAFETY: null or live by the contract.
        match unsafe { grammar.as_ref() } {
            Some(g) => Box::into_raw(Box::new(GmMatcher { matcher: g.grammar.matcher(), error: CString::default() })),
            None => std::ptr::null_mut(),
        }
    })
}

/// A copy of `matcher` in its current state (for forking a sequence); null
/// for a null handle.
///
/// # Safety
/// `matcher` is null or a live handle.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_clone(matcher: *const GmMatcher) -> *mut GmMatcher {
    guard(std::ptr::null_mut(), || {
        // SAFETY: null or live by the contract.
        match unsafe { matcher.as_ref() } {
            Some(m) => Box::into_raw(Box::new(GmMatcher { matcher: m.matcher.clone(), error: CString::default() })),
            None => std::ptr::null_mut(),
        }
    })
}

/// Frees a matcher. Null is ignored.
///
/// # Safety
/// `matcher` is null or a live handle, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_free(matcher: *mut GmMatcher) {
    if !matcher.is_null() {
        // SAFETY: created by Box::into_raw and freed once, by the contract.
        drop(unsafe { Box::from_raw(matcher) });
    }
}

/// Runs `f` on a live matcher, recording the error message of a failure.
///
/// # Safety
/// `matcher` is null or a live handle not used by another thread meanwhile.
unsafe fn with_matcher(matcher: *mut GmMatcher, f: impl FnOnce(&mut Matcher) -> Result<(), GmError>) -> GmStatus {
    // SAFETY: null or live and unshared by the contract.
    let Some(m) = (unsafe { matcher.as_mut() }) else {
        return GmStatus::NullArgument;
    };
    let out = catch_unwind(AssertUnwindSafe(|| f(&mut m.matcher)))
        .unwrap_or_else(|_| Err(GmError(GmStatus::Internal, "internal error (panic); please report it".into())));
    match out {
        Ok(()) => {
            m.error = CString::default();
            GmStatus::Ok
        }
        Err(GmError(status, msg)) => {
            m.error = cstring(msg);
            status
        }
    }
}

/// A failure: its status and message.
struct GmError(GmStatus, String);

impl From<MatchError> for GmError {
    fn from(e: MatchError) -> GmError {
        let status = match e {
            MatchError::TokenOutOfRange { .. } => GmStatus::TokenOutOfRange,
            MatchError::TokenRejected { .. } | MatchError::BytesRejected { .. } => GmStatus::Rejected,
            MatchError::StopNotAllowed { .. } => GmStatus::StopNotAllowed,
            MatchError::Terminated => GmStatus::Terminated,
            MatchError::RollbackTooFar { .. } => GmStatus::RollbackTooFar,
            MatchError::MaskTooSmall { .. } => GmStatus::BadLength,
            MatchError::TooAmbiguous { .. } => GmStatus::TooAmbiguous,
            _ => GmStatus::Internal,
        };
        GmError(status, e.to_string())
    }
}

fn null_arg(what: &str) -> GmError {
    GmError(GmStatus::NullArgument, format!("{what} is null"))
}

/// Fills `mask` (`mask_words` words, at least `gm_vocab_mask_words`) with
/// the tokens allowed next: bit `i % 32` of word `i / 32` is set when token
/// `i` is allowed.
///
/// # Safety
/// `matcher` is null or live; `mask` is null or points to `mask_words`
/// writable words.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_fill_next_token_bitmask(
    matcher: *mut GmMatcher,
    mask: *mut u32,
    mask_words: usize,
) -> GmStatus {
    unsafe {
        with_matcher(matcher, |m| {
            if mask.is_null() {
                return Err(null_arg("mask"));
            }
            // SAFETY: `mask_words` writable words by the contract.
            let mask = std::slice::from_raw_parts_mut(mask, mask_words);
            Ok(m.fill_next_token_bitmask(mask)?)
        })
    }
}

/// Accepts token `token`. On failure the matcher is unchanged.
///
/// # Safety
/// `matcher` is null or live.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_accept_token(matcher: *mut GmMatcher, token: u32) -> GmStatus {
    unsafe { with_matcher(matcher, |m| Ok(m.accept_token(token)?)) }
}

/// Accepts `len` raw bytes (forced text) as one step. On failure the
/// matcher is unchanged.
///
/// # Safety
/// `matcher` is null or live; `bytes` is null or points to `len` readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_accept_bytes(matcher: *mut GmMatcher, bytes: *const u8, len: usize) -> GmStatus {
    unsafe {
        with_matcher(matcher, |m| {
            if bytes.is_null() {
                return Err(null_arg("bytes"));
            }
            // SAFETY: `len` readable bytes by the contract.
            Ok(m.accept_bytes(std::slice::from_raw_parts(bytes, len))?)
        })
    }
}

/// Undoes the last `n` steps (tokens, stop tokens, `accept_bytes` calls).
///
/// # Safety
/// `matcher` is null or live.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_rollback(matcher: *mut GmMatcher, n: usize) -> GmStatus {
    unsafe { with_matcher(matcher, |m| Ok(m.rollback(n)?)) }
}

/// Back to the start of the document.
///
/// # Safety
/// `matcher` is null or live.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_reset(matcher: *mut GmMatcher) -> GmStatus {
    unsafe {
        with_matcher(matcher, |m| {
            m.reset();
            Ok(())
        })
    }
}

/// Whether a stop token was accepted; false for a null handle.
///
/// # Safety
/// `matcher` is null or live.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_is_terminated(matcher: *const GmMatcher) -> bool {
    // SAFETY: null or live by the contract.
    unsafe { matcher.as_ref() }.is_some_and(|m| m.matcher.is_terminated())
}

/// Whether the output so far is a complete instance (a stop token is
/// allowed); false for a null handle.
///
/// # Safety
/// `matcher` is null or live.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_can_terminate(matcher: *const GmMatcher) -> bool {
    // SAFETY: null or live by the contract.
    unsafe { matcher.as_ref() }.is_some_and(|m| m.matcher.can_terminate())
}

/// Writes the bytes the grammar forces next (up to `cap`) into `out` and
/// their number into `*out_len` (0 when there is a choice).
///
/// # Safety
/// `matcher` is null or live; `out` is null or points to `cap` writable
/// bytes; `out_len` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_forced_bytes(
    matcher: *mut GmMatcher,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> GmStatus {
    unsafe {
        with_matcher(matcher, |m| {
            if out.is_null() || out_len.is_null() {
                return Err(null_arg("out or out_len"));
            }
            let forced = m.forced_bytes(cap);
            // SAFETY: `forced.len() <= cap` writable bytes at `out`, and a
            // writable `out_len`, by the contract.
            std::ptr::copy_nonoverlapping(forced.as_ptr(), out, forced.len());
            *out_len = forced.len();
            Ok(())
        })
    }
}

/// The message of the last failed call on this matcher ("" after a
/// success); valid until the next call on it. "" for a null handle.
///
/// # Safety
/// `matcher` is null or live.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_last_error(matcher: *const GmMatcher) -> *const c_char {
    // SAFETY: null or live by the contract.
    unsafe { matcher.as_ref() }.map_or(c"".as_ptr(), |m| m.error.as_ptr())
}

/// The bytes accepted so far (the document being generated); their number
/// goes to `*len`. Valid until the next call that changes the matcher. Null
/// (and `*len` = 0) for a null handle.
///
/// # Safety
/// `matcher` is null or live; `len` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn gm_matcher_output(matcher: *const GmMatcher, len: *mut usize) -> *const u8 {
    // SAFETY: null or live, and `len` null or writable, by the contract.
    let m = unsafe { matcher.as_ref() };
    let out = m.map_or(&[][..], |m| m.matcher.output());
    if let Some(len) = unsafe { len.as_mut() } {
        *len = out.len();
    }
    if m.is_some() {
        out.as_ptr()
    } else {
        std::ptr::null()
    }
}
