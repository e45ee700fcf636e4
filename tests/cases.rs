//! One table of cases for both transports (contract sections 2, 3 and 6): who asks what,
//! and the answer the contract gives, the same over NATS (`tests/nats.rs`) and over HTTP
//! (`crates/gateway/tests/http_api.rs`). Each transport turns an [`Ask`] into its own
//! message and the answer back into an [`Outcome`].

#![allow(dead_code)]

use serde_json::{Value, json};

use crate::events::{envelope, mandate, request, submitted};

/// What a principal sends.
#[derive(Clone, Debug)]
pub enum Ask {
    Submit(Value),
    Query(&'static str, Value),
}

/// What the contract answers: a submit accepted (new or a duplicate), a query answered,
/// or a refusal with its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Answered,
    /// A list query answered with exactly these ids, in this order.
    Listed(&'static [&'static str]),
    Refused(&'static str),
}

pub struct Case {
    pub who: &'static str,
    pub ask: Ask,
    pub expect: Outcome,
}

/// The principals the cases need, with their roles.
pub const PRINCIPALS: [(&str, &str); 7] = [
    ("acme", "entrepreneur"),
    ("rival", "entrepreneur"),
    ("coach-anna", "coach"),
    ("bank-a", "financier"),
    ("bank-b", "financier"),
    ("organiser", "organiser"),
    ("admin", "admin"),
];

/// What happens before the cases, in order (each must be accepted): a ready request r1
/// of acme's, bank-a's mandate m1 that fits it, round table t1 inviting m1 with r1 on
/// its agenda, and a request r9 of acme's that is not ready.
pub fn given() -> Vec<(&'static str, Value)> {
    let coached = json!({"request_id": "c-r1", "coach": "coach-anna", "readiness": "ready", "notes": ""});
    let schedule = json!({"roundtable_id": "c-t1", "title": "Juni", "date": "2021-06-15", "mandate_ids": ["c-m1"]});
    vec![
        ("acme", submitted("c-r1", "c-r1")),
        ("coach-anna", envelope("c-r1-c", "tafel.request.coached", "c-r1", coached)),
        ("bank-a", envelope("c-m1", "tafel.mandate.published", "c-m1", mandate("c-m1"))),
        ("organiser", envelope("c-t1", "tafel.roundtable.scheduled", "c-t1", schedule)),
        (
            "organiser",
            envelope(
                "c-t1-a",
                "tafel.roundtable.agenda_set",
                "c-t1",
                json!({"roundtable_id": "c-t1", "request_ids": ["c-r1"]}),
            ),
        ),
        ("acme", submitted("c-r9", "c-r9")),
    ]
}

