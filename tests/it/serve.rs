//! `tweetsim serve` as apps use it: the real binary on a loopback port, the real model and
//! store, answers compared with the CLI's, bad requests, batching, and a store rewritten
//! under load.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{bundled_store, cosine, data, one_error, run, store_copy, tweetsim};

/// A running `tweetsim serve`, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts the server on a free loopback port and waits (at most two minutes) until it
    /// says where it listens.
    fn start(store: &Path, extra: &[&str]) -> Server {
        let mut child = tweetsim()
            .args(["serve", "--quiet", "--addr", "127.0.0.1:0", "--store"])
            .arg(store)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tweetsim serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("tweetsim serve did not report its address within 120 s");
            }
        };
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Server { child, base: addr }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET: (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        answer(
            ureq::get(&self.url(path))
                .timeout(Duration::from_secs(120))
                .call(),
        )
    }

    fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// POST with a body: (status, body).
    fn post(&self, path: &str, body: &[u8]) -> (u16, String) {
        answer(
            ureq::post(&self.url(path))
                .timeout(Duration::from_secs(120))
                .set("content-type", "application/json")
                .send_bytes(body),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The same ranked ids, scores equal to float rounding (the server may embed a query in a
/// group with others).
fn same_hits(server: &Value, cli: &[Value], what: &str) {
    let hits = server["hits"].as_array().unwrap();
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|h| h["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(hits), ids(cli), "{what}");
    for (a, b) in hits.iter().zip(cli) {
        let (a, b) = (a["score"].as_f64().unwrap(), b["score"].as_f64().unwrap());
        assert!((a - b).abs() < 1e-4, "{what}: score {a} vs {b}");
    }
}

#[test]
fn serve_answers_as_the_cli_does() {
    let store = bundled_store();
    let manifest = tweetsim::index::read_manifest(store).unwrap();
    let server = Server::start(store, &[]);

    let health = server.get_json("/healthz");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["generation"], manifest.generation.as_str());
    assert_eq!(health["tweets"], 657);
    assert_eq!(health["encoder"], "running");
    assert!(health.get("behind").is_none());

    // Text queries, with and without filters and modes, against `similar --json`.
    let s = store.display().to_string();
    for (q, params, flags) in [
        ("tesla autopilot data engine", "", vec![]),
        (
            "teaching neural networks from scratch",
            "&mode=dense&k=7&no_replies=true",
            vec!["--mode", "dense", "-k", "7", "--no-replies"],
        ),
        (
            "stable diffusion prompts",
            "&mode=lexical&since=2022-08-01&until=2022-10-31&min_likes=100",
            vec![
                "--mode",
                "lexical",
                "--since",
                "2022-08-01",
                "--until",
                "2022-10-31",
                "--min-likes",
                "100",
            ],
        ),
    ] {
        let body = server.get_json(&format!("/similar?q={}{params}", enc(q)));
        assert_eq!(body["generation"], manifest.generation.as_str());
        assert_eq!(body["query"], q);
        let mut args = vec!["similar", q, "--json", "--store", &s];
        args.extend(flags);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        let cli = json_lines(&out);
        assert!(!cli.is_empty(), "{q}");
        same_hits(&body, &cli, q);
    }

    // More like a tweet of the store.
    let id = "1547332300186066944";
    let body = server.get_json(&format!("/tweets/{id}/similar?k=5"));
    assert_eq!(body["tweet"]["id"], id);
    let (code, out, err) = run(&["similar", "--tweet", id, "-k", "5", "--json", "--store", &s]);
    assert_eq!(code, 0, "{err}");
    same_hits(&body, &json_lines(&out), "--tweet");
    assert!(body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["id"] != id));

    // One tweet, as the store holds it.
    let t = server.get_json(&format!("/tweets/{id}"));
    let st = tweetsim::index::Store::open(store).unwrap();
    let want = st.tweet(st.row(id.parse().unwrap()).unwrap()).unwrap();
    assert_eq!(t["tweet"]["text"], want.text.as_str());
    assert_eq!(t["tweet"]["metrics"]["likes"], want.metrics.likes);
    assert!(t["thread"].as_array().unwrap().iter().any(|x| x == id));

    // The topic report is the one `tweetsim topics --json` prints, byte for byte.
    let (status, topics) = server.get("/topics");
    assert_eq!(status, 200);
    let (code, out, err) = run(&["topics", "--json", "--quiet", "--store", &s]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(topics.trim_end(), out.trim_end());
    let (status, charts) = server.get("/topics/charts");
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&topics).unwrap();
    let n_topics = report["topics"].as_array().unwrap().len();
    // Two bar charts, each with one clickable bar per topic.
    assert_eq!(
        charts.matches("class=\"bar\" data-topic=").count(),
        2 * n_topics
    );

    // The page is one self-contained file: no external scripts, styles or fonts.
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("<form id=\"search\""));
    for external in ["src=", "url(", "@import", "<link rel=\"stylesheet"] {
        assert!(
            !page.contains(external),
            "the page loads something: {external}"
        );
    }
    let hrefs: Vec<&str> = page.split("href=\"").skip(1).collect();
    assert!(hrefs.iter().all(|h| h.starts_with("data:,\"")), "{hrefs:?}");
    assert!(page
        .split("fetch(")
        .skip(1)
        .all(|f| f.starts_with("'/") || f.starts_with("url)")));

    // A long q on default limits: a JSON 400 up to the HTTP layer's own 64 KiB line limit,
    // past it hyper's bare 414 (documented).
    let (status, body) = server.get(&format!("/similar?q={}", "x".repeat(10_000)));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"field\":\"q\""), "{body}");
    let (status, _) = server.get(&format!("/similar?q={}", "x".repeat(70_000)));
    assert_eq!(status, 414);

    // The metrics saw all of it.
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    for want in [
        "tweetsim_http_requests_total{route=\"/similar\",status=\"200\"} 3".to_string(),
        "tweetsim_http_request_duration_seconds_bucket{le=".to_string(),
        format!(
            "tweetsim_store_generation{{generation=\"{}\"}} 1",
            manifest.generation
        ),
        "tweetsim_store_tweets 657".to_string(),
        "tweetsim_encoder_batch_texts_count 3".to_string(),
    ] {
        assert!(metrics.contains(&want), "no {want} in:\n{metrics}");
    }
}

