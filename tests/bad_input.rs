//! The bad-input corpus (issue 12): malformed, truncated, huge and deeply nested JSON,
//! wrong types, every invalid field, wrong subjects, unknown principals, replayed ids
//! with changed content and events for aggregates in the wrong state, each sent over
//! NATS and over HTTP to the real binary. Each gets its contract error code (and over
//! HTTP its status), and afterwards the log and every projection a client can read are
//! byte-for-byte what they were before the first case.

mod cases;
mod events;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use events::{envelope, mandate, request, submitted};
use futures::StreamExt;
use serde_json::{Value, json};
use support::{NatsServer, add_principal, http_request, serve_with_nats};

/// One bad submit: who sends it, on which NATS subject (by default the one its type and
/// sender name), the bytes, and the code the contract gives it.
struct Bad {
    name: &'static str,
    who: &'static str,
    /// The type the subject names (`tafel.` left off), when the body's own is not it.
    subject_type: &'static str,
    /// A whole NATS subject, for the cases about subjects (NATS only).
    subject: Option<String>,
    body: Vec<u8>,
    code: &'static str,
    over_http: bool,
}

fn bad(name: &'static str, who: &'static str, body: impl Into<Body>, code: &'static str) -> Bad {
    let body = body.into();
    Bad { name, who, subject_type: body.subject_type, subject: None, body: body.bytes, code, over_http: true }
}

/// A body and the type its subject names.
struct Body {
    bytes: Vec<u8>,
    subject_type: &'static str,
}

impl From<Value> for Body {
    fn from(event: Value) -> Self {
        let subject_type = match event["type"].as_str() {
            Some(t) if t.starts_with("tafel.") && t.matches('.').count() == 2 => leak(t.trim_start_matches("tafel.")),
            _ => "request.submitted",
        };
        Body { bytes: event.to_string().into_bytes(), subject_type }
    }
}

