//! The request aggregate: submitted, revised, coached, withdrawn.

use serde::{Deserialize, Serialize};
use tafel_contract::data::{RequestCoached, RequestDetails};
use tafel_contract::vocab::Readiness;
use tafel_contract::{PrincipalId, Refusal};

use crate::world::invalid_state;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for a coach (new, or revised since the last coaching).
    AwaitingCoaching,
    NeedsWork,
    Ready,
    Withdrawn,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coaching {
    pub coach: PrincipalId,
    pub readiness: Readiness,
    pub notes: String,
}

/// A request as the log has it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestState {
    pub request_id: tafel_contract::AggregateId,
    pub version: u64,
    pub owner: PrincipalId,
    pub status: RequestStatus,
    pub details: RequestDetails,
    /// The latest coaching of the current details, if any.
    pub coaching: Option<Coaching>,
    pub submitted_at: String,
    pub updated_at: String,
}

impl RequestState {
    pub fn submitted(owner: PrincipalId, details: RequestDetails, at: &str) -> Self {
        Self {
            request_id: details.request_id.clone(),
            version: 1,
            owner,
            status: RequestStatus::AwaitingCoaching,
            details,
            coaching: None,
            submitted_at: at.to_owned(),
            updated_at: at.to_owned(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.status != RequestStatus::Withdrawn
    }

    pub fn is_ready(&self) -> bool {
        self.status == RequestStatus::Ready
    }

    /// Revising, coaching or withdrawing needs an open request.
    pub fn decide_change(&self) -> Result<(), Refusal> {
        if self.is_open() { Ok(()) } else { Err(invalid_state(format!("request {} is withdrawn", self.request_id))) }
    }

    pub fn revised(&mut self, details: RequestDetails) {
        self.details = details;
        self.status = RequestStatus::AwaitingCoaching;
        self.coaching = None;
    }

    pub fn coached(&mut self, coached: &RequestCoached) {
        self.status = match coached.readiness {
            Readiness::Ready => RequestStatus::Ready,
            Readiness::NeedsWork => RequestStatus::NeedsWork,
        };
        self.coaching =
            Some(Coaching { coach: coached.coach.clone(), readiness: coached.readiness, notes: coached.notes.clone() });
    }

    pub fn withdrawn(&mut self) {
        self.status = RequestStatus::Withdrawn;
    }
}
