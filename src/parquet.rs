//! Tweets and their vectors as Parquet, the columnar format Ray, Spark, pyarrow and Milvus's
//! bulk import read: one row per tweet with `id`, `text`, `created_at`, the counts,
//! `is_reply` and, when it holds vectors, `embedding` as `fixed_size_list<float32>[dim]`.
//!
//! The writer emits one row group per chunk it is given, so memory stays bounded however
//! large the input. The reader takes files tweetsim wrote and the usual variants other tools
//! write (ids as integers, dates as text or timestamps, vectors as plain lists), and refuses
//! anything else by column name and type before reading a row.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, FixedSizeListArray, Float32Array, Int64Array,
    RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::corpus::{Metrics, Tweet};
use crate::error::{Error, Result};

/// The column holding each tweet's vector.
pub const EMBEDDING: &str = "embedding";
/// The key of the file metadata that says which model made the vectors (JSON).
pub const META_KEY: &str = "tweetsim";
/// Rows decoded at a time while reading.
const READ_BATCH: usize = 8192;

/// The schema tweetsim writes; `dim` adds the embedding column.
pub fn schema(dim: Option<usize>) -> SchemaRef {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("created_at", DataType::Date32, true),
        Field::new("likes", DataType::Int64, false),
        Field::new("retweets", DataType::Int64, false),
        Field::new("replies", DataType::Int64, false),
        Field::new("is_reply", DataType::Boolean, false),
        Field::new("url", DataType::Utf8, false),
    ];
    if let Some(d) = dim {
        fields.push(Field::new(EMBEDDING, vector_type(d), false));
    }
    Arc::new(Schema::new(fields))
}

/// `fixed_size_list<float32>[dim]`, the type Ray Data and pyarrow give fixed-length vectors.
fn vector_type(dim: usize) -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new("item", DataType::Float32, false)),
        dim as i32,
    )
}

/// Writes tweets (and vectors) as Parquet into any writer, one row group per [`write`] call.
///
/// [`write`]: Writer::write
pub struct Writer<W: Write + Send> {
    inner: ArrowWriter<W>,
    schema: SchemaRef,
    dim: Option<usize>,
    rows: usize,
}

impl<W: Write + Send> Writer<W> {
    /// A writer of rows with vectors of `dim` dimensions, or of tweets alone.
    pub fn new(out: W, dim: Option<usize>) -> Result<Writer<W>> {
        let schema = schema(dim);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let inner = ArrowWriter::try_new(out, schema.clone(), Some(props))
            .map_err(|e| Error::Invalid(format!("parquet: {e}")))?;
        Ok(Writer {
            inner,
            schema,
            dim,
            rows: 0,
        })
    }

    /// Appends `tweets` (with their vectors, row-major, when the writer has a dimension) as
    /// one row group.
    pub fn write(&mut self, tweets: &[Tweet], vectors: &[f32]) -> Result<()> {
        let count = |f: fn(&Metrics) -> u64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(
                tweets
                    .iter()
                    .map(|t| f(&t.metrics).min(i64::MAX as u64) as i64),
            ))
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                tweets.iter().map(|t| t.id.to_string()),
            )),
            Arc::new(StringArray::from_iter_values(
                tweets.iter().map(|t| t.text.as_str()),
            )),
            Arc::new(Date32Array::from_iter(
                tweets.iter().map(|t| t.date.map(days_since_epoch)),
            )),
            count(|m| m.likes),
            count(|m| m.retweets),
            count(|m| m.replies),
            Arc::new(BooleanArray::from_iter(
                tweets.iter().map(|t| Some(t.is_reply)),
            )),
            Arc::new(StringArray::from_iter_values(
                tweets.iter().map(|t| t.url.as_str()),
            )),
        ];
        if let Some(d) = self.dim {
            if vectors.len() != tweets.len() * d {
                return Err(Error::Invalid(format!(
                    "parquet: {} values for {} rows of {d} dimensions",
                    vectors.len(),
                    tweets.len()
                )));
            }
            let values = Arc::new(Float32Array::from(vectors.to_vec()));
            let item = Arc::new(Field::new("item", DataType::Float32, false));
            let list = FixedSizeListArray::try_new(item, d as i32, values, None)
                .map_err(|e| Error::Invalid(format!("parquet: {e}")))?;
            columns.push(Arc::new(list));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::Invalid(format!("parquet: {e}")))?;
        self.inner
            .write(&batch)
            .and_then(|()| self.inner.flush())
            .map_err(|e| Error::Invalid(format!("parquet: {e}")))?;
        self.rows += tweets.len();
        Ok(())
    }

    /// Writes the footer, with `meta` (JSON) under [`META_KEY`]; returns the rows written.
    pub fn finish(mut self, meta: Option<String>) -> Result<usize> {
        if let Some(m) = meta {
            self.inner
                .append_key_value_metadata(KeyValue::new(META_KEY.to_string(), m));
        }
        self.inner
            .close()
            .map_err(|e| Error::Invalid(format!("parquet: {e}")))?;
        Ok(self.rows)
    }
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date")).num_days() as i32
}

