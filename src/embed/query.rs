//! BERT on the CPU in f32, read straight from the memory-mapped weights: a `similar` query,
//! and every text of a batch, in unpadded groups of texts, one group per core (`Encoder`).
//!
//! A `similar "text"` process embeds a single query of a few tokens. Through candle that
//! meant copying 44 MB of weights out of the map into tensors on every start (~25 ms), then,
//! for each of the 36 matrix products, gemm packing the whole weight matrix to multiply it by
//! a handful of token rows (13–17 ms per query). Here every weight row is read in place, once,
//! and dotted with all the token rows ([`rows_dot`]: 4 × 4 blocks). The arithmetic is
//! candle-transformers' BERT layer for layer (same layer norm and softmax, the same exact erf
//! GELU to 1e-7 with a vectorised erf); only the order of additions differs, so vectors agree
//! with candle's batches to ~1e-6 (tested, with the sentence-transformers reference queries
//! as well). A group's texts run through each matrix product together, as one block of
//! token rows; for a large batch the weights are repacked once ([`Packed`]) and the products
//! are compute-bound rather than weight-bound.

use std::path::Path;
use std::sync::OnceLock;

use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};
use safetensors::{Dtype, SafeTensors};

use super::packed::Packed;
use crate::simd::{combine_rows, gelu, rows_dot, softmax};

/// Longest input taken this way: MiniLM's own limit, so every text it can see. Anything
/// longer (another model) goes to candle.
pub const MAX_TOKENS: usize = 256;

/// Tokens about to be embedded from which the layer matrices are repacked ([`Packed`], once
/// per process): packing MiniLM-L6 takes ~25 ms, what the packed product saves over ~200
/// tokens. Above the longest single text ([`MAX_TOKENS`]), so a `similar` query never pays it.
const PACK_TOKENS: usize = 512;

/// Rows of one forward pass from which the packed matrices are used, once made; a pass with
/// fewer is bound by reading the weights, which `rows_dot` does in place.
const PACKED_ROWS: usize = 64;

/// Where a tensor's f32 values lie in the mapped file.
#[derive(Clone, Copy)]
struct Span {
    at: usize,
    len: usize,
}

/// `y = x · Wᵀ + b`, `W` being `out × inp` row-major as checkpoints store it.
struct Dense {
    w: Span,
    b: Span,
    out: usize,
    inp: usize,
}

struct Norm {
    w: Span,
    b: Span,
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attn_out: Dense,
    attn_norm: Norm,
    up: Dense,
    down: Dense,
    out_norm: Norm,
}

