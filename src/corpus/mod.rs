//! Reading tweet collections into one in-memory shape, whatever file they came from.
//!
//! Three formats are read: the bundled Markdown-like dump (`### 001` entries, the default
//! corpus), the official X/Twitter archive `tweets.js`, and JSON Lines. Each parser turns its
//! file into [`Tweet`]s in file order; `Corpus::from_entries` then merges repeated status
//! ids, so a tweet appears once however often the source repeats it, and records every merge.

mod archive;
mod bundled;
mod jsonl;
pub mod threads;

pub(crate) use jsonl::parse_date;

use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The 2022 corpus shipped with the binary, so `tweetsim` works with no arguments from anywhere.
const BUNDLED_TEXT: &str = include_str!("../../data/karpathy-2022.txt");
/// How the bundled corpus is named in messages and store manifests.
pub const BUNDLED_NAME: &str = "data/karpathy-2022.txt";

/// One tweet, with everything the source carried about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tweet {
    /// Status id, the key of a tweet everywhere in tweetsim.
    #[serde(with = "id_as_string")]
    pub id: u64,
    /// 1-based entry number: `### 001` in the bundled format, the record position elsewhere.
    pub num: usize,
    /// Handle with its `@`, empty where the source does not say (the archive does not).
    pub author: String,
    pub date: Option<NaiveDate>,
    pub url: String,
    pub metrics: Metrics,
    pub is_reply: bool,
    /// The tweet text with HTML entities decoded: what is shown and what is embedded.
    pub text: String,
    /// The Chinese translation of the bundled corpus; `None` where absent.
    pub translation: Option<String>,
}

/// How [`Tweet::embedding_text`] derives the text that is embedded. Stores record it: vectors
/// made under another policy are not reused.
pub const EMBEDDING_TEXT_POLICY: &str =
    "entities decoded; leading reply @handles and t.co links removed (v1)";

impl Tweet {
    /// The text the encoder sees: the tweet without the `@handle …` prefix that replies carry
    /// and without t.co links. Both are tokens of no meaning to the model that pull replies to
    /// the same people (or any two linking tweets) together. Falls back to the full text when
    /// nothing else is left (a reply that is only a link).
    pub fn embedding_text(&self) -> String {
        let mut rest = self.text.trim_start();
        while let Some(after) = rest.strip_prefix('@') {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end == 0 {
                break;
            }
            rest = after[end..].trim_start();
        }
        let mut out = String::with_capacity(rest.len());
        for (i, line) in rest.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let words: Vec<&str> = line
                .split(' ')
                .filter(|w| !w.starts_with("https://t.co/") && !w.starts_with("http://t.co/"))
                .collect();
            out.push_str(words.join(" ").trim_end());
        }
        let out = out.trim().to_string();
        if out.is_empty() {
            self.text.clone()
        } else {
            out
        }
    }
}

/// Engagement counts. Formats that lack a count report 0 for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    pub likes: u64,
    pub retweets: u64,
    pub replies: u64,
    pub quotes: u64,
    pub views: u64,
    pub bookmarks: u64,
}

impl Metrics {
    /// Field-wise maximum: repeated entries of one tweet are snapshots taken at different
    /// times, and counts only grow.
    fn max(self, o: Metrics) -> Metrics {
        Metrics {
            likes: self.likes.max(o.likes),
            retweets: self.retweets.max(o.retweets),
            replies: self.replies.max(o.replies),
            quotes: self.quotes.max(o.quotes),
            views: self.views.max(o.views),
            bookmarks: self.bookmarks.max(o.bookmarks),
        }
    }
}

/// The file formats tweetsim reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `### NNN` entries with 作者/时间/链接/互动 headers (the bundled corpus).
    Bundled,
    /// The X/Twitter archive's `tweets.js` (`window.YTD.tweets.part0 = [...]`).
    Archive,
    /// One JSON object per line with at least `id` and `text`.
    Jsonl,
    /// A Parquet table with at least `id` and `text` columns (an `embedding` column is
    /// allowed: `tweetsim embed --out X.parquet` writes one).
    Parquet,
}

impl Format {
    /// Chooses the format from the file extension.
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("txt" | "md") => Ok(Format::Bundled),
            Some("js") => Ok(Format::Archive),
            Some("jsonl" | "ndjson") => Ok(Format::Jsonl),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => Err(Error::Corpus {
                path: path.to_path_buf(),
                line: 0,
                msg: "cannot tell the format from the extension (.txt/.md = bundled, .js = archive, .jsonl = jsonl, .parquet = parquet); pass --format".into(),
            }),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Bundled => "bundled",
            Format::Archive => "archive",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        })
    }
}

