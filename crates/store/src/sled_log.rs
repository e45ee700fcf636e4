//! [`SledLog`]: the embedded backend of [`EventLog`], on sled 0.34.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::cluster::Cluster;
use crate::error::{AppendError, OpenError, ReadError};
use crate::keys::{self, IdEntry, StreamRun};
use crate::record;
use crate::subscription::SledSubscription;
use crate::writer::{Command, QueuedAppend, QueuedReplicate, Replicated, SharedFailure, Writer, WriterSignals};
use crate::{
    AppendBatch, Appended, EventLog, IdLookup, MAX_BATCH_EVENTS, MAX_EVENT_ID_BYTES, MAX_PAYLOAD_BYTES,
    MAX_PRINCIPAL_BYTES, MAX_STREAM_BYTES, Position, RecordedEvent, SEGMENT_SIZE_BYTES,
};

/// Appends waiting for the writer; past this, appenders wait (back-pressure).
pub const MAX_QUEUED_APPENDS: usize = 4096;
/// Longest an open waits for sled's file lock to be let go of (see [`open_db`]).
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// The name of the file that remembers how far the log was durable (see [`checkpoint`]).
pub const CHECKPOINT_FILE: &str = "durable-sequence";

/// How to open a [`SledLog`].
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// sled's page cache, in bytes.
    pub cache_capacity_bytes: u64,
    /// How often, at most, the durable checkpoint file is rewritten.
    pub checkpoint_interval: Duration,
    /// What opening checks record by record.
    pub verify: Verify,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            cache_capacity_bytes: 128 * 1024 * 1024,
            checkpoint_interval: Duration::from_secs(1),
            verify: Verify::Tail,
        }
    }
}

/// What opening the log checks record by record (decoding, checksum, sequence without
/// a gap). Either way the last event's index entries are checked, and a log shorter
/// than its checkpoint is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    /// The records from the durable checkpoint on: what a crash since the checkpoint
    /// can have touched (a batch is atomic in sled, so nothing before it). The records
    /// before it were checked when written and are checked again whenever read.
    #[default]
    Tail,
    /// Every record (`tafel check`), for damage at rest anywhere in the log.
    All,
}

/// The event log on sled. Cheap to clone; every clone is the same log.
#[derive(Clone)]
pub struct SledLog {
    inner: Arc<Inner>,
}

/// The open sled database. The writer replaces it whole when it reopens the log after
/// a failed write; everyone else takes the current one for each read and lets go of it
/// at once, so that the old one can be closed.
pub(crate) struct Handles {
    pub db: sled::Db,
    pub tree: sled::Tree,
}

/// Where the current [`Handles`] are; `None` while the writer reopens the log.
pub(crate) type Slot = Arc<RwLock<Option<Arc<Handles>>>>;

/// The current handles, for one read.
pub(crate) fn current(slot: &Slot) -> Result<Arc<Handles>, ReadError> {
    slot.read()
        .map_err(|_| ReadError::Unavailable("the log's handles are poisoned".into()))?
        .clone()
        .ok_or_else(|| ReadError::Unavailable("the log is closed or being reopened".into()))
}

struct Inner {
    path: PathBuf,
    identity: String,
    slot: Slot,
    /// `None` only while the last handle is being dropped.
    commands: Option<mpsc::Sender<Command>>,
    durable: watch::Receiver<u64>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Why the writer refuses every append, once a write or flush failed.
    failure: SharedFailure,
    /// In cluster mode, the JetStream stream that sequences appends.
    cluster: Option<Arc<Cluster>>,
}

impl Inner {
    fn commands(&self) -> &mpsc::Sender<Command> {
        self.commands.as_ref().expect("the command channel lives as long as the log")
    }
}

/// Dropping the last handle closes the log: the writer answers what is queued, writes
/// the checkpoint and stops, and the database is taken from the slot that
/// subscriptions share, so the files are free for the next opener as soon as no read
/// is under way (a subscription still around sees the log closed).
impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.commands.take());
        let handle = self.writer.get_mut().map(Option::take).unwrap_or(None);
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        if let Ok(mut slot) = self.slot.write() {
            slot.take();
        }
    }
}

