//! The HTTP side: liveness, readiness and metrics, the server itself (with a header
//! timeout), the API routes of contract section 6 from [`crate::api`] and the web pages
//! of `tafel-web`, which call the same [`Service`] as NATS.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tafel_store::EventLog;
use tracing::{debug, warn};

use tafel_service::Service;

#[derive(Clone)]
pub struct HttpState {
    pub service: Arc<Service>,
    /// The NATS clients, when Tafel serves NATS (the one answering submits and queries,
    /// and the fan-out's): readiness waits for each one's connection.
    pub nats: Vec<async_nats::Client>,
    /// What the web pages are served with (the demo's one-click sign-in, with `--demo`).
    pub web: tafel_web::WebConfig,
}

/// How long a client may take to send a request's line and headers, counted from when
/// Tafel starts waiting for them; an idle keep-alive connection is waiting for the next
/// request's head, so it is closed after as long. Without it, a client that never
/// finishes its headers holds a connection (and a file descriptor) for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most one connection buffers of what a client sends.
pub const MAX_READ_BUFFER_BYTES: usize = 80 * 1024;
/// Longest a stop waits for open HTTP connections to finish what they answer.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after the listener fails to accept (e.g. out of file descriptors), so that a
/// persistent failure does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` over HTTP/1.1 on `listener` until `shutdown` completes, then stops
/// accepting and waits for the connections to finish what they are answering
/// (graceful, as `axum::serve` is). Unlike `axum::serve`, it closes a connection whose
/// request head does not arrive within `header_read_timeout`, idle keep-alive
/// connections included.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    serve_http_switching(listener, tokio::sync::watch::channel(router).1, header_read_timeout, shutdown).await;
}

