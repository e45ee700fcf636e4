//! Tafel's service: the one submit and query pipeline, whatever the transport, and the
//! views it answers from. NATS, the HTTP API and the web pages (in `tafel-gateway` and
//! `tafel-web`) only move bytes in and out of [`Service`]; every rule lives here or
//! below, once.
//!
//! - [`Service::submit`]: the contract's checks in order, the decision on the views,
//!   and the append with the decision's consistency boundary.
//! - [`Service::query`]: every query of contract section 6, each reply bounded in bytes
//!   by the transport's limit; the expensive ones (a past or frozen shortlist, computed
//!   from the matcher's history and the request's stream without a replay; a page of
//!   the log, read from disk)
//!   run off the async runtime, a bounded number at a time and a bounded share per
//!   principal.
//! - [`projection`]: keeps the views current from the log and feeds live shortlists;
//!   [`snapshot`]: the views saved and loaded, so a restart replays only the tail;
//!   [`principals`]: who may act, and the principals file; [`health`]: which parts
//!   stopped; [`stored`]: the stored-record codec; [`report`]: the report as text;
//!   [`telemetry`]: the names of every metric.
//!
//! Visibility and roles are decided in `tafel-domain`; this crate only asks.

pub mod health;
pub mod limits;
pub mod nats_users;
pub mod principals;
pub mod programme;
pub mod projection;
pub mod report;
pub mod snapshot;
pub mod stored;
pub mod telemetry;

mod queries;
pub use queries::{QUERIES, query_body};
mod submit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::Value;
use tafel_contract::reply::{ErrorCode, Refusal};
use tafel_contract::shortlist::Shortlist;
use tafel_contract::{AggregateId, PrincipalId};
use tafel_matcher::{Matcher, ScoringTable};
use tafel_store::{EventLog, SledLog};
use tokio::sync::{Semaphore, watch};
use tracing::error;

use crate::health::Health;
use crate::principals::Principals;
use crate::projection::{ShortlistFollowers, ShortlistOutbox, ShortlistSinks, Views};

/// Most times a submit is decided again after another submit moved what it read.
pub const MAX_DECIDE_ATTEMPTS: usize = 16;
/// Most agendas whose frozen shortlists are kept in memory.
pub const MAX_FROZEN_CACHED: usize = 64;
/// Most events one `events` query returns; the contract allows a cap of no less than 1000.
pub const MAX_EVENTS_PAGE: usize = 1000;
/// How long a request waits for the views to catch up with the log before answering
/// `unavailable`.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// Expensive queries (past and frozen shortlists, pages of the log) running at once, on blocking threads; more wait their turn. Two cores: leave
/// room for the writer and the submits.
pub const MAX_EXPENSIVE_AT_ONCE: usize = 2;
/// Expensive queries one principal may have running or waiting at once; past this it
/// is answered `rate_limited`, so no principal can starve the others.
pub const MAX_EXPENSIVE_PER_PRINCIPAL: usize = 2;
/// The largest reply over HTTP (contract section 6); on NATS it is the server's
/// announced `max_payload`.
pub const HTTP_MAX_REPLY_BYTES: usize = 1024 * 1024;

/// [`start_with`] snapshots beside the log ([`snapshot::Policy::beside`]).
pub async fn start(
    log: SledLog,
    principals: Principals,
    scoring: ScoringTable,
    shortlists: Option<Arc<ShortlistOutbox>>,
) -> Result<(Arc<Service>, tokio::task::JoinHandle<()>), ReplayFailed> {
    let snapshots = snapshot::Policy::beside(&log);
    start_with(log, principals, scoring, shortlists, snapshots).await
}

