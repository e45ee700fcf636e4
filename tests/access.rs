//! The access matrix of contract sections 2 and 3 (issue 12): every role x every event
//! type x (its own aggregate / another's), over NATS and over HTTP, against the real
//! binary. Each cell is set up afresh (its own aggregates, made by their owners) and
//! asserts the contract's answer: accepted, or the exact refusal. What may not be seen
//! answers `not_found`, exactly as what does not exist (checked byte for byte against
//! an aggregate that does not exist).

mod events;
mod support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use events::{envelope, mandate, request, submitted};
use serde_json::{Value, json};
use support::{NatsServer, add_principal, http_request, serve_with_nats};

const PRINCIPALS: [(&str, &str); 9] = [
    ("acme", "entrepreneur"),
    ("rival", "entrepreneur"),
    ("coach-anna", "coach"),
    ("coach-ben", "coach"),
    ("bank-a", "financier"),
    ("bank-b", "financier"),
    ("organiser", "organiser"),
    ("organiser-2", "organiser"),
    ("admin", "admin"),
];

/// For each role, the principal that acts, and the one whose aggregates are "another's".
const ROLES: [(&str, &str, &str); 5] = [
    ("entrepreneur", "acme", "rival"),
    ("coach", "coach-anna", "coach-ben"),
    ("financier", "bank-a", "bank-b"),
    ("organiser", "organiser", "organiser-2"),
    ("admin", "admin", "admin"),
];

const TYPES: [(&str, &str); 12] = [
    ("tafel.request.submitted", "entrepreneur"),
    ("tafel.request.revised", "entrepreneur"),
    ("tafel.request.withdrawn", "entrepreneur"),
    ("tafel.request.coached", "coach"),
    ("tafel.mandate.published", "financier"),
    ("tafel.mandate.revised", "financier"),
    ("tafel.mandate.closed", "financier"),
    ("tafel.roundtable.scheduled", "organiser"),
    ("tafel.roundtable.agenda_set", "organiser"),
    ("tafel.roundtable.assessed", "financier"),
    ("tafel.roundtable.recused", "financier"),
    ("tafel.roundtable.concluded", "organiser"),
];

enum Transport {
    Nats,
    Http,
}

struct World {
    nats: HashMap<&'static str, async_nats::Client>,
    tokens: HashMap<&'static str, String>,
    port: u16,
}

impl World {
    /// Sends `event` as `who` and returns `accepted` or the refusal's code.
    async fn send(&self, transport: &Transport, who: &str, event: &Value) -> String {
        let reply: Value = match transport {
            Transport::Nats => {
                let tokens = event["type"].as_str().unwrap().trim_start_matches("tafel.");
                let reply = self.nats[who]
                    .request(format!("tafel.submit.{tokens}.{who}"), Bytes::from(event.to_string()))
                    .await
                    .unwrap();
                serde_json::from_slice(&reply.payload).unwrap()
            }
            Transport::Http => {
                let (_, body) = http_request(
                    self.port,
                    "POST",
                    "/v1/events",
                    Some(&self.tokens[who]),
                    event.to_string().as_bytes(),
                );
                serde_json::from_str(&body).unwrap()
            }
        };
        if reply["accepted"] == json!(true) {
            "accepted".into()
        } else {
            reply["error"]["code"].as_str().unwrap_or("(no code)").to_owned()
        }
    }

    /// Sends what a cell needs beforehand; each must be accepted.
    async fn given(&self, events: Vec<(&str, Value)>) {
        for (who, event) in events {
            let answer = self.send(&Transport::Nats, who, &event).await;
            assert_eq!(answer, "accepted", "given {who}: {event}");
        }
    }
}

fn coached(event_id: &str, request_id: &str, coach: &str) -> Value {
    let data = json!({"request_id": request_id, "coach": coach, "readiness": "ready", "notes": ""});
    envelope(event_id, "tafel.request.coached", request_id, data)
}

