//! The store: HNSW recall, incremental re-indexing, filters, refusal of bad stores, and
//! crash safety of writes.

use std::fs;
use std::path::Path;

use chrono::NaiveDate;
use tweetsim::corpus::{Corpus, Format, Tweet};
use tweetsim::index::{self, Filter, HnswParams, Store};
use tweetsim::synth;

use crate::common::{bundled_store, cosine, encoder, tweetsim, write_jsonl};

/// Share of the exact top 10 that the graph search returns, over `queries`; every search must
/// return 10 hits, best first.
fn recall_at_10<'a>(store: &Store, queries: impl Iterator<Item = &'a [f32]>) -> f64 {
    let none = Filter::default();
    let (mut found, mut asked) = (0, 0);
    for q in queries {
        let exact = store.search_exact(q, 10, &none, None).unwrap();
        let approx = store.search(q, 10, &none, None).unwrap();
        assert_eq!(approx.len(), 10);
        assert!(approx.windows(2).all(|w| w[0].score >= w[1].score));
        found += approx
            .iter()
            .filter(|h| exact.iter().any(|e| e.row == h.row))
            .count();
        asked += 10;
    }
    found as f64 / asked as f64
}

#[test]
fn hnsw_recall_at_10_is_at_least_099_over_every_tweet() {
    let mut store = Store::open(bundled_store()).unwrap();
    assert_eq!(store.len(), 657);
    // The default beam (2048) covers all 657 rows; a narrow one measures the graph.
    store.set_ef_search(64);
    let recall = recall_at_10(&store, (0..store.len()).map(|row| store.vector(row)));
    assert!(recall >= 0.99, "recall@10 = {recall}");
}

/// The scale benchmark (`scripts/bench-hnsw.sh`) in small: 20,000 synthetic tweets with
/// vectors near real ones, 1% appended to the built graph, then recall@10 at ef 64 (the
/// default, 2048, is a tenth of these rows: a narrow beam measures the graph itself) over 500
/// held-out queries, and every appended tweet found by its own vector.
#[test]
fn hnsw_recall_on_20k_synthetic_tweets_after_an_append() {
    let (n, extra, queries) = (20_000, 200, 500);
    let base = Corpus::bundled().tweets;
    let halves = synth::Halves::embed(&base, encoder()).unwrap();
    let dim = halves.dim();
    let corpus = |tweets: &[Tweet]| Corpus {
        source: "synthetic".into(),
        format: Format::Jsonl,
        entries: tweets.len(),
        tweets: tweets.to_vec(),
        merges: Vec::new(),
        blank: Vec::new(),
        content_hash: format!("synthetic-{}", tweets.len()),
    };
    let (tweets, vectors) = synth::tweets_with_vectors(&base, &halves, n + extra, 2022);
    let (_, queries_v) = synth::tweets_with_vectors(&base, &halves, queries, 7);
    let dir = tempfile::tempdir().unwrap();
    let model = encoder().identity();
    let params = HnswParams {
        ef_search: 64,
        ..HnswParams::default()
    };
    let first = index::build_from_vectors(
        dir.path(),
        &corpus(&tweets[..n]),
        &vectors[..n * dim],
        model,
        params,
    )
    .unwrap();
    assert_eq!(first.tweets, n);
    let grown =
        index::build_from_vectors(dir.path(), &corpus(&tweets), &vectors, model, params).unwrap();
    assert!(!grown.rebuilt && grown.appended == extra, "{grown:?}");

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.len(), n + extra);
    let recall = recall_at_10(&store, queries_v.chunks_exact(dim));
    assert!(recall >= 0.99, "recall@10 = {recall}");
    let none = Filter::default();
    for t in &tweets[n..] {
        let row = store.row(t.id).unwrap();
        let hits = store.search(store.vector(row), 1, &none, None).unwrap();
        assert_eq!(
            hits[0].row, row,
            "appended tweet {} not found by its vector",
            t.id
        );
    }
}

#[test]
fn filters_hold_and_still_return_k_hits() {
    let store = Store::open(bundled_store()).unwrap();
    let q = encoder().embed(&["neural network training tips"]).unwrap();
    let filter = Filter {
        since: NaiveDate::from_ymd_opt(2022, 6, 1),
        until: NaiveDate::from_ymd_opt(2022, 9, 30),
        no_replies: true,
        min_likes: 500,
    };
    let passing = store
        .tweets()
        .unwrap()
        .iter()
        .filter(|t| filter.accepts(t))
        .count();
    assert!((10..100).contains(&passing), "{passing} pass");
    let hits = store.search(&q, 10, &filter, None).unwrap();
    assert_eq!(hits.len(), 10);
    for h in &hits {
        let t = &store.tweets().unwrap()[h.row];
        assert!(filter.accepts(t));
    }
    // Same answer as the exact scan over the passing tweets.
    let exact = store.search_exact(&q, 10, &filter, None).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.row).collect::<Vec<_>>(),
        exact.iter().map(|h| h.row).collect::<Vec<_>>()
    );
    // A filter nothing passes gives nothing, not an error; a broad one uses the graph.
    let nothing = Filter {
        min_likes: u64::MAX,
        ..Filter::default()
    };
    assert!(store.search(&q, 10, &nothing, None).unwrap().is_empty());
    let broad = Filter {
        min_likes: 1,
        ..Filter::default()
    };
    assert_eq!(store.search(&q, 25, &broad, None).unwrap().len(), 25);
}

