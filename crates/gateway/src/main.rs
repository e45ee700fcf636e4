//! The `tafel` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tafel_contract::PrincipalId;
use tafel_contract::vocab::Role;
use tafel_gateway::bench::{
    HttpBenchConfig, NatsBenchConfig, StoreBenchConfig, run_http_bench, run_nats_bench, run_store_bench,
};
use tafel_gateway::serve::{
    self, DEFAULT_DATA_DIR, DEFAULT_HTTP_ADDR, NATS_SERVICE_PASSWORD_FILE, PRINCIPALS_FILE, ServeConfig,
};
use tafel_service::principals;

/// mimalloc: the service allocates many small strings and vectors per event (parsing,
/// shortlists, reasons), where glibc's allocator spent about a sixth of a submit's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (and the `nats-server` a benchmark
/// starts). mimalloc asks the kernel for them, and each first touch of one zeroes 2 MiB:
/// under `perf`, half of ingest over NATS went to that (`clear_page_erms`). Without
/// them `tafel bench scale` ingested 1.8x as many events per second and held a third
/// less memory (see the README). Failing, it changes nothing, so its result is ignored.
fn no_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes one integer argument and touches no memory of ours.
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
}

#[derive(Parser)]
#[command(name = "tafel", version, about = "Tafel: event-sourced matching for impact financing round tables")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// Directory of the event log.
        #[arg(long = "data", env = "TAFEL_DATA", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Address for HTTP (health, readiness, metrics).
        #[arg(long = "http", env = "TAFEL_HTTP", default_value = DEFAULT_HTTP_ADDR)]
        http_addr: std::net::SocketAddr,
        /// Also serve the NATS subjects, on this server (e.g. nats://127.0.0.1:4222).
        #[arg(long = "nats", env = "TAFEL_NATS")]
        nats_url: Option<String>,
        /// The principals file [default: <data>/principals.json].
        #[arg(long = "principals", env = "TAFEL_PRINCIPALS")]
        principals_path: Option<PathBuf>,
        /// A scoring table (JSON, the criteria's points adding up to 100).
        #[arg(long = "scoring", env = "TAFEL_SCORING")]
        scoring_path: Option<PathBuf>,
        /// Load a sample Haarlem programme, with its principals, when the log is empty.
        #[arg(long)]
        demo: bool,
        /// Serve a NATS server that does not require authentication even off loopback
        /// (anyone who reaches it can then pose as any principal).
        #[arg(long = "insecure-nats", env = "TAFEL_INSECURE_NATS", value_parser = clap::builder::BoolishValueParser::new())]
        insecure_nats: bool,
        /// Events between two snapshots of the views written in the background (one is
        /// also written at every clean stop); 0: only at a stop.
        #[arg(long = "snapshot-every", env = "TAFEL_SNAPSHOT_EVERY", default_value_t = tafel_service::snapshot::DEFAULT_EVERY)]
        snapshot_every: u64,
        /// Submits and queries per second each principal may send (twice as many at
        /// once); more are answered `rate_limited` (HTTP 429). 0: no limit.
        #[arg(long = "rate-limit", env = "TAFEL_RATE_LIMIT", default_value_t = tafel_service::limits::DEFAULT_PER_SECOND)]
        rate_limit: u32,
        /// Cluster mode: the log of record is a JetStream stream on the NATS servers of
        /// --nats (a comma-separated list); this node keeps a copy of it in --data.
        #[arg(long, env = "TAFEL_CLUSTER", value_parser = clap::builder::BoolishValueParser::new(), requires = "nats_url")]
        cluster: bool,
        /// This node's name, unique in the cluster (letters, digits, '-', '_').
        #[arg(long, env = "TAFEL_NODE", required_if_eq("cluster", "true"))]
        node: Option<String>,
        /// Replicas of the log's stream when this node creates it.
        #[arg(long, env = "TAFEL_REPLICAS", default_value_t = 3)]
        replicas: usize,
        /// Create the log's stream when it does not exist: only the first start of the
        /// first node of a new cluster (otherwise a missing stream is waited for).
        #[arg(long = "create-log", env = "TAFEL_CREATE_LOG", value_parser = clap::builder::BoolishValueParser::new())]
        create_log: bool,
        /// In cluster mode, this node publishes the fan-out (tafel.events.>, shortlist
        /// updates); run exactly one node with it.
        #[arg(long, env = "TAFEL_FANOUT", value_parser = clap::builder::BoolishValueParser::new())]
        fanout: bool,
        /// The NATS servers' monitoring addresses (host:port, comma-separated), to confirm
        /// at start that they fsync before acknowledging (sync_interval: always).
        #[arg(long = "nats-monitor", env = "TAFEL_NATS_MONITOR", value_delimiter = ',')]
        nats_monitor: Vec<String>,
    },
    /// Copies the log of a running Tafel (or cluster node) into a new data directory,
    /// through its API: a consistent copy, as far as the log went when it finished.
    Backup {
        /// The running Tafel's HTTP address (host:port).
        #[arg(long)]
        from: String,
        /// A file holding an organiser's or admin's HTTP token (kept off the command
        /// line, which every local user can read).
        #[arg(long = "token-file")]
        token_file: PathBuf,
        /// The new data directory to write (must not exist or be empty).
        #[arg(long)]
        to: PathBuf,
    },
    /// Checks every record of the log of a Tafel that is not running (opening checks
    /// only the tail since the last durable checkpoint).
    Check {
        /// Directory of the event log.
        #[arg(long = "data", env = "TAFEL_DATA", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// The programme report, read from the log of a Tafel that is not running.
    Report {
        /// Directory of the event log.
        #[arg(long = "data", env = "TAFEL_DATA", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// One year (by the events' commit time, UTC); all time without it.
        #[arg(long)]
        year: Option<i32>,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Print the OpenAPI 3.1 document of the HTTP API (as proto/openapi.json holds it).
    Openapi,
    /// Print a generated world as NDJSON events (mandates first, then requests).
    Gen {
        #[arg(long, default_value_t = 100)]
        requests: usize,
        #[arg(long, default_value_t = 10)]
        mandates: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Manage principals.
    Principals {
        #[command(subcommand)]
        which: PrincipalsCommand,
    },
    /// A steady rate of mixed submits and queries against a running Tafel, over NATS
    /// or HTTP, printing latency and Tafel's memory per interval.
    Loadgen {
        /// Send over NATS, to this server, as the principals of --as.
        #[arg(long, conflicts_with = "http")]
        nats: Option<String>,
        /// Entrepreneurs to send as over NATS (comma-separated; they take turns).
        #[arg(long = "as", value_delimiter = ',', default_value = "loadgen")]
        principals: Vec<String>,
        /// Send over HTTP, to Tafel at this address, with the tokens of --token.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// Entrepreneurs' bearer tokens over HTTP (comma-separated; they take turns).
        #[arg(long = "token", value_delimiter = ',')]
        tokens: Vec<String>,
        /// Requests per second (seven in ten submit, one revises, two read a shortlist).
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// How long to send, in seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Seconds between two lines of figures.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        /// Tafel's process id, to show its resident memory.
        #[arg(long)]
        pid: Option<u32>,
        /// About this many requests: once submitted, submits revise them in turn (a
        /// programme of a steady size; the log still grows).
        #[arg(long)]
        requests: Option<u64>,
    },
    /// Run a benchmark beside its baseline and print the figures.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(Subcommand)]
enum PrincipalsCommand {
    /// Add a principal and print its fresh HTTP token (shown only this once).
    Add {
        /// The principal's id, e.g. acme-bikes.
        id: String,
        /// entrepreneur, coach, financier, organiser or admin.
        #[arg(long)]
        role: String,
        /// Directory of the event log, whose principals.json is used.
        #[arg(long = "data", env = "TAFEL_DATA", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// The principals file [default: <data>/principals.json].
        #[arg(long = "principals", env = "TAFEL_PRINCIPALS")]
        principals_path: Option<PathBuf>,
    },
    /// Print the NATS server's users for the principals (contract section 2's subject
    /// permissions; bcrypt hashes, never a password), to include in its configuration.
    /// A principal's NATS password is its HTTP token; Tafel's own is in
    /// --service-password-file, made when missing.
    NatsConfig {
        /// Directory of the event log, whose principals.json is used.
        #[arg(long = "data", env = "TAFEL_DATA", default_value = DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// The principals file [default: <data>/principals.json].
        #[arg(long = "principals", env = "TAFEL_PRINCIPALS")]
        principals_path: Option<PathBuf>,
        /// The NATS user Tafel itself connects as.
        #[arg(long = "service-user", default_value = "tafel")]
        service_user: String,
        /// The file holding Tafel's own NATS password [default:
        /// <data>/nats-service-password].
        #[arg(long = "service-password-file")]
        service_password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Matching: full rebuild, live updates, memory, and consortium search.
    Matcher {
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
        #[arg(long, default_value_t = 1_000)]
        mandates: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Submit round trips over NATS vs a trivial responder that fsyncs per request.
    Nats {
        /// Requests per publisher.
        #[arg(long, default_value_t = 500)]
        requests: usize,
        /// Scratch directory (removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Submits and shortlist reads over HTTP (keep-alive) vs the same over NATS.
    Http {
        /// Concurrent clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Requests per client and kind of work.
        #[arg(long, default_value_t = 100)]
        requests: usize,
        /// Scratch directory (removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// How costs grow with the log: a generated programme of N events, then restart,
    /// past shortlists, the report, memory and disk, each beside its baseline.
    Scale {
        /// Events to generate (about; whole round tables are written).
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Scratch directory (removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Durable appends per second vs raw sled inserts with a flush per batch.
    Store {
        /// Seconds each case runs, on each side.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Scratch directory (removed case by case).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Commands that read a stopped Tafel's log do not make one where there is none.
fn existing_log(data_dir: &std::path::Path) -> Result<(), String> {
    if data_dir.join("sled").is_dir() { Ok(()) } else { Err(format!("there is no log in {}", data_dir.display())) }
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve {
            data_dir,
            http_addr,
            nats_url,
            principals_path,
            scoring_path,
            demo,
            insecure_nats,
            snapshot_every,
            rate_limit,
            cluster,
            node,
            replicas,
            create_log,
            fanout,
            nats_monitor,
        } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => return fail(&error),
            };
            let config = ServeConfig {
                data_dir,
                http_addr,
                nats_url,
                principals_path,
                scoring_path,
                demo,
                insecure_nats,
                snapshot_every,
                rate_limit,
                cluster: cluster.then(|| serve::ClusterConfig {
                    node: node.unwrap_or_default(),
                    replicas,
                    create_log,
                    fanout,
                    monitors: nats_monitor,
                }),
            };
            match runtime.block_on(serve::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&error),
            }
        }
        Command::Principals { which: PrincipalsCommand::Add { id, role, data_dir, principals_path } } => {
            let id = match PrincipalId::parse(&id) {
                Ok(id) => id,
                Err(why) => return fail(&why),
            };
            let Some(role) = Role::parse(&role) else {
                return fail(&format!("{role:?} is not a role: entrepreneur, coach, financier, organiser or admin"));
            };
            let path = principals_path.unwrap_or_else(|| data_dir.join(PRINCIPALS_FILE));
            match principals::add(&path, id.clone(), role) {
                Ok(token) => {
                    eprintln!("added {id} ({role}) to {}; its HTTP bearer token, shown only now:", path.display());
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::Principals {
            which: PrincipalsCommand::NatsConfig { data_dir, principals_path, service_user, service_password_file },
        } => {
            let path = principals_path.unwrap_or_else(|| data_dir.join(PRINCIPALS_FILE));
            let password_path = service_password_file.unwrap_or_else(|| data_dir.join(NATS_SERVICE_PASSWORD_FILE));
            match tafel_service::nats_users::nats_config(&path, &password_path, &service_user) {
                Ok(users) => {
                    for id in &users.without_password {
                        eprintln!("{id} has no NATS password (added before Tafel kept one): it gets no NATS user");
                    }
                    eprintln!(
                        "NATS users for {} principals; Tafel connects as {service_user} with the password in {}",
                        users.users,
                        password_path.display()
                    );
                    print!("{}", users.config);
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::Backup { from, token_file, to } => {
            // An organiser's or admin's token reads the whole log: refuse one others can read.
            if let Ok(meta) = std::fs::metadata(&token_file) {
                use std::os::unix::fs::PermissionsExt;
                if meta.permissions().mode() & 0o077 != 0 {
                    return fail(&format!("{}: others may read this token; chmod 600 it", token_file.display()));
                }
            }
            let token = match std::fs::read_to_string(&token_file) {
                Ok(token) => token.trim().to_owned(),
                Err(error) => return fail(&format!("{}: {error}", token_file.display())),
            };
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => return fail(&error),
            };
            match runtime.block_on(tafel_gateway::backup::run(&from, &token, &to)) {
                Ok(events) => {
                    println!("{}: {events} events copied from {from}", to.display());
                    ExitCode::SUCCESS
                }
                Err(why) => fail(&why),
            }
        }
        Command::Check { data_dir } => {
            if let Err(why) = existing_log(&data_dir) {
                return fail(&why);
            }
            let options = tafel_store::OpenOptions { verify: tafel_store::Verify::All, ..Default::default() };
            match tafel_store::SledLog::open(&data_dir, options) {
                Ok(log) => {
                    let events = tafel_store::EventLog::last_sequence(&log);
                    println!("{}: {events} events, every record whole", data_dir.display());
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&format!("{error} (is a Tafel still running on it?)")),
            }
        }
        Command::Report { data_dir, year, format } => {
            if let Err(why) = existing_log(&data_dir) {
                return fail(&why);
            }
            let log = match tafel_store::SledLog::open(&data_dir, tafel_store::OpenOptions::default()) {
                Ok(log) => log,
                Err(error) => return fail(&format!("{error} (is a Tafel still running on it?)")),
            };
            let report = tafel_service::stored::read_all_events(&log)
                .and_then(|events| tafel_domain::report::report(&events, year));
            match report.and_then(|report| tafel_service::report::render(&report, &format)) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error),
            }
        }
        Command::Openapi => {
            print!("{}", tafel_gateway::openapi::pretty());
            ExitCode::SUCCESS
        }
        Command::Gen { requests, mandates, seed } => {
            use std::io::Write;
            use tafel_matcher::generate::{Random, mandate, request};
            let mut random = Random::new(seed);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut events = Vec::with_capacity(requests + mandates);
            for index in 0..mandates {
                let terms = mandate(&mut random, index);
                let id = terms.mandate_id.to_string();
                events.push(("tafel.mandate.published", id, serde_json::to_value(terms)));
            }
            for index in 0..requests {
                let details = request(&mut random, index);
                let id = details.request_id.to_string();
                events.push(("tafel.request.submitted", id, serde_json::to_value(details)));
            }
            for (event_type, subject, data) in events {
                let Ok(data) = data else { return fail(&"cannot encode a generated event") };
                let event = serde_json::json!({"specversion": "1.0", "id": format!("gen-{seed}-{subject}"),
                    "source": "/tafel/gen", "type": event_type, "subject": subject, "data": data});
                if writeln!(out, "{event}").is_err() {
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Loadgen { nats, principals, http, tokens, rate, seconds, interval, pid, requests } => {
            let target = match (nats, http) {
                (Some(url), None) => tafel_gateway::loadgen::Target::Nats { url, principals },
                (None, Some(address)) if !tokens.is_empty() => tafel_gateway::loadgen::Target::Http { address, tokens },
                _ => return fail(&"give --nats URL (and --as), or --http ADDRESS and --token"),
            };
            let config = tafel_gateway::loadgen::LoadConfig {
                target,
                per_second: rate,
                seconds,
                interval_seconds: interval,
                pid,
                requests,
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => return fail(&error),
            };
            println!("loadgen: {rate} requests per second for {seconds} s");
            match runtime.block_on(tafel_gateway::loadgen::run(&config, |figures| println!("{figures}"))) {
                Ok(figures) => {
                    let errors: u64 = figures.iter().map(|f| f.errors).sum();
                    if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
                }
                Err(error) => fail(&error),
            }
        }
        Command::Bench { which: BenchCommand::Matcher { requests, mandates, seed } } => {
            let figures = tafel_gateway::bench::run_matcher_bench(requests, mandates, seed);
            println!(
                "matcher, {} requests x {} mandates ({} pairs), seed {seed}",
                figures.requests,
                figures.mandates,
                figures.requests * figures.mandates
            );
            println!("  load through the live path: {:.3} s", figures.load_seconds);
            println!(
                "  full rebuild of every shortlist: {:.3} s ({:.1} M pairs/s), {} requests with entries",
                figures.rebuild_seconds,
                (figures.requests * figures.mandates) as f64 / figures.rebuild_seconds / 1e6,
                figures.requests_with_entries
            );
            println!(
                "  one new mandate, shortlists updated: {:.6} s = {:.3}% of the rebuild",
                figures.new_mandate_seconds,
                100.0 * figures.new_mandate_seconds / figures.rebuild_seconds
            );
            println!(
                "  one new request, shortlist computed: {:.6} s = {:.4}% of the rebuild",
                figures.new_request_seconds,
                100.0 * figures.new_request_seconds / figures.rebuild_seconds
            );
            println!(
                "  memory: {:.0} B per mandate, {:.0} B per request (RSS growth)",
                figures.bytes_per_mandate, figures.bytes_per_request
            );
            let (search, blind, same) = tafel_gateway::bench::run_consortium_bench(200, seed);
            println!(
                "  consortium search, 200 partial mandates: {:.6} s; blind walk over all 2-4 sets: {:.3} s ({:.0}x); same best: {same}",
                search,
                blind,
                blind / search
            );
            ExitCode::SUCCESS
        }
        Command::Bench { which: BenchCommand::Nats { requests, dir } } => {
            let dir = dir.unwrap_or_else(|| std::env::temp_dir().join(format!("tafel-bench-{}", std::process::id())));
            let config = NatsBenchConfig { dir: dir.clone(), cases: vec![(1, requests), (64, requests / 8 + 1)] };
            let rows = run_nats_bench(&config);
            let _ = std::fs::remove_dir_all(&dir);
            let rows = match rows {
                Ok(rows) => rows,
                Err(error) => return fail(&error),
            };
            println!(
                "submit round trip over NATS (publish to durable reply); baseline: a responder that fsyncs a small file per request"
            );
            println!(
                "{:>10} {:>8} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>10}",
                "publishers", "requests", "p50 ms", "p99 ms", "req/s", "base p50", "base p99", "base r/s", "throughput"
            );
            for row in rows {
                println!(
                    "{:>10} {:>8} | {:>9.3} {:>9.3} {:>9.0} | {:>9.3} {:>9.3} {:>9.0} | {:>9.2}x",
                    row.publishers,
                    row.requests,
                    row.tafel.p50_ms,
                    row.tafel.p99_ms,
                    row.tafel.per_second,
                    row.baseline.p50_ms,
                    row.baseline.p99_ms,
                    row.baseline.per_second,
                    row.tafel.per_second / row.baseline.per_second
                );
            }
            ExitCode::SUCCESS
        }
        Command::Bench { which: BenchCommand::Http { clients, requests, dir } } => {
            let dir = dir.unwrap_or_else(|| std::env::temp_dir().join(format!("tafel-bench-{}", std::process::id())));
            let config = HttpBenchConfig { dir: dir.clone(), clients, requests };
            let rows = run_http_bench(&config);
            let _ = std::fs::remove_dir_all(&dir);
            let rows = match rows {
                Ok(rows) => rows,
                Err(error) => return fail(&error),
            };
            println!("the same work over HTTP (keep-alive, {clients} clients) and over NATS, in one Tafel");
            println!(
                "{:>15} {:>8} | {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} | {:>10}",
                "work", "requests", "HTTP p50", "HTTP p99", "HTTP r/s", "NATS p50", "NATS p99", "NATS r/s", "HTTP/NATS"
            );
            for row in rows {
                println!(
                    "{:>15} {:>8} | {:>9.3} {:>9.3} {:>9.0} | {:>9.3} {:>9.3} {:>9.0} | {:>9.2}x",
                    row.work,
                    row.requests,
                    row.http.p50_ms,
                    row.http.p99_ms,
                    row.http.per_second,
                    row.nats.p50_ms,
                    row.nats.p99_ms,
                    row.nats.per_second,
                    row.http.per_second / row.nats.per_second
                );
            }
            ExitCode::SUCCESS
        }
        Command::Bench { which: BenchCommand::Scale { events, dir } } => {
            let dir = dir.unwrap_or_else(tafel_gateway::scale::scratch_dir);
            let figures = tafel_gateway::scale::run_scale_bench(&dir, events);
            let _ = std::fs::remove_dir_all(&dir);
            let f = match figures {
                Ok(figures) => figures,
                Err(error) => return fail(&error),
            };
            let ms = |seconds: f64| seconds * 1000.0;
            println!(
                "scale: {} events ({} requests), written in {:.1} s ({:.0} events/s through the store)",
                f.events,
                f.requests,
                f.write_seconds,
                f.events as f64 / f.write_seconds
            );
            println!(
                "  restart to ready from a snapshot: {:.0} ms vs a full replay: {:.0} ms ({:.1}x)",
                ms(f.restart_snapshot_seconds),
                ms(f.restart_full_seconds),
                f.restart_full_seconds / f.restart_snapshot_seconds.max(1e-9)
            );
            println!(
                "  snapshot: {:.1} MiB ({:.0} bytes per event), written at the clean stop in {:.0} ms; copying the views (what a background one paused them for before it was built beside them) {:.0} ms",
                f.snapshot_bytes as f64 / 1048576.0,
                f.snapshot_bytes as f64 / f.events as f64,
                ms(f.stop_seconds),
                ms(f.copy_seconds)
            );
            match &f.ingest {
                Some(ingest) => println!(
                    "  ingest over NATS, {} submits in flight: {:.0} events/s (p50 {:.1} ms, p99 {:.1} ms) vs the store alone: {:.0} events/s ({:.2}x)",
                    tafel_gateway::scale::INGEST_IN_FLIGHT,
                    ingest.nats.per_second,
                    ingest.nats.p50_ms,
                    ingest.nats.p99_ms,
                    ingest.store_per_second,
                    ingest.nats.per_second / ingest.store_per_second.max(1e-9)
                ),
                None => println!("  ingest over NATS: not measured (no nats-server; see the log above)"),
            }
            for (share, seconds, baseline) in &f.as_of {
                println!(
                    "  shortlist as_of {share:>2} % of the log: {:.2} ms from history vs {:.0} ms replaying to there ({:.0}x); the shortlist now: {:.2} ms",
                    ms(*seconds),
                    ms(*baseline),
                    baseline / seconds.max(1e-9),
                    ms(f.shortlist_now_seconds)
                );
            }
            println!(
                "  report, all years: {:.3} ms from the projection vs {:.1} ms folding the log: {:.0}x faster",
                ms(f.report_seconds),
                ms(f.report_fold_seconds),
                f.report_fold_seconds / f.report_seconds.max(1e-9)
            );
            if let (Some(before), Some(after)) = (f.rss_before, f.rss_after) {
                println!(
                    "  resident memory of this process: {:.1} MiB before the restart from the snapshot, {:.1} MiB after (+{:.0} bytes per event)",
                    before as f64 / 1048576.0,
                    after as f64 / 1048576.0,
                    after.saturating_sub(before) as f64 / f.events as f64
                );
            }
            println!(
                "  the log on disk: {:.1} MiB ({:.0} bytes per event)",
                f.disk_bytes as f64 / 1048576.0,
                f.disk_bytes as f64 / f.events as f64
            );
            ExitCode::SUCCESS
        }
        Command::Bench { which: BenchCommand::Store { seconds, dir } } => {
            let dir = dir.unwrap_or_else(|| std::env::temp_dir().join(format!("tafel-bench-{}", std::process::id())));
            let config = StoreBenchConfig {
                seconds_per_case: seconds,
                dir: dir.clone(),
                batch_sizes: vec![1, 16, 256],
                writer_counts: vec![1, 64],
            };
            let rows = match run_store_bench(&config) {
                Ok(rows) => rows,
                Err(error) => return fail(&error),
            };
            let _ = std::fs::remove_dir_all(&dir);
            println!(
                "durable appends, {seconds} s per case and side, {} B payloads, {} cores",
                tafel_gateway::bench::PAYLOAD_BYTES,
                std::thread::available_parallelism().map_or(0, |n| n.get())
            );
            println!(
                "{:>7} {:>6} {:>14} {:>14} {:>14} {:>7}",
                "writers", "batch", "tafel ev/s", "tafel batch/s", "raw sled ev/s", "ratio"
            );
            for row in rows {
                println!(
                    "{:>7} {:>6} {:>14.0} {:>14.0} {:>14.0} {:>6.2}x",
                    row.writers,
                    row.batch_events,
                    row.tafel_events_per_second,
                    row.tafel_batches_per_second,
                    row.raw_events_per_second,
                    row.ratio()
                );
            }
            ExitCode::SUCCESS
        }
    }
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!("{error}");
    eprintln!("tafel: {error}");
    ExitCode::FAILURE
}
