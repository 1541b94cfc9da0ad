//! The encoder behind a queue: texts of requests that arrive while the encoder is busy are
//! embedded together in its next call, the way text-embeddings-inference batches. One text
//! at a time would leave the second core idle and pay the per-call overhead per request.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::metrics::Metrics;
use crate::embed::Encoder;

/// A request's texts and where their vectors go.
struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Starts the encoder's thread; each call embeds up to `max_texts` queued texts (a
    /// single larger request still goes whole).
    pub fn start(encoder: Arc<Encoder>, max_texts: usize, metrics: Arc<Metrics>) -> Batcher {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || {
                while let Some(first) = jobs.blocking_recv() {
                    let mut batch = vec![first];
                    let mut texts = batch[0].texts.len();
                    while texts < max_texts {
                        match jobs.try_recv() {
                            Ok(job) => {
                                texts += job.texts.len();
                                batch.push(job);
                            }
                            Err(_) => break,
                        }
                    }
                    metrics.observe_batch(texts);
                    run(&encoder, batch);
                }
            })
            .expect("the encoder thread starts");
        Batcher { queue }
    }

    /// Unit vectors of `texts`, row-major.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<f32>, String> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { texts, reply })
            .map_err(|_| "the encoder has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the encoder has stopped".to_string())?
    }
}

/// One encoder call for every text of `batch`, each job answered with its own rows.
fn run(encoder: &Encoder, batch: Vec<Job>) {
    let texts: Vec<&str> = batch
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    let dim = encoder.dim();
    match encoder.embed(&texts) {
        Ok(vectors) => {
            let mut rows = vectors.chunks_exact(dim);
            for job in batch {
                let mine: Vec<f32> = rows
                    .by_ref()
                    .take(job.texts.len())
                    .flatten()
                    .copied()
                    .collect();
                // A client that went away no longer waits for its answer.
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            for job in batch {
                let _ = job.reply.send(Err(e.to_string()));
            }
        }
    }
}
