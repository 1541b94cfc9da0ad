//! A generation's tweets, readable without parsing them all: `tweets.jsonl` (one tweet per
//! line, the record users can read) beside `tweets.idx`, a binary table of where each line
//! starts and of the fields searches look at for every row (id, date, likes, reply, thread).
//!
//! Both files are memory-mapped; a search parses only the lines of the tweets it prints. At a
//! million tweets, parsing every line took most of the 2 s a `similar` process spent opening
//! the store.
//!
//! `tweets.idx`, little-endian, `n` rows:
//!
//! ```text
//! magic    8 bytes  "TSIDX002"
//! n        u64
//! offsets  (n + 1) × u64   where each line of tweets.jsonl starts; the last is its length
//! ids      n × u64         status id of each row
//! likes    n × u64
//! by_id    n × u32         rows ordered by (id, row), for lookups by id
//! dates    n × i32         days since 0001-01-01, i32::MIN when unknown
//! flags    n × u8          bit 0: a reply
//! previous n × u32         row of the previous part of its thread, u32::MAX for none
//! next     n × u32         row of the next part of its thread, u32::MAX for none
//! ```
//!
//! A `tweets.idx` of an older layout (`TSIDX001`, no thread columns) is rebuilt in memory
//! from the lines when opened, like a missing one.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};

use crate::corpus::{threads, Tweet};
use crate::fsutil;

pub(super) const JSONL: &str = "tweets.jsonl";
pub(super) const IDX: &str = "tweets.idx";
const MAGIC: &[u8; 8] = b"TSIDX002";
/// No thread link.
const NONE: u32 = u32::MAX;
const NO_DATE: i32 = i32::MIN;

/// The tweets of one generation, in file row order.
pub(super) struct Table {
    jsonl: Bytes,
    idx: Bytes,
    n: usize,
    /// Every row parsed, on first need (topic reports, updates, exports).
    all: OnceLock<Result<Vec<Tweet>, String>>,
}

/// Column starts within `tweets.idx`.
struct Layout {
    offsets: usize,
    ids: usize,
    likes: usize,
    by_id: usize,
    dates: usize,
    flags: usize,
    previous: usize,
    next: usize,
    len: usize,
}

impl Layout {
    fn of(n: usize) -> Layout {
        let offsets = 16;
        let ids = offsets + 8 * (n + 1);
        let likes = ids + 8 * n;
        let by_id = likes + 8 * n;
        let dates = by_id + 4 * n;
        let flags = dates + 4 * n;
        let previous = flags + n;
        let next = previous + 4 * n;
        Layout {
            offsets,
            ids,
            likes,
            by_id,
            dates,
            flags,
            previous,
            next,
            len: next + 4 * n,
        }
    }
}

impl Table {
    /// Maps the tweets of the generation in `dir`, which must hold `rows` of them. Stores
    /// written before `tweets.idx` existed, or before its current layout, are parsed whole
    /// here and get the table in memory.
    pub fn open(dir: &Path, rows: usize) -> Result<Table, String> {
        let jsonl = map_bytes(&dir.join(JSONL))?;
        let idx_path = dir.join(IDX);
        let idx = match idx_path.exists() {
            true => Some(map_bytes(&idx_path)?),
            false => None,
        };
        match idx {
            Some(idx) if !older_layout(&idx) => Table::new(jsonl, idx, rows),
            _ => {
                let (tweets, offsets) = parse_all(&jsonl)?;
                let idx = Bytes::Owned(encode(&tweets, &offsets));
                let table = Table::new(jsonl, idx, rows)?;
                let _ = table.all.set(Ok(tweets));
                Ok(table)
            }
        }
    }

