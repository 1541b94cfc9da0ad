//! Retrieval quality on the judged queries (`tests/data/judged-queries.toml`): every search
//! mode, the thread-context and hybrid weight sweeps (tuned on the odd-numbered queries,
//! reported on the even-numbered, held-out ones), reciprocal-rank fusion for comparison, and each step of
//! the tweet-aware text cleaning. Prints the tables of docs/retrieval.md.
//!
//! Run: `cargo bench --bench retrieval_eval`

#[path = "../tests/it/judged.rs"]
mod judged;

use judged::{held_out, mean, Judged, Scores};
use tweetsim::corpus::{Corpus, Tweet};
use tweetsim::embed::{Encoder, Resolver, DEFAULT_MODEL};
use tweetsim::index::{self, HnswParams, Store};
use tweetsim::search::{self, Mode, Options, Query};
use tweetsim::simd::dot;

/// Which queries a breakdown line covers.
type Pick = fn(&Judged) -> bool;
/// The text embedded for a tweet, per cleaning step.
type TextOf<'a> = dyn Fn(&Tweet) -> String + 'a;

fn row(name: &str, split: &[(&str, Scores)]) {
    let cells: Vec<String> = split
        .iter()
        .map(|(_, s)| format!("{:.3} / {:.3} / {:.3}", s.ndcg, s.recall, s.mrr))
        .collect();
    println!("| {name} | {} |", cells.join(" | "));
}

