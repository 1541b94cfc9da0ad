//! Incremental updates: appending to the graph, tombstones, `tweetsim remove`, compaction,
//! and the writer lock. The yardstick is a fresh build of the same tweets.

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use tweetsim::corpus::{Corpus, Tweet};
use tweetsim::index::{self, BuildReport, Filter, HnswParams, Store, COMPACT_SHARE};

use crate::common::{bundled_store, run, tweetsim, write_jsonl};

/// The bundled tweets and their vectors, in store order.
fn bundled() -> (Vec<Tweet>, Vec<f32>, Store) {
    let s = Store::open(bundled_store()).unwrap();
    (s.tweets().unwrap().to_vec(), s.vectors().to_vec(), s)
}

/// Writes `tweets` as a corpus file and indexes it, with their bundled vectors, into `store`.
fn index_these(
    dir: &Path,
    store: &Path,
    tweets: &[&Tweet],
    all: &(Vec<Tweet>, Vec<f32>, Store),
) -> BuildReport {
    index_these_with(dir, store, tweets, all, all.2.manifest().hnsw)
}

/// [`index_these`] with these graph parameters.
fn index_these_with(
    dir: &Path,
    store: &Path,
    tweets: &[&Tweet],
    all: &(Vec<Tweet>, Vec<f32>, Store),
    params: HnswParams,
) -> BuildReport {
    let (_, vectors, s) = all;
    let dim = s.dim();
    let owned: Vec<Tweet> = tweets.iter().map(|t| (*t).clone()).collect();
    let file = dir.join(format!("corpus-{}.jsonl", owned.len()));
    write_jsonl(&file, &owned);
    let corpus = Corpus::load(&file, None).unwrap();
    let rows: Vec<f32> = corpus
        .tweets
        .iter()
        .flat_map(|t| {
            let r = s.row(t.id).unwrap();
            vectors[r * dim..(r + 1) * dim].to_vec()
        })
        .collect();
    index::build_from_vectors(store, &corpus, &rows, &s.manifest().model, params).unwrap()
}

