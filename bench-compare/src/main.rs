//! grammask vs llguidance, side by side, in one process, on the same
//! MaskBench files and the same token sequences.
//!
//! Method (MaskBench's): each instance is serialized like Python's
//! `json.dumps`, tokenized canonically, and fed token by token: compute the
//! mask, then commit the token if the mask allows it. Both engines see the
//! same tokens; the two are interleaved per schema (alternating which goes
//! first) so that machine noise hits both alike. Only schemas that both
//! engines compile enter the latency table.
//!
//! Usage: `cargo run --release -- [--tokenizer cl100k|o200k|PATH] [--every N] [--limit N] [DIR]`
//!
//! With `--grammars`, the GBNF and Lark grammars and MaskBench's regexes
//! instead (see [`grammars`]).

mod gbnf_lark;
mod grammars;

use grammask::conformance::{maskbench_config, python_dumps, Encoder};
use grammask::{Compiler, Tiktoken, TokenKind, Vocabulary};
use llguidance::api::TopLevelGrammar;
use llguidance::earley::SlicedBiasComputer;
use llguidance::toktrie::{ApproximateTokEnv, InferenceCapabilities, TokEnv, TokRxInfo, TokTrie};
use llguidance::ParserFactory;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

struct Args {
    dir: PathBuf,
    tokenizer: String,
    every: usize,
    limit: usize,
    /// Per-schema rows (CSV) for finding what drives a tail.
    csv: Option<PathBuf>,
    /// Grammar mode and its options.
    grammars: bool,
    walks: usize,
    walk_tokens: usize,
    regexes: usize,
    shared: String,
}

fn parse_args() -> Args {
    let shared = std::env::var("GRAMMASK_SHARED_CORPORA").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpora").to_string()
    });
    let mut a = Args {
        dir: Path::new(&shared).join("maskbench/data"),
        tokenizer: "cl100k".into(),
        every: 10,
        limit: usize::MAX,
        csv: None,
        grammars: false,
        walks: 8,
        walk_tokens: 64,
        regexes: 200,
        shared: shared.clone(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--tokenizer" => a.tokenizer = it.next().expect("--tokenizer NAME|PATH"),
            "--every" => a.every = it.next().and_then(|n| n.parse().ok()).expect("--every N"),
            "--limit" => a.limit = it.next().and_then(|n| n.parse().ok()).expect("--limit N"),
            "--csv" => a.csv = Some(PathBuf::from(it.next().expect("--csv FILE"))),
            "--grammars" => a.grammars = true,
            "--walks" => a.walks = it.next().and_then(|n| n.parse().ok()).expect("--walks N"),
            "--walk-tokens" => a.walk_tokens = it.next().and_then(|n| n.parse().ok()).expect("--walk-tokens N"),
            "--regexes" => a.regexes = it.next().and_then(|n| n.parse().ok()).expect("--regexes N"),
            "-h" | "--help" => {
                println!("bench-compare [--tokenizer cl100k|o200k|llama3|PATH] [--every N] [--limit N] [--csv FILE] [DIR]");
                println!("bench-compare --grammars [--tokenizer ...] [--walks N] [--walk-tokens N] [--regexes N]");
                std::process::exit(0);
            }
            d => a.dir = PathBuf::from(d),
        }
    }
    if a.tokenizer == "llama3" {
        a.tokenizer = Path::new(&shared).join("tokenizers/llama3_1/tokenizer.json").display().to_string();
    }
    a
}

/// llguidance's token environment over exactly grammask's vocabulary (same
/// ids, same bytes; special tokens get toktrie's 0xFF marker).
fn llg_env(v: &Vocabulary) -> TokEnv {
    let words: Vec<Vec<u8>> = (0..v.size() as u32)
        .map(|i| match v.kind(i) {
            Some(TokenKind::Normal) => v.token_bytes(i).to_vec(),
            Some(TokenKind::Special) => {
                let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                w.extend_from_slice(format!("<|special_{i}|>").as_bytes());
                w
            }
            _ => vec![],
        })
        .collect();
    let eos = v.stop_tokens().first().copied().unwrap_or(v.size() as u32 - 1);
    let info = TokRxInfo::new(v.size() as u32, eos);
    Arc::new(ApproximateTokEnv::new(TokTrie::from(&info, &words)))
}

