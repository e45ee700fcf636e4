//! Snapshots of the views, so that a restart replays only the log's tail.
//!
//! A snapshot is one file in `<data>/snapshots/`, named by the log position it stands
//! at: a magic line, a header (format, position, the id of the event at that position,
//! the scoring table), the views as JSON ([`World`], [`Reports`], the matcher with its
//! history), and a trailer with the body's length and CRC-32. It is written to a
//! temporary file, fsynced, renamed into place and the directory fsynced, so a crash
//! leaves either the whole snapshot or none.
//!
//! On start the newest snapshot that passes every check is loaded: magic, format,
//! length, checksum, a position not beyond the log, the same event id at that position
//! (a snapshot of another log is not this one's), the same scoring table, views that
//! stand where the header says. Anything else falls back to an older snapshot or to a
//! full replay: never to a wrong view. Snapshots are derived data: deleting the
//! directory costs one full replay and nothing else.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tafel_domain::World;
use tafel_domain::report::Reports;
use tafel_matcher::{Matcher, MatcherImage, ScoringTable};
use tafel_store::{EventLog, RecordedEvent, SledLog};
use tracing::{info, warn};

use crate::projection::Views;

/// The snapshots' directory, under the data directory.
pub const DIR: &str = "snapshots";
/// The format written; a snapshot of another format is not read (full replay instead).
pub const FORMAT: u32 = 1;
/// Events between two snapshots written in the background, by default.
pub const DEFAULT_EVERY: u64 = 100_000;
/// Snapshots kept: the newest, and one before it in case the newest turns out damaged.
const KEEP: usize = 2;
const MAGIC: &str = "tafel views snapshot";
const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".json";

/// When and where snapshots are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `None`: no snapshots are read or written (every start replays the whole log).
    pub dir: Option<PathBuf>,
    /// Events between two snapshots written in the background; 0 writes them only at a
    /// clean stop.
    pub every: u64,
}

impl Policy {
    /// Snapshots under the log's own data directory, every [`DEFAULT_EVERY`] events.
    pub fn beside(log: &SledLog) -> Self {
        Self { dir: Some(log.path().join(DIR)), every: DEFAULT_EVERY }
    }
}

/// The build of the views that writes snapshots: Tafel's version and a hash of the
/// sources the views are built by (see `build.rs`). A snapshot is read only by the
/// same build: when a rule, a fingerprint or a field changes, the log is replayed once.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "+views.", env!("TAFEL_VIEWS_BUILD"));

/// The event a snapshot stands at: its id and a checksum of the whole record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMark {
    pub id: String,
    /// CRC-32 of the record: sequence, stream and version, id, principal, commit time
    /// and payload.
    pub crc32: u32,
}

impl EventMark {
    pub fn of(record: &RecordedEvent) -> Self {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&record.sequence.to_le_bytes());
        crc.update(&(record.stream.len() as u64).to_le_bytes());
        crc.update(record.stream.as_bytes());
        crc.update(&record.stream_version.to_le_bytes());
        crc.update(&(record.id.len() as u64).to_le_bytes());
        crc.update(record.id.as_bytes());
        crc.update(&(record.principal.len() as u64).to_le_bytes());
        crc.update(record.principal.as_bytes());
        crc.update(&record.recorded_at_ms.to_le_bytes());
        crc.update(&record.payload);
        Self { id: record.id.clone(), crc32: crc.finalize() }
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    version: String,
    /// The identity of the log the views were built from ([`SledLog::identity`]).
    log: String,
    sequence: u64,
    event: EventMark,
    scoring: ScoringTable,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    body_bytes: u64,
    body_crc32: u32,
}

#[derive(Serialize)]
struct BodyRef<'a, M> {
    world: &'a World,
    reports: &'a Reports,
    matcher: M,
}

#[derive(Deserialize)]
struct Body {
    world: World,
    reports: Reports,
    matcher: MatcherImage,
}

/// Why a snapshot was not written or not used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the views cannot be written: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the matcher is replaying the log; a snapshot waits until it has caught up")]
    Hushed,
    #[error("{0}")]
    Unusable(String),
}

fn unusable(why: impl Into<String>) -> SnapshotError {
    SnapshotError::Unusable(why.into())
}

fn file_name(sequence: u64) -> String {
    format!("{PREFIX}{sequence:020}{SUFFIX}")
}

