//! From the current store and a corpus (or ids to drop) to the next generation.
//!
//! hnsw_rs can insert into a reloaded graph but cannot delete from one. So a tweet whose id
//! and text are unchanged keeps its row; a new tweet is appended to the graph; a vanished,
//! edited or removed tweet becomes a tombstone, which stays in the graph as a stepping stone
//! but is filtered out of every result. Once tombstones pass [`COMPACT_SHARE`] of the rows,
//! the write compacts instead: a new graph from the live rows alone.

use std::collections::HashMap;
use std::path::Path;

use super::files::{self, Generation, Next, Source};
use super::{read_manifest, CorpusInfo, HnswParams};
use crate::corpus::{Corpus, Tweet, EMBEDDING_TEXT_POLICY};
use crate::embed::{Encoder, ModelIdentity};
use crate::error::{Error, Result};

/// Share of a generation's rows that may be tombstones before a write compacts the store.
/// Above it, filtered graph walks spend too much of their effort on dead nodes.
pub const COMPACT_SHARE: f64 = 0.10;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildReport {
    /// Live tweets in the store now.
    pub tweets: usize,
    /// Texts that went through the encoder.
    pub embedded: usize,
    /// Tweets whose vector came from the previous generation.
    pub reused: usize,
    /// Tweets inserted into the existing graph (0 when the graph was built anew).
    pub appended: usize,
    /// Tweets of the previous generation that this write dropped (vanished, edited, removed).
    pub removed: usize,
    /// Tombstones in the store now.
    pub tombstones: usize,
    /// Tombstones of earlier writes that this one brought back (their tweet is in the corpus
    /// again, unchanged): live again without being embedded or appended.
    pub revived: usize,
    /// Whether the graph was built anew: first build, new HNSW parameters, or compaction.
    pub rebuilt: bool,
}

/// Builds or updates the store in `dir` from `corpus`. Only texts the previous generation
/// has no vector for go through the encoder.
pub fn build(
    dir: &Path,
    corpus: &Corpus,
    encoder: &Encoder,
    params: HnswParams,
    progress: impl FnMut(usize, usize),
) -> Result<BuildReport> {
    build_embedding(dir, corpus, encoder, params, progress).map_err(|e| e.building_from(corpus))
}

fn build_embedding(
    dir: &Path,
    corpus: &Corpus,
    encoder: &Encoder,
    params: HnswParams,
    mut progress: impl FnMut(usize, usize),
) -> Result<BuildReport> {
    let _lock = files::lock(dir)?;
    let previous = previous(dir, encoder.identity());
    let (n, dim) = (corpus.tweets.len(), encoder.dim());
    let texts: Vec<String> = corpus.tweets.iter().map(Tweet::embedding_text).collect();

    // An unchanged tweet takes its own row's vector (so it keeps that row); another tweet
    // with a text seen before takes that text's vector; the rest are embedded.
    let mut vectors = vec![0f32; n * dim];
    let mut missing: Vec<usize> = Vec::new();
    match &previous {
        Some(p) => {
            let by_id = live_rows_by_id(p);
            let p_texts: Vec<String> = p.tweets(dir)?.iter().map(Tweet::embedding_text).collect();
            let by_text: HashMap<u128, usize> = p_texts
                .iter()
                .enumerate()
                .map(|(r, text)| (text_key(text), r))
                .collect();
            for (i, (t, text)) in corpus.tweets.iter().zip(&texts).enumerate() {
                let own = by_id.get(&t.id).filter(|&&r| p_texts[r] == *text);
                match own.or_else(|| by_text.get(&text_key(text))) {
                    Some(&r) => vectors[i * dim..(i + 1) * dim]
                        .copy_from_slice(&p.vectors[r * dim..(r + 1) * dim]),
                    None => missing.push(i),
                }
            }
        }
        None => missing = (0..n).collect(),
    }
    let batch: Vec<&str> = missing.iter().map(|&i| texts[i].as_str()).collect();
    let mut done = 0;
    let fresh = encoder.embed_with_progress(&batch, |b| {
        done += b;
        progress(done, batch.len());
    })?;
    for (&i, v) in missing.iter().zip(fresh.chunks_exact(dim)) {
        vectors[i * dim..(i + 1) * dim].copy_from_slice(v);
    }

    let mut report = write(dir, previous, corpus, vectors, encoder.identity(), params)?;
    report.embedded = missing.len();
    report.reused = n - missing.len();
    Ok(report)
}

