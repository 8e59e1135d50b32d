//! The operator's Prometheus metrics and health endpoints (`/metrics`, `/healthz`), through the
//! `prometheus-client` crate (OpenMetrics text): reconciles and their duration, failures by error kind, tasks and
//! pipelines by phase, and each task's time to its pods and to a terminal phase.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The phases a task gauge always shows (zero when no task is in them).
const PHASES: [&str; 4] = ["Pending", "Running", "Succeeded", "Failed"];

/// A task's phase, as a label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// What made a reconcile fail: the API's reason (`Conflict`, `NotFound`, `Forbidden`, ...) or `Transport`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    kind: String,
}

/// The registry and the handles the controller updates.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    duration: Histogram,
    failures: Family<ErrorLabel, Counter>,
    tasks: PhaseGauge,
    pipelines: PhaseGauge,
    to_pods: Histogram,
    to_done: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("secretflow");
        let reconciles = Counter::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        // 1 ms to about 16 s: a reconcile is a few API round trips.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register("reconcile_duration_seconds", "Time one reconcile took", duration.clone());
        let failures = Family::<ErrorLabel, Counter>::default();
        registry.register("reconcile_errors", "Reconciles that failed, by error kind", failures.clone());
        let tasks = PhaseGauge::default();
        registry.register("tasks", "Tasks by phase", tasks.family.clone());
        let pipelines = PhaseGauge::default();
        registry.register("pipelines", "Pipelines by phase", pipelines.family.clone());
        // 0.1 s to about an hour.
        let to_pods = Histogram::new(exponential_buckets(0.1, 2.0, 16));
        registry.register(
            "task_pods_created_seconds",
            "Time from task creation to all party pods created",
            to_pods.clone(),
        );
        let to_done = Histogram::new(exponential_buckets(0.1, 2.0, 16));
        registry.register("task_completion_seconds", "Time from task creation to a terminal phase", to_done.clone());
        Metrics { registry, reconciles, duration, failures, tasks, pipelines, to_pods, to_done }
    }
}

/// Objects by phase: each object's phase from its last reconcile (key -> phase), and the gauge recounted
/// from it.
struct PhaseGauge {
    family: Family<PhaseLabel, Gauge>,
    phases: Mutex<BTreeMap<String, String>>,
}

impl Default for PhaseGauge {
    fn default() -> Self {
        let family = Family::<PhaseLabel, Gauge>::default();
        for p in PHASES {
            family.get_or_create(&PhaseLabel { phase: p.into() }).set(0);
        }
        PhaseGauge { family, phases: Mutex::default() }
    }
}

impl PhaseGauge {
    fn set(&self, key: &str, phase: Option<&str>) {
        let mut g = lock(&self.phases);
        match phase {
            Some(p) => g.insert(key.to_string(), p.to_string()),
            None => g.remove(key),
        };
        let mut counts: BTreeMap<&str, i64> = PHASES.iter().map(|p| (*p, 0)).collect();
        for p in g.values() {
            *counts.entry(p.as_str()).or_default() += 1;
        }
        for (p, n) in counts {
            self.family.get_or_create(&PhaseLabel { phase: p.into() }).set(n);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Count one reconcile that took `took`.
    pub fn reconciled(&self, took: Duration) {
        self.reconciles.inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Count one failed reconcile of error kind `kind`.
    pub fn failed(&self, kind: &str) {
        self.failures.get_or_create(&ErrorLabel { kind: kind.into() }).inc();
    }

    /// Remember a task's phase (`None`: the task is gone) and recount the per-phase gauge.
    pub fn phase(&self, key: &str, phase: Option<&str>) {
        self.tasks.set(key, phase);
    }

    /// Remember a pipeline's phase (`None`: the pipeline is gone) and recount the per-phase gauge.
    pub fn pipeline_phase(&self, key: &str, phase: Option<&str>) {
        self.pipelines.set(key, phase);
    }

    /// Observe the creation-to-pods latency.
    pub fn pods_created(&self, secs: f64) {
        self.to_pods.observe(secs);
    }

    /// Observe the creation-to-completion latency.
    pub fn completed(&self, secs: f64) {
        self.to_done.observe(secs);
    }

    /// The exposition text (OpenMetrics).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The OpenMetrics text content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serve `/metrics` and `/healthz` on `addr` until the process ends.
pub async fn serve(addr: std::net::SocketAddr, metrics: std::sync::Arc<Metrics>) -> std::io::Result<()> {
    use axum::http::header;
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()) }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_phases_failures_and_histograms() {
        let m = Metrics::default();
        for _ in 0..3 {
            m.reconciled(Duration::from_millis(3));
        }
        m.failed("Conflict");
        m.phase("ns/a", Some("Running"));
        m.phase("ns/b", Some("Running"));
        m.phase("ns/b", None);
        m.pods_created(0.3);
        m.pipeline_phase("ns/p", Some("Succeeded"));
        let text = m.render();
        assert!(text.contains("secretflow_reconciles_total 3\n"), "{text}");
        assert!(text.contains("secretflow_reconcile_duration_seconds_count 3\n"), "{text}");
        assert!(text.contains("secretflow_reconcile_duration_seconds_bucket{le=\"0.004\"} 3\n"), "{text}");
        assert!(text.contains("secretflow_reconcile_duration_seconds_bucket{le=\"0.002\"} 0\n"), "{text}");
        assert!(text.contains("secretflow_reconcile_errors_total{kind=\"Conflict\"} 1\n"), "{text}");
        assert!(text.contains("secretflow_tasks{phase=\"Running\"} 1\n"), "{text}");
        assert!(text.contains("secretflow_tasks{phase=\"Failed\"} 0\n"), "{text}");
        assert!(text.contains("secretflow_pipelines{phase=\"Succeeded\"} 1\n"), "{text}");
        assert!(text.contains("secretflow_pipelines{phase=\"Running\"} 0\n"), "{text}");
        assert!(text.contains("secretflow_task_pods_created_seconds_bucket{le=\"0.4\"} 1\n"), "{text}");
        assert!(text.contains("secretflow_task_pods_created_seconds_bucket{le=\"0.2\"} 0\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
