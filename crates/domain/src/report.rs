//! The programme report (contract section 6, `report`): a year's figures folded from the
//! stored events, by their `recordedat`.
//!
//! Counts are of distinct aggregates with such an event in the year: submitted, coached
//! (any coaching), ready (coached as ready), withdrawn; mandates active (published or
//! revised in the year and not closed by its end); round tables held (concluded).
//! Participating entrepreneurs and financiers are the distinct owners of the requests on
//! the agenda of, and of the mandates that assessed at, round tables concluded in the
//! year. Committed euros are the commitments of those conclusions, in total, by
//! instrument, and in full under each SDG of the request. Beyond the contract: the
//! median days from a request's submission to its first `ready`, for requests first
//! ready in the year, and from its latest `ready` before a conclusion to that
//! conclusion, for requests given commitments in the year.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use tafel_contract::data::EventData;
use tafel_contract::vocab::{CalendarDate, Readiness};
use tafel_contract::{AggregateId, PrincipalId, StoredEvent};

/// The report's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub year: Option<i32>,
    pub requests_submitted: usize,
    pub requests_coached: usize,
    pub requests_ready: usize,
    pub requests_withdrawn: usize,
    /// Distinct requests given at least one commitment at a round table concluded in
    /// the year: the funnel's last step (submitted, coached, ready, committed).
    pub requests_committed: usize,
    pub mandates_active: usize,
    pub roundtables_held: usize,
    pub entrepreneurs_participating: usize,
    pub financiers_participating: usize,
    pub committed_eur: u64,
    pub committed_eur_by_instrument: BTreeMap<String, u64>,
    pub committed_eur_by_sdg: BTreeMap<u8, u64>,
    pub median_days_submitted_to_ready: Option<f64>,
    pub median_days_ready_to_commitment: Option<f64>,
}

#[derive(Default)]
struct RequestTrack {
    owner: Option<PrincipalId>,
    themes: Vec<u8>,
    submitted_on: Option<CalendarDate>,
    first_ready_on: Option<CalendarDate>,
    last_ready_on: Option<CalendarDate>,
}

#[derive(Default)]
struct TableTrack {
    agenda: Vec<AggregateId>,
    assessed_with: BTreeSet<AggregateId>,
}

