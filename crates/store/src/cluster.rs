//! Cluster mode: the log of record is a JetStream stream replicated over NATS servers,
//! and every Tafel node keeps its own copy of it in a [`SledLog`].
//!
//! - **Appends** are published to the stream, one subject per Tafel stream
//!   (`tafel.log.<hex of the stream name>`), with `Nats-Msg-Id` set to the event id and
//!   the decision's check: `Nats-Expected-Last-Subject-Sequence` (the stream version the
//!   decision saw, as the stream sequence of that version's event) or, for a decision
//!   that read several aggregates, `Nats-Expected-Last-Sequence` on the whole stream
//!   (nothing at all appended since the position the decision was made at). The
//!   acknowledged stream sequence is the event's `sequence`. The append answers once this
//!   node's copy holds the event, so a node reads its own writes.
//! - **Following**: each node reads the stream through a durable pull consumer of its
//!   own, writes what it reads into its copy at exactly the stream's sequences
//!   ([`crate::writer`]'s replicate path: a gap or a doubled id is refused), and
//!   acknowledges only after its local flush.
//! - **Idempotency for ever**: JetStream drops a resent `Nats-Msg-Id` only within the
//!   stream's duplicate window ([`DUPLICATE_WINDOW`]); past it, every node's copy holds
//!   a permanent id index. Before publishing a new id a node makes sure its copy was
//!   caught up with the stream at most [`MAX_LAG`] ago (else it reads the stream's end and
//!   waits for its copy to get there): an original acknowledged before that is then in the
//!   copy's index, and one acknowledged after it is within the duplicate window, which is
//!   far longer than `MAX_LAG`.
//!
//! Everything else (reads, subscriptions, snapshots) is the local copy's, so the service
//! above does not know which mode runs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, context::PublishErrorKind, message::PublishMessage, stream};
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::error::{AppendError, ReadError};
use crate::writer::Replicated;
use crate::{AppendBatch, Appended, EventLog, ExpectedVersion, IdLookup, SledLog};

/// The JetStream stream that is the log of record.
pub const STREAM_NAME: &str = "TAFEL_LOG";
/// Subjects of the log: `tafel.log.<hex of the Tafel stream name>`.
pub const SUBJECT_PREFIX: &str = "tafel.log.";
/// How long JetStream drops a resent event id by itself.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How old this node's last "caught up with the stream" may be when it publishes a new
/// event id (see the module's documentation).
pub const MAX_LAG: Duration = Duration::from_secs(30);
/// Longest wait for this node's copy to hold an acknowledged event before the append
/// answers `unavailable` (the event is stored; a resend is answered as a duplicate).
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait, after a refused check, for this node's copy to show what moved.
const CONFLICT_WAIT: Duration = Duration::from_secs(2);
/// Header naming the event's principal.
const PRINCIPAL_HEADER: &str = "Tafel-Principal";
/// Header holding the SHA-256 (hex) of the event's identity bytes.
const IDENTITY_HEADER: &str = "Tafel-Identity";
/// Header holding the format of the message, for later versions.
const FORMAT_HEADER: &str = "Tafel-Log-Format";
const FORMAT: &str = "1";
/// Most messages the follower asks for at once and writes in one local group commit.
/// The connection it follows on must buffer several such batches per subscription, or
/// the client drops messages while a node catches up (it asks for the next batch before
/// this one is written).
pub const FOLLOW_BATCH: usize = 1024;

/// How a node joins the cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// This node's name, unique in the cluster: its durable consumer is `tafel-<node>`.
    pub node: String,
    /// Replicas of the stream when this node creates it (3 in production).
    pub replicas: usize,
    /// Whether this node may create the stream when it does not exist: only the first
    /// start of a new cluster. Otherwise a missing stream (servers that lost their
    /// stores) is waited for, never silently replaced by an empty history.
    pub create_stream: bool,
}