/// Builds or updates a store from vectors computed elsewhere (a GPU run, a benchmark's
/// synthetic set): row i of `vectors` (row-major, `model.dim` wide) belongs to
/// `corpus.tweets[i]`. A tweet keeps its row only if its vector is bit-for-bit the stored one.
pub fn build_from_vectors(
    dir: &Path,
    corpus: &Corpus,
    vectors: &[f32],
    model: &ModelIdentity,
    params: HnswParams,
) -> Result<BuildReport> {
    let n = corpus.tweets.len();
    if vectors.len() != n * model.dim {
        return Err(Error::Invalid(format!(
            "{} vector values for {n} tweets of dimension {}: expected {}",
            vectors.len(),
            model.dim,
            n * model.dim
        )));
    }
    let _lock = files::lock(dir)?;
    let previous = previous(dir, model);
    write(dir, previous, corpus, vectors.to_vec(), model, params)
        .map_err(|e| e.building_from(corpus))
}

/// Removes tweets from the store by status id: they become tombstones (or the store is
/// compacted). The corpus is not touched: indexing a corpus that still holds them adds them
/// back.
pub fn remove(dir: &Path, ids: &[u64]) -> Result<BuildReport> {
    read_manifest(dir)?;
    let _lock = files::lock(dir)?;
    let prev = Generation::read(dir)?;
    let by_id = live_rows_by_id(&prev);
    let mut dead = prev.dead.clone();
    let mut removed = 0;
    for id in ids {
        let row = *by_id.get(id).ok_or_else(|| {
            Error::Invalid(format!("tweet {id} is not in the store {}", dir.display()))
        })?;
        if !dead[row] {
            dead[row] = true;
            removed += 1;
        }
    }
    let live: Vec<usize> = (0..dead.len()).filter(|&r| !dead[r]).collect();
    if live.is_empty() {
        return Err(Error::Invalid(format!(
            "removing these {removed} tweets would leave the store {} empty",
            dir.display()
        )));
    }
    let tombstones = dead.len() - live.len();
    let m = &prev.manifest;
    // A damaged hnsw_rs graph is not carried into the next generation: compact instead.
    if compacts(tombstones, dead.len()) || !prev.hnsw_intact(dir) {
        let all = prev.tweets(dir)?;
        let tweets: Vec<Tweet> = live.iter().map(|&r| all[r].clone()).collect();
        let dim = m.model.dim;
        let vectors: Vec<f32> = live
            .iter()
            .flat_map(|&r| prev.vectors[r * dim..(r + 1) * dim].iter().copied())
            .collect();
        files::commit(
            dir,
            Some(&m.generation),
            Next {
                tweets: &tweets,
                dead: &vec![false; tweets.len()],
                vectors: Source::Build(&vectors),
                corpus: m.corpus.clone(),
                model: &m.model,
                params: m.hnsw,
            },
        )?;
        return Ok(report(live.len(), 0, removed, 0, true));
    }
    files::commit(
        dir,
        Some(&m.generation),
        Next {
            tweets: prev.tweets(dir)?,
            dead: &dead,
            vectors: Source::Same(&prev),
            corpus: m.corpus.clone(),
            model: &m.model,
            params: m.hnsw,
        },
    )?;
    Ok(report(live.len(), 0, removed, tombstones, false))
}