impl SledLog {
    /// Opens (or creates) the log in `dir`, checking it whole before serving it: every
    /// record decodes and passes its checksum, sequences run from 1 without a gap, the
    /// last event's index entries exist, and the log is not shorter than it was last
    /// known to be durable.
    pub fn open(dir: &Path, options: OpenOptions) -> Result<SledLog, OpenError> {
        Self::open_with(dir, options, None)
    }

    /// [`SledLog::open`], as this node's copy of a cluster's log when `cluster` is given.
    pub(crate) fn open_with(
        dir: &Path,
        options: OpenOptions,
        cluster: Option<Arc<Cluster>>,
    ) -> Result<SledLog, OpenError> {
        let path_text = dir.display().to_string();
        let opened = open_db(dir, &options)?;
        let (last, last_recorded_at_ms, identity) = (opened.last, opened.last_recorded_at_ms, opened.identity);
        let handles = Arc::new(opened.handles);
        let slot: Slot = Arc::new(RwLock::new(Some(handles.clone())));
        info!(path = %path_text, events = last, "event log open");

        let (durable_tx, durable) = watch::channel(last);
        let (commands, receiver) = mpsc::channel(MAX_QUEUED_APPENDS);
        let failure = SharedFailure::default();
        let writer = Writer::new(
            dir.to_path_buf(),
            options,
            (slot.clone(), handles),
            (last, last_recorded_at_ms),
            identity.clone(),
            WriterSignals { durable: durable_tx, failure: failure.clone() },
        );
        let handle = std::thread::Builder::new()
            .name("tafel-log-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|source| OpenError::Io { path: path_text.clone(), source })?;

        Ok(SledLog {
            inner: Arc::new(Inner {
                path: dir.to_path_buf(),
                identity,
                slot,
                commands: Some(commands),
                durable,
                writer: Mutex::new(Some(handle)),
                failure,
                cluster,
            }),
        })
    }

    /// Whether this is a node's copy of a cluster's log (cluster mode).
    pub fn is_cluster(&self) -> bool {
        self.inner.cluster.is_some()
    }

    /// Waits until this log holds everything the log of record held when asked: at once
    /// for the embedded log (it is the log of record); in cluster mode, asks the stream
    /// for its end and waits for this node's copy to get there (at most `timeout`).
    pub async fn sync(&self, timeout: Duration) -> Result<(), ReadError> {
        match &self.inner.cluster {
            Some(cluster) => cluster.sync(self, timeout).await,
            None => Ok(()),
        }
    }

    /// Writes events another log sequenced, at exactly their sequences: a cluster
    /// node's follower, and `tafel backup`'s copy. A gap, a doubled id or an event that
    /// differs from the one already at its sequence is refused; one already here is
    /// passed over.
    pub async fn replicate(&self, events: Vec<Replicated>) -> Result<(), AppendError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands()
            .send(Command::Replicate(QueuedReplicate { events, reply }))
            .await
            .map_err(|_| AppendError::Unavailable("the log is shutting down".into()))?;
        answer.await.map_err(|_| AppendError::Unavailable("the log writer stopped".into()))?
    }

