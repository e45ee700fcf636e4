//! Eligibility: rules 1-8 of contract section 5, exactly as written.

use tafel_contract::data::{MandateTerms, RequestDetails};
use tafel_contract::shortlist::Fit;
use tafel_contract::vocab::CalendarDate;

/// The rules of section 5, numbered as there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Rule {
    /// 1: the request is open and the mandate active.
    Open,
    /// 2: they share an instrument.
    Instruments,
    /// 3: the request's stage is among the mandate's.
    Stage,
    /// 4: a mandate region is a prefix of the request's region, or the mandate has none.
    Region,
    /// 5: the request holds every required certification.
    Certifications,
    /// 6: they share an impact theme, or the mandate has none.
    ImpactThemes,
    /// 7: `ticket_min_eur <= amount_eur`.
    TicketMin,
    /// 8: the amount fits under the cap, or the mandate co-finances a part of it.
    Capacity,
}

impl Rule {
    /// The name used on the wire (`near_misses[].failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Open => "open",
            Rule::Instruments => "instruments",
            Rule::Stage => "stage",
            Rule::Region => "region",
            Rule::Certifications => "certifications",
            Rule::ImpactThemes => "impact_themes",
            Rule::TicketMin => "ticket_min",
            Rule::Capacity => "capacity",
        }
    }
}

/// A rule that failed and what would pass it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub rule: Rule,
    pub detail: String,
}

/// How an eligible mandate can carry a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Eligible {
    pub fit: Fit,
    pub max_contribution_eur: u64,
}

/// What the log says of a mandate beyond its terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MandateStanding {
    pub closed: bool,
    /// Committed at concluded round tables, counted against `budget_eur`.
    pub committed_eur: u64,
}

