//! A small programme in a running service, made once per fuzzing process: requests,
//! coaching, a mandate and a round table with its agenda, by five principals.

use std::sync::{Arc, OnceLock};

use serde_json::json;
use tafel_contract::{PrincipalId, SubmitReply, SubmitRoute};
use tafel_service::principals::{PrincipalEntry, Principals, PrincipalsFile};
use tafel_service::{Service, snapshot};
use tafel_store::{OpenOptions, SledLog};

pub const PRINCIPALS: [(&str, &str); 5] = [
    ("acme", "entrepreneur"),
    ("rival", "entrepreneur"),
    ("coach", "coach"),
    ("bank", "financier"),
    ("organiser", "organiser"),
];

#[allow(dead_code)] // Each target uses what it needs.
pub struct World {
    pub runtime: tokio::runtime::Runtime,
    pub log: SledLog,
    pub service: Arc<Service>,
    /// The service's directory, kept for as long as the process runs.
    pub _dir: tempfile::TempDir,
}

fn envelope(id: &str, event_type: &str, subject: &str, data: serde_json::Value) -> Vec<u8> {
    json!({"specversion": "1.0", "id": id, "source": "/fuzz", "type": event_type, "subject": subject, "data": data})
        .to_string()
        .into_bytes()
}

fn request(id: &str) -> serde_json::Value {
    json!({"request_id": id, "organisation": {"name": "De Fietsfabriek", "kvk": "01234567", "region": "NL324"},
           "title": "Refurbished bikes", "summary": "", "amount_eur": 150000, "instruments": ["loan"],
           "stage": "early_revenue", "impact_themes": [8, 12], "certifications": []})
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let log = SledLog::open(&dir.path().join("log"), OpenOptions::default()).expect("a log");
        let principals = PRINCIPALS
            .iter()
            .map(|(id, role)| PrincipalEntry {
                id: PrincipalId::parse(id).expect("an id"),
                role: serde_json::from_value(json!(role)).expect("a role"),
                token_sha256: None,
                nats_password_bcrypt: None,
            })
            .collect();
        let principals = Principals::from_file(&PrincipalsFile { principals }).expect("principals");
        let policy = snapshot::Policy { dir: None, every: 0 };
        let service =
            runtime.block_on(async {
                let (service, _projection) =
                    tafel_service::start_with(log.clone(), principals, Default::default(), None, policy)
                        .await
                        .expect("the service starts");
                let submit = |who: &str, body: Vec<u8>| {
                    let service = service.clone();
                    let route = SubmitRoute::http(&PrincipalId::parse(who).expect("an id"));
                    async move {
                        let reply = service.submit(&body, &route).await;
                        assert!(matches!(reply, SubmitReply::Accepted { .. }), "{reply:?}");
                    }
                };
                submit("acme", envelope("r1", "tafel.request.submitted", "r1", request("r1"))).await;
                submit("acme", envelope("r2", "tafel.request.submitted", "r2", request("r2"))).await;
                submit(
                    "coach",
                    envelope(
                        "c1",
                        "tafel.request.coached",
                        "r1",
                        json!({"request_id": "r1", "coach": "coach", "readiness": "ready", "notes": ""}),
                    ),
                )
                .await;
                submit("bank", envelope("m1", "tafel.mandate.published", "m1",
                json!({"mandate_id": "m1", "financier": {"name": "Bank", "kind": "bank"}, "ticket_min_eur": 50000,
                       "ticket_max_eur": 200000, "instruments": ["loan"], "stages": ["early_revenue"],
                       "impact_themes": [], "regions": ["NL"], "required_certifications": [], "co_financing": false,
                       "budget_eur": 1000000}))).await;
                submit(
                    "organiser",
                    envelope(
                        "t1",
                        "tafel.roundtable.scheduled",
                        "t1",
                        json!({"roundtable_id": "t1", "title": "Juni", "date": "2021-06-15", "mandate_ids": ["m1"]}),
                    ),
                )
                .await;
                submit(
                    "organiser",
                    envelope(
                        "t1-a",
                        "tafel.roundtable.agenda_set",
                        "t1",
                        json!({"roundtable_id": "t1", "request_ids": ["r1"]}),
                    ),
                )
                .await;
                submit(
                    "bank",
                    envelope(
                        "t1-s",
                        "tafel.roundtable.assessed",
                        "t1",
                        json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "interest": "yes"}),
                    ),
                )
                .await;
                service
            });
        World { runtime, log, service, _dir: dir }
    })
}

