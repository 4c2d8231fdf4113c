//! Criterion benches, split by phase: mask along recorded token paths (warm
//! cache, and cold: compile + first pass), compile, vocabulary load, batch
//! fill, logits masking. Percentiles per mask come from `grammask bench`.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use grammask::{random_walk, Compiler, Rng, Tiktoken, Vocabulary};
use std::sync::Arc;

fn schema(name: &str) -> serde_json::Value {
    let p = format!("{}/corpora/schemas/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

const SCHEMAS: &[&str] = &["implementation", "nested_config", "tool_call", "ref_recursive_tree", "anyof_objects"];

/// A realistic path: the tokens of a few random walks.
fn paths(g: &Arc<grammask::CompiledGrammar>) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(99);
    (0..4)
        .map(|_| {
            let mut m = g.matcher();
            random_walk(&mut m, &mut rng, 300).unwrap().tokens
        })
        .collect()
}

fn bench_masks(c: &mut Criterion) {
    for (vname, which) in [("cl100k", Tiktoken::Cl100k), ("o200k", Tiktoken::O200k)] {
        let vocab = Arc::new(Vocabulary::tiktoken(which).unwrap());
        let mut group = c.benchmark_group(format!("mask/{vname}"));
        for name in SCHEMAS {
            let s = schema(name);
            let g = Compiler::new().compile(&s, vocab.clone()).unwrap();
            let ps = paths(&g);
            let n: usize = ps.iter().map(|p| p.len()).sum();
            group.throughput(Throughput::Elements(n as u64));
            let mut mask = vec![0u32; vocab.mask_words()];
            group.bench_function(BenchmarkId::new("warm", name), |b| {
                b.iter(|| {
                    for p in &ps {
                        let mut m = g.matcher();
                        for &t in p {
                            m.fill_next_token_bitmask(&mut mask).unwrap();
                            m.accept_token(t).unwrap();
                        }
                    }
                })
            });
            group.bench_function(BenchmarkId::new("cold", name), |b| {
                b.iter(|| {
                    let g = Compiler::new().compile(&s, vocab.clone()).unwrap();
                    for p in &ps {
                        let mut m = g.matcher();
                        for &t in p {
                            m.fill_next_token_bitmask(&mut mask).unwrap();
                            m.accept_token(t).unwrap();
                        }
                    }
                })
            });
        }
        group.finish();
    }
}

fn bench_compile(c: &mut Criterion) {
    let vocab = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).unwrap());
    let mut group = c.benchmark_group("compile");
    for name in SCHEMAS {
        let s = schema(name);
        group.bench_function(*name, |b| b.iter(|| Compiler::new().compile(&s, vocab.clone()).unwrap()));
    }
    group.finish();
}

fn bench_vocab(c: &mut Criterion) {
    let mut group = c.benchmark_group("vocab");
    group.sample_size(10);
    group.bench_function("load+trie cl100k", |b| b.iter(|| Vocabulary::tiktoken(Tiktoken::Cl100k).unwrap()));
    group.bench_function("load+trie o200k", |b| b.iter(|| Vocabulary::tiktoken(Tiktoken::O200k).unwrap()));
    let llama = std::env::var("GRAMMASK_SHARED_CORPORA")
        .unwrap_or_else(|_| format!("{}/../shared/corpora", env!("CARGO_MANIFEST_DIR")))
        + "/tokenizers/llama3_1/tokenizer.json";
    if std::path::Path::new(&llama).is_file() {
        group.bench_function("load+trie llama3.1", |b| b.iter(|| Vocabulary::from_tokenizer_json(&llama).unwrap()));
    } else {
        eprintln!("NOTICE: {llama} absent; skipping the Llama-3.1 load bench");
    }
    group.finish();
}