    /// Checks the table's shape against the lines it indexes (cheap: one pass over the
    /// offsets), so that no later access can fall outside either file.
    fn new(jsonl: Bytes, idx: Bytes, rows: usize) -> Result<Table, String> {
        let bad = |what: String| Err(format!("{IDX} is corrupt ({what})"));
        if idx.len() < 16 || &idx[..8] != MAGIC {
            return bad("no header".into());
        }
        let n = u64::from_le_bytes(idx[8..16].try_into().expect("8 bytes"));
        if n != rows as u64 {
            return bad(format!("{n} rows, the store has {rows}"));
        }
        if idx.len() != Layout::of(rows).len {
            return bad(format!(
                "{} bytes for {rows} rows, expected {}",
                idx.len(),
                Layout::of(rows).len
            ));
        }
        let table = Table {
            jsonl,
            idx,
            n: rows,
            all: OnceLock::new(),
        };
        let mut last = 0;
        for r in 0..=rows {
            let at = table.offset(r);
            if at < last || (r == 0 && at != 0) {
                return bad(format!("line {} starts before line {r}", r + 1));
            }
            last = at;
        }
        if last != table.jsonl.len() {
            return bad(format!(
                "its lines end at byte {last}, {JSONL} has {}",
                table.jsonl.len()
            ));
        }
        Ok(table)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn id(&self, row: usize) -> u64 {
        self.u64_at(Layout::of(self.n).ids + 8 * row)
    }

    pub fn likes(&self, row: usize) -> u64 {
        self.u64_at(Layout::of(self.n).likes + 8 * row)
    }

    pub fn date(&self, row: usize) -> Option<NaiveDate> {
        let at = Layout::of(self.n).dates + 4 * row;
        let days = i32::from_le_bytes(self.idx[at..at + 4].try_into().expect("4 bytes"));
        (days != NO_DATE)
            .then(|| NaiveDate::from_num_days_from_ce_opt(days))
            .flatten()
    }

    pub fn is_reply(&self, row: usize) -> bool {
        self.idx[Layout::of(self.n).flags + row] & 1 == 1
    }

    /// The row of the previous part of `row`'s thread, and of the next.
    pub fn thread_links(&self, row: usize) -> (Option<usize>, Option<usize>) {
        let layout = Layout::of(self.n);
        let at = |column: usize| {
            let at = column + 4 * row;
            let r = u32::from_le_bytes(self.idx[at..at + 4].try_into().expect("4 bytes"));
            // A damaged table may name rows out of range: those are no link.
            (r != NONE && (r as usize) < self.n).then_some(r as usize)
        };
        (at(layout.previous), at(layout.next))
    }

    /// The rows holding status `id` (more than one when tombstones keep an older version).
    pub fn rows_of(&self, id: u64) -> impl Iterator<Item = usize> + '_ {
        let by_id = move |i: usize| {
            let at = Layout::of(self.n).by_id + 4 * i;
            u32::from_le_bytes(self.idx[at..at + 4].try_into().expect("4 bytes")) as usize
        };
        // A damaged table may name rows out of range: those are skipped, never indexed.
        let key = move |i: usize| {
            let r = by_id(i);
            (r < self.n).then(|| self.id(r))
        };
        let (mut lo, mut hi) = (0, self.n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key(mid).is_some_and(|k| k < id) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.n)
            .map_while(move |i| (key(i) == Some(id)).then(|| by_id(i)))
            .filter(move |&r| r < self.n)
    }

    /// One row's tweet, parsed from its line.
    pub fn tweet(&self, row: usize) -> Result<Tweet, String> {
        if let Some(Ok(all)) = self.all.get() {
            return Ok(all[row].clone());
        }
        let line = &self.jsonl[self.offset(row)..self.offset(row + 1)];
        let t = parse_line(line, row)?;
        if t.id != self.id(row) {
            return Err(format!(
                "{IDX} says row {} is tweet {}, {JSONL} says {}",
                row + 1,
                self.id(row),
                t.id
            ));
        }
        Ok(t)
    }

    /// Every row's tweet, parsed on all cores the first time.
    pub fn all(&self) -> Result<&[Tweet], String> {
        self.all
            .get_or_init(|| parse_all(&self.jsonl).map(|(tweets, _)| tweets))
            .as_deref()
            .map_err(Clone::clone)
    }

    fn offset(&self, row: usize) -> usize {
        self.u64_at(Layout::of(self.n).offsets + 8 * row) as usize
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.idx[at..at + 8].try_into().expect("8 bytes"))
    }
}

/// Writes `tweets` as the two files of a generation in `dir`.
pub(super) fn write(dir: &Path, tweets: &[Tweet]) -> std::io::Result<()> {
    let file = fs::File::create(dir.join(JSONL))?;
    let mut w = std::io::BufWriter::new(file);
    let mut offsets = Vec::with_capacity(tweets.len() + 1);
    let mut at = 0u64;
    let mut line = Vec::new();
    for t in tweets {
        offsets.push(at);
        line.clear();
        serde_json::to_writer(&mut line, t)?;
        line.push(b'\n');
        w.write_all(&line)?;
        at += line.len() as u64;
    }
    offsets.push(at);
    w.flush()?;
    fs::write(dir.join(IDX), encode(tweets, &offsets))
}

