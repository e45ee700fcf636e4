//! `tafel bench scale`: how Tafel's costs grow with the log. It writes a generated
//! programme of N events straight through the store ([`tafel_service::programme`]:
//! requests submitted, revised, coached and some withdrawn; mandates published, revised
//! and closed; round tables scheduled, given agendas, assessed and concluded with
//! commitments), every event checked by the domain's own decision first, so the log
//! replays as a real one does. Then it measures, each beside its baseline in the same
//! run: restart to ready from a snapshot (baseline: a full replay), the snapshot's
//! cost, past shortlists at 10 %, 50 % and 90 % of the log (baseline: the replay they
//! took before history), the report (baseline: a fold over the whole log), memory and
//! bytes on disk per event.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use tafel_contract::PrincipalId;
use tafel_contract::vocab::Role;
use tafel_service::principals::{PrincipalEntry, Principals, PrincipalsFile};
use tafel_service::programme::{self, Shape};
use tafel_service::snapshot::Policy;
use tafel_store::{EventLog, OpenOptions, SledLog};

/// The principal the queries are asked as.
const ORGANISER: &str = "o";

/// What `tafel bench scale` measured.
#[derive(Debug)]
pub struct ScaleFigures {
    pub events: u64,
    pub requests: usize,
    pub write_seconds: f64,
    /// Restart to ready with no snapshot: the log opened and every view replayed.
    pub restart_full_seconds: f64,
    /// The clean stop after it, which writes the snapshot.
    pub stop_seconds: f64,
    pub snapshot_bytes: u64,
    /// Restart to ready from that snapshot.
    pub restart_snapshot_seconds: f64,
    /// Copying the views under a read lock, as a background snapshot did before it was
    /// built beside the views (issue 12): the pause it took from the projection, and so
    /// from every submit, kept as the figure that change removed.
    pub copy_seconds: f64,
    /// Submits over NATS into the service on the whole log, beside the store alone
    /// (`None` when no `nats-server` could be started).
    pub ingest: Option<Ingest>,
    /// `(share of the log, seconds for one shortlist as_of there from history, seconds
    /// for the baseline: a hushed replay of the matcher up to there)`.
    pub as_of: Vec<(u8, f64, f64)>,
    /// The shortlist now, from the live views, for comparison.
    pub shortlist_now_seconds: f64,
    pub report_seconds: f64,
    pub report_fold_seconds: f64,
    /// The bench process's resident memory before the restart from the snapshot and
    /// after it.
    pub rss_before: Option<u64>,
    pub rss_after: Option<u64>,
    pub disk_bytes: u64,
}

/// Builds the log of about `events` events in `dir`, then measures.
pub fn run_scale_bench(dir: &Path, events: u64) -> std::io::Result<ScaleFigures> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(scale(dir, events))
}

