//! `tweetsim embed`: a corpus of any size → `OUT.npy` + `OUT.ids` + `OUT.meta.json`, in
//! chunks, in bounded memory, resumable after a kill.
//!
//! A reader thread parses and tokenizes chunk k+1 while the encoder runs chunk k. Each
//! finished chunk is appended to `OUT.npy.partial` / `OUT.ids.partial`, synced, and only then
//! counted in `OUT.progress.json` (replaced atomically). A rerun of the same job (same input
//! file, model, precision, chunk size) cuts the partial files back to what the progress file
//! vouches for and carries on; the final files appear by rename when every chunk is done.
//!
//! Rows follow the input's records, repeats included: deduplicating would need memory that
//! grows with the input. `tweetsim index --embeddings` keeps the first row of a repeated id,
//! as the corpus reader keeps the first record.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::{Instant, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::corpus::{Format, Records, Tweet, BUNDLED_NAME, EMBEDDING_TEXT_POLICY};
use crate::embed::{Encoder, ModelIdentity, Precision};
use crate::error::{Error, Result};
use crate::{fsutil, npy};

/// Tweets per chunk: the unit of memory, of tokenize/encode overlap, and of resumption.
pub const DEFAULT_CHUNK: usize = 16_384;

/// What to embed: a corpus file, or the bundled corpus when `path` is `None`.
pub struct Input<'a> {
    pub path: Option<&'a Path>,
    pub format: Option<Format>,
    /// Embed each record's text exactly as given, not [`Tweet::embedding_text`]: for
    /// comparing with other encoders on the same strings. A store will not take such vectors.
    pub verbatim: bool,
}

/// The `embedding_text` recorded for vectors of verbatim texts.
pub const VERBATIM: &str = "verbatim";

/// Describes vectors written by `tweetsim embed`, so they can be indexed on another machine
/// and checked against the files they came with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub rows: usize,
    pub dim: usize,
    pub model: ModelIdentity,
    pub embedding_text: String,
    pub precision: Precision,
    pub device: String,
    /// Where the rows came from (one row per record, in file order).
    pub input: String,
    /// xxh3-128 of the `.npy` and `.ids` files as written.
    pub npy_xxh3: String,
    pub ids_xxh3: String,
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub rows: usize,
    /// Rows a previous, interrupted run had already done.
    pub resumed: usize,
    pub seconds: f64,
    pub meta_path: PathBuf,
    pub ids_path: PathBuf,
}

/// The files of one output, final and in progress.
struct Paths {
    npy: PathBuf,
    ids: PathBuf,
    meta: PathBuf,
    npy_partial: PathBuf,
    ids_partial: PathBuf,
    progress: PathBuf,
}

impl Paths {
    fn new(out: &Path) -> Paths {
        let with = |suffix: &str| {
            let mut s = out.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        Paths {
            npy: out.to_path_buf(),
            ids: ids_path(out),
            meta: meta_path(out),
            npy_partial: with(".partial"),
            ids_partial: ids_path(out).with_extension("ids.partial"),
            progress: out.with_extension("progress.json"),
        }
    }
}

/// `big.npy` → `big.ids`: one status id per line, row order.
pub fn ids_path(npy: &Path) -> PathBuf {
    npy.with_extension("ids")
}

/// `big.npy` → `big.meta.json`.
pub fn meta_path(npy: &Path) -> PathBuf {
    npy.with_extension("meta.json")
}

/// Identifies the job a progress file belongs to; resuming anything else would mix vectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Job {
    input: String,
    input_size: u64,
    input_modified_ns: u64,
    model: ModelIdentity,
    embedding_text: String,
    precision: Precision,
    chunk: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    job: Job,
    rows: usize,
    ids_bytes: u64,
}

