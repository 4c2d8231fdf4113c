//! Vocabularies: token id → exact bytes, which ids are special, which stop
//! generation, and the [`TokTrie`] built once from them.
//!
//! A vocabulary is shared (`Arc`) by every grammar compiled against it. It
//! never imports anything from the schema or grammar side.
//!
//! Loaders: HF `tokenizer.json` ([`Vocabulary::from_tokenizer_json`]), tiktoken
//! rank files ([`Vocabulary::from_tiktoken_file`]), the vocabularies shipped in
//! the `tiktoken-rs` crate ([`Vocabulary::tiktoken`]), and explicit byte lists
//! ([`Vocabulary::from_token_bytes`]).

mod hf;
pub(crate) mod trie;

use crate::error::VocabError;
pub use trie::TokTrie;

/// What a token id is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Plain text bytes: allowed whenever the grammar allows its bytes.
    Normal,
    /// A special/control token (`<|begin_of_text|>`…): never allowed by a
    /// grammar. Stop tokens are special tokens allowed at the end.
    Special,
    /// An id with no token behind it (gaps in the id space, padding up to the
    /// model's logits size): never allowed.
    Hole,
}

/// The built-in vocabularies shipped by the `tiktoken-rs` crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiktoken {
    /// GPT-2 / r50k_base, 50k tokens.
    R50k,
    /// cl100k_base (GPT-3.5/4), 100k tokens.
    Cl100k,
    /// o200k_base (GPT-4o and later), 200k tokens.
    O200k,
}

/// A tokenizer's vocabulary as grammask sees it.
#[derive(Debug)]
pub struct Vocabulary {
    name: String,
    bytes: Vec<u8>,
    offsets: Vec<u32>,
    kinds: Vec<TokenKind>,
    stop: Vec<u32>,
    trie: TokTrie,
    /// Masks of lexer-like machines, shared by every grammar compiled for
    /// this vocabulary: the mask layer's cache, held without naming it.
    pub(crate) shared_masks: crate::slot::Slot,
    /// [`Vocabulary::digest`], computed on first use.
    digest: std::sync::OnceLock<String>,
}

