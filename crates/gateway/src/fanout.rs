//! Fan-out: every durable event, in sequence order, on `tafel.events.<aggregate>.<id>`.
//!
//! Driven by the log's subscription, not by the submit path, so the order holds under
//! concurrent submits. How far fan-out got is kept in `<data>/fanout-cursor`, saved
//! (and fsynced, with its directory) only after the NATS server has confirmed
//! everything before it: after a crash an event may be published again, never skipped.
//!
//! "Confirmed" means the server said so. A local flush is not enough: a reconnect drops
//! the client's write buffer while a pending flush still completes on the new
//! connection. So fan-out publishes a marker to a subject only it listens on and waits
//! for the marker to come back: NATS handles one connection's messages in order, so the
//! marker's return proves the server took every event before it, on that connection.
//! The client's count of connections, taken before the first unconfirmed publish and
//! again after the marker returns, says whether it was the same connection; if not,
//! fan-out rewinds to the saved cursor and publishes again.
//!
//! The decisions are [`Progress`]'s methods, free of I/O; `tests/fanout_model.rs`
//! model-checks them against every interleaving with the NATS client and crashes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tafel_store::{EventLog, SledLog, Subscription};
use tokio::sync::watch;
use tracing::{error, info};

use tafel_service::health::{Health, RepeatedWarning};
use tafel_service::stored::stored_event;

/// Where fan-out sends its confirmation markers to itself:
/// `tafel.fanout.confirm.<unique>`.
pub const FANOUT_CONFIRM_PREFIX: &str = "tafel.fanout.confirm";
/// The cursor file's name in the data directory.
pub const CURSOR_FILE: &str = "fanout-cursor";
/// Most events published before the cursor is confirmed and saved.
pub const MAX_UNCONFIRMED_EVENTS: u64 = 256;
/// Longest time between a publish and the confirmation of the cursor.
pub const CONFIRM_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait for the server to confirm what was published.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait to hand one event to the NATS client (its buffer is full while the
/// server is away); then fan-out checks whether it should stop, and tries again.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);
/// Wait before publishing again after the NATS client refused a message.
const RETRY_DELAY: Duration = Duration::from_millis(200);

pub fn read_cursor(dir: &Path) -> std::io::Result<u64> {
    match std::fs::read_to_string(dir.join(CURSOR_FILE)) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "fanout-cursor is unreadable")),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error),
    }
}

