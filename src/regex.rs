//! The regex front-end: the whole output must match an ECMA-262 pattern
//! (what vLLM's `guided_regex` and SGLang's `regex` requests send), as if it
//! were anchored at both ends. The pattern is translated like a JSON Schema
//! `pattern` (the reading every validator agrees on, see
//! [`crate::automata::strings::Reading`]), built into one byte DFA over the raw
//! output, trimmed to the states that can still reach a match, and becomes
//! the grammar's only machine.

use crate::automata::strings::{self, Reading, TableDfa};
use crate::config::Config;
use crate::error::{CompileError, CompileErrorKind};
use crate::grammar::{Grammar, GrammarBuilder};
use std::sync::Arc;

/// Compiles `pattern` into a grammar whose outputs are its full matches.
pub(crate) fn compile(pattern: &str, cfg: &Config) -> Result<Grammar, CompileError> {
    let bad = |m: String| {
        CompileError::new(CompileErrorKind::InvalidSchema, "", format!("regex {pattern:?}: {m}")).with_keyword("regex")
    };
    let translated = strings::translate_ecma(pattern, Reading::Under).map_err(|e| {
        // Syntax errors are the caller's; the rest are constructs a DFA
        // cannot enforce or that regex dialects read differently.
        let syntax = ["bad ", "class range out of order", "trailing backslash", "unterminated", "unknown escape"];
        if syntax.iter().any(|s| e.starts_with(s)) {
            bad(e)
        } else {
            CompileError::new(CompileErrorKind::Unsupported, "", format!("regex {pattern:?}: {e} is not supported"))
                .with_keyword("regex")
        }
    })?;
    let hir = crate::automata::lexer::parse(&translated).map_err(bad)?;
    let limit = cfg.get_limits().max_terminal_bytes;
    let dfa = crate::automata::lexer::compile_hir(&hir, limit).map_err(|e| {
        CompileError::new(CompileErrorKind::LimitExceeded, "", format!("regex automaton too large: {e}"))
            .with_keyword("regex")
    })?;
    let table = trim(crate::automata::lexer::table_of(&dfa));
    if table.accept.iter().all(|&a| !a) {
        return Err(CompileError::new(
            CompileErrorKind::Unsatisfiable,
            "",
            format!("regex {pattern:?} matches nothing"),
        )
        .with_keyword("regex"));
    }
    let mut gb = GrammarBuilder::default();
    let m = gb.add("regex:".to_string());
    gb.machines[m as usize].table = Some(Arc::new(table));
    gb.build_with_empty_root(m, cfg.get_limits().max_states)
}

/// Keeps the states that can reach an accepting one (state 0, the start,
/// is kept and stays 0), so that every byte the grammar allows leaves a
/// way to finish.
fn trim(t: TableDfa) -> TableDfa {
    let n = t.accept.len();
    let mut preds: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (s, rs) in t.ranges.iter().enumerate() {
        for &(_, _, to) in rs {
            preds[to as usize].push(s as u32);
        }
    }
    let mut live = t.accept.clone();
    let mut stack: Vec<u32> = (0..n as u32).filter(|&s| live[s as usize]).collect();
    while let Some(s) = stack.pop() {
        for &p in &preds[s as usize] {
            if !live[p as usize] {
                live[p as usize] = true;
                stack.push(p);
            }
        }
    }
    let mut new_id = vec![u32::MAX; n];
    let mut next = 0;
    for s in 0..n {
        if live[s] || s == 0 {
            new_id[s] = next;
            next += 1;
        }
    }
    let mut ranges = Vec::with_capacity(next as usize);
    let mut accept = Vec::with_capacity(next as usize);
    for s in 0..n {
        if new_id[s] == u32::MAX {
            continue;
        }
        ranges.push(
            t.ranges[s]
                .iter()
                .filter(|r| live[r.2 as usize])
                .map(|&(lo, hi, to)| (lo, hi, new_id[to as usize]))
                .collect(),
        );
        accept.push(t.accept[s]);
    }
    TableDfa::new(ranges, accept)
}
