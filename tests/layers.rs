//! The crate's layers (see `src/lib.rs` and ARCHITECTURE.md) import only
//! downward: every `crate::…` path in `src/`, outside comments, names a
//! module of the same layer or a lower one. Items re-exported at the crate
//! root (`crate::Vocabulary`) count as their defining module's.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

/// Top-level module → layer, bottom up.
const LAYERS: &[(&str, &[&str])] = &[
    ("support", &["budget", "cache", "config", "digest", "error", "slot"]),
    ("vocabulary", &["vocab"]),
    ("automata", &["automata"]),
    ("grammar IR", &["grammar"]),
    ("runtime", &["runtime", "unique", "keys"]),
    ("masks", &["mask"]),
    ("front-ends", &["gbnf", "json_schema", "lark", "regex", "tags"]),
    ("API", &["compiled", "matcher", "sample", "lib"]),
    ("tools", &["conformance", "fuzzing", "net", "bin"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// The source without `//` comments (doc comments included); string
/// literals are kept, and none in `src/` spells a crate path.
fn code_of(text: &str) -> String {
    text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `crate::name` paths in `code`, and the names inside `crate::{…}`.
fn crate_refs(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for name in group[..end].split(',') {
                let name = name.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() {
                    out.push(name.to_string());
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn imports_point_down_the_layers() {
    let src = common::repo().join("src");
    // Root re-exports: item name → defining module.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut reexport: BTreeMap<String, String> = BTreeMap::new();
    for line in code_of(&lib).lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else { continue };
        let (module, items) = rest.split_once("::").unwrap();
        for item in items.trim_end_matches(';').trim_matches(|c| c == '{' || c == '}').split(',') {
            reexport.insert(item.trim().to_string(), module.to_string());
        }
    }
    let mut all = Vec::new();
    files(&src, &mut all);
    assert!(all.len() >= 30, "found only {} source files", all.len());
    let mut violations = Vec::new();
    let mut edges = 0;
    for f in &all {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        let from = layer_of(&top).unwrap_or_else(|| panic!("{}: module `{top}` has no layer in LAYERS", rel.display()));
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        for name in crate_refs(&code) {
            let module = reexport.get(&name).cloned().unwrap_or(name.clone());
            let Some(to) = layer_of(&module) else {
                panic!("{}: `crate::{name}` names no known module or re-export", rel.display());
            };
            edges += 1;
            if to > from {
                violations.push(format!(
                    "{} ({}) uses crate::{name} ({})",
                    rel.display(),
                    LAYERS[from].0,
                    LAYERS[to].0
                ));
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert!(edges > 100, "only {edges} crate paths found: is the scan broken?");
    assert!(violations.is_empty(), "imports that point up the layers:\n{}", violations.join("\n"));
}