/// Buffers of one forward pass, kept per thread: a group's activations run to megabytes,
/// and allocating them afresh for every layer cost a tenth of the time in page faults.
#[derive(Default)]
struct Scratch {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    attn: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
    /// One head's keys, transposed.
    keys: Vec<f32>,
    scores: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// A layer's six matrices repacked for many rows ([`Packed`]).
struct PackedLayer {
    query: Packed,
    key: Packed,
    value: Packed,
    attn_out: Packed,
    up: Packed,
    down: Packed,
}

pub struct QueryModel {
    map: memmap2::Mmap,
    /// Made by [`QueryModel::plan`] for a large enough batch; `None` where the CPU cannot.
    packed: OnceLock<Option<Vec<PackedLayer>>>,
    word: Span,
    position: Span,
    token_type: Span,
    norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    positions: usize,
    eps: f32,
}

impl QueryModel {
    /// Maps the weights; `None` when this checkpoint does not fit the fast path (another
    /// activation or position scheme, weights not f32, a tensor missing or misaligned), in
    /// which case every text goes through candle.
    pub fn map(weights: &Path, config: &Config) -> Option<QueryModel> {
        if config.hidden_act != HiddenAct::Gelu
            || config.position_embedding_type != PositionEmbeddingType::Absolute
            || config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return None;
        }
        let map = crate::fsutil::map_immutable(weights).ok()?;
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let (word, position, token_type, norm, layers) = {
            let st = SafeTensors::deserialize(&map).ok()?;
            let prefix = if st.names().iter().any(|n| n.starts_with("bert.")) {
                "bert."
            } else {
                ""
            };
            let span = |name: &str, shape: &[usize]| -> Option<Span> {
                let v = st.tensor(&format!("{prefix}{name}")).ok()?;
                if v.dtype() != Dtype::F32 || v.shape() != shape {
                    return None;
                }
                bytemuck::try_cast_slice::<u8, f32>(v.data()).ok()?;
                Some(Span {
                    at: v.data().as_ptr() as usize - map.as_ptr() as usize,
                    len: shape.iter().product(),
                })
            };
            let aliased = |name: &str, names: [&str; 2], size: usize| {
                names
                    .iter()
                    .find_map(|n| span(&format!("{name}.{n}"), &[size]))
            };
            let norm = |name: &str| -> Option<Norm> {
                Some(Norm {
                    w: aliased(name, ["weight", "gamma"], h)?,
                    b: aliased(name, ["bias", "beta"], h)?,
                })
            };
            let dense = |name: &str, out: usize, inp: usize| -> Option<Dense> {
                Some(Dense {
                    w: span(&format!("{name}.weight"), &[out, inp])?,
                    b: span(&format!("{name}.bias"), &[out])?,
                    out,
                    inp,
                })
            };
            let layers = (0..config.num_hidden_layers)
                .map(|l| {
                    let p = format!("encoder.layer.{l}");
                    Some(Layer {
                        query: dense(&format!("{p}.attention.self.query"), h, h)?,
                        key: dense(&format!("{p}.attention.self.key"), h, h)?,
                        value: dense(&format!("{p}.attention.self.value"), h, h)?,
                        attn_out: dense(&format!("{p}.attention.output.dense"), h, h)?,
                        attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                        up: dense(&format!("{p}.intermediate.dense"), i, h)?,
                        down: dense(&format!("{p}.output.dense"), h, i)?,
                        out_norm: norm(&format!("{p}.output.LayerNorm"))?,
                    })
                })
                .collect::<Option<Vec<Layer>>>()?;
            (
                span("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
                span(
                    "embeddings.position_embeddings.weight",
                    &[config.max_position_embeddings, h],
                )?,
                span(
                    "embeddings.token_type_embeddings.weight",
                    &[config.type_vocab_size, h],
                )?,
                norm("embeddings.LayerNorm")?,
                layers,
            )
        };
        // A query reads every layer weight: fault them in now, while the tokenizer loads on
        // the other core (not the word table: a query reads a few of its rows).
        #[cfg(target_os = "linux")]
        for l in &layers {
            for d in [&l.query, &l.key, &l.value, &l.attn_out, &l.up, &l.down] {
                let _ = map.advise_range(memmap2::Advice::PopulateRead, d.w.at, 4 * d.w.len);
            }
        }
        Some(QueryModel {
            map,
            packed: OnceLock::new(),
            word,
            position,
            token_type,
            norm,
            layers,
            hidden: h,
            heads: config.num_attention_heads,
            positions: config.max_position_embeddings,
            eps: config.layer_norm_eps as f32,
        })
    }

    /// Whether [`QueryModel::forward`] takes this token sequence (not empty, not too long,
    /// every id in the vocabulary).
    pub fn takes(&self, ids: &[u32]) -> bool {
        let vocab = self.word.len / self.hidden;
        !ids.is_empty()
            && ids.len() <= MAX_TOKENS.min(self.positions)
            && ids.iter().all(|&id| (id as usize) < vocab)
    }

