//! Integration tests: the real MiniLM weights, the real corpus, real files on disk.
//! One test binary (so the model loads once per run), split by theme.

mod cli;
mod common;
mod corpus;
mod export;
mod fidelity;
mod hostile;
mod judged;
mod parquet;
mod retrieval;
mod serve;
mod store;
mod topics;
mod updates;