/// Loads the newest usable snapshot (else starts from nothing), replays the log's tail
/// into the views and returns the service on them, with the task that keeps the views
/// current and writes snapshots as `snapshots` says (it ends when the log closes).
/// Shortlists that change after start-up go to `shortlists`, when given.
pub async fn start_with(
    log: SledLog,
    principals: Principals,
    scoring: ScoringTable,
    shortlists: Option<Arc<ShortlistOutbox>>,
    snapshots: snapshot::Policy,
) -> Result<(Arc<Service>, tokio::task::JoinHandle<()>), ReplayFailed> {
    let loaded = match snapshots.dir.clone() {
        Some(dir) => {
            let log = log.clone();
            tokio::task::spawn_blocking(move || snapshot::load(&dir, &log, scoring)).await.ok().flatten()
        }
        None => None,
    };
    let loaded_at = loaded.as_ref().map_or(0, Views::last_sequence);
    // What the projection would have reported on the way, had it replayed the
    // snapshot's part of the log.
    for overdraft in loaded.iter().flat_map(|views| views.world.overdrafts()) {
        error!(%overdraft, "the log holds a commitment over a mandate's budget (written before contract 1.1)");
    }
    let fresh = || Views::new(Matcher::new(scoring).keeping_history());
    let views = Arc::new(RwLock::new(loaded.unwrap_or_else(fresh)));
    let (applied_tx, mut applied) = watch::channel(loaded_at);
    let target = log.last_sequence();
    let health = Arc::new(Health::default());
    let sinks = ShortlistSinks::new(shortlists);
    let followers = sinks.followers.clone();
    let snapshotter = crate::projection::Snapshotter::new(snapshots, &log, scoring, loaded_at);
    let projection = tokio::spawn(crate::projection::run(
        log.clone(),
        views.clone(),
        applied_tx,
        sinks,
        target,
        health.clone(),
        snapshotter,
    ));
    if applied.wait_for(|sequence| *sequence >= target).await.is_err() {
        return Err(ReplayFailed);
    }
    let mut service = Service::new(log, views, applied, principals, health).with_shortlist_followers(followers);
    service.started_from = loaded_at;
    Ok((Arc::new(service), projection))
}

/// The views stopped before they had replayed the log.
#[derive(Debug, thiserror::Error)]
#[error("the views could not replay the log")]
pub struct ReplayFailed;

pub struct Service {
    log: SledLog,
    views: Arc<RwLock<Views>>,
    applied: watch::Receiver<u64>,
    principals: RwLock<Arc<Principals>>,
    /// The parts that stopped, for readiness.
    pub health: Arc<Health>,
    /// Shortlists frozen by agendas, by the position they were frozen at (an agenda's
    /// requests are fixed by its position, so the position is key enough).
    frozen: Mutex<HashMap<u64, Arc<Vec<Value>>>>,
    /// Turns for expensive queries.
    expensive: Arc<Semaphore>,
    /// Expensive queries per principal, running or waiting.
    expensive_by_principal: Arc<Mutex<HashMap<PrincipalId, usize>>>,
    /// The live readers of shortlists, which the projection keeps current.
    shortlist_followers: Arc<ShortlistFollowers>,
    /// Turns true when Tafel stops: live readers end then.
    stopping: watch::Sender<bool>,
    /// The position of the snapshot the views were loaded from at start; 0 for none.
    started_from: u64,
    /// The per-principal rate limit of submits and queries (none unless set).
    pub limiter: limits::Limiter,
}

impl Service {
    /// `views` are kept current by the projection task, which reports how far it got on
    /// `applied`.
    pub fn new(
        log: SledLog,
        views: Arc<RwLock<Views>>,
        applied: watch::Receiver<u64>,
        principals: Principals,
        health: Arc<Health>,
    ) -> Self {
        Self {
            log,
            views,
            applied,
            principals: RwLock::new(Arc::new(principals)),
            health,
            frozen: Mutex::new(HashMap::new()),
            expensive: Arc::new(Semaphore::new(MAX_EXPENSIVE_AT_ONCE)),
            expensive_by_principal: Arc::default(),
            shortlist_followers: Arc::default(),
            stopping: watch::channel(false).0,
            started_from: 0,
            limiter: limits::Limiter::default(),
        }
    }

    /// The followers the projection keeps current (see
    /// [`crate::projection::ShortlistSinks`]).
    pub fn with_shortlist_followers(mut self, followers: Arc<ShortlistFollowers>) -> Self {
        self.shortlist_followers = followers;
        self
    }

