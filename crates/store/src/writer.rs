//! The one thread that writes the log, with group commit.
//!
//! sled's calls block, and a flush is an fsync, so they run here, on a thread of their
//! own, never on an async runtime's worker. The loop: wait for one command, take every
//! other command already queued (up to [`MAX_GROUP_EVENTS`]), decide each append
//! against the stream heads and the id index (as left by the appends before it in the
//! same group), write all accepted events of the group in one atomic sled batch, flush
//! once, publish the new durable watermark, and only then answer. While one group is
//! being flushed the next one queues up, so under load one fsync serves many appends.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::OpenOptions;
use crate::error::AppendError;
use crate::keys::{self, IdEntry};
use crate::record;
use crate::sled_log::{Handles, Slot, checkpoint, open_db};
use crate::{AppendBatch, Appended, ExpectedVersion, Position, RecordedEvent};

/// Most events one group commit takes; the rest wait for the next flush.
pub const MAX_GROUP_EVENTS: usize = 8192;

pub(crate) enum Command {
    Append(QueuedAppend),
    /// Events another log of record has sequenced already (cluster mode: the JetStream
    /// stream), to be written at exactly their sequences.
    Replicate(QueuedReplicate),
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// An event as the log of record sequenced it, for a replica to write as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replicated {
    pub sequence: u64,
    pub stream: String,
    pub id: String,
    pub principal: String,
    /// SHA-256 of the event's identity bytes, as the appender computed it.
    pub identity_sha256: [u8; 32],
    /// When the log of record took it; the replica records the latest of this and every
    /// earlier event's time, so that commit times never decrease along the log.
    pub published_ms: i64,
    pub payload: Vec<u8>,
}

/// Replicated events waiting for the writer; answered once they are durable.
pub(crate) struct QueuedReplicate {
    pub events: Vec<Replicated>,
    pub reply: oneshot::Sender<Result<(), AppendError>>,
}

/// An append waiting for the writer.
pub(crate) struct QueuedAppend {
    pub batch: AppendBatch,
    /// SHA-256 of each event's identity, computed by the appender.
    pub digests: Vec<[u8; 32]>,
    pub reply: oneshot::Sender<Result<Appended, AppendError>>,
}

/// What the writer tells the log's readers: how far the log is durable, and why it
/// refuses writes, if it does.
pub(crate) struct WriterSignals {
    pub durable: watch::Sender<u64>,
    pub failure: SharedFailure,
}

/// Why the writer refuses appends, if it does, and how many times it has reopened the
/// log. A reader whose read failed while the log was being reopened compares the count
/// from before its read: the reopen may have finished (and `why` been cleared) before
/// the reader looks, and the read must then be tried again, not taken for damage.
#[derive(Debug, Default)]
pub(crate) struct LogFailure {
    pub why: Option<String>,
    pub reopens: u64,
}

pub(crate) type SharedFailure = Arc<Mutex<LogFailure>>;

/// The failure state, also after a panic elsewhere poisoned its lock (nothing panics
/// while holding it; its fields are written whole).
pub(crate) fn failure_of(shared: &SharedFailure) -> std::sync::MutexGuard<'_, LogFailure> {
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) struct Writer {
    /// The identity of the log this writer writes (a reopened log must be the same).
    identity: String,
    dir: PathBuf,
    options: OpenOptions,
    /// Where everyone else finds the log's handles.
    slot: Slot,
    /// The writer's own; `None` only while the log is being reopened.
    current: Option<Arc<Handles>>,
    /// The last durable sequence.
    last_sequence: u64,
    last_recorded_at_ms: i64,
    /// Stream versions the writer has seen; a miss is read from the stream index.
    heads: HashMap<String, u64>,
    /// The sequence of the last event on (appended to or touching) each stream, for
    /// every stream written since the log was opened. A stream missing here had its
    /// last event at or before `opened_at`.
    last_on: HashMap<String, u64>,
    /// The last sequence when the log was opened.
    opened_at: u64,
    durable: watch::Sender<u64>,
    checkpointed: u64,
    last_checkpoint: Instant,
    checkpoint_interval: Duration,
    /// Set when a write or flush failed: what is on disk is then unknown, so the writer
    /// refuses everything until the log is reopened (and verified).
    failed: Option<String>,
    /// The same, for readers of the log's health (readiness) and subscriptions.
    failure: SharedFailure,
    last_reopen_attempt: Option<Instant>,
    /// False once a reopen found the log shorter than what was acknowledged: that is
    /// damage, and only an operator can decide what to do.
    reopenable: bool,
}

