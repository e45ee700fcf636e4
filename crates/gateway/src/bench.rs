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

/// The principal `tafel bench nats` submits as.
pub(crate) const BENCH_PRINCIPAL: &str = "bench";

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
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let duration = Duration::from_secs_f64(config.seconds_per_case);
    let mut rows = Vec::new();
    for &writers in &config.writer_counts {
        for &batch_events in &config.batch_sizes {
            let case_dir = config.dir.join(format!("w{writers}-b{batch_events}"));
            let (tafel_events, tafel_batches) =
                runtime.block_on(tafel_appends(&case_dir.join("tafel"), writers, batch_events, duration))?;
            let raw_events = raw_sled_appends(&case_dir.join("raw"), writers, batch_events, duration)?;
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
                    condition: Default::default(),
                    touches: Vec::new(),
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
    Ok((events.load(Ordering::Relaxed) as f64 / elapsed, batches.load(Ordering::Relaxed) as f64 / elapsed))
}

/// The baseline: each writer thread inserts its batch with one `apply_batch` and then
/// calls sled's `flush` (write + fsync), as a plain sled user would for durability.
fn raw_sled_appends(dir: &Path, writers: usize, batch_events: usize, duration: Duration) -> std::io::Result<f64> {
    // The same segment size as the log, so both sides write alike.
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(128 * 1024 * 1024)
        .segment_size(tafel_store::SEGMENT_SIZE_BYTES)
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
                    if db.apply_batch(batch).and_then(|()| db.flush().map(|_| ())).is_err() {
                        failed.store(true, Ordering::Relaxed);
                        break;
                    }
                    written += batch_events as u64;
                }
                written
            })
        })
        .collect();
    let written: u64 = threads.into_iter().map(|thread| thread.join().unwrap_or(0)).sum();
    let elapsed = started.elapsed().as_secs_f64();
    if failed.load(Ordering::Relaxed) {
        return Err(std::io::Error::other("raw sled write failed"));
    }
    Ok(written as f64 / elapsed)
}

/// One case of `tafel bench nats`: round trips from publish to durable reply.
#[derive(Debug, Clone)]
pub struct NatsBenchRow {
    pub publishers: usize,
    pub requests: usize,
    pub tafel: LatencySummary,
    pub baseline: LatencySummary,
}

#[derive(Debug, Clone, Copy)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub per_second: f64,
}

impl LatencySummary {
    fn of(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort();
        let at = |quantile: f64| {
            let index = ((latencies.len() as f64 - 1.0) * quantile).round() as usize;
            latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        Self { p50_ms: at(0.50), p99_ms: at(0.99), per_second: latencies.len() as f64 / elapsed.as_secs_f64() }
    }
}

#[derive(Debug, Clone)]
pub struct NatsBenchConfig {
    pub dir: PathBuf,
    /// `(publishers, requests per publisher)` cases.
    pub cases: Vec<(usize, usize)>,
}

/// Starts a `nats-server` of its own, Tafel in this process, and a trivial responder
/// that fsyncs a small file per request; runs each case against both.
pub fn run_nats_bench(config: &NatsBenchConfig) -> std::io::Result<Vec<NatsBenchRow>> {
    with_nats_server(&config.dir, |url| async move { nats_cases(&url, config).await })
}

/// Runs `cases` on a runtime of its own with a `nats-server` of its own, given its URL.
pub(crate) fn start_nats_server() -> std::io::Result<(std::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let server = std::process::Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| std::io::Error::other(format!("cannot start nats-server (is it installed?): {e}")))?;
    let url = format!("nats://127.0.0.1:{port}");
    // Wait until it takes connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(std::io::Error::other("nats-server did not come up"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((server, url))
}

