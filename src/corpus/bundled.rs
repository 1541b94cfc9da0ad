//! The bundled dump format:
//!
//! ```text
//! ### 001
//!
//! 作者: @karpathy
//! 时间: 2022-01-03
//! 链接: https://x.com/karpathy/status/1478128891520688128
//! 互动: Likes: 889; Retweets: 27; Replies: 51; Quotes: 9; Views: 0; Bookmarks: 33; isReply: 0
//!
//! English text (lines; paragraphs separated by blank lines)
//!
//! Chinese translation (optional; paragraphs)
//! ```
//!
//! The text and its translation are told apart by script: the English text is the run of
//! paragraphs before the first paragraph that contains a Han ideograph. "Any non-ASCII
//! character" would not do: English tweets carry emoji and the occasional ¯\_(ツ)_/¯.

use std::path::Path;

use chrono::NaiveDate;

use super::{decode_entities, parse_id, status_url, Metrics, Tweet};
use crate::error::{Error, Result};

const AUTHOR: &str = "作者:";
const DATE: &str = "时间:";
const LINK: &str = "链接:";
const STATS: &str = "互动:";

pub(super) fn parse(path: &Path, text: &str) -> Result<Vec<Tweet>> {
    let lines: Vec<&str> = text.lines().collect();
    let err = |line: usize, msg: String| Error::Corpus {
        path: path.to_path_buf(),
        line,
        msg,
    };
    // Entry starts (0-based line index, entry number). The preamble before the first is ignored.
    let starts: Vec<(usize, usize)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| entry_number(l).map(|n| (i, n)))
        .collect();
    if starts.is_empty() {
        return Err(err(0, "no '### NNN' entry headers found".into()));
    }
    let mut tweets = Vec::with_capacity(starts.len());
    for (k, &(start, num)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(lines.len(), |&(s, _)| s);
        tweets.push(parse_entry(&lines, start, end, num).map_err(|(line, msg)| err(line, msg))?);
    }
    Ok(tweets)
}

/// `### 042` → 42. Only digits count, so a tweet line starting with "### " stays text.
fn entry_number(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("### ")?.trim_end();
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// Parses lines `start..end` (0-based); errors carry a 1-based line number.
fn parse_entry(
    lines: &[&str],
    start: usize,
    end: usize,
    num: usize,
) -> std::result::Result<Tweet, (usize, String)> {
    let mut i = start + 1;
    let skip_blank = |i: &mut usize| {
        while *i < end && lines[*i].trim().is_empty() {
            *i += 1;
        }
    };
    // The four header lines, in order.
    skip_blank(&mut i);
    let mut field =
        |key: &str, what: &str| -> std::result::Result<(usize, String), (usize, String)> {
            let at = i;
            let line = if i < end { lines[i] } else { "" };
            let value = line.strip_prefix(key).ok_or_else(|| {
                let found = if i < end {
                    format!("found '{}'", truncate(line, 40))
                } else {
                    "entry ends here (truncated?)".to_string()
                };
                (
                    at.min(end.saturating_sub(1)) + 1,
                    format!("entry {num:03}: expected '{key} {what}', {found}"),
                )
            })?;
            i += 1;
            Ok((at + 1, value.trim().to_string()))
        };
    let (_, author) = field(AUTHOR, "@handle")?;
    let (date_line, date) = field(DATE, "YYYY-MM-DD")?;
    let (link_line, url) = field(LINK, "https://x.com/<user>/status/<id>")?;
    let (stats_line, stats) = field(STATS, "Likes: N; Retweets: N; ...; isReply: 0|1")?;

    let date = NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|_| {
        (
            date_line,
            format!("entry {num:03}: bad date '{date}', expected YYYY-MM-DD"),
        )
    })?;
    let id = url
        .rsplit_once("/status/")
        .and_then(|(_, tail)| parse_id(tail.split(['?', '/']).next().unwrap_or("")))
        .ok_or_else(|| {
            (
                link_line,
                format!("entry {num:03}: link '{url}' has no /status/<numeric id>"),
            )
        })?;
    let (metrics, is_reply) =
        parse_stats(&stats).map_err(|msg| (stats_line, format!("entry {num:03}: {msg}")))?;

    // Body: paragraphs of English, then paragraphs of translation.
    skip_blank(&mut i);
    let body_start = i;
    let mut paragraphs: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in &lines[i..end] {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line.trim_end());
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    let split = paragraphs
        .iter()
        .position(|p| p.iter().any(|l| l.chars().any(is_han)))
        .unwrap_or(paragraphs.len());
    if split == 0 {
        let line = if body_start < end {
            body_start + 1
        } else {
            stats_line
        };
        return Err((
            line,
            format!("entry {num:03}: no English text after the headers (truncated entry?)"),
        ));
    }
    let join = |ps: &[Vec<&str>]| {
        ps.iter()
            .map(|p| p.join("\n"))
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    let text = decode_entities(&join(&paragraphs[..split]));
    let translation = (split < paragraphs.len()).then(|| join(&paragraphs[split..]));
    Ok(Tweet {
        id,
        num,
        url: if url.is_empty() {
            status_url(&author, id)
        } else {
            url
        },
        author,
        date: Some(date),
        metrics,
        is_reply,
        text,
        translation,
    })
}

/// `Likes: 3,122; Retweets: 418; Replies: 119; Quotes: 64; Views: 0; Bookmarks: 389; isReply: 0`
fn parse_stats(s: &str) -> std::result::Result<(Metrics, bool), String> {
    let mut m = Metrics::default();
    let mut seen = [false; 7];
    let mut is_reply = false;
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once(':')
            .ok_or_else(|| format!("expected 'Name: N', found '{part}'"))?;
        let (key, value) = (key.trim(), value.trim());
        let n: u64 = value
            .replace(',', "")
            .parse()
            .map_err(|_| format!("bad number '{value}' for {key}"))?;
        let slot = match key {
            "Likes" => {
                m.likes = n;
                0
            }
            "Retweets" => {
                m.retweets = n;
                1
            }
            "Replies" => {
                m.replies = n;
                2
            }
            "Quotes" => {
                m.quotes = n;
                3
            }
            "Views" => {
                m.views = n;
                4
            }
            "Bookmarks" => {
                m.bookmarks = n;
                5
            }
            "isReply" => {
                if n > 1 {
                    return Err(format!("isReply must be 0 or 1, found '{value}'"));
                }
                is_reply = n == 1;
                6
            }
            _ => continue, // a count a newer dump adds is not an error
        };
        seen[slot] = true;
    }
    const NAMES: [&str; 7] = [
        "Likes",
        "Retweets",
        "Replies",
        "Quotes",
        "Views",
        "Bookmarks",
        "isReply",
    ];
    if let Some(missing) = seen.iter().position(|s| !s) {
        return Err(format!("missing '{}: N' in the 互动 line", NAMES[missing]));
    }
    Ok((m, is_reply))
}