fn encode(tweets: &[Tweet], offsets: &[u64]) -> Vec<u8> {
    let n = tweets.len();
    let mut out = Vec::with_capacity(Layout::of(n).len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(n as u64).to_le_bytes());
    offsets.iter().for_each(|o| out.extend(o.to_le_bytes()));
    tweets.iter().for_each(|t| out.extend(t.id.to_le_bytes()));
    tweets
        .iter()
        .for_each(|t| out.extend(t.metrics.likes.to_le_bytes()));
    let mut by_id: Vec<u32> = (0..n as u32).collect();
    by_id.sort_by_key(|&r| (tweets[r as usize].id, r));
    by_id.iter().for_each(|r| out.extend(r.to_le_bytes()));
    tweets.iter().for_each(|t| {
        let days = t.date.map_or(NO_DATE, |d| d.num_days_from_ce());
        out.extend(days.to_le_bytes())
    });
    tweets.iter().for_each(|t| out.push(u8::from(t.is_reply)));
    let previous = threads::previous_parts(tweets);
    let mut next = vec![NONE; n];
    for (r, p) in previous.iter().enumerate() {
        if let Some(p) = p {
            next[*p] = r as u32;
        }
    }
    previous
        .iter()
        .for_each(|p| out.extend(p.map_or(NONE, |p| p as u32).to_le_bytes()));
    next.iter().for_each(|r| out.extend(r.to_le_bytes()));
    out
}

/// Whether a `tweets.idx` starts with the magic of an earlier layout.
fn older_layout(idx: &[u8]) -> bool {
    idx.starts_with(b"TSIDX") && idx.get(..8) != Some(&MAGIC[..])
}

/// Every line of a `tweets.jsonl`, parsed on all cores, with where each starts.
fn parse_all(body: &[u8]) -> Result<(Vec<Tweet>, Vec<u64>), String> {
    use rayon::prelude::*;
    let mut offsets = vec![0u64];
    offsets.extend(
        body.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i as u64 + 1),
    );
    if offsets.last() != Some(&(body.len() as u64)) {
        return Err(format!("{JSONL} does not end with a newline"));
    }
    let tweets = offsets
        .par_windows(2)
        .enumerate()
        .map(|(row, w)| parse_line(&body[w[0] as usize..w[1] as usize], row))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((tweets, offsets))
}

fn parse_line(line: &[u8], row: usize) -> Result<Tweet, String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice(line.strip_suffix(b"\r").unwrap_or(line))
        .map_err(|e| format!("{JSONL}:{}: {e}", row + 1))
}

/// A file's bytes: mapped, or built in memory for stores older than the file.
type Bytes = fsutil::Contents<u8>;

