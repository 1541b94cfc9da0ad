//! The sentence encoder: BERT (candle-transformers) + attention-masked mean pooling + L2
//! normalisation, the same computation as sentence-transformers' all-MiniLM-L6-v2.
//!
//! Texts are tokenized without padding, sorted by length and batched, so each batch pads
//! only to its own longest text; results come back in input order.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::bert::Bert;
use super::model::{cached_sha256, ModelFiles};
use super::query::QueryModel;
use crate::error::{candle_message, Error, Result};

/// Texts per forward pass on the CPU. Larger batches waste work on padding even when sorted.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// Tokens per group on the CPU query path ([`Encoder::embed_each`]): enough rows that each
/// pass over a layer's weights serves many tokens, few enough that the rows stay in cache.
const GROUP_TOKENS: usize = 384;

/// Padded tokens per forward pass on a GPU: big enough to keep it busy, small enough that
/// a batch of 256-token texts (64 of them) still fits comfortably in memory.
pub const DEFAULT_GPU_BATCH_TOKENS: usize = 16_384;

/// How length-sorted texts are cut into forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// A fixed number of texts per batch.
    Texts(usize),
    /// As many texts as fit in this many padded tokens (texts × longest length), so short
    /// texts travel in big batches and long ones in small batches.
    Tokens(usize),
}

impl Batching {
    /// Cuts `lens` (sorted longest first) into consecutive batch sizes.
    fn plan(self, lens: &[usize]) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut i = 0;
        while i < lens.len() {
            let n = match self {
                Batching::Texts(n) => n.max(1),
                // The first text is the longest: it sets the padded length of the batch.
                Batching::Tokens(budget) => (budget / lens[i].max(1)).max(1),
            }
            .min(lens.len() - i);
            sizes.push(n);
            i += n;
        }
        sizes
    }
}

/// What identifies the vectors an encoder makes: two stores agree only if this agrees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIdentity {
    pub id: String,
    pub weights_sha256: String,
    pub dim: usize,
    pub max_seq_len: usize,
    pub pooling: Pooling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    Mean,
    Cls,
}

/// Where the encoder runs: `cpu`, `cuda`, `cuda:N`, or `auto` (CUDA when this build has it and
/// a GPU is present, else CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    #[default]
    Auto,
}

impl std::str::FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            "auto" => Ok(DeviceSpec::Auto),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| format!("'{s}' is not a device: use cpu, cuda, cuda:N or auto")),
        }
    }
}

impl DeviceSpec {
    fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            // A CUDA build on a machine without a usable GPU runs on the CPU.
            DeviceSpec::Auto if candle_core::utils::cuda_is_available() => {
                Ok(Device::new_cuda(0).unwrap_or(Device::Cpu))
            }
            DeviceSpec::Auto => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) if candle_core::utils::cuda_is_available() => Device::new_cuda(n)
                .map_err(|e| {
                    Error::Encoder(format!("cannot open GPU {n}: {}", candle_message(&e)))
                }),
            DeviceSpec::Cuda(_) if cfg!(feature = "cuda") => Err(Error::Encoder(
                "no CUDA GPU available: the driver (libcuda.so.1) is missing or reports no device"
                    .into(),
            )),
            DeviceSpec::Cuda(_) => Err(Error::Encoder(
                "this tweetsim was built without CUDA support: rebuild with `cargo build --release --features cuda`".into(),
            )),
        }
    }
}

/// Number format of weights and activations. Half precision is for GPUs; on the CPU f32 is
/// both faster and exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F32,
    F16,
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        })
    }
}

impl Precision {
    fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// Where and how to run the encoder; the default is `auto` device and its natural precision
/// (f32 on CPU, bf16 on CUDA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    pub device: DeviceSpec,
    pub precision: Option<Precision>,
    /// Default: [`DEFAULT_BATCH_SIZE`] texts on the CPU, [`DEFAULT_GPU_BATCH_TOKENS`] on a GPU.
    pub batching: Option<Batching>,
    /// CPU only: run this many batches at once, each single-threaded, instead of one batch
    /// at a time with every thread on each matrix product. Default 1.
    pub workers: Option<usize>,
}

impl Options {
    /// Whether the caller asked for candle's batches (a batch size or workers): otherwise
    /// CPU f32 texts go through the query path in unpadded groups, one group per core.
    fn wants_batches(&self) -> bool {
        self.batching.is_some() || self.workers.is_some()
    }
}