/// Top-10 ids and scores, dense and lexical, for every 4th tweet as the query.
fn answers(store: &Path) -> Vec<Vec<(u64, u32)>> {
    let s = Store::open(store).unwrap();
    let none = Filter::default();
    let mut out = Vec::new();
    let mut ids: Vec<u64> = s.tweets().unwrap().iter().map(|t| t.id).collect();
    ids.sort();
    for id in ids.iter().step_by(4) {
        let row = s.row(*id).unwrap();
        let dense = s.search(s.vector(row), 10, &none, Some(row)).unwrap();
        let lexical = s.search_lexical(&s.tweets().unwrap()[row].text, 10, &none, Some(row));
        for hits in [dense, lexical] {
            out.push(
                hits.iter()
                    .map(|h| (s.id(h.row), h.score.to_bits()))
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn appending_and_tombstoning_answer_like_a_fresh_build() {
    let dir = tempfile::tempdir().unwrap();
    let all = bundled();
    let tweets = &all.0;
    // Before: the first 600. After: those minus every 15th (40 gone), plus the last 57.
    let before: Vec<&Tweet> = tweets[..600].iter().collect();
    let after: Vec<&Tweet> = tweets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= 600 || i % 15 != 7)
        .map(|(_, t)| t)
        .collect();
    let updated = dir.path().join("updated");
    let r = index_these(dir.path(), &updated, &before, &all);
    assert!(r.rebuilt);
    let r = index_these(dir.path(), &updated, &after, &all);
    assert_eq!(
        (r.tweets, r.appended, r.removed, r.tombstones, r.rebuilt),
        (after.len(), 57, 40, 40, false),
        "{r:?}"
    );
    let m = index::read_manifest(&updated).unwrap();
    assert_eq!((m.tweets, m.tombstones), (657, 40));

    let fresh = dir.path().join("fresh");
    assert!(index_these(dir.path(), &fresh, &after, &all).rebuilt);
    let (u, f) = (Store::open(&updated).unwrap(), Store::open(&fresh).unwrap());
    let ids = |s: &Store| {
        s.tweets()
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect::<HashSet<_>>()
    };
    assert_eq!(ids(&u), ids(&f));
    assert_eq!(answers(&updated), answers(&fresh));

    // Filters and exclusion still hold over a store with tombstones.
    let gone: HashSet<u64> = (0..600)
        .filter(|i| i % 15 == 7)
        .map(|i| tweets[i].id)
        .collect();
    let filter = Filter {
        min_likes: 200,
        ..Filter::default()
    };
    for row in (0..u.len()).step_by(37) {
        for h in u.search(u.vector(row), 20, &filter, Some(row)).unwrap() {
            let t = &u.tweets().unwrap()[h.row];
            assert!(h.row != row && filter.accepts(t) && !gone.contains(&t.id));
        }
        let exact = u
            .search_exact(u.vector(row), 20, &filter, Some(row))
            .unwrap();
        let f_row = f.row(u.id(row)).unwrap();
        let want = f
            .search_exact(f.vector(f_row), 20, &filter, Some(f_row))
            .unwrap();
        assert_eq!(
            exact.iter().map(|h| u.id(h.row)).collect::<Vec<_>>(),
            want.iter().map(|h| f.id(h.row)).collect::<Vec<_>>()
        );
    }
    for id in &gone {
        assert_eq!(u.row(*id), None, "tombstoned tweet {id} is still visible");
    }
}

/// The search beam is recorded, not built in: an update that changes it appends to the graph
/// as usual, and `tweetsim index` without `--ef-search` keeps the beam the store recorded
/// (where a change of M rebuilds).
#[test]
fn a_new_search_beam_is_recorded_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let all = bundled();
    let store = dir.path().join("st");
    let narrow = HnswParams {
        ef_search: 64,
        ..HnswParams::default()
    };
    let first: Vec<&Tweet> = all.0[..600].iter().collect();
    index_these_with(dir.path(), &store, &first, &all, narrow);
    let every: Vec<&Tweet> = all.0.iter().collect();
    let r = index_these_with(dir.path(), &store, &every, &all, HnswParams::default());
    assert!(!r.rebuilt && r.appended == all.0.len() - 600, "{r:?}");
    assert_eq!(
        index::read_manifest(&store).unwrap().hnsw.ef_search,
        index::DEFAULT_EF_SEARCH
    );
    let wider = HnswParams {
        m: 24,
        ..HnswParams::default()
    };
    assert!(index_these_with(dir.path(), &store, &every, &all, wider).rebuilt);

    // The command line: a beam given once stays until another is given.
    let cli = dir.path().join("cli");
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    write_jsonl(&a, &all.0[..40]);
    write_jsonl(&b, &all.0[..50]);
    let index = |corpus: &Path, extra: &[&str]| {
        let mut args = vec!["index", "--corpus", corpus.to_str().unwrap()];
        args.extend(["--store", cli.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        (out, index::read_manifest(&cli).unwrap().hnsw.ef_search)
    };
    assert_eq!(index(&a, &["--ef-search", "100"]).1, 100);
    let (out, ef) = index(&b, &[]);
    assert_eq!(ef, 100);
    assert!(out.contains("10 appended"), "{out}");
    assert_eq!(index(&b, &["--ef-search", "300"]).1, 300);
}

#[test]
fn remove_tombstones_then_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let all = bundled();
    let tweets: Vec<&Tweet> = all.0.iter().collect();
    let store = dir.path().join("store");
    index_these(dir.path(), &store, &tweets, &all);
    let graph_before = fs::read(gen_file(&store, "graph.hnsw.graph")).unwrap();

    // A few removals: tombstones; graph and vectors untouched.
    let first: Vec<String> = tweets[..20].iter().map(|t| t.id.to_string()).collect();
    let mut args = vec!["remove", "--store", store.to_str().unwrap()];
    args.extend(first.iter().map(String::as_str));
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("removed 20 tweets, 637 remain (graph: 0 appended, 20 tombstoned, 20 tombstones in all)"),
        "{out}"
    );
    assert_eq!(
        fs::read(gen_file(&store, "graph.hnsw.graph")).unwrap(),
        graph_before
    );
    let s = Store::open(&store).unwrap();
    assert_eq!(s.len(), 637);
    assert!(tweets[..20].iter().all(|t| s.row(t.id).is_none()));
    let q = s.vector(0).to_vec();
    assert!(s
        .search(&q, 637, &Filter::default(), None)
        .unwrap()
        .iter()
        .all(|h| h.row < 637));
    let (code, _, err) = run(&[
        "similar",
        "--store",
        store.to_str().unwrap(),
        "--tweet",
        &first[0],
    ]);
    assert_ne!(code, 0);
    assert!(err.contains(&first[0]), "{err}");

    // An id that is not there (or no longer is) is an error, and nothing changes.
    let e = index::remove(&store, &[tweets[0].id])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("tweet {} is not in the store", tweets[0].id)),
        "{e}"
    );
    assert_eq!(index::read_manifest(&store).unwrap().tombstones, 20);

    // Past the compaction share: a new graph of the live rows alone, equal to a fresh build.
    let more: Vec<u64> = tweets[20..70].iter().map(|t| t.id).collect();
    const { assert!(70.0 > COMPACT_SHARE * 657.0) };
    let r = index::remove(&store, &more).unwrap();
    assert_eq!(
        (r.tweets, r.removed, r.tombstones, r.rebuilt),
        (587, 50, 0, true)
    );
    let m = index::read_manifest(&store).unwrap();
    assert_eq!((m.tweets, m.tombstones), (587, 0));
    let fresh = dir.path().join("fresh");
    let rest: Vec<&Tweet> = tweets[70..].to_vec();
    index_these(dir.path(), &fresh, &rest, &all);
    assert_eq!(answers(&store), answers(&fresh));

    // Removing everything left is refused.
    let ids: Vec<u64> = rest.iter().map(|t| t.id).collect();
    let e = index::remove(&store, &ids).unwrap_err().to_string();
    assert!(e.contains("would leave the store"), "{e}");
}

