//! Feed one MaskBench file's instances token by token (MaskBench's method)
//! and print the slowest masks with the text before them: a target for
//! `perf record` when working on mask latency.
//!
//! `cargo run --release --example profile_masks -- [--rounds N] [--tokenizer PATH] FILE...`:
//! N passes over each file's instances, each with fresh matchers of one
//! compiled grammar (the first pass is the cold one); cl100k unless a
//! `tokenizer.json` is given.
use grammask::conformance::{maskbench_config, python_dumps, Encoder};
use grammask::{Compiler, Tiktoken, Vocabulary};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 1;
    if args.first().is_some_and(|a| a == "--rounds") {
        rounds = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
        args.drain(..2);
    }
    let mut tokenizer = None;
    if args.first().is_some_and(|a| a == "--tokenizer") && args.len() > 1 {
        tokenizer = Some(args[1].clone());
        args.drain(..2);
    }
    let (vocab, enc) = match &tokenizer {
        None => (
            Vocabulary::tiktoken(Tiktoken::Cl100k).expect("cl100k"),
            Encoder::Tiktoken(tiktoken_rs::cl100k_base_singleton()),
        ),
        Some(p) => (
            Vocabulary::from_tokenizer_json(p).expect("tokenizer.json"),
            Encoder::from_tokenizer_json(std::path::Path::new(p)).expect("tokenizer.json"),
        ),
    };
    let vocab = Arc::new(vocab);
    for file in &args {
        println!("{file}");
        profile(file, rounds, &vocab, &enc);
    }
}

fn profile(file: &str, rounds: usize, vocab: &Arc<Vocabulary>, enc: &Encoder) {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("readable file")).expect("JSON file");
    let t0 = Instant::now();
    let g = match Compiler::with_config(maskbench_config()).compile(&doc["schema"], vocab.clone()) {
        Ok(g) => g,
        Err(e) => return println!("not compiled: {e}"),
    };
    println!("compile {:.2} ms, {} states", t0.elapsed().as_secs_f64() * 1e3, g.num_states());
    let mut mask = vec![0u32; vocab.mask_words()];
    let mut all: Vec<(u64, usize, usize, String)> = Vec::new();
    for round in 0..rounds {
        let mut sum = 0u64;
        for (k, t) in doc["tests"].as_array().into_iter().flatten().enumerate() {
            let toks = enc.encode(&python_dumps(&t["data"]));
            let mut m = g.matcher();
            for &tok in &toks {
                let t1 = Instant::now();
                if m.fill_next_token_bitmask(&mut mask).is_err() {
                    break;
                }
                let ns = t1.elapsed().as_nanos() as u64;
                sum += ns;
                if round == 0 {
                    let out = String::from_utf8_lossy(m.output()).into_owned();
                    all.push((ns, k, out.len(), out));
                }
                if mask[tok as usize / 32] >> (tok % 32) & 1 == 0 || m.accept_token(tok).is_err() {
                    break;
                }
            }
        }
        println!("round {round}: mask sum {:.3} ms", sum as f64 / 1e6);
    }
    let total: u64 = all.iter().map(|a| a.0).sum();
    all.sort_by_key(|a| std::cmp::Reverse(a.0));
    println!("{} masks in round 0, {:.3} ms; slowest:", all.len(), total as f64 / 1e6);
    // GM_SHOW=N prints the N slowest (default 8).
    let show = std::env::var("GM_SHOW").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    for (ns, k, len, out) in all.iter().take(show) {
        let tail: String = out.chars().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect();
        println!("{:>9.1} µs  instance {k} at {len}: …{tail:?}", *ns as f64 / 1e3);
    }
}
