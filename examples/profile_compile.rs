//! Compile every Nth MaskBench schema (refusals timed too) and compute its
//! first mask, printing where the time goes; a target for `perf record`
//! when working on compile latency.
//!
//! `cargo run --release --example profile_compile -- [EVERY] [DIR]`, or
//! `-- --repeat N FILE` to compile one MaskBench file N times.
use grammask::conformance::maskbench_config;
use grammask::{Compiler, Tiktoken, Vocabulary};
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "--repeat") {
        args.next();
        let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
        let file = args.next().expect("--repeat N FILE");
        return repeat(n, &file);
    }
    let every: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let dir = args.next().unwrap_or_else(|| "../shared/corpora/maskbench/data".into());
    let vocab = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).expect("cl100k"));
    let compiler = Compiler::with_config(maskbench_config());
    let mut files: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            eprintln!("cannot read {dir}: {e}");
            return;
        }
    };
    files.sort();
    let (mut compile, mut first, mut n) = (0f64, 0f64, 0usize);
    let mut each: Vec<f64> = Vec::new();
    let mut slowest: Vec<(f64, String)> = Vec::new();
    let mut mask = vec![0u32; vocab.mask_words()];
    for f in files.iter().step_by(every.max(1)) {
        let Some(schema) = std::fs::read_to_string(f)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|d| d["schema"].clone())
        else {
            continue;
        };
        // A refusal counts too: the budget is "compiled or refused".
        let t0 = Instant::now();
        let result = compiler.compile(&schema, vocab.clone());
        let t1 = Instant::now();
        compile += (t1 - t0).as_secs_f64();
        each.push((t1 - t0).as_secs_f64() * 1e3);
        let verdict = if result.is_ok() { "" } else { " (refused)" };
        slowest.push(((t1 - t0).as_secs_f64() * 1e3, format!("{}{verdict}", f.display())));
        n += 1;
        if let Ok(g) = result {
            let t2 = Instant::now();
            let _ = g.matcher().fill_next_token_bitmask(&mut mask);
            first += t2.elapsed().as_secs_f64();
        }
    }
    println!("{n} schemas: compile {:.0} ms, first mask {:.0} ms", compile * 1e3, first * 1e3);
    each.sort_by(f64::total_cmp);
    let pct =
        |p: f64| each.get(((each.len() as f64 * p) as usize).min(each.len().saturating_sub(1))).copied().unwrap_or(0.0);
    println!("compile ms p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}", pct(0.5), pct(0.9), pct(0.99), pct(1.0));
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, f) in slowest.iter().take(8) {
        println!("  {ms:8.2} ms  {f}");
    }
}

fn repeat(n: usize, file: &str) {
    let vocab = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).expect("cl100k"));
    let compiler = Compiler::with_config(maskbench_config());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("readable file")).expect("JSON file");
    let schema = &doc["schema"];
    let mut mask = vec![0u32; vocab.mask_words()];
    let (mut compile, mut first, mut drop) = (0f64, 0f64, 0f64);
    for i in 0..n {
        let t0 = Instant::now();
        let g = compiler.compile(schema, vocab.clone()).expect("compiles");
        let t1 = Instant::now();
        let _ = g.matcher().fill_next_token_bitmask(&mut mask);
        let t2 = Instant::now();
        if i == 0 {
            println!("{} states, {:.1} MB compiled", g.num_states(), g.memory_bytes() as f64 / 1e6);
        }
        std::mem::drop(g);
        compile += (t1 - t0).as_secs_f64();
        first += (t2 - t1).as_secs_f64();
        drop += t2.elapsed().as_secs_f64();
    }
    let ms = |t: f64| t * 1e3 / n as f64;
    println!("{file}: ms per run: compile {:.3}, first mask {:.3}, drop {:.3}", ms(compile), ms(first), ms(drop));
}
