//! The HTTP side: liveness, readiness and metrics for now (contract section 6). The
//! event and query routes of the contract's HTTP table come with the HTTP gateway on
//! the roadmap and will call the same [`Service`].

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tafel_store::EventLog;

use crate::service::Service;

#[derive(Clone)]
pub struct HttpState {
    pub service: Arc<Service>,
    /// The NATS client, when Tafel serves NATS: readiness waits for its connection.
    pub nats: Option<async_nats::Client>,
}

pub fn app(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// 200 only once the log is open, the views have caught up with it, and every
/// configured transport (NATS included) is serving.
async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let nats_ok =
        state.nats.as_ref().is_none_or(|client| client.connection_state() == async_nats::connection::State::Connected);
    if state.service.caught_up() && nats_ok {
        (StatusCode::OK, ready_body(&state))
    } else if !nats_ok {
        (StatusCode::SERVICE_UNAVAILABLE, "waiting for NATS\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "catching up with the log\n")
    }
}

/// What a 200 from `/readyz` says: Tafel serves a NATS server without authentication
/// only when allowed (loopback or `--insecure-nats`), and says so here too.
fn ready_body(state: &HttpState) -> &'static str {
    match &state.nats {
        Some(client) if !client.server_info().auth_required => {
            "ready; the NATS server does not require authentication, so any client of it can pose as any principal\n"
        }
        _ => "ready\n",
    }
}

/// Prometheus text format.
async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let counters = &state.service.counters;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP tafel_log_last_sequence The last durable sequence of the event log.");
    let _ = writeln!(out, "# TYPE tafel_log_last_sequence gauge");
    let _ = writeln!(out, "tafel_log_last_sequence {}", state.service.log().last_sequence());
    let _ = writeln!(out, "# HELP tafel_submits_total Submits answered, by result.");
    let _ = writeln!(out, "# TYPE tafel_submits_total counter");
    for (result, counter) in
        [("accepted", &counters.accepted), ("duplicate", &counters.duplicates), ("refused", &counters.refused)]
    {
        let _ = writeln!(out, "tafel_submits_total{{result=\"{result}\"}} {}", counter.load(Ordering::Relaxed));
    }
    let _ = writeln!(out, "# HELP tafel_queries_total Queries answered.");
    let _ = writeln!(out, "# TYPE tafel_queries_total counter");
    let _ = writeln!(out, "tafel_queries_total {}", counters.queries.load(Ordering::Relaxed));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
