//! Hugging Face `tokenizer.json` loading: turns each token's string form back
//! into the exact bytes it stands for.
//!
//! Two encodings of bytes into token strings exist in the wild:
//! - byte-level (GPT-2, Llama-3, Qwen): every byte is mapped to a printable
//!   code point by the GPT-2 table; we invert it.
//! - SentencePiece style (Llama-2, Mistral): `▁` stands for a space and
//!   `<0xNN>` tokens stand for one raw byte (byte fallback).
//!
//! Added tokens are raw text; special added tokens are never grammar-visible.

use super::Vocabulary;
use crate::error::VocabError;
use std::path::Path;

/// Names that conventionally end generation.
const STOP_NAMES: &[&str] =
    &["</s>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "<|im_end|>", "<|eom_id|>", "<|end|>", "<eos>"];

pub(super) fn load_file(path: &Path) -> Result<Vocabulary, VocabError> {
    let json = std::fs::read(path).map_err(|e| VocabError::Io { path: path.display().to_string(), source: e })?;
    let mut eos: Vec<String> = Vec::new();
    if let Some(dir) = path.parent() {
        if let Ok(cfg) = std::fs::read(dir.join("tokenizer_config.json")) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&cfg) {
                match v.get("eos_token") {
                    Some(serde_json::Value::String(s)) => eos.push(s.clone()),
                    Some(o) => {
                        if let Some(s) = o.get("content").and_then(|c| c.as_str()) {
                            eos.push(s.to_string())
                        }
                    }
                    None => {}
                }
            }
        }
    }
    let eos_refs: Vec<&str> = eos.iter().map(|s| s.as_str()).collect();
    let name = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tokenizer.json".into());
    load_bytes(&name, &json, &eos_refs)
}

/// The GPT-2 byte → char table, inverted: char → byte.
fn byte_level_decoder() -> ahash::AHashMap<char, u8> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut cs: Vec<u32> = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.iter().zip(&cs).map(|(&b, &c)| (char::from_u32(c).unwrap(), b as u8)).collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    ByteLevel,
    SentencePiece {
        byte_fallback: bool,
    },
    /// WordPiece and other plain-text vocabularies: the string is the bytes.
    Plain,
}

fn detect_style(j: &serde_json::Value) -> Style {
    fn has_type(v: &serde_json::Value, ty: &str) -> bool {
        match v {
            serde_json::Value::Object(m) => {
                m.get("type").and_then(|t| t.as_str()) == Some(ty) || m.values().any(|x| has_type(x, ty))
            }
            serde_json::Value::Array(a) => a.iter().any(|x| has_type(x, ty)),
            _ => false,
        }
    }
    let dec = j.get("decoder").unwrap_or(&serde_json::Value::Null);
    let pre = j.get("pre_tokenizer").unwrap_or(&serde_json::Value::Null);
    if has_type(dec, "ByteLevel") || has_type(pre, "ByteLevel") {
        return Style::ByteLevel;
    }
    let byte_fallback = j.pointer("/model/byte_fallback").and_then(|b| b.as_bool()).unwrap_or(false);
    if has_type(dec, "Metaspace") || has_type(dec, "ByteFallback") || dec.to_string().contains('\u{2581}') {
        return Style::SentencePiece { byte_fallback };
    }
    Style::Plain
}

fn parse_byte_token(s: &str) -> Option<u8> {
    let hex = s.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

pub(super) fn load_bytes(name: &str, json: &[u8], eos: &[&str]) -> Result<Vocabulary, VocabError> {
    // Malformed JSON is answered here, before the `tokenizers` crate sees
    // it: that crate (0.22) panics on malformed JSON inside `decoder` (an
    // `expect` in its decoder deserialization). Any other panic there is a
    // typed error too, never a panic of the caller.
    let j: serde_json::Value = serde_json::from_slice(json).map_err(|e| VocabError::Parse(e.to_string()))?;
    let tok = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_bytes(json))
        .map_err(|_| VocabError::Parse("the tokenizers crate cannot read this tokenizer.json (it panicked)".into()))?
        .map_err(|e| VocabError::Parse(e.to_string()))?;
    let style = detect_style(&j);
    let vocab = tok.get_vocab(false);
    let added = tok.get_added_tokens_decoder();
    let max_id = vocab.values().chain(added.keys()).copied().max();
    let Some(max_id) = max_id else {
        return Err(VocabError::Invalid("tokenizer.json has no tokens".into()));
    };
    let mut tokens: Vec<Option<Vec<u8>>> = vec![None; max_id as usize + 1];
    let bl = byte_level_decoder();
    for (s, &id) in &vocab {
        let bytes = match style {
            Style::ByteLevel => {
                let mut b = Vec::with_capacity(s.len());
                for c in s.chars() {
                    match bl.get(&c) {
                        Some(&x) => b.push(x),
                        // Not a byte-level char: keep it as UTF-8 (some
                        // vocabularies carry a few raw entries).
                        None => b.extend_from_slice(c.to_string().as_bytes()),
                    }
                }
                b
            }
            Style::SentencePiece { byte_fallback } => match parse_byte_token(s) {
                Some(x) if byte_fallback => vec![x],
                _ => s.replace('\u{2581}', " ").into_bytes(),
            },
            Style::Plain => s.as_bytes().to_vec(),
        };
        tokens[id as usize] = Some(bytes);
    }
    let mut special = Vec::new();
    let mut stop = Vec::new();
    for (&id, at) in &added {
        tokens[id as usize] = Some(at.content.as_bytes().to_vec());
        if at.special {
            special.push(id);
            if eos.contains(&at.content.as_str()) || STOP_NAMES.contains(&at.content.as_str()) {
                stop.push(id);
            }
        }
    }
    if stop.is_empty() {
        return Err(VocabError::Invalid(
            "no stop token found (no eos_token in tokenizer_config.json and none of the usual names)".into(),
        ));
    }
    Vocabulary::from_parts(name, tokens, &special, &stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_table_is_a_bijection() {
        let t = byte_level_decoder();
        assert_eq!(t.len(), 256);
        let mut seen = [false; 256];
        for &b in t.values() {
            seen[b as usize] = true;
        }
        assert!(seen.iter().all(|&x| x));
        assert_eq!(t[&'Ġ'], b' ');
        assert_eq!(t[&'Ċ'], b'\n');
        assert_eq!(t[&'a'], b'a');
    }

    #[test]
    fn byte_fallback_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xG0>"), None);
        assert_eq!(parse_byte_token("<0x0>"), None);
    }
}