async fn scale(dir: &Path, events: u64) -> std::io::Result<ScaleFigures> {
    let path = dir.join("log");
    let log = SledLog::open(&path, OpenOptions::default()).map_err(std::io::Error::other)?;
    let started = Instant::now();
    let written = programme::write(&log, events, Shape::bench()).await?;
    let write_seconds = started.elapsed().as_secs_f64();
    log.shutdown().await;
    drop(log);

    // The baseline restart: no snapshot yet, so the log is replayed whole.
    let started = Instant::now();
    let (log, service, projection) = start(&path).await?;
    let restart_full_seconds = started.elapsed().as_secs_f64();
    if service.applied_sequence() != written.events {
        return Err(std::io::Error::other("the views did not replay the whole log"));
    }
    // A clean stop writes the snapshot.
    let started = Instant::now();
    drop(service);
    log.shutdown().await;
    let _ = projection.await;
    let stop_seconds = started.elapsed().as_secs_f64();
    let snapshot_bytes = disk_bytes(&path.join(tafel_service::snapshot::DIR));
    drop(log);

    let rss_before = resident_bytes();
    let started = Instant::now();
    let (log, service, _projection) = start(&path).await?;
    let restart_snapshot_seconds = started.elapsed().as_secs_f64();
    let rss_after = resident_bytes();
    if service.applied_sequence() != written.events {
        return Err(std::io::Error::other("the views from the snapshot do not stand at the log's end"));
    }

    let ask = |name: &'static str, body: Value| {
        let service = service.clone();
        async move {
            let started = Instant::now();
            let body = serde_json::to_vec(&body).map_err(std::io::Error::other)?;
            let reply = service
                .query_result(name, ORGANISER, &body, tafel_service::HTTP_MAX_REPLY_BYTES)
                .await
                .map_err(|refusal| std::io::Error::other(refusal.to_string()))?;
            Ok::<_, std::io::Error>((started.elapsed().as_secs_f64(), reply))
        }
    };
    // Best of three: the first ask after a replay of the baseline finds the allocator
    // handing back the replay's memory.
    let best = |name: &'static str, body: Value| {
        let ask = &ask;
        async move {
            let mut fastest = ask(name, body.clone()).await?;
            for _ in 0..2 {
                let again = ask(name, body.clone()).await?;
                if again.0 < fastest.0 {
                    fastest = again;
                }
            }
            Ok::<_, std::io::Error>(fastest)
        }
    };
    let mut as_of = Vec::new();
    for share in [10u8, 50, 90] {
        let position = (written.events * u64::from(share) / 100).max(1);
        // The newest request that existed there.
        let request = written.requests.iter().rev().find(|(at, _)| *at <= position).map(|(_, id)| id.clone());
        let Some(request) = request else { continue };
        let (seconds, reply) = best("shortlist", json!({"request_id": request, "as_of": position})).await?;
        let started = Instant::now();
        let replayed = replay_matcher(&log, position)?;
        let baseline = started.elapsed().as_secs_f64();
        let id = tafel_contract::AggregateId::parse(&request).map_err(std::io::Error::other)?;
        let expected = serde_json::to_value(replayed.shortlist(&id, tafel_matcher::DEFAULT_LIMIT))?;
        if serde_json::from_slice::<Value>(&reply)? != expected {
            return Err(std::io::Error::other(format!("the shortlist as_of {position} differs from a replay's")));
        }
        as_of.push((share, seconds, baseline));
    }
    let newest =
        written.requests.last().map(|(_, id)| id.clone()).ok_or_else(|| std::io::Error::other("no request"))?;
    let (shortlist_now_seconds, _) = best("shortlist", json!({"request_id": newest})).await?;
    let (report_seconds, _) = best("report", json!({})).await?;
    let started = Instant::now();
    let all = tafel_service::stored::read_all_events(&log).map_err(std::io::Error::other)?;
    tafel_domain::report::report(&all, None).map_err(std::io::Error::other)?;
    let report_fold_seconds = started.elapsed().as_secs_f64();
    drop(all);
    let ingest = match ingest_over_nats(service.clone(), dir).await {
        Ok(figures) => Some(figures),
        Err(cause) => {
            tracing::warn!(%cause, "ingest over NATS not measured");
            None
        }
    };
    let copy_seconds = copy_views(&log)?;
    let disk = disk_bytes(&path);
    log.shutdown().await;
    Ok(ScaleFigures {
        events: written.events,
        requests: written.requests.len(),
        write_seconds,
        restart_full_seconds,
        stop_seconds,
        snapshot_bytes,
        restart_snapshot_seconds,
        copy_seconds,
        ingest,
        as_of,
        shortlist_now_seconds,
        report_seconds,
        report_fold_seconds,
        rss_before,
        rss_after,
        disk_bytes: disk.saturating_sub(snapshot_bytes),
    })
}

/// Opens the log at `path` and starts the service on it, as `tafel serve` does
/// (snapshots beside the log, none written in the background).
async fn start(
    path: &Path,
) -> std::io::Result<(SledLog, std::sync::Arc<tafel_service::Service>, tokio::task::JoinHandle<()>)> {
    let log = SledLog::open(path, OpenOptions::default()).map_err(std::io::Error::other)?;
    let policy = Policy { every: 0, ..Policy::beside(&log) };
    let (service, projection) = tafel_service::start_with(log.clone(), organiser()?, Default::default(), None, policy)
        .await
        .map_err(std::io::Error::other)?;
    Ok((log, service, projection))
}

/// The organiser the queries are asked as, and the entrepreneur that submits over NATS.
fn organiser() -> std::io::Result<Principals> {
    let entry = |id: &str, role| {
        Ok::<_, std::io::Error>(PrincipalEntry {
            id: PrincipalId::parse(id).map_err(std::io::Error::other)?,
            role,
            token_sha256: None,
            nats_password_bcrypt: None,
        })
    };
    let file = PrincipalsFile {
        principals: vec![entry(ORGANISER, Role::Organiser)?, entry(crate::bench::BENCH_PRINCIPAL, Role::Entrepreneur)?],
    };
    Principals::from_file(&file).map_err(std::io::Error::other)
}

/// Submits in flight at once when ingest is measured.
pub const INGEST_IN_FLIGHT: usize = 256;
/// Submits each of them sends.
const INGEST_EACH: usize = 40;