pub struct Encoder {
    /// candle's model: every batch, and single texts the query path does not take. With a
    /// query path, loaded on first need (a `similar` process never needs it).
    candle: OnceLock<std::result::Result<Bert, String>>,
    /// One short text at a time, read from the mapped weights (CPU, f32 only).
    query: Option<QueryModel>,
    weights: PathBuf,
    config: Config,
    tokenizer: Tokenizer,
    device: Device,
    identity: ModelIdentity,
    pad_id: u32,
    precision: Precision,
    batching: Batching,
    workers: usize,
    /// Texts in groups through the query path rather than in candle batches.
    each_text: bool,
    encoded: AtomicUsize,
}

#[derive(Deserialize)]
struct SentenceConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

impl Encoder {
    /// Loads config, tokenizer and memory-mapped weights with the default [`Options`].
    pub fn load(files: &ModelFiles) -> Result<Encoder> {
        Encoder::load_with(files, Options::default())
    }

    /// Loads config, tokenizer and weights onto the device and in the precision asked for.
    pub fn load_with(files: &ModelFiles, opts: Options) -> Result<Encoder> {
        let model_err = |path: &std::path::Path, msg: String| Error::Model {
            path: path.to_path_buf(),
            msg,
        };
        let config: Config = read_json(&files.config)?;
        let max_seq_len = match &files.sentence_config {
            Some(p) => read_json::<SentenceConfig>(p)?.max_seq_length,
            None => config.max_position_embeddings,
        }
        .min(config.max_position_embeddings);
        let pooling = match &files.pooling_config {
            Some(p) => {
                let c: PoolingConfig = read_json(p)?;
                match (c.pooling_mode_mean_tokens, c.pooling_mode_cls_token) {
                    (true, false) => Pooling::Mean,
                    (false, true) => Pooling::Cls,
                    _ => return Err(model_err(p, "only mean or CLS pooling is supported".into())),
                }
            }
            None => Pooling::Mean,
        };

        let device = opts.device.open()?;
        let precision = opts.precision.unwrap_or(if device.is_cuda() {
            Precision::Bf16
        } else {
            Precision::F32
        });
        // Parsing tokenizer.json and loading the weights are the two halves of start-up:
        // they run side by side. With a query path, candle's copy of the weights waits until
        // a batch needs it.
        let (tokenizer, query, loaded) = std::thread::scope(|s| {
            let tokenizer = s.spawn(|| load_tokenizer(&files.tokenizer, max_seq_len));
            let query = (device.is_cpu() && precision == Precision::F32)
                .then(|| QueryModel::map(&files.weights, &config))
                .flatten();
            let loaded = match query {
                Some(_) => Ok(None),
                None => load_candle(&files.weights, &config, precision, &device).map(Some),
            };
            (tokenizer.join(), query, loaded)
        });
        let tokenizer = tokenizer.unwrap_or_else(|_| {
            Err(model_err(
                &files.tokenizer,
                "the tokenizer failed to load".into(),
            ))
        })?;
        let each_text = query.is_some() && !opts.wants_batches();
        let candle = OnceLock::new();
        if let Some(model) = loaded.map_err(|msg| model_err(&files.weights, msg))? {
            let _ = candle.set(Ok(model));
        }
        let weights_sha256 =
            cached_sha256(&files.weights).map_err(|e| Error::io(&files.weights, e))?;
        Ok(Encoder {
            candle,
            query,
            weights: files.weights.clone(),
            tokenizer,
            device: device.clone(),
            identity: ModelIdentity {
                id: files.id.clone(),
                weights_sha256,
                dim: config.hidden_size,
                max_seq_len,
                pooling,
            },
            pad_id: config.pad_token_id as u32,
            config,
            precision,
            batching: opts.batching.unwrap_or(if device.is_cuda() {
                Batching::Tokens(DEFAULT_GPU_BATCH_TOKENS)
            } else {
                Batching::Texts(DEFAULT_BATCH_SIZE)
            }),
            workers: if device.is_cuda() {
                1
            } else {
                opts.workers.unwrap_or(1).max(1)
            },
            each_text,
            encoded: AtomicUsize::new(0),
        })
    }

    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    pub fn dim(&self) -> usize {
        self.identity.dim
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// `cpu` or `cuda:N`, for reports and the metadata of exported vectors.
    pub fn device_label(&self) -> String {
        match self.device.location() {
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
            candle_core::DeviceLocation::Cpu => "cpu".into(),
        }
    }

    /// How many texts this encoder has embedded since it was loaded.
    pub fn texts_encoded(&self) -> usize {
        self.encoded.load(Ordering::Relaxed)
    }

    /// Embeds `texts` into a row-major `texts.len() × dim` matrix of unit vectors.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<f32>> {
        self.embed_with_progress(texts, |_| {})
    }

