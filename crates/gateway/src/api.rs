//! The HTTP API of contract 1.1 section 6: the same submits and queries as on NATS,
//! through the same [`Service`], with a bearer token in place of the subject's
//! principal. A handler parses, asks the service, and answers with the contract's
//! JSON and the status its code has; no rule lives here.
//!
//! - `POST /v1/events`: a submit; 201 accepted, 200 a duplicate, otherwise the code's
//!   status (400, 403, 404, 409, 413, 429, 503). The body is read only up to the
//!   contract's 64 KiB (and one byte more, to know it is over).
//! - `GET` routes for every query; query-string parameters become the query's JSON
//!   body (numbers where the query takes a number), the path's id its `<kind>_id`.
//! - A missing or unknown token answers 401 (`WWW-Authenticate: Bearer`);
//!   `rate_limited` answers 429 with `Retry-After`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use futures::StreamExt;
use serde_json::{Value, json};
use tafel_contract::reply::{ErrorCode, Refusal, SubmitReply};
use tafel_contract::{AggregateId, MAX_EVENT_BYTES, SubmitRoute};
use tafel_domain::Actor;

use tafel_service::{HTTP_MAX_REPLY_BYTES, Service};

/// Longest a submit's body may take to arrive, once its head has.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often an idle live shortlist sends a keep-alive comment.
pub const SSE_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);
/// Seconds a client told `rate_limited` waits before asking again.
const RETRY_AFTER_SECONDS: &str = "1";

/// One route of the contract's HTTP table: the router is built from [`ROUTES`], and so
/// is the OpenAPI document ([`crate::openapi`]), so the two cannot disagree.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// The OpenAPI `operationId`, and the key of its handler.
    pub operation: &'static str,
    pub summary: &'static str,
    /// Query-string parameters, each with its JSON Schema (as JSON text).
    pub parameters: &'static [(&'static str, &'static str)],
    /// The `$defs` name in `proto/tafel-v1.schema.json` of a successful reply
    /// (`text/event-stream` for the live shortlist).
    pub reply: &'static str,
    /// The statuses it answers besides the successful one (and 401).
    pub refusals: &'static [u16],
}