/// Ingest over NATS beside the store alone.
#[derive(Debug)]
pub struct Ingest {
    pub nats: crate::bench::LatencySummary,
    /// The store alone: the same payloads appended by as many tasks at once, one event
    /// per append, to a fresh log.
    pub store_per_second: f64,
}

/// [`INGEST_IN_FLIGHT`] publishers submit new requests over a `nats-server` of its own
/// to the service on the whole log (whose views each submit waits for); then the
/// store alone takes the same payloads from as many writers.
async fn ingest_over_nats(service: std::sync::Arc<tafel_service::Service>, dir: &Path) -> std::io::Result<Ingest> {
    let (mut server, url) = crate::bench::start_nats_server()?;
    let result = async {
        let tafel_client = crate::nats::connect(&url, "tafel").await.map_err(std::io::Error::other)?;
        let subscriptions = crate::nats::subscribe(&tafel_client).await.map_err(std::io::Error::other)?;
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let serving = tokio::spawn(crate::nats::serve(tafel_client, subscriptions, service, stop));
        let client = crate::bench::bench_client(&url).await?;
        let nats = crate::bench::timed_requests(&client, INGEST_IN_FLIGHT, INGEST_EACH, |publisher, index| {
            let event = crate::bench::bench_request(&format!("ingest-{publisher}-{index}"));
            ("tafel.submit.request.submitted.bench".to_owned(), event)
        })
        .await?;
        let _ = stop_tx.send(true);
        let _ = serving.await;
        let store_per_second = store_alone(&dir.join("store-alone")).await?;
        Ok(Ingest { nats, store_per_second })
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// The store's own rate for the ingest's shape: [`INGEST_IN_FLIGHT`] writers, one event
/// per append, the same payloads.
async fn store_alone(path: &Path) -> std::io::Result<f64> {
    use tafel_store::{AppendBatch, AppendCondition, ExpectedVersion, NewEvent};
    let log = SledLog::open(path, OpenOptions::default()).map_err(std::io::Error::other)?;
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..INGEST_IN_FLIGHT {
        let log = log.clone();
        writers.push(tokio::spawn(async move {
            for index in 0..INGEST_EACH {
                let id = format!("ingest-{writer}-{index}");
                let payload = crate::bench::bench_request(&id).into_bytes();
                let batch = AppendBatch {
                    stream: format!("request/{id}"),
                    expected: ExpectedVersion::Exactly(0),
                    events: vec![NewEvent {
                        id: id.clone(),
                        principal: "bench".into(),
                        identity: payload.clone(),
                        payload,
                    }],
                    condition: AppendCondition::default(),
                    touches: Vec::new(),
                };
                log.append(batch).await.map_err(std::io::Error::other)?;
            }
            Ok::<_, std::io::Error>(())
        }));
    }
    for writer in writers {
        writer.await.map_err(std::io::Error::other)??;
    }
    let per_second = (INGEST_IN_FLIGHT * INGEST_EACH) as f64 / started.elapsed().as_secs_f64();
    log.shutdown().await;
    drop(log);
    let _ = std::fs::remove_dir_all(path);
    Ok(per_second)
}

/// Replays the log up to `position` into a fresh hushed matcher: how a past shortlist
/// was answered before the matcher kept history.
fn replay_matcher(log: &SledLog, position: u64) -> std::io::Result<tafel_matcher::Matcher> {
    let mut matcher = tafel_matcher::Matcher::new(Default::default());
    matcher.hush();
    tafel_service::stored::for_each_event(log, position, |event| matcher.apply(&event).map(|_| ()))
        .map_err(std::io::Error::other)?;
    matcher.speak();
    Ok(matcher)
}

/// Replays the whole log into views as the projection keeps them, then times one copy
/// of them (what a background snapshot does under the read lock).
fn copy_views(log: &SledLog) -> std::io::Result<f64> {
    let views = tafel_service::projection::replay(log, log.last_sequence(), Default::default())
        .map_err(std::io::Error::other)?;
    let started = Instant::now();
    let copy = views.clone();
    let seconds = started.elapsed().as_secs_f64();
    drop(copy);
    // Which part of the copy costs what, for the log.
    let time = |copy: &dyn Fn()| {
        let started = Instant::now();
        copy();
        started.elapsed().as_secs_f64() * 1000.0
    };
    let world = time(&|| drop(views.world.clone()));
    let reports = time(&|| drop(views.reports.clone()));
    let matcher = time(&|| drop(views.matcher.clone()));
    tracing::info!(world, reports, matcher, "copying the views, ms per part");
    Ok(seconds)
}

/// The process's resident memory, from `/proc/self/status`.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

fn disk_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Where a run keeps its log when no directory is given.
pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("tafel-bench-scale-{}", std::process::id()))
}
