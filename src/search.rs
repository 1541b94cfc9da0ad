//! A query → ranked tweets: dense (cosine over the HNSW graph, or exact), lexical (BM25), or
//! hybrid (both, fused), with near-duplicate collapsing and the scores that explain each hit.
//!
//! Hybrid fusion is a convex combination of the cosine divided by the query's best cosine, and
//! the BM25 score divided by the query's ideal score (the sum of its stems' IDF, what a tweet holding each once would get):
//! both in [0, 1] on an absolute scale, so a tweet matching only a common word of the query
//! gains little, one matching its rare name gains much, and a query that matches no word
//! falls back to pure dense ranking. A part of a self-thread then gains a share of the gap to
//! the best-scoring part of its thread: parts are written to be read together, and the one
//! that names the subject ("Whisper", "makemore") speaks for the ones that go on about it.
//! Both weights were tuned on half of the judged queries in `tests/data/judged-queries.toml`
//! and checked on the other half (docs/retrieval.md).

use std::collections::HashMap;

use crate::error::Result;
use crate::index::{Filter, RowSet, Store};
use crate::simd::dot;

/// Weight of the relative cosine in hybrid scores (the BM25 share is 1 − this): the best on
/// the odd-numbered judged queries (docs/retrieval.md).
pub const HYBRID_DENSE_WEIGHT: f32 = 0.7;
/// Share of the gap to the best part of its thread that a hybrid hit gains
/// (docs/retrieval.md).
pub const THREAD_WEIGHT: f32 = 0.4;
/// Two hits at least this similar are one result unless collapsing is off: retweets of the
/// same text, re-posted announcements, a tweet and its lightly edited copy.
pub const DUPLICATE_COSINE: f32 = 0.95;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Cosine similarity of MiniLM embeddings (paraphrases, topics).
    Dense,
    /// BM25 over word stems (exact names, rare terms).
    Lexical,
    /// Both, fused, with thread context: the best on the judged queries.
    #[default]
    Hybrid,
}

/// What to look for: the text (for BM25 and explanations) and its embedding.
pub struct Query<'a> {
    pub text: &'a str,
    pub vector: &'a [f32],
    /// A row never returned (the tweet a more-like-this query started from).
    pub exclude: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub k: usize,
    pub filter: Filter,
    /// Dense candidates by exact scan instead of the graph.
    pub exact: bool,
    /// Fold hits at least this similar to a better hit into it; `None` keeps all.
    pub collapse: Option<f32>,
    /// Fill in the BM25 score of dense-mode hits too (one extra full lexical pass).
    pub explain: bool,
    /// Weight of the cosine in hybrid scores; [`HYBRID_DENSE_WEIGHT`] unless tuning.
    pub dense_weight: f32,
    /// Share of the gap to its thread's best part a hybrid hit gains; [`THREAD_WEIGHT`]
    /// unless tuning, 0 for none.
    pub thread_weight: f32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: Mode::default(),
            k: 10,
            filter: Filter::default(),
            exact: false,
            collapse: Some(DUPLICATE_COSINE),
            explain: false,
            dense_weight: HYBRID_DENSE_WEIGHT,
            thread_weight: THREAD_WEIGHT,
        }
    }
}

/// One result with everything that ranked it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub row: usize,
    /// The score the mode ranks by: cosine, BM25, or the fused score.
    pub score: f32,
    pub dense: f32,
    /// BM25 score; `None` when the tweet shares no word stem with the query.
    pub lexical: Option<f32>,
    /// What the hit's thread added to its score (hybrid mode), with the part that lent it.
    pub thread: Option<(usize, f32)>,
    /// Rows folded into this one as near-duplicates, with their cosine to it.
    pub duplicates: Vec<(usize, f32)>,
}

