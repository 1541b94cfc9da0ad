//! Guided themes: the user names the themes ("Tesla, LLMs, teaching") and every tweet gets the
//! theme it belongs to, or none ("other"), with a confidence.
//!
//! A bare name is a weak query for a small model (MiniLM has no idea that "LLM" and "GPT" go
//! together), so each theme is grounded in the corpus before tweets are scored:
//!
//! 1. **Queries.** The theme's name (with its description) and, when the name is an acronym
//!    the corpus spells out ("llm" → "large language models"), that phrase.
//! 2. **Terms.** The theme's words, seed words and spelled-out acronym, plus the corpus terms
//!    (unigrams and bigrams in at least 3 tweets) nearest its queries (cosine ≥ 0.6, at most 8):
//!    "teaching" brings in "lecture". A term grounds only the theme it is nearest to, and a word
//!    mostly used inside a compound foreign to the theme is skipped ("learning" stands in "deep
//!    learning" here, not in teaching).
//! 3. **Common direction.** Every tweet of one account shares a lot (the corpus mean, and one
//!    dominant direction of spread), which says nothing about which theme it is in. Vectors are
//!    compared after removing both ([`Common`]: "all-but-the-top", Mu & Viswanath, 2018).
//! 4. **Centroid.** Tweets containing any term are the theme's seed tweets; the theme vector is
//!    their mean plus half the theme's query vector (both with the common direction removed).
//! 5. **Scores.** Cosine to the theme vector, plus 0.1 when the tweet contains a term;
//!    standardised per theme (z-scores, so themes with different spreads compare), then
//!    smoothed with the tweet's 5 nearest neighbours (0.7 own + 0.3 neighbours), then with
//!    its self-thread (half its own, half the thread's best): a thread is read as one text,
//!    and a part like "Stableboost auto-suggests a few hundred prompts" is about the images
//!    its first part showed.
//! 6. **Assignment.** The best theme when its z-score is at least 1.0 and at least 0.5 above the
//!    runner-up's, else "other": a tweet that fits two themes about equally is not clearly
//!    about either.
//! 7. **Themes with no word in the corpus.** A z-score only ranks: some tweets always stand
//!    out, even for "quantum chromodynamics". A theme that no tweet names (no term) needs
//!    direct evidence instead: only tweets within cosine 0.3 of its query (name with
//!    description) may take it, and for the others it is no runner-up (on the hand labels, a
//!    tweet that close to a theme's name is about it 86% of the time; at 0.25, half the time).
//!
//! Deterministic: no sampling; neighbour queries are combined in row order.

use std::collections::{BTreeMap, BTreeSet, HashSet};
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
        if t.name.trim().eq_ignore_ascii_case("other") {
            return Err(Error::Invalid(format!(
                "{source}: a theme cannot be called 'other', the name of the tweets no theme takes"
            )));
        }
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
const ACRONYM_MAX_LETTERS: usize = 5;
const ACRONYM_MIN_TWEETS: usize = 2;
const COMPOUND_SHARE: f32 = 0.5;
const NAME_WEIGHT: f32 = 0.5;
const TERM_BONUS: f32 = 0.1;
const NEIGHBORS: usize = 5;
const SMOOTHING: f32 = 0.3;
const THREAD_SHARE: f32 = 0.5;
/// The power iteration stops after this many rounds, or once the direction moves less than
/// the tolerance (1 − cosine between rounds).
const POWER_ITERATIONS: usize = 100;
const POWER_TOLERANCE: f32 = 1e-7;
/// Rows per block of the power iteration's sums.
const POWER_BLOCK: usize = 4096;
/// The cosine to its query a tweet needs to take a theme that no tweet names.
pub const MEANING_ONLY_MIN_COSINE: f32 = 0.3;
const MIN_Z: f32 = 1.0;
const MIN_MARGIN: f32 = 0.5;