/// Where each column the reader uses sits in the file's schema.
#[derive(Debug, Clone, Default)]
struct Columns {
    id: usize,
    text: usize,
    date: Option<usize>,
    counts: HashMap<&'static str, usize>,
    is_reply: Option<usize>,
    url: Option<usize>,
    author: Option<usize>,
    translation: Option<usize>,
    embedding: Option<(usize, usize)>,
}

/// Count columns read when present, as in JSON Lines.
const COUNTS: [&str; 6] = [
    "likes",
    "retweets",
    "replies",
    "quotes",
    "views",
    "bookmarks",
];

impl Columns {
    /// Checks the schema: `id` and `text` required; every known column of a usable type.
    fn of(path: &Path, schema: &Schema) -> Result<Columns> {
        let bad = |msg: String| Error::Corpus {
            path: path.to_path_buf(),
            line: 0,
            msg,
        };
        let find = |name: &str| schema.index_of(name).ok();
        let type_of = |i: usize| schema.field(i).data_type().clone();
        let wrong = |name: &str, i: usize, want: &str| {
            bad(format!(
                "column \"{name}\" is {}, expected {want}",
                type_of(i)
            ))
        };
        let text_like =
            |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        let int_like = |t: &DataType| {
            matches!(
                t,
                DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::UInt64
            )
        };
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let id = find("id").ok_or_else(|| {
            bad(format!(
                "no \"id\" column (columns: {}); a tweet table needs id and text",
                names.join(", ")
            ))
        })?;
        if !(text_like(&type_of(id)) || int_like(&type_of(id))) {
            return Err(wrong("id", id, "a string of digits or an integer"));
        }
        let text = find("text").ok_or_else(|| {
            bad(format!(
                "no \"text\" column (columns: {}); a tweet table needs id and text",
                names.join(", ")
            ))
        })?;
        if !text_like(&type_of(text)) {
            return Err(wrong("text", text, "a string"));
        }
        let optional_text = |name: &str| -> Result<Option<usize>> {
            match find(name) {
                Some(i) if !text_like(&type_of(i)) => Err(wrong(name, i, "a string")),
                other => Ok(other),
            }
        };
        let date = match find("created_at").or_else(|| find("date")) {
            Some(i) => match type_of(i) {
                DataType::Date32 | DataType::Timestamp(..) => Some(i),
                t if text_like(&t) => Some(i),
                _ => {
                    return Err(wrong(
                        schema.field(i).name(),
                        i,
                        "a date, a timestamp or a string",
                    ))
                }
            },
            None => None,
        };
        let mut counts = HashMap::new();
        for name in COUNTS {
            if let Some(i) = find(name) {
                if !int_like(&type_of(i)) {
                    return Err(wrong(name, i, "an integer"));
                }
                counts.insert(name, i);
            }
        }
        let is_reply = match find("is_reply") {
            Some(i) if type_of(i) != DataType::Boolean => {
                return Err(wrong("is_reply", i, "a boolean"))
            }
            other => other,
        };
        let embedding = match find(EMBEDDING) {
            None => None,
            Some(i) => {
                let dim = match type_of(i) {
                    DataType::FixedSizeList(item, d) if *item.data_type() == DataType::Float32 => {
                        Some(d as usize)
                    }
                    DataType::List(item) if *item.data_type() == DataType::Float32 => Some(0),
                    _ => None,
                };
                match dim {
                    Some(d) => Some((i, d)),
                    None => {
                        return Err(wrong(
                            EMBEDDING,
                            i,
                            "fixed_size_list<float32>[dim] or list<float32>",
                        ))
                    }
                }
            }
        };
        Ok(Columns {
            id,
            text,
            date,
            counts,
            is_reply,
            url: optional_text("url")?,
            author: optional_text("author")?,
            translation: optional_text("translation")?,
            embedding,
        })
    }
}

