//! The BERT forward pass, in f32, f16 or bf16.
//!
//! candle-transformers' `BertModel` builds its attention mask as `(1 − mask) · f32::MIN` cast to
//! the model dtype: in f16/bf16 that is −inf, `0 · −inf` is NaN, and every output is NaN. This
//! module runs the same layers (candle-transformers' `BertEncoder`) behind its own embedding
//! step and a finite mask value, which gives identical results in f32 (e^−10000 is 0 there as
//! e^−3.4e38 is) and correct ones in half precision.
//!
//! On the CPU in f32, the word-embedding table (30,522 × 384, 47 MB: over half the weights)
//! stays in the memory-mapped weights file and each batch reads only the rows of its tokens.
//! Loading it as a tensor meant copying it out of the map on every start: two thirds of a
//! `similar` query's wall time.

use std::path::Path;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};
use candle_transformers::models::bert::{BertEncoder, Config};

/// Added to the attention scores of padding: far below any real score, finite in f16.
const MASKED: f64 = -10_000.0;

pub struct Bert {
    word: WordTable,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    encoder: BertEncoder,
    dtype: DType,
}

impl Bert {
    /// Loads the weights under `bert.` or at the root, as checkpoints differ; `weights` is
    /// the file `vb` maps, for reading word embeddings in place.
    pub fn load(vb: VarBuilder, config: &Config, weights: &Path) -> Result<Bert> {
        let prefix = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let vb = if prefix.is_empty() { vb } else { vb.pp("bert") };
        let e = vb.pp("embeddings");
        let word_name = format!("{prefix}embeddings.word_embeddings.weight");
        let word = match WordTable::mapped(weights, &word_name, config, vb.dtype(), vb.device())? {
            Some(t) => t,
            None => WordTable::Loaded(embedding(
                config.vocab_size,
                config.hidden_size,
                e.pp("word_embeddings"),
            )?),
        };
        Ok(Bert {
            word,
            position: embedding(
                config.max_position_embeddings,
                config.hidden_size,
                e.pp("position_embeddings"),
            )?,
            token_type: embedding(
                config.type_vocab_size,
                config.hidden_size,
                e.pp("token_type_embeddings"),
            )?,
            norm: layer_norm(config.hidden_size, config.layer_norm_eps, e.pp("LayerNorm"))?,
            encoder: BertEncoder::load(vb.pp("encoder"), config)?,
            dtype: vb.dtype(),
        })
    }

    /// Token ids and attention mask (1 = token, 0 = padding), both `batch × len` u32; returns
    /// the last hidden states, `batch × len × hidden`, in the model's dtype.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, ids.device())?.unsqueeze(0)?;
        let x = self
            .word
            .forward(ids)?
            .add(&self.token_type.forward(&ids.zeros_like()?)?)?
            .broadcast_add(&self.position.forward(&positions)?)?;
        let x = self.norm.forward(&x)?;
        // batch × 1 × 1 × len, added to every head's scores.
        let extended = ((mask.to_dtype(DType::F32)?.affine(-1.0, 1.0)? * MASKED)?)
            .to_dtype(self.dtype)?
            .unsqueeze(1)?
            .unsqueeze(1)?;
        self.encoder.forward(&x, &extended)
    }
}

/// The word-embedding table: a tensor, or (CPU, f32 weights read as f32) rows read from the
/// mapped file on demand.
enum WordTable {
    Loaded(Embedding),
    Mapped {
        file: MmapedSafetensors,
        name: String,
        rows: usize,
        hidden: usize,
    },
}

impl WordTable {
    fn mapped(
        path: &Path,
        name: &str,
        config: &Config,
        dtype: DType,
        device: &Device,
    ) -> Result<Option<WordTable>> {
        if !device.is_cpu() || dtype != DType::F32 {
            return Ok(None);
        }
        // SAFETY: as for the VarBuilder: the weights file is mapped read-only and never
        // modified in place by tweetsim.
        let file = unsafe { MmapedSafetensors::new(path)? };
        let view = file.get(name)?;
        let (rows, hidden) = (config.vocab_size, config.hidden_size);
        if DType::try_from(view.dtype()).ok() != Some(DType::F32) || view.shape() != [rows, hidden]
        {
            return Ok(None);
        }
        Ok(Some(WordTable::Mapped {
            file,
            name: name.to_string(),
            rows,
            hidden,
        }))
    }

    /// `ids` (`batch × len`, u32) → `batch × len × hidden`.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        match self {
            WordTable::Loaded(e) => e.forward(ids),
            WordTable::Mapped {
                file,
                name,
                rows,
                hidden,
            } => {
                let (b, len) = ids.dims2()?;
                let bytes = file.get(name)?.data();
                let mut out = Vec::with_capacity(b * len * hidden);
                for id in ids.flatten_all()?.to_vec1::<u32>()? {
                    let id = id as usize;
                    if id >= *rows {
                        candle_core::bail!("token id {id} is outside the vocabulary ({rows})");
                    }
                    let row = &bytes[id * hidden * 4..(id + 1) * hidden * 4];
                    out.extend(
                        row.chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                    );
                }
                Tensor::from_vec(out, (b, len, *hidden), ids.device())
            }
        }
    }
}