/// Assigns every tweet of `store` to one of `themes` or to none. The result has one topic per
/// theme, in the order given (a theme may be empty), and no hierarchy; beside it, the terms
/// each theme was grounded in.
pub fn assign(
    store: &Store,
    encoder: &Encoder,
    themes: &[Theme],
) -> Result<(Topics, Vec<Vec<String>>)> {
    store.check_model(encoder.identity())?;
    let tweets = store.tweets()?;
    let n = tweets.len();
    let all_words: Vec<Vec<Option<(String, bool)>>> =
        tweets.iter().map(|t| keywords::words(&t.text)).collect();
    let words: Vec<Words> = all_words.iter().map(|w| Words::new(w)).collect();
    let dim = store.dim();
    let vocab = Vocab::embed(&words, encoder, dim)?;
    let spelled: Vec<Option<String>> = themes
        .iter()
        .map(|t| spelled_out(&t.name, &all_words))
        .collect();
    let queries = Queries::embed(themes, &spelled, encoder, dim)?;
    let affinity = vocab.affinity(&queries);
    let common = Common::of(n, dim, |r| store.vector(r));

    let mut scores = vec![vec![0f32; themes.len()]; n];
    // Which themes each tweet may take: all but those found by meaning alone that it is not
    // near enough to.
    let mut allowed = vec![vec![true; themes.len()]; n];
    let mut used_terms = Vec::with_capacity(themes.len());
    let mut centroids = Vec::with_capacity(themes.len());
    for (k, theme) in themes.iter().enumerate() {
        let mut terms = ground(theme, spelled[k].as_deref(), k, &vocab, &affinity, &words);
        // Only terms some tweet uses ground anything: a theme left with none is found by
        // meaning alone, and the report says so.
        terms.retain(|t| words.iter().any(|w| w.contains(t)));
        let has_term: Vec<bool> = words
            .iter()
            .map(|w| terms.iter().any(|t| w.contains(t)))
            .collect();
        let query = queries.of_theme(k);
        if terms.is_empty() {
            for (r, allowed) in allowed.iter_mut().enumerate() {
                allowed[k] = dot(store.vector(r), &query) >= MEANING_ONLY_MIN_COSINE;
            }
        }
        let centroid = centroid(store, &common, &query, &has_term);
        for (r, z) in z_scores(store, &common, &centroid, &has_term)
            .into_iter()
            .enumerate()
        {
            scores[r][k] = z;
        }
        used_terms.push(terms);
        centroids.push(centroid);
    }
    let threads = crate::corpus::threads::previous_parts(tweets);
    let mut smoothed = by_thread(&smooth(store, &scores), &threads);
    for (z, allowed) in smoothed.iter_mut().zip(&allowed) {
        for (z, &ok) in z.iter_mut().zip(allowed) {
            if !ok {
                *z = f32::NEG_INFINITY;
            }
        }
    }
    let (assignment, confidence) = decide(&smoothed);

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

/// One tweet's content words as the term matcher sees them.
struct Words {
    /// Unigrams and bigrams of adjacent content words.
    terms: BTreeSet<String>,
    /// The content words joined by spaces, "|" where a dropped word stood, padded with spaces:
    /// a term of three words or more (a seed, a spelled-out acronym) is in the tweet when
    /// `" term "` is in this line.
    line: String,
}

impl Words {
    fn new(all_words: &[Option<(String, bool)>]) -> Self {
        let tokens: Vec<Option<&str>> = all_words
            .iter()
            .map(|w| {
                w.as_ref()
                    .and_then(|(w, content)| content.then_some(w.as_str()))
            })
            .collect();
        let mut terms: BTreeSet<String> = tokens.iter().flatten().map(|w| w.to_string()).collect();
        for pair in tokens.windows(2) {
            if let [Some(a), Some(b)] = pair {
                terms.insert(format!("{a} {b}"));
            }
        }
        let line: Vec<&str> = tokens.iter().map(|t| t.unwrap_or("|")).collect();
        Words {
            terms,
            line: format!(" {} ", line.join(" ")),
        }
    }

    fn contains(&self, term: &str) -> bool {
        if term.matches(' ').count() < 2 {
            return self.terms.contains(term);
        }
        self.line.contains(&format!(" {term} "))
    }
}

/// The corpus terms (in at least `MIN_TERM_TWEETS` tweets), embedded once for all themes.
struct Vocab<'a> {
    terms: Vec<&'a str>,
    index: BTreeMap<&'a str, usize>,
    vecs: Vec<f32>,
    dim: usize,
}