/// The JetStream side of a [`SledLog`] in cluster mode.
pub(crate) struct Cluster {
    js: jetstream::Context,
    node: String,
    /// When this node's copy last held everything the stream had.
    caught_up_at: Mutex<Option<Instant>>,
    /// Why the follower is not following, while it is not.
    follow_failure: Mutex<Option<String>>,
    /// Held while asking the stream for its end (see [`Cluster::sync`]).
    syncing: tokio::sync::Mutex<()>,
    stop: watch::Sender<bool>,
    follower: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Why a node could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("the cluster's log: {0}")]
    Stream(String),
    #[error(transparent)]
    Open(#[from] crate::OpenError),
    #[error("catching up with the cluster's log: {0}")]
    CatchUp(String),
    #[error("invalid node name {0:?}: 1-64 letters, digits, '-' or '_'")]
    Node(String),
    #[error(
        "this node's copy is not a copy of the cluster's log: {0}. Move the data directory aside and start \
         again to copy the cluster's log afresh (deploy/RUNBOOK.md, \"Cluster mode\")"
    )]
    Diverged(String),
}

/// Opens this node's copy in `dir`, makes sure the stream exists, starts following it
/// and returns once the copy holds everything the stream held when it was asked.
pub async fn open(
    dir: &std::path::Path,
    options: crate::OpenOptions,
    client: async_nats::Client,
    cluster: ClusterOptions,
) -> Result<SledLog, ClusterError> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if cluster.node.is_empty() || cluster.node.len() > 64 || !cluster.node.chars().all(valid) {
        return Err(ClusterError::Node(cluster.node));
    }
    let js = jetstream::ContextBuilder::new().timeout(Duration::from_secs(10)).build(client);
    // The servers may still be electing a leader (they start together), or the stream
    // may be being restored: wait for them.
    let mut attempts = 0u32;
    loop {
        match ensure_stream(&js, cluster.replicas, cluster.create_stream).await {
            Ok(()) => break,
            Err(ClusterError::JetStream(cause)) => {
                attempts += 1;
                if attempts == 1 || attempts.is_power_of_two() {
                    warn!(%cause, attempts, "the cluster's log is not reachable yet");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(other) => return Err(other),
        }
    }
    let (stop, _) = watch::channel(false);
    let state = Arc::new(Cluster {
        js,
        node: cluster.node,
        caught_up_at: Mutex::new(None),
        follow_failure: Mutex::new(None),
        syncing: tokio::sync::Mutex::new(()),
        stop,
        follower: Mutex::new(None),
    });
    let dir = dir.to_path_buf();
    let log = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || SledLog::open_with(&dir, options, Some(state)))
            .await
            .map_err(|cause| ClusterError::CatchUp(cause.to_string()))??
    };
    // A copy that holds what the stream does not (the stream was made anew, or this
    // directory belongs to another cluster) would have a different history appended to
    // its old one: refuse to serve it.
    loop {
        match state.same_history(&log).await {
            Ok(()) => break,
            Err(ClusterError::JetStream(cause)) => {
                warn!(%cause, "cannot compare this node's copy with the cluster's log yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(why) => {
                log.shutdown().await;
                return Err(why);
            }
        }
    }
    let follower = tokio::spawn(follow(log.clone(), state.clone()));
    *lock(&state.follower) = Some(follower);
    let started = Instant::now();
    info!(node = %state.node, events = log.last_sequence(), "catching up with the cluster's log");
    loop {
        match state.sync(&log, Duration::from_secs(60)).await {
            Ok(()) => break,
            Err(cause) => {
                warn!(%cause, "not caught up with the cluster's log yet");
                if *state.stop.borrow() {
                    return Err(ClusterError::CatchUp(cause.to_string()));
                }
            }
        }
    }
    info!(events = log.last_sequence(), seconds = started.elapsed().as_secs_f64(), "caught up with the cluster's log");
    Ok(log)
}