fn main() {
    let files = Resolver::from_env(None)
        .resolve(DEFAULT_MODEL)
        .expect("model");
    let encoder = Encoder::load(&files).expect("encoder");
    let work = tempfile::tempdir().expect("temp dir");
    let corpus = Corpus::bundled();
    index::build(
        work.path(),
        &corpus,
        &encoder,
        HnswParams::default(),
        |_, _| {},
    )
    .expect("store");
    let store = Store::open(work.path()).expect("open");

    let queries = judged::load();
    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let qv = encoder.embed(&texts).expect("queries");
    let dim = encoder.dim();
    let vec_of = |q: &Judged| {
        let i = queries.iter().position(|x| x.id == q.id).unwrap();
        &qv[i * dim..(i + 1) * dim]
    };
    let train: Vec<&Judged> = queries.iter().filter(|q| !held_out(q)).collect();
    let test: Vec<&Judged> = queries.iter().filter(|q| held_out(q)).collect();
    let all: Vec<&Judged> = queries.iter().collect();
    let search_ids = |opts: &Options, q: &Judged| -> Vec<u64> {
        let query = Query {
            text: &q.text,
            vector: vec_of(q),
            exclude: None,
        };
        let hits = search::search(&store, &query, opts).expect("search");
        hits.iter().map(|h| store.id(h.row)).collect()
    };
    let splits = |opts: &Options| {
        [
            ("tune", mean(&train, |q| search_ids(opts, q))),
            ("held-out", mean(&test, |q| search_ids(opts, q))),
            ("all", mean(&all, |q| search_ids(opts, q))),
        ]
    };
    println!(
        "nDCG@10 / recall@10 / MRR@10 on {} tune, {} held-out queries",
        train.len(),
        test.len()
    );
    println!();
    println!("| mode | tune (odd ids) | held-out (even ids) | all 30 |");
    println!("| --- | --- | --- | --- |");
    let base = Options::default();
    for (name, opts) in [
        (
            "dense, HNSW",
            Options {
                mode: Mode::Dense,
                ..base.clone()
            },
        ),
        (
            "dense, exact",
            Options {
                mode: Mode::Dense,
                exact: true,
                ..base.clone()
            },
        ),
        (
            "lexical (BM25)",
            Options {
                mode: Mode::Lexical,
                ..base.clone()
            },
        ),
        (
            "hybrid without thread context",
            Options {
                thread_weight: 0.0,
                ..base.clone()
            },
        ),
        (
            "dense with thread context (hybrid, dense weight 1)",
            Options {
                dense_weight: 1.0,
                ..base.clone()
            },
        ),
        ("hybrid (default)", base.clone()),
    ] {
        row(name, &splits(&opts));
    }
    println!();
    println!("By kind of query, all 30 (dense exact / lexical / hybrid nDCG@10):");
    println!();
    let kinds: [(&str, Pick); 3] = [
        ("keyword", |q| q.kind == "keyword"),
        ("sentence", |q| q.kind == "sentence"),
        ("paraphrase (no query word in a relevant tweet)", |q| {
            q.paraphrase
        }),
    ];
    for (name, pick) in kinds {
        let subset: Vec<&Judged> = queries.iter().filter(|q| pick(q)).collect();
        let nd = |opts: &Options| mean(&subset, |q| search_ids(opts, q)).ndcg;
        println!(
            "- {name} ({} queries): {:.3} / {:.3} / {:.3}",
            subset.len(),
            nd(&Options {
                mode: Mode::Dense,
                exact: true,
                ..base.clone()
            }),
            nd(&Options {
                mode: Mode::Lexical,
                ..base.clone()
            }),
            nd(&base),
        );
    }
    println!();
    // Reciprocal-rank fusion of the dense and lexical top 50, for comparison.
    let rrf = |q: &Judged| {
        let deep = |mode| Options {
            mode,
            k: 50,
            collapse: None,
            ..base.clone()
        };
        let d = search_ids(&deep(Mode::Dense), q);
        let l = search_ids(&deep(Mode::Lexical), q);
        let mut score: std::collections::HashMap<u64, f64> = Default::default();
        for list in [&d, &l] {
            for (r, id) in list.iter().enumerate() {
                *score.entry(*id).or_default() += 1.0 / (60.0 + r as f64 + 1.0);
            }
        }
        let mut v: Vec<(u64, f64)> = score.into_iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.into_iter().map(|(id, _)| id).collect::<Vec<u64>>()
    };
    row(
        "RRF (k = 60)",
        &[
            ("tune", mean(&train, rrf)),
            ("held-out", mean(&test, rrf)),
            ("all", mean(&all, rrf)),
        ],
    );

    println!();
    println!(
        "Thread context sweep (share of the gap to the thread's best part; dense weight {}):",
        base.dense_weight
    );
    println!();
    println!("| thread weight | tune (odd ids) | held-out (even ids) | all 30 |");
    println!("| --- | --- | --- | --- |");
    for t in [0.0f32, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8] {
        row(
            &format!("{t:.2}"),
            &splits(&Options {
                thread_weight: t,
                ..base.clone()
            }),
        );
    }

    println!();
    println!("Hybrid weight sweep (weight of the cosine; BM25 / ideal BM25 gets the rest):");
    println!();
    println!("| dense weight | tune (odd ids) | held-out (even ids) | all 30 |");
    println!("| --- | --- | --- | --- |");
    for w in [0.3f32, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95] {
        row(
            &format!("{w:.2}"),
            &splits(&Options {
                dense_weight: w,
                ..base.clone()
            }),
        );
    }

    if std::env::args().any(|a| a == "--modes-only") {
        return;
    }
    println!();
    println!("Text cleaning for the embedding (dense, exact search; queries unchanged):");
    println!();
    println!("| embedded text | tune (odd ids) | held-out (even ids) | all 30 |");
    println!("| --- | --- | --- | --- |");
    let raw = |t: &Tweet| html_escape::encode_text(&t.text).into_owned();
    let decoded = |t: &Tweet| t.text.clone();
    let no_handles = |t: &Tweet| strip_leading_handles(&t.text);
    let policy = |t: &Tweet| t.embedding_text();
    // The alternative to lending scores within a thread: embed each later part with the
    // text of its thread's first part in front.
    let tweets = store.tweets().unwrap();
    let with_head = |t: &Tweet| {
        let row = store.row(t.id).unwrap();
        match store.thread(row).first() {
            Some(&head) if head != row => {
                format!("{} {}", tweets[head].embedding_text(), t.embedding_text())
            }
            _ => t.embedding_text(),
        }
    };
    let steps: [(&str, &TextOf<'_>); 5] = [
        ("as in the source (HTML entities kept)", &raw),
        ("entities decoded", &decoded),
        ("+ leading reply @handles removed", &no_handles),
        ("+ t.co links removed (the store's policy)", &policy),
        ("+ the thread's first part in front (not kept)", &with_head),
    ];
    for (name, f) in steps {
        let texts: Vec<String> = store.tweets().unwrap().iter().map(f).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = encoder.embed(&refs).expect("embed");
        let exact = |q: &Judged| {
            let v = vec_of(q);
            let mut scored: Vec<(usize, f32)> = (0..texts.len())
                .map(|r| (r, dot(v, &vectors[r * dim..(r + 1) * dim])))
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            scored
                .iter()
                .map(|(r, _)| store.id(*r))
                .collect::<Vec<u64>>()
        };
        row(
            name,
            &[
                ("tune", mean(&train, exact)),
                ("held-out", mean(&test, exact)),
                ("all", mean(&all, exact)),
            ],
        );
    }
    println!();
}

/// The text without its leading run of @handles (links kept).
fn strip_leading_handles(text: &str) -> String {
    let mut rest = text.trim_start();
    while let Some(tail) = rest.strip_prefix('@') {
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        rest = tail[end..].trim_start();
    }
    rest.to_string()
}
