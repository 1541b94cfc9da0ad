//! Hostile input: property-based fuzzing (proptest) of the three corpus parsers, the `.npy`
//! reader, exported vectors and store loading. Any input may be refused with an error; none
//! may panic. CI runs a few hundred cases per target; `scripts/fuzz.sh MINUTES` runs them at
//! length with fresh seeds; a failure prints its minimal input and the seed that found it.

use std::fs;

use proptest::prelude::*;
use tweetsim::corpus::{Corpus, Format};
use tweetsim::index::{Filter, Store};

use crate::common::{data, store_copy};

/// Edits that keep most of a valid file and break it somewhere: cut, splice, duplicate,
/// overwrite, insert.
#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Overwrite(usize, Vec<u8>),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let bytes = prop::collection::vec(
        prop_oneof![
            any::<u8>(),
            prop::sample::select(b"\n\r\t \"{}[]:,#&;0123456789-abcxyz\\".to_vec())
        ],
        0..24,
    );
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 0..200usize).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), bytes.clone()).prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), bytes).prop_map(|(a, b)| Edit::Overwrite(a, b)),
        (any::<usize>(), 0..400usize).prop_map(|(a, n)| Edit::Duplicate(a, n)),
    ]
}

fn apply(mut v: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = v.len().max(1);
        match e {
            Edit::Truncate(a) => v.truncate(a % n),
            Edit::Delete(a, k) => {
                let a = a % n;
                let b = (a + k).min(v.len());
                if a < b {
                    v.drain(a..b);
                }
            }
            Edit::Insert(a, b) => {
                let a = (a % n).min(v.len());
                v.splice(a..a, b.iter().copied());
            }
            Edit::Overwrite(a, b) => {
                let a = a % n;
                for (i, x) in b.iter().enumerate() {
                    if let Some(slot) = v.get_mut(a + i) {
                        *slot = *x;
                    }
                }
            }
            Edit::Duplicate(a, k) => {
                let a = a % n;
                let b = (a + k).min(v.len());
                let piece = v[a.min(v.len())..b].to_vec();
                v.splice(b..b, piece);
            }
        }
    }
    v
}

/// Parses bytes as the given format the way `Corpus::load` does (UTF-8 check included).
fn parse_bytes(bytes: &[u8], format: Format) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(match format {
        Format::Bundled => "c.txt",
        Format::Archive => "c.js",
        Format::Jsonl => "c.jsonl",
        Format::Parquet => "c.parquet",
    });
    fs::write(&path, bytes).unwrap();
    let _ = Corpus::load(&path, Some(format));
    let _ = tweetsim::corpus::Records::open(&path, Some(format)).map(|r| r.count());
}

/// CI: 64 cases per target from a fixed seed, so a run is repeatable. `scripts/fuzz.sh`
/// sets `PROPTEST_CASES` high and `FUZZ_SEED` to a fresh seed per round.
fn cases() -> ProptestConfig {
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<u64>().ok());
    ProptestConfig {
        cases: env("PROPTEST_CASES").unwrap_or(64) as u32,
        rng_seed: proptest::test_runner::RngSeed::Fixed(env("FUZZ_SEED").unwrap_or(2022)),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn bundled_sample() -> Vec<u8> {
    // The first ~40 entries: enough structure, fast to parse thousands of times.
    let text = Corpus::bundled_text();
    let cut = text
        .match_indices("\n### ")
        .nth(40)
        .map_or(text.len(), |(i, _)| i);
    text.as_bytes()[..cut].to_vec()
}

/// 30 tweets with 4-d vectors, as `embed --out X.parquet` writes them (two row groups).
fn parquet_sample() -> Vec<u8> {
    let tweets = Corpus::bundled().tweets;
    let vectors: Vec<f32> = (0..120).map(|i| i as f32 / 120.0).collect();
    let mut bytes = Vec::new();
    let mut w = tweetsim::parquet::Writer::new(&mut bytes, Some(4)).unwrap();
    w.write(&tweets[..15], &vectors[..60]).unwrap();
    w.write(&tweets[15..30], &vectors[60..]).unwrap();
    w.finish(Some("{}".into())).unwrap();
    bytes
}

fn jsonl_sample() -> Vec<u8> {
    let tweets = Corpus::bundled().tweets;
    tweets[..30]
        .iter()
        .map(|t| tweetsim::synth::to_jsonl(t) + "\n")
        .collect::<String>()
        .into_bytes()
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn bundled_parser_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        parse_bytes(&apply(bundled_sample(), &edits), Format::Bundled);
    }

    #[test]
    fn archive_parser_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        let sample = fs::read(data("archive/tweets.js")).unwrap();
        parse_bytes(&apply(sample, &edits), Format::Archive);
    }

    #[test]
    fn jsonl_parser_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        parse_bytes(&apply(jsonl_sample(), &edits), Format::Jsonl);
    }

    #[test]
    fn parquet_reader_never_panics(edits in prop::collection::vec(edit(), 1..4)) {
        let damaged = apply(parquet_sample(), &edits);
        parse_bytes(&damaged, Format::Parquet);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.parquet");
        fs::write(&path, damaged).unwrap();
        let _ = tweetsim::stream::read(&path);
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        for f in [Format::Bundled, Format::Archive, Format::Jsonl, Format::Parquet] {
            parse_bytes(&bytes, f);
        }
    }

    #[test]
    fn npy_and_exported_vectors_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let mut valid = Vec::new();
        tweetsim::npy::write(&mut valid, &[0.5; 12], 3, 4).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("v.npy");
        fs::write(&npy, apply(valid, &edits)).unwrap();
        let _ = tweetsim::npy::read(&npy);
        fs::write(dir.path().join("v.ids"), apply(b"1\n2\n3\n".to_vec(), &edits)).unwrap();
        let _ = tweetsim::stream::read(&npy);
    }
}