const ONE: &[u16] = &[400, 403, 404, 429, 503];
const LIMIT_LIST: &str = r#"{"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}"#;
const AFTER: &str = r##"{"$ref": "#/components/schemas/id"}"##;
const REQUESTS: &[(&str, &str)] = &[
    ("state", r#"{"enum": ["submitted", "needs_work", "ready", "withdrawn"]}"#),
    ("after", AFTER),
    ("limit", LIMIT_LIST),
];
const MANDATES: &[(&str, &str)] =
    &[("state", r#"{"enum": ["active", "closed"]}"#), ("after", AFTER), ("limit", LIMIT_LIST)];
const ROUNDTABLES: &[(&str, &str)] =
    &[("state", r#"{"enum": ["scheduled", "agenda_set", "concluded"]}"#), ("after", AFTER), ("limit", LIMIT_LIST)];
const LIMIT: &str = r#"{"type": "integer", "minimum": 1, "maximum": 100, "default": 10}"#;

/// The contract's HTTP table (section 6), but for health, readiness, metrics and the
/// OpenAPI document itself, which need no token.
pub const ROUTES: [Route; 13] = [
    Route {
        method: "post",
        path: "/v1/events",
        operation: "submitEvent",
        summary: "Submit one event (body: the CloudEvents envelope); 201 accepted, 200 a duplicate",
        parameters: &[],
        reply: "submit_reply",
        refusals: &[400, 403, 404, 409, 413, 503],
    },
    Route {
        method: "get",
        path: "/v1/events",
        operation: "readEvents",
        summary: "Stored events in sequence order (organisers and admins)",
        parameters: &[
            ("from", r#"{"type": "integer", "minimum": 1, "default": 1}"#),
            ("limit", r#"{"type": "integer", "minimum": 1, "maximum": 1000, "default": 1000}"#),
        ],
        reply: "events_page",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/requests",
        operation: "listRequests",
        summary: "The requests the principal may see",
        parameters: REQUESTS,
        reply: "requests_page",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/mandates",
        operation: "listMandates",
        summary: "The mandates the principal may see",
        parameters: MANDATES,
        reply: "mandates_page",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/roundtables",
        operation: "listRoundtables",
        summary: "The round tables the principal may see",
        parameters: ROUNDTABLES,
        reply: "roundtables_page",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/requests/{id}",
        operation: "getRequest",
        summary: "A request's current state",
        parameters: &[],
        reply: "request_state",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/mandates/{id}",
        operation: "getMandate",
        summary: "A mandate's current state",
        parameters: &[],
        reply: "mandate_state",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/roundtables/{id}",
        operation: "getRoundtable",
        summary: "A round table's current state, with its joint assessment view",
        parameters: &[],
        reply: "roundtable_state",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/requests/{id}/shortlist",
        operation: "getShortlist",
        summary: "A request's shortlist, now or as it stood at a log position",
        parameters: &[("limit", LIMIT), ("as_of", r#"{"type": "integer", "minimum": 0}"#)],
        reply: "shortlist",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/requests/{id}/shortlist/stream",
        operation: "streamShortlist",
        summary: "Server-sent events: the shortlist now, then each tafel.shortlist.updated",
        parameters: &[],
        reply: "text/event-stream",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/mandates/{id}/matches",
        operation: "getMatches",
        summary: "The requests a mandate is eligible for that the principal may see",
        parameters: &[("limit", LIMIT)],
        reply: "matches_reply",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/report",
        operation: "getReport",
        summary: "The programme report (coaches, organisers, admins)",
        parameters: &[("year", r#"{"type": "integer", "minimum": 1900, "maximum": 9999}"#)],
        reply: "report",
        refusals: ONE,
    },
    Route {
        method: "get",
        path: "/v1/openapi.json",
        operation: "getOpenApi",
        summary: "This document (no token needed)",
        parameters: &[],
        reply: "openapi",
        refusals: &[],
    },
];

/// The handler of `route`; every operation of [`ROUTES`] has one (a test builds them all).
fn handler(route: &Route) -> MethodRouter<Arc<Service>> {
    match route.operation {
        "submitEvent" => post(submit),
        "readEvents" => get(events),
        "listRequests" => get(requests),
        "listMandates" => get(mandates),
        "listRoundtables" => get(roundtables),
        "getRequest" => get(request),
        "getMandate" => get(mandate),
        "getRoundtable" => get(roundtable),
        "getShortlist" => get(shortlist),
        "streamShortlist" => get(shortlist_stream),
        "getMatches" => get(matches),
        "getReport" => get(report),
        "getOpenApi" => get(openapi),
        other => unreachable!("ROUTES names an operation without a handler: {other}"),
    }
}

/// The routes of the contract's HTTP table, on `service`.
pub fn routes(service: Arc<Service>) -> Router {
    ROUTES
        .iter()
        .fold(Router::new(), |router, route| router.route(route.path, handler(route)))
        // Anything else under /v1 is the API's, not the web pages': a JSON 404.
        .route("/v1/{*rest}", axum::routing::any(no_such_route))
        .with_state(service)
}

/// A path under `/v1` that is no route of the contract's table.
async fn no_such_route() -> Response {
    let refusal = Refusal::new(ErrorCode::NotFound, "no such route; see /v1/openapi.json");
    json_response(StatusCode::NOT_FOUND, json_bytes(&json!({"error": refusal})))
}

/// `GET /v1/openapi.json`.
async fn openapi() -> Response {
    json_response(StatusCode::OK, json_bytes(crate::openapi::document()))
}

/// A query string as key-value pairs, or why it could not be read.
type Parameters = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The principal behind the request's bearer token, if it is one Tafel knows.
fn authenticate(service: &Service, headers: &HeaderMap) -> Option<Actor> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    service.principals().actor_for_token(token)
}

fn unauthorized() -> Response {
    let refusal = Refusal::new(ErrorCode::Forbidden, "a valid bearer token is required (Authorization: Bearer ...)");
    let mut response = json_response(StatusCode::UNAUTHORIZED, json_bytes(&json!({"error": refusal})));
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn json_bytes(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{\"error\":{}}".to_vec())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// The status of a refusal's code, with `Retry-After` for `rate_limited`.
fn refused(refusal: &Refusal, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(refusal.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, body);
    if refusal.code == ErrorCode::RateLimited {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    response
}

/// `POST /v1/events`.
async fn submit(State(service): State<Arc<Service>>, headers: HeaderMap, body: Body) -> Response {
    let Some(actor) = authenticate(&service, &headers) else {
        return unauthorized();
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.parse::<usize>().ok());
    let reply = if announced.is_some_and(|length| length > MAX_EVENT_BYTES) {
        // Announced over the limit: refused before a byte of it is read.
        SubmitReply::refused(None, tafel_contract::envelope::too_large(announced))
    } else {
        match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_EVENT_BYTES + 1)).await {
            Ok(Ok(bytes)) => service.submit(&bytes, &SubmitRoute::http(&actor.id)).await,
            Ok(Err(error)) if is_length_limit(&error) => {
                SubmitReply::refused(None, tafel_contract::envelope::too_large(None))
            }
            Ok(Err(_)) | Err(_) => {
                let refusal = Refusal::new(
                    ErrorCode::MalformedJson,
                    format!("the body did not arrive whole within {} s", BODY_READ_TIMEOUT.as_secs()),
                );
                SubmitReply::refused(None, refusal)
            }
        }
    };
    let body = json_bytes(&reply);
    match &reply {
        SubmitReply::Accepted { duplicate: true, .. } => json_response(StatusCode::OK, body),
        SubmitReply::Accepted { .. } => json_response(StatusCode::CREATED, body),
        SubmitReply::Refused { error, .. } => refused(error, body),
    }
}

/// Whether reading a body failed because it was over the limit (not cut off).
fn is_length_limit(error: &axum::Error) -> bool {
    std::error::Error::source(error).is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>())
}

/// Asks query `name` as the token's principal, with the query string (and the path's
/// id as `id_field`) as its body.
async fn query(
    service: &Service,
    headers: &HeaderMap,
    name: &str,
    parameters: Parameters,
    path_id: Option<(&str, String)>,
) -> Response {
    let Some(actor) = authenticate(service, headers) else {
        return unauthorized();
    };
    let parameters = match parameters {
        Ok(Query(parameters)) => parameters,
        Err(rejection) => {
            let refusal = Refusal::new(ErrorCode::InvalidQuery, format!("the query string is unreadable: {rejection}"));
            return refused(&refusal, json_bytes(&json!({"error": refusal})));
        }
    };
    let body = match tafel_service::query_body(parameters, path_id) {
        Ok(body) => body,
        Err(refusal) => return refused(&refusal, json_bytes(&json!({"error": refusal}))),
    };
    match service.query_result(name, actor.id.as_str(), &body, HTTP_MAX_REPLY_BYTES).await {
        Ok(reply) => json_response(StatusCode::OK, reply),
        Err(refusal) => refused(&refusal, json_bytes(&json!({"error": refusal}))),
    }
}

async fn events(State(service): State<Arc<Service>>, headers: HeaderMap, p: Parameters) -> Response {
    query(&service, &headers, "events", p, None).await
}

async fn requests(State(service): State<Arc<Service>>, headers: HeaderMap, p: Parameters) -> Response {
    query(&service, &headers, "requests", p, None).await
}

async fn mandates(State(service): State<Arc<Service>>, headers: HeaderMap, p: Parameters) -> Response {
    query(&service, &headers, "mandates", p, None).await
}

async fn roundtables(State(service): State<Arc<Service>>, headers: HeaderMap, p: Parameters) -> Response {
    query(&service, &headers, "roundtables", p, None).await
}

async fn request(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Parameters,
) -> Response {
    query(&service, &headers, "request", p, Some(("request_id", id))).await
}

async fn mandate(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Parameters,
) -> Response {
    query(&service, &headers, "mandate", p, Some(("mandate_id", id))).await
}

async fn roundtable(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Parameters,
) -> Response {
    query(&service, &headers, "roundtable", p, Some(("roundtable_id", id))).await
}

async fn shortlist(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Parameters,
) -> Response {
    query(&service, &headers, "shortlist", p, Some(("request_id", id))).await
}

/// `GET /v1/requests/{id}/shortlist/stream`: server-sent events, the shortlist now
/// (`event: shortlist`), then a `tafel.shortlist.updated` CloudEvent each time it
/// changes, with keep-alive comments; for those who may see the shortlist, asked again
/// at each change (a token revoked or a role changed by SIGHUP ends the stream). A slow
/// client skips to the latest shortlist, never holding anyone back; the stream ends
/// when Tafel stops.
async fn shortlist_stream(State(service): State<Arc<Service>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(actor) = authenticate(&service, &headers) else {
        return unauthorized();
    };
    let Ok(request_id) = AggregateId::parse(&id) else {
        let refusal = Refusal::new(ErrorCode::InvalidQuery, "the request id is not an id");
        return refused(&refusal, json_bytes(&json!({"error": refusal})));
    };
    let (now, changes) = match service.live_shortlist(&actor.id, &request_id).await {
        Ok(live) => live,
        Err(refusal) => return refused(&refusal, json_bytes(&json!({"error": refusal}))),
    };
    let as_of = serde_json::from_slice::<Value>(&now).ok().and_then(|now| now["as_of"].as_u64()).unwrap_or(0);
    let first = Event::default().event("shortlist").id(as_of.to_string()).data(String::from_utf8_lossy(&now));
    let first = futures::stream::once(async move { Ok::<_, Infallible>(first) });
    let later = changes.map(|shortlist| {
        Ok(Event::default()
            .event("tafel.shortlist.updated")
            .id(shortlist.as_of.to_string())
            .data(json_text(&crate::fanout::shortlist_updated(&shortlist))))
    });
    let events = first.chain(later);
    Sse::new(events).keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE)).into_response()
}

fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

async fn matches(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Parameters,
) -> Response {
    query(&service, &headers, "matches", p, Some(("mandate_id", id))).await
}

async fn report(State(service): State<Arc<Service>>, headers: HeaderMap, p: Parameters) -> Response {
    query(&service, &headers, "report", p, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statuses of the contract's HTTP table (section 6), written out, for every code.
    #[test]
    fn every_code_answers_with_the_contracts_status() {
        let table = [
            (ErrorCode::MalformedJson, 400),
            (ErrorCode::InvalidEnvelope, 400),
            (ErrorCode::UnknownType, 400),
            (ErrorCode::SubjectMismatch, 400),
            (ErrorCode::InvalidData, 400),
            (ErrorCode::InvalidQuery, 400),
            (ErrorCode::Forbidden, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::VersionConflict, 409),
            (ErrorCode::InvalidState, 409),
            (ErrorCode::Conflict, 409),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::Unavailable, 503),
        ];
        assert_eq!(table.len(), ErrorCode::ALL.len(), "every code is in the table");
        for (code, status) in table {
            let response = refused(&Refusal::new(code, "x"), Vec::new());
            assert_eq!(response.status().as_u16(), status, "{code}");
            let retry_after = response.headers().get(header::RETRY_AFTER);
            assert_eq!(retry_after.is_some(), code == ErrorCode::RateLimited, "{code}: Retry-After");
        }
    }
}
