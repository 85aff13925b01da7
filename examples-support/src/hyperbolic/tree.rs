//! A generated rooted tree, deterministic from a seed, and its shortest-path distances.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::HypError;

/// A rooted tree on the nodes `0..n`; node 0 is the root and every node's parent has a
/// smaller index (breadth-first order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    parent: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    depth: Vec<usize>,
}

impl Tree {
    /// Grows a tree of exactly `nodes` nodes breadth first: every node, in order, gets a
    /// number of children drawn uniformly from `min_children..=max_children` until the tree
    /// is full (the last parent may get fewer).
    ///
    /// The same `(nodes, min_children, max_children, seed)` always gives the same tree.
    pub fn random(
        nodes: usize,
        min_children: usize,
        max_children: usize,
        seed: u64,
    ) -> Result<Self, HypError> {
        if nodes < 2 {
            return Err(HypError::Config(format!(
                "a tree needs >= 2 nodes, got {nodes}"
            )));
        }
        // Fewer than one child per node would let the frontier die out before `nodes`.
        if min_children == 0 || min_children > max_children {
            return Err(HypError::Config(format!(
                "need 1 <= min_children <= max_children, got {min_children}..={max_children}"
            )));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut parent = vec![None];
        let mut next = 0;
        while parent.len() < nodes {
            let k = rng.random_range(min_children..=max_children);
            for _ in 0..k.min(nodes - parent.len()) {
                parent.push(Some(next));
            }
            next += 1;
        }
        Ok(Self::from_parents(parent))
    }

    /// The tree with the given parents; `parent[0]` must be `None` and every other node's
    /// parent a smaller index.
    ///
    /// # Panics
    /// If the parents are not in that form (callers build them in order).
    pub fn from_parents(parent: Vec<Option<usize>>) -> Self {
        let n = parent.len();
        let mut children = vec![Vec::new(); n];
        let mut depth = vec![0; n];
        for (node, p) in parent.iter().enumerate() {
            match (node, p) {
                (0, None) => {}
                (_, Some(p)) if *p < node => {
                    children[*p].push(node);
                    depth[node] = depth[*p] + 1;
                }
                _ => panic!("node {node}: parent {p:?} is not an earlier node"),
            }
        }
        Self {
            parent,
            children,
            depth,
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Always false: a tree has at least its root.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The parent of `node`, `None` for the root.
    pub fn parent(&self, node: usize) -> Option<usize> {
        self.parent[node]
    }

    /// The children of `node`.
    pub fn children(&self, node: usize) -> &[usize] {
        &self.children[node]
    }

    /// Edges from the root (depth 0).
    pub fn depth(&self, node: usize) -> usize {
        self.depth[node]
    }

    /// The largest depth.
    pub fn height(&self) -> usize {
        self.depth.iter().copied().max().unwrap_or(0)
    }

    /// The nodes adjacent to `node`: its parent, then its children.
    pub fn neighbors(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        self.parent[node]
            .into_iter()
            .chain(self.children[node].iter().copied())
    }

    /// The `n - 1` edges as `(parent, child)`.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        (1..self.len())
            .filter_map(|c| self.parent[c].map(|p| (p, c)))
            .collect()
    }

    /// Hop counts from `source` to every node (breadth-first search).
    pub fn bfs_distances(&self, source: usize) -> Vec<u32> {
        let mut dist = vec![u32::MAX; self.len()];
        let mut queue = VecDeque::from([source]);
        dist[source] = 0;
        while let Some(u) = queue.pop_front() {
            for v in self.neighbors(u) {
                if dist[v] == u32::MAX {
                    dist[v] = dist[u] + 1;
                    queue.push_back(v);
                }
            }
        }
        dist
    }

    /// Hop counts between all pairs, row-major `[n, n]` (one search per node).
    pub fn all_pairs_distances(&self) -> Vec<u32> {
        (0..self.len())
            .flat_map(|s| self.bfs_distances(s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tree_is_deterministic_and_has_the_requested_size() {
        let a = Tree::random(500, 2, 4, 7).unwrap();
        let b = Tree::random(500, 2, 4, 7).unwrap();
        let c = Tree::random(500, 2, 4, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 500);
        assert_eq!(a.edges().len(), 499);
        for node in 1..a.len() {
            let p = a.parent(node).unwrap();
            assert!(p < node);
            assert_eq!(a.depth(node), a.depth(p) + 1);
        }
        // Every internal node but the last has 2..=4 children.
        let internal: Vec<usize> = (0..a.len())
            .filter(|&n| !a.children(n).is_empty())
            .collect();
        for &n in &internal[..internal.len() - 1] {
            assert!((2..=4).contains(&a.children(n).len()), "node {n}");
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(Tree::random(1, 2, 4, 0).is_err());
        assert!(Tree::random(10, 0, 4, 0).is_err());
        assert!(Tree::random(10, 5, 4, 0).is_err());
    }

    #[test]
    fn bfs_matches_depths_through_the_lowest_common_ancestor() {
        let t = Tree::random(300, 1, 3, 3).unwrap();
        let all = t.all_pairs_distances();
        let n = t.len();
        let ancestors = |mut x: usize| {
            let mut out = vec![x];
            while let Some(p) = t.parent(x) {
                out.push(p);
                x = p;
            }
            out
        };
        for (u, v) in [(0, 299), (17, 250), (120, 121), (5, 5), (298, 3)] {
            let au = ancestors(u);
            let lca = ancestors(v).into_iter().find(|a| au.contains(a)).unwrap();
            let expected = t.depth(u) + t.depth(v) - 2 * t.depth(lca);
            assert_eq!(all[u * n + v] as usize, expected, "({u}, {v})");
            assert_eq!(all[v * n + u], all[u * n + v]);
        }
    }
}
