//! The encoder behind a queue: texts of requests that arrive while the encoder is busy are
//! embedded together in its next call, the way text-embeddings-inference batches. One text
//! at a time would leave the second core idle and pay the per-call overhead per request.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::metrics::Metrics;
use crate::embed::Encoder;

/// A request's texts and where their vectors go.
struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Vec<f32>, Refused>>,
}

/// Why texts got no vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The queue already holds as many texts as it may: try again later (503).
    Busy,
    /// The encoder failed on these texts, or is gone (500).
    Failed(String),
}

#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::UnboundedSender<Job>,
    /// Texts sent and not yet taken by the encoder thread.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
}

impl Batcher {
    /// Starts the encoder's thread; each call embeds up to `max_texts` queued texts (a
    /// single larger request still goes whole).
    pub fn start(
        encoder: Arc<Encoder>,
        max_texts: usize,
        max_queued: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Batcher> {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = queued.clone();
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
                    taken.fetch_sub(texts, Ordering::SeqCst);
                    // Clients that went away are not embedded for.
                    batch.retain(|job| !job.reply.is_closed());
                    if !batch.is_empty() {
                        metrics.observe_batch(batch.iter().map(|j| j.texts.len()).sum());
                        run(&encoder, batch);
                    }
                }
            })?;
        Ok(Batcher {
            queue,
            queued,
            max_queued,
        })
    }

    /// Unit vectors of `texts`, row-major.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<f32>, Refused> {
        let n = texts.len();
        let admitted = self
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |q| {
                (q == 0 || q + n <= self.max_queued).then_some(q + n)
            });
        if admitted.is_err() {
            return Err(Refused::Busy);
        }
        let gone = || Refused::Failed("the encoder has stopped".into());
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Job { texts, reply }).is_err() {
            self.queued.fetch_sub(n, Ordering::SeqCst);
            return Err(gone());
        }
        answer.await.map_err(|_| gone())?
    }

    /// Whether the encoder thread still takes work.
    pub fn alive(&self) -> bool {
        !self.queue.is_closed()
    }
}

/// One encoder call for every text of `batch`, each job answered with its own rows. A
/// failed call is retried job by job, so one request's bad text fails that request alone.
fn run(encoder: &Encoder, batch: Vec<Job>) {
    let texts: Vec<&str> = batch
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    match embed(encoder, &texts) {
        Ok(vectors) => {
            let dim = encoder.dim();
            let mut start = 0;
            for job in batch {
                let end = start + job.texts.len() * dim;
                // A client that went away no longer waits for its answer.
                let _ = job.reply.send(Ok(vectors[start..end].to_vec()));
                start = end;
            }
        }
        Err(e) if batch.len() == 1 => {
            let _ = batch
                .into_iter()
                .next()
                .map(|job| job.reply.send(Err(Refused::Failed(e))));
        }
        Err(_) => {
            for job in batch {
                run(encoder, vec![job]);
            }
        }
    }
}

/// The encoder's vectors for `texts`, checked for count; a panic inside the encoder is an
/// error of this call, not the end of the thread.
fn embed(encoder: &Encoder, texts: &[&str]) -> Result<Vec<f32>, String> {
    let vectors = catch_unwind(AssertUnwindSafe(|| encoder.embed(texts)))
        .map_err(|_| "the encoder panicked".to_string())?
        .map_err(|e| e.to_string())?;
    if vectors.len() != texts.len() * encoder.dim() {
        return Err(format!(
            "the encoder returned {} values for {} texts of {} dimensions",
            vectors.len(),
            texts.len(),
            encoder.dim()
        ));
    }
    Ok(vectors)
}
