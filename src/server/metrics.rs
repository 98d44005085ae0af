//! Prometheus metrics of the server: requests and latencies by route,
//! query and rendering durations, and cache hits.
//!
//! Owns the registry and its text encoding. It must not decide anything
//! about a request; handlers and the middleware only record.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

/// The server's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    work: Family<WorkLabels, Histogram>,
    cache: Family<CacheLabels, Counter>,
    reloads: Gauge,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 33 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("osservatorio");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let work = Family::<WorkLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let cache = Family::<CacheLabels, Counter>::default();
        let reloads = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route",
            latency.clone(),
        );
        registry.register(
            "query_duration_seconds",
            "Time spent running queries and rendering, by kind (indicator, chart, page, sql)",
            work.clone(),
        );
        registry.register(
            "render_cache",
            "Rendered outputs served from the cache (hit) or computed (miss)",
            cache.clone(),
        );
        registry.register(
            "snapshot_reloads",
            "Times the server loaded new table versions",
            reloads.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            work,
            cache,
            reloads,
        }
    }
}

impl Metrics {
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records a rendered output: a cache hit, or a miss and its compute time.
    pub fn record_render(&self, kind: &'static str, cached: bool, compute_time: Duration) {
        let result = if cached { "hit" } else { "miss" };
        self.cache.get_or_create(&CacheLabels { result }).inc();
        if !cached {
            self.record_work(kind, compute_time);
        }
    }

    pub fn record_work(&self, kind: &'static str, elapsed: Duration) {
        self.work
            .get_or_create(&WorkLabels { kind })
            .observe(elapsed.as_secs_f64());
    }

    /// The metrics in Prometheus text format, with `reloads` as of now.
    pub fn encode(&self, reloads: u64) -> String {
        self.reloads.set(reloads as i64);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(
            &mut text,
            &self.registry.lock().expect("metrics registry lock"),
        )
        .expect("writing to a String cannot fail");
        text
    }
}
