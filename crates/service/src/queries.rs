//! The queries of contract section 6. Each answers what the principal may see (the
//! domain decides), and every reply is bounded in bytes: a page of the log ends early
//! rather than exceed the transport's limit, and any other reply that would not fit is
//! refused with a message saying how to ask for less.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tafel_contract::reply::{ErrorCode, Refusal};
use tafel_contract::{AggregateId, AggregateKind};
use tafel_domain::{Actor, ListState, Listed};
use tafel_matcher::{DEFAULT_LIMIT, MAX_LIMIT};
use tafel_store::{EventLog, SledLog};

use super::{MAX_EVENTS_PAGE, MAX_FROZEN_CACHED, Service, internal, invalid_query};
use crate::telemetry;

/// The queries of contract section 6.
pub const QUERIES: [&str; 10] = [
    "request",
    "mandate",
    "roundtable",
    "events",
    "shortlist",
    "matches",
    "report",
    "requests",
    "mandates",
    "roundtables",
];
use crate::stored::{request_facts_at, stored_event};

/// Query-string parameters that are numbers in a query's body (section 6).
const NUMERIC_PARAMETERS: [&str; 4] = ["limit", "as_of", "from", "year"];

/// A query's body from a query string's parameters (as HTTP gives them): each key once
/// (twice is `invalid_query`), an empty value as not given, the numeric parameters as
/// numbers when they are whole and not negative (otherwise as the text, which the query
/// then refuses), and the path's id as `id_field` when there is one.
pub fn query_body(
    parameters: impl IntoIterator<Item = (String, String)>,
    path_id: Option<(&str, String)>,
) -> Result<Vec<u8>, Refusal> {
    let mut body = Map::new();
    for (key, value) in parameters {
        // `?state=&limit=` (the contract's table writes routes so) means: not given.
        if value.is_empty() {
            continue;
        }
        // Digits only: `parse` would also take a leading `+`, which JSON does not.
        let digits = value.bytes().all(|b| b.is_ascii_digit());
        let number =
            (NUMERIC_PARAMETERS.contains(&key.as_str()) && digits).then(|| value.parse::<u64>().ok()).flatten();
        if body.insert(key.clone(), number.map_or(Value::String(value), Value::from)).is_some() {
            return Err(Refusal::new(ErrorCode::InvalidQuery, format!("{key} is given twice")));
        }
    }
    if let Some((field, id)) = path_id {
        body.insert(field.to_owned(), Value::String(id));
    }
    serde_json::to_vec(&body).map_err(|e| internal(&e))
}

/// Bytes of `{"events":[],"next":18446744073709551615}` around a page's events.
const EVENTS_PAGE_OVERHEAD_BYTES: usize = 64;
/// Bytes of `{"roundtables":[],"next":"<id of up to 64 characters>"}` around a list.
const LIST_PAGE_OVERHEAD_BYTES: usize = 128;
/// A list query's page size unless it asks for another.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// The largest page a list query gives.
pub const MAX_LIST_LIMIT: usize = 1000;
/// Most aggregates one list query looks at, shown or passed over, for a principal who
/// sees everything, so that its work is bounded however many there are; `next` then
/// says where to go on.
pub const MAX_LIST_SCAN: usize = 10_000;

impl Service {
    /// Handles one query (contract section 6) and returns the reply's bytes: the answer,
    /// or `{"error": ...}`; never more than `max_reply_bytes`.
    pub async fn query(&self, name: &str, principal: &str, body: &[u8], max_reply_bytes: usize) -> Vec<u8> {
        self.query_result(name, principal, body, max_reply_bytes).await.unwrap_or_else(|refusal| {
            serde_json::to_vec(&json!({"error": refusal})).unwrap_or_else(|_| b"{\"error\":{}}".to_vec())
        })
    }

    /// [`Service::query`] with the refusal apart, for a transport that answers it in
    /// its own way (HTTP, with the code's status).
    pub async fn query_result(
        &self,
        name: &str,
        principal: &str,
        body: &[u8],
        max_reply_bytes: usize,
    ) -> Result<Vec<u8>, Refusal> {
        let started = std::time::Instant::now();
        if let Some(actor) = self.principals().actor(principal) {
            self.limiter.take(&actor.id)?;
        }
        let reply = match self.answer(name, principal, body, max_reply_bytes).await {
            Ok(reply) if reply.len() <= max_reply_bytes => Ok(reply),
            Ok(reply) => {
                let hint = if matches!(name, "shortlist" | "matches") { "; ask with a smaller limit" } else { "" };
                Err(Refusal::new(
                    ErrorCode::InvalidQuery,
                    format!(
                        "the answer has {} bytes, more than the {max_reply_bytes} this transport carries{hint}",
                        reply.len()
                    ),
                ))
            }
            Err(refusal) => Err(refusal),
        };
        // Named only when it is one of the contract's, so that labels stay a closed set.
        let query = QUERIES.iter().find(|query| **query == name).copied().unwrap_or("unknown");
        metrics::histogram!(telemetry::QUERY_SECONDS, "query" => query).record(started.elapsed().as_secs_f64());
        if let Err(refusal) = &reply {
            metrics::counter!(telemetry::REFUSALS, "code" => refusal.code.as_str()).increment(1);
        }
        reply
    }