/// CJK unified ideographs (with extension A and the compatibility block).
fn is_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}')
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = "# title\n\n### 001\n\n作者: @a\n时间: 2022-01-03\n链接: https://x.com/a/status/42\n互动: Likes: 1,423; Retweets: 2; Replies: 3; Quotes: 4; Views: 5; Bookmarks: 6; isReply: 1\n\nhello &amp; bye ¯\\_(ツ)_/¯ \nline two\n\n你好\n\n再见\n";

    fn parse_str(s: &str) -> Result<Vec<Tweet>> {
        parse(Path::new("t.txt"), s)
    }

    #[test]
    fn parses_every_field() {
        let t = &parse_str(ENTRY).unwrap()[0];
        assert_eq!(t.id, 42);
        assert_eq!(t.num, 1);
        assert_eq!(t.author, "@a");
        assert_eq!(t.date, NaiveDate::from_ymd_opt(2022, 1, 3));
        assert_eq!(t.metrics.likes, 1423);
        assert_eq!(t.metrics.bookmarks, 6);
        assert!(t.is_reply);
        assert_eq!(t.text, "hello & bye ¯\\_(ツ)_/¯\nline two");
        assert_eq!(t.translation.as_deref(), Some("你好\n\n再见"));
    }

    fn err_of(s: &str) -> String {
        parse_str(s).unwrap_err().to_string()
    }

    #[test]
    fn malformed_entries_name_the_line() {
        let e = err_of(&ENTRY.replace("时间: 2022-01-03", "时间: 2022-13-03"));
        assert_eq!(
            e,
            "t.txt:6: entry 001: bad date '2022-13-03', expected YYYY-MM-DD"
        );
        let e = err_of(&ENTRY.replace("Likes: 1,423", "Likes: many"));
        assert_eq!(e, "t.txt:8: entry 001: bad number 'many' for Likes");
        let e = err_of(&ENTRY.replace("Quotes: 4; ", ""));
        assert_eq!(
            e,
            "t.txt:8: entry 001: missing 'Quotes: N' in the 互动 line"
        );
        let e = err_of(&ENTRY.replace("链接: ", "Link: "));
        assert!(e.starts_with("t.txt:7: entry 001: expected '链接: "), "{e}");
        let e = err_of(&ENTRY.replace("status/42", "status/abc"));
        assert!(e.starts_with("t.txt:7: entry 001: link"), "{e}");
    }

    #[test]
    fn truncated_entries_are_errors() {
        let cut = &ENTRY[..ENTRY.find("互动").unwrap()];
        let e = err_of(cut);
        assert!(e.contains("entry 001: expected '互动:"), "{e}");
        assert!(e.contains("truncated"), "{e}");
        let headers_only = &ENTRY[..ENTRY.find("hello").unwrap()];
        let e = err_of(headers_only);
        assert_eq!(
            e,
            "t.txt:8: entry 001: no English text after the headers (truncated entry?)"
        );
    }

    #[test]
    fn text_lines_starting_with_hashes_stay_text() {
        let s = ENTRY.replace("line two", "### not a header");
        assert_eq!(
            parse_str(&s).unwrap()[0].text,
            "hello & bye ¯\\_(ツ)_/¯\n### not a header"
        );
    }

    #[test]
    fn no_entries_is_an_error() {
        assert_eq!(
            err_of("just some text\n"),
            "t.txt:0: no '### NNN' entry headers found"
        );
    }
}
