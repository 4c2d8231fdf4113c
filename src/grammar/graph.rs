//! Reference graphs between a grammar's rules, for the text front-ends:
//! which rules lie on a cycle of references, the others ordered so that
//! each comes after every rule it references (to size inlined rules
//! bottom-up), and a cycle to name (left recursion).

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

/// A cycle through `edges` (node → (node, payload)), if any: its nodes in
/// order, the first repeated at the end, and the payload of the edge that
/// closes it (say, where the call is written).
pub(crate) fn find_cycle<E: Copy>(edges: &[Vec<(usize, E)>]) -> Option<(Vec<usize>, E)> {
    // Iterative DFS with colours; the path gives the cycle.
    let mut colour = vec![0u8; edges.len()];
    for s in 0..edges.len() {
        if colour[s] != 0 {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(s, 0)];
        colour[s] = 1;
        while let Some(&(r, i)) = path.last() {
            if let Some(&(next, at)) = edges[r].get(i) {
                if let Some(top) = path.last_mut() {
                    top.1 += 1;
                }
                if colour[next] == 1 {
                    let from = path.iter().position(|&(x, _)| x == next).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[from..].iter().map(|&(x, _)| x).collect();
                    cycle.push(next);
                    return Some((cycle, at));
                }
                if colour[next] == 0 {
                    colour[next] = 1;
                    path.push((next, 0));
                }
            } else {
                colour[r] = 2;
                path.pop();
            }
        }
    }
    None
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
        let edges: Vec<Vec<(usize, char)>> = vec![vec![(1, 'a')], vec![(2, 'b')], vec![(1, 'c')]];
        assert_eq!(find_cycle(&edges), Some((vec![1, 2, 1], 'c')));
        assert_eq!(find_cycle(&[vec![(1, ())], vec![]]), None);
    }
}