#[derive(Default)]
struct Engine {
    compiled: usize,
    mask_ns: Vec<u64>,
    first_ns: Vec<u64>,
    /// Instances judged right (valid accepted to the end, invalid rejected).
    right: usize,
    instances: usize,
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64
}

fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len().max(1) as f64
}

fn main() {
    let a = parse_args();
    let (vocab, enc) = match a.tokenizer.as_str() {
        "cl100k" => (Vocabulary::tiktoken(Tiktoken::Cl100k), Encoder::Tiktoken(tiktoken_rs::cl100k_base_singleton())),
        "o200k" => (Vocabulary::tiktoken(Tiktoken::O200k), Encoder::Tiktoken(tiktoken_rs::o200k_base_singleton())),
        p => (Vocabulary::from_tokenizer_json(p), Encoder::from_tokenizer_json(Path::new(p)).expect("tokenizer")),
    };
    let vocab = Arc::new(vocab.expect("vocabulary"));
    if a.grammars {
        let o = grammars::Opts { shared: a.shared.clone(), walks: a.walks, walk_tokens: a.walk_tokens, regexes: a.regexes };
        grammars::run(&o, &vocab);
        return;
    }
    let env = llg_env(&vocab);
    let caps = InferenceCapabilities::default();
    let mut factory =
        ParserFactory::new(&env, caps, &SlicedBiasComputer::general_slices()).expect("llguidance factory");
    factory.quiet();
    let cfg = maskbench_config();
    let compiler = Compiler::with_config(cfg);

    let mut files: Vec<PathBuf> = match std::fs::read_dir(&a.dir) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect(),
        Err(e) => {
            eprintln!("cannot read {}: {e} (set GRAMMASK_SHARED_CORPORA or pass DIR)", a.dir.display());
            std::process::exit(2);
        }
    };
    files.sort();
    let files: Vec<PathBuf> = files.into_iter().step_by(a.every.max(1)).take(a.limit).collect();
    eprintln!("{} files from {}, vocabulary {} ({} ids)", files.len(), a.dir.display(), vocab.name(), vocab.size());

    let mut gm = Engine::default();
    let mut lg = Engine::default();
    let mut both = 0usize;
    let mut csv = String::from("file,g_first_ms,l_first_ms,g_mask_sum_ms,l_mask_sum_ms,g_mask_max_us,l_mask_max_us\n");
    let t_all = Instant::now();
    for (fi, f) in files.iter().enumerate() {
        if fi % 50 == 0 {
            eprintln!("  {fi}/{} files, {:.0} s", files.len(), t_all.elapsed().as_secs_f64());
        }
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        let Ok(doc) = serde_json::from_str::<Value>(&text) else { continue };
        let schema = doc["schema"].clone();
        let tests: Vec<(Vec<u32>, bool)> = doc["tests"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| (enc.encode(&python_dumps(&t["data"])), t["valid"].as_bool().unwrap_or(false)))
            .collect();
        // Both engines, interleaved; the order alternates per schema.
        let mut g_run: Option<(Vec<u64>, u64, usize)> = None;
        let mut l_run: Option<(Vec<u64>, u64, usize)> = None;
        for turn in 0..2 {
            if (turn + fi) % 2 == 0 {
                g_run = run_grammask(&compiler, &schema, &vocab, &tests);
            } else {
                l_run = run_llguidance(&factory, &schema, &tests);
            }
        }
        gm.instances += tests.len();
        lg.instances += tests.len();
        if let Some((_, _, r)) = &g_run {
            gm.compiled += 1;
            gm.right += r;
        }
        if let Some((_, _, r)) = &l_run {
            lg.compiled += 1;
            lg.right += r;
        }
        if let (Some((gn, gf, _)), Some((ln, lf, _))) = (g_run, l_run) {
            both += 1;
            let stats = |v: &[u64]| (v.iter().sum::<u64>() as f64 / 1e6, v.iter().copied().max().unwrap_or(0) as f64 / 1e3);
            let ((gs, gx), (ls, lx)) = (stats(&gn), stats(&ln));
            csv += &format!(
                "{},{:.3},{:.3},{gs:.3},{ls:.3},{gx:.1},{lx:.1}\n",
                f.file_name().unwrap_or_default().to_string_lossy(),
                gf as f64 / 1e6,
                lf as f64 / 1e6
            );
            gm.mask_ns.extend(gn);
            gm.first_ns.push(gf);
            lg.mask_ns.extend(ln);
            lg.first_ns.push(lf);
        }
    }
    if let Some(p) = &a.csv {
        if let Err(e) = std::fs::write(p, &csv) {
            eprintln!("cannot write {}: {e}", p.display());
        }
    }
    println!(
        "\nbench-compare on {} ({} files of {}, every {}th), {:.0} s",
        vocab.name(),
        files.len(),
        a.dir.display(),
        a.every,
        t_all.elapsed().as_secs_f64()
    );
    println!("schemas compiled: grammask {}, llguidance {}, both {}", gm.compiled, lg.compiled, both);
    println!(
        "instances judged right (compiled schemas only): grammask {}, llguidance {}",
        gm.right, lg.right
    );
    println!("\nOn the {both} schemas both compile ({} vs {} masks):\n", gm.mask_ns.len(), lg.mask_ns.len());
    println!("| metric | grammask | llguidance | ratio |");
    println!("|---|---|---|---|");
    let row = |name: &str, g: f64, l: f64| println!("| {name} | {g:.1} | {l:.1} | {:.2}× |", g / l);
    let (gmv, lmv) = (mean(&gm.mask_ns) / 1e3, mean(&lg.mask_ns) / 1e3);
    row("mask µs mean", gmv, lmv);
    for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)] {
        row(&format!("mask µs {name}"), pct(&mut gm.mask_ns, p) / 1e3, pct(&mut lg.mask_ns, p) / 1e3);
    }
    for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        row(&format!("compile→first mask ms {name}"), pct(&mut gm.first_ns, p) / 1e6, pct(&mut lg.first_ns, p) / 1e6);
    }
}