impl<'a> Vocab<'a> {
    fn embed(words: &'a [Words], encoder: &Encoder, dim: usize) -> Result<Self> {
        let mut df: BTreeMap<&str, usize> = BTreeMap::new();
        for w in words {
            for t in &w.terms {
                *df.entry(t.as_str()).or_default() += 1;
            }
        }
        let terms: Vec<&str> = df
            .into_iter()
            .filter(|&(_, c)| c >= MIN_TERM_TWEETS)
            .map(|(t, _)| t)
            .collect();
        let vecs = encoder.embed(&terms)?;
        Ok(Vocab {
            index: terms.iter().enumerate().map(|(i, t)| (*t, i)).collect(),
            dim,
            terms,
            vecs,
        })
    }

    /// For each term, its cosine to each theme: to the nearest of the theme's queries.
    fn affinity(&self, queries: &Queries) -> Vec<Vec<f32>> {
        self.vecs
            .chunks_exact(self.dim)
            .map(|v| {
                (0..queries.themes())
                    .map(|k| {
                        queries
                            .vectors(k)
                            .map(|q| dot(q, v))
                            .fold(f32::MIN, f32::max)
                    })
                    .collect()
            })
            .collect()
    }
}

/// What each theme is looked for by: its name (with its description), and the spelled-out
/// acronym when the corpus has one.
struct Queries {
    vecs: Vec<f32>,
    dim: usize,
    /// Rows of `vecs` per theme.
    of: Vec<Vec<usize>>,
}

impl Queries {
    fn embed(
        themes: &[Theme],
        spelled: &[Option<String>],
        encoder: &Encoder,
        dim: usize,
    ) -> Result<Self> {
        let mut texts: Vec<String> = Vec::new();
        let mut of = Vec::with_capacity(themes.len());
        for (theme, phrase) in themes.iter().zip(spelled) {
            let mut rows = vec![texts.len()];
            texts.push(match &theme.description {
                Some(d) => format!("{}: {d}", theme.name),
                None => theme.name.clone(),
            });
            if let Some(p) = phrase {
                rows.push(texts.len());
                texts.push(p.clone());
            }
            of.push(rows);
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vecs = encoder.embed(&refs)?;
        Ok(Queries { vecs, dim, of })
    }

    fn themes(&self) -> usize {
        self.of.len()
    }

    fn vectors(&self, k: usize) -> impl Iterator<Item = &[f32]> + '_ {
        self.of[k]
            .iter()
            .map(|&i| &self.vecs[i * self.dim..(i + 1) * self.dim])
    }

    /// The theme's single query vector: its queries' mean, normalised.
    fn of_theme(&self, k: usize) -> Vec<f32> {
        let mut sum = vec![0f32; self.dim];
        for q in self.vectors(k) {
            sum.iter_mut().zip(q).for_each(|(a, b)| *a += b);
        }
        normalized(sum)
    }
}

