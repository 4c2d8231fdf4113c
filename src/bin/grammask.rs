//! The `grammask` command line: `demo` (no files needed), `compile`,
//! `sample`, `bench`, the conformance runners (`maskbench`, `test-suite`)
//! and the soundness net (`walks`). The independent validator (`jsonschema`) judges
//! every sampled completion; the engine itself never calls it.

use clap::{Parser, Subcommand};
use grammask::{random_walk, Compiler, Config, Rng, Tiktoken, Vocabulary, Whitespace};
use std::sync::Arc;
use std::time::Instant;

const IMPLEMENTATION_SCHEMA: &str = include_str!("../../corpora/schemas/implementation.json");

#[derive(Parser)]
#[command(name = "grammask", version, about = "JSON Schema -> token masks for constrained decoding")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct VocabArgs {
    /// A Hugging Face tokenizer.json; default: cl100k from tiktoken-rs.
    #[arg(long)]
    tokenizer: Option<String>,
    /// Built-in tiktoken vocabulary when no --tokenizer: r50k, cl100k, o200k.
    #[arg(long, default_value = "cl100k")]
    tiktoken: String,
}

#[derive(clap::Args, Clone)]
struct CompileArgs {
    /// Lenient mode: drop unsupported keywords and report them.
    #[arg(long)]
    lenient: bool,
    /// Allow up to N whitespace bytes between JSON tokens (default compact).
    #[arg(long)]
    whitespace: Option<u8>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compile the built-in `implementation` schema on cl100k, sample
    /// completions with a seeded random model, validate each, report mask
    /// latency.
    Demo {
        /// How many completions.
        #[arg(long, default_value_t = 5)]
        samples: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Compile a schema file and report states, time, relaxations.
    Compile {
        /// The schema file (or, with `--regex`, the pattern; with `--gbnf`
        /// or `--lark`, the grammar file; with `--structural-tag`, the
        /// request file).
        schema: String,
        /// Compile SCHEMA as a regex the whole output must match, not a
        /// JSON Schema file.
        #[arg(long, conflicts_with = "gbnf")]
        regex: bool,
        /// Read SCHEMA as a GBNF grammar file (llama.cpp's format).
        #[arg(long, conflicts_with_all = ["structural_tag", "lark"])]
        gbnf: bool,
        /// Read SCHEMA as a Lark grammar file (llguidance's dialect).
        #[arg(long, conflicts_with_all = ["structural_tag", "regex"])]
        lark: bool,
        /// Read SCHEMA as a structural tag request (tool calls; XGrammar's
        /// `structural_tag` JSON).
        #[arg(long)]
        structural_tag: bool,
        /// Print this many outputs of random walks through the masks.
        #[arg(long, default_value_t = 0)]
        show: usize,
        #[command(flatten)]
        vocab: VocabArgs,
        #[command(flatten)]
        opts: CompileArgs,
    },
    /// Sample completions for a schema file and validate them.
    Sample {
        schema: String,
        #[arg(long, default_value_t = 5)]
        samples: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 400)]
        max_tokens: usize,
        #[command(flatten)]
        vocab: VocabArgs,
        #[command(flatten)]
        opts: CompileArgs,
    },
    /// Run MaskBench (JSONSchemaBench schemas with valid/invalid instances)
    /// and print its table.
    Maskbench {
        /// The `maskbench/data` folder.
        dir: String,
        /// Run a deterministic sample of this many files (default: all).
        #[arg(long)]
        sample: Option<usize>,
        /// Print each wrong verdict.
        #[arg(long)]
        failures: bool,
        #[command(flatten)]
        vocab: VocabArgs,
    },
    /// Run the JSON-Schema-Test-Suite (one draft folder) and print the table.
    TestSuite {
        /// e.g. `../shared/corpora/json-schema-test-suite/draft2020-12`.
        dir: String,
        /// Print each wrong verdict and the skipped groups.
        #[arg(long)]
        failures: bool,
        #[command(flatten)]
        vocab: VocabArgs,
    },
    /// The soundness net: random walks through the masks of every schema
    /// in the given folders or files (MaskBench data, test-suite drafts,
    /// schema files), strict and lenient, compact and flexible whitespace;
    /// each finished output and each accepted mutant of a valid instance is
    /// judged by jsonschema and boon. Prints counts, mask percentiles, the
    /// slowest masks and every failure; exits 1 on a failure.
    Walks {
        /// Folders or files; default: the MaskBench data and both test-suite
        /// drafts under ../shared/corpora (GRAMMASK_SHARED_CORPORA).
        paths: Vec<String>,
        /// Finished walks wanted per schema and configuration.
        #[arg(long, default_value_t = 20)]
        walks: usize,
        /// Mutants per valid instance (up to 4 instances a schema).
        #[arg(long, default_value_t = 16)]
        mutants: usize,
        /// A deterministic sample of this many files per folder.
        #[arg(long)]
        sample: Option<usize>,
        /// Strict configurations only.
        #[arg(long)]
        strict_only: bool,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[command(flatten)]
        vocab: VocabArgs,
    },
    /// Mask latency over many random walks for a schema file.
    Bench {
        schema: Option<String>,
        #[arg(long, default_value_t = 50)]
        walks: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        vocab: VocabArgs,
        #[command(flatten)]
        opts: CompileArgs,
    },
}

