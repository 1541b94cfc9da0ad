//! The encoder reproduces sentence-transformers (all-MiniLM-L6-v2, f32) on the reference set.

use serde::Deserialize;
use tweetsim::embed::{Batching, DeviceSpec, Encoder, Options, Precision, Resolver, DEFAULT_MODEL};
use tweetsim::npy;

use crate::common::{cosine, data, encoder, reference_texts};

/// What a correct f32 implementation reaches (see shared/README: ≥ 0.99999 is typical).
const MIN_COSINE: f32 = 0.9999;

#[derive(Deserialize)]
struct RefQuery {
    query: String,
    top10_ids: Vec<String>,
    top10_scores: Vec<f32>,
    gap_10_11: f32,
}

fn rows(v: &[f32], dim: usize) -> Vec<&[f32]> {
    v.chunks_exact(dim).collect()
}

#[test]
fn tweet_embeddings_match_sentence_transformers() {
    let texts = reference_texts();
    let (want, n, dim) = npy::read(&data("reference/minilm-tweets-embeddings.npy")).unwrap();
    assert_eq!((n, dim), (680, 384));
    let refs: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
    let got = encoder().embed(&refs).unwrap();
    let (got, want) = (rows(&got, dim), rows(&want, dim));
    let mut worst = (1.0f32, 0);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let c = cosine(g, w);
        if c < worst.0 {
            worst = (c, i);
        }
        let norm: f32 = g.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(
            (norm - 1.0).abs() < 1e-4,
            "row {i} is not unit length: {norm}"
        );
    }
    eprintln!(
        "min cosine to sentence-transformers over 680 tweets: {:.7} (entry {})",
        worst.0, texts[worst.1].num
    );
    assert!(
        worst.0 >= MIN_COSINE,
        "entry {} has cosine {} to the reference",
        texts[worst.1].num,
        worst.0
    );
}

#[test]
fn query_embeddings_and_top10_match_sentence_transformers() {
    let queries: Vec<RefQuery> = serde_json::from_str(
        &std::fs::read_to_string(data("reference/minilm-queries-top10.json")).unwrap(),
    )
    .unwrap();
    let (want_q, nq, dim) = npy::read(&data("reference/minilm-queries-embeddings.npy")).unwrap();
    assert_eq!(nq, queries.len());
    let texts = reference_texts();
    let corpus: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
    let enc = encoder();
    let tweet_vecs = enc.embed(&corpus).unwrap();
    let tweet_vecs = rows(&tweet_vecs, dim);
    let qs: Vec<&str> = queries.iter().map(|q| q.query.as_str()).collect();
    // One at a time, as `similar "text"` embeds them: the query path (mapped weights); and
    // in candle's batches (what a batch size asks for); the two agree to float rounding.
    let got_q: Vec<f32> = qs.iter().flat_map(|q| enc.embed(&[q]).unwrap()).collect();
    let files = Resolver::from_env(Some(crate::common::repo().join("models")))
        .resolve(DEFAULT_MODEL)
        .unwrap();
    let batched = Encoder::load_with(
        &files,
        Options {
            device: DeviceSpec::Cpu,
            batching: Some(Batching::Texts(32)),
            ..Default::default()
        },
    )
    .unwrap();
    let batch = batched.embed(&qs).unwrap();
    for (i, (one, all)) in rows(&got_q, dim).iter().zip(rows(&batch, dim)).enumerate() {
        let c = cosine(one, all);
        assert!(c >= 0.99999, "query {i}: alone vs in a batch, cosine {c}");
    }

    let mut compared = 0;
    for (i, (q, (g, w))) in queries
        .iter()
        .zip(rows(&got_q, dim).iter().zip(rows(&want_q, dim)))
        .enumerate()
    {
        let c = cosine(g, w);
        assert!(c >= MIN_COSINE, "query {i} '{}' has cosine {c}", q.query);
        // Exact cosine ranking over the 680 rows, as the reference did.
        let mut scored: Vec<(f32, usize)> =
            tweet_vecs.iter().map(|t| cosine(g, t)).zip(0..).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (rank, (score, _)) in scored.iter().take(10).enumerate() {
            assert!(
                (score - q.top10_scores[rank]).abs() < 1e-3,
                "query {i} rank {rank}: {score} vs {}",
                q.top10_scores[rank]
            );
        }
        if q.gap_10_11 > 1e-4 {
            // Compare as multisets: repeated tweets tie exactly, in either order.
            let mut got_ids: Vec<&str> = scored[..10]
                .iter()
                .map(|&(_, r)| texts[r].id.as_str())
                .collect();
            let mut want_ids: Vec<&str> = q.top10_ids.iter().map(String::as_str).collect();
            got_ids.sort();
            want_ids.sort();
            assert_eq!(got_ids, want_ids, "top-10 of query {i} '{}'", q.query);
            compared += 1;
        }
    }
    assert!(
        compared >= 15,
        "only {compared} queries had a clear rank-10/11 gap"
    );
}

/// Half precision (meant for GPUs) runs here on the CPU: no NaN from the attention mask, and
/// every vector within cosine 0.999 of the f32 reference. Every 5th reference text, to keep
/// the slow CPU half-precision path short.
#[test]
fn half_precision_stays_within_0999_of_the_reference() {
    let texts = reference_texts();
    let (want, _, dim) = npy::read(&data("reference/minilm-tweets-embeddings.npy")).unwrap();
    let picked: Vec<usize> = (0..texts.len()).step_by(5).collect();
    let refs: Vec<&str> = picked.iter().map(|&i| texts[i].text.as_str()).collect();
    let files = Resolver::from_env(Some(crate::common::repo().join("models")))
        .resolve(DEFAULT_MODEL)
        .unwrap();
    for precision in [Precision::Bf16, Precision::F16] {
        let enc = Encoder::load_with(
            &files,
            Options {
                device: DeviceSpec::Cpu,
                precision: Some(precision),
                ..Default::default()
            },
        )
        .unwrap();
        let got = enc.embed(&refs).unwrap();
        let worst = picked
            .iter()
            .zip(got.chunks_exact(dim))
            .map(|(&i, g)| cosine(g, &want[i * dim..(i + 1) * dim]))
            .fold(1.0f32, f32::min);
        eprintln!(
            "{precision:?}: min cosine {worst:.5} over {} texts",
            refs.len()
        );
        assert!(worst >= 0.999, "{precision:?}: min cosine {worst}");
    }
}

/// Candle's batches, by token budget (the GPU default) or on parallel CPU workers, agree
/// with the default CPU path (each text alone through the query path) within 1e-5, for
/// budgets smaller and larger than a typical 32-text batch.
#[test]
fn token_budget_batches_give_the_same_vectors() {
    let texts = reference_texts();
    let refs: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
    let want = encoder().embed(&refs).unwrap();
    let files = Resolver::from_env(Some(crate::common::repo().join("models")))
        .resolve(DEFAULT_MODEL)
        .unwrap();
    for (budget, workers) in [(Some(300), 1), (Some(8192), 1), (None, 2)] {
        let enc = Encoder::load_with(
            &files,
            Options {
                device: DeviceSpec::Cpu,
                batching: budget.map(Batching::Tokens),
                workers: Some(workers),
                ..Default::default()
            },
        )
        .unwrap();
        let got = enc.embed(&refs).unwrap();
        let worst = rows(&got, 384)
            .into_iter()
            .zip(rows(&want, 384))
            .map(|(g, w)| cosine(g, w))
            .fold(1.0f32, f32::min);
        assert!(
            worst > 0.99999,
            "budget {budget:?}, {workers} workers: min cosine {worst}"
        );
    }
}