fn map_bytes(path: &Path) -> Result<Bytes, String> {
    let map = fsutil::map_immutable(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = map.len();
    Ok(Bytes::of(map, 0, len, |b| b[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Metrics;

    fn tweet(id: u64, date: Option<&str>, likes: u64, is_reply: bool, text: &str) -> Tweet {
        Tweet {
            id,
            num: 1,
            author: "@a".into(),
            date: date.map(|d| d.parse().unwrap()),
            url: format!("https://x.com/i/status/{id}"),
            metrics: Metrics {
                likes,
                ..Metrics::default()
            },
            is_reply,
            text: text.into(),
            translation: None,
        }
    }

    fn sample() -> Vec<Tweet> {
        vec![
            tweet(30, Some("2022-03-01"), 5, false, "first \"quoted\"\nline"),
            tweet(10, None, 0, true, "@b a reply ✓"),
            tweet(
                30,
                Some("0001-01-01"),
                u64::MAX,
                false,
                "an edit of the first",
            ),
            tweet(20, Some("2022-12-31"), 7, false, ""),
        ]
    }

    #[test]
    fn columns_and_lines_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let tweets = sample();
        write(dir.path(), &tweets).unwrap();
        let t = Table::open(dir.path(), tweets.len()).unwrap();
        assert!(t.all.get().is_none(), "nothing parsed on open");
        for (r, w) in tweets.iter().enumerate() {
            assert_eq!(t.id(r), w.id);
            assert_eq!(t.date(r), w.date);
            assert_eq!(t.likes(r), w.metrics.likes);
            assert_eq!(t.is_reply(r), w.is_reply);
            assert_eq!(&t.tweet(r).unwrap(), w);
        }
        assert_eq!(t.rows_of(30).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(t.rows_of(10).collect::<Vec<_>>(), [1]);
        assert_eq!(t.rows_of(20).collect::<Vec<_>>(), [3]);
        assert_eq!(t.rows_of(15).count(), 0);
        assert_eq!(t.rows_of(u64::MAX).count(), 0);
        assert_eq!(t.all().unwrap(), &tweets[..]);
    }

    /// Stores written before `tweets.idx` get the same table, built from the lines.
    #[test]
    fn a_missing_index_is_built_from_the_lines() {
        let dir = tempfile::tempdir().unwrap();
        let tweets = sample();
        write(dir.path(), &tweets).unwrap();
        let written = fs::read(dir.path().join(IDX)).unwrap();
        fs::remove_file(dir.path().join(IDX)).unwrap();
        let t = Table::open(dir.path(), tweets.len()).unwrap();
        assert_eq!(&t.idx[..], &written[..]);
        assert_eq!(t.tweet(2).unwrap(), tweets[2]);
    }

    #[test]
    fn thread_links_read_back_and_an_older_layout_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        // Two parts of a thread posted a second apart, in reverse file order, and a reply to
        // someone else.
        let ms = |ms: u64| threads::id_posted_at(1_660_000_000_000 + ms) + 1;
        let tweets = vec![
            tweet(ms(1_000), None, 0, true, "2/ the rest"),
            tweet(ms(0), None, 0, false, "1/ a thread"),
            tweet(ms(1_500), None, 0, true, "@b hi"),
        ];
        write(dir.path(), &tweets).unwrap();
        let t = Table::open(dir.path(), 3).unwrap();
        assert_eq!(t.thread_links(0), (Some(1), None));
        assert_eq!(t.thread_links(1), (None, Some(0)));
        assert_eq!(t.thread_links(2), (None, None));

        // TSIDX001 had no thread columns: rebuilt from the lines, links included.
        let written = fs::read(dir.path().join(IDX)).unwrap();
        let mut old = written[..Layout::of(3).previous].to_vec();
        old[..8].copy_from_slice(b"TSIDX001");
        fs::write(dir.path().join(IDX), old).unwrap();
        let t = Table::open(dir.path(), 3).unwrap();
        assert_eq!(&t.idx[..], &written[..]);
        assert_eq!(t.thread_links(0), (Some(1), None));
    }

    #[test]
    fn a_damaged_index_is_refused_or_caught_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let tweets = sample();
        write(dir.path(), &tweets).unwrap();
        let idx = fs::read(dir.path().join(IDX)).unwrap();
        let open_with = |bytes: Vec<u8>, rows: usize| {
            fs::write(dir.path().join(IDX), bytes).unwrap();
            Table::open(dir.path(), rows)
        };
        let err = |r: Result<Table, String>| r.err().unwrap();
        assert!(err(open_with(idx.clone(), 3)).contains("4 rows, the store has 3"));
        assert!(err(open_with(idx[..idx.len() - 1].to_vec(), 4)).contains("bytes for 4 rows"));
        let mut swapped = idx.clone();
        swapped[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes()); // line 2 starts past line 3
        assert!(err(open_with(swapped, 4)).contains("starts before"));
        // Two lines' offsets shifted consistently: the shape passes, the parse does not.
        let mut shifted = idx.clone();
        let second = u64::from_le_bytes(idx[24..32].try_into().unwrap());
        shifted[24..32].copy_from_slice(&(second + 3).to_le_bytes());
        let t = open_with(shifted, 4).unwrap();
        assert!(t.tweet(0).is_err() && t.tweet(1).is_err());
        // An id column that disagrees with the lines.
        let mut ids = idx;
        let at = Layout::of(4).ids;
        ids[at..at + 8].copy_from_slice(&99u64.to_le_bytes());
        let e = open_with(ids, 4).unwrap().tweet(0).err().unwrap();
        assert!(e.contains("row 1 is tweet 99"), "{e}");
    }
}
