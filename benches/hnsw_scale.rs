//! The HNSW store at scale, on synthetic tweets whose vectors are near real ones (the
//! generator `tweetsim synth --vectors` uses).
//!
//! For N tweets: build time and peak RSS of `index::build_from_vectors` (serial insertion,
//! M = 16, ef_construction = 200), the time to append 1% more tweets to the built store
//! (incremental, no rebuild), `Store::open` time, then recall@10 against exact search and
//! single-thread queries per second for an ef sweep, over 1,000 held-out query vectors (made
//! with another seed, not in the store).
//!
//! Recall is reported two ways: by id (a hit counts if it is one of the exact top 10 rows) and
//! with ann-benchmarks' tolerance (a hit counts if its cosine is within ε = 1e-3 of the exact
//! 10th best: near-ties are equally good answers).
//!
//! With an output folder it also writes `base.npy`, `queries.npy` and `truth.json` (exact top
//! 10 rows per query) there and keeps the store in `OUT/store`, so `scripts/bench-hnsw.sh` can
//! run hnswlib on the same vectors and time `tweetsim similar` processes on the store.
//! `--reuse` measures the store and queries already in OUT again, without building, and
//! rewrites the table in `OUT/ours.json` (so hnswlib can be run beside it again).
//! `--append-again` times appending the generator's next 1% of N to the store in OUT.
//!
//! Run: `cargo bench --bench hnsw_scale -- N [OUT] [--reuse | --append-again]`

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use tweetsim::corpus::{Corpus, Format, Tweet};
use tweetsim::embed::{Encoder, ModelIdentity, Resolver, DEFAULT_MODEL};
use tweetsim::index::{self, Filter, HnswParams, Store};
use tweetsim::simd::dot;
use tweetsim::{npy, synth};

