//! The shortlist shape (contract section 5): what the matcher answers for a request.

use serde::{Deserialize, Serialize};

use crate::ids::AggregateId;
use crate::vocab::Instrument;

/// How a mandate can carry a request: all of it, or a part within a consortium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    Full,
    Partial,
}

/// One criterion's share of a score, so that every point is explained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub criterion: String,
    pub points: f64,
    pub detail: String,
}

/// An eligible mandate on a request's shortlist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShortlistEntry {
    pub mandate_id: AggregateId,
    pub financier: String,
    pub score: f64,
    pub fit: Fit,
    pub max_contribution_eur: u64,
    pub reasons: Vec<Reason>,
}

/// One mandate's part in a consortium.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsortiumPart {
    pub mandate_id: AggregateId,
    pub amount_eur: u64,
    pub instrument: Instrument,
}

/// A combination of 2-4 mandates that together carry exactly the requested amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consortium {
    pub total_eur: u64,
    pub parts: Vec<ConsortiumPart>,
}

/// An active mandate that fails exactly one eligibility rule, and what would pass it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NearMiss {
    pub mandate_id: AggregateId,
    pub financier: String,
    pub failed: String,
    pub detail: String,
}

/// A request's shortlist as it stood at log position `as_of`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shortlist {
    pub request_id: AggregateId,
    pub as_of: u64,
    pub entries: Vec<ShortlistEntry>,
    pub consortia: Vec<Consortium>,
    pub near_misses: Vec<NearMiss>,
}