/// The phrase the corpus spells an acronym out with ("llm" or "LLMs" → "large language
/// models"): the most frequent run of words whose initials are the name's letters, mostly
/// content words, in at least two tweets. MiniLM does not know most acronyms, but it knows the
/// words.
fn spelled_out(name: &str, words: &[Vec<Option<(String, bool)>>]) -> Option<String> {
    let lower = name.trim().to_lowercase();
    let letters = match lower.strip_suffix('s') {
        Some(stem) if stem.len() >= 2 => stem,
        _ => lower.as_str(),
    };
    let initials: Vec<char> = letters.chars().collect();
    if !(2..=ACRONYM_MAX_LETTERS).contains(&initials.len())
        || !initials.iter().all(char::is_ascii_alphabetic)
    {
        return None;
    }
    let mut tweets_with: BTreeMap<String, usize> = BTreeMap::new();
    for tweet in words {
        let mut seen = BTreeSet::new();
        for run in tweet.windows(initials.len()) {
            let Some(run) = run.iter().map(Option::as_ref).collect::<Option<Vec<_>>>() else {
                continue;
            };
            let spells = run
                .iter()
                .zip(&initials)
                .all(|((w, _), &c)| w.starts_with(c));
            let content = run.iter().filter(|(_, content)| *content).count();
            let is_itself = run.iter().any(|(w, _)| w.trim_end_matches('s') == letters);
            if spells && 2 * content > run.len() && !is_itself {
                let phrase: Vec<&str> = run.iter().map(|(w, _)| w.as_str()).collect();
                seen.insert(phrase.join(" "));
            }
        }
        for phrase in seen {
            *tweets_with.entry(phrase).or_default() += 1;
        }
    }
    // Most tweets first; on a tie, the phrase first in sort order.
    let mut best: Option<(String, usize)> = None;
    for (phrase, count) in tweets_with {
        if count >= ACRONYM_MIN_TWEETS && best.as_ref().is_none_or(|b| count > b.1) {
            best = Some((phrase, count));
        }
    }
    best.map(|(p, _)| p)
}

/// Theme `k`'s terms: its own words, its spelled-out acronym and seeds, then the corpus terms
/// nearest to it that are nearer to it than to any other theme.
fn ground(
    theme: &Theme,
    spelled: Option<&str>,
    k: usize,
    vocab: &Vocab,
    affinity: &[Vec<f32>],
    words: &[Words],
) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    let own = std::iter::once(theme.name.as_str())
        .chain(spelled)
        .chain(theme.seeds.iter().map(String::as_str));
    for t in own.filter_map(as_term) {
        if !terms.contains(&t) {
            terms.push(t);
        }
    }
    let mut near: Vec<usize> = (0..vocab.terms.len())
        .filter(|&i| affinity[i][k] >= EXPANSION_MIN_COSINE && argmax(&affinity[i]).0 == k)
        .collect();
    near.sort_by(|&a, &b| affinity[b][k].total_cmp(&affinity[a][k]).then(a.cmp(&b)));
    let foreign = |t: &str| {
        vocab
            .index
            .get(t)
            .is_some_and(|&i| affinity[i][k] < EXPANSION_MIN_COSINE)
    };
    let mut expansions = 0;
    for t in near.into_iter().map(|i| vocab.terms[i]) {
        if expansions == MAX_EXPANSIONS {
            break;
        }
        if terms.iter().any(|u| u == t) || in_foreign_compound(t, words, foreign) {
            continue;
        }
        terms.push(t.to_string());
        expansions += 1;
    }
    terms
}

