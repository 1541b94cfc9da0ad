//! Guided themes: the user names the themes ("Tesla, LLMs, teaching") and every tweet gets the
//! theme it belongs to, or none ("other"), with a confidence.
//!
//! A bare name is a weak query for a small model (MiniLM has no idea that "LLM" and "GPT" go
//! together), so each theme is grounded in the corpus before tweets are scored:
//!
//! 1. **Terms.** The theme's words and seed words, plus the corpus terms (unigrams and bigrams
//!    in at least 3 tweets) whose embedding is closest to the theme's (cosine ≥ 0.6, at most 8):
//!    "teaching" brings in "lecture", "image generation" brings in "images".
//! 2. **Centroid.** Tweets containing any term are the theme's seed tweets; the theme vector is
//!    their mean plus half the embedded theme text, normalised.
//! 3. **Scores.** Cosine to the theme vector, plus 0.1 when the tweet contains a term;
//!    standardised per theme (z-scores, so themes with different spreads compare), then
//!    smoothed with the tweet's 5 nearest neighbours (0.7 own + 0.3 neighbours).
//! 4. **Assignment.** The best theme when its z-score is at least 1.0, else "other".
//!
//! Deterministic: no sampling; neighbour queries are combined in row order.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use rayon::prelude::*;
use serde::Deserialize;

use super::{keywords, most_central, normalized, Topic, Topics};
use crate::embed::Encoder;
use crate::error::{Error, Result};
use crate::index::{RowSet, Store};
use crate::simd::dot;

/// A theme as the user gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub seeds: Vec<String>,
}

/// `"Tesla, LLMs, teaching"` → three themes with names only.
pub fn parse_list(list: &str) -> Result<Vec<Theme>> {
    let themes: Vec<Theme> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| Theme {
            name: name.to_string(),
            description: None,
            seeds: Vec::new(),
        })
        .collect();
    check(themes, "--themes")
}

/// A TOML file of `[[theme]]` tables with `name`, optional `description` and `seeds`.
pub fn load_file(path: &Path) -> Result<Vec<Theme>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        theme: Vec<Theme>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        Error::Invalid(format!(
            "{}:{line}: bad themes file: {}; expected [[theme]] tables with name = \"...\", optional description = \"...\" and seeds = [\"...\"]",
            path.display(),
            e.message()
        ))
    })?;
    check(file.theme, &path.display().to_string())
}

fn check(themes: Vec<Theme>, source: &str) -> Result<Vec<Theme>> {
    if themes.is_empty() {
        return Err(Error::Invalid(format!("{source}: no themes given")));
    }
    let mut seen = HashSet::new();
    for t in &themes {
        if t.name.trim().is_empty() {
            return Err(Error::Invalid(format!(
                "{source}: a theme has an empty name"
            )));
        }
        if !seen.insert(t.name.to_lowercase()) {
            return Err(Error::Invalid(format!(
                "{source}: theme '{}' is given twice",
                t.name
            )));
        }
    }
    Ok(themes)
}

const MIN_TERM_TWEETS: usize = 3;
const EXPANSION_MIN_COSINE: f32 = 0.6;
const MAX_EXPANSIONS: usize = 8;
const NAME_WEIGHT: f32 = 0.5;
const TERM_BONUS: f32 = 0.1;
const NEIGHBORS: usize = 5;
const SMOOTHING: f32 = 0.3;
const MIN_Z: f32 = 1.0;

/// The terms of one tweet: unigrams and bigrams of its content words.
fn tweet_terms(text: &str) -> BTreeSet<String> {
    let toks = keywords::tokens(text);
    let mut out: BTreeSet<String> = toks.iter().flatten().cloned().collect();
    for pair in toks.windows(2) {
        if let [Some(a), Some(b)] = pair {
            out.insert(format!("{a} {b}"));
        }
    }
    out
}

