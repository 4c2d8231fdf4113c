//! Grammar mode: GBNF and Lark grammars and regexes, grammask vs llguidance.
//!
//! Subjects: llama.cpp's GBNF grammars (llguidance gets them in Lark form,
//! see [`crate::gbnf_lark`]), the Lark grammars (the same text to both), and
//! the distinct string `pattern`s of the MaskBench files as whole-output
//! regexes (a leading `^` and trailing `$` dropped for both).
//!
//! Token sequences are random walks through each engine's *own* masks
//! (`--walks` per engine per subject, at most `--walk-tokens` tokens, a stop
//! token taken with growing probability), so neither engine is measured
//! only on the paths the other prefers. Every sequence is then replayed on
//! both engines from a fresh matcher, timing each mask; a token an engine
//! refuses on the other's walk ends that replay for it and is counted (a
//! difference in what the two read the grammar to mean, or a bug on one
//! side: the counts say where to look).

use crate::{llg_env, mean, pct};
use grammask::{Compiler, Rng, Vocabulary};
use llguidance::api::TopLevelGrammar;
use llguidance::ParserFactory;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub struct Opts {
    pub shared: String,
    pub walks: usize,
    pub walk_tokens: usize,
    pub regexes: usize,
}

struct Subject {
    kind: &'static str,
    name: String,
    /// What grammask compiles, in its own front-end.
    ours: Source,
    /// What llguidance compiles.
    theirs: TopLevelGrammar,
}

enum Source {
    Gbnf(String),
    Lark(String),
    Regex(String),
}

#[derive(Default)]
struct Side {
    mask_ns: Vec<u64>,
    first_ns: Vec<u64>,
    /// Tokens refused on the other engine's walks.
    refused: usize,
    /// Walks that reached a stop token.
    finished: usize,
}

fn subjects(o: &Opts) -> Vec<Subject> {
    let mut out = Vec::new();
    let dir = |d: &str, ext: &str| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(Path::new(&o.shared).join(d))
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == ext)).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    for p in dir("grammars/gbnf", "gbnf") {
        let src = std::fs::read_to_string(&p).unwrap_or_default();
        match crate::gbnf_lark::translate(&src) {
            Ok(lark) => out.push(Subject {
                kind: "gbnf",
                name: p.file_name().unwrap_or_default().to_string_lossy().into(),
                ours: Source::Gbnf(src),
                theirs: TopLevelGrammar::from_lark(lark),
            }),
            Err(e) => eprintln!("{}: not translated to Lark: {e}", p.display()),
        }
    }
    for p in dir("grammars/lark", "lark") {
        let src = std::fs::read_to_string(&p).unwrap_or_default();
        out.push(Subject {
            kind: "lark",
            name: p.file_name().unwrap_or_default().to_string_lossy().into(),
            theirs: TopLevelGrammar::from_lark(src.clone()),
            ours: Source::Lark(src),
        });
    }
    // Distinct patterns of the MaskBench files, in file-name order.
    let mut seen = std::collections::BTreeSet::new();
    let mut patterns = Vec::new();
    for p in dir("maskbench/data", "json") {
        if patterns.len() >= o.regexes {
            break;
        }
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let mut found = Vec::new();
        collect_patterns(&doc["schema"], &mut found);
        for re in found {
            let re = re.strip_prefix('^').unwrap_or(&re);
            let re = if re.ends_with('$') && !re.ends_with("\\$") { &re[..re.len() - 1] } else { re };
            if patterns.len() < o.regexes && !re.is_empty() && seen.insert(re.to_string()) {
                patterns.push(re.to_string());
            }
        }
    }
    for re in patterns {
        out.push(Subject {
            kind: "regex",
            name: re.chars().take(40).collect(),
            theirs: TopLevelGrammar::from_regex(&ecma_classes(&re)),
            ours: Source::Regex(re),
        });
    }
    out
}

/// `\d` and `\w` spelled as the ASCII classes ECMA-262 means (Rust's
/// regex syntax, which llguidance reads, means Unicode digits and word
/// characters).
fn ecma_classes(re: &str) -> String {
    let mut out = String::new();
    let mut it = re.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('d') => out += "[0-9]",
            Some('D') => out += "[^0-9]",
            Some('w') => out += "[0-9A-Za-z_]",
            Some('W') => out += "[^0-9A-Za-z_]",
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn collect_patterns(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(p)) = m.get("pattern") {
                out.push(p.clone());
            }
            m.values().for_each(|x| collect_patterns(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_patterns(x, out)),
        _ => {}
    }
}

