//! Arbitrary bytes as a JSON Schema: never panics, never hangs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    grammask::fuzzing::compile_schema(data);
});