    /// As [`Encoder::embed`], calling `progress(n)` after each batch of `n` texts.
    pub fn embed_with_progress(
        &self,
        texts: &[&str],
        progress: impl FnMut(usize),
    ) -> Result<Vec<f32>> {
        let tokens = self.tokenize(texts)?;
        self.embed_tokens(&tokens, progress)
    }

    /// Token ids of each text, truncated to the model's length. Separate from
    /// [`Encoder::embed_tokens`] so a pipeline can tokenize the next chunk on CPU threads
    /// while the device runs this one.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(Error::encoder)?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Embeds tokenized texts into a row-major `tokens.len() × dim` matrix of unit vectors,
    /// in input order, calling `progress(n)` after each batch of `n` texts.
    pub fn embed_tokens(
        &self,
        tokens: &[Vec<u32>],
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<f32>> {
        if self.each_text {
            return self.embed_each(tokens, progress);
        }
        if let [only] = tokens {
            if let Some(v) = self.embed_one(only) {
                self.encoded.fetch_add(1, Ordering::Relaxed);
                progress(1);
                return Ok(v);
            }
        }
        self.embed_batched(tokens, progress)
    }

    /// The CPU f32 path: texts through the query path unpadded, in groups of about
    /// [`GROUP_TOKENS`] tokens, one group per core. Small matrix products split across cores
    /// spend their time synchronising, whole groups per core do not; and a group's rows share
    /// each pass over the weights (same vectors as candle's batches to 1e-6). Texts the query
    /// path does not take go to candle in batches.
    fn embed_each(&self, tokens: &[Vec<u32>], mut progress: impl FnMut(usize)) -> Result<Vec<f32>> {
        use rayon::prelude::*;
        /// Texts between progress reports.
        const SLICE: usize = 256;
        let Some(query) = &self.query else {
            return self.embed_batched(tokens, progress);
        };
        let dim = self.dim();
        let mut out = vec![0f32; tokens.len() * dim];
        let (taken, refused): (Vec<usize>, Vec<usize>) =
            (0..tokens.len()).partition(|&i| query.takes(&tokens[i]));
        query.plan(taken.iter().map(|&i| tokens[i].len()).sum());
        for slice in taken.chunks(SLICE) {
            let mut groups: Vec<&[usize]> = Vec::new();
            let (mut start, mut size) = (0, 0);
            for (j, &i) in slice.iter().enumerate() {
                if size > 0 && size + tokens[i].len() > GROUP_TOKENS {
                    groups.push(&slice[start..j]);
                    (start, size) = (j, 0);
                }
                size += tokens[i].len();
            }
            groups.push(&slice[start..]);
            let rows: Vec<Option<Vec<f32>>> = groups
                .par_iter()
                .map(|g| {
                    let seqs: Vec<&[u32]> = g.iter().map(|&i| tokens[i].as_slice()).collect();
                    self.embed_group(query, &seqs)
                })
                .collect();
            for (g, rows) in groups.iter().zip(rows) {
                let rows = rows.expect("taken texts go through the query path");
                for (&i, v) in g.iter().zip(rows.chunks_exact(dim)) {
                    out[i * dim..(i + 1) * dim].copy_from_slice(v);
                }
            }
            self.encoded.fetch_add(slice.len(), Ordering::Relaxed);
            progress(slice.len());
        }
        if !refused.is_empty() {
            let rest: Vec<Vec<u32>> = refused.iter().map(|&i| tokens[i].clone()).collect();
            let rows = self.embed_batched(&rest, progress)?;
            for (&i, v) in refused.iter().zip(rows.chunks_exact(dim)) {
                out[i * dim..(i + 1) * dim].copy_from_slice(v);
            }
        }
        Ok(out)
    }

    /// Length-sorted batches through candle, on all threads or `workers` at a time.
    fn embed_batched(
        &self,
        tokens: &[Vec<u32>],
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<f32>> {
        let dim = self.dim();
        let mut out = vec![0f32; tokens.len() * dim];
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(tokens[i].len()));
        let lens: Vec<usize> = order.iter().map(|&i| tokens[i].len()).collect();
        let mut batches: Vec<&[usize]> = Vec::new();
        let mut start = 0;
        for n in self.batching.plan(&lens) {
            batches.push(&order[start..start + n]);
            start += n;
        }
        let mut place = |batch: &[usize], rows: &[f32]| {
            for (&i, row) in batch.iter().zip(rows.chunks_exact(dim)) {
                out[i * dim..(i + 1) * dim].copy_from_slice(row);
            }
            self.encoded.fetch_add(batch.len(), Ordering::Relaxed);
            progress(batch.len());
        };
        if self.workers <= 1 || batches.len() < 2 {
            let mut buffers = Buffers::default();
            for batch in &batches {
                let rows =
                    self.forward(batch.iter().map(|&i| tokens[i].as_slice()), &mut buffers)?;
                place(batch, &rows);
            }
        } else {
            self.forward_parallel(tokens, &batches, &mut place)?;
        }
        Ok(out)
    }

    /// Runs `batches` on `self.workers` threads, each in a one-thread rayon pool so candle's
    /// kernels inside it run single-threaded: small matrix products split across cores
    /// spend much of their time synchronising, whole batches per core do not.
    fn forward_parallel(
        &self,
        tokens: &[Vec<u32>],
        batches: &[&[usize]],
        place: &mut impl FnMut(&[usize], &[f32]),
    ) -> Result<()> {
        let next = AtomicUsize::new(0);
        let (tx, rx) = std::sync::mpsc::channel::<Result<(usize, Vec<f32>)>>();
        std::thread::scope(|scope| {
            for _ in 0..self.workers {
                let (tx, next) = (tx.clone(), &next);
                scope.spawn(move || {
                    let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                        Ok(p) => p,
                        Err(e) => return drop(tx.send(Err(Error::encoder(e)))),
                    };
                    pool.install(|| {
                        let mut buffers = Buffers::default();
                        loop {
                            let b = next.fetch_add(1, Ordering::Relaxed);
                            let Some(batch) = batches.get(b) else { return };
                            let seqs = batch.iter().map(|&i| tokens[i].as_slice());
                            let rows = self.forward(seqs, &mut buffers);
                            let failed = rows.is_err();
                            if tx.send(rows.map(|r| (b, r))).is_err() || failed {
                                return;
                            }
                        }
                    })
                });
            }
            drop(tx);
            for msg in rx {
                match msg {
                    Ok((b, rows)) => place(batches[b], &rows),
                    Err(e) => {
                        // Stop the others at their next batch.
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            Ok(())
        })
    }

    /// One text through the query path, pooled and normalised as [`Encoder::forward`] does;
    /// `None` when the path does not take it.
    fn embed_one(&self, ids: &[u32]) -> Option<Vec<f32>> {
        self.embed_group(self.query.as_ref()?, &[ids])
    }

    /// Texts run together through the query path, each pooled and normalised as
    /// [`Encoder::forward`] does: `seqs.len() × dim`, row-major.
    fn embed_group(&self, query: &QueryModel, seqs: &[&[u32]]) -> Option<Vec<f32>> {
        let hidden = query.forward(seqs)?;
        let dim = self.dim();
        let mut out = Vec::with_capacity(seqs.len() * dim);
        let mut rows = hidden.chunks_exact(dim);
        for ids in seqs {
            let mut v = match self.identity.pooling {
                Pooling::Mean => {
                    let mut sum = vec![0f32; dim];
                    for row in rows.by_ref().take(ids.len()) {
                        sum.iter_mut().zip(row).for_each(|(s, x)| *s += x);
                    }
                    let n = ids.len() as f32;
                    sum.iter_mut().for_each(|s| *s /= n);
                    sum
                }
                Pooling::Cls => {
                    let first = rows.next()?.to_vec();
                    rows.by_ref().take(ids.len() - 1).for_each(drop);
                    first
                }
            };
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
            out.extend(v);
        }
        Some(out)
    }

    /// candle's model, loaded on first use when the query path made it wait.
    fn candle(&self) -> Result<&Bert> {
        self.candle
            .get_or_init(|| load_candle(&self.weights, &self.config, self.precision, &self.device))
            .as_ref()
            .map_err(|msg| Error::Model {
                path: self.weights.clone(),
                msg: msg.clone(),
            })
    }

    /// One padded batch through BERT, pooled and normalised: `len × dim`, row-major.
    fn forward<'a>(
        &self,
        seqs: impl ExactSizeIterator<Item = &'a [u32]> + Clone,
        buffers: &mut Buffers,
    ) -> Result<Vec<f32>> {
        let b = seqs.len();
        let len = seqs.clone().map(<[u32]>::len).max().unwrap_or(0);
        let Buffers { ids, mask } = buffers;
        ids.clear();
        mask.clear();
        for s in seqs {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(self.pad_id, len - s.len()));
            mask.extend(std::iter::repeat_n(1u32, s.len()));
            mask.extend(std::iter::repeat_n(0u32, len - s.len()));
        }
        let e = Error::candle;
        let ids = Tensor::from_slice(ids, (b, len), &self.device).map_err(e)?;
        let mask = Tensor::from_slice(mask, (b, len), &self.device).map_err(e)?;
        // b × len × dim, pooled in f32 whatever the model's precision.
        let hidden = self
            .candle()?
            .forward(&ids, &mask)
            .and_then(|h| h.to_dtype(DType::F32))
            .map_err(e)?;
        let pooled = match self.identity.pooling {
            Pooling::Mean => {
                let m = mask
                    .to_dtype(DType::F32)
                    .map_err(e)?
                    .unsqueeze(2)
                    .map_err(e)?;
                let sum = hidden.broadcast_mul(&m).map_err(e)?.sum(1).map_err(e)?;
                sum.broadcast_div(&m.sum(1).map_err(e)?).map_err(e)?
            }
            Pooling::Cls => hidden.narrow(1, 0, 1).map_err(e)?.squeeze(1).map_err(e)?,
        };
        let norm = pooled
            .sqr()
            .and_then(|t| t.sum_keepdim(D::Minus1))
            .and_then(|t| t.sqrt())
            .and_then(|t| t.maximum(1e-12))
            .map_err(e)?;
        pooled
            .broadcast_div(&norm)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(e)
    }
}

/// Host-side id and mask arrays, reused across the batches of one call instead of
/// allocated per batch.
#[derive(Default)]
struct Buffers {
    ids: Vec<u32>,
    mask: Vec<u32>,
}

/// Parses `tokenizer.json`, set to pad per batch (we do) and truncate where
/// sentence-transformers does (the file ships fixed 128-token padding and truncation).
fn load_tokenizer(path: &std::path::Path, max_seq_len: usize) -> Result<Tokenizer> {
    let model_err = |msg: String| Error::Model {
        path: path.to_path_buf(),
        msg,
    };
    let mut tokenizer =
        Tokenizer::from_file(path).map_err(|e| model_err(format!("bad tokenizer: {e}")))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_seq_len,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| model_err(e.to_string()))?;
    Ok(tokenizer)
}

