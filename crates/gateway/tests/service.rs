//! The service in-process: the one code path behind every transport. Here for what an
//! end-to-end test cannot provoke on demand: a log that cannot be written (`unavailable`),
//! and races between decisions that read several aggregates, tried many times each.

#[path = "../../../tests/events.rs"]
mod events;

use serde_json::json;
use tafel_contract::reply::ErrorCode;
use tafel_contract::{PrincipalId, SubmitReply, SubmitRoute};
use tafel_service::principals::{PrincipalEntry, Principals, PrincipalsFile};
use tafel_service::start as start_service;
use tafel_store::{OpenOptions, SledLog};

fn submitted(id: &str) -> Vec<u8> {
    json!({"specversion": "1.0", "id": id, "source": "/t", "type": "tafel.request.submitted", "subject": id,
           "data": {"request_id": id, "organisation": {"name": "A", "kvk": "01234567", "region": "NL3"},
                    "title": "T", "summary": "", "amount_eur": 1000, "instruments": ["grant"],
                    "stage": "idea", "impact_themes": [1], "certifications": []}})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn a_log_that_cannot_be_written_answers_unavailable_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
    let principals = Principals::from_file(&PrincipalsFile {
        principals: vec![PrincipalEntry {
            id: PrincipalId::parse("acme").unwrap(),
            role: tafel_contract::vocab::Role::Entrepreneur,
            token_sha256: None,
            nats_password_bcrypt: None,
        }],
    })
    .unwrap();
    let (service, projection) =
        start_service(log.clone(), principals, tafel_matcher::ScoringTable::default(), None).await.unwrap();
    let route = SubmitRoute::from_nats_subject("tafel.submit.request.submitted.acme").unwrap();

    let reply = service.submit(&submitted("a1"), &route).await;
    assert!(matches!(reply, SubmitReply::Accepted { sequence: 1, .. }), "{reply:?}");

    log.shutdown().await;
    match service.submit(&submitted("a2"), &route).await {
        SubmitReply::Refused { error, .. } => assert_eq!(error.code, ErrorCode::Unavailable),
        other => panic!("expected unavailable, got {other:?}"),
    }
    drop(service);
    drop(log);
    // The projection's subscription holds the sled files until it sees the log close.
    projection.await.unwrap();
    let reopened = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
    assert_eq!(tafel_store::EventLog::last_sequence(&reopened), 1);
}

fn principals(list: &[(&str, tafel_contract::vocab::Role)]) -> Principals {
    Principals::from_file(&PrincipalsFile {
        principals: list
            .iter()
            .map(|(id, role)| PrincipalEntry {
                id: PrincipalId::parse(id).unwrap(),
                role: *role,
                token_sha256: None,
                nats_password_bcrypt: None,
            })
            .collect(),
    })
    .unwrap()
}

struct Programme {
    service: std::sync::Arc<tafel_service::Service>,
    log: SledLog,
    _dir: tempfile::TempDir,
}

impl Programme {
    async fn start() -> Programme {
        use tafel_contract::vocab::Role;
        let dir = tempfile::tempdir().unwrap();
        let log = SledLog::open(dir.path(), OpenOptions::default()).unwrap();
        let principals = principals(&[
            ("acme", Role::Entrepreneur),
            ("coach", Role::Coach),
            ("organiser", Role::Organiser),
            ("bank-a", Role::Financier),
        ]);
        let (service, _projection) =
            start_service(log.clone(), principals, tafel_matcher::ScoringTable::default(), None).await.unwrap();
        Programme { service, log, _dir: dir }
    }

    async fn submit(
        &self,
        principal: &str,
        id: &str,
        event_type: &str,
        subject: &str,
        data: serde_json::Value,
    ) -> SubmitReply {
        let body = events::envelope(id, event_type, subject, data).to_string();
        let principal = PrincipalId::parse(principal).unwrap();
        self.service.submit(body.as_bytes(), &SubmitRoute::http(&principal)).await
    }