    /// `request_id`'s shortlist each time it changes from now on (the latest only, at the
    /// default limit); who may see it is for the caller to ask first, and again.
    pub fn follow_shortlist(&self, request_id: &AggregateId) -> watch::Receiver<Option<Arc<Shortlist>>> {
        self.shortlist_followers.follow(request_id)
    }

    /// How many live readers follow shortlists now.
    pub fn shortlist_followers(&self) -> usize {
        self.shortlist_followers.count()
    }

    /// Whether `principal` may see `request_id`'s shortlist now (its token or role may
    /// have changed since it began to follow it).
    pub fn may_see_shortlist(&self, principal: &PrincipalId, request_id: &AggregateId) -> bool {
        let Some(actor) = self.principals().actor(principal.as_str()) else {
            return false;
        };
        self.views().is_ok_and(|views| views.world.can_see_shortlist(&actor, request_id))
    }

    /// A live shortlist for `principal`: the shortlist now, as the `shortlist` query
    /// answers it (its JSON), then each later change, for as long as `principal` may see
    /// it (asked again at each change: a token revoked or a role changed ends it) and
    /// Tafel runs. A slow reader skips to the latest, never holding anyone back. Every
    /// transport that streams shortlists (server-sent events in the API and on the web
    /// pages) takes it from here.
    pub async fn live_shortlist(
        self: &Arc<Self>,
        principal: &PrincipalId,
        request_id: &AggregateId,
    ) -> Result<(Vec<u8>, impl Stream<Item = Arc<Shortlist>> + Send + 'static), Refusal> {
        // Follow first, so that no change falls between the shortlist now and the changes.
        let changes = self.follow_shortlist(request_id);
        let body = serde_json::to_vec(&serde_json::json!({"request_id": request_id})).map_err(|e| internal(&e))?;
        let now = self.query_result("shortlist", principal.as_str(), &body, HTTP_MAX_REPLY_BYTES).await?;
        let as_of = serde_json::from_slice::<Value>(&now).ok().and_then(|now| now["as_of"].as_u64()).unwrap_or(0);
        let (service, principal, request_id) = (self.clone(), principal.clone(), request_id.clone());
        let later = futures::stream::unfold((changes, as_of), move |(mut changes, mut seen)| {
            let (service, principal, request_id) = (service.clone(), principal.clone(), request_id.clone());
            async move {
                loop {
                    changes.changed().await.ok()?;
                    let Some(shortlist) = changes.borrow_and_update().clone() else { continue };
                    // What the shortlist now already showed is not news.
                    if shortlist.as_of <= seen {
                        continue;
                    }
                    if !service.may_see_shortlist(&principal, &request_id) {
                        return None;
                    }
                    seen = shortlist.as_of;
                    return Some((shortlist, (changes, seen)));
                }
            }
        });
        let mut stopping = self.stopping();
        let until_stop = async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        };
        Ok((now, later.take_until(until_stop)))
    }

    /// Tafel is stopping: live readers end, so that the HTTP server can finish.
    pub fn stop_streams(&self) {
        self.stopping.send_replace(true);
    }

    /// Turns true when Tafel stops.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    pub fn log(&self) -> &SledLog {
        &self.log
    }

    pub fn replace_principals(&self, principals: Principals) {
        if let Ok(mut slot) = self.principals.write() {
            *slot = Arc::new(principals);
        }
    }

    pub fn principals(&self) -> Arc<Principals> {
        self.principals.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Whether the views have applied every durable event.
    pub fn caught_up(&self) -> bool {
        *self.applied.borrow() >= self.log.last_sequence()
    }

    /// Why this instance cannot serve, as lines for people; empty when it can. Being
    /// behind the log is not among them (that passes by itself).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.health.problems();
        if let Some(failure) = self.log.write_failure() {
            problems.push(format!("the log refuses writes: {failure}"));
        }
        problems
    }

    /// The position of the snapshot the views were loaded from at start (only the log
    /// after it was replayed); 0 when there was none.
    pub fn started_from(&self) -> u64 {
        self.started_from
    }

    /// How far the views have got.
    pub fn applied_sequence(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Reads the views as they stand (for tests and benchmarks, which compare them with
    /// a replay); `None` if they are poisoned.
    pub fn read_views<T>(&self, read: impl FnOnce(&Views) -> T) -> Option<T> {
        self.views.read().ok().map(|views| read(&views))
    }

    /// Waits until the views reflect at least the log as it is now, so that a client
    /// reads its own writes.
    async fn catch_up(&self) -> Result<(), Refusal> {
        let target = self.log.last_sequence();
        let mut applied = self.applied.clone();
        let wait = applied.wait_for(|applied| *applied >= target);
        match tokio::time::timeout(CATCH_UP_TIMEOUT, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Refusal::new(ErrorCode::Unavailable, "the views are behind the log; retry")),
        }
    }

    fn views(&self) -> Result<std::sync::RwLockReadGuard<'_, Views>, Refusal> {
        self.views.read().map_err(|_| internal(&"the views are poisoned"))
    }

    /// Runs `work` on a blocking thread: at most [`MAX_EXPENSIVE_AT_ONCE`] at a time, and
    /// at most [`MAX_EXPENSIVE_PER_PRINCIPAL`] running or waiting for one principal.
    async fn expensive<T: Send + 'static>(
        &self,
        principal: &PrincipalId,
        work: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
    ) -> Result<T, Refusal> {
        let share = PrincipalShare::take(&self.expensive_by_principal, principal)?;
        let turn = self.expensive.clone().acquire_owned().await.map_err(|e| internal(&e))?;
        // The share and the turn go with the work, so that they are given back when the
        // work ends, not when whoever asked stops waiting for it.
        tokio::task::spawn_blocking(move || {
            let _held = (share, turn);
            work()
        })
        .await
        .map_err(|e| internal(&e))?
    }
}

