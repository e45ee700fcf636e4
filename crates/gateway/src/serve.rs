//! `tafel serve`: the log, the views, NATS (when configured) and HTTP in one process.
//!
//! Start-up: open and verify the log, replay it into the views, then open the
//! transports. SIGHUP rereads the principals file. SIGTERM or Ctrl-C: stop taking new
//! work, answer everything already taken, confirm fan-out, close the log, exit 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tafel_matcher::ScoringTable;
use tafel_store::{EventLog, OpenOptions, SledLog};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::http::{HttpState, app};
use crate::{fanout, nats};
use tafel_service::Service;
use tafel_service::principals::{Principals, PrincipalsError};
use tafel_service::projection::ShortlistOutbox;
use tafel_service::snapshot::Policy;

/// Where `tafel serve` keeps its data unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "./tafel-data";
/// Where `tafel serve` listens for HTTP unless told otherwise.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// The principals file's name in the data directory, unless told otherwise.
pub const PRINCIPALS_FILE: &str = "principals.json";
/// The file of Tafel's own NATS password, under the data directory (`tafel principals
/// nats-config` makes it).
pub const NATS_SERVICE_PASSWORD_FILE: &str = "nats-service-password";

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub nats_url: Option<String>,
    pub principals_path: Option<PathBuf>,
    /// A scoring table (JSON); the default table otherwise.
    pub scoring_path: Option<PathBuf>,
    /// Load the demo programme (and its principals) when the log is empty.
    pub demo: bool,
    /// Serve a NATS server that does not require authentication, even off loopback.
    pub insecure_nats: bool,
    /// Events between two snapshots of the views written in the background.
    pub snapshot_every: u64,
    /// Submits and queries per second per principal; 0: no limit.
    pub rate_limit: u32,
    /// Cluster mode: the log of record is the NATS servers' JetStream stream.
    pub cluster: Option<ClusterConfig>,
}

/// How this node takes part in a cluster (`tafel serve --cluster`).
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's name, unique in the cluster.
    pub node: String,
    /// Replicas of the log's stream, when this node is the one that creates it.
    pub replicas: usize,
    /// Whether this node may create the log's stream (a new cluster's first start).
    pub create_log: bool,
    /// Whether this node publishes the fan-out (`tafel.events.>`, shortlist updates).
    pub fanout: bool,
    /// The NATS servers' monitoring addresses, to confirm they fsync before acknowledging.
    pub monitors: Vec<String>,
}

