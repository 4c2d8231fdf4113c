//! The Python face of grammask (`import grammask`): the classes a vLLM or
//! SGLang backend drives. `Vocabulary` (one per tokenizer), `Compiler` and
//! `Grammar` (compile once per schema, share across threads), `Matcher`
//! (one per sequence: fill a row of an int32 bitmask, accept, roll back).
//!
//! Every call that can take more than a few microseconds (loading,
//! compiling, filling masks, applying them) releases the GIL. Calls inside
//! the decode loop report failure by their return value and
//! `Matcher.get_error()`; they raise only when the matcher was made with
//! `raise_on_error=True`, or when the caller passes a wrong argument (an
//! array of the wrong dtype or shape), which is a bug to fix, not a state.

use grammask as gm;
use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use std::sync::Arc;

create_exception!(
    _grammask,
    CompileError,
    PyValueError,
    "A schema that cannot be compiled: `kind`, `keyword` and `pointer` say what and where."
);
create_exception!(_grammask, VocabError, PyValueError, "A vocabulary that cannot be loaded.");
create_exception!(
    _grammask,
    MatchError,
    PyValueError,
    "A token or bytes the grammar does not allow here (raised only with `raise_on_error=True`)."
);

/// A tokenizer's vocabulary: token id -> bytes, special and stop tokens.
#[pyclass(module = "grammask", frozen)]
struct Vocabulary(Arc<gm::Vocabulary>);

fn vocab_err(e: gm::VocabError) -> PyErr {
    VocabError::new_err(e.to_string())
}

fn sized(v: gm::Vocabulary, size: Option<usize>) -> Vocabulary {
    Vocabulary(Arc::new(match size {
        Some(n) => v.with_size(n),
        None => v,
    }))
}

#[pymethods]
impl Vocabulary {
    /// Loads a Hugging Face `tokenizer.json`. `size` pads the id space to the
    /// model's logits width (ids past the tokenizer are never allowed).
    #[staticmethod]
    #[pyo3(signature = (path, size=None))]
    fn from_tokenizer_json(py: Python<'_>, path: std::path::PathBuf, size: Option<usize>) -> PyResult<Vocabulary> {
        let v = py.allow_threads(|| gm::Vocabulary::from_tokenizer_json(&path)).map_err(vocab_err)?;
        Ok(sized(v, size))
    }

    /// Loads a vocabulary shipped with grammask: `cl100k_base`, `o200k_base`
    /// or `r50k_base`.
    #[staticmethod]
    #[pyo3(signature = (name, size=None))]
    fn from_tiktoken(py: Python<'_>, name: &str, size: Option<usize>) -> PyResult<Vocabulary> {
        let which = match name {
            "cl100k_base" => gm::Tiktoken::Cl100k,
            "o200k_base" => gm::Tiktoken::O200k,
            "r50k_base" | "gpt2" => gm::Tiktoken::R50k,
            _ => {
                return Err(VocabError::new_err(format!(
                    "unknown tiktoken vocabulary {name:?} (cl100k_base, o200k_base, r50k_base)"
                )))
            }
        };
        let v = py.allow_threads(|| gm::Vocabulary::tiktoken(which)).map_err(vocab_err)?;
        Ok(sized(v, size))
    }

    /// Builds a vocabulary from each token's bytes (`None` for an id with no
    /// token); ids in `stop_ids` stop generation.
    #[staticmethod]
    #[pyo3(signature = (tokens, stop_ids, size=None))]
    fn from_token_bytes(
        py: Python<'_>,
        tokens: Vec<Option<Vec<u8>>>,
        stop_ids: Vec<u32>,
        size: Option<usize>,
    ) -> PyResult<Vocabulary> {
        let v =
            py.allow_threads(|| gm::Vocabulary::from_parts("explicit", tokens, &[], &stop_ids)).map_err(vocab_err)?;
        Ok(sized(v, size))
    }

