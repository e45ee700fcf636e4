//! Who is acting: a known principal and its one role.

use tafel_contract::reply::{ErrorCode, Refusal};
use tafel_contract::vocab::Role;
use tafel_contract::{EventType, PrincipalId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub id: PrincipalId,
    pub role: Role,
}

impl Actor {
    pub fn new(id: PrincipalId, role: Role) -> Self {
        Self { id, role }
    }

    /// Coaches, organisers and admins see everything (contract section 2).
    pub fn sees_everything(&self) -> bool {
        matches!(self.role, Role::Coach | Role::Organiser | Role::Admin)
    }

    /// Step 2 of a submit (contract section 3): only the role the contract names may
    /// publish an event type.
    pub fn may_publish(&self, event_type: EventType) -> Result<(), Refusal> {
        if event_type.publisher() == Some(self.role) {
            Ok(())
        } else {
            Err(Refusal::new(ErrorCode::Forbidden, format!("the role {} may not publish {event_type}", self.role)))
        }
    }

    /// Organisers and admins read the whole log (the `events` query).
    pub fn reads_the_log(&self) -> bool {
        matches!(self.role, Role::Organiser | Role::Admin)
    }

    /// Coaches, organisers and admins read the programme report.
    pub fn reads_the_report(&self) -> bool {
        self.sees_everything()
    }

    /// Everyone but financiers may see shortlists (of what they may see): a financier
    /// sees requests, never how other financiers' mandates rank on them.
    pub fn sees_shortlists(&self) -> bool {
        self.role != Role::Financier
    }
}
