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

use std::collections::HashMap;
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
use tafel_domain::Actor;
use tafel_matcher::{DEFAULT_LIMIT, MAX_LIMIT, Matcher, ScoringTable};
use tafel_store::{AppendBatch, AppendError, EventLog, ExpectedVersion, IdLookup, NewEvent, RecordedEvent, SledLog};
use tokio::sync::watch;
use tracing::{error, warn};

use crate::principals::Principals;
use crate::projection::Views;

/// Most times a submit is decided again after another submit moved its aggregate on.
pub const MAX_DECIDE_ATTEMPTS: usize = 16;
/// Most agendas whose frozen shortlists are kept in memory.
pub const MAX_FROZEN_CACHED: usize = 64;
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
    views: Arc<RwLock<Views>>,
    scoring: ScoringTable,
    applied: watch::Receiver<u64>,
    principals: RwLock<Arc<Principals>>,
    pub counters: Counters,
    /// Shortlists frozen by agendas, by the position they were frozen at (an agenda's
    /// requests are fixed by its position, so the position is key enough).
    frozen: std::sync::Mutex<HashMap<u64, Arc<Vec<Value>>>>,
}

impl Service {
    /// `views` are kept current by the projection task, which reports how far it got on
    /// `applied`; `scoring` is the table they score with (for replays of the past).
    pub fn new(
        log: SledLog,
        views: Arc<RwLock<Views>>,
        scoring: ScoringTable,
        applied: watch::Receiver<u64>,
        principals: Principals,
    ) -> Self {
        Self {
            log,
            views,
            scoring,
            applied,
            principals: RwLock::new(Arc::new(principals)),
            counters: Counters::default(),
            frozen: std::sync::Mutex::new(HashMap::new()),
        }
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
                let Ok(views) = self.views.read() else {
                    return refused(internal(&"the views are poisoned"));
                };
                views.world.decide(&actor, &envelope, &data)
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
            "roundtable" => {
                let mut view = self.aggregate(&actor, AggregateKind::Roundtable, &body)?;
                self.add_frozen_shortlists(&actor, &mut view)?;
                Ok(view)
            }
            "events" => self.events(&actor, &body),
            "shortlist" => self.shortlist(&actor, &body),
            "matches" => self.matches(&actor, &body),
            "report" => self.report(&actor, &body),
            other => Err(invalid_query(format!("unknown query {other:?}"))),
        }
    }

    fn aggregate(
        &self,
        actor: &Actor,
        kind: AggregateKind,
        body: &serde_json::Map<String, Value>,
    ) -> Result<Value, Refusal> {
        only_fields(body, &[kind.id_field()])?;
        let id = id_field(body, kind.id_field())?;
        let views = self.views.read().map_err(|_| internal(&"the views are poisoned"))?;
        views.world.view(actor, kind, &id).ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("no {kind} {id}")))
    }

    fn events(&self, actor: &Actor, body: &serde_json::Map<String, Value>) -> Result<Value, Refusal> {
        use tafel_contract::vocab::Role;
        if !matches!(actor.role, Role::Organiser | Role::Admin) {
            return Err(Refusal::new(ErrorCode::Forbidden, "only organisers and admins read the log"));
        }
        only_fields(body, &["from", "limit"])?;
        let from = optional_u64(body, "from")?.unwrap_or(1).max(1);
        let limit = (optional_u64(body, "limit")?.unwrap_or(MAX_EVENTS_PAGE as u64) as usize).min(MAX_EVENTS_PAGE);
        let records = self.log.read_from(from, limit).map_err(|e| internal(&e))?;
        let next = from + records.len() as u64;
        let events = records.iter().map(stored_event).collect::<Result<Vec<_>, _>>().map_err(|e| internal(&e))?;
        Ok(json!({"events": events, "next": next}))
    }
}

/// Every stored event of `log`, in order.
pub fn read_all_events(log: &SledLog) -> Result<Vec<StoredEvent>, String> {
    let mut events = Vec::new();
    for_each_event(log, u64::MAX, |event| {
        events.push(event);
        Ok(())
    })?;
    Ok(events)
}

