//! The submit pipeline (contract section 3). Step 1 runs in `tafel-contract`, step 2
//! (principal and role) here, step 3 (duplicate or conflict) against the log's id index,
//! step 4 in `tafel-contract`, steps 5-7 in [`tafel_domain::World::decide`], then the
//! append.
//!
//! The decision is made on the views as of the log's last durable event. The append
//! carries the decision's consistency boundary: exactly the version of the aggregate it
//! appends to, and no event on any other aggregate it read after the position it was
//! made at. When either has moved, the log refuses and the submit is decided again on
//! the new state (at most [`MAX_DECIDE_ATTEMPTS`] times), never appended on the old one.

use tafel_contract::reply::{ErrorCode, Refusal, SubmitReply};
use tafel_contract::{Envelope, EventData, EventType, SubmitRoute, parse_envelope};
use tafel_store::{AppendBatch, AppendCondition, AppendError, EventLog, ExpectedVersion, IdLookup, NewEvent};
use tracing::warn;

use super::{MAX_DECIDE_ATTEMPTS, Service, internal};
use crate::telemetry;

impl Service {
    /// Handles one submitted event and returns the contract's reply.
    pub async fn submit(&self, raw: &[u8], route: &SubmitRoute) -> SubmitReply {
        let started = std::time::Instant::now();
        let (reply, event_type) = self.submit_inner(raw, route).await;
        let result = match &reply {
            SubmitReply::Accepted { duplicate: true, .. } => "duplicate",
            SubmitReply::Accepted { .. } => "accepted",
            SubmitReply::Refused { error, .. } => {
                metrics::counter!(telemetry::REFUSALS, "code" => error.code.as_str()).increment(1);
                "refused"
            }
        };
        let event_type = event_type.map_or("unknown", EventType::as_str);
        metrics::counter!(telemetry::SUBMITS, "type" => event_type, "result" => result).increment(1);
        metrics::histogram!(telemetry::SUBMIT_SECONDS).record(started.elapsed().as_secs_f64());
        reply
    }

    /// The reply, and the event's type once step 1 has read it.
    async fn submit_inner(&self, raw: &[u8], route: &SubmitRoute) -> (SubmitReply, Option<EventType>) {
        // Before anything costs: a known principal over its share is told to wait.
        if let Some(actor) = self.principals().actor(&route.principal)
            && let Err(refusal) = self.limiter.take(&actor.id)
        {
            return (SubmitReply::refused(None, refusal), None);
        }
        // Step 1.
        let envelope = match parse_envelope(raw, route) {
            Ok(envelope) => envelope,
            Err(refusal) => return (SubmitReply::refused(id_as_sent(raw), refusal), None),
        };
        let event_type = envelope.event_type;
        (self.decide_and_append(envelope, route).await, Some(event_type))
    }

    /// Steps 2-7 and the append, for an event that passed step 1.
    async fn decide_and_append(&self, envelope: Envelope, route: &SubmitRoute) -> SubmitReply {
        let refused = |refusal: Refusal| SubmitReply::refused(Some(envelope.id.to_string()), refusal);

        // Step 2.
        let Some(actor) = self.principals().actor(&route.principal) else {
            return refused(Refusal::new(ErrorCode::Forbidden, format!("unknown principal {:?}", route.principal)));
        };
        if let Err(refusal) = actor.may_publish(envelope.event_type) {
            return refused(refusal);
        }

        // Step 3: a sled read, so off the async runtime.
        let identity = envelope.identity(&actor.id);
        if let Some(reply) = self.known_id(&envelope, &identity).await {
            return reply;
        }

        // Step 4.
        let data = match EventData::parse(envelope.event_type, &envelope.subject, &envelope.data) {
            Ok(data) => data,
            Err(refusal) => return refused(refusal),
        };

        // Steps 5-7, then the append; again if what the decision read has moved on.
        let payload = match serde_json::to_vec(&envelope) {
            Ok(payload) => payload,
            Err(cause) => return refused(internal(&cause)),
        };
        let mut synced = false;
        let started = std::time::Instant::now();
        let mut attempts = 0;
        // In a cluster a decision over several aggregates holds only if nothing at all was
        // appended meanwhile, so under load it takes more attempts: there it may go on for
        // a time rather than a count (each attempt waits for the log to move).
        while attempts < MAX_DECIDE_ATTEMPTS || (self.log.is_cluster() && started.elapsed() < CLUSTER_DECIDE_TIME) {
            attempts += 1;
            if let Err(refusal) = self.catch_up().await {
                return refused(refusal);
            }
            let decision = match self.views() {
                Ok(views) => views.world.decide(&actor, &envelope, &data),
                Err(refusal) => return refused(refusal),
            };
            let decision = match decision {
                Ok(decision) => decision,
                // In a cluster, what the refusal rests on may be this node's copy
                // lagging (what the client saw was appended through another node; this
                // very event was, and is resent): catch up with the cluster's log once,
                // look the id up again and decide again.
                Err(refusal) if !synced && self.log.is_cluster() => {
                    synced = true;
                    if let Err(cause) = self.log.sync(CLUSTER_SYNC_TIMEOUT).await {
                        // The refusal stands as of this node's copy.
                        warn!(%cause, "could not catch up with the cluster's log");
                        return refused(refusal);
                    }
                    if let Some(reply) = self.known_id(&envelope, &identity).await {
                        return reply;
                    }
                    continue;
                }
                Err(refusal) => return refused(refusal),
            };
            let batch = AppendBatch {
                stream: decision.stream,
                expected: ExpectedVersion::Exactly(decision.version),
                events: vec![NewEvent {
                    id: envelope.id.to_string(),
                    principal: actor.id.to_string(),
                    identity: identity.clone(),
                    payload: payload.clone(),
                }],
                condition: AppendCondition { after: decision.position, streams: decision.reads },
                touches: decision.touches,
            };
            match self.log.append(batch).await {
                Ok(appended) => {
                    let position = appended.positions[0];
                    return SubmitReply::accepted(
                        envelope.id.clone(),
                        position.sequence,
                        position.stream_version,
                        appended.duplicate,
                    );
                }
                // Decided on a state that has moved: decide again on the new one. A
                // client's own `expectedversion` is then checked by the decision and
                // answered `version_conflict` there.
                Err(AppendError::VersionConflict { .. } | AppendError::ConditionFailed { .. }) => {
                    metrics::counter!(telemetry::DECISIONS_REDONE).increment(1);
                    continue;
                }
                Err(error) => return refused(append_refusal(&envelope, error)),
            }
        }
        refused(Refusal::new(ErrorCode::Unavailable, "the aggregate is too busy; retry"))
    }
}

