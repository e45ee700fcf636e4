//! [`Service`]: one code path for every transport. A submit or a query arrives as bytes
//! with a principal; the answer leaves as a contract reply. NATS (and, on the roadmap,
//! HTTP) only move bytes in and out.
//!
//! A submit runs the contract's checks in order: step 1 in `tafel-contract`, step 2
//! (principal and role) here, step 3 (duplicate or conflict) against the log's id index,
//! step 4 in `tafel-contract`, steps 5-7 in [`World::decide`], then the append. The
//! decision is made on the [`World`] as of the log's last durable event, and the append
//! expects exactly the version it was made on, so a decision made on stale state is
//! refused by the log and made again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tafel_contract::envelope::format_recorded_at;
use tafel_contract::reply::{ErrorCode, Refusal, SubmitReply};
use tafel_contract::{
    AggregateId, AggregateKind, Envelope, EventData, PrincipalId, RecordedMeta, StoredEvent, SubmitRoute,
    parse_envelope,
};
use tafel_domain::{Actor, World};
use tafel_store::{AppendBatch, AppendError, EventLog, ExpectedVersion, IdLookup, NewEvent, RecordedEvent, SledLog};
use tokio::sync::watch;
use tracing::{error, warn};

use crate::principals::Principals;

/// Most times a submit is decided again after another submit moved its aggregate on.
pub const MAX_DECIDE_ATTEMPTS: usize = 16;
/// Most events one `events` query returns; the contract allows a cap of no less than 1000.
pub const MAX_EVENTS_PAGE: usize = 1000;
/// How long a request waits for the views to catch up with the log before answering
/// `unavailable`.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub refused: AtomicU64,
    pub queries: AtomicU64,
}

pub struct Service {
    log: SledLog,
    world: Arc<RwLock<World>>,
    applied: watch::Receiver<u64>,
    principals: RwLock<Arc<Principals>>,
    pub counters: Counters,
}

impl Service {
    /// `world` is kept current by the projection task, which reports how far it got on
    /// `applied`.
    pub fn new(log: SledLog, world: Arc<RwLock<World>>, applied: watch::Receiver<u64>, principals: Principals) -> Self {
        Self { log, world, applied, principals: RwLock::new(Arc::new(principals)), counters: Counters::default() }
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

    /// Handles one submitted event and returns the contract's reply.
    pub async fn submit(&self, raw: &[u8], route: &SubmitRoute) -> SubmitReply {
        let reply = self.submit_inner(raw, route).await;
        let counter = match &reply {
            SubmitReply::Accepted { duplicate: true, .. } => &self.counters.duplicates,
            SubmitReply::Accepted { .. } => &self.counters.accepted,
            SubmitReply::Refused { .. } => &self.counters.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        reply
    }

    async fn submit_inner(&self, raw: &[u8], route: &SubmitRoute) -> SubmitReply {
        // Step 1.
        let envelope = match parse_envelope(raw, route) {
            Ok(envelope) => envelope,
            Err(refusal) => return SubmitReply::refused(id_as_sent(raw), refusal),
        };
        let refused = |refusal: Refusal| SubmitReply::refused(Some(envelope.id.to_string()), refusal);

        // Step 2.
        let Some(actor) = self.principals().actor(&route.principal) else {
            return refused(Refusal::new(ErrorCode::Forbidden, format!("unknown principal {:?}", route.principal)));
        };
        if envelope.event_type.publisher() != Some(actor.role) {
            return refused(Refusal::new(
                ErrorCode::Forbidden,
                format!("a {} may not publish {}", actor.role, envelope.event_type),
            ));
        }

        // Step 3.
        let identity = envelope.identity(&actor.id);
        match self.log.lookup_id(envelope.id.as_str(), &identity) {
            Ok(IdLookup::Duplicate(position)) => {
                return SubmitReply::accepted(envelope.id.clone(), position.sequence, position.stream_version, true);
            }
            Ok(IdLookup::Conflict) => return refused(id_conflict(&envelope)),
            Ok(IdLookup::Unknown) => {}
            Err(cause) => return refused(internal(&cause)),
        }

        // Step 4.
        let data = match EventData::parse(envelope.event_type, &envelope.subject, &envelope.data) {
            Ok(data) => data,
            Err(refusal) => return refused(refusal),
        };

        // Steps 5-7, then the append; again if another submit moved the aggregate on.
        let payload = match serde_json::to_vec(&envelope) {
            Ok(payload) => payload,
            Err(cause) => return refused(internal(&cause)),
        };
        for _ in 0..MAX_DECIDE_ATTEMPTS {
            if let Err(refusal) = self.catch_up().await {
                return refused(refusal);
            }
            let decision = {
                let Ok(world) = self.world.read() else {
                    return refused(internal(&"the views are poisoned"));
                };
                world.decide(&actor, &envelope, &data)
            };
            let decision = match decision {
                Ok(decision) => decision,
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
                Err(AppendError::VersionConflict { .. }) if envelope.expectedversion.is_none() => {
                    continue;
                }
                Err(error) => return refused(append_refusal(&envelope, error)),
            }
        }
        refused(Refusal::new(ErrorCode::Unavailable, "the aggregate is too busy; retry"))
    }

    /// Handles one query (contract section 6) and returns its reply or refusal.
    pub async fn query(&self, name: &str, principal: &str, body: &[u8]) -> Result<Value, Refusal> {
        self.counters.queries.fetch_add(1, Ordering::Relaxed);
        let actor = self
            .principals()
            .actor(principal)
            .ok_or_else(|| Refusal::new(ErrorCode::Forbidden, format!("unknown principal {principal:?}")))?;
        let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| invalid_query(format!("not JSON: {e}")))?
        };
        let Value::Object(body) = body else {
            return Err(invalid_query("the query must be a JSON object".into()));
        };
        self.catch_up().await?;
        match name {
            "request" => self.aggregate(&actor, AggregateKind::Request, &body),
            "mandate" => self.aggregate(&actor, AggregateKind::Mandate, &body),
            "roundtable" => self.aggregate(&actor, AggregateKind::Roundtable, &body),
            "events" => self.events(&actor, &body),
            "shortlist" | "matches" | "report" => Err(invalid_query(format!(
                "the {name} query is not served yet (it comes with the matcher and round-table work)"
            ))),
            other => Err(invalid_query(format!("unknown query {other:?}"))),
        }
    }

