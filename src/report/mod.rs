//! Topic reports: per-topic figures (size, dates, months, engagement, keywords, examples)
//! gathered once into [`Report`], then rendered as JSON, terminal text, Markdown or HTML.

mod hits;
mod html;
pub mod projection;

pub use hits::{hit_records, HitRecord, ThreadLift};

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
        Ok(terminal_safe(&html::render(self, store, topics)?))
    }

    /// Just the charts, as HTML sections to place in another page.
    pub fn charts_html(&self, store: &Store, topics: &Topics) -> Result<String> {
        Ok(terminal_safe(&html::charts(self, store, topics)?))
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
            let dates = match (&t.first_date, &t.last_date) {
                (Some(first), Some(last)) => format!(", {first} … {last}"),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "[{}] {}  —  {} ({:.1}%){dates}",
                t.id,
                t.label,
                tweets(t.size),
                100.0 * t.share,
            );
            let kws: Vec<&str> = t.keywords.iter().map(|k| k.term.as_str()).collect();
            let _ = writeln!(s, "    keywords: {}", kws.join(", "));
            let _ = writeln!(
                s,
                "    likes: {} total, median {}; retweets: {} total, median {}",
                t.likes_total, t.likes_median, t.retweets_total, t.retweets_median
            );
            // "MM" within one year; "YYYY-MM" when the months span several.
            let one_year = t.monthly.first_key_value().map(|(m, _)| &m[..4])
                == t.monthly.last_key_value().map(|(m, _)| &m[..4]);
            let active: Vec<String> = t
                .monthly
                .iter()
                .map(|(m, c)| format!("{}:{c}", if one_year { &m[5..] } else { m }))
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
            } else if self.guided {
                let _ = writeln!(
                    s,
                    "    matched via: no word (no tweet has any of the theme's words or seeds), so only by meaning: tweets within cosine {} of its name and description",
                    crate::topics::themes::MEANING_ONLY_MIN_COSINE
                );
            }
            let _ = writeln!(s);
        }
        terminal_safe(&s)
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
                    "- {} {}",
                    md_link(e.date.as_deref().unwrap_or("-"), &e.url),
                    md(&clip(&e.text, 200))
                );
            }
            if let Some(m) = &t.most_liked {
                let _ = writeln!(
                    s,
                    "\nMost liked ({} likes): {} {}",
                    m.likes,
                    md_link(m.date.as_deref().unwrap_or("-"), &m.url),
                    md(&clip(&m.text, 200))
                );
            }
        }
        terminal_safe(&s)
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

/// Escapes what would break a Markdown table cell or start markup, raw HTML included (a
/// tweet's `<script>` stays text).
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' | '*' | '_' | '[' | ']' | '`' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || unsafe_char(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `[text](url)`, or the text alone when the url is not a plain web link.
fn md_link(text: &str, url: &str) -> String {
    match web_url(url) {
        Some(u) => format!("[{}]({u})", md(text)),
        None => md(text),
    }
}

/// `url` when it is an http(s) link that cannot break out of a Markdown link or an HTML
/// attribute: a corpus is untrusted input, and a `javascript:` link in a shared report runs
/// script when clicked.
pub(crate) fn web_url(url: &str) -> Option<&str> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    let plain = !url.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '(' | ')' | '<' | '>' | '"' | '\'')
    });
    (web && plain).then_some(url)
}

/// `s` safe to print on a terminal or to put in a shared page: control characters (escape
/// sequences that could clear the screen or retitle the window, NUL, ...) and bidirectional
/// overrides (which reorder what is shown) become U+FFFD; line breaks and tabs stay.
pub fn terminal_safe(s: &str) -> String {
    s.chars()
        .map(|c| if unsafe_char(c) { '\u{fffd}' } else { c })
        .collect()
}

fn unsafe_char(c: char) -> bool {
    let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    (c.is_control() && c != '\n' && c != '\t') || bidi
}

/// "1 tweet", "2 tweets".
pub fn tweets(n: usize) -> String {
    if n == 1 {
        "1 tweet".to_string()
    } else {
        format!("{n} tweets")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tweets are untrusted: escape sequences never reach a terminal, raw HTML and link
    /// syntax stay text in Markdown, and only http(s) links become links.
    #[test]
    fn untrusted_text_and_links_are_made_harmless() {
        let evil = "a \u{1b}[2J\u{1b}]0;title\u{7} \u{202e}b\0c\nd";
        assert_eq!(
            terminal_safe(evil),
            "a \u{fffd}[2J\u{fffd}]0;title\u{fffd} \u{fffd}b\u{fffd}c\nd"
        );
        assert_eq!(
            md("<script>x</script> [a](javascript:y) *b* |\u{1b}\u{202e}"),
            "&lt;script&gt;x&lt;/script&gt; \\[a\\](javascript:y) \\*b\\* \\|\u{fffd}\u{fffd}"
        );
        assert_eq!(
            web_url("https://x.com/a/status/1"),
            Some("https://x.com/a/status/1")
        );
        assert_eq!(web_url("HTTP://x.com/1"), Some("HTTP://x.com/1"));
        for bad in [
            "javascript:alert(1)",
            " https://x.com",
            "https://x.com/\" onmouseover=\"x",
            "https://x.com/a) [b](javascript:c",
            "data:text/html,x",
            "",
        ] {
            assert_eq!(web_url(bad), None, "{bad}");
        }
        assert_eq!(md_link("2022-01-01", "javascript:x"), "2022-01-01");
        assert_eq!(md_link("d", "https://x.com/1"), "[d](https://x.com/1)");
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[5, 1, 3]), 3.0);
        assert_eq!(median(&[4, 1, 3, 2]), 2.5);
    }
}
