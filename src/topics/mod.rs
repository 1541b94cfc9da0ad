//! Discovering the themes of a store: which tweets belong together, and what each group is
//! about.
//!
//! 1. Tweets with fewer than `min_words` content words ("@x haha yes!") are set aside: they
//!    carry no topic, and in a corpus of replies they would otherwise form topics of their own.
//! 2. The rest are linked to their `k` nearest neighbours through the store's HNSW graph
//!    (k·n edges, never an n×n matrix), and Louvain splits that graph into communities.
//! 3. Communities of at least `min_size` tweets become topics; the tweets of smaller ones and
//!    the set-aside tweets join the topic whose centroid is nearest when their cosine to it is
//!    at least `assign_threshold`, and stay unassigned otherwise.
//! 4. Topics are merged pairwise by Ward's criterion (least added variance), which gives the
//!    hierarchy and, with `topics = Some(n)`, exactly n topics.
//! 5. Keywords come from c-TF-IDF over each topic's core tweets (those that formed it), and the
//!    representatives are the core tweets nearest its centroid.
//!
//! Every step is deterministic (fixed visiting orders, explicit tie-breaks, no randomness),
//! so the same store gives the same topics on every run and thread count.

pub mod keywords;
pub mod louvain;
pub mod themes;

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::index::{RowSet, Store};
use crate::simd::dot;

/// Topics kept when `--topics` is not given: a report of hundreds of topics describes nothing,
/// and large archives produce that many communities.
pub const MAX_TOPICS: usize = 50;

/// Tuning of topic discovery; [`Options::default`] is what the CLI uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Neighbours per tweet in the similarity graph.
    pub neighbors: usize,
    /// Louvain resolution: higher gives more, smaller topics.
    pub resolution: f64,
    /// Smallest community kept as a topic.
    pub min_size: usize,
    /// Tweets with fewer content words do not form topics (they may still join one).
    pub min_words: usize,
    /// Cosine to a topic centroid needed to join it after the fact.
    pub assign_threshold: f32,
    /// Merge down to this many topics [default: at most `MAX_TOPICS`].
    pub topics: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            neighbors: 10,
            resolution: 1.5,
            min_size: 8,
            min_words: 3,
            assign_threshold: 0.2,
            topics: None,
        }
    }
}