/// How long, in cluster mode, a submit may go on being decided again (past
/// [`MAX_DECIDE_ATTEMPTS`]) while what it read keeps moving.
const CLUSTER_DECIDE_TIME: std::time::Duration = std::time::Duration::from_secs(3);

/// Longest wait for this node's copy to catch up with the cluster's log before deciding
/// again (cluster mode).
const CLUSTER_SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Service {
    /// Step 3: the answer for an id the log holds already (a duplicate, or a conflict),
    /// or `None` for a new one.
    async fn known_id(&self, envelope: &Envelope, identity: &[u8]) -> Option<SubmitReply> {
        let lookup = {
            let (log, id, identity) = (self.log.clone(), envelope.id.to_string(), identity.to_vec());
            tokio::task::spawn_blocking(move || log.lookup_id(&id, &identity)).await
        };
        let refused = |refusal| SubmitReply::refused(Some(envelope.id.to_string()), refusal);
        match lookup {
            Ok(Ok(IdLookup::Duplicate(position))) => {
                Some(SubmitReply::accepted(envelope.id.clone(), position.sequence, position.stream_version, true))
            }
            Ok(Ok(IdLookup::Conflict)) => Some(refused(id_conflict(envelope))),
            Ok(Ok(IdLookup::Unknown)) => None,
            Ok(Err(cause)) => Some(refused(internal(&cause))),
            Err(cause) => Some(refused(internal(&cause))),
        }
    }
}

fn id_conflict(envelope: &Envelope) -> Refusal {
    Refusal::at(ErrorCode::Conflict, "id", format!("event id {} was used before with other content", envelope.id))
}

/// The one place a store error becomes a contract error.
fn append_refusal(envelope: &Envelope, error: AppendError) -> Refusal {
    match error {
        AppendError::VersionConflict { expected, actual, .. } => Refusal::new(
            ErrorCode::VersionConflict,
            format!("{} {} is at version {actual}, not {expected}", envelope.event_type.aggregate(), envelope.subject),
        ),
        AppendError::ConditionFailed { .. } => {
            Refusal::new(ErrorCode::Unavailable, "what this event depends on keeps changing; retry")
        }
        AppendError::IdConflict { .. } => id_conflict(envelope),
        AppendError::Unavailable(cause) => {
            warn!(%cause, "the log refused a write");
            Refusal::new(
                ErrorCode::Unavailable,
                "the log cannot be written now; the event may have been stored: resend it with the same id, \
                 and a stored one is answered as a duplicate",
            )
        }
        AppendError::InvalidBatch(cause) => internal(&cause),
    }
}

/// The `id` of an event that failed step 1, when it has a readable one.
fn id_as_sent(raw: &[u8]) -> Option<String> {
    if raw.len() > tafel_contract::MAX_EVENT_BYTES {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(raw).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
}
