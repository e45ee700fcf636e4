//! How well an eligible mandate fits a request: a score of 0-100 made of six criteria,
//! each worth a share of the 100 points set in one [`ScoringTable`] that a programme
//! can tune. Every criterion gives a fraction from 0 to 1 of its share:
//!
//! | criterion | fraction |
//! |---|---|
//! | `impact_themes` | the share of the request's SDGs the mandate funds; 0.5 when the mandate funds any theme |
//! | `ticket_fit` | full fit: 1 when the amount sits mid-range, down to 0.5 at either end of the ticket range; partial fit: half the share of the amount the mandate can carry |
//! | `instruments` | 1 when the mandate takes the request's first (preferred) instrument, 0.6 when it takes another of them |
//! | `stage_focus` | 1 for a mandate focused on one stage, 0.2 less for each further stage it takes |
//! | `regional_focus` | 0.4 for a mandate that invests anywhere, up to 1 for one whose region is the request's own NUTS-3 region (0.55, 0.7, 0.85, 1 by code length) |
//! | `certifications` | a quarter for each certification the request holds |
//!
//! Points are counted in tenths, as integers, so a replay gives the same score to the
//! last bit and the reasons add up to the score exactly (at one decimal).

use serde::{Deserialize, Serialize};
use tafel_contract::shortlist::{Fit, Reason};
use tafel_contract::vocab::{Certification, Instrument, Stage};

use crate::eligibility::Eligible;
use crate::facts::{MandateFacts, MandateView, RequestFacts, names, sdg_names};

/// The criteria, in the order reasons are listed.
pub const CRITERIA: [&str; 6] =
    ["impact_themes", "ticket_fit", "instruments", "stage_focus", "regional_focus", "certifications"];

/// Whole points per criterion; they add up to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringTable {
    pub impact_themes: u32,
    pub ticket_fit: u32,
    pub instruments: u32,
    pub stage_focus: u32,
    pub regional_focus: u32,
    pub certifications: u32,
}

impl Default for ScoringTable {
    fn default() -> Self {
        Self {
            impact_themes: 30,
            ticket_fit: 25,
            instruments: 15,
            stage_focus: 10,
            regional_focus: 10,
            certifications: 10,
        }
    }
}

impl ScoringTable {
    /// Parses and checks a table (JSON, every criterion named, adding up to 100).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let table: ScoringTable = serde_json::from_str(text).map_err(|e| format!("not a scoring table: {e}"))?;
        table.validate()?;
        Ok(table)
    }

    pub fn validate(&self) -> Result<(), String> {
        let total: u32 = self.weights().iter().sum();
        if total != 100 {
            return Err(format!("the criteria's points add up to {total}, not 100"));
        }
        Ok(())
    }

    pub fn weights(&self) -> [u32; 6] {
        [
            self.impact_themes,
            self.ticket_fit,
            self.instruments,
            self.stage_focus,
            self.regional_focus,
            self.certifications,
        ]
    }
}

/// A score in tenths of a point, per criterion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Points(pub [u32; 6]);

impl Points {
    pub fn total_tenths(self) -> u32 {
        self.0.iter().sum()
    }
}

/// A fraction as numerator / denominator, turned into tenths of `weight` points,
/// rounding half up, in integers.
fn tenths(weight: u32, numerator: u64, denominator: u64) -> u32 {
    if denominator == 0 {
        return 0;
    }
    let scaled = u64::from(weight) * 10 * numerator;
    ((scaled * 2 + denominator) / (denominator * 2)) as u32
}

/// Fractions are kept as integers over this denominator.
const PARTS: u64 = 1000;

/// A [`ScoringTable`] turned into look-up tables, so that scoring a pair costs at most
/// two divisions (the ticket position and a partial fit's share).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weights {
    table: ScoringTable,
    /// `[request's SDG count][shared SDG count]`.
    themes: [[u32; 18]; 18],
    themes_any: u32,
    instruments_first: u32,
    instruments_other: u32,
    /// By the number of stages the mandate takes.
    stage: [u32; 8],
    region_anywhere: u32,
    /// By the length of the matching NUTS code.
    region: [u32; 6],
    /// By the number of certifications the request holds.
    certifications: [u32; 9],
}

impl From<ScoringTable> for Weights {
    fn from(table: ScoringTable) -> Self {
        let [themes_w, _, instruments_w, stage_w, region_w, certs_w] = table.weights();
        let mut themes = [[0; 18]; 18];
        for (count, row) in themes.iter_mut().enumerate() {
            for (shared, cell) in row.iter_mut().enumerate() {
                *cell = tenths(themes_w, shared as u64, count as u64);
            }
        }
        let mut stage = [0; 8];
        for (count, cell) in stage.iter_mut().enumerate() {
            let others = (count as u64).saturating_sub(1).min(4);
            *cell = tenths(stage_w, 10 - 2 * others, 10);
        }
        let mut region = [0; 6];
        for (length, cell) in region.iter_mut().enumerate() {
            *cell = tenths(region_w, 40 + 15 * (length as u64).saturating_sub(1).min(4), 100);
        }
        let mut certifications = [0; 9];
        for (count, cell) in certifications.iter_mut().enumerate() {
            *cell = tenths(certs_w, count as u64, 4);
        }
        Self {
            table,
            themes,
            themes_any: tenths(themes_w, 1, 2),
            instruments_first: tenths(instruments_w, 1, 1),
            instruments_other: tenths(instruments_w, 6, 10),
            stage,
            region_anywhere: tenths(region_w, 4, 10),
            region,
            certifications,
        }
    }
}

