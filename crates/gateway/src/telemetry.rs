//! Metrics through the `metrics` facade, rendered in Prometheus's text format by
//! `metrics-exporter-prometheus` at `/metrics`. Code anywhere records with the facade's
//! macros (the store too: group-commit sizes and fsync times); this module installs the
//! process's recorder once, names every metric in one place, and sets the gauges that
//! are read off the service when `/metrics` is asked.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use tafel_service::telemetry::*;

/// How often the recorder folds recorded samples into its histograms (they are held
/// until then).
pub const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Latency buckets, in seconds: 0.1 ms to 10 s.
const SECONDS_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0];
/// Group-commit sizes, in events.
const EVENTS_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 8192.0];

/// The process's recorder, installed on first use; its handle renders `/metrics`.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(Matcher::Full(tafel_store::METRIC_GROUP_EVENTS.into()), &EVENTS_BUCKETS)
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder was installed first; then that one records.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
