//! Who is acting: a known principal and its one role.

use tafel_contract::PrincipalId;
use tafel_contract::vocab::Role;

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
}