/// A copy of the shared bundled store with one file edited; the manifest's checksum of that
/// file is rewritten to match when `forge` is set, so the edit reaches the file's parser.
fn open_edited(file: &str, edits: &[Edit], forge: bool) {
    let (_dir, gen) = store_copy();
    let store = gen.parent().unwrap();
    let manifest_path = store.join("manifest.json");
    let mut manifest = fs::read_to_string(&manifest_path).unwrap();
    if file == "manifest.json" {
        manifest = String::from_utf8_lossy(&apply(manifest.into_bytes(), edits)).into_owned();
    } else {
        let path = gen.join(file);
        let edited = apply(fs::read(&path).unwrap(), edits);
        fs::write(&path, &edited).unwrap();
        if forge {
            let (size, xxh3) = tweetsim::fsutil::xxh3_file(&path).unwrap();
            let mut v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
            v["files"][file] = serde_json::json!({ "size": size, "xxh3": xxh3 });
            manifest = v.to_string();
        }
    }
    fs::write(&manifest_path, manifest).unwrap();
    // Tweets are parsed when read, not on open: read them every way a command does.
    let Ok(s) = Store::open(store) else { return };
    let _ = s.tweets();
    for row in (0..s.len()).step_by(7) {
        let _ = s.tweet(row);
        let _ = s.row(s.id(row));
        let filter = Filter {
            no_replies: true,
            min_likes: 10,
            since: "2022-06-01".parse().ok(),
            until: None,
        };
        let _ = s.search(s.vector(row), 5, &filter, Some(row));
        let _ = s.search_lexical("tesla autopilot", 5, &filter, None);
    }
}

fn store_file() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "manifest.json",
        "tweets.jsonl",
        "tweets.idx",
        "embeddings.npy",
        "graph.hnsw.graph",
        "graph.hnsw.data",
        "graph.flat",
    ])
}

proptest! {
    // Each case copies a store: a tenth as many cases as the parsers get.
    #![proptest_config(ProptestConfig { cases: (cases().cases / 10).max(6), ..cases() })]

    /// Edited store files are refused by checksum; with forged checksums, the tweets,
    /// vectors and flat graph readers still refuse them cleanly. (hnsw_rs's files are only
    /// ever read after their checksum matched: hnsw_rs asserts on malformed input.)
    #[test]
    fn store_loading_never_panics(
        file in store_file(),
        edits in prop::collection::vec(edit(), 1..4),
        forge in any::<bool>(),
    ) {
        let forge = forge
            && matches!(
                file,
                "tweets.jsonl" | "tweets.idx" | "embeddings.npy" | "graph.flat"
            );
        open_edited(file, &edits, forge);
    }
}