/// A seed or name as a term: its content words, space-joined ("Image-Generation!" → "image-generation").
fn as_term(s: &str) -> Option<String> {
    let words: Vec<String> = keywords::tokens(s).into_iter().flatten().collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Whether most tweets using the single word `word` use it inside a bigram that `foreign`
/// rejects: "learning" reads like "teaching", but in an AI corpus it mostly stands in "deep
/// learning".
fn in_foreign_compound(word: &str, words: &[Words], foreign: impl Fn(&str) -> bool) -> bool {
    if word.contains(' ') {
        return false;
    }
    let (mut using, mut inside) = (0usize, 0usize);
    for w in words.iter().filter(|w| w.terms.contains(word)) {
        using += 1;
        let in_compound = w.terms.iter().any(|t| {
            t.split_once(' ')
                .is_some_and(|(a, b)| (a == word || b == word) && foreign(t))
        });
        inside += usize::from(in_compound);
    }
    inside as f32 > COMPOUND_SHARE * using as f32
}

/// What every tweet of the corpus shares: the mean vector and the direction along which the
/// tweets spread most (the top principal component of the centred vectors).
struct Common {
    mean: Vec<f32>,
    top: Vec<f32>,
    /// Each row's length once both are removed.
    lengths: Vec<f32>,
}

impl Common {
    /// The mean, then the top component by power iteration from a fixed start, summed in row
    /// order (so the result is the same on any number of threads). `vector(r)` is row `r` of
    /// `n`, `dim` wide.
    fn of<'a>(n: usize, dim: usize, vector: impl Fn(usize) -> &'a [f32] + Sync) -> Common {
        // Blocks of rows are summed on all cores, then added in block order: the same sums
        // on any number of threads.
        let blocks = |f: &(dyn Fn(&[f32], &mut [f32]) + Sync)| {
            let parts: Vec<Vec<f32>> = (0..n.div_ceil(POWER_BLOCK))
                .into_par_iter()
                .map(|b| {
                    let mut sum = vec![0f32; dim];
                    for r in b * POWER_BLOCK..((b + 1) * POWER_BLOCK).min(n) {
                        f(vector(r), &mut sum);
                    }
                    sum
                })
                .collect();
            let mut total = vec![0f32; dim];
            for p in parts {
                total.iter_mut().zip(p).for_each(|(t, x)| *t += x);
            }
            total
        };
        let mut mean = blocks(&|v, sum| sum.iter_mut().zip(v).for_each(|(s, x)| *s += x));
        mean.iter_mut().for_each(|m| *m /= n.max(1) as f32);
        let mut top = normalized(vec![1.0; dim]);
        for _ in 0..POWER_ITERATIONS {
            // Σ ((v − mean)·top) (v − mean) = Σ ((v − mean)·top) v, as the first factors sum
            // to zero over the rows: no centred copy of each row.
            let mean_along = dot(&mean, &top);
            let next = normalized(blocks(&|v, sum| {
                let along = dot(v, &top) - mean_along;
                sum.iter_mut().zip(v).for_each(|(s, x)| *s += along * x);
            }));
            let settled = 1.0 - dot(&next, &top) < POWER_TOLERANCE;
            top = next;
            if settled {
                break;
            }
        }
        let mean_along = dot(&mean, &top);
        let lengths = (0..n)
            .into_par_iter()
            .map(|r| {
                let v = vector(r);
                let centred: f32 = v.iter().zip(&mean).map(|(x, m)| (x - m) * (x - m)).sum();
                let along = dot(v, &top) - mean_along;
                (centred - along * along).max(0.0).sqrt()
            })
            .collect();
        Common { mean, top, lengths }
    }

    /// `v` less the mean and its part along the top component (not normalised).
    fn strip(&self, v: &[f32]) -> Vec<f32> {
        let mut out: Vec<f32> = v.iter().zip(&self.mean).map(|(x, m)| x - m).collect();
        let along = dot(&out, &self.top);
        out.iter_mut()
            .zip(&self.top)
            .for_each(|(o, t)| *o -= along * t);
        out
    }
}

/// The theme vector, common direction removed: the mean of the seed tweets plus half the
/// theme's query, normalised.
fn centroid(store: &Store, common: &Common, query: &[f32], seed: &[bool]) -> Vec<f32> {
    let mut c: Vec<f32> = common
        .strip(query)
        .iter()
        .map(|x| x * NAME_WEIGHT)
        .collect();
    let seeds: Vec<usize> = (0..seed.len()).filter(|&r| seed[r]).collect();
    if !seeds.is_empty() {
        let w = 1.0 / seeds.len() as f32;
        for &r in &seeds {
            for (a, b) in c.iter_mut().zip(common.strip(store.vector(r))) {
                *a += w * b;
            }
        }
    }
    normalized(c)
}

/// Each tweet's cosine to the theme vector, both with the common direction removed (plus the
/// term bonus), standardised over the corpus.
fn z_scores(store: &Store, common: &Common, centroid: &[f32], has_term: &[bool]) -> Vec<f32> {
    let n = has_term.len();
    // The theme vector has no part along the top component, so a row's dot with it, the
    // common direction removed, is its plain dot less the mean's.
    let offset = dot(&common.mean, centroid);
    let raw: Vec<f32> = (0..n)
        .map(|r| {
            let cos = (dot(store.vector(r), centroid) - offset) / common.lengths[r].max(1e-12);
            cos + if has_term[r] { TERM_BONUS } else { 0.0 }
        })
        .collect();
    let mean = raw.iter().sum::<f32>() / n as f32;
    let sd = (raw.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n as f32)
        .sqrt()
        .max(1e-6);
    raw.iter().map(|x| (x - mean) / sd).collect()
}