/// The event of `event_type` on the cell's aggregate, and what must come before it,
/// for the cell whose aggregates belong to `owner` (an entrepreneur's request, a
/// financier's mandate, an organiser's round table). `cell` makes every id unique.
fn cell_events(event_type: &str, cell: &str, owner: &Owners) -> (Vec<(&'static str, Value)>, Value) {
    let r = format!("{cell}-r");
    let m = format!("{cell}-m");
    let t = format!("{cell}-t");
    let id = format!("{cell}-e");
    let ready = vec![
        (owner.entrepreneur, submitted(&format!("{r}-s"), &r)),
        ("coach-ben", coached(&format!("{r}-c"), &r, "coach-ben")),
    ];
    let published = (owner.financier, envelope(&format!("{m}-p"), "tafel.mandate.published", &m, mandate(&m)));
    let scheduled = (
        owner.organiser,
        envelope(
            &format!("{t}-s"),
            "tafel.roundtable.scheduled",
            &t,
            json!({"roundtable_id": t, "title": "T", "date": "2021-06-15", "mandate_ids": [m]}),
        ),
    );
    let agenda = (
        owner.organiser,
        envelope(&format!("{t}-a"), "tafel.roundtable.agenda_set", &t, json!({"roundtable_id": t, "request_ids": [r]})),
    );
    match event_type {
        "tafel.request.submitted" => (vec![], submitted(&id, &r)),
        "tafel.request.revised" => {
            (vec![(owner.entrepreneur, submitted(&format!("{r}-s"), &r))], envelope(&id, event_type, &r, request(&r)))
        }
        "tafel.request.withdrawn" => (
            vec![(owner.entrepreneur, submitted(&format!("{r}-s"), &r))],
            envelope(&id, event_type, &r, json!({"request_id": r, "reason": "elders"})),
        ),
        "tafel.request.coached" => {
            (vec![(owner.entrepreneur, submitted(&format!("{r}-s"), &r))], coached(&id, &r, owner.coach))
        }
        "tafel.mandate.published" => (vec![], envelope(&id, event_type, &m, mandate(&m))),
        "tafel.mandate.revised" => (vec![published], envelope(&id, event_type, &m, mandate(&m))),
        "tafel.mandate.closed" => {
            (vec![published], envelope(&id, event_type, &m, json!({"mandate_id": m, "reason": "vol"})))
        }
        "tafel.roundtable.scheduled" => (
            vec![published],
            envelope(
                &id,
                event_type,
                &t,
                json!({"roundtable_id": t, "title": "T", "date": "2021-06-15", "mandate_ids": [m]}),
            ),
        ),
        "tafel.roundtable.agenda_set" => {
            let mut given = ready;
            given.extend([published, scheduled]);
            (given, envelope(&id, event_type, &t, json!({"roundtable_id": t, "request_ids": [r]})))
        }
        "tafel.roundtable.assessed" | "tafel.roundtable.recused" => {
            let mut given = ready;
            given.extend([published, scheduled, agenda]);
            let data = if event_type == "tafel.roundtable.assessed" {
                json!({"roundtable_id": t, "request_id": r, "mandate_id": m, "interest": "yes"})
            } else {
                json!({"roundtable_id": t, "request_id": r, "mandate_id": m, "reason": "a conflict of interest"})
            };
            (given, envelope(&id, event_type, &t, data))
        }
        "tafel.roundtable.concluded" => {
            let mut given = ready;
            given.extend([published, scheduled, agenda]);
            let data = json!({"roundtable_id": t, "outcomes": [{"request_id": r, "commitments": []}]});
            (given, envelope(&id, event_type, &t, data))
        }
        other => panic!("no cell for {other}"),
    }
}

/// Whose aggregates a cell is about.
struct Owners {
    entrepreneur: &'static str,
    coach: &'static str,
    financier: &'static str,
    organiser: &'static str,
}

/// The contract's answer for `role` sending `event_type` on its own aggregate or on
/// another's.
fn expected(event_type: &str, publisher: &str, role: &str, own: bool) -> &'static str {
    // Step 2: only the role the contract names may publish a type.
    if role != publisher {
        return "forbidden";
    }
    if own {
        return "accepted";
    }
    match event_type {
        // Creating an aggregate that exists (another's): step 6.
        "tafel.request.submitted" | "tafel.mandate.published" | "tafel.roundtable.scheduled" => "version_conflict",
        // Another entrepreneur's request, another financier's mandate: not visible,
        // so not found (step 5).
        "tafel.request.revised" | "tafel.request.withdrawn" | "tafel.mandate.revised" | "tafel.mandate.closed" => {
            "not_found"
        }
        // Assessing or recusing with another financier's mandate: not found (step 5).
        "tafel.roundtable.assessed" | "tafel.roundtable.recused" => "not_found",
        // Any coach coaches any request; any organiser runs any round table.
        "tafel.request.coached" | "tafel.roundtable.agenda_set" | "tafel.roundtable.concluded" => "accepted",
        other => panic!("no rule for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_and_event_type_on_its_own_and_on_anothers_aggregate() {
    let nats_server = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut tokens = HashMap::new();
    for (id, role) in PRINCIPALS {
        tokens.insert(id, add_principal(data.path(), id, role));
    }
    let (tafel, port) = serve_with_nats(data.path(), &nats_server);
    let mut nats = HashMap::new();
    for (id, _) in PRINCIPALS {
        let client = async_nats::ConnectOptions::new()
            .custom_inbox_prefix(format!("_INBOX.{id}"))
            .request_timeout(Some(Duration::from_secs(10)))
            .connect(nats_server.url())
            .await
            .unwrap();
        nats.insert(id, client);
    }
    let world = World { nats, tokens, port };

    let mut failures = Vec::new();
    let mut cells = 0;
    for (transport_name, transport) in [("nats", Transport::Nats), ("http", Transport::Http)] {
        for (type_index, (event_type, publisher)) in TYPES.iter().enumerate() {
            for (role, actor, other) in ROLES {
                for own in [true, false] {
                    let cell = format!("{transport_name}-{type_index}-{role}-{}", if own { "own" } else { "other" });
                    // The aggregates are the actor's own, or the other principal's of the
                    // same role (for a role that publishes none, the publisher's).
                    let owner_of = |kind: &str, default: &'static str| -> &'static str {
                        let holder = if own { actor } else { other };
                        if role == kind { holder } else { default }
                    };
                    let owners = Owners {
                        entrepreneur: owner_of("entrepreneur", "acme"),
                        coach: if role == "coach" { actor } else { "coach-anna" },
                        financier: owner_of("financier", "bank-a"),
                        organiser: owner_of("organiser", "organiser"),
                    };
                    let (given, event) = cell_events(event_type, &cell, &owners);
                    world.given(given).await;
                    // Creating another's aggregate: the other creates it first.
                    let creates =
                        [".submitted", ".published", ".scheduled"].iter().any(|end| event_type.ends_with(end));
                    if !own && publisher == &role && creates {
                        let mut first = event.clone();
                        first["id"] = json!(format!("{cell}-first"));
                        world.given(vec![(other, first)]).await;
                    }
                    let answer = world.send(&transport, actor, &event).await;
                    let expect = expected(event_type, publisher, role, own);
                    cells += 1;
                    if answer != expect {
                        failures.push(format!("{cell}: {actor} sends {event_type}: expected {expect}, got {answer}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {cells} cells failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(cells, 2 * TYPES.len() * ROLES.len() * 2);

    // Refused as not visible is byte-identical to what does not exist (but for the id).
    let revise = |id: &str, event_id: &str| envelope(event_id, "tafel.request.revised", id, request(id));
    world.given(vec![("acme", submitted("vis-r-s", "vis-r"))]).await;
    let hidden = http_request(
        port,
        "POST",
        "/v1/events",
        Some(&world.tokens["rival"]),
        revise("vis-r", "vis-e").to_string().as_bytes(),
    );
    let missing = http_request(
        port,
        "POST",
        "/v1/events",
        Some(&world.tokens["rival"]),
        revise("vis-x", "vis-e").to_string().as_bytes(),
    );
    assert_eq!(hidden.0, 404);
    assert_eq!(hidden.0, missing.0);
    assert_eq!(hidden.1.replace("vis-r", "vis-x"), missing.1, "a hidden request answers unlike a missing one");
    let (status_hidden, hidden) = http_request(port, "GET", "/v1/requests/vis-r", Some(&world.tokens["rival"]), b"");
    let (status_missing, missing) = http_request(port, "GET", "/v1/requests/vis-x", Some(&world.tokens["rival"]), b"");
    assert_eq!((status_hidden, hidden.replace("vis-r", "vis-x")), (status_missing, missing));
    eprintln!("access matrix: {cells} cells over NATS and HTTP");
    drop(tafel);
}
