//! `tafel bench store`: durable appends per second through [`SledLog`], beside raw sled
//! inserts with a flush after each batch, measured in the same run on the same disk.
//!
//! Both sides write the same number of events per batch with payloads of the same
//! size, from the same number of concurrent writers, for the same time. The baseline
//! does no id index, no stream index, no version check and no checksum, so the ratio is
//! the price of the log's guarantees (and the gain of group commit).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tafel_store::{AppendBatch, EventLog, ExpectedVersion, NewEvent, OpenOptions, SledLog};

/// Bytes of each benchmark event's payload: about a submitted request's JSON.
pub const PAYLOAD_BYTES: usize = 1024;

#[derive(Debug, Clone)]
pub struct StoreBenchConfig {
    pub seconds_per_case: f64,
    pub dir: PathBuf,
    pub batch_sizes: Vec<usize>,
    pub writer_counts: Vec<usize>,
}

/// One measured case.
#[derive(Debug, Clone)]
pub struct StoreBenchRow {
    pub writers: usize,
    pub batch_events: usize,
    pub tafel_events_per_second: f64,
    pub tafel_batches_per_second: f64,
    pub raw_events_per_second: f64,
}

impl StoreBenchRow {
    pub fn ratio(&self) -> f64 {
        self.tafel_events_per_second / self.raw_events_per_second
    }
}

/// Runs every case and returns the rows; the caller prints them.
pub fn run_store_bench(config: &StoreBenchConfig) -> std::io::Result<Vec<StoreBenchRow>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let duration = Duration::from_secs_f64(config.seconds_per_case);
    let mut rows = Vec::new();
    for &writers in &config.writer_counts {
        for &batch_events in &config.batch_sizes {
            let case_dir = config.dir.join(format!("w{writers}-b{batch_events}"));
            let (tafel_events, tafel_batches) = runtime.block_on(tafel_appends(
                &case_dir.join("tafel"),
                writers,
                batch_events,
                duration,
            ))?;
            let raw_events =
                raw_sled_appends(&case_dir.join("raw"), writers, batch_events, duration)?;
            std::fs::remove_dir_all(&case_dir)?;
            rows.push(StoreBenchRow {
                writers,
                batch_events,
                tafel_events_per_second: tafel_events,
                tafel_batches_per_second: tafel_batches,
                raw_events_per_second: raw_events,
            });
        }
    }
    Ok(rows)
}

async fn tafel_appends(
    dir: &Path,
    writers: usize,
    batch_events: usize,
    duration: Duration,
) -> std::io::Result<(f64, f64)> {
    let log = SledLog::open(dir, OpenOptions::default()).map_err(std::io::Error::other)?;
    let events = Arc::new(AtomicU64::new(0));
    let batches = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (log, events, batches) = (log.clone(), events.clone(), batches.clone());
        tasks.push(tokio::spawn(async move {
            let mut index = 0u64;
            while started.elapsed() < duration {
                let batch = AppendBatch {
                    stream: format!("bench-{writer}"),
                    expected: ExpectedVersion::Any,
                    events: (0..batch_events)
                        .map(|k| NewEvent {
                            id: format!("w{writer}-{index}-{k}"),
                            principal: "bench".into(),
                            identity: format!("w{writer}-{index}-{k}").into_bytes(),
                            payload: vec![b'x'; PAYLOAD_BYTES],
                        })
                        .collect(),
                };
                log.append(batch).await.map_err(std::io::Error::other)?;
                events.fetch_add(batch_events as u64, Ordering::Relaxed);
                batches.fetch_add(1, Ordering::Relaxed);
                index += 1;
            }
            Ok::<(), std::io::Error>(())
        }));
    }
    for task in tasks {
        task.await.map_err(std::io::Error::other)??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    log.shutdown().await;
    Ok((
        events.load(Ordering::Relaxed) as f64 / elapsed,
        batches.load(Ordering::Relaxed) as f64 / elapsed,
    ))
}

/// The baseline: each writer thread inserts its batch with one `apply_batch` and then
/// calls sled's `flush` (write + fsync), as a plain sled user would for durability.
fn raw_sled_appends(
    dir: &Path,
    writers: usize,
    batch_events: usize,
    duration: Duration,
) -> std::io::Result<f64> {
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(128 * 1024 * 1024)
        .open()
        .map_err(std::io::Error::other)?;
    let next_key = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let (db, next_key, failed) = (db.clone(), next_key.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut written = 0u64;
                while started.elapsed() < duration {
                    let mut batch = sled::Batch::default();
                    for _ in 0..batch_events {
                        let key = next_key.fetch_add(1, Ordering::Relaxed);
                        batch.insert(&key.to_be_bytes(), vec![b'x'; PAYLOAD_BYTES]);
                    }
                    if db
                        .apply_batch(batch)
                        .and_then(|()| db.flush().map(|_| ()))
                        .is_err()
                    {
                        failed.store(true, Ordering::Relaxed);
                        break;
                    }
                    written += batch_events as u64;
                }
                written
            })
        })
        .collect();
    let written: u64 = threads
        .into_iter()
        .map(|thread| thread.join().unwrap_or(0))
        .sum();
    let elapsed = started.elapsed().as_secs_f64();
    if failed.load(Ordering::Relaxed) {
        return Err(std::io::Error::other("raw sled write failed"));
    }
    Ok(written as f64 / elapsed)
}