#[test]
fn a_damaged_tombstone_list_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let all = bundled();
    let tweets: Vec<&Tweet> = all.0.iter().collect();
    let store = dir.path().join("store");
    index_these(dir.path(), &store, &tweets, &all);
    index::remove(&store, &[tweets[3].id]).unwrap();
    let path = gen_file(&store, "tombstones.json");
    assert_eq!(fs::read_to_string(&path).unwrap(), "[3]");
    fs::write(&path, "[4]").unwrap();
    let e = Store::open(&store).err().unwrap().to_string();
    assert!(e.contains("tombstones.json is corrupt or truncated"), "{e}");
}

#[test]
fn a_second_writer_waits_for_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let all = bundled();
    let tweets: Vec<&Tweet> = all.0.iter().collect();
    let store = dir.path().join("store");
    index_these(dir.path(), &store, &tweets, &all);

    // This test holds the lock, as a running `tweetsim index` would.
    let lock = fs::OpenOptions::new()
        .write(true)
        .open(store.join(".lock"))
        .unwrap();
    lock.lock().unwrap();
    let mut child = tweetsim()
        .args(["remove", "--store"])
        .arg(&store)
        .arg(tweets[0].id.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(
        line.contains("waiting for another tweetsim writing"),
        "{line}"
    );
    // It waits, and writes nothing while it does.
    assert!(child.try_wait().unwrap().is_none());
    assert_eq!(index::read_manifest(&store).unwrap().tombstones, 0);
    drop(lock);
    assert!(child.wait().unwrap().success());
    assert_eq!(index::read_manifest(&store).unwrap().tombstones, 1);
}

fn gen_file(store: &Path, name: &str) -> std::path::PathBuf {
    let m = index::read_manifest(store).unwrap();
    store.join(m.generation).join(name)
}

#[test]
fn a_tweet_that_comes_back_revives_its_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    let all = bundled();
    let tweets: Vec<&Tweet> = all.0.iter().collect();
    let store = dir.path().join("store");
    index_these(dir.path(), &store, &tweets, &all);
    let graph = fs::read(gen_file(&store, "graph.hnsw.graph")).unwrap();
    let r = index_these(dir.path(), &store, &tweets[..650], &all);
    assert_eq!((r.appended, r.removed, r.tombstones), (0, 7, 7));
    let r = index_these(dir.path(), &store, &tweets, &all);
    assert_eq!(
        (
            r.tweets,
            r.appended,
            r.removed,
            r.tombstones,
            r.revived,
            r.rebuilt
        ),
        (657, 0, 0, 0, 7, false)
    );
    assert_eq!(
        fs::read(gen_file(&store, "graph.hnsw.graph")).unwrap(),
        graph
    );
    assert!(!gen_file(&store, "tombstones.json").exists());
}