    /// The last hidden states of token sequences run together (`Σ len × hidden`, row-major,
    /// in order): every matrix product takes all their rows at once, attention stays within
    /// each sequence. `None` if any sequence is not [taken](QueryModel::takes).
    pub fn forward(&self, seqs: &[&[u32]]) -> Option<Vec<f32>> {
        if seqs.is_empty() || !seqs.iter().all(|ids| self.takes(ids)) {
            return None;
        }
        let h = self.hidden;
        let rows: usize = seqs.iter().map(|ids| ids.len()).sum();
        let (word, position, token_type) = (
            self.f32s(self.word),
            self.f32s(self.position),
            self.f32s(self.token_type),
        );
        let mut x = Vec::with_capacity(rows * h);
        for ids in seqs {
            for (p, &id) in ids.iter().enumerate() {
                let row = &word[id as usize * h..(id as usize + 1) * h];
                let pos = &position[p * h..(p + 1) * h];
                x.extend((0..h).map(|d| row[d] + token_type[d] + pos[d]));
            }
        }
        self.layer_norm(&mut x, &self.norm);

        let packed = self
            .packed
            .get()
            .and_then(|p| p.as_deref())
            .filter(|_| rows >= PACKED_ROWS);
        SCRATCH.with_borrow_mut(|s| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F.
                return unsafe { self.layers_avx512(&mut x, seqs, packed, s) };
            }
            self.layers(&mut x, seqs, packed, s)
        });
        Some(x)
    }

    /// [`QueryModel::layers`] compiled for AVX-512 (chosen at run time): everything in a
    /// layer but the matrix products and GELU is plain loops, which the compiler vectorises
    /// for the target it compiles for.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn layers_avx512(
        &self,
        x: &mut [f32],
        seqs: &[&[u32]],
        packed: Option<&[PackedLayer]>,
        s: &mut Scratch,
    ) {
        self.layers(x, seqs, packed, s)
    }

    /// Every encoder layer over the rows of `seqs`, in place.
    #[inline(always)]
    fn layers(
        &self,
        x: &mut [f32],
        seqs: &[&[u32]],
        packed: Option<&[PackedLayer]>,
        s: &mut Scratch,
    ) {
        for (n, l) in self.layers.iter().enumerate() {
            self.layer(x, seqs, l, packed.map(|p| &p[n]), s);
        }
    }

    /// One encoder layer over the rows of `seqs`, in place.
    #[inline(always)]
    fn layer(
        &self,
        x: &mut [f32],
        seqs: &[&[u32]],
        l: &Layer,
        p: Option<&PackedLayer>,
        s: &mut Scratch,
    ) {
        let h = self.hidden;
        self.dense(x, &l.query, p.map(|p| &p.query), &mut s.q);
        self.dense(x, &l.key, p.map(|p| &p.key), &mut s.k);
        self.dense(x, &l.value, p.map(|p| &p.value), &mut s.v);
        s.ctx.clear();
        s.ctx.resize(x.len(), 0.0);
        let mut start = 0;
        for ids in seqs {
            let rows = start * h..(start + ids.len()) * h;
            attend(
                [&s.q[rows.clone()], &s.k[rows.clone()], &s.v[rows.clone()]],
                &mut s.ctx[rows],
                (h, self.heads),
                &mut s.keys,
                &mut s.scores,
            );
            start += ids.len();
        }
        self.dense(&s.ctx, &l.attn_out, p.map(|p| &p.attn_out), &mut s.attn);
        x.iter_mut().zip(&s.attn).for_each(|(a, b)| *a += b);
        self.layer_norm(x, &l.attn_norm);

        self.dense(x, &l.up, p.map(|p| &p.up), &mut s.up);
        gelu(&mut s.up);
        self.dense(&s.up, &l.down, p.map(|p| &p.down), &mut s.down);
        x.iter_mut().zip(&s.down).for_each(|(a, b)| *a += b);
        self.layer_norm(x, &l.out_norm);
    }

    /// Told that `tokens` tokens are about to be embedded: repacks the layer matrices for
    /// many-row products (once) if that is enough tokens to repay it.
    pub fn plan(&self, tokens: usize) {
        if tokens >= PACK_TOKENS {
            self.packed.get_or_init(|| self.pack());
        }
    }

    fn pack(&self) -> Option<Vec<PackedLayer>> {
        let pack = |d: &Dense| Packed::pack(self.f32s(d.w), self.f32s(d.b), d.out, d.inp);
        self.layers
            .iter()
            .map(|l| {
                Some(PackedLayer {
                    query: pack(&l.query)?,
                    key: pack(&l.key)?,
                    value: pack(&l.value)?,
                    attn_out: pack(&l.attn_out)?,
                    up: pack(&l.up)?,
                    down: pack(&l.down)?,
                })
            })
            .collect()
    }

    fn f32s(&self, s: Span) -> &[f32] {
        bytemuck::cast_slice(&self.map[s.at..s.at + 4 * s.len])
    }

    /// `y = x · Wᵀ + b`, into a reused buffer. Every weight row is read once, for all token
    /// rows at a time.
    #[inline(always)]
    fn dense(&self, x: &[f32], layer: &Dense, packed: Option<&Packed>, y: &mut Vec<f32>) {
        let (w, b) = (self.f32s(layer.w), self.f32s(layer.b));
        y.clear();
        y.resize(x.len() / layer.inp * layer.out, 0.0);
        match packed {
            Some(m) => m.mul(x, y),
            None => {
                rows_dot(x, w, layer.inp, y);
                for row in y.chunks_exact_mut(layer.out) {
                    row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
                }
            }
        }
    }

    #[inline(always)]
    fn layer_norm(&self, x: &mut [f32], norm: &Norm) {
        let (w, b) = (self.f32s(norm.w), self.f32s(norm.b));
        let h = self.hidden as f32;
        for row in x.chunks_exact_mut(self.hidden) {
            let mean = sum_by(row, |v| v) / h;
            let var = sum_by(row, |v| (v - mean) * (v - mean)) / h;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, &w), &b) in row.iter_mut().zip(w).zip(b) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