/// Opening skips hashing files unchanged since they last matched (`checked.json`); a file
/// changed afterwards, even to the same size, is hashed again and refused.
#[test]
fn a_file_changed_after_its_check_is_hashed_again() {
    let (_dir, gen) = store_copy();
    let store = gen.parent().unwrap();
    // Only files unchanged for 2 s are remembered (file times tick coarsely).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    Store::open(store).unwrap();
    let checked: serde_json::Value =
        serde_json::from_slice(&fs::read(gen.join("checked.json")).unwrap()).unwrap();
    for f in ["tweets.jsonl", "tweets.idx", "embeddings.npy", "graph.flat"] {
        assert!(checked.get(f).is_some(), "{f} not remembered: {checked}");
    }
    Store::open(store).unwrap();
    let path = gen.join("tweets.jsonl");
    let mut b = fs::read(&path).unwrap();
    let at = b.len() / 2;
    b[at] = if b[at] == b'x' { b'y' } else { b'x' };
    fs::write(&path, b).unwrap();
    let e = Store::open(store).err().unwrap().to_string();
    assert!(e.contains("tweets.jsonl is corrupt"), "{e}");
}

/// `tweetsim verify` hashes every file, the hnsw_rs files that searches never read included.
#[test]
fn verify_checks_every_file() {
    let (_dir, gen) = store_copy();
    let store = gen.parent().unwrap();
    let run = || {
        crate::common::tweetsim()
            .args(["verify", "--store"])
            .arg(store)
            .output()
            .unwrap()
    };
    let ok = run();
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success() && out.contains("match their checksums, 657 tweets read back"),
        "{out}"
    );
    let data = gen.join("graph.hnsw.data");
    let mut b = fs::read(&data).unwrap();
    b[100] ^= 1;
    fs::write(&data, b).unwrap();
    Store::open(store).unwrap();
    let bad = run();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{err}");
    assert!(err.contains("graph.hnsw.data is corrupt"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn an_edited_store_file_is_named_in_the_error() {
    let (_dir, gen) = store_copy();
    let data = gen.join("embeddings.npy");
    let mut b = fs::read(&data).unwrap();
    b[1000] ^= 1;
    fs::write(&data, b).unwrap();
    let e = Store::open(gen.parent().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("embeddings.npy is corrupt"), "{e}");
}

fn gen_of(store: &std::path::Path) -> std::path::PathBuf {
    store.join(tweetsim::index::read_manifest(store).unwrap().generation)
}

/// Searches never read hnsw_rs's files, so a damaged one is found by the next update, which
/// then builds the graph anew instead of extending it.
#[test]
fn a_damaged_hnsw_file_is_rebuilt_by_the_next_update() {
    let (_dir, gen) = store_copy();
    let store = gen.parent().unwrap();
    let data = gen.join("graph.hnsw.data");
    let mut b = fs::read(&data).unwrap();
    b[10] ^= 1;
    fs::write(&data, b).unwrap();
    let s = Store::open(store).unwrap();
    let (tweets, vectors) = (s.tweets().unwrap().to_vec(), s.vectors().to_vec());
    let m = s.manifest().clone();
    drop(s);
    // The same tweets minus the last: nothing to append, but the damaged files are not
    // linked into the next generation: the graph is built anew.
    let n = tweets.len() - 1;
    let corpus = |tweets: Vec<tweetsim::corpus::Tweet>| tweetsim::corpus::Corpus {
        source: "t".into(),
        format: tweetsim::corpus::Format::Jsonl,
        entries: tweets.len(),
        content_hash: format!("t{}", tweets.len()),
        tweets,
        merges: Vec::new(),
        blank: Vec::new(),
    };
    let dim = m.model.dim;
    let r = tweetsim::index::build_from_vectors(
        store,
        &corpus(tweets[..n].to_vec()),
        &vectors[..n * dim],
        &m.model,
        m.hnsw,
    )
    .unwrap();
    assert!(r.rebuilt, "{r:?}");
    fs::write(gen_of(store).join("graph.hnsw.data"), b"damaged").unwrap();
    // A new tweet must be appended to hnsw_rs's graph: it is damaged, so the graph is built
    // anew.
    let mut grown = tweets[..n].to_vec();
    let mut new = tweets[n].clone();
    new.id = 42;
    grown.push(new);
    let r = tweetsim::index::build_from_vectors(store, &corpus(grown), &vectors, &m.model, m.hnsw)
        .unwrap();
    assert!(r.rebuilt, "{r:?}");
    assert_eq!(Store::open(store).unwrap().len(), n + 1);
}