/// The best `opts.k` tweets for `q`, best first.
pub fn search(store: &Store, q: &Query, opts: &Options) -> Result<Vec<Ranked>> {
    let k = opts.k;
    // Collapsing can fold several candidates into one: fetch more than asked.
    let want = if opts.collapse.is_some() { 3 * k } else { k };
    let depth = want.max(50);
    let dense_hits = |n: usize| {
        if opts.exact {
            store.search_exact(q.vector, n, &opts.filter, q.exclude)
        } else {
            store.search(q.vector, n, &opts.filter, q.exclude)
        }
    };
    let lexical_depth = match opts.mode {
        Mode::Dense if opts.explain => store.len(),
        Mode::Dense => 0,
        _ => depth,
    };
    let lexical: HashMap<usize, f32> = match lexical_depth {
        0 => Default::default(),
        n => store
            .search_lexical(q.text, n, &opts.filter, q.exclude)
            .into_iter()
            .map(|h| (h.row, h.score))
            .collect(),
    };
    let cosine = |row: usize| dot(q.vector, store.vector(row));
    let mut ranked: Vec<Ranked> = match opts.mode {
        Mode::Dense => dense_hits(want)?
            .into_iter()
            .map(|h| Ranked {
                row: h.row,
                score: h.score,
                dense: h.score,
                lexical: None,
                thread: None,
                duplicates: Vec::new(),
            })
            .collect(),
        Mode::Lexical => lexical
            .iter()
            .map(|(&row, &bm25)| Ranked {
                row,
                score: bm25,
                dense: cosine(row),
                lexical: Some(bm25),
                thread: None,
                duplicates: Vec::new(),
            })
            .collect(),
        Mode::Hybrid => {
            let ideal = store.lexical().ideal_score(q.text);
            let mut rows: Vec<usize> = dense_hits(depth)?.into_iter().map(|h| h.row).collect();
            rows.extend(lexical.keys().copied());
            // Each candidate's thread, walked once; its other parts join the pool to lend
            // or gain context.
            let mut threads: HashMap<usize, Vec<usize>> = HashMap::new();
            if opts.thread_weight > 0.0 {
                for &r in &rows {
                    if !threads.contains_key(&r) {
                        let parts = store.thread(r);
                        for &p in &parts {
                            threads.insert(p, parts.clone());
                        }
                    }
                }
                rows.extend(
                    threads
                        .keys()
                        .copied()
                        .filter(|&r| Some(r) != q.exclude && store.passes(&opts.filter, r)),
                );
            }
            rows.sort_unstable();
            rows.dedup();
            let scored: Vec<(usize, f32)> = rows.into_iter().map(|r| (r, cosine(r))).collect();
            let best = scored.iter().map(|s| s.1).fold(f32::MIN, f32::max);
            let fused: Vec<Ranked> = scored
                .into_iter()
                .map(|(row, dense)| {
                    let relative = if best > 0.0 {
                        dense.max(0.0) / best
                    } else {
                        0.0
                    };
                    let bm25 = lexical.get(&row).copied();
                    let lex = bm25.map_or(0.0, |s| (s / ideal).min(1.0));
                    Ranked {
                        row,
                        score: opts.dense_weight * relative + (1.0 - opts.dense_weight) * lex,
                        dense,
                        lexical: bm25,
                        thread: None,
                        duplicates: Vec::new(),
                    }
                })
                .collect();
            with_thread_context(fused, &threads, opts.thread_weight)
        }
    };
    if opts.mode != Mode::Dense {
        // Score, then row: equal scores rank the same way on every run.
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.row.cmp(&b.row)));
    }
    if let Some(threshold) = opts.collapse {
        ranked = collapse(store, ranked, threshold);
    }
    ranked.truncate(k);
    if opts.mode == Mode::Dense {
        // Dense-only hits still say what BM25 thinks of them, when asked.
        for r in &mut ranked {
            r.lexical = lexical.get(&r.row).copied();
        }
    }
    Ok(ranked)
}

/// Lifts each hit by `weight` × the gap to the best-scoring part of its thread among `ranked`
/// (`threads`: each threaded row's parts).
fn with_thread_context(
    mut ranked: Vec<Ranked>,
    threads: &HashMap<usize, Vec<usize>>,
    weight: f32,
) -> Vec<Ranked> {
    if weight <= 0.0 {
        return ranked;
    }
    let own: HashMap<usize, f32> = ranked.iter().map(|r| (r.row, r.score)).collect();
    for r in &mut ranked {
        let Some(parts) = threads.get(&r.row) else {
            continue;
        };
        let best = parts
            .iter()
            .filter_map(|p| own.get(p).map(|&s| (*p, s)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        if let Some((part, s)) = best.filter(|&(_, s)| s > r.score) {
            let lift = weight * (s - r.score);
            r.score += lift;
            r.thread = Some((part, lift));
        }
    }
    ranked
}

/// Up to this many hits, each is compared with every kept hit; beyond, only with its
/// nearest neighbours in the graph (all pairs of 50,000 hits took minutes).
const PAIRWISE_FOLD_LIMIT: usize = 2048;
/// Graph neighbours a hit's twins are looked for among.
const FOLD_NEIGHBORS: usize = 16;

/// Folds each hit that is within `threshold` cosine of a better kept hit into that hit.
fn collapse(store: &Store, ranked: Vec<Ranked>, threshold: f32) -> Vec<Ranked> {
    let mut kept: Vec<Ranked> = Vec::with_capacity(ranked.len());
    let pairwise = ranked.len() <= PAIRWISE_FOLD_LIMIT;
    let everyone = (!pairwise).then(|| RowSet::new(store.len(), |_| true));
    // Rows already seen (kept or folded) → their kept hit, for the graph lookup.
    let mut home: HashMap<usize, usize> = HashMap::new();
    for r in ranked {
        let row = r.row;
        let v = store.vector(row);
        let twin = match &everyone {
            None => kept
                .iter()
                .position(|k| dot(store.vector(k.row), v) >= threshold),
            // A twin within the threshold is among a row's nearest neighbours, or was folded
            // into a kept hit that is: the best-ranked kept hit within the threshold wins, as
            // in the pairwise pass.
            Some(all) => store
                .neighbors(row, FOLD_NEIGHBORS, all)
                .into_iter()
                .filter(|h| h.score >= threshold)
                .filter_map(|h| home.get(&h.row).copied())
                .filter(|&i| dot(store.vector(kept[i].row), v) >= threshold)
                .min(),
        };
        let i = match twin {
            Some(i) => {
                let sim = dot(store.vector(kept[i].row), v);
                kept[i].duplicates.push((row, sim));
                i
            }
            None => {
                kept.push(r);
                kept.len() - 1
            }
        };
        if !pairwise {
            home.insert(row, i);
        }
    }
    kept
}
