//! The store's own memory as its log grows, without Tafel's views: a programme of a
//! steady size (`--streams` streams, each event appended to one of them in turn, as
//! `tafel loadgen --requests` revises requests), `--writers` appending at once, one
//! event per batch, and the process's resident memory printed every `--every` events;
//! sled's cache set with `--cache-mib` (Tafel's default, 128, without it).
//! It runs as the `tafel` binary does (mimalloc, transparent huge pages off) with ids
//! shaped like `tafel loadgen`'s (`lg-<run>-<tick>`, unpadded, so they scatter in the
//! id index); what it leaves out is Tafel's views, its transports and their buffers.
//!
//!     cargo run --release -p tafel-store --example memory -- --events 1400000

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tafel_store::{AppendBatch, EventLog, ExpectedVersion, NewEvent, OpenOptions, SledLog};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    events: u64,
    streams: u64,
    writers: u64,
    payload: usize,
    every: u64,
    cache_mib: u64,
}

fn args() -> Result<Args, String> {
    let mut args =
        Args { events: 1_400_000, streams: 20_000, writers: 64, payload: 700, every: 100_000, cache_mib: 128 };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        if flag == "--help" || flag == "-h" {
            return Err("flags: --events N --streams N --writers N --payload BYTES --every N --cache-mib N".into());
        }
        let value = given.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = value.parse::<u64>().map_err(|e| format!("{flag} {value}: {e}"))?;
        match flag.as_str() {
            "--events" => args.events = number,
            "--streams" => args.streams = number.max(1),
            "--writers" => args.writers = number.max(1),
            "--payload" => args.payload = number as usize,
            "--every" => args.every = number.max(1),
            "--cache-mib" => args.cache_mib = number,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

/// Resident memory of this process, in MiB (Linux).
fn resident_mib() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1).and_then(|field| field.parse::<u64>().ok()))
        .unwrap_or(0);
    (pages * 4096) as f64 / 1048576.0
}

fn main() -> Result<(), String> {
    // As `tafel` does (see its main.rs): mimalloc with huge pages costs memory.
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of ours.
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
    let args = args()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let options = OpenOptions { cache_capacity_bytes: args.cache_mib * 1024 * 1024, ..OpenOptions::default() };
        let log = SledLog::open(dir.path(), options).map_err(|e| e.to_string())?;
        println!("{:>10} events  {:>9} MiB resident  {:>9} MiB on disk", 0, format!("{:.1}", resident_mib()), 0);
        let next = Arc::new(AtomicU64::new(0));
        let started = std::time::Instant::now();
        let mut writers = Vec::new();
        for _ in 0..args.writers {
            let (log, next) = (log.clone(), next.clone());
            let (events, streams, every, payload) = (args.events, args.streams, args.every, args.payload);
            writers.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= events {
                        return Ok::<(), String>(());
                    }
                    let mut body = format!("{{\"n\":{n},\"pad\":\"");
                    body.extend(std::iter::repeat_n('x', payload.saturating_sub(body.len() + 2)));
                    body.push_str("\"}");
                    let event = NewEvent {
                        id: format!("lg-k3m9x2-{n}"),
                        principal: "acme".into(),
                        identity: body.clone().into_bytes(),
                        payload: body.into_bytes(),
                    };
                    let batch =
                        AppendBatch::new(format!("request/r{}", n % streams), ExpectedVersion::Any, vec![event]);
                    log.append(batch).await.map_err(|e| e.to_string())?;
                    // Printed by whichever writer appends the every-th event: by then the
                    // events before it are appended but for the few still in flight.
                    if (n + 1) % every == 0 {
                        let disk = log.size_on_disk().map_err(|e| e.to_string())? as f64 / 1048576.0;
                        println!(
                            "{:>10} events  {:>9} MiB resident  {:>9} MiB on disk  {:>6.0} events/s",
                            n + 1,
                            format!("{:.1}", resident_mib()),
                            format!("{disk:.1}"),
                            (n + 1) as f64 / started.elapsed().as_secs_f64()
                        );
                    }
                }
            }));
        }
        for writer in writers {
            writer.await.map_err(|e| e.to_string())??;
        }
        log.shutdown().await;
        Ok(())
    })
}