fn bench_batch(c: &mut Criterion) {
    let vocab = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).unwrap());
    let g = Compiler::new().compile(&schema("implementation"), vocab.clone()).unwrap();
    let words = vocab.mask_words();
    // 64 matchers at different points of different walks.
    let mut rng = Rng::new(5);
    let mut ms = Vec::new();
    for i in 0..64 {
        let mut m = g.matcher();
        let _ = random_walk(&mut m, &mut rng, 5 + i % 40);
        if m.is_terminated() {
            m.rollback(1).unwrap();
        }
        ms.push(m);
    }
    let mut flat = vec![0u32; words * ms.len()];
    let mut group = c.benchmark_group("batch64/cl100k");
    group.throughput(Throughput::Elements(64));
    group.bench_function("rayon", |b| b.iter(|| grammask::fill_masks_batch(&mut ms, &mut flat, words)));
    group.bench_function("one thread", |b| {
        b.iter(|| {
            for (m, mask) in ms.iter_mut().zip(flat.chunks_mut(words)) {
                m.fill_next_token_bitmask(mask).unwrap();
            }
        })
    });
    // The ceiling: a warm mask is mostly a copy of cached bits, so the batch
    // is bounded by how fast two cores can write 64 masks at all.
    let src = flat.clone();
    group.bench_function("copy only, rayon", |b| {
        use rayon::prelude::*;
        b.iter(|| flat.par_chunks_mut(words).zip(src.par_chunks(words)).for_each(|(d, s)| d.copy_from_slice(s)))
    });
    group.bench_function("copy only, one thread", |b| b.iter(|| flat.copy_from_slice(&src)));
    // Cold: the same 64 token paths on a freshly compiled grammar, so each
    // matcher's next mask needs its local masks computed (leaf masks may
    // still come from the vocabulary's cache). This is where two threads
    // can pay; the warm batch above is a copy.
    let schema = schema("implementation");
    let mut rng = Rng::new(5);
    let paths: Vec<Vec<u32>> = (0..64)
        .map(|i| {
            let mut m = g.matcher();
            let mut toks = random_walk(&mut m, &mut rng, 5 + i % 40).map(|s| s.tokens).unwrap_or_default();
            if m.is_terminated() {
                toks.pop();
            }
            toks
        })
        .collect();
    let fresh = || {
        let g = Compiler::new().compile(&schema, vocab.clone()).unwrap();
        paths
            .iter()
            .map(|p| {
                let mut m = g.matcher();
                for &t in p {
                    if m.accept_token(t).is_err() {
                        break;
                    }
                }
                m
            })
            .collect::<Vec<_>>()
    };
    group.bench_function("cold, rayon", |b| {
        b.iter_batched(fresh, |mut ms| grammask::fill_masks_batch(&mut ms, &mut flat, words), BatchSize::PerIteration)
    });
    group.bench_function("cold, one thread", |b| {
        b.iter_batched(
            fresh,
            |mut ms| {
                for (m, mask) in ms.iter_mut().zip(flat.chunks_mut(words)) {
                    m.fill_next_token_bitmask(mask).unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_logits(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_mask");
    for n in [128_256usize, 200_019] {
        let mut rng = Rng::new(1);
        let mask: Vec<u32> = (0..n.div_ceil(32)).map(|_| rng.next_u64() as u32).collect();
        let mut logits = vec![0.5f32; n];
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(|| grammask::apply_mask(&mut logits, &mask)));
    }
    group.finish();
}

/// Per-token mask + accept along recorded MaskBench paths: every 300th
/// file of `../shared/corpora/maskbench/data` (override:
/// `GRAMMASK_SHARED_CORPORA`), its valid instances serialized like
/// `json.dumps` and tokenized canonically (cl100k). Skipped with a notice
/// when the data is absent.
fn bench_maskbench(c: &mut Criterion) {
    use grammask::conformance::{maskbench_config, python_dumps, Encoder};
    let root = std::env::var("GRAMMASK_SHARED_CORPORA")
        .unwrap_or_else(|_| format!("{}/../shared/corpora", env!("CARGO_MANIFEST_DIR")));
    let dir = std::path::Path::new(&root).join("maskbench/data");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("NOTICE: {} not found; skipping the MaskBench bench", dir.display());
        return;
    };
    let mut files: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let vocab = Arc::new(Vocabulary::tiktoken(Tiktoken::Cl100k).unwrap());
    let enc = Encoder::Tiktoken(tiktoken_rs::cl100k_base_singleton());
    let compiler = Compiler::with_config(maskbench_config());
    let mut cases = Vec::new();
    let mut schemas = Vec::new();
    for f in files.iter().step_by(300) {
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(f).unwrap_or_default()) else {
            continue;
        };
        let Ok(g) = compiler.compile(&doc["schema"], vocab.clone()) else { continue };
        schemas.push(doc["schema"].clone());
        for t in doc["tests"].as_array().into_iter().flatten().filter(|t| t["valid"] == true) {
            let toks = enc.encode(&python_dumps(&t["data"]));
            let mut m = g.matcher();
            if toks.iter().all(|&t| m.accept_token(t).is_ok()) {
                cases.push((g.clone(), toks));
            }
        }
    }
    let n: usize = cases.iter().map(|(_, p)| p.len()).sum();
    let mut group = c.benchmark_group("maskbench/cl100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    let mut mask = vec![0u32; vocab.mask_words()];
    group.bench_function(format!("warm {} paths", cases.len()), |b| {
        b.iter(|| {
            for (g, p) in &cases {
                let mut m = g.matcher();
                for &t in p {
                    m.fill_next_token_bitmask(&mut mask).unwrap();
                    m.accept_token(t).unwrap();
                }
            }
        })
    });
    group.throughput(Throughput::Elements(schemas.len() as u64));
    group.bench_function(format!("compile {} schemas", schemas.len()), |b| {
        b.iter(|| {
            for s in &schemas {
                compiler.compile(s, vocab.clone()).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_masks, bench_compile, bench_vocab, bench_batch, bench_logits, bench_maskbench);
criterion_main!(benches);
