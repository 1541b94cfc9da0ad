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

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

pub use api::GENERATION_HEADER;

use crate::embed::Encoder;
use crate::error::{Error, Result};
use crate::index::Store;

/// What a request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest `k`.
    pub max_k: usize,
    /// Longest `q`, in bytes. hyper refuses a request line over 64 KiB with a bare 414
    /// before any handler runs, so this must stay well below that to answer in JSON.
    pub max_query_bytes: usize,
    /// Largest request body (`POST /embed`).
    pub max_body_bytes: usize,
    /// Most texts in one `POST /embed`.
    pub max_texts: usize,
    /// Most texts waiting for the encoder; a request that would pass it gets a 503.
    pub max_queued_texts: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_k: 100,
            max_query_bytes: 8 << 10,
            max_body_bytes: 1 << 20,
            max_texts: 256,
            max_queued_texts: 4096,
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

/// After Ctrl-C or SIGTERM, how long requests in flight may take to finish (a client that
/// never sends the rest of its request would otherwise hold the process forever).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `store` until the process is interrupted (Ctrl-C or SIGTERM), letting requests
/// in flight finish. `ready` is told the bound address (port 0 picks a free one).
pub fn run(
    store: Store,
    encoder: Encoder,
    config: Config,
    ready: impl FnOnce(SocketAddr) -> std::io::Result<()>,
) -> Result<()> {
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Server(format!("{what}: {e}"));
    let metrics = Arc::new(metrics::Metrics::new());
    let model = encoder.identity().clone();
    let live = Arc::new(live::Live::new(store, &model, metrics.clone())?);
    let batcher = batcher::Batcher::start(
        Arc::new(encoder),
        config.batch_texts,
        config.limits.max_queued_texts,
        metrics.clone(),
    )
    .map_err(|e| failed("cannot start the encoder thread", &e))?;
    let app = api::App {
        live: live.clone(),
        batcher,
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
            .map_err(|e| failed("cannot start the generation watcher", &e))?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| failed("cannot start the runtime", &e))?;
    let served = runtime.block_on(async {
        let listen = |e: std::io::Error| failed(&format!("cannot listen on {}", config.addr), &e);
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(listen)?;
        ready(listener.local_addr().map_err(listen)?)
            .map_err(|e| failed("cannot report the address", &e))?;
        let (signalled, mut signal) = tokio::sync::watch::channel(false);
        let server = axum::serve(listener, router(app)).with_graceful_shutdown(async move {
            interrupted().await;
            let _ = signalled.send(true);
        });
        let grace_over = async move {
            let _ = signal.wait_for(|&s| s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            done = server.into_future() => done.map_err(|e| failed("the server stopped", &e)),
            _ = grace_over => {
                eprintln!(
                    "warning: requests still open {} s after the signal were dropped",
                    SHUTDOWN_GRACE.as_secs()
                );
                Ok(())
            }
        }
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
