//! Keeps the views current: follows the log from where they stand and folds each
//! durable event into the [`World`] (aggregates) and the [`Matcher`] (shortlists) under
//! one lock, so every reader sees both at the same log position. Shortlists that an
//! event really changed go to a [`ShortlistOutbox`], computed at that event's position.
//!
//! The projection never waits for anyone downstream: the outbox keeps only the latest
//! shortlist of each request, so a slow or absent NATS server delays shortlist updates
//! (and skips the ones superseded meanwhile) but never holds back the views, and
//! therefore never a submit.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tafel_contract::data::EventData;
use tafel_contract::shortlist::Shortlist;
use tafel_contract::{AggregateId, StoredEvent};
use tafel_domain::World;
use tafel_domain::report::Reports;
use tafel_matcher::{DEFAULT_LIMIT, Matcher, ScoringTable};
use tafel_store::{EventLog, SledLog, Subscription};
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use crate::health::Health;
use crate::snapshot::{self, EventMark, Policy};
use crate::stored::stored_event;

/// Everything derived from the log that requests are answered from.
#[derive(Clone)]
pub struct Views {
    pub world: World,
    pub matcher: Matcher,
    /// Every year's report, kept current.
    pub reports: Reports,
    /// The event the views stand at (a snapshot names it, so that it is never taken
    /// for a snapshot of another log).
    pub last_event: Option<EventMark>,
    /// An event did not fit and the projection stopped, perhaps half way through it:
    /// these views are never written to a snapshot.
    pub failed: bool,
}

impl Views {
    pub fn new(matcher: Matcher) -> Self {
        Self { world: World::default(), matcher, reports: Reports::default(), last_event: None, failed: false }
    }

    pub fn last_sequence(&self) -> u64 {
        self.world.last_sequence()
    }

    /// Applies the next stored event (its data parsed) to every view; returns the
    /// requests whose live shortlist changed.
    pub fn apply(&mut self, event: &StoredEvent, data: &EventData) -> Result<Vec<AggregateId>, String> {
        self.world.apply_data(event, data.clone())?;
        self.reports.apply_data(event, data)?;
        Ok(self.matcher.apply_parsed(event, data))
    }
}

/// Fresh views replayed from `log` up to `through`, as a start without a snapshot
/// builds them (hushed, then speaking). Blocking: it reads the log.
pub fn replay(log: &SledLog, through: u64, scoring: ScoringTable) -> Result<Views, String> {
    let mut views = Views::new(Matcher::new(scoring).keeping_history());
    views.matcher.hush();
    crate::stored::for_each_event(log, through, |event| {
        views.apply(&event, &EventData::of_stored(&event)?).map(|_| ())
    })?;
    views.matcher.speak();
    let at = views.last_sequence();
    if at > 0 {
        let record = log.read_from(at, 1).map_err(|e| e.to_string())?;
        views.last_event = record.first().map(EventMark::of);
    }
    Ok(views)
}

/// Changed shortlists waiting to be published: the latest of each request, in the order
/// the requests first changed. Bounded by the number of requests.
#[derive(Debug, Default)]
pub struct ShortlistOutbox {
    pending: Mutex<Pending>,
    ready: Notify,
}

#[derive(Debug, Default)]
struct Pending {
    order: VecDeque<AggregateId>,
    latest: HashMap<AggregateId, Shortlist>,
    closed: bool,
}

impl ShortlistOutbox {
    /// Puts `shortlist` in, replacing one of the same request still waiting.
    pub fn put(&self, shortlist: Shortlist) {
        if let Ok(mut pending) = self.pending.lock() {
            let id = shortlist.request_id.clone();
            if pending.latest.insert(id.clone(), shortlist).is_none() {
                pending.order.push_back(id);
            }
        }
        self.ready.notify_one();
    }