    /// From a `tokenizers.Tokenizer` object (the `tokenizers` package), or
    /// anything with a `to_str()` that returns tokenizer.json text. `eos`
    /// names stop tokens beyond the usual ones (`</s>`, `<|eot_id|>`, ...).
    #[staticmethod]
    #[pyo3(signature = (tokenizer, eos=None, size=None))]
    fn from_tokenizer(
        py: Python<'_>,
        tokenizer: &Bound<'_, PyAny>,
        eos: Option<Vec<String>>,
        size: Option<usize>,
    ) -> PyResult<Vocabulary> {
        let json: String = tokenizer
            .call_method0("to_str")
            .map_err(|_| PyTypeError::new_err("expected a tokenizers.Tokenizer (an object with to_str())"))?
            .extract()?;
        let eos = eos.unwrap_or_default();
        let v = py
            .allow_threads(|| {
                let eos: Vec<&str> = eos.iter().map(String::as_str).collect();
                gm::Vocabulary::from_tokenizer_json_bytes(json.as_bytes(), &eos)
            })
            .map_err(vocab_err)?;
        Ok(sized(v, size))
    }

    /// Number of token ids (the mask's width in bits).
    #[getter]
    fn size(&self) -> usize {
        self.0.size()
    }
    /// Number of 32-bit words per bitmask row: `ceil(size / 32)`.
    #[getter]
    fn mask_words(&self) -> usize {
        self.0.mask_words()
    }
    /// The ids that stop generation.
    #[getter]
    fn stop_token_ids(&self) -> Vec<u32> {
        self.0.stop_tokens().to_vec()
    }
    /// A short name (file or built-in name).
    #[getter]
    fn name(&self) -> &str {
        self.0.name()
    }
    /// Stable digest (32 hex digits) of every token and the stop tokens.
    #[getter]
    fn digest(&self) -> &str {
        self.0.digest()
    }
    /// The bytes of token `id` (empty for specials' and holes' ids past the end).
    fn token_bytes<'py>(&self, py: Python<'py>, id: u32) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.0.token_bytes(id))
    }
    fn __len__(&self) -> usize {
        self.0.size()
    }
    fn __repr__(&self) -> String {
        format!("Vocabulary(name={:?}, size={})", self.0.name(), self.0.size())
    }
}

/// Compiles JSON Schemas against one vocabulary.
#[pyclass(module = "grammask", frozen)]
struct Compiler {
    vocab: Arc<gm::Vocabulary>,
    compiler: gm::Compiler,
}

fn parse_whitespace(ws: &Bound<'_, PyAny>) -> PyResult<gm::Whitespace> {
    if let Ok(n) = ws.extract::<u8>() {
        return Ok(if n == 0 { gm::Whitespace::Compact } else { gm::Whitespace::Flexible { max_run: n } });
    }
    match ws.extract::<String>().as_deref() {
        Ok("compact") => Ok(gm::Whitespace::Compact),
        Ok("flexible") => Ok(gm::Whitespace::Flexible { max_run: 2 }),
        _ => Err(PyValueError::new_err(
            "whitespace must be \"compact\", \"flexible\" (runs of at most 2) or the longest run as an int 0..=255",
        )),
    }
}

#[pymethods]
impl Compiler {
    /// `strict` (default True): an unsupported keyword is a `CompileError`;
    /// with False it is dropped and listed in `Grammar.relaxations`.
    /// `whitespace`: "compact" (default), "flexible", or the longest run of
    /// whitespace allowed between JSON tokens. `property_order`: "any"
    /// (default) or "schema". `deadline_ms`: a compile still running after
    /// that many milliseconds raises `CompileError` (kind "LimitExceeded").
    #[new]
    #[pyo3(signature = (vocab, strict=true, whitespace=None, property_order="any", deadline_ms=None))]
    fn new(
        vocab: &Vocabulary,
        strict: bool,
        whitespace: Option<&Bound<'_, PyAny>>,
        property_order: &str,
        deadline_ms: Option<u64>,
    ) -> PyResult<Compiler> {
        let ws = whitespace.map(parse_whitespace).transpose()?.unwrap_or(gm::Whitespace::Compact);
        let order = match property_order {
            "any" => gm::PropertyOrder::Any,
            "schema" => gm::PropertyOrder::Schema,
            _ => return Err(PyValueError::new_err("property_order must be \"any\" or \"schema\"")),
        };
        let mut config = gm::Config::new().strict(strict).whitespace(ws).property_order(order);
        if let Some(ms) = deadline_ms {
            config = config.deadline(std::time::Duration::from_millis(ms));
        }
        Ok(Compiler { vocab: vocab.0.clone(), compiler: gm::Compiler::with_config(config) })
    }

