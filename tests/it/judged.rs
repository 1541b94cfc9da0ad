//! The judged query set (`tests/data/judged-queries.toml`) and its scorer: nDCG@10 (graded
//! gains 2^g − 1), recall@10 and MRR@10. Shared by the retrieval tests and the
//! `retrieval_eval` bench, which prints the tables of docs/retrieval.md.

use std::collections::HashMap;

use serde::Deserialize;

pub const DEPTH: usize = 10;

#[derive(Debug, Clone, Deserialize)]
pub struct Judged {
    pub id: String,
    pub kind: String,
    pub text: String,
    pub paraphrase: bool,
    /// Status id → grade (2 highly, 1 partly relevant).
    pub relevant: HashMap<String, u8>,
}

#[derive(Deserialize)]
struct File {
    query: Vec<Judged>,
}

pub fn load() -> Vec<Judged> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/judged-queries.toml"
    );
    let text = std::fs::read_to_string(path).expect("judged queries");
    toml::from_str::<File>(&text)
        .expect("valid judged queries")
        .query
}

/// The fixed split: queries numbered odd (k01, s03, …) tune, even ones are held out.
pub fn held_out(q: &Judged) -> bool {
    q.id[1..].parse::<u32>().expect("ids like k07") % 2 == 0
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    pub ndcg: f64,
    pub recall: f64,
    pub mrr: f64,
}

/// Scores one ranking (status ids, best first; repeats count once).
pub fn score(q: &Judged, ranked: &[u64]) -> Scores {
    let mut seen = std::collections::HashSet::new();
    let top: Vec<String> = ranked
        .iter()
        .filter(|id| seen.insert(**id))
        .take(DEPTH)
        .map(u64::to_string)
        .collect();
    let gain = |g: u8| f64::from((1u32 << g) - 1);
    let discount = |i: usize| 1.0 / ((i + 2) as f64).log2();
    let dcg: f64 = top
        .iter()
        .enumerate()
        .map(|(i, id)| gain(q.relevant.get(id).copied().unwrap_or(0)) * discount(i))
        .sum();
    let mut ideal: Vec<u8> = q.relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(DEPTH)
        .enumerate()
        .map(|(i, &g)| gain(g) * discount(i))
        .sum();
    let found = top.iter().filter(|id| q.relevant.contains_key(*id)).count();
    let first = top.iter().position(|id| q.relevant.contains_key(id));
    Scores {
        ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        recall: found as f64 / q.relevant.len().max(1) as f64,
        mrr: first.map_or(0.0, |i| 1.0 / (i + 1) as f64),
    }
}

/// Mean scores over `queries`, each ranked by `rank`.
pub fn mean(queries: &[&Judged], mut rank: impl FnMut(&Judged) -> Vec<u64>) -> Scores {
    let mut total = Scores::default();
    for q in queries {
        let s = score(q, &rank(q));
        total.ndcg += s.ndcg;
        total.recall += s.recall;
        total.mrr += s.mrr;
    }
    let n = queries.len().max(1) as f64;
    Scores {
        ndcg: total.ndcg / n,
        recall: total.recall / n,
        mrr: total.mrr / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Unused where this file is compiled into the bench (no test harness there).
    #[allow(dead_code)]
    fn q(rel: &[(&str, u8)]) -> Judged {
        Judged {
            id: "k01".into(),
            kind: "keyword".into(),
            text: "x".into(),
            paraphrase: false,
            relevant: rel.iter().map(|(k, g)| (k.to_string(), *g)).collect(),
        }
    }

    #[test]
    fn scorer_matches_hand_computed_values() {
        let j = q(&[("1", 2), ("2", 1)]);
        let perfect = score(&j, &[1, 2, 3]);
        assert!((perfect.ndcg - 1.0).abs() < 1e-12);
        assert_eq!((perfect.recall, perfect.mrr), (1.0, 1.0));
        // Swapped: DCG = 1/1 + 3/log2(3); IDCG = 3/1 + 1/log2(3).
        let swapped = score(&j, &[2, 1]);
        let want = (1.0 + 3.0 / 3f64.log2()) / (3.0 + 1.0 / 3f64.log2());
        assert!((swapped.ndcg - want).abs() < 1e-12);
        // A repeated id counts once; a miss scores zero.
        let repeated = score(&j, &[5, 5, 1]);
        assert_eq!((repeated.recall, repeated.mrr), (0.5, 0.5));
        assert_eq!(score(&j, &[9]).ndcg, 0.0);
    }
}