/// A repeated status id that was folded into its first occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub id: u64,
    /// Entry number kept.
    pub kept: usize,
    /// Entry number folded into it.
    pub dropped: usize,
    /// False when the repeated entry's text differs: worth a warning, the first text is kept.
    pub same_text: bool,
}

/// The tweets of one file, unique by status id, in first-seen order.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Where it came from, for messages and the store manifest.
    pub source: String,
    pub format: Format,
    /// Records in the file, repeats included.
    pub entries: usize,
    pub tweets: Vec<Tweet>,
    pub merges: Vec<Merge>,
    /// Status ids of records with no text (a media-only post exported without its link):
    /// left out, as a similarity engine has nothing of them to embed or show.
    pub blank: Vec<u64>,
    /// Hash of the file's bytes: a store built from other bytes is stale.
    pub content_hash: String,
}

impl Corpus {
    /// Reads a corpus file; `format` overrides the choice by extension.
    pub fn load(path: &Path, format: Option<Format>) -> Result<Corpus> {
        let format = match format {
            Some(f) => f,
            None => Format::from_path(path)?,
        };
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let mut corpus = match format {
            // Binary: read by columns, not as text.
            Format::Parquet => {
                // Every row, blank ones included: the corpus counts them.
                let entries = crate::parquet::Rows::open(path)?.collect::<Result<_>>()?;
                Corpus::checked(path, format, entries, content_hash(&bytes))?
            }
            _ => Corpus::parse(path, decode_utf8(path, &bytes)?, format)?,
        };
        // The store remembers its corpus by absolute path, valid from any working directory.
        if let Ok(abs) = std::fs::canonicalize(path) {
            corpus.source = abs.display().to_string();
        }
        Ok(corpus)
    }

    /// The text of the bundled corpus, as compiled in.
    pub fn bundled_text() -> &'static str {
        BUNDLED_TEXT
    }

    /// The 2022 corpus compiled into the binary.
    pub fn bundled() -> Corpus {
        Corpus::parse(Path::new(BUNDLED_NAME), BUNDLED_TEXT, Format::Bundled)
            .expect("the bundled corpus is checked by the test suite")
    }

    /// Parses text already in memory; `path` names it in errors.
    pub fn parse(path: &Path, text: &str, format: Format) -> Result<Corpus> {
        let entries = match format {
            Format::Bundled => bundled::parse(path, text)?,
            Format::Archive => archive::parse(path, text)?,
            Format::Jsonl => jsonl::parse(path, text)?,
            Format::Parquet => {
                return Err(Error::Corpus {
                    path: path.to_path_buf(),
                    line: 0,
                    msg: "Parquet is a binary format: load it from its file".into(),
                })
            }
        };
        Corpus::checked(path, format, entries, content_hash(text.as_bytes()))
    }

    /// The corpus of `entries`, refused when no record has text.
    fn checked(path: &Path, format: Format, entries: Vec<Tweet>, hash: String) -> Result<Corpus> {
        let corpus = Corpus::from_entries(path.display().to_string(), format, entries, hash);
        if corpus.tweets.is_empty() {
            let only_blank = match corpus.blank.len() {
                0 => String::new(),
                n => format!("; {n} records without text"),
            };
            return Err(Error::Corpus {
                path: path.to_path_buf(),
                line: 0,
                msg: format!("no tweets found (read as {format}{only_blank})"),
            });
        }
        Ok(corpus)
    }

    /// Folds repeated status ids into their first occurrence, keeping the largest counts.
    fn from_entries(source: String, format: Format, entries: Vec<Tweet>, hash: String) -> Corpus {
        let n = entries.len();
        let mut tweets: Vec<Tweet> = Vec::with_capacity(n);
        let mut merges = Vec::new();
        let mut seen: HashMap<u64, usize> = HashMap::with_capacity(n);
        let mut blank = Vec::new();
        for t in entries {
            if is_blank(&t) {
                blank.push(t.id);
                continue;
            }
            match seen.get(&t.id) {
                Some(&i) => {
                    let kept = &mut tweets[i];
                    merges.push(Merge {
                        id: t.id,
                        kept: kept.num,
                        dropped: t.num,
                        same_text: kept.text == t.text,
                    });
                    kept.metrics = kept.metrics.max(t.metrics);
                }
                None => {
                    seen.insert(t.id, tweets.len());
                    tweets.push(t);
                }
            }
        }
        Corpus {
            source,
            format,
            entries: n,
            tweets,
            merges,
            blank,
            content_hash: hash,
        }
    }

    pub fn stats(&self) -> Stats {
        let dates = self.tweets.iter().filter_map(|t| t.date);
        Stats {
            entries: self.entries,
            unique: self.tweets.len(),
            merged: self.merges.len(),
            without_text: self.blank.len(),
            replies: self.tweets.iter().filter(|t| t.is_reply).count(),
            with_translation: self
                .tweets
                .iter()
                .filter(|t| t.translation.is_some())
                .count(),
            first_date: dates.clone().min(),
            last_date: dates.max(),
        }
    }
}

