//! Topic discovery and near-duplicate mining at scale on synthetic tweets whose vectors are near real ones.
//!
//! For each size N (default 10,000 and 100,000): N tweets are made by recombining the bundled
//! corpus (first half of one tweet's words + second half of another's, date of the first,
//! likes of the second) with vectors 0.7·v_i + 0.3·v_j + small noise, renormalised. A store is
//! built from them (HNSW included), then `topics::discover` and `Report::new` run on it.
//! Prints wall times per stage, topics found, unassigned share and peak RSS, so the growth from
//! 10k to 100k shows whether the pipeline is near-linear. `dups::find` (graph neighbours +
//! union-find) is timed on the same stores.
//!
//! Run: `cargo bench --bench topics_scale [-- 10000,100000]`

use std::time::Instant;

use tweetsim::corpus::{Corpus, Format};
use tweetsim::embed::{Encoder, Resolver, DEFAULT_MODEL};
use tweetsim::index::{self, HnswParams, Store};
use tweetsim::report::Report;
use tweetsim::synth;
use tweetsim::topics::{self, Options};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes like 10000,100000"))
        .collect();
    let work = tempfile::tempdir().expect("temp dir");

    // The model's embeddings of the bundled tweets' halves, as `tweetsim synth --vectors`.
    let files = Resolver::from_env(None)
        .resolve(DEFAULT_MODEL)
        .expect("model");
    let encoder = Encoder::load(&files).expect("encoder");
    let base = Corpus::bundled().tweets;
    let halves = synth::Halves::embed(&base, &encoder).expect("halves of the bundled tweets");
    println!(
        "cores: {}; base: {} real tweets",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        base.len()
    );
    println!(
        "{:>8} {:>9} {:>10} {:>10} {:>9} {:>7} {:>11} {:>7} {:>11} {:>9}",
        "tweets",
        "build s",
        "discover s",
        "report s",
        "s/1k twt",
        "topics",
        "unassigned",
        "dups s",
        "dup groups",
        "peak MB"
    );

    for &n in &sizes {
        // Texts and vectors from the same generator `tweetsim synth --vectors` uses.
        let (tweets, vectors) = synth::tweets_with_vectors(&base, &halves, n, 2022);
        let corpus = Corpus {
            source: format!("synthetic-{n}"),
            format: Format::Jsonl,
            entries: n,
            tweets,
            merges: Vec::new(),
            blank: Vec::new(),
            content_hash: format!("synthetic-{n}"),
        };
        let dir = work.path().join(format!("s{n}"));
        let t0 = Instant::now();
        index::build_from_vectors(
            &dir,
            &corpus,
            &vectors,
            encoder.identity(),
            HnswParams::default(),
        )
        .expect("build");
        let store = Store::open(&dir).expect("open");
        let build = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let found = topics::discover(&store, &Options::default()).expect("topics");
        let discover = t1.elapsed().as_secs_f64();
        let t2 = Instant::now();
        let report = Report::new(&store, &found).expect("report");
        let json = report.to_json();
        let rep = t2.elapsed().as_secs_f64();
        assert!(json.len() > n);
        let t3 = Instant::now();
        let dup_groups = tweetsim::dups::find(&store, tweetsim::search::DUPLICATE_COSINE);
        let dups = t3.elapsed().as_secs_f64();
        println!(
            "{n:>8} {build:>9.1} {discover:>10.2} {rep:>10.2} {:>9.3} {:>7} {:>10.1}% {dups:>7.2} {:>11} {:>9.0}",
            discover / (n as f64 / 1000.0),
            found.topics.len(),
            100.0 * report.unassigned_share,
            dup_groups.len(),
            peak_rss_mb()
        );
    }
}