/// The rows of a Parquet file of tweets, one at a time, in bounded memory.
pub struct Rows {
    path: PathBuf,
    batches: ParquetRecordBatchReader,
    columns: Columns,
    batch: Option<RecordBatch>,
    /// Next row within `batch`.
    at: usize,
    /// Rows handed out so far.
    num: usize,
    /// Rows in the file, from its footer.
    total: usize,
    /// Vector length: from the schema, or (plain lists) from the first row.
    dim: Option<usize>,
    meta: Option<String>,
    /// Set once the file failed to decode: the reader cannot go on past a broken page, and
    /// would report the same failure forever.
    broken: bool,
}

impl Rows {
    pub fn open(path: &Path) -> Result<Rows> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let not_parquet = |e: parquet::errors::ParquetError| Error::Corpus {
            path: path.to_path_buf(),
            line: 0,
            msg: format!("not a readable Parquet file ({e})"),
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(not_parquet)?;
        let columns = Columns::of(path, builder.schema())?;
        let file_meta = builder.metadata().file_metadata();
        let total = file_meta.num_rows().max(0) as usize;
        let meta = file_meta
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == META_KEY))
            .and_then(|k| k.value.clone());
        let batches = builder
            .with_batch_size(READ_BATCH)
            .build()
            .map_err(not_parquet)?;
        Ok(Rows {
            path: path.to_path_buf(),
            dim: columns.embedding.and_then(|(_, d)| (d > 0).then_some(d)),
            batches,
            columns,
            batch: None,
            at: 0,
            num: 0,
            total,
            meta,
            broken: false,
        })
    }

    /// Rows in the file, blank ones included.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Whether the file has an embedding column.
    pub fn has_vectors(&self) -> bool {
        self.columns.embedding.is_some()
    }

    /// The file's tweetsim metadata (JSON), when tweetsim wrote it.
    pub fn meta(&self) -> Option<&str> {
        self.meta.as_deref()
    }

    /// The next row: its tweet, and its vector when the file has them.
    pub fn next_row(&mut self) -> Option<Result<(Tweet, Option<Vec<f32>>)>> {
        if self.broken {
            return None;
        }
        loop {
            if let Some(b) = self.batch.take().filter(|b| self.at < b.num_rows()) {
                let i = self.at;
                self.at += 1;
                self.num += 1;
                let row = self.row(&b, i);
                self.batch = Some(b);
                return Some(row);
            }
            match self.batches.next()? {
                Ok(b) => {
                    self.batch = Some(b);
                    self.at = 0;
                }
                Err(e) => {
                    self.broken = true;
                    return Some(Err(Error::Corpus {
                        path: self.path.clone(),
                        line: self.num + 1,
                        msg: format!("row {}: cannot be read ({e})", self.num + 1),
                    }));
                }
            }
        }
    }

    fn row(&mut self, b: &RecordBatch, i: usize) -> Result<(Tweet, Option<Vec<f32>>)> {
        let (num, path) = (self.num, self.path.clone());
        let err = |msg: String| Error::Corpus {
            path: path.clone(),
            line: num,
            msg: format!("row {num}: {msg}"),
        };
        let c = &self.columns;
        let id_col = b.column(c.id);
        if id_col.is_null(i) {
            return Err(err("\"id\" is empty".into()));
        }
        let id = match string(id_col, i) {
            Some(s) => crate::corpus::parse_id(s.trim()),
            None => unsigned(id_col, i),
        }
        .ok_or_else(|| err("\"id\" is not a status id".into()))?;
        let text = string(b.column(c.text), i).unwrap_or_default();
        let date = match c.date {
            None => None,
            Some(d) => date(b.column(d), i)
                .map_err(|v| err(format!("bad date '{v}', expected YYYY-MM-DD or RFC 3339")))?,
        };
        let mut counts = [0u64; 6];
        for (slot, name) in counts.iter_mut().zip(COUNTS) {
            if let Some(&col) = c.counts.get(name) {
                *slot = count(b.column(col), i)
                    .ok_or_else(|| err(format!("\"{name}\" is negative")))?;
            }
        }
        let author = c
            .author
            .and_then(|a| string(b.column(a), i))
            .unwrap_or_default()
            .to_string();
        let url = c
            .url
            .and_then(|u| string(b.column(u), i))
            .filter(|u| !u.is_empty())
            .map_or_else(|| crate::corpus::status_url(&author, id), str::to_string);
        let tweet = Tweet {
            id,
            num,
            url,
            author,
            date,
            metrics: Metrics {
                likes: counts[0],
                retweets: counts[1],
                replies: counts[2],
                quotes: counts[3],
                views: counts[4],
                bookmarks: counts[5],
            },
            is_reply: c
                .is_reply
                .is_some_and(|r| b.column(r).as_boolean().value(i) && !b.column(r).is_null(i)),
            text: crate::corpus::decode_entities(text),
            translation: c
                .translation
                .and_then(|t| string(b.column(t), i))
                .map(str::to_string),
        };
        let vector = match c.embedding {
            None => None,
            Some((col, _)) => Some(self.vector(b.column(col), i).map_err(err)?),
        };
        Ok((tweet, vector))
    }

    fn vector(&mut self, col: &ArrayRef, i: usize) -> std::result::Result<Vec<f32>, String> {
        if col.is_null(i) {
            return Err("\"embedding\" is empty".into());
        }
        let values = match col.data_type() {
            DataType::FixedSizeList(..) => col.as_fixed_size_list().value(i),
            _ => col.as_list::<i32>().value(i),
        };
        let floats = values.as_primitive::<Float32Type>();
        if floats.null_count() > 0 {
            return Err("\"embedding\" holds a null value".into());
        }
        let dim = *self.dim.get_or_insert(floats.len());
        if floats.len() != dim {
            return Err(format!(
                "\"embedding\" has {} values, earlier rows {dim}",
                floats.len()
            ));
        }
        Ok(floats.values().to_vec())
    }
}

