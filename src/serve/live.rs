//! The store being served, and the switch to each new generation.
//!
//! A writer (`tweetsim index`, `remove`) publishes a generation by replacing `manifest.json`.
//! A watcher thread reads the manifest a few times a second; when it names another
//! generation, the watcher opens and verifies it beside the current one, then swaps the
//! pointer. A request holds the snapshot it started with to its end, so it answers wholly
//! from one committed generation. The writer removes generations older than the previous
//! one; a snapshot still holding such a one keeps reading it, since its files are mapped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::error::ApiError;
use super::metrics::Metrics;
use crate::embed::ModelIdentity;
use crate::error::{Error, Result};
use crate::index::{self, Store};
use crate::report::Report;
use crate::topics::{self, Topics};

/// One committed generation, opened.
pub struct Snapshot {
    pub store: Store,
    /// The topic report, computed on first request (a few hundred ms on the bundled corpus).
    topics: OnceLock<std::result::Result<Arc<TopicView>, ApiError>>,
}

/// The discovered topics of a snapshot, rendered once.
pub struct TopicView {
    pub json: String,
    pub charts: String,
}

impl Snapshot {
    /// The generation's folder name, as its manifest names it.
    pub fn generation(&self) -> &str {
        &self.store.manifest().generation
    }

    fn new(store: Store) -> Snapshot {
        Snapshot {
            store,
            topics: OnceLock::new(),
        }
    }

    /// The default topic report (as `tweetsim topics --json` prints it) and its charts. A
    /// store too small or too scattered for any topic is a 422, not a server failure.
    pub fn topics(&self) -> std::result::Result<Arc<TopicView>, ApiError> {
        self.topics
            .get_or_init(|| {
                let found: Topics = topics::discover(&self.store, &topics::Options::default())
                    .map_err(|e| match e {
                        Error::Invalid(why) => ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            format!("this store has no topics: {why}"),
                        ),
                        other => ApiError::internal(other),
                    })?;
                let report = Report::new(&self.store, &found).map_err(ApiError::internal)?;
                Ok(Arc::new(TopicView {
                    json: report.to_json(),
                    charts: report
                        .charts_html(&self.store, &found)
                        .map_err(ApiError::internal)?,
                }))
            })
            .clone()
    }
}

pub struct Live {
    dir: PathBuf,
    model: ModelIdentity,
    current: RwLock<Arc<Snapshot>>,
    /// Why the generation the manifest names is not the one served, while that lasts.
    behind: Mutex<Option<String>>,
    metrics: Arc<Metrics>,
}

/// How long a generation that failed to open waits before it is tried again (a transient
/// failure, such as too many open files, must not leave the server behind for good).
const RETRY: Duration = Duration::from_secs(30);

impl Live {
    /// Serves `store`, whose vectors must come from `model`.
    pub fn new(store: Store, model: &ModelIdentity, metrics: Arc<Metrics>) -> Result<Live> {
        store.check_model(model)?;
        let first = Snapshot::new(store);
        metrics.started_with(first.generation(), first.store.len());
        Ok(Live {
            dir: first.store.dir().to_path_buf(),
            model: model.clone(),
            current: RwLock::new(Arc::new(first)),
            behind: Mutex::new(None),
            metrics,
        })
    }

    /// The generation to answer a request from.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Why a newer generation is not served, if one is not.
    pub fn behind(&self) -> Option<String> {
        self.behind
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Watches the manifest every `poll` until `stop`, switching to each new generation.
    pub fn watch(self: Arc<Self>, poll: Duration, quiet: bool, stop: Arc<AtomicBool>) {
        // The generation that last failed to open, and when: retried after RETRY, or at
        // once when the manifest names another one; reported once, not every poll.
        let mut failed: Option<(String, Instant)> = None;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(poll);
            let Ok(manifest) = index::read_manifest(&self.dir) else {
                continue;
            };
            let named = manifest.generation;
            if named == self.snapshot().generation() {
                continue;
            }
            if let Some((g, at)) = &failed {
                if *g == named && at.elapsed() < RETRY {
                    continue;
                }
            }
            match self.switch() {
                Ok(s) => {
                    failed = None;
                    *self.behind.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    if !quiet {
                        eprintln!(
                            "serving generation {} ({} tweets)",
                            s.generation(),
                            s.store.len()
                        );
                    }
                }
                Err(e) => {
                    // Another commit may have replaced the generation while it was being
                    // opened: only a generation still named after the failure counts.
                    let still =
                        index::read_manifest(&self.dir).is_ok_and(|m| m.generation == named);
                    if !still {
                        continue;
                    }
                    self.metrics.reload_failed();
                    let why = format!("generation {named} cannot be served ({e})");
                    if failed.as_ref().is_none_or(|(g, _)| *g != named) {
                        eprintln!(
                            "warning: {why}; still serving {} (retried every {} s)",
                            self.snapshot().generation(),
                            RETRY.as_secs()
                        );
                    }
                    *self.behind.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                    failed = Some((named, Instant::now()));
                }
            }
        }
    }

    /// Opens the generation the manifest names now and makes it the current one.
    fn switch(&self) -> Result<Arc<Snapshot>> {
        let store = Store::open(&self.dir)?;
        store.check_model(&self.model)?;
        let next = Arc::new(Snapshot::new(store));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        self.metrics
            .switched_to(next.generation(), next.store.len());
        Ok(next)
    }
}