pub fn run(o: &Opts, vocab: &Arc<Vocabulary>) {
    let env = llg_env(vocab);
    let mut factory = ParserFactory::new(
        &env,
        llguidance::toktrie::InferenceCapabilities::default(),
        &llguidance::earley::SlicedBiasComputer::general_slices(),
    )
    .expect("llguidance factory");
    factory.quiet();
    let compiler = Compiler::new();
    let subjects = subjects(o);
    eprintln!("{} subjects (GBNF, Lark, regex), vocabulary {} ({} ids)", subjects.len(), vocab.name(), vocab.size());
    let stops: Vec<u32> = vocab.stop_tokens().to_vec();
    let eos = stops.first().copied().unwrap_or(0);
    let mut rows: Vec<(&str, Side, Side, usize)> = ["gbnf", "lark", "regex"].iter().map(|k| (*k, Side::default(), Side::default(), 0)).collect();
    let mut not_ours = Vec::new();
    // Per subject: grammask's slowest mask and compile→first mask.
    let mut slow: Vec<(u64, u64, String)> = Vec::new();
    let mut not_theirs = Vec::new();
    let t_all = Instant::now();
    for (si, s) in subjects.iter().enumerate() {
        // Compile → first mask, each engine.
        let t0 = Instant::now();
        let g = match &s.ours {
            Source::Gbnf(t) => compiler.compile_gbnf(t, vocab.clone()),
            Source::Lark(t) => compiler.compile_lark(t, vocab.clone()),
            Source::Regex(t) => compiler.compile_regex(t, vocab.clone()),
        };
        let mut mask = vec![0u32; vocab.mask_words()];
        let g = g.ok().filter(|g| g.matcher().fill_next_token_bitmask(&mut mask).is_ok());
        let g_first = t0.elapsed().as_nanos() as u64;
        let t0 = Instant::now();
        let proto = factory.create_parser(s.theirs.clone()).ok().map(|p| llguidance::Matcher::new(Ok(p)));
        let proto = proto.and_then(|mut m| (m.compute_mask().is_ok() && !m.is_error()).then_some(m));
        let l_first = t0.elapsed().as_nanos() as u64;
        if g.is_none() {
            not_ours.push(format!("{} {}", s.kind, s.name));
        }
        if proto.is_none() {
            not_theirs.push(format!("{} {}", s.kind, s.name));
        }
        let (Some(g), Some(proto)) = (g, proto) else { continue };
        let row = rows.iter_mut().find(|r| r.0 == s.kind).expect("kind");
        row.3 += 1;
        row.1.first_ns.push(g_first);
        row.2.first_ns.push(l_first);
        // Walks through each engine's own masks.
        let mut rng = Rng::new(si as u64 + 1);
        let mut seqs: Vec<(bool, Vec<u32>)> = Vec::new();
        for _ in 0..o.walks {
            let mut m = g.matcher();
            if let Ok(w) = grammask::random_walk(&mut m, &mut rng, o.walk_tokens) {
                row.1.finished += usize::from(w.terminated);
                seqs.push((true, w.tokens));
            }
        }
        for _ in 0..o.walks {
            let mut m = proto.deep_clone();
            let mut toks = Vec::new();
            for step in 0..o.walk_tokens {
                let Ok(v) = m.compute_mask() else { break };
                let allowed = v.to_list();
                if allowed.is_empty() {
                    break;
                }
                let pressure = (step as f64 / (o.walk_tokens as f64 * 0.5)).min(0.95);
                let t = if v.is_allowed(eos) && rng.chance(0.3 + pressure) { eos } else { allowed[rng.below(allowed.len())] };
                if m.consume_token(t).is_err() {
                    break;
                }
                toks.push(t);
                if m.is_stopped() {
                    row.2.finished += 1;
                    break;
                }
            }
            seqs.push((false, toks));
        }
        // Every sequence on both engines, timed.
        let before = row.1.mask_ns.len();
        for (ours, toks) in &seqs {
            // grammask.
            let mut m = g.matcher();
            for &t in toks {
                let t1 = Instant::now();
                let r = m.fill_next_token_bitmask(&mut mask);
                row.1.mask_ns.push(t1.elapsed().as_nanos() as u64);
                let ok = r.is_ok() && mask[t as usize / 32] >> (t % 32) & 1 == 1;
                if !ok || m.accept_token(t).is_err() {
                    if !ours {
                        row.1.refused += 1;
                        eprintln!(
                            "grammask refuses {:?} after {:?} ({} {})",
                            String::from_utf8_lossy(vocab.token_bytes(t)),
                            String::from_utf8_lossy(m.output()),
                            s.kind,
                            s.name
                        );
                    }
                    break;
                }
                if m.is_terminated() {
                    break;
                }
            }
            // llguidance.
            let mut m = proto.deep_clone();
            for &t in toks {
                let t1 = Instant::now();
                let r = m.compute_mask();
                row.2.mask_ns.push(t1.elapsed().as_nanos() as u64);
                let ok = matches!(&r, Ok(v) if v.is_allowed(t) || (stops.contains(&t) && v.is_allowed(eos)));
                let t = if stops.contains(&t) { eos } else { t };
                if !ok || m.consume_token(t).is_err() {
                    if *ours {
                        row.2.refused += 1;
                        eprintln!(
                            "llguidance refuses {:?} after {} tokens ({} {})",
                            String::from_utf8_lossy(vocab.token_bytes(t)),
                            toks.len(),
                            s.kind,
                            s.name
                        );
                    }
                    break;
                }
                if m.is_stopped() {
                    break;
                }
            }
        }
        let worst = row.1.mask_ns[before..].iter().copied().max().unwrap_or(0);
        slow.push((worst, g_first, format!("{} {}", s.kind, s.name)));
    }
    slow.sort_by(|a, b| b.0.cmp(&a.0));
    let top: Vec<String> =
        slow.iter().take(5).map(|(m, c, n)| format!("{n} (mask {:.0} µs, first {:.1} ms)", *m as f64 / 1e3, *c as f64 / 1e6)).collect();
    eprintln!("grammask's slowest masks: {}", top.join("; "));
    println!(
        "\nbench-compare grammars on {} ({} subjects, {} walks per engine each, ≤ {} tokens), {:.0} s",
        vocab.name(),
        subjects.len(),
        o.walks,
        o.walk_tokens,
        t_all.elapsed().as_secs_f64()
    );
    if !not_ours.is_empty() {
        println!("not compiled by grammask ({}): {}", not_ours.len(), not_ours.join("; "));
    }
    if !not_theirs.is_empty() {
        println!("not compiled by llguidance ({}): {}", not_theirs.len(), not_theirs.join("; "));
    }
    println!("\n| kind | both compile | engine | walks finished | refused on the other's walks | mask µs mean | p50 | p99 | p99.9 | max | compile→first mask ms p50 | max |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (kind, gs, ls, n) in rows.iter_mut() {
        if *n == 0 {
            continue;
        }
        for (name, s) in [("grammask", &mut *gs), ("llguidance", &mut *ls)] {
            let m = mean(&s.mask_ns) / 1e3;
            let q = |v: &mut Vec<u64>, p: f64| pct(v, p) / 1e3;
            println!(
                "| {kind} | {n} | {name} | {} | {} | {m:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
                s.finished,
                s.refused,
                q(&mut s.mask_ns, 0.5),
                q(&mut s.mask_ns, 0.99),
                q(&mut s.mask_ns, 0.999),
                q(&mut s.mask_ns, 1.0),
                pct(&mut s.first_ns, 0.5) / 1e6,
                pct(&mut s.first_ns, 1.0) / 1e6,
            );
        }
        let ratio_mean = mean(&gs.mask_ns) / mean(&ls.mask_ns);
        let mut r = |p: f64| pct(&mut gs.mask_ns, p) / pct(&mut ls.mask_ns, p);
        println!(
            "| {kind} | | ratio | | | {ratio_mean:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
            r(0.5),
            r(0.99),
            r(0.999),
            r(1.0),
            pct(&mut gs.first_ns, 0.5) / pct(&mut ls.first_ns, 0.5),
            pct(&mut gs.first_ns, 1.0) / pct(&mut ls.first_ns, 1.0),
        );
    }
}
