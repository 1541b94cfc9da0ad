//! Topic reports: per-topic figures (size, dates, months, engagement, keywords, examples)
//! gathered once into [`Report`], then rendered as JSON, terminal text, Markdown or HTML.

mod html;
pub mod projection;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::corpus::Tweet;
use crate::error::Result;
use crate::index::Store;
use crate::topics::Topics;

#[derive(Debug, Serialize)]
pub struct Report {
    pub corpus: String,
    /// Guided themes (tweets outside every theme are "other") rather than discovered topics.
    pub guided: bool,
    pub tweets: usize,
    pub topics_discovered: usize,
    pub unassigned: usize,
    pub unassigned_share: f64,
    /// Tweets too short to form topics (some joined one afterwards).
    pub set_aside: usize,
    pub topics: Vec<TopicReport>,
    pub hierarchy: Vec<Merge>,
    /// Status id → topic id; -1 = unassigned. Covers every tweet.
    pub assignments: BTreeMap<String, i64>,
    /// Status id → how firmly the tweet is in its topic (0 when unassigned): cosine to the
    /// topic centroid for discovered topics, the theme z-score for guided themes.
    pub confidence: BTreeMap<String, f32>,
}

#[derive(Debug, Serialize)]
pub struct TopicReport {
    pub id: usize,
    pub label: String,
    pub keywords: Vec<Keyword>,
    pub size: usize,
    pub share: f64,
    pub core: usize,
    pub first_date: Option<String>,
    pub last_date: Option<String>,
    /// "YYYY-MM" → tweets; every month of the corpus's range, zeros included.
    pub monthly: BTreeMap<String, usize>,
    pub likes_total: u64,
    pub likes_median: f64,
    pub retweets_total: u64,
    pub retweets_median: f64,
    /// `None` only for a guided theme no tweet matched.
    pub most_liked: Option<Example>,
    pub representatives: Vec<Example>,
    /// Discovered topics merged into this one.
    pub parts: Vec<usize>,
    /// Guided themes: the terms the theme was grounded in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Keyword {
    pub term: String,
    pub score: f32,
}

#[derive(Debug, Serialize)]
pub struct Example {
    pub id: String,
    pub date: Option<String>,
    pub likes: u64,
    pub similarity: f32,
    pub text: String,
    pub url: String,
}

#[derive(Debug, Serialize)]
pub struct Merge {
    pub a: usize,
    pub b: usize,
    pub into: usize,
    pub similarity: f32,
}

impl Report {
    pub fn new(store: &Store, topics: &Topics) -> Result<Report> {
        let tweets = store.tweets()?;
        let n = tweets.len();
        let months = month_range(tweets);
        let example = |r: usize| {
            let t = &tweets[r];
            Example {
                id: t.id.to_string(),
                date: t.date.map(|d| d.to_string()),
                likes: t.metrics.likes,
                similarity: topics.confidence[r],
                text: t.text.clone(),
                url: t.url.clone(),
            }
        };
        let topic_reports = topics
            .topics
            .iter()
            .enumerate()
            .map(|(id, t)| {
                let ts: Vec<_> = t.rows.iter().map(|&r| &tweets[r]).collect();
                let mut monthly: BTreeMap<String, usize> =
                    months.iter().map(|m| (m.clone(), 0)).collect();
                for tw in &ts {
                    if let Some(d) = tw.date {
                        *monthly.entry(d.format("%Y-%m").to_string()).or_default() += 1;
                    }
                }
                let likes: Vec<u64> = ts.iter().map(|t| t.metrics.likes).collect();
                let rts: Vec<u64> = ts.iter().map(|t| t.metrics.retweets).collect();
                let most_liked = t.rows.iter().copied().max_by(|&a, &b| {
                    tweets[a]
                        .metrics
                        .likes
                        .cmp(&tweets[b].metrics.likes)
                        .then(b.cmp(&a))
                });
                TopicReport {
                    id,
                    label: t.label.clone(),
                    keywords: t
                        .keywords
                        .iter()
                        .map(|(term, score)| Keyword {
                            term: term.clone(),
                            score: *score,
                        })
                        .collect(),
                    size: t.rows.len(),
                    share: t.rows.len() as f64 / n as f64,
                    core: t.core,
                    first_date: ts
                        .iter()
                        .filter_map(|t| t.date)
                        .min()
                        .map(|d| d.to_string()),
                    last_date: ts
                        .iter()
                        .filter_map(|t| t.date)
                        .max()
                        .map(|d| d.to_string()),
                    monthly,
                    likes_total: likes.iter().sum(),
                    likes_median: median(&likes),
                    retweets_total: rts.iter().sum(),
                    retweets_median: median(&rts),
                    most_liked: most_liked.map(example),
                    representatives: t.representatives.iter().map(|&r| example(r)).collect(),
                    parts: t.parts.clone(),
                    terms: Vec::new(),
                }
            })
            .collect();
        let unassigned = topics.assignment.iter().filter(|a| a.is_none()).count();
        Ok(Report {
            corpus: store.manifest().corpus.source.clone(),
            guided: false,
            tweets: n,
            topics_discovered: topics.discovered,
            unassigned,
            unassigned_share: unassigned as f64 / n as f64,
            set_aside: topics.set_aside,
            topics: topic_reports,
            hierarchy: topics
                .hierarchy
                .iter()
                .map(|m| Merge {
                    a: m.a,
                    b: m.b,
                    into: m.into,
                    similarity: m.similarity,
                })
                .collect(),
            assignments: tweets
                .iter()
                .zip(&topics.assignment)
                .map(|(t, a)| (t.id.to_string(), a.map_or(-1, |a| a as i64)))
                .collect(),
            confidence: tweets
                .iter()
                .zip(&topics.confidence)
                .map(|(t, &c)| (t.id.to_string(), c))
                .collect(),
        })
    }