async fn ensure_stream(js: &jetstream::Context, replicas: usize, create: bool) -> Result<(), ClusterError> {
    let config = stream::Config {
        name: STREAM_NAME.to_owned(),
        description: Some("Tafel's log of record".to_owned()),
        subjects: vec![format!("{SUBJECT_PREFIX}>")],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: DUPLICATE_WINDOW,
        // The log is never shortened: no limits, nothing deleted or purged.
        retention: stream::RetentionPolicy::Limits,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        max_message_size: (crate::MAX_PAYLOAD_BYTES + 8 * 1024) as i32,
        ..Default::default()
    };
    let mut stream = if create {
        js.get_or_create_stream(config).await.map_err(|e| ClusterError::JetStream(e.to_string()))?
    } else {
        js.get_stream(STREAM_NAME).await.map_err(|e| {
            ClusterError::JetStream(format!(
                "{e} (a new cluster's first node is started with --create-log; an existing cluster's stream must \
                 be restored)"
            ))
        })?
    };
    let info = stream.info().await.map_err(|e| ClusterError::JetStream(e.to_string()))?;
    if info.config.duplicate_window < MAX_LAG * 4 {
        return Err(ClusterError::Stream(format!(
            "the stream {STREAM_NAME} drops resent ids for only {:?}; it must be at least {:?}",
            info.config.duplicate_window,
            MAX_LAG * 4
        )));
    }
    if info.config.num_replicas != replicas {
        warn!(found = info.config.num_replicas, asked = replicas, "the log's stream has another number of replicas");
    }
    if !info.config.deny_delete || !info.config.deny_purge {
        warn!("the log's stream allows deleting or purging messages: a node's copy would stop at the gap");
    }
    Ok(())
}

impl Cluster {
    /// Whether the stream holds this copy's history: at least as many messages, and the
    /// same event at the copy's last sequence.
    async fn same_history(&self, log: &SledLog) -> Result<(), ClusterError> {
        let last = log.last_sequence();
        if last == 0 {
            return Ok(());
        }
        let jetstream = |e: String| ClusterError::JetStream(e);
        let stream = self.js.get_stream(STREAM_NAME).await.map_err(|e| jetstream(e.to_string()))?;
        let end = stream.cached_info().state.last_sequence;
        if end < last {
            return Err(ClusterError::Diverged(format!("it holds {last} events, the cluster's log {end}")));
        }
        let message = stream.get_raw_message(last).await.map_err(|e| jetstream(e.to_string()))?;
        let id = message.headers.get("Nats-Msg-Id").map(|id| id.as_str().to_owned());
        let theirs = id.map(|id| (id, message.subject.to_string()));
        let ours = blocking(log, move |log| log.read_from(last, 1)).await.map_err(|e| jetstream(e.to_string()))?;
        let ours = ours.first().map(|event| (event.id.clone(), subject_of(&event.stream)));
        if theirs != ours {
            return Err(ClusterError::Diverged(format!(
                "at sequence {last} it holds event {ours:?}, the cluster's log {theirs:?}"
            )));
        }
        Ok(())
    }

