//! `/metrics`: requests by route and status, latency by route, the generation served, and
//! the sizes of the encoder's batches (whether concurrent requests really share calls).

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Generation {
    generation: String,
}

type Latency = Family<Route, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Request, Counter>,
    latency: Latency,
    generation: Family<Generation, Gauge>,
    /// The generation labelled 1 now, to set back to absent on a swap.
    current: Mutex<Option<Generation>>,
    tweets: Gauge,
    reloads: Counter,
    reload_failures: Counter,
    batch: Histogram,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tweetsim");
        let requests = Family::<Request, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        // 0.25 ms … 8 s.
        let latency: Latency =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.00025, 2.0, 16)));
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response, by route",
            latency.clone(),
        );
        let generation = Family::<Generation, Gauge>::default();
        registry.register(
            "store_generation",
            "The store generation being served (1 for the current one)",
            generation.clone(),
        );
        let tweets = Gauge::default();
        registry.register(
            "store_tweets",
            "Live tweets in the served store",
            tweets.clone(),
        );
        let reloads = Counter::default();
        registry.register(
            "store_reloads",
            "Generations picked up after the first",
            reloads.clone(),
        );
        let reload_failures = Counter::default();
        registry.register(
            "store_reload_failures",
            "Attempts to open a newly published generation that failed",
            reload_failures.clone(),
        );
        let batch = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "encoder_batch_texts",
            "Texts per encoder call (concurrent requests share calls)",
            batch.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            generation,
            current: Mutex::new(None),
            tweets,
            reloads,
            reload_failures,
            batch,
        }
    }

    pub fn observe_request(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&Request {
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&Route {
                route: route.to_string(),
            })
            .observe(seconds);
    }

    pub fn observe_batch(&self, texts: usize) {
        self.batch.observe(texts as f64);
    }

    /// The generation the server started with.
    pub fn started_with(&self, generation: &str, tweets: usize) {
        self.serve(generation, tweets);
    }

    /// A later generation is now served.
    pub fn switched_to(&self, generation: &str, tweets: usize) {
        self.serve(generation, tweets);
        self.reloads.inc();
    }

    pub fn reload_failed(&self) {
        self.reload_failures.inc();
    }

    fn serve(&self, generation: &str, tweets: usize) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.take() {
            self.generation.remove(&old);
        }
        let label = Generation {
            generation: generation.to_string(),
        };
        self.generation.get_or_create(&label).set(1);
        *current = Some(label);
        self.tweets.set(tweets as i64);
    }

    /// Everything, in the OpenMetrics text format Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
