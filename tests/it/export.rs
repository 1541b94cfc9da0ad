//! Vectors made in one place and indexed in another: `tweetsim synth`, streaming `embed`
//! (chunks, resume after SIGKILL) and `index --embeddings`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tweetsim::index::Store;
use tweetsim::stream;

use crate::common::{run, s, tweetsim};

fn ok(args: &[&str]) -> (String, String) {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    (out, err)
}

/// A 300-tweet synthetic JSONL whose 5th record appears again at the end (as archives repeat
/// tweets), so the export has 301 rows for 300 tweets.
fn corpus_with_a_repeat(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("synth.jsonl");
    ok(&["synth", "--tweets", "300", "--out", s(&path)]);
    let mut text = std::fs::read_to_string(&path).unwrap();
    let fifth = text.lines().nth(4).unwrap().to_string();
    text.push_str(&fifth);
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn embed_killed_mid_run_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus_with_a_repeat(dir.path());
    let full = dir.path().join("full.npy");
    ok(&[
        "embed",
        "--corpus",
        s(&corpus),
        "--out",
        s(&full),
        "--chunk",
        "64",
    ]);

    let part = dir.path().join("part.npy");
    let mut child = tweetsim()
        .args(["embed", "--corpus", s(&corpus), "--out", s(&part)])
        .args(["--chunk", "64", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once two chunks are on disk, before the end.
    let progress = dir.path().join("part.progress.json");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&progress).unwrap_or_default();
        if text.contains("\"rows\":128") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!part.exists(), "a killed run must not leave a final file");

    let (out, err) = ok(&[
        "embed",
        "--corpus",
        s(&corpus),
        "--out",
        s(&part),
        "--chunk",
        "64",
    ]);
    assert!(err.contains("resumed after"), "{err}");
    assert!(out.contains("(301 × 384)"), "{out}");
    assert_eq!(std::fs::read(&full).unwrap(), std::fs::read(&part).unwrap());
    let (fids, pids) = (stream::ids_path(&full), stream::ids_path(&part));
    assert_eq!(std::fs::read(&fids).unwrap(), std::fs::read(&pids).unwrap());
    assert!(!progress.exists());
    assert!(!dir.path().join("part.npy.partial").exists());
    let e = stream::read(&part).unwrap();
    assert_eq!((e.dim, e.ids.len()), (384, 301));
    assert_eq!(e.ids[4], e.ids[300]);
    assert_eq!(e.meta.unwrap().rows, 301);

    // The same job with another chunk size is another job: it starts over.
    std::fs::remove_file(&part).unwrap();
    let (_, err) = ok(&[
        "embed",
        "--corpus",
        s(&corpus),
        "--out",
        s(&part),
        "--chunk",
        "1000",
    ]);
    assert!(!err.contains("resumed"), "{err}");
}

#[test]
fn a_store_from_exported_vectors_holds_exactly_those_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("synth.jsonl");
    ok(&["synth", "--tweets", "120", "--out", s(&corpus)]);
    let npy = dir.path().join("v.npy");
    ok(&["embed", "--corpus", s(&corpus), "--out", s(&npy)]);
    let store = dir.path().join("store");
    let (out, _) = ok(&[
        "index",
        "--corpus",
        s(&corpus),
        "--embeddings",
        s(&npy),
        "--store",
        s(&store),
    ]);
    assert!(out.contains("indexed 120 tweets"), "{out}");

    let stream::Exported {
        vectors: data,
        dim,
        ids,
        ..
    } = stream::read(&npy).unwrap();
    let st = Store::open(&store).unwrap();
    for (row, id) in ids.iter().enumerate() {
        let r = st.row(*id).unwrap();
        assert_eq!(st.vector(r), &data[row * dim..(row + 1) * dim]);
    }
    // Queries by text use the model the metadata named; more-like-this works by id.
    let id = ids[7].to_string();
    let (out, _) = ok(&[
        "similar",
        "--store",
        s(&store),
        "--corpus",
        s(&corpus),
        "--tweet",
        &id,
        "--json",
    ]);
    assert_eq!(out.lines().count(), 10);
    ok(&[
        "similar",
        "--store",
        s(&store),
        "--corpus",
        s(&corpus),
        "some text",
    ]);
}

#[test]
fn vectors_that_do_not_fit_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("a.jsonl");
    ok(&["synth", "--tweets", "50", "--out", s(&corpus), "--vectors"]);
    let npy = corpus.with_extension("npy");
    let store = dir.path().join("store");
    let index = |corpus: &Path| {
        run(&[
            "index",
            "--corpus",
            s(corpus),
            "--embeddings",
            s(&npy),
            "--store",
            s(&store),
        ])
    };
    assert_eq!(index(&corpus).0, 0);

    // Another corpus: ids do not match.
    let other = dir.path().join("b.jsonl");
    ok(&["synth", "--tweets", "60", "--out", s(&other), "--seed", "5"]);
    let (code, _, err) = index(&other);
    assert_ne!(code, 0);
    assert!(
        err.contains("has no vector in") || err.contains("another corpus"),
        "{err}"
    );

    // A changed byte: the checksum in the metadata catches it.
    let mut bytes = std::fs::read(&npy).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&npy, &bytes).unwrap();
    let (code, _, err) = index(&corpus);
    assert_ne!(code, 0);
    assert!(
        err.contains("does not match") && err.contains("a.meta.json"),
        "{err}"
    );
    assert!(!err.contains("panicked"));

    // Without metadata, vectors of the wrong width are named as such.
    std::fs::remove_file(stream::meta_path(&npy)).unwrap();
    let mut w = Vec::new();
    tweetsim::npy::write(&mut w, &vec![0.5; 50 * 3], 50, 3).unwrap();
    std::fs::write(&npy, w).unwrap();
    let (code, _, err) = index(&corpus);
    assert_ne!(code, 0);
    assert!(err.contains("3 dimensions"), "{err}");
}