/// Every form of the web pages but signing out: its path, the principal it is meant for, and fields it
/// takes when filled in right (the seeds of the `form` target).
#[allow(dead_code)] // Each target uses what it needs.
pub const FORMS: [(&str, &str, &str); 14] = [
    (
        "/requests/new",
        "acme",
        "organisation.name=Acme&organisation.kvk=12345678&organisation.region=NL324&title=Bikes&summary=More+bikes\
         &amount_eur=50.000&instruments=loan&stage=growth&impact_themes=8&event_id=form-r",
    ),
    (
        "/requests/r1/revise",
        "acme",
        "organisation.name=Acme&organisation.kvk=12345678&organisation.region=NL324&title=Bikes&summary=\
         &amount_eur=%E2%82%AC+150.000&instruments=loan&instruments=equity&stage=early_revenue&impact_themes=8\
         &impact_themes=12&certifications=b_corp&event_id=form-r1",
    ),
    ("/requests/r2/withdraw", "acme", "reason=done&event_id=form-w"),
    ("/requests/r2/coach", "coach", "readiness=ready&notes=Goed&event_id=form-c"),
    (
        "/mandates/new",
        "bank",
        "financier.name=Bank+A&financier.kind=bank&ticket_min_eur=10000&ticket_max_eur=20.000&instruments=loan\
         &stages=growth&impact_themes=7&regions=NL3&required_certifications=b_corp&co_financing=true\
         &budget_eur=100000&event_id=form-m",
    ),
    (
        "/mandates/m1/revise",
        "bank",
        "financier.name=Bank&financier.kind=bank&ticket_min_eur=50000&ticket_max_eur=200000&instruments=loan\
         &stages=early_revenue&regions=NL&co_financing=false&event_id=form-m1",
    ),
    ("/mandates/m1/close", "bank", "reason=done&event_id=form-mc"),
    ("/roundtables/new", "organiser", "title=Spring&date=2027-04-01&mandate_ids=m1&event_id=form-t"),
    ("/roundtables/t1/agenda", "organiser", "request_ids=r1&request_ids=r2&event_id=form-a"),
    (
        "/roundtables/t1/assess",
        "bank",
        "prefix=a0-0-&request_id=r1&mandate_id=m1&a0-0-interest=maybe&a0-0-scores.impact=4&a0-0-notes=x&event_id=form-s",
    ),
    ("/roundtables/t1/recuse", "bank", "request_id=r1&mandate_id=m1&reason_field=r&r=conflict&event_id=form-x"),
    (
        "/roundtables/t1/conclude",
        "organiser",
        "outcome=r1&commit.r1.m1=yes&amount.r1.m1=50.000&instrument.r1.m1=loan&version=3&event_id=form-o",
    ),
    ("/signin", "acme", "token=not-a-token&next=%2Frequests"),
    ("/signin/demo", "acme", "principal=rival"),
];

/// Every page that reads a query string or a path's id.
#[allow(dead_code)] // Each target uses what it needs.
pub const PAGES: [&str; 18] = [
    "/",
    "/signin",
    "/language/en",
    "/requests",
    "/requests/new",
    "/requests/r1",
    "/requests/r1/revise",
    "/coaching",
    "/mandates",
    "/mandates/new",
    "/mandates/m1",
    "/mandates/m1/revise",
    "/matches",
    "/roundtables",
    "/roundtables/new",
    "/roundtables/t1",
    "/dashboard",
    "/report.csv",
];
