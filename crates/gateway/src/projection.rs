//! Keeps the [`World`] current: follows the log from where the world stands and folds
//! each durable event in, reporting how far it got.

use std::sync::{Arc, RwLock};

use tafel_domain::World;
use tafel_store::{EventLog, SledLog, Subscription};
use tokio::sync::watch;
use tracing::error;

use crate::service::stored_event;

/// Follows the log until it closes or an event does not fit the world (a broken
/// invariant, logged; the service then stops being ready, as `applied` stops moving).
pub async fn run(log: SledLog, world: Arc<RwLock<World>>, applied: watch::Sender<u64>) {
    let from = world.read().map(|w| w.last_sequence() + 1).unwrap_or(1);
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
        let applied_to = stored_event(&record).and_then(|event| {
            let mut world = world.write().map_err(|_| "the views are poisoned".to_owned())?;
            world.apply(&event)?;
            Ok(world.last_sequence())
        });
        match applied_to {
            Ok(sequence) => {
                applied.send_replace(sequence);
            }
            Err(cause) => {
                error!(%cause, sequence = record.sequence, "an event does not fit the views");
                return;
            }
        }
    }
}
