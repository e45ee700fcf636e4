//! `tafel serve --demo`: a plausible Haarlem round-table programme, loaded through the
//! ordinary submit path (every event passes every check) when the log is empty. Seven
//! entrepreneurs, nine financiers, a coach and an organiser; all requests coached; one
//! round table concluded with commitments, a second one with its agenda set and
//! assessments coming in.

use serde_json::{Value, json};
use tafel_contract::vocab::Role;

/// The demo's principals.
pub const PRINCIPALS: &[(&str, Role)] = &[
    ("fietsfabriek", Role::Entrepreneur),
    ("schoolmaal", Role::Entrepreneur),
    ("zonnedak-coop", Role::Entrepreneur),
    ("kringloop-haarlem", Role::Entrepreneur),
    ("stadsboerderij", Role::Entrepreneur),
    ("taalmaatje", Role::Entrepreneur),
    ("repaircafe", Role::Entrepreneur),
    ("triodos", Role::Financier),
    ("rabobank-haarlem", Role::Financier),
    ("doen", Role::Financier),
    ("oranje-fonds", Role::Financier),
    ("gemeente-haarlem", Role::Financier),
    ("social-impact-ventures", Role::Financier),
    ("qredits", Role::Financier),
    ("angel-haarlem", Role::Financier),
    ("oneplanetcrowd", Role::Financier),
    ("coach-marieke", Role::Coach),
    ("organiser-haarlem", Role::Organiser),
];

#[allow(clippy::too_many_arguments)]
fn request(
    id: &str,
    name: &str,
    kvk: &str,
    region: &str,
    title: &str,
    amount: u64,
    instruments: &[&str],
    stage: &str,
    sdgs: &[u8],
    certifications: &[&str],
) -> Value {
    json!({"request_id": id, "organisation": {"name": name, "kvk": kvk, "region": region}, "title": title,
           "summary": format!("{title}, in the Haarlem impact programme."), "amount_eur": amount,
           "instruments": instruments, "stage": stage, "impact_themes": sdgs, "certifications": certifications})
}

#[allow(clippy::too_many_arguments)]
fn mandate(
    id: &str,
    name: &str,
    kind: &str,
    min: u64,
    max: u64,
    instruments: &[&str],
    stages: &[&str],
    sdgs: &[u8],
    regions: &[&str],
    co_financing: bool,
    budget: Option<u64>,
) -> Value {
    json!({"mandate_id": id, "financier": {"name": name, "kind": kind}, "ticket_min_eur": min, "ticket_max_eur": max,
           "instruments": instruments, "stages": stages, "impact_themes": sdgs, "regions": regions,
           "required_certifications": [], "co_financing": co_financing, "budget_eur": budget})
}

