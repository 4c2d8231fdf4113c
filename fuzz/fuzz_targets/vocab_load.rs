//! Arbitrary bytes as a tokenizer.json or tiktoken file: a vocabulary or a
//! typed error, never a panic or a hang.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    grammask::fuzzing::vocab_load(data);
});
