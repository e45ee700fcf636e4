//! The HTTP API (contract 1.1 section 6) through the router, in-process
//! (`tower::ServiceExt::oneshot`): every route with each status it can answer, for the
//! roles it serves, against a real log. One more test drives the real binary over a
//! socket (`tests/serve.rs`).

#[path = "../../../tests/cases.rs"]
mod cases;
#[path = "../../../tests/events.rs"]
mod events;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tafel_contract::PrincipalId;
use tafel_contract::vocab::Role;
use tafel_gateway::http::{HttpState, app};
use tafel_service::principals::{PrincipalEntry, Principals, PrincipalsFile, token_sha256};
use tafel_service::start as start_service;
use tafel_store::{OpenOptions, SledLog};
use tower::ServiceExt;

/// Principals, each with the token `<id>-token`: those of the shared cases, and a coach.
const PRINCIPALS: [(&str, Role); 8] = [
    ("acme", Role::Entrepreneur),
    ("rival", Role::Entrepreneur),
    ("coach", Role::Coach),
    ("coach-anna", Role::Coach),
    ("bank-a", Role::Financier),
    ("bank-b", Role::Financier),
    ("organiser", Role::Organiser),
    ("admin", Role::Admin),
];

struct Api {
    router: Router,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
        let principals = Principals::from_file(&PrincipalsFile {
            principals: PRINCIPALS
                .iter()
                .map(|(id, role)| PrincipalEntry {
                    id: PrincipalId::parse(id).unwrap(),
                    role: *role,
                    token_sha256: Some(token_sha256(&format!("{id}-token"))),
                    nats_password_bcrypt: None,
                })
                .collect(),
        })
        .unwrap();
        let (service, _projection) =
            start_service(log, principals, tafel_matcher::ScoringTable::default(), None).await.unwrap();
        Api { router: app(HttpState { service, nats: Vec::new(), web: Default::default() }), _dir: dir }
    }

    /// Sends a request as `principal` (no token when `None`); the status, the headers
    /// and the body as JSON.
    async fn send(&self, method: Method, uri: &str, principal: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let (status, _, body) = self.send_full(method, uri, principal, body).await;
        (status, body)
    }

    async fn send_full(
        &self,
        method: Method,
        uri: &str,
        principal: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(principal) = principal {
            request = request.header(header::AUTHORIZATION, format!("Bearer {principal}-token"));
        }
        let response = self.router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let json =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (parts.status, parts.headers, json)
    }

    async fn get(&self, uri: &str, principal: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, Some(principal), Vec::new()).await
    }

    async fn post(&self, principal: &str, event: &Value) -> (StatusCode, Value) {
        self.send(Method::POST, "/v1/events", Some(principal), event.to_string().into_bytes()).await
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("none")
}