    /// One self-contained page with the charts and tables; needs the store for the map.
    pub fn to_html(&self, store: &Store, topics: &Topics) -> Result<String> {
        html::render(self, store, topics)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialize")
    }

    /// The terminal report: one block per topic.
    pub fn to_text(&self, width: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} {} over {} tweets ({}); {}: {} ({:.1}%)\n",
            self.topics.len(),
            if self.guided { "themes" } else { "topics" },
            self.tweets,
            self.corpus,
            if self.guided { "other" } else { "unassigned" },
            self.unassigned,
            100.0 * self.unassigned_share
        );
        for t in &self.topics {
            let _ = writeln!(
                s,
                "[{}] {}  —  {} tweets ({:.1}%), {} … {}",
                t.id,
                t.label,
                t.size,
                100.0 * t.share,
                t.first_date.as_deref().unwrap_or("-"),
                t.last_date.as_deref().unwrap_or("-")
            );
            let kws: Vec<&str> = t.keywords.iter().map(|k| k.term.as_str()).collect();
            let _ = writeln!(s, "    keywords: {}", kws.join(", "));
            let _ = writeln!(
                s,
                "    likes: {} total, median {}; retweets: {} total, median {}",
                t.likes_total, t.likes_median, t.retweets_total, t.retweets_median
            );
            let active: Vec<String> = t
                .monthly
                .iter()
                .map(|(m, c)| format!("{}:{c}", &m[5..]))
                .collect();
            let _ = writeln!(s, "    by month: {}", active.join(" "));
            for e in &t.representatives {
                let _ = writeln!(s, "    · {}", clip(&e.text, width.saturating_sub(6)));
            }
            if let Some(m) = &t.most_liked {
                let _ = writeln!(
                    s,
                    "    most liked ({} likes): {}",
                    m.likes,
                    clip(&m.text, width.saturating_sub(24))
                );
            }
            if !t.terms.is_empty() {
                let _ = writeln!(s, "    matched via: {}", t.terms.join(", "));
            }
            let _ = writeln!(s);
        }
        s
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Topics of {}\n", self.corpus);
        let _ = writeln!(
            s,
            "{} tweets, {} topics; unassigned: {} ({:.1}%).\n",
            self.tweets,
            self.topics.len(),
            self.unassigned,
            100.0 * self.unassigned_share
        );
        let _ = writeln!(s, "| # | label | tweets | share | dates | likes (total / median) | retweets (total / median) |");
        let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- | --- |");
        for t in &self.topics {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1}% | {} … {} | {} / {} | {} / {} |",
                t.id,
                md(&t.label),
                t.size,
                100.0 * t.share,
                t.first_date.as_deref().unwrap_or("-"),
                t.last_date.as_deref().unwrap_or("-"),
                t.likes_total,
                t.likes_median,
                t.retweets_total,
                t.retweets_median
            );
        }
        for t in &self.topics {
            let _ = writeln!(s, "\n## {}. {}\n", t.id, md(&t.label));
            let kws: Vec<&str> = t.keywords.iter().map(|k| k.term.as_str()).collect();
            let _ = writeln!(s, "Keywords: {}\n", md(&kws.join(", ")));
            let months: Vec<String> = t.monthly.iter().map(|(m, c)| format!("{m}: {c}")).collect();
            let _ = writeln!(s, "Tweets per month: {}\n", months.join(", "));
            let _ = writeln!(s, "Representative tweets:\n");
            for e in &t.representatives {
                let _ = writeln!(
                    s,
                    "- [{}]({}) {}",
                    e.date.as_deref().unwrap_or("-"),
                    e.url,
                    md(&clip(&e.text, 200))
                );
            }
            if let Some(m) = &t.most_liked {
                let _ = writeln!(
                    s,
                    "\nMost liked ({} likes): [{}]({}) {}",
                    m.likes,
                    m.date.as_deref().unwrap_or("-"),
                    m.url,
                    md(&clip(&m.text, 200))
                );
            }
        }
        s
    }
}

/// Every month from the store's first to last date, as "YYYY-MM".
fn month_range(tweets: &[Tweet]) -> Vec<String> {
    let dates = tweets.iter().filter_map(|t| t.date);
    let (Some(first), Some(last)) = (dates.clone().min(), dates.max()) else {
        return Vec::new();
    };
    use chrono::Datelike;
    let mut out = Vec::new();
    let (mut y, mut m) = (first.year(), first.month());
    while (y, m) <= (last.year(), last.month()) {
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    out
}

fn median(xs: &[u64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2] as f64,
        n => (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0,
    }
}

fn clip(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max.max(10)) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// Escapes what would break a Markdown table cell or start markup.
fn md(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('*', "\\*")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[5, 1, 3]), 3.0);
        assert_eq!(median(&[4, 1, 3, 2]), 2.5);
    }
}
