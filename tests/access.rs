//! The access matrix of contract sections 2 and 3 (issue 12): every role x every event
//! type x (its own aggregate / another's), over NATS, over HTTP and through the web
//! pages' forms, against the real binary. Each cell is set up afresh (its own
//! aggregates, made by their owners) and asserts the contract's answer: accepted, or
//! the exact refusal. What may not be seen answers `not_found`, exactly as what does
//! not exist (checked byte for byte against an aggregate that does not exist).

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
    /// The web pages' forms, signed in with the principal's token as a person is.
    Web,
}

/// A signed-in browser: its session cookie and the CSRF token its forms carry.
struct Browser {
    cookie: String,
    csrf: String,
}

struct World {
    nats: HashMap<&'static str, async_nats::Client>,
    tokens: HashMap<&'static str, String>,
    browsers: HashMap<&'static str, Browser>,
    port: u16,
}

/// One request to the web pages: (status, head, body).
fn web_request(port: u16, method: &str, path: &str, cookie: &str, form: &[(String, String)]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let body: String =
        form.iter().map(|(key, value)| format!("{}={}", encode(key), encode(value))).collect::<Vec<_>>().join("&");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The value of a cookie the response sets.
fn set_cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|line| line.strip_prefix("set-cookie: ").or_else(|| line.strip_prefix("Set-Cookie: ")))
        .find(|value| value.starts_with(&format!("{name}=")))
        .and_then(|value| value.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie in {head}"))
        .to_owned()
}

/// The value of the first hidden field `name` of a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no hidden {name} in {page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// Signs in on the sign-in page with `token`, as a person does.
fn sign_in(port: u16, token: &str) -> Browser {
    let (_, head, page) = web_request(port, "GET", "/signin", "", &[]);
    let signin = set_cookie(&head, "tafel_signin");
    let form = [("csrf", hidden(&page, "csrf")), ("token", token.to_owned()), ("next", String::new())];
    let form: Vec<(String, String)> = form.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let (status, head, _) = web_request(port, "POST", "/signin", &signin, &form);
    assert_eq!(status, 303, "signing in: {head}");
    let cookie = set_cookie(&head, "tafel_session");
    // Every page of a signed-in person carries the session's token (in the sign-out form).
    let (_, _, page) = web_request(port, "GET", "/mandates", &cookie, &[]);
    Browser { cookie, csrf: hidden(&page, "csrf") }
}

/// The web form that sends `event` (contract data flattened into form fields as the
/// pages name them), and its path.
fn web_form(event: &Value) -> (String, Vec<(String, String)>) {
    fn flatten(prefix: &str, value: &Value, fields: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    flatten(&name, value, fields);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| flatten(prefix, item, fields)),
            Value::String(text) => fields.push((prefix.to_owned(), text.clone())),
            other => fields.push((prefix.to_owned(), other.to_string())),
        }
    }
    let (kind, subject, data) = (event["type"].as_str().unwrap(), event["subject"].as_str().unwrap(), &event["data"]);
    let mut fields = vec![("event_id".to_owned(), event["id"].as_str().unwrap().to_owned())];
    let text = |key: &str| data[key].as_str().unwrap_or("").to_owned();
    let path = match kind {
        "tafel.request.submitted" => "/requests/new".to_owned(),
        "tafel.request.revised" => format!("/requests/{subject}/revise"),
        "tafel.request.withdrawn" => format!("/requests/{subject}/withdraw"),
        "tafel.request.coached" => format!("/requests/{subject}/coach"),
        "tafel.mandate.published" => "/mandates/new".to_owned(),
        "tafel.mandate.revised" => format!("/mandates/{subject}/revise"),
        "tafel.mandate.closed" => format!("/mandates/{subject}/close"),
        "tafel.roundtable.scheduled" => "/roundtables/new".to_owned(),
        "tafel.roundtable.agenda_set" => format!("/roundtables/{subject}/agenda"),
        "tafel.roundtable.assessed" => {
            fields.extend([
                ("prefix".to_owned(), "p-".to_owned()),
                ("request_id".to_owned(), text("request_id")),
                ("mandate_id".to_owned(), text("mandate_id")),
                ("p-interest".to_owned(), text("interest")),
            ]);
            return (format!("/roundtables/{subject}/assess"), fields);
        }
        "tafel.roundtable.recused" => {
            fields.extend([
                ("request_id".to_owned(), text("request_id")),
                ("mandate_id".to_owned(), text("mandate_id")),
                ("reason_field".to_owned(), "why".to_owned()),
                ("why".to_owned(), text("reason")),
            ]);
            return (format!("/roundtables/{subject}/recuse"), fields);
        }
        "tafel.roundtable.concluded" => {
            for outcome in data["outcomes"].as_array().unwrap() {
                fields.push(("outcome".to_owned(), outcome["request_id"].as_str().unwrap().to_owned()));
            }
            return (format!("/roundtables/{subject}/conclude"), fields);
        }
        other => panic!("no form for {other}"),
    };
    flatten("", data, &mut fields);
    (path, fields)
}

