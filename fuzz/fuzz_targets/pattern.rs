//! Arbitrary ECMA-262 patterns: a grammar or a typed error, and every string
//! a walk through its masks completes matches the pattern.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    grammask::fuzzing::pattern(data);
});
