//! The graph as searches read it: hnsw_rs builds and extends the graph, then its links are
//! copied into flat arrays (`graph.flat`), rows no walk could reach are linked in
//! ([`Flat::connect`]), and queries walk those arrays.
//!
//! hnsw_rs keeps every point behind an `Arc` with a lock per neighbour list and allocates on
//! each search; walking plain `u32` arrays with the store's own vectors, a reusable visited
//! set and the SIMD dot product is several times faster, and reloading is one read instead
//! of rebuilding hnsw_rs's object graph (and its second copy of the vectors).
//!
//! File layout (little-endian `u32`s after an 8-byte magic):
//!
//! ```text
//! magic "TSFLAT01" · n · m0 (layer-0 width) · m (upper width) · top level · entry row
//! layer 0:  n × m0 neighbour rows, padded with u32::MAX
//! levels:   n levels (0 for most rows)
//! upper_at: n offsets into `upper` (u32::MAX for rows of level 0)
//! upper:    for each row of level L ≥ 1, L × m neighbour rows (layers 1..=L), padded
//! ```
//!
//! `TSFLAT02` files go on with the rows' one-byte codes ([`Codes`]), which walks score
//! instead of the float vectors:
//!
//! ```text
//! zeros up to a 64-byte boundary of the file
//! scales:   dim f32s (a code times its dimension's scale is the value), padded to 64 bytes
//! codes:    n rows of dim i8s, each padded to a multiple of 64 bytes
//! dim · where the scales start (the last two words)
//! ```

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::Range;
use std::path::Path;

use hnsw_rs::prelude::{Hnsw, Neighbour};
use rayon::prelude::*;

use super::graph::UnitCosine;
use crate::fsutil;
use crate::simd::{dot, dot_i8, prefetch, prefetch_bytes};

pub const FILE: &str = "graph.flat";
/// Links only; walks score the float vectors.
const MAGIC_LINKS: &[u8; 8] = b"TSFLAT01";
/// Links and the rows' codes.
const MAGIC: &[u8; 8] = b"TSFLAT02";
const NONE: u32 = u32::MAX;

pub struct Flat {
    n: usize,
    m0: usize,
    m: usize,
    top: usize,
    entry: usize,
    /// Where the codes lie in `words`, if the file has them.
    codes: Option<Codes>,
    /// The file after its magic: header, layer 0, levels, upper_at, upper, then the codes.
    words: Words,
}

/// Each row's vector in one signed byte per dimension, `round(v / scale)` with the
/// dimension's scale `max |v| / 127` over all rows.
///
/// A walk's time goes to fetching rows from memory: at 200,000 rows a walk to recall 0.99
/// scores ~2,800 rows, each 1,536 bytes in floats from anywhere in 300 MB. Codes are a
/// quarter of that. They are close enough to steer the walk (error ~1e-3 in a cosine); the
/// best rows the walk found are scored again from the floats ([`RESCORE`]) and re-sorted, so
/// the scores returned are exact cosines and the walk's misorderings among its best rows are
/// undone (which rows it finds at all stays as approximate as any graph search).
#[derive(Clone, Copy)]
struct Codes {
    dim: usize,
    /// Bytes per row: `dim` rounded up to a cache line.
    stride: usize,
    /// Word offset of the scales, then of the rows.
    scales_at: usize,
    rows_at: usize,
}

impl Codes {
    /// The layout for `dim`-wide rows whose scales start at word `scales_at`; `None` when
    /// the numbers overflow (only a malformed file asks for that).
    fn at(dim: usize, scales_at: usize) -> Option<Codes> {
        Some(Codes {
            dim,
            stride: dim.checked_next_multiple_of(64)?,
            scales_at,
            rows_at: scales_at.checked_add(dim.checked_next_multiple_of(16)?)?,
        })
    }

    /// Words from the scales to the end of the trailer, for `n` rows.
    fn words(&self, n: usize) -> Option<usize> {
        n.checked_mul(self.stride / 4)?
            .checked_add(self.rows_at - self.scales_at + 2)
    }
}

/// How many of the walk's best rows are scored again from their float vectors, at least (all
/// `k` asked for always are). The bench's vectors come in clusters of near-identical rows
/// that codes misorder: at 200,000 rows and ef 320, rescoring only the top 10 took recall@10
/// from 0.995 to 0.961; 32 keeps it at 0.995.
const RESCORE: usize = 32;

/// Where each part starts in `Flat::words`.
const HEAD: usize = 5;

/// Widest beam on the upper layers. On a million synthetic vectors a single greedy path
/// (hnswlib's way) left recall@10 at 0.79 at ef 64; a beam of 16 on every upper layer took it
/// to 0.88 (`cargo bench --bench hnsw_scale -- N OUT --reuse`).
const UPPER_EF: usize = 16;

/// Layer-0 slots per row beyond hnsw_rs's 2·M, for links to otherwise unreachable rows.
const SPARE: usize = 8;

/// How many reached rows near an unreachable one are tried for a free slot.
const CONNECT_TRIES: usize = 32;

/// How many of them link to it. One link makes a row reachable, but a walk must then pass
/// through that one row; on the 1M bench graph three raised recall@10 at ef 64 from 0.922 to
/// 0.933 at the same QPS, eight only to 0.936 (`connect_on_a_bench_store` below).
const CONNECT_LINKS: usize = 3;

