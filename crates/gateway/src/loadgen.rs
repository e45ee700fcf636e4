//! `tafel loadgen`: a steady rate of mixed submits and queries against a running Tafel,
//! over NATS or HTTP, for a set time, printing latency (p50, p99, max) and Tafel's
//! resident memory per interval.
//!
//! The load is open-loop: each request is due at its own tick, whether earlier ones
//! were answered or not, and its latency is counted from when it was due, so a Tafel
//! that falls behind shows it in the figures (no coordinated omission). Of every ten
//! ticks, seven submit a new request, one revises a request submitted about a second
//! earlier and two ask for the shortlist of one; the principals given take turns, each
//! its own entrepreneur. With a limit on requests, once that many are submitted the
//! submits revise them in turn: a programme of a steady size, its log still growing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

/// Requests waiting or in flight at once; a tick finding none free is counted as
/// `behind` and not sent.
const MAX_IN_FLIGHT: usize = 4096;
/// Keep-alive connections over HTTP.
const HTTP_CONNECTIONS: usize = 64;

#[derive(Clone, Debug)]
pub enum Target {
    /// A NATS URL and the principals to send as (their names: the subjects say who).
    Nats { url: String, principals: Vec<String> },
    /// Tafel's HTTP address and the principals' bearer tokens.
    Http { address: std::net::SocketAddr, tokens: Vec<String> },
}

#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub target: Target,
    pub per_second: u32,
    pub seconds: u64,
    pub interval_seconds: u64,
    /// Tafel's process id, to read its resident memory.
    pub pid: Option<u32>,
    /// About this many requests (a few more: the first second's ticks all submit): once
    /// they are submitted, the ticks that would submit
    /// a new one revise them in turn instead, so that the programme stops growing (the
    /// log still grows, by the revisions). `None`: every submit is a new request.
    pub requests: Option<u64>,
}

/// What one interval saw.
#[derive(Debug, Default, Clone)]
pub struct IntervalFigures {
    pub at_seconds: u64,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub limited: u64,
    pub behind: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub rss_bytes: Option<u64>,
}

impl std::fmt::Display for IntervalFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>6} s  sent {:>7}  ok {:>7}  errors {:>5}  limited {:>5}  behind {:>5}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  rss {}",
            self.at_seconds,
            self.sent,
            self.ok,
            self.errors,
            self.limited,
            self.behind,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.rss_bytes.map_or_else(|| "-".to_owned(), |bytes| format!("{:.1} MiB", bytes as f64 / 1048576.0)),
        )
    }
}

/// What one request came to.
enum Outcome {
    Ok,
    Limited,
    Error,
}

/// The interval's latencies and counts, filled by the requests as they finish.
#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    ok: u64,
    errors: u64,
    limited: u64,
}

type HttpConnection = Mutex<hyper::client::conn::http1::SendRequest<axum::body::Body>>;

enum Sender {
    /// Each principal's name and connection.
    Nats(Vec<(String, async_nats::Client)>),
    /// Each principal's token and keep-alive connections.
    Http(Vec<(String, Vec<HttpConnection>)>),
}

/// Runs the load; calls `report` after each interval with its figures. Returns every
/// interval's figures.
pub async fn run(
    config: &LoadConfig,
    mut report: impl FnMut(&IntervalFigures),
) -> std::io::Result<Vec<IntervalFigures>> {
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_millis())
    );
    let sender = Arc::new(connect(&config.target).await?);
    let window = Arc::new(std::sync::Mutex::new(Window::default()));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let (sent, behind) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / f64::from(config.per_second.max(1)));
    let mut figures = Vec::new();
    let mut next_report = Duration::from_secs(config.interval_seconds.max(1));
    let mut tick: u64 = 0;
    // Revisions and reads look a second of ticks back (at least 70), a multiple of ten.
    let lag = u64::from(config.per_second).max(70).div_ceil(10) * 10;
    loop {
        let due = period.mul_f64(tick as f64);
        let elapsed = started.elapsed();
        if elapsed >= next_report {
            let interval = take_window(&window, &sent, &behind, next_report.as_secs(), config.pid);
            report(&interval);
            figures.push(interval);
            next_report += Duration::from_secs(config.interval_seconds.max(1));
            if next_report > Duration::from_secs(config.seconds) + Duration::from_secs(config.interval_seconds.max(1)) {
                break;
            }
        }
        if due >= Duration::from_secs(config.seconds) {
            // No more ticks: wait for what is in flight, then for the last report.
            tokio::time::sleep(next_report.saturating_sub(started.elapsed())).await;
            continue;
        }
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            behind.fetch_add(1, Ordering::Relaxed);
            tick += 1;
            continue;
        };
        sent.fetch_add(1, Ordering::Relaxed);
        let (sender, window, run_id) = (sender.clone(), window.clone(), run_id.clone());
        let due_at = started + due;
        let pool = config.requests.map(|requests| pool_ticks(requests, lag));
        tokio::spawn(async move {
            let outcome = send(&sender, &run_id, tick, lag, pool).await;
            let latency = due_at.elapsed();
            if let Ok(mut window) = window.lock() {
                window.latencies.push(latency);
                match outcome {
                    Outcome::Ok => window.ok += 1,
                    Outcome::Limited => window.limited += 1,
                    Outcome::Error => window.errors += 1,
                }
            }
            drop(permit);
        });
        tick += 1;
    }
    Ok(figures)
}

