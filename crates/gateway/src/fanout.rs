//! Fan-out: every durable event, in sequence order, on `tafel.events.<aggregate>.<id>`.
//!
//! Driven by the log's subscription, not by the submit path, so the order holds under
//! concurrent submits. How far fan-out got is kept in `<data>/fanout-cursor`, written
//! only after the NATS server has confirmed everything before it (a flush round trip):
//! after a crash an event may be published again, never skipped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tafel_store::{EventLog, SledLog, Subscription};
use tokio::sync::watch;
use tracing::{error, warn};

use crate::stored::stored_event;

/// The cursor file's name in the data directory.
pub const CURSOR_FILE: &str = "fanout-cursor";
/// Most events published before the cursor is confirmed and saved.
pub const MAX_UNCONFIRMED_EVENTS: u64 = 256;
/// Longest time between a publish and the confirmation of the cursor.
pub const CONFIRM_INTERVAL: Duration = Duration::from_millis(200);
/// Longest wait for the server to confirm what was published.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
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

fn write_cursor(dir: &Path, sequence: u64) -> std::io::Result<()> {
    let temporary = dir.join(format!("{CURSOR_FILE}.tmp"));
    std::fs::write(&temporary, format!("{sequence}\n"))?;
    std::fs::rename(&temporary, dir.join(CURSOR_FILE))
}

/// The subject an event is fanned out on.
pub fn events_subject(stream: &str) -> String {
    // Streams are `<aggregate>/<id>`, and ids hold no dots.
    format!("tafel.events.{}", stream.replacen('/', ".", 1))
}

/// Publishes from the saved cursor on, until `stop` turns true; then confirms and saves
/// how far it got.
pub async fn run(log: SledLog, client: async_nats::Client, dir: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut published = match read_cursor(&dir) {
        Ok(sequence) => sequence,
        Err(cause) => {
            error!(%cause, "cannot read the fan-out cursor; fanning out from the start");
            0
        }
    };
    let mut saved = published;
    let mut subscription = log.subscribe(published + 1);
    let mut confirm = tokio::time::interval(CONFIRM_INTERVAL);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = confirm.tick(), if published > saved => {
                saved = confirm_and_save(&client, &dir, published, saved).await;
            }
            next = subscription.next() => {
                let record = match next {
                    Ok(record) => record,
                    Err(cause) => {
                        warn!(%cause, "fan-out stops following the log");
                        break;
                    }
                };
                let body = match stored_event(&record).and_then(|e| serde_json::to_vec(&e).map_err(|e| e.to_string())) {
                    Ok(body) => Bytes::from(body),
                    Err(cause) => {
                        error!(%cause, sequence = record.sequence, "cannot fan out an event");
                        break;
                    }
                };
                let subject = events_subject(&record.stream);
                while let Err(cause) = client.publish(subject.clone(), body.clone()).await {
                    warn!(%cause, "fan-out publish failed; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                published = record.sequence;
                if published - saved >= MAX_UNCONFIRMED_EVENTS {
                    saved = confirm_and_save(&client, &dir, published, saved).await;
                }
            }
        }
    }
    if published > saved {
        confirm_and_save(&client, &dir, published, saved).await;
    }
}

/// Waits for the server to confirm everything published so far, then saves the cursor.
/// Returns the cursor now saved.
async fn confirm_and_save(client: &async_nats::Client, dir: &Path, published: u64, saved: u64) -> u64 {
    match tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(cause)) => {
            warn!(%cause, "the NATS server did not confirm fan-out; will retry");
            return saved;
        }
        Err(_) => {
            warn!("the NATS server did not confirm fan-out in time; will retry");
            return saved;
        }
    }
    match write_cursor(dir, published) {
        Ok(()) => published,
        Err(cause) => {
            error!(%cause, "cannot save the fan-out cursor");
            saved
        }
    }
}

/// Publishes each changed shortlist as a `tafel.shortlist.updated` event on
/// `tafel.shortlist.<request-id>` (never stored, never on `tafel.events`), until the
/// projection closes the channel.
pub async fn publish_shortlists(
    client: async_nats::Client,
    mut shortlists: tokio::sync::mpsc::Receiver<tafel_contract::shortlist::Shortlist>,
) {
    while let Some(shortlist) = shortlists.recv().await {
        let subject = format!("tafel.shortlist.{}", shortlist.request_id);
        let event = serde_json::json!({
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
        });
        match serde_json::to_vec(&event) {
            Ok(body) => {
                if let Err(cause) = client.publish(subject, Bytes::from(body)).await {
                    warn!(%cause, "cannot publish a shortlist update");
                }
            }
            Err(cause) => error!(%cause, "cannot encode a shortlist update"),
        }
    }
}
