//! Topic keywords by class-based TF-IDF (the c-TF-IDF of BERTopic): a term scores high for a
//! topic when it is frequent in that topic's tweets and rare across all topics.
//!
//! Tweets are tokenized for this purpose only: lower-cased, with URLs, @mentions, HTML
//! entities, numbers and English stop words (plus tweet chatter such as "lol", "haha") removed.
//! Bigrams are pairs of kept words that stood next to each other.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::OnceLock;

/// Words that carry no topic on Twitter, beyond the ISO English stop-word list.
const CHATTER: &[&str] = &[
    "lol",
    "haha",
    "hahaha",
    "hah",
    "lmao",
    "omg",
    "yeah",
    "yep",
    "nope",
    "ok",
    "okay",
    "ty",
    "thx",
    "thanks",
    "thank",
    "pls",
    "imo",
    "imho",
    "tbh",
    "btw",
    "afaik",
    "fwiw",
    "idk",
    "rt",
    "amp",
    "via",
    "https",
    "http",
    "www",
    "com",
    "co",
    "gt",
    "lt",
    "quot",
    "re",
    "ve",
    "ll",
    "don",
    "didn",
    "doesn",
    "isn",
    "wasn",
    "aren",
    "won",
    "can't",
    "i'm",
    "it's",
    "that's",
    "i've",
    "i'd",
    "i'll",
    "you're",
    "don't",
    "didn't",
    "doesn't",
    "isn't",
    "there's",
    "what's",
    "let's",
    "he's",
    "she's",
    "we're",
    "they're",
    "wouldn't",
    "couldn't",
    "shouldn't",
    "won't",
    "e.g",
    "i.e",
    "etc",
    "vs",
    "v",
    "pretty",
    "really",
    "actually",
    "basically",
    "probably",
    "maybe",
    "kind",
    "lot",
    "lots",
    "bit",
    "thing",
    "things",
    "stuff",
    "good",
    "great",
    "nice",
    "cool",
    "fun",
    "love",
    "like",
    "think",
    "feel",
    "look",
    "looks",
    "looking",
    "get",
    "got",
    "getting",
    "make",
    "makes",
    "made",
    "making",
    "see",
    "seen",
    "know",
    "want",
    "way",
    "yes",
    "just",
    "also",
    "even",
    "still",
    "much",
    "many",
    "one",
    "two",
    "new",
    "time",
    "people",
    "use",
    "used",
    "using",
    "year",
    "years",
    "day",
    "days",
    "today",
    "work",
    "right",
    "sure",
    "exactly",
    "totally",
    "definitely",
];

fn stop_words() -> &'static HashSet<&'static str> {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        stop_words::get("en")
            .iter()
            .copied()
            .chain(CHATTER.iter().copied())
            .collect()
    })
}

/// Whether a keyword is allowed at all (used by tests as the definition of "clean").
pub fn is_stop_word(w: &str) -> bool {
    stop_words().contains(w)
}

/// Content words of a text, in order; `None` marks a removed token (it breaks bigrams).
pub fn tokens(text: &str) -> Vec<Option<String>> {
    words(text)
        .into_iter()
        .map(|w| w.and_then(|(w, content)| content.then_some(w)))
        .collect()
}

/// Every word of a text, in order and lower-cased, with whether it is a content word; `None`
/// marks a URL, @mention or HTML entity.
pub fn words(text: &str) -> Vec<Option<(String, bool)>> {
    let mut out = Vec::new();
    for raw in text.split_whitespace() {
        let lower = raw.to_lowercase();
        if lower.starts_with('@')
            || lower.contains("://")
            || lower.starts_with("www.")
            || lower.starts_with('&')
        {
            out.push(None);
            continue;
        }
        // Split the rest on anything but letters, digits, apostrophes and inner hyphens.
        for piece in lower.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-')) {
            let w = piece.trim_matches(|c| c == '\'' || c == '-');
            let w = w.strip_suffix("'s").unwrap_or(w);
            if w.is_empty() {
                continue;
            }
            let content = w.chars().count() >= 2
                && w.chars().next().is_some_and(char::is_alphabetic)
                && w.chars().any(char::is_alphabetic)
                && !stop_words().contains(w)
                && w.chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '\'')
                && !w.contains('\'');
            out.push(Some((w.to_string(), content)));
        }
    }
    out
}