    /// Appends one event through the stream (see the module's documentation).
    pub(crate) async fn append(&self, log: &SledLog, batch: AppendBatch) -> Result<Appended, AppendError> {
        if batch.events.len() != 1 {
            return Err(AppendError::InvalidBatch("cluster mode appends one event at a time".into()));
        }
        // A node that does not follow the log would store events it cannot answer for;
        // one whose connection is down would leave the publish queued in the client, to
        // be sent whenever it reconnects (perhaps after the duplicate window).
        if let Some(why) = self.follow_failure() {
            return Err(AppendError::Unavailable(format!("this node does not follow the cluster's log: {why}")));
        }
        if self.js.client().connection_state() != async_nats::connection::State::Connected {
            return Err(AppendError::Unavailable("this node is not connected to the cluster".into()));
        }
        if lock(&self.caught_up_at).is_none_or(|at| at.elapsed() > MAX_LAG) {
            self.sync(log, APPLY_TIMEOUT).await.map_err(|cause| AppendError::Unavailable(cause.to_string()))?;
        }
        // The copy's reads are sled's, which may block: off the async workers.
        let prepared = {
            let batch = batch.clone();
            blocking(log, move |log| Ok(prepare(log, &batch))).await.map_err(unavailable)??
        };
        let event = &batch.events[0];
        let check = match prepared {
            Prepared::Duplicate(position) => return Ok(Appended { positions: vec![position], duplicate: true }),
            Prepared::Publish(check) => check,
        };
        let digest = crate::sled_log::identity_sha256(&event.identity);
        let mut message = PublishMessage::build()
            .payload(event.payload.clone().into())
            .message_id(&event.id)
            .header(FORMAT_HEADER, FORMAT)
            .header(PRINCIPAL_HEADER, event.principal.as_str())
            .header(IDENTITY_HEADER, hex(&digest).as_str());
        match check {
            Check::Log(after) => message = message.expected_last_sequence(after),
            Check::Stream { sequence, .. } => message = message.expected_last_subject_sequence(sequence),
            Check::None => {}
        }
        let published = self.js.send_publish(subject_of(&batch.stream), message).await;
        let acknowledged = match published {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        match acknowledged {
            Ok(ack) => {
                log.wait_durable(ack.sequence, APPLY_TIMEOUT).await.map_err(|cause| {
                    AppendError::Unavailable(format!(
                        "the cluster stored the event at sequence {}, but this node's copy has not got there yet \
                         ({cause})",
                        ack.sequence
                    ))
                })?;
                let (id, identity) = (event.id.clone(), event.identity.clone());
                let lookup = blocking(log, move |log| log.lookup_id(&id, &identity)).await.map_err(unavailable)?;
                match lookup {
                    IdLookup::Duplicate(position) if position.sequence == ack.sequence => {
                        Ok(Appended { positions: vec![position], duplicate: ack.duplicate })
                    }
                    IdLookup::Conflict => Err(AppendError::IdConflict { id: event.id.clone() }),
                    other => Err(AppendError::Unavailable(format!(
                        "the cluster stored event {:?} at sequence {}, but this node's copy says {other:?}",
                        event.id, ack.sequence
                    ))),
                }
            }
            Err(error) if is_wrong_last_sequence(&error) => {
                // Something moved: wait (briefly) until this copy shows it, so that the
                // decision is made again on the new state rather than the same old one.
                match check {
                    Check::Log(after) => {
                        let _ = log.wait_durable(after + 1, CONFLICT_WAIT).await;
                        let stream = batch.condition.streams.first().cloned().unwrap_or_default();
                        Err(AppendError::ConditionFailed { stream, after })
                    }
                    Check::Stream { version: expected, .. } => {
                        // The stream's event after `expected` is somewhere past this
                        // copy's end: wait for the copy to grow until it holds it.
                        let deadline = Instant::now() + CONFLICT_WAIT;
                        let stream = batch.stream.clone();
                        let mut actual = expected;
                        while Instant::now() < deadline {
                            let end = log.last_sequence();
                            let name = stream.clone();
                            actual = blocking(log, move |log| log.stream_version(&name)).await.map_err(unavailable)?;
                            if actual != expected {
                                break;
                            }
                            let _ = log.wait_durable(end + 1, deadline.saturating_duration_since(Instant::now())).await;
                        }
                        Err(AppendError::VersionConflict { stream, expected, actual })
                    }
                    Check::None => Err(AppendError::Unavailable(error.to_string())),
                }
            }
            Err(error) => Err(AppendError::Unavailable(format!("the cluster did not take the event: {error}"))),
        }
    }

    /// Waits until this node's copy holds everything the stream held when asked. Callers
    /// at the same time share one question to the stream: one that finds the copy
    /// caught up since it asked returns at once.
    pub(crate) async fn sync(&self, log: &SledLog, timeout: Duration) -> Result<(), ReadError> {
        let asked = Instant::now();
        let _one_at_a_time = self.syncing.lock().await;
        if lock(&self.caught_up_at).is_some_and(|at| at >= asked) {
            return Ok(());
        }
        let asked = Instant::now();
        let last = self.stream_end().await?;
        log.wait_durable(last, timeout).await?;
        self.caught_up(asked);
        Ok(())
    }

    /// The stream's last sequence, asked of the cluster now.
    async fn stream_end(&self) -> Result<u64, ReadError> {
        let stream = self
            .js
            .get_stream(STREAM_NAME)
            .await
            .map_err(|e| ReadError::Unavailable(format!("the cluster's log: {e}")))?;
        Ok(stream.cached_info().state.last_sequence)
    }

    fn caught_up(&self, at: Instant) {
        let mut caught_up_at = lock(&self.caught_up_at);
        if caught_up_at.is_none_or(|known| known < at) {
            *caught_up_at = Some(at);
        }
    }

    /// Why this node does not follow the cluster's log now, if it does not.
    pub(crate) fn follow_failure(&self) -> Option<String> {
        lock(&self.follow_failure).clone()
    }

    /// Stops following; returns once the follower has.
    pub(crate) async fn stop(&self) {
        self.stop.send_replace(true);
        let follower = lock(&self.follower).take();
        if let Some(follower) = follower {
            let _ = follower.await;
        }
    }
}

/// What the publish must find unchanged.
enum Check {
    /// Nothing at all appended after this position (a decision that read several
    /// aggregates).
    Log(u64),
    /// The stream at `version`, whose last event has the log's `sequence`.
    Stream {
        version: u64,
        sequence: u64,
    },
    None,
}

/// What the copy says before a publish.
enum Prepared {
    /// The event is in the log already, here.
    Duplicate(crate::Position),
    Publish(Check),
}

/// The copy's answers for an append (blocking sled reads): whether the id is known,
/// and the check the publish carries.
fn prepare(log: &SledLog, batch: &AppendBatch) -> Result<Prepared, AppendError> {
    let event = &batch.events[0];
    match log.lookup_id(&event.id, &event.identity).map_err(unavailable)? {
        IdLookup::Duplicate(position) => return Ok(Prepared::Duplicate(position)),
        IdLookup::Conflict => return Err(AppendError::IdConflict { id: event.id.clone() }),
        IdLookup::Unknown => {}
    }
    if !batch.condition.streams.is_empty() {
        return Ok(Prepared::Publish(Check::Log(batch.condition.after)));
    }
    let ExpectedVersion::Exactly(version) = batch.expected else {
        return Ok(Prepared::Publish(Check::None));
    };
    let sequence = match version {
        0 => 0,
        version => match log.read_stream(&batch.stream, version).map_err(unavailable)?.first() {
            Some(head) if head.stream_version == version => head.sequence,
            // The decision saw a version this copy does not hold (yet).
            _ => {
                let actual = log.stream_version(&batch.stream).map_err(unavailable)?;
                return Err(AppendError::VersionConflict { stream: batch.stream.clone(), expected: version, actual });
            }
        },
    };
    Ok(Prepared::Publish(Check::Stream { version, sequence }))
}

/// Runs `read` on the copy on a blocking thread.
async fn blocking<T: Send + 'static>(
    log: &SledLog,
    read: impl FnOnce(&SledLog) -> Result<T, ReadError> + Send + 'static,
) -> Result<T, ReadError> {
    let log = log.clone();
    tokio::task::spawn_blocking(move || read(&log)).await.map_err(|e| ReadError::Unavailable(e.to_string()))?
}