fn with_nats_server<T, F: Future<Output = std::io::Result<T>>>(
    dir: &Path,
    cases: impl FnOnce(String) -> F,
) -> std::io::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    std::fs::create_dir_all(dir)?;
    let (mut server, url) = start_nats_server()?;
    let result = runtime.block_on(cases(url));
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// A log in `dir` and the service on it, with the one principal the benchmarks submit
/// as (an entrepreneur, with `token` for HTTP when given).
async fn bench_service(dir: &Path, token: Option<&str>) -> std::io::Result<(SledLog, Arc<tafel_service::Service>)> {
    use tafel_contract::PrincipalId;
    use tafel_contract::vocab::Role;
    use tafel_service::principals::{PrincipalEntry, Principals, PrincipalsFile, token_sha256};

    let log = SledLog::open(&dir.join("tafel"), OpenOptions::default()).map_err(std::io::Error::other)?;
    let bench_id = PrincipalId::parse(BENCH_PRINCIPAL).map_err(std::io::Error::other)?;
    let file = PrincipalsFile {
        principals: vec![PrincipalEntry {
            id: bench_id,
            role: Role::Entrepreneur,
            token_sha256: token.map(token_sha256),
            nats_password_bcrypt: None,
        }],
    };
    let principals = Principals::from_file(&file).map_err(std::io::Error::other)?;
    let (service, _projection) =
        tafel_service::start(log.clone(), principals, tafel_matcher::ScoringTable::default(), None)
            .await
            .map_err(std::io::Error::other)?;
    Ok((log, service))
}

/// A NATS client of the benchmarks' principal: replies come only to its own inbox
/// (contract 1.1 section 2).
pub(crate) async fn bench_client(url: &str) -> std::io::Result<async_nats::Client> {
    let client = async_nats::ConnectOptions::new()
        .custom_inbox_prefix(format!("_INBOX.{BENCH_PRINCIPAL}"))
        .connect(url)
        .await
        .map_err(std::io::Error::other)?;
    client.flush().await.map_err(std::io::Error::other)?;
    Ok(client)
}

/// The request the benchmarks submit, with id and subject `id`.
pub(crate) fn bench_request(id: &str) -> String {
    bench_request_value(id).to_string()
}

/// [`bench_request`] as JSON.
pub(crate) fn bench_request_value(id: &str) -> serde_json::Value {
    serde_json::json!({
        "specversion": "1.0", "id": id, "source": "/bench", "type": "tafel.request.submitted",
        "subject": id, "data": {
            "request_id": id,
            "organisation": {"name": "Bench BV", "kvk": "01234567", "region": "NL324"},
            "title": "A request", "summary": "x".repeat(400), "amount_eur": 150000,
            "instruments": ["loan"], "stage": "growth", "impact_themes": [7, 12], "certifications": []
        }
    })
}

async fn nats_cases(url: &str, config: &NatsBenchConfig) -> std::io::Result<Vec<NatsBenchRow>> {
    let (log, service) = bench_service(&config.dir, None).await?;
    let tafel_client = crate::nats::connect(url, "tafel").await.map_err(std::io::Error::other)?;
    let subscriptions = crate::nats::subscribe(&tafel_client).await.map_err(std::io::Error::other)?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(crate::nats::serve(tafel_client, subscriptions, service, stop));
    let responder = tokio::spawn(fsync_responder(url.to_owned(), config.dir.join("baseline-fsync")));

    let client = bench_client(url).await?;
    let mut rows = Vec::new();
    for (case, &(publishers, requests)) in config.cases.iter().enumerate() {
        let tafel = timed_requests(&client, publishers, requests, |publisher, index| {
            let event = bench_request(&format!("c{case}-p{publisher}-{index}"));
            ("tafel.submit.request.submitted.bench".to_owned(), event)
        })
        .await?;
        let baseline = timed_requests(&client, publishers, requests, |publisher, index| {
            ("bench.fsync".to_owned(), format!("{{\"publisher\":{publisher},\"index\":{index}}}"))
        })
        .await?;
        rows.push(NatsBenchRow { publishers, requests: publishers * requests, tafel, baseline });
    }
    let _ = stop_tx.send(true);
    let _ = serving.await;
    responder.abort();
    log.shutdown().await;
    Ok(rows)
}