/// One of a principal's [`MAX_EXPENSIVE_PER_PRINCIPAL`] slots, given back on drop.
struct PrincipalShare {
    counts: Arc<Mutex<HashMap<PrincipalId, usize>>>,
    principal: PrincipalId,
}

impl PrincipalShare {
    fn take(counts: &Arc<Mutex<HashMap<PrincipalId, usize>>>, principal: &PrincipalId) -> Result<Self, Refusal> {
        let mut map = counts.lock().map_err(|_| internal(&"the share table is poisoned"))?;
        let count = map.entry(principal.clone()).or_insert(0);
        if *count >= MAX_EXPENSIVE_PER_PRINCIPAL {
            return Err(Refusal::new(
                ErrorCode::RateLimited,
                format!(
                    "{principal} has {MAX_EXPENSIVE_PER_PRINCIPAL} expensive queries running already; retry after 1 s"
                ),
            ));
        }
        *count += 1;
        Ok(Self { counts: counts.clone(), principal: principal.clone() })
    }
}

impl Drop for PrincipalShare {
    fn drop(&mut self) {
        if let Ok(mut map) = self.counts.lock()
            && let Some(count) = map.get_mut(&self.principal)
        {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.principal);
            }
        }
    }
}

fn invalid_query(message: String) -> Refusal {
    Refusal::new(ErrorCode::InvalidQuery, message)
}

/// An internal failure: logged in full, answered without its text.
fn internal(cause: &dyn std::fmt::Display) -> Refusal {
    error!(%cause, "internal error");
    Refusal::new(ErrorCode::Unavailable, "internal error; retry later")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_gets_a_bounded_share_of_expensive_work() {
        let counts = Arc::default();
        let (acme, rival) = (PrincipalId::parse("acme").unwrap(), PrincipalId::parse("rival").unwrap());
        let first = PrincipalShare::take(&counts, &acme).unwrap();
        let second = PrincipalShare::take(&counts, &acme).unwrap();
        let refused = PrincipalShare::take(&counts, &acme).err().unwrap();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(refused.message.contains("retry after"), "{}", refused.message);
        // Another principal is not held back by acme's share.
        let _theirs = PrincipalShare::take(&counts, &rival).unwrap();
        drop(first);
        let _again = PrincipalShare::take(&counts, &acme).unwrap();
        drop(second);
        drop(_again);
        assert!(!counts.lock().unwrap().contains_key(&acme), "a share given back leaves nothing behind");
    }
}