/// Self-attention within one sequence: `qkv` and `ctx` hold its rows (`n × hidden`, heads
/// side by side). Each head's keys are first copied out transposed, so that a query's scores
/// and its weighted sum of values are both [`combine_rows`]: multiply-adds along rows, none
/// across lanes (a 32-wide dot product per pair of tokens spent most of its time summing
/// across lanes).
#[inline(always)]
fn attend(
    [q, k, v]: [&[f32]; 3],
    ctx: &mut [f32],
    (h, heads): (usize, usize),
    keys: &mut Vec<f32>,
    scores: &mut Vec<f32>,
) {
    let n = q.len() / h;
    let d = h / heads;
    let scale = 1.0 / (d as f32).sqrt();
    keys.resize(d * n, 0.0);
    scores.resize(n, 0.0);
    for head in 0..heads {
        let cols = head * d..(head + 1) * d;
        for (j, row) in k.chunks_exact(h).enumerate() {
            for (c, &kv) in row[cols.clone()].iter().enumerate() {
                keys[c * n + j] = kv;
            }
        }
        for (qi, out) in q.chunks_exact(h).zip(ctx.chunks_exact_mut(h)) {
            combine_rows(&qi[cols.clone()], keys, n, scores);
            scores.iter_mut().for_each(|s| *s *= scale);
            softmax(scores);
            combine_rows(scores, &v[cols.start..], h, &mut out[cols.clone()]);
        }
    }
}