/// Writes the generation that holds exactly `corpus` (with `vectors`, in corpus order):
/// appended to `previous` where it can be, built anew where it cannot.
fn write(
    dir: &Path,
    previous: Option<Generation>,
    corpus: &Corpus,
    vectors: Vec<f32>,
    model: &ModelIdentity,
    params: HnswParams,
) -> Result<BuildReport> {
    let (n, dim) = (corpus.tweets.len(), model.dim);
    let info = CorpusInfo {
        source: corpus.source.clone(),
        format: corpus.format,
        content_hash: corpus.content_hash.clone(),
        entries: corpus.entries,
        merged: corpus.merges.len(),
    };
    // Readers may still hold the current generation, whether or not it is reused.
    let current = read_manifest(dir).ok().map(|m| m.generation);
    let fresh = |removed: usize| -> Result<BuildReport> {
        files::commit(
            dir,
            current.as_deref(),
            Next {
                tweets: &corpus.tweets,
                dead: &vec![false; n],
                vectors: Source::Build(&vectors),
                corpus: info.clone(),
                model,
                params,
            },
        )?;
        Ok(report(n, 0, removed, 0, true))
    };
    let Some(mut prev) = previous else {
        return fresh(0);
    };

    // Rows of the previous generation that hold the same tweet (id, text and vector).
    let rows = prev.table.len();
    let by_id = live_rows_by_id(&prev);
    let mut tweets = prev.tweets(dir)?.to_vec();
    // A tombstone of the same tweet is brought back rather than appended again (a corpus
    // rolled back and forward again would otherwise grow the graph each time).
    let dead_by_id: HashMap<u64, usize> = (0..rows)
        .filter(|&r| prev.dead[r])
        .map(|r| (prev.table.id(r), r))
        .collect();
    let mut dead = prev.dead.clone();
    let mut kept = vec![false; rows];
    let mut appended: Vec<usize> = Vec::new();
    let mut revived = 0;
    for (i, t) in corpus.tweets.iter().enumerate() {
        let same = |r: usize| {
            tweets[r].embedding_text() == t.embedding_text()
                && prev.vectors[r * dim..(r + 1) * dim] == vectors[i * dim..(i + 1) * dim]
        };
        let row = by_id
            .get(&t.id)
            .or_else(|| dead_by_id.get(&t.id))
            .copied()
            .filter(|&r| same(r));
        match row {
            Some(r) => {
                tweets[r] = t.clone(); // counts and dates may have changed
                kept[r] = true;
                revived += usize::from(prev.dead[r]);
                dead[r] = false;
            }
            None => appended.push(i),
        }
    }
    let mut removed = 0;
    for r in 0..rows {
        if !dead[r] && !kept[r] {
            dead[r] = true;
            removed += 1;
        }
    }
    let tombstones = dead.iter().filter(|d| **d).count();
    // The search beam is only recorded; the graph's shape needs a rebuild to change.
    let (was, now) = (prev.manifest.hnsw, params);
    let reshaped = (was.m, was.ef_construction) != (now.m, now.ef_construction);
    if reshaped || compacts(tombstones, rows + appended.len()) {
        return fresh(removed);
    }

    // A damaged hnsw_rs graph (readers never load it, so only an update finds out) is rebuilt.
    let hnsw = if appended.is_empty() {
        if !prev.hnsw_intact(dir) {
            return fresh(removed);
        }
        None
    } else {
        match prev.hnsw(dir) {
            Ok(g) => Some(g),
            Err(_) => return fresh(removed),
        }
    };
    // Only an optimisation (links to carry over): a flat copy that cannot be read is skipped.
    let carried = if hnsw.is_some() && prev.has_flat {
        prev.flat(dir).ok()
    } else {
        None
    };
    let files_vectors = if appended.is_empty() {
        None
    } else {
        let mut all =
            std::mem::replace(&mut prev.vectors, crate::npy::Vectors::Owned(Vec::new())).into_vec();
        for &i in &appended {
            tweets.push(corpus.tweets[i].clone());
            all.extend_from_slice(&vectors[i * dim..(i + 1) * dim]);
            dead.push(false);
        }
        Some(all)
    };
    files::commit(
        dir,
        current.as_deref(),
        Next {
            tweets: &tweets,
            dead: &dead,
            vectors: match &files_vectors {
                None => Source::Same(&prev),
                Some(all) => Source::Extend {
                    vectors: all,
                    graph: hnsw.as_ref().expect("loaded when appending"),
                    previous: carried.as_ref(),
                    from: rows,
                },
            },
            corpus: info,
            model,
            params,
        },
    )?;
    Ok(BuildReport {
        revived,
        ..report(n, appended.len(), removed, tombstones, false)
    })
}

/// The previous generation, when its vectors can be reused: same model, same text policy,
/// readable (every tweet parses). A damaged store is simply rebuilt.
fn previous(dir: &Path, model: &ModelIdentity) -> Option<Generation> {
    let m = read_manifest(dir).ok()?;
    if m.model != *model || m.embedding_text != EMBEDDING_TEXT_POLICY {
        return None;
    }
    let g = Generation::read(dir).ok()?;
    g.tweets(dir).ok()?;
    Some(g)
}

fn live_rows_by_id(g: &Generation) -> HashMap<u64, usize> {
    (0..g.table.len())
        .filter(|&r| !g.dead[r])
        .map(|r| (g.table.id(r), r))
        .collect()
}

fn compacts(tombstones: usize, rows: usize) -> bool {
    tombstones as f64 > COMPACT_SHARE * rows as f64
}

fn report(
    tweets: usize,
    appended: usize,
    removed: usize,
    tombstones: usize,
    rebuilt: bool,
) -> BuildReport {
    BuildReport {
        tweets,
        embedded: 0,
        reused: 0,
        appended,
        removed,
        tombstones,
        revived: 0,
        rebuilt,
    }
}

fn text_key(text: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(text.as_bytes())
}