#[test]
fn serve_embeds_like_sentence_transformers_and_batches_concurrent_requests() {
    #[derive(serde::Deserialize)]
    struct RefQuery {
        query: String,
    }
    let queries: Vec<RefQuery> = serde_json::from_str(
        &std::fs::read_to_string(data("reference/minilm-queries-top10.json")).unwrap(),
    )
    .unwrap();
    let (want, _, dim) =
        tweetsim::npy::read(&data("reference/minilm-queries-embeddings.npy")).unwrap();
    let server = Server::start(bundled_store(), &[]);

    // All 20 queries in one request.
    let texts: Vec<&str> = queries.iter().map(|q| q.query.as_str()).collect();
    let body = serde_json::json!({ "texts": texts }).to_string();
    let (status, out) = server.post("/embed", body.as_bytes());
    assert_eq!(status, 200, "{out}");
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["dim"], dim);
    assert_eq!(out["model"], tweetsim::embed::DEFAULT_MODEL);
    let got: Vec<Vec<f32>> = serde_json::from_value(out["embeddings"].clone()).unwrap();
    assert_eq!(got.len(), texts.len());
    for (i, v) in got.iter().enumerate() {
        let c = cosine(v, &want[i * dim..(i + 1) * dim]);
        assert!(
            c >= 0.99999,
            "query {i}: cosine {c} to sentence-transformers"
        );
    }

    // While a long request holds the encoder, single-text requests queue up and share the
    // next call; each still gets its own vector back.
    let long: Vec<String> = (0..256)
        .map(|i| format!("{} (variant {i})", texts[i % texts.len()]))
        .collect();
    let server = Arc::new(server);
    let big = {
        let server = server.clone();
        let body = serde_json::json!({ "texts": long }).to_string();
        std::thread::spawn(move || server.post("/embed", body.as_bytes()))
    };
    // The long request is in the encoder once its batch is counted (the first request's
    // batch was the first).
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&server, "tweetsim_encoder_batch_texts_count") < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the long request never reached the encoder"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let singles: Vec<_> = (0..8)
        .map(|i| {
            let server = server.clone();
            let text = texts[i].to_string();
            std::thread::spawn(move || {
                let body = serde_json::json!({ "texts": [text] }).to_string();
                server.post("/embed", body.as_bytes())
            })
        })
        .collect();
    for (i, h) in singles.into_iter().enumerate() {
        let (status, out) = h.join().unwrap();
        assert_eq!(status, 200, "{out}");
        let out: Value = serde_json::from_str(&out).unwrap();
        let v: Vec<f32> = serde_json::from_value(out["embeddings"][0].clone()).unwrap();
        let c = cosine(&v, &want[i * dim..(i + 1) * dim]);
        assert!(c >= 0.99999, "concurrent query {i}: cosine {c}");
    }
    assert_eq!(big.join().unwrap().0, 200);
    // 10 requests: the first, the long one, then the 8 singles that queued behind it in
    // one call (two if the encoder took the queue while they were still arriving).
    let calls = metric(&server, "tweetsim_encoder_batch_texts_count");
    let texts_embedded = metric(&server, "tweetsim_encoder_batch_texts_sum");
    assert_eq!(texts_embedded, 20.0 + 256.0 + 8.0);
    assert!(
        calls <= 4.0,
        "{calls} encoder calls for 10 requests: no batching"
    );
}