/// Each tweet's scores, 0.7 its own and 0.3 the mean of its nearest neighbours'.
fn smooth(store: &Store, scores: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let n = scores.len();
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
    (0..n)
        .map(|r| {
            let nb = &neighbors[r];
            (0..scores[r].len())
                .map(|k| {
                    let mean = if nb.is_empty() {
                        scores[r][k]
                    } else {
                        nb.iter().map(|&j| scores[j][k]).sum::<f32>() / nb.len() as f32
                    };
                    (1.0 - SMOOTHING) * scores[r][k] + SMOOTHING * mean
                })
                .collect()
        })
        .collect()
}

/// Each tweet's scores, half its own and half the best in its self-thread (`previous`: the
/// part each tweet continues, if any), for each theme.
fn by_thread(scores: &[Vec<f32>], previous: &[Option<usize>]) -> Vec<Vec<f32>> {
    let n = scores.len();
    // A part's thread is named by its first part; `previous` always points to an earlier
    // post, so following it ends.
    let first = |mut r: usize| {
        while let Some(p) = previous[r] {
            r = p;
        }
        r
    };
    let roots: Vec<usize> = (0..n).map(first).collect();
    let k = scores.first().map_or(0, Vec::len);
    let mut best: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
    for r in 0..n {
        let b = best
            .entry(roots[r])
            .or_insert_with(|| vec![f32::NEG_INFINITY; k]);
        b.iter_mut()
            .zip(&scores[r])
            .for_each(|(b, s)| *b = b.max(*s));
    }
    (0..n)
        .map(|r| {
            let b = &best[&roots[r]];
            scores[r]
                .iter()
                .zip(b)
                .map(|(s, b)| (1.0 - THREAD_SHARE) * s + THREAD_SHARE * b)
                .collect()
        })
        .collect()
}

/// Each tweet's theme and confidence (its z-score): the best theme when it is above the crowd
/// and clearly ahead of the runner-up (a theme the tweet may not take scores −∞).
fn decide(smoothed: &[Vec<f32>]) -> (Vec<Option<usize>>, Vec<f32>) {
    smoothed
        .iter()
        .map(|z| {
            let (k, best) = argmax(z);
            let runner_up = z
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != k)
                .map(|(_, &x)| x)
                .fold(f32::NEG_INFINITY, f32::max);
            if best >= MIN_Z && best - runner_up >= MIN_MARGIN {
                (Some(k), best)
            } else {
                (None, 0.0)
            }
        })
        .unzip()
}

