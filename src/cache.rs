//! Process-wide caches of things built from *content*: terminal DFAs and
//! tables, string product automata. The same regexes, formats, number bounds
//! and key sets recur within a schema and across schemas, so each is built
//! once per process. A key must name the whole content of what it builds
//! (regex text, bounds, flags), never a place in a schema. Each cache has a
//! budget (entries, or states) so that a long-running server does not grow
//! it without end; past it, values are built and not kept.

use std::sync::{Mutex, OnceLock};

type Entries<V> = (ahash::AHashMap<(String, usize), V>, usize);

/// A bounded process-wide cache from `(content key, size limit)` to `V`.
pub(crate) struct ContentCache<V> {
    map: OnceLock<Mutex<Entries<V>>>,
    budget: usize,
}

impl<V: Clone> ContentCache<V> {
    /// A cache holding values whose costs add up to at most `budget`.
    pub const fn new(budget: usize) -> ContentCache<V> {
        ContentCache { map: OnceLock::new(), budget }
    }

    /// The value under `key`, built by `build` on a miss and kept when its
    /// `cost` fits the budget.
    pub fn get_or_build(
        &self,
        key: (String, usize),
        cost: impl Fn(&V) -> usize,
        build: impl FnOnce() -> Result<V, String>,
    ) -> Result<V, String> {
        let map = self.map.get_or_init(Default::default);
        if let Some(v) = map.lock().ok().and_then(|m| m.0.get(&key).cloned()) {
            return Ok(v);
        }
        let v = build()?;
        if let Ok(mut m) = map.lock() {
            let c = cost(&v);
            if m.1 + c <= self.budget {
                m.1 += c;
                m.0.insert(key, v.clone());
            }
        }
        Ok(v)
    }
}
