//! `tweetsim serve`: one long-running process that holds the encoder and a store and answers
//! JSON over HTTP, the way text-embeddings-inference serves a model.
//!
//! A request flows: axum's router → a handler in [`api`] that checks its parameters
//! ([`params`], errors as JSON naming the field, [`error`]) → the store snapshot of the
//! generation being served ([`live`], swapped when `index`/`remove` publish a new one) and,
//! for text, the encoder's queue ([`batcher`], concurrent texts share one encoder call) →
//! JSON. [`metrics`] counts and times it all for `/metrics`.

mod api;
mod batcher;
mod error;
mod live;
mod metrics;
mod params;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

pub use api::GENERATION_HEADER;

use crate::embed::Encoder;
use crate::error::{Error, Result};

/// What a request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest `k`.
    pub max_k: usize,
    /// Largest request body, and longest `q`.
    pub max_body_bytes: usize,
    /// Most texts in one `POST /embed`.
    pub max_texts: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_k: 100,
            max_body_bytes: 1 << 20,
            max_texts: 256,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub limits: Limits,
    /// Most texts per encoder call when requests queue up.
    pub batch_texts: usize,
    /// How often the manifest is read for a new generation.
    pub poll: Duration,
    /// No note on stderr per generation switch.
    pub quiet: bool,
}

/// Serves the store in `dir` until the process is interrupted (Ctrl-C or SIGTERM), letting
/// requests in flight finish. `ready` is told the bound address (port 0 picks a free one).
pub fn run(
    dir: &Path,
    encoder: Encoder,
    config: Config,
    ready: impl FnOnce(SocketAddr) -> std::io::Result<()>,
) -> Result<()> {
    let metrics = Arc::new(metrics::Metrics::new());
    let model = encoder.identity().clone();
    let live = Arc::new(live::Live::open(dir, &model, metrics.clone())?);
    let app = api::App {
        live: live.clone(),
        batcher: batcher::Batcher::start(Arc::new(encoder), config.batch_texts, metrics.clone()),
        metrics,
        model,
        limits: config.limits,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, poll, quiet) = (stop.clone(), config.poll, config.quiet);
        std::thread::Builder::new()
            .name("generation-watcher".into())
            .spawn(move || live.watch(poll, quiet, stop))
            .map_err(|e| Error::Invalid(format!("cannot start the generation watcher: {e}")))?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the server runtime: {e}")))?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| Error::Invalid(format!("cannot listen on {}: {e}", config.addr)))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::Invalid(format!("cannot listen on {}: {e}", config.addr)))?;
        ready(bound).map_err(|e| Error::Invalid(format!("cannot report the address: {e}")))?;
        axum::serve(listener, router(app))
            .with_graceful_shutdown(interrupted())
            .await
            .map_err(|e| Error::Invalid(format!("the server failed: {e}")))
    });
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    served
}

fn router(app: api::App) -> Router {
    Router::new()
        .route("/", get(api::page))
        .route("/similar", get(api::similar))
        .route("/tweets/{id}", get(api::tweet))
        .route("/tweets/{id}/similar", get(api::similar_to_tweet))
        .route("/topics", get(api::topics))
        .route("/topics/charts", get(api::topic_charts))
        .route("/embed", post(api::embed))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(api::openapi))
        .method_not_allowed_fallback(api::wrong_method)
        .fallback(api::no_route)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            api::track,
        ))
        .with_state(app)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
