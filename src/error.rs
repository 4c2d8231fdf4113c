//! Error types, one per phase: [`VocabError`] when loading a vocabulary,
//! [`CompileError`] when compiling a schema, [`MatchError`] when stepping a
//! matcher. Every variant carries what a user needs to fix the input: the
//! keyword and JSON pointer for schemas, the token id for matching.

use std::fmt;

/// Loading a vocabulary failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VocabError {
    /// The file could not be read.
    #[error("cannot read vocabulary file {path}: {source}")]
    Io {
        /// Path that was read.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file was read but does not parse as the expected format.
    #[error("vocabulary does not parse: {0}")]
    Parse(String),
    /// The vocabulary is empty or otherwise unusable.
    #[error("vocabulary is invalid: {0}")]
    Invalid(String),
}

/// What kind of problem a [`CompileError`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompileErrorKind {
    /// The schema text is not JSON.
    MalformedJson,
    /// The schema is JSON but not a valid schema (e.g. `"type": 5`).
    InvalidSchema,
    /// A keyword the compiler cannot enforce (strict mode).
    Unsupported,
    /// A `$ref` that does not resolve inside the document.
    UnknownRef,
    /// No JSON value satisfies the schema.
    Unsatisfiable,
    /// A configured resource limit was exceeded (including
    /// [`Config::deadline`](crate::Config::deadline)).
    LimitExceeded,
    /// The compile was cancelled through its [`Cancel`](crate::Cancel) handle.
    Cancelled,
}

/// Compiling a schema failed. Carries the keyword (when one is to blame) and
/// the JSON pointer of the schema location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    kind: CompileErrorKind,
    keyword: Option<String>,
    pointer: String,
    message: String,
    /// Line and column (1-based) in grammar text, for text front-ends.
    position: Option<(usize, usize)>,
}

impl CompileError {
    pub(crate) fn new(kind: CompileErrorKind, pointer: &str, message: impl Into<String>) -> Self {
        CompileError { kind, keyword: None, pointer: pointer.to_string(), message: message.into(), position: None }
    }
    /// The same error for a schema found at `prefix` inside a larger
    /// document (a structural tag request).
    pub(crate) fn prefixed(mut self, prefix: &str) -> Self {
        self.pointer = format!("{prefix}{}", self.pointer);
        self
    }
    pub(crate) fn with_position(mut self, line: usize, column: usize) -> Self {
        self.position = Some((line, column));
        self
    }
    pub(crate) fn with_keyword(mut self, kw: &str) -> Self {
        self.keyword = Some(kw.to_string());
        self
    }
    pub(crate) fn unsupported(pointer: &str, keyword: &str, why: impl Into<String>) -> Self {
        CompileError::new(CompileErrorKind::Unsupported, pointer, why).with_keyword(keyword)
    }
    /// The kind of failure.
    pub fn kind(&self) -> &CompileErrorKind {
        &self.kind
    }
    /// The keyword to blame, if any (e.g. `"pattern"`).
    pub fn keyword(&self) -> Option<&str> {
        self.keyword.as_deref()
    }
    /// JSON pointer of the schema location (e.g. `"/properties/a"`; `""` is the root).
    pub fn pointer(&self) -> &str {
        &self.pointer
    }
    /// What went wrong, without the kind, keyword and pointer.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Line and column (1-based, columns in characters) of the error in a
    /// grammar's text (GBNF); `None` for schemas, which have
    /// [`pointer`](Self::pointer).
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, col)) = self.position {
            let k = self.keyword.as_deref().unwrap_or("grammar");
            return write!(f, "{:?} error in {} at line {}, column {}: {}", self.kind, k, line, col, self.message);
        }
        let at = if self.pointer.is_empty() { "#" } else { &self.pointer };
        match &self.keyword {
            Some(k) => write!(f, "{:?} error at {} (keyword `{}`): {}", self.kind, at, k, self.message),
            None => write!(f, "{:?} error at {}: {}", self.kind, at, self.message),
        }
    }
}

impl std::error::Error for CompileError {}

/// Stepping a matcher failed. The matcher is left unchanged by a failed call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatchError {
    /// The token id is not in the vocabulary.
    #[error("token id {token} is out of range (vocabulary size {vocab_size})")]
    TokenOutOfRange {
        /// Offending id.
        token: u32,
        /// Size of the vocabulary.
        vocab_size: usize,
    },
    /// The grammar does not allow this token here.
    #[error("token {token} ({text:?}) is not allowed here")]
    TokenRejected {
        /// Offending id.
        token: u32,
        /// Its bytes, lossily decoded.
        text: String,
    },
    /// The grammar does not allow these bytes here.
    #[error("bytes {text:?} are not allowed here (failed at byte {offset})")]
    BytesRejected {
        /// The bytes, lossily decoded.
        text: String,
        /// Offset of the first byte that was rejected.
        offset: usize,
    },
    /// A stop token was given but the output is not a complete instance yet.
    #[error("stop token {token} is not allowed: the output is not a complete instance yet")]
    StopNotAllowed {
        /// The stop token.
        token: u32,
    },
    /// The matcher has already accepted a stop token.
    #[error("the matcher is terminated; call reset() to start over")]
    Terminated,
    /// `rollback(n)` asked for more tokens than were accepted.
    #[error("cannot roll back {requested} tokens: only {available} accepted")]
    RollbackTooFar {
        /// Tokens asked for.
        requested: usize,
        /// Tokens available.
        available: usize,
    },
    /// The mask buffer is too small for the vocabulary.
    #[error("mask buffer has {got} words, the vocabulary needs {need}")]
    MaskTooSmall {
        /// Words given.
        got: usize,
        /// Words needed.
        need: usize,
    },
    /// The grammar became too ambiguous (too many parallel parses).
    #[error("more than {limit} parallel parse states; raise Limits::max_parse_states")]
    TooAmbiguous {
        /// The limit in force.
        limit: usize,
    },
}

/// Line and column (1-based, columns in characters) of byte offset `pos`
/// of a grammar's text.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(src.len());
    while !src.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &src[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