    /// No more shortlists will come; [`ShortlistOutbox::take`] answers `None` once empty.
    pub fn close(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.closed = true;
        }
        self.ready.notify_one();
    }

    /// Everything waiting, once there is something; `None` when closed and empty.
    pub async fn take(&self) -> Option<Vec<Shortlist>> {
        loop {
            {
                let mut pending = self.pending.lock().ok()?;
                if !pending.order.is_empty() {
                    let Pending { order, latest, .. } = &mut *pending;
                    return Some(order.drain(..).filter_map(|id| latest.remove(&id)).collect());
                }
                if pending.closed {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }

    /// How many shortlists are waiting.
    pub fn len(&self) -> usize {
        self.pending.lock().map(|pending| pending.order.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The shortlists live readers follow (server-sent events), one `watch` channel per
/// followed request: it holds the latest shortlist only, so a slow reader skips to the
/// latest and nobody is ever waited for; a request nobody follows costs nothing.
#[derive(Debug, Default)]
pub struct ShortlistFollowers {
    by_request: Mutex<HashMap<AggregateId, watch::Sender<Option<Arc<Shortlist>>>>>,
}

impl ShortlistFollowers {
    /// Follows `request_id`'s shortlist from now on.
    pub fn follow(&self, request_id: &AggregateId) -> watch::Receiver<Option<Arc<Shortlist>>> {
        let Ok(mut by_request) = self.by_request.lock() else {
            return watch::channel(None).1;
        };
        // Forget the requests nobody follows any more, so the map stays as small as
        // the readers are few.
        by_request.retain(|_, sender| sender.receiver_count() > 0);
        by_request.entry(request_id.clone()).or_insert_with(|| watch::channel(None).0).subscribe()
    }

    /// Whether anyone follows `request_id` now.
    fn followed(&self, request_id: &AggregateId) -> bool {
        self.by_request
            .lock()
            .map(|by_request| by_request.get(request_id).is_some_and(|sender| sender.receiver_count() > 0))
            .unwrap_or(false)
    }

    fn put(&self, shortlist: &Shortlist) {
        if let Ok(by_request) = self.by_request.lock()
            && let Some(sender) = by_request.get(&shortlist.request_id)
        {
            sender.send_replace(Some(Arc::new(shortlist.clone())));
        }
    }

    /// Live readers now, over all requests.
    pub fn count(&self) -> usize {
        self.by_request.lock().map(|by_request| by_request.values().map(|s| s.receiver_count()).sum()).unwrap_or(0)
    }
}

/// Where changed shortlists go: the NATS publisher's outbox, when Tafel serves NATS, and
/// the live readers of the requests they follow. Nobody waits for either.
#[derive(Clone, Default)]
pub struct ShortlistSinks {
    pub outbox: Option<Arc<ShortlistOutbox>>,
    pub followers: Arc<ShortlistFollowers>,
}

impl ShortlistSinks {
    pub fn new(outbox: Option<Arc<ShortlistOutbox>>) -> Self {
        Self { outbox, followers: Arc::default() }
    }

    /// Whether anyone takes `request_id`'s changed shortlist (computing it costs).
    fn wanted(&self, request_id: &AggregateId) -> bool {
        self.outbox.is_some() || self.followers.followed(request_id)
    }

    fn put(&self, shortlist: Shortlist) {
        self.followers.put(&shortlist);
        if let Some(outbox) = &self.outbox {
            outbox.put(shortlist);
        }
    }
}

/// Follows the log until it closes; shortlist changes are handed on only for events
/// after `publish_after` (the log as it was at start-up).
///
/// An event that does not fit the views (a broken invariant) stops it, and `health`
/// says why: the service then stops being ready.
///
/// Snapshots are written as `snapshots` says: in the background every so many events,
/// and once more when the log closes (a clean stop).
pub async fn run(
    log: SledLog,
    views: Arc<RwLock<Views>>,
    applied: watch::Sender<u64>,
    shortlists: ShortlistSinks,
    publish_after: u64,
    health: Arc<Health>,
    mut snapshots: Snapshotter,
) {
    let closed = follow(log, views.clone(), applied, &shortlists, publish_after, &health, &mut snapshots).await;
    if let Some(outbox) = shortlists.outbox {
        outbox.close();
    }
    snapshots.finish(views, closed).await;
}

/// Writes snapshots of the views as its [`Policy`] says, one at a time.
///
/// A snapshot is not copied from the live views: copying them took the projection's
/// lock for as long as the copy lasted (a second at half a million events), and every
/// submit waits for the projection. It is built beside them instead ([`build_at`]): the
/// newest snapshot, then the log after it up to the sequence due, replayed as a start
/// does, on a thread of its own at a lower priority. That costs a replay of the events
/// since the last snapshot and, while it lasts, a second copy of the views; the live
/// views never stop for it. Only when there is no snapshot near the end of the log at
/// start-up (none yet, or one a new build of Tafel cannot read) is one written of the
/// live views, before the service is ready, rather than built by a second replay of
/// the whole log.
pub struct Snapshotter {
    policy: Policy,
    /// The log the views follow.
    log: SledLog,
    scoring: ScoringTable,
    /// The position of the newest snapshot started (built or written, or loaded).
    started: u64,
    /// The position of the newest snapshot written (or loaded); the builder sets it.
    written: Arc<AtomicU64>,
    /// Set to stop a build under way (at a stop, or when this is dropped).
    cancel: Arc<AtomicBool>,
    building: Option<std::thread::JoinHandle<()>>,
}

impl Snapshotter {
    /// `loaded_at`: the position of the snapshot the views were loaded from, if any.
    pub fn new(policy: Policy, log: &SledLog, scoring: ScoringTable, loaded_at: u64) -> Self {
        Self {
            policy,
            log: log.clone(),
            scoring,
            started: loaded_at,
            written: Arc::new(AtomicU64::new(loaded_at)),
            cancel: Arc::default(),
            building: None,
        }
    }

    fn due(&self, sequence: u64) -> bool {
        self.policy.dir.is_some() && self.policy.every > 0 && sequence >= self.started.saturating_add(self.policy.every)
    }

    /// At the end of start-up (the views at `sequence`, nobody served yet): writes the
    /// live views when the newest snapshot is more than two intervals behind, so that
    /// no build has to replay (nearly) the whole log again beside them.
    async fn at_start(&mut self, sequence: u64, views: &Arc<RwLock<Views>>) {
        let Some(dir) = self.policy.dir.clone() else { return };
        if self.policy.every == 0 || sequence < self.started.saturating_add(2 * self.policy.every) {
            return;
        }
        self.started = sequence;
        let (views, log, scoring, written) = (views.clone(), self.log.clone(), self.scoring, self.written.clone());
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(views) = views.read()
                && write_logged(&dir, log.identity(), &views, scoring)
            {
                written.store(views.last_sequence(), Ordering::Release);
            }
        })
        .await;
    }

    /// Starts building a snapshot when one is due at `sequence` and none is being
    /// built. Never waits for anything.
    fn maybe_start(&mut self, sequence: u64) {
        let Some(dir) = &self.policy.dir else { return };
        if self.building.as_ref().is_some_and(|building| !building.is_finished()) {
            return;
        }
        // A build that failed is tried again `every` events after it started; the stop
        // goes by what was written.
        if !self.due(sequence) {
            return;
        }
        self.started = sequence;
        let (dir, log, scoring) = (dir.clone(), self.log.clone(), self.scoring);
        let (written, cancel) = (self.written.clone(), self.cancel.clone());
        let spawned = std::thread::Builder::new().name("tafel-snapshot".into()).spawn(move || {
            let started = std::time::Instant::now();
            match build_at(&dir, &log, sequence, scoring, &cancel) {
                Ok(views) => {
                    let built_ms = started.elapsed().as_millis() as u64;
                    tracing::debug!(sequence, built_ms, "snapshot built beside the views");
                    if write_logged(&dir, log.identity(), &views, scoring) {
                        written.store(sequence, Ordering::Release);
                    }
                }
                Err(_) if cancel.load(Ordering::Relaxed) => {}
                Err(cause) => warn!(%cause, sequence, "snapshot not built"),
            }
        });
        match spawned {
            Ok(handle) => self.building = Some(handle),
            Err(cause) => warn!(%cause, "cannot start a thread to build a snapshot"),
        }
    }

    /// At the end: stops a build under way (the stop's own snapshot supersedes it) and,
    /// when the log closed (a clean stop), writes one of the views as they stand,
    /// unless one stands there.
    async fn finish(mut self, views: Arc<RwLock<Views>>, closed: bool) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(building) = self.building.take() {
            let _ = tokio::task::spawn_blocking(move || building.join()).await;
        }
        let Some(dir) = self.policy.dir.clone() else { return };
        if !closed {
            return;
        }
        let (written, log, scoring) = (self.written.load(Ordering::Acquire), self.log.clone(), self.scoring);
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(views) = views.read()
                && views.last_sequence() > written
            {
                write_logged(&dir, log.identity(), &views, scoring);
            }
        })
        .await;
    }
}