/// One value of the server's /metrics.
fn metric(server: &Server, name: &str) -> f64 {
    let (_, metrics) = server.get("/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).filter(|v| v.starts_with(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

#[test]
fn serve_refuses_bad_requests_with_json_naming_the_field() {
    let server = Server::start(
        bundled_store(),
        &[
            "--max-k",
            "50",
            "--max-body-bytes",
            "2000",
            "--max-query-bytes",
            "2000",
            "--max-texts",
            "4",
        ],
    );
    // Method, path, body, status, the field the error names.
    type Case = (
        &'static str,
        &'static str,
        &'static [u8],
        u16,
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        ("GET", "/similar", b"", 400, Some("q")),
        ("GET", "/similar?q=", b"", 400, Some("q")),
        ("GET", "/similar?q=%20%20", b"", 400, Some("q")),
        ("GET", "/similar?q=tesla&k=0", b"", 400, Some("k")),
        ("GET", "/similar?q=tesla&k=51", b"", 400, Some("k")),
        (
            "GET",
            "/similar?q=tesla&k=99999999999999999999999",
            b"",
            400,
            Some("k"),
        ),
        ("GET", "/similar?q=tesla&k=ten", b"", 400, Some("k")),
        (
            "GET",
            "/similar?q=tesla&since=2022-02-30",
            b"",
            400,
            Some("since"),
        ),
        (
            "GET",
            "/similar?q=tesla&until=yesterday",
            b"",
            400,
            Some("until"),
        ),
        (
            "GET",
            "/similar?q=tesla&since=2022-05-01&until=2022-04-01",
            b"",
            400,
            Some("since"),
        ),
        (
            "GET",
            "/similar?q=tesla&min_likes=-1",
            b"",
            400,
            Some("min_likes"),
        ),
        ("GET", "/similar?q=tesla&mode=fuzzy", b"", 400, Some("mode")),
        (
            "GET",
            "/similar?q=tesla&no_replies=perhaps",
            b"",
            400,
            Some("no_replies"),
        ),
        ("GET", "/similar?q=tesla&limit=5", b"", 400, Some("limit")),
        ("GET", "/similar?q=tesla&q=cars", b"", 400, Some("q")),
        ("GET", "/similar?q=%ff%fe", b"", 400, Some("q")),
        ("GET", "/tweets/123/similar", b"", 404, Some("id")),
        ("GET", "/tweets/abc/similar", b"", 400, Some("id")),
        ("GET", "/tweets/%ff%fe/similar", b"", 400, Some("id")),
        (
            "GET",
            "/tweets/99999999999999999999999",
            b"",
            400,
            Some("id"),
        ),
        ("GET", "/tweets/-5", b"", 400, Some("id")),
        ("GET", "/tweets/123", b"", 404, Some("id")),
        (
            "GET",
            "/tweets/1547332300186066944?x=1",
            b"",
            400,
            Some("x"),
        ),
        ("GET", "/topics?min_size=3", b"", 400, Some("min_size")),
        (
            "GET",
            "/similar?q=tesla&no_replies=",
            b"",
            400,
            Some("no_replies"),
        ),
        (
            "GET",
            "/similar?q=tesla&%ff=1",
            b"",
            400,
            Some("parameter name"),
        ),
        ("POST", "/embed", b"", 400, Some("body")),
        ("POST", "/embed", b"{}", 400, Some("texts")),
        ("POST", "/embed", b"{\"texts\": []}", 400, Some("texts")),
        (
            "POST",
            "/embed",
            b"{\"texts\": [\"ok\", \"\"]}",
            400,
            Some("texts[1]"),
        ),
        (
            "POST",
            "/embed",
            b"{\"texts\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}",
            400,
            Some("texts"),
        ),
        (
            "POST",
            "/embed",
            b"{\"texts\": [\"ok\", 5]}",
            400,
            Some("texts[1]"),
        ),
        ("POST", "/embed", b"{\"text\": [\"ok\"]}", 400, Some("text")),
        (
            "POST",
            "/embed",
            b"{\"texts\": [\"\xff\xfe\"]}",
            400,
            Some("body"),
        ),
        ("POST", "/embed", b"[1, 2", 400, Some("body")),
        ("GET", "/embed", b"", 405, None),
        ("POST", "/similar", b"", 405, None),
        ("GET", "/nowhere", b"", 404, None),
    ];
    for &(method, path, body, status, field) in cases {
        let (got, text) = match method {
            "GET" => server.get(path),
            _ => server.post(path, body),
        };
        assert_eq!(got, status, "{method} {path}: {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: {text}"
        );
        assert_eq!(v["field"].as_str(), field, "{method} {path}: {text}");
    }
    // Not JSON by content type: refused before the body is read.
    let (status, text) = answer(
        ureq::post(&server.url("/embed"))
            .timeout(Duration::from_secs(60))
            .set("content-type", "text/plain")
            .send_string("{\"texts\": [\"ok\"]}"),
    );
    assert_eq!(status, 415, "{text}");
    assert!(text.contains("\"field\":\"content-type\""), "{text}");
    let (_, text) = server.get("/tweets/1547332300186066944?x=1");
    assert!(text.contains("takes no parameters"), "{text}");
    // An oversized body (declared, and streamed without a length) and an oversized query.
    let big = format!("{{\"texts\": [\"{}\"]}}", "x".repeat(3000));
    let (status, text) = server.post("/embed", big.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("2000-byte limit"), "{text}");
    let (status, text) = answer(
        ureq::post(&server.url("/embed"))
            .timeout(Duration::from_secs(60))
            .set("content-type", "application/json")
            .send(std::io::Cursor::new(big.into_bytes())),
    );
    assert_eq!(status, 413, "{text}");
    let (status, text) = server.get(&format!("/similar?q={}", "x".repeat(2500)));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("\"field\":\"q\""), "{text}");
    // The server is still up and answering after all of that.
    assert_eq!(server.get_json("/healthz")["status"], "ok");
    let (_, metrics) = server.get("/metrics");
    assert!(!metrics.contains("status=\"500\""), "{metrics}");
}

#[test]
fn serve_documents_every_endpoint_and_parameter_it_takes() {
    let server = Server::start(bundled_store(), &[]);
    let doc = server.get_json("/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut seen = BTreeSet::new();
    for (path, ops) in paths {
        let concrete = path.replace("{id}", "1547332300186066944");
        for (method, op) in ops.as_object().unwrap() {
            seen.insert(format!("{method} {path}"));
            if method != "get" {
                continue;
            }
            let (status, body) = server.get(&concrete);
            let required: Vec<&Value> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter(|p| p["required"] == true).collect())
                .unwrap_or_default();
            if required.iter().all(|p| p["in"] == "path") {
                assert_eq!(status, 200, "GET {concrete}: {body}");
            }
            // Each documented query parameter is taken (not refused as unknown).
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] != "query" {
                    continue;
                }
                let name = p["name"].as_str().unwrap();
                let value = match p["schema"]["type"].as_str() {
                    Some("integer") => "3",
                    Some("boolean") => "true",
                    _ if p["schema"]["format"] == "date" => "2022-06-01",
                    _ if p["schema"]["enum"].is_array() => "dense",
                    _ => "tesla",
                };
                let sep = if concrete.contains('?') { '&' } else { '?' };
                let q = if name == "q" { "" } else { "q=tesla&" };
                let url = if path == "/similar" {
                    format!("{concrete}{sep}{q}{name}={value}")
                } else {
                    format!("{concrete}{sep}{name}={value}")
                };
                let (status, body) = server.get(&url);
                assert_eq!(
                    status, 200,
                    "documented parameter refused: GET {url}: {body}"
                );
            }
            // ... and what the server says it takes is what the document lists.
            let documented: BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            let probe = if path == "/similar" {
                format!("{concrete}?q=tesla&zzz=1")
            } else {
                format!("{concrete}?zzz=1")
            };
            let (status, body) = server.get(&probe);
            if status == 200 {
                // Pages and probes ignore query strings; they document none.
                assert!(documented.is_empty(), "{path}");
                continue;
            }
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["field"], "zzz", "{probe}: {body}");
            let error = v["error"].as_str().unwrap();
            let taken: BTreeSet<String> = error
                .split_once("takes: ")
                .map(|(_, list)| list.split(", ").map(str::to_string).collect())
                .unwrap_or_default();
            assert_eq!(taken, documented, "{path}: {error}");
        }
    }
    let routes = [
        "get /",
        "get /similar",
        "get /tweets/{id}",
        "get /tweets/{id}/similar",
        "get /topics",
        "get /topics/charts",
        "post /embed",
        "get /healthz",
        "get /metrics",
        "get /openapi.json",
    ];
    let want: BTreeSet<String> = routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(seen, want);
}

