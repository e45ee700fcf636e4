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