/// A build under way stops soon after its snapshotter goes (and with it its handle on
/// the log).
impl Drop for Snapshotter {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// The views as they stood at `through`, built as a start builds them: from the newest
/// snapshot at or before it in `dir` (or from nothing), then the log's events after it,
/// replayed hushed. Blocking. The log is read on the calling thread, the views are
/// built on one of lower priority: sled's reads take a lock its writer needs too, and a
/// reader of low priority holding it would hold up every append. Ends early, with an
/// error, once `cancel` is set.
pub fn build_at(
    dir: &std::path::Path,
    log: &SledLog,
    through: u64,
    scoring: ScoringTable,
    cancel: &AtomicBool,
) -> Result<Views, String> {
    use std::sync::mpsc;
    std::thread::scope(|scope| {
        let (start, from) = mpsc::sync_channel::<u64>(1);
        let (pages, incoming) = mpsc::sync_channel::<Vec<tafel_store::RecordedEvent>>(2);
        let builder = std::thread::Builder::new().name("tafel-snapshot-build".into()).spawn_scoped(scope, move || {
            lower_this_threads_priority();
            let mut views = snapshot::load_at_most(dir, log, scoring, through)
                .unwrap_or_else(|| Views::new(Matcher::new(scoring).keeping_history()));
            let _ = start.send(views.last_sequence() + 1);
            views.matcher.hush();
            for page in incoming {
                for record in page {
                    if cancel.load(Ordering::Relaxed) {
                        return Err("stopped".to_owned());
                    }
                    let event = stored_event(&record)?;
                    views.apply(&event, &EventData::of_stored(&event)?)?;
                    views.last_event = Some(EventMark::of(&record));
                }
            }
            views.matcher.speak();
            if views.last_sequence() != through {
                return Err(format!("the log ends at {} before {through}", views.last_sequence()));
            }
            Ok(views)
        });
        let builder = builder.map_err(|cause| format!("cannot start a thread to build a snapshot: {cause}"))?;
        let mut read = Ok(());
        if let Ok(mut next) = from.recv() {
            while next <= through && !cancel.load(Ordering::Relaxed) {
                let page = (through - next + 1).min(crate::stored::READ_PAGE_EVENTS as u64) as usize;
                match log.read_from(next, page) {
                    Ok(records) if records.is_empty() => break,
                    Ok(records) => {
                        next += records.len() as u64;
                        if pages.send(records).is_err() {
                            break;
                        }
                    }
                    Err(cause) => {
                        read = Err(cause.to_string());
                        break;
                    }
                }
            }
        }
        drop(pages);
        let built = builder.join().unwrap_or_else(|_| Err("the snapshot builder panicked".to_owned()));
        read.and(built)
    })
}

/// Makes the calling thread (only it) yield to the rest of Tafel: a snapshot can wait,
/// a submit should not.
fn lower_this_threads_priority() {
    // SAFETY: setpriority with PRIO_PROCESS and a thread id changes that thread's nice
    // value alone on Linux (threads it starts later inherit it; this one starts none).
    #[cfg(target_os = "linux")]
    unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, 19);
    }
}