/// `similar --corpus OTHER --store S` on a store built from another file is refused with the
/// `index` command that would replace its tweets, and the store is left as it was.
#[test]
fn similar_does_not_replace_a_store_with_another_corpus() {
    let (_dir, gen) = crate::common::store_copy();
    let store = gen.parent().unwrap();
    let before = index::read_manifest(store).unwrap();
    let (tweets, _, _) = bundled();
    let other = store.join("other.jsonl");
    write_jsonl(&other, &tweets[..30]);
    let (code, _, err) = run(&[
        "similar",
        "tesla",
        "--corpus",
        other.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("tweetsim index --corpus"), "{err}");
    let after = index::read_manifest(store).unwrap();
    assert_eq!(
        (after.tweets, &after.generation, &after.corpus.source),
        (before.tweets, &before.generation, &before.corpus.source)
    );
}

/// A store's own corpus caught mid-edit (it no longer parses) does not stop a search: the
/// store answers as it was built, with a warning; naming that file explicitly is an error.
#[test]
fn a_corpus_that_no_longer_parses_leaves_the_store_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let (tweets, _, _) = bundled();
    let corpus = dir.path().join("c.jsonl");
    write_jsonl(&corpus, &tweets[..40]);
    let store = dir.path().join("store");
    let (corpus_s, store_s) = (corpus.to_str().unwrap(), store.to_str().unwrap());
    let (code, _, err) = run(&["index", "--corpus", corpus_s, "--store", store_s]);
    assert_eq!(code, 0, "{err}");
    let mut text = fs::read_to_string(&corpus).unwrap();
    text.push_str("{\"id\": broken\n");
    fs::write(&corpus, text).unwrap();
    let (code, out, err) = run(&["similar", "tesla", "--json", "--store", store_s]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("searching the store as it was built"), "{err}");
    assert_eq!(out.lines().count(), 10);
    let (code, _, err) = run(&["similar", "tesla", "--corpus", corpus_s, "--store", store_s]);
    assert_eq!(code, 1);
    assert!(err.contains("c.jsonl:41: invalid JSON line"), "{err}");
}

/// Folding near-duplicates over more hits than the pairwise pass takes (here 2,628: every
/// bundled tweet and three slightly moved copies of it) keeps what the pairwise pass
/// guarantees: no two kept hits are twins, every folded hit is a twin of its kept one, and
/// no hit is lost.
#[test]
fn folding_many_hits_through_the_graph_keeps_the_pairwise_guarantees() {
    use tweetsim::search::{self, Mode, Options, Query, DUPLICATE_COSINE};
    let dir = tempfile::tempdir().unwrap();
    let (tweets, vectors, s) = bundled();
    let dim = s.dim();
    let mut all_tweets = Vec::new();
    let mut all_vectors = Vec::new();
    for copy in 0..4u64 {
        for (r, t) in tweets.iter().enumerate() {
            let mut t = t.clone();
            t.id += copy * 1_000_000_007;
            t.url = format!("https://x.com/i/status/{}", t.id);
            all_tweets.push(t);
            // Copies move by a small fixed pattern: cosine ~0.99 to the original.
            let mut v: Vec<f32> = vectors[r * dim..(r + 1) * dim].to_vec();
            for (j, x) in v.iter_mut().enumerate() {
                *x += 0.004 * copy as f32 * if (j + r) % 3 == 0 { 1.0 } else { -0.5 };
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            all_vectors.extend(v.iter().map(|x| x / norm));
        }
    }
    let file = dir.path().join("c.jsonl");
    write_jsonl(&file, &all_tweets);
    let corpus = Corpus::load(&file, None).unwrap();
    let store_dir = dir.path().join("store");
    index::build_from_vectors(
        &store_dir,
        &corpus,
        &all_vectors,
        &s.manifest().model,
        s.manifest().hnsw,
    )
    .unwrap();
    let store = Store::open(&store_dir).unwrap();
    let opts = Options {
        mode: Mode::Dense,
        k: 3000,
        ..Options::default()
    };
    let q = store.vector(0).to_vec();
    let hits = search::search(
        &store,
        &Query {
            text: "",
            vector: &q,
            exclude: None,
        },
        &opts,
    )
    .unwrap();
    let folded: usize = hits.iter().map(|h| h.duplicates.len()).sum();
    assert_eq!(hits.len() + folded, store.len(), "a hit was lost");
    assert!(folded >= 3 * tweets.len() / 2, "only {folded} folded");
    let cos = |a: usize, b: usize| tweetsim::simd::dot(store.vector(a), store.vector(b));
    for (i, h) in hits.iter().enumerate() {
        for &(d, sim) in &h.duplicates {
            assert!(sim >= DUPLICATE_COSINE && (cos(h.row, d) - sim).abs() < 1e-6);
        }
        for later in &hits[i + 1..] {
            assert!(cos(h.row, later.row) < DUPLICATE_COSINE, "two kept twins");
        }
    }
}