    /// Compiles a JSON Schema given as text, a dict, or a bool. Raises
    /// `CompileError` (with `kind`, `keyword`, `pointer`) when it cannot be
    /// enforced.
    fn compile_json_schema(&self, py: Python<'_>, schema: &Bound<'_, PyAny>) -> PyResult<Grammar> {
        let text = json_text(py, schema)?;
        let vocab = self.vocab.clone();
        let compiled = py.allow_threads(|| self.compiler.compile_str(&text, vocab));
        compiled.map(Grammar).map_err(|e| compile_error(py, e))
    }

    /// Compiles a regex request: the whole output must match the ECMA-262
    /// `pattern` (as if anchored at both ends). Raises `CompileError`
    /// (keyword "regex") for a pattern that cannot be enforced.
    fn compile_regex(&self, py: Python<'_>, pattern: &str) -> PyResult<Grammar> {
        let vocab = self.vocab.clone();
        match py.allow_threads(|| self.compiler.compile_regex(pattern, vocab)) {
            Ok(g) => Ok(Grammar(g)),
            Err(e) => Err(compile_error(py, e)),
        }
    }

    /// Compiles a structural tag request (tool calls; XGrammar's
    /// `structural_tag` format, as text or a dict): free text in which each
    /// trigger must go on as a tag that begins with it, with a JSON body
    /// valid against the tag's schema. Raises `CompileError` with pointers
    /// into the request.
    fn compile_structural_tag(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Grammar> {
        let text = json_text(py, request)?;
        let vocab = self.vocab.clone();
        let compiled = py.allow_threads(|| self.compiler.compile_structural_tag_str(&text, vocab));
        compiled.map(Grammar).map_err(|e| compile_error(py, e))
    }

    /// Compiles a GBNF grammar (llama.cpp's format): the whole output must
    /// be a string of its `root` rule. Raises `CompileError` (keyword
    /// "gbnf", with `line` and `column`) for a grammar that does not parse
    /// or cannot be enforced.
    fn compile_gbnf(&self, py: Python<'_>, grammar: &str) -> PyResult<Grammar> {
        let vocab = self.vocab.clone();
        match py.allow_threads(|| self.compiler.compile_gbnf(grammar, vocab)) {
            Ok(g) => Ok(Grammar(g)),
            Err(e) => Err(compile_error(py, e)),
        }
    }

    /// Compiles a Lark grammar (the dialect llguidance documents): the
    /// whole output must be a string of rule `start`, cut into lexemes as a
    /// greedy lexer cuts it. Raises `CompileError` (keyword "lark", with
    /// `line` and `column`) for a grammar that does not parse or cannot be
    /// enforced.
    fn compile_lark(&self, py: Python<'_>, grammar: &str) -> PyResult<Grammar> {
        let vocab = self.vocab.clone();
        match py.allow_threads(|| self.compiler.compile_lark(grammar, vocab)) {
            Ok(g) => Ok(Grammar(g)),
            Err(e) => Err(compile_error(py, e)),
        }
    }

    /// The vocabulary grammars are compiled for.
    #[getter]
    fn vocab(&self) -> Vocabulary {
        Vocabulary(self.vocab.clone())
    }
}

/// A JSON document given as text or as a Python value (dict, list, bool),
/// as text.
fn json_text(py: Python<'_>, doc: &Bound<'_, PyAny>) -> PyResult<String> {
    match doc.downcast::<PyString>() {
        Ok(s) => Ok(s.to_str()?.to_owned()),
        Err(_) => py.import("json")?.call_method1("dumps", (doc,))?.extract(),
    }
}

/// A `CompileError` carrying the error's kind, keyword and pointer.
fn compile_error(py: Python<'_>, e: gm::CompileError) -> PyErr {
    let err = CompileError::new_err(e.to_string());
    let value = err.value(py);
    let _ = value.setattr("kind", format!("{:?}", e.kind()));
    let _ = value.setattr("keyword", e.keyword());
    let _ = value.setattr("pointer", e.pointer());
    let (line, column) = e.position().map_or((None, None), |(l, c)| (Some(l), Some(c)));
    let _ = value.setattr("line", line);
    let _ = value.setattr("column", column);
    err
}

/// A compiled schema: immutable, thread-safe, shared by many matchers.
#[pyclass(module = "grammask", frozen)]
struct Grammar(Arc<gm::CompiledGrammar>);

#[pymethods]
impl Grammar {
    /// Stable identifier (32 hex digits) of the schema in force, the
    /// options and the vocabulary: log it to prove what constrained a request.
    #[getter]
    fn fingerprint(&self) -> &str {
        self.0.fingerprint()
    }
    /// Keywords dropped in lenient mode: a list of `{"keyword", "pointer"}`.
    #[getter]
    fn relaxations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        keyword_list(py, self.0.relaxations())
    }
    /// Formats JSON Schema does not define (`int32`, `byte`, …), left free
    /// as every validator does: a list of `{"keyword": "format:<name>",
    /// "pointer"}`.
    #[getter]
    fn annotations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        keyword_list(py, self.0.annotations())
    }
    /// Number of automaton states.
    #[getter]
    fn num_states(&self) -> usize {
        self.0.num_states()
    }
    /// Heap bytes used, including masks cached so far.
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.0.memory_bytes()
    }
    /// The vocabulary this grammar was compiled for.
    #[getter]
    fn vocab(&self) -> Vocabulary {
        Vocabulary(self.0.vocab().clone())
    }
    /// A new matcher at the start of the document.
    #[pyo3(signature = (raise_on_error=false))]
    fn matcher(&self, raise_on_error: bool) -> Matcher {
        Matcher { inner: self.0.matcher(), error: None, raise_on_error }
    }
    fn __repr__(&self) -> String {
        format!("Grammar(fingerprint={:?}, states={})", self.0.fingerprint(), self.0.num_states())
    }
}

