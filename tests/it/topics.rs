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
    let conf = v["confidence"].as_object().unwrap();
    assert_eq!(conf.len(), 657);
    for (id, t) in a {
        let c = conf[id].as_f64().unwrap();
        assert_eq!(
            t.as_i64() == Some(-1),
            c == 0.0,
            "tweet {id}: topic {t}, confidence {c}"
        );
    }
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
    let n = store.len();
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
    std::fs::write(missing.path().join("manifest.json"), b"\xff\xfe\0garbage").unwrap();
    let (code, _, err) = run(&["topics", "--store", missing.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("manifest.json is corrupt") && err.contains("rebuild with"),
        "{err}"
    );

    // Guided mode: "other" is taken, discovery's knobs do not apply, and a theme no tweet
    // names is reported as found by meaning alone.
    let (code, _, err) = run(&["topics", "--themes", "Other, tesla", "--store", &store]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot be called 'other'"), "{err}");
    let (code, _, err) = run(&["topics", "--themes", "tesla", "--topics", "3"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, out, err) = run(&["topics", "--themes", "xqzzyv, tesla", "--store", &store]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("no tweet has any of the words or seeds of theme 'xqzzyv'"),
        "{err}"
    );
    assert!(out.contains("matched via: tesla"), "{out}");

    // Themes this corpus never speaks of take (next to) nothing, instead of the ~10% of tweets
    // a z-score always ranks above the rest.
    let v = topics_report(&[
        "--themes",
        "tesla, quantum chromodynamics, knitting, tax law",
    ]);
    let sizes: Vec<u64> = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["size"].as_u64().unwrap())
        .collect();
    assert!(sizes[0] >= 30, "{sizes:?}");
    assert!(sizes[1..].iter().all(|&s| s <= 1), "{sizes:?}");

    // Report files land together or not at all.
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("ok.md");
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "a file, not a folder").unwrap();
    let html = blocked.join("x.html");
    let (md, html) = (md.to_str().unwrap(), html.to_str().unwrap());
    let (code, _, err) = run(&[
        "topics",
        "--store",
        &store,
        "--markdown",
        md,
        "--html",
        html,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("blocked"), "{err}");
    assert!(
        !std::path::Path::new(md).exists(),
        "the Markdown landed alone"
    );
    let (code, _, err) = run(&["topics", "--store", &store, "--markdown", md, "--html", md]);
    assert_eq!(code, 1);
    assert!(err.contains("given for two outputs"), "{err}");
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

/// The hand labels of `file` (under tests/data): (status id, theme or "other").
fn hand_labels(file: &str) -> Vec<(String, String)> {
    let labels = std::fs::read_to_string(crate::common::data(file)).unwrap();
    let labels: Vec<(String, String)> = labels
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect();
    let expected = if file == SECOND_ANNOTATOR { 240 } else { 120 };
    assert_eq!(labels.len(), expected, "{file}");
    labels
}

/// The labels the guided parameters were chosen on, and a second sample drawn and labelled
/// afterwards, held out.
const TUNED: &str = "theme-labels.tsv";
const HELD_OUT: &str = "theme-labels-2.tsv";
/// Both samples labelled again by a second annotator, blind to the first labels.
const SECOND_ANNOTATOR: &str = "theme-labels-second-annotator.tsv";

/// `tweetsim topics --json ARGS` on the shared store.
fn topics_report(args: &[&str]) -> Value {
    let store = bundled_store().display().to_string();
    let mut all = vec!["topics", "--json", "--store", &store];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// Precision, recall and F1 of "predicted == name" against "label == name".
fn prf(
    labels: &[(String, String)],
    name: &str,
    predicted_is: impl Fn(&str) -> bool,
) -> (f64, f64, f64) {
    let count = |want_label: bool, want_pred: bool| {
        labels
            .iter()
            .filter(|(id, l)| (l == name) == want_label && predicted_is(id) == want_pred)
            .count() as f64
    };
    let (tp, fp, fn_) = (count(true, true), count(false, true), count(true, false));
    let p = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let r = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
    let f = if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    };
    (p, r, f)
}

/// Per-theme (name, F1) of a guided run against the labels of `file`, printed with precision
/// and recall.
fn theme_scores(v: &Value, file: &str) -> Vec<(String, f64)> {
    let labels = hand_labels(file);
    let topics = v["topics"].as_array().unwrap();
    topics
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let name = t["label"].as_str().unwrap().to_string();
            let (p, r, f) = prf(&labels, &name, |id| {
                v["assignments"][id]
                    .as_i64()
                    .expect("every labelled tweet is assigned")
                    == k as i64
            });
            eprintln!("{name:>17}: precision {p:.2} recall {r:.2} F1 {f:.2}");
            (name, f)
        })
        .collect()
}

/// Discovered topics against the labels of `file`: the best-matching topic per theme, printed.
fn best_topics(v: &Value, file: &str) {
    let labels = hand_labels(file);
    for theme in ["tesla", "llm", "teaching", "image generation", "speech"] {
        let (label, (p, r, f)) = v["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let id = t["id"].as_i64().unwrap();
                let s = prf(&labels, theme, |tw| {
                    v["assignments"][tw].as_i64() == Some(id)
                });
                (t["label"].as_str().unwrap().to_string(), s)
            })
            .max_by(|a, b| a.1 .2.total_cmp(&b.1 .2))
            .unwrap();
        eprintln!("{theme:>17}: '{label}' precision {p:.2} recall {r:.2} F1 {f:.2}");
    }
}

#[test]
fn guided_themes_against_hand_labels() {
    // The target is F1 >= 0.7 per theme from names alone: on the labels the parameters
    // were chosen on, four themes reach it, "teaching" does not (0.53, docs/topics.md); the floors
    // guard what each set reaches now.
    let names_only = topics_report(&["--themes", "tesla, llm, teaching, image generation, speech"]);
    eprintln!("names only, {TUNED}:");
    for (name, f) in theme_scores(&names_only, TUNED) {
        let floor = if name == "teaching" { 0.5 } else { 0.7 };
        assert!(f >= floor, "{name}: F1 {f:.2}");
    }
    eprintln!("names only, {HELD_OUT} (held out):");
    for (name, f) in theme_scores(&names_only, HELD_OUT) {
        assert!(f >= 0.5, "{name}: F1 {f:.2}");
    }
    eprintln!("names only, {SECOND_ANNOTATOR} (both samples, the other annotator's labels):");
    for (name, f) in theme_scores(&names_only, SECOND_ANNOTATOR) {
        assert!(f >= 0.55, "{name}: F1 {f:.2}");
    }

    let discovered = topics_report(&[]);
    for file in [TUNED, HELD_OUT] {
        eprintln!("discovered topics, {file} (best-matching topic per theme):");
        best_topics(&discovered, file);
    }

    let file = crate::common::repo().join("data/themes-2022.toml");
    let seeded = topics_report(&["--themes-file", file.to_str().unwrap()]);
    eprintln!("with the example seeds (data/themes-2022.toml), {TUNED}:");
    for (name, f) in theme_scores(&seeded, TUNED) {
        let floor = if name == "teaching" { 0.45 } else { 0.6 };
        assert!(f >= floor, "{name}: F1 {f:.2}");
    }
    eprintln!("with the example seeds, {HELD_OUT} (held out):");
    for (name, f) in theme_scores(&seeded, HELD_OUT) {
        assert!(f >= 0.55, "{name}: F1 {f:.2}");
    }
}