    /// Waits until `sequence` is durable here, for at most `timeout`.
    pub(crate) async fn wait_durable(&self, sequence: u64, timeout: Duration) -> Result<(), ReadError> {
        let mut durable = self.inner.durable.clone();
        match tokio::time::timeout(timeout, durable.wait_for(|durable| *durable >= sequence)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ReadError::Closed),
            Err(_) => Err(ReadError::Unavailable(format!(
                "sequence {sequence} is not here after {} s (this copy holds {})",
                timeout.as_secs_f64(),
                self.durable()
            ))),
        }
    }

    /// Stops taking appends, answers every one already queued, writes the checkpoint
    /// and waits for the writer to finish. Appends after this are `Unavailable`.
    pub async fn shutdown(&self) {
        if let Some(cluster) = &self.inner.cluster {
            cluster.stop().await;
        }
        let (done, finished) = oneshot::channel();
        if self.inner.commands().send(Command::Shutdown { done }).await.is_ok() {
            let _ = finished.await;
        }
        let handle = self.inner.writer.lock().map(|mut slot| slot.take()).unwrap_or(None);
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Why the log refuses every append, when a write or flush failed (what is on disk
    /// is then unknown until the log is reopened and verified); `None` while healthy.
    pub fn write_failure(&self) -> Option<String> {
        let why = crate::writer::failure_of(&self.inner.failure).why.clone();
        why.or_else(|| {
            let following = self.inner.cluster.as_ref()?.follow_failure()?;
            Some(format!("this node does not follow the cluster's log: {following}"))
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The log's identity: random, fixed when the log was created, different for every
    /// log (see [`keys::LOG_ID`]).
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// Bytes sled uses on disk (about twice the data; see the README).
    pub fn size_on_disk(&self) -> Result<u64, ReadError> {
        Ok(self.handles()?.db.size_on_disk()?)
    }

    fn handles(&self) -> Result<Arc<Handles>, ReadError> {
        current(&self.inner.slot)
    }

    fn durable(&self) -> u64 {
        *self.inner.durable.borrow()
    }
}

/// A sled database opened and checked whole.
pub(crate) struct Opened {
    pub handles: Handles,
    pub last: u64,
    pub last_recorded_at_ms: i64,
    /// The log's identity (see [`keys::LOG_ID`]), in hex.
    pub identity: String,
}

/// Opens (or creates) the sled database in `dir` and checks it whole: every record
/// decodes and passes its checksum, sequences run from 1 without a gap, the last
/// event's index entries exist, and the log is not shorter than it was last known to
/// be durable. Used on open, and by the writer to reopen the log after a failed write.
pub(crate) fn open_db(dir: &Path, options: &OpenOptions) -> Result<Opened, OpenError> {
    let path_text = dir.display().to_string();
    // The log holds people's names, KvK numbers and plans: a new data directory is
    // Tafel's user's alone, and one that others may read is warned about.
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| OpenError::Io { path: path_text.clone(), source })?;
        let mode = std::fs::metadata(dir).map(|meta| meta.permissions().mode() & 0o777).unwrap_or(0o700);
        if mode & 0o077 != 0 {
            warn!(path = %path_text, mode = %format!("{mode:o}"), "others may read the data directory: chmod 700 it");
        }
    }
    let sled_error = |source| OpenError::Sled { path: path_text.clone(), source };
    let segment_size = segment_size(&dir.join("sled"));
    if segment_size < SEGMENT_SIZE_BYTES {
        warn!(
            segment_size,
            "this log was created with small sled segments: records over a quarter of one go to blob files, \
             which sled does not fsync; copy the log into a new one to be safe"
        );
    }
    let config = sled::Config::new()
        .path(dir.join("sled"))
        .segment_size(segment_size)
        .cache_capacity(options.cache_capacity_bytes);
    // sled 0.34 lets go of its file lock a moment after the last handle is dropped (its
    // background threads end later), so opening right after a close in this process
    // (the writer reopening the log, a test) waits for it; another process holding
    // the log is still refused, after the wait.
    let waiting = std::time::Instant::now();
    let db = loop {
        match config.open() {
            Err(sled::Error::Io(cause))
                if cause.to_string().contains("could not acquire lock") && waiting.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => break opened.map_err(sled_error)?,
        }
    };
    let tree = db.open_tree("log").map_err(sled_error)?;
    let damaged = |detail: String| OpenError::Damaged { path: path_text.clone(), detail };

    match tree.get(keys::FORMAT).map_err(sled_error)? {
        Some(value) => {
            let found = value
                .as_ref()
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| damaged("the format marker is unreadable".into()))?;
            if !keys::LOG_FORMATS_READ.contains(&found) {
                return Err(OpenError::UnsupportedFormat { path: path_text, found, supported: keys::LOG_FORMAT });
            }
            if found != keys::LOG_FORMAT {
                tree.insert(keys::FORMAT, &keys::LOG_FORMAT.to_be_bytes()).map_err(sled_error)?;
                db.flush().map_err(sled_error)?;
                info!(path = %path_text, from = found, to = keys::LOG_FORMAT, "the log's format marker was brought up to date");
            }
        }
        None if tree.is_empty() => {
            tree.insert(keys::FORMAT, &keys::LOG_FORMAT.to_be_bytes()).map_err(sled_error)?;
            db.flush().map_err(sled_error)?;
        }
        None => {
            return Err(damaged("events are present but the format marker is missing".into()));
        }
    }

    let known_durable = checkpoint::read(dir).map_err(|source| OpenError::Io { path: path_text.clone(), source })?;
    let from = match options.verify {
        Verify::Tail => known_durable.max(1),
        Verify::All => 1,
    };
    let (last, last_recorded_at_ms) = verify(&tree, from).map_err(damaged)?;
    if known_durable > last {
        return Err(damaged(format!(
            "the log ends at sequence {last}, but sequence {known_durable} was durable before: events were lost"
        )));
    }
    let identity = match tree.get(keys::LOG_ID).map_err(sled_error)? {
        Some(value) => crate::cluster::hex(&value),
        None => {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|cause| OpenError::Io {
                path: path_text.clone(),
                source: std::io::Error::other(format!("no randomness for the log's identity: {cause}")),
            })?;
            tree.insert(keys::LOG_ID, &bytes).map_err(sled_error)?;
            db.flush().map_err(sled_error)?;
            crate::cluster::hex(&bytes)
        }
    };
    Ok(Opened { handles: Handles { db, tree }, last, last_recorded_at_ms, identity })
}