/// A seed or name as a term: its content words, space-joined ("Image-Generation!" → "image-generation").
fn as_term(s: &str) -> Option<String> {
    let words: Vec<String> = keywords::tokens(s).into_iter().flatten().collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Assigns every tweet of `store` to one of `themes` or to none. The result has one topic per
/// theme, in the order given (a theme may be empty), and no hierarchy.
pub fn assign(
    store: &Store,
    encoder: &Encoder,
    themes: &[Theme],
) -> Result<(Topics, Vec<Vec<String>>)> {
    store.check_model(encoder.identity())?;
    let tweets = store.tweets()?;
    let n = tweets.len();
    let terms_of: Vec<BTreeSet<String>> = tweets.iter().map(|t| tweet_terms(&t.text)).collect();

    // Corpus vocabulary, embedded once for all themes.
    let mut df: std::collections::BTreeMap<&str, usize> = Default::default();
    for terms in &terms_of {
        for t in terms {
            *df.entry(t.as_str()).or_default() += 1;
        }
    }
    let vocab: Vec<&str> = df
        .iter()
        .filter(|(_, &c)| c >= MIN_TERM_TWEETS)
        .map(|(t, _)| *t)
        .collect();
    let vocab_vecs = encoder.embed(&vocab)?;
    let dim = store.dim();

    let theme_texts: Vec<String> = themes
        .iter()
        .map(|t| match &t.description {
            Some(d) => format!("{}: {d}", t.name),
            None => t.name.clone(),
        })
        .collect();
    let theme_refs: Vec<&str> = theme_texts.iter().map(String::as_str).collect();
    let theme_vecs = encoder.embed(&theme_refs)?;

    let mut scores = vec![vec![0f32; themes.len()]; n];
    let mut used_terms = Vec::with_capacity(themes.len());
    let mut centroids = Vec::with_capacity(themes.len());
    for (k, theme) in themes.iter().enumerate() {
        let q = &theme_vecs[k * dim..(k + 1) * dim];
        // 1. Terms: the theme's own words and seeds, then the nearest corpus terms.
        let mut terms: Vec<String> = Vec::new();
        let own =
            std::iter::once(theme.name.as_str()).chain(theme.seeds.iter().map(String::as_str));
        for t in own.filter_map(as_term) {
            if !terms.contains(&t) {
                terms.push(t);
            }
        }
        let mut near: Vec<(f32, usize)> = vocab_vecs
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, v)| (dot(q, v), i))
            .filter(|&(s, _)| s >= EXPANSION_MIN_COSINE)
            .collect();
        near.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, i) in near.into_iter().take(MAX_EXPANSIONS) {
            let t = vocab[i].to_string();
            if !terms.contains(&t) {
                terms.push(t);
            }
        }
        // 2. Centroid from the tweets that use the terms.
        let has_term: Vec<bool> = terms_of
            .iter()
            .map(|ts| terms.iter().any(|t| ts.contains(t)))
            .collect();
        let mut c: Vec<f32> = q.iter().map(|x| x * NAME_WEIGHT).collect();
        let seeds: Vec<usize> = (0..n).filter(|&r| has_term[r]).collect();
        if !seeds.is_empty() {
            let w = 1.0 / seeds.len() as f32;
            for &r in &seeds {
                for (a, b) in c.iter_mut().zip(store.vector(r)) {
                    *a += w * b;
                }
            }
        }
        let c = normalized(c);
        // 3. Raw scores, standardised per theme.
        let raw: Vec<f32> = (0..n)
            .map(|r| dot(store.vector(r), &c) + if has_term[r] { TERM_BONUS } else { 0.0 })
            .collect();
        let mean = raw.iter().sum::<f32>() / n as f32;
        let sd = (raw.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32)
            .sqrt()
            .max(1e-6);
        for r in 0..n {
            scores[r][k] = (raw[r] - mean) / sd;
        }
        used_terms.push(terms);
        centroids.push(c);
    }
    // Smoothing over each tweet's nearest neighbours.
    let all = RowSet::new(n, |_| true);
    let neighbors: Vec<Vec<usize>> = (0..n)
        .into_par_iter()
        .map(|r| {
            store
                .neighbors(r, NEIGHBORS, &all)
                .into_iter()
                .map(|h| h.row)
                .collect()
        })
        .collect();
    let smoothed: Vec<Vec<f32>> = (0..n)
        .map(|r| {
            (0..themes.len())
                .map(|k| {
                    let nb = &neighbors[r];
                    let mean = if nb.is_empty() {
                        scores[r][k]
                    } else {
                        nb.iter().map(|&j| scores[j][k]).sum::<f32>() / nb.len() as f32
                    };
                    (1.0 - SMOOTHING) * scores[r][k] + SMOOTHING * mean
                })
                .collect()
        })
        .collect();

    // 4. Best theme if clearly above the crowd.
    let mut assignment = vec![None; n];
    let mut confidence = vec![0f32; n];
    for r in 0..n {
        let (k, z) = smoothed[r]
            .iter()
            .enumerate()
            .fold(
                (0, f32::MIN),
                |best, (k, &z)| if z > best.1 { (k, z) } else { best },
            );
        if z >= MIN_Z {
            assignment[r] = Some(k);
            confidence[r] = z;
        }
    }
    let member_texts: Vec<Vec<&str>> = (0..themes.len())
        .map(|k| {
            (0..n)
                .filter(|&r| assignment[r] == Some(k))
                .map(|r| tweets[r].text.as_str())
                .collect()
        })
        .collect();
    let kw = keywords::ctfidf(&member_texts, 10);
    let topics = themes
        .iter()
        .zip(centroids)
        .zip(kw)
        .enumerate()
        .map(|(k, ((theme, centroid), keywords))| {
            let rows: Vec<usize> = (0..n).filter(|&r| assignment[r] == Some(k)).collect();
            let reps = most_central(&rows, &confidence);
            Topic {
                label: theme.name.clone(),
                keywords,
                core: rows.len(),
                rows,
                representatives: reps,
                parts: Vec::new(),
                centroid,
            }
        })
        .collect();
    Ok((
        Topics {
            topics,
            assignment,
            confidence,
            set_aside: 0,
            discovered: themes.len(),
            hierarchy: Vec::new(),
        },
        used_terms,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_lists_and_files() {
        let t = parse_list(" Tesla, LLMs ,, teaching ").unwrap();
        assert_eq!(
            t.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["Tesla", "LLMs", "teaching"]
        );
        assert!(parse_list(" , ")
            .unwrap_err()
            .to_string()
            .contains("no themes given"));
        assert!(parse_list("a, A")
            .unwrap_err()
            .to_string()
            .contains("given twice"));

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(&p, "[[theme]]\nname = \"speech\"\nseeds = [\"whisper\", \"transcription\"]\n\n[[theme]]\nname = \"tesla\"\ndescription = \"cars\"\n").unwrap();
        let t = load_file(&p).unwrap();
        assert_eq!(t[0].seeds, ["whisper", "transcription"]);
        assert_eq!(t[1].description.as_deref(), Some("cars"));
        std::fs::write(&p, "[[theme]]\nname = \"speech\"\nseed = [\"typo\"]\n").unwrap();
        let e = load_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("t.toml:3: bad themes file") && e.contains("seed"),
            "{e}"
        );
    }

    #[test]
    fn seeds_become_terms() {
        assert_eq!(
            as_term("Image Generation").as_deref(),
            Some("image generation")
        );
        assert_eq!(as_term("the"), None);
        assert!(tweet_terms("Stable Diffusion is fun").contains("stable diffusion"));
    }
}