/// Counts and checksums what passes through to the file.
struct Summing<W> {
    inner: W,
    bytes: u64,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        self.crc.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes a snapshot writes before it starts their write-back.
const PACE_BYTES: u64 = 8 << 20;

/// The snapshot file, written back as it is written: every [`PACE_BYTES`] it starts the
/// write-back of what came since and waits for the range before. So a snapshot of
/// hundreds of megabytes never leaves more than twice that waiting for the disk, and the
/// log's fsyncs (which every submit waits for) never queue behind all of it at the end.
struct Paced {
    file: std::fs::File,
    written: u64,
    /// Where the range being written back starts, and where the next one will.
    writing_from: u64,
    next_from: u64,
}

impl Paced {
    fn new(file: std::fs::File) -> Self {
        Self { file, written: 0, writing_from: 0, next_from: 0 }
    }
}

impl Write for Paced {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.file.write(buf)?;
        self.written += written as u64;
        if self.written - self.next_from >= PACE_BYTES {
            self.pace()?;
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Paced {
    /// Waits for the range being written back, then starts the one written since.
    #[cfg(target_os = "linux")]
    fn pace(&mut self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let waiting = self.next_from - self.writing_from;
        // SAFETY: an open file's descriptor, and ranges within what was written.
        // An error of the write-back is reported here once, and not again by the fsync
        // at the end (the kernel reports each to one waiter): so it fails the write.
        if waiting > 0
            && unsafe {
                libc::sync_file_range(
                    fd,
                    self.writing_from as libc::off64_t,
                    waiting as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                )
            } != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let starting = self.written - self.next_from;
        // SAFETY: as above; starting a write-back waits for nothing and fails nothing.
        unsafe {
            libc::sync_file_range(
                fd,
                self.next_from as libc::off64_t,
                starting as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.writing_from = self.next_from;
        self.next_from = self.written;
        Ok(())
    }

    /// Elsewhere the fsync at the end does it all.
    #[cfg(not(target_os = "linux"))]
    fn pace(&mut self) -> std::io::Result<()> {
        self.writing_from = self.next_from;
        self.next_from = self.written;
        Ok(())
    }
}

/// Writes a snapshot of `views` (which stand at the event `event_id`) into `dir`, then
/// removes all but the newest [`KEEP`]. Returns the file written.
pub fn write(
    dir: &Path,
    log: &str,
    views: &Views,
    event: &EventMark,
    scoring: ScoringTable,
) -> Result<PathBuf, SnapshotError> {
    let matcher = views.matcher.image().ok_or(SnapshotError::Hushed)?;
    let sequence = views.last_sequence();
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // Also when it was made before snapshots were kept to Tafel's user alone.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    // A name of its own, so that two writers (the background one and the one at a
    // stop) never share a temporary file.
    let temporary =
        dir.join(format!(".{}.{}.{:?}.tmp", file_name(sequence), std::process::id(), std::thread::current().id()));
    let result = (|| -> Result<PathBuf, SnapshotError> {
        // The views hold what the log holds (names, KvK numbers, business plans): only
        // Tafel's own user reads them, as with the principals file.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(crate::principals::FILE_MODE)
            .open(&temporary)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, Paced::new(file));
        let header = Header {
            format: FORMAT,
            version: VERSION.to_owned(),
            log: log.to_owned(),
            sequence,
            event: event.clone(),
            scoring,
        };
        writeln!(out, "{MAGIC}")?;
        serde_json::to_writer(&mut out, &header)?;
        writeln!(out)?;
        let mut body = Summing { inner: &mut out, bytes: 0, crc: crc32fast::Hasher::new() };
        serde_json::to_writer(&mut body, &BodyRef { world: &views.world, reports: &views.reports, matcher })?;
        let trailer = Trailer { body_bytes: body.bytes, body_crc32: body.crc.finalize() };
        writeln!(out)?;
        serde_json::to_writer(&mut out, &trailer)?;
        writeln!(out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?.file;
        file.sync_all()?;
        let target = dir.join(file_name(sequence));
        std::fs::rename(&temporary, &target)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    let target = result?;
    prune(dir);
    Ok(target)
}

/// The snapshots in `dir`, newest first.
fn snapshots(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let sequence = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.parse().ok()?;
            Some((sequence, entry.path()))
        })
        .collect();
    found.sort_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
    found
}

/// Removes all but the newest [`KEEP`] snapshots.
fn prune(dir: &Path) {
    for (_, path) in snapshots(dir).into_iter().skip(KEEP) {
        if let Err(cause) = std::fs::remove_file(&path) {
            warn!(path = %path.display(), %cause, "an old snapshot could not be removed");
        }
    }
}

/// Removes temporary files a killed writer left behind. Only at start, before anything
/// writes a snapshot.
fn remove_leftovers(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The views of the newest usable snapshot in `dir` for `log`, scored with `scoring`;
/// `None` when there is none (a full replay follows). Every snapshot passed over is
/// logged with the reason.
pub fn load(dir: &Path, log: &SledLog, scoring: ScoringTable) -> Option<Views> {
    remove_leftovers(dir);
    for (sequence, path) in snapshots(dir) {
        let started = std::time::Instant::now();
        match read(&path, log, scoring) {
            Ok(views) => {
                info!(path = %path.display(), sequence, ms = started.elapsed().as_millis() as u64, "views loaded from a snapshot");
                return Some(views);
            }
            Err(cause) => warn!(path = %path.display(), %cause, "snapshot not used"),
        }
    }
    None
}

/// The views of the newest usable snapshot in `dir` at or before `through`, for
/// building the next snapshot beside the live views (`projection::build_at`): unlike
/// [`load`] it leaves other writers' temporary files alone, and passes over unusable
/// snapshots quietly (the start that loads them says why).
pub fn load_at_most(dir: &Path, log: &SledLog, scoring: ScoringTable, through: u64) -> Option<Views> {
    snapshots(dir)
        .into_iter()
        .filter(|(sequence, _)| *sequence <= through)
        .find_map(|(_, path)| read(&path, log, scoring).ok())
}

/// Reads one snapshot and checks it against `log`.
pub fn read(path: &Path, log: &SledLog, scoring: ScoringTable) -> Result<Views, SnapshotError> {
    decode(&std::fs::read(path)?, log, scoring)
}

/// [`read`] on a snapshot's bytes: every check, whatever the bytes (the fuzz target
/// `snapshot` feeds it anything).
pub fn decode(bytes: &[u8], log: &SledLog, scoring: ScoringTable) -> Result<Views, SnapshotError> {
    let (magic, rest) = split_line(bytes).ok_or_else(|| unusable("no magic line"))?;
    if magic != MAGIC.as_bytes() {
        return Err(unusable("not a snapshot"));
    }
    let (header, rest) = split_line(rest).ok_or_else(|| unusable("no header"))?;
    let header: Header = serde_json::from_slice(header).map_err(|e| unusable(format!("the header: {e}")))?;
    if header.format != FORMAT {
        return Err(unusable(format!("format {} (this Tafel reads {FORMAT})", header.format)));
    }
    if header.version != VERSION {
        return Err(unusable(format!("written by Tafel {} (this is {VERSION})", header.version)));
    }
    if header.log != log.identity() {
        return Err(unusable("taken of another log"));
    }
    if header.scoring != scoring {
        return Err(unusable("taken with another scoring table"));
    }
    // The body, then a newline, the trailer and a newline.
    let rest = rest.strip_suffix(b"\n").ok_or_else(|| unusable("truncated"))?;
    let split = rest.iter().rposition(|&b| b == b'\n').ok_or_else(|| unusable("truncated"))?;
    let (body, trailer) = (&rest[..split], &rest[split + 1..]);
    let trailer: Trailer = serde_json::from_slice(trailer).map_err(|_| unusable("truncated: no trailer"))?;
    if trailer.body_bytes != body.len() as u64 || trailer.body_crc32 != crc32fast::hash(body) {
        return Err(unusable("the checksum does not match: damaged"));
    }
    if header.sequence > log.last_sequence() {
        return Err(unusable(format!(
            "it stands at {} but the log ends at {}: not this log",
            header.sequence,
            log.last_sequence()
        )));
    }
    let event = log.read_from(header.sequence, 1).map_err(|e| unusable(e.to_string()))?;
    if event.first().filter(|event| event.sequence == header.sequence).map(EventMark::of) != Some(header.event.clone())
    {
        return Err(unusable(format!("event {} of the log is another: not this log", header.sequence)));
    }
    let Body { world, reports, matcher } =
        serde_json::from_slice(body).map_err(|e| unusable(format!("the views do not decode: {e}")))?;
    let matcher = Matcher::from_image(scoring, matcher).map_err(unusable)?;
    if matcher.history().is_none() {
        return Err(unusable("the matcher keeps no history"));
    }
    if world.last_sequence() != header.sequence || matcher.last_sequence() != header.sequence {
        return Err(unusable("the views do not stand where the header says"));
    }
    Ok(Views { world, matcher, reports, last_event: Some(header.event), failed: false })
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..end], &bytes[end + 1..]))
}
