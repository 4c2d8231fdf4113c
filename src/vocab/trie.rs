//! The token trie: every grammar-visible token's bytes, as a flat pre-order
//! array, so that a dead prefix skips its whole subtree in one jump.
//!
//! Built once per [`Vocabulary`](super::Vocabulary) and shared by every grammar
//! compiled against it. It knows nothing of grammars: the mask walker in
//! [`crate::mask`] drives it with a byte-level recognizer.

/// One trie node. Node 0 is the root (the empty prefix) and has no byte.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    /// The byte on the edge into this node.
    pub byte: u8,
    /// Depth in bytes (root = 0).
    pub depth: u16,
    /// One past the last node of this node's subtree (pre-order).
    pub subtree_end: u32,
    /// Start of this node's token ids in [`TokTrie::tokens`]; they end at the
    /// next node's `tok_start`.
    pub tok_start: u32,
}

/// Flat pre-order token trie.
#[derive(Clone, Debug)]
pub struct TokTrie {
    pub(crate) nodes: Vec<Node>,
    /// Token ids ending at each node, grouped by node (several ids may share
    /// the same bytes, e.g. a byte-fallback token and a plain one).
    pub(crate) tokens: Vec<u32>,
    max_depth: usize,
}

impl TokTrie {
    /// Builds the trie from `(token id, bytes)` pairs. Empty byte strings are
    /// skipped (a token that adds nothing can never advance a grammar).
    pub(crate) fn build<'a>(entries: impl Iterator<Item = (u32, &'a [u8])>) -> TokTrie {
        let mut list: Vec<(&[u8], u32)> = entries.filter(|(_, b)| !b.is_empty()).map(|(i, b)| (b, i)).collect();
        list.sort_unstable();
        let mut nodes: Vec<Node> = vec![Node { byte: 0, depth: 0, subtree_end: 0, tok_start: 0 }];
        let mut tokens = Vec::with_capacity(list.len());
        // path[d] = node index at depth d on the current path
        let mut path: Vec<u32> = vec![0];
        let mut cur: &[u8] = &[];
        let mut max_depth = 0;
        for (bytes, id) in list {
            // common prefix with the current path
            let common = cur.iter().zip(bytes).take_while(|(a, b)| a == b).count();
            // close nodes deeper than `common`
            while path.len() > common + 1 {
                let n = path.pop().unwrap() as usize;
                nodes[n].subtree_end = nodes.len() as u32;
            }
            for (d, &b) in bytes.iter().enumerate().skip(common) {
                let idx = nodes.len() as u32;
                nodes.push(Node { byte: b, depth: (d + 1) as u16, subtree_end: 0, tok_start: tokens.len() as u32 });
                path.push(idx);
            }
            // token ends at the last node of the path; tokens are pushed in
            // node order because the list is sorted and ties are adjacent.
            tokens.push(id);
            cur = bytes;
            max_depth = max_depth.max(bytes.len());
        }
        while let Some(n) = path.pop() {
            nodes[n as usize].subtree_end = nodes.len() as u32;
        }
        // Sentinel: node n's tokens are tokens[tok_start(n)..tok_start(n+1)].
        // A node's start is the token count when it was created and the token
        // is pushed right after its last node, so ranges are exact.
        let end = tokens.len() as u32;
        nodes.push(Node { byte: 0, depth: 0, subtree_end: 0, tok_start: end });
        TokTrie { nodes, tokens, max_depth }
    }

    /// Number of real nodes (excluding the sentinel).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len() - 1
    }

    /// Token ids whose bytes end exactly at node `n`.
    #[inline]
    pub(crate) fn tokens_at(&self, n: usize) -> &[u32] {
        let a = self.nodes[n].tok_start as usize;
        let b = self.nodes[n + 1].tok_start as usize;
        &self.tokens[a..b]
    }

    /// Every token that is a prefix of `bytes`, as `(length, token id)`,
    /// shortest first.
    ///
    /// ```
    /// let v = grammask::Vocabulary::from_token_bytes(&["a", "ab", "abc", "b"], &[]).unwrap();
    /// assert_eq!(v.trie().prefix_tokens(b"abd"), vec![(1, 0), (2, 1)]);
    /// ```
    pub fn prefix_tokens(&self, bytes: &[u8]) -> Vec<(usize, u32)> {
        let mut out = Vec::new();
        let mut node = 0usize;
        for (depth, &b) in bytes.iter().enumerate() {
            let end = self.nodes[node].subtree_end as usize;
            let mut child = node + 1;
            let mut found = None;
            while child < end {
                if self.nodes[child].byte == b {
                    found = Some(child);
                    break;
                }
                child = self.nodes[child].subtree_end as usize;
            }
            let Some(c) = found else { break };
            node = c;
            for &t in self.tokens_at(node) {
                out.push((depth + 1, t));
            }
        }
        out
    }

    /// The longest token, in bytes.
    pub fn max_token_len(&self) -> usize {
        self.max_depth
    }

    /// Number of trie nodes (one per distinct token prefix), a measure of mask
    /// walk cost.
    pub fn node_count(&self) -> usize {
        self.len()
    }

    /// Heap bytes held by the trie.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>() + self.tokens.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(t: &TokTrie) -> Vec<(Vec<u8>, Vec<u32>)> {
        let mut out = vec![];
        let mut path: Vec<u8> = vec![];
        for n in 1..t.len() {
            let node = t.nodes[n];
            path.truncate(node.depth as usize - 1);
            path.push(node.byte);
            let toks = t.tokens_at(n);
            if !toks.is_empty() {
                out.push((path.clone(), toks.to_vec()));
            }
        }
        out
    }

    #[test]
    fn trie_round_trips_tokens_and_subtrees() {
        let toks: Vec<&[u8]> = vec![b"ab", b"a", b"abc", b"b", b"", b"ab", b"ba"];
        let t = TokTrie::build(toks.iter().enumerate().map(|(i, b)| (i as u32, *b)));
        let got = collect(&t);
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), vec![1]),
                (b"ab".to_vec(), vec![0, 5]),
                (b"abc".to_vec(), vec![2]),
                (b"b".to_vec(), vec![3]),
                (b"ba".to_vec(), vec![6]),
            ]
        );
        // subtree of "a" covers a, ab, abc
        assert_eq!(t.nodes[1].byte, b'a');
        assert_eq!(t.nodes[1].subtree_end, 4);
        assert_eq!(t.nodes[0].subtree_end as usize, t.len());
        assert_eq!(t.max_token_len(), 3);
    }
}