fn take_window(
    window: &std::sync::Mutex<Window>,
    sent: &AtomicU64,
    behind: &AtomicU64,
    at_seconds: u64,
    pid: Option<u32>,
) -> IntervalFigures {
    let taken = window.lock().map(|mut window| std::mem::take(&mut *window)).unwrap_or_default();
    let mut latencies = taken.latencies;
    latencies.sort();
    let at = |quantile: f64| {
        let index = ((latencies.len() as f64 - 1.0) * quantile).round() as usize;
        latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    IntervalFigures {
        at_seconds,
        sent: sent.swap(0, Ordering::Relaxed),
        ok: taken.ok,
        errors: taken.errors,
        limited: taken.limited,
        behind: behind.swap(0, Ordering::Relaxed),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        rss_bytes: pid.and_then(resident_bytes),
    }
}

async fn connect(target: &Target) -> std::io::Result<Sender> {
    match target {
        Target::Nats { url, principals } => {
            // One server, or a cluster's servers separated by commas.
            let servers = url
                .split(',')
                .map(|one| one.trim().parse::<async_nats::ServerAddr>())
                .collect::<Result<Vec<_>, _>>()?;
            let mut clients = Vec::new();
            for principal in principals {
                let client = async_nats::ConnectOptions::new()
                    .custom_inbox_prefix(format!("_INBOX.{principal}"))
                    .request_timeout(Some(Duration::from_secs(30)))
                    .connect(servers.clone())
                    .await
                    .map_err(std::io::Error::other)?;
                clients.push((principal.clone(), client));
            }
            Ok(Sender::Nats(clients))
        }
        Target::Http { address, tokens } => {
            let mut principals = Vec::new();
            for token in tokens {
                let mut connections = Vec::new();
                for _ in 0..(HTTP_CONNECTIONS / tokens.len()).max(1) {
                    let stream = tokio::net::TcpStream::connect(address).await?;
                    let (sender, connection) =
                        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                            .await
                            .map_err(std::io::Error::other)?;
                    tokio::spawn(connection);
                    connections.push(Mutex::new(sender));
                }
                principals.push((token.clone(), connections));
            }
            Ok(Sender::Http(principals))
        }
    }
}

/// The ticks that submit `requests` new requests (seven in ten do), a multiple of ten
/// and more than `lag`, so that every tick after them has one to revise or read.
fn pool_ticks(requests: u64, lag: u64) -> u64 {
    (requests * 10).div_ceil(7).div_ceil(10).max(lag / 10 + 1) * 10
}

/// The request of tick `tick`: whether it is a submit, the type or query name, the
/// body, and the tick of the request it is about (which says whose it is). `lag` (a
/// multiple of ten) is how many ticks back a revision or a read looks; past `pool`
/// ticks (when given), each tick is about the request of its tick modulo `pool`, and a
/// submit revises it.
fn request_of(run_id: &str, tick: u64, lag: u64, pool: Option<u64>) -> (bool, &'static str, Value, u64) {
    if let Some(pool) = pool
        && tick >= pool
    {
        let (submit, name, mut body, about) = request_of(run_id, tick % pool + pool, lag, None);
        let about = about % pool;
        let id = format!("lg-{run_id}-{about}");
        let body = if submit {
            let mut event = crate::bench::bench_request_value(&id);
            event["id"] = json!(format!("lg-{run_id}-{tick}"));
            event["type"] = json!("tafel.request.revised");
            event
        } else {
            body["request_id"] = json!(id);
            body
        };
        let name = if submit { "tafel.request.revised" } else { name };
        return (submit, name, body, about);
    }
    let id = |tick: u64| format!("lg-{run_id}-{tick}");
    // Ticks 0-6 of ten submit; 7 revises, 8 and 9 read the request of a tick 6 about
    // `lag` ticks back (one that was submitted, and long since answered).
    match tick % 10 {
        7 if tick > lag => {
            let mut event = crate::bench::bench_request_value(&id(tick - lag - 1));
            event["id"] = json!(id(tick));
            event["type"] = json!("tafel.request.revised");
            (true, "tafel.request.revised", event, tick - lag - 1)
        }
        8 if tick > lag + 1 => (false, "shortlist", json!({"request_id": id(tick - lag - 2)}), tick - lag - 2),
        9 if tick > lag + 2 => (false, "shortlist", json!({"request_id": id(tick - lag - 3)}), tick - lag - 3),
        _ => (true, "tafel.request.submitted", crate::bench::bench_request_value(&id(tick)), tick),
    }
}

async fn send(sender: &Sender, run_id: &str, tick: u64, lag: u64, pool: Option<u64>) -> Outcome {
    let (submit, name, body, owner_tick) = request_of(run_id, tick, lag, pool);
    // A request's submit, revision and shortlist go as the same principal.
    let reply: Option<Value> = match sender {
        Sender::Nats(clients) => {
            let (principal, client) = &clients[owner_tick as usize % clients.len()];
            let subject = if submit {
                format!("tafel.submit.{}.{principal}", name.trim_start_matches("tafel."))
            } else {
                format!("tafel.query.{name}.{principal}")
            };
            match client.request(subject, Bytes::from(body.to_string())).await {
                Ok(message) => serde_json::from_slice(&message.payload).ok(),
                Err(_) => None,
            }
        }
        Sender::Http(principals) => {
            let (token, connections) = &principals[owner_tick as usize % principals.len()];
            let connection = &connections[tick as usize % connections.len()];
            let (method, path, payload) = if submit {
                ("POST", "/v1/events".to_owned(), body.to_string())
            } else {
                let request = body["request_id"].as_str().unwrap_or_default();
                ("GET", format!("/v1/requests/{request}/shortlist"), String::new())
            };
            let request = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .header("host", "localhost")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(payload));
            match request {
                Ok(request) => {
                    let mut connection = connection.lock().await;
                    match connection.send_request(request).await {
                        Ok(response) => {
                            match axum::body::to_bytes(axum::body::Body::new(response.into_body()), usize::MAX).await {
                                Ok(bytes) => serde_json::from_slice(&bytes).ok(),
                                Err(_) => None,
                            }
                        }
                        Err(_) => None,
                    }
                }
                Err(_) => None,
            }
        }
    };
    match reply {
        Some(reply) if reply["error"]["code"] == "rate_limited" => Outcome::Limited,
        Some(reply) if reply.get("error").is_some() || reply["accepted"] == json!(false) => Outcome::Error,
        Some(_) => Outcome::Ok,
        None => Outcome::Error,
    }
}