impl From<&[u8]> for Body {
    fn from(bytes: &[u8]) -> Self {
        Body { bytes: bytes.to_vec(), subject_type: "request.submitted" }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body { bytes, subject_type: "request.submitted" }
    }
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// `event` with `path` (dot-separated, into objects) set to `value`, or removed when
/// `value` is `None`.
fn with(event: &Value, path: &str, value: Option<Value>) -> Value {
    let mut event = event.clone();
    let mut keys: Vec<&str> = path.split('.').collect();
    let last = keys.pop().unwrap();
    let mut target = &mut event;
    for key in keys {
        target = &mut target[key];
    }
    match value {
        Some(value) => target[last] = value,
        None => {
            target.as_object_mut().unwrap().remove(last);
        }
    }
    event
}

/// A fresh request submission (an id nobody used) with `path` set or removed.
fn request_with(name: &str, path: &str, value: Option<Value>) -> Value {
    with(&submitted(&format!("bad-{name}"), &format!("bad-{name}")), path, value)
}

/// A fresh mandate publication with `path` set or removed.
fn mandate_with(name: &str, path: &str, value: Option<Value>) -> Value {
    let id = format!("bad-{name}");
    with(&envelope(&id, "tafel.mandate.published", &id, mandate(&id)), path, value)
}

fn corpus() -> Vec<Bad> {
    let valid = submitted("bad-valid", "bad-valid");
    let valid_text = valid.to_string();
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let mut cases = vec![
        // Bytes that are not one JSON object.
        bad("empty body", "acme", &b""[..], "malformed_json"),
        bad("one brace", "acme", &b"{"[..], "malformed_json"),
        bad("cut in half", "acme", valid_text.as_bytes()[..valid_text.len() / 2].to_vec(), "malformed_json"),
        bad("last byte gone", "acme", valid_text.as_bytes()[..valid_text.len() - 1].to_vec(), "malformed_json"),
        bad("not UTF-8", "acme", &b"\xff\xfe{}"[..], "malformed_json"),
        bad("garbage after the object", "acme", format!("{valid_text} x").into_bytes(), "malformed_json"),
        bad("two objects", "acme", format!("{valid_text}{valid_text}").into_bytes(), "malformed_json"),
        bad("nested 5000 deep", "acme", nested.into_bytes(), "malformed_json"),
        bad(
            "nested 5000 deep inside data",
            "acme",
            valid_text
                .replacen("\"title\":", &format!("\"deep\":{}1{},\"title\":", "[".repeat(5000), "]".repeat(5000)), 1)
                .into_bytes(),
            "malformed_json",
        ),
        bad("single quotes", "acme", valid_text.replace('"', "'").into_bytes(), "malformed_json"),
        bad("a JSON array", "acme", &b"[]"[..], "invalid_envelope"),
        bad("a JSON string", "acme", &b"\"event\""[..], "invalid_envelope"),
        bad("JSON null", "acme", &b"null"[..], "invalid_envelope"),
        bad("a number", "acme", &b"42"[..], "invalid_envelope"),
        bad("an empty object", "acme", &b"{}"[..], "invalid_envelope"),
        // Too large: over 64 KiB, as a whole and in one field.
        bad(
            "70 KiB of spaces around an event",
            "acme",
            format!("{valid_text}{}", " ".repeat(70 * 1024)).into_bytes(),
            "too_large",
        ),
        bad(
            "a 70 KiB summary",
            "acme",
            request_with("huge-summary", "data.summary", Some(json!("x".repeat(70 * 1024)))),
            "too_large",
        ),
        // The envelope, attribute by attribute.
        bad("no specversion", "acme", with(&valid, "specversion", None), "invalid_envelope"),
        bad("specversion 0.3", "acme", with(&valid, "specversion", Some(json!("0.3"))), "invalid_envelope"),
        bad("specversion a number", "acme", with(&valid, "specversion", Some(json!(1.0))), "invalid_envelope"),
        bad("no id", "acme", with(&valid, "id", None), "invalid_envelope"),
        bad("empty id", "acme", with(&valid, "id", Some(json!(""))), "invalid_envelope"),
        bad("id of 129 characters", "acme", with(&valid, "id", Some(json!("i".repeat(129)))), "invalid_envelope"),
        bad("id a number", "acme", with(&valid, "id", Some(json!(7))), "invalid_envelope"),
        bad("no source", "acme", with(&valid, "source", None), "invalid_envelope"),
        bad("empty source", "acme", with(&valid, "source", Some(json!(""))), "invalid_envelope"),
        bad("source an object", "acme", with(&valid, "source", Some(json!({}))), "invalid_envelope"),
        bad("no type", "acme", with(&valid, "type", None), "invalid_envelope"),
        bad("type a number", "acme", with(&valid, "type", Some(json!(3))), "invalid_envelope"),
        bad("no subject", "acme", with(&valid, "subject", None), "invalid_envelope"),
        bad("subject in capitals", "acme", with(&valid, "subject", Some(json!("BAD-VALID"))), "invalid_envelope"),
        bad("time not RFC 3339", "acme", with(&valid, "time", Some(json!("yesterday"))), "invalid_envelope"),
        bad(
            "datacontenttype text/plain",
            "acme",
            with(&valid, "datacontenttype", Some(json!("text/plain"))),
            "invalid_envelope",
        ),
        bad("no data", "acme", with(&valid, "data", None), "invalid_envelope"),
        bad("data an array", "acme", with(&valid, "data", Some(json!([]))), "invalid_envelope"),
        bad("data a string", "acme", with(&valid, "data", Some(json!("{}"))), "invalid_envelope"),
        bad("expectedversion negative", "acme", with(&valid, "expectedversion", Some(json!(-1))), "invalid_envelope"),
        bad("expectedversion a string", "acme", with(&valid, "expectedversion", Some(json!("0"))), "invalid_envelope"),
        bad(
            "expectedversion a fraction",
            "acme",
            with(&valid, "expectedversion", Some(json!(0.5))),
            "invalid_envelope",
        ),
        // Types.
        bad("unknown type", "acme", with(&valid, "type", Some(json!("tafel.request.teleported"))), "unknown_type"),
        bad("a type of another system", "acme", with(&valid, "type", Some(json!("com.example.thing"))), "unknown_type"),
        // A type the contract knows, but only Tafel publishes (step 2).
        bad(
            "the derived shortlist type",
            "acme",
            with(&valid, "type", Some(json!("tafel.shortlist.updated"))),
            "forbidden",
        ),
        // Roles.
        bad("a coach submits a request", "coach-anna", submitted("bad-role-1", "bad-role-1"), "forbidden"),
        bad(
            "an entrepreneur publishes a mandate",
            "acme",
            mandate_with("role-2", "data.ticket_min_eur", Some(json!(50000))),
            "forbidden",
        ),
        bad(
            "a financier schedules a round table",
            "bank-a",
            envelope(
                "bad-role-3",
                "tafel.roundtable.scheduled",
                "bad-role-3",
                json!({"roundtable_id": "bad-role-3", "title": "T", "date": "2021-06-15", "mandate_ids": ["c-m1"]}),
            ),
            "forbidden",
        ),
        bad(
            "an entrepreneur coaches its own request",
            "acme",
            envelope(
                "bad-role-4",
                "tafel.request.coached",
                "c-r9",
                json!({"request_id": "c-r9", "coach": "acme", "readiness": "ready", "notes": ""}),
            ),
            "forbidden",
        ),
        // Ids used before, with other content.
        bad(
            "a known id with other data",
            "acme",
            with(&submitted("c-r1", "c-r1"), "data.amount_eur", Some(json!(99))),
            "conflict",
        ),
        bad("a known id on another aggregate", "acme", submitted("c-r1", "bad-other-aggregate"), "conflict"),
        bad("a known id from another principal", "rival", submitted("c-r1", "c-r1"), "conflict"),
        bad(
            "a known id as another type",
            "acme",
            envelope("c-r9", "tafel.request.withdrawn", "c-r9", json!({"request_id": "c-r9", "reason": "x"})),
            "conflict",
        ),
        // The data, field by field.
        bad("amount zero", "acme", request_with("amount-0", "data.amount_eur", Some(json!(0))), "invalid_data"),
        bad("amount negative", "acme", request_with("amount-neg", "data.amount_eur", Some(json!(-5))), "invalid_data"),
        bad(
            "amount a string",
            "acme",
            request_with("amount-str", "data.amount_eur", Some(json!("150000"))),
            "invalid_data",
        ),
        bad(
            "amount a fraction",
            "acme",
            request_with("amount-frac", "data.amount_eur", Some(json!(1.5))),
            "invalid_data",
        ),
        bad(
            "amount over 2^64",
            "acme",
            request_with("amount-big", "data.amount_eur", Some(json!(1e20))),
            "invalid_data",
        ),
        bad("no amount", "acme", request_with("amount-none", "data.amount_eur", None), "invalid_data"),
        bad(
            "kvk of seven digits",
            "acme",
            request_with("kvk-7", "data.organisation.kvk", Some(json!("0123456"))),
            "invalid_data",
        ),
        bad(
            "kvk with letters",
            "acme",
            request_with("kvk-abc", "data.organisation.kvk", Some(json!("0123456a"))),
            "invalid_data",
        ),
        bad(
            "kvk a number",
            "acme",
            request_with("kvk-num", "data.organisation.kvk", Some(json!(1234567))),
            "invalid_data",
        ),
        bad(
            "region not NUTS",
            "acme",
            request_with("region", "data.organisation.region", Some(json!("haarlem"))),
            "invalid_data",
        ),
        bad("no organisation", "acme", request_with("org", "data.organisation", None), "invalid_data"),
        bad("no instruments", "acme", request_with("instr-0", "data.instruments", Some(json!([]))), "invalid_data"),
        bad(
            "an unknown instrument",
            "acme",
            request_with("instr-x", "data.instruments", Some(json!(["bitcoin"]))),
            "invalid_data",
        ),
        bad(
            "instruments a string",
            "acme",
            request_with("instr-s", "data.instruments", Some(json!("loan"))),
            "invalid_data",
        ),
        bad("an unknown stage", "acme", request_with("stage", "data.stage", Some(json!("teenage"))), "invalid_data"),
        bad("no impact themes", "acme", request_with("sdg-0", "data.impact_themes", Some(json!([]))), "invalid_data"),
        bad("SDG 18", "acme", request_with("sdg-18", "data.impact_themes", Some(json!([18]))), "invalid_data"),
        bad("SDG 0", "acme", request_with("sdg-zero", "data.impact_themes", Some(json!([0]))), "invalid_data"),
        bad(
            "an unknown certification",
            "acme",
            request_with("cert", "data.certifications", Some(json!(["iso9001"]))),
            "invalid_data",
        ),
        bad("no title", "acme", request_with("title", "data.title", None), "invalid_data"),
        bad(
            "revenue negative",
            "acme",
            request_with("revenue", "data.annual_revenue_eur", Some(json!(-1))),
            "invalid_data",
        ),
        bad(
            "data names another request",
            "acme",
            request_with("other-id", "data.request_id", Some(json!("bad-someone-else"))),
            "invalid_data",
        ),
        bad(
            "an unknown field in data",
            "acme",
            request_with("extra", "data.favourite_colour", Some(json!("green"))),
            "invalid_data",
        ),
        bad(
            "ticket max below min",
            "bank-a",
            mandate_with("ticket", "data.ticket_max_eur", Some(json!(10000))),
            "invalid_data",
        ),
        bad("no stages", "bank-a", mandate_with("stages", "data.stages", Some(json!([]))), "invalid_data"),
        bad(
            "an unknown financier kind",
            "bank-a",
            mandate_with("kind", "data.financier.kind", Some(json!("pawnshop"))),
            "invalid_data",
        ),
        bad(
            "valid until 30 February",
            "bank-a",
            mandate_with("date", "data.valid_until", Some(json!("2021-02-30"))),
            "invalid_data",
        ),
        bad("budget zero", "bank-a", mandate_with("budget", "data.budget_eur", Some(json!(0))), "invalid_data"),
        bad(
            "co_financing a string",
            "bank-a",
            mandate_with("cofin", "data.co_financing", Some(json!("yes"))),
            "invalid_data",
        ),
        bad(
            "a round table inviting no mandate",
            "organiser",
            envelope(
                "bad-rt-0",
                "tafel.roundtable.scheduled",
                "bad-rt-0",
                json!({"roundtable_id": "bad-rt-0", "title": "T", "date": "2021-06-15", "mandate_ids": []}),
            ),
            "invalid_data",
        ),
        bad(
            "a round table on no date",
            "organiser",
            envelope(
                "bad-rt-1",
                "tafel.roundtable.scheduled",
                "bad-rt-1",
                json!({"roundtable_id": "bad-rt-1", "title": "T", "date": "15-06-2021", "mandate_ids": ["c-m1"]}),
            ),
            "invalid_data",
        ),
        bad(
            "readiness maybe",
            "coach-anna",
            envelope(
                "bad-coach",
                "tafel.request.coached",
                "c-r9",
                json!({"request_id": "c-r9", "coach": "coach-anna", "readiness": "maybe", "notes": ""}),
            ),
            "invalid_data",
        ),
        bad(
            "an assessment scored 6",
            "bank-a",
            envelope(
                "bad-assess-6",
                "tafel.roundtable.assessed",
                "c-t1",
                json!({"roundtable_id": "c-t1", "request_id": "c-r1", "mandate_id": "c-m1", "interest": "yes", "scores": {"impact": 6, "team": 3, "financials": 3}}),
            ),
            "invalid_data",
        ),
        // Aggregates that do not exist or may not be seen, versions, states.
        bad(
            "revising a request that does not exist",
            "acme",
            envelope("bad-rev-none", "tafel.request.revised", "bad-nowhere", request("bad-nowhere")),
            "not_found",
        ),
        bad(
            "revising another's request",
            "rival",
            envelope("bad-rev-other", "tafel.request.revised", "c-r1", request("c-r1")),
            "not_found",
        ),
        bad(
            "assessing with another financier's mandate",
            "bank-b",
            envelope(
                "bad-assess-other",
                "tafel.roundtable.assessed",
                "c-t1",
                json!({"roundtable_id": "c-t1", "request_id": "c-r1", "mandate_id": "c-m1", "interest": "yes"}),
            ),
            "not_found",
        ),
        bad("submitting a request that exists", "acme", submitted("bad-exists", "c-r9"), "version_conflict"),
        bad(
            "withdrawing at a version that is not the request's",
            "acme",
            with(
                &envelope("bad-stale", "tafel.request.withdrawn", "c-r9", json!({"request_id": "c-r9", "reason": "x"})),
                "expectedversion",
                Some(json!(7)),
            ),
            "version_conflict",
        ),
        bad(
            "an agenda with a request that is not ready",
            "organiser",
            envelope(
                "bad-agenda",
                "tafel.roundtable.agenda_set",
                "c-t1",
                json!({"roundtable_id": "c-t1", "request_ids": ["c-r9"]}),
            ),
            "invalid_state",
        ),
        bad(
            "revising a withdrawn request",
            "acme",
            envelope("bad-rev-withdrawn", "tafel.request.revised", "c-r5", request("c-r5")),
            "invalid_state",
        ),
        bad(
            "a commitment from a mandate that did not assess",
            "organiser",
            envelope(
                "bad-commit",
                "tafel.roundtable.concluded",
                "c-t1",
                json!({"roundtable_id": "c-t1", "outcomes": [{"request_id": "c-r1", "commitments": [{"mandate_id": "c-m1", "amount_eur": 100000, "instrument": "loan"}]}]}),
            ),
            "invalid_state",
        ),
    ];
    // Subjects (NATS only): the type or the sender they name do not agree with the event.
    let subject = |name, subject: &str, code| Bad {
        name,
        who: "acme",
        subject_type: "request.submitted",
        subject: Some(subject.to_owned()),
        body: submitted("bad-subject", "bad-subject").to_string().into_bytes(),
        code,
        over_http: false,
    };
    cases.push(subject("a subject naming another type", "tafel.submit.mandate.published.acme", "subject_mismatch"));
    cases.push(subject("a subject naming another event", "tafel.submit.request.revised.acme", "subject_mismatch"));
    cases.push(subject(
        "a subject naming an unknown principal",
        "tafel.submit.request.submitted.stranger",
        "forbidden",
    ));
    // A principal token that is no id fails step 1 (the subject), and with no inbox of
    // a principal to answer in, the refusal goes to `tafel.rejected.>` (section 2).
    cases.push(subject(
        "a subject naming no valid principal",
        "tafel.submit.request.submitted.ACME",
        "subject_mismatch",
    ));
    cases
}

/// HTTP statuses of contract section 6 for each code.
fn status_of(code: &str) -> u16 {
    match code {
        "malformed_json" | "invalid_envelope" | "unknown_type" | "subject_mismatch" | "invalid_data" => 400,
        "forbidden" => 403,
        "not_found" => 404,
        "version_conflict" | "invalid_state" | "conflict" => 409,
        "too_large" => 413,
        "rate_limited" => 429,
        "unavailable" => 503,
        other => panic!("no status for {other}"),
    }
}

/// A NATS connection as `principal`, with its own inbox prefix.
async fn connect_as(url: &str, principal: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .custom_inbox_prefix(format!("_INBOX.{principal}"))
        .request_timeout(Some(Duration::from_secs(3)))
        .connect(url)
        .await
        .unwrap()
}

/// Everything a client can read, as the bytes Tafel answers: the whole log, the lists,
/// every aggregate of the given events, the shortlists, matches and the report.
fn readable(port: u16, admin: &str, bank: &str) -> Vec<(String, u16, String)> {
    let paths = [
        "/v1/events?from=1&limit=1000",
        "/v1/requests?limit=1000",
        "/v1/mandates?limit=1000",
        "/v1/roundtables?limit=1000",
        "/v1/requests/c-r1",
        "/v1/requests/c-r5",
        "/v1/requests/c-r9",
        "/v1/mandates/c-m1",
        "/v1/roundtables/c-t1",
        "/v1/requests/c-r1/shortlist",
        "/v1/requests/c-r1/shortlist?as_of=3",
        "/v1/requests/c-r5/shortlist",
        "/v1/requests/c-r9/shortlist",
        "/v1/mandates/c-m1/matches",
        "/v1/report",
        "/readyz",
    ];
    let mut read: Vec<(String, u16, String)> = paths
        .iter()
        .map(|path| {
            let (status, body) = http_request(port, "GET", path, Some(admin), b"");
            (path.to_string(), status, body)
        })
        .collect();
    let (status, body) = http_request(port, "GET", "/v1/mandates/c-m1/matches", Some(bank), b"");
    read.push(("matches as bank-a".into(), status, body));
    read
}

fn code_of(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or("(none)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_code_and_changes_nothing() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut tokens = HashMap::new();
    for (id, role) in cases::PRINCIPALS {
        tokens.insert(id, add_principal(data.path(), id, role));
    }
    let (tafel, port) = serve_with_nats(data.path(), &nats);
    let mut clients: HashMap<&str, async_nats::Client> = HashMap::new();
    for (id, _) in cases::PRINCIPALS.iter().chain(&[("stranger", ""), ("ACME", "")]) {
        clients.insert(id, connect_as(&nats.url(), id).await);
    }

    // Nothing refused may reach the fan-out or change a shortlist: followed from the
    // start, so that what the given events publish can be told apart.
    let mut published = clients["admin"].subscribe("tafel.events.>").await.unwrap();
    let mut shortlists = clients["admin"].subscribe("tafel.shortlist.>").await.unwrap();
    clients["admin"].flush().await.unwrap();

    // The given world, and a withdrawn request c-r5.
    let mut given = cases::given();
    given.push(("acme", submitted("c-r5", "c-r5")));
    given.push((
        "acme",
        envelope("c-r5-w", "tafel.request.withdrawn", "c-r5", json!({"request_id": "c-r5", "reason": "x"})),
    ));
    for (who, event) in &given {
        let subject = format!("tafel.submit.{}.{who}", event["type"].as_str().unwrap().trim_start_matches("tafel."));
        let reply = clients[who].request(subject, Bytes::from(event.to_string())).await.unwrap();
        let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(reply["accepted"], json!(true), "given {event}: {reply}");
    }
    for sequence in 1..=given.len() as u64 {
        let message = tokio::time::timeout(Duration::from_secs(10), published.next()).await.unwrap().unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(event["sequence"], json!(sequence));
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), shortlists.next()).await {}
    let before = readable(port, &tokens["admin"], &tokens["bank-a"]);
    assert!(before.iter().all(|(_, status, _)| *status == 200), "{before:?}");

    let mut rejected = clients["organiser"].subscribe("tafel.rejected.>").await.unwrap();
    clients["organiser"].flush().await.unwrap();
    let corpus = corpus();
    assert!(corpus.len() >= 60, "the corpus has {} cases", corpus.len());
    let mut failures = Vec::new();
    let mut sent = (0, 0);
    for case in &corpus {
        // Over NATS.
        let subject =
            case.subject.clone().unwrap_or_else(|| format!("tafel.submit.{}.{}", case.subject_type, case.who));
        let principal = subject.rsplit('.').next().unwrap();
        let reply = if principal.chars().any(|c| c.is_ascii_uppercase()) {
            clients[principal].publish(subject.clone(), Bytes::from(case.body.clone())).await.unwrap();
            match tokio::time::timeout(Duration::from_secs(3), rejected.next()).await {
                Ok(Some(message))
                    if message.subject.as_str() == subject.replace("tafel.submit.", "tafel.rejected.") =>
                {
                    serde_json::from_slice(&message.payload).unwrap_or_else(|_| json!({"unparsable": true}))
                }
                other => json!({"nothing on tafel.rejected": format!("{other:?}")}),
            }
        } else {
            match clients[principal].request(subject.clone(), Bytes::from(case.body.clone())).await {
                Ok(reply) => serde_json::from_slice(&reply.payload).unwrap_or_else(|_| json!({"unparsable": true})),
                Err(error) => json!({"no reply": error.to_string()}),
            }
        };
        sent.0 += 1;
        if reply["accepted"] != json!(false) || code_of(&reply) != case.code {
            failures.push(format!("NATS {}: expected {}, got {reply}", case.name, case.code));
        }
        // Over HTTP, as the same principal's token.
        if case.over_http {
            let (status, body) = http_request(port, "POST", "/v1/events", Some(&tokens[case.who]), &case.body);
            let reply: Value = serde_json::from_str(&body).unwrap_or_else(|_| json!({"unparsable": body}));
            sent.1 += 1;
            if status != status_of(case.code) || code_of(&reply) != case.code {
                failures.push(format!(
                    "HTTP {}: expected {} {}, got {status} {reply}",
                    case.name,
                    status_of(case.code),
                    case.code
                ));
            }
        }
    }

    // HTTP's own ways in: no token, an unknown token, an unknown route, a wrong method.
    let event = submitted("bad-http", "bad-http").to_string();
    for (name, method, path, token, expected) in [
        ("no token", "POST", "/v1/events", None, 401),
        ("an unknown token", "POST", "/v1/events", Some("not-a-token"), 401),
        ("an unknown route", "POST", "/v1/eventz", Some(tokens["acme"].as_str()), 404),
        ("a wrong method", "PUT", "/v1/events", Some(tokens["acme"].as_str()), 405),
    ] {
        let (status, body) = http_request(port, method, path, token, event.as_bytes());
        sent.1 += 1;
        if status != expected {
            failures.push(format!("HTTP {name}: expected {expected}, got {status} {body}"));
        }
    }
    // Bad queries, over both.
    for (name, query, who, body, path, code) in [
        ("a query body that is not JSON", "shortlist", "acme", "{", None, "invalid_query"),
        ("a query without its id", "shortlist", "acme", "{}", None, "invalid_query"),
        (
            "a limit of zero",
            "shortlist",
            "acme",
            r#"{"request_id": "c-r1", "limit": 0}"#,
            Some("/v1/requests/c-r1/shortlist?limit=0"),
            "invalid_query",
        ),
        (
            "a limit that is a word",
            "shortlist",
            "acme",
            r#"{"request_id": "c-r1", "limit": "ten"}"#,
            Some("/v1/requests/c-r1/shortlist?limit=ten"),
            "invalid_query",
        ),
        (
            "as_of negative",
            "shortlist",
            "acme",
            r#"{"request_id": "c-r1", "as_of": -1}"#,
            Some("/v1/requests/c-r1/shortlist?as_of=-1"),
            "invalid_query",
        ),
        (
            "an unknown state",
            "requests",
            "acme",
            r#"{"state": "sleeping"}"#,
            Some("/v1/requests?state=sleeping"),
            "invalid_query",
        ),
        (
            "events from a word",
            "events",
            "admin",
            r#"{"from": "start"}"#,
            Some("/v1/events?from=start"),
            "invalid_query",
        ),
        (
            "the report for a year that is a word",
            "report",
            "admin",
            r#"{"year": "last"}"#,
            Some("/v1/report?year=last"),
            "invalid_query",
        ),
        ("another's request", "request", "rival", r#"{"request_id": "c-r1"}"#, Some("/v1/requests/c-r1"), "not_found"),
        // Not an id at all (ids are lower case): a malformed query, not an unknown id.
        (
            "a request id in capitals",
            "request",
            "acme",
            r#"{"request_id": "C-R1"}"#,
            Some("/v1/requests/C-R1"),
            "invalid_query",
        ),
        ("the log as an entrepreneur", "events", "acme", r#"{}"#, Some("/v1/events"), "forbidden"),
        ("an unknown principal asks", "report", "stranger", r#"{}"#, None, "forbidden"),
    ] {
        let subject = format!("tafel.query.{query}.{who}");
        let reply = match clients[who].request(subject, Bytes::from(body)).await {
            Ok(reply) => serde_json::from_slice(&reply.payload).unwrap_or_else(|_| json!({"unparsable": true})),
            Err(error) => json!({"no reply": error.to_string()}),
        };
        sent.0 += 1;
        if code_of(&reply) != code {
            failures.push(format!("NATS query {name}: expected {code}, got {reply}"));
        }
        if let Some(path) = path {
            let (status, body) = http_request(port, "GET", path, Some(&tokens[who]), b"");
            let reply: Value = serde_json::from_str(&body).unwrap_or_else(|_| json!({"unparsable": body}));
            sent.1 += 1;
            let expected_status = if code == "invalid_query" { 400 } else { status_of(code) };
            if status != expected_status || code_of(&reply) != code {
                failures.push(format!("HTTP query {name}: expected {expected_status} {code}, got {status} {reply}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} NATS and {} HTTP cases failed:\n{}",
        failures.len(),
        sent.0,
        sent.1,
        failures.join("\n")
    );

    // Nothing was appended, and every view reads as before, to the byte.
    let after = readable(port, &tokens["admin"], &tokens["bank-a"]);
    for ((path, status, body), (_, status_after, body_after)) in before.iter().zip(&after) {
        assert_eq!((status, body), (status_after, body_after), "{path} changed");
    }
    for (subject, subscription) in [("tafel.events.>", &mut published), ("tafel.shortlist.>", &mut shortlists)] {
        if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await {
            panic!("a refused event reached {subject}: {}", String::from_utf8_lossy(&message.payload));
        }
    }
    // The ids of refused events were not used up: each is accepted once its event is
    // good, over either transport.
    let reply = clients["acme"]
        .request(
            "tafel.submit.request.submitted.acme",
            Bytes::from(submitted("bad-amount-0", "bad-amount-0").to_string()),
        )
        .await
        .unwrap();
    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(reply["accepted"], json!(true), "{reply}");
    let (status, body) = http_request(
        port,
        "POST",
        "/v1/events",
        Some(&tokens["acme"]),
        submitted("bad-sdg-18", "bad-sdg-18").to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    // And the service still takes a good event.
    let (status, body) = http_request(
        port,
        "POST",
        "/v1/events",
        Some(&tokens["acme"]),
        submitted("good-after", "good-after").to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{body}");
    drop(tafel);
}