#[test]
fn synthetic_sets_are_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    ok(&["synth", "--tweets", "200", "--out", s(&a), "--vectors"]);
    ok(&["synth", "--tweets", "200", "--out", s(&b), "--vectors"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let ea = stream::read(&a.with_extension("npy")).unwrap();
    let eb = stream::read(&b.with_extension("npy")).unwrap();
    assert_eq!(ea.vectors, eb.vectors);
    assert_eq!(eb.ids.len(), 200);
}

/// Past ~37.5 million tweets the snowflake ids would wrap around and repeat: refused up front.
#[test]
fn synth_refuses_more_tweets_than_ids_fit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.jsonl");
    let too_many = (tweetsim::synth::MAX_TWEETS + 1).to_string();
    let (code, _, err) = run(&["synth", "--tweets", &too_many, "--out", s(&out)]);
    assert_ne!(code, 0);
    assert!(err.contains(&too_many) && err.contains("--tweets"), "{err}");
    assert!(!out.exists());
}

/// Synthetic vectors stand in for the real embeddings of their texts: the model embedding the
/// same texts lands close to each (median cosine 0.895 over 20,000 in
/// `scripts/synth-realism.sh`), far closer than to a random other synthetic tweet.
#[test]
fn synthetic_vectors_are_near_the_real_embeddings_of_their_texts() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("s.jsonl");
    ok(&["synth", "--tweets", "60", "--out", s(&corpus), "--vectors"]);
    let real = dir.path().join("real.npy");
    ok(&["embed", "--corpus", s(&corpus), "--out", s(&real)]);
    let synth = stream::read(&corpus.with_extension("npy")).unwrap();
    let real = stream::read(&real).unwrap();
    assert_eq!(synth.ids, real.ids);
    let cos = |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
    let row = |v: &[f32], k: usize| v[k * 384..(k + 1) * 384].to_vec();
    let mut own: Vec<f32> = (0..60)
        .map(|k| cos(&row(&synth.vectors, k), &row(&real.vectors, k)))
        .collect();
    let mut other: Vec<f32> = (0..60)
        .map(|k| cos(&row(&synth.vectors, k), &row(&real.vectors, (k + 1) % 60)))
        .collect();
    own.sort_by(f32::total_cmp);
    other.sort_by(f32::total_cmp);
    assert!(
        own[30] > 0.85,
        "median cosine with its own text's embedding {}",
        own[30]
    );
    assert!(own[30] > other[30] + 0.3, "{} vs {}", own[30], other[30]);
}

/// An embed that fails after some chunks are committed says they are kept and what a rerun
/// does with them; the input mended (so changed), it starts over, to the bytes of a clean run.
#[test]
fn a_failed_embed_says_what_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    ok(&["synth", "--tweets", "12", "--out", s(&good)]);
    let text = std::fs::read_to_string(&good).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[9] = "{\"id\": \"12\", \"text\": "; // in the third chunk of four
    let bad = dir.path().join("c.jsonl");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("e.npy");
    let embed = |corpus: &Path| {
        let args = [
            "embed",
            "--corpus",
            s(corpus),
            "--out",
            s(&out),
            "--chunk",
            "4",
        ];
        run(&args)
    };
    let (code, _, err) = embed(&bad);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("c.jsonl:10:"), "{err}");
    assert!(
        err.contains("8 tweets embedded before this are kept in")
            && err.contains("e.npy.partial: the same command on the same input resumes"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!out.exists());

    std::fs::copy(&good, &bad).unwrap();
    let (code, _, err) = embed(&bad);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("resumed"), "{err}");
    let clean = dir.path().join("clean.npy");
    ok(&[
        "embed",
        "--corpus",
        s(&good),
        "--out",
        s(&clean),
        "--chunk",
        "4",
    ]);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&clean).unwrap());
}

/// An --out that is a folder is refused before anything is embedded, and a run that embeds
/// nothing (an empty corpus) leaves no partial files behind.
#[test]
fn embed_refuses_a_folder_and_leaves_nothing_when_it_embeds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("v.npy");
    std::fs::create_dir(&folder).unwrap();
    let (code, _, err) = run(&["embed", "--out", s(&folder)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is a folder"), "{err}");
    assert!(!err.contains("embedded"), "it embedded first: {err}");
    std::fs::create_dir(dir.path().join("m.meta.json")).unwrap();
    let (code, _, err) = run(&["embed", "--out", s(&dir.path().join("m.npy"))]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("m.meta.json is a folder") && !err.contains("embedded"),
        "{err}"
    );

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let out = dir.path().join("e.npy");
    let (code, _, err) = run(&["embed", "--corpus", s(&empty), "--out", s(&out)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no tweets found"), "{err}");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("e."))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
