//! One text through BERT, read straight from the memory-mapped weights (CPU, f32): a
//! `similar` query, and on the CPU every text of a batch, one per core (`Encoder`).
//!
//! A `similar "text"` process embeds a single query of a few tokens. Through candle that
//! meant copying 44 MB of weights out of the map into tensors on every start (~25 ms), then,
//! for each of the 36 matrix products, gemm packing the whole weight matrix to multiply it by
//! a handful of token rows (13–17 ms per query). Here every weight row is read in place, once,
//! and dotted with all the token rows ([`rows_dot`]: 4 × 4 blocks). The arithmetic is
//! candle-transformers' BERT layer for layer (same layer norm and softmax, the same exact erf
//! GELU to 1e-7 with a vectorised erf); only the order of additions differs, so vectors agree
//! with candle's batches to ~1e-6 (tested, with the sentence-transformers reference queries
//! as well).

use std::path::Path;

use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};
use safetensors::{Dtype, SafeTensors};

use crate::simd::{dot, gelu, rows_dot};

/// Longest input taken this way: MiniLM's own limit, so every text it can see. Anything
/// longer (another model) goes to candle.
pub const MAX_TOKENS: usize = 256;

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

pub struct QueryModel {
    map: memmap2::Mmap,
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

    /// The last hidden states of one token sequence, `ids.len() × hidden`, row-major; `None`
    /// for a sequence the fast path does not take (empty, too long, an id out of range).
    pub fn forward(&self, ids: &[u32]) -> Option<Vec<f32>> {
        let (h, n) = (self.hidden, ids.len());
        if n == 0 || n > MAX_TOKENS.min(self.positions) {
            return None;
        }
        let (word, position, token_type) = (
            self.f32s(self.word),
            self.f32s(self.position),
            self.f32s(self.token_type),
        );
        let mut x = Vec::with_capacity(n * h);
        for (p, &id) in ids.iter().enumerate() {
            let row = word.get(id as usize * h..(id as usize + 1) * h)?;
            let pos = &position[p * h..(p + 1) * h];
            x.extend((0..h).map(|d| row[d] + token_type[d] + pos[d]));
        }
        self.layer_norm(&mut x, &self.norm);

        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut scores = vec![0f32; n];
        for l in &self.layers {
            let (q, k, v) = (
                self.dense(&x, &l.query),
                self.dense(&x, &l.key),
                self.dense(&x, &l.value),
            );
            let mut ctx = vec![0f32; n * h];
            for head in 0..self.heads {
                let cols = head * d..(head + 1) * d;
                for i in 0..n {
                    let qi = &q[i * h..][cols.clone()];
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = dot(qi, &k[j * h..][cols.clone()]) * scale;
                    }
                    softmax(&mut scores);
                    let out = &mut ctx[i * h..][cols.clone()];
                    for (j, &p) in scores.iter().enumerate() {
                        for (o, &vj) in out.iter_mut().zip(&v[j * h..][cols.clone()]) {
                            *o += p * vj;
                        }
                    }
                }
            }
            let attn = self.dense(&ctx, &l.attn_out);
            x.iter_mut().zip(&attn).for_each(|(a, b)| *a += b);
            self.layer_norm(&mut x, &l.attn_norm);

            let mut up = self.dense(&x, &l.up);
            gelu(&mut up);
            let down = self.dense(&up, &l.down);
            x.iter_mut().zip(&down).for_each(|(a, b)| *a += b);
            self.layer_norm(&mut x, &l.out_norm);
        }
        Some(x)
    }

    fn f32s(&self, s: Span) -> &[f32] {
        bytemuck::cast_slice(&self.map[s.at..s.at + 4 * s.len])
    }

    /// Every weight row is read once, for all token rows at a time.
    fn dense(&self, x: &[f32], layer: &Dense) -> Vec<f32> {
        let (w, b) = (self.f32s(layer.w), self.f32s(layer.b));
        let mut y = vec![0f32; x.len() / layer.inp * layer.out];
        rows_dot(x, w, layer.inp, &mut y);
        for row in y.chunks_exact_mut(layer.out) {
            row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
        }
        y
    }

    fn layer_norm(&self, x: &mut [f32], norm: &Norm) {
        let (w, b) = (self.f32s(norm.w), self.f32s(norm.b));
        let h = self.hidden as f32;
        for row in x.chunks_exact_mut(self.hidden) {
            let mean = row.iter().sum::<f32>() / h;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h;
            let inv = 1.0 / (var + self.eps).sqrt();
            for ((v, &w), &b) in row.iter_mut().zip(w).zip(b) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

fn softmax(xs: &mut [f32]) {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in xs.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    xs.iter_mut().for_each(|x| *x /= sum);
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
            let got = fast.forward(&ids).unwrap();
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
        assert!(fast.forward(&[50]).is_none(), "id outside the vocabulary");
        assert!(fast.forward(&[]).is_none());
        assert!(fast.forward(&[1; MAX_TOKENS + 1]).is_none());
        let gelu_tanh = Config {
            hidden_act: HiddenAct::GeluApproximate,
            ..config
        };
        assert!(QueryModel::map(&path, &gelu_tanh).is_none());
    }
}
