//! The name of every metric Tafel records, in one place. Code records through the
//! `metrics` facade's macros; the gateway installs the recorder that renders them at
//! `/metrics` (Prometheus text format).

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