/// Replaces the cursor atomically and durably: temporary file, fsync, rename, fsync of
/// the directory. Blocking.
fn write_cursor(dir: &Path, sequence: u64) -> std::io::Result<()> {
    use std::io::Write;
    let temporary = dir.join(format!("{CURSOR_FILE}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    writeln!(file, "{sequence}")?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(CURSOR_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// The subject an event is fanned out on.
pub fn events_subject(stream: &str) -> String {
    // Streams are `<aggregate>/<id>`, and ids hold no dots.
    format!("tafel.events.{}", stream.replacen('/', ".", 1))
}

/// Round trips through the server on the client's own connection.
struct Confirmer {
    subject: String,
    markers: async_nats::Subscriber,
    next_marker: u64,
}

impl Confirmer {
    async fn new(client: &async_nats::Client) -> Result<Self, async_nats::SubscribeError> {
        // Not under `_INBOX`: Tafel's NATS user may read only its own subjects, and no
        // principal may publish under `tafel.fanout` (deploy/nats-server.conf).
        let nuid = client.new_inbox();
        let subject = format!("{FANOUT_CONFIRM_PREFIX}.{}", nuid.rsplit('.').next().unwrap_or("0"));
        let markers = client.subscribe(subject.clone()).await?;
        Ok(Self { subject, markers, next_marker: 0 })
    }

    /// Publishes a marker and waits for it to come back through the server, for at most
    /// [`CONFIRM_TIMEOUT`] in all: handing the marker to a client whose queue is full
    /// (the server away) waits too, and must not hold up a stop.
    async fn round_trip(&mut self, client: &async_nats::Client) -> Result<(), String> {
        self.next_marker += 1;
        let marker = self.next_marker.to_string();
        let (subject, markers) = (self.subject.clone(), &mut self.markers);
        let returned = async {
            client.publish(subject, Bytes::from(marker.clone())).await.map_err(|e| e.to_string())?;
            while let Some(message) = markers.next().await {
                // Markers of earlier, timed-out round trips may still arrive.
                if message.payload.as_ref() == marker.as_bytes() {
                    return Ok(());
                }
            }
            Err("the marker subscription ended".to_owned())
        };
        tokio::time::timeout(CONFIRM_TIMEOUT, returned).await.map_err(|_| "no answer in time".to_owned())?
    }
}

/// Where fan-out stands: what it published, what is saved as confirmed, and which
/// connection the unconfirmed events went out on. Every decision of the protocol is a
/// method here, free of I/O, so that the model checker (`tests/fanout_model.rs`) drives
/// the very code [`run`] does through every interleaving with NATS and crashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Progress {
    published: u64,
    saved: u64,
    /// The client's connection count when the first unconfirmed event was published.
    connection: Option<u64>,
}

/// What a confirmed round trip leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Confirmed {
    /// The connection changed under unconfirmed events: publish again from after this
    /// sequence (the saved cursor).
    Rewind(u64),
    /// Everything published reached the server: save this sequence as the cursor.
    Save(u64),
}

impl Progress {
    /// Fan-out starting from the saved cursor.
    pub fn from_cursor(saved: u64) -> Self {
        Self { published: saved, saved, connection: None }
    }

    /// The last sequence handed to the client.
    pub fn published(&self) -> u64 {
        self.published
    }

    /// The sequence saved as confirmed.
    pub fn saved(&self) -> u64 {
        self.saved
    }

    /// Whether anything published waits for confirmation.
    pub fn unconfirmed(&self) -> bool {
        self.published > self.saved
    }

    /// Whether so much waits for confirmation that fan-out confirms before going on.
    pub fn confirmation_due(&self) -> bool {
        self.published - self.saved >= MAX_UNCONFIRMED_EVENTS
    }

    /// Never publish past events that may have been lost with a connection: once it
    /// changed (or is down), confirm first, and go back if need be, so that subscribers
    /// get the events again in order.
    pub fn must_confirm_before_publishing(&self, connects: u64, connected: bool) -> bool {
        self.connection.is_some_and(|connection| connection != connects) || !connected
    }

    /// `sequence` was handed to the client while it had made `connects` connections.
    pub fn publish(&mut self, sequence: u64, connects: u64) {
        if self.connection.is_none() {
            self.connection = Some(connects);
        }
        self.published = sequence;
    }

    /// A marker published after every unconfirmed event came back, and the client has
    /// now made `connects` connections.
    pub fn confirmed(&mut self, connects: u64) -> Confirmed {
        if self.connection != Some(connects) {
            self.published = self.saved;
            self.connection = None;
            return Confirmed::Rewind(self.saved);
        }
        Confirmed::Save(self.published)
    }

    /// The cursor file now durably says `sequence`.
    pub fn save(&mut self, sequence: u64) {
        self.saved = sequence;
        self.connection = None;
    }
}

fn connections(client: &async_nats::Client) -> u64 {
    client.statistics().connects.load(Ordering::Relaxed)
}

fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// Publishes from the saved cursor on, until `stop` turns true; then confirms and saves
/// how far it got, if the server answers in time.
pub async fn run(
    log: SledLog,
    client: async_nats::Client,
    dir: PathBuf,
    mut stop: watch::Receiver<bool>,
    health: Arc<Health>,
) {
    let saved = match read_cursor(&dir) {
        Ok(sequence) => sequence,
        Err(cause) => {
            error!(%cause, "cannot read the fan-out cursor; fanning out from the start");
            0
        }
    };
    let mut confirmer = match Confirmer::new(&client).await {
        Ok(confirmer) => confirmer,
        Err(cause) => {
            error!(%cause, "fan-out cannot listen for its confirmations");
            health.stopped("fan-out", format!("cannot listen for confirmations: {cause}"));
            return;
        }
    };
    let mut progress = Progress::from_cursor(saved);
    let mut subscription = log.subscribe(saved + 1);
    let mut confirm = tokio::time::interval(CONFIRM_INTERVAL);
    // A confirmation that waited for its timeout must not be followed by a burst of
    // them, which would starve publishing.
    confirm.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut publish_failed = RepeatedWarning::new("fan-out cannot publish; retrying");
    let mut confirm_failed = RepeatedWarning::new("fan-out is not confirmed; will retry");
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = confirm.tick(), if progress.unconfirmed() => {
                if let Some(rewind) = confirm_and_save(&client, &mut confirmer, &dir, &mut progress, &mut confirm_failed).await {
                    subscription = log.subscribe(rewind + 1);
                }
            }
            next = subscription.next() => {
                let record = match next {
                    Ok(record) => record,
                    Err(tafel_store::ReadError::Closed) => break,
                    Err(cause) => {
                        error!(%cause, "fan-out stops following the log");
                        health.stopped("fan-out", format!("cannot follow the log: {cause}"));
                        break;
                    }
                };
                let body = match stored_event(&record).and_then(|e| serde_json::to_vec(&e).map_err(|e| e.to_string())) {
                    Ok(body) => Bytes::from(body),
                    Err(cause) => {
                        error!(%cause, sequence = record.sequence, "cannot fan out an event");
                        health.stopped("fan-out", format!("cannot fan out event {}: {cause}", record.sequence));
                        break;
                    }
                };
                if progress.must_confirm_before_publishing(connections(&client), connected(&client)) {
                    match confirm_and_save(&client, &mut confirmer, &dir, &mut progress, &mut confirm_failed).await {
                        Some(rewind) => {
                            subscription = log.subscribe(rewind + 1);
                            continue;
                        }
                        None if progress.unconfirmed() => {
                            // Not confirmed (the server is away): try this event again.
                            subscription = log.subscribe(progress.published() + 1);
                            tokio::time::sleep(RETRY_DELAY).await;
                            continue;
                        }
                        None => {}
                    }
                }
                let connects = connections(&client);
                let subject = events_subject(&record.stream);
                loop {
                    match tokio::time::timeout(PUBLISH_TIMEOUT, client.publish(subject.clone(), body.clone())).await {
                        Ok(Ok(())) => {
                            publish_failed.ended();
                            break;
                        }
                        Ok(Err(cause)) => publish_failed.happened(&cause),
                        Err(_) => publish_failed.happened(&"the NATS client's buffer stayed full"),
                    }
                    if *stop.borrow() {
                        info!(sequence = record.sequence, "stopping with fan-out unfinished; it goes on from the saved cursor next time");
                        return;
                    }
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                progress.publish(record.sequence, connects);
                if progress.confirmation_due()
                    && let Some(rewind) = confirm_and_save(&client, &mut confirmer, &dir, &mut progress, &mut confirm_failed).await
                {
                    subscription = log.subscribe(rewind + 1);
                }
            }
        }
    }
    if progress.unconfirmed() {
        confirm_and_save(&client, &mut confirmer, &dir, &mut progress, &mut confirm_failed).await;
    }
}

