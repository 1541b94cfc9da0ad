//! The `tweetsim` binary as a user runs it: output shapes, filters, and one-line errors with
//! a non-zero exit for every bad input.

use serde_json::Value;

use crate::common::{bundled_store, data, fails, run};

fn store_arg() -> String {
    bundled_store().display().to_string()
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn similar_text_prints_ranked_hits_with_every_field() {
    let store = store_arg();
    let (code, out, err) = run(&[
        "similar",
        "tesla autopilot data engine",
        "--json",
        "--store",
        &store,
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 10);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["rank"], i + 1);
        for key in [
            "score", "id", "date", "url", "text", "likes", "retweets", "replies", "is_reply",
        ] {
            assert!(!r[key].is_null(), "missing {key}");
        }
        assert!(r["id"].is_string());
    }
    let scores: Vec<f64> = rows.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    // Relevance: most of the top 10 are about Tesla / Autopilot / data engines.
    let on_topic = rows
        .iter()
        .filter(|r| {
            let t = r["text"].as_str().unwrap().to_lowercase();
            ["tesla", "autopilot", "data engine", "self-driving", "fsd"]
                .iter()
                .any(|k| t.contains(k))
        })
        .count();
    assert!(on_topic >= 7, "{on_topic} of 10 on topic:\n{out}");
    assert_eq!(rows[0]["id"], "1547332300186066944");
    // Repeated status ids never show twice.
    let mut ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
}

