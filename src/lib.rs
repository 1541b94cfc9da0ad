//! tweetsim: semantic similarity search over tweets.
//!
//! Data flows one way: [`corpus`] reads a file into tweets, [`embed`] turns their text into
//! unit vectors with a local BERT encoder, and [`index`] stores tweets, vectors and an HNSW
//! graph on disk and answers nearest-neighbour queries. The `tweetsim` binary wires these
//! together behind a command line.

pub mod corpus;
pub mod dups;
pub mod embed;
mod error;
pub mod fsutil;
pub mod index;
pub mod npy;
pub mod parquet;
pub mod report;
pub mod search;
pub mod serve;
pub mod simd;
pub mod stream;
pub mod synth;
pub mod topics;

pub use error::{BuiltFrom, Error, Result};