/// Follows the stream into the local copy until stopped, starting again from the copy's
/// end after any failure.
async fn follow(log: SledLog, cluster: Arc<Cluster>) {
    let mut stop = cluster.stop.subscribe();
    let mut failures = 0u32;
    loop {
        let before = log.last_sequence();
        let outcome = tokio::select! {
            outcome = follow_once(&log, &cluster) => outcome,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        let Err(cause) = outcome else { return };
        // The pause grows with failures in a row, not with failures ever.
        if log.last_sequence() > before {
            failures = 0;
        }
        failures += 1;
        if failures == 1 || failures.is_power_of_two() {
            warn!(%cause, failures, "following the cluster's log failed; starting again from this node's copy");
        }
        *lock(&cluster.follow_failure) = Some(cause);
        let pause = Duration::from_millis(100 * u64::from(failures.min(20)));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// One run of the follower: a fresh durable consumer from the copy's end, then every
/// message into the copy, acknowledged after each local flush.
async fn follow_once(log: &SledLog, cluster: &Cluster) -> Result<(), String> {
    cluster.same_history(log).await.map_err(|e| e.to_string())?;
    let stream = cluster.js.get_stream_no_info(STREAM_NAME).await.map_err(|e| e.to_string())?;
    let durable = format!("tafel-{}", cluster.node);
    // Made afresh from what this copy holds: the copy, not the consumer, is what says
    // how far this node got.
    match stream.delete_consumer(&durable).await {
        Ok(_) => {}
        Err(error) if error.to_string().contains("not found") => {}
        Err(error) => return Err(format!("removing the old consumer {durable}: {error}")),
    }
    let start = log.last_sequence() + 1;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.clone()),
            description: Some(format!("Tafel node {}", cluster.node)),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: start },
            ack_policy: consumer::AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 20_000,
            // Its state is this node's alone and made afresh from the copy at each
            // start: one replica in memory spares every acknowledgement a Raft round
            // over three servers' disks.
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("creating the consumer {durable}: {e}"))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(FOLLOW_BATCH)
        .heartbeat(Duration::from_secs(5))
        .messages()
        .await
        .map_err(|e| e.to_string())?;
    debug!(%durable, start, "following the cluster's log");
    *lock(&cluster.follow_failure) = None;
    loop {
        let first = messages.next().await.ok_or("the consumer's messages ended")?;
        let mut received = vec![first.map_err(|e| e.to_string())?];
        while received.len() < FOLLOW_BATCH {
            match messages.next().now_or_never() {
                Some(Some(message)) => received.push(message.map_err(|e| e.to_string())?),
                _ => break,
            }
        }
        let arrived = Instant::now();
        let mut events = Vec::with_capacity(received.len());
        let mut none_pending = false;
        for message in &received {
            let (event, pending) = replicated(message)?;
            none_pending = pending == 0;
            events.push(event);
        }
        log.replicate(events).await.map_err(|e| format!("writing this node's copy: {e}"))?;
        if let Some(last) = received.last() {
            last.ack().await.map_err(|e| format!("acknowledging: {e}"))?;
        }
        if none_pending {
            // Everything the stream held when it sent the last message is in the copy.
            cluster.caught_up(arrived);
        }
    }
}

