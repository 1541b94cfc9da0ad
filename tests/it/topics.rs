//! Topic discovery and reports on the bundled corpus: reproducible, few outliers, no giant
//! topic, clean keywords, merging and errors.

use serde_json::Value;
use tweetsim::index::Store;
use tweetsim::topics::{self, keywords, Options};

use crate::common::{bundled_store, run};

fn topics_json(threads: &str) -> String {
    let out = crate::common::tweetsim()
        .env("RAYON_NUM_THREADS", threads)
        .args(["topics", "--json", "--store"])
        .arg(bundled_store())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn json_is_byte_identical_across_runs_and_thread_counts() {
    let first = topics_json("2");
    assert_eq!(first, topics_json("2"));
    assert_eq!(first, topics_json("2"));
    assert_eq!(first, topics_json("1"));
    let v: Value = serde_json::from_str(&first).unwrap();
    // Every tweet has an entry in the assignments, -1 or a topic id.
    let a = v["assignments"].as_object().unwrap();
    assert_eq!(a.len(), 657);
    let n_topics = v["topics"].as_array().unwrap().len() as i64;
    assert!(a
        .values()
        .all(|t| (-1..n_topics).contains(&t.as_i64().unwrap())));
    for t in v["topics"].as_array().unwrap() {
        for key in [
            "label",
            "keywords",
            "size",
            "share",
            "first_date",
            "last_date",
            "monthly",
            "likes_total",
            "likes_median",
            "retweets_total",
            "retweets_median",
            "most_liked",
            "representatives",
        ] {
            assert!(!t[key].is_null(), "topic lacks {key}");
        }
        assert_eq!(t["monthly"].as_object().unwrap().len(), 12);
        assert_eq!(t["representatives"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn few_outliers_and_no_giant_topic() {
    let store = Store::open(bundled_store()).unwrap();
    let t = topics::discover(&store, &Options::default()).unwrap();
    let n = store.tweets().len();
    let unassigned = t.assignment.iter().filter(|a| a.is_none()).count();
    assert!(unassigned * 10 < n, "{unassigned} of {n} unassigned");
    assert!(
        (8..=30).contains(&t.topics.len()),
        "{} topics",
        t.topics.len()
    );
    for topic in &t.topics {
        assert!(
            topic.rows.len() * 100 <= 35 * n,
            "'{}' holds {} of {n}",
            topic.label,
            topic.rows.len()
        );
        assert!(topic.rows.iter().all(|&r| t.assignment[r].is_some()));
    }
    // Sizes add up: every tweet is in exactly one topic or unassigned.
    let total: usize = t.topics.iter().map(|x| x.rows.len()).sum();
    assert_eq!(total + unassigned, n);
    // Known themes of 2022 come out as topics of their own.
    let find = |word: &str| {
        t.topics
            .iter()
            .any(|x| x.keywords.iter().take(5).any(|(k, _)| k.contains(word)))
    };
    for theme in ["tesla", "whisper", "stable diffusion", "llm"] {
        assert!(find(theme), "no topic with '{theme}' in its top keywords");
    }
}

#[test]
fn top_keywords_are_clean() {
    let store = Store::open(bundled_store()).unwrap();
    let t = topics::discover(&store, &Options::default()).unwrap();
    for topic in &t.topics {
        for (k, _) in topic.keywords.iter().take(5) {
            for w in k.split(' ') {
                assert!(
                    !keywords::is_stop_word(w),
                    "stop word '{w}' in '{}'",
                    topic.label
                );
                assert!(
                    !w.starts_with('@')
                        && !w.contains("http")
                        && !w.contains("t.co")
                        && !w.contains('&'),
                    "noise '{w}'"
                );
                assert!(!w.chars().all(|c| c.is_ascii_digit()), "number '{w}'");
            }
        }
    }
}

#[test]
fn merging_gives_exactly_n_topics_and_a_full_hierarchy() {
    let store = Store::open(bundled_store()).unwrap();
    let all = topics::discover(&store, &Options::default()).unwrap();
    let five = topics::discover(
        &store,
        &Options {
            topics: Some(5),
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(five.topics.len(), 5);
    assert_eq!(five.hierarchy, all.hierarchy);
    assert_eq!(all.hierarchy.len(), all.discovered - 1);
    let parts: usize = five.topics.iter().map(|t| t.parts.len()).sum();
    assert_eq!(parts, all.discovered);
    // Merging never loses a tweet.
    let count = |t: &topics::Topics| t.assignment.iter().filter(|a| a.is_some()).count();
    assert_eq!(count(&five), count(&all));
    let one = topics::discover(
        &store,
        &Options {
            topics: Some(1),
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(one.topics.len(), 1);
}

#[test]
fn bad_topic_requests_fail_cleanly() {
    let store = bundled_store().display().to_string();
    let (code, _, err) = run(&["topics", "--topics", "0", "--store", &store]);
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "error: --topics must be at least 1");
    let (code, _, err) = run(&["topics", "--resolution=-1", "--store", &store]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--resolution must be a positive number"),
        "{err}"
    );
    let (code, _, err) = run(&["topics", "--min-size", "1000", "--store", &store]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no group of at least 1000 similar tweets"),
        "{err}"
    );
    let missing = tempfile::tempdir().unwrap();
    std::fs::write(missing.path().join("manifest.json"), "{}").unwrap();
    let (code, _, err) = run(&["topics", "--store", missing.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("manifest.json is corrupt"), "{err}");
}

#[test]
fn text_and_markdown_reports() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("topics.md");
    let (code, out, err) = run(&[
        "topics",
        "--topics",
        "6",
        "--markdown",
        md.to_str().unwrap(),
        "--store",
        &bundled_store().display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("6 topics over 657 tweets"), "{out}");
    assert!(out.contains("unassigned:"));
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.starts_with("# Topics of data/karpathy-2022.txt"));
    assert_eq!(md.matches("\n## ").count(), 6);
}

#[test]
fn html_page_is_self_contained_with_every_chart() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("topics.html");
    let (code, _, err) = run(&[
        "topics",
        "--html",
        page.to_str().unwrap(),
        "--store",
        &bundled_store().display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(page).unwrap();
    for id in [
        "chart-sizes",
        "chart-timeline",
        "chart-map",
        "chart-engagement",
    ] {
        assert!(html.contains(&format!("<svg id=\"{id}\"")), "no {id}");
    }
    // One point per tweet, each with the tweet as its hover text.
    assert_eq!(html.matches("<circle class=\"pt\"").count(), 657);
    assert!(html.contains("It’s been a great pleasure to help Tesla towards its goals"));
    // Nothing is loaded from elsewhere: no external scripts, styles, images or fonts.
    for bad in ["<script src", "<link", "@import", "<img", "url(", "<iframe"] {
        assert!(!html.contains(bad), "page loads something: {bad}");
    }
    // Tweet text is escaped, not interpreted.
    assert!(!html.contains("<3") || html.contains("&lt;3"));
}