impl Vocabulary {
    /// Builds a vocabulary from explicit parts. `tokens[i]` is the bytes of
    /// token `i` (`None` for a hole); ids in `special` are special tokens;
    /// ids in `stop` are stop tokens (they are made special).
    ///
    /// # Errors
    /// [`VocabError::Invalid`] when the vocabulary has no normal token or a
    /// special/stop id is out of range.
    pub fn from_parts(
        name: &str,
        tokens: Vec<Option<Vec<u8>>>,
        special: &[u32],
        stop: &[u32],
    ) -> Result<Vocabulary, VocabError> {
        let n = tokens.len();
        let mut kinds: Vec<TokenKind> =
            tokens.iter().map(|t| if t.is_some() { TokenKind::Normal } else { TokenKind::Hole }).collect();
        for &s in special.iter().chain(stop) {
            let k = kinds
                .get_mut(s as usize)
                .ok_or_else(|| VocabError::Invalid(format!("special/stop token id {s} out of range (size {n})")))?;
            *k = TokenKind::Special;
        }
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0u32);
        for t in &tokens {
            if let Some(b) = t {
                bytes.extend_from_slice(b);
            }
            offsets.push(bytes.len() as u32);
        }
        if !kinds.contains(&TokenKind::Normal) {
            return Err(VocabError::Invalid("no normal (text) token".into()));
        }
        let mut stop: Vec<u32> = stop.to_vec();
        stop.sort_unstable();
        stop.dedup();
        let trie = {
            let kinds = &kinds;
            let bytes = &bytes;
            let offsets = &offsets;
            TokTrie::build(
                (0..n)
                    .filter(|&i| kinds[i] == TokenKind::Normal)
                    .map(|i| (i as u32, &bytes[offsets[i] as usize..offsets[i + 1] as usize])),
            )
        };
        Ok(Vocabulary {
            name: name.to_string(),
            bytes,
            offsets,
            kinds,
            stop,
            trie,
            shared_masks: Default::default(),
            digest: Default::default(),
        })
    }

    /// A vocabulary from a list of byte strings; ids in `stop` are stop tokens
    /// (their bytes are ignored). Convenient for tests.
    ///
    /// ```
    /// let v = grammask::Vocabulary::from_token_bytes(&["{", "}", "\"a\"", ":", "1", "<eos>"], &[5]).unwrap();
    /// assert_eq!(v.size(), 6);
    /// assert_eq!(v.token_bytes(2), b"\"a\"");
    /// ```
    pub fn from_token_bytes<B: AsRef<[u8]>>(tokens: &[B], stop: &[u32]) -> Result<Vocabulary, VocabError> {
        let toks = tokens.iter().map(|t| Some(t.as_ref().to_vec())).collect();
        Vocabulary::from_parts("explicit", toks, &[], stop)
    }

    /// Loads one of the vocabularies shipped inside the `tiktoken-rs` crate.
    /// The stop token is `<|endoftext|>`; the other special tokens are special.
    pub fn tiktoken(which: Tiktoken) -> Result<Vocabulary, VocabError> {
        let (bpe, name) = match which {
            Tiktoken::R50k => (tiktoken_rs::r50k_base_singleton(), "r50k_base"),
            Tiktoken::Cl100k => (tiktoken_rs::cl100k_base_singleton(), "cl100k_base"),
            Tiktoken::O200k => (tiktoken_rs::o200k_base_singleton(), "o200k_base"),
        };
        let mut specials: Vec<(String, u32)> = Vec::new();
        for s in bpe.special_tokens() {
            let ids = bpe.encode_with_special_tokens(s);
            if ids.len() == 1 {
                specials.push((s.to_string(), ids[0]));
            }
        }
        let max_special = specials.iter().map(|s| s.1).max().unwrap_or(0);
        let mut tokens: Vec<Option<Vec<u8>>> = Vec::new();
        let mut id: u32 = 0;
        loop {
            match bpe.decode_bytes(&[id]) {
                Ok(b) => tokens.push(Some(b)),
                Err(_) if id <= max_special => tokens.push(None),
                Err(_) => break,
            }
            id += 1;
        }
        let special: Vec<u32> = specials.iter().map(|s| s.1).collect();
        let stop: Vec<u32> = specials.iter().filter(|s| s.0 == "<|endoftext|>").map(|s| s.1).collect();
        Vocabulary::from_parts(name, tokens, &special, &stop)
    }

    /// Loads a tiktoken rank file (`base64-token rank` per line). `specials`
    /// adds named special tokens at given ids; `stop` names which of them
    /// stop generation.
    pub fn from_tiktoken_file(
        path: impl AsRef<std::path::Path>,
        specials: &[(&str, u32)],
        stop: &[&str],
    ) -> Result<Vocabulary, VocabError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| VocabError::Io { path: path.display().to_string(), source: e })?;
        let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Vocabulary::from_tiktoken_text(&name, &text, specials, stop)
    }

    /// [`Vocabulary::from_tiktoken_file`] from the file's text.
    pub(crate) fn from_tiktoken_text(
        name: &str,
        text: &str,
        specials: &[(&str, u32)],
        stop: &[&str],
    ) -> Result<Vocabulary, VocabError> {
        use base64::Engine as _;
        let mut tokens: Vec<Option<Vec<u8>>> = Vec::new();
        for (ln, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(b64), Some(rank), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(VocabError::Parse(format!("line {}: expected `<base64> <rank>`", ln + 1)));
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| VocabError::Parse(format!("line {}: bad base64: {e}", ln + 1)))?;
            let rank: usize =
                rank.parse().map_err(|_| VocabError::Parse(format!("line {}: bad rank {rank:?}", ln + 1)))?;
            if rank > 10_000_000 {
                return Err(VocabError::Parse(format!("line {}: rank {rank} is implausibly large", ln + 1)));
            }
            if tokens.len() <= rank {
                tokens.resize(rank + 1, None);
            }
            tokens[rank] = Some(bytes);
        }
        let mut special_ids = Vec::new();
        let mut stop_ids = Vec::new();
        for &(name, id) in specials {
            if tokens.len() <= id as usize {
                tokens.resize(id as usize + 1, None);
            }
            tokens[id as usize] = Some(name.as_bytes().to_vec());
            special_ids.push(id);
            if stop.contains(&name) {
                stop_ids.push(id);
            }
        }
        Vocabulary::from_parts(name, tokens, &special_ids, &stop_ids)
    }

    /// Loads a Hugging Face `tokenizer.json` (byte-level BPE such as Llama-3,
    /// Qwen and GPT-2; SentencePiece-style with `▁` and `<0xNN>` byte fallback
    /// such as Llama-2 and Mistral). Stop tokens come from a
    /// `tokenizer_config.json` beside the file (`eos_token`) when there is one,
    /// else from the usual names (`</s>`, `<|endoftext|>`, `<|eot_id|>`, …).
    pub fn from_tokenizer_json(path: impl AsRef<std::path::Path>) -> Result<Vocabulary, VocabError> {
        hf::load_file(path.as_ref())
    }

    /// Like [`Vocabulary::from_tokenizer_json`], from the file's bytes; `eos`
    /// names extra stop tokens.
    pub fn from_tokenizer_json_bytes(json: &[u8], eos: &[&str]) -> Result<Vocabulary, VocabError> {
        hf::load_bytes("tokenizer.json", json, eos)
    }

    /// Pads the id space with holes up to `size` (a model's logits are often
    /// wider than its tokenizer). Never shrinks.
    pub fn with_size(mut self, size: usize) -> Vocabulary {
        while self.kinds.len() < size {
            self.kinds.push(TokenKind::Hole);
            self.offsets.push(self.bytes.len() as u32);
        }
        self.shared_masks = Default::default();
        self.digest = Default::default();
        self
    }

    /// Replaces the stop tokens (they become special).
    pub fn with_stop_tokens(mut self, stop: &[u32]) -> Result<Vocabulary, VocabError> {
        for &s in stop {
            let k = self
                .kinds
                .get_mut(s as usize)
                .ok_or_else(|| VocabError::Invalid(format!("stop token id {s} out of range")))?;
            if *k == TokenKind::Normal {
                // It leaves the trie: rebuild.
                *k = TokenKind::Special;
            }
        }
        self.stop = stop.to_vec();
        let kinds = &self.kinds;
        let bytes = &self.bytes;
        let offsets = &self.offsets;
        self.trie = TokTrie::build(
            (0..kinds.len())
                .filter(|&i| kinds[i] == TokenKind::Normal)
                .map(|i| (i as u32, &bytes[offsets[i] as usize..offsets[i + 1] as usize])),
        );
        self.shared_masks = Default::default();
        self.digest = Default::default();
        Ok(self)
    }

    /// A stable digest (32 hex digits) of every token's id, kind and bytes
    /// and of the stop tokens: two vocabularies with the same digest give
    /// the same masks. Computed once (about a millisecond for 200k tokens).
    pub fn digest(&self) -> &str {
        self.digest.get_or_init(|| {
            let mut d = crate::digest::Digest::default();
            d.bytes(&(self.kinds.len() as u64).to_le_bytes());
            for i in 0..self.kinds.len() {
                let kind = match self.kinds[i] {
                    TokenKind::Normal => b'n',
                    TokenKind::Special => b's',
                    TokenKind::Hole => b'h',
                };
                d.bytes(&[kind]).field(self.token_bytes(i as u32));
            }
            for s in &self.stop {
                d.bytes(&s.to_le_bytes());
            }
            d.hex()
        })
    }

    /// A short name (file or built-in name).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Size of the id space (mask length in bits).
    pub fn size(&self) -> usize {
        self.kinds.len()
    }
    /// Number of `u32` words a mask needs.
    pub fn mask_words(&self) -> usize {
        self.size().div_ceil(32)
    }
    /// The bytes of token `id` (empty for holes and out-of-range ids).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        let i = id as usize;
        if i + 1 >= self.offsets.len() {
            return &[];
        }
        &self.bytes[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
    /// What token `id` is, `None` when out of range.
    pub fn kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }
    /// The stop tokens.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }
    /// Whether `id` is a stop token.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stop.binary_search(&id).is_ok()
    }
    /// The token trie.
    pub fn trie(&self) -> &TokTrie {
        &self.trie
    }
    /// Heap bytes held (token bytes, tables, trie).
    pub fn memory_bytes(&self) -> usize {
        self.bytes.capacity() + self.offsets.capacity() * 4 + self.kinds.capacity() + self.trie.memory_bytes()
    }
    /// Concatenated bytes of a token sequence (holes and specials add nothing).
    pub fn decode(&self, ids: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        for &t in ids {
            if self.kind(t) == Some(TokenKind::Normal) {
                out.extend_from_slice(self.token_bytes(t));
            }
        }
        out
    }
}
