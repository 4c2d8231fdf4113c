//! The regex front-end: the whole output must match an ECMA-262 pattern
//! (what vLLM's `guided_regex` and SGLang's `regex` requests send), as if it
//! were anchored at both ends. The pattern is translated like a JSON Schema
//! `pattern` (the reading every validator agrees on, see
//! [`crate::automata::strings::Reading`]), built into one byte DFA over the raw
//! output, trimmed to the states that can still reach a match, and becomes
//! the grammar's only machine.

use crate::automata::strings::{self, Reading};
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
    let table = crate::automata::trim(crate::automata::lexer::table_of(&dfa));
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
