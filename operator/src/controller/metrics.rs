//! The operator's Prometheus metrics and health endpoints (`/metrics`, `/healthz`), text exposition format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters and histograms the controller updates.
#[derive(Default)]
pub struct Metrics {
    /// Reconciles run.
    pub reconciles: AtomicU64,
    /// Reconciles that returned an error.
    pub errors: AtomicU64,
    /// Tasks by phase, from the last reconcile of each (task key -> phase).
    pub phases: Mutex<BTreeMap<String, String>>,
    /// Seconds from creation to all pods created, per task.
    pub to_pods: Mutex<Histogram>,
    /// Seconds from creation to a terminal phase, per task.
    pub to_done: Mutex<Histogram>,
}

/// A fixed-bucket histogram.
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        let bounds = vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];
        Histogram { counts: vec![0; bounds.len()], bounds, sum: 0.0, count: 0 }
    }
}

impl Histogram {
    /// Record one observation.
    pub fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            out.push_str(&format!("{name}_bucket{{le=\"{b}\"}} {c}\n"));
        }
        out.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}\n",
            self.count, self.sum, self.count
        ));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Remember a task's phase.
    pub fn phase(&self, key: &str, phase: Option<&str>) {
        let mut g = lock(&self.phases);
        match phase {
            Some(p) => g.insert(key.to_string(), p.to_string()),
            None => g.remove(key),
        };
    }

    /// Observe the creation-to-pods latency.
    pub fn pods_created(&self, secs: f64) {
        lock(&self.to_pods).observe(secs);
    }

    /// Observe the creation-to-completion latency.
    pub fn completed(&self, secs: f64) {
        lock(&self.to_done).observe(secs);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
        };
        counter(&mut out, "secretflow_reconciles_total", "Reconciles run.", self.reconciles.load(Ordering::Relaxed));
        counter(
            &mut out,
            "secretflow_reconcile_errors_total",
            "Reconciles that failed.",
            self.errors.load(Ordering::Relaxed),
        );
        out.push_str("# HELP secretflow_tasks Tasks by phase.\n# TYPE secretflow_tasks gauge\n");
        let mut by_phase: BTreeMap<String, u64> =
            ["Pending", "Running", "Succeeded", "Failed"].iter().map(|p| (p.to_string(), 0)).collect();
        for p in lock(&self.phases).values() {
            *by_phase.entry(p.clone()).or_default() += 1;
        }
        for (p, n) in by_phase {
            out.push_str(&format!("secretflow_tasks{{phase=\"{p}\"}} {n}\n"));
        }
        lock(&self.to_pods).render(
            "secretflow_task_pods_created_seconds",
            "Time from task creation to all party pods created.",
            &mut out,
        );
        lock(&self.to_done).render(
            "secretflow_task_completion_seconds",
            "Time from task creation to a terminal phase.",
            &mut out,
        );
        out
    }
}

/// Serve `/metrics` and `/healthz` on `addr` until the process ends.
pub async fn serve(addr: std::net::SocketAddr, metrics: std::sync::Arc<Metrics>) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { metrics.render() }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_phases_and_histograms() {
        let m = Metrics::default();
        m.reconciles.fetch_add(3, Ordering::Relaxed);
        m.phase("ns/a", Some("Running"));
        m.phase("ns/b", Some("Running"));
        m.phase("ns/b", None);
        m.pods_created(0.3);
        let text = m.render();
        assert!(text.contains("secretflow_reconciles_total 3\n"));
        assert!(text.contains("secretflow_tasks{phase=\"Running\"} 1\n"));
        assert!(text.contains("secretflow_task_pods_created_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("secretflow_task_pods_created_seconds_bucket{le=\"0.25\"} 0\n"));
    }
}