impl Iterator for Rows {
    type Item = Result<Tweet>;

    fn next(&mut self) -> Option<Result<Tweet>> {
        self.next_row().map(|r| r.map(|(t, _)| t))
    }
}

/// The text of a string cell; `None` for a null.
fn string(col: &ArrayRef, i: usize) -> Option<&str> {
    if col.is_null(i) {
        return None;
    }
    match col.data_type() {
        DataType::Utf8 => Some(col.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Some(col.as_string::<i64>().value(i)),
        DataType::Utf8View => Some(col.as_string_view().value(i)),
        _ => None,
    }
}

/// A non-negative count (null reads as 0, as in JSON Lines); `None` for a negative one.
fn count(col: &ArrayRef, i: usize) -> Option<u64> {
    if col.is_null(i) {
        return Some(0);
    }
    unsigned(col, i)
}

/// An integer cell as a u64; `None` for a negative value or a non-integer column.
fn unsigned(col: &ArrayRef, i: usize) -> Option<u64> {
    match col.data_type() {
        DataType::Int64 => u64::try_from(col.as_primitive::<Int64Type>().value(i)).ok(),
        DataType::Int32 => u64::try_from(col.as_primitive::<Int32Type>().value(i)).ok(),
        DataType::UInt64 => Some(col.as_primitive::<UInt64Type>().value(i)),
        DataType::UInt32 => Some(col.as_primitive::<UInt32Type>().value(i) as u64),
        _ => None,
    }
}

/// A date cell: a date, a timestamp (its UTC day), or text as JSON Lines takes it.
fn date(col: &ArrayRef, i: usize) -> std::result::Result<Option<NaiveDate>, String> {
    if col.is_null(i) {
        return Ok(None);
    }
    let from_seconds = |s: i64| chrono::DateTime::from_timestamp(s, 0).map(|d| d.date_naive());
    let day = match col.data_type() {
        DataType::Date32 => {
            let days = col
                .as_primitive::<arrow_array::types::Date32Type>()
                .value(i);
            NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::Duration::days(days.into())))
        }
        DataType::Timestamp(unit, _) => {
            let per_second = match unit {
                TimeUnit::Second => 1,
                TimeUnit::Millisecond => 1_000,
                TimeUnit::Microsecond => 1_000_000,
                TimeUnit::Nanosecond => 1_000_000_000,
            };
            let v = match unit {
                TimeUnit::Second => col.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => col.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => col.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => col.as_primitive::<TimestampNanosecondType>().value(i),
            };
            from_seconds(v.div_euclid(per_second))
        }
        _ => {
            let s = string(col, i).unwrap_or_default();
            return crate::corpus::parse_date(s)
                .map(Some)
                .ok_or_else(|| s.to_string());
        }
    };
    day.map(Some).ok_or_else(|| "out of range".to_string())
}