impl World {
    /// Sends `event` as `who` and returns `accepted` or the refusal's code (through the
    /// web pages: `accepted` for the redirect after a form went through, `not_found` for
    /// the 404 page, the status and the page's error summary otherwise).
    async fn send(&self, transport: &Transport, who: &str, event: &Value) -> String {
        let reply: Value = match transport {
            Transport::Web => {
                let browser = &self.browsers[who];
                let (path, mut form) = web_form(event);
                form.insert(0, ("csrf".to_owned(), browser.csrf.clone()));
                let (status, _, page) = web_request(self.port, "POST", &path, &browser.cookie, &form);
                return match status {
                    303 => "accepted".into(),
                    404 => "not_found".into(),
                    _ => {
                        let summary =
                            page.split("role=\"alert\"").nth(1).unwrap_or("").chars().take(400).collect::<String>();
                        format!("{status}: {summary}")
                    }
                };
            }
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

/// The same, through the web pages' forms. A form exists only for the role that sends
/// its event: to any other role it is the 404 page, the one for what does not exist
/// (the pages' reading of "forbidden": they offer no such form). A form that creates
/// an aggregate makes its id from the form itself (`form::new_aggregate_id`), so it
/// cannot name another's aggregate: it creates a new one.
fn expected_on_the_web(event_type: &str, publisher: &str, role: &str, own: bool) -> &'static str {
    if role != publisher {
        return "not_found";
    }
    let creates = [".submitted", ".published", ".scheduled"].iter().any(|end| event_type.ends_with(end));
    if creates { "accepted" } else { expected(event_type, publisher, role, own) }
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
    let browsers = PRINCIPALS.iter().map(|(id, _)| (*id, sign_in(port, &tokens[id]))).collect();
    let world = World { nats, tokens, browsers, port };

    let mut failures = Vec::new();
    let mut cells = 0;
    for (transport_name, transport) in [("nats", Transport::Nats), ("http", Transport::Http), ("web", Transport::Web)] {
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
                    let expect = match transport {
                        Transport::Web => expected_on_the_web(event_type, publisher, role, own),
                        _ => expected(event_type, publisher, role, own),
                    };
                    cells += 1;
                    if answer != expect {
                        failures.push(format!("{cell}: {actor} sends {event_type}: expected {expect}, got {answer}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {cells} cells failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(cells, 3 * TYPES.len() * ROLES.len() * 2);

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
    // And on the web pages: the page and its form, and another role's form.
    let rival = &world.browsers["rival"];
    for (path, method) in
        [("/requests/vis-r", "GET"), ("/requests/vis-r/revise", "GET"), ("/requests/vis-r/revise", "POST")]
    {
        // A revision filled in right, so that it reaches the service.
        let (_, mut form) = web_form(&revise("vis-r", "vis-w"));
        form.insert(0, ("csrf".to_owned(), rival.csrf.clone()));
        let (status_hidden, _, hidden) = web_request(port, method, path, &rival.cookie, &form);
        let (status_missing, _, missing) =
            web_request(port, method, &path.replace("vis-r", "vis-x"), &rival.cookie, &form);
        assert_eq!(status_hidden, 404, "{method} {path}");
        assert_eq!((status_hidden, hidden.replace("vis-r", "vis-x")), (status_missing, missing), "{method} {path}");
    }
    let bank = &world.browsers["bank-a"];
    let form = vec![("csrf".to_owned(), bank.csrf.clone()), ("reason".to_owned(), "x".to_owned())];
    let (status_role, _, other_role) = web_request(port, "POST", "/requests/vis-r/withdraw", &bank.cookie, &form);
    let (status_missing, _, missing) = web_request(port, "POST", "/requests/vis-x/withdraw", &bank.cookie, &form);
    assert_eq!(status_role, 404);
    assert_eq!((status_role, other_role.replace("vis-r", "vis-x")), (status_missing, missing));
    eprintln!("access matrix: {cells} cells over NATS, HTTP and the web pages' forms");
    drop(tafel);
}