/// The result: topics (largest first) and each tweet's topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Topics {
    pub topics: Vec<Topic>,
    /// Topic index of each store row; `None` = unassigned.
    pub assignment: Vec<Option<usize>>,
    /// Cosine of each row to its topic's centroid (0 when unassigned).
    pub confidence: Vec<f32>,
    /// Rows that had too few content words to form topics.
    pub set_aside: usize,
    /// Topics found before any merging.
    pub discovered: usize,
    /// Merges of the discovered topics (Ward's criterion), down to one (ids as in scipy's linkage:
    /// discovered topics are 0..discovered, merge i creates id discovered + i).
    pub hierarchy: Vec<MergeStep>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topic {
    /// Short label: the top three keywords.
    pub label: String,
    pub keywords: Vec<(String, f32)>,
    /// Store rows of all members, ascending.
    pub rows: Vec<usize>,
    /// How many members formed the topic (the rest joined it afterwards).
    pub core: usize,
    /// The three core members nearest the centroid, nearest first.
    pub representatives: Vec<usize>,
    /// The discovered topics this one is made of.
    pub parts: Vec<usize>,
    /// Unit centroid of the core members.
    pub centroid: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MergeStep {
    pub a: usize,
    pub b: usize,
    pub into: usize,
    pub similarity: f32,
}

pub fn discover(store: &Store, opts: &Options) -> Result<Topics> {
    if opts.topics == Some(0) {
        return Err(Error::Invalid("--topics must be at least 1".into()));
    }
    if opts.min_size == 0 {
        return Err(Error::Invalid("--min-size must be at least 1".into()));
    }
    let tweets = store.tweets()?;
    let n = tweets.len();
    let min_size = opts.min_size;
    let dim = store.dim();
    let is_core: Vec<bool> = tweets
        .iter()
        .map(|t| keywords::content_words(&t.embedding_text()) >= opts.min_words)
        .collect();
    let core_rows: Vec<usize> = (0..n).filter(|&r| is_core[r]).collect();
    let core_set = RowSet::new(n, |r| is_core[r]);
    if core_rows.is_empty() {
        return Err(Error::Invalid(
            "no tweet has enough words to form topics".into(),
        ));
    }

    // The k-nearest-neighbour graph over core tweets, symmetric, weighted by cosine.
    let index_of: BTreeMap<usize, usize> =
        core_rows.iter().enumerate().map(|(i, &r)| (r, i)).collect();
    // Queries run in parallel; each one's answer does not depend on the others or on the
    // thread that ran it, and they are combined in row order.
    let knn: Vec<Vec<crate::index::Hit>> = core_rows
        .par_iter()
        .map(|&r| store.neighbors(r, opts.neighbors, &core_set))
        .collect();
    let mut edges: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    for (i, hits) in knn.into_iter().enumerate() {
        for h in hits {
            let j = index_of[&h.row];
            let key = (i.min(j), i.max(j));
            let w = f64::from(h.score.max(0.0));
            let e = edges.entry(key).or_insert(0.0);
            *e = e.max(w);
        }
    }
    let mut graph: louvain::Graph = vec![Vec::new(); core_rows.len()];
    for (&(a, b), &w) in &edges {
        graph[a].push((b, w));
        graph[b].push((a, w));
    }
    let community = louvain::communities(&graph, opts.resolution);

    // Communities big enough to be topics, largest first (ties: earliest member).
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &c) in community.iter().enumerate() {
        groups.entry(c).or_default().push(core_rows[i]);
    }
    let mut cores: Vec<Vec<usize>> = groups
        .into_values()
        .filter(|g| g.len() >= min_size)
        .collect();
    cores.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    if cores.is_empty() {
        return Err(Error::Invalid(format!(
            "no group of at least {min_size} similar tweets (--min-size) among {n} tweets"
        )));
    }
    let discovered = cores.len();
    let sum_of = |rows: &[usize]| {
        let mut s = vec![0f32; dim];
        for &r in rows {
            for (a, b) in s.iter_mut().zip(store.vector(r)) {
                *a += b;
            }
        }
        s
    };

    // Merge all the way down to record the hierarchy; keep the partition --topics asks for
    // (by default at most MAX_TOPICS). Topics keep fixed slots; `best[x]` caches each slot's
    // cheapest partner, so a merge recomputes only the rows it touched.
    let keep = opts.topics.unwrap_or(MAX_TOPICS).min(discovered);
    let mut rows: Vec<Vec<usize>> = cores.clone();
    let mut sums: Vec<Vec<f32>> = cores.iter().map(|r| sum_of(r)).collect();
    let mut parts: Vec<Vec<usize>> = (0..discovered).map(|i| vec![i]).collect();
    let mut ids: Vec<usize> = (0..discovered).collect();
    let mut alive = vec![true; discovered];
    let cost = |rows: &[Vec<usize>], sums: &[Vec<f32>], a: usize, b: usize| {
        ward_cost(rows[a].len(), &sums[a], rows[b].len(), &sums[b])
    };
    let row_best = |rows: &[Vec<usize>], sums: &[Vec<f32>], alive: &[bool], x: usize| {
        let mut best = (f32::MAX, usize::MAX);
        for y in (0..alive.len()).filter(|&y| y != x && alive[y]) {
            let c = cost(rows, sums, x, y);
            if c < best.0 {
                best = (c, y);
            }
        }
        best
    };
    let mut best: Vec<(f32, usize)> = (0..discovered)
        .map(|x| row_best(&rows, &sums, &alive, x))
        .collect();
    let snapshot = |rows: &[Vec<usize>],
                    parts: &[Vec<usize>],
                    alive: &[bool]|
     -> Vec<(Vec<usize>, Vec<usize>)> {
        (0..alive.len())
            .filter(|&x| alive[x])
            .map(|x| (rows[x].clone(), parts[x].clone()))
            .collect()
    };
    let mut applied = (keep == discovered).then(|| snapshot(&rows, &parts, &alive));
    let mut hierarchy = Vec::new();
    for remaining in (1..discovered).rev() {
        let x = (0..discovered)
            .filter(|&x| alive[x])
            .min_by(|&p, &q| best[p].0.total_cmp(&best[q].0).then(p.cmp(&q)))
            .expect("at least two topics remain");
        let (a, b) = (x.min(best[x].1), x.max(best[x].1));
        let into = discovered + hierarchy.len();
        hierarchy.push(MergeStep {
            a: ids[a],
            b: ids[b],
            into,
            similarity: cosine(&sums[a], &sums[b]),
        });
        ids[a] = into;
        let moved = std::mem::take(&mut rows[b]);
        rows[a].extend(moved);
        rows[a].sort_unstable();
        let moved = std::mem::take(&mut sums[b]);
        sums[a].iter_mut().zip(&moved).for_each(|(x, y)| *x += y);
        let moved = std::mem::take(&mut parts[b]);
        parts[a].extend(moved);
        parts[a].sort_unstable();
        alive[b] = false;
        best[a] = row_best(&rows, &sums, &alive, a);
        for y in (0..discovered).filter(|&y| alive[y] && y != a) {
            if best[y].1 == a || best[y].1 == b {
                best[y] = row_best(&rows, &sums, &alive, y);
            } else {
                let c = cost(&rows, &sums, y, a);
                if c < best[y].0 || (c == best[y].0 && a < best[y].1) {
                    best[y] = (c, a);
                }
            }
        }
        if remaining == keep {
            applied = Some(snapshot(&rows, &parts, &alive));
        }
    }
    let mut finals = applied.expect("keep is between 1 and the number of topics");
    finals.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0[0].cmp(&b.0[0])));

    // Tweets outside the cores join the nearest discovered topic when close enough; merged
    // topics then hold all members of their parts, so merging never loses a tweet.
    let discovered_centroids: Vec<Vec<f32>> =
        cores.iter().map(|rows| normalized(sum_of(rows))).collect();
    let mut joined: Vec<Vec<usize>> = vec![Vec::new(); discovered];
    let in_core: BTreeMap<usize, usize> = cores
        .iter()
        .enumerate()
        .flat_map(|(t, rows)| rows.iter().map(move |&r| (r, t)))
        .collect();
    for r in 0..n {
        if in_core.contains_key(&r) {
            continue;
        }
        let (t, s) = nearest(store.vector(r), &discovered_centroids);
        if s >= opts.assign_threshold {
            joined[t].push(r);
        }
    }
    let centroids: Vec<Vec<f32>> = finals
        .iter()
        .map(|(rows, _)| normalized(sum_of(rows)))
        .collect();
    let mut assignment = vec![None; n];
    let mut confidence = vec![0f32; n];
    for (t, (rows, parts)) in finals.iter().enumerate() {
        for &r in rows.iter().chain(parts.iter().flat_map(|&p| &joined[p])) {
            assignment[r] = Some(t);
            confidence[r] = dot(store.vector(r), &centroids[t]);
        }
    }

    let core_texts: Vec<Vec<&str>> = finals
        .iter()
        .map(|(rows, _)| rows.iter().map(|&r| tweets[r].text.as_str()).collect())
        .collect();
    let kw = keywords::ctfidf(&core_texts, 10);
    let topics = finals
        .into_iter()
        .zip(centroids)
        .zip(kw)
        .enumerate()
        .map(|(t, (((core, parts), centroid), keywords))| {
            let reps = most_central(&core, &confidence);
            let label = keywords
                .iter()
                .take(3)
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(" · ");
            Topic {
                label,
                keywords,
                rows: (0..n).filter(|&r| assignment[r] == Some(t)).collect(),
                core: core.len(),
                representatives: reps,
                parts,
                centroid,
            }
        })
        .collect();
    Ok(Topics {
        topics,
        assignment,
        confidence,
        set_aside: n - core_rows.len(),
        discovered,
        hierarchy,
    })
}

/// Increase of the within-topic sum of squares when merging two topics of `na` and `nb`
/// tweets whose vectors sum to `sa` and `sb` (Ward's criterion).
fn ward_cost(na: usize, sa: &[f32], nb: usize, sb: &[f32]) -> f32 {
    let (na, nb) = (na as f32, nb as f32);
    let dist2: f32 = sa
        .iter()
        .zip(sb)
        .map(|(x, y)| (x / na - y / nb).powi(2))
        .sum();
    na * nb / (na + nb) * dist2
}

/// The three rows of `rows` with the highest confidence (ties: lowest row).
fn most_central(rows: &[usize], confidence: &[f32]) -> Vec<usize> {
    let mut reps = rows.to_vec();
    reps.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]).then(a.cmp(&b)));
    reps.truncate(3);
    reps
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = dot(&v, &v).sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt()).max(1e-12)
}

/// Index and cosine of the centroid nearest to `v` (ties: lowest index).
fn nearest(v: &[f32], centroids: &[Vec<f32>]) -> (usize, f32) {
    let mut best = (0, f32::MIN);
    for (i, c) in centroids.iter().enumerate() {
        let s = dot(v, c);
        if s > best.1 {
            best = (i, s);
        }
    }
    best
}