#[test]
fn more_like_this_excludes_the_tweet_itself() {
    let store = Store::open(bundled_store()).unwrap();
    let row = store.row(1547332300186066944).unwrap();
    let hits = store
        .search(store.vector(row), 5, &Filter::default(), Some(row))
        .unwrap();
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h.row != row));
}

#[test]
fn bad_queries_are_refused() {
    let store = Store::open(bundled_store()).unwrap();
    let e = store
        .search(&[0.1; 10], 5, &Filter::default(), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("query vector has 10 dimensions") && e.contains("has 384"),
        "{e}"
    );
    let q = store.vector(0).to_vec();
    let e = store
        .search(&q, 0, &Filter::default(), None)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "k must be at least 1");
}

/// The bundled corpus without its last five tweets, then with them.
fn corpus_pair(dir: &Path) -> (Corpus, Corpus) {
    let all = Corpus::bundled().tweets;
    let (old, new) = (dir.join("old.jsonl"), dir.join("new.jsonl"));
    write_jsonl(&old, &all[..all.len() - 5]);
    write_jsonl(&new, &all);
    (
        Corpus::load(&old, None).unwrap(),
        Corpus::load(&new, None).unwrap(),
    )
}

#[test]
fn reindexing_embeds_only_new_tweets_and_matches_a_fresh_build() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = corpus_pair(dir.path());
    let store = dir.path().join("store");
    // A private encoder, so its own counter sees only this test's texts.
    let enc = &crate::common::load_encoder();
    let r1 = index::build(&store, &old, enc, HnswParams::default(), |_, _| {}).unwrap();
    assert_eq!((r1.tweets, r1.embedded, r1.reused), (652, 652, 0));
    assert_eq!(enc.texts_encoded(), 652);

    let r2 = index::build(&store, &new, enc, HnswParams::default(), |_, _| {}).unwrap();
    assert_eq!((r2.tweets, r2.embedded, r2.reused), (657, 5, 652));
    assert_eq!(
        enc.texts_encoded(),
        657,
        "only the 5 new tweets went through the encoder"
    );

    let updated = Store::open(&store).unwrap();
    let fresh = Store::open(bundled_store()).unwrap();
    let key = |t: &tweetsim::corpus::Tweet| {
        (
            t.id,
            t.text.clone(),
            t.date,
            t.metrics,
            t.is_reply,
            t.url.clone(),
            t.translation.clone(),
        )
    };
    assert!(updated
        .tweets()
        .unwrap()
        .iter()
        .map(key)
        .eq(fresh.tweets().unwrap().iter().map(key)));
    for row in 0..657 {
        let c = cosine(updated.vector(row), fresh.vector(row));
        assert!(c > 0.99999, "row {row}: {c}");
    }
    // Only the new generation and the one before it remain.
    let gens = fs::read_dir(&store)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("gen-")
        })
        .count();
    assert_eq!(gens, 2);

    // Unchanged corpus: nothing is embedded.
    let r3 = index::build(&store, &new, enc, HnswParams::default(), |_, _| {}).unwrap();
    assert_eq!((r3.embedded, r3.reused), (0, 657));
    assert_eq!(enc.texts_encoded(), 657);
}

fn open_err(gen: &Path) -> String {
    match Store::open(gen.parent().unwrap()) {
        Ok(_) => panic!("a damaged store opened"),
        Err(e) => e.to_string(),
    }
}