/// `publishers` tasks each send `requests` requests one after another.
pub(crate) async fn timed_requests(
    client: &async_nats::Client,
    publishers: usize,
    requests: usize,
    message: impl Fn(usize, usize) -> (String, String),
) -> std::io::Result<LatencySummary> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let client = client.clone();
        let messages: Vec<(String, String)> = (0..requests).map(|index| message(publisher, index)).collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(messages.len());
            for (subject, body) in messages {
                let sent = Instant::now();
                let reply = client.request(subject, body.into()).await.map_err(std::io::Error::other)?;
                if reply.payload.starts_with(br#"{"accepted":false"#) || reply.payload.starts_with(br#"{"error""#) {
                    return Err(std::io::Error::other(String::from_utf8_lossy(&reply.payload).into_owned()));
                }
                latencies.push(sent.elapsed());
            }
            Ok::<_, std::io::Error>(latencies)
        }));
    }
    summarise(started, tasks).await
}

/// The baseline responder: for each request, append a few bytes to a file, fsync it,
/// then reply; each request concurrently and on its own, as a plain service would.
async fn fsync_responder(url: String, path: PathBuf) -> std::io::Result<()> {
    use futures::StreamExt;
    let client = async_nats::connect(url).await.map_err(std::io::Error::other)?;
    let mut requests = client.subscribe("bench.fsync").await.map_err(std::io::Error::other)?;
    client.flush().await.map_err(std::io::Error::other)?;
    let file = Arc::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
    while let Some(message) = requests.next().await {
        let (client, file) = (client.clone(), file.clone());
        tokio::spawn(async move {
            let written = tokio::task::spawn_blocking(move || {
                use std::io::Write;
                (&*file).write_all(b"a small durable record\n")?;
                file.sync_data()
            })
            .await;
            if let (Ok(Ok(())), Some(reply)) = (written, message.reply) {
                let _ = client.publish(reply, "{\"accepted\":true}".into()).await;
            }
        });
    }
    Ok(())
}

/// Figures of `tafel bench matcher`.
#[derive(Debug, Clone)]
pub struct MatcherBench {
    pub requests: usize,
    pub mandates: usize,
    pub load_seconds: f64,
    pub rebuild_seconds: f64,
    pub requests_with_entries: usize,
    pub new_mandate_seconds: f64,
    pub new_request_seconds: f64,
    pub bytes_per_mandate: f64,
    pub bytes_per_request: f64,
}

/// Resident memory of this process, in bytes (Linux).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// Builds a generated world of `requests` x `mandates` in the matcher, then times a full
/// rebuild of every shortlist and the live update for one new mandate and one new request.
pub fn run_matcher_bench(requests: usize, mandates: usize, seed: u64) -> MatcherBench {
    use tafel_contract::data::EventData;
    use tafel_matcher::generate::{Random, mandate, request};
    use tafel_matcher::{Matcher, ScoringTable};

    let day = tafel_contract::vocab::CalendarDate::parse("2024-06-01").ok();
    let mut random = Random::new(seed);
    let mut matcher = Matcher::new(ScoringTable::default());
    let before = resident_bytes();
    let started = Instant::now();
    let mut sequence = 0;
    for index in 0..mandates {
        sequence += 1;
        matcher.apply_data(sequence, day, &EventData::MandatePublished(mandate(&mut random, index)));
    }
    let after_mandates = resident_bytes();
    for index in 0..requests {
        sequence += 1;
        matcher.apply_data(sequence, day, &EventData::RequestSubmitted(request(&mut random, index)));
    }
    let load_seconds = started.elapsed().as_secs_f64();
    let after_requests = resident_bytes();

    let started = Instant::now();
    let requests_with_entries = matcher.rebuild(std::thread::available_parallelism().map_or(2, |n| n.get()));
    let rebuild_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    matcher.apply_data(sequence + 1, day, &EventData::MandatePublished(mandate(&mut random, mandates)));
    let new_mandate_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    matcher.apply_data(sequence + 2, day, &EventData::RequestSubmitted(request(&mut random, requests)));
    let new_request_seconds = started.elapsed().as_secs_f64();

    MatcherBench {
        requests,
        mandates,
        load_seconds,
        rebuild_seconds,
        requests_with_entries,
        new_mandate_seconds,
        new_request_seconds,
        bytes_per_mandate: after_mandates.saturating_sub(before) as f64 / mandates.max(1) as f64,
        bytes_per_request: after_requests.saturating_sub(after_mandates) as f64 / requests.max(1) as f64,
    }
}