impl Flat {
    /// Copies the links of an hnsw_rs graph whose data ids are rows `0..n` of `vectors`, then
    /// links every row no walk could reach ([`Flat::connect`]) and every row a search could
    /// not find ([`Flat::unhide`]). `previous` is the flat copy of the graph this one was
    /// grown from (an append), if there is one: its links are carried over
    /// ([`Flat::carry`]), so only the new rows are searched for.
    pub fn from_hnsw(
        h: &Hnsw<f32, UnitCosine>,
        vectors: &[f32],
        dim: usize,
        previous: Option<&Flat>,
    ) -> Result<Flat, String> {
        let n = h.get_nb_point();
        if vectors.len() != n * dim {
            return Err(format!(
                "the graph holds {n} points but there are {} vectors of {dim} dims",
                vectors.len() / dim.max(1)
            ));
        }
        let mut flat = Flat::copy(h, vectors, dim)?;
        let mut new_rows = 0..n;
        if let Some(previous) = previous {
            flat.carry(previous);
            new_rows.start = previous.n.min(n);
        }
        flat.connect(vectors, dim);
        flat.unhide(vectors, dim, new_rows);
        Ok(flat)
    }

    /// hnsw_rs's links as they are, and the codes of `vectors` (rows `0..n`, `dim` wide).
    fn copy(h: &Hnsw<f32, UnitCosine>, vectors: &[f32], dim: usize) -> Result<Flat, String> {
        let n = h.get_nb_point();
        let m = h.get_max_nb_connection() as usize;
        let m0 = 2 * m + SPARE;
        let points = h.get_point_indexation();
        let top = points.get_max_level_observed() as usize;
        let mut layer0 = vec![NONE; n * m0];
        let mut levels = vec![0u32; n];
        let mut upper_lists: Vec<(usize, Vec<Vec<u32>>)> = Vec::new();
        let mut seen = vec![false; n];
        let row_of = |id: usize| -> Result<usize, String> {
            if id < n {
                Ok(id)
            } else {
                Err(format!(
                    "graph point has data id {id}, beyond its {n} points"
                ))
            }
        };
        for p in points {
            let row = row_of(p.get_origin_id())?;
            if std::mem::replace(&mut seen[row], true) {
                return Err(format!("graph holds row {row} twice"));
            }
            let level = p.get_point_id().0 as usize;
            let layers = p.get_neighborhood_id();
            levels[row] = level as u32;
            let mut near: Vec<&Neighbour> = layers.first().into_iter().flatten().collect();
            near.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.d_id.cmp(&b.d_id)));
            for (slot, nb) in layer0[row * m0..(row + 1) * m0 - SPARE]
                .iter_mut()
                .zip(near)
            {
                *slot = row_of(nb.d_id)? as u32;
            }
            if level > 0 {
                let mut up = Vec::with_capacity(level);
                for l in 1..=level {
                    let list = layers.get(l).map(Vec::as_slice).unwrap_or_default();
                    up.push(
                        list.iter()
                            .take(m)
                            .map(|nb| row_of(nb.d_id).map(|r| r as u32))
                            .collect::<Result<Vec<u32>, String>>()?,
                    );
                }
                upper_lists.push((row, up));
            }
        }
        if seen.iter().any(|s| !s) {
            return Err("graph misses some rows".into());
        }
        let entry = points
            .get_layer_iterator(top)
            .next()
            .map_or(0, |p| p.get_origin_id());
        let mut upper_at = vec![NONE; n];
        let mut upper = Vec::new();
        upper_lists.sort_by_key(|(row, _)| *row);
        for (row, layers) in upper_lists {
            upper_at[row] = upper.len() as u32;
            for list in layers {
                let start = upper.len();
                upper.extend(list);
                upper.resize(start + m, NONE);
            }
        }
        let mut words = vec![n as u32, m0 as u32, m as u32, top as u32, entry as u32];
        for part in [layer0, levels, upper_at, upper] {
            words.extend(part);
        }
        let codes = if dim == 0 {
            None
        } else {
            Some(encode(&mut words, vectors, dim)?)
        };
        Ok(Flat {
            n,
            m0,
            m,
            top,
            entry,
            codes,
            words: Words::Owned(words),
        })
    }

    pub fn len(&self) -> usize {
        self.n
    }

    /// Makes every row reachable on layer 0 from the entry point: each row a walk cannot
    /// get to gets links from the [`CONNECT_LINKS`] nearest reachable rows with a free slot,
    /// found by searching the graph for the row's own vector. Returns the number of links
    /// added.
    ///
    /// hnsw_rs keeps layer-0 lists to 2·M by dropping the farthest link when a list
    /// overflows, without checking that the dropped row stays reachable. Rows in tight
    /// groups (near-duplicates) end up linked only from each other: on a million synthetic
    /// vectors 15.5% of the rows, and 6.5% of the exact top-10 answers, could not be reached
    /// from the entry point whatever the ef. Each row has [`SPARE`] slots beyond hnsw_rs's 2·M
    /// for these links.
    fn connect(&mut self, vectors: &[f32], dim: usize) -> usize {
        self.connect_with(vectors, dim, CONNECT_LINKS)
    }

    /// [`Flat::connect`] with `links` links to each unreachable row.
    fn connect_with(&mut self, vectors: &[f32], dim: usize, links: usize) -> usize {
        let (n, m0) = (self.n, self.m0);
        if n == 0 {
            return 0;
        }
        let mut reached = vec![false; n];
        let mut stack = Vec::new();
        self.mark_reached(self.entry, &mut reached, &mut stack);
        let mut added = 0;
        // Rows whose reached neighbours are all full take the last slot of the nearest one;
        // the row that slot linked to may become unreachable, so sweep again (rarely needed:
        // no slot was ever short at 1M).
        for _sweep in 0..4 {
            let mut replaced = false;
            for row in 0..n {
                if reached[row] {
                    continue;
                }
                let query = &vectors[row * dim..(row + 1) * dim];
                let near = self.search(
                    vectors,
                    dim,
                    query,
                    CONNECT_TRIES,
                    2 * CONNECT_TRIES,
                    Some(&|r| reached[r]),
                );
                let Some(&(nearest, _)) = near.first() else {
                    continue;
                };
                let words = self.words.make_owned();
                let slots = |r: usize| HEAD + r * m0..HEAD + (r + 1) * m0;
                let free: Vec<usize> = near
                    .iter()
                    .filter_map(|&(r, _)| {
                        let at = slots(r).start;
                        words[slots(r)]
                            .iter()
                            .position(|&v| v == NONE)
                            .map(|i| at + i)
                    })
                    .take(links)
                    .collect();
                if free.is_empty() {
                    replaced = true;
                    words[slots(nearest).end - 1] = row as u32;
                    added += 1;
                }
                for at in free {
                    words[at] = row as u32;
                    added += 1;
                }
                self.mark_reached(row, &mut reached, &mut stack);
            }
            if !replaced {
                break;
            }
            reached.fill(false);
            self.mark_reached(self.entry, &mut reached, &mut stack);
        }
        added
    }

    /// Carries the layer-0 links of `previous` (the flat copy of the graph before an append:
    /// rows keep their numbers) into this copy's free slots. Returns the number carried.
    ///
    /// hnsw_rs never learns of the links `connect` and `unhide` add, so the copy of a grown
    /// graph lacks them all again (at 1M: ~35,000 unreachable and ~78,000 hidden rows to search
    /// for anew, a minute and a half). Carrying every old link back, hnsw_rs's own pruned
    /// ones included, keeps the old rows' lists a superset of what searches walked before;
    /// a layer-0 list holds ~10 links on average, so the 40 slots have room.
    fn carry(&mut self, previous: &Flat) -> usize {
        let (n, m0) = (self.n.min(previous.n), self.m0);
        let words = self.words.make_owned();
        let mut carried = 0;
        for row in 0..n {
            let slots = &mut words[HEAD + row * m0..HEAD + (row + 1) * m0];
            for &to in previous.links(row, 0) {
                if to as usize >= n || slots.contains(&to) {
                    continue;
                }
                let Some(free) = slots.iter_mut().find(|v| **v == NONE) else {
                    break;
                };
                *free = to;
                carried += 1;
            }
        }
        carried
    }

    /// Links each row of `rows` that a search for its own vector does not return first from
    /// the nearest rows that search did find (up to [`CONNECT_LINKS`], free slots only).
    /// Returns (rows hidden, links added).
    ///
    /// Reachable is not findable: hnsw_rs inserts rows in order, and a row inserted early
    /// keeps the links it chose then, while rows inserted later near it may prune it from
    /// their lists (their own near neighbours "cover" it). On the 1M bench graph 6.6% of rows
    /// were not found by a search for their own vector at ef 64; their neighbourhoods' queries
    /// missed them at any ef (recall@10 at ef 768 stayed at 0.965). One pass, searched on all
    /// cores: 78,000 rows linked in ~80 s at 1M, recall@10 at ef 64 0.949 → 0.974.
    fn unhide(&mut self, vectors: &[f32], dim: usize, rows: Range<usize>) -> (usize, usize) {
        self.unhide_with(vectors, dim, rows, CONNECT_TRIES)
    }

    /// [`Flat::unhide`] searching for `tries` rows (also its ef).
    fn unhide_with(
        &mut self,
        vectors: &[f32],
        dim: usize,
        rows: Range<usize>,
        tries: usize,
    ) -> (usize, usize) {
        let hidden: Vec<(usize, Vec<(usize, f32)>)> = rows
            .into_par_iter()
            .filter_map(|row| {
                let v = &vectors[row * dim..(row + 1) * dim];
                let near = self.search(vectors, dim, v, tries, tries, None);
                (near.first().is_some_and(|h| h.0 != row)).then_some((row, near))
            })
            .collect();
        let m0 = self.m0;
        let words = self.words.make_owned();
        let mut added = 0;
        for (row, near) in &hidden {
            let mut linked = 0;
            for &(from, _) in near {
                if linked == CONNECT_LINKS {
                    break;
                }
                let slots = &mut words[HEAD + from * m0..HEAD + (from + 1) * m0];
                if from == *row || slots.contains(&(*row as u32)) {
                    continue;
                }
                if let Some(free) = slots.iter_mut().find(|v| **v == NONE) {
                    *free = *row as u32;
                    linked += 1;
                }
            }
            added += linked;
        }
        (hidden.len(), added)
    }

    /// Marks the rows reachable on layer 0 from `from` (depth first).
    fn mark_reached(&self, from: usize, reached: &mut [bool], stack: &mut Vec<usize>) {
        reached[from] = true;
        stack.push(from);
        while let Some(r) = stack.pop() {
            for &v in self.links(r, 0) {
                let v = v as usize;
                if v < self.n && !reached[v] {
                    reached[v] = true;
                    stack.push(v);
                }
            }
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let words = self.words.as_slice();
        let mut bytes = Vec::with_capacity(8 + 4 * words.len());
        bytes.extend_from_slice(if self.codes.is_some() {
            MAGIC
        } else {
            MAGIC_LINKS
        });
        for v in words {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(path, bytes)
    }

    /// Maps and checks a `graph.flat`: its shape, every level and upper-layer offset (one
    /// pass over the rows). Links are checked as searches follow them, so opening a
    /// million-row graph reads a few megabytes, not all of it.
    pub fn read(path: &Path) -> Result<Flat, String> {
        let (words, with_codes) = map_words(path)?;
        let bad = |what: &str| format!("{} is malformed ({what})", path.display());
        let w = words.as_slice();
        if w.len() < HEAD {
            return Err(bad("not a tweetsim flat graph"));
        }
        let [n, m0, m, top, entry] = [0, 1, 2, 3, 4].map(|i| w[i] as usize);
        let upper_start = n
            .checked_mul(m0)
            .and_then(|x| x.checked_add(2 * n + HEAD))
            .filter(|&x| x <= w.len())
            .ok_or_else(|| bad("shorter than its header says"))?;
        if m == 0 || m0 == 0 || (n > 0 && entry >= n) || top > 255 {
            return Err(bad("header out of range"));
        }
        let mut upper_end = w.len();
        let codes = if with_codes {
            let [dim, scales_at] = match w[upper_start..] {
                [.., dim, at] => [dim as usize, at as usize],
                _ => return Err(bad("no codes trailer")),
            };
            let codes = Codes::at(dim, scales_at)
                .filter(|_| dim > 0 && scales_at >= upper_start)
                .filter(|c| {
                    c.words(n)
                        .and_then(|len| len.checked_add(scales_at))
                        .is_some_and(|end| end == w.len())
                })
                .ok_or_else(|| bad("codes out of range"))?;
            upper_end = scales_at;
            Some(codes)
        } else {
            None
        };
        let flat = Flat {
            n,
            m0,
            m,
            top,
            entry,
            codes,
            words,
        };
        let upper_len = upper_end - upper_start;
        let (levels, upper_at) = (flat.levels(), flat.upper_at());
        for row in 0..n {
            let level = levels[row] as usize;
            if level > top {
                return Err(bad("a level above the top"));
            }
            let at = upper_at[row];
            let ok = if level == 0 {
                at == NONE
            } else {
                (at as usize)
                    .checked_add(level * m)
                    .is_some_and(|end| at != NONE && end <= upper_len)
            };
            if !ok {
                return Err(bad("an upper-layer offset out of range"));
            }
        }
        if n > 0 && (levels[entry] as usize) != top {
            return Err(bad("the entry point is not on the top level"));
        }
        Ok(flat)
    }

    fn layer0(&self) -> &[u32] {
        &self.words.as_slice()[HEAD..HEAD + self.n * self.m0]
    }

    fn levels(&self) -> &[u32] {
        let at = HEAD + self.n * self.m0;
        &self.words.as_slice()[at..at + self.n]
    }

    fn upper_at(&self) -> &[u32] {
        let at = HEAD + self.n * self.m0 + self.n;
        &self.words.as_slice()[at..at + self.n]
    }

    fn upper(&self) -> &[u32] {
        let end = self
            .codes
            .map_or(self.words.as_slice().len(), |c| c.scales_at);
        &self.words.as_slice()[HEAD + self.n * (self.m0 + 2)..end]
    }

    /// The codes, if this graph has them for `dim`-wide vectors: (scales, rows, bytes from
    /// one row to the next).
    fn code_rows(&self, dim: usize) -> Option<(&[f32], &[i8], usize)> {
        let c = self.codes.filter(|c| c.dim == dim)?;
        let w = self.words.as_slice();
        let scales = bytemuck::cast_slice(&w[c.scales_at..c.scales_at + dim]);
        let rows = bytemuck::cast_slice(&w[c.rows_at..c.rows_at + self.n * c.stride / 4]);
        Some((scales, rows, c.stride))
    }

    fn links(&self, row: usize, layer: usize) -> &[u32] {
        // hnsw_rs's upper-layer lists can name a point that does not reach that layer; such a
        // point has no links there.
        let list = if layer == 0 {
            &self.layer0()[row * self.m0..(row + 1) * self.m0]
        } else if layer > self.levels()[row] as usize {
            return &[];
        } else {
            let at = self.upper_at()[row] as usize + (layer - 1) * self.m;
            &self.upper()[at..at + self.m]
        };
        let len = list.iter().position(|&v| v == NONE).unwrap_or(list.len());
        &list[..len]
    }

    /// Up to `k` rows nearest `query` among those `keep` accepts, best first, with their dot
    /// product. `vectors` holds the graph's rows (row-major, `dim` wide). Rejected rows are
    /// still walked through, only never returned.
    pub fn search(
        &self,
        vectors: &[f32],
        dim: usize,
        query: &[f32],
        k: usize,
        ef: usize,
        keep: Option<&dyn Fn(usize) -> bool>,
    ) -> Vec<(usize, f32)> {
        if self.n == 0 || k == 0 {
            return Vec::new();
        }
        let floats = Probe::Floats {
            vectors,
            dim,
            query,
        };
        let scaled: Vec<f32>;
        let probe = match self.code_rows(dim) {
            Some((scales, rows, stride)) => {
                scaled = query.iter().zip(scales).map(|(q, s)| q * s).collect();
                Probe::Codes {
                    rows,
                    stride,
                    query: &scaled,
                }
            }
            None => floats,
        };
        let accept = |row: usize| keep.is_none_or(|f| f(row));

        let ef = ef.max(k);
        SCRATCH.with_borrow_mut(|scratch| {
            // Down the upper layers with a beam of ef/4 rows (at most [`UPPER_EF`]) rather
            // than hnswlib's single greedy path: every row of it seeds the next layer, so a
            // query whose neighbours lie in separate regions of the graph can reach them.
            let upper_ef = (ef / 4).clamp(1, UPPER_EF);
            let mut seeds = vec![(self.entry, probe.sim(self.entry))];
            for layer in (1..=self.top).rev() {
                seeds = self.beam(scratch, layer, &seeds, upper_ef, probe, |_| true);
            }
            let mut out = self.beam(scratch, 0, &seeds, ef, probe, accept);
            if let Probe::Codes { .. } = probe {
                out.truncate(k.max(RESCORE));
                for (row, s) in &mut out {
                    *s = floats.sim(*row);
                }
                out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            }
            out.truncate(k);
            out
        })
    }

    /// Beam search on one layer from `seeds`: the `ef` best rows `accept` takes (all rows are
    /// walked through), best first.
    fn beam(
        &self,
        scratch: &mut Scratch,
        layer: usize,
        seeds: &[(usize, f32)],
        ef: usize,
        probe: Probe,
        accept: impl Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        let Scratch {
            visited,
            open,
            found,
            fresh,
        } = scratch;
        visited.reset(self.n);
        open.clear();
        found.clear();
        let keep = |found: &mut BinaryHeap<Reverse<Scored>>, s: f32, row: usize| {
            if accept(row) {
                found.push(Reverse(Scored(s, row)));
                if found.len() > ef {
                    found.pop();
                }
            }
        };
        for &(row, s) in seeds {
            if visited.insert(row) {
                open.push(Scored(s, row));
                keep(found, s, row);
            }
        }
        while let Some(Scored(s, row)) = open.pop() {
            if found.len() >= ef && found.peek().is_some_and(|w| s < w.0 .0) {
                break;
            }
            // First the rows not seen yet, their vectors requested from memory all at once;
            // then the dot products, by which time the first lines have arrived.
            fresh.clear();
            for &nb in self.links(row, layer) {
                let nb = nb as usize;
                if nb < self.n && visited.insert(nb) {
                    probe.touch(nb);
                    fresh.push(nb);
                }
            }
            for &nb in fresh.iter() {
                let s = probe.sim(nb);
                let worst = found.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0);
                if found.len() < ef || s > worst {
                    open.push(Scored(s, nb));
                    keep(found, s, nb);
                }
            }
            // The best open row is most often the next expanded: fetch its links meanwhile.
            if let (0, Some(next)) = (layer, open.peek()) {
                let m0 = self.m0;
                prefetch_bytes(bytemuck::cast_slice(
                    &self.layer0()[next.1 * m0..(next.1 + 1) * m0],
                ));
            }
        }
        let mut out: Vec<(usize, f32)> = found.drain().map(|r| (r.0 .1, r.0 .0)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }
}

/// A query and the graph's rows: how a walk scores rows.
#[derive(Clone, Copy)]
enum Probe<'a> {
    /// The float vectors (row-major, `dim` wide): exact cosines.
    Floats {
        vectors: &'a [f32],
        dim: usize,
        query: &'a [f32],
    },
    /// The rows' codes, `stride` bytes apart, and the query times the scales: cosines to
    /// ~1e-3.
    Codes {
        rows: &'a [i8],
        stride: usize,
        query: &'a [f32],
    },
}

