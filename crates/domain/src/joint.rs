//! The joint assessment view of a round table: per request on the agenda, what the
//! financiers said of it, side by side. It is built from what the viewer may see (before
//! the conclusion a financier sees only its own assessments), so it never leaks a
//! blind assessment.

use serde::Serialize;
use tafel_contract::AggregateId;
use tafel_contract::vocab::Interest;
use tafel_matcher::consortium::{self, Candidate};

use crate::mandate::MandateState;
use crate::request::RequestState;
use crate::roundtable::RoundtableState;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeanScores {
    pub impact: f64,
    pub team: f64,
    pub financials: f64,
    /// How many assessments gave scores.
    pub scored: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterestPart {
    pub mandate_id: AggregateId,
    pub amount_eur: u64,
}

/// One request on the agenda, as the round table sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgendaItem {
    pub request_id: AggregateId,
    pub asked_eur: u64,
    pub yes: usize,
    pub maybe: usize,
    pub no: usize,
    pub recused: usize,
    pub mean_scores: Option<MeanScores>,
    /// Euros of stated interest (yes and maybe; a mandate that named no amount counts
    /// with what it could carry: the smaller of its ticket maximum and the amount asked).
    pub interest_eur: u64,
    /// When no single interested financier covers the amount but together they do: a
    /// consortium of them (2-4 parts, each within its ticket range and stated amount).
    pub consortium: Option<Vec<InterestPart>>,
}

/// The joint view of `table` (already filtered for the viewer).
pub fn agenda_items(
    table: &RoundtableState,
    request: impl Fn(&AggregateId) -> Option<RequestState>,
    mandate: impl Fn(&AggregateId) -> Option<MandateState>,
) -> Vec<AgendaItem> {
    table
        .agenda
        .iter()
        .map(|request_id| {
            let asked_eur = request(request_id).map_or(0, |r| r.details.amount_eur);
            let assessments: Vec<_> =
                table.assessments.iter().filter(|a| &a.assessed.request_id == request_id).collect();
            let count = |interest| assessments.iter().filter(|a| a.assessed.interest == interest).count();
            let scored: Vec<_> = assessments.iter().filter_map(|a| a.assessed.scores).collect();
            let mean = |pick: fn(&tafel_contract::data::Scores) -> u8| {
                let total: u32 = scored.iter().map(|s| u32::from(pick(s))).sum();
                (f64::from(total) / scored.len() as f64 * 100.0).round() / 100.0
            };
            let mean_scores = (!scored.is_empty()).then(|| MeanScores {
                impact: mean(|s| s.impact),
                team: mean(|s| s.team),
                financials: mean(|s| s.financials),
                scored: scored.len(),
            });
            // What each interested mandate could put in, best first.
            let mut interested: Vec<(AggregateId, u64, u64, u32)> = assessments
                .iter()
                .filter(|a| matches!(a.assessed.interest, Interest::Yes | Interest::Maybe))
                .filter_map(|a| {
                    let terms = mandate(&a.assessed.mandate_id)?.terms;
                    let most = a.assessed.amount_eur.unwrap_or(terms.ticket_max_eur.min(asked_eur));
                    let rank = u32::from(a.assessed.interest == Interest::Yes);
                    Some((a.assessed.mandate_id.clone(), terms.ticket_min_eur.min(most), most, rank))
                })
                .collect();
            interested.sort_by(|a, b| b.3.cmp(&a.3).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
            let interest_eur = interested.iter().map(|i| i.2).sum();
            let single = interested.iter().any(|i| i.2 >= asked_eur);
            let consortium = if single || interest_eur < asked_eur {
                None
            } else {
                let candidates: Vec<Candidate> = interested
                    .iter()
                    .map(|i| Candidate { min_eur: i.1, max_eur: i.2, score_tenths: 1 + i.3 })
                    .collect();
                consortium::search(asked_eur, &candidates).into_iter().next().map(|parts| {
                    parts
                        .into_iter()
                        .map(|(index, amount_eur)| InterestPart { mandate_id: interested[index].0.clone(), amount_eur })
                        .collect()
                })
            };
            AgendaItem {
                request_id: request_id.clone(),
                asked_eur,
                yes: count(Interest::Yes),
                maybe: count(Interest::Maybe),
                no: count(Interest::No),
                recused: table.recusals.iter().filter(|r| &r.request_id == request_id).count(),
                mean_scores,
                interest_eur,
                consortium,
            }
        })
        .collect()
}