    fn aggregate(
        &self,
        actor: &Actor,
        kind: AggregateKind,
        body: &serde_json::Map<String, Value>,
    ) -> Result<Value, Refusal> {
        let field = kind.id_field();
        let id = body
            .get(field)
            .and_then(Value::as_str)
            .and_then(|text| AggregateId::parse(text).ok())
            .ok_or_else(|| invalid_query(format!("{field} is required and must be an id")))?;
        for key in body.keys() {
            if key != field {
                return Err(invalid_query(format!("unknown field {key:?}")));
            }
        }
        let world = self.world.read().map_err(|_| internal(&"the views are poisoned"))?;
        world.view(actor, kind, &id).ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("no {kind} {id}")))
    }

    fn events(&self, actor: &Actor, body: &serde_json::Map<String, Value>) -> Result<Value, Refusal> {
        use tafel_contract::vocab::Role;
        if !matches!(actor.role, Role::Organiser | Role::Admin) {
            return Err(Refusal::new(ErrorCode::Forbidden, "only organisers and admins read the log"));
        }
        let number = |key: &str, default: u64| match body.get(key) {
            None => Ok(default),
            Some(value) => value.as_u64().ok_or_else(|| invalid_query(format!("{key} must be an integer >= 0"))),
        };
        for key in body.keys() {
            if key != "from" && key != "limit" {
                return Err(invalid_query(format!("unknown field {key:?}")));
            }
        }
        let from = number("from", 1)?.max(1);
        let limit = (number("limit", MAX_EVENTS_PAGE as u64)? as usize).min(MAX_EVENTS_PAGE);
        let records = self.log.read_from(from, limit).map_err(|e| internal(&e))?;
        let next = from + records.len() as u64;
        let events = records.iter().map(stored_event).collect::<Result<Vec<_>, _>>().map_err(|e| internal(&e))?;
        Ok(json!({"events": events, "next": next}))
    }
}

/// The stored event as the contract shows it, from the log's record.
pub fn stored_event(record: &RecordedEvent) -> Result<StoredEvent, String> {
    let envelope: Envelope = serde_json::from_slice(&record.payload)
        .map_err(|e| format!("event {} does not parse: {e}", record.sequence))?;
    let principal = PrincipalId::parse(&record.principal)?;
    Ok(StoredEvent {
        envelope,
        meta: RecordedMeta {
            sequence: record.sequence,
            streamversion: record.stream_version,
            principal,
            recordedat: format_recorded_at(record.recorded_at_ms),
        },
    })
}

fn invalid_query(message: String) -> Refusal {
    Refusal::new(ErrorCode::InvalidQuery, message)
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
        AppendError::IdConflict { .. } => id_conflict(envelope),
        AppendError::Unavailable(cause) => {
            warn!(%cause, "the log refused a write");
            Refusal::new(ErrorCode::Unavailable, "the log cannot be written now; retry")
        }
        AppendError::InvalidBatch(cause) => internal(&cause),
    }
}

/// An internal failure: logged in full, answered without its text.
fn internal(cause: &dyn std::fmt::Display) -> Refusal {
    error!(%cause, "internal error");
    Refusal::new(ErrorCode::Unavailable, "internal error; retry later")
}

/// The `id` of an event that failed step 1, when it has a readable one.
fn id_as_sent(raw: &[u8]) -> Option<String> {
    if raw.len() > tafel_contract::MAX_EVENT_BYTES {
        return None;
    }
    let value: Value = serde_json::from_slice(raw).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
}