/// `[{"keyword": …, "pointer": …}, …]`.
fn keyword_list<'py>(py: Python<'py>, items: &[gm::Relaxation]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for r in items {
        let d = PyDict::new(py);
        d.set_item("keyword", &r.keyword)?;
        d.set_item("pointer", &r.pointer)?;
        list.append(d)?;
    }
    Ok(list)
}

/// Follows one generation: fills bitmask rows, accepts tokens, rolls back.
#[pyclass(module = "grammask")]
struct Matcher {
    inner: gm::Matcher,
    error: Option<String>,
    raise_on_error: bool,
}

/// A writable, C-contiguous int32 bitmask of shape `[words]` or
/// `[rows, words]`, held for the duration of one call.
struct Bitmask {
    buf: PyBuffer<i32>,
    rows: usize,
    width: usize,
}

impl Bitmask {
    fn get(obj: &Bound<'_, PyAny>) -> PyResult<Bitmask> {
        let buf = match PyBuffer::<i32>::get(obj) {
            Ok(b) => b,
            Err(first) => {
                // A torch CPU tensor has no buffer protocol: take its numpy
                // view (shared memory). Anything else with DLPack goes
                // through numpy.from_dlpack.
                let view = if obj.hasattr("numpy")? && obj.hasattr("is_cuda")? {
                    obj.call_method0("numpy")
                        .map_err(|e| PyValueError::new_err(format!("bitmask tensor must be a CPU int32 tensor: {e}")))?
                } else if obj.hasattr("__dlpack__")? {
                    obj.py().import("numpy")?.call_method1("from_dlpack", (obj,))?
                } else {
                    return Err(PyValueError::new_err(format!(
                        "bitmask must be an int32 array (numpy, torch CPU tensor, buffer protocol or DLPack): {first}"
                    )));
                };
                PyBuffer::<i32>::get(&view)
                    .map_err(|e| PyValueError::new_err(format!("bitmask must have dtype int32: {e}")))?
            }
        };
        if buf.readonly() {
            return Err(PyValueError::new_err("bitmask is read-only"));
        }
        if !buf.is_c_contiguous() {
            return Err(PyValueError::new_err("bitmask must be C-contiguous"));
        }
        let (rows, width) = match buf.shape() {
            [w] => (1, *w),
            [r, w] => (*r, *w),
            s => return Err(PyValueError::new_err(format!("bitmask must have 1 or 2 dimensions, not {}", s.len()))),
        };
        Ok(Bitmask { buf, rows, width })
    }

    fn check_width(&self, words: usize) -> PyResult<()> {
        if self.width < words {
            return Err(PyValueError::new_err(format!(
                "bitmask rows have {} int32 words; this vocabulary needs at least {words}",
                self.width
            )));
        }
        Ok(())
    }

