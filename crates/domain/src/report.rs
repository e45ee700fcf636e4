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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct RequestTrack {
    owner: Option<PrincipalId>,
    themes: Vec<u8>,
    submitted_on: Option<CalendarDate>,
    first_ready_on: Option<CalendarDate>,
    last_ready_on: Option<CalendarDate>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct TableTrack {
    agenda: Vec<AggregateId>,
    assessed_with: BTreeSet<AggregateId>,
}

/// Folds the events (in log order) into the report for `year` (all time when `None`):
/// the whole log read for one answer, as `tafel report` does on a stopped Tafel's log
/// and as the baseline of `tafel bench scale`. The service reads [`Reports`] kept
/// current instead; `tests/report_reference.rs` holds `Reports` to the one-shot fold it
/// replaced, over random logs spanning several years.
pub fn report<'a>(events: impl IntoIterator<Item = &'a StoredEvent>, year: Option<i32>) -> Result<Report, String> {
    let mut reports = Reports::default();
    for event in events {
        reports.apply(event)?;
    }
    Ok(reports.report(year))
}

/// One period's figures as they accumulate: a year, or all time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Period {
    submitted: BTreeSet<AggregateId>,
    coached: BTreeSet<AggregateId>,
    ready: BTreeSet<AggregateId>,
    withdrawn: BTreeSet<AggregateId>,
    committed: BTreeSet<AggregateId>,
    /// Mandates published or revised in the period.
    mandates_touched: BTreeSet<AggregateId>,
    roundtables_held: usize,
    entrepreneurs: BTreeSet<PrincipalId>,
    financiers: BTreeSet<PrincipalId>,
    committed_eur: u64,
    committed_eur_by_instrument: BTreeMap<String, u64>,
    committed_eur_by_sdg: BTreeMap<u8, u64>,
    to_ready: Vec<i64>,
    to_commitment: Vec<i64>,
}

/// The report of every year and of all time, kept current event by event, so that the
/// `report` query reads figures instead of the log: its work grows with the year's
/// aggregates, never with the log's length.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reports {
    /// Ordered, not hashed, so that growing never rehashes them all at once (see the
    /// matcher's request index).
    requests: BTreeMap<AggregateId, RequestTrack>,
    tables: HashMap<AggregateId, TableTrack>,
    mandate_owner: HashMap<AggregateId, PrincipalId>,
    mandate_closed_on: HashMap<AggregateId, CalendarDate>,
    /// By year; `None` is all time. Every event counts in its year and in all time.
    #[serde(with = "crate::pairs")]
    periods: BTreeMap<Option<i32>, Period>,
}

impl Reports {
    /// Applies the next stored event (in log order).
    pub fn apply(&mut self, event: &StoredEvent) -> Result<(), String> {
        let data = EventData::of_stored(event)?;
        self.apply_data(event, &data)
    }

