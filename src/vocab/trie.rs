//! The token trie: every grammar-visible token's bytes, as a flat pre-order
//! array, so that a dead prefix skips its whole subtree in one jump.
//!
//! Built once per [`Vocabulary`](super::Vocabulary) and shared by every grammar
//! compiled against it. It knows nothing of grammars: the mask walker in
//! [`crate::mask`] drives it with a byte-level recognizer.

/// One trie node. Node 0 is the root (the empty prefix) and has no byte.
/// 16 bytes, so that a walk that jumps over subtrees reads one cache line
/// per node for everything it decides on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    /// The byte on the edge into this node.
    pub byte: u8,
    /// Every token in this node's subtree is *plain text* (see
    /// [`plain_next`]).
    pub plain: bool,
    /// Depth in bytes (root = 0).
    pub depth: u16,
    /// One past the last node of this node's subtree (pre-order).
    pub subtree_end: u32,
    /// Start of this node's token ids in [`TokTrie::tokens`]; they end at the
    /// next node's `tok_start`.
    pub tok_start: u32,
    /// The deepest node in the subtree (lets a walk that only cares about
    /// long tokens skip subtrees of short ones).
    pub sub_depth: u16,
    /// The [`byte_cat`] bits of every token in the subtree.
    pub sub_cats: u16,
}

/// Flat pre-order token trie.
#[derive(Clone, Debug)]
pub struct TokTrie {
    pub(crate) nodes: Vec<Node>,
    /// Token ids ending at each node, grouped by node (several ids may share
    /// the same bytes, e.g. a byte-fallback token and a plain one).
    pub(crate) tokens: Vec<u32>,
    max_depth: usize,
    /// Tokens longer than [`SHORT_TOKEN_BYTES`].
    pub(crate) long_tokens: Vec<u32>,
    /// `(L, bits)`: the plain tokens of at most `L` bytes, for a few `L`
    /// ascending (bit layout of a mask, sized by the largest token id).
    pub(crate) plain_masks: Vec<(usize, Vec<u32>)>,
    /// Per token id: the [`byte_cat`] bits of its bytes and its length
    /// (`(0, 0)` for ids not in the trie).
    tok_cats: Vec<(u16, u16)>,
    /// `(categories, L)` → the tokens of at most `L` bytes made only of
    /// bytes in those categories; filled on demand (see [`TokTrie::cat_mask`]).
    cat_masks: std::sync::Arc<std::sync::Mutex<CatMasks>>,
    /// The trie without its all-plain subtrees (see [`Skeleton`]).
    pub(crate) impure: Skeleton,
    /// Children by node: node `i`'s children are `kid_nodes[r]` with bytes
    /// `kid_bytes[r]` (ascending) for `r` in `kid_off[i]..kid_off[i + 1]`
    /// (see [`TokTrie::child`]).
    kid_off: Vec<u32>,
    kid_bytes: Vec<u8>,
    kid_nodes: Vec<u32>,
}

/// The nodes of a [`TokTrie`] that are not inside an all-plain subtree
/// ([`Node::plain`]), in the same pre-order with the same depths, subtree
/// ends renumbered and the tokens of kept nodes kept. A state from which
/// plain text of any length stays live (the inside of a free string)
/// allows every plain token wholesale, so its walk needs only these nodes:
/// a few thousand of a 128k vocabulary's 200k+, in one dense array instead
/// of scattered over the trie. `orig` maps a node back to its index in the
/// full trie.
#[derive(Clone, Debug, Default)]
pub(crate) struct Skeleton {
    /// Kept nodes, root first, then a sentinel (like [`TokTrie::nodes`]).
    pub nodes: Vec<Node>,
    pub tokens: Vec<u32>,
    pub orig: Vec<u32>,
    /// The root's children as `(byte, node)` ([`TokTrie::kids`] of the
    /// skeleton's root).
    pub kids: Vec<(u8, u32)>,
}

/// The root's children of a pre-order node array, as `(byte, node)`.
fn root_kids(nodes: &[Node]) -> Vec<(u8, u32)> {
    let mut kids = Vec::new();
    let mut i = 1;
    while i + 1 < nodes.len() {
        kids.push((nodes[i].byte, i as u32));
        i = nodes[i].subtree_end as usize;
    }
    kids
}