#[tokio::test]
async fn a_token_is_required_and_must_be_known() {
    let api = Api::start().await;
    for uri in ["/v1/events", "/v1/requests", "/v1/requests/r1", "/v1/report"] {
        let (status, headers, body) = api.send_full(Method::GET, uri, None, Vec::new()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(code(&body), "forbidden", "{body}");
        assert_eq!(api.send(Method::GET, uri, Some("stranger"), Vec::new()).await.0, StatusCode::UNAUTHORIZED);
    }
    let event = events::submitted("e1", "r1");
    let (status, _) = api.send(Method::POST, "/v1/events", None, event.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A path under /v1 that is no route is the API's JSON 404, not a web page.
    let (status, headers, body) = api.send_full(Method::GET, "/v1/nothing/here", Some("acme"), Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(code(&body), "not_found", "{body}");
    // Health, readiness and metrics need none.
    for uri in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(api.send(Method::GET, uri, None, Vec::new()).await.0, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn submits_answer_with_the_status_of_their_code() {
    let api = Api::start().await;
    let event = events::submitted("e1", "r1");
    let (status, reply) = api.post("acme", &event).await;
    assert_eq!((status, &reply["accepted"], &reply["sequence"]), (StatusCode::CREATED, &json!(true), &json!(1)));
    let (status, reply) = api.post("acme", &event).await;
    assert_eq!((status, &reply["duplicate"]), (StatusCode::OK, &json!(true)));

    let mut changed = event.clone();
    changed["data"]["amount_eur"] = json!(1);
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        ("acme", changed, StatusCode::CONFLICT, "conflict"),
        ("coach", events::submitted("e2", "r2"), StatusCode::FORBIDDEN, "forbidden"),
        (
            "acme",
            events::envelope("e3", "tafel.request.withdrawn", "nope", json!({"request_id": "nope", "reason": "x"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "rival",
            events::envelope("e4", "tafel.request.withdrawn", "r1", json!({"request_id": "r1", "reason": "x"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        ("acme", events::submitted("e5", "r1"), StatusCode::CONFLICT, "version_conflict"),
        (
            "acme",
            events::envelope("e6", "tafel.request.nonsense", "r9", json!({})),
            StatusCode::BAD_REQUEST,
            "unknown_type",
        ),
        ("acme", json!({"id": "e7"}), StatusCode::BAD_REQUEST, "invalid_envelope"),
    ];
    for (principal, event, expected_status, expected_code) in cases {
        let (status, reply) = api.post(principal, &event).await;
        assert_eq!((status, code(&reply)), (expected_status, expected_code), "{event}: {reply}");
        assert_eq!(reply["accepted"], false);
    }
    let mut bad = events::submitted("e8", "r8");
    bad["data"]["amount_eur"] = json!(0);
    let (status, reply) = api.post("acme", &bad).await;
    assert_eq!(
        (status, code(&reply), reply["error"]["field"].as_str()),
        (StatusCode::BAD_REQUEST, "invalid_data", Some("data.amount_eur"))
    );
    let (status, reply) = api.send(Method::POST, "/v1/events", Some("acme"), b"{not json".to_vec()).await;
    assert_eq!((status, code(&reply)), (StatusCode::BAD_REQUEST, "malformed_json"));
    let huge = vec![b' '; tafel_contract::MAX_EVENT_BYTES + 10_000];
    let (status, reply) = api.send(Method::POST, "/v1/events", Some("acme"), huge).await;
    assert_eq!((status, code(&reply)), (StatusCode::PAYLOAD_TOO_LARGE, "too_large"));
}

#[tokio::test]
async fn queries_answer_what_the_principal_may_see() {
    let api = Api::start().await;
    for id in ["r1", "r2"] {
        assert_eq!(api.post("acme", &events::submitted(id, id)).await.0, StatusCode::CREATED);
    }
    assert_eq!(api.post("rival", &events::submitted("r3", "r3")).await.0, StatusCode::CREATED);

    // One aggregate.
    let (status, own) = api.get("/v1/requests/r1", "acme").await;
    assert_eq!((status, &own["request_id"], &own["version"]), (StatusCode::OK, &json!("r1"), &json!(1)));
    assert_eq!(api.get("/v1/requests/r1", "rival").await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/v1/requests/r1", "organiser").await.0, StatusCode::OK);
    assert_eq!(api.get("/v1/requests/nope", "organiser").await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/v1/mandates/nope", "bank-a").await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/v1/roundtables/nope", "organiser").await.0, StatusCode::NOT_FOUND);

    // Lists, with the query string as the query's fields.
    let (status, page) = api.get("/v1/requests?limit=1", "acme").await;
    assert_eq!((status, page["requests"].as_array().unwrap().len(), &page["next"]), (StatusCode::OK, 1, &json!("r1")));
    let (_, page) = api.get("/v1/requests?after=r1", "acme").await;
    assert_eq!((&page["requests"][0]["request_id"], &page["next"]), (&json!("r2"), &Value::Null));
    let (_, page) = api.get("/v1/requests?state=submitted", "organiser").await;
    assert_eq!(page["requests"].as_array().unwrap().len(), 3);
    assert_eq!(api.get("/v1/mandates", "bank-a").await, (StatusCode::OK, json!({"mandates": [], "next": null})));
    assert_eq!(
        api.get("/v1/roundtables", "organiser").await,
        (StatusCode::OK, json!({"roundtables": [], "next": null}))
    );
    let (status, body) = api.get("/v1/requests?limit=many", "acme").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_query"));
    let (status, body) = api.get("/v1/requests?state=lost", "acme").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_query"));

    // The log, for organisers and admins.
    let (status, page) = api.get("/v1/events?from=2&limit=1", "admin").await;
    assert_eq!((status, &page["events"][0]["sequence"], &page["next"]), (StatusCode::OK, &json!(2), &json!(3)));
    assert_eq!(api.get("/v1/events", "acme").await.0, StatusCode::FORBIDDEN);

    // Shortlists and matches.
    let (status, shortlist) = api.get("/v1/requests/r1/shortlist?limit=5", "acme").await;
    assert_eq!((status, &shortlist["request_id"]), (StatusCode::OK, &json!("r1")));
    let (status, past) = api.get("/v1/requests/r1/shortlist?as_of=1", "acme").await;
    assert_eq!((status, &past["as_of"]), (StatusCode::OK, &json!(1)));
    assert_eq!(api.get("/v1/requests/r1/shortlist", "rival").await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/v1/requests/r1/shortlist?as_of=99", "acme").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        api.post("bank-a", &events::envelope("m1", "tafel.mandate.published", "m1", events::mandate("m1"))).await.0,
        StatusCode::CREATED
    );
    let (status, matches) = api.get("/v1/mandates/m1/matches", "bank-a").await;
    assert_eq!((status, &matches["mandate_id"]), (StatusCode::OK, &json!("m1")));
    assert_eq!(api.get("/v1/mandates/m1/matches", "organiser").await.0, StatusCode::OK);

    // The report.
    let (status, report) = api.get("/v1/report", "coach").await;
    assert_eq!((status, &report["requests_submitted"]), (StatusCode::OK, &json!(3)));
    assert_eq!(api.get("/v1/report?year=1066", "coach").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(api.get("/v1/report", "acme").await.0, StatusCode::FORBIDDEN);
}

/// Reads the next server-sent event (skipping keep-alive comments) from `body`.
async fn next_event(body: &mut Body, buffered: &mut String) -> String {
    loop {
        if let Some(end) = buffered.find("\n\n") {
            let event: String = buffered.drain(..end + 2).collect();
            if event.lines().all(|line| line.starts_with(':')) {
                continue;
            }
            return event;
        }
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
            .await
            .expect("no server-sent event within 10 s")
            .expect("the stream ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            buffered.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

fn data_of(event: &str) -> Value {
    let data: String = event.lines().filter_map(|line| line.strip_prefix("data:")).map(str::trim_start).collect();
    serde_json::from_str(&data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_shortlist_sends_the_shortlist_now_then_each_change() {
    let api = Api::start().await;
    assert_eq!(api.post("acme", &events::submitted("r1", "r1")).await.0, StatusCode::CREATED);
    assert_eq!(api.get("/v1/requests/r1/shortlist/stream", "rival").await.0, StatusCode::NOT_FOUND);
    let unauthorised = api.send(Method::GET, "/v1/requests/r1/shortlist/stream", None, Vec::new()).await;
    assert_eq!(unauthorised.0, StatusCode::UNAUTHORIZED);

    let request = Request::get("/v1/requests/r1/shortlist/stream")
        .header(header::AUTHORIZATION, "Bearer acme-token")
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body();
    let mut buffered = String::new();
    let now = next_event(&mut body, &mut buffered).await;
    assert!(now.contains("event: shortlist"), "{now}");
    let now = data_of(&now);
    assert_eq!((&now["request_id"], &now["entries"]), (&json!("r1"), &json!([])));

    // A financier publishes a mandate that fits: the change arrives on the stream.
    let published = events::envelope("m1", "tafel.mandate.published", "m1", events::mandate("m1"));
    assert_eq!(api.post("bank-a", &published).await.0, StatusCode::CREATED);
    let change = next_event(&mut body, &mut buffered).await;
    assert!(change.contains("event: tafel.shortlist.updated"), "{change}");
    let change = data_of(&change);
    assert_eq!(change["type"], "tafel.shortlist.updated");
    assert_eq!(change["data"]["entries"][0]["mandate_id"], "m1");
    assert_eq!(change["data"]["as_of"], 2);
}

#[tokio::test]
async fn metrics_count_submits_refusals_and_group_commits() {
    let api = Api::start().await;
    assert_eq!(api.post("acme", &events::submitted("x1", "x1")).await.0, StatusCode::CREATED);
    assert_eq!(api.post("coach", &events::submitted("x2", "x2")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.get("/v1/requests/x1", "acme").await.0, StatusCode::OK);
    let (status, Value::String(metrics)) = api.send(Method::GET, "/metrics", None, Vec::new()).await else {
        panic!("metrics are text");
    };
    assert_eq!(status, StatusCode::OK);
    // Other tests of this process record too: look for each series, not for a count.
    for series in [
        "tafel_submits_total{type=\"tafel.request.submitted\",result=\"accepted\"}",
        "tafel_submits_total{type=\"tafel.request.submitted\",result=\"refused\"}",
        "tafel_refusals_total{code=\"forbidden\"}",
        "tafel_submit_seconds_bucket{le=\"",
        "tafel_query_seconds_bucket{query=\"request\",le=\"",
        "tafel_log_group_commit_events_bucket{le=\"1\"}",
        "tafel_log_flush_seconds_count ",
        "tafel_log_last_sequence ",
        "tafel_projection_lag_events ",
        "tafel_log_size_bytes ",
        "tafel_shortlist_followers ",
        "tafel_parts_stopped 0",
    ] {
        assert!(metrics.contains(series), "{series} is missing from\n{metrics}");
    }
}

/// `proto/openapi.json` is the document the code generates, and the router serves it.
#[tokio::test]
async fn the_openapi_document_is_committed_and_served() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/openapi.json")).unwrap();
    assert!(
        committed == tafel_gateway::openapi::pretty(),
        "proto/openapi.json is out of date: run `tafel openapi > proto/openapi.json`"
    );
    let api = Api::start().await;
    let (status, served) = api.send(Method::GET, "/v1/openapi.json", None, Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "no token is needed");
    assert_eq!(&served, tafel_gateway::openapi::document());
}

/// Every documented route is served, with its documented method, and nothing else is.
#[tokio::test]
async fn the_router_and_the_document_agree() {
    let api = Api::start().await;
    let document = tafel_gateway::openapi::document();
    let paths = document["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, item) in paths {
        let uri = path.replace("{id}", "x");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = api.send(method.clone(), &uri, None, Vec::new()).await;
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not served: {status} {body}"
            );
            let open = item[method.as_str().to_lowercase()]["security"] == json!([]);
            assert_eq!(status == StatusCode::UNAUTHORIZED, !open, "{method} {path}: {status}");
            documented += 1;
        }
        // A method it does not document is not served.
        if !item.as_object().unwrap().contains_key("delete") {
            assert_eq!(api.send(Method::DELETE, &uri, None, Vec::new()).await.0, StatusCode::METHOD_NOT_ALLOWED);
        }
    }
    assert_eq!(documented, tafel_gateway::api::ROUTES.len() + 3, "every route and health, readiness, metrics");
    assert_eq!(api.send(Method::GET, "/v1/nothing-here", None, Vec::new()).await.0, StatusCode::NOT_FOUND);
    // Every reference resolves to a schema of proto/tafel-v1.schema.json.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]) {
        let name = reference.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{reference}"));
        assert!(schemas.contains_key(name), "{reference} does not resolve");
    }
}

/// What each route answers validates against the schema the document gives for it.
#[tokio::test]
async fn replies_validate_against_their_documented_schemas() {
    let api = Api::start().await;
    assert_eq!(api.post("acme", &events::submitted("r1", "r1")).await.0, StatusCode::CREATED);
    let published = events::envelope("m1", "tafel.mandate.published", "m1", events::mandate("m1"));
    assert_eq!(api.post("bank-a", &published).await.0, StatusCode::CREATED);
    let schedule = json!({"roundtable_id": "t1", "title": "Juni", "date": "2021-06-15", "mandate_ids": ["m1"]});
    let scheduled = events::envelope("t1", "tafel.roundtable.scheduled", "t1", schedule);
    assert_eq!(api.post("organiser", &scheduled).await.0, StatusCode::CREATED);

    let document = tafel_gateway::openapi::document();
    let validate = |reply_schema: &str, instance: &Value, what: &str| {
        let schema = json!({"$ref": format!("#/components/schemas/{reply_schema}"),
                            "components": document["components"]});
        let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{what}: {errors:?}\n{instance:#}");
    };
    let mut checked = 0;
    for route in tafel_gateway::api::ROUTES.iter().filter(|route| route.method == "get") {
        if matches!(route.reply, "text/event-stream" | "openapi") {
            continue;
        }
        let id = match route.path {
            path if path.starts_with("/v1/requests/") => "r1",
            path if path.starts_with("/v1/mandates/") => "m1",
            _ => "t1",
        };
        let uri = route.path.replace("{id}", id);
        let (status, reply) = api.get(&uri, "organiser").await;
        assert_eq!(status, StatusCode::OK, "{uri}: {reply}");
        validate(route.reply, &reply, &uri);
        let (status, refusal) = api.get(&route.path.replace("{id}", "nope"), "acme").await;
        if status != StatusCode::OK {
            validate("query_error", &refusal, &uri);
        }
        checked += 1;
    }
    assert_eq!(checked, 10);
    validate("submit_reply", &api.post("acme", &events::submitted("r2", "r2")).await.1, "POST /v1/events");
}

/// The path and query string of a query over HTTP (contract section 6's table).
fn uri_of(name: &str, body: &Value) -> String {
    let mut fields = body.as_object().cloned().unwrap_or_default();
    let mut take = |field: &str| fields.remove(field).and_then(|id| id.as_str().map(str::to_owned)).unwrap();
    let path = match name {
        "request" => format!("/v1/requests/{}", take("request_id")),
        "mandate" => format!("/v1/mandates/{}", take("mandate_id")),
        "roundtable" => format!("/v1/roundtables/{}", take("roundtable_id")),
        "shortlist" => format!("/v1/requests/{}/shortlist", take("request_id")),
        "matches" => format!("/v1/mandates/{}/matches", take("mandate_id")),
        other => format!("/v1/{other}"),
    };
    let query: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{key}={}", value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
        .collect();
    if query.is_empty() { path } else { format!("{path}?{}", query.join("&")) }
}

/// The table of cases shared with the NATS tests (`tests/cases.rs`), over HTTP: the same
/// outcome, with the status the contract gives it.
#[tokio::test]
async fn the_shared_cases_over_http() {
    let api = Api::start().await;
    for (who, event) in cases::given() {
        assert_eq!(api.post(who, &event).await.0, StatusCode::CREATED, "given {event}");
    }
    for (index, case) in cases::cases().into_iter().enumerate() {
        let (status, outcome) = match &case.ask {
            cases::Ask::Submit(event) => {
                let (status, reply) = api.post(case.who, event).await;
                (status, cases::submit_outcome(&reply))
            }
            cases::Ask::Query(name, body) => {
                let (status, reply) = api.get(&uri_of(name, body), case.who).await;
                (status, cases::query_outcome(&reply))
            }
        };
        assert_eq!(outcome, case.expect.describe(), "case {index}: {} asks {:?}", case.who, case.ask);
        // The contract's HTTP table (section 6), written out here, not taken from the code.
        let expected_status = match case.expect {
            cases::Outcome::Accepted => 201,
            cases::Outcome::Duplicate | cases::Outcome::Answered | cases::Outcome::Listed(_) => 200,
            cases::Outcome::Refused(
                "malformed_json" | "invalid_envelope" | "unknown_type" | "subject_mismatch" | "invalid_data"
                | "invalid_query",
            ) => 400,
            cases::Outcome::Refused("forbidden") => 403,
            cases::Outcome::Refused("not_found") => 404,
            cases::Outcome::Refused("version_conflict" | "invalid_state" | "conflict") => 409,
            cases::Outcome::Refused("too_large") => 413,
            cases::Outcome::Refused("rate_limited") => 429,
            cases::Outcome::Refused("unavailable") => 503,
            cases::Outcome::Refused(other) => panic!("no status for {other}"),
        };
        assert_eq!(status.as_u16(), expected_status, "case {index}: {} asks {:?}", case.who, case.ask);
    }
}

#[tokio::test]
async fn bodies_query_strings_and_schemes_are_read_as_the_contract_says() {
    let api = Api::start().await;
    // A body announced over 64 KiB is refused before any of it is read.
    let request = Request::post("/v1/events")
        .header(header::AUTHORIZATION, "Bearer acme-token")
        .header(header::CONTENT_LENGTH, "10000000")
        .body(Body::from("{}"))
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Empty values mean "not given"; a key given twice is refused.
    assert_eq!(api.get("/v1/requests?state=&after=&limit=", "acme").await.0, StatusCode::OK);
    let (status, body) = api.get("/v1/requests?state=ready&state=withdrawn", "acme").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_query"));
    // The scheme's case does not matter (RFC 7235); the token's does.
    for authorization in ["bearer acme-token", "BEARER acme-token"] {
        let request =
            Request::get("/v1/requests").header(header::AUTHORIZATION, authorization).body(Body::empty()).unwrap();
        assert_eq!(api.router.clone().oneshot(request).await.unwrap().status(), StatusCode::OK, "{authorization}");
    }
    let request =
        Request::get("/v1/requests").header(header::AUTHORIZATION, "Bearer ACME-TOKEN").body(Body::empty()).unwrap();
    assert_eq!(api.router.clone().oneshot(request).await.unwrap().status(), StatusCode::UNAUTHORIZED);
}