/// What one group has decided so far, before it is durable.
#[derive(Default)]
struct Pending {
    heads: HashMap<String, u64>,
    last_on: HashMap<String, u64>,
    ids: HashMap<String, IdEntry>,
    batch: sled::Batch,
    events: usize,
    /// The commit time of the group's latest event.
    recorded_at_ms: i64,
}

/// One command of a group.
enum Queued {
    Append(QueuedAppend),
    Replicate(QueuedReplicate),
}

impl Queued {
    fn answer_unavailable(self, why: &str) {
        let error = AppendError::Unavailable(why.to_owned());
        match self {
            Queued::Append(append) => drop(append.reply.send(Err(error))),
            Queued::Replicate(replicate) => drop(replicate.reply.send(Err(error))),
        }
    }
}

/// A command's answer, sent once the group is durable.
enum Answer {
    Append(oneshot::Sender<Result<Appended, AppendError>>, Result<Appended, AppendError>),
    Replicate(oneshot::Sender<Result<(), AppendError>>, Result<(), AppendError>),
}

impl Answer {
    fn appended(&self) -> Option<&Appended> {
        match self {
            Answer::Append(_, Ok(appended)) => Some(appended),
            _ => None,
        }
    }

    fn send(self) {
        match self {
            Answer::Append(reply, answer) => drop(reply.send(answer)),
            Answer::Replicate(reply, answer) => drop(reply.send(answer)),
        }
    }

    fn unavailable(self, why: &str) {
        let error = AppendError::Unavailable(why.to_owned());
        match self {
            Answer::Append(reply, _) => drop(reply.send(Err(error))),
            Answer::Replicate(reply, _) => drop(reply.send(Err(error))),
        }
    }
}

impl Writer {
    pub(crate) fn new(
        dir: PathBuf,
        options: OpenOptions,
        (slot, current): (Slot, Arc<Handles>),
        (last_sequence, last_recorded_at_ms): (u64, i64),
        identity: String,
        signals: WriterSignals,
    ) -> Self {
        let WriterSignals { durable, failure } = signals;
        let checkpoint_interval = options.checkpoint_interval;
        Self {
            dir,
            identity,
            options,
            slot,
            current: Some(current),
            last_sequence,
            last_recorded_at_ms,
            heads: HashMap::new(),
            last_on: HashMap::new(),
            opened_at: last_sequence,
            durable,
            checkpointed: 0,
            last_checkpoint: Instant::now(),
            checkpoint_interval,
            failed: None,
            failure,
            last_reopen_attempt: None,
            reopenable: true,
        }
    }