fn load_vocab(v: &VocabArgs) -> Result<Arc<Vocabulary>, String> {
    let t = Instant::now();
    let vocab = match &v.tokenizer {
        Some(p) => Vocabulary::from_tokenizer_json(p).map_err(|e| e.to_string())?,
        None => {
            let which = match v.tiktoken.as_str() {
                "r50k" => Tiktoken::R50k,
                "cl100k" => Tiktoken::Cl100k,
                "o200k" => Tiktoken::O200k,
                other => return Err(format!("unknown --tiktoken {other:?} (r50k, cl100k, o200k)")),
            };
            Vocabulary::tiktoken(which).map_err(|e| e.to_string())?
        }
    };
    eprintln!(
        "vocabulary {}: {} ids, {} trie nodes, {:.1} MB, loaded in {:.0} ms",
        vocab.name(),
        vocab.size(),
        vocab.trie().node_count(),
        vocab.memory_bytes() as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64() * 1e3
    );
    Ok(Arc::new(vocab))
}

fn config(o: &CompileArgs) -> Config {
    let mut c = Config::new().strict(!o.lenient);
    if let Some(n) = o.whitespace {
        c = c.whitespace(Whitespace::Flexible { max_run: n });
    }
    c
}

/// Reads a schema file. A MaskBench file (an object with `schema` beside
/// `tests`, neither a JSON Schema keyword) stands for its `schema`, so that
/// the files `maskbench --failures` names can be compiled as they are.
fn read_schema(path: &str) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{path} is not JSON: {e}"))?;
    if let Some(o) = v.as_object_mut() {
        if o.contains_key("tests") {
            if let Some(schema) = o.remove("schema") {
                eprintln!("{path}: a MaskBench file; using its `schema`");
                return Ok(schema);
            }
        }
    }
    Ok(v)
}

fn percentiles(mut ns: Vec<u64>) -> String {
    if ns.is_empty() {
        return "no masks".into();
    }
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() as f64 * p) as usize).min(ns.len() - 1)] as f64 / 1e3;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1e3;
    format!(
        "{} masks: mean {:.1} µs, p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        ns.len(),
        mean,
        q(0.5),
        q(0.9),
        q(0.99),
        *ns.last().unwrap() as f64 / 1e3
    )
}

/// Samples `n` completions, validates each with the independent validator,
/// prints them, and returns (valid, total, mask nanos).
fn sample_and_validate(
    schema: &serde_json::Value,
    grammar: &Arc<grammask::CompiledGrammar>,
    n: usize,
    seed: u64,
    max_tokens: usize,
    print: bool,
) -> Result<(usize, usize, Vec<u64>), String> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| format!("validator rejects the schema: {e}"))?;
    let mut rng = Rng::new(seed);
    let mut nanos = Vec::new();
    let mut valid = 0;
    let bar = indicatif::ProgressBar::new(n as u64);
    if print || n < 20 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for i in 0..n {
        let mut m = grammar.matcher();
        let s = random_walk(&mut m, &mut rng, max_tokens).map_err(|e| format!("walk {i}: {e}"))?;
        nanos.extend(&s.mask_nanos);
        let text = String::from_utf8_lossy(m.output()).into_owned();
        let verdict = if !s.terminated {
            "did not finish within the token budget".to_string()
        } else {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Err(e) => format!("INVALID JSON: {e}"),
                Ok(v) => match validator.validate(&v) {
                    Ok(()) => {
                        valid += 1;
                        "valid".into()
                    }
                    Err(e) => format!("INVALID: {e}"),
                },
            }
        };
        if print {
            println!("--- completion {} ({} tokens): {}", i + 1, s.tokens.len(), verdict);
            println!("{text}");
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((valid, n, nanos))
}