/// Consortium search with `candidates` eligible partial mandates: the bounded search
/// beside a blind walk over every set of 2-4 of them, on the same candidates.
/// Returns (search seconds, blind seconds, whether both found the same best consortium).
pub fn run_consortium_bench(candidates: usize, seed: u64) -> (f64, f64, bool) {
    use tafel_matcher::consortium::{Candidate, search};
    let mut random = tafel_matcher::generate::Random::new(seed);
    let mut pool: Vec<Candidate> = (0..candidates)
        .map(|_| {
            let min_eur = 10_000 + random.below(40) * 1_000;
            Candidate {
                min_eur,
                max_eur: min_eur + 50_000 + random.below(300) * 1_000,
                score_tenths: 300 + random.below(600) as u32,
            }
        })
        .collect();
    pool.sort_by_key(|candidate| std::cmp::Reverse(candidate.score_tenths));
    // An amount that takes three or four parts.
    let amount_eur = 900_000;
    let started = Instant::now();
    let found = search(amount_eur, &pool);
    let search_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut best: Option<(usize, u32, Vec<usize>)> = None;
    let n = pool.len();
    let mut consider = |set: &[usize]| {
        let min: u64 = set.iter().map(|&i| pool[i].min_eur).sum();
        let max: u64 = set.iter().map(|&i| pool[i].max_eur).sum();
        if min <= amount_eur && amount_eur <= max {
            let score: u32 = set.iter().map(|&i| pool[i].score_tenths).sum();
            let better = match &best {
                None => true,
                Some((parts, kept, _)) => set.len() < *parts || (set.len() == *parts && score > *kept),
            };
            if better {
                best = Some((set.len(), score, set.to_vec()));
            }
        }
    };
    for a in 0..n {
        for b in a + 1..n {
            consider(&[a, b]);
            for c in b + 1..n {
                consider(&[a, b, c]);
                for d in c + 1..n {
                    consider(&[a, b, c, d]);
                }
            }
        }
    }
    let blind_seconds = started.elapsed().as_secs_f64();
    let best_search = found.first().map(|parts| parts.iter().map(|p| pool[p.0].score_tenths).sum::<u32>());
    let same = best_search == best.as_ref().map(|b| b.1) && found.first().map(Vec::len) == best.map(|b| b.0);
    (search_seconds, blind_seconds, same)
}

#[derive(Debug, Clone)]
pub struct HttpBenchConfig {
    pub dir: PathBuf,
    /// Concurrent clients, each on one keep-alive connection (HTTP) or sharing one
    /// connection (NATS, as its clients do).
    pub clients: usize,
    /// Requests per client and kind of work.
    pub requests: usize,
}

/// One kind of work, over HTTP and over NATS in the same run.
#[derive(Debug, Clone)]
pub struct HttpBenchRow {
    pub work: &'static str,
    pub requests: usize,
    pub http: LatencySummary,
    pub nats: LatencySummary,
}

/// Starts a `nats-server` of its own and one Tafel in this process serving both HTTP
/// and NATS; then, for submits and for shortlist reads, `clients` concurrent clients
/// send `requests` each over HTTP (keep-alive, one connection each), and the same work
/// over NATS.
pub fn run_http_bench(config: &HttpBenchConfig) -> std::io::Result<Vec<HttpBenchRow>> {
    with_nats_server(&config.dir, |url| async move { http_cases(&url, config).await })
}