    async fn accept(&self, principal: &str, id: &str, event_type: &str, subject: &str, data: serde_json::Value) {
        let reply = self.submit(principal, id, event_type, subject, data).await;
        assert!(matches!(reply, SubmitReply::Accepted { duplicate: false, .. }), "{id}: {reply:?}");
    }

    /// The types of the stored events, in log order, as (type, subject).
    fn log(&self) -> Vec<(String, String)> {
        tafel_service::stored::read_all_events(&self.log)
            .unwrap()
            .into_iter()
            .map(|e| (e.envelope.event_type.to_string(), e.envelope.subject.to_string()))
            .collect()
    }

    async fn ready_request(&self, id: &str) {
        self.accept("acme", &format!("{id}-s"), "tafel.request.submitted", id, events::request(id)).await;
        self.accept(
            "coach",
            &format!("{id}-c"),
            "tafel.request.coached",
            id,
            json!({"request_id": id, "coach": "coach", "readiness": "ready", "notes": ""}),
        )
        .await;
    }
}

fn accepted(reply: &SubmitReply) -> bool {
    matches!(reply, SubmitReply::Accepted { .. })
}

/// Contract 1.1 section 3: an agenda and the withdrawal of a request on it, sent at the
/// same moment. Either order is fine, but never an agenda appended after the
/// withdrawal it did not see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_agenda_is_appended_after_a_withdrawal_of_its_request() {
    const TRIES: usize = 60;
    let programme = Programme::start().await;
    programme.accept("bank-a", "m1-p", "tafel.mandate.published", "m1", events::mandate("m1")).await;
    let mut both = 0;
    for round in 0..TRIES {
        let (request, table) = (format!("r{round}"), format!("t{round}"));
        programme.ready_request(&request).await;
        programme
            .accept(
                "organiser",
                &format!("{table}-s"),
                "tafel.roundtable.scheduled",
                &table,
                json!({"roundtable_id": table, "title": "T", "date": "2021-07-01", "mandate_ids": ["m1"]}),
            )
            .await;
        let (agenda_id, withdrawal_id) = (format!("{table}-a"), format!("{request}-w"));
        let agenda = programme.submit(
            "organiser",
            &agenda_id,
            "tafel.roundtable.agenda_set",
            &table,
            json!({"roundtable_id": table, "request_ids": [request]}),
        );
        let withdrawal = programme.submit(
            "acme",
            &withdrawal_id,
            "tafel.request.withdrawn",
            &request,
            json!({"request_id": request, "reason": "found money"}),
        );
        let (agenda, withdrawal) = tokio::join!(agenda, withdrawal);
        assert!(accepted(&withdrawal), "{withdrawal:?}");
        both += usize::from(accepted(&agenda));
    }
    let log = programme.log();
    for round in 0..TRIES {
        let at = |event_type: &str, subject: String| log.iter().position(|e| e.0 == event_type && e.1 == subject);
        let withdrawn = at("tafel.request.withdrawn", format!("r{round}")).unwrap();
        if let Some(agenda) = at("tafel.roundtable.agenda_set", format!("t{round}")) {
            assert!(agenda < withdrawn, "round {round}: the agenda was appended after its request was withdrawn");
        }
    }
    eprintln!("{both} of {TRIES} agendas were appended before the withdrawal");
}