/// A message of the stream as the event it holds, and how many messages the stream
/// held after it when it was sent.
fn replicated(message: &jetstream::Message) -> Result<(Replicated, u64), String> {
    let info = message.info().map_err(|e| format!("a message without its stream metadata: {e}"))?;
    let sequence = info.stream_sequence;
    let bad = |why: &str| format!("stream message {sequence}: {why}");
    let headers = message.headers.as_ref().ok_or_else(|| bad("no headers"))?;
    let header = |name: &str| headers.get(name).map(|value| value.as_str().to_owned());
    if header(FORMAT_HEADER).as_deref() != Some(FORMAT) {
        return Err(bad("an unknown message format (a newer Tafel wrote it?)"));
    }
    let stream = message
        .subject
        .as_str()
        .strip_prefix(SUBJECT_PREFIX)
        .and_then(unhex)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| bad("a subject that names no stream"))?;
    let id = header("Nats-Msg-Id").ok_or_else(|| bad("no event id"))?;
    let principal = header(PRINCIPAL_HEADER).ok_or_else(|| bad("no principal"))?;
    let identity_sha256 = header(IDENTITY_HEADER)
        .and_then(|text| unhex(&text))
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| bad("no identity digest"))?;
    let published_ms = (info.published.unix_timestamp_nanos() / 1_000_000) as i64;
    let event = Replicated {
        sequence,
        stream,
        id,
        principal,
        identity_sha256,
        published_ms,
        payload: message.payload.to_vec(),
    };
    Ok((event, info.pending))
}

/// The subject of a Tafel stream: stream names may hold characters NATS subjects may not.
pub fn subject_of(stream: &str) -> String {
    format!("{SUBJECT_PREFIX}{}", hex(stream.as_bytes()))
}

/// Bytes as lower-case hex (subjects, digests in headers, the log's identity).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok()).collect()
}

/// Whether the server refused the publish because its expected last sequence did not
/// hold. async-nats knows the error code 10071 ("wrong last sequence: N"); newer servers
/// answer a subject's check with 10164 ("wrong last sequence"), which it leaves as
/// `Other`, so the server's text is read too.
fn is_wrong_last_sequence(error: &jetstream::context::PublishError) -> bool {
    error.kind() == PublishErrorKind::WrongLastSequence || error.to_string().contains("wrong last sequence")
}

fn unavailable(error: ReadError) -> AppendError {
    AppendError::Unavailable(error.to_string())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_name_survives_its_subject() {
        for name in ["request/acme.1", "mandate/x y*>", "ü"] {
            let subject = subject_of(name);
            assert!(subject.starts_with(SUBJECT_PREFIX));
            let token = &subject[SUBJECT_PREFIX.len()..];
            assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
            assert_eq!(unhex(token).map(String::from_utf8), Some(Ok(name.to_owned())));
        }
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
