//! The stored-event codec: a log record (the store's opaque payload plus what the store
//! added) as the contract's stored event, and reading the log as such events.

use tafel_contract::data::EventData;
use tafel_contract::envelope::{format_recorded_at, parse_recorded_at};
use tafel_contract::{AggregateId, AggregateKind, Envelope, PrincipalId, RecordedMeta, StoredEvent};
use tafel_domain::stream_name;
use tafel_matcher::facts::RequestFacts;
use tafel_matcher::history;
use tafel_store::{EventLog, RecordedEvent, SledLog};

/// Events read from the log at a time when walking it.
pub const READ_PAGE_EVENTS: usize = 1000;

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

/// The log record of a stored event as the contract shows it (the `events` query), for
/// writing it again at its sequence: the inverse of [`stored_event`]. Its payload is the
/// envelope serialised as a submit stores it, and its identity digest is the submit's.
pub fn replicated(event: &StoredEvent) -> Result<tafel_store::Replicated, String> {
    let envelope = &event.envelope;
    let payload = serde_json::to_vec(envelope).map_err(|e| e.to_string())?;
    let recorded_at_ms = parse_recorded_at(&event.meta.recordedat).ok_or_else(|| {
        format!("event {}: recordedat {:?} is not RFC 3339", event.meta.sequence, event.meta.recordedat)
    })?;
    Ok(tafel_store::Replicated {
        sequence: event.meta.sequence,
        stream: stream_name(envelope.event_type.aggregate(), &envelope.subject),
        id: envelope.id.to_string(),
        principal: event.meta.principal.to_string(),
        identity_sha256: tafel_store::identity_sha256(&envelope.identity(&event.meta.principal)),
        published_ms: recorded_at_ms,
        payload,
    })
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
/// It reads from disk: call it off the async runtime.
pub fn for_each_event(
    log: &SledLog,
    through: u64,
    mut visit: impl FnMut(StoredEvent) -> Result<(), String>,
) -> Result<(), String> {
    let mut from = 1;
    while from <= through {
        let page = (through - from).saturating_add(1).min(READ_PAGE_EVENTS as u64) as usize;
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

/// Each request's facts as they stood at log `position`, folded from its stream (see
/// [`tafel_matcher::history`]); `None` for a request that did not exist then. It reads
/// from disk: call it off the async runtime, and before taking the views' lock.
pub fn request_facts_at(
    log: &SledLog,
    request_ids: &[AggregateId],
    position: u64,
) -> Result<Vec<Option<RequestFacts>>, String> {
    request_ids
        .iter()
        .map(|id| {
            let records = log
                .read_stream(&stream_name(AggregateKind::Request, id), 1)
                .map_err(|e| format!("the stream of request {id} cannot be read: {e}"))?;
            let mut events = Vec::with_capacity(records.len());
            for record in records.iter().take_while(|record| record.sequence <= position) {
                let data = EventData::of_stored(&stored_event(record)?)?;
                // The stream is the request's by how the domain names streams; an event
                // about another aggregate there would be a damaged log, not a fact.
                if data.aggregate_id() != id {
                    return Err(format!("event {} in the stream of request {id} is about another", record.sequence));
                }
                events.push((record.sequence, data));
            }
            Ok(history::request_facts_at(events.iter().map(|(sequence, data)| (*sequence, data)), position))
        })
        .collect()
}