    /// All rows, as one mutable slice of `rows * width` words.
    fn words_mut(&mut self) -> &mut [u32] {
        // SAFETY: the buffer is a writable (checked), C-contiguous (checked)
        // array of `rows * width` 4-byte items (`PyBuffer<i32>` checked the
        // item format and size), and stays exported, so neither freed nor
        // resized, while `self.buf` lives. i32 and u32 have the same size
        // and alignment and every bit pattern is valid for both. The
        // returned borrow of `self` keeps a second slice from being made
        // here; another Python thread writing the same array during the
        // call is a data race the caller must avoid, as with any
        // GIL-releasing numpy operation.
        unsafe { std::slice::from_raw_parts_mut(self.buf.buf_ptr() as *mut u32, self.rows * self.width) }
    }
}

/// Writes the stop tokens only (the mask after an error: end the sequence).
fn stop_only(row: &mut [u32], stop: &[u32]) {
    row.fill(0);
    for &t in stop {
        if let Some(w) = row.get_mut(t as usize / 32) {
            *w |= 1 << (t % 32);
        }
    }
}

impl Matcher {
    /// Fills row `index` of `bitmask` (see `fill_next_token_bitmask`);
    /// with `timed`, also the nanoseconds spent in the Rust fill.
    fn fill_row(
        &mut self,
        py: Python<'_>,
        bitmask: &Bound<'_, PyAny>,
        index: usize,
        timed: bool,
    ) -> PyResult<(bool, u64)> {
        let mut bm = Bitmask::get(bitmask)?;
        let words = self.inner.grammar().vocab().mask_words();
        bm.check_width(words)?;
        if index >= bm.rows {
            return Err(PyIndexError::new_err(format!("row {index} is out of range for {} rows", bm.rows)));
        }
        let width = bm.width;
        let row = &mut bm.words_mut()[index * width..(index + 1) * width];
        let inner = &mut self.inner;
        let (r, ns) = py.allow_threads(move || {
            let (head, tail) = row.split_at_mut(words);
            tail.fill(0);
            let t = timed.then(std::time::Instant::now);
            let r = inner.fill_next_token_bitmask(head);
            let ns = t.map_or(0, |t| t.elapsed().as_nanos() as u64);
            if r.is_err() {
                stop_only(head, inner.grammar().vocab().stop_tokens());
            }
            (r, ns)
        });
        Ok((self.done(r)?, ns))
    }

    fn fail(&mut self, e: gm::MatchError) -> PyResult<bool> {
        let msg = e.to_string();
        self.error = Some(msg.clone());
        if self.raise_on_error {
            Err(MatchError::new_err(msg))
        } else {
            Ok(false)
        }
    }
    fn done(&mut self, r: Result<(), gm::MatchError>) -> PyResult<bool> {
        match r {
            Ok(()) => {
                self.error = None;
                Ok(true)
            }
            Err(e) => self.fail(e),
        }
    }
}

#[pymethods]
impl Matcher {
    /// A matcher at the start of `grammar`'s document. With
    /// `raise_on_error=True`, a rejected token raises `MatchError` instead
    /// of returning False.
    #[new]
    #[pyo3(signature = (grammar, raise_on_error=false))]
    fn new(grammar: &Grammar, raise_on_error: bool) -> Matcher {
        grammar.matcher(raise_on_error)
    }

    /// Fills row `index` of `bitmask` (int32, shape `[words]` or
    /// `[batch, words]`, words >= `vocab.mask_words`) with the tokens allowed
    /// next: bit `i % 32` of word `i // 32` is set when token `i` is. Words
    /// past the vocabulary are zeroed. After an error only stop tokens are
    /// allowed and `get_error()` says why.
    #[pyo3(signature = (bitmask, index=0))]
    fn fill_next_token_bitmask(&mut self, py: Python<'_>, bitmask: &Bound<'_, PyAny>, index: usize) -> PyResult<bool> {
        self.fill_row(py, bitmask, index, false).map(|(ok, _)| ok)
    }

    /// For benchmarks: `fill_next_token_bitmask`, returning the nanoseconds
    /// spent inside the Rust call (so that a caller timing this call from
    /// Python sees the binding's own overhead as the difference).
    #[pyo3(signature = (bitmask, index=0))]
    fn _fill_next_token_bitmask_timed(
        &mut self,
        py: Python<'_>,
        bitmask: &Bound<'_, PyAny>,
        index: usize,
    ) -> PyResult<u64> {
        let (_, ns) = self.fill_row(py, bitmask, index, true)?;
        Ok(ns)
    }

