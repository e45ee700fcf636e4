//! The list queries of contract 1.1 section 6 (`requests`, `mandates`, `roundtables`):
//! the aggregates of one kind that a principal may see, in id order, filtered by state.
//! The domain decides what is shown and how; the transport pages it and caps it in bytes.

use std::ops::Bound;

use serde_json::Value;
use tafel_contract::{AggregateId, AggregateKind};

use crate::actor::Actor;
use crate::world::World;
use crate::{MandateStatus, RequestStatus};

/// A list query's `state` filter, parsed for its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListState {
    Request(RequestStatus),
    Mandate(MandateStatus),
    /// Scheduled, with no agenda yet.
    RoundtableScheduled,
    /// Scheduled, with an agenda.
    RoundtableAgendaSet,
    RoundtableConcluded,
}

impl ListState {
    /// The states the contract names for `kind`: requests `submitted` (waiting for a
    /// coach, new or revised), `needs_work`, `ready`, `withdrawn`; mandates `active`,
    /// `closed`; round tables `scheduled`, `agenda_set`, `concluded`.
    pub fn parse(kind: AggregateKind, state: &str) -> Option<ListState> {
        Some(match (kind, state) {
            (AggregateKind::Request, "submitted") => ListState::Request(RequestStatus::AwaitingCoaching),
            (AggregateKind::Request, "needs_work") => ListState::Request(RequestStatus::NeedsWork),
            (AggregateKind::Request, "ready") => ListState::Request(RequestStatus::Ready),
            (AggregateKind::Request, "withdrawn") => ListState::Request(RequestStatus::Withdrawn),
            (AggregateKind::Mandate, "active") => ListState::Mandate(MandateStatus::Active),
            (AggregateKind::Mandate, "closed") => ListState::Mandate(MandateStatus::Closed),
            (AggregateKind::Roundtable, "scheduled") => ListState::RoundtableScheduled,
            (AggregateKind::Roundtable, "agenda_set") => ListState::RoundtableAgendaSet,
            (AggregateKind::Roundtable, "concluded") => ListState::RoundtableConcluded,
            _ => return None,
        })
    }

    /// The names `parse` takes for `kind`, for messages.
    pub fn names(kind: AggregateKind) -> &'static str {
        match kind {
            AggregateKind::Request => "submitted, needs_work, ready or withdrawn",
            AggregateKind::Mandate => "active or closed",
            AggregateKind::Roundtable => "scheduled, agenda_set or concluded",
        }
    }
}

/// One aggregate a list query looked at: shown (as the single-aggregate query shows it
/// to this principal), or passed over (not visible, or in another state).
#[derive(Debug)]
pub enum Listed {
    Shown(AggregateId, Value),
    PassedOver(AggregateId),
}

impl Listed {
    pub fn id(&self) -> &AggregateId {
        match self {
            Listed::Shown(id, _) | Listed::PassedOver(id) => id,
        }
    }
}

impl World {
    /// The aggregates of `kind` after `after`, in id order, each shown to `actor` when it
    /// may see it and it is in `state` (any state when `None`). Lazy: the caller looks at
    /// as many as it can afford. Only a principal who sees everything is walked through
    /// every aggregate; anyone else only through its candidates, so that nothing passed
    /// over is someone else's (see `World::candidate_ids`).
    pub fn list<'a>(
        &'a self,
        actor: &'a Actor,
        kind: AggregateKind,
        state: Option<ListState>,
        after: Option<&AggregateId>,
    ) -> impl Iterator<Item = Listed> + 'a {
        let start = match after {
            Some(after) => Bound::Excluded(after.clone()),
            None => Bound::Unbounded,
        };
        self.candidate_ids(actor, kind, (start, Bound::Unbounded)).map(move |id| {
            let wanted = state.is_none_or(|state| self.is_in(kind, &id, state));
            match wanted.then(|| self.view(actor, kind, &id)).flatten() {
                Some(view) => Listed::Shown(id, view),
                None => Listed::PassedOver(id),
            }
        })
    }

    fn is_in(&self, kind: AggregateKind, id: &AggregateId, state: ListState) -> bool {
        match (kind, state) {
            (AggregateKind::Request, ListState::Request(status)) => {
                self.request(id).is_some_and(|r| r.status == status)
            }
            (AggregateKind::Mandate, ListState::Mandate(status)) => {
                self.mandate(id).is_some_and(|m| m.status == status)
            }
            (AggregateKind::Roundtable, state) => self.roundtable(id).is_some_and(|table| match state {
                ListState::RoundtableScheduled => !table.is_concluded() && table.agenda_as_of.is_none(),
                ListState::RoundtableAgendaSet => !table.is_concluded() && table.agenda_as_of.is_some(),
                ListState::RoundtableConcluded => table.is_concluded(),
                _ => false,
            }),
            _ => false,
        }
    }
}
