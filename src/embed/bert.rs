//! The BERT forward pass, in f32, f16 or bf16.
//!
//! candle-transformers' `BertModel` builds its attention mask as `(1 − mask) · f32::MIN` cast to
//! the model dtype: in f16/bf16 that is −inf, `0 · −inf` is NaN, and every output is NaN. This
//! module runs the same layers (candle-transformers' `BertEncoder`) behind its own embedding
//! step and a finite mask value, which gives identical results in f32 (e^−10000 is 0 there as
//! e^−3.4e38 is) and correct ones in half precision.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};
use candle_transformers::models::bert::{BertEncoder, Config};

/// Added to the attention scores of padding: far below any real score, finite in f16.
const MASKED: f64 = -10_000.0;

pub struct Bert {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    encoder: BertEncoder,
    dtype: DType,
}

impl Bert {
    /// Loads the weights under `bert.` or at the root, as checkpoints differ.
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Bert> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let e = vb.pp("embeddings");
        Ok(Bert {
            word: embedding(
                config.vocab_size,
                config.hidden_size,
                e.pp("word_embeddings"),
            )?,
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