/// [`serve_http`] with the router of the moment: each new connection is served by the
/// router `routers` holds when it is accepted (`tafel serve` listens with
/// [`starting`] while it opens and replays its log, then with [`app`]).
pub async fn serve_http_switching(
    listener: tokio::net::TcpListener,
    routers: tokio::sync::watch::Receiver<Router>,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true)
        // Enough for a request head and an event of the contract's 64 KiB; a larger
        // body is read in turns, each checked against the limit.
        .max_buf_size(MAX_READ_BUFFER_BYTES);
    let connections = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(cause) => {
                    warn!(%cause, "cannot accept an HTTP connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let router = routers.borrow().clone();
        let service = hyper_util::service::TowerToHyperService::new(router);
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(cause) = connection.await {
                debug!(%peer, %cause, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    // Whatever still runs after the grace (a client that never reads) is cut off.
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.shutdown()).await.is_err() {
        warn!(grace_s = SHUTDOWN_GRACE.as_secs(), "HTTP connections still open at the end of the grace; closing them");
    }
}

/// What HTTP answers while Tafel starts (opening its log, catching up with the
/// cluster's, replaying it into the views): alive, not ready, nothing else yet. Every
/// answer closes its connection, so that a client's next request reaches the full
/// service once it is up.
pub fn starting(doing: &'static str) -> Router {
    let not_yet = move || async move {
        let body = format!("not ready: {doing}\n");
        (StatusCode::SERVICE_UNAVAILABLE, [(header::CONNECTION, "close"), (header::RETRY_AFTER, "5")], body)
    };
    Router::new()
        .route("/healthz", get(|| async { ([(header::CONNECTION, "close")], "ok\n") }))
        .route("/readyz", get(not_yet))
        .fallback(not_yet)
}

/// Every HTTP route: health, readiness and metrics (no token needed), the API of
/// contract section 6 ([`crate::api`]) and the web pages (`tafel-web`), the last two
/// over the same service.
pub fn app(state: HttpState) -> Router {
    crate::telemetry::prometheus();
    let api = crate::api::routes(state.service.clone());
    let pages = tafel_web::routes(state.service.clone(), state.web.clone());
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(api)
        .merge(pages)
}

/// 200 only once the log is open and writable, the views have caught up with it and
/// are following it, fan-out runs, and every configured transport (NATS included) is
/// serving; otherwise 503 with the reasons, one per line.
/// `/readyz`'s line while the views have not yet applied every event of the log (also
/// for a moment after each append under load): the log itself is whole.
pub const VIEWS_BEHIND: &str = "catching up with the log";

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let mut problems = state.service.problems();
    let nats_ok = state.nats.iter().all(|client| client.connection_state() == async_nats::connection::State::Connected);
    if !nats_ok {
        problems.push("waiting for NATS".into());
    }
    if !state.service.caught_up() {
        problems.push(VIEWS_BEHIND.into());
    }
    if problems.is_empty() {
        (StatusCode::OK, ready_body(&state).to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n") + "\n")
    }
}

/// What a 200 from `/readyz` says: Tafel serves a NATS server without authentication
/// only when allowed (loopback or `--insecure-nats`), and says so here too.
fn ready_body(state: &HttpState) -> &'static str {
    match state.nats.first() {
        Some(client) if !client.server_info().auth_required => {
            "ready; the NATS server does not require authentication, so any client of it can pose as any principal\n"
        }
        _ => "ready\n",
    }
}

/// Prometheus text format: every metric recorded through the `metrics` facade
/// ([`crate::telemetry`]), with the gauges read off the service now.
async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    use crate::telemetry::*;
    let service = &state.service;
    let durable = service.log().last_sequence();
    metrics::gauge!(LOG_LAST_SEQUENCE).set(durable as f64);
    metrics::gauge!(PROJECTION_LAG).set(durable.saturating_sub(service.applied_sequence()) as f64);
    metrics::gauge!(PARTS_STOPPED).set(service.problems().len() as f64);
    metrics::gauge!(SHORTLIST_FOLLOWERS).set(service.shortlist_followers() as f64);
    if let Some(client) = state.nats.first() {
        metrics::counter!(NATS_CONNECTS).absolute(client.statistics().connects.load(Ordering::Relaxed));
    }
    // sled walks its files for this: off the async runtime.
    let log = service.log().clone();
    if let Ok(Ok(bytes)) = tokio::task::spawn_blocking(move || log.size_on_disk()).await {
        metrics::gauge!(LOG_SIZE_BYTES).set(bytes as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], prometheus().render())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Instant;

    use super::*;

    const SHORT_TIMEOUT: Duration = Duration::from_millis(300);
    /// Far longer than `SHORT_TIMEOUT`: how long a test waits before calling a
    /// connection held open.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// `serve_http` with a short header timeout on a free port, on a runtime of its own;
    /// the test talks to it with plain blocking sockets.
    fn server() -> (u16, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>) {
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                let router = Router::new().route("/healthz", get(|| async { "ok\n" }));
                serve_http(listener, router, SHORT_TIMEOUT, async move {
                    let _ = stop_rx.await;
                })
                .await;
            });
        });
        (port_rx.recv().unwrap(), stop_tx, thread)
    }

    /// Reads until the server closes the connection; panics if it stays open.
    fn read_until_closed(stream: &mut std::net::TcpStream) -> (String, Duration) {
        let started = Instant::now();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut received = Vec::new();
        if let Err(error) = stream.read_to_end(&mut received) {
            assert!(
                error.kind() == std::io::ErrorKind::ConnectionReset,
                "the connection was still open after {PATIENCE:?}: {error}"
            );
        }
        (String::from_utf8_lossy(&received).into_owned(), started.elapsed())
    }

    #[test]
    fn a_request_head_that_never_ends_is_cut_off() {
        let (port, stop, server) = server();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"GET /healthz HT").unwrap();
        let (_, waited) = read_until_closed(&mut stream);
        assert!(waited < PATIENCE);

        // Nothing sent at all: the same.
        let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (received, _) = read_until_closed(&mut silent);
        assert!(!received.contains("200 OK"), "{received}");

        let _ = stop.send(());
        server.join().unwrap();
    }

    #[test]
    fn an_idle_keep_alive_connection_is_closed_and_a_prompt_request_answered() {
        let (port, stop, server) = server();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let (received, _) = read_until_closed(&mut stream);
        assert!(received.starts_with("HTTP/1.1 200 OK") && received.ends_with("ok\n"), "{received}");

        // Graceful shutdown still ends the server (and any connection it holds).
        let held = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = stop.send(());
        server.join().unwrap();
        drop(held);
    }
}