impl ServeConfig {
    pub fn principals_path(&self) -> PathBuf {
        self.principals_path.clone().unwrap_or_else(|| self.data_dir.join(PRINCIPALS_FILE))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Open(#[from] tafel_store::OpenError),
    #[error(transparent)]
    Principals(#[from] PrincipalsError),
    #[error(transparent)]
    Nats(#[from] nats::NatsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Replay(#[from] tafel_service::ReplayFailed),
    #[error("the scoring table {path}: {detail}")]
    Scoring { path: String, detail: String },
    #[error("the demo could not be loaded: {0}")]
    Demo(String),
    #[error(transparent)]
    Cluster(#[from] tafel_store::ClusterError),
    #[error("{0}")]
    Config(String),
}

pub async fn run(config: ServeConfig) -> Result<(), ServeError> {
    // Before anything records a metric; and drained now and then, since histograms
    // hold their samples until then, whether or not anyone reads /metrics.
    crate::telemetry::prometheus();
    tokio::spawn(async {
        let mut upkeep = tokio::time::interval(crate::telemetry::UPKEEP_INTERVAL);
        loop {
            upkeep.tick().await;
            crate::telemetry::prometheus().run_upkeep();
        }
    });
    let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ServeError::Signals)?;

    // HTTP first: liveness answers, and readiness says why not yet, while the log is
    // opened, caught up with the cluster's and replayed into the views.
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| ServeError::Listen { addr: config.http_addr, source })?;
    let http_addr = listener.local_addr().unwrap_or(config.http_addr);
    let (routers, router) = watch::channel(crate::http::starting("opening the log"));
    let (stop_tx, stop) = watch::channel(false);
    let mut http_stop = stop.clone();
    let http = tokio::spawn(async move {
        let shutdown = async move {
            let _ = http_stop.changed().await;
        };
        crate::http::serve_http_switching(listener, router, crate::http::HEADER_READ_TIMEOUT, shutdown).await;
    });

    // In cluster mode, the connection the log follows the stream on; readiness waits
    // for it like the others.
    let mut log_client = None;
    let log = match &config.cluster {
        None => SledLog::open(&config.data_dir, OpenOptions::default())?,
        Some(cluster) => {
            if config.demo {
                return Err(ServeError::Config("--demo is for one machine, not --cluster".into()));
            }
            let Some(url) = &config.nats_url else {
                return Err(ServeError::Config("--cluster needs --nats with the cluster's servers".into()));
            };
            routers.send_modify(|router| *router = crate::http::starting("catching up with the cluster's log"));
            crate::durability::confirm_sync_always(&cluster.monitors).await;
            let client = nats::connect_log(url).await?;
            log_client = Some(client.clone());
            let options = tafel_store::ClusterOptions {
                node: cluster.node.clone(),
                replicas: cluster.replicas,
                create_stream: cluster.create_log,
            };
            tokio::select! {
                opened = tafel_store::cluster::open(&config.data_dir, OpenOptions::default(), client, options) => opened?,
                _ = terminate.recv() => return stopped_while_starting(http, stop_tx).await,
                _ = interrupt.recv() => return stopped_while_starting(http, stop_tx).await,
            }
        }
    };
    routers.send_modify(|router| *router = crate::http::starting("replaying the log into the views"));
    let principals_path = config.principals_path();
    let principals = Principals::load(&principals_path)?;
    if principals.is_empty() && !config.demo {
        warn!(path = %principals_path.display(), "no principals: every submit and query will be refused (add one with `tafel principals add`)");
    }

    let scoring = match &config.scoring_path {
        None => ScoringTable::default(),
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| ScoringTable::from_json(&text))
            .map_err(|detail| ServeError::Scoring { path: path.display().to_string(), detail })?,
    };
    let fans_out = config.nats_url.is_some() && config.cluster.as_ref().is_none_or(|cluster| cluster.fanout);
    let shortlists = fans_out.then(|| Arc::new(ShortlistOutbox::default()));
    let snapshots = tafel_service::snapshot::Policy { every: config.snapshot_every, ..Policy::beside(&log) };
    let (service, projection) =
        tafel_service::start_with(log.clone(), principals, scoring, shortlists.clone(), snapshots).await?;
    service.limiter.set(tafel_service::limits::RateLimit::per_second(config.rate_limit));
    if config.demo {
        if log.last_sequence() == 0 {
            load_demo(&service, &principals_path).await?;
        } else {
            info!("the log is not empty: the demo is not loaded again");
        }
    }

    // The fan-out (and the shortlist updates) publish on a connection of their own: a
    // subscriber that stops reading makes the NATS server stall the connection that
    // feeds it, and that must not be the one submits and queries are answered on.
    let (nats_client, fanout_client) = match &config.nats_url {
        Some(url) => (Some(nats::connect(url, "tafel").await?), Some(nats::connect(url, "tafel-fanout").await?)),
        None => (None, None),
    };

    if config.demo && !http_addr.ip().is_loopback() {
        warn!(http = %http_addr, "--demo on an address others can reach: anyone who reaches it can sign in as any demo principal with one click");
    }
    let nats_clients = nats_client.iter().chain(&fanout_client).chain(&log_client).cloned().collect();
    routers.send_modify(|router| {
        *router = app(HttpState { service: service.clone(), nats: nats_clients, web: web_config(config.demo) })
    });

    let mut nats_tasks = Vec::new();
    if let (Some(client), Some(fanout_client)) = (&nats_client, &fanout_client) {
        let url = config.nats_url.as_deref().unwrap_or_default();
        let subscriptions = tokio::select! {
            subscriptions = async {
                nats::require_authentication(client, url, config.insecure_nats).await?;
                nats::subscribe(client).await
            } => Some(subscriptions?),
            _ = terminate.recv() => None,
            _ = interrupt.recv() => None,
        };
        let Some(subscriptions) = subscriptions else {
            info!("stopping before NATS was reached");
            service.stop_streams();
            let _ = stop_tx.send(true);
            let _ = http.await;
            log.shutdown().await;
            let _ = projection.await;
            info!("stopped");
            return Ok(());
        };
        // In a cluster one node fans out (`--fanout`): every node has every event.
        if fans_out {
            nats_tasks.push(tokio::spawn(fanout::run(
                log.clone(),
                fanout_client.clone(),
                config.data_dir.clone(),
                stop.clone(),
                service.health.clone(),
            )));
            if let Some(shortlists) = shortlists {
                tokio::spawn(fanout::publish_shortlists(fanout_client.clone(), shortlists));
            }
        }
        nats_tasks.push(tokio::spawn(nats::serve(client.clone(), subscriptions, service.clone(), stop.clone())));
    }

    info!(
        data = %config.data_dir.display(),
        http = %http_addr,
        pages = %format!("http://{http_addr}/"),
        nats = config.nats_url.as_deref().map_or_else(|| "off".to_owned(), nats::without_credentials),
        cluster = config.cluster.as_ref().map_or("off", |cluster| cluster.node.as_str()),
        events = log.last_sequence(),
        "tafel is up"
    );

    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => match Principals::load(&principals_path) {
                Ok(principals) => {
                    let count = principals.len();
                    service.replace_principals(principals);
                    info!(count, "principals reread");
                }
                Err(cause) => error!(%cause, "principals not reread; keeping the ones in force"),
            },
        }
    }