    /// [`Reports::apply`] with the data already parsed.
    pub fn apply_data(&mut self, event: &StoredEvent, data: &EventData) -> Result<(), String> {
        let date = event
            .meta
            .recordedat
            .get(..10)
            .and_then(|text| CalendarDate::parse(text).ok())
            .ok_or_else(|| format!("event {} has no readable recordedat", event.meta.sequence))?;
        let year = date.date().year();
        // The event's year and all time, each updated alike.
        let mut in_periods = |update: &mut dyn FnMut(&mut Period)| {
            for key in [Some(year), None] {
                update(self.periods.entry(key).or_default());
            }
        };
        match data {
            EventData::RequestSubmitted(details) | EventData::RequestRevised(details) => {
                let track = self.requests.entry(details.request_id.clone()).or_default();
                track.themes = details.impact_themes.iter().map(|sdg| sdg.number()).collect();
                if matches!(data, EventData::RequestSubmitted(_)) {
                    track.owner = Some(event.meta.principal.clone());
                    track.submitted_on = Some(date);
                    in_periods(&mut |period| {
                        period.submitted.insert(details.request_id.clone());
                    });
                }
            }
            EventData::RequestCoached(coaching) => {
                in_periods(&mut |period| {
                    period.coached.insert(coaching.request_id.clone());
                });
                if coaching.readiness == Readiness::Ready {
                    let track = self.requests.entry(coaching.request_id.clone()).or_default();
                    let first_ready = track.first_ready_on.is_none();
                    if first_ready {
                        track.first_ready_on = Some(date);
                    }
                    track.last_ready_on = Some(date);
                    let to_ready =
                        if first_ready { track.submitted_on.map(|start| days_between(start, date)) } else { None };
                    in_periods(&mut |period| {
                        period.ready.insert(coaching.request_id.clone());
                        period.to_ready.extend(to_ready);
                    });
                }
            }
            EventData::RequestWithdrawn(gone) => in_periods(&mut |period| {
                period.withdrawn.insert(gone.request_id.clone());
            }),
            EventData::MandatePublished(terms) | EventData::MandateRevised(terms) => {
                if matches!(data, EventData::MandatePublished(_)) {
                    self.mandate_owner.insert(terms.mandate_id.clone(), event.meta.principal.clone());
                }
                in_periods(&mut |period| {
                    period.mandates_touched.insert(terms.mandate_id.clone());
                });
            }
            EventData::MandateClosed(closed) => {
                self.mandate_closed_on.entry(closed.mandate_id.clone()).or_insert(date);
            }
            EventData::RoundtableScheduled(_) | EventData::RoundtableRecused(_) => {}
            EventData::RoundtableAgendaSet(agenda) => {
                self.tables.entry(agenda.roundtable_id.clone()).or_default().agenda = agenda.request_ids.clone();
            }
            EventData::RoundtableAssessed(assessed) => {
                self.tables
                    .entry(assessed.roundtable_id.clone())
                    .or_default()
                    .assessed_with
                    .insert(assessed.mandate_id.clone());
            }
            EventData::RoundtableConcluded(concluded) => {
                let table = self.tables.remove(&concluded.roundtable_id).unwrap_or_default();
                let entrepreneurs: Vec<PrincipalId> =
                    table.agenda.iter().filter_map(|request| self.requests.get(request)?.owner.clone()).collect();
                let financiers: Vec<PrincipalId> =
                    table.assessed_with.iter().filter_map(|mandate| self.mandate_owner.get(mandate).cloned()).collect();
                let requests = &self.requests;
                for key in [Some(year), None] {
                    let period = self.periods.entry(key).or_default();
                    period.roundtables_held += 1;
                    period.entrepreneurs.extend(entrepreneurs.iter().cloned());
                    period.financiers.extend(financiers.iter().cloned());
                    for outcome in &concluded.outcomes {
                        let track = requests.get(&outcome.request_id);
                        if !outcome.commitments.is_empty() {
                            period.committed.insert(outcome.request_id.clone());
                            if let Some(since) = track.and_then(|t| t.last_ready_on) {
                                period.to_commitment.push(days_between(since, date));
                            }
                        }
                        for commitment in &outcome.commitments {
                            period.committed_eur += commitment.amount_eur;
                            *period
                                .committed_eur_by_instrument
                                .entry(commitment.instrument.to_string())
                                .or_default() += commitment.amount_eur;
                            for sdg in track.map(|t| t.themes.as_slice()).unwrap_or_default() {
                                *period.committed_eur_by_sdg.entry(*sdg).or_default() += commitment.amount_eur;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The report of `year` (all time when `None`) as the log stands.
    pub fn report(&self, year: Option<i32>) -> Report {
        let empty = Period::default();
        let period = self.periods.get(&year).unwrap_or(&empty);
        let mandates_active = period
            .mandates_touched
            .iter()
            .filter(|mandate| match (self.mandate_closed_on.get(*mandate), year) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(closed), Some(year)) => closed.date().year() > year,
            })
            .count();
        Report {
            year,
            requests_submitted: period.submitted.len(),
            requests_coached: period.coached.len(),
            requests_ready: period.ready.len(),
            requests_withdrawn: period.withdrawn.len(),
            requests_committed: period.committed.len(),
            mandates_active,
            roundtables_held: period.roundtables_held,
            entrepreneurs_participating: period.entrepreneurs.len(),
            financiers_participating: period.financiers.len(),
            committed_eur: period.committed_eur,
            committed_eur_by_instrument: period.committed_eur_by_instrument.clone(),
            committed_eur_by_sdg: period.committed_eur_by_sdg.clone(),
            median_days_submitted_to_ready: median(&mut period.to_ready.clone()),
            median_days_ready_to_commitment: median(&mut period.to_commitment.clone()),
        }
    }
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