/// Hands every stored event up to `through` to `visit`, in order, a page at a time.
fn for_each_event(
    log: &SledLog,
    through: u64,
    mut visit: impl FnMut(StoredEvent) -> Result<(), String>,
) -> Result<(), String> {
    let mut from = 1;
    while from <= through {
        let page = (through - from).saturating_add(1).min(MAX_EVENTS_PAGE as u64) as usize;
        let records = log.read_from(from, page).map_err(|e| e.to_string())?;
        if records.is_empty() {
            return Ok(());
        }
        for record in &records {
            visit(stored_event(record)?)?;
        }
        from += records.len() as u64;
    }
    Ok(())
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

impl Service {
    /// Every stored event, in order, as the contract shows it.
    pub fn all_events(&self) -> Result<Vec<StoredEvent>, Refusal> {
        read_all_events(&self.log).map_err(|e| internal(&e))
    }

    /// `report`: coaches, organisers and admins; `{"year"?}`.
    fn report(&self, actor: &Actor, body: &serde_json::Map<String, Value>) -> Result<Value, Refusal> {
        use tafel_contract::vocab::Role;
        if !matches!(actor.role, Role::Coach | Role::Organiser | Role::Admin) {
            return Err(Refusal::new(ErrorCode::Forbidden, "only coaches, organisers and admins read the report"));
        }
        only_fields(body, &["year"])?;
        let year = match body.get("year") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_i64()
                    .and_then(|year| i32::try_from(year).ok())
                    .filter(|year| (1900..=9999).contains(year))
                    .ok_or_else(|| invalid_query("year must be a year, e.g. 2021".into()))?,
            ),
        };
        let events = self.all_events()?;
        let report = tafel_domain::report::report(&events, year).map_err(|e| internal(&e))?;
        serde_json::to_value(report).map_err(|e| internal(&e))
    }

    /// The shortlists an agenda froze, as they stood when it was set; not for financiers,
    /// who see requests but not their shortlists.
    fn add_frozen_shortlists(&self, actor: &Actor, view: &mut Value) -> Result<(), Refusal> {
        use tafel_contract::vocab::Role;
        let Some(as_of) = view["agenda_as_of"].as_u64() else {
            return Ok(());
        };
        if actor.role == Role::Financier {
            return Ok(());
        }
        let agenda: Vec<AggregateId> = view["agenda"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().and_then(|text| AggregateId::parse(text).ok()))
            .collect();
        let cached = self.frozen.lock().ok().and_then(|cache| cache.get(&as_of).cloned());
        let frozen = match cached {
            Some(frozen) => frozen,
            None => {
                let matcher = self.replay_matcher(as_of)?;
                let frozen: Arc<Vec<Value>> = Arc::new(
                    agenda
                        .iter()
                        .filter_map(|id| matcher.shortlist(id, DEFAULT_LIMIT))
                        .filter_map(|shortlist| serde_json::to_value(shortlist).ok())
                        .collect(),
                );
                if let Ok(mut cache) = self.frozen.lock() {
                    if cache.len() >= MAX_FROZEN_CACHED {
                        cache.clear();
                    }
                    cache.insert(as_of, frozen.clone());
                }
                frozen
            }
        };
        view["frozen_shortlists"] = Value::Array(frozen.as_ref().clone());
        Ok(())
    }

    /// `shortlist`: the request's owner, coaches, organisers and admins see it; with
    /// `as_of`, as it stood at that log position (the log is replayed up to there).
    fn shortlist(&self, actor: &Actor, body: &serde_json::Map<String, Value>) -> Result<Value, Refusal> {
        use tafel_contract::vocab::Role;
        only_fields(body, &["request_id", "limit", "as_of"])?;
        let id = id_field(body, "request_id")?;
        let limit = limit_field(body)?;
        let as_of = optional_u64(body, "as_of")?;
        {
            let views = self.views.read().map_err(|_| internal(&"the views are poisoned"))?;
            let sees = views.world.can_see(actor, AggregateKind::Request, &id) && actor.role != Role::Financier;
            if !sees {
                return Err(Refusal::new(ErrorCode::NotFound, format!("no request {id}")));
            }
            let now = views.last_sequence();
            match as_of {
                Some(position) if position > now => {
                    return Err(invalid_query(format!("as_of {position} is beyond the log, which ends at {now}")));
                }
                Some(position) if position < now => {}
                _ => return to_value(views.matcher.shortlist(&id, limit), &id),
            }
        }
        let position = as_of.unwrap_or_default();
        to_value(self.replay_matcher(position)?.shortlist(&id, limit), &id)
    }

    /// A matcher as the log stood at `position`.
    fn replay_matcher(&self, position: u64) -> Result<Matcher, Refusal> {
        let mut matcher = Matcher::new(self.scoring);
        for_each_event(&self.log, position, |event| matcher.apply(&event).map(|_| ())).map_err(|e| internal(&e))?;
        Ok(matcher)
    }

    /// `matches`: the requests a mandate is eligible for that the principal may see.
    fn matches(&self, actor: &Actor, body: &serde_json::Map<String, Value>) -> Result<Value, Refusal> {
        only_fields(body, &["mandate_id", "limit"])?;
        let id = id_field(body, "mandate_id")?;
        let limit = limit_field(body)?;
        let views = self.views.read().map_err(|_| internal(&"the views are poisoned"))?;
        if !views.world.can_see(actor, AggregateKind::Mandate, &id) {
            return Err(Refusal::new(ErrorCode::NotFound, format!("no mandate {id}")));
        }
        let entries = views
            .matcher
            .matches(&id, limit, |request| views.world.can_see(actor, AggregateKind::Request, request))
            .ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("no mandate {id}")))?;
        Ok(json!({"mandate_id": id, "as_of": views.last_sequence(), "entries": entries}))
    }
}

fn to_value(shortlist: Option<tafel_contract::shortlist::Shortlist>, id: &AggregateId) -> Result<Value, Refusal> {
    let shortlist = shortlist.ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("no request {id} then")))?;
    serde_json::to_value(shortlist).map_err(|e| internal(&e))
}

fn only_fields(body: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), Refusal> {
    match body.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(invalid_query(format!("unknown field {key:?}"))),
        None => Ok(()),
    }
}

fn id_field(body: &serde_json::Map<String, Value>, field: &str) -> Result<AggregateId, Refusal> {
    body.get(field)
        .and_then(Value::as_str)
        .and_then(|text| AggregateId::parse(text).ok())
        .ok_or_else(|| invalid_query(format!("{field} is required and must be an id")))
}

fn optional_u64(body: &serde_json::Map<String, Value>, field: &str) -> Result<Option<u64>, Refusal> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            value.as_u64().map(Some).ok_or_else(|| invalid_query(format!("{field} must be an integer >= 0")))
        }
    }
}

/// `limit`: default 10; 1 or more; more than [`MAX_LIMIT`] is capped.
fn limit_field(body: &serde_json::Map<String, Value>) -> Result<usize, Refusal> {
    match optional_u64(body, "limit")? {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(invalid_query("limit must be at least 1".into())),
        Some(limit) => Ok((limit as usize).min(MAX_LIMIT)),
    }
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