impl Probe<'_> {
    fn sim(&self, row: usize) -> f32 {
        match *self {
            Probe::Floats {
                vectors,
                dim,
                query,
            } => dot(query, &vectors[row * dim..(row + 1) * dim]),
            Probe::Codes {
                rows,
                stride,
                query,
            } => dot_i8(query, &rows[row * stride..row * stride + query.len()]),
        }
    }

    /// Starts loading a row before it is scored.
    fn touch(&self, row: usize) {
        match *self {
            Probe::Floats { vectors, dim, .. } => prefetch(&vectors[row * dim..(row + 1) * dim]),
            Probe::Codes {
                rows,
                stride,
                query,
            } => prefetch_bytes(&rows[row * stride..row * stride + query.len()]),
        }
    }
}

/// Appends the codes of `vectors` (`dim` wide, `dim` > 0) to a graph's words, as laid out in
/// the module doc, and says where they went.
fn encode(words: &mut Vec<u32>, vectors: &[f32], dim: usize) -> Result<Codes, String> {
    // The file's words start 8 bytes in (after the magic): pad to a 64-byte file offset.
    while !(8 + 4 * words.len()).is_multiple_of(64) {
        words.push(0);
    }
    // The trailer holds both as u32s.
    let codes = Codes::at(dim, words.len())
        .filter(|_| u32::try_from(words.len()).is_ok() && u32::try_from(dim).is_ok())
        .ok_or("the graph is too large for graph.flat's 32-bit offsets")?;
    let mut scales = vec![0f32; dim];
    for row in vectors.chunks_exact(dim) {
        for (s, v) in scales.iter_mut().zip(row) {
            *s = s.max(v.abs());
        }
    }
    for s in &mut scales {
        *s /= 127.0;
    }
    words.extend(scales.iter().map(|s| s.to_bits()));
    words.resize(codes.rows_at, 0);
    let mut row_bytes = vec![0i8; codes.stride];
    for row in vectors.chunks_exact(dim) {
        for ((c, v), s) in row_bytes.iter_mut().zip(row).zip(&scales) {
            *c = if *s > 0.0 {
                (v / s).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            };
        }
        words.extend(
            row_bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]].map(|x| x as u8))),
        );
    }
    words.extend([dim as u32, codes.scales_at as u32]);
    Ok(codes)
}

