//! Metrics through the `metrics` facade, rendered in Prometheus's text format by
//! `metrics-exporter-prometheus` at `/metrics`. Code anywhere records with the facade's
//! macros (the store too: group-commit sizes and fsync times); this module installs the
//! process's recorder once, names every metric in one place, and sets the gauges that
//! are read off the service when `/metrics` is asked.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Submits answered, by `type` (`unknown` when it did not parse) and `result`
/// (`accepted`, `duplicate`, `refused`).
pub const SUBMITS: &str = "tafel_submits_total";
/// Refusals, by contract error `code`, submits and queries alike.
pub const REFUSALS: &str = "tafel_refusals_total";
/// Seconds from a submit's arrival to its reply.
pub const SUBMIT_SECONDS: &str = "tafel_submit_seconds";
/// Seconds from a query's arrival to its reply, by `query`.
pub const QUERY_SECONDS: &str = "tafel_query_seconds";
/// Submits decided again because something they read moved before the append.
pub const DECISIONS_REDONE: &str = "tafel_decisions_redone_total";
/// Changed shortlists published on NATS.
pub const SHORTLISTS_PUBLISHED: &str = "tafel_shortlist_updates_published_total";
/// Connections made to NATS, the first included (so reconnects are this minus one).
pub const NATS_CONNECTS: &str = "tafel_nats_connects_total";
/// Durable events the views have not applied yet.
pub const PROJECTION_LAG: &str = "tafel_projection_lag_events";
/// The last durable sequence of the log.
pub const LOG_LAST_SEQUENCE: &str = "tafel_log_last_sequence";
/// Bytes the log takes on disk.
pub const LOG_SIZE_BYTES: &str = "tafel_log_size_bytes";
/// Live shortlist readers (server-sent events).
pub const SHORTLIST_FOLLOWERS: &str = "tafel_shortlist_followers";
/// Parts that stopped or refuse (views, fan-out, log writer).
pub const PARTS_STOPPED: &str = "tafel_parts_stopped";

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