async fn http_cases(url: &str, config: &HttpBenchConfig) -> std::io::Result<Vec<HttpBenchRow>> {
    const TOKEN: &str = "bench-token";
    let (log, service) = bench_service(&config.dir, Some(TOKEN)).await?;
    let tafel_client = crate::nats::connect(url, "tafel").await.map_err(std::io::Error::other)?;
    let subscriptions = crate::nats::subscribe(&tafel_client).await.map_err(std::io::Error::other)?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(crate::nats::serve(tafel_client, subscriptions, service.clone(), stop.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http_addr = listener.local_addr()?;
    let router = crate::http::app(crate::http::HttpState { service, nats: Vec::new(), web: Default::default() });
    let mut http_stop = stop.clone();
    let http_server =
        tokio::spawn(crate::http::serve_http(listener, router, crate::http::HEADER_READ_TIMEOUT, async move {
            let _ = http_stop.changed().await;
        }));
    let client = bench_client(url).await?;
    let (clients, requests) = (config.clients, config.requests);
    let mut rows = Vec::new();

    let http = timed_http(http_addr, TOKEN, clients, requests, |client, index| {
        ("POST", "/v1/events".to_owned(), bench_request(&format!("h-{client}-{index}")))
    })
    .await?;
    let nats = timed_requests(&client, clients, requests, |publisher, index| {
        ("tafel.submit.request.submitted.bench".to_owned(), bench_request(&format!("n-{publisher}-{index}")))
    })
    .await?;
    rows.push(HttpBenchRow { work: "submit", requests: clients * requests, http, nats });

    let http = timed_http(http_addr, TOKEN, clients, requests, |client, index| {
        ("GET", format!("/v1/requests/h-{client}-{index}/shortlist"), String::new())
    })
    .await?;
    let nats = timed_requests(&client, clients, requests, |publisher, index| {
        ("tafel.query.shortlist.bench".to_owned(), format!("{{\"request_id\":\"n-{publisher}-{index}\"}}"))
    })
    .await?;
    rows.push(HttpBenchRow { work: "shortlist read", requests: clients * requests, http, nats });

    let _ = stop_tx.send(true);
    let _ = serving.await;
    let _ = http_server.await;
    log.shutdown().await;
    Ok(rows)
}

/// `clients` tasks, each on its own keep-alive HTTP/1.1 connection, send `requests`
/// requests one after another; any answer but 200 or 201 is an error.
async fn timed_http(
    address: std::net::SocketAddr,
    token: &str,
    clients: usize,
    requests: usize,
    request: impl Fn(usize, usize) -> (&'static str, String, String),
) -> std::io::Result<LatencySummary> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let planned: Vec<(&'static str, String, String)> = (0..requests).map(|index| request(client, index)).collect();
        let authorization = format!("Bearer {token}");
        let stream = tokio::net::TcpStream::connect(address).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(planned.len());
            for (method, path, body) in planned {
                let sent = Instant::now();
                let request = axum::http::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("host", "localhost")
                    .header("authorization", &authorization)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body))
                    .map_err(std::io::Error::other)?;
                let response = sender.send_request(request).await.map_err(std::io::Error::other)?;
                let status = response.status();
                let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), usize::MAX)
                    .await
                    .map_err(std::io::Error::other)?;
                if !status.is_success() {
                    return Err(std::io::Error::other(format!("{status}: {}", String::from_utf8_lossy(&body))));
                }
                latencies.push(sent.elapsed());
            }
            Ok::<_, std::io::Error>(latencies)
        }));
    }
    summarise(started, tasks).await
}

/// The latencies of every task, summarised over the time since `started`.
async fn summarise(
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<Vec<Duration>>>>,
) -> std::io::Result<LatencySummary> {
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.map_err(std::io::Error::other)??);
    }
    Ok(LatencySummary::of(latencies, started.elapsed()))
}
