//! Parquet between tweetsim and other engines: `embed --out X.parquet`, `--corpus
//! X.parquet`, `index --embeddings X.parquet`, and the one-line errors for files that do not
//! fit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use crate::common::{fails, run, s};

fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

/// Files beside each other in `dir`.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The bundled corpus embedded both ways: the same vectors, and stores built from either
/// answer every search the same.
#[test]
fn parquet_round_trip_searches_equal_the_npy_path() {
    let dir = tempfile::tempdir().unwrap();
    let (pq, npy) = (dir.path().join("b.parquet"), dir.path().join("b.npy"));
    let said = ok(&["embed", "-q", "--out", s(&pq), "--chunk", "200"]);
    assert!(said.contains("680 rows"), "{said}");
    ok(&["embed", "-q", "--out", s(&npy), "--chunk", "200"]);

    // Bit for bit the same vectors and ids, and the same metadata.
    let a = tweetsim::stream::read(&pq).unwrap();
    let b = tweetsim::stream::read(&npy).unwrap();
    assert_eq!((a.dim, &a.ids), (b.dim, &b.ids));
    assert_eq!(a.vectors, b.vectors);
    let (ma, mb) = (a.meta.unwrap(), b.meta.unwrap());
    assert_eq!(
        (ma.model, ma.embedding_text, ma.rows),
        (mb.model, mb.embedding_text, mb.rows)
    );
    // Four row groups of at most 200 rows: streamed, not one block.
    let groups =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&pq).unwrap())
            .map(|r| parquet::file::reader::FileReader::metadata(&r).num_row_groups())
            .unwrap();
    assert_eq!(groups, 4);

    let (sp, sn) = (dir.path().join("sp"), dir.path().join("sn"));
    ok(&["index", "-q", "--embeddings", s(&pq), "--store", s(&sp)]);
    ok(&["index", "-q", "--embeddings", s(&npy), "--store", s(&sn)]);
    for args in [
        vec!["tesla autopilot data engine"],
        vec!["teaching neural networks", "--mode", "dense", "-k", "20"],
        vec!["stable diffusion", "--no-replies", "--since", "2022-08-01"],
        vec!["--tweet", "1547332300186066944", "--mode", "dense"],
    ] {
        let search = |store: &Path| {
            let mut a = vec!["similar", "--json", "--store", s(store)];
            a.extend(&args);
            ok(&a)
        };
        let (from_pq, from_npy) = (search(&sp), search(&sn));
        assert!(!from_pq.is_empty());
        assert_eq!(from_pq, from_npy, "{args:?}");
    }
}

/// A Parquet table is a corpus like the others: the same tweets, counts and dates as the
/// bundled file it was written from, searchable with no other file.
#[test]
fn a_parquet_table_is_a_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let pq = dir.path().join("b.parquet");
    ok(&["embed", "-q", "--out", s(&pq)]);
    let summary = |args: &[&str]| -> Value {
        let mut a = vec!["corpus", "--json"];
        a.extend(args);
        serde_json::from_str(&ok(&a)).unwrap()
    };
    let bundled = summary(&[]);
    let table = summary(&["--corpus", s(&pq)]);
    assert_eq!(table["format"], "parquet");
    for key in [
        "entries",
        "unique",
        "merged",
        "replies",
        "first_date",
        "last_date",
    ] {
        assert_eq!(table[key], bundled[key], "{key}");
    }
    let corpus = tweetsim::corpus::Corpus::load(&pq, None).unwrap();
    let original = tweetsim::corpus::Corpus::bundled();
    for (t, o) in corpus.tweets.iter().zip(&original.tweets) {
        assert_eq!(
            (t.id, &t.text, t.date, t.metrics.likes, t.is_reply, &t.url),
            (o.id, &o.text, o.date, o.metrics.likes, o.is_reply, &o.url)
        );
    }
    // Searched directly (the store is built from the table on first use).
    let out = ok(&[
        "similar",
        "tesla autopilot",
        "--json",
        "-k",
        "3",
        "--corpus",
        s(&pq),
        "--store",
        s(&dir.path().join("st")),
    ]);
    assert_eq!(out.lines().count(), 3);
    assert!(out.contains("1547332300186066944"), "{out}");
}