/// The records of a corpus file one at a time, repeats included, for inputs too big to
/// hold: JSON Lines are read line by line in bounded memory; the other two formats are
/// single documents and are parsed whole first.
pub struct Records {
    inner: RecordsInner,
}

enum RecordsInner {
    Lines {
        path: PathBuf,
        reader: std::io::BufReader<std::fs::File>,
        line_no: usize,
        num: usize,
        buf: String,
    },
    Parsed(std::vec::IntoIter<Tweet>),
    Parquet(Box<crate::parquet::Rows>),
}

impl Records {
    pub fn open(path: &Path, format: Option<Format>) -> Result<Records> {
        let format = match format {
            Some(f) => f,
            None => Format::from_path(path)?,
        };
        let inner = match format {
            Format::Parquet => RecordsInner::Parquet(Box::new(crate::parquet::Rows::open(path)?)),
            Format::Jsonl => RecordsInner::Lines {
                path: path.to_path_buf(),
                reader: std::io::BufReader::new(
                    std::fs::File::open(path).map_err(|e| Error::io(path, e))?,
                ),
                line_no: 0,
                num: 0,
                buf: String::new(),
            },
            Format::Bundled | Format::Archive => {
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                let text = decode_utf8(path, &bytes)?;
                let entries = match format {
                    Format::Bundled => bundled::parse(path, text)?,
                    _ => archive::parse(path, text)?,
                };
                RecordsInner::Parsed(entries.into_iter())
            }
        };
        Ok(Records { inner })
    }

    /// The records of the bundled corpus.
    pub fn bundled() -> Records {
        let entries = bundled::parse(Path::new(BUNDLED_NAME), BUNDLED_TEXT)
            .expect("the bundled corpus is checked by the test suite");
        Records {
            inner: RecordsInner::Parsed(entries.into_iter()),
        }
    }
}

/// A record with no text: [`Corpus`] and [`Records`] both leave it out.
fn is_blank(t: &Tweet) -> bool {
    t.text.trim().is_empty()
}

impl Iterator for Records {
    type Item = Result<Tweet>;

    fn next(&mut self) -> Option<Result<Tweet>> {
        loop {
            match self.next_record()? {
                Ok(t) if is_blank(&t) => continue,
                r => return Some(r),
            }
        }
    }
}

impl Records {
    /// The next record, blank or not.
    fn next_record(&mut self) -> Option<Result<Tweet>> {
        match &mut self.inner {
            RecordsInner::Parsed(it) => it.next().map(Ok),
            RecordsInner::Parquet(rows) => rows.next(),
            RecordsInner::Lines {
                path,
                reader,
                line_no,
                num,
                buf,
            } => loop {
                buf.clear();
                *line_no += 1;
                match reader.read_line(buf) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        return Some(Err(Error::Corpus {
                            path: path.clone(),
                            line: *line_no,
                            msg: "invalid UTF-8".into(),
                        }))
                    }
                    Err(e) => return Some(Err(Error::io(path.as_path(), e))),
                }
                let mut line = buf.trim_end_matches(['\n', '\r']);
                if *line_no == 1 {
                    line = line.strip_prefix('\u{feff}').unwrap_or(line);
                }
                match jsonl::parse_line(path, *line_no, line, *num + 1) {
                    Ok(None) => continue,
                    Ok(Some(t)) => {
                        *num += 1;
                        return Some(Ok(t));
                    }
                    Err(e) => return Some(Err(e)),
                }
            },
        }
    }
}

/// Counts shown by `tweetsim corpus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub entries: usize,
    pub unique: usize,
    pub merged: usize,
    /// Records left out for having no text.
    pub without_text: usize,
    pub replies: usize,
    pub with_translation: usize,
    pub first_date: Option<NaiveDate>,
    pub last_date: Option<NaiveDate>,
}

/// Hex xxh3-128 of a corpus file's bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// Decodes `&amp;`, `&gt;`, `&#39;` and friends, which tweet sources keep raw.
pub fn decode_entities(text: &str) -> String {
    html_escape::decode_html_entities(text).into_owned()
}