/// 1,000+ requests while the store is rewritten 10 times (a tweet removed, then indexed
/// back): none fails, each answer names a committed generation and agrees with it (the
/// removed tweet is found exactly in the generations that hold it), and the server ends
/// on the last generation.
#[test]
fn serve_swaps_generations_under_load_without_a_failed_request() {
    let (_tmp, gen) = store_copy();
    let store = gen.parent().unwrap().to_path_buf();
    let first = tweetsim::index::read_manifest(&store).unwrap().generation;
    let server = Arc::new(Server::start(&store, &["--poll-ms", "50"]));
    // The tweet that comes and goes, found by its own text when present.
    let x = "1547332300186066944";
    let x_text = server.get_json(&format!("/tweets/{x}"))["tweet"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let other = "1491508789501071362";

    // Generation → whether it holds the tweet.
    let committed = Arc::new(Mutex::new(BTreeMap::from([(first.clone(), true)])));
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (store, committed, writing) = (store.clone(), committed.clone(), writing.clone());
        std::thread::spawn(move || {
            let s = store.display().to_string();
            for i in 0..10 {
                let present = i % 2 == 1;
                let args: Vec<&str> = if present {
                    vec!["index", "--quiet", "--store", &s]
                } else {
                    vec!["remove", x, "--quiet", "--store", &s]
                };
                let (code, out, err) = run(&args);
                assert_eq!(code, 0, "{args:?}: {out}{err}");
                let g = tweetsim::index::read_manifest(&store).unwrap().generation;
                committed.lock().unwrap().insert(g, present);
                std::thread::sleep(Duration::from_millis(300));
            }
            writing.store(false, Ordering::SeqCst);
        })
    };

    // Answers: (generation, whether the tweet was among the hits, route).
    let answers = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (server, answers, writing, x_text) = (
                server.clone(),
                answers.clone(),
                writing.clone(),
                x_text.clone(),
            );
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    let done = !writing.load(Ordering::SeqCst);
                    let enough = answers.lock().unwrap().len() >= 1_000;
                    if done && enough {
                        break;
                    }
                    // A bound, not a pass: the writer's 10 rewrites end long before.
                    assert!(
                        started.elapsed() < Duration::from_secs(600),
                        "the rewrites did not finish within 600 s"
                    );
                    let path = if (i + c) % 2 == 0 {
                        format!("/similar?q={}&k=5&mode=dense&collapse=false", enc(&x_text))
                    } else {
                        format!("/tweets/{other}/similar?k=50&mode=dense&collapse=false")
                    };
                    let (status, body) = server.get(&path);
                    assert_eq!(status, 200, "GET {path}: {body}");
                    let v: Value = serde_json::from_str(&body).unwrap();
                    let has_x = v["hits"].as_array().unwrap().iter().any(|h| h["id"] == x);
                    let generation = v["generation"].as_str().unwrap().to_string();
                    answers
                        .lock()
                        .unwrap()
                        .push((generation, has_x, path.starts_with("/similar")));
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for c in clients {
        c.join().unwrap();
    }

    let committed = committed.lock().unwrap();
    assert_eq!(
        committed.len(),
        11,
        "every rewrite commits a new generation"
    );
    let answers = answers.lock().unwrap();
    assert!(answers.len() >= 1_000, "only {} requests", answers.len());
    let mut served = BTreeSet::new();
    for (generation, has_x, by_text) in answers.iter() {
        let present = *committed
            .get(generation)
            .unwrap_or_else(|| panic!("answer from uncommitted generation {generation}"));
        served.insert(generation.clone());
        // By its own text the tweet is the top hit whenever its generation holds it.
        if *by_text {
            assert_eq!(*has_x, present, "generation {generation}");
        } else if !present {
            assert!(
                !has_x,
                "generation {generation} lacks the tweet, yet returned it"
            );
        }
    }
    assert!(
        served.len() >= 6,
        "answers came from only {} generations: the server did not follow the rewrites",
        served.len()
    );
    // Within a few polls of the last commit, the server serves it.
    let last = tweetsim::index::read_manifest(&store).unwrap().generation;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get_json("/healthz")["generation"] != last.as_str() {
        assert!(
            Instant::now() < deadline,
            "the last generation was not picked up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The server keeps answering from a snapshot whose generation a writer has since removed
/// (a writer keeps only the current and previous generations): every file a store reads
/// after opening is mapped, so it stays readable after its folder is gone. The folder goes
/// before the first query, so nothing read lazily is warm.
#[test]
fn an_open_store_answers_after_its_generation_folder_is_removed() {
    use tweetsim::index::{Filter, Store};
    use tweetsim::search;
    let ask = |store: &Store| {
        let row = store.row(1547332300186066944).unwrap();
        let q = search::Query {
            text: "tesla autopilot data engine",
            vector: store.vector(row),
            exclude: None,
        };
        let hybrid = search::search(store, &q, &search::Options::default()).unwrap();
        let lexical = store.search_lexical(q.text, 10, &Filter::default(), None);
        let texts: Vec<String> = hybrid
            .iter()
            .map(|h| store.tweet(h.row).unwrap().text)
            .collect();
        let topics = tweetsim::topics::discover(store, &Default::default()).unwrap();
        let report = tweetsim::report::Report::new(store, &topics).unwrap();
        (
            hybrid.iter().map(|h| h.row).collect::<Vec<_>>(),
            lexical.iter().map(|h| h.row).collect::<Vec<_>>(),
            texts,
            store.thread(row),
            store.tweets().unwrap().len(),
            report.to_json(),
        )
    };
    let intact = ask(&Store::open(bundled_store()).unwrap());
    assert!(!intact.1.is_empty() && intact.4 == 657);
    let (_tmp, gen) = store_copy();
    let store = Store::open(gen.parent().unwrap()).unwrap();
    std::fs::remove_dir_all(&gen).unwrap();
    assert!(!gen.exists());
    let orphan = ask(&store);
    // The report names the corpus by its store's source, the same in both.
    assert_eq!(orphan, intact);
}

/// What stops the server from starting is one error line and a non-zero exit: a store that
/// is damaged, a store folder that is a file, an address already taken. SIGTERM ends a
/// running server cleanly.
#[test]
fn serve_start_up_errors_are_one_line_and_sigterm_stops_it_cleanly() {
    let fails = |args: &[&str], want: &str| {
        let error = one_error(args, run_bounded(args, Duration::from_secs(120)));
        assert!(error.contains(want), "{args:?}: {error}");
    };
    let (tmp, gen) = store_copy();
    let store = gen.parent().unwrap().to_path_buf();
    std::fs::write(
        store.join("manifest.json"),
        "{\"format_version\": 1, \"gener",
    )
    .unwrap();
    let s = store.display().to_string();
    fails(
        &["serve", "--addr", "127.0.0.1:0", "--store", &s],
        "manifest.json is corrupt",
    );
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    fails(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--store",
            file.to_str().unwrap(),
        ],
        "is a file; a store is a folder",
    );

    let server = Server::start(bundled_store(), &[]);
    let taken = server.base.trim_start_matches("http://").to_string();
    let b = bundled_store().display().to_string();
    fails(
        &["serve", "--store", &b, "--addr", &taken],
        &format!("cannot listen on {taken}"),
    );

    // SIGTERM: the server finishes and exits 0.
    let mut server = server;
    let pid = server.child.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// Runs `tweetsim args...` and waits at most `limit` (a server that starts when it should
/// not is killed, and the test fails instead of hanging): (exit code, stdout, stderr).
fn run_bounded(args: &[&str], limit: Duration) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = tweetsim()
        .args(args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break -1;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (code, read(&out), read(&err))
}

/// A store too small for any topic: /topics is a 422 saying so, the rest answers.
#[test]
fn serve_a_store_without_topics() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("three.jsonl");
    let tweets = tweetsim::corpus::Corpus::bundled().tweets;
    crate::common::write_jsonl(&corpus, &tweets[..3]);
    let store = dir.path().join("store");
    let (code, out, err) = run(&[
        "index",
        "--quiet",
        "--corpus",
        corpus.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let server = Server::start(&store, &[]);
    for path in ["/topics", "/topics/charts"] {
        let (status, body) = server.get(path);
        assert_eq!(status, 422, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("this store has no topics"),
            "{body}"
        );
    }
    let hits = server.get_json("/similar?q=neural+networks&k=5");
    assert_eq!(hits["hits"].as_array().unwrap().len(), 3);
}
