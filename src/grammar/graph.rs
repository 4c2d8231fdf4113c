//! Reference graphs between a grammar's rules, for the text front-ends:
//! which rules lie on a cycle of references, and the others ordered so that
//! each comes after every rule it references (to size inlined rules
//! bottom-up).

/// Whether each rule reaches itself through `refs` (rule → rules it names).
pub(crate) fn on_cycle(refs: &[Vec<usize>]) -> Vec<bool> {
    let n = refs.len();
    (0..n)
        .map(|s| {
            let mut seen = vec![false; n];
            let mut stack = refs[s].clone();
            while let Some(x) = stack.pop() {
                if x == s {
                    return true;
                }
                if !std::mem::replace(&mut seen[x], true) {
                    stack.extend(&refs[x]);
                }
            }
            false
        })
        .collect()
}

/// The rules `roots` and those they reach without passing a rule on a
/// cycle, each after the rules it references (post-order).
pub(crate) fn post_order(refs: &[Vec<usize>], cyclic: &[bool], roots: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut order = Vec::new();
    let mut state = vec![0u8; refs.len()];
    for s in roots {
        let mut stack = vec![(s, 0usize)];
        while let Some(&(r, i)) = stack.last() {
            if i == 0 && state[r] != 0 {
                stack.pop();
                continue;
            }
            state[r] = 1;
            if let Some(&q) = refs[r].get(i) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                if !cyclic[q] && state[q] == 0 {
                    stack.push((q, 0));
                }
            } else {
                state[r] = 2;
                order.push(r);
                stack.pop();
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_and_order() {
        // 0 → 1 → 2, 3 ⇄ 4, 2 → 3
        let refs = vec![vec![1], vec![2], vec![3], vec![4], vec![3]];
        let cyclic = on_cycle(&refs);
        assert_eq!(cyclic, vec![false, false, false, true, true]);
        assert_eq!(post_order(&refs, &cyclic, (0..5).filter(|&s| !cyclic[s])), vec![2, 1, 0]);
    }
}
