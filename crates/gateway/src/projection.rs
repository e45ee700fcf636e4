//! Keeps the views current: follows the log from where they stand and folds each
//! durable event into the [`World`] (aggregates) and the [`Matcher`] (shortlists) under
//! one lock, so every reader sees both at the same log position. Shortlists that an
//! event really changed are handed to `shortlists` (the NATS publisher), computed at
//! that event's position.

use std::sync::{Arc, RwLock};

use tafel_contract::data::EventData;
use tafel_contract::shortlist::Shortlist;
use tafel_domain::World;
use tafel_matcher::{DEFAULT_LIMIT, Matcher};
use tafel_store::{EventLog, SledLog, Subscription};
use tokio::sync::{mpsc, watch};
use tracing::error;

use crate::stored::stored_event;

/// Most changed shortlists waiting for the publisher before the projection waits.
pub const MAX_PENDING_SHORTLISTS: usize = 4096;

/// Everything derived from the log that requests are answered from.
pub struct Views {
    pub world: World,
    pub matcher: Matcher,
}

impl Views {
    pub fn new(matcher: Matcher) -> Self {
        Self { world: World::default(), matcher }
    }

    pub fn last_sequence(&self) -> u64 {
        self.world.last_sequence()
    }
}

/// Follows the log until it closes; shortlist changes are handed on only for events
/// after `publish_after` (the log as it was at start-up).
///
/// It follows the log until it closes or an event does not fit the views (a broken
/// invariant, logged; the service then stops being ready, as `applied` stops moving).
pub async fn run(
    log: SledLog,
    views: Arc<RwLock<Views>>,
    applied: watch::Sender<u64>,
    shortlists: Option<mpsc::Sender<Shortlist>>,
    publish_after: u64,
) {
    let from = views.read().map(|v| v.last_sequence() + 1).unwrap_or(1);
    let mut subscription = log.subscribe(from);
    loop {
        let record = match subscription.next().await {
            Ok(record) => record,
            Err(tafel_store::ReadError::Closed) => return,
            Err(cause) => {
                error!(%cause, "the views cannot follow the log");
                return;
            }
        };
        let outcome = stored_event(&record).and_then(|event| {
            let envelope = &event.envelope;
            let data = EventData::parse(envelope.event_type, &envelope.subject, &envelope.data)
                .map_err(|refusal| format!("event {} no longer parses: {refusal}", event.meta.sequence))?;
            let mut views = views.write().map_err(|_| "the views are poisoned".to_owned())?;
            views.world.apply_data(&event, data.clone())?;
            let changed = views.matcher.apply_parsed(&event, &data);
            // Replaying what was there at start-up changes nothing anyone has not seen.
            let updated: Vec<Shortlist> = if shortlists.is_some() && event.meta.sequence > publish_after {
                changed.iter().filter_map(|id| views.matcher.shortlist(id, DEFAULT_LIMIT)).collect()
            } else {
                Vec::new()
            };
            Ok((views.last_sequence(), updated))
        });
        match outcome {
            Ok((sequence, updated)) => {
                applied.send_replace(sequence);
                if let Some(sender) = &shortlists {
                    for shortlist in updated {
                        if sender.send(shortlist).await.is_err() {
                            break;
                        }
                    }
                }
            }
            Err(cause) => {
                error!(%cause, sequence = record.sequence, "an event does not fit the views");
                return;
            }
        }
    }
}