    info!("stopping: finishing in-flight work");
    // Live shortlists never end by themselves: end them, so that HTTP can finish.
    service.stop_streams();
    let _ = stop_tx.send(true);
    for task in nats_tasks {
        let _ = task.await;
    }
    let _ = http.await;
    log.shutdown().await;
    let _ = projection.await;
    info!("stopped");
    Ok(())
}

/// A stop asked for before the log was open: nothing was taken yet.
async fn stopped_while_starting(
    http: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
) -> Result<(), ServeError> {
    info!("stopping before the log was open");
    let _ = stop.send(true);
    let _ = http.await;
    Ok(())
}

/// The web pages' configuration: with `--demo`, the demo's principals for the sign-in
/// page's one-click sign-in; none otherwise.
fn web_config(demo: bool) -> tafel_web::WebConfig {
    let demo_principals = if demo {
        crate::demo::PRINCIPALS
            .iter()
            .filter_map(|(id, role)| Some((tafel_contract::PrincipalId::parse(id).ok()?, *role)))
            .collect()
    } else {
        Vec::new()
    };
    tafel_web::WebConfig { demo_principals }
}

/// Prints a new demo principal's HTTP token on stderr, for the person who started the
/// demo, as `tafel principals add` does; never through tracing, whose log may be kept
/// or shipped elsewhere.
fn show_token_once(id: &str, role: tafel_contract::vocab::Role, token: &str) {
    use std::io::Write;
    let _ =
        writeln!(std::io::stderr().lock(), "demo principal {id} ({role}): HTTP bearer token {token} (shown only now)");
}

/// Adds the demo's principals (printing each new one's token once) and submits the demo's
/// events through the ordinary submit path.
async fn load_demo(service: &Service, principals_path: &std::path::Path) -> Result<(), ServeError> {
    use tafel_contract::{PrincipalId, SubmitReply, SubmitRoute};
    for (id, role) in crate::demo::PRINCIPALS {
        let principal = PrincipalId::parse(id).map_err(ServeError::Demo)?;
        match tafel_service::principals::add(principals_path, principal, *role) {
            Ok(token) => show_token_once(id, *role, &token),
            Err(PrincipalsError::Exists(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    service.replace_principals(Principals::load(principals_path)?);
    let events = crate::demo::events();
    for (principal, event) in &events {
        let principal = PrincipalId::parse(principal).map_err(ServeError::Demo)?;
        let body = serde_json::to_vec(event).map_err(|e| ServeError::Demo(e.to_string()))?;
        if let SubmitReply::Refused { error, .. } = service.submit(&body, &SubmitRoute::http(&principal)).await {
            return Err(ServeError::Demo(format!("{} was refused: {error}", event["id"])));
        }
    }
    info!(events = events.len(), "demo loaded: the Haarlem round tables");
    Ok(())
}