/// `Σ f(x)` over a slice in 16 interleaved partial sums, which the compiler keeps in one
/// vector register (a plain `sum()` must add in order, one element at a time).
#[inline(always)]
fn sum_by(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = xs.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for chunk in chunks {
        acc.iter_mut().zip(chunk).for_each(|(a, &x)| *a += f(x));
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};
    use std::collections::HashMap;

    /// A small random BERT (2 layers, 4 heads, 64 wide), saved as a checkpoint: the query path
    /// and candle's layers must give the same hidden states.
    #[test]
    fn matches_candle_on_a_random_model() {
        let config = Config {
            vocab_size: 50,
            hidden_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 128,
            max_position_embeddings: 80,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            ..Config::default()
        };
        let dev = Device::Cpu;
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        let mut add = |name: String, shape: &[usize], scale: f64, mean: f64| {
            let t = Tensor::randn(0f32, 1.0, shape, &dev)
                .and_then(|t| t.affine(scale, mean))
                .unwrap();
            tensors.insert(name, t);
        };
        add(
            "embeddings.word_embeddings.weight".into(),
            &[50, h],
            0.5,
            0.0,
        );
        add(
            "embeddings.position_embeddings.weight".into(),
            &[80, h],
            0.5,
            0.0,
        );
        add(
            "embeddings.token_type_embeddings.weight".into(),
            &[2, h],
            0.5,
            0.0,
        );
        let norms = |p: &str| {
            vec![
                format!("{p}.LayerNorm.weight"),
                format!("{p}.LayerNorm.bias"),
            ]
        };
        for (k, n) in norms("embeddings").into_iter().enumerate() {
            add(n, &[h], 0.1, if k == 0 { 1.0 } else { 0.0 });
        }
        for l in 0..2 {
            let p = format!("encoder.layer.{l}");
            for (name, out, inp) in [
                ("attention.self.query", h, h),
                ("attention.self.key", h, h),
                ("attention.self.value", h, h),
                ("attention.output.dense", h, h),
                ("intermediate.dense", i, h),
                ("output.dense", h, i),
            ] {
                add(format!("{p}.{name}.weight"), &[out, inp], 0.15, 0.0);
                add(format!("{p}.{name}.bias"), &[out], 0.1, 0.0);
            }
            for part in ["attention.output", "output"] {
                for (k, n) in norms(&format!("{p}.{part}")).into_iter().enumerate() {
                    add(n, &[h], 0.1, if k == 0 { 1.0 } else { 0.0 });
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        candle_core::safetensors::save(&tensors, &path).unwrap();

        let fast = QueryModel::map(&path, &config).expect("the query path takes this model");
        let vb = unsafe {
            candle_nn::VarBuilder::from_mmaped_safetensors(&[&path], DType::F32, &dev).unwrap()
        };
        let candle = super::super::bert::Bert::load(vb, &config, &path).unwrap();
        for ids in [
            vec![3u32],
            vec![1, 7, 49, 0, 12, 2],
            (0..40).map(|i| i % 50).collect(),
        ] {
            let n = ids.len();
            let got = fast.forward(&[&ids]).unwrap();
            let t = Tensor::from_slice(&ids, (1, n), &dev).unwrap();
            let mask = Tensor::ones((1, n), DType::U32, &dev).unwrap();
            let want: Vec<f32> = candle
                .forward(&t, &mask)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "{n} tokens: largest difference {worst}");
        }
        // Texts run together, through the repacked matrices: each as if run alone.
        let seqs: Vec<Vec<u32>> = vec![
            (0..30).map(|i| i % 50).collect(),
            vec![5, 9, 2],
            (0..40).map(|i| (i * 7) % 50).collect(),
        ];
        let alone: Vec<f32> = seqs
            .iter()
            .flat_map(|s| fast.forward(&[s]).unwrap())
            .collect();
        fast.plan(PACK_TOKENS);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert!(
                matches!(fast.packed.get(), Some(Some(_))),
                "packed on this CPU"
            );
        }
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let together = fast.forward(&refs).unwrap();
        assert_eq!(together.len(), alone.len());
        let worst = together
            .iter()
            .zip(&alone)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-4,
            "together vs alone: largest difference {worst}"
        );

        assert!(
            fast.forward(&[&[50]]).is_none(),
            "id outside the vocabulary"
        );
        assert!(fast.forward(&[&[]]).is_none());
        assert!(fast.forward(&[]).is_none());
        assert!(fast.forward(&[&[1; MAX_TOKENS + 1]]).is_none());
        let gelu_tanh = Config {
            hidden_act: HiddenAct::GeluApproximate,
            ..config
        };
        assert!(QueryModel::map(&path, &gelu_tanh).is_none());
    }
}