fn encoder(v: &VocabArgs) -> Result<grammask::conformance::Encoder, String> {
    use grammask::conformance::Encoder;
    Ok(match &v.tokenizer {
        Some(p) => Encoder::from_tokenizer_json(std::path::Path::new(p))?,
        None => Encoder::Tiktoken(match v.tiktoken.as_str() {
            "r50k" => tiktoken_rs::r50k_base_singleton(),
            "o200k" => tiktoken_rs::o200k_base_singleton(),
            _ => tiktoken_rs::cl100k_base_singleton(),
        }),
    })
}

fn run_parallel<T: Send>(items: &[std::path::PathBuf], f: impl Fn(&std::path::Path) -> T + Sync) -> Vec<T> {
    use rayon::prelude::*;
    let bar = indicatif::ProgressBar::new(items.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} eta {eta}").expect("template"),
    );
    let out: Vec<T> = items
        .par_iter()
        .map(|p| {
            if std::env::var_os("GRAMMASK_TRACE").is_some() {
                eprintln!("start {}", p.display());
            }
            let r = f(p);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    out
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Demo { samples, seed } => {
            let schema: serde_json::Value = serde_json::from_str(IMPLEMENTATION_SCHEMA).expect("built-in schema");
            let vocab = load_vocab(&VocabArgs { tokenizer: None, tiktoken: "cl100k".into() })?;
            let t = Instant::now();
            let grammar = Compiler::new().compile(&schema, vocab.clone()).map_err(|e| e.to_string())?;
            println!(
                "compiled corpora/schemas/implementation.json: {} states in {:.2} ms",
                grammar.num_states(),
                t.elapsed().as_secs_f64() * 1e3
            );
            // The incident: the inner object alone must be refused.
            let mut m = grammar.matcher();
            println!("forced start: {}", String::from_utf8_lossy(&m.forced_bytes(64)));
            let bpe = tiktoken_rs::cl100k_base_singleton();
            let wrong = r#"{"body_statements":["x"],"variables":[],"imports":[]}"#;
            let mut rejected_at = None;
            for (i, t) in bpe.encode_ordinary(wrong).into_iter().enumerate() {
                if m.accept_token(t).is_err() {
                    rejected_at = Some((i, String::from_utf8_lossy(vocab.token_bytes(t)).into_owned()));
                    break;
                }
            }
            match rejected_at {
                Some((i, tok)) => {
                    println!("inner object without the wrapper: rejected at token {i} ({tok:?})")
                }
                None => return Err("the inner object alone was accepted: soundness bug".into()),
            }
            let (valid, n, nanos) = sample_and_validate(&schema, &grammar, samples, seed, 600, true)?;
            println!();
            println!("| completions | valid (jsonschema) | masks | mask latency |");
            println!("|---|---|---|---|");
            println!("| {n} | {valid} | {} | {} |", nanos.len(), percentiles(nanos.clone()));
            if valid != n {
                return Err(format!("{} of {n} completions did not validate", n - valid));
            }
            Ok(())
        }
        Cmd::Compile { schema, regex, gbnf, lark, structural_tag, show, vocab, opts } => {
            let vocab = load_vocab(&vocab)?;
            let compiler = Compiler::with_config(config(&opts));
            let t = Instant::now();
            let g = if regex {
                compiler.compile_regex(&schema, vocab)
            } else if gbnf {
                let text = std::fs::read_to_string(&schema).map_err(|e| format!("{schema}: {e}"))?;
                compiler.compile_gbnf(&text, vocab)
            } else if lark {
                let text = std::fs::read_to_string(&schema).map_err(|e| format!("{schema}: {e}"))?;
                compiler.compile_lark(&text, vocab)
            } else if structural_tag {
                compiler.compile_structural_tag(&read_schema(&schema)?, vocab)
            } else {
                compiler.compile(&read_schema(&schema)?, vocab)
            }
            .map_err(|e| e.to_string())?;
            println!(
                "{schema}: {} states, {} KiB, compiled in {:.2} ms",
                g.num_states(),
                g.memory_bytes() / 1024,
                t.elapsed().as_secs_f64() * 1e3
            );
            for r in g.relaxations() {
                println!(
                    "relaxed: keyword `{}` at {} is NOT enforced",
                    r.keyword,
                    if r.pointer.is_empty() { "#" } else { &r.pointer }
                );
            }
            let mut rng = grammask::Rng::new(7);
            for _ in 0..show {
                let mut m = g.matcher();
                let s = grammask::random_walk(&mut m, &mut rng, 200).map_err(|e| e.to_string())?;
                let text = String::from_utf8_lossy(m.output());
                println!("{} {text:?}", if s.terminated { "finished:  " } else { "unfinished:" });
            }
            Ok(())
        }
        Cmd::Sample { schema, samples, seed, max_tokens, vocab, opts } => {
            let s = read_schema(&schema)?;
            let vocab = load_vocab(&vocab)?;
            let g = Compiler::with_config(config(&opts)).compile(&s, vocab).map_err(|e| e.to_string())?;
            for r in g.relaxations() {
                println!("relaxed: keyword `{}` at {} is NOT enforced", r.keyword, r.pointer);
            }
            let (valid, n, nanos) = sample_and_validate(&s, &g, samples, seed, max_tokens, true)?;
            println!("{valid}/{n} valid; {}", percentiles(nanos));
            Ok(())
        }
        Cmd::Maskbench { dir, sample, failures, vocab } => {
            use grammask::conformance::{maskbench_config, maskbench_file, Summary};
            let files = grammask::conformance::sample_files(
                grammask::conformance::json_files(std::path::Path::new(&dir), false)?,
                sample,
            );
            let v = load_vocab(&vocab)?;
            let enc = encoder(&vocab)?;
            let cfg = maskbench_config();
            eprintln!("running {} MaskBench files", files.len());
            let t = Instant::now();
            let outcomes = run_parallel(&files, |p| maskbench_file(p, &v, &enc, &cfg));
            if failures {
                for o in &outcomes {
                    for f in &o.failures {
                        println!("{}: {}", o.name, f.chars().take(300).collect::<String>());
                    }
                }
            }
            let s = Summary::of(&outcomes);
            let mut slow: Vec<(&str, f64)> = outcomes
                .iter()
                .map(|o| (o.name.as_str(), o.compile_ms + o.mask_nanos.iter().sum::<u64>() as f64 / 1e6))
                .collect();
            slow.sort_by(|a, b| b.1.total_cmp(&a.1));
            if failures {
                // Where the mask tail comes from: schemas by masks over 1 ms.
                let mut tail: Vec<(&str, usize, u64)> = outcomes
                    .iter()
                    .map(|o| {
                        let n = o.mask_nanos.iter().filter(|&&x| x > 1_000_000).count();
                        (o.name.as_str(), n, o.mask_nanos.iter().copied().max().unwrap_or(0))
                    })
                    .filter(|t| t.1 > 0)
                    .collect();
                tail.sort_by_key(|t| std::cmp::Reverse(t.1));
                let tail: Vec<String> = tail
                    .iter()
                    .take(15)
                    .map(|(n, k, mx)| format!("{n} {k} (max {:.1} ms)", *mx as f64 / 1e6))
                    .collect();
                println!("most masks over 1 ms: {}", tail.join(", "));
                let by = |f: &dyn Fn(&grammask::conformance::Outcome) -> f64, what: &str, unit: &str| {
                    let mut v: Vec<(&str, f64)> = outcomes.iter().map(|o| (o.name.as_str(), f(o))).collect();
                    v.sort_by(|a, b| b.1.total_cmp(&a.1));
                    let v: Vec<String> = v.iter().take(10).map(|(n, x)| format!("{n} {x:.0} {unit}")).collect();
                    println!("largest {what}: {}", v.join(", "));
                };
                by(&|o| o.compile_ms, "compile times", "ms");
                by(&|o| o.memory_bytes as f64 / (1 << 20) as f64, "compiled grammars", "MiB");
            }
            let slow: Vec<String> = slow.iter().take(5).map(|(n, ms)| format!("{n} {ms:.0} ms")).collect();
            println!("slowest schemas (compile + masks): {}", slow.join(", "));
            println!("MaskBench on {} ({}), {:.0} s", v.name(), dir, t.elapsed().as_secs_f64());
            print!("{}", s.table());
            if s.invalidation_errors > 0 {
                return Err(format!("{} invalid instances accepted", s.invalidation_errors));
            }
            Ok(())
        }
        Cmd::TestSuite { dir, failures, vocab } => {
            use grammask::conformance::{test_suite_file, Summary, SUITE_EXCLUDED};
            let mut files = grammask::conformance::json_files(std::path::Path::new(&dir), false)?;
            files.retain(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                match SUITE_EXCLUDED.iter().find(|(n, _)| *n == name) {
                    Some((n, why)) => {
                        println!("left out: {n} ({why})");
                        false
                    }
                    None => true,
                }
            });
            let v = load_vocab(&vocab)?;
            let enc = encoder(&vocab)?;
            let cfg = Config::new();
            let outcomes: Vec<_> =
                run_parallel(&files, |p| test_suite_file(p, &v, &enc, &cfg)).into_iter().flatten().collect();
            if failures {
                for o in &outcomes {
                    match &o.compiled {
                        Err(k) => println!("skipped ({k}): {}", o.name),
                        Ok(()) => {
                            for f in &o.failures {
                                println!("{}: {}", o.name, f.chars().take(300).collect::<String>());
                            }
                        }
                    }
                }
            }
            let s = Summary::of(&outcomes);
            let compiled = s.schemas - s.compile_errors;
            let right = outcomes
                .iter()
                .filter(|o| o.compiled.is_ok())
                .map(|o| o.instances - o.validation_errors - o.invalidation_errors)
                .sum::<usize>();
            println!(
                "JSON-Schema-Test-Suite {dir}: {} groups, {compiled} compiled, {right}/{} instances judged right in compiled groups",
                s.schemas, s.instances
            );
            print!("{}", s.table());
            if s.invalidation_errors > 0 {
                return Err(format!("{} invalid instances accepted", s.invalidation_errors));
            }
            Ok(())
        }
        Cmd::Walks { paths, walks, mutants, sample, strict_only, seed, vocab } => {
            use grammask::net;
            let paths: Vec<std::path::PathBuf> = if paths.is_empty() {
                let root = std::env::var("GRAMMASK_SHARED_CORPORA").unwrap_or_else(|_| "../shared/corpora".into());
                let v = net::corpus_folders(std::path::Path::new(&root));
                if v.is_empty() {
                    return Err(format!("no corpus folders under {root}; name folders or files"));
                }
                v
            } else {
                paths.iter().map(std::path::PathBuf::from).collect()
            };
            let mut subjects = Vec::new();
            for p in &paths {
                subjects.extend(net::subjects(p, sample)?);
            }
            let v = load_vocab(&vocab)?;
            let opts = net::NetOptions { walks, mutants, lenient: !strict_only, seed, ..net::NetOptions::default() };
            let t = Instant::now();
            let bar = indicatif::ProgressBar::new(subjects.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed_precise} eta {eta}")
                    .expect("template"),
            );
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let r = net::run_all(&subjects, &v, &opts, &|n| {
                bar.set_position(n as u64);
                if !tty && n % 1000 == 0 {
                    eprintln!("{n}/{} subjects, {:.0} s", subjects.len(), t.elapsed().as_secs_f64());
                }
            });
            bar.finish_and_clear();
            for f in &r.failures {
                println!("FAIL {f}");
            }
            if !r.short.is_empty() {
                let v: Vec<String> = r.short.iter().take(12).map(|(l, c, n)| format!("{l} [{c}] {n}")).collect();
                println!("short of finished walks (label [configuration] finished): {}", v.join(", "));
            }
            println!("slowest masks:");
            for (ns, label, cfg, prefix) in r.slowest.iter().take(10) {
                let p: String = prefix.chars().rev().take(80).collect::<Vec<_>>().into_iter().rev().collect();
                println!("  {:.2} ms  {label} [{cfg}] after …{p:?}", *ns as f64 / 1e6);
            }
            println!(
                "soundness net on {} over {}, {:.0} s",
                v.name(),
                paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                t.elapsed().as_secs_f64()
            );
            println!("{}", r.summary());
            if !r.failures.is_empty() {
                return Err(format!("{} failures", r.failures.len()));
            }
            Ok(())
        }
        Cmd::Bench { schema, walks, seed, vocab, opts } => {
            let s = match &schema {
                Some(p) => read_schema(p)?,
                None => serde_json::from_str(IMPLEMENTATION_SCHEMA).expect("built-in"),
            };
            let vocab = load_vocab(&vocab)?;
            let t = Instant::now();
            let g = Compiler::with_config(config(&opts)).compile(&s, vocab).map_err(|e| e.to_string())?;
            let compile_ms = t.elapsed().as_secs_f64() * 1e3;
            let (valid, n, nanos) = sample_and_validate(&s, &g, walks, seed, 400, false)?;
            println!("| schema | compile ms | walks valid | grammar KiB | masks |");
            println!("|---|---|---|---|---|");
            println!(
                "| {} | {compile_ms:.2} | {valid}/{n} | {} | {} |",
                schema.as_deref().unwrap_or("implementation (built-in)"),
                g.memory_bytes() / 1024,
                percentiles(nanos)
            );
            Ok(())
        }
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