/// A process's resident memory, from `/proc/<pid>/status`.
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a limit on requests, every tick past the first `pool` is about a request
    /// one of those submitted, a submit there revises it (under an event id of its own),
    /// and about as many requests as asked for are submitted.
    #[test]
    fn a_limited_load_revises_and_reads_only_requests_it_submitted() {
        let (requests, lag) = (500, 100);
        let pool = pool_ticks(requests, lag);
        let mut submitted = std::collections::HashSet::new();
        let mut event_ids = std::collections::HashSet::new();
        for tick in 0..pool * 5 {
            let (submit, name, body, about) = request_of("t", tick, lag, Some(pool));
            let request = if submit { body["data"]["request_id"].clone() } else { body["request_id"].clone() };
            assert_eq!(request, json!(format!("lg-t-{about}")), "tick {tick}");
            if submit {
                assert!(event_ids.insert(body["id"].as_str().unwrap().to_owned()), "tick {tick} reuses an event id");
            }
            if name == "tafel.request.submitted" {
                assert!(tick < pool, "tick {tick} submits a new request past the pool");
                submitted.insert(about);
            } else {
                assert!(submitted.contains(&about), "tick {tick} ({name}) is about {about}, never submitted");
            }
        }
        // The first `lag` ticks all submit (nothing to revise or read yet).
        let most = requests + 3 * lag / 10 + 10;
        assert!((requests..=most).contains(&(submitted.len() as u64)), "{}", submitted.len());
    }
}
