//! End-to-end over NATS: a real `nats-server` on a free port, the real `tafel` binary,
//! real files. Every error code of contract section 3 and the role and ownership rules
//! of section 2, each refused and passed; duplicates and conflicts; 64 concurrent
//! publishers with fan-out in order; a NATS restart and a SIGKILL of Tafel mid-stream.

mod cases;
mod events;
mod support;

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use events::{envelope, mandate, request, submitted};
use futures::StreamExt;
use serde_json::{Value, json};
use support::{NatsServer, Tafel, add_principal, serve_with_nats};

/// A NATS connection as `principal`: with the inbox prefix `_INBOX.<principal>`, the
/// only place Tafel sends its replies (contract 1.1 section 2).
async fn connect_as(url: &str, principal: &str, timeout: Duration) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .custom_inbox_prefix(format!("_INBOX.{principal}"))
        .request_timeout(Some(timeout))
        .retry_on_initial_connect()
        .connect(url)
        .await
        .unwrap()
}

struct Client {
    url: String,
    /// For subscriptions and publishes that expect no reply.
    nats: async_nats::Client,
    /// One connection per principal that asks, each with its own inbox.
    principals: tokio::sync::Mutex<std::collections::HashMap<String, async_nats::Client>>,
}

impl Client {
    async fn connect(server: &NatsServer) -> Client {
        let nats = async_nats::ConnectOptions::new().connect(server.url()).await.unwrap();
        Client { url: server.url(), nats, principals: Default::default() }
    }

    /// The connection `principal` asks on.
    async fn as_principal(&self, principal: &str) -> async_nats::Client {
        let mut principals = self.principals.lock().await;
        if let Some(client) = principals.get(principal) {
            return client.clone();
        }
        let client = connect_as(&self.url, principal, Duration::from_secs(10)).await;
        principals.insert(principal.to_owned(), client.clone());
        client
    }

    async fn submit(&self, principal: &str, event: &Value) -> Value {
        let tokens = event["type"].as_str().unwrap().trim_start_matches("tafel.");
        self.submit_raw(&format!("tafel.submit.{tokens}.{principal}"), event.to_string().into_bytes()).await
    }

    /// Submits on `subject`, as the principal its last token names.
    async fn submit_raw(&self, subject: &str, body: Vec<u8>) -> Value {
        let principal = subject.rsplit('.').next().unwrap();
        let reply = self.as_principal(principal).await.request(subject.to_owned(), Bytes::from(body)).await.unwrap();
        serde_json::from_slice(&reply.payload).unwrap()
    }