    /// Accepts token `token`: True if the grammar allows it. A rejected
    /// token leaves the matcher unchanged (and sets `get_error()`).
    fn accept_token(&mut self, token: i64) -> PyResult<bool> {
        let Ok(t) = u32::try_from(token) else {
            let size = self.inner.grammar().vocab().size();
            return self.fail(gm::MatchError::TokenOutOfRange { token: u32::MAX, vocab_size: size });
        };
        let r = self.inner.accept_token(t);
        self.done(r)
    }

    /// Accepts tokens in order until one is rejected; returns how many were
    /// accepted.
    fn accept_tokens(&mut self, tokens: Vec<u32>) -> PyResult<usize> {
        for (i, &t) in tokens.iter().enumerate() {
            if let Err(e) = self.inner.accept_token(t) {
                self.fail(e)?;
                return Ok(i);
            }
        }
        self.error = None;
        Ok(tokens.len())
    }

    /// How many leading tokens of `tokens` the grammar would accept, without
    /// changing the matcher (for checking a speculative draft).
    fn validate_tokens(&mut self, tokens: Vec<u32>) -> usize {
        let mut n = 0;
        for &t in &tokens {
            if self.inner.accept_token(t).is_err() {
                break;
            }
            n += 1;
        }
        self.inner.rollback(n).expect("rolls back what it accepted");
        n
    }

    /// Accepts raw bytes (forced text) as one step: True if allowed.
    fn accept_bytes(&mut self, data: &[u8]) -> PyResult<bool> {
        let r = self.inner.accept_bytes(data);
        self.done(r)
    }

    /// Undoes the last `n` steps (tokens, stop tokens, `accept_bytes` calls).
    fn rollback(&mut self, n: usize) -> PyResult<bool> {
        let r = self.inner.rollback(n);
        self.done(r)
    }

    /// Back to the start of the document; clears the error.
    fn reset(&mut self) {
        self.inner.reset();
        self.error = None;
    }

    /// Whether a stop token was accepted.
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }

    /// Whether the output so far is complete (a stop token is allowed).
    fn can_terminate(&self) -> bool {
        self.inner.can_terminate()
    }

    /// Whether the sequence should stop: a stop token was accepted, or the
    /// last call failed (then only stop tokens are allowed).
    fn is_stopped(&self) -> bool {
        self.inner.is_terminated() || self.error.is_some()
    }

    /// Whether the last call failed.
    fn is_error(&self) -> bool {
        self.error.is_some()
    }

    /// Why the last call failed, or None.
    fn get_error(&self) -> Option<String> {
        self.error.clone()
    }

    /// The bytes the grammar forces next (jump-forward), up to `max_len`.
    #[pyo3(signature = (max_len=4096))]
    fn forced_bytes<'py>(&mut self, py: Python<'py>, max_len: usize) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.forced_bytes(max_len))
    }

    /// The forced bytes as whole tokens (longest first), for jump-forward.
    #[pyo3(signature = (max_len=4096))]
    fn forced_tokens(&mut self, max_len: usize) -> Vec<u32> {
        self.inner.forced_tokens(max_len)
    }

    /// Bytes accepted so far.
    #[getter]
    fn output<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.output())
    }

    /// Number of steps `rollback` can undo.
    #[getter]
    fn num_steps(&self) -> usize {
        self.inner.num_steps()
    }

    /// The grammar this matcher follows.
    #[getter]
    fn grammar(&self) -> Grammar {
        Grammar(self.inner.grammar().clone())
    }

    /// An independent copy in the same state (fork a sequence).
    fn copy(&self) -> Matcher {
        Matcher { inner: self.inner.clone(), error: self.error.clone(), raise_on_error: self.raise_on_error }
    }
    fn __copy__(&self) -> Matcher {
        self.copy()
    }
    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> Matcher {
        self.copy()
    }
    fn __repr__(&self) -> String {
        format!(
            "Matcher(output={:?}, terminated={})",
            String::from_utf8_lossy(self.inner.output()),
            self.inner.is_terminated()
        )
    }
}