/// Embeds every record of `input` into `out` (a `.npy` path), `chunk` tweets at a time,
/// resuming an interrupted run of the same job; a `.parquet` path goes to [`embed_parquet`].
/// `progress(done, total)` follows the rows.
pub fn embed(
    input: &Input,
    out: &Path,
    chunk: usize,
    encoder: &Encoder,
    mut progress: impl FnMut(usize, usize),
) -> Result<Outcome> {
    let chunk = chunk.max(1);
    if is_parquet(out) {
        return embed_parquet(input, out, chunk, encoder, progress);
    }
    let started = Instant::now();
    let dim = encoder.dim();
    let paths = Paths::new(out);
    // Refused before any tweet is embedded, not after all of them.
    for p in [&paths.npy, &paths.ids, &meta_path(out)] {
        if p.is_dir() {
            return Err(Error::Invalid(format!(
                "{} is a folder; --out names the .npy file to write",
                p.display()
            )));
        }
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let job = Job {
        input: input_name(input),
        input_size: 0,
        input_modified_ns: 0,
        model: encoder.identity().clone(),
        embedding_text: embedding_text(input).to_string(),
        precision: encoder.precision(),
        chunk,
    }
    .stamped(input)?;
    let total = count_records(input)?;

    let resumed = resume_point(&paths, &job, dim);
    let (rows_done, ids_bytes) = resumed.as_ref().map_or((0, 0), |p| (p.rows, p.ids_bytes));
    let mut npy_file = open_partial(&paths.npy_partial, resumed.is_some())?;
    let mut ids_file = open_partial(&paths.ids_partial, resumed.is_some())?;
    let data_len = (npy::HEADER_LEN + rows_done * dim * 4) as u64;
    let io_npy = |e| Error::io(&paths.npy_partial, e);
    let io_ids = |e| Error::io(&paths.ids_partial, e);
    if resumed.is_none() {
        npy_file.write_all(&npy::header(0, dim)).map_err(io_npy)?;
    }
    npy_file.set_len(data_len).map_err(io_npy)?;
    npy_file.seek(SeekFrom::End(0)).map_err(io_npy)?;
    ids_file.set_len(ids_bytes).map_err(io_ids)?;
    ids_file.seek(SeekFrom::End(0)).map_err(io_ids)?;

    let mut state = Progress {
        job,
        rows: rows_done,
        ids_bytes,
    };
    progress(rows_done, total);
    let run = std::thread::scope(|scope| -> Result<()> {
        // One chunk waits while one is encoded: memory holds at most three chunks.
        let (tx, rx) = sync_channel::<Chunk>(1);
        scope.spawn(move || read_chunks(input, rows_done, chunk, encoder, tx));
        for msg in rx {
            let (tweets, tokens) = msg?;
            let ids: Vec<u64> = tweets.iter().map(|t| t.id).collect();
            let base = state.rows;
            let mut done = 0;
            let vectors = encoder.embed_tokens(&tokens, |n| {
                done += n;
                progress(base + done, total);
            })?;
            let mut w = std::io::BufWriter::new(&mut npy_file);
            npy::write_rows(&mut w, &vectors)
                .and_then(|_| w.flush())
                .map_err(io_npy)?;
            drop(w);
            npy_file.sync_data().map_err(io_npy)?;
            let lines: String = ids.iter().map(|id| format!("{id}\n")).collect();
            ids_file
                .write_all(lines.as_bytes())
                .and_then(|_| ids_file.sync_data())
                .map_err(io_ids)?;
            state.rows += ids.len();
            state.ids_bytes += lines.len() as u64;
            let json = serde_json::to_vec(&state).expect("progress serializes");
            fsutil::write_atomic(&paths.progress, &json)?;
        }
        Ok(())
    });
    // Nothing embedded: no partial files to resume from are left behind.
    let discard = || {
        for p in [&paths.npy_partial, &paths.ids_partial, &paths.progress] {
            let _ = fs::remove_file(p);
        }
    };
    if let Err(cause) = run {
        return Err(match state.rows {
            0 => {
                discard();
                cause
            }
            rows => Error::Interrupted {
                cause: Box::new(cause),
                rows,
                partial: paths.npy_partial.clone(),
            },
        });
    }
    if state.rows == 0 {
        discard();
        return Err(Error::Corpus {
            path: PathBuf::from(&state.job.input),
            line: 0,
            msg: "no tweets found".into(),
        });
    }

    // Complete: fix the row count in the header, then publish by rename.
    npy_file.seek(SeekFrom::Start(0)).map_err(io_npy)?;
    npy_file
        .write_all(&npy::header(state.rows, dim))
        .and_then(|_| npy_file.sync_all())
        .map_err(io_npy)?;
    drop((npy_file, ids_file));
    fs::rename(&paths.npy_partial, &paths.npy).map_err(|e| Error::io(&paths.npy, e))?;
    fs::rename(&paths.ids_partial, &paths.ids).map_err(|e| Error::io(&paths.ids, e))?;
    let job = state.job;
    seal(
        out,
        Meta {
            rows: state.rows,
            dim,
            model: job.model,
            embedding_text: job.embedding_text,
            precision: job.precision,
            device: encoder.device_label(),
            input: job.input,
            npy_xxh3: String::new(),
            ids_xxh3: String::new(),
        },
    )?;
    let _ = fs::remove_file(&paths.progress);
    Ok(Outcome {
        rows: state.rows,
        resumed: rows_done,
        seconds: started.elapsed().as_secs_f64(),
        meta_path: paths.meta,
        ids_path: paths.ids,
    })
}

/// Records of the input and their token ids, as the reader thread hands them on.
type Chunk = Result<(Vec<Tweet>, Vec<Vec<u32>>)>;

/// Reads `input` from record `skip` on, `chunk` records at a time, tokenized, into `tx`:
/// on its own thread, so the next chunk is ready when the encoder is.
fn read_chunks(
    input: &Input,
    skip: usize,
    chunk: usize,
    encoder: &Encoder,
    tx: std::sync::mpsc::SyncSender<Chunk>,
) {
    let mut records = match open_records(input) {
        Ok(r) => r.skip(skip),
        Err(e) => return drop(tx.send(Err(e))),
    };
    loop {
        let tweets: Result<Vec<Tweet>> = records.by_ref().take(chunk).collect();
        let msg = tweets.and_then(|tweets| {
            let texts: Vec<String> = match input.verbatim {
                true => tweets.iter().map(|t| t.text.clone()).collect(),
                false => tweets.iter().map(Tweet::embedding_text).collect(),
            };
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let tokens = encoder.tokenize(&refs)?;
            Ok((tweets, tokens))
        });
        let last = msg
            .as_ref()
            .map_or(true, |(tweets, _)| tweets.len() < chunk);
        if matches!(&msg, Ok((tweets, _)) if tweets.is_empty()) || tx.send(msg).is_err() || last {
            return;
        }
    }
}

/// Whether `path` names a Parquet file (by extension), rather than a `.npy` matrix.
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// `embed` into one Parquet file: each chunk becomes a row group of the tweets' columns and
/// their vectors, written beside the target and renamed into place when complete (a failed
/// or killed run leaves no file and any earlier one intact). Not resumable: a Parquet file
/// cannot be appended to once closed, so a rerun starts over.
fn embed_parquet(
    input: &Input,
    out: &Path,
    chunk: usize,
    encoder: &Encoder,
    mut progress: impl FnMut(usize, usize),
) -> Result<Outcome> {
    let started = Instant::now();
    if out.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is a folder; --out names the .parquet file to write",
            out.display()
        )));
    }
    let dim = encoder.dim();
    let total = count_records(input)?;
    let mut rows = 0;
    // The write closure can only fail with an I/O error; the real cause waits here.
    let mut failure: Option<Error> = None;
    let written = fsutil::write_atomic_with(out, |w| {
        let run = || -> Result<()> {
            let mut writer = crate::parquet::Writer::new(w, Some(dim))?;
            progress(0, total);
            std::thread::scope(|scope| -> Result<()> {
                let (tx, rx) = sync_channel::<Chunk>(1);
                scope.spawn(move || read_chunks(input, 0, chunk, encoder, tx));
                for msg in rx {
                    let (tweets, tokens) = msg?;
                    let base = rows;
                    let mut done = 0;
                    let vectors = encoder.embed_tokens(&tokens, |n| {
                        done += n;
                        progress(base + done, total);
                    })?;
                    writer.write(&tweets, &vectors)?;
                    rows += tweets.len();
                }
                Ok(())
            })?;
            if rows == 0 {
                return Err(Error::Corpus {
                    path: PathBuf::from(input_name(input)),
                    line: 0,
                    msg: "no tweets found".into(),
                });
            }
            let meta = Meta {
                rows,
                dim,
                model: encoder.identity().clone(),
                embedding_text: embedding_text(input).into(),
                precision: encoder.precision(),
                device: encoder.device_label(),
                input: input_name(input),
                npy_xxh3: String::new(),
                ids_xxh3: String::new(),
            };
            writer.finish(Some(serde_json::to_string(&meta).expect("meta serializes")))?;
            Ok(())
        };
        run().map_err(|e| {
            failure = Some(e);
            std::io::Error::other("stopped")
        })
    });
    if let Some(e) = failure {
        return Err(e);
    }
    written?;
    Ok(Outcome {
        rows,
        resumed: 0,
        seconds: started.elapsed().as_secs_f64(),
        meta_path: out.to_path_buf(),
        ids_path: out.to_path_buf(),
    })
}