#[test]
fn similar_table_shows_rank_score_date_likes_text_and_link() {
    let (code, out, err) = run(&[
        "similar",
        "teaching neural networks from scratch",
        "-k",
        "3",
        "--store",
        &store_arg(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("similar to: teaching neural networks from scratch"));
    let header = out.lines().nth(2).unwrap();
    assert!(
        header.contains("score") && header.contains("date") && header.contains("likes"),
        "{out}"
    );
    assert_eq!(
        out.matches("https://x.com/karpathy/status/").count(),
        3,
        "{out}"
    );
    assert!(
        out.lines().nth(3).unwrap().trim_start().starts_with("1 0."),
        "{out}"
    );
}

#[test]
fn more_like_a_tweet_by_id_or_url() {
    let store = store_arg();
    let (code, out, err) = run(&[
        "similar",
        "--tweet",
        "https://x.com/karpathy/status/1547332300186066944",
        "--json",
        "-k",
        "5",
        "--store",
        &store,
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["id"] != "1547332300186066944"));
    assert!(rows
        .iter()
        .any(|r| r["text"].as_str().unwrap().contains("Autopilot")));
}

#[test]
fn filters_apply_in_the_cli() {
    let (code, out, err) = run(&[
        "similar",
        "large language models",
        "--json",
        "-k",
        "8",
        "--since",
        "2022-03-01",
        "--until",
        "2022-10-31",
        "--no-replies",
        "--min-likes",
        "1000",
        "--store",
        &store_arg(),
    ]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 8);
    for r in &rows {
        let date = r["date"].as_str().unwrap();
        assert!(("2022-03-01"..="2022-10-31").contains(&date), "{date}");
        assert_eq!(r["is_reply"], false);
        assert!(r["likes"].as_u64().unwrap() >= 1000);
    }
}

#[test]
fn bad_requests_get_one_line_errors() {
    let store = store_arg();
    let e = fails(&["similar", "   ", "--store", &store]);
    assert_eq!(e, "error: empty query: give some text, or --tweet ID");
    let e = fails(&["similar", "--tweet", "123", "--store", &store]);
    assert!(e.starts_with("error: tweet 123 is not in the store"), "{e}");
    let e = fails(&["similar", "--tweet", "abc", "--store", &store]);
    assert!(e.contains("'abc' is not a status id"), "{e}");
    let e = fails(&["similar", "x", "-k", "0", "--store", &store]);
    assert!(e.contains("invalid value '0'"), "{e}");
    let e = fails(&["similar", "x", "--since", "2022-02-30", "--store", &store]);
    assert!(e.contains("'2022-02-30' is not a date"), "{e}");
    let e = fails(&[
        "similar",
        "x",
        "--since",
        "2022-05-01",
        "--until",
        "2022-04-01",
        "--store",
        &store,
    ]);
    assert!(
        e.contains("--since 2022-05-01 is after --until 2022-04-01"),
        "{e}"
    );
}

#[test]
fn devices_this_build_lacks_are_refused_clearly() {
    let store = store_arg();
    if cfg!(feature = "cuda") {
        return; // a CUDA build is judged on a GPU machine
    }
    let e = fails(&["similar", "x", "--device", "cuda", "--store", &store]);
    assert_eq!(e, "error: encoder: this tweetsim was built without CUDA support: rebuild with `cargo build --release --features cuda`");
    let e = fails(&["similar", "x", "--device", "tpu", "--store", &store]);
    assert!(
        e.contains("'tpu' is not a device: use cpu, cuda, cuda:N or auto"),
        "{e}"
    );
    // auto falls back to the CPU.
    let (code, _, err) = run(&[
        "similar", "x", "--device", "auto", "-k", "1", "--store", &store,
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn missing_model_and_missing_store_are_explained() {
    let e = fails(&[
        "similar",
        "x",
        "--model",
        "/no/such/model",
        "--store",
        "/no/such/store",
        "--corpus",
        data("archive/tweets.js").to_str().unwrap(),
    ]);
    assert!(
        e.starts_with(
            "error: model '/no/such/model' not found: directory '/no/such/model' (does not exist)"
        ),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), "{not json").unwrap();
    let e = fails(&["similar", "x", "--store", dir.path().to_str().unwrap()]);
    assert!(
        e.contains("manifest.json is corrupt") && e.contains("rebuild with `tweetsim index"),
        "{e}"
    );
}

#[test]
fn malformed_corpus_fails_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": 1, \"text\": \"fine\"}\n{\"id\": 2, \"text\": \n",
    )
    .unwrap();
    let e = fails(&["corpus", "--corpus", bad.to_str().unwrap()]);
    assert!(
        e.starts_with(&format!("error: {}:2: invalid JSON line", bad.display())),
        "{e}"
    );
    // `index` refuses it too and writes nothing.
    let store = dir.path().join("store");
    fails(&[
        "index",
        "--corpus",
        bad.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    assert!(!store.exists());
}

#[test]
fn corpus_command_reports_counts_and_merges() {
    let (code, out, err) = run(&["corpus", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["entries"], 680);
    assert_eq!(v["unique"], 657);
    assert_eq!(v["merged"], 23);
    assert_eq!(v["first_date"], "2022-01-03");
    assert_eq!(v["last_date"], "2022-12-30");
    assert!(
        err.contains("23 repeated status ids merged (680 entries → 657 tweets)"),
        "{err}"
    );
    let (_, text, _) = run(&["corpus"]);
    assert!(
        text.contains("unique       657 tweets") && text.contains("359=361"),
        "{text}"
    );
}

#[test]
fn embed_writes_npy_and_ids_in_corpus_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tweets.npy");
    let (code, stdout, err) = run(&[
        "embed",
        "--corpus",
        data("archive/tweets.js").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("(3 × 384)"), "{stdout}");
    let (m, rows, dim) = tweetsim::npy::read(&out).unwrap();
    assert_eq!((rows, dim), (3, 384));
    let ids = std::fs::read_to_string(dir.path().join("tweets.ids")).unwrap();
    assert_eq!(
        ids,
        "1052322330397974528\n1052329999999999999\n1060000000000000001\n"
    );
    let first = crate::common::encoder()
        .embed(&["Training neural nets is a leaky abstraction & you should know what happens under the hood"])
        .unwrap();
    assert!(crate::common::cosine(&m[..384], &first) > 0.99999);
    let e = fails(&["embed", "--out", dir.path().join("x.bin").to_str().unwrap()]);
    assert!(e.contains("must end in .npy"), "{e}");
}

#[test]
fn timings_name_every_stage() {
    let (code, _, err) = run(&[
        "similar",
        "--store",
        &store_arg(),
        "data engine",
        "--timings",
    ]);
    assert_eq!(code, 0, "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("timings:"))
        .unwrap_or_default();
    for stage in [
        "store open",
        "encoder load",
        "embed query",
        "search",
        "print",
        "total",
    ] {
        assert!(line.contains(stage), "{stage} missing: {err}");
    }
}

/// A `-k` far beyond the store (the largest the flag takes) returns every match once, in every
/// mode, instead of reserving room for four billion hits.
#[test]
fn a_huge_k_returns_at_most_the_store() {
    let store = store_arg();
    for mode in ["hybrid", "lexical", "dense"] {
        let (code, out, err) = run(&[
            "similar",
            "tesla autopilot",
            "-k",
            "4294967295",
            "--mode",
            mode,
            "--json",
            "--store",
            &store,
        ]);
        assert_eq!(code, 0, "{mode}: {err}");
        let rows = json_lines(&out);
        assert!(
            !rows.is_empty() && rows.len() <= 680,
            "{mode}: {}",
            rows.len()
        );
        let mut ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rows.len(), "{mode}: a tweet twice");
    }
}

/// Status lines go through a checked write: a full stdout is one error line and a non-zero
/// exit, not a panic.
#[test]
fn a_full_stdout_is_an_error_not_a_panic() {
    let store = store_arg();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = crate::common::tweetsim()
        .args(["verify", "--store", &store])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("error: writing to stdout"), "{err}");
}

/// A corpus is untrusted: escape sequences in a tweet never reach the terminal, and a
/// `javascript:` url or raw HTML in it never becomes a link or markup in a shared report.
#[test]
fn hostile_tweets_stay_text_in_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("evil.jsonl");
    std::fs::write(
        &corpus,
        concat!(
            r#"{"id":"1","text":"evil \u001b[2J\u001b]0;pwned\u0007 text <script>alert(1)</script>","url":"javascript:alert(document.domain)"}"#,
            "\n",
            r#"{"id":"2","text":"tesla cars are fun \u202e gnp.exe","url":"https://x.com/a/status/2\n  9 0.999 2022-01-01   99999  FAKE RESULT"}"#,
            "\n",
            r#"{"id":"3","text":"more tesla autopilot cars","url":"https://x.com/a/status/3\" onmouseover=\"x"}"#,
            "\n",
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let (corpus, store) = (corpus.to_str().unwrap(), store.to_str().unwrap());
    let (code, _, err) = run(&["index", "--corpus", corpus, "--store", store]);
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(&["similar", "evil text", "--store", store]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("evil") && !out.contains('\u{1b}') && !out.contains('\u{7}'));
    assert!(
        !out.contains('\u{202e}'),
        "a bidi override reached the terminal"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("  9 0.999")),
        "a url forged a result line:\n{out}"
    );

    let html = dir.path().join("r.html");
    let md = dir.path().join("r.md");
    let (html, md) = (html.to_str().unwrap(), md.to_str().unwrap());
    let args = ["topics", "--store", store, "--min-size", "1"];
    let (code, out, err) = run(&[&args[..], &["--html", html, "--markdown", md]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("evil") && !out.contains('\u{1b}'), "{out}");
    let page = std::fs::read_to_string(html).unwrap();
    assert!(
        !page.contains("javascript:alert"),
        "a script link in the page"
    );
    assert!(!page.contains("onmouseover"), "an attribute broke out");
    assert!(!page.contains("<script>alert"), "tweet markup in the page");
    assert!(!page.contains('\u{1b}') && !page.contains('\u{202e}'));
    let markdown = std::fs::read_to_string(md).unwrap();
    assert!(!markdown.contains("(javascript:") && !markdown.contains("<script>"));
    assert!(!markdown.contains('\u{1b}') && !markdown.contains('\u{202e}'));
}

/// Wrong things where a store or a status id should be: one clear line each.
#[test]
fn a_file_as_store_and_an_oversized_id_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-store");
    std::fs::write(&file, "x").unwrap();
    for cmd in [&["index"][..], &["verify"], &["remove", "1"]] {
        let e = fails(&[cmd, &["--store", file.to_str().unwrap()]].concat());
        assert!(e.contains("is a file; a store is a folder"), "{cmd:?}: {e}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    let store = store_arg();
    let e = fails(&[
        "similar",
        "--tweet",
        "99999999999999999999999",
        "--store",
        &store,
    ]);
    assert!(e.contains("too large for a status id"), "{e}");
}