/// Number of content words: tweets with few of them ("@x haha yes!") carry no topic.
pub fn content_words(text: &str) -> usize {
    tokens(text).iter().flatten().count()
}

/// Unigrams and bigrams of one tweet, each counted once per tweet occurrence.
fn terms(text: &str) -> Vec<String> {
    let toks = tokens(text);
    let mut out: Vec<String> = toks.iter().flatten().cloned().collect();
    for pair in toks.windows(2) {
        if let [Some(a), Some(b)] = pair {
            if a != b {
                out.push(format!("{a} {b}"));
            }
        }
    }
    out
}

/// Top `n` keywords with scores for each class; `classes[c]` lists the texts of class c.
pub fn ctfidf(classes: &[Vec<&str>], n: usize) -> Vec<Vec<(String, f32)>> {
    // Term counts per class, and in how many of the class's tweets a term occurs.
    let mut counts: Vec<BTreeMap<String, (f64, usize)>> = Vec::with_capacity(classes.len());
    for texts in classes {
        let mut m: BTreeMap<String, (f64, usize)> = BTreeMap::new();
        for t in texts {
            let ts = terms(t);
            let distinct: BTreeSet<&String> = ts.iter().collect();
            for term in &ts {
                m.entry(term.clone()).or_default().0 += 1.0;
            }
            for term in distinct {
                m.get_mut(term).expect("just counted").1 += 1;
            }
        }
        counts.push(m);
    }
    let mut across: BTreeMap<&str, f64> = BTreeMap::new();
    for m in &counts {
        for (t, (c, _)) in m {
            *across.entry(t.as_str()).or_default() += c;
        }
    }
    let total: f64 = across.values().sum();
    let avg = total / classes.len().max(1) as f64;
    counts
        .iter()
        .zip(classes)
        .map(|(m, texts)| {
            let class_total: f64 = m.values().map(|(c, _)| c).sum::<f64>().max(1.0);
            // A word from a single long tweet does not describe a topic of many tweets.
            let min_docs = if texts.len() >= 5 { 2 } else { 1 };
            let mut scored: Vec<(String, f64, usize)> = m
                .iter()
                .filter(|(_, (_, docs))| *docs >= min_docs)
                .map(|(t, (c, docs))| {
                    let tf = c / class_total;
                    (t.clone(), tf * (1.0 + avg / across[t.as_str()]).ln(), *docs)
                })
                .collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            // A bigram stands for its own words ("stable diffusion", not "diffusion, stable,
            // stable diffusion") when it accounts for most of their occurrences.
            let mut picked: Vec<(String, f32, usize)> = Vec::new();
            for (t, s, docs) in scored {
                if picked
                    .iter()
                    .any(|(p, _, _)| p.contains(' ') && p.split(' ').any(|w| w == t))
                {
                    continue;
                }
                if t.contains(' ') {
                    picked.retain(|(p, _, pd)| {
                        p.contains(' ') || !t.split(' ').any(|w| w == p) || 2 * docs <= *pd
                    });
                }
                picked.push((t, s as f32, docs));
                if picked.len() == n {
                    break;
                }
            }
            picked
                .into_iter()
                .map(|(t, s, _)| (t, s))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_drop_noise() {
        let t: Vec<String> =
            tokens("@elonmusk The Autopilot &amp; FSD team's 2022 data-engine https://t.co/x lol!")
                .into_iter()
                .flatten()
                .collect();
        assert_eq!(t, ["autopilot", "fsd", "team", "data-engine"]);
    }

    #[test]
    fn distinctive_terms_win() {
        let a = vec![
            "stable diffusion art is fun",
            "stable diffusion prompts",
            "diffusion models",
        ];
        let b = vec!["tesla autopilot data", "autopilot team", "tesla ai day"];
        let k = ctfidf(&[a, b], 3);
        assert_eq!(k[0][0].0, "stable diffusion");
        assert!(k[1].iter().any(|(t, _)| t == "autopilot"));
        assert!(!k[0].iter().any(|(t, _)| t == "stable"));
    }
}