/// The segment size of the sled database in `sled_dir`, as its `conf` file records it,
/// or [`SEGMENT_SIZE_BYTES`] for a new one.
fn segment_size(sled_dir: &Path) -> usize {
    std::fs::read_to_string(sled_dir.join("conf"))
        .ok()
        .and_then(|conf| {
            conf.lines().find_map(|line| line.strip_prefix("segment_size: ").and_then(|size| size.trim().parse().ok()))
        })
        .unwrap_or(SEGMENT_SIZE_BYTES)
}

/// Checks a batch before it is queued, so the writer sees only well-formed batches.
fn check_batch(batch: &AppendBatch) -> Result<(), AppendError> {
    let invalid = |why: String| Err(AppendError::InvalidBatch(why));
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH_EVENTS {
        return invalid(format!("a batch holds 1-{MAX_BATCH_EVENTS} events"));
    }
    if batch.stream.is_empty() || batch.stream.len() > MAX_STREAM_BYTES || batch.stream.contains('\0') {
        return invalid(format!("a stream name is 1-{MAX_STREAM_BYTES} bytes without NUL"));
    }
    let mut ids = std::collections::HashSet::with_capacity(batch.events.len());
    for event in &batch.events {
        if event.id.is_empty() || event.id.len() > MAX_EVENT_ID_BYTES {
            return invalid(format!("an event id is 1-{MAX_EVENT_ID_BYTES} bytes"));
        }
        if event.principal.len() > MAX_PRINCIPAL_BYTES {
            return invalid(format!("a principal is at most {MAX_PRINCIPAL_BYTES} bytes"));
        }
        if event.payload.len() > MAX_PAYLOAD_BYTES {
            return invalid(format!("a payload is at most {MAX_PAYLOAD_BYTES} bytes"));
        }
        if !ids.insert(event.id.as_str()) {
            return invalid(format!("event id {:?} appears twice in the batch", event.id));
        }
    }
    Ok(())
}

/// The SHA-256 of an event's identity bytes, as the id index keeps it.
pub fn identity_sha256(identity: &[u8]) -> [u8; 32] {
    Sha256::digest(identity).into()
}

impl EventLog for SledLog {
    type Subscription = SledSubscription;

    async fn append(&self, batch: AppendBatch) -> Result<Appended, AppendError> {
        check_batch(&batch)?;
        if let Some(cluster) = &self.inner.cluster {
            return cluster.append(self, batch).await;
        }
        let digests = batch.events.iter().map(|event| identity_sha256(&event.identity)).collect();
        let (reply, answer) = oneshot::channel();
        self.inner
            .commands()
            .send(Command::Append(QueuedAppend { batch, digests, reply }))
            .await
            .map_err(|_| AppendError::Unavailable("the log is shutting down".into()))?;
        answer.await.map_err(|_| AppendError::Unavailable("the log writer stopped".into()))?
    }

