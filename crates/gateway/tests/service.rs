//! The service in-process: the one code path behind every transport. Here for what an
//! end-to-end test cannot provoke on demand: a log that cannot be written (`unavailable`).

use serde_json::json;
use tafel_contract::reply::ErrorCode;
use tafel_contract::{PrincipalId, SubmitReply, SubmitRoute};
use tafel_gateway::principals::{PrincipalEntry, Principals, PrincipalsFile};
use tafel_gateway::serve::start_service;
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