/// Maps the weights and loads them into candle tensors on the device, in `precision`.
fn load_candle(
    weights: &std::path::Path,
    config: &Config,
    precision: Precision,
    device: &Device,
) -> std::result::Result<Bert, String> {
    // SAFETY: the weights file is memory-mapped read-only; tweetsim never writes it and
    // the files live in model folders that are replaced, never edited, in place.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], precision.dtype(), device) }
        .map_err(|e| format!("cannot map weights: {}", candle_message(&e)))?;
    Bert::load(vb, config, weights)
        .map_err(|e| format!("not a BERT checkpoint: {}", candle_message(&e)))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Model {
        path: path.to_path_buf(),
        msg: format!("bad JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_budgets_size_batches_by_their_longest_text() {
        // Sorted longest first: a batch starting at a 100-token text holds 2 texts (padded to
        // 100), one starting at a 10-token text up to 20.
        let lens = [100, 100, 100, 10, 10, 10, 10];
        assert_eq!(Batching::Tokens(200).plan(&lens), vec![2, 2, 3]);
        assert_eq!(Batching::Tokens(50).plan(&lens), vec![1, 1, 1, 4]);
        assert_eq!(Batching::Texts(3).plan(&lens), vec![3, 3, 1]);
        // A text longer than the budget still gets a batch of its own.
        assert_eq!(Batching::Tokens(10).plan(&[300]), vec![1]);
        assert!(Batching::Tokens(10).plan(&[]).is_empty());
    }
}