/// Fills row `indices[i]` (default: row `i`) of `bitmask` from
/// `matchers[i]`, all rows in parallel with the GIL released. Returns one
/// bool per matcher (False: an error, see its `get_error()`).
#[pyfunction]
#[pyo3(signature = (matchers, bitmask, indices=None))]
fn fill_next_token_bitmask_batch(
    py: Python<'_>,
    matchers: Vec<Bound<'_, Matcher>>,
    bitmask: &Bound<'_, PyAny>,
    indices: Option<Vec<usize>>,
) -> PyResult<Vec<bool>> {
    let mut bm = Bitmask::get(bitmask)?;
    let indices = indices.unwrap_or_else(|| (0..matchers.len()).collect());
    if indices.len() != matchers.len() {
        return Err(PyValueError::new_err("indices and matchers differ in length"));
    }
    let mut guards = borrow_all(&matchers)?;
    let words: Vec<usize> = guards.iter().map(|g| g.inner.grammar().vocab().mask_words()).collect();
    if let Some(&w) = words.iter().max() {
        bm.check_width(w)?;
    }
    let (rows, width) = (bm.rows, bm.width);
    let mut slots: Vec<Option<&mut [u32]>> = bm.words_mut().chunks_mut(width.max(1)).map(Some).collect();
    slots.truncate(rows);
    let mut jobs: Vec<(&mut gm::Matcher, &mut [u32])> = Vec::with_capacity(guards.len());
    for ((g, &i), &w) in guards.iter_mut().zip(&indices).zip(&words) {
        let row = slots
            .get_mut(i)
            .ok_or_else(|| PyIndexError::new_err(format!("row {i} is out of range for {rows} rows")))?
            .take()
            .ok_or_else(|| PyValueError::new_err(format!("row {i} appears twice in indices")))?;
        let (head, tail) = row.split_at_mut(w);
        tail.fill(0);
        jobs.push((&mut g.inner, head));
    }
    let results = py.allow_threads(|| {
        let results = gm::fill_mask_rows(&mut jobs);
        for ((m, row), r) in jobs.iter_mut().zip(&results) {
            if r.is_err() {
                stop_only(row, m.grammar().vocab().stop_tokens());
            }
        }
        results
    });
    Ok(guards
        .iter_mut()
        .zip(results)
        .map(|(g, r)| match r {
            Ok(()) => {
                g.error = None;
                true
            }
            Err(e) => {
                g.error = Some(e.to_string());
                false
            }
        })
        .collect())
}

/// For benchmarks: fills rows 0.. of `bitmask` from `matchers` with
/// [`gm::fill_masks_batch`] and returns the nanoseconds spent inside it.
#[pyfunction]
fn _fill_batch_timed(py: Python<'_>, matchers: Vec<Bound<'_, Matcher>>, bitmask: &Bound<'_, PyAny>) -> PyResult<u64> {
    let mut bm = Bitmask::get(bitmask)?;
    let mut guards = borrow_all(&matchers)?;
    let Some(words) = guards.first().map(|g| g.inner.grammar().vocab().mask_words()) else { return Ok(0) };
    if bm.width != words || bm.rows < guards.len() {
        return Err(PyValueError::new_err("bitmask must be [len(matchers), mask_words]"));
    }
    let mut ms: Vec<&mut gm::Matcher> = guards.iter_mut().map(|g| &mut g.inner).collect();
    let n = ms.len();
    let rows = &mut bm.words_mut()[..n * words];
    Ok(py.allow_threads(move || {
        let t = std::time::Instant::now();
        let _ = gm::fill_masks_batch(&mut ms, rows, words);
        t.elapsed().as_nanos() as u64
    }))
}

/// Every matcher borrowed for writing; one listed twice is an error.
fn borrow_all<'a, 'py>(matchers: &'a [Bound<'py, Matcher>]) -> PyResult<Vec<PyRefMut<'py, Matcher>>> {
    matchers
        .iter()
        .map(|m| m.try_borrow_mut().map_err(|_| PyValueError::new_err("a matcher appears twice or is in use")))
        .collect()
}

/// The rows of a logits array and the bitmask row each takes.
fn row_plan(
    logit_shape: &[usize],
    mask_rows: usize,
    indices: Option<Vec<usize>>,
) -> PyResult<(usize, usize, Vec<(usize, usize)>)> {
    let (rows, vocab) = match logit_shape {
        [v] => (1, *v),
        [r, v] => (*r, *v),
        s => return Err(PyValueError::new_err(format!("logits must have 1 or 2 dimensions, not {}", s.len()))),
    };
    let plan: Vec<(usize, usize)> = match indices {
        None => {
            if mask_rows < rows {
                return Err(PyValueError::new_err(format!("bitmask has {mask_rows} rows, logits {rows}")));
            }
            (0..rows).map(|r| (r, r)).collect()
        }
        Some(ix) => ix.into_iter().map(|r| (r, r)).collect(),
    };
    for &(l, m) in &plan {
        if l >= rows || m >= mask_rows {
            return Err(PyIndexError::new_err(format!("row {l} is out of range")));
        }
    }
    Ok((rows, vocab, plan))
}