/// Scores a pair. `eligible` is the pair's fit (`None` for a near miss, whose amount
/// does not fit or may not).
#[inline(always)]
pub fn score<M: MandateView>(
    weights: &Weights,
    request: &RequestFacts,
    mandate: &M,
    eligible: Option<Eligible>,
) -> Points {
    let mandate_themes = mandate.themes();
    let themes = if mandate_themes == 0 {
        weights.themes_any
    } else {
        let shared = (request.themes & mandate_themes).count_ones() as usize;
        weights.themes[request.themes.count_ones() as usize][shared]
    };
    let ticket_w = weights.table.ticket_fit;
    let ticket = match eligible {
        Some(Eligible { fit: Fit::Full, .. }) => {
            let span = mandate.ticket_max_eur() - mandate.ticket_min_eur();
            // Amounts are at most 10^12, so this product stays far below u64::MAX.
            let position = (request.amount_eur.saturating_sub(mandate.ticket_min_eur()) * PARTS)
                .checked_div(span)
                .map_or(PARTS / 2, |position| position.min(PARTS));
            // 1 - |2p - 1| / 2, in thousandths.
            let off_centre = (2 * position).abs_diff(PARTS);
            tenths(ticket_w, PARTS - off_centre / 2, PARTS)
        }
        Some(Eligible { fit: Fit::Partial, max_contribution_eur }) => {
            tenths(ticket_w, max_contribution_eur.min(request.amount_eur), 2 * request.amount_eur)
        }
        None => 0,
    };
    let instruments = if request.instruments & mandate.instruments() == 0 {
        0
    } else if mandate.instruments() & request.preferred_mask != 0 {
        weights.instruments_first
    } else {
        weights.instruments_other
    };
    let stages = mandate.stages();
    let stage = if request.stage & stages == 0 { 0 } else { weights.stage[stages.count_ones() as usize] };
    let region = match mandate.region_match(request.region) {
        None => 0,
        Some(0) => weights.region_anywhere,
        Some(length) => weights.region[usize::from(length).min(5)],
    };
    let certifications = weights.certifications[request.certifications.count_ones() as usize];
    Points([themes, ticket, instruments, stage, region, certifications])
}

/// The reasons behind `points`, one per criterion, each with a plain detail.
pub fn reasons(
    points: Points,
    request: &RequestFacts,
    mandate: &MandateFacts,
    eligible: Option<Eligible>,
) -> Vec<Reason> {
    let shared = request.themes & mandate.themes;
    let details = [
        if mandate.themes == 0 {
            "funds every SDG".to_owned()
        } else if shared == 0 {
            "shares no SDG".to_owned()
        } else {
            format!("shares SDG {}", sdg_names(shared))
        },
        match eligible {
            Some(Eligible { fit: Fit::Full, .. }) => format!(
                "{} EUR within tickets of {}-{} EUR",
                request.amount_eur, mandate.ticket_min_eur, mandate.ticket_max_eur
            ),
            Some(Eligible { fit: Fit::Partial, max_contribution_eur }) => {
                format!("can carry {max_contribution_eur} of {} EUR", request.amount_eur)
            }
            None => "the amount does not fit".to_owned(),
        },
        if mandate.instruments & request.preferred_mask != 0 {
            format!("takes {}, the request's first choice", request.preferred_instrument)
        } else {
            format!("takes {}", names(Instrument::ALL, u32::from(mandate.instruments & request.instruments)))
        },
        format!("takes {} stage(s): {}", mandate.stages.count_ones(), names(Stage::ALL, u32::from(mandate.stages))),
        match mandate.region_match(request.region) {
            Some(0) => "invests anywhere".to_owned(),
            Some(_) => {
                format!("invests in {}", mandate.regions.iter().map(|r| r.text()).collect::<Vec<_>>().join(", "))
            }
            None => "outside its regions".to_owned(),
        },
        if request.certifications == 0 {
            "holds no certification".to_owned()
        } else {
            format!("holds {}", names(Certification::ALL, u32::from(request.certifications)))
        },
    ];
    CRITERIA
        .iter()
        .zip(points.0)
        .zip(details)
        .map(|((criterion, tenths), detail)| Reason {
            criterion: (*criterion).into(),
            points: f64::from(tenths) / 10.0,
            detail,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_must_add_up_to_one_hundred() {
        assert!(ScoringTable::default().validate().is_ok());
        let text = r#"{"impact_themes": 40, "ticket_fit": 25, "instruments": 15, "stage_focus": 10, "regional_focus": 10, "certifications": 10}"#;
        assert!(ScoringTable::from_json(text).unwrap_err().contains("110"));
        assert!(ScoringTable::from_json(r#"{"impact_themes": 100}"#).is_err());
    }

    #[test]
    fn tenths_round_half_up() {
        assert_eq!(tenths(30, 1, 2), 150);
        assert_eq!(tenths(30, 1, 3), 100);
        assert_eq!(tenths(10, 1, 3), 33);
        assert_eq!(tenths(10, 2, 3), 67);
    }
}
