//! The round-table aggregate: scheduled, agenda set, assessed / recused, concluded.
//! Its rules need the requests and mandates it names, so deciding is in
//! [`crate::World::decide`]; this is its state and how events change it.

use serde::{Deserialize, Serialize};
use tafel_contract::data::{AgendaSet, Assessed, Outcome, Recused, RoundtableScheduled};
use tafel_contract::vocab::CalendarDate;
use tafel_contract::{AggregateId, PrincipalId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundtableStatus {
    Scheduled,
    Concluded,
}

/// One mandate's latest assessment of one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssessmentRecord {
    pub financier: PrincipalId,
    #[serde(flatten)]
    pub assessed: Assessed,
    pub assessed_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundtableState {
    pub roundtable_id: AggregateId,
    pub version: u64,
    pub organiser: PrincipalId,
    pub status: RoundtableStatus,
    pub title: String,
    pub date: CalendarDate,
    pub mandate_ids: Vec<AggregateId>,
    pub agenda: Vec<AggregateId>,
    /// The log sequence at which the agenda was set: the shortlists it froze are the
    /// shortlists as of this position.
    pub agenda_as_of: Option<u64>,
    pub assessments: Vec<AssessmentRecord>,
    pub recusals: Vec<Recused>,
    pub outcomes: Vec<Outcome>,
}

impl RoundtableState {
    pub fn scheduled(organiser: PrincipalId, data: &RoundtableScheduled) -> Self {
        Self {
            roundtable_id: data.roundtable_id.clone(),
            version: 1,
            organiser,
            status: RoundtableStatus::Scheduled,
            title: data.title.clone(),
            date: data.date,
            mandate_ids: data.mandate_ids.clone(),
            agenda: Vec::new(),
            agenda_as_of: None,
            assessments: Vec::new(),
            recusals: Vec::new(),
            outcomes: Vec::new(),
        }
    }

    pub fn is_concluded(&self) -> bool {
        self.status == RoundtableStatus::Concluded
    }

    pub fn invites(&self, mandate_id: &AggregateId) -> bool {
        self.mandate_ids.contains(mandate_id)
    }

    pub fn has_on_agenda(&self, request_id: &AggregateId) -> bool {
        self.agenda.contains(request_id)
    }

    pub fn has_recused(&self, mandate_id: &AggregateId, request_id: &AggregateId) -> bool {
        self.recusals.iter().any(|r| &r.mandate_id == mandate_id && &r.request_id == request_id)
    }

    /// The mandate's latest assessment of the request.
    pub fn assessment(&self, mandate_id: &AggregateId, request_id: &AggregateId) -> Option<&AssessmentRecord> {
        self.assessments.iter().find(|a| &a.assessed.mandate_id == mandate_id && &a.assessed.request_id == request_id)
    }

    pub fn agenda_set(&mut self, data: &AgendaSet, sequence: u64) {
        self.agenda = data.request_ids.clone();
        self.agenda_as_of = Some(sequence);
    }

    pub fn assessed(&mut self, financier: PrincipalId, data: &Assessed, at: &str) {
        self.assessments
            .retain(|a| !(a.assessed.mandate_id == data.mandate_id && a.assessed.request_id == data.request_id));
        self.assessments.push(AssessmentRecord { financier, assessed: data.clone(), assessed_at: at.to_owned() });
    }

    pub fn recused(&mut self, data: &Recused) {
        self.recusals.push(data.clone());
    }

    pub fn concluded(&mut self, outcomes: &[Outcome]) {
        self.status = RoundtableStatus::Concluded;
        self.outcomes = outcomes.to_vec();
    }
}