/// Sets every logit whose token the bitmask row disallows to `neg_inf`.
fn apply_rows<T: Copy + Send + Sync>(
    logits: &mut [T],
    vocab: usize,
    mask: &[u32],
    width: usize,
    plan: &[(usize, usize)],
    neg_inf: T,
) {
    for &(l, m) in plan {
        let row = &mut logits[l * vocab..(l + 1) * vocab];
        let bits = &mask[m * width..(m + 1) * width];
        for (w, chunk) in row.chunks_mut(32).enumerate() {
            let word = bits.get(w).copied().unwrap_or(0);
            if word == u32::MAX {
                continue;
            }
            for (j, x) in chunk.iter_mut().enumerate() {
                if word >> j & 1 == 0 {
                    *x = neg_inf;
                }
            }
        }
    }
}

/// Sets every logit the bitmask disallows to `neg_inf`, in place, in a
/// writable C-contiguous buffer of `T` (the GIL released meanwhile).
fn apply_inplace<T: pyo3::buffer::Element + Copy + Send + Sync>(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    bitmask: &Bound<'_, PyAny>,
    indices: Option<Vec<usize>>,
    neg_inf: T,
) -> PyResult<()> {
    let lb = PyBuffer::<T>::get(logits)?;
    if lb.readonly() || !lb.is_c_contiguous() {
        return Err(PyValueError::new_err("logits must be writable and C-contiguous"));
    }
    let mut bm = Bitmask::get(bitmask)?;
    let (rows, vocab, plan) = row_plan(lb.shape(), bm.rows, indices)?;
    let width = bm.width;
    let mask = &*bm.words_mut();
    // SAFETY: as in `Bitmask::words_mut`: a writable (checked), C-contiguous
    // (checked) buffer of `rows * vocab` items of `T` (`PyBuffer<T>` checked
    // the item format and size), exported while `lb` lives.
    let out = unsafe { std::slice::from_raw_parts_mut(lb.buf_ptr() as *mut T, rows * vocab) };
    py.allow_threads(|| apply_rows(out, vocab, mask, width, &plan, neg_inf));
    Ok(())
}

/// Masks float32 logits in place (see `grammask.apply_token_bitmask_inplace`).
#[pyfunction]
#[pyo3(signature = (logits, bitmask, indices=None))]
fn _apply_bitmask_f32(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    bitmask: &Bound<'_, PyAny>,
    indices: Option<Vec<usize>>,
) -> PyResult<()> {
    apply_inplace(py, logits, bitmask, indices, f32::NEG_INFINITY)
}

/// Masks 16-bit logits (float16 or bfloat16, seen as uint16) in place,
/// writing `neg_inf_bits` (0xFC00 for float16, 0xFF80 for bfloat16).
#[pyfunction]
#[pyo3(signature = (logits, bitmask, neg_inf_bits, indices=None))]
fn _apply_bitmask_u16(
    py: Python<'_>,
    logits: &Bound<'_, PyAny>,
    bitmask: &Bound<'_, PyAny>,
    neg_inf_bits: u16,
    indices: Option<Vec<usize>>,
) -> PyResult<()> {
    apply_inplace(py, logits, bitmask, indices, neg_inf_bits)
}

/// Python bindings of grammask.
#[pymodule]
fn _grammask(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Vocabulary>()?;
    m.add_class::<Compiler>()?;
    m.add_class::<Grammar>()?;
    m.add_class::<Matcher>()?;
    m.add("CompileError", m.py().get_type::<CompileError>())?;
    m.add("VocabError", m.py().get_type::<VocabError>())?;
    m.add("MatchError", m.py().get_type::<MatchError>())?;
    m.add_function(wrap_pyfunction!(fill_next_token_bitmask_batch, m)?)?;
    m.add_function(wrap_pyfunction!(_apply_bitmask_f32, m)?)?;
    m.add_function(wrap_pyfunction!(_fill_batch_timed, m)?)?;
    m.add_function(wrap_pyfunction!(_apply_bitmask_u16, m)?)?;
    Ok(())
}