/// How the input's text becomes encoder input, as recorded with the vectors.
fn embedding_text(input: &Input) -> &'static str {
    if input.verbatim {
        VERBATIM
    } else {
        EMBEDDING_TEXT_POLICY
    }
}

/// Vectors as [`read`] returns them.
#[derive(Debug, Clone)]
pub struct Exported {
    /// Row-major `ids.len() × dim`.
    pub vectors: Vec<f32>,
    pub dim: usize,
    /// Status id of each row (repeats possible: one row per input record).
    pub ids: Vec<u64>,
    /// From `.meta.json`, when the vectors came with one.
    pub meta: Option<Meta>,
}

/// Writes `meta` for the finished `npy` and its `.ids`, with their checksums filled in. The
/// last step of an export: a crash before it leaves files that [`read`] refuses.
pub fn seal(npy: &Path, mut meta: Meta) -> Result<()> {
    meta.npy_xxh3 = file_hash(npy)?;
    meta.ids_xxh3 = file_hash(&ids_path(npy))?;
    let json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
    fsutil::write_atomic(&meta_path(npy), &json)
}

/// Reads vectors written by [`embed`] (or by any tool, given a `.ids` file): the matrix,
/// its ids in row order, and the metadata when there is a `.meta.json` beside it, checked
/// against both files.
pub fn read(npy_path: &Path) -> Result<Exported> {
    if is_parquet(npy_path) {
        return read_parquet(npy_path);
    }
    let ids_path = ids_path(npy_path);
    let meta_path = meta_path(npy_path);
    let meta: Option<Meta> = match fs::read(&meta_path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            Error::Invalid(format!(
                "{}: not tweetsim metadata ({e})",
                meta_path.display()
            ))
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&meta_path, e)),
    };
    if let Some(m) = &meta {
        for (path, want) in [(npy_path, &m.npy_xxh3), (&ids_path, &m.ids_xxh3)] {
            if &file_hash(path)? != want {
                return Err(Error::Invalid(format!(
                    "{} does not match {} (checksum differs): rerun `tweetsim embed`",
                    path.display(),
                    meta_path.display()
                )));
            }
        }
    }
    let (data, rows, dim) = npy::read(npy_path)?;
    let text = fs::read_to_string(&ids_path).map_err(|e| Error::io(&ids_path, e))?;
    let ids = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            l.trim().parse::<u64>().map_err(|_| Error::Corpus {
                path: ids_path.clone(),
                line: i + 1,
                msg: format!("'{l}' is not a status id"),
            })
        })
        .collect::<Result<Vec<u64>>>()?;
    if ids.len() != rows {
        return Err(Error::Invalid(format!(
            "{} has {} ids for the {rows} rows of {}",
            ids_path.display(),
            ids.len(),
            npy_path.display()
        )));
    }
    Ok(Exported {
        vectors: data,
        dim,
        ids,
        meta,
    })
}