/// Following the hint must rebuild the store from its own corpus, not from the bundled one.
#[test]
fn the_rebuild_hint_names_the_corpus_the_store_was_built_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my tweets.jsonl");
    write_jsonl(&path, &Corpus::bundled().tweets[..40]);
    let corpus = Corpus::load(&path, None).unwrap();
    let store = dir.path().join("store");
    index::build(&store, &corpus, encoder(), HnswParams::default(), |_, _| {}).unwrap();
    let gen = store.join(&Store::open(&store).unwrap().manifest().generation);

    let emb = gen.join("embeddings.npy");
    let bytes = fs::read(&emb).unwrap();
    fs::write(&emb, &bytes[..bytes.len() - 8]).unwrap();
    let e = open_err(&gen);
    let abs = fs::canonicalize(&path).unwrap();
    let want = format!("--corpus '{}'`", abs.display());
    assert!(
        e.contains("embeddings.npy is corrupt") && e.contains(&want),
        "{e}"
    );

    // A file whose extension does not tell its format gets --format in the hint.
    let odd = dir.path().join("tweets.data");
    fs::copy(&path, &odd).unwrap();
    let odd_store = dir.path().join("odd");
    let corpus = Corpus::load(&odd, Some(Format::Jsonl)).unwrap();
    index::build(
        &odd_store,
        &corpus,
        encoder(),
        HnswParams::default(),
        |_, _| {},
    )
    .unwrap();
    let odd_gen = odd_store.join(&Store::open(&odd_store).unwrap().manifest().generation);
    fs::write(odd_gen.join("embeddings.npy"), b"").unwrap();
    let e = open_err(&odd_gen);
    let abs = fs::canonicalize(&odd).unwrap();
    assert!(
        e.contains(&format!("--corpus {} --format jsonl`", abs.display())),
        "{e}"
    );

    // With the manifest unreadable the corpus is unknown, and the hint says to name it.
    fs::write(store.join("manifest.json"), b"{ not json").unwrap();
    let e = open_err(&gen);
    assert!(
        e.contains("plus `--corpus FILE` if it was built from a file"),
        "{e}"
    );
}

#[test]
fn corrupt_truncated_or_foreign_stores_are_refused() {
    let (_t, gen) = crate::common::store_copy();
    assert!(Store::open(gen.parent().unwrap()).is_ok());

    let emb = gen.join("embeddings.npy");
    let bytes = fs::read(&emb).unwrap();
    fs::write(&emb, &bytes[..bytes.len() - 100]).unwrap();
    let e = open_err(&gen);
    assert!(
        e.contains("embeddings.npy is corrupt or truncated")
            && e.contains("rebuild with `tweetsim index --store"),
        "{e}"
    );
    fs::write(&emb, &bytes).unwrap();

    let graph = gen.join("graph.flat");
    let mut g = fs::read(&graph).unwrap();
    g[100] ^= 0xff;
    fs::write(&graph, &g).unwrap();
    assert!(open_err(&gen).contains("graph.flat is corrupt"));
    g[100] ^= 0xff;
    fs::write(&graph, &g).unwrap();

    let term = fs::read_dir(gen.join("lexical"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "term"))
        .expect("the lexical index has a term dictionary");
    let t = fs::read(&term).unwrap();
    fs::write(&term, &t[..t.len() / 2]).unwrap();
    let e = open_err(&gen);
    assert!(e.contains("lexical/") && e.contains("is corrupt"), "{e}");
    fs::write(&term, &t).unwrap();

    fs::remove_file(gen.join("tweets.jsonl")).unwrap();
    assert!(open_err(&gen).contains("tweets.jsonl is missing"));

    let manifest = gen.parent().unwrap().join("manifest.json");
    let m = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        m.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    assert!(open_err(&gen)
        .contains("store format version 99 is not the version this tweetsim reads (1)"));
    fs::write(&manifest, &m[..m.len() / 2]).unwrap();
    assert!(open_err(&gen).contains("manifest.json is corrupt"));
    fs::remove_file(&manifest).unwrap();
    assert!(open_err(&gen).contains("no store here"));
}

/// A store written before the lexical index existed opens, with the index built in memory.
#[test]
fn stores_without_a_lexical_index_still_search_lexically() {
    let (_t, gen) = crate::common::store_copy();
    fs::remove_dir_all(gen.join("lexical")).unwrap();
    let manifest = gen.parent().unwrap().join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest).unwrap()).unwrap();
    m["files"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !k.starts_with("lexical/"));
    fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let store = Store::open(gen.parent().unwrap()).unwrap();
    let hits = store.search_lexical("micrograd", 3, &Default::default(), None);
    assert!(store.tweets().unwrap()[hits[0].row]
        .text
        .contains("micrograd"));
}

/// A store written before `graph.flat` existed opens with the links copied from hnsw_rs's
/// graph, and answers exactly as with the file.
#[test]
fn stores_without_a_flat_graph_search_the_same() {
    without_file_searches_the_same("graph.flat");
}

/// Stores from before `tweets.idx` parse their tweets on open and answer the same.
#[test]
fn stores_without_a_tweet_table_search_the_same() {
    without_file_searches_the_same("tweets.idx");
}

