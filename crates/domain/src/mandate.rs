//! The mandate aggregate: published, revised, closed; and what has been committed
//! against its budget at concluded round tables.

use serde::{Deserialize, Serialize};
use tafel_contract::data::MandateTerms;
use tafel_contract::{PrincipalId, Refusal};
use tafel_matcher::MandateStanding;

use crate::world::invalid_state;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MandateStatus {
    Active,
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MandateState {
    pub mandate_id: tafel_contract::AggregateId,
    pub version: u64,
    pub owner: PrincipalId,
    pub status: MandateStatus,
    pub terms: MandateTerms,
    pub committed_eur: u64,
    /// `budget_eur` less what is committed; absent when the mandate has no budget.
    pub remaining_budget_eur: Option<u64>,
    pub published_at: String,
    pub updated_at: String,
}

impl MandateState {
    pub fn published(owner: PrincipalId, terms: MandateTerms, at: &str) -> Self {
        let mut state = Self {
            mandate_id: terms.mandate_id.clone(),
            version: 1,
            owner,
            status: MandateStatus::Active,
            terms,
            committed_eur: 0,
            remaining_budget_eur: None,
            published_at: at.to_owned(),
            updated_at: at.to_owned(),
        };
        state.recompute_remaining();
        state
    }

    pub fn is_closed(&self) -> bool {
        self.status == MandateStatus::Closed
    }

    pub fn standing(&self) -> MandateStanding {
        MandateStanding { closed: self.is_closed(), committed_eur: self.committed_eur }
    }

    pub fn decide_change(&self) -> Result<(), Refusal> {
        if self.is_closed() { Err(invalid_state(format!("mandate {} is closed", self.mandate_id))) } else { Ok(()) }
    }

    pub fn revised(&mut self, terms: MandateTerms) {
        self.terms = terms;
        self.recompute_remaining();
    }

    pub fn closed(&mut self) {
        self.status = MandateStatus::Closed;
    }

    /// Spends `amount_eur` of the budget. A commitment over what is left cannot be
    /// decided (contract section 4); a log written before contract 1.1 may still hold
    /// one, from two conclusions that raced. It is applied (what is left is then
    /// nothing) and described in the returned sentence, so that it is reported, not
    /// hidden.
    pub fn committed(&mut self, amount_eur: u64) -> Option<String> {
        let overdraft = self.remaining_budget_eur.filter(|remaining| amount_eur > *remaining).map(|remaining| {
            format!(
                "a commitment of {amount_eur} EUR overdrew mandate {}, which had {remaining} EUR left",
                self.mandate_id
            )
        });
        self.committed_eur += amount_eur;
        self.recompute_remaining();
        overdraft
    }

    /// A revision may lower the budget below what is committed already; what is left is
    /// then nothing, not a negative amount.
    fn recompute_remaining(&mut self) {
        self.remaining_budget_eur = self.terms.budget_eur.map(|budget| budget.saturating_sub(self.committed_eur));
    }
}