    /// Asks, waiting (up to 20 s) for a Tafel that is reconnecting to NATS.
    async fn query(&self, name: &str, principal: &str, body: Value) -> Value {
        let subject = format!("tafel.query.{name}.{principal}");
        let nats = self.as_principal(principal).await;
        for _ in 0..200 {
            match nats.request(subject.clone(), Bytes::from(body.to_string())).await {
                Ok(reply) => return serde_json::from_slice(&reply.payload).unwrap(),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        panic!("no answer to {subject}");
    }
}

/// Checks `instance` against a definition of proto/tafel-v1.schema.json.
fn assert_schema(definition: &str, instance: &Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/tafel-v1.schema.json");
    let contract: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schema = json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
                        "$ref": format!("#/$defs/{definition}"), "$defs": contract["$defs"]});
    let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{definition}: {errors:?}\n{instance:#}");
}

fn code(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or("accepted")
}

fn accepted(reply: &Value) -> bool {
    reply["accepted"] == true
}

/// A data directory with one principal of each kind the tests use.
fn data_with_principals() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    for (id, role) in cases::PRINCIPALS {
        add_principal(data.path(), id, role);
    }
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_and_rule_with_a_case_that_passes() {
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    let client = Client::connect(&nats).await;

    // Accepted, then a duplicate, then a conflict.
    let first = client.submit("acme", &submitted("e1", "r1")).await;
    assert_eq!(first, json!({"accepted": true, "id": "e1", "sequence": 1, "streamversion": 1, "duplicate": false}));
    let mut resend = submitted("e1", "r1");
    resend["time"] = json!("2021-06-01T10:00:00Z");
    let duplicate = client.submit("acme", &resend).await;
    assert_eq!(duplicate, json!({"accepted": true, "id": "e1", "sequence": 1, "streamversion": 1, "duplicate": true}));
    let mut changed = submitted("e1", "r1");
    changed["data"]["amount_eur"] = json!(99);
    assert_eq!(code(&client.submit("acme", &changed).await), "conflict");

    // Step 1.
    let subject = "tafel.submit.request.submitted.acme";
    assert_eq!(code(&client.submit_raw(subject, b"{\"id\":".to_vec()).await), "malformed_json");
    let mut no_source = submitted("e2", "r2");
    no_source.as_object_mut().unwrap().remove("source");
    let reply = client.submit("acme", &no_source).await;
    assert_eq!((code(&reply), reply["error"]["field"].as_str()), ("invalid_envelope", Some("source")));
    let unknown = envelope("e2", "tafel.request.approved", "r2", request("r2"));
    assert_eq!(code(&client.submit_raw(subject, unknown.to_string().into_bytes()).await), "unknown_type");
    let wrong_subject = "tafel.submit.request.revised.acme";
    let reply = client.submit_raw(wrong_subject, submitted("e2", "r2").to_string().into_bytes()).await;
    assert_eq!(code(&reply), "subject_mismatch");
    let mut huge = submitted("e2", "r2");
    huge["data"]["summary"] = json!("x".repeat(70 * 1024));
    assert_eq!(code(&client.submit("acme", &huge).await), "too_large");

    // Step 2: unknown principal, and a role that may not publish this type.
    assert_eq!(code(&client.submit("stranger", &submitted("e2", "r2")).await), "forbidden");
    let published = envelope("e3", "tafel.mandate.published", "m1", mandate("m1"));
    assert_eq!(code(&client.submit("acme", &published).await), "forbidden");
    assert!(accepted(&client.submit("bank-a", &published).await));

    // Step 4.
    let mut zero = submitted("e4", "r2");
    zero["data"]["amount_eur"] = json!(0);
    let reply = client.submit("acme", &zero).await;
    assert_eq!((code(&reply), reply["error"]["field"].as_str()), ("invalid_data", Some("data.amount_eur")));
    assert!(accepted(&client.submit("acme", &submitted("e4", "r2")).await));

    // Step 5: not found (missing, or not visible), forbidden (not the owner).
    let revise = |id: &str, request_id: &str| envelope(id, "tafel.request.revised", request_id, request(request_id));
    assert_eq!(code(&client.submit("acme", &revise("e5", "nope")).await), "not_found");
    assert_eq!(code(&client.submit("rival", &revise("e5", "r1")).await), "not_found");
    assert!(accepted(&client.submit("acme", &revise("e5", "r1")).await));

    // Step 6: versions.
    let mut stale = revise("e6", "r1");
    stale["expectedversion"] = json!(1);
    assert_eq!(code(&client.submit("acme", &stale).await), "version_conflict");
    stale["expectedversion"] = json!(2);
    assert!(accepted(&client.submit("acme", &stale).await));
    assert_eq!(code(&client.submit("rival", &submitted("e7", "r1")).await), "version_conflict");

    // Step 7: state.
    let withdraw = envelope("e8", "tafel.request.withdrawn", "r2", json!({"request_id": "r2", "reason": "funded"}));
    assert!(accepted(&client.submit("acme", &withdraw).await));
    assert_eq!(code(&client.submit("acme", &revise("e9", "r2")).await), "invalid_state");

    // Round tables: organisers only; assessing with another's mandate is forbidden.
    let coached = envelope(
        "e10",
        "tafel.request.coached",
        "r1",
        json!({"request_id": "r1", "coach": "coach-anna", "readiness": "ready", "notes": "good"}),
    );
    assert!(accepted(&client.submit("coach-anna", &coached).await));
    let schedule = envelope(
        "e11",
        "tafel.roundtable.scheduled",
        "t1",
        json!({"roundtable_id": "t1", "title": "Juni", "date": "2021-06-15", "mandate_ids": ["m1"]}),
    );
    assert_eq!(code(&client.submit("bank-a", &schedule).await), "forbidden");
    assert!(accepted(&client.submit("organiser", &schedule).await));
    let agenda =
        envelope("e12", "tafel.roundtable.agenda_set", "t1", json!({"roundtable_id": "t1", "request_ids": ["r1"]}));
    assert!(accepted(&client.submit("organiser", &agenda).await));
    let assess = envelope(
        "e13",
        "tafel.roundtable.assessed",
        "t1",
        json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "interest": "yes"}),
    );
    assert_eq!(code(&client.submit("bank-b", &assess).await), "not_found", "bank-b is not invited");
    assert!(accepted(&client.submit("bank-a", &assess).await));

    // Queries and visibility.
    let own = client.query("request", "acme", json!({"request_id": "r1"})).await;
    assert_eq!((own["request_id"].as_str(), own["version"].as_u64()), (Some("r1"), Some(4)));
    assert_eq!(code(&client.query("request", "rival", json!({"request_id": "r1"})).await), "not_found");
    assert_eq!(code(&client.query("request", "stranger", json!({"request_id": "r1"})).await), "forbidden");
    assert_eq!(code(&client.query("request", "acme", json!({"id": "r1"})).await), "invalid_query");
    let seen_by_bank = client.query("request", "bank-a", json!({"request_id": "r1"})).await;
    assert_eq!(seen_by_bank["status"], "ready", "an eligible financier sees a ready request");
    assert_eq!(code(&client.query("request", "bank-a", json!({"request_id": "r2"})).await), "not_found");
    assert_eq!(code(&client.query("mandate", "bank-b", json!({"mandate_id": "m1"})).await), "not_found");
    assert_eq!(client.query("mandate", "bank-a", json!({"mandate_id": "m1"})).await["version"], 1);
    assert_eq!(code(&client.query("events", "acme", json!({})).await), "forbidden");
    let page = client.query("events", "organiser", json!({"from": 1, "limit": 3})).await;
    let sequences: Vec<u64> =
        page["events"].as_array().unwrap().iter().map(|e| e["sequence"].as_u64().unwrap()).collect();
    assert_eq!((sequences, page["next"].as_u64()), (vec![1, 2, 3], Some(4)));
    assert_eq!(page["events"][0]["principal"], "acme");
    assert_schema("events_page", &page);
    assert_schema("request_state", &own);
    assert_schema("query_error", &client.query("request", "rival", json!({"request_id": "r1"})).await);
    assert_schema("mandate_state", &client.query("mandate", "bank-a", json!({"mandate_id": "m1"})).await);
    let table = client.query("roundtable", "organiser", json!({"roundtable_id": "t1"})).await;
    assert_schema("roundtable_state", &table);
    assert_eq!(table["assessments"].as_array().unwrap().len(), 1);
    assert_eq!(code(&client.query("roundtable", "bank-b", json!({"roundtable_id": "t1"})).await), "not_found");
    assert_schema("submit_reply", &first);
    assert_schema("submit_reply", &client.submit("acme", &changed).await);
    assert!(page["events"][0]["recordedat"].as_str().unwrap().ends_with('Z'));
    let rest = client.query("events", "admin", json!({"from": 4})).await;
    let next = rest["next"].as_u64().unwrap();
    assert_eq!(client.query("events", "admin", json!({"from": next})).await["events"], json!([]));
    assert_eq!(code(&client.query("events", "admin", json!({"from": 1, "limit": 0})).await), "invalid_query");

    // A refused publish without a reply subject goes to tafel.rejected.
    let mut rejected = client.nats.subscribe("tafel.rejected.>").await.unwrap();
    client.nats.flush().await.unwrap();
    let mut bad = submitted("e20", "r20");
    bad["data"]["amount_eur"] = json!(-1);
    client.nats.publish("tafel.submit.request.submitted.acme", Bytes::from(bad.to_string())).await.unwrap();
    let message = tokio::time::timeout(Duration::from_secs(10), rejected.next()).await.unwrap().unwrap();
    assert_eq!(message.subject.as_str(), "tafel.rejected.request.submitted.acme");
    let body: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!((body["accepted"].as_bool(), code(&body)), (Some(false), "invalid_data"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_publishers_get_unique_sequences_and_fan_out_keeps_order() {
    const PUBLISHERS: usize = 64;
    const EVENTS_EACH: usize = 8;
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    let watcher = Client::connect(&nats).await;
    let mut fanned_out = watcher.nats.subscribe("tafel.events.>").await.unwrap();
    watcher.nats.flush().await.unwrap();

    let mut publishers = Vec::new();
    for publisher in 0..PUBLISHERS {
        let client = Client::connect(&nats).await;
        publishers.push(tokio::spawn(async move {
            let request_id = format!("p{publisher}");
            let mut sequences = Vec::new();
            for index in 0..EVENTS_EACH {
                let event = if index == 0 {
                    submitted(&format!("p{publisher}-{index}"), &request_id)
                } else {
                    envelope(
                        &format!("p{publisher}-{index}"),
                        "tafel.request.revised",
                        &request_id,
                        request(&request_id),
                    )
                };
                let reply = client.submit("acme", &event).await;
                assert!(accepted(&reply), "{reply}");
                assert_eq!(reply["streamversion"], index as u64 + 1);
                sequences.push(reply["sequence"].as_u64().unwrap());
            }
            sequences
        }));
    }
    let mut all = HashSet::new();
    for publisher in publishers {
        for sequence in publisher.await.unwrap() {
            assert!(all.insert(sequence), "sequence {sequence} given twice");
        }
    }
    let total = (PUBLISHERS * EVENTS_EACH) as u64;
    assert_eq!(all, (1..=total).collect::<HashSet<u64>>());

    let mut received = Vec::new();
    while (received.len() as u64) < total {
        let message = tokio::time::timeout(Duration::from_secs(20), fanned_out.next()).await.unwrap().unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        let subject = format!("tafel.events.request.{}", event["subject"].as_str().unwrap());
        assert_eq!(message.subject.as_str(), subject);
        received.push(event["sequence"].as_u64().unwrap());
    }
    assert_eq!(received, (1..=total).collect::<Vec<u64>>(), "fan-out must deliver each event once, in order");
}

/// Submits `count` events one after another, resending each (same id) until it gets an
/// answer, while the test disrupts NATS or Tafel; returns the acknowledged sequence of
/// every event id and how many sends got no answer.
/// How long a client submitting through a disruption waits for each reply.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(2);

async fn submit_through_disruption(
    nats: &NatsServer,
    count: usize,
    tag: &str,
    progress: Arc<AtomicUsize>,
) -> (BTreeMap<String, u64>, usize) {
    let client = connect_as(&nats.url(), "acme", SUBMIT_TIMEOUT).await;
    let mut acknowledged = BTreeMap::new();
    let mut unanswered = 0;
    for index in 0..count {
        let id = format!("{tag}-{index}");
        let event = submitted(&id, &format!("{tag}-{index}"));
        let body = Bytes::from(event.to_string());
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts < 200, "{id} never got an answer");
            match client.request("tafel.submit.request.submitted.acme".to_owned(), body.clone()).await {
                Ok(reply) => {
                    let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
                    if code(&reply) == "unavailable" {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    assert!(accepted(&reply), "{reply}");
                    acknowledged.insert(id, reply["sequence"].as_u64().unwrap());
                    progress.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Err(_) => {
                    unanswered += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
            }
        }
    }
    (acknowledged, unanswered)
}

async fn all_events(client: &Client) -> Vec<Value> {
    let mut events = Vec::new();
    let mut from = 1;
    loop {
        let page = client.query("events", "organiser", json!({"from": from})).await;
        let batch = page["events"].as_array().unwrap().clone();
        if batch.is_empty() {
            return events;
        }
        from = page["next"].as_u64().unwrap();
        events.extend(batch);
    }
}

fn assert_each_once(events: &[Value], acknowledged: &BTreeMap<String, u64>) {
    let mut seen = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["sequence"].as_u64(), Some(index as u64 + 1), "the log has a gap");
        let id = event["id"].as_str().unwrap().to_owned();
        assert!(seen.insert(id.clone(), event["sequence"].as_u64().unwrap()).is_none(), "{id} appended twice");
    }
    for (id, sequence) in acknowledged {
        assert_eq!(seen.get(id), Some(sequence), "acknowledged {id} is missing or moved");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_mid_stream_loses_and_doubles_nothing() {
    let mut nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);

    let progress = Arc::new(AtomicUsize::new(0));
    let submitting = {
        let (server, progress) = (shadow(&nats), progress.clone());
        tokio::spawn(async move { submit_through_disruption(&server, 600, "n", progress).await })
    };
    wait_for_progress(&progress, 100).await;
    // Down for longer than the client waits for a reply, so that a submit in flight goes
    // unanswered for certain (a quick restart may be bridged by the client's buffer).
    nats.restart_after(SUBMIT_TIMEOUT + Duration::from_millis(500));
    wait_for_progress(&progress, 300).await;
    nats.restart();
    let (acknowledged, unanswered) = submitting.await.unwrap();
    assert_eq!(acknowledged.len(), 600);
    assert!(unanswered > 0, "the restarts did not fall in the middle of the stream");

    let client = Client::connect(&nats).await;
    let events = all_events(&client).await;
    assert_each_once(&events, &acknowledged);
    assert_eq!(events.len(), 600);
}

/// Waits until the submitter has had `count` events acknowledged, so that a disruption
/// falls in the middle of the stream however fast the machine is.
async fn wait_for_progress(progress: &AtomicUsize, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while progress.load(Ordering::SeqCst) < count {
        assert!(std::time::Instant::now() < deadline, "the submitter made no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A handle with the same port that does not own the server process.
fn shadow(server: &NatsServer) -> NatsServer {
    NatsServer::shadow(server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_tafel_loses_no_acknowledged_event_and_fan_out_skips_none() {
    let nats = NatsServer::start();
    let data = data_with_principals();
    let watcher = Client::connect(&nats).await;
    let mut fanned_out = watcher.nats.subscribe("tafel.events.>").await.unwrap();
    watcher.nats.flush().await.unwrap();

    let (mut tafel, _) = serve_with_nats(data.path(), &nats);
    let progress = Arc::new(AtomicUsize::new(0));
    let submitting = {
        let (server, progress) = (shadow(&nats), progress.clone());
        tokio::spawn(async move { submit_through_disruption(&server, 600, "k", progress).await })
    };
    wait_for_progress(&progress, 150).await;
    tafel.child.kill().unwrap(); // SIGKILL
    tafel.child.wait().unwrap();
    drop(tafel);
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    let (acknowledged, unanswered) = submitting.await.unwrap();
    assert!(unanswered > 0, "the kill did not fall in the middle of the stream");

    let client = Client::connect(&nats).await;
    let events = all_events(&client).await;
    assert_each_once(&events, &acknowledged);
    let total = events.len() as u64;

    let mut seen = HashSet::new();
    while (seen.len() as u64) < total {
        let message = tokio::time::timeout(Duration::from_secs(20), fanned_out.next())
            .await
            .unwrap_or_else(|_| panic!("fan-out skipped events: saw {} of {total}", seen.len()))
            .unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        seen.insert(event["sequence"].as_u64().unwrap());
    }
    assert_eq!(seen, (1..=total).collect::<HashSet<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_the_principals_file() {
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (tafel, _) = serve_with_nats(data.path(), &nats);
    let client = Client::connect(&nats).await;
    assert_eq!(code(&client.submit("newcomer", &submitted("h1", "h1")).await), "forbidden");
    add_principal(data.path(), "newcomer", "entrepreneur");
    tafel.signal("HUP");
    tafel.wait_for_log("principals reread");
    assert!(accepted(&client.submit("newcomer", &submitted("h1", "h1")).await));
}

#[test]
fn sigterm_answers_in_flight_submits_and_exits_zero() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (mut tafel, _): (Tafel, u16) = serve_with_nats(data.path(), &nats);
    let acknowledged = runtime.block_on(async {
        let client = Client::connect(&nats).await;
        let mut tasks = Vec::new();
        for index in 0..50 {
            let nats = client.as_principal("acme").await;
            tasks.push(tokio::spawn(async move {
                let body = Bytes::from(submitted(&format!("t{index}"), &format!("t{index}")).to_string());
                nats.request("tafel.submit.request.submitted.acme".to_owned(), body).await.ok()
            }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        tafel.signal("TERM");
        let mut acknowledged = 0;
        for task in tasks {
            if let Some(reply) = task.await.unwrap() {
                let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
                if accepted(&reply) {
                    acknowledged += 1;
                }
            }
        }
        acknowledged
    });
    assert_eq!(tafel.wait().code(), Some(0));
    // Everything acknowledged is there after a restart.
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    runtime.block_on(async {
        let client = Client::connect(&nats).await;
        assert!(all_events(&client).await.len() >= acknowledged);
    });
}

/// The subject permissions in deploy/nats-server.conf: a principal publishes only under
/// its own name, reads replies only on its own inbox, and only organisers (and Tafel)
/// follow the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_permissions_hold_each_principal_to_its_own_name() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats-server.conf");
    let data = tempfile::tempdir().unwrap();
    add_principal(data.path(), "acme-bikes", "entrepreneur");
    add_principal(data.path(), "triodos", "financier");
    let passwords = Passwords {
        tafel: "change-me-tafel".into(),
        acme: "change-me-1".into(),
        triodos: "change-me-3".into(),
        organiser: "change-me-4".into(),
    };
    permissions_hold_each_principal_to_its_own_name(&config, data.path(), passwords).await;
}

/// Issue 13: `tafel principals nats-config` turns the principals file into NATS users
/// with the same permissions as deploy/nats-server.conf (the same test holds them to
/// it), each principal's password its HTTP token, and no password in the clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_users_made_from_the_principals_file_hold_each_principal_to_its_own_name() {
    let data = tempfile::tempdir().unwrap();
    let acme = add_principal(data.path(), "acme-bikes", "entrepreneur");
    let triodos = add_principal(data.path(), "triodos", "financier");
    let organiser = add_principal(data.path(), "organiser-haarlem", "organiser");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tafel"))
        .args(["principals", "nats-config", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let users = String::from_utf8(output.stdout).unwrap();
    // Refused: a --data without principals (a typo would lock everyone out), a principal
    // named as Tafel's own user.
    let refusal = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tafel")).args(args).output().unwrap();
        assert!(!output.status.success() && output.stdout.is_empty(), "{args:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let empty = tempfile::tempdir().unwrap();
    let none = refusal(&["principals", "nats-config", "--data", empty.path().to_str().unwrap()]);
    assert!(none.contains("there is no principals file"), "{none}");
    assert!(!empty.path().join("nats-service-password").exists(), "made a password for a mistyped --data");
    let data_arg = data.path().to_str().unwrap();
    let clash = refusal(&["principals", "nats-config", "--data", data_arg, "--service-user", "triodos"]);
    assert!(clash.contains("choose another service user"), "{clash}");
    let tafel = std::fs::read_to_string(data.path().join("nats-service-password")).unwrap().trim().to_owned();
    let mode = std::fs::metadata(data.path().join("nats-service-password")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "Tafel's NATS password is readable by its owner alone");
    for secret in [&acme, &triodos, &organiser, &tafel] {
        assert!(!users.contains(secret.as_str()), "a password in the clear: {users}");
    }
    assert_eq!(users.matches("password: \"$2a$").count(), 4, "{users}");
    let config_dir = tempfile::tempdir().unwrap();
    std::fs::write(config_dir.path().join("tafel-users.conf"), &users).unwrap();
    let config = config_dir.path().join("nats-server.conf");
    std::fs::write(&config, "write_deadline: \"2s\"\ninclude tafel-users.conf\n").unwrap();
    let passwords = Passwords { tafel, acme, triodos, organiser };
    permissions_hold_each_principal_to_its_own_name(&config, data.path(), passwords).await;
}

/// The NATS passwords of Tafel's user and of three principals.
struct Passwords {
    tafel: String,
    acme: String,
    triodos: String,
    organiser: String,
}

async fn permissions_hold_each_principal_to_its_own_name(
    config: &std::path::Path,
    data: &std::path::Path,
    passwords: Passwords,
) {
    let nats = NatsServer::start_with_config(config);
    let url = format!("nats://tafel:{}@127.0.0.1:{}", passwords.tafel, nats.port);
    let http_port = support::free_port();
    let tafel = Tafel::serve(data, &["--nats", &url, "--http", &format!("127.0.0.1:{http_port}")]);
    tafel.wait_for_log("tafel is up");
    // The server requires authentication: nothing to warn about.
    assert_eq!(support::ready(http_port), (200, "ready\n".to_owned()));

    // Each client connects with its own inbox prefix (contract section 2); what the
    // server refuses it comes back as a server error event.
    let connect = |user: &'static str, password: &str| {
        let (url, password) = (format!("nats://127.0.0.1:{}", nats.port), password.to_owned());
        let (errors_tx, errors) = tokio::sync::mpsc::unbounded_channel::<String>();
        async move {
            let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password)
                .custom_inbox_prefix(format!("_INBOX.{user}"))
                .request_timeout(Some(Duration::from_secs(2)))
                .event_callback(move |event| {
                    let errors_tx = errors_tx.clone();
                    async move {
                        if let async_nats::Event::ServerError(error) = event {
                            let _ = errors_tx.send(error.to_string());
                        }
                    }
                })
                .connect(url)
                .await
                .unwrap();
            (client, errors)
        }
    };
    // Another principal's password is not acme's.
    let posing = async_nats::ConnectOptions::with_user_and_password("acme-bikes".into(), passwords.triodos.clone())
        .connect(format!("nats://127.0.0.1:{}", nats.port))
        .await;
    assert!(posing.is_err(), "the server let acme-bikes in with triodos's password");
    let (acme, _) = connect("acme-bikes", &passwords.acme).await;
    let own = acme
        .request("tafel.submit.request.submitted.acme-bikes", Bytes::from(submitted("d1", "d1").to_string()))
        .await
        .unwrap();
    let own: Value = serde_json::from_slice(&own.payload).unwrap();
    assert!(accepted(&own), "{own}");
    let posing =
        acme.request("tafel.submit.request.submitted.triodos", Bytes::from(submitted("d2", "d2").to_string())).await;
    assert!(posing.is_err(), "acme-bikes published under another name");

    // Replies: a financier submits and asks through its own inbox, end to end...
    let (triodos, mut triodos_errors) = connect("triodos", &passwords.triodos).await;
    let published = envelope("d-m1", "tafel.mandate.published", "d-m1", mandate("d-m1"));
    let reply =
        triodos.request("tafel.submit.mandate.published.triodos", Bytes::from(published.to_string())).await.unwrap();
    assert!(accepted(&serde_json::from_slice(&reply.payload).unwrap()));
    let reply = triodos
        .request("tafel.query.mandate.triodos", Bytes::from(json!({"mandate_id": "d-m1"}).to_string()))
        .await
        .unwrap();
    let state: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(state["version"], 1, "{state}");
    // ...but may not read another principal's replies: the server refuses the
    // subscription, and acme's replies never reach it.
    let mut eavesdropping = triodos.subscribe("_INBOX.acme-bikes.>").await.unwrap();
    let _ = triodos.flush().await;
    let refused = tokio::time::timeout(Duration::from_secs(10), triodos_errors.recv())
        .await
        .expect("the server let a financier subscribe to another principal's inbox")
        .unwrap();
    assert!(
        refused.to_lowercase().contains("permissions violation") && refused.contains("acme-bikes"),
        "the server did not refuse the subscription: {refused}"
    );
    let query = json!({"request_id": "d1"}).to_string();
    let reply = acme.request("tafel.query.request.acme-bikes", Bytes::from(query)).await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&reply.payload).unwrap()["version"], 1);
    let overheard = tokio::time::timeout(Duration::from_millis(500), eavesdropping.next()).await;
    assert!(!matches!(overheard, Ok(Some(_))), "a financier read an entrepreneur's reply");
    // Without its inbox prefix, a client hears no reply at all.
    let unprefixed = async_nats::ConnectOptions::with_user_and_password("triodos".into(), passwords.triodos.clone())
        .request_timeout(Some(Duration::from_secs(2)))
        .connect(format!("nats://127.0.0.1:{}", nats.port))
        .await
        .unwrap();
    let query = json!({"mandate_id": "d-m1"}).to_string();
    assert!(unprefixed.request("tafel.query.mandate.triodos", Bytes::from(query)).await.is_err());

    // Following the log: refused for an entrepreneur, allowed for an organiser.
    let mut spying = acme.subscribe("tafel.events.>").await.unwrap();
    acme.flush().await.unwrap();
    let (organiser, _) = connect("organiser-haarlem", &passwords.organiser).await;
    let mut following = organiser.subscribe("tafel.events.>").await.unwrap();
    organiser.flush().await.unwrap();
    let reply = acme
        .request("tafel.submit.request.submitted.acme-bikes", Bytes::from(submitted("d3", "d3").to_string()))
        .await
        .unwrap();
    assert!(accepted(&serde_json::from_slice(&reply.payload).unwrap()));
    let event = tokio::time::timeout(Duration::from_secs(10), following.next()).await.unwrap().unwrap();
    assert!(event.subject.as_str().starts_with("tafel.events.request."));
    let spied = tokio::time::timeout(Duration::from_millis(500), spying.next()).await;
    assert!(!matches!(spied, Ok(Some(_))), "an entrepreneur received the log");

    // Fan-out confirms its deliveries by a round trip on `tafel.fanout.>`, which these
    // permissions allow Tafel's user (and nobody else): its cursor reaches the log's end.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let cursor = std::fs::read_to_string(data.join("fanout-cursor")).unwrap_or_default();
        if cursor.trim() == "3" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "fan-out never confirmed under deploy's permissions: {cursor:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Contract section 2: Tafel refuses to serve a NATS server that does not require
/// authentication, unless it is on loopback (then it warns, at start and in `/readyz`)
/// or `--insecure-nats` is given (then it warns too).
#[test]
fn an_unauthenticated_nats_server_is_served_only_on_loopback_or_when_told() {
    let data = tempfile::tempdir().unwrap();
    let nats = NatsServer::start();
    let http_port = support::free_port();
    let tafel = Tafel::serve(data.path(), &["--nats", &nats.url(), "--http", &format!("127.0.0.1:{http_port}")]);
    let warning = tafel.wait_for_log("does not require authentication");
    assert!(warning.contains("WARN") && warning.contains("loopback"), "{warning}");
    tafel.wait_for_log("tafel is up");
    let (status, body) = support::ready(http_port);
    assert_eq!(status, 200);
    assert!(body.contains("does not require authentication"), "{body}");
    drop(tafel);

    let Some(address) = support::non_loopback_ipv4() else {
        eprintln!("this machine has no IPv4 address but loopback: the refusal off loopback is left untested here");
        return;
    };
    let remote = NatsServer::start_on(address.into());
    let url = format!("nats://{address}:{}", remote.port);
    let mut tafel = Tafel::serve(data.path(), &["--nats", &url]);
    let refusal = tafel.wait_for_log("does not require authentication");
    assert!(refusal.contains("--insecure-nats"), "{refusal}");
    assert_eq!(tafel.wait().code(), Some(1), "tafel served an unauthenticated NATS server off loopback");

    let http_port = support::free_port();
    let tafel =
        Tafel::serve(data.path(), &["--nats", &url, "--insecure-nats", "--http", &format!("127.0.0.1:{http_port}")]);
    let warning = tafel.wait_for_log("does not require authentication");
    assert!(warning.contains("WARN") && warning.contains("--insecure-nats"), "{warning}");
    tafel.wait_for_log("tafel is up");
    let (status, body) = support::ready(http_port);
    assert_eq!(status, 200);
    assert!(body.contains("does not require authentication"), "{body}");
}

/// The next `tafel.shortlist.updated` event's shortlist, checked for shape.
async fn next_update(updates: &mut async_nats::Subscriber) -> Value {
    let message = tokio::time::timeout(Duration::from_secs(10), updates.next()).await.unwrap().unwrap();
    let event: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(message.subject.as_str(), format!("tafel.shortlist.{}", event["subject"].as_str().unwrap()));
    assert_eq!(event["type"], "tafel.shortlist.updated");
    assert_schema("shortlist", &event["data"]);
    event["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shortlists_are_live_explained_and_replayable() {
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    let client = Client::connect(&nats).await;
    let mut updates = client.nats.subscribe("tafel.shortlist.>").await.unwrap();
    client.nats.flush().await.unwrap();
    assert!(accepted(&client.submit("acme", &submitted("s1", "r1")).await));
    let first = next_update(&mut updates).await;
    assert_eq!((first["request_id"].as_str(), first["entries"].as_array().map(Vec::len)), (Some("r1"), Some(0)));

    assert!(accepted(&client.submit("bank-a", &envelope("s2", "tafel.mandate.published", "m1", mandate("m1"))).await));
    let second = next_update(&mut updates).await;
    assert_eq!(second["entries"][0]["mandate_id"], "m1");
    assert_eq!(second["entries"][0]["fit"], "full");
    assert_eq!(second["as_of"], 2);
    let reasons_tenths: i64 = second["entries"][0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["points"].as_f64().unwrap() * 10.0).round() as i64)
        .sum();
    assert_eq!(reasons_tenths, (second["entries"][0]["score"].as_f64().unwrap() * 10.0).round() as i64);

    let mut growth_only = mandate("m2");
    growth_only["stages"] = json!(["growth"]);
    assert!(accepted(&client.submit("bank-b", &envelope("s3", "tafel.mandate.published", "m2", growth_only)).await));
    let third = next_update(&mut updates).await;
    assert_eq!(third["near_misses"][0]["mandate_id"], "m2");
    assert_eq!(third["near_misses"][0]["failed"], "stage");

    // A mandate that changes nothing for r1 publishes nothing for it.
    let mut far = mandate("m3");
    far["regions"] = json!(["DE"]);
    far["stages"] = json!(["mature"]);
    assert!(accepted(&client.submit("bank-b", &envelope("s4", "tafel.mandate.published", "m3", far)).await));
    let quiet = tokio::time::timeout(Duration::from_millis(500), updates.next()).await;
    assert!(quiet.is_err(), "an update without a change: {:?}", quiet.ok().flatten().map(|m| m.payload));

    // Queries: now, in the past, and who may see them.
    let now = client.query("shortlist", "acme", json!({"request_id": "r1"})).await;
    assert_schema("shortlist", &now);
    assert_eq!(now["as_of"], 4);
    assert_eq!(now["entries"].as_array().unwrap().len(), 1);
    let then = client.query("shortlist", "acme", json!({"request_id": "r1", "as_of": 1})).await;
    assert_eq!((then["as_of"].as_u64(), then["entries"].as_array().map(Vec::len)), (Some(1), Some(0)));
    let at_two = client.query("shortlist", "coach-anna", json!({"request_id": "r1", "as_of": 2})).await;
    assert_eq!(at_two["entries"], second["entries"]);
    assert!(at_two["near_misses"].as_array().unwrap().is_empty());
    assert_eq!(
        code(&client.query("shortlist", "acme", json!({"request_id": "r1", "as_of": 99})).await),
        "invalid_query"
    );
    assert_eq!(
        code(&client.query("shortlist", "acme", json!({"request_id": "r1", "limit": 0})).await),
        "invalid_query"
    );
    assert_eq!(code(&client.query("shortlist", "rival", json!({"request_id": "r1"})).await), "not_found");
    assert_eq!(code(&client.query("shortlist", "bank-a", json!({"request_id": "r1"})).await), "not_found");

    // Matches: the owner sees only ready requests; an organiser sees all.
    let own = client.query("matches", "bank-a", json!({"mandate_id": "m1"})).await;
    assert_eq!(own["entries"], json!([]), "r1 is not ready, so bank-a may not see it");
    let all = client.query("matches", "organiser", json!({"mandate_id": "m1"})).await;
    assert_schema("matches_reply", &all);
    assert_eq!(all["entries"][0]["request_id"], "r1");
    assert_eq!(all["entries"][0]["organisation"], "De Fietsfabriek");
    assert_eq!(code(&client.query("matches", "bank-b", json!({"mandate_id": "m1"})).await), "not_found");

    // No single mandate carries 300 000 EUR: two co-financing ones together do.
    for (id, event_id) in [("m4", "s5"), ("m5", "s6")] {
        let mut co = mandate(id);
        co["co_financing"] = json!(true);
        assert!(accepted(&client.submit("bank-a", &envelope(event_id, "tafel.mandate.published", id, co)).await));
    }
    let mut big = request("r9");
    big["amount_eur"] = json!(300000);
    assert!(accepted(&client.submit("acme", &envelope("s7", "tafel.request.submitted", "r9", big)).await));
    let shortlist = client.query("shortlist", "acme", json!({"request_id": "r9"})).await;
    let consortium = &shortlist["consortia"][0];
    assert_eq!(consortium["total_eur"], 300000);
    let parts: Vec<&str> =
        consortium["parts"].as_array().unwrap().iter().map(|p| p["mandate_id"].as_str().unwrap()).collect();
    assert_eq!(parts, vec!["m4", "m5"]);
}

/// The programme report computed straight from the events a test published.
fn expected_report(published: &[(String, Value)]) -> Value {
    use std::collections::{BTreeMap, BTreeSet};
    fn of_type<'a>(published: &'a [(String, Value)], t: &'a str) -> impl Iterator<Item = &'a (String, Value)> {
        published.iter().filter(move |(_, e)| e["type"] == t)
    }
    let distinct = |t: &str, pick: &dyn Fn(&Value) -> bool| {
        of_type(published, t)
            .filter(|(_, e)| pick(e))
            .map(|(_, e)| e["subject"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
            .len()
    };
    let owner_of: BTreeMap<String, String> = published
        .iter()
        .filter(|(_, e)| e["type"] == "tafel.request.submitted" || e["type"] == "tafel.mandate.published")
        .map(|(p, e)| (e["subject"].as_str().unwrap().to_owned(), p.clone()))
        .collect();
    let themes: BTreeMap<String, Vec<u64>> = of_type(published, "tafel.request.submitted")
        .map(|(_, e)| {
            (
                e["subject"].as_str().unwrap().to_owned(),
                e["data"]["impact_themes"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect(),
            )
        })
        .collect();
    let closed: BTreeSet<String> =
        of_type(published, "tafel.mandate.closed").map(|(_, e)| e["subject"].as_str().unwrap().to_owned()).collect();
    let mandates: BTreeSet<String> = published
        .iter()
        .filter(|(_, e)| e["type"] == "tafel.mandate.published" || e["type"] == "tafel.mandate.revised")
        .map(|(_, e)| e["subject"].as_str().unwrap().to_owned())
        .filter(|m| !closed.contains(m))
        .collect();
    let (mut entrepreneurs, mut financiers) = (BTreeSet::new(), BTreeSet::new());
    let (mut committed, mut by_instrument, mut by_sdg) =
        (0u64, BTreeMap::<String, u64>::new(), BTreeMap::<String, u64>::new());
    let mut requests_committed = BTreeSet::new();
    for (_, conclusion) in of_type(published, "tafel.roundtable.concluded") {
        let table = conclusion["subject"].as_str().unwrap();
        let agenda =
            of_type(published, "tafel.roundtable.agenda_set").filter(|(_, e)| e["subject"] == table).last().unwrap();
        for request in agenda.1["data"]["request_ids"].as_array().unwrap() {
            entrepreneurs.insert(owner_of[request.as_str().unwrap()].clone());
        }
        for (_, assessed) in of_type(published, "tafel.roundtable.assessed").filter(|(_, e)| e["subject"] == table) {
            financiers.insert(owner_of[assessed["data"]["mandate_id"].as_str().unwrap()].clone());
        }
        for outcome in conclusion["data"]["outcomes"].as_array().unwrap() {
            if !outcome["commitments"].as_array().unwrap().is_empty() {
                requests_committed.insert(outcome["request_id"].as_str().unwrap().to_owned());
            }
            for commitment in outcome["commitments"].as_array().unwrap() {
                let amount = commitment["amount_eur"].as_u64().unwrap();
                committed += amount;
                *by_instrument.entry(commitment["instrument"].as_str().unwrap().to_owned()).or_default() += amount;
                for sdg in &themes[outcome["request_id"].as_str().unwrap()] {
                    *by_sdg.entry(sdg.to_string()).or_default() += amount;
                }
            }
        }
    }
    json!({
        "requests_submitted": distinct("tafel.request.submitted", &|_| true),
        "requests_coached": distinct("tafel.request.coached", &|_| true),
        "requests_ready": distinct("tafel.request.coached", &|e| e["data"]["readiness"] == "ready"),
        "requests_withdrawn": distinct("tafel.request.withdrawn", &|_| true),
        "requests_committed": requests_committed.len(),
        "mandates_active": mandates.len(),
        "roundtables_held": of_type(published, "tafel.roundtable.concluded").count(),
        "entrepreneurs_participating": entrepreneurs.len(),
        "financiers_participating": financiers.len(),
        "committed_eur": committed,
        "committed_eur_by_instrument": by_instrument,
        "committed_eur_by_sdg": by_sdg,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_table_from_scheduling_to_the_report() {
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    let client = Client::connect(&nats).await;
    let mut published: Vec<(String, Value)> = Vec::new();
    let mut counter = 0;
    let mut submit = async |principal: &str, event_type: &str, subject: &str, data: Value| {
        counter += 1;
        let event = envelope(&format!("rt{counter}"), event_type, subject, data);
        let reply = client.submit(principal, &event).await;
        if accepted(&reply) {
            published.push((principal.to_owned(), event));
        }
        reply
    };
    let coach = |id: &str, readiness: &str| json!({"request_id": id, "coach": "coach-anna", "readiness": readiness, "notes": ""});

    let mut big = request("r2");
    big["amount_eur"] = json!(300000);
    big["impact_themes"] = json!([7]);
    assert!(accepted(&submit("acme", "tafel.request.submitted", "r1", request("r1")).await));
    assert!(accepted(&submit("rival", "tafel.request.submitted", "r2", big).await));
    assert!(accepted(&submit("acme", "tafel.request.submitted", "r3", request("r3")).await));
    assert!(accepted(&submit("coach-anna", "tafel.request.coached", "r1", coach("r1", "ready")).await));
    assert!(accepted(&submit("coach-anna", "tafel.request.coached", "r2", coach("r2", "ready")).await));
    assert!(accepted(&submit("coach-anna", "tafel.request.coached", "r3", coach("r3", "needs_work")).await));
    assert!(accepted(
        &submit("acme", "tafel.request.withdrawn", "r3", json!({"request_id": "r3", "reason": "paused"})).await
    ));
    let mut m1 = mandate("m1");
    m1["budget_eur"] = json!(250000);
    let mut m2 = mandate("m2");
    m2["co_financing"] = json!(true);
    assert!(accepted(&submit("bank-a", "tafel.mandate.published", "m1", m1).await));
    assert!(accepted(&submit("bank-b", "tafel.mandate.published", "m2", m2).await));
    let schedule =
        json!({"roundtable_id": "t1", "title": "Haarlem", "date": "2021-06-15", "mandate_ids": ["m1", "m2"]});
    assert!(accepted(&submit("organiser", "tafel.roundtable.scheduled", "t1", schedule).await));
    let not_ready = json!({"roundtable_id": "t1", "request_ids": ["r1", "r3"]});
    assert_eq!(code(&submit("organiser", "tafel.roundtable.agenda_set", "t1", not_ready).await), "invalid_state");
    assert!(accepted(
        &submit(
            "organiser",
            "tafel.roundtable.agenda_set",
            "t1",
            json!({"roundtable_id": "t1", "request_ids": ["r1", "r2"]})
        )
        .await
    ));

    let assess = |request: &str, mandate: &str, interest: &str, amount: Option<u64>, scores: [u8; 3]| {
        json!({"roundtable_id": "t1", "request_id": request, "mandate_id": mandate, "interest": interest, "amount_eur": amount,
               "scores": {"impact": scores[0], "team": scores[1], "financials": scores[2]}})
    };
    assert!(accepted(
        &submit("bank-a", "tafel.roundtable.assessed", "t1", assess("r1", "m1", "no", None, [2, 2, 2])).await
    ));
    // A later assessment replaces the earlier.
    assert!(accepted(
        &submit("bank-a", "tafel.roundtable.assessed", "t1", assess("r1", "m1", "yes", Some(100000), [5, 4, 3])).await
    ));
    assert!(accepted(
        &submit("bank-b", "tafel.roundtable.assessed", "t1", assess("r1", "m2", "maybe", Some(50000), [4, 4, 4])).await
    ));
    assert!(accepted(
        &submit("bank-a", "tafel.roundtable.assessed", "t1", assess("r2", "m1", "yes", Some(150000), [4, 3, 3])).await
    ));
    assert!(accepted(
        &submit("bank-b", "tafel.roundtable.assessed", "t1", assess("r2", "m2", "yes", Some(150000), [4, 4, 5])).await
    ));

    // Blind: before the conclusion, bank-a sees and counts only its own assessments.
    let blind = client.query("roundtable", "bank-a", json!({"roundtable_id": "t1"})).await;
    assert_schema("roundtable_state", &blind);
    assert_eq!(blind["assessments"].as_array().unwrap().len(), 2);
    assert_eq!((blind["joint"][0]["yes"].as_u64(), blind["joint"][0]["maybe"].as_u64()), (Some(1), Some(0)));
    assert!(blind.get("frozen_shortlists").is_none(), "financiers do not see shortlists");
    // The organiser sees all, side by side with the frozen shortlists.
    let joint = client.query("roundtable", "organiser", json!({"roundtable_id": "t1"})).await;
    assert_schema("roundtable_state", &joint);
    let r1 = &joint["joint"][0];
    assert_eq!((r1["yes"].as_u64(), r1["maybe"].as_u64(), r1["no"].as_u64()), (Some(1), Some(1), Some(0)));
    assert_eq!(r1["mean_scores"]["impact"], 4.5);
    assert_eq!((r1["interest_eur"].as_u64(), r1["asked_eur"].as_u64()), (Some(150000), Some(150000)));
    let r2 = &joint["joint"][1];
    assert_eq!((r2["interest_eur"].as_u64(), r2["asked_eur"].as_u64()), (Some(300000), Some(300000)));
    let parts: u64 = r2["consortium"].as_array().unwrap().iter().map(|p| p["amount_eur"].as_u64().unwrap()).sum();
    assert_eq!(parts, 300000, "together the interested financiers carry r2");
    let as_of = joint["agenda_as_of"].as_u64().unwrap();
    let frozen = &joint["frozen_shortlists"][0];
    let then = client.query("shortlist", "organiser", json!({"request_id": "r1", "as_of": as_of})).await;
    assert_eq!(frozen, &then, "the frozen shortlist is the shortlist as the agenda was set");

    // The conclusion: commitments follow interest, tickets, instruments and budgets.
    let conclude = |m1_for_r2: u64| {
        json!({"roundtable_id": "t1", "outcomes": [
            {"request_id": "r1", "commitments": [{"mandate_id": "m1", "amount_eur": 100000, "instrument": "loan"},
                                                 {"mandate_id": "m2", "amount_eur": 50000, "instrument": "loan"}]},
            {"request_id": "r2", "commitments": [{"mandate_id": "m1", "amount_eur": m1_for_r2, "instrument": "loan"},
                                                 {"mandate_id": "m2", "amount_eur": 150000, "instrument": "loan"}]}]})
    };
    let over_budget = submit("organiser", "tafel.roundtable.concluded", "t1", conclude(200000)).await;
    assert_eq!(code(&over_budget), "invalid_state", "m1 has 250 000 EUR of budget for 300 000");
    assert!(accepted(&submit("organiser", "tafel.roundtable.concluded", "t1", conclude(150000)).await));
    assert_eq!(
        code(&submit("bank-a", "tafel.roundtable.assessed", "t1", assess("r1", "m1", "no", None, [1, 1, 1])).await),
        "invalid_state"
    );
    let after = client.query("roundtable", "bank-a", json!({"roundtable_id": "t1"})).await;
    assert_eq!(after["assessments"].as_array().unwrap().len(), 4, "after the conclusion all is seen");
    assert_eq!(client.query("mandate", "bank-a", json!({"mandate_id": "m1"})).await["remaining_budget_eur"], 0);

    // The report equals what the published events say.
    let report = client.query("report", "organiser", json!({})).await;
    assert_schema("report", &report);
    let expected = expected_report(&published);
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&report[key], value, "report figure {key}");
    }
    assert_eq!(report["committed_eur"], 450000);
    let year = report_year(&client).await;
    assert_eq!(client.query("report", "coach-anna", json!({"year": year})).await["committed_eur"], 450000);
    assert_eq!(client.query("report", "organiser", json!({"year": 2000})).await["requests_submitted"], 0);
    assert_eq!(code(&client.query("report", "acme", json!({})).await), "forbidden");
    assert_eq!(code(&client.query("report", "bank-a", json!({})).await), "forbidden");
}

/// The year the test's events were committed in.
async fn report_year(client: &Client) -> i64 {
    let page = client.query("events", "organiser", json!({"limit": 1})).await;
    page["events"][0]["recordedat"].as_str().unwrap()[..4].parse().unwrap()
}

/// Issue 8: a reconnect drops the NATS client's write buffer while a pending flush still
/// completes on the new connection, so a flush is no confirmation. Fan-out confirms by a
/// round trip on its own connection and publishes again from the cursor when the
/// connection changed: across many restarts of nats-server during a stream of submits,
/// a subscriber that takes each event following the last one it took gets them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_skips_nothing_across_many_nats_restarts() {
    const RESTARTS: usize = 8;
    const EVENTS: usize = 900;
    let mut nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    // The watcher comes back faster than Tafel (which waits 50 ms and more), so it is
    // listening again before anything is published on the new server.
    let watcher = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(1))
        .connect(nats.url())
        .await
        .unwrap();
    let mut fanned_out = watcher.subscribe("tafel.events.>").await.unwrap();
    watcher.flush().await.unwrap();

    let progress = Arc::new(AtomicUsize::new(0));
    let submitting = {
        let (server, progress) = (shadow(&nats), progress.clone());
        tokio::spawn(async move { submit_through_disruption(&server, EVENTS, "f", progress).await })
    };
    for restart in 1..=RESTARTS {
        wait_for_progress(&progress, restart * EVENTS / (RESTARTS + 2)).await;
        nats.restart();
    }
    let (acknowledged, _) = submitting.await.unwrap();
    assert_eq!(acknowledged.len(), EVENTS);

    // Read as proto/README.md says: take the event that follows the last one taken and
    // wait for the rest, which fan-out publishes again from its last confirmed event
    // after a reconnect (a later event can come first: crates/gateway/tests/fanout_model.rs).
    let mut taken = 0;
    let mut out_of_order = 0;
    while taken < EVENTS as u64 {
        let message = tokio::time::timeout(Duration::from_secs(20), fanned_out.next())
            .await
            .unwrap_or_else(|_| panic!("fan-out skipped events: taken in order up to {taken} of {EVENTS}"))
            .unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        let sequence = event["sequence"].as_u64().unwrap();
        if sequence == taken + 1 {
            taken = sequence;
        } else if sequence > taken + 1 {
            out_of_order += 1;
        }
    }
    eprintln!("{out_of_order} events arrived ahead of an earlier one and came again in order");
}

/// Contract section 7 and issue 8: with the NATS server gone, SIGTERM still ends Tafel,
/// with exit 0, in bounded time.
#[test]
fn sigterm_while_nats_is_down_exits_zero() {
    let mut nats = NatsServer::start();
    let data = data_with_principals();
    let (mut tafel, _) = serve_with_nats(data.path(), &nats);
    nats.stop();
    tafel.wait_for_log("NATS disconnected");
    terminate_within_30_s(&mut tafel);
}

fn terminate_within_30_s(tafel: &mut Tafel) {
    let asked = std::time::Instant::now();
    tafel.signal("TERM");
    let status = loop {
        if let Some(status) = tafel.child.try_wait().unwrap() {
            break status;
        }
        assert!(asked.elapsed() < Duration::from_secs(30), "tafel did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// Issue 12 (found in review): with the NATS server gone, events waiting for the
/// fan-out's confirmation and 3 000 submits over HTTP behind them (their shortlist
/// updates fill the NATS client's queue, on which the confirmation's marker then
/// waits), SIGTERM still ends Tafel in bounded time; it used to wait for the server.
#[test]
fn sigterm_while_nats_is_down_under_http_submits_exits_zero() {
    let mut nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let token = add_principal(data.path(), "acme", "entrepreneur");
    let (mut tafel, port) = serve_with_nats(data.path(), &nats);
    nats.stop();
    tafel.wait_for_log("NATS disconnected");
    for index in 0..3000 {
        let id = format!("queued-{index}");
        let event = submitted(&id, &id).to_string();
        let (status, body) = support::http_request(port, "POST", "/v1/events", Some(&token), event.as_bytes());
        assert_eq!(status, 201, "{body}");
    }
    terminate_within_30_s(&mut tafel);
}

/// Contract 1.1 section 6 and issue 8: a page of `events` ends early rather than exceed
/// the server's `max_payload` (1 MiB here), and `next` says where to go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_events_fits_the_servers_max_payload() {
    const EVENTS: usize = 400;
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    let client = Client::connect(&nats).await;
    let long = "x".repeat(3900);
    let mut sends = Vec::new();
    for index in 0..EVENTS {
        let id = format!("big-{index}");
        let mut body = request(&id);
        body["summary"] = json!(long);
        let event = envelope(&id, "tafel.request.submitted", &id, body);
        let nats = client.as_principal("acme").await;
        sends.push(tokio::spawn(async move {
            let reply = nats.request("tafel.submit.request.submitted.acme", Bytes::from(event.to_string())).await;
            serde_json::from_slice::<Value>(&reply.unwrap().payload).unwrap()
        }));
    }
    for send in sends {
        let reply = send.await.unwrap();
        assert!(accepted(&reply), "{reply}");
    }
    let max_payload = client.nats.server_info().max_payload;
    let mut from = 1;
    let mut pages = 0;
    loop {
        let reply = client
            .as_principal("organiser")
            .await
            .request("tafel.query.events.organiser", Bytes::from(json!({"from": from, "limit": 1000}).to_string()))
            .await
            .expect("a page too large for the server would never arrive");
        assert!(reply.payload.len() <= max_payload, "{} > {max_payload}", reply.payload.len());
        let page: Value = serde_json::from_slice(&reply.payload).unwrap();
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            break;
        }
        assert_eq!(events[0]["sequence"], from);
        from = page["next"].as_u64().unwrap();
        assert_eq!(from, events.last().unwrap()["sequence"].as_u64().unwrap() + 1);
        pages += 1;
    }
    assert_eq!(from, EVENTS as u64 + 1);
    assert!(pages >= 2, "{EVENTS} events of ~4 KB fit one page of 1 MiB? ({pages} pages)");

    // A list page ends early likewise, and `next` goes on from there.
    let organiser = client.as_principal("organiser").await;
    let (mut listed, mut after, mut pages) = (0, Value::Null, 0);
    loop {
        let body = json!({"limit": 1000, "after": after});
        let reply = organiser.request("tafel.query.requests.organiser", Bytes::from(body.to_string())).await.unwrap();
        assert!(reply.payload.len() <= max_payload, "{} > {max_payload}", reply.payload.len());
        let page: Value = serde_json::from_slice(&reply.payload).unwrap();
        listed += page["requests"].as_array().unwrap().len();
        pages += 1;
        after = page["next"].clone();
        if after.is_null() {
            break;
        }
    }
    assert_eq!(listed, EVENTS);
    assert!(pages >= 2, "{EVENTS} requests of ~4 KB fit one page of 1 MiB? ({pages} pages)");
}

/// Issue 8: on a full disk, submits answer `unavailable` (saying the event may have been
/// stored) and `/readyz` answers 503 with the reason; once space is freed, Tafel reopens
/// and verifies its log by itself, `/readyz` is 200 again and submits are accepted,
/// without a restart. The data directory is a small tmpfs, so this needs root (as
/// `scripts/test` runs in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_turns_readiness_off_and_recovers_without_a_restart() {
    let mount_point = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40m", "tafel-e2e"])
        .arg(mount_point.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "cannot mount a tmpfs: this test needs root (scripts/test runs as root)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount_point.path().to_path_buf());
    let data = mount_point.path().join("data");
    std::fs::create_dir(&data).unwrap();
    add_principal(&data, "acme", "entrepreneur");
    add_principal(&data, "organiser", "organiser");

    let nats = NatsServer::start();
    let (_tafel, http_port) = serve_with_nats(&data, &nats);
    let client = Client::connect(&nats).await;
    assert!(accepted(&client.submit("acme", &submitted("first", "first")).await));
    // Ready (once the views have applied that event).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while support::http_get(http_port, "/readyz").0 != 200 {
        assert!(std::time::Instant::now() < deadline, "{:?}", support::http_get(http_port, "/readyz"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Fill the disk, then submit until the log refuses.
    let filler = mount_point.path().join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
    }
    let long = "x".repeat(3900);
    let mut refused = None;
    for index in 0..2000 {
        let id = format!("full-{index}");
        let mut body = request(&id);
        body["summary"] = json!(long);
        let reply = client.submit("acme", &envelope(&id, "tafel.request.submitted", &id, body.clone())).await;
        if code(&reply) == "unavailable" {
            assert!(reply["error"]["message"].as_str().unwrap().contains("may have been stored"), "{reply}");
            refused = Some(envelope(&id, "tafel.request.submitted", &id, body));
            break;
        }
        assert!(accepted(&reply), "{reply}");
    }
    let refused = refused.expect("the full disk never refused a submit");
    let (status, body) = support::http_get(http_port, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the log refuses writes"), "{body}");

    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while support::http_get(http_port, "/readyz").0 != 200 {
        assert!(std::time::Instant::now() < deadline, "not ready again within 30 s of space being freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resent = client.submit("acme", &refused).await;
    assert!(accepted(&resent), "{resent}");
    assert!(accepted(&client.submit("acme", &submitted("after", "after")).await));
    let events = all_events(&client).await;
    let refused_id = refused["id"].as_str().unwrap();
    assert_eq!(events.iter().filter(|e| e["id"] == refused_id).count(), 1, "the resent event is stored once");
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["sequence"], index as u64 + 1, "the log has a gap");
    }
}

/// Contract 1.1 section 2 (found in review): Tafel answers only in the asking
/// principal's own inbox, so no principal can make it publish on `tafel.events.>` or
/// into another principal's inbox by choosing the reply subject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_go_only_to_the_asking_principals_own_inbox() {
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    let client = Client::connect(&nats).await;
    let mut forged = client.nats.subscribe("tafel.events.request.forged").await.unwrap();
    let mut other_inbox = client.nats.subscribe("_INBOX.bank-a.>").await.unwrap();
    let mut rejected = client.nats.subscribe("tafel.rejected.>").await.unwrap();
    client.nats.flush().await.unwrap();

    let submit = "tafel.submit.request.submitted.acme";
    let event = Bytes::from(submitted("fr1", "fr1").to_string());
    client.nats.publish_with_reply(submit, "tafel.events.request.forged", event).await.unwrap();
    client.nats.publish_with_reply(submit, "_INBOX.bank-a.stolen", Bytes::from_static(b"{")).await.unwrap();
    let query = Bytes::from(json!({"request_id": "fr1"}).to_string());
    client.nats.publish_with_reply("tafel.query.request.acme", "tafel.events.request.forged", query).await.unwrap();
    client.nats.flush().await.unwrap();

    // The refused submit is answered as if it had no reply subject...
    let refusal = tokio::time::timeout(Duration::from_secs(10), rejected.next()).await.unwrap().unwrap();
    assert_eq!(refusal.subject.as_str(), "tafel.rejected.request.submitted.acme");
    // ...the accepted one was stored (submits run concurrently, so it may land after the
    // refusal), and answers through the own inbox work...
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let state = client.query("request", "acme", json!({"request_id": "fr1"})).await;
        if state["version"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and nothing went where it was sent.
    let leaked = tokio::time::timeout(Duration::from_millis(500), forged.next()).await;
    assert!(!matches!(leaked, Ok(Some(_))), "Tafel published on tafel.events at a principal's request");
    let leaked = tokio::time::timeout(Duration::from_millis(100), other_inbox.next()).await;
    assert!(!matches!(leaked, Ok(Some(_))), "Tafel answered into another principal's inbox");
}

/// Contract 1.1 section 6: the list queries show what the principal may see, in id
/// order, filtered by state, paged with `after`/`next`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_queries_show_what_each_principal_may_see_page_by_page() {
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    let client = Client::connect(&nats).await;
    let ok = |reply: Value| assert!(accepted(&reply), "{reply}");
    for id in ["l-a1", "l-a2", "l-a3", "l-a4", "l-a5"] {
        ok(client.submit("acme", &submitted(id, id)).await);
    }
    for id in ["l-b1", "l-b2"] {
        ok(client.submit("rival", &submitted(id, id)).await);
    }
    let coach = |id: &str, readiness: &str| {
        envelope(
            &format!("{id}-c"),
            "tafel.request.coached",
            id,
            json!({"request_id": id, "coach": "coach-anna", "readiness": readiness, "notes": ""}),
        )
    };
    ok(client.submit("coach-anna", &coach("l-a1", "ready")).await);
    ok(client.submit("coach-anna", &coach("l-a2", "needs_work")).await);
    let withdrawn = json!({"request_id": "l-a3", "reason": "found money"});
    ok(client.submit("acme", &envelope("l-a3-w", "tafel.request.withdrawn", "l-a3", withdrawn)).await);
    ok(client.submit("bank-a", &envelope("l-m1", "tafel.mandate.published", "l-m1", mandate("l-m1"))).await);
    ok(client.submit("bank-a", &envelope("l-m2", "tafel.mandate.published", "l-m2", mandate("l-m2"))).await);
    let closed = json!({"mandate_id": "l-m2", "reason": "spent"});
    ok(client.submit("bank-a", &envelope("l-m2-c", "tafel.mandate.closed", "l-m2", closed)).await);
    let schedule = json!({"roundtable_id": "l-t1", "title": "Juni", "date": "2021-06-15", "mandate_ids": ["l-m1"]});
    ok(client.submit("organiser", &envelope("l-t1", "tafel.roundtable.scheduled", "l-t1", schedule)).await);

    let ids = |reply: &Value, field: &str| -> Vec<String> {
        reply[field]
            .as_array()
            .unwrap_or_else(|| panic!("{reply}"))
            .iter()
            .map(|item| {
                let key = format!("{}_id", field.trim_end_matches('s'));
                item[key.as_str()].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let list = |name: &'static str, principal: &'static str, body: Value| {
        let client = &client;
        async move {
            let reply = client.query(name, principal, body).await;
            if reply.get("error").is_none() {
                assert_schema(&format!("{name}_page"), &reply);
            }
            reply
        }
    };

    // Who sees which requests.
    let all = ["l-a1", "l-a2", "l-a3", "l-a4", "l-a5", "l-b1", "l-b2"];
    assert_eq!(ids(&list("requests", "organiser", json!({})).await, "requests"), all);
    assert_eq!(ids(&list("requests", "coach-anna", json!({})).await, "requests"), all);
    assert_eq!(ids(&list("requests", "acme", json!({})).await, "requests"), &all[..5]);
    assert_eq!(ids(&list("requests", "rival", json!({})).await, "requests"), &all[5..]);
    assert_eq!(ids(&list("requests", "bank-a", json!({})).await, "requests"), ["l-a1"], "ready and eligible only");
    assert_eq!(list("requests", "bank-b", json!({})).await, json!({"requests": [], "next": null}));
    let own = list("requests", "acme", json!({})).await;
    assert_eq!(own["requests"][0], client.query("request", "acme", json!({"request_id": "l-a1"})).await);
    assert_eq!(own["next"], Value::Null);

    // By state.
    let in_state = |state: &'static str| list("requests", "organiser", json!({"state": state}));
    assert_eq!(ids(&in_state("ready").await, "requests"), ["l-a1"]);
    assert_eq!(ids(&in_state("needs_work").await, "requests"), ["l-a2"]);
    assert_eq!(ids(&in_state("withdrawn").await, "requests"), ["l-a3"]);
    assert_eq!(ids(&in_state("submitted").await, "requests"), ["l-a4", "l-a5", "l-b1", "l-b2"]);

    // Page by page.
    let first = list("requests", "organiser", json!({"limit": 3})).await;
    assert_eq!(
        (ids(&first, "requests"), &first["next"]),
        (vec!["l-a1".into(), "l-a2".into(), "l-a3".into()], &json!("l-a3"))
    );
    let second = list("requests", "organiser", json!({"limit": 3, "after": "l-a3"})).await;
    assert_eq!(
        (ids(&second, "requests"), &second["next"]),
        (vec!["l-a4".into(), "l-a5".into(), "l-b1".into()], &json!("l-b1"))
    );
    let last = list("requests", "organiser", json!({"limit": 3, "after": "l-b1"})).await;
    assert_eq!((ids(&last, "requests"), &last["next"]), (vec!["l-b2".into()], &Value::Null));

    // Mandates and round tables.
    assert_eq!(ids(&list("mandates", "bank-a", json!({})).await, "mandates"), ["l-m1", "l-m2"]);
    assert_eq!(ids(&list("mandates", "bank-a", json!({"state": "closed"})).await, "mandates"), ["l-m2"]);
    assert_eq!(ids(&list("mandates", "bank-b", json!({})).await, "mandates"), Vec::<String>::new());
    assert_eq!(ids(&list("mandates", "acme", json!({})).await, "mandates"), Vec::<String>::new());
    assert_eq!(ids(&list("roundtables", "bank-a", json!({})).await, "roundtables"), ["l-t1"], "invited");
    assert_eq!(ids(&list("roundtables", "bank-b", json!({})).await, "roundtables"), Vec::<String>::new());
    assert_eq!(ids(&list("roundtables", "organiser", json!({"state": "scheduled"})).await, "roundtables"), ["l-t1"]);
    assert_eq!(
        ids(&list("roundtables", "organiser", json!({"state": "agenda_set"})).await, "roundtables"),
        Vec::<String>::new()
    );

    // Bad queries.
    for body in [json!({"state": "bogus"}), json!({"limit": 0}), json!({"after": "Not an id!"}), json!({"from": 1})] {
        assert_eq!(code(&list("requests", "organiser", body.clone()).await), "invalid_query", "{body}");
    }
    assert_eq!(code(&list("mandates", "organiser", json!({"state": "ready"})).await), "invalid_query");
    assert_eq!(code(&list("requests", "stranger", json!({})).await), "forbidden");
}

/// The table of cases shared with the HTTP tests (`tests/cases.rs`), over NATS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_cases_over_nats() {
    let nats = NatsServer::start();
    let data = data_with_principals();
    let (_tafel, _) = serve_with_nats(data.path(), &nats);
    let client = Client::connect(&nats).await;
    for (who, event) in cases::given() {
        let reply = client.submit(who, &event).await;
        assert!(accepted(&reply), "given {event}: {reply}");
    }
    for (index, case) in cases::cases().into_iter().enumerate() {
        let outcome = match &case.ask {
            cases::Ask::Submit(event) => cases::submit_outcome(&client.submit(case.who, event).await),
            cases::Ask::Query(name, body) => cases::query_outcome(&client.query(name, case.who, body.clone()).await),
        };
        assert_eq!(outcome, case.expect.describe(), "case {index}: {} asks {:?}", case.who, case.ask);
    }
}

/// Tafel's resident memory, from `/proc/<pid>/status`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Issue 12: a subscriber on `tafel.events.>` that stops reading (a connection that
/// never reads its socket) holds nothing up for long: every submit of 64 publishers is
/// acknowledged within the client's timeout, a healthy subscriber gets every event once
/// and in order, and Tafel's memory grows by no more than its log cache and views take.
/// The NATS server holds the stalled one's backlog (its pending limit set low here,
/// 256 KiB) and stalls the connection that feeds it until its write deadline cuts it
/// off: here the server's default of 10 s (deploy/nats-server.conf sets 2 s). That is
/// the fan-out's own connection, not the one submits are answered on: when they shared
/// one, submits missed the client's 10 s timeout under this deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_holds_up_neither_submits_nor_fan_out_nor_memory() {
    use std::io::{Read, Write};
    const PUBLISHERS: usize = 64;
    const EVENTS_EACH: usize = 80;
    let config = tempfile::NamedTempFile::new().unwrap();
    // The server's default write deadline (10 s), longer than deploy/nats-server.conf's.
    std::fs::write(config.path(), "max_pending: 262144\nmax_payload: 131072\n").unwrap();
    let nats = NatsServer::start_with_config(config.path());
    let data = data_with_principals();
    let (tafel, _) = serve_with_nats(data.path(), &nats);
    let pid = tafel.child.id();

    // The stalled subscriber: subscribes on a raw socket, then never reads again.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", nats.port)).unwrap();
    {
        // A small receive window, so that the kernel does not take the backlog in.
        use std::os::fd::AsRawFd;
        let size: libc::c_int = 4096;
        // SAFETY: a valid socket, and a pointer to an int of the size given.
        let set = unsafe {
            libc::setsockopt(
                stalled.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(set, 0);
    }
    let mut info = [0u8; 4096];
    let _ = stalled.read(&mut info).unwrap();
    stalled.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB tafel.events.> 1\r\nPING\r\n").unwrap();
    let watcher = Client::connect(&nats).await;
    let mut fanned_out = watcher.nats.subscribe("tafel.events.>").await.unwrap();
    watcher.nats.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let memory_before = resident_bytes(pid);

    let mut publishers = Vec::new();
    for publisher in 0..PUBLISHERS {
        let client = Client::connect(&nats).await;
        publishers.push(tokio::spawn(async move {
            let request_id = format!("slow{publisher}");
            for index in 0..EVENTS_EACH {
                let mut body = request(&request_id);
                // About 4 KiB per event (the longest summary), 20 MiB in all: far more
                // than the stalled subscriber's pending limit and socket buffer take.
                body["summary"] = json!("x".repeat(4000));
                let id = format!("slow{publisher}-{index}");
                let event = if index == 0 {
                    envelope(&id, "tafel.request.submitted", &request_id, body)
                } else {
                    envelope(&id, "tafel.request.revised", &request_id, body)
                };
                let reply = client.submit("acme", &event).await;
                assert!(accepted(&reply), "{reply}");
            }
        }));
    }
    let started = std::time::Instant::now();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    let submitting = started.elapsed();
    let total = (PUBLISHERS * EVENTS_EACH) as u64;
    let mut received = Vec::new();
    while (received.len() as u64) < total {
        let message = tokio::time::timeout(Duration::from_secs(20), fanned_out.next())
            .await
            .unwrap_or_else(|_| panic!("the fan-out stalled at {} of {total}", received.len()))
            .unwrap();
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        received.push(event["sequence"].as_u64().unwrap());
    }
    assert_eq!(received, (1..=total).collect::<Vec<u64>>(), "fan-out delivers each event once, in order");
    let fanning_out = started.elapsed();
    let memory_after = resident_bytes(pid);

    // What the stalled subscriber got (read for two seconds now), for the record: the
    // server holds its backlog, not Tafel.
    stalled.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let (mut buffered, mut chunk, reading) = (Vec::new(), [0u8; 65536], std::time::Instant::now());
    while reading.elapsed() < Duration::from_secs(2) {
        match stalled.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => buffered.extend_from_slice(&chunk[..read]),
        }
    }
    let delivered = String::from_utf8_lossy(&buffered).matches("MSG tafel.events.").count();
    // Tafel publishes each event once to the server and keeps no backlog per
    // subscriber (the server does, up to its limit); this bound, the log's cache and
    // views included, catches a gross leak, not a subtle one.
    let growth = memory_after.saturating_sub(memory_before);
    assert!(growth < 256 << 20, "Tafel's memory grew by {growth} bytes");
    eprintln!(
        "slow subscriber: {total} events acknowledged and fanned out; the stalled one got {delivered}; \
         Tafel's memory grew {} KiB; submits took {submitting:?}, the fan-out {fanning_out:?}",
        growth / 1024
    );
    drop(tafel);
}

/// Issue 12: the per-principal rate limit (`--rate-limit`, contract 1.1 `rate_limited`):
/// past its burst a principal is answered `rate_limited`, over HTTP with 429 and
/// `Retry-After` and over NATS with the same code, while another principal is served;
/// once its bucket refills it is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_over_its_rate_is_told_to_wait_and_others_are_served() {
    use std::io::{Read, Write};
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let acme = add_principal(data.path(), "acme", "entrepreneur");
    let rival = add_principal(data.path(), "rival", "entrepreneur");
    let http_port = support::free_port();
    let tafel = Tafel::serve(
        data.path(),
        &["--nats", &nats.url(), "--http", &format!("127.0.0.1:{http_port}"), "--rate-limit", "5"],
    );
    tafel.wait_for_log("tafel is up");
    // A burst of twice the rate passes; the next is refused, with Retry-After.
    let ask = |token: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", http_port)).unwrap();
        write!(
            stream,
            "GET /v1/requests HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let answers: Vec<String> = (0..30).map(|_| ask(&acme)).collect();
    let refused: Vec<&String> = answers.iter().filter(|r| r.starts_with("HTTP/1.1 429")).collect();
    assert!(!refused.is_empty(), "30 asks at once, none refused");
    assert!(answers.iter().filter(|r| r.starts_with("HTTP/1.1 200")).count() >= 10, "the burst did not pass");
    let first = refused[0];
    assert!(first.to_ascii_lowercase().contains("retry-after: 1"), "{first}");
    assert!(first.contains("\"rate_limited\""), "{first}");
    // Another principal is served meanwhile.
    assert!(ask(&rival).starts_with("HTTP/1.1 200"));
    // Over NATS: the same principal, the same code.
    let client = connect_as(&nats.url(), "acme", Duration::from_secs(10)).await;
    let mut codes = Vec::new();
    for _ in 0..30 {
        let reply = client.request("tafel.query.requests.acme", Bytes::from_static(b"{}")).await.unwrap();
        let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
        codes.push(reply["error"]["code"].as_str().unwrap_or("answered").to_owned());
    }
    assert!(codes.iter().any(|code| code == "rate_limited"), "{codes:?}");
    // Submits over the limit get the code in the contract's reply shape.
    let mut submit_codes = Vec::new();
    for index in 0..30 {
        let event = submitted(&format!("rl-{index}"), &format!("rl-{index}"));
        let reply =
            client.request("tafel.submit.request.submitted.acme", Bytes::from(event.to_string())).await.unwrap();
        let reply: Value = serde_json::from_slice(&reply.payload).unwrap();
        submit_codes.push(if reply["accepted"] == json!(true) {
            "accepted".to_owned()
        } else {
            reply["error"]["code"].as_str().unwrap().to_owned()
        });
    }
    assert!(submit_codes.iter().all(|code| code == "accepted" || code == "rate_limited"), "{submit_codes:?}");
    assert!(submit_codes.iter().any(|code| code == "rate_limited"), "{submit_codes:?}");
    // Refilled, it is served again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(ask(&acme).starts_with("HTTP/1.1 200"));
    drop(tafel);
}

/// Issue 12: `tafel loadgen` sends a steady mixed load over NATS and over HTTP to a
/// running Tafel and prints a line of figures per interval; nothing it sends is refused.
#[test]
fn loadgen_runs_a_mixed_load_over_both_transports() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let token = add_principal(data.path(), "acme", "entrepreneur");
    let (tafel, http_port) = serve_with_nats(data.path(), &nats);
    let pid = tafel.child.id().to_string();
    let http = format!("127.0.0.1:{http_port}");
    for transport in [vec!["--nats", &nats.url(), "--as", "acme"], vec!["--http", &http, "--token", &token]] {
        let mut args = vec!["loadgen", "--rate", "200", "--seconds", "3", "--interval", "1", "--pid", &pid];
        args.extend(transport);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tafel")).args(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{args:?}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let lines: Vec<&str> = stdout.lines().filter(|line| line.contains(" ok ")).collect();
        assert!(lines.len() >= 3, "{stdout}");
        let ok: u64 = lines
            .iter()
            .map(|line| line.split_whitespace().skip_while(|w| *w != "ok").nth(1).unwrap().parse::<u64>().unwrap())
            .sum();
        assert!(ok >= 500, "only {ok} answered: {stdout}");
        assert!(lines.iter().all(|line| line.contains("errors     0")), "{stdout}");
        assert!(lines[0].contains("MiB"), "Tafel's memory is shown: {stdout}");
    }
    drop(tafel);
}