fn without_file_searches_the_same(file: &str) {
    let (_t, gen) = crate::common::store_copy();
    let store = gen.parent().unwrap();
    type Probe = (Vec<(usize, u32)>, Option<usize>, tweetsim::corpus::Tweet);
    let probe = |s: &Store| -> Vec<Probe> {
        let filter = Filter {
            no_replies: true,
            min_likes: 20,
            ..Filter::default()
        };
        (0..s.len())
            .step_by(9)
            .map(|r| {
                let hits = s.search(s.vector(r), 10, &filter, Some(r)).unwrap();
                let hits = hits.iter().map(|h| (h.row, h.score.to_bits())).collect();
                (hits, s.row(s.id(r)), s.tweet(r).unwrap())
            })
            .collect()
    };
    let with_file = probe(&Store::open(store).unwrap());
    fs::remove_file(gen.join(file)).unwrap();
    let manifest = store.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest).unwrap()).unwrap();
    m["files"].as_object_mut().unwrap().remove(file);
    fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    assert_eq!(probe(&Store::open(store).unwrap()), with_file);
}

/// The makemore lecture thread (three parts posted within a second) is one thread in the
/// store; a removed part drops out of it.
#[test]
fn threads_are_kept_in_the_store_and_lose_removed_parts() {
    let (_t, gen) = crate::common::store_copy();
    let dir = gen.parent().unwrap();
    let parts = [
        1567592845221179392u64,
        1567592846773092352,
        1567592848165601281,
    ];
    let s = Store::open(dir).unwrap();
    let rows: Vec<usize> = parts.iter().map(|&id| s.row(id).unwrap()).collect();
    for &r in &rows {
        assert_eq!(s.thread(r), rows);
    }
    // A tweet posted alone (the first of the corpus) is a thread of one.
    let alone = s.row(1478128891520688128).unwrap();
    assert_eq!(s.thread(alone), [alone]);
    let threaded = (0..s.len()).filter(|&r| s.thread(r).len() > 1).count();
    assert!(
        (80..=130).contains(&threaded),
        "{threaded} tweets in threads"
    );
    drop(s);

    index::remove(dir, &[parts[1]]).unwrap();
    let s = Store::open(dir).unwrap();
    let rows: Vec<usize> = [parts[0], parts[2]]
        .iter()
        .map(|&id| s.row(id).unwrap())
        .collect();
    assert_eq!(s.thread(rows[0]), rows);
    assert_eq!(s.thread(rows[1]), rows);
}

#[test]
fn a_store_from_another_model_is_refused() {
    let store = Store::open(bundled_store()).unwrap();
    let mut other = encoder().identity().clone();
    store.check_model(&other).unwrap();
    other.weights_sha256 = "0".repeat(64);
    let e = store.check_model(&other).unwrap_err().to_string();
    assert!(
        e.contains("built with model sentence-transformers/all-MiniLM-L6-v2")
            && e.contains("rebuild"),
        "{e}"
    );
    other = encoder().identity().clone();
    other.dim = 768;
    assert!(store.check_model(&other).is_err());
}

/// Searches that identify a store's content: top-5 rows of a few fixed tweets.
fn fingerprint(dir: &Path) -> (usize, Vec<Vec<u64>>) {
    let s = Store::open(dir).unwrap();
    let probes = [0usize, 100, 300, 600];
    let answers = probes
        .iter()
        .map(|&r| {
            s.search(s.vector(r), 5, &Filter::default(), None)
                .unwrap()
                .iter()
                .map(|h| s.id(h.row))
                .collect()
        })
        .collect();
    (s.len(), answers)
}

#[test]
fn killing_index_at_any_moment_leaves_a_usable_store() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _new) = corpus_pair(dir.path());
    let store = dir.path().join("store");
    index::build(&store, &old, encoder(), HnswParams::default(), |_, _| {}).unwrap();
    let before = fingerprint(&store);

    // Time one full update, then kill updates at points spread over that span.
    let update = || {
        let mut c = tweetsim();
        c.args(["index", "--quiet", "--corpus"])
            .arg(dir.path().join("new.jsonl"))
            .arg("--store")
            .arg(&store);
        c
    };
    let started = std::time::Instant::now();
    assert!(update().status().unwrap().success());
    let span = started.elapsed();
    let after_fp = fingerprint(&store);
    assert_eq!(after_fp.0, 657);
    // Roll back to the old content for the kill runs.
    index::build(&store, &old, encoder(), HnswParams::default(), |_, _| {}).unwrap();
    assert_eq!(fingerprint(&store), before);

    let mut saw_old = 0;
    for i in 0..8u32 {
        let mut child = update().spawn().unwrap();
        std::thread::sleep(span * i / 8);
        let _ = child.kill();
        let _ = child.wait();
        let fp = fingerprint(&store);
        if fp == before {
            saw_old += 1;
        } else {
            assert_eq!(
                fp, after_fp,
                "kill {i}: the store is neither the old nor the new one"
            );
            index::build(&store, &old, encoder(), HnswParams::default(), |_, _| {}).unwrap();
        }
    }
    assert!(saw_old > 0, "no kill landed before the update finished");
}
