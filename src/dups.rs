//! Near-duplicate mining: groups of tweets whose embeddings are at least a threshold cosine
//! apart, found through each tweet's nearest neighbours in the HNSW graph (k per tweet, so
//! near-linear in the corpus) rather than by comparing all pairs.

use rayon::prelude::*;

use crate::index::{RowSet, Store};

/// Neighbours looked at per tweet. A group larger than this is still found whole: its members
/// link up through one another.
const NEIGHBOURS: usize = 10;

/// Tweets that are near-identical to one another.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Store rows, ascending.
    pub rows: Vec<usize>,
    /// The pairs found at or above the threshold: (row, row, cosine), best first.
    pub pairs: Vec<(usize, usize, f32)>,
}

/// Every group of two or more tweets linked by cosine ≥ `threshold`, largest groups first.
pub fn find(store: &Store, threshold: f32) -> Vec<Group> {
    let n = store.len();
    let all = RowSet::new(n, |_| true);
    let mut pairs: Vec<(usize, usize, f32)> = (0..n)
        .into_par_iter()
        .flat_map_iter(|row| {
            store
                .neighbors(row, NEIGHBOURS, &all)
                .into_iter()
                .filter(|h| h.score >= threshold)
                .map(move |h| (row.min(h.row), row.max(h.row), h.score))
        })
        .collect();
    pairs.sort_by_key(|p| (p.0, p.1));
    pairs.dedup_by(|a, b| (a.0, a.1) == (b.0, b.1));

    // Union-find over the pairs.
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for &(a, b, _) in &pairs {
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut by_root: std::collections::BTreeMap<usize, Group> = Default::default();
    for &(a, b, s) in &pairs {
        let r = root(&mut parent, a);
        let g = by_root.entry(r).or_insert_with(|| Group {
            rows: Vec::new(),
            pairs: Vec::new(),
        });
        g.rows.extend([a, b]);
        g.pairs.push((a, b, s));
    }
    let mut groups: Vec<Group> = by_root
        .into_values()
        .map(|mut g| {
            g.rows.sort_unstable();
            g.rows.dedup();
            g.pairs
                .sort_by(|x, y| y.2.total_cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
            g
        })
        .collect();
    groups.sort_by(|a, b| {
        b.rows
            .len()
            .cmp(&a.rows.len())
            .then(a.rows[0].cmp(&b.rows[0]))
    });
    groups
}
