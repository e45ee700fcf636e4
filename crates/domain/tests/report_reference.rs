//! The programme report kept as a projection (`Reports`, every year at once, event by
//! event) against the one-shot fold it replaced, written out here as it was: over random
//! logs spanning several years, every year's report and all time's agree.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proptest::prelude::*;
use serde_json::{Value, json};
use tafel_contract::data::EventData;
use tafel_contract::envelope::format_recorded_at;
use tafel_contract::vocab::{CalendarDate, Readiness};
use tafel_contract::{AggregateId, PrincipalId, RecordedMeta, StoredEvent, SubmitRoute, parse_envelope};
use tafel_domain::report::{Report, Reports};

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
pub fn reference_report<'a>(
    events: impl IntoIterator<Item = &'a StoredEvent>,
    year: Option<i32>,
) -> Result<Report, String> {
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

/// One step of a random programme (ids from small pools, so steps meet each other).
#[derive(Clone, Debug)]
enum Step {
    Submit { request: u8, themes: Vec<u8> },
    Coach { request: u8, ready: bool },
    Withdraw { request: u8 },
    Publish { mandate: u8 },
    Close { mandate: u8 },
    Agenda { table: u8, requests: Vec<u8> },
    Assess { table: u8, request: u8, mandate: u8 },
    Conclude { table: u8, commitments: Vec<(u8, u8, u64)> },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..5, prop::collection::vec(1u8..6, 1..3)).prop_map(|(request, themes)| Step::Submit { request, themes }),
        3 => (0u8..5, any::<bool>()).prop_map(|(request, ready)| Step::Coach { request, ready }),
        1 => (0u8..5).prop_map(|request| Step::Withdraw { request }),
        2 => (0u8..3).prop_map(|mandate| Step::Publish { mandate }),
        1 => (0u8..3).prop_map(|mandate| Step::Close { mandate }),
        2 => (0u8..3, prop::collection::vec(0u8..5, 1..4)).prop_map(|(table, requests)| Step::Agenda { table, requests }),
        3 => (0u8..3, 0u8..5, 0u8..3).prop_map(|(table, request, mandate)| Step::Assess { table, request, mandate }),
        2 => (0u8..3, prop::collection::vec((0u8..5, 0u8..3, 1u64..400_000), 0..4))
            .prop_map(|(table, commitments)| Step::Conclude { table, commitments }),
    ]
}

fn request(id: &str, themes: &[u8]) -> Value {
    let mut themes = themes.to_vec();
    themes.sort_unstable();
    themes.dedup();
    json!({"request_id": id, "organisation": {"name": "Org", "kvk": "01234567", "region": "NL324"},
           "title": "t", "summary": "", "amount_eur": 100000, "instruments": ["loan"],
           "stage": "growth", "impact_themes": themes, "certifications": []})
}

fn mandate(id: &str) -> Value {
    json!({"mandate_id": id, "financier": {"name": "F", "kind": "bank"}, "ticket_min_eur": 1, "ticket_max_eur": 1000000,
           "instruments": ["loan", "grant"], "stages": ["growth"], "impact_themes": [], "regions": [],
           "required_certifications": [], "co_financing": true})
}

