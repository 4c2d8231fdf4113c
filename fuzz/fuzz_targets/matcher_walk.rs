//! A corpus schema plus arbitrary token ids: never panics, and the mask
//! always agrees with accept_token.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn schemas() -> &'static [serde_json::Value] {
    static S: OnceLock<Vec<serde_json::Value>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/schemas");
        let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    grammask::fuzzing::matcher_walk(schemas(), data);
});