/// Checks every rule; `Ok` when all hold, otherwise every rule that failed, in order.
/// `today` is the log's current date (the UTC date of the latest event), `None` for an
/// empty log.
pub fn check(
    request: &RequestDetails,
    request_open: bool,
    mandate: &MandateTerms,
    standing: MandateStanding,
    today: Option<CalendarDate>,
) -> Result<Eligible, Vec<Failure>> {
    let mut failures = Vec::new();
    let mut fail = |rule, detail: String| failures.push(Failure { rule, detail });

    let expired = matches!((mandate.valid_until, today), (Some(until), Some(today)) if today > until);
    if !request_open || standing.closed || expired {
        let detail = if !request_open {
            "the request is withdrawn".to_owned()
        } else if standing.closed {
            "the mandate is closed".to_owned()
        } else {
            format!("the mandate was valid until {}", mandate.valid_until.map(|d| d.to_string()).unwrap_or_default())
        };
        fail(Rule::Open, detail);
    }
    if !request.instruments.iter().any(|i| mandate.instruments.contains(i)) {
        fail(
            Rule::Instruments,
            format!("takes {}; the request asks {}", list(&mandate.instruments), list(&request.instruments)),
        );
    }
    if !mandate.stages.contains(&request.stage) {
        fail(Rule::Stage, format!("takes {}; the request is {}", list(&mandate.stages), request.stage));
    }
    let region = &request.organisation.region;
    if !mandate.regions.is_empty() && !mandate.regions.iter().any(|r| r.contains(region)) {
        let regions: Vec<&str> = mandate.regions.iter().map(|r| r.as_str()).collect();
        fail(Rule::Region, format!("invests in {}; the request is in {}", regions.join(", "), region.as_str()));
    }
    let missing: Vec<String> = mandate
        .required_certifications
        .iter()
        .filter(|c| !request.certifications.contains(c))
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        fail(Rule::Certifications, format!("requires {}", missing.join(", ")));
    }
    if !mandate.impact_themes.is_empty() && !request.impact_themes.iter().any(|t| mandate.impact_themes.contains(t)) {
        let themes: Vec<String> = mandate.impact_themes.iter().map(|t| t.number().to_string()).collect();
        fail(Rule::ImpactThemes, format!("funds SDG {}; the request names none of them", themes.join(", ")));
    }
    if mandate.ticket_min_eur > request.amount_eur {
        fail(
            Rule::TicketMin,
            format!("lends from {} EUR; the request asks {} EUR", mandate.ticket_min_eur, request.amount_eur),
        );
    }
    let cap_eur = match mandate.budget_eur {
        Some(budget) => mandate.ticket_max_eur.min(budget.saturating_sub(standing.committed_eur)),
        None => mandate.ticket_max_eur,
    };
    let capacity = if request.amount_eur <= cap_eur {
        Some(Eligible { fit: Fit::Full, max_contribution_eur: request.amount_eur })
    } else if mandate.co_financing && mandate.ticket_min_eur <= cap_eur {
        Some(Eligible { fit: Fit::Partial, max_contribution_eur: cap_eur })
    } else {
        let detail = if mandate.co_financing {
            format!("has {cap_eur} EUR left, below its own minimum ticket of {} EUR", mandate.ticket_min_eur)
        } else {
            format!(
                "carries at most {cap_eur} EUR and does not co-finance; the request asks {} EUR",
                request.amount_eur
            )
        };
        fail(Rule::Capacity, detail);
        None
    };
    match capacity {
        Some(eligible) if failures.is_empty() => Ok(eligible),
        _ => Err(failures),
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> RequestDetails {
        serde_json::from_value(json!({
            "request_id": "r1",
            "organisation": {"name": "Fietsfabriek", "kvk": "01234567", "region": "NL324"},
            "title": "Bikes", "summary": "", "amount_eur": 150000,
            "instruments": ["loan"], "stage": "early_revenue",
            "impact_themes": [8, 12], "certifications": ["b_corp"]
        }))
        .unwrap()
    }

    fn mandate() -> MandateTerms {
        serde_json::from_value(json!({
            "mandate_id": "m1", "financier": {"name": "Bank", "kind": "bank"},
            "ticket_min_eur": 50000, "ticket_max_eur": 500000, "instruments": ["loan", "equity"],
            "stages": ["early_revenue"], "impact_themes": [12], "regions": ["NL3"],
            "required_certifications": ["b_corp"], "co_financing": false, "valid_until": "2025-12-31"
        }))
        .unwrap()
    }

    fn today(text: &str) -> Option<CalendarDate> {
        Some(CalendarDate::parse(text).unwrap())
    }

    fn failed(result: Result<Eligible, Vec<Failure>>) -> Vec<Rule> {
        result.err().unwrap_or_default().into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn a_fitting_mandate_is_eligible_in_full() {
        let result = check(&request(), true, &mandate(), MandateStanding::default(), today("2025-12-31"));
        assert_eq!(result, Ok(Eligible { fit: Fit::Full, max_contribution_eur: 150000 }));
    }

    #[test]
    fn each_rule_fails_on_its_own() {
        let standing = MandateStanding::default();
        let day = today("2025-01-01");
        assert_eq!(failed(check(&request(), false, &mandate(), standing, day)), vec![Rule::Open]);
        assert_eq!(failed(check(&request(), true, &mandate(), standing, today("2026-01-01"))), vec![Rule::Open]);
        let closed = MandateStanding { closed: true, committed_eur: 0 };
        assert_eq!(failed(check(&request(), true, &mandate(), closed, day)), vec![Rule::Open]);
        let mut m = mandate();
        m.instruments = vec![tafel_contract::vocab::Instrument::Grant];
        assert_eq!(failed(check(&request(), true, &m, standing, day)), vec![Rule::Instruments]);
        let mut m = mandate();
        m.stages = vec![tafel_contract::vocab::Stage::Growth];
        assert_eq!(failed(check(&request(), true, &m, standing, day)), vec![Rule::Stage]);
        let mut m = mandate();
        m.regions = vec![tafel_contract::vocab::Region::parse("NL4").unwrap()];
        assert_eq!(failed(check(&request(), true, &m, standing, day)), vec![Rule::Region]);
        let mut m = mandate();
        m.required_certifications.push(tafel_contract::vocab::Certification::Pso);
        assert_eq!(failed(check(&request(), true, &m, standing, day)), vec![Rule::Certifications]);
        let mut m = mandate();
        m.impact_themes = vec![tafel_contract::vocab::Sdg::new(3).unwrap()];
        assert_eq!(failed(check(&request(), true, &m, standing, day)), vec![Rule::ImpactThemes]);
        let mut m = mandate();
        m.ticket_min_eur = 200000;
        assert_eq!(failed(check(&request(), true, &m, standing, day)), vec![Rule::TicketMin]);
        let mut m = mandate();
        m.ticket_max_eur = 100000;
        assert_eq!(failed(check(&request(), true, &m, standing, day)), vec![Rule::Capacity]);
    }

    #[test]
    fn co_financing_gives_a_partial_fit_up_to_the_cap() {
        let mut m = mandate();
        m.ticket_max_eur = 100000;
        m.co_financing = true;
        m.budget_eur = Some(400000);
        let standing = MandateStanding { closed: false, committed_eur: 320000 };
        // cap = min(100000, 400000 - 320000) = 80000 >= ticket_min 50000
        assert_eq!(
            check(&request(), true, &m, standing, None),
            Ok(Eligible { fit: Fit::Partial, max_contribution_eur: 80000 })
        );
        let spent = MandateStanding { closed: false, committed_eur: 360000 };
        assert_eq!(failed(check(&request(), true, &m, spent, None)), vec![Rule::Capacity]);
    }

    #[test]
    fn regions_match_by_prefix_and_empty_means_anywhere() {
        let mut m = mandate();
        m.regions = vec![];
        assert!(check(&request(), true, &m, MandateStanding::default(), None).is_ok());
        m.regions = vec![tafel_contract::vocab::Region::parse("NL324").unwrap()];
        assert!(check(&request(), true, &m, MandateStanding::default(), None).is_ok());
    }
}