/// Index and value of the largest element (ties: the first).
fn argmax(xs: &[f32]) -> (usize, f32) {
    xs.iter().enumerate().fold(
        (0, f32::MIN),
        |best, (i, &x)| if x > best.1 { (i, x) } else { best },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows spread mostly along the first axis around a common mean: `of` finds both, and
    /// `strip` leaves only what differs along the other axes.
    #[test]
    fn common_direction_is_the_mean_and_the_widest_spread() {
        let dim = 4;
        let rows: Vec<f32> = (0..200)
            .flat_map(|i| {
                let t = i as f32;
                [
                    0.5 + (t * 0.37).sin(),
                    0.3 + 0.1 * (t * 1.3).cos(),
                    0.2 + 0.05 * (t * 2.1).sin(),
                    0.1,
                ]
            })
            .collect();
        let c = Common::of(200, dim, |r| &rows[r * dim..(r + 1) * dim]);
        let mean: Vec<f32> = (0..dim)
            .map(|d| rows.iter().skip(d).step_by(dim).sum::<f32>() / 200.0)
            .collect();
        for (got, want) in c.mean.iter().zip(&mean) {
            assert!((got - want).abs() < 1e-5, "{:?} vs {mean:?}", c.mean);
        }
        assert!(c.top[0].abs() > 0.999, "top {:?}", c.top);
        let v = c.strip(&rows[4..8]);
        assert!(v[0].abs() < 0.01 && v[3].abs() < 1e-5, "{v:?}");
        assert!((c.lengths[1] - dot(&v, &v).sqrt()).abs() < 1e-5);
        assert!((v[1] - (rows[5] - mean[1])).abs() < 0.01, "{v:?}");
    }

    /// Row 2 continues row 1, which continues row 0; row 3 stands alone. Each part gets half
    /// its own score and half its thread's best, per theme.
    #[test]
    fn thread_parts_share_their_best_score() {
        let scores = vec![
            vec![2.0, 0.0],
            vec![0.0, 1.0],
            vec![-1.0, 0.5],
            vec![0.4, 0.4],
        ];
        let previous = [None, Some(0), Some(1), None];
        let got = by_thread(&scores, &previous);
        assert_eq!(got[0], [2.0, 0.5]);
        assert_eq!(got[1], [1.0, 1.0]);
        assert_eq!(got[2], [0.5, 0.75]);
        assert_eq!(got[3], [0.4, 0.4]);
    }

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
        let w = Words::new(&keywords::words(
            "Stable Diffusion is fun, large language models too",
        ));
        assert!(w.contains("stable diffusion"));
        assert!(w.contains("language models"));
        assert!(Words::new(&keywords::words("new stable diffusion model"))
            .contains("stable diffusion model"));
        // "is" is dropped, so "diffusion fun" did not stand together.
        assert!(!w.contains("diffusion fun"));
    }

    fn words_of(texts: &[&str]) -> Vec<Vec<Option<(String, bool)>>> {
        texts.iter().map(|t| keywords::words(t)).collect()
    }

    #[test]
    fn acronyms_are_spelled_out_from_the_corpus() {
        let corpus = words_of(&[
            "Large language models are whatever you prompt them to be",
            "scaling large language models further",
            "a large language model, once",
            "LLMs LLMs LLMs",
        ]);
        // Plural or not, any case: the phrase in the most tweets.
        for name in ["llm", "LLMs", " Llm "] {
            assert_eq!(
                spelled_out(name, &corpus).as_deref(),
                Some("large language models"),
                "{name}"
            );
        }
        // One tweet is not enough; words are not acronyms; nor are long names.
        assert_eq!(spelled_out("sl", &corpus), None);
        assert_eq!(spelled_out("language models", &corpus), None);
        assert_eq!(spelled_out("abcdef", &corpus), None);
    }

    #[test]
    fn words_inside_foreign_compounds_are_skipped() {
        let words: Vec<Words> = words_of(&[
            "deep learning is eating software",
            "more deep learning papers",
            "learning to teach",
        ])
        .iter()
        .map(|t| Words::new(t))
        .collect();
        // Two of the three tweets with "learning" have it inside "deep learning".
        assert!(in_foreign_compound("learning", &words, |t| t == "deep learning"));
        // Not when that compound belongs to the theme too, nor for a bigram itself.
        assert!(!in_foreign_compound("learning", &words, |_| false));
        assert!(!in_foreign_compound("deep learning", &words, |_| true));
    }

    #[test]
    fn a_tweet_between_two_themes_is_other() {
        let (assignment, confidence) = decide(&[
            vec![2.0, 0.1],
            vec![2.0, 1.7],
            vec![0.9, -1.0],
            vec![-0.5, 1.2],
        ]);
        assert_eq!(assignment, [Some(0), None, None, Some(1)]);
        assert_eq!(confidence, [2.0, 0.0, 0.0, 1.2]);
        // With one theme there is no runner-up.
        assert_eq!(decide(&[vec![1.1]]).0, [Some(0)]);
        // A theme a tweet may not take (−∞) is no runner-up either, and a tweet that may take
        // none is other.
        let inf = f32::NEG_INFINITY;
        let (assignment, confidence) = decide(&[vec![1.1, inf], vec![inf, inf], vec![inf, 0.4]]);
        assert_eq!(assignment, [Some(0), None, None]);
        assert_eq!(confidence, [1.1, 0.0, 0.0]);
    }
}