/// The graph's `u32`s, after the magic.
type Words = fsutil::Contents<u32>;

/// Maps a graph file: its words, and whether it has codes.
fn map_words(path: &Path) -> Result<(Words, bool), String> {
    let map = fsutil::map_immutable(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let with_codes = map.get(..8) == Some(&MAGIC[..]);
    if !(with_codes || map.get(..8) == Some(&MAGIC_LINKS[..])) || (map.len() - 8) % 4 != 0 {
        return Err(format!(
            "{} is malformed (not a tweetsim flat graph)",
            path.display()
        ));
    }
    let len = (map.len() - 8) / 4;
    let words = Words::of(map, 8, len, |c| {
        u32::from_le_bytes(c.try_into().expect("4 bytes"))
    });
    Ok((words, with_codes))
}

/// A row and its similarity, ordered by similarity (then row, for a total order).
#[derive(Clone, Copy, PartialEq)]
struct Scored(f32, usize);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// What a search needs besides the graph, kept per thread so a search allocates little (the
/// scaled query and the result lists).
struct Scratch {
    visited: Visited,
    open: BinaryHeap<Scored>,
    found: BinaryHeap<Reverse<Scored>>,
    /// The unvisited neighbours of the row being expanded.
    fresh: Vec<usize>,
}

/// Rows seen by the current search: a stamp per row, so clearing is one increment.
struct Visited {
    stamp: u32,
    marks: Vec<u32>,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.marks.fill(0);
            self.stamp = 1;
        }
    }

    /// True the first time `row` is seen in this search.
    fn insert(&mut self, row: usize) -> bool {
        let seen = self.marks[row] == self.stamp;
        self.marks[row] = self.stamp;
        !seen
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            visited: Visited { stamp: 0, marks: Vec::new() },
            open: BinaryHeap::new(),
            found: BinaryHeap::new(),
            fresh: Vec::new(),
        })
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-layer graph of unit vectors in the plane at these angles (degrees), with
    /// `m0` layer-0 slots per row, entry row 0.
    fn plane(m0: usize, layer0: &[u32], degrees: &[f32]) -> (Flat, Vec<f32>) {
        let n = degrees.len();
        assert_eq!(layer0.len(), n * m0);
        let vectors: Vec<f32> = degrees
            .iter()
            .flat_map(|d| [d.to_radians().cos(), d.to_radians().sin()])
            .collect();
        let mut words = vec![n as u32, m0 as u32, 1, 0, 0];
        words.extend(layer0);
        words.extend(vec![0u32; n]); // levels
        words.extend(vec![NONE; n]); // upper_at
        let flat = Flat {
            n,
            m0,
            m: 1,
            top: 0,
            entry: 0,
            codes: None,
            words: Words::Owned(words),
        };
        (flat, vectors)
    }

    /// Rows 3 and 4 link to each other and to the rest, but nothing links to them. Row 3
    /// (50°) is nearest row 1 (45°), then row 2 (20°).
    fn unreachable_pair() -> (Flat, Vec<f32>) {
        const X: u32 = NONE;
        #[rustfmt::skip]
        let layer0 = [
            1, 2, X, // row 0
            0, 2, 0, // row 1, full
            0, 1, X, // row 2
            4, 1, X, // row 3
            3, 2, X, // row 4
        ];
        plane(3, &layer0, &[0.0, 45.0, 20.0, 50.0, 60.0])
    }

    /// A walk from the entry (row 0) could never return rows 3 and 4. `connect` links row 3
    /// from its nearest reached rows with a free slot (rows 2 and 0: row 1 is nearer but
    /// full), and row 4 is then reached through row 3.
    #[test]
    fn rows_no_walk_reaches_get_a_link_from_a_reached_row() {
        let (mut flat, vectors) = unreachable_pair();
        let hits = |f: &Flat| f.search(&vectors, 2, &vectors[6..8], 5, 8, None);
        assert!(hits(&flat).iter().all(|h| h.0 < 3));
        assert_eq!(flat.connect(&vectors, 2), 2);
        assert_eq!(flat.links(2, 0), [0, 1, 3]);
        assert_eq!(flat.links(0, 0), [1, 2, 3]);
        assert_eq!(flat.links(1, 0), [0, 2, 0]);
        assert_eq!(hits(&flat)[0].0, 3);
        let mut rows: Vec<usize> = hits(&flat).iter().map(|h| h.0).collect();
        rows.sort();
        assert_eq!(rows, [0, 1, 2, 3, 4]);
    }

    /// After an append, hnsw_rs's copy lacks `connect`'s links again; `carry` takes them
    /// from the previous copy (rows reached by its links need no search), and `connect` is
    /// left with nothing to do.
    #[test]
    fn an_append_keeps_the_links_that_made_rows_reachable() {
        let (mut before, vectors) = unreachable_pair();
        before.connect(&vectors, 2);
        let (mut after, _) = unreachable_pair();
        assert_eq!(after.carry(&before), 2);
        assert_eq!(after.links(0, 0), [1, 2, 3]);
        assert_eq!(after.links(2, 0), [0, 1, 3]);
        assert_eq!(after.connect(&vectors, 2), 0);
        // A previous copy that never reached them lends nothing: `connect` searches.
        let (mut fresh, _) = unreachable_pair();
        let (unconnected, _) = unreachable_pair();
        assert_eq!(fresh.carry(&unconnected), 0);
        assert_eq!(fresh.connect(&vectors, 2), 2);
    }

    /// Row 4 (31°) is reachable (0 → 5 → 4) but only from row 5 (90°), which a greedy walk
    /// towards 31° never expands: it goes 0 → 1 → 2 → 3 and stops. `unhide` links row 4 from
    /// the row that search found instead (3); nothing else is hidden.
    #[test]
    fn rows_a_search_cannot_find_get_a_link_from_where_it_ends() {
        const X: u32 = NONE;
        #[rustfmt::skip]
        let layer0 = [
            1, 5, X, // row 0
            0, 2, X, // row 1
            1, 3, X, // row 2
            2, X, X, // row 3
            3, X, X, // row 4
            0, 4, X, // row 5
        ];
        let (mut flat, vectors) = plane(3, &layer0, &[0.0, 10.0, 20.0, 30.0, 31.0, 90.0]);
        let greedy = |f: &Flat| f.search(&vectors, 2, &vectors[8..10], 1, 1, None)[0].0;
        assert_eq!(greedy(&flat), 3);
        assert_eq!(flat.unhide_with(&vectors, 2, 0..6, 1), (1, 1));
        assert_eq!(flat.links(3, 0), [2, 4]);
        assert_eq!(greedy(&flat), 4);
        assert_eq!(flat.unhide_with(&vectors, 2, 0..6, 1), (0, 0));
    }

    /// `n` unit vectors of `dim` dimensions, pseudo-random but fixed, in loose clusters.
    fn clustered(n: usize, dim: usize) -> Vec<f32> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let centres: Vec<f32> = (0..8 * dim).map(|_| next()).collect();
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let c = &centres[(i % 8) * dim..(i % 8 + 1) * dim];
            let v: Vec<f32> = c.iter().map(|x| x + 0.4 * next()).collect();
            let norm = dot(&v, &v).sqrt();
            out.extend(v.iter().map(|x| x / norm));
        }
        out
    }

    /// A graph written with codes reads back with them; walks score the codes, and what a
    /// search returns is scored exactly: each row finds itself first with its own cosine,
    /// and the top 10 match an exact scan. `dim` 40 leaves 24 bytes of padding per row.
    #[test]
    fn codes_steer_the_walk_and_results_are_scored_exactly() {
        let (n, dim) = (600, 40);
        let vectors = clustered(n, dim);
        let dir = tempfile::tempdir().unwrap();
        super::super::graph::build_and_dump(&vectors, dim, Default::default(), dir.path()).unwrap();
        let path = dir.path().join(FILE);
        assert_eq!(&std::fs::read(&path).unwrap()[..8], MAGIC);
        let flat = Flat::read(&path).unwrap();
        let (scales, rows, _) = flat.code_rows(dim).expect("codes");
        assert_eq!((scales.len(), rows.len()), (dim, n * 64));
        assert!(
            flat.code_rows(dim + 1).is_none(),
            "codes of another width are not used"
        );
        let mut found = 0;
        for (row, v) in vectors.chunks_exact(dim).enumerate() {
            let hits = flat.search(&vectors, dim, v, 10, 64, None);
            assert_eq!(hits[0].0, row);
            for &(r, s) in &hits {
                assert_eq!(s, dot(v, &vectors[r * dim..(r + 1) * dim]));
            }
            let mut exact: Vec<(usize, f32)> = vectors
                .chunks_exact(dim)
                .map(|w| dot(v, w))
                .enumerate()
                .collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1));
            found += hits
                .iter()
                .filter(|h| exact[..10].iter().any(|e| e.0 == h.0))
                .count();
        }
        let recall = found as f64 / (10 * n) as f64;
        assert!(recall >= 0.99, "recall@10 {recall}");
        // Each code is its value over the dimension's scale, rounded.
        let (r, d) = (17, 5);
        let code = f32::from(rows[r * 64 + d]);
        assert!((code * scales[d] - vectors[r * dim + d]).abs() <= scales[d] / 2.0 + 1e-6);
    }

    /// Graphs written before codes existed (`TSFLAT01`) still read and search, on the floats;
    /// a codes trailer that does not fit the file is refused.
    #[test]
    fn links_only_graphs_read_and_bad_codes_are_refused() {
        let (mut flat, vectors) = unreachable_pair();
        flat.connect(&vectors, 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        flat.write(&path).unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[..8], MAGIC_LINKS);
        let old = Flat::read(&path).unwrap();
        assert!(old.code_rows(2).is_none());
        assert_eq!(old.search(&vectors, 2, &vectors[6..8], 1, 8, None)[0].0, 3);

        let vectors = clustered(50, 8);
        super::super::graph::build_and_dump(&vectors, 8, Default::default(), dir.path()).unwrap();
        let good = std::fs::read(&path).unwrap();
        let at = good.len() - 8;
        for (what, word) in [
            ("dim", 65u32),
            ("dim", 0),
            ("scales", 3),
            ("scales", u32::MAX),
        ] {
            let mut bad = good.clone();
            let i = if what == "dim" { at } else { at + 4 };
            bad[i..i + 4].copy_from_slice(&word.to_le_bytes());
            std::fs::write(&path, &bad).unwrap();
            let e = Flat::read(&path).err().expect("refused");
            assert!(e.contains("codes out of range"), "{what} {word}: {e}");
        }
        std::fs::write(&path, &good[..good.len() - 4]).unwrap();
        assert!(Flat::read(&path).is_err());
    }

    /// Not a CI test: how many links per unreachable row pay, on a store `scripts/bench-hnsw.sh
    /// N` built. Reloads the newest generation's hnsw_rs graph and, for each count in
    /// `LINKS`, copies it, connects it and prints recall@10 over OUT's queries and truth.
    /// With `PREVIOUS=path/to/graph.flat` (the generation before the bench's append) links
    /// are carried from there first, as an append does; `GEN=folder` picks the generation
    /// (default the newest); `UNHIDE=0` skips [`Flat::unhide`]; `CODES=0` walks the float
    /// vectors instead of the codes; `EFS=16,64` picks the efs measured:
    ///
    /// `OUT=target/bench-hnsw/1000000 LINKS=1,3,8 cargo test --release --lib -- --ignored
    /// --nocapture connect_on_a_bench_store`
    #[test]
    #[ignore]
    fn connect_on_a_bench_store() {
        let out = std::path::PathBuf::from(std::env::var("OUT").expect("OUT"));
        let store = out.join("store");
        let gen = std::env::var("GEN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| {
                std::fs::read_dir(&store)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.join(FILE).exists())
                    .max()
                    .expect("a generation in OUT/store")
            });
        let (vectors, n, dim) = crate::npy::read(&gen.join("embeddings.npy")).unwrap();
        let (queries, nq, _) = crate::npy::read(&out.join("queries.npy")).unwrap();
        let truth: Vec<Vec<usize>> =
            serde_json::from_slice(&std::fs::read(out.join("truth.json")).unwrap()).unwrap();
        let graph = super::super::graph::Graph::load(&gen).unwrap();
        for links in std::env::var("LINKS").unwrap_or("1,3".into()).split(',') {
            let links: usize = links.parse().expect("LINKS: counts, comma-separated");
            let mut flat = graph.with_hnsw(|h| Flat::copy(h, &vectors, dim)).unwrap();
            assert_eq!(flat.n, n);
            let mut new_rows = 0..n;
            if let Ok(previous) = std::env::var("PREVIOUS") {
                let previous = Flat::read(std::path::Path::new(&previous)).unwrap();
                new_rows.start = previous.n;
                let t = std::time::Instant::now();
                let carried = flat.carry(&previous);
                println!(
                    "carried from {}: {carried} links in {:.1} s",
                    std::env::var("PREVIOUS").unwrap(),
                    t.elapsed().as_secs_f64()
                );
            }
            let t = std::time::Instant::now();
            let added = flat.connect_with(&vectors, dim, links);
            println!(
                "{links} link(s) per unreachable row: {added} added in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            if std::env::var("UNHIDE").map_or(true, |u| u != "0") {
                let t = std::time::Instant::now();
                let (hidden, added) = flat.unhide(&vectors, dim, new_rows);
                println!(
                    "unhide: {hidden} hidden rows, {added} links in {:.1} s",
                    t.elapsed().as_secs_f64()
                );
            }
            if std::env::var("CODES").is_ok_and(|c| c == "0") {
                flat.codes = None;
            }
            let efs = std::env::var("EFS").unwrap_or("16,64,256,768".into());
            for ef in efs
                .split(',')
                .map(|e| e.parse::<usize>().expect("EFS: numbers"))
            {
                let t = std::time::Instant::now();
                let mut found = 0;
                for (q, want) in queries.chunks_exact(dim).zip(&truth) {
                    let hits = flat.search(&vectors, dim, q, 10, ef, None);
                    found += hits.iter().filter(|h| want.contains(&h.0)).count();
                }
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "  ef {ef:>3}: recall@10 {:.4}, {:.0} QPS",
                    found as f64 / (10 * nq) as f64,
                    nq as f64 / secs
                );
            }
        }
    }
}