impl Skeleton {
    fn of(nodes: &[Node], tokens: &[u32]) -> Skeleton {
        let mut sk = Skeleton::default();
        // Open kept nodes on the current path: (index in sk.nodes, end in
        // the full trie).
        let mut open: Vec<(usize, usize)> = Vec::new();
        let n = nodes.len() - 1;
        let mut i = 0;
        while i < n {
            while open.last().is_some_and(|&(_, end)| end <= i) {
                let (k, _) = open.pop().unwrap_or_default();
                sk.nodes[k].subtree_end = sk.nodes.len() as u32;
            }
            let node = nodes[i];
            if i > 0 && node.plain {
                i = node.subtree_end as usize;
                continue;
            }
            let toks = &tokens[node.tok_start as usize..nodes[i + 1].tok_start as usize];
            sk.nodes.push(Node { tok_start: sk.tokens.len() as u32, ..node });
            sk.tokens.extend_from_slice(toks);
            sk.orig.push(i as u32);
            open.push((sk.nodes.len() - 1, node.subtree_end as usize));
            i += 1;
        }
        for (k, _) in open {
            sk.nodes[k].subtree_end = sk.nodes.len() as u32;
        }
        let end = sk.nodes.len() as u32;
        sk.nodes.push(Node { tok_start: sk.tokens.len() as u32, subtree_end: end, ..nodes[n] });
        sk.orig.push(n as u32);
        sk.kids = root_kids(&sk.nodes);
        sk
    }
}

type CatMasks = ahash::AHashMap<(u16, usize), std::sync::Arc<Vec<u32>>>;

/// Byte categories: a token's bytes, coarsely. A pattern such as
/// `^[\w.-]+$` allows whole categories (letters, digits, `_`, `.`, `-`), and
/// a state that every string over some categories keeps live allows every
/// token made of them (see `mask::cat_reach`). Bits 0..=12 are ASCII
/// categories a string state may allow wholesale ([`ASCII_CATS`]); `"`,
/// `\` with control characters, and bytes ≥ 0x80 have their own bits.
#[inline]
pub(crate) fn byte_cat(b: u8) -> u16 {
    1 << match b {
        b'a'..=b'z' => 0,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        b' ' => 3,
        b'_' => 4,
        b'-' => 5,
        b'.' => 6,
        b'/' => 7,
        b':' => 8,
        b',' => 9,
        b'+' => 10,
        b'@' => 11,
        b'"' => 13,
        b'\\' | 0..=0x1F => 14,
        0x80..=0xFF => 15,
        _ => 12, // other printable ASCII and DEL
    }
}

/// The categories of [`byte_cat`] that a state may allow wholesale.
pub(crate) const ASCII_CATS: u16 = (1 << 13) - 1;

/// The lengths tiers of [`TokTrie::plain_masks`] and [`TokTrie::cat_mask`]:
/// the largest tier of at most `reach` bytes (capped by the longest token).
pub(crate) fn length_tier(reach: usize, longest: usize) -> Option<usize> {
    PLAIN_LENGTHS.iter().rev().map(|&l| l.min(longest)).find(|&l| l <= reach && l > 0)
}

/// Lengths for which [`TokTrie::plain_masks`] are kept.
const PLAIN_LENGTHS: [usize; 12] = [4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, usize::MAX];

/// Plain text, byte by byte: complete UTF-8 characters other than `"`, `\\`,
/// control characters below U+0020, and U+0085, U+2028, U+2029 and U+FEFF —
/// what a JSON string holds without escapes, less the few characters that
/// `.` (line terminators) or one regex dialect's `\\s` leaves out, so that a
/// pattern which forbids only those still lets plain text run far. State 0 is
/// "between characters"; the others are inside a multi-byte character.
/// `None`: not plain text.
#[inline]
pub(crate) fn plain_next(state: u8, b: u8) -> Option<u8> {
    match (state, b) {
        (0, b'"' | b'\\') => None,
        (0, 0x20..=0x7F) => Some(0),
        (0, 0xC2) => Some(8),
        (0, 0xC3..=0xDF) => Some(1),
        (0, 0xE0) => Some(4),
        (0, 0xE2) => Some(9),
        (0, 0xEF) => Some(11),
        (0, 0xE1 | 0xE3..=0xEC | 0xEE) => Some(2),
        (0, 0xED) => Some(5),
        (0, 0xF0) => Some(6),
        (0, 0xF1..=0xF3) => Some(3),
        (0, 0xF4) => Some(7),
        (1, 0x80..=0xBF) => Some(0),
        (2, 0x80..=0xBF) => Some(1),
        (3, 0x80..=0xBF) => Some(2),
        (4, 0xA0..=0xBF) => Some(1),
        (5, 0x80..=0x9F) => Some(1),
        (6, 0x90..=0xBF) => Some(2),
        (7, 0x80..=0x8F) => Some(2),
        // U+0085
        (8, 0x85) => None,
        (8, 0x80..=0xBF) => Some(0),
        // U+2028, U+2029
        (9, 0x80) => Some(10),
        (9, 0x81..=0xBF) => Some(1),
        (10, 0xA8 | 0xA9) => None,
        (10, 0x80..=0xBF) => Some(0),
        // U+FEFF
        (11, 0xBB) => Some(12),
        (11, 0x80..=0xBF) => Some(1),
        (12, 0x80..=0xBE) => Some(0),
        _ => None,
    }
}