/// Writes a snapshot of `views`, unless they are marked failed; whether it did.
fn write_logged(dir: &std::path::Path, log: &str, views: &Views, scoring: ScoringTable) -> bool {
    if views.failed {
        return false;
    }
    let Some(event) = views.last_event.as_ref() else { return false };
    let started = std::time::Instant::now();
    match snapshot::write(dir, log, views, event, scoring) {
        Ok(path) => {
            info!(
                path = %path.display(),
                sequence = views.last_sequence(),
                ms = started.elapsed().as_millis() as u64,
                "snapshot written"
            );
            true
        }
        Err(cause) => {
            warn!(%cause, sequence = views.last_sequence(), "snapshot not written");
            false
        }
    }
}

/// Follows the log; returns whether it ended because the log closed (and not because
/// something went wrong).
async fn follow(
    log: SledLog,
    views: Arc<RwLock<Views>>,
    applied: watch::Sender<u64>,
    shortlists: &ShortlistSinks,
    publish_after: u64,
    health: &Health,
    snapshots: &mut Snapshotter,
) -> bool {
    let from = views.read().map(|v| v.last_sequence() + 1).unwrap_or(1);
    // What was there at start-up is replayed without working out which shortlists
    // changed on the way (nobody was told, nobody waits); from its end on, it is.
    if from <= publish_after
        && let Ok(mut views) = views.write()
    {
        views.matcher.hush();
    }
    let mut subscription = log.subscribe(from);
    loop {
        let record = match subscription.next().await {
            Ok(record) => record,
            Err(tafel_store::ReadError::Closed) => return true,
            Err(cause) => {
                error!(%cause, "the views cannot follow the log");
                health.stopped("views", format!("cannot follow the log: {cause}"));
                return false;
            }
        };
        let outcome = stored_event(&record).and_then(|event| {
            let data = EventData::of_stored(&event)?;
            let mut views = views.write().map_err(|_| "the views are poisoned".to_owned())?;
            let overdrafts = views.world.overdrafts().len();
            // Marked before the event goes in, cleared once all of it is: an event that
            // does not fit leaves the views marked, so no snapshot is taken of them.
            views.failed = true;
            let changed = views.apply(&event, &data)?;
            for overdraft in &views.world.overdrafts()[overdrafts..] {
                error!(%overdraft, "the log holds a commitment over a mandate's budget (written before contract 1.1)");
            }
            if event.meta.sequence == publish_after {
                views.matcher.speak();
            }
            assert_eq!(views.last_sequence(), record.sequence, "the views stand at the event just applied");
            views.last_event = Some(EventMark::of(&record));
            views.failed = false;
            // Replaying what was there at start-up changes nothing anyone has not seen.
            if event.meta.sequence > publish_after {
                let wanted = changed.iter().filter(|id| shortlists.wanted(id));
                for shortlist in wanted.filter_map(|id| views.matcher.shortlist(id, DEFAULT_LIMIT)) {
                    shortlists.put(shortlist);
                }
            }
            Ok(views.last_sequence())
        });
        match outcome {
            Ok(sequence) => {
                // Everyone waiting for the views (every submit in flight waits for them
                // before deciding) is woken once per page the subscription read, not
                // once per event: under load that is hundreds of wake-ups fewer per
                // event. The page's events follow at once; the last one tells.
                if sequence == publish_after {
                    // Before anyone is served: the start-up's one snapshot, if due.
                    snapshots.at_start(sequence, &views).await;
                }
                if subscription.buffered() == 0 {
                    applied.send_replace(sequence);
                }
                if sequence >= publish_after {
                    snapshots.maybe_start(sequence);
                }
            }
            Err(cause) => {
                error!(%cause, sequence = record.sequence, "an event does not fit the views");
                health.stopped("views", format!("event {} does not fit the views: {cause}", record.sequence));
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shortlist(request: &str, as_of: u64) -> Shortlist {
        Shortlist {
            request_id: AggregateId::parse(request).unwrap(),
            as_of,
            entries: Vec::new(),
            near_misses: Vec::new(),
            consortia: Vec::new(),
        }
    }

    #[tokio::test]
    async fn the_outbox_keeps_the_latest_shortlist_of_each_request_in_order() {
        let outbox = ShortlistOutbox::default();
        for as_of in 1..=1000 {
            outbox.put(shortlist("r1", as_of));
            outbox.put(shortlist(if as_of % 2 == 0 { "r2" } else { "r3" }, as_of));
        }
        assert_eq!(outbox.len(), 3, "a publisher that fell behind holds one shortlist per request");
        let taken = outbox.take().await.unwrap();
        let seen: Vec<(String, u64)> = taken.iter().map(|s| (s.request_id.to_string(), s.as_of)).collect();
        assert_eq!(seen, vec![("r1".into(), 1000), ("r3".into(), 999), ("r2".into(), 1000)]);
        outbox.close();
        assert!(outbox.take().await.is_none());
    }
}