/// Compile, first mask, then every instance. `None` when it does not compile.
fn run_grammask(
    compiler: &Compiler,
    schema: &Value,
    vocab: &Arc<Vocabulary>,
    tests: &[(Vec<u32>, bool)],
) -> Option<(Vec<u64>, u64, usize)> {
    let t0 = Instant::now();
    let g = compiler.compile(schema, vocab.clone()).ok()?;
    let mut mask = vec![0u32; vocab.mask_words()];
    let mut first = g.matcher();
    first.fill_next_token_bitmask(&mut mask).ok()?;
    let first_ns = t0.elapsed().as_nanos() as u64;
    let mut ns = Vec::new();
    let mut right = 0;
    for (toks, valid) in tests {
        let mut m = g.matcher();
        let mut ok = true;
        for &t in toks {
            let t1 = Instant::now();
            let r = m.fill_next_token_bitmask(&mut mask);
            ns.push(t1.elapsed().as_nanos() as u64);
            if r.is_err() || mask[t as usize / 32] >> (t % 32) & 1 == 0 || m.accept_token(t).is_err() {
                ok = false;
                break;
            }
        }
        let accepted = ok && m.can_terminate();
        right += usize::from(accepted == *valid);
    }
    Some((ns, first_ns, right))
}

fn run_llguidance(factory: &ParserFactory, schema: &Value, tests: &[(Vec<u32>, bool)]) -> Option<(Vec<u64>, u64, usize)> {
    let t0 = Instant::now();
    let parser = factory.create_parser(TopLevelGrammar::from_json_schema(schema.clone())).ok()?;
    let mut proto = llguidance::Matcher::new(Ok(parser));
    proto.compute_mask().ok()?;
    let first_ns = t0.elapsed().as_nanos() as u64;
    if proto.is_error() {
        return None;
    }
    let mut ns = Vec::new();
    let mut right = 0;
    for (toks, valid) in tests {
        // A copy of the matcher at the start (the first mask consumed nothing).
        let mut m = proto.deep_clone();
        let mut ok = true;
        for &t in toks {
            let t1 = Instant::now();
            let r = m.compute_mask();
            ns.push(t1.elapsed().as_nanos() as u64);
            match r {
                Ok(mask) if mask.is_allowed(t) => {
                    if m.consume_token(t).is_err() {
                        ok = false;
                        break;
                    }
                }
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        let accepted = ok && m.is_accepting().unwrap_or(false);
        right += usize::from(accepted == *valid);
    }
    Some((ns, first_ns, right))
}
