//! Topic discovery at scale on synthetic tweets whose vectors are near real ones.
//!
//! For each size N (default 10,000 and 100,000): N tweets are made by recombining the bundled
//! corpus (first half of one tweet's words + second half of another's, date of the first,
//! likes of the second) with vectors 0.7·v_i + 0.3·v_j + small noise, renormalised. A store is
//! built from them (HNSW included), then `topics::discover` and `Report::new` run on it.
//! Prints wall times per stage, topics found, unassigned share and peak RSS, so the growth from
//! 10k to 100k shows whether the pipeline is near-linear.
//!
//! Run: `cargo bench --bench topics_scale [-- 10000,100000]`

use std::time::Instant;

use tweetsim::corpus::{Corpus, Format, Tweet};
use tweetsim::embed::{Encoder, Resolver, DEFAULT_MODEL};
use tweetsim::index::{self, HnswParams, Store};
use tweetsim::report::Report;
use tweetsim::topics::{self, Options};

/// SplitMix64: a fixed-seed generator, so every run builds the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn normal(&mut self) -> f32 {
        let u1 = ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let u2 = ((self.next() >> 11) as f64) / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

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

    // The real vectors to start from.
    let files = Resolver::from_env(None)
        .resolve(DEFAULT_MODEL)
        .expect("model");
    let encoder = Encoder::load(&files).expect("encoder");
    let real_dir = work.path().join("real");
    index::build(
        &real_dir,
        &Corpus::bundled(),
        &encoder,
        HnswParams::default(),
        |_, _| {},
    )
    .expect("store");
    let real = Store::open(&real_dir).expect("open");
    let (base, dim) = (real.tweets(), real.dim());
    println!(
        "cores: {}; base: {} real tweets",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        base.len()
    );
    println!(
        "{:>8} {:>9} {:>10} {:>10} {:>9} {:>7} {:>11} {:>9}",
        "tweets",
        "build s",
        "discover s",
        "report s",
        "s/1k twt",
        "topics",
        "unassigned",
        "peak MB"
    );

    for &n in &sizes {
        let mut rng = Rng(2022);
        let mut tweets = Vec::with_capacity(n);
        let mut vectors = Vec::with_capacity(n * dim);
        for k in 0..n {
            let (i, j) = (rng.below(base.len()), rng.below(base.len()));
            let (a, b) = (&base[i], &base[j]);
            let wa: Vec<&str> = a.text.split_whitespace().collect();
            let wb: Vec<&str> = b.text.split_whitespace().collect();
            let text = [&wa[..wa.len().div_ceil(2)], &wb[wb.len() / 2..]]
                .concat()
                .join(" ");
            tweets.push(Tweet {
                id: 1_000_000_000_000 + k as u64,
                num: k + 1,
                text,
                metrics: b.metrics,
                ..a.clone()
            });
            let mut v: Vec<f32> = real
                .vector(i)
                .iter()
                .zip(real.vector(j))
                .map(|(x, y)| 0.7 * x + 0.3 * y + 0.02 * rng.normal())
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            vectors.extend(v);
        }
        let corpus = Corpus {
            source: format!("synthetic-{n}"),
            format: Format::Jsonl,
            entries: n,
            tweets,
            merges: Vec::new(),
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
        let report = Report::new(&store, &found);
        let json = report.to_json();
        let rep = t2.elapsed().as_secs_f64();
        assert!(json.len() > n);
        println!(
            "{n:>8} {build:>9.1} {discover:>10.2} {rep:>10.2} {:>9.3} {:>7} {:>10.1}% {:>9.0}",
            discover / (n as f64 / 1000.0),
            found.topics.len(),
            100.0 * report.unassigned_share,
            peak_rss_mb()
        );
    }
}