const QUERIES: usize = 1000;
const K: usize = 10;
/// Finer between 256 and 384, where recall on these vectors jumps (clusters of ~300 rows);
/// beyond 768 for 1M, where recall climbs slowly up there.
const EFS: [usize; 19] = [
    10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 288, 320, 352, 384, 512, 768, 1024, 1536, 2048,
];
/// ann-benchmarks' recall tolerance on distances (here 1 − cosine).
const EPS: f32 = 1e-3;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn corpus(tweets: Vec<Tweet>, name: &str) -> Corpus {
    Corpus {
        source: name.into(),
        format: Format::Jsonl,
        entries: tweets.len(),
        tweets,
        merges: Vec::new(),
        blank: Vec::new(),
        content_hash: name.into(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let n: usize = args
        .first()
        .map_or(20_000, |s| s.parse().expect("N, a number of tweets"));
    let work = tempfile::tempdir().expect("temp dir");
    let out: Option<PathBuf> = args.get(1).map(PathBuf::from);
    if let Some(o) = &out {
        std::fs::create_dir_all(o).expect("output folder");
    }

    if std::env::args().any(|a| a == "--reuse") {
        let o = out.as_deref().expect("--reuse needs OUT");
        let mut store = Store::open(&o.join("store")).expect("open the store in OUT");
        let (queries, nq, dim) = npy::read(&o.join("queries.npy")).expect("OUT/queries.npy");
        assert_eq!((nq, dim), (QUERIES, store.dim()));
        println!(
            "{} tweets in {}, {QUERIES} queries (reused)",
            store.len(),
            o.display()
        );
        let table = measure(&mut store, &queries, None);
        // Keep the build time of the run that built the store; the table is this run's.
        let path = o.join("ours.json");
        let mut ours: serde_json::Value = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| serde_json::json!({"build_s": null}));
        ours["table"] = table.into();
        std::fs::write(&path, ours.to_string()).expect("ours.json");
        return;
    }

    let files = Resolver::from_env(None)
        .resolve(DEFAULT_MODEL)
        .expect("model");
    let encoder = Encoder::load(&files).expect("encoder");
    let model: ModelIdentity = encoder.identity().clone();
    let base = Corpus::bundled().tweets;
    let halves = synth::Halves::embed(&base, &encoder).expect("halves of the bundled tweets");
    let dim = halves.dim();

    if std::env::args().any(|a| a == "--append-again") {
        // The store in OUT holds the generator's first rows; append the next 1% of N.
        let dir = out
            .as_deref()
            .expect("--append-again needs OUT")
            .join("store");
        let rows = Store::open(&dir).expect("open the store in OUT").len();
        let extra = (n / 100).max(1);
        let (tweets, vectors) = synth::tweets_with_vectors(&base, &halves, rows + extra, 2022);
        let t = Instant::now();
        let r = index::build_from_vectors(
            &dir,
            &corpus(tweets, "synthetic+more"),
            &vectors,
            &model,
            HnswParams::default(),
        )
        .expect("append");
        assert!(!r.rebuilt && r.appended == extra, "{r:?}");
        println!(
            "append {extra} tweets to the {rows} in {}: {:.1} s (`--reuse` measures the grown store)",
            dir.display(),
            t.elapsed().as_secs_f64()
        );
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    println!(
        "{n} synthetic tweets, {dim} dims, {cores} cores, {QUERIES} held-out queries, k = {K}"
    );

    // One generator run: the store's N, 1% more to append, then (another seed) the queries.
    let extra = (n / 100).max(1);
    let (mut tweets, mut vectors) = synth::tweets_with_vectors(&base, &halves, n + extra, 2022);
    let (_, queries) = synth::tweets_with_vectors(&base, &halves, QUERIES, 7);
    let more_tweets = tweets.split_off(n);
    let more_vectors = vectors.split_off(n * dim);
    let base_rss = peak_rss_mb();

    let dir = match &out {
        Some(o) => {
            let d = o.join("store");
            let _ = std::fs::remove_dir_all(&d);
            d
        }
        None => work.path().join("store"),
    };
    let params = HnswParams::default();
    let t0 = Instant::now();
    index::build_from_vectors(
        &dir,
        &corpus(tweets.clone(), "synthetic"),
        &vectors,
        &model,
        params,
    )
    .expect("build");
    let build = t0.elapsed().as_secs_f64();
    let build_rss = peak_rss_mb();

    // Append 1%: the corpus grows, the graph is extended, nothing is rebuilt.
    let mut grown = tweets;
    grown.extend(more_tweets);
    let mut grown_vectors = vectors.clone();
    grown_vectors.extend(more_vectors);
    let t1 = Instant::now();
    let r = index::build_from_vectors(
        &dir,
        &corpus(grown, "synthetic+1%"),
        &grown_vectors,
        &model,
        params,
    )
    .expect("append");
    let append = t1.elapsed().as_secs_f64();
    assert!(!r.rebuilt && r.appended == extra, "{r:?}");
    drop(grown_vectors);

    let t2 = Instant::now();
    let mut store = Store::open(&dir).expect("open");
    let open = t2.elapsed().as_secs_f64();
    println!(
        "build {build:.1} s ({:.2} ms per tweet), peak RSS {build_rss:.0} MB (vectors and texts alone {base_rss:.0} MB)",
        1000.0 * build / n as f64
    );
    println!(
        "append {extra} tweets (1%) to the built store: {append:.1} s ({:.1}% of the build); Store::open {open:.2} s",
        100.0 * append / build
    );

    let ours = measure(&mut store, &queries, out.as_deref());
    if let Some(o) = &out {
        let ours = serde_json::json!({"build_s": build, "table": ours});
        std::fs::write(o.join("ours.json"), ours.to_string()).expect("ours.json");
        println!(
            "wrote {}/{{base.npy,queries.npy,truth.json,ours.json,store}}",
            o.display()
        );
    }
}

/// Exact top 10 per query, then recall and single-thread QPS for each ef; with `out`, writes
/// the vectors, queries and truth there for hnswlib. Returns the table.
fn measure(store: &mut Store, queries: &[f32], out: Option<&Path>) -> Vec<serde_json::Value> {
    let (rows, dim) = (store.len(), store.dim());
    // Exact top 10 of each query over every row (all cores; not timed): rows and the 10th
    // best score.
    let truth: Vec<(Vec<usize>, f32)> = queries
        .par_chunks_exact(dim)
        .map(|q| {
            let mut scored: Vec<(f32, usize)> =
                (0..rows).map(|r| (dot(q, store.vector(r)), r)).collect();
            scored.select_nth_unstable_by(K, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            scored.truncate(K);
            let tenth = scored.iter().map(|s| s.0).fold(f32::INFINITY, f32::min);
            (scored.iter().map(|s| s.1).collect(), tenth)
        })
        .collect();

    println!(
        "{:>5} {:>10} {:>14} {:>10} {:>12}",
        "ef", "recall@10", "recall@10 (ε)", "QPS", "ms/query"
    );
    let none = Filter::default();
    let mut table = Vec::new();
    for ef in EFS {
        store.set_ef_search(ef);
        let t = Instant::now();
        let (mut found, mut close) = (0, 0);
        for (q, (want, tenth)) in queries.chunks_exact(dim).zip(&truth) {
            let hits = store.search(q, K, &none, None).expect("search");
            found += hits.iter().filter(|h| want.contains(&h.row)).count();
            close += hits.iter().filter(|h| h.score >= tenth - EPS).count();
        }
        let secs = t.elapsed().as_secs_f64();
        let recall = found as f64 / (K * QUERIES) as f64;
        let recall_eps = close as f64 / (K * QUERIES) as f64;
        table.push(serde_json::json!({
            "ef": ef, "recall": recall, "recall_eps": recall_eps, "qps": QUERIES as f64 / secs
        }));
        println!(
            "{ef:>5} {:>10.4} {:>14.4} {:>10.0} {:>12.3}",
            recall,
            recall_eps,
            QUERIES as f64 / secs,
            1000.0 * secs / QUERIES as f64
        );
    }

    if let Some(o) = out {
        write_npy(&o.join("base.npy"), &store.vectors(), rows, dim);
        write_npy(&o.join("queries.npy"), queries, QUERIES, dim);
        let ids: Vec<&Vec<usize>> = truth.iter().map(|t| &t.0).collect();
        std::fs::write(
            o.join("truth.json"),
            serde_json::to_vec(&ids).expect("json"),
        )
        .expect("truth.json");
    }
    table
}

fn write_npy(path: &Path, v: &[f32], rows: usize, dim: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    npy::write(&mut f, v, rows, dim).expect("write .npy");
}
