//! Arbitrary Lark grammars: a grammar or a typed error with a position,
//! masks that agree with `accept_token`, UTF-8 outputs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    grammask::fuzzing::lark(data);
});
