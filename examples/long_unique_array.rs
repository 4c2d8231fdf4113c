//! Mask latency deep inside one long `uniqueItems` array of strings: the
//! items `"item number N"` share a prefix, so every mask of an open item
//! weighs it against many finished ones (the worst case of
//! `src/unique.rs`'s text-based checks).
//!
//! `cargo run --release --example long_unique_array -- [ITEMS] [objects]`
//! (default 1000): writes ITEMS items in 3-byte steps on cl100k, a mask
//! before each step, and prints the mean and max mask µs over the last 50
//! items. With `objects`, the items are open objects
//! `{"name":"item number N","n":N}` compared as values
//! (`src/unique/values.rs`).
use grammask::{Compiler, Tiktoken, Vocabulary};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000).max(50);
    let objects = std::env::args().nth(2).as_deref() == Some("objects");
    let items = if objects { serde_json::json!({"type": "object"}) } else { serde_json::json!({"type": "string"}) };
    let schema = serde_json::json!({"type": "array", "items": items, "uniqueItems": true});
    let vocab = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).expect("cl100k"));
    let g = Compiler::new().compile(&schema, vocab.clone()).expect("compiles");
    let mut m = g.matcher();
    m.accept_bytes(b"[").expect("array start");
    let mut mask = vec![0u32; vocab.mask_words()];
    let (mut total, mut worst, mut count) = (0f64, 0f64, 0usize);
    for i in 0..n {
        if i > 0 {
            m.accept_bytes(b",").expect("comma");
        }
        let item = if objects {
            format!("{{\"name\":\"item number {i}\",\"n\":{i}}}")
        } else {
            format!("\"item number {i}\"")
        };
        for chunk in item.as_bytes().chunks(3) {
            let t0 = Instant::now();
            m.fill_next_token_bitmask(&mut mask).expect("mask");
            let us = t0.elapsed().as_secs_f64() * 1e6;
            if i >= n - 50 {
                total += us;
                worst = worst.max(us);
                count += 1;
            }
            m.accept_bytes(chunk).expect("a new item");
        }
    }
    println!("{n} items, masks over the last 50: mean {:.1} µs, max {:.1} µs", total / count as f64, worst);
}