/// Number of [`plain_next`] states.
pub(crate) const PLAIN_STATES: usize = 13;

/// Token length (bytes) up to which masks of leaf states are shared by
/// states that agree on strings this long; longer tokens, a few percent of
/// a vocabulary, are walked per state (see `mask`).
pub(crate) const SHORT_TOKEN_BYTES: usize = 16;

impl TokTrie {
    /// Builds the trie from `(token id, bytes)` pairs. Empty byte strings are
    /// skipped (a token that adds nothing can never advance a grammar).
    pub(crate) fn build<'a>(entries: impl Iterator<Item = (u32, &'a [u8])>) -> TokTrie {
        let mut list: Vec<(&[u8], u32)> = entries.filter(|(_, b)| !b.is_empty()).map(|(i, b)| (b, i)).collect();
        list.sort_unstable();
        let mut nodes: Vec<Node> =
            vec![Node { byte: 0, plain: false, depth: 0, subtree_end: 0, tok_start: 0, sub_depth: 0, sub_cats: 0 }];
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
                nodes.push(Node {
                    byte: b,
                    plain: false,
                    depth: (d + 1) as u16,
                    subtree_end: 0,
                    tok_start: tokens.len() as u32,
                    sub_depth: 0,
                    sub_cats: 0,
                });
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
        nodes.push(Node { byte: 0, plain: false, depth: 0, subtree_end: 0, tok_start: end, sub_depth: 0, sub_cats: 0 });
        let n = nodes.len() - 1;
        let mut long_tokens = Vec::new();
        for i in 1..n {
            if nodes[i].depth as usize > SHORT_TOKEN_BYTES {
                long_tokens.extend_from_slice(&tokens[nodes[i].tok_start as usize..nodes[i + 1].tok_start as usize]);
            }
        }
        fn tokens_at(nodes: &[Node], i: usize) -> std::ops::Range<usize> {
            nodes[i].tok_start as usize..nodes[i + 1].tok_start as usize
        }
        let words = tokens.iter().max().map_or(0, |&m| m as usize / 32 + 1);
        // Down each path (parents come before children): the plain-text
        // state after it (255: not plain) and its byte categories, which
        // are also each token's.
        let mut pstate = vec![255u8; n.max(1)];
        let mut path_cats = vec![0u16; n.max(1)];
        let mut tok_cats = vec![(0u16, 0u16); words * 32];
        if n > 0 {
            pstate[0] = 0;
        }
        let mut path: Vec<usize> = vec![0];
        for i in 1..n {
            while nodes[*path.last().expect("root stays")].depth >= nodes[i].depth {
                path.pop();
            }
            let parent = *path.last().expect("root stays");
            pstate[i] = match pstate[parent] {
                255 => 255,
                ps => plain_next(ps, nodes[i].byte).unwrap_or(255),
            };
            path_cats[i] = path_cats[parent] | byte_cat(nodes[i].byte);
            for &t in &tokens[tokens_at(&nodes, i)] {
                tok_cats[t as usize] = (path_cats[i], nodes[i].depth);
            }
            path.push(i);
        }
        // Up the subtrees (a reverse pass sees every child before its
        // parent): deepest node, all tokens plain, categories of all tokens.
        for i in (1..n).rev() {
            let has_tokens = !tokens_at(&nodes, i).is_empty();
            let (mut depth, mut plain) = (nodes[i].depth, !has_tokens || pstate[i] == 0);
            let mut cats = if has_tokens { path_cats[i] } else { 0 };
            let mut j = i + 1;
            while j < nodes[i].subtree_end as usize {
                depth = depth.max(nodes[j].sub_depth);
                plain &= nodes[j].plain;
                cats |= nodes[j].sub_cats;
                j = nodes[j].subtree_end as usize;
            }
            nodes[i].sub_depth = depth;
            nodes[i].plain = plain;
            nodes[i].sub_cats = cats;
        }
        if n > 0 {
            nodes[0].sub_depth = max_depth as u16;
        }
        let plain_masks = PLAIN_LENGTHS
            .iter()
            .filter(|&&l| l == usize::MAX || l < max_depth)
            .map(|&l| {
                let mut bits = vec![0u32; words];
                for i in 1..n {
                    if pstate[i] == 0 && (nodes[i].depth as usize) <= l {
                        for &t in &tokens[tokens_at(&nodes, i)] {
                            bits[t as usize / 32] |= 1 << (t % 32);
                        }
                    }
                }
                (l, bits)
            })
            .collect();
        let impure = Skeleton::of(&nodes, &tokens);
        // Pre-order: a node's children are listed in order, each after its
        // parent's list was opened; fill by counting first.
        let n = nodes.len() - 1;
        let mut count = vec![0u32; n + 1];
        let mut parent = vec![0u32; n];
        let mut path: Vec<u32> = vec![0];
        for (i, par) in parent.iter_mut().enumerate().skip(1) {
            while nodes[*path.last().unwrap_or(&0) as usize].subtree_end as usize <= i {
                path.pop();
            }
            *par = *path.last().unwrap_or(&0);
            count[*par as usize] += 1;
            path.push(i as u32);
        }
        let mut kid_off = Vec::with_capacity(n + 1);
        let mut acc = 0u32;
        for &c in &count {
            kid_off.push(acc);
            acc += c;
        }
        let mut fill: Vec<u32> = kid_off.clone();
        let mut kid_bytes = vec![0u8; acc as usize];
        let mut kid_nodes = vec![0u32; acc as usize];
        for i in 1..n {
            let p = parent[i] as usize;
            kid_bytes[fill[p] as usize] = nodes[i].byte;
            kid_nodes[fill[p] as usize] = i as u32;
            fill[p] += 1;
        }
        TokTrie {
            kid_off,
            kid_bytes,
            kid_nodes,
            nodes,
            tokens,
            max_depth,
            long_tokens,
            plain_masks,
            tok_cats,
            cat_masks: Default::default(),
            impure,
        }
    }

    /// The tokens of at most `len` bytes whose bytes all fall in categories
    /// `cats` (see [`byte_cat`]); computed once per `(cats, len)` and kept.
    pub(crate) fn cat_mask(&self, cats: u16, len: usize) -> std::sync::Arc<Vec<u32>> {
        if let Some(m) = self.cat_masks.lock().ok().and_then(|m| m.get(&(cats, len)).cloned()) {
            return m;
        }
        let bits: Vec<u32> = self
            .tok_cats
            .chunks(32)
            .map(|ch| {
                let mut w = 0u32;
                for (k, &(c, l)) in ch.iter().enumerate() {
                    w |= u32::from(l > 0 && c & !cats == 0 && l as usize <= len) << k;
                }
                w
            })
            .collect();
        let bits = std::sync::Arc::new(bits);
        if let Ok(mut m) = self.cat_masks.lock() {
            m.insert((cats, len), bits.clone());
        }
        bits
    }

    /// The children of node `n` as `(byte, node)`, bytes ascending, from a
    /// small contiguous list (the children themselves lie far apart).
    pub(crate) fn kids(&self, n: usize) -> impl Iterator<Item = (u8, u32)> + '_ {
        let (a, z) = (self.kid_off[n] as usize, self.kid_off[n + 1] as usize);
        self.kid_bytes[a..z].iter().copied().zip(self.kid_nodes[a..z].iter().copied())
    }

    /// The child of node `n` by byte `b` (one binary search in a small
    /// contiguous list; the children themselves lie far apart).
    #[inline]
    pub(crate) fn child(&self, n: usize, b: u8) -> Option<usize> {
        let (a, z) = (self.kid_off[n] as usize, self.kid_off[n + 1] as usize);
        self.kid_bytes[a..z].binary_search(&b).ok().map(|r| self.kid_nodes[a + r] as usize)
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

    /// The tokens whose bytes are a prefix of one of `words` (sorted), and
    /// the tokens whose bytes start with a whole word followed by `then`:
    /// one walk down the trie for all the words together.
    pub(crate) fn tokens_along<W: AsRef<[u8]>>(&self, words: &[W], then: u8, out: &mut Vec<u32>) {
        fn go<W: AsRef<[u8]>>(t: &TokTrie, node: usize, depth: usize, words: &[W], then: u8, out: &mut Vec<u32>) {
            if depth > 0 {
                out.extend_from_slice(t.tokens_at(node));
            }
            let mut i = 0;
            while i < words.len() {
                if words[i].as_ref().len() == depth {
                    // A whole word: the tokens that go on with `then`.
                    if let Some(c) = t.child(node, then) {
                        let end = t.nodes[c].subtree_end as usize;
                        out.extend((c..end).flat_map(|n| t.tokens_at(n).iter().copied()));
                    }
                    while i < words.len() && words[i].as_ref().len() == depth {
                        i += 1;
                    }
                    continue;
                }
                let b = words[i].as_ref()[depth];
                let j = i + words[i..].partition_point(|w| {
                    let w = w.as_ref();
                    w.len() > depth && w[depth] == b
                });
                if let Some(c) = t.child(node, b) {
                    go(t, c, depth + 1, &words[i..j], then, out);
                }
                i = j;
            }
        }
        go(self, 0, 0, words, then, out);
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
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.tokens.capacity() * 4
            + self.long_tokens.capacity() * 4
            + self.plain_masks.iter().map(|(_, b)| b.capacity() * 4).sum::<usize>()
            + self.tok_cats.capacity() * 4
            + self.cat_masks.lock().map_or(0, |m| m.values().map(|b| b.capacity() * 4 + 32).sum::<usize>())
            + self.kid_off.capacity() * 4
            + self.kid_bytes.capacity()
            + self.kid_nodes.capacity() * 4
            + self.impure.nodes.capacity() * std::mem::size_of::<Node>()
            + (self.impure.tokens.capacity() + self.impure.orig.capacity() + self.impure.kids.capacity() * 2) * 4
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_along_finds_prefixes_and_words_followed_on() {
        let v = crate::Vocabulary::from_token_bytes(&["a", "ab", "ab\"", "ab\"x", "b", "ba", "c\""], &[]).unwrap();
        let mut out = Vec::new();
        v.trie().tokens_along(&[b"ab".to_vec(), b"bz".to_vec()], b'"', &mut out);
        out.sort_unstable();
        // "a", "ab" (prefixes of "ab"), "b" (of "bz"); "ab\"" and "ab\"x"
        // go on from the whole word "ab" with a quote.
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
    }
    use super::*;

    /// `child` finds exactly the children a scan of the pre-order finds.
    #[test]
    fn child_lookup_equals_a_scan() {
        let words: Vec<&[u8]> =
            vec![b"a", b"ab", b"abc", b"abd", b"b", b"ba", b"\xff\x00", b"\xff", b"zz", b"zza", b"zb"];
        let t = TokTrie::build(words.iter().enumerate().map(|(i, w)| (i as u32, *w)));
        let mut found = 0;
        for n in 0..t.len() {
            let mut scan = std::collections::BTreeMap::new();
            let (mut i, end) = (n + 1, t.nodes[n].subtree_end as usize);
            while i < end {
                scan.insert(t.nodes[i].byte, i);
                i = t.nodes[i].subtree_end as usize;
            }
            for b in 0..=255u8 {
                assert_eq!(t.child(n, b), scan.get(&b).copied(), "node {n} byte {b}");
            }
            found += scan.len();
        }
        assert_eq!(found, t.len() - 1, "every node but the root is someone's child");
    }

    /// The skeleton is the full trie's pre-order with all-plain subtrees
    /// cut out: same nodes in the same order, each kept node's subtree the
    /// kept part of its subtree, each kept node's tokens.
    #[test]
    fn skeleton_is_the_trie_without_plain_subtrees() {
        let words: Vec<&[u8]> = vec![
            b"a",
            b"ab",
            b"abc",
            b"\"",
            b"\",",
            b"\"}",
            b"x\"",
            b"\\",
            b"\\n",
            b"\xc3",
            b"\xc3\xa9",
            b"\xc3\xa9t",
            b"\xe4\xb8",
            b"\xe4\xb8\xad",
            b" ",
            b" \"",
            b"\n",
            b"b\nc",
            b"zz",
        ];
        let t = TokTrie::build(words.iter().enumerate().map(|(i, w)| (i as u32, *w)));
        let sk = &t.impure;
        let mut want = Vec::new();
        let mut i = 0;
        while i < t.len() {
            if i > 0 && t.nodes[i].plain {
                i = t.nodes[i].subtree_end as usize;
            } else {
                want.push(i as u32);
                i += 1;
            }
        }
        assert!(want.len() < t.len(), "some subtree is all plain");
        assert_eq!(&sk.orig[..sk.nodes.len() - 1], &want[..]);
        for k in 0..sk.nodes.len() - 1 {
            let o = sk.orig[k] as usize;
            let (n, full) = (sk.nodes[k], t.nodes[o]);
            assert_eq!((n.byte, n.depth), (full.byte, full.depth));
            assert_eq!(&sk.tokens[n.tok_start as usize..sk.nodes[k + 1].tok_start as usize], t.tokens_at(o));
            let inside: Vec<u32> = want.iter().copied().filter(|&j| j as usize > o && j < full.subtree_end).collect();
            assert_eq!(&sk.orig[k + 1..n.subtree_end as usize], &inside[..], "subtree of node {o}");
        }
    }

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
    #[test]
    fn plain_text_subtrees_and_masks() {
        let toks: Vec<&[u8]> = vec![b"ab", b"a\"", "\u{e9}".as_bytes(), b"\xC3", b"xyzxyzxyz", b"x", b"\x01"];
        let t = TokTrie::build(toks.iter().enumerate().map(|(i, b)| (i as u32, *b)));
        // The node whose path spells `bytes`.
        let node_of = |bytes: &[u8]| {
            let mut n = 0;
            for (d, &b) in bytes.iter().enumerate() {
                n = (n + 1..t.len()).find(|&m| t.nodes[m].depth as usize == d + 1 && t.nodes[m].byte == b).unwrap();
            }
            n
        };
        assert!(!t.nodes[node_of(b"a")].plain, "holds a quote");
        assert!(t.nodes[node_of(b"x")].plain);
        assert!(!t.nodes[node_of(b"\xC3")].plain, "a partial character is not plain");
        let bits = |l: usize| t.plain_masks.iter().find(|(x, _)| *x >= l).unwrap().1[0];
        // ab (0), é (2) and x (5) are plain and short; xyzxyzxyz (4) is 9 bytes
        assert_eq!(bits(4), 0b100101);
        assert_eq!(t.plain_masks.last().unwrap().1[0], 0b110101);
        assert!(t.long_tokens.is_empty());
    }

    #[test]
    fn line_separators_and_dialect_spaces_are_not_plain() {
        for c in ['\u{85}', '\u{2028}', '\u{2029}', '\u{feff}'] {
            let mut buf = [0u8; 4];
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            let end = bytes.iter().try_fold(0u8, |p, &b| plain_next(p, b));
            assert_eq!(end, None, "{c:?} counted as plain");
        }
        for c in ['\u{84}', '\u{86}', '\u{2027}', '\u{202a}', '\u{feee}', '\u{fffd}', '\u{2000}', 'é', '😀'] {
            let mut buf = [0u8; 4];
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            let end = bytes.iter().try_fold(0u8, |p, &b| plain_next(p, b));
            assert_eq!(end, Some(0), "{c:?} not plain");
        }
    }

    #[test]
    fn category_masks_and_subtree_categories() {
        let toks: Vec<&[u8]> = vec![b"ab", b"a-b", b"a b", b"Ab", b"abcdefgh", b"a\"", b"1.5", b"a"];
        let t = TokTrie::build(toks.iter().enumerate().map(|(i, b)| (i as u32, *b)));
        let lower = byte_cat(b'a');
        let letters = lower | byte_cat(b'A');
        // Lowercase only, any length: ab, abcdefgh, a.
        assert_eq!(t.cat_mask(lower, usize::MAX)[0], 0b1001_0001);
        // Up to 4 bytes: not abcdefgh.
        assert_eq!(t.cat_mask(lower, 4)[0], 0b1000_0001);
        assert_eq!(t.cat_mask(letters | byte_cat(b'-'), usize::MAX)[0], 0b1001_1011);
        assert_eq!(t.cat_mask(byte_cat(b'1') | byte_cat(b'.'), usize::MAX)[0], 0b0100_0000);
        // The subtree of "a" holds a quote (a") and a space (a b).
        let a = (1..t.len()).find(|&i| t.nodes[i].depth == 1 && t.nodes[i].byte == b'a').unwrap();
        let cats = t.nodes[a].sub_cats;
        assert_eq!(cats, lower | byte_cat(b'-') | byte_cat(b' ') | byte_cat(b'"'));
        assert_ne!(byte_cat(b'"') & ASCII_CATS, byte_cat(b'"'), "a quote is never allowed wholesale");
    }
}