/// The cases, in order (some depend on earlier ones: a duplicate follows its original).
pub fn cases() -> Vec<Case> {
    use Outcome::*;
    let case = |who, ask, expect| Case { who, ask, expect };
    let submit = Ask::Submit;
    let query = |name, body| Ask::Query(name, body);
    let assess = |mandate_id: &str| json!({"roundtable_id": "c-t1", "request_id": "c-r1", "mandate_id": mandate_id, "interest": "yes"});
    let mut changed = submitted("c-r2", "c-r2");
    changed["data"]["amount_eur"] = json!(1);
    let mut zero = submitted("c-r3", "c-r3");
    zero["data"]["amount_eur"] = json!(0);
    let mut stale = envelope("c-r1-v", "tafel.request.revised", "c-r1", request("c-r1"));
    stale["expectedversion"] = json!(9);
    vec![
        // Submits: accepted, duplicate, conflict, role, data, existence, ownership,
        // visibility, version, state.
        case("acme", submit(submitted("c-r2", "c-r2")), Accepted),
        case("acme", submit(submitted("c-r2", "c-r2")), Duplicate),
        case("acme", submit(changed), Refused("conflict")),
        case("coach-anna", submit(submitted("c-r4", "c-r4")), Refused("forbidden")),
        case("acme", submit(zero), Refused("invalid_data")),
        case("acme", submit(envelope("c-x1", "tafel.request.teleported", "c-r1", json!({}))), Refused("unknown_type")),
        case(
            "acme",
            submit(envelope("c-w1", "tafel.request.withdrawn", "nope", json!({"request_id": "nope", "reason": "x"}))),
            Refused("not_found"),
        ),
        case(
            "rival",
            submit(envelope("c-w2", "tafel.request.withdrawn", "c-r1", json!({"request_id": "c-r1", "reason": "x"}))),
            Refused("not_found"),
        ),
        case("acme", submit(stale), Refused("version_conflict")),
        case(
            "bank-b",
            submit(envelope("c-as1", "tafel.roundtable.assessed", "c-t1", assess("c-m1"))),
            Refused("not_found"),
        ),
        case(
            "bank-a",
            submit(envelope("c-as2", "tafel.roundtable.assessed", "c-t1", assess("no-such"))),
            Refused("not_found"),
        ),
        case("bank-a", submit(envelope("c-as3", "tafel.roundtable.assessed", "c-t1", assess("c-m1"))), Accepted),
        case(
            "organiser",
            submit(envelope(
                "c-ag",
                "tafel.roundtable.agenda_set",
                "c-t1",
                json!({"roundtable_id": "c-t1", "request_ids": ["c-r9"]}),
            )),
            Refused("invalid_state"),
        ),
        case(
            "acme",
            submit(envelope(
                "c-sc",
                "tafel.roundtable.scheduled",
                "c-t2",
                json!({"roundtable_id": "c-t2", "title": "T", "date": "2021-07-01", "mandate_ids": ["c-m1"]}),
            )),
            Refused("forbidden"),
        ),
        // Queries: visibility per role, role rules, bad queries.
        case("acme", query("request", json!({"request_id": "c-r1"})), Answered),
        case("rival", query("request", json!({"request_id": "c-r1"})), Refused("not_found")),
        case("bank-a", query("request", json!({"request_id": "c-r1"})), Answered),
        case("bank-b", query("request", json!({"request_id": "c-r1"})), Refused("not_found")),
        case("bank-a", query("request", json!({"request_id": "c-r9"})), Refused("not_found")),
        case("coach-anna", query("request", json!({"request_id": "c-r9"})), Answered),
        case("bank-a", query("mandate", json!({"mandate_id": "c-m1"})), Answered),
        case("bank-b", query("mandate", json!({"mandate_id": "c-m1"})), Refused("not_found")),
        case("acme", query("mandate", json!({"mandate_id": "c-m1"})), Refused("not_found")),
        case("bank-a", query("roundtable", json!({"roundtable_id": "c-t1"})), Answered),
        case("bank-b", query("roundtable", json!({"roundtable_id": "c-t1"})), Refused("not_found")),
        case("acme", query("roundtable", json!({"roundtable_id": "c-t1"})), Refused("not_found")),
        case("acme", query("shortlist", json!({"request_id": "c-r1"})), Answered),
        case("bank-a", query("shortlist", json!({"request_id": "c-r1"})), Refused("not_found")),
        case("acme", query("shortlist", json!({"request_id": "c-r1", "limit": 0})), Refused("invalid_query")),
        case("bank-a", query("matches", json!({"mandate_id": "c-m1"})), Answered),
        case("bank-b", query("matches", json!({"mandate_id": "c-m1"})), Refused("not_found")),
        case("admin", query("events", json!({"from": 1, "limit": 2})), Answered),
        case("acme", query("events", json!({})), Refused("forbidden")),
        case("coach-anna", query("report", json!({})), Answered),
        case("bank-a", query("report", json!({})), Refused("forbidden")),
        case("acme", query("requests", json!({"state": "ready"})), Listed(&["c-r1"])),
        case("acme", query("requests", json!({})), Listed(&["c-r1", "c-r2", "c-r9"])),
        case("rival", query("requests", json!({})), Listed(&[])),
        case("bank-a", query("requests", json!({})), Listed(&["c-r1"])),
        case("bank-b", query("requests", json!({})), Listed(&[])),
        case("organiser", query("requests", json!({"state": "ready"})), Listed(&["c-r1"])),
        case("acme", query("requests", json!({"state": "sleeping"})), Refused("invalid_query")),
        case("bank-a", query("mandates", json!({})), Listed(&["c-m1"])),
        case("acme", query("mandates", json!({})), Listed(&[])),
        case("bank-a", query("roundtables", json!({})), Listed(&["c-t1"])),
        case("bank-b", query("roundtables", json!({})), Listed(&[])),
    ]
}

impl Outcome {
    /// As the transports' replies say it: `accepted`, `duplicate`, `answered`,
    /// `listed <ids>`, or the code.
    pub fn describe(self) -> String {
        match self {
            Outcome::Accepted => "accepted".into(),
            Outcome::Duplicate => "duplicate".into(),
            Outcome::Answered => "answered".into(),
            Outcome::Listed(ids) => format!("listed [{}]", ids.join(",")),
            Outcome::Refused(code) => code.into(),
        }
    }
}

/// What a submit's reply says, as [`Outcome::describe`] does.
pub fn submit_outcome(reply: &Value) -> String {
    match (&reply["accepted"], &reply["duplicate"]) {
        (Value::Bool(true), Value::Bool(true)) => "duplicate".into(),
        (Value::Bool(true), _) => "accepted".into(),
        _ => reply["error"]["code"].as_str().unwrap_or("no code").into(),
    }
}

/// What a query's reply says, as [`Outcome::describe`] does.
pub fn query_outcome(reply: &Value) -> String {
    if let Some(code) = reply["error"]["code"].as_str() {
        return code.into();
    }
    for (list, id) in [("requests", "request_id"), ("mandates", "mandate_id"), ("roundtables", "roundtable_id")] {
        if let Some(items) = reply[list].as_array() {
            let ids: Vec<&str> = items.iter().filter_map(|item| item[id].as_str()).collect();
            return format!("listed [{}]", ids.join(","));
        }
    }
    "answered".into()
}
