//! The official X/Twitter archive file `data/tweets.js`:
//!
//! ```text
//! window.YTD.tweets.part0 = [
//!   { "tweet" : { "id_str" : "…", "full_text" : "…", "created_at" : "Wed Oct 10 20:19:24 +0000 2018",
//!                 "favorite_count" : "12", "retweet_count" : "3", "in_reply_to_status_id_str" : "…", … } },
//!   …
//! ]
//! ```
//!
//! Field checks run inside deserialization so that every error carries serde's line number.

use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer};

use super::{decode_entities, jsonl, parse_id, status_url, Metrics, Tweet};
use crate::error::{Error, Result};

#[derive(Deserialize)]
struct ArchiveTweet {
    #[serde(deserialize_with = "status_id")]
    id_str: u64,
    full_text: String,
    #[serde(deserialize_with = "created_at")]
    created_at: NaiveDate,
    #[serde(default, deserialize_with = "count")]
    favorite_count: u64,
    #[serde(default, deserialize_with = "count")]
    retweet_count: u64,
    #[serde(default)]
    in_reply_to_status_id_str: Option<String>,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<Tweet>> {
    let err = |line: usize, msg: String| Error::Corpus {
        path: path.to_path_buf(),
        line,
        msg,
    };
    // Replace the `window.YTD.tweets.part0 =` prefix by spaces so serde's positions stay true.
    let body = match text.find('=') {
        Some(eq) if text[..eq].trim_start().starts_with("window.YTD.") => {
            format!("{}{}", " ".repeat(eq + 1), &text[eq + 1..])
        }
        _ => {
            return Err(err(
                1,
                "expected 'window.YTD.tweets.part0 = [' at the start of an archive tweets.js"
                    .into(),
            ))
        }
    };
    // Untagged enums hide the inner error; parse the outer array of values first, then each item.
    let items: Vec<serde_json::Value> = serde_json::from_str(&body).map_err(|e| {
        err(
            e.line(),
            format!("invalid JSON ({})", jsonl::strip_position(&e)),
        )
    })?;
    let mut tweets = Vec::with_capacity(items.len());
    for (i, value) in items.into_iter().enumerate() {
        // Archives since 2019 wrap each tweet in {"tweet": ...}; older ones do not.
        let inner = match value {
            serde_json::Value::Object(mut o) if o.contains_key("tweet") => {
                o.remove("tweet").unwrap_or_default()
            }
            v => v,
        };
        let t: ArchiveTweet = serde_json::from_value(inner).map_err(|e| {
            err(
                item_line(&body, i),
                format!("tweet #{}: {}", i + 1, jsonl::strip_position(&e)),
            )
        })?;
        let id = t.id_str;
        tweets.push(Tweet {
            id,
            num: i + 1,
            author: String::new(),
            date: Some(t.created_at),
            url: status_url("", id),
            metrics: Metrics {
                likes: t.favorite_count,
                retweets: t.retweet_count,
                ..Metrics::default()
            },
            is_reply: t.in_reply_to_status_id_str.is_some_and(|s| !s.is_empty()),
            text: decode_entities(&t.full_text),
            translation: None,
        });
    }
    Ok(tweets)
}

/// 1-based line where the `i`-th element of the top-level array starts.
fn item_line(body: &str, i: usize) -> usize {
    // Walk the JSON at depth 1, counting elements; strings are skipped with their escapes.
    let (mut depth, mut count, mut line) = (0usize, 0usize, 1usize);
    let mut in_str = false;
    let mut escaped = false;
    for c in body.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => {
                if depth == 1 {
                    if count == i {
                        return line;
                    }
                    count += 1;
                }
                depth += 1;
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    line
}

fn status_id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    parse_id(&s).ok_or_else(|| serde::de::Error::custom(format!("bad id_str '{s}'")))
}

fn created_at<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<NaiveDate, D::Error> {
    let s = String::deserialize(d)?;
    chrono::DateTime::parse_from_str(&s, "%a %b %d %H:%M:%S %z %Y")
        .map(|t| t.date_naive())
        .map_err(|_| {
            serde::de::Error::custom(format!(
                "bad created_at '{s}', expected like 'Wed Oct 10 20:19:24 +0000 2018'"
            ))
        })
}

/// Archive counts are strings ("12"); accept numbers too.
fn count<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        N(u64),
        S(String),
    }
    match Count::deserialize(d)? {
        Count::N(n) => Ok(n),
        Count::S(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("bad count '{s}'"))),
    }
}
