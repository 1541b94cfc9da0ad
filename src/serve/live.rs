//! The store being served, and the switch to each new generation.
//!
//! A writer (`tweetsim index`, `remove`) publishes a generation by replacing `manifest.json`.
//! A watcher thread reads the manifest a few times a second; when it names another
//! generation, the watcher opens and verifies it beside the current one, then swaps the
//! pointer. A request holds the snapshot it started with to its end, so it answers wholly
//! from one committed generation. The writer removes generations older than the previous
//! one; a snapshot still holding such a one keeps reading it, since its files are mapped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use super::metrics::Metrics;
use crate::embed::ModelIdentity;
use crate::error::Result;
use crate::index::{self, Store};
use crate::report::Report;
use crate::topics::{self, Topics};

/// One committed generation, opened.
pub struct Snapshot {
    pub generation: String,
    pub store: Store,
    /// The topic report, computed on first request (a few hundred ms on the bundled corpus).
    topics: OnceLock<std::result::Result<Arc<TopicView>, String>>,
}

/// The discovered topics of a snapshot, rendered once.
pub struct TopicView {
    pub json: String,
    pub charts: String,
}

impl Snapshot {
    fn open(dir: &Path) -> Result<Snapshot> {
        let store = Store::open(dir)?;
        Ok(Snapshot {
            generation: store.manifest().generation.clone(),
            store,
            topics: OnceLock::new(),
        })
    }

    /// The default topic report (as `tweetsim topics --json` prints it) and its charts.
    pub fn topics(&self) -> std::result::Result<Arc<TopicView>, String> {
        self.topics
            .get_or_init(|| {
                let build = || -> Result<TopicView> {
                    let found: Topics = topics::discover(&self.store, &topics::Options::default())?;
                    let report = Report::new(&self.store, &found)?;
                    Ok(TopicView {
                        json: report.to_json(),
                        charts: report.charts_html(&self.store, &found)?,
                    })
                };
                build().map(Arc::new).map_err(|e| e.to_string())
            })
            .clone()
    }
}

pub struct Live {
    dir: PathBuf,
    model: ModelIdentity,
    current: RwLock<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
}

impl Live {
    /// Serves the store in `dir`, whose vectors must come from `model`.
    pub fn open(dir: &Path, model: &ModelIdentity, metrics: Arc<Metrics>) -> Result<Live> {
        let first = Snapshot::open(dir)?;
        first.store.check_model(model)?;
        metrics.serving(&first.generation, first.store.len(), true);
        Ok(Live {
            dir: dir.to_path_buf(),
            model: model.clone(),
            current: RwLock::new(Arc::new(first)),
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

    /// Watches the manifest every `poll` until `stop`, switching to each new generation.
    pub fn watch(self: Arc<Self>, poll: Duration, quiet: bool, stop: Arc<AtomicBool>) {
        // A generation that failed to open is retried only once the manifest names another
        // one, so a broken store is reported once, not every poll.
        let mut failed: Option<String> = None;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(poll);
            let Ok(manifest) = index::read_manifest(&self.dir) else {
                continue;
            };
            let named = manifest.generation;
            if named == self.snapshot().generation || failed.as_ref() == Some(&named) {
                continue;
            }
            match self.switch() {
                Ok(s) => {
                    failed = None;
                    if !quiet {
                        eprintln!(
                            "serving generation {} ({} tweets)",
                            s.generation,
                            s.store.len()
                        );
                    }
                }
                Err(e) => {
                    // Another commit may have replaced the generation while it was being
                    // opened: only a generation still named after the failure is reported.
                    let still =
                        index::read_manifest(&self.dir).is_ok_and(|m| m.generation == named);
                    if still {
                        eprintln!(
                            "warning: generation {named} cannot be served ({e}); still serving {}",
                            self.snapshot().generation
                        );
                        failed = Some(named);
                    }
                }
            }
        }
    }

    /// Opens the generation the manifest names now and makes it the current one.
    fn switch(&self) -> Result<Arc<Snapshot>> {
        let next = Snapshot::open(&self.dir)?;
        next.store.check_model(&self.model)?;
        let next = Arc::new(next);
        self.metrics
            .serving(&next.generation, next.store.len(), false);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        Ok(next)
    }
}