    fn lookup_id(&self, id: &str, identity: &[u8]) -> Result<IdLookup, ReadError> {
        let Some(value) = self.handles()?.tree.get(keys::id(id))? else {
            return Ok(IdLookup::Unknown);
        };
        let entry = IdEntry::decode(&value).ok_or_else(|| ReadError::Damaged(format!("id index entry of {id:?}")))?;
        if entry.sequence > self.durable() {
            return Ok(IdLookup::Unknown);
        }
        Ok(if entry.identity_sha256 == identity_sha256(identity) {
            IdLookup::Duplicate(Position { sequence: entry.sequence, stream_version: entry.stream_version })
        } else {
            IdLookup::Conflict
        })
    }

    fn stream_version(&self, stream: &str) -> Result<u64, ReadError> {
        let durable = self.durable();
        for entry in self.handles()?.tree.scan_prefix(keys::stream_prefix(stream)).rev() {
            let (key, value) = entry?;
            let run = StreamRun::decode(&key, &value).ok_or_else(|| ReadError::Damaged("stream index".into()))?;
            if run.first_sequence <= durable {
                // An append is made durable as a whole; the bound is for safety only.
                return Ok(run.first_version + run.count.min(durable - run.first_sequence + 1) - 1);
            }
        }
        Ok(0)
    }

    fn read_stream(&self, stream: &str, from_version: u64) -> Result<Vec<RecordedEvent>, ReadError> {
        let durable = self.durable();
        let from_version = from_version.max(1);
        let handles = self.handles()?;
        // The run holding `from_version` may start before it.
        let start = match stream_run_covering(&handles.tree, stream, from_version)? {
            Some(run) => run.first_version,
            None => from_version,
        };
        let prefix = keys::stream_prefix(stream);
        let mut events = Vec::new();
        for entry in handles.tree.range(keys::stream_entry(stream, start)..) {
            let (key, value) = entry?;
            if !key.starts_with(&prefix) {
                break;
            }
            let run = StreamRun::decode(&key, &value).ok_or_else(|| ReadError::Damaged("stream index".into()))?;
            for version in run.first_version.max(from_version)..=run.last_version() {
                let sequence = run.first_sequence + version - run.first_version;
                if sequence > durable {
                    return Ok(events);
                }
                events.push(read_event(&handles.tree, sequence)?);
            }
        }
        Ok(events)
    }

    fn read_from(&self, from_sequence: u64, limit: usize) -> Result<Vec<RecordedEvent>, ReadError> {
        read_range(&self.handles()?.tree, from_sequence, self.durable(), limit)
    }

    fn last_sequence(&self) -> u64 {
        self.durable()
    }

    fn subscribe(&self, from_sequence: u64) -> SledSubscription {
        SledSubscription::new(
            self.inner.slot.clone(),
            self.inner.failure.clone(),
            self.inner.durable.clone(),
            from_sequence,
        )
    }
}

/// The stream-index entry holding `version` of `stream`, if there is one.
fn stream_run_covering(tree: &sled::Tree, stream: &str, version: u64) -> Result<Option<StreamRun>, ReadError> {
    let Some(entry) = tree.range(keys::stream_entry(stream, 0)..=keys::stream_entry(stream, version)).next_back()
    else {
        return Ok(None);
    };
    let (key, value) = entry?;
    let run = StreamRun::decode(&key, &value).ok_or_else(|| ReadError::Damaged("stream index".into()))?;
    Ok((run.last_version() >= version).then_some(run))
}

/// Reads up to `limit` events with sequences in `from..=through`.
pub(crate) fn read_range(
    tree: &sled::Tree,
    from: u64,
    through: u64,
    limit: usize,
) -> Result<Vec<RecordedEvent>, ReadError> {
    let from = from.max(1);
    if from > through || limit == 0 {
        return Ok(Vec::new());
    }
    let mut events = Vec::with_capacity(limit.min((through - from + 1) as usize));
    for entry in tree.range(keys::event(from)..=keys::event(through)).take(limit) {
        let (key, value) = entry?;
        let event = record::decode(&value).map_err(ReadError::Damaged)?;
        let expected = from + events.len() as u64;
        if keys::sequence_of_event_key(&key) != Some(expected) || event.sequence != expected {
            return Err(ReadError::Damaged(format!("sequence {expected} is missing or misplaced")));
        }
        events.push(event);
    }
    Ok(events)
}