/// The vectors of a Parquet file's `embedding` column, its ids, and the metadata tweetsim
/// wrote into its footer (absent in files other tools wrote).
fn read_parquet(path: &Path) -> Result<Exported> {
    let v = crate::parquet::read_vectors(path)?;
    let meta = v
        .meta
        .map(|json| {
            serde_json::from_str::<Meta>(&json).map_err(|e| {
                Error::Invalid(format!(
                    "{}: its '{}' metadata is not tweetsim's ({e})",
                    path.display(),
                    crate::parquet::META_KEY
                ))
            })
        })
        .transpose()?;
    if let Some(m) = meta
        .as_ref()
        .filter(|m| m.rows != v.ids.len() || m.dim != v.dim)
    {
        return Err(Error::Invalid(format!(
            "{}: holds {} rows × {}, its metadata says {} × {}",
            path.display(),
            v.ids.len(),
            v.dim,
            m.rows,
            m.dim
        )));
    }
    Ok(Exported {
        vectors: v.vectors,
        dim: v.dim,
        ids: v.ids,
        meta,
    })
}

impl Job {
    /// Adds the input's size and modification time: an edited input starts over.
    fn stamped(mut self, input: &Input) -> Result<Job> {
        match input.path {
            Some(path) => {
                let md = fs::metadata(path).map_err(|e| Error::io(path, e))?;
                self.input_size = md.len();
                self.input_modified_ns = md
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as u64);
            }
            None => self.input_size = crate::corpus::Corpus::bundled_text().len() as u64,
        }
        Ok(self)
    }
}