    async fn answer(
        &self,
        name: &str,
        principal: &str,
        body: &[u8],
        max_reply_bytes: usize,
    ) -> Result<Vec<u8>, Refusal> {
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
        let value = match name {
            "request" => self.aggregate(&actor, AggregateKind::Request, &body)?,
            "mandate" => self.aggregate(&actor, AggregateKind::Mandate, &body)?,
            "roundtable" => {
                let mut view = self.aggregate(&actor, AggregateKind::Roundtable, &body)?;
                self.add_frozen_shortlists(&actor, &mut view).await?;
                view
            }
            "events" => return self.events(&actor, &body, max_reply_bytes).await,
            "requests" => return self.list(&actor, AggregateKind::Request, &body, max_reply_bytes).await,
            "mandates" => return self.list(&actor, AggregateKind::Mandate, &body, max_reply_bytes).await,
            "roundtables" => return self.list(&actor, AggregateKind::Roundtable, &body, max_reply_bytes).await,
            "shortlist" => self.shortlist(&actor, &body).await?,
            "matches" => self.matches(&actor, &body)?,
            "report" => self.report(&actor, &body).await?,
            other => return Err(invalid_query(format!("unknown query {other:?}"))),
        };
        serde_json::to_vec(&value).map_err(|e| internal(&e))
    }