fn read_event(tree: &sled::Tree, sequence: u64) -> Result<RecordedEvent, ReadError> {
    let value = tree
        .get(keys::event(sequence))?
        .ok_or_else(|| ReadError::Damaged(format!("sequence {sequence} is indexed but missing")))?;
    record::decode(&value).map_err(ReadError::Damaged)
}

/// Walks the log from sequence `from` (at least 1) to its end: returns the last
/// sequence and its commit time, or what is wrong. A crash can leave no partial batch
/// (batches are atomic in sled), so any gap, bad checksum or missing index entry is
/// damage, not an interrupted write. A log that ends before `from` answers `from - 1`
/// (the caller compares that with what was known durable).
fn verify(tree: &sled::Tree, from: u64) -> Result<(u64, i64), String> {
    let from = from.max(1);
    let mut last = from - 1;
    let mut last_event = None;
    for entry in tree.range(keys::event(from)..=keys::event(u64::MAX)) {
        let (key, value) = entry.map_err(|error| error.to_string())?;
        let sequence = keys::sequence_of_event_key(&key).ok_or("an event key is malformed")?;
        if sequence != last + 1 {
            return Err(format!("sequence {} is missing (the next present is {sequence})", last + 1));
        }
        let event = record::decode(&value).map_err(|why| format!("event {sequence}: {why}"))?;
        if event.sequence != sequence {
            return Err(format!("event {sequence} says it is {}", event.sequence));
        }
        last = sequence;
        last_event = Some(event);
    }
    let Some(event) = last_event else {
        if from > 1 {
            // The log ends before `from`: how far it really goes, for the caller.
            let before =
                tree.range(keys::event(1)..keys::event(from)).next_back().transpose().map_err(|e| e.to_string())?;
            let last = before.and_then(|(key, _)| keys::sequence_of_event_key(&key)).unwrap_or(0);
            return Ok((last, 0));
        }
        return Ok((0, 0));
    };
    let indexed = stream_run_covering(tree, &event.stream, event.stream_version)
        .map_err(|error| error.to_string())?
        .and_then(|run| run.sequence_of(event.stream_version));
    if indexed != Some(event.sequence) {
        return Err(format!("the stream index does not point at the last event {last}"));
    }
    let id_entry = tree.get(keys::id(&event.id)).map_err(|error| error.to_string())?;
    if id_entry.and_then(|value| IdEntry::decode(&value)).map(|entry| entry.sequence) != Some(event.sequence) {
        return Err(format!("the id index does not point at the last event {last}"));
    }
    Ok((last, event.recorded_at_ms))
}

/// The checkpoint file: a sequence known to have been durable, rewritten now and then
/// by the writer after a flush (never on the acknowledgement path). On open, a log
/// shorter than its checkpoint has lost acknowledged events, and says so.
pub(crate) mod checkpoint {
    use std::io::Write;
    use std::path::Path;

    use super::CHECKPOINT_FILE;

    const HEADER: &str = "tafel durable-sequence v1";

    pub fn read(dir: &Path) -> std::io::Result<u64> {
        match std::fs::read_to_string(dir.join(CHECKPOINT_FILE)) {
            Ok(text) => {
                let mut lines = text.lines();
                match (lines.next(), lines.next().and_then(|line| line.parse().ok())) {
                    (Some(HEADER), Some(sequence)) => Ok(sequence),
                    _ => Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{CHECKPOINT_FILE} is unreadable"),
                    )),
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(error) => Err(error),
        }
    }

    /// Replaces the checkpoint atomically: write a temporary file, fsync, rename, fsync
    /// the directory.
    pub fn write(dir: &Path, sequence: u64) -> std::io::Result<()> {
        let temporary = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
        let mut file = std::fs::File::create(&temporary)?;
        writeln!(file, "{HEADER}\n{sequence}")?;
        file.sync_all()?;
        std::fs::rename(&temporary, dir.join(CHECKPOINT_FILE))?;
        std::fs::File::open(dir)?.sync_all()
    }
}