/// The demo's events, in order, each with its publishing principal.
pub fn events() -> Vec<(&'static str, Value)> {
    let requests = [
        (
            "fietsfabriek",
            request(
                "fietsfabriek-2021",
                "De Fietsfabriek",
                "60123456",
                "NL324",
                "Refurbished bicycles by people far from the labour market",
                150_000,
                &["loan", "subordinated_loan"],
                "early_revenue",
                &[8, 11, 12],
                &["code_sociale_ondernemingen"],
            ),
        ),
        (
            "schoolmaal",
            request(
                "schoolmaal-2021",
                "Schoolmaal Haarlem",
                "61234567",
                "NL324",
                "Healthy school meals cooked by trainees",
                250_000,
                &["loan", "equity"],
                "growth",
                &[2, 3, 4],
                &["b_corp"],
            ),
        ),
        (
            "zonnedak-coop",
            request(
                "zonnedak-2021",
                "Zonnedak Coöperatie",
                "62345678",
                "NL324",
                "Solar roofs on social housing",
                400_000,
                &["subordinated_loan", "loan"],
                "growth",
                &[7, 13],
                &[],
            ),
        ),
        (
            "kringloop-haarlem",
            request(
                "kringloop-2021",
                "Kringloop Haarlem",
                "63456789",
                "NL324",
                "A second reuse shop with a repair workshop",
                80_000,
                &["grant", "loan"],
                "early_revenue",
                &[8, 12],
                &["code_sociale_ondernemingen"],
            ),
        ),
        (
            "stadsboerderij",
            request(
                "stadsboerderij-2021",
                "Stadsboerderij Schalkwijk",
                "64567890",
                "NL324",
                "An urban farm with daytime activities",
                120_000,
                &["grant"],
                "pre_revenue",
                &[2, 11, 15],
                &[],
            ),
        ),
        (
            "taalmaatje",
            request(
                "taalmaatje-2021",
                "Taalmaatje",
                "65678901",
                "NL324",
                "An app pairing newcomers with language buddies",
                60_000,
                &["convertible_loan", "grant"],
                "pre_revenue",
                &[4, 10],
                &[],
            ),
        ),
        (
            "repaircafe",
            request(
                "repaircafe-2021",
                "Repair Café BV",
                "66789012",
                "NL324",
                "Repair services for companies",
                50_000,
                &["loan"],
                "early_revenue",
                &[12],
                &[],
            ),
        ),
    ];
    let mandates = [
        (
            "triodos",
            mandate(
                "triodos-mkb",
                "Triodos Bank",
                "bank",
                50_000,
                500_000,
                &["loan", "subordinated_loan"],
                &["early_revenue", "growth", "mature"],
                &[7, 8, 11, 12, 13],
                &["NL"],
                true,
                Some(3_000_000),
            ),
        ),
        (
            "rabobank-haarlem",
            mandate(
                "rabobank-impact",
                "Rabobank Haarlem",
                "bank",
                25_000,
                250_000,
                &["loan"],
                &["early_revenue", "growth"],
                &[],
                &["NL32"],
                true,
                Some(1_000_000),
            ),
        ),
        (
            "doen",
            mandate(
                "doen-participaties",
                "DOEN Participaties",
                "impact_fund",
                100_000,
                1_000_000,
                &["equity", "convertible_loan", "subordinated_loan"],
                &["growth", "mature"],
                &[7, 12, 13],
                &[],
                true,
                Some(5_000_000),
            ),
        ),
        (
            "oranje-fonds",
            mandate(
                "oranje-fonds-meedoen",
                "Oranje Fonds",
                "foundation",
                10_000,
                100_000,
                &["grant"],
                &["idea", "pre_revenue", "early_revenue"],
                &[1, 2, 4, 10, 11],
                &["NL"],
                true,
                Some(400_000),
            ),
        ),
        (
            "gemeente-haarlem",
            mandate(
                "haarlem-impactfonds",
                "Gemeente Haarlem Impactfonds",
                "public_fund",
                10_000,
                150_000,
                &["grant", "loan"],
                &["idea", "pre_revenue", "early_revenue", "growth"],
                &[],
                &["NL324"],
                true,
                Some(600_000),
            ),
        ),
        (
            "social-impact-ventures",
            mandate(
                "siv-fund-2",
                "Social Impact Ventures",
                "impact_fund",
                250_000,
                2_000_000,
                &["equity"],
                &["growth", "mature"],
                &[3, 4, 8, 10],
                &["NL"],
                false,
                None,
            ),
        ),
        (
            "qredits",
            mandate(
                "qredits-microkrediet",
                "Qredits",
                "private_investor",
                5_000,
                250_000,
                &["loan"],
                &["idea", "pre_revenue", "early_revenue"],
                &[],
                &["NL"],
                false,
                None,
            ),
        ),
        (
            "angel-haarlem",
            mandate(
                "angels-haarlem",
                "Business Angels Haarlem",
                "private_investor",
                25_000,
                150_000,
                &["convertible_loan", "equity"],
                &["pre_revenue", "early_revenue"],
                &[4, 8, 10],
                &["NL3"],
                true,
                Some(500_000),
            ),
        ),
        (
            "oneplanetcrowd",
            mandate(
                "oneplanetcrowd-leningen",
                "Oneplanetcrowd",
                "crowdfunding_platform",
                50_000,
                500_000,
                &["loan", "convertible_loan"],
                &["early_revenue", "growth"],
                &[7, 13],
                &["NL"],
                true,
                None,
            ),
        ),
    ];
    let mut events: Vec<(&'static str, Value)> = Vec::new();
    let mut push = |principal: &'static str, event_type: &str, subject: &str, data: Value| {
        let id = format!("demo-{:03}", events.len() + 1);
        events.push((
            principal,
            json!({"specversion": "1.0", "id": id, "source": "/tafel/demo", "type": event_type, "subject": subject, "data": data}),
        ));
    };
    for (principal, data) in requests.iter() {
        push(principal, "tafel.request.submitted", data["request_id"].as_str().unwrap_or_default(), data.clone());
    }
    for (principal, data) in mandates.iter() {
        push(principal, "tafel.mandate.published", data["mandate_id"].as_str().unwrap_or_default(), data.clone());
    }
    for (_, data) in requests.iter() {
        let id = data["request_id"].as_str().unwrap_or_default();
        push(
            "coach-marieke",
            "tafel.request.coached",
            id,
            json!({"request_id": id, "coach": "coach-marieke", "readiness": "ready", "notes": "Plan and cash-flow forecast are ready for the table."}),
        );
    }
    // The spring round table: three requests, five financiers, concluded.
    push(
        "organiser-haarlem",
        "tafel.roundtable.scheduled",
        "ronde-tafel-voorjaar",
        json!({"roundtable_id": "ronde-tafel-voorjaar", "title": "Ronde tafel Haarlem, voorjaar", "date": "2021-04-15",
                "mandate_ids": ["triodos-mkb", "rabobank-impact", "oranje-fonds-meedoen", "haarlem-impactfonds", "doen-participaties"]}),
    );
    push(
        "organiser-haarlem",
        "tafel.roundtable.agenda_set",
        "ronde-tafel-voorjaar",
        json!({"roundtable_id": "ronde-tafel-voorjaar", "request_ids": ["fietsfabriek-2021", "kringloop-2021", "zonnedak-2021"]}),
    );
    let assess = |request: &str, mandate: &str, interest: &str, amount: Option<u64>, scores: [u8; 3]| {
        json!({"roundtable_id": "ronde-tafel-voorjaar", "request_id": request, "mandate_id": mandate, "interest": interest,
               "amount_eur": amount, "scores": {"impact": scores[0], "team": scores[1], "financials": scores[2]}})
    };
    push(
        "triodos",
        "tafel.roundtable.assessed",
        "ronde-tafel-voorjaar",
        assess("fietsfabriek-2021", "triodos-mkb", "yes", Some(100_000), [5, 4, 3]),
    );
    push(
        "gemeente-haarlem",
        "tafel.roundtable.assessed",
        "ronde-tafel-voorjaar",
        assess("fietsfabriek-2021", "haarlem-impactfonds", "maybe", Some(50_000), [5, 4, 4]),
    );
    push(
        "oranje-fonds",
        "tafel.roundtable.assessed",
        "ronde-tafel-voorjaar",
        assess("kringloop-2021", "oranje-fonds-meedoen", "yes", Some(40_000), [4, 4, 3]),
    );
    push(
        "rabobank-haarlem",
        "tafel.roundtable.assessed",
        "ronde-tafel-voorjaar",
        assess("kringloop-2021", "rabobank-impact", "no", None, [4, 3, 2]),
    );
    push(
        "doen",
        "tafel.roundtable.assessed",
        "ronde-tafel-voorjaar",
        assess("zonnedak-2021", "doen-participaties", "yes", Some(250_000), [5, 5, 4]),
    );
    push(
        "triodos",
        "tafel.roundtable.assessed",
        "ronde-tafel-voorjaar",
        assess("zonnedak-2021", "triodos-mkb", "maybe", Some(150_000), [5, 4, 4]),
    );
    push(
        "organiser-haarlem",
        "tafel.roundtable.concluded",
        "ronde-tafel-voorjaar",
        json!({"roundtable_id": "ronde-tafel-voorjaar", "outcomes": [
             {"request_id": "fietsfabriek-2021", "commitments": [
                 {"mandate_id": "triodos-mkb", "amount_eur": 100_000, "instrument": "loan"},
                 {"mandate_id": "haarlem-impactfonds", "amount_eur": 50_000, "instrument": "loan"}]},
             {"request_id": "kringloop-2021", "commitments": [
                 {"mandate_id": "oranje-fonds-meedoen", "amount_eur": 40_000, "instrument": "grant"}]},
             {"request_id": "zonnedak-2021", "commitments": [
                 {"mandate_id": "doen-participaties", "amount_eur": 250_000, "instrument": "subordinated_loan"},
                 {"mandate_id": "triodos-mkb", "amount_eur": 150_000, "instrument": "subordinated_loan"}]}]}),
    );
    // The autumn round table: the other four requests, all nine financiers, under way.
    push(
        "organiser-haarlem",
        "tafel.roundtable.scheduled",
        "ronde-tafel-najaar",
        json!({"roundtable_id": "ronde-tafel-najaar", "title": "Ronde tafel Haarlem, najaar", "date": "2021-10-14",
                "mandate_ids": mandates.iter().map(|(_, m)| m["mandate_id"].clone()).collect::<Vec<_>>()}),
    );
    push(
        "organiser-haarlem",
        "tafel.roundtable.agenda_set",
        "ronde-tafel-najaar",
        json!({"roundtable_id": "ronde-tafel-najaar", "request_ids": ["schoolmaal-2021", "stadsboerderij-2021", "taalmaatje-2021", "repaircafe-2021"]}),
    );
    let assess = |request: &str, mandate: &str, interest: &str, amount: Option<u64>| json!({"roundtable_id": "ronde-tafel-najaar", "request_id": request, "mandate_id": mandate, "interest": interest, "amount_eur": amount});
    push(
        "social-impact-ventures",
        "tafel.roundtable.assessed",
        "ronde-tafel-najaar",
        assess("schoolmaal-2021", "siv-fund-2", "maybe", Some(250_000)),
    );
    push(
        "oranje-fonds",
        "tafel.roundtable.assessed",
        "ronde-tafel-najaar",
        assess("stadsboerderij-2021", "oranje-fonds-meedoen", "yes", Some(60_000)),
    );
    push(
        "gemeente-haarlem",
        "tafel.roundtable.assessed",
        "ronde-tafel-najaar",
        assess("stadsboerderij-2021", "haarlem-impactfonds", "yes", Some(60_000)),
    );
    push(
        "angel-haarlem",
        "tafel.roundtable.recused",
        "ronde-tafel-najaar",
        json!({"roundtable_id": "ronde-tafel-najaar", "request_id": "taalmaatje-2021", "mandate_id": "angels-haarlem", "reason": "One of our angels advises Taalmaatje."}),
    );
    push(
        "qredits",
        "tafel.roundtable.assessed",
        "ronde-tafel-najaar",
        assess("repaircafe-2021", "qredits-microkrediet", "yes", Some(50_000)),
    );
    events
}