/// Contract 1.1 section 3: two conclusions at two round tables, each committing
/// 80 000 EUR of a mandate with 100 000 EUR of budget, sent at the same moment: never
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_conclusions_never_spend_one_budget_twice() {
    const TRIES: usize = 40;
    let programme = Programme::start().await;
    for round in 0..TRIES {
        let mandate = format!("m{round}");
        let mut terms = events::mandate(&mandate);
        terms["budget_eur"] = json!(100000);
        programme.accept("bank-a", &format!("{mandate}-p"), "tafel.mandate.published", &mandate, terms).await;
        let request = format!("r{round}");
        programme.ready_request(&request).await;
        let mut conclusions = Vec::new();
        for side in ["a", "b"] {
            let table = format!("t{round}{side}");
            let schedule =
                json!({"roundtable_id": table, "title": "T", "date": "2021-07-01", "mandate_ids": [mandate]});
            programme.accept("organiser", &format!("{table}-s"), "tafel.roundtable.scheduled", &table, schedule).await;
            let agenda = json!({"roundtable_id": table, "request_ids": [request]});
            programme.accept("organiser", &format!("{table}-a"), "tafel.roundtable.agenda_set", &table, agenda).await;
            let assessed =
                json!({"roundtable_id": table, "request_id": request, "mandate_id": mandate, "interest": "yes"});
            programme.accept("bank-a", &format!("{table}-y"), "tafel.roundtable.assessed", &table, assessed).await;
            conclusions.push((
                table.clone(),
                json!({"roundtable_id": table, "outcomes": [{"request_id": request,
                "commitments": [{"mandate_id": mandate, "amount_eur": 80000, "instrument": "loan"}]}]}),
            ));
        }
        let [(a, a_data), (b, b_data)] = <[_; 2]>::try_from(conclusions).unwrap();
        let (a_id, b_id) = (format!("{a}-c"), format!("{b}-c"));
        let (first, second) = tokio::join!(
            programme.submit("organiser", &a_id, "tafel.roundtable.concluded", &a, a_data),
            programme.submit("organiser", &b_id, "tafel.roundtable.concluded", &b, b_data),
        );
        assert_eq!(
            usize::from(accepted(&first)) + usize::from(accepted(&second)),
            1,
            "round {round}: {first:?} {second:?}"
        );
        let refused = if accepted(&first) { &second } else { &first };
        match refused {
            SubmitReply::Refused { error, .. } => assert_eq!(error.code, ErrorCode::InvalidState, "{error:?}"),
            other => panic!("{other:?}"),
        }
    }
}

/// A list page that ends early names, as where to go on, only what the principal may
/// see (found in review: it named the last aggregate looked at, which a financier may
/// not see).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_page_never_names_what_the_principal_may_not_see() {
    let programme = Programme::start().await;
    programme.accept("bank-a", "m1-p", "tafel.mandate.published", "m1", events::mandate("m1")).await;
    // a1 and a3 fit bank-a's mandate; a2 (an idea, not early revenue) does not.
    for id in ["a1", "a2", "a3"] {
        let mut data = events::request(id);
        data["summary"] = json!("x".repeat(2000));
        if id == "a2" {
            data["stage"] = json!("idea");
        }
        programme.accept("acme", &format!("{id}-s"), "tafel.request.submitted", id, data).await;
        let coached = json!({"request_id": id, "coach": "coach", "readiness": "ready", "notes": ""});
        programme.accept("coach", &format!("{id}-c"), "tafel.request.coached", id, coached).await;
    }
    let service = &programme.service;
    let one = service.query_result("request", "bank-a", br#"{"request_id": "a1"}"#, 1 << 20).await.unwrap();
    assert!(service.query_result("request", "bank-a", br#"{"request_id": "a2"}"#, 1 << 20).await.is_err());
    // Room for one request, not two.
    let room = one.len() + 128 + one.len() / 2;
    let page = service.query_result("requests", "bank-a", b"{}", room).await.unwrap();
    let page: serde_json::Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(page["requests"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["next"], "a1", "next names the last request shown, not the unseen a2");
    let rest = service.query_result("requests", "bank-a", br#"{"after": "a1"}"#, room).await.unwrap();
    let rest: serde_json::Value = serde_json::from_slice(&rest).unwrap();
    assert_eq!(rest["requests"][0]["request_id"], "a3", "{rest}");
}