/// Waits for the server to confirm everything published so far, then saves the cursor.
/// Returns the sequence to rewind to when the events may not have reached the server
/// (the connection changed under them).
async fn confirm_and_save(
    client: &async_nats::Client,
    confirmer: &mut Confirmer,
    dir: &Path,
    progress: &mut Progress,
    failed: &mut RepeatedWarning,
) -> Option<u64> {
    if let Err(cause) = confirmer.round_trip(client).await {
        failed.happened(&cause);
        return None;
    }
    let published = match progress.confirmed(connections(client)) {
        Confirmed::Rewind(saved) => {
            info!(from = saved + 1, "NATS reconnected under unconfirmed fan-out; publishing again from the cursor");
            return Some(saved);
        }
        Confirmed::Save(published) => published,
    };
    let directory = dir.to_path_buf();
    match tokio::task::spawn_blocking(move || write_cursor(&directory, published)).await {
        Ok(Ok(())) => {
            failed.ended();
            progress.save(published);
        }
        Ok(Err(cause)) => failed.happened(&format!("cannot save the fan-out cursor: {cause}")),
        Err(cause) => failed.happened(&cause),
    }
    None
}

/// The `tafel.shortlist.updated` CloudEvent of a changed shortlist (contract section 4):
/// derived, never stored, so without the stored-event extensions.
pub fn shortlist_updated(shortlist: &tafel_contract::shortlist::Shortlist) -> serde_json::Value {
    serde_json::json!({
        "specversion": "1.0",
        "id": format!("shortlist-{}-{}", shortlist.request_id, shortlist.as_of),
        "source": "/tafel/matcher",
        "type": "tafel.shortlist.updated",
        "subject": shortlist.request_id,
        "time": tafel_contract::envelope::format_recorded_at(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        ),
        "datacontenttype": "application/json",
        "data": shortlist,
    })
}

/// Publishes each changed shortlist as a `tafel.shortlist.updated` event on
/// `tafel.shortlist.<request-id>` (never stored, never on `tafel.events`), until the
/// projection closes the outbox. A slow server holds back only this task, and only for
/// [`PUBLISH_TIMEOUT`] per update: one the client cannot take by then (its queue full
/// while the server is away) is dropped, as NATS drops what a subscriber misses; the
/// request's next change publishes its shortlist anew.
pub async fn publish_shortlists(client: async_nats::Client, outbox: Arc<tafel_service::projection::ShortlistOutbox>) {
    let mut failed = RepeatedWarning::new("cannot publish a shortlist update");
    while let Some(shortlists) = outbox.take().await {
        for shortlist in shortlists {
            let subject = format!("tafel.shortlist.{}", shortlist.request_id);
            match serde_json::to_vec(&shortlist_updated(&shortlist)) {
                Ok(body) => {
                    match tokio::time::timeout(PUBLISH_TIMEOUT, client.publish(subject, Bytes::from(body))).await {
                        Ok(Ok(())) => {
                            failed.ended();
                            metrics::counter!(crate::telemetry::SHORTLISTS_PUBLISHED).increment(1);
                        }
                        Ok(Err(cause)) => failed.happened(&cause),
                        Err(_) => failed.happened(&"the NATS client's buffer stayed full; an update was dropped"),
                    }
                }
                Err(cause) => error!(%cause, "cannot encode a shortlist update"),
            }
        }
    }
}
