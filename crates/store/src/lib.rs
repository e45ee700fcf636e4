//! Tafel's durable event log.
//!
//! Every fact in Tafel is an event appended to one log; every view is rebuilt from it.
//! This crate keeps that log and knows nothing of what the events mean: a
//! [`NewEvent`] is an id, a principal, the `identity` bytes that decide whether a
//! resent id is a duplicate, and an opaque payload.
//!
//! [`EventLog`] is the log's API in Tafel's own terms: append a batch to one stream
//! with an optional expected version, look an event id up, read a stream, read
//! everything from a position, and [`EventLog::subscribe`] from a position. It is
//! shaped so that a replicated backend (a JetStream stream, on the roadmap) can
//! implement it: sequences are assigned by the backend on commit, and nothing in the
//! API assumes appends are local.
//!
//! [`SledLog`] is the embedded backend. One writer thread owns every write
//! ([`writer`]): it takes whatever appends are queued, decides each against the
//! stream heads and the id index, writes all of them in one atomic sled batch, flushes
//! once (group commit), and only then answers. Readers see an event only once it is
//! durable: reads and subscriptions are clamped to the durable watermark the writer
//! publishes after each flush. [`record`] is the versioned, checksummed on-disk format.

pub mod cluster;
mod error;
mod keys;
pub mod record;
mod sled_log;
mod subscription;
mod writer;

use std::future::Future;

pub use cluster::{ClusterError, ClusterOptions};
pub use error::{AppendError, OpenError, ReadError};
pub use sled_log::{OpenOptions, SledLog, Verify, identity_sha256};
pub use subscription::SledSubscription;
pub use writer::Replicated;

/// The metric (a histogram, through the `metrics` facade) of how many events each group
/// commit wrote.
pub const METRIC_GROUP_EVENTS: &str = "tafel_log_group_commit_events";
/// The metric (a histogram, in seconds) of each group commit's write and fsync.
pub const METRIC_FLUSH_SECONDS: &str = "tafel_log_flush_seconds";

/// Most events in one append batch.
pub const MAX_BATCH_EVENTS: usize = 1024;
/// Longest stream name, in bytes.
pub const MAX_STREAM_BYTES: usize = 200;
/// Longest event id, in bytes (the contract allows 128 characters of up to 4 bytes).
pub const MAX_EVENT_ID_BYTES: usize = 512;
/// Longest principal name, in bytes.
pub const MAX_PRINCIPAL_BYTES: usize = 128;
/// Largest payload of one event, in bytes. The contract caps an incoming event at
/// 64 KiB; the stored payload is that event re-serialised, so this leaves headroom. It
/// is also bounded by [`SEGMENT_SIZE_BYTES`]: a sled leaf of up to about 17 records of
/// this size must stay under sled's blob threshold (see there).
pub const MAX_PAYLOAD_BYTES: usize = 80 * 1024;
/// sled's segment size for a new log. sled 0.34 writes any page over a quarter of a
/// segment as a separate blob file and never fsyncs blob files: an acknowledged record
/// in one could be lost on power failure. With 8 MiB segments a quarter is 2 MiB, more
/// than a leaf of the largest records (sled splits a leaf past 16 entries; 17 records of
/// [`MAX_PAYLOAD_BYTES`] plus their keys are about 1.4 MiB), so no page of the log is
/// ever a blob. A log created with another segment size keeps it (sled refuses to
/// change it), and opening it warns.
pub const SEGMENT_SIZE_BYTES: usize = 8 * 1024 * 1024;

/// An event to append. `identity` holds the bytes that decide, when the same `id` is
/// appended again, whether it is a duplicate (equal bytes) or a conflict (other
/// bytes); the store keeps only their SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub id: String,
    pub principal: String,
    pub identity: Vec<u8>,
    pub payload: Vec<u8>,
}

/// What a stream's version must be before an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Whatever it is.
    Any,
    /// Exactly this; `Exactly(0)` means the stream must not exist yet.
    Exactly(u64),
}