    pub(crate) fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut shutdown_waiters = Vec::new();
        loop {
            // While failed, wake up now and then to see whether the log can be reopened,
            // so that it recovers by itself even when no append arrives.
            let first = if self.failed.is_some() {
                match commands.try_recv() {
                    Ok(command) => command,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        std::thread::sleep(REOPEN_INTERVAL / 4);
                        self.try_reopen();
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            } else {
                match commands.blocking_recv() {
                    Some(command) => command,
                    None => break,
                }
            };
            let mut group = Vec::new();
            let mut group_events = 0;
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append(append) => {
                        group_events += append.batch.events.len();
                        group.push(Queued::Append(append));
                    }
                    Command::Replicate(replicate) => {
                        group_events += replicate.events.len();
                        group.push(Queued::Replicate(replicate));
                    }
                    Command::Shutdown { done } => {
                        // Answer what is queued already, then stop.
                        commands.close();
                        shutdown_waiters.push(done);
                    }
                }
                if group_events < MAX_GROUP_EVENTS {
                    next = commands.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit_group(group);
            }
        }
        if self.failed.is_none() && self.checkpointed < self.last_sequence {
            self.write_checkpoint();
        }
        for done in shutdown_waiters {
            let _ = done.send(());
        }
    }

    fn commit_group(&mut self, group: Vec<Queued>) {
        if self.failed.is_some() {
            self.try_reopen();
        }
        if let Some(why) = &self.failed {
            for queued in group {
                queued.answer_unavailable(why);
            }
            return;
        }
        let now = now_ms();
        let mut pending = Pending { recorded_at_ms: self.last_recorded_at_ms, ..Pending::default() };
        let mut answers = Vec::with_capacity(group.len());
        for queued in group {
            match queued {
                Queued::Append(QueuedAppend { batch, digests, reply }) => {
                    pending.recorded_at_ms = pending.recorded_at_ms.max(now);
                    let recorded_at_ms = pending.recorded_at_ms;
                    let answer = self.decide(batch, &digests, recorded_at_ms, &mut pending);
                    answers.push(Answer::Append(reply, answer));
                }
                Queued::Replicate(QueuedReplicate { events, reply }) => {
                    let answer = events.into_iter().try_for_each(|event| self.replicate(event, &mut pending));
                    answers.push(Answer::Replicate(reply, answer));
                }
            }
        }
        let recorded_at_ms = pending.recorded_at_ms;

        if pending.events > 0 {
            let flush_started = Instant::now();
            let written = match &self.current {
                Some(handles) => handles
                    .tree
                    .apply_batch(std::mem::take(&mut pending.batch))
                    .and_then(|()| handles.db.flush().map(|_| ())),
                None => Err(sled::Error::ReportableBug("the writer has no open log".into())),
            };
            if let Err(cause) = written {
                error!(%cause, "the event log could not be written; refusing writes until it is reopened");
                let why = format!("the log could not be written ({cause}); it must be reopened");
                self.failed = Some(why.clone());
                failure_of(&self.failure).why = Some(why.clone());
                for answer in answers {
                    answer.unavailable(&why);
                }
                return;
            }
            assert!(
                answers.iter().filter_map(Answer::appended).filter(|a| !a.duplicate).all(|a| a.positions.iter().all(
                    |p| p.sequence > self.last_sequence && p.sequence <= self.last_sequence + pending.events as u64
                )),
                "every position of a group lies just after the durable log"
            );
            metrics::histogram!(crate::METRIC_FLUSH_SECONDS).record(flush_started.elapsed().as_secs_f64());
            metrics::histogram!(crate::METRIC_GROUP_EVENTS).record(pending.events as f64);
            self.last_sequence += pending.events as u64;
            self.last_recorded_at_ms = recorded_at_ms;
            self.heads.extend(pending.heads);
            self.last_on.extend(pending.last_on);
            self.durable.send_replace(self.last_sequence);
            debug!(events = pending.events, appends = answers.len(), through = self.last_sequence, "group committed");
        }
        for answer in answers {
            answer.send();
        }
        if self.last_checkpoint.elapsed() >= self.checkpoint_interval && self.checkpointed < self.last_sequence {
            self.write_checkpoint();
        }
    }

    /// Decides one append against the durable log plus what this group has decided
    /// before it, and stages it into the group's batch if it is accepted.
    fn decide(
        &mut self,
        batch: AppendBatch,
        digests: &[[u8; 32]],
        recorded_at_ms: i64,
        pending: &mut Pending,
    ) -> Result<Appended, AppendError> {
        // Idempotency comes first: a duplicate is answered as such however the stream
        // has moved on since.
        let mut originals = Vec::with_capacity(batch.events.len());
        let mut first_reused = None;
        for (event, digest) in batch.events.iter().zip(digests) {
            match self.id_entry(&event.id, pending)? {
                Some(entry) if entry.identity_sha256 == *digest => {
                    first_reused.get_or_insert(&event.id);
                    originals.push(entry);
                }
                Some(_) => {
                    return Err(AppendError::IdConflict { id: event.id.clone() });
                }
                None => {}
            }
        }
        if let Some(reused) = first_reused {
            // A batch is a duplicate only as a whole; a mix of old and new ids is not a
            // resend of anything.
            if originals.len() != batch.events.len() {
                return Err(AppendError::IdConflict { id: reused.clone() });
            }
            let positions = originals
                .iter()
                .map(|entry| Position { sequence: entry.sequence, stream_version: entry.stream_version })
                .collect();
            return Ok(Appended { positions, duplicate: true });
        }

        // The decision's consistency boundary: nothing it read has moved since.
        for stream in &batch.condition.streams {
            let last_on = pending.last_on.get(stream).or_else(|| self.last_on.get(stream)).copied();
            // A stream not written since the log opened had its last event at or
            // before then; a decision older than that cannot tell, so it is made again.
            if last_on.unwrap_or(self.opened_at) > batch.condition.after {
                return Err(AppendError::ConditionFailed { stream: stream.clone(), after: batch.condition.after });
            }
        }

        let current = self.head(&batch.stream, pending)?;
        if let ExpectedVersion::Exactly(expected) = batch.expected
            && expected != current
        {
            return Err(AppendError::VersionConflict { stream: batch.stream.clone(), expected, actual: current });
        }

        let staged = batch
            .events
            .into_iter()
            .zip(digests)
            .map(|(event, digest)| (event.id, event.principal, *digest, event.payload));
        let positions = self.stage(&batch.stream, current, staged, recorded_at_ms, pending);
        let last_sequence = self.last_sequence + pending.events as u64;
        for stream in batch.touches {
            pending.last_on.insert(stream, last_sequence);
        }
        Ok(Appended { positions, duplicate: false })
    }

    /// Stages events appended to `stream` (at version `current` before them) at the next
    /// sequences, with their index entries, into the group's batch.
    fn stage(
        &self,
        stream: &str,
        current: u64,
        events: impl ExactSizeIterator<Item = (String, String, [u8; 32], Vec<u8>)>,
        recorded_at_ms: i64,
        pending: &mut Pending,
    ) -> Vec<Position> {
        let count = events.len() as u64;
        let first_sequence = self.last_sequence + pending.events as u64 + 1;
        let mut positions = Vec::with_capacity(events.len());
        for (offset, (id, principal, digest, payload)) in events.enumerate() {
            let sequence = first_sequence + offset as u64;
            let stream_version = current + offset as u64 + 1;
            let recorded = RecordedEvent {
                sequence,
                stream: stream.to_owned(),
                stream_version,
                id,
                principal,
                recorded_at_ms,
                payload,
            };
            let entry = IdEntry { sequence, stream_version, identity_sha256: digest };
            pending.batch.insert(&keys::event(sequence), record::encode(&recorded));
            pending.batch.insert(keys::id(&recorded.id), entry.encode().to_vec());
            pending.ids.insert(recorded.id, entry);
            positions.push(Position { sequence, stream_version });
        }
        pending.events += count as usize;
        // One stream-index entry covers the whole append.
        let run = keys::StreamRun { first_version: current + 1, first_sequence, count };
        pending.batch.insert(keys::stream_entry(stream, run.first_version), &run.encode());
        pending.last_on.insert(stream.to_owned(), first_sequence + count - 1);
        pending.heads.insert(stream.to_owned(), current + count);
        positions
    }

    /// Stages one event the log of record has sequenced (cluster mode). One already
    /// written (a redelivery) is passed over; one that would leave a gap, or whose id the
    /// log holds already, is refused: the replica must stay the log of record's exact
    /// copy, and the follower starts again from what is durable.
    fn replicate(&mut self, event: Replicated, pending: &mut Pending) -> Result<(), AppendError> {
        let next = self.last_sequence + pending.events as u64 + 1;
        if event.sequence < next {
            return match self.id_entry(&event.id, pending)? {
                Some(entry) if entry.sequence == event.sequence => Ok(()),
                _ => Err(AppendError::Unavailable(format!(
                    "sequence {} of the log of record is not event {:?} here",
                    event.sequence, event.id
                ))),
            };
        }
        if event.sequence > next {
            return Err(AppendError::Unavailable(format!(
                "the log of record skipped from sequence {} to {}",
                next - 1,
                event.sequence
            )));
        }
        if let Some(entry) = self.id_entry(&event.id, pending)? {
            return Err(AppendError::IdConflict { id: format!("{} (also at sequence {})", event.id, entry.sequence) });
        }
        let current = self.head(&event.stream, pending)?;
        pending.recorded_at_ms = pending.recorded_at_ms.max(event.published_ms);
        let recorded_at_ms = pending.recorded_at_ms;
        let Replicated { stream, id, principal, identity_sha256, payload, .. } = event;
        self.stage(
            &stream,
            current,
            std::iter::once((id, principal, identity_sha256, payload)),
            recorded_at_ms,
            pending,
        );
        Ok(())
    }

    fn id_entry(&self, id: &str, pending: &Pending) -> Result<Option<IdEntry>, AppendError> {
        if let Some(entry) = pending.ids.get(id) {
            return Ok(Some(*entry));
        }
        let value = self.tree()?.get(keys::id(id)).map_err(unavailable)?;
        match value {
            None => Ok(None),
            Some(value) => IdEntry::decode(&value)
                .map(Some)
                .ok_or_else(|| AppendError::Unavailable(format!("the id index entry of {id:?} is damaged"))),
        }
    }

    fn head(&mut self, stream: &str, pending: &Pending) -> Result<u64, AppendError> {
        if let Some(version) = pending.heads.get(stream).or_else(|| self.heads.get(stream)) {
            return Ok(*version);
        }
        let last = self.tree()?.scan_prefix(keys::stream_prefix(stream)).next_back();
        let version = match last {
            None => 0,
            Some(entry) => {
                let (key, value) = entry.map_err(unavailable)?;
                keys::StreamRun::decode(&key, &value)
                    .ok_or_else(|| AppendError::Unavailable("the stream index is damaged".into()))?
                    .last_version()
            }
        };
        self.heads.insert(stream.to_owned(), version);
        Ok(version)
    }

    fn tree(&self) -> Result<&sled::Tree, AppendError> {
        self.current
            .as_ref()
            .map(|handles| &handles.tree)
            .ok_or_else(|| AppendError::Unavailable("the log is being reopened".into()))
    }

    /// After a failed write, what is on disk is unknown, and sled refuses to go on. A
    /// failed fsync is never retried (its outcome is unknowable): once a probe file can
    /// be written and fsynced beside the log again, the writer closes the database
    /// (taking it from every reader), opens it anew and verifies it as on start, and
    /// only then takes appends again, from the log as it is on disk. At most once per
    /// [`REOPEN_INTERVAL`].
    fn try_reopen(&mut self) {
        if !self.reopenable || self.last_reopen_attempt.is_some_and(|at| at.elapsed() < REOPEN_INTERVAL) {
            return;
        }
        self.last_reopen_attempt = Some(Instant::now());
        if let Err(cause) = probe(&self.dir) {
            debug!(%cause, "the log's disk cannot be written yet");
            return;
        }
        if let Some(mine) = self.current.take() {
            if let Ok(mut slot) = self.slot.write() {
                slot.take();
            }
            // Readers take the handles for one read at a time; wait for them to let go.
            let waiting = Instant::now();
            while Arc::strong_count(&mine) > 1 && waiting.elapsed() < RELEASE_TIMEOUT {
                std::thread::sleep(Duration::from_millis(1));
            }
            if Arc::strong_count(&mine) > 1 {
                warn!("readers still hold the failed log; trying again later");
                if let Ok(mut slot) = self.slot.write() {
                    *slot = Some(mine.clone());
                }
                self.current = Some(mine);
                return;
            }
            drop(mine);
        }
        let opened = match open_db(&self.dir, &self.options) {
            Ok(opened) => opened,
            Err(cause) => {
                warn!(%cause, "the log could not be reopened yet");
                return;
            }
        };
        let durable = *self.durable.borrow();
        let lost = opened.last < durable;
        if lost || opened.identity != self.identity {
            let why = if lost {
                format!(
                    "the reopened log ends at sequence {}, but {durable} was acknowledged: events were lost; it stays \
                     closed until an operator looks at it",
                    opened.last
                )
            } else {
                "the reopened log is another log (its identity changed); it stays closed until an operator looks at it"
                    .to_owned()
            };
            error!("{why}");
            self.reopenable = false;
            self.failed = Some(why.clone());
            failure_of(&self.failure).why = Some(why);
            return;
        }
        let handles = Arc::new(opened.handles);
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some(handles.clone());
        }
        self.current = Some(handles);
        self.last_sequence = opened.last;
        self.last_recorded_at_ms = self.last_recorded_at_ms.max(opened.last_recorded_at_ms);
        self.heads.clear();
        self.last_on.clear();
        self.opened_at = opened.last;
        self.failed = None;
        // One step, so that a reader never sees the failure cleared without the reopen
        // counted (subscription.rs).
        let mut failure = failure_of(&self.failure);
        failure.why = None;
        failure.reopens += 1;
        drop(failure);
        // Events of the failed group that did reach the disk are durable now: their
        // appenders were told `unavailable`, and a resend is answered as a duplicate.
        self.durable.send_replace(opened.last);
        info!(events = opened.last, "the log was reopened and verified; writes resume");
    }

    fn write_checkpoint(&mut self) {
        match checkpoint::write(&self.dir, self.last_sequence) {
            Ok(()) => self.checkpointed = self.last_sequence,
            Err(cause) => warn!(%cause, "could not write the durable checkpoint"),
        }
        self.last_checkpoint = Instant::now();
    }
}

/// Least time between two attempts to reopen the log after a failed write.
pub const REOPEN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for readers to let go of a failed log's handles.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes written and fsynced beside the log to see whether its disk takes writes again.
const PROBE_BYTES: usize = 256 * 1024;

/// Writes, fsyncs and removes a file of [`PROBE_BYTES`] in `dir`.
fn probe(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join("write-probe");
    let result = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&[0; PROBE_BYTES])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    result
}

fn unavailable(error: sled::Error) -> AppendError {
    AppendError::Unavailable(error.to_string())
}

/// The wall clock in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}
