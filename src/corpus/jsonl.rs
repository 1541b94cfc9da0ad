//! JSON Lines: one object per line. `id` (string or number) and `text` are required; `date`
//! (`YYYY-MM-DD`, RFC 3339 or the archive's `Wed Oct 10 20:19:24 +0000 2018`), `author`,
//! `url`, the counts, `is_reply` and `translation` are read when present.

use std::path::Path;

use chrono::NaiveDate;
use serde::Deserialize;

use super::{decode_entities, parse_id, status_url, Metrics, Tweet};
use crate::error::{Error, Result};

#[derive(Deserialize)]
struct Record {
    id: Id,
    text: String,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default, deserialize_with = "count")]
    likes: u64,
    #[serde(default, deserialize_with = "count")]
    retweets: u64,
    #[serde(default, deserialize_with = "count")]
    replies: u64,
    #[serde(default, deserialize_with = "count")]
    quotes: u64,
    #[serde(default, deserialize_with = "count")]
    views: u64,
    #[serde(default, deserialize_with = "count")]
    bookmarks: u64,
    #[serde(default)]
    is_reply: bool,
    #[serde(default)]
    translation: Option<String>,
}

/// A count; `null` (some exports write it for "not recorded") reads as 0.
fn count<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.unwrap_or(0))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Num(u64),
    Str(String),
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<Tweet>> {
    let mut tweets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(t) = parse_line(path, i + 1, line, tweets.len() + 1)? {
            tweets.push(t);
        }
    }
    Ok(tweets)
}

/// One line of a JSONL file as the `num`-th tweet; `None` for a blank line. Shared by the
/// in-memory parser and the streaming reader so both accept exactly the same files.
pub(super) fn parse_line(
    path: &Path,
    line_no: usize,
    line: &str,
    num: usize,
) -> Result<Option<Tweet>> {
    let err = |msg: String| Error::Corpus {
        path: path.to_path_buf(),
        line: line_no,
        msg,
    };
    if line.trim().is_empty() {
        return Ok(None);
    }
    // The path names the field at fault ("likes": -3), which serde_json alone does not.
    let r: Record = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(line))
        .map_err(|e| {
            let field = e.path().to_string();
            // A value of the wrong kind names its field; broken JSON is the line's fault.
            let named = e.inner().classify() == serde_json::error::Category::Data
                && !line.trim_start().starts_with('[')
                && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let why = strip_position(e.inner());
            err(match (named, field.as_str()) {
                (true, "id") => "field \"id\": must be a number or a string of digits".into(),
                (true, _) => format!("field \"{field}\": {why}"),
                (false, _) => format!(
                    "invalid JSON line ({why}); expected an object with \"id\" and \"text\""
                ),
            })
        })?;
    let id = match r.id {
        Id::Num(n) => n,
        Id::Str(s) => parse_id(&s).ok_or_else(|| err(format!("bad status id '{s}'")))?,
    };
    let date = r
        .date
        .as_deref()
        .map(|d| parse_date(d).ok_or_else(|| err(format!("bad date '{d}', expected YYYY-MM-DD, RFC 3339 or 'Wed Oct 10 20:19:24 +0000 2018'"))))
        .transpose()?;
    let author = r.author.unwrap_or_default();
    Ok(Some(Tweet {
        id,
        num,
        url: r.url.unwrap_or_else(|| status_url(&author, id)),
        author,
        date,
        metrics: Metrics {
            likes: r.likes,
            retweets: r.retweets,
            replies: r.replies,
            quotes: r.quotes,
            views: r.views,
            bookmarks: r.bookmarks,
        },
        is_reply: r.is_reply,
        text: decode_entities(&r.text),
        translation: r.translation,
    }))
}

/// Dates as the formats we know write them.
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.date_naive())
        })
        .or_else(|| {
            chrono::DateTime::parse_from_str(s, "%a %b %d %H:%M:%S %z %Y")
                .ok()
                .map(|d| d.date_naive())
        })
}

/// serde_json's message without its trailing " at line L column C".
pub(super) fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Vec<Tweet>> {
        parse(Path::new("t.jsonl"), s)
    }

    #[test]
    fn reads_minimal_and_full_records() {
        let ts = parse_str(concat!(
            "{\"id\": 5, \"text\": \"a &gt; b\"}\n",
            "\n",
            "{\"id\": \"6\", \"text\": \"x\", \"date\": \"2022-03-04\", \"author\": \"@k\", \"likes\": 9, \"is_reply\": true}\n",
        ))
        .unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[0].text, "a > b");
        assert_eq!(ts[0].url, "https://x.com/i/status/5");
        assert_eq!(ts[1].date, NaiveDate::from_ymd_opt(2022, 3, 4));
        assert_eq!(ts[1].url, "https://x.com/k/status/6");
        assert_eq!(
            (ts[1].metrics.likes, ts[1].is_reply, ts[1].num),
            (9, true, 2)
        );
    }

    #[test]
    fn bad_lines_name_the_line() {
        let e = parse_str("{\"id\": 5, \"text\": \"a\"}\n{\"id\": 6\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.jsonl:2: invalid JSON line"), "{e}");
        let e = parse_str("{\"text\": \"a\"}\n").unwrap_err().to_string();
        assert!(e.contains("missing field `id`"), "{e}");
        let e = parse_str("{\"id\": \"x1\", \"text\": \"a\"}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "t.jsonl:1: bad status id 'x1'");
        // A count of null reads as 0.
        let t = parse_str("{\"id\": 1, \"text\": \"a\", \"views\": null, \"likes\": 4}\n").unwrap();
        assert_eq!((t[0].metrics.views, t[0].metrics.likes), (0, 4));
        // A value of the wrong kind names its field.
        let e = parse_str("{\"id\": 1, \"text\": \"a\", \"likes\": -3}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("t.jsonl:1: field \"likes\": invalid value"),
            "{e}"
        );
        let e = parse_str("{\"id\": [1], \"text\": \"a\"}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "t.jsonl:1: field \"id\": must be a number or a string of digits"
        );
        let e = parse_str("{\"id\": 1, \"text\": \"a\", \"date\": \"yesterday\"}\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.jsonl:1: bad date 'yesterday'"), "{e}");
    }

    #[test]
    fn dates_in_three_spellings() {
        let d = NaiveDate::from_ymd_opt(2018, 10, 10);
        assert_eq!(parse_date("2018-10-10"), d);
        assert_eq!(parse_date("2018-10-10T20:19:24Z"), d);
        assert_eq!(parse_date("Wed Oct 10 20:19:24 +0000 2018"), d);
        assert_eq!(parse_date("10/10/2018"), None);
    }
}