/// The stored events of the steps, each `days` after the one before (from 2021-01-01),
/// as the log would hold them (only the data's shape is checked: the report folds
/// whatever the log holds).
fn stored(steps: &[(Step, u16)]) -> Vec<StoredEvent> {
    let mut events = Vec::new();
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut concluded = BTreeSet::new();
    let mut now_ms = 1_609_459_200_000i64;
    for (step, days) in steps {
        now_ms += i64::from(*days) * 86_400_000;
        let (principal, event_type, data) = match step {
            Step::Submit { request: r, themes } => {
                let id = format!("r{r}");
                let kind = if versions.contains_key(&id) { "tafel.request.revised" } else { "tafel.request.submitted" };
                (format!("e{}", r % 2), kind, request(&id, themes))
            }
            Step::Coach { request: r, ready } => (
                "c".into(),
                "tafel.request.coached",
                json!({"request_id": format!("r{r}"), "coach": "c", "readiness": if *ready { "ready" } else { "needs_work" }, "notes": ""}),
            ),
            Step::Withdraw { request: r } => (
                format!("e{}", r % 2),
                "tafel.request.withdrawn",
                json!({"request_id": format!("r{r}"), "reason": "x"}),
            ),
            Step::Publish { mandate: m } => {
                let id = format!("m{m}");
                let kind = if versions.contains_key(&id) { "tafel.mandate.revised" } else { "tafel.mandate.published" };
                (format!("f{m}"), kind, mandate(&id))
            }
            Step::Close { mandate: m } => {
                (format!("f{m}"), "tafel.mandate.closed", json!({"mandate_id": format!("m{m}"), "reason": "x"}))
            }
            Step::Agenda { table: t, .. } | Step::Assess { table: t, .. } | Step::Conclude { table: t, .. }
                if concluded.contains(t) =>
            {
                continue;
            }
            Step::Agenda { table: t, requests } => (
                "o".into(),
                "tafel.roundtable.agenda_set",
                json!({"roundtable_id": format!("t{t}"),
                "request_ids": requests.iter().map(|r| format!("r{r}")).collect::<BTreeSet<_>>()}),
            ),
            Step::Assess { table: t, request: r, mandate: m } => (
                format!("f{m}"),
                "tafel.roundtable.assessed",
                json!({"roundtable_id": format!("t{t}"),
                "request_id": format!("r{r}"), "mandate_id": format!("m{m}"), "interest": "yes"}),
            ),
            Step::Conclude { table: t, commitments } => {
                concluded.insert(*t);
                // One commitment per mandate in an outcome, as the contract allows.
                let mut outcomes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
                for (r, m, amount) in commitments {
                    outcomes.entry(format!("r{r}")).or_default().entry(format!("m{m}")).or_insert(*amount);
                }
                let outcomes: Vec<Value> = outcomes
                    .into_iter()
                    .map(|(r, parts)| {
                        let commitments: Vec<Value> = parts
                            .into_iter()
                            .map(|(m, amount)| {
                                json!({"mandate_id": m, "amount_eur": amount,
                                "instrument": if amount % 2 == 0 { "loan" } else { "grant" }})
                            })
                            .collect();
                        json!({"request_id": r, "commitments": commitments})
                    })
                    .collect();
                (
                    "o".into(),
                    "tafel.roundtable.concluded",
                    json!({"roundtable_id": format!("t{t}"), "outcomes": outcomes}),
                )
            }
        };
        let aggregate = event_type.split('.').nth(1).unwrap_or_default();
        let subject = data[format!("{aggregate}_id")].as_str().unwrap_or_default().to_owned();
        let version = versions.entry(subject.clone()).or_insert(0);
        *version += 1;
        let sequence = events.len() as u64 + 1;
        let raw = json!({"specversion": "1.0", "id": format!("e{sequence}"), "source": "/test", "type": event_type,
                         "subject": subject, "data": data});
        let route = SubmitRoute { principal: principal.clone(), type_tokens: None };
        let envelope = parse_envelope(raw.to_string().as_bytes(), &route).unwrap();
        assert!(EventData::parse(envelope.event_type, &envelope.subject, &envelope.data).is_ok(), "{raw}");
        events.push(StoredEvent {
            meta: RecordedMeta {
                sequence,
                streamversion: *version,
                principal: PrincipalId::parse(&principal).unwrap(),
                recordedat: format_recorded_at(now_ms),
            },
            envelope,
        });
    }
    events
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_projection_answers_every_year_as_the_fold_over_the_log(
        steps in prop::collection::vec((step(), 0u16..120), 1..80),
    ) {
        let events = stored(&steps);
        let mut reports = Reports::default();
        for event in &events {
            reports.apply(event).unwrap();
        }
        for year in [None, Some(2021), Some(2022), Some(2023), Some(2024)] {
            let expected = reference_report(&events, year).unwrap();
            prop_assert_eq!(reports.report(year), expected, "year {:?}", year);
        }
    }
}
