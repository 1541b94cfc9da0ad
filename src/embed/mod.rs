//! Text → vectors: finding the model files (`model`) and running the encoder (`encoder`).

#[cfg(target_arch = "x86_64")]
mod amx;
mod bert;
mod encoder;
mod model;
mod packed;
mod query;

pub use encoder::{
    Batching, DeviceSpec, Encoder, ModelIdentity, Options, Pooling, Precision, DEFAULT_BATCH_SIZE,
    DEFAULT_GPU_BATCH_TOKENS,
};
pub use model::{
    cached_sha256, sha256_file, short_name, ModelFiles, Resolver, Source, DEFAULT_MODEL,
};