    fn aggregate(&self, actor: &Actor, kind: AggregateKind, body: &Map<String, Value>) -> Result<Value, Refusal> {
        only_fields(body, &[kind.id_field()])?;
        let id = id_field(body, kind.id_field())?;
        self.views()?
            .world
            .view(actor, kind, &id)
            .ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("no {kind} {id}")))
    }

    /// `requests`, `mandates`, `roundtables`: the aggregates of `kind` the principal may
    /// see, in id order after `after`, in `state`, at most `limit`, ending early rather
    /// than exceed `max_reply_bytes`; `next` is where to go on, `null` at the end. It
    /// walks the views on a blocking thread, as expensive work.
    async fn list(
        &self,
        actor: &Actor,
        kind: AggregateKind,
        body: &Map<String, Value>,
        max_reply_bytes: usize,
    ) -> Result<Vec<u8>, Refusal> {
        only_fields(body, &["state", "after", "limit"])?;
        let state = match body.get("state") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_str()
                    .and_then(|state| ListState::parse(kind, state))
                    .ok_or_else(|| invalid_query(format!("state must be {}", ListState::names(kind))))?,
            ),
        };
        let after = match body.get("after") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_str()
                    .and_then(|text| AggregateId::parse(text).ok())
                    .ok_or_else(|| invalid_query("after must be an id".into()))?,
            ),
        };
        let limit = match optional_u64(body, "limit")? {
            None => DEFAULT_LIST_LIMIT,
            Some(0) => return Err(invalid_query("limit must be at least 1".into())),
            Some(limit) => (limit as usize).min(MAX_LIST_LIMIT),
        };
        let (views, asker) = (self.views.clone(), actor.clone());
        self.expensive(&actor.id, move || {
            let views = views.read().map_err(|_| internal(&"the views are poisoned"))?;
            list_page(&views.world, &asker, kind, state, after, limit, max_reply_bytes)
        })
        .await
    }

    /// `events`: organisers and admins; a page of the log, ended early so the reply fits
    /// in `max_reply_bytes`, with `next` where to go on.
    async fn events(
        &self,
        actor: &Actor,
        body: &Map<String, Value>,
        max_reply_bytes: usize,
    ) -> Result<Vec<u8>, Refusal> {
        if !actor.reads_the_log() {
            return Err(Refusal::new(ErrorCode::Forbidden, "only organisers and admins read the log"));
        }
        only_fields(body, &["from", "limit"])?;
        let from = optional_u64(body, "from")?.unwrap_or(1).max(1);
        // A page of none would read as the end of the log to a client reading until an
        // empty page.
        let limit = match optional_u64(body, "limit")? {
            Some(0) => return Err(invalid_query("limit must be at least 1".into())),
            limit => (limit.unwrap_or(MAX_EVENTS_PAGE as u64) as usize).min(MAX_EVENTS_PAGE),
        };
        let log = self.log.clone();
        self.expensive(&actor.id, move || events_page(&log, from, limit, max_reply_bytes)).await
    }

    /// `report`: coaches, organisers and admins; `{"year"?}`.
    async fn report(&self, actor: &Actor, body: &Map<String, Value>) -> Result<Value, Refusal> {
        if !actor.reads_the_report() {
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
        // The projection keeps every year's figures: no walk over the log.
        let report = self.views()?.reports.report(year);
        serde_json::to_value(report).map_err(|e| internal(&e))
    }

    /// The shortlists an agenda froze, as they stood when it was set, for those who may
    /// see shortlists.
    async fn add_frozen_shortlists(&self, actor: &Actor, view: &mut Value) -> Result<(), Refusal> {
        let Some(as_of) = view["agenda_as_of"].as_u64() else {
            return Ok(());
        };
        if !actor.sees_shortlists() {
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
                let (views, log) = (self.views.clone(), self.log.clone());
                let past = self
                    .expensive(&actor.id, move || {
                        let requests = request_facts_at(&log, &agenda, as_of).map_err(|e| internal(&e))?;
                        let views = views.read().map_err(|_| internal(&"the views are poisoned"))?;
                        views.matcher.shortlists_as_of(&requests, DEFAULT_LIMIT, as_of).map_err(|e| internal(&e))
                    })
                    .await?;
                let frozen: Arc<Vec<Value>> = Arc::new(
                    past.into_iter().flatten().filter_map(|shortlist| serde_json::to_value(shortlist).ok()).collect(),
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

    /// `shortlist`: for those who may see it; with `as_of`, as it stood at that log
    /// position (computed from the matcher's history, without a replay, as expensive
    /// work: off the runtime, bounded per principal).
    async fn shortlist(&self, actor: &Actor, body: &Map<String, Value>) -> Result<Value, Refusal> {
        only_fields(body, &["request_id", "limit", "as_of"])?;
        let id = id_field(body, "request_id")?;
        let limit = limit_field(body)?;
        let as_of = optional_u64(body, "as_of")?;
        let position = {
            let views = self.views()?;
            if !views.world.can_see_shortlist(actor, &id) {
                return Err(Refusal::new(ErrorCode::NotFound, format!("no request {id}")));
            }
            let now = views.last_sequence();
            match as_of {
                Some(position) if position > now => {
                    return Err(invalid_query(format!("as_of {position} is beyond the log, which ends at {now}")));
                }
                Some(position) if position < now => position,
                _ => return to_value(views.matcher.shortlist(&id, limit), &id),
            }
        };
        // The past is the history's and the log's: later events add versions after
        // `position` and change nothing at it. The request's stream, then one pass over
        // the mandates, off the runtime.
        let (views, log) = (self.views.clone(), self.log.clone());
        self.expensive(&actor.id, move || {
            let request = request_facts_at(&log, std::slice::from_ref(&id), position).map_err(|e| internal(&e))?;
            let views = views.read().map_err(|_| internal(&"the views are poisoned"))?;
            let past = views.matcher.shortlists_as_of(&request, limit, position);
            to_value(past.map_err(|e| internal(&e))?.into_iter().next().flatten(), &id)
        })
        .await
    }

    /// `matches`: the requests a mandate is eligible for that the principal may see.
    fn matches(&self, actor: &Actor, body: &Map<String, Value>) -> Result<Value, Refusal> {
        only_fields(body, &["mandate_id", "limit"])?;
        let id = id_field(body, "mandate_id")?;
        let limit = limit_field(body)?;
        let views = self.views()?;
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

/// A page of a list query. `next` is the last id shown when the page ends early, so
/// that it never names what the principal may not see; for a principal who sees
/// everything, a page also ends after [`MAX_LIST_SCAN`] aggregates looked at, and `next`
/// is then the last of them. Anyone else is walked only through its own candidates
/// (`World::list`), whose number is theirs.
fn list_page(
    world: &tafel_domain::World,
    actor: &Actor,
    kind: AggregateKind,
    state: Option<ListState>,
    after: Option<AggregateId>,
    limit: usize,
    max_reply_bytes: usize,
) -> Result<Vec<u8>, Refusal> {
    let budget = max_reply_bytes.saturating_sub(LIST_PAGE_OVERHEAD_BYTES);
    let scan_bound = if actor.sees_everything() { MAX_LIST_SCAN } else { usize::MAX };
    let mut items = Vec::new();
    let (mut shown, mut last_shown, mut last_looked_at, mut ended) = (0, None, None, Ended::AtTheEnd);
    for (looked_at, listed) in world.list(actor, kind, state, after.as_ref()).enumerate() {
        if shown >= limit {
            ended = Ended::Full;
            break;
        }
        if looked_at >= scan_bound {
            ended = Ended::LookedFarEnough;
            break;
        }
        if let Listed::Shown(id, view) = &listed {
            let item = serde_json::to_vec(view).map_err(|e| internal(&e))?;
            let separator = usize::from(!items.is_empty());
            if items.len() + separator + item.len() > budget {
                if shown == 0 {
                    return Err(Refusal::new(
                        ErrorCode::Unavailable,
                        format!("{kind} {id} alone is larger than this transport carries"),
                    ));
                }
                ended = Ended::Full;
                break;
            }
            if separator == 1 {
                items.push(b',');
            }
            items.extend_from_slice(&item);
            shown += 1;
            last_shown = Some(id.clone());
        }
        last_looked_at = Some(listed.id().clone());
    }
    let next = match ended {
        Ended::AtTheEnd => Value::Null,
        Ended::Full => json!(last_shown),
        Ended::LookedFarEnough => json!(last_looked_at),
    };
    let mut reply = Vec::with_capacity(items.len() + LIST_PAGE_OVERHEAD_BYTES);
    reply.extend_from_slice(format!("{{\"{}s\":[", kind.as_str()).as_bytes());
    reply.extend_from_slice(&items);
    reply.extend_from_slice(format!("],\"next\":{next}}}").as_bytes());
    Ok(reply)
}

/// Why a list page ended.
enum Ended {
    AtTheEnd,
    /// At `limit`, or at the byte cap.
    Full,
    /// At the scan bound (only for a principal who sees everything).
    LookedFarEnough,
}

/// A page of the log from `from`: at most `limit` events, fewer when more would make the
/// reply longer than `max_reply_bytes`. Blocking: reads from disk.
fn events_page(log: &SledLog, from: u64, limit: usize, max_reply_bytes: usize) -> Result<Vec<u8>, Refusal> {
    let records = log.read_from(from, limit).map_err(|e| internal(&e))?;
    let budget = max_reply_bytes.saturating_sub(EVENTS_PAGE_OVERHEAD_BYTES);
    let mut events = Vec::with_capacity(budget.min(1 << 20));
    let mut next = from;
    for record in &records {
        let event = stored_event(record).and_then(|e| serde_json::to_vec(&e).map_err(|e| e.to_string()));
        let event = event.map_err(|e| internal(&e))?;
        let separator = usize::from(!events.is_empty());
        if events.len() + separator + event.len() > budget {
            if next == from {
                return Err(Refusal::new(
                    ErrorCode::Unavailable,
                    format!(
                        "event {} alone is larger than the {max_reply_bytes} bytes this transport carries",
                        record.sequence
                    ),
                ));
            }
            break;
        }
        if separator == 1 {
            events.push(b',');
        }
        events.extend_from_slice(&event);
        next = record.sequence + 1;
    }
    let mut reply = Vec::with_capacity(events.len() + EVENTS_PAGE_OVERHEAD_BYTES);
    reply.extend_from_slice(b"{\"events\":[");
    reply.extend_from_slice(&events);
    reply.extend_from_slice(format!("],\"next\":{next}}}").as_bytes());
    Ok(reply)
}

fn to_value(shortlist: Option<tafel_contract::shortlist::Shortlist>, id: &AggregateId) -> Result<Value, Refusal> {
    let shortlist = shortlist.ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("no request {id} then")))?;
    serde_json::to_value(shortlist).map_err(|e| internal(&e))
}

fn only_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Refusal> {
    match body.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(invalid_query(format!("unknown field {key:?}"))),
        None => Ok(()),
    }
}

fn id_field(body: &Map<String, Value>, field: &str) -> Result<AggregateId, Refusal> {
    body.get(field)
        .and_then(Value::as_str)
        .and_then(|text| AggregateId::parse(text).ok())
        .ok_or_else(|| invalid_query(format!("{field} is required and must be an id")))
}

fn optional_u64(body: &Map<String, Value>, field: &str) -> Result<Option<u64>, Refusal> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            value.as_u64().map(Some).ok_or_else(|| invalid_query(format!("{field} must be an integer >= 0")))
        }
    }
}

/// `limit`: default 10; 1 or more; more than [`MAX_LIMIT`] is capped.
fn limit_field(body: &Map<String, Value>) -> Result<usize, Refusal> {
    match optional_u64(body, "limit")? {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(invalid_query("limit must be at least 1".into())),
        Some(limit) => Ok((limit as usize).min(MAX_LIMIT)),
    }
}
