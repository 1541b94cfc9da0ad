//! Louvain community detection (Blondel et al. 2008) on a weighted undirected graph.
//!
//! Deterministic by construction: nodes are visited in index order, ties go to the lowest
//! community id, and nothing depends on hashing or thread scheduling. Time is near-linear in
//! the number of edges, which for a k-nearest-neighbour graph is k·n.

/// Adjacency list: `graph[i]` holds `(j, w)` for each edge, with both directions present.
pub type Graph = Vec<Vec<(usize, f64)>>;

/// Community of each node, numbered 0.. in order of first appearance.
pub fn communities(graph: &Graph, resolution: f64) -> Vec<usize> {
    let mut membership: Vec<usize> = (0..graph.len()).collect();
    let mut level = graph.clone();
    loop {
        let (mut local, moved) = one_level(&level, resolution);
        let count = renumber(&mut local);
        for m in membership.iter_mut() {
            *m = local[*m];
        }
        if !moved || count == level.len() {
            break;
        }
        level = aggregate(&level, &local, count);
    }
    renumber(&mut membership);
    membership
}

/// Moves single nodes between communities while modularity improves.
fn one_level(graph: &Graph, resolution: f64) -> (Vec<usize>, bool) {
    let n = graph.len();
    let degree: Vec<f64> = graph
        .iter()
        .map(|e| e.iter().map(|&(_, w)| w).sum())
        .collect();
    let two_m: f64 = degree.iter().sum();
    let mut community: Vec<usize> = (0..n).collect();
    let mut total: Vec<f64> = degree.clone();
    if two_m == 0.0 {
        return (community, false);
    }
    let mut moved_any = false;
    let mut links = vec![0f64; n];
    let mut touched: Vec<usize> = Vec::new();
    loop {
        let mut moved = false;
        for i in 0..n {
            let own = community[i];
            for &(j, w) in &graph[i] {
                if j == i {
                    continue;
                }
                let c = community[j];
                if links[c] == 0.0 {
                    touched.push(c);
                }
                links[c] += w;
            }
            total[own] -= degree[i];
            // Gain of joining community c, up to a constant: links_c − γ·tot_c·k_i / 2m.
            let gain = |c: usize, l: f64| l - resolution * total[c] * degree[i] / two_m;
            let mut best = (own, gain(own, links[own]));
            touched.sort_unstable();
            for &c in &touched {
                let g = gain(c, links[c]);
                if g > best.1 + 1e-12 {
                    best = (c, g);
                }
            }
            total[best.0] += degree[i];
            if best.0 != own {
                community[i] = best.0;
                moved = true;
                moved_any = true;
            }
            for &c in &touched {
                links[c] = 0.0;
            }
            links[own] = 0.0;
            touched.clear();
        }
        if !moved {
            break;
        }
    }
    (community, moved_any)
}

/// Renumbers labels 0.. by first appearance; returns how many there are.
fn renumber(labels: &mut [usize]) -> usize {
    let mut map: Vec<usize> = vec![usize::MAX; labels.iter().copied().max().map_or(0, |m| m + 1)];
    let mut next = 0;
    for l in labels.iter_mut() {
        if map[*l] == usize::MAX {
            map[*l] = next;
            next += 1;
        }
        *l = map[*l];
    }
    next
}

/// One node per community; edge weights summed (self-loops keep internal weight).
fn aggregate(graph: &Graph, labels: &[usize], count: usize) -> Graph {
    let mut rows: Vec<std::collections::BTreeMap<usize, f64>> = vec![Default::default(); count];
    for (i, edges) in graph.iter().enumerate() {
        for &(j, w) in edges {
            *rows[labels[i]].entry(labels[j]).or_insert(0.0) += w;
        }
    }
    rows.into_iter().map(|r| r.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn undirected(n: usize, edges: &[(usize, usize, f64)]) -> Graph {
        let mut g = vec![Vec::new(); n];
        for &(a, b, w) in edges {
            g[a].push((b, w));
            g[b].push((a, w));
        }
        g
    }

    #[test]
    fn two_cliques_joined_by_one_edge_split_in_two() {
        let mut e = Vec::new();
        for a in 0..4 {
            for b in a + 1..4 {
                e.push((a, b, 1.0));
                e.push((a + 4, b + 4, 1.0));
            }
        }
        e.push((3, 4, 0.1));
        let c = communities(&undirected(8, &e), 1.0);
        assert_eq!(c, [0, 0, 0, 0, 1, 1, 1, 1]);
    }

    #[test]
    fn isolated_nodes_stay_alone() {
        let c = communities(&undirected(3, &[]), 1.0);
        assert_eq!(c, [0, 1, 2]);
    }
}