/// Events to append atomically to one stream: all of them or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendBatch {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    /// What else must still hold when the batch is written: the decision's consistency
    /// boundary (see [`AppendCondition`]).
    pub condition: AppendCondition,
    /// Other streams whose state these events change without being appended to them (a
    /// round table's conclusion spends its mandates' budgets). A condition on one of
    /// them sees this batch as an event on it.
    pub touches: Vec<String>,
}

impl AppendBatch {
    /// A batch with no condition beyond `expected` and touching only its own stream.
    pub fn new(stream: impl Into<String>, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self { stream: stream.into(), expected, events, condition: AppendCondition::default(), touches: Vec::new() }
    }
}

/// A dynamic consistency boundary (dcb.events): "no event on any of `streams` after
/// log position `after`". A decision that read several aggregates names their streams
/// and the position it was made at; the writer checks the condition atomically with
/// the append and refuses with [`AppendError::ConditionFailed`] when any of them moved,
/// so that the decision is made again on the new state instead of being appended on
/// the old one.
///
/// An event is "on" a stream when it is appended to it or names it in
/// [`AppendBatch::touches`]. A replicated backend can check the same condition with
/// JetStream's `Nats-Expected-Last-Subject-Sequence` (one stream) or
/// `Nats-Expected-Last-Sequence` set to `after` on the whole log (several streams).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendCondition {
    /// The log position the decision was made at.
    pub after: u64,
    /// The streams the decision read; empty means no condition.
    pub streams: Vec<String>,
}

/// Where an event sits: its place in the whole log and in its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Global position, from 1, gap-free, strictly increasing.
    pub sequence: u64,
    /// The stream's version after this event, from 1.
    pub stream_version: u64,
}

/// The answer to a successful append: one position per event, in order. For a
/// duplicate, nothing was appended and the positions are the originals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub positions: Vec<Position>,
    pub duplicate: bool,
}

/// An event as committed, with everything the store added to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    pub sequence: u64,
    pub stream: String,
    pub stream_version: u64,
    pub id: String,
    pub principal: String,
    /// Commit time, milliseconds since the Unix epoch; never decreases along the log.
    pub recorded_at_ms: i64,
    pub payload: Vec<u8>,
}

impl RecordedEvent {
    pub fn position(&self) -> Position {
        Position { sequence: self.sequence, stream_version: self.stream_version }
    }
}

/// What the log knows of an event id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdLookup {
    /// Never appended (or not yet durable).
    Unknown,
    /// Appended with the same identity, at this position.
    Duplicate(Position),
    /// Appended with another identity.
    Conflict,
}

/// A catch-up read that turns into a live tail: every durable event from its starting
/// position, in order, each exactly once.
pub trait Subscription: Send {
    fn next(&mut self) -> impl Future<Output = Result<RecordedEvent, ReadError>> + Send;
}

/// Tafel's event log, whatever keeps it.
pub trait EventLog: Send + Sync {
    type Subscription: Subscription;

    /// Appends `batch` and answers once it is durable.
    fn append(&self, batch: AppendBatch) -> impl Future<Output = Result<Appended, AppendError>> + Send;

    /// Whether `id` was appended, and with the same `identity` or not.
    fn lookup_id(&self, id: &str, identity: &[u8]) -> Result<IdLookup, ReadError>;

    /// The stream's durable version; 0 when it does not exist.
    fn stream_version(&self, stream: &str) -> Result<u64, ReadError>;

    /// The stream's events with versions from `from_version`, in order.
    fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<RecordedEvent>, ReadError>;

    /// Up to `limit` durable events from `from_sequence` on, in order.
    fn read_from(&self, from_sequence: u64, limit: usize) -> Result<Vec<RecordedEvent>, ReadError>;

    /// The last durable sequence; 0 for an empty log.
    fn last_sequence(&self) -> u64;

    /// Every durable event from `from_sequence` on, then each new one as it becomes durable.
    fn subscribe(&self, from_sequence: u64) -> Self::Subscription;
}