/// Writes a Parquet file of the given columns.
fn table(path: &Path, columns: Vec<(&str, ArrayRef)>) -> PathBuf {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    path.to_path_buf()
}

#[test]
fn parquet_files_that_do_not_fit_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ids: ArrayRef = Arc::new(StringArray::from(vec!["1478128891520688128", "2"]));

    // A table without text.
    let no_text = table(&d.join("no-text.parquet"), vec![("id", ids.clone())]);
    let e = fails(&["corpus", "--corpus", s(&no_text)]);
    assert!(e.contains("no-text.parquet:0: no \"text\" column"), "{e}");

    // Vectors of another dimension than the model's.
    let values = Arc::new(Float32Array::from(vec![0.5f32; 6]));
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let small: ArrayRef = Arc::new(FixedSizeListArray::try_new(item, 3, values, None).unwrap());
    let texts: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
    let three = table(
        &d.join("three.parquet"),
        vec![
            ("id", ids.clone()),
            ("text", texts.clone()),
            ("embedding", small),
        ],
    );
    let store = d.join("store");
    let e = fails(&["index", "--embeddings", s(&three), "--store", s(&store)]);
    assert!(e.contains("vectors have 3 dimensions"), "{e}");
    assert!(!store.join("manifest.json").exists());

    // Tweets without vectors given as vectors.
    let tweets_only = table(
        &d.join("tweets.parquet"),
        vec![("id", ids), ("text", texts)],
    );
    let e = fails(&[
        "index",
        "--embeddings",
        s(&tweets_only),
        "--store",
        s(&store),
    ]);
    assert!(e.contains("no \"embedding\" column"), "{e}");
    assert!(!store.join("manifest.json").exists());

    let plain = d.join("vectors.parquet");
    let corpus = d.join("small.jsonl");
    crate::common::write_jsonl(&corpus, &tweetsim::corpus::Corpus::bundled().tweets[..50]);
    ok(&["embed", "-q", "--corpus", s(&corpus), "--out", s(&plain)]);

    // Cut short (a copy that broke off): refused as a corpus and as vectors, and a store
    // built before is left as it was.
    ok(&[
        "index",
        "-q",
        "--corpus",
        s(&corpus),
        "--embeddings",
        s(&plain),
        "--store",
        s(&store),
    ]);
    let before = std::fs::read(store.join("manifest.json")).unwrap();
    let bytes = std::fs::read(&plain).unwrap();
    let cut = d.join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let e = fails(&["corpus", "--corpus", s(&cut)]);
    assert!(
        e.contains("cut.parquet:0: not a readable Parquet file"),
        "{e}"
    );
    let e = fails(&[
        "index",
        "--corpus",
        s(&corpus),
        "--embeddings",
        s(&cut),
        "--store",
        s(&store),
    ]);
    assert!(e.contains("not a readable Parquet file"), "{e}");
    assert_eq!(std::fs::read(store.join("manifest.json")).unwrap(), before);
}

/// An embed that fails partway (a broken record after the first chunks) leaves no Parquet
/// file, no temporary, and an earlier file of the same name untouched.
#[test]
fn a_failed_parquet_embed_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corpus = d.join("c.jsonl");
    crate::common::write_jsonl(&corpus, &tweetsim::corpus::Corpus::bundled().tweets[..300]);
    let out = d.join("out.parquet");
    ok(&["embed", "-q", "--corpus", s(&corpus), "--out", s(&out)]);
    let good = std::fs::read(&out).unwrap();
    let before = files(d);

    let mut text = std::fs::read_to_string(&corpus).unwrap();
    text.push_str("{\"id\": \"17\", \"text\": \"fine\"}\n{\"id\": \"18\", \"text\": 5}\n");
    std::fs::write(&corpus, text).unwrap();
    let e = fails(&[
        "embed",
        "--corpus",
        s(&corpus),
        "--out",
        s(&out),
        "--chunk",
        "64",
    ]);
    assert!(e.contains("c.jsonl:302: field \"text\""), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), good);
    assert_eq!(files(d), before);
}