/// Every vector of a Parquet file with an embedding column, with each row's id and the
/// file's tweetsim metadata: what `index --embeddings X.parquet` needs.
pub struct Vectors {
    /// Row-major `ids.len() × dim`.
    pub vectors: Vec<f32>,
    pub dim: usize,
    pub ids: Vec<u64>,
    pub meta: Option<String>,
}

pub fn read_vectors(path: &Path) -> Result<Vectors> {
    let mut rows = Rows::open(path)?;
    if !rows.has_vectors() {
        return Err(Error::Corpus {
            path: path.to_path_buf(),
            line: 0,
            msg: format!(
                "no \"{EMBEDDING}\" column: these are tweets without vectors (embed them with `tweetsim embed --corpus {} --out FILE.parquet`)",
                path.display()
            ),
        });
    }
    let (mut vectors, mut ids) = (Vec::new(), Vec::with_capacity(rows.total()));
    while let Some(row) = rows.next_row() {
        let (tweet, v) = row?;
        ids.push(tweet.id);
        vectors.extend(v.expect("the file has an embedding column"));
    }
    let dim = rows.dim.unwrap_or(0);
    if ids.is_empty() || dim == 0 {
        return Err(Error::Corpus {
            path: path.to_path_buf(),
            line: 0,
            msg: "no rows with vectors".into(),
        });
    }
    Ok(Vectors {
        vectors,
        dim,
        ids,
        meta: rows.meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tweet(id: u64, text: &str) -> Tweet {
        Tweet {
            id,
            num: 0,
            author: String::new(),
            date: NaiveDate::from_ymd_opt(2022, 7, 13),
            url: format!("https://x.com/i/status/{id}"),
            metrics: Metrics {
                likes: id * 10,
                retweets: 2,
                replies: 1,
                ..Metrics::default()
            },
            is_reply: id.is_multiple_of(2),
            text: text.to_string(),
            translation: None,
        }
    }

    /// Written in two row groups and read back: every field and vector as written.
    #[test]
    fn tweets_and_vectors_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let tweets: Vec<Tweet> = (1..=5)
            .map(|i| tweet(i, &format!("tweet {i} & co")))
            .collect();
        let vectors: Vec<f32> = (0..15).map(|v| v as f32 / 7.0).collect();
        let mut w = Writer::new(File::create(&path).unwrap(), Some(3)).unwrap();
        w.write(&tweets[..2], &vectors[..6]).unwrap();
        w.write(&tweets[2..], &vectors[6..]).unwrap();
        assert_eq!(w.finish(Some("{\"rows\": 5}".into())).unwrap(), 5);

        let mut rows = Rows::open(&path).unwrap();
        assert_eq!(rows.total(), 5);
        assert_eq!(rows.meta(), Some("{\"rows\": 5}"));
        let mut back = Vec::new();
        while let Some(r) = rows.next_row() {
            back.push(r.unwrap());
        }
        for (i, (t, v)) in back.iter().enumerate() {
            let want = &tweets[i];
            assert_eq!(
                (t.id, &t.text, t.date, t.metrics, t.is_reply, &t.url),
                (
                    want.id,
                    &want.text,
                    want.date,
                    want.metrics,
                    want.is_reply,
                    &want.url
                )
            );
            assert_eq!(v.as_deref(), Some(&vectors[i * 3..i * 3 + 3]));
        }
        let read = read_vectors(&path).unwrap();
        assert_eq!((read.dim, read.ids.len(), read.vectors), (3, 5, vectors));

        // Without vectors it is still a tweet table, and read_vectors says what is missing.
        let plain = dir.path().join("plain.parquet");
        let mut w = Writer::new(File::create(&plain).unwrap(), None).unwrap();
        w.write(&tweets, &[]).unwrap();
        w.finish(None).unwrap();
        assert_eq!(Rows::open(&plain).unwrap().count(), 5);
        let e = read_vectors(&plain).err().unwrap().to_string();
        assert!(e.contains("no \"embedding\" column"), "{e}");
    }

    /// Files that are not a tweet table are refused by column, before any row is read.
    #[test]
    fn foreign_schemas_and_broken_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, fields: Vec<(&str, ArrayRef)>| {
            let path = dir.path().join(name);
            let schema = Arc::new(Schema::new(
                fields
                    .iter()
                    .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
                    .collect::<Vec<_>>(),
            ));
            let batch =
                RecordBatch::try_new(schema.clone(), fields.into_iter().map(|f| f.1).collect())
                    .unwrap();
            let mut w = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            path
        };
        let ids: ArrayRef = Arc::new(StringArray::from(vec!["1", "2"]));
        let texts: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
        let err = |path: &Path| Rows::open(path).err().unwrap().to_string();

        let no_text = write("no-text.parquet", vec![("id", ids.clone())]);
        assert!(
            err(&no_text).contains("no \"text\" column"),
            "{}",
            err(&no_text)
        );
        let bad_likes = write(
            "likes.parquet",
            vec![
                ("id", ids.clone()),
                ("text", texts.clone()),
                ("likes", texts.clone()),
            ],
        );
        assert!(
            err(&bad_likes).contains("column \"likes\" is Utf8, expected an integer"),
            "{}",
            err(&bad_likes)
        );
        let bad_vec = write(
            "vec.parquet",
            vec![
                ("id", ids.clone()),
                ("text", texts.clone()),
                ("embedding", Arc::new(Int64Array::from(vec![1, 2]))),
            ],
        );
        assert!(
            err(&bad_vec).contains("column \"embedding\""),
            "{}",
            err(&bad_vec)
        );
        let bad_id = write(
            "id.parquet",
            vec![
                ("id", Arc::new(StringArray::from(vec!["1", "x2"]))),
                ("text", texts),
            ],
        );
        let rows: Vec<_> = Rows::open(&bad_id).unwrap().collect();
        let e = rows[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("row 2: \"id\" is not a status id"), "{e}");

        // Cut short: the footer is gone.
        let bytes = std::fs::read(&no_text).unwrap();
        let cut = dir.path().join("cut.parquet");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        assert!(
            err(&cut).contains("not a readable Parquet file"),
            "{}",
            err(&cut)
        );
    }
}