fn input_name(input: &Input) -> String {
    match input.path {
        Some(p) => fs::canonicalize(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string(),
        None => BUNDLED_NAME.to_string(),
    }
}

fn open_records(input: &Input) -> Result<Records> {
    match input.path {
        Some(p) => Records::open(p, input.format),
        None => Ok(Records::bundled()),
    }
}

/// Records in the input, for the progress bar. JSON Lines are counted without parsing.
fn count_records(input: &Input) -> Result<usize> {
    let format = match (input.path, input.format) {
        (None, _) => return Ok(Records::bundled().count()),
        (Some(_), Some(f)) => f,
        (Some(p), None) => Format::from_path(p)?,
    };
    let path = input.path.expect("a file input");
    if format == Format::Parquet {
        // From the footer: rows without text are in it, so the bar may end a little short.
        return Ok(crate::parquet::Rows::open(path)?.total());
    }
    if format != Format::Jsonl {
        return Records::open(path, Some(format))?.try_fold(0, |n, r| r.map(|_| n + 1));
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (mut n, mut line) = (0, Vec::new());
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(n),
            Ok(_) => n += usize::from(line.iter().any(|b| !b.is_ascii_whitespace())),
            Err(e) => return Err(Error::io(path, e)),
        }
    }
}

/// The progress of an interrupted run of this job, if its partial files hold at least
/// what it claims (they may hold more: a chunk written but not yet counted).
fn resume_point(paths: &Paths, job: &Job, dim: usize) -> Option<Progress> {
    let p: Progress = serde_json::from_slice(&fs::read(&paths.progress).ok()?).ok()?;
    let len = |path: &Path| fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let needed = (npy::HEADER_LEN + p.rows * dim * 4) as u64;
    (p.job == *job && len(&paths.npy_partial) >= needed && len(&paths.ids_partial) >= p.ids_bytes)
        .then_some(p)
}

fn open_partial(path: &Path, keep: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(!keep)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

fn file_hash(path: &Path) -> Result<String> {
    fsutil::xxh3_file(path).map(|(_, h)| h)
}