/// The canonical link of a status when the source gives none.
pub(crate) fn status_url(author: &str, id: u64) -> String {
    match author.strip_prefix('@') {
        Some(handle) if !handle.is_empty() => format!("https://x.com/{handle}/status/{id}"),
        _ => format!("https://x.com/i/status/{id}"),
    }
}

fn decode_utf8<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str> {
    // Editors on some systems start UTF-8 files with a byte-order mark; it is not content.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Error::Corpus {
            path: path.to_path_buf(),
            line,
            msg: "invalid UTF-8".into(),
        }
    })
}

/// Parses a status id given as text ("1478128891520688128").
pub(crate) fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Serializes ids as JSON strings: 19-digit ids do not survive JavaScript's doubles.
pub(crate) mod id_as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_id(&s).ok_or_else(|| serde::de::Error::custom(format!("bad status id '{s}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/tweets.js")).unwrap(),
            Format::Archive
        );
        assert_eq!(
            Format::from_path(Path::new("x.JSONL")).unwrap(),
            Format::Jsonl
        );
        assert_eq!(
            Format::from_path(Path::new("x.txt")).unwrap(),
            Format::Bundled
        );
        let err = Format::from_path(Path::new("x.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.csv:0: cannot tell the format"), "{err}");
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = decode_utf8(Path::new("c.txt"), b"ok\nok\n\xff\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "c.txt:3: invalid UTF-8");
    }

    /// A byte-order mark is not content, in any format; read whole or line by line.
    #[test]
    fn a_byte_order_mark_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("c.jsonl", "{\"id\":\"1\",\"text\":\"hi\"}\n"),
            (
                "c.js",
                "window.YTD.tweets.part0 = [{\"tweet\":{\"id_str\":\"1\",\"full_text\":\"hi\",\"created_at\":\"Mon Jan 03 10:00:00 +0000 2022\"}}]",
            ),
        ];
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("\u{feff}{body}")).unwrap();
            let c = Corpus::load(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.tweets.len(), 1, "{name}");
            let streamed: Vec<Tweet> = Records::open(&path, None)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(streamed.len(), 1, "{name}");
        }
    }

    /// Records without text are left out, the same way whole or streamed; a file of nothing
    /// else has no tweets.
    #[test]
    fn records_without_text_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let lines = [
            r#"{"id":"1","text":"hello"}"#,
            r#"{"id":"3","text":""}"#,
            r#"{"id":"7","text":" \n "}"#,
            r#"{"id":"2","text":"cars"}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let c = Corpus::load(&path, None).unwrap();
        let ids: Vec<u64> = c.tweets.iter().map(|t| t.id).collect();
        assert_eq!(
            (ids, c.blank.clone(), c.entries),
            (vec![1, 2], vec![3, 7], 4)
        );
        assert_eq!(c.stats().without_text, 2);
        let streamed: Vec<u64> = Records::open(&path, None)
            .unwrap()
            .map(|r| r.unwrap().id)
            .collect();
        assert_eq!(streamed, vec![1, 2]);
        std::fs::write(&path, lines[1]).unwrap();
        let e = Corpus::load(&path, None).unwrap_err().to_string();
        assert!(
            e.contains("no tweets found (read as jsonl; 1 records without text)"),
            "{e}"
        );
    }

    #[test]
    fn entities_are_decoded() {
        assert_eq!(
            decode_entities("a &amp; b &gt; c &lt; d &#39;"),
            "a & b > c < d '"
        );
    }

    #[test]
    fn embedding_text_drops_reply_handles_and_links() {
        let t = |text: &str| {
            Tweet {
                id: 1,
                num: 1,
                author: String::new(),
                date: None,
                url: String::new(),
                metrics: Metrics::default(),
                is_reply: true,
                text: text.into(),
                translation: None,
            }
            .embedding_text()
        };
        assert_eq!(t("@a @b_c yes, see https://t.co/xyz here"), "yes, see here");
        assert_eq!(
            t("thanks @a for this\nnext https://t.co/q"),
            "thanks @a for this\nnext"
        );
        assert_eq!(t("@a https://t.co/xyz"), "@a https://t.co/xyz");
        assert_eq!(t("@ what"), "@ what");
    }

    #[test]
    fn urls_are_built_from_handles() {
        assert_eq!(
            status_url("@karpathy", 7),
            "https://x.com/karpathy/status/7"
        );
        assert_eq!(status_url("", 7), "https://x.com/i/status/7");
    }
}