/// Folds the events (in log order) into the report for `year` (all time when `None`).
pub fn report<'a>(events: impl IntoIterator<Item = &'a StoredEvent>, year: Option<i32>) -> Result<Report, String> {
    let in_year = |date: CalendarDate| year.is_none_or(|year| date.date().year() == year);
    let mut out = Report { year, ..Report::default() };
    let mut submitted = BTreeSet::new();
    let mut coached = BTreeSet::new();
    let mut ready = BTreeSet::new();
    let mut withdrawn = BTreeSet::new();
    let mut committed = BTreeSet::new();
    let mut mandate_touched_in_year = BTreeSet::new();
    let mut mandate_closed_on: HashMap<AggregateId, CalendarDate> = HashMap::new();
    let mut mandate_owner: HashMap<AggregateId, PrincipalId> = HashMap::new();
    let mut requests: HashMap<AggregateId, RequestTrack> = HashMap::new();
    let mut tables: HashMap<AggregateId, TableTrack> = HashMap::new();
    let mut entrepreneurs = BTreeSet::new();
    let mut financiers = BTreeSet::new();
    let mut to_ready = Vec::new();
    let mut to_commitment = Vec::new();

    for event in events {
        let envelope = &event.envelope;
        let data = EventData::parse(envelope.event_type, &envelope.subject, &envelope.data)
            .map_err(|refusal| format!("event {} no longer parses: {refusal}", event.meta.sequence))?;
        let date = event
            .meta
            .recordedat
            .get(..10)
            .and_then(|text| CalendarDate::parse(text).ok())
            .ok_or_else(|| format!("event {} has no readable recordedat", event.meta.sequence))?;
        let this_year = in_year(date);
        match &data {
            EventData::RequestSubmitted(details) | EventData::RequestRevised(details) => {
                let track = requests.entry(details.request_id.clone()).or_default();
                track.themes = details.impact_themes.iter().map(|sdg| sdg.number()).collect();
                if matches!(data, EventData::RequestSubmitted(_)) {
                    track.owner = Some(event.meta.principal.clone());
                    track.submitted_on = Some(date);
                    if this_year {
                        submitted.insert(details.request_id.clone());
                    }
                }
            }
            EventData::RequestCoached(coaching) => {
                if this_year {
                    coached.insert(coaching.request_id.clone());
                }
                if coaching.readiness == Readiness::Ready {
                    let track = requests.entry(coaching.request_id.clone()).or_default();
                    if track.first_ready_on.is_none() {
                        track.first_ready_on = Some(date);
                        if this_year && let Some(start) = track.submitted_on {
                            to_ready.push(days_between(start, date));
                        }
                    }
                    track.last_ready_on = Some(date);
                    if this_year {
                        ready.insert(coaching.request_id.clone());
                    }
                }
            }
            EventData::RequestWithdrawn(gone) => {
                if this_year {
                    withdrawn.insert(gone.request_id.clone());
                }
            }
            EventData::MandatePublished(terms) | EventData::MandateRevised(terms) => {
                if matches!(data, EventData::MandatePublished(_)) {
                    mandate_owner.insert(terms.mandate_id.clone(), event.meta.principal.clone());
                }
                if this_year {
                    mandate_touched_in_year.insert(terms.mandate_id.clone());
                }
            }
            EventData::MandateClosed(closed) => {
                mandate_closed_on.entry(closed.mandate_id.clone()).or_insert(date);
            }
            EventData::RoundtableScheduled(_) | EventData::RoundtableRecused(_) => {}
            EventData::RoundtableAgendaSet(agenda) => {
                tables.entry(agenda.roundtable_id.clone()).or_default().agenda = agenda.request_ids.clone();
            }
            EventData::RoundtableAssessed(assessed) => {
                tables
                    .entry(assessed.roundtable_id.clone())
                    .or_default()
                    .assessed_with
                    .insert(assessed.mandate_id.clone());
            }
            EventData::RoundtableConcluded(concluded) => {
                if !this_year {
                    continue;
                }
                out.roundtables_held += 1;
                let table = tables.remove(&concluded.roundtable_id).unwrap_or_default();
                for request_id in &table.agenda {
                    if let Some(owner) = requests.get(request_id).and_then(|track| track.owner.clone()) {
                        entrepreneurs.insert(owner);
                    }
                }
                for mandate_id in &table.assessed_with {
                    if let Some(owner) = mandate_owner.get(mandate_id) {
                        financiers.insert(owner.clone());
                    }
                }
                for outcome in &concluded.outcomes {
                    let track = requests.get(&outcome.request_id);
                    if !outcome.commitments.is_empty()
                        && let Some(since) = track.and_then(|t| t.last_ready_on)
                    {
                        to_commitment.push(days_between(since, date));
                    }
                    if !outcome.commitments.is_empty() {
                        committed.insert(outcome.request_id.clone());
                    }
                    for commitment in &outcome.commitments {
                        out.committed_eur += commitment.amount_eur;
                        *out.committed_eur_by_instrument.entry(commitment.instrument.to_string()).or_default() +=
                            commitment.amount_eur;
                        for sdg in track.map(|t| t.themes.as_slice()).unwrap_or_default() {
                            *out.committed_eur_by_sdg.entry(*sdg).or_default() += commitment.amount_eur;
                        }
                    }
                }
            }
        }
    }
    out.requests_submitted = submitted.len();
    out.requests_coached = coached.len();
    out.requests_ready = ready.len();
    out.requests_withdrawn = withdrawn.len();
    out.requests_committed = committed.len();
    out.mandates_active = mandate_touched_in_year
        .iter()
        .filter(|mandate| match (mandate_closed_on.get(*mandate), year) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(closed), Some(year)) => closed.date().year() > year,
        })
        .count();
    out.entrepreneurs_participating = entrepreneurs.len();
    out.financiers_participating = financiers.len();
    out.median_days_submitted_to_ready = median(&mut to_ready);
    out.median_days_ready_to_commitment = median(&mut to_commitment);
    Ok(out)
}

fn days_between(from: CalendarDate, to: CalendarDate) -> i64 {
    (to.date() - from.date()).whole_days()
}

fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) as f64 / 2.0
    } else {
        values[middle] as f64
    })
}
