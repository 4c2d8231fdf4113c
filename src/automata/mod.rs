//! Byte automata, the layer between the vocabulary and the grammar IR:
//! regex DFAs for terminals ([`lexer`]), constrained JSON strings and their
//! constraint languages ([`strings`]), equivalent DFA states for their
//! products ([`equiv`]), exact decimal bounds ([`numbers`]), and the table
//! form a DFA takes inside a grammar ([`Layout`]). Nothing here knows of
//! machines, calls or tokens.

pub(crate) mod equiv;
pub(crate) mod lexer;
pub(crate) mod numbers;
pub(crate) mod strings;

/// Marks a missing transition in a transition table (the grammar's, a [`Layout`]'s).
pub(crate) const DEAD: u32 = u32::MAX;

/// Values grouped by key in CSR form: the values of key `k` are
/// `vals[off[k]..off[k + 1]]`, in the order `each` gives them. `each` is
/// called twice (to count, then to fill) with a sink for `(key, value)`;
/// keys are below `n`. Reverse edges for backward searches are built this
/// way, with no allocation per key.
pub(crate) fn group_by_key<T: Copy + Default>(n: usize, each: impl Fn(&mut dyn FnMut(usize, T))) -> (Vec<u32>, Vec<T>) {
    let mut off = vec![0u32; n + 1];
    each(&mut |k, _| off[k + 1] += 1);
    for i in 0..n {
        off[i + 1] += off[i];
    }
    let mut fill = off.clone();
    let mut vals = vec![T::default(); off[n] as usize];
    each(&mut |k, v| {
        vals[fill[k] as usize] = v;
        fill[k] += 1;
    });
    (off, vals)
}

/// The coarsest partition of bytes that respects every `(lo, hi)` range, and
/// how many classes it has.
pub(crate) fn partition(ranges: impl Iterator<Item = (u8, u8)>) -> ([u8; 256], usize) {
    let mut boundary = [false; 257];
    boundary[0] = true;
    for (lo, hi) in ranges {
        boundary[lo as usize] = true;
        boundary[hi as usize + 1] = true;
    }
    let mut classes = [0u8; 256];
    let mut c: i32 = -1;
    for b in 0..256usize {
        if boundary[b] {
            c += 1;
        }
        classes[b] = c as u8;
    }
    (classes, c as usize + 1)
}

/// A table terminal as a machine, computed once per table (tables are
/// shared across schemas): its states that can still accept, numbered from
/// the start in breadth-first order, with transition rows over its own byte
/// classes. Copying it into a grammar is a shift of state ids, where
/// importing the table as an NFA and renumbering it was most of the build of
/// a small schema.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) classes: [u8; 256],
    pub(crate) nclasses: usize,
    pub(crate) accept: Vec<bool>,
    /// `rows[s * nclasses + c]`: local target, or [`DEAD`].
    pub(crate) rows: Vec<u32>,
    /// Its byte classes as ranges (for the grammar's classes).
    pub(crate) ranges: Vec<(u8, u8)>,
}

impl Layout {
    pub(crate) fn of(t: &strings::TableDfa) -> Layout {
        let n = t.accept.len();
        // States that reach an accepting state: a backward search.
        let (off, rev) = group_by_key(n, |f: &mut dyn FnMut(usize, u32)| {
            for (s, rs) in t.ranges.iter().enumerate() {
                for &(_, _, to) in rs {
                    f(to as usize, s as u32);
                }
            }
        });
        let mut live = t.accept.clone();
        let mut stack: Vec<u32> = (0..n as u32).filter(|&s| live[s as usize]).collect();
        while let Some(v) = stack.pop() {
            for &u in &rev[off[v as usize] as usize..off[v as usize + 1] as usize] {
                if !live[u as usize] {
                    live[u as usize] = true;
                    stack.push(u);
                }
            }
        }
        if n == 0 || !live[0] {
            return Layout { classes: [0; 256], nclasses: 1, accept: Vec::new(), rows: Vec::new(), ranges: Vec::new() };
        }
        let (classes, nclasses) = partition(
            t.ranges
                .iter()
                .enumerate()
                .filter(|(s, _)| live[*s])
                .flat_map(|(_, rs)| rs.iter().filter(|r| live[r.2 as usize]).map(|&(lo, hi, _)| (lo, hi))),
        );
        // The grammar's partition needs only the class boundaries: one range
        // per class says the same as every edge's range.
        let mut ranges: Vec<(u8, u8)> = Vec::with_capacity(nclasses);
        for b in 0..=255u8 {
            match ranges.last_mut() {
                Some(last) if classes[last.0 as usize] == classes[b as usize] => last.1 = b,
                _ => ranges.push((b, b)),
            }
        }
        let mut id = vec![DEAD; n];
        let mut order = vec![0u32];
        id[0] = 0;
        let nlive = live.iter().filter(|&&l| l).count();
        let mut rows: Vec<u32> = Vec::with_capacity(nlive * nclasses);
        let mut i = 0;
        while i < order.len() {
            let s = order[i] as usize;
            i += 1;
            let at = rows.len();
            rows.resize(at + nclasses, DEAD);
            for &(lo, hi, to) in &t.ranges[s] {
                if !live[to as usize] {
                    continue;
                }
                if id[to as usize] == DEAD {
                    id[to as usize] = order.len() as u32;
                    order.push(to);
                }
                for c in classes[lo as usize]..=classes[hi as usize] {
                    rows[at + c as usize] = id[to as usize];
                }
            }
        }
        let accept = order.iter().map(|&s| t.accept[s as usize]).collect();
        Layout { classes, nclasses, accept, rows, ranges }
    }

    pub(crate) fn nonempty(&self) -> bool {
        !self.accept.is_empty()
    }

    /// Transition cells it holds (states × its byte classes).
    pub(crate) fn cells(&self) -> usize {
        self.rows.len()
    }
}

/// Keeps the states that can reach an accepting one (state 0, the start,
/// is kept and stays 0), so that every byte the grammar allows leaves a
/// way to finish.
pub(crate) fn trim(t: strings::TableDfa) -> strings::TableDfa {
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
    strings::TableDfa::new(ranges, accept)
}
