//! Given these events, when this arrives, then this decision (or this refusal).

use serde_json::{Value, json};
use tafel_contract::envelope::format_recorded_at;
use tafel_contract::reply::ErrorCode;
use tafel_contract::vocab::Role;
use tafel_contract::{
    AggregateKind, Envelope, EventData, EventType, PrincipalId, RecordedMeta, StoredEvent, SubmitRoute, parse_envelope,
};
use tafel_domain::{Actor, Decision, World};

const DAY_MS: i64 = 86_400_000;
/// 2021-06-01T00:00:00Z
const JUNE_2021_MS: i64 = 1_622_505_600_000;

fn actor(id: &str) -> Actor {
    let role = match id {
        "coach" => Role::Coach,
        "organiser" => Role::Organiser,
        "admin" => Role::Admin,
        id if id.starts_with("bank") || id.starts_with("fund") => Role::Financier,
        _ => Role::Entrepreneur,
    };
    Actor::new(PrincipalId::parse(id).unwrap(), role)
}

fn envelope(event_type: &str, data: Value, expected: Option<u64>) -> Envelope {
    let event_type = EventType::parse(event_type).unwrap();
    let subject = data[event_type.aggregate().id_field()].as_str().unwrap().to_owned();
    let mut event = json!({"specversion": "1.0", "id": "e", "source": "/test", "type": event_type.as_str(),
                           "subject": subject, "data": data});
    if let Some(expected) = expected {
        event["expectedversion"] = json!(expected);
    }
    parse_envelope(event.to_string().as_bytes(), &SubmitRoute { principal: "x".into(), type_tokens: None }).unwrap()
}

fn request(id: &str) -> Value {
    json!({"request_id": id, "organisation": {"name": "Fietsfabriek", "kvk": "01234567", "region": "NL324"},
           "title": "Bikes", "summary": "", "amount_eur": 150000, "instruments": ["loan"],
           "stage": "early_revenue", "impact_themes": [8, 12], "certifications": []})
}

fn mandate(id: &str) -> Value {
    json!({"mandate_id": id, "financier": {"name": "Bank", "kind": "bank"}, "ticket_min_eur": 50000,
           "ticket_max_eur": 200000, "instruments": ["loan", "equity"], "stages": ["early_revenue", "growth"],
           "impact_themes": [], "regions": ["NL"], "required_certifications": [], "co_financing": true,
           "budget_eur": 250000})
}

/// A world with the events applied in order, one day apart from 2021-06-01.
struct Given {
    world: World,
    events: Vec<StoredEvent>,
}

impl Given {
    fn new() -> Self {
        Given { world: World::default(), events: Vec::new() }
    }

    fn event(mut self, principal: &str, event_type: &str, data: Value) -> Self {
        let envelope = envelope(event_type, data, None);
        let kind = envelope.event_type.aggregate();
        let sequence = self.world.last_sequence() + 1;
        let stored = StoredEvent {
            meta: RecordedMeta {
                sequence,
                streamversion: self.world.version(kind, &envelope.subject) + 1,
                principal: PrincipalId::parse(principal).unwrap(),
                recordedat: format_recorded_at(JUNE_2021_MS + sequence as i64 * DAY_MS),
            },
            envelope,
        };
        self.world.apply(&stored).unwrap();
        self.events.push(stored);
        self
    }

    fn ready_request(self, owner: &str, id: &str) -> Self {
        self.event(owner, "tafel.request.submitted", request(id)).event(
            "coach",
            "tafel.request.coached",
            json!({"request_id": id, "coach": "coach", "readiness": "ready", "notes": ""}),
        )
    }

    fn table_with_agenda(self) -> Self {
        self.ready_request("acme", "r1")
            .event("bank-a", "tafel.mandate.published", mandate("m1"))
            .event("bank-b", "tafel.mandate.published", mandate("m2"))
            .event("bank-a", "tafel.mandate.published", mandate("m3"))
            .event(
                "organiser",
                "tafel.roundtable.scheduled",
                json!({"roundtable_id": "t1", "title": "Juni", "date": "2021-06-15", "mandate_ids": ["m1", "m2"]}),
            )
            .event("organiser", "tafel.roundtable.agenda_set", json!({"roundtable_id": "t1", "request_ids": ["r1"]}))
    }

    fn when(&self, who: &str, event_type: &str, data: Value) -> Result<Decision, (ErrorCode, Option<String>)> {
        self.when_expecting(who, event_type, data, None)
    }

    fn when_expecting(
        &self,
        who: &str,
        event_type: &str,
        data: Value,
        expected: Option<u64>,
    ) -> Result<Decision, (ErrorCode, Option<String>)> {
        let envelope = envelope(event_type, data, expected);
        let parsed = EventData::parse(envelope.event_type, &envelope.subject, &envelope.data).unwrap();
        self.world.decide(&actor(who), &envelope, &parsed).map_err(|r| (r.code, r.field))
    }
}

fn code<T>(result: Result<T, (ErrorCode, Option<String>)>) -> Option<ErrorCode> {
    result.err().map(|(code, _)| code)
}

#[test]
fn a_new_request_goes_to_its_stream_at_version_zero() {
    let decision = Given::new().when("acme", "tafel.request.submitted", request("r1")).unwrap();
    assert_eq!(
        decision,
        Decision { stream: "request/r1".into(), version: 0, position: 0, reads: vec![], touches: vec![] }
    );
}

#[test]
fn a_decision_names_the_other_aggregates_it_read() {
    let given = Given::new().table_with_agenda();
    let position = given.world.last_sequence();
    let agenda = given
        .when("organiser", "tafel.roundtable.agenda_set", json!({"roundtable_id": "t1", "request_ids": ["r1"]}))
        .unwrap();
    assert_eq!((agenda.stream.as_str(), agenda.position), ("roundtable/t1", position));
    assert_eq!(agenda.reads, vec!["request/r1".to_owned()]);
    assert!(agenda.touches.is_empty());

    let given = given.event(
        "bank-a",
        "tafel.roundtable.assessed",
        json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "interest": "yes"}),
    );
    let conclusion = json!({"roundtable_id": "t1", "outcomes": [{"request_id": "r1", "commitments": [
        {"mandate_id": "m1", "amount_eur": 100000, "instrument": "loan"}]}]});
    let concluded = given.when("organiser", "tafel.roundtable.concluded", conclusion).unwrap();
    assert_eq!(concluded.reads, vec!["mandate/m1".to_owned(), "request/r1".to_owned()]);
    assert_eq!(concluded.touches, vec!["mandate/m1".to_owned()], "a conclusion spends its mandates' budgets");

    let scheduled = given
        .when(
            "organiser",
            "tafel.roundtable.scheduled",
            json!({"roundtable_id": "t2", "title": "T", "date": "2021-07-01", "mandate_ids": ["m3", "m1"]}),
        )
        .unwrap();
    assert_eq!(scheduled.reads, vec!["mandate/m1".to_owned(), "mandate/m3".to_owned()]);
}

#[test]
fn creating_what_exists_is_a_version_conflict() {
    let given = Given::new().event("acme", "tafel.request.submitted", request("r1"));
    assert_eq!(code(given.when("other", "tafel.request.submitted", request("r1"))), Some(ErrorCode::VersionConflict));
}

#[test]
fn expected_versions_must_match() {
    let given = Given::new().event("acme", "tafel.request.submitted", request("r1"));
    let revised = || request("r1");
    assert_eq!(
        code(given.when_expecting("acme", "tafel.request.revised", revised(), Some(0))),
        Some(ErrorCode::VersionConflict)
    );
    assert_eq!(given.when_expecting("acme", "tafel.request.revised", revised(), Some(1)).unwrap().version, 1);
    assert_eq!(
        code(Given::new().when_expecting("acme", "tafel.request.submitted", request("r2"), Some(1))),
        Some(ErrorCode::VersionConflict)
    );
}

#[test]
fn only_the_owner_changes_a_request_and_others_do_not_see_it() {
    let given = Given::new().event("acme", "tafel.request.submitted", request("r1"));
    let withdraw = || json!({"request_id": "r1", "reason": "no"});
    assert!(given.when("acme", "tafel.request.withdrawn", withdraw()).is_ok());
    assert_eq!(code(given.when("rival", "tafel.request.withdrawn", withdraw())), Some(ErrorCode::NotFound));
    assert_eq!(code(given.when("acme", "tafel.request.revised", request("r9"))), Some(ErrorCode::NotFound));
}

#[test]
fn a_withdrawn_request_cannot_change() {
    let given = Given::new().event("acme", "tafel.request.submitted", request("r1")).event(
        "acme",
        "tafel.request.withdrawn",
        json!({"request_id": "r1", "reason": "funded"}),
    );
    assert_eq!(code(given.when("acme", "tafel.request.revised", request("r1"))), Some(ErrorCode::InvalidState));
    let coached = json!({"request_id": "r1", "coach": "coach", "readiness": "ready", "notes": ""});
    assert_eq!(code(given.when("coach", "tafel.request.coached", coached)), Some(ErrorCode::InvalidState));
}

#[test]
fn a_coach_coaches_in_its_own_name() {
    let given = Given::new().event("acme", "tafel.request.submitted", request("r1"));
    let as_other = json!({"request_id": "r1", "coach": "someone", "readiness": "ready", "notes": ""});
    assert_eq!(
        given.when("coach", "tafel.request.coached", as_other).unwrap_err(),
        (ErrorCode::InvalidData, Some("data.coach".into()))
    );
    let own = json!({"request_id": "r1", "coach": "coach", "readiness": "ready", "notes": ""});
    assert!(given.when("coach", "tafel.request.coached", own).is_ok());
}

#[test]
fn revising_a_ready_request_sends_it_back_to_coaching() {
    let given = Given::new().ready_request("acme", "r1").event("acme", "tafel.request.revised", request("r1"));
    let state = given.world.request(&"r1".parse_id()).unwrap();
    assert!(!state.is_ready());
    assert_eq!(state.version, 3);
}

#[test]
fn only_the_owner_changes_a_mandate_and_a_closed_one_stays_closed() {
    let given = Given::new().event("bank-a", "tafel.mandate.published", mandate("m1"));
    assert_eq!(code(given.when("bank-b", "tafel.mandate.revised", mandate("m1"))), Some(ErrorCode::NotFound));
    assert!(given.when("bank-a", "tafel.mandate.revised", mandate("m1")).is_ok());
    let closed = given.event("bank-a", "tafel.mandate.closed", json!({"mandate_id": "m1", "reason": "spent"}));
    assert_eq!(code(closed.when("bank-a", "tafel.mandate.revised", mandate("m1"))), Some(ErrorCode::InvalidState));
}

#[test]
fn a_financier_sees_a_request_once_ready_and_eligible() {
    let financier = actor("bank-a");
    let given = Given::new().event("acme", "tafel.request.submitted", request("r1")).event(
        "bank-a",
        "tafel.mandate.published",
        mandate("m1"),
    );
    let r1 = "r1".parse_id();
    assert!(!given.world.can_see(&financier, AggregateKind::Request, &r1), "not ready yet");
    let given = given.event(
        "coach",
        "tafel.request.coached",
        json!({"request_id": "r1", "coach": "coach", "readiness": "ready", "notes": ""}),
    );
    assert!(given.world.can_see(&financier, AggregateKind::Request, &r1));
    assert!(!given.world.can_see(&actor("bank-b"), AggregateKind::Request, &r1), "no mandate");
    assert!(!given.world.can_see(&actor("rival"), AggregateKind::Request, &r1));
    assert!(given.world.can_see(&actor("coach"), AggregateKind::Request, &r1));
    // Ineligible (wrong stage) but on the agenda of a round table it is invited to.
    let mut other = mandate("m9");
    other["stages"] = json!(["mature"]);
    let given = given.event("bank-b", "tafel.mandate.published", other);
    assert!(!given.world.can_see(&actor("bank-b"), AggregateKind::Request, &r1));
    let given = given
        .event(
            "organiser",
            "tafel.roundtable.scheduled",
            json!({"roundtable_id": "t1", "title": "T", "date": "2021-07-01", "mandate_ids": ["m9"]}),
        )
        .event("organiser", "tafel.roundtable.agenda_set", json!({"roundtable_id": "t1", "request_ids": ["r1"]}));
    assert!(given.world.can_see(&actor("bank-b"), AggregateKind::Request, &r1));
}

#[test]
fn round_tables_invite_active_mandates_and_take_ready_requests() {
    let given = Given::new().event("acme", "tafel.request.submitted", request("r1")).event(
        "bank-a",
        "tafel.mandate.published",
        mandate("m1"),
    );
    let schedule = |ids: Value| json!({"roundtable_id": "t1", "title": "T", "date": "2021-07-01", "mandate_ids": ids});
    assert_eq!(
        given.when("organiser", "tafel.roundtable.scheduled", schedule(json!(["m1", "nope"]))).unwrap_err(),
        (ErrorCode::InvalidState, Some("data.mandate_ids[1]".into()))
    );
    let given = given.event("organiser", "tafel.roundtable.scheduled", schedule(json!(["m1"])));
    let agenda = json!({"roundtable_id": "t1", "request_ids": ["r1"]});
    assert_eq!(
        given.when("organiser", "tafel.roundtable.agenda_set", agenda.clone()).unwrap_err(),
        (ErrorCode::InvalidState, Some("data.request_ids[0]".into()))
    );
    let given = given.event(
        "coach",
        "tafel.request.coached",
        json!({"request_id": "r1", "coach": "coach", "readiness": "ready", "notes": ""}),
    );
    assert!(given.when("organiser", "tafel.roundtable.agenda_set", agenda).is_ok());
}

#[test]
fn assessments_need_an_invited_own_mandate_and_a_request_on_the_agenda() {
    let given = Given::new().table_with_agenda();
    let assess = |mandate: &str, request: &str| json!({"roundtable_id": "t1", "request_id": request, "mandate_id": mandate, "interest": "yes"});
    assert!(given.when("bank-a", "tafel.roundtable.assessed", assess("m1", "r1")).is_ok());
    // Another financier's mandate answers exactly as one that does not exist.
    assert_eq!(
        given.when("bank-a", "tafel.roundtable.assessed", assess("m2", "r1")).unwrap_err(),
        (ErrorCode::NotFound, Some("data.mandate_id".into()))
    );
    assert_eq!(
        given.when("bank-a", "tafel.roundtable.assessed", assess("no-such", "r1")).unwrap_err(),
        (ErrorCode::NotFound, Some("data.mandate_id".into()))
    );
    let recuse = json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m2", "reason": "x"});
    assert_eq!(
        given.when("bank-a", "tafel.roundtable.recused", recuse).unwrap_err(),
        (ErrorCode::NotFound, Some("data.mandate_id".into()))
    );
    assert_eq!(
        given.when("bank-a", "tafel.roundtable.assessed", assess("m3", "r1")).unwrap_err(),
        (ErrorCode::InvalidState, Some("data.mandate_id".into()))
    );
    assert_eq!(
        given.when("bank-a", "tafel.roundtable.assessed", assess("m1", "r2")).unwrap_err(),
        (ErrorCode::InvalidState, Some("data.request_id".into()))
    );
    assert_eq!(code(given.when("fund-x", "tafel.roundtable.assessed", assess("m1", "r1"))), Some(ErrorCode::NotFound));
    let recused = given.event(
        "bank-a",
        "tafel.roundtable.recused",
        json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "reason": "conflict"}),
    );
    assert_eq!(
        code(recused.when("bank-a", "tafel.roundtable.assessed", assess("m1", "r1"))),
        Some(ErrorCode::InvalidState)
    );
}

#[test]
fn assessment_is_blind_until_the_conclusion() {
    let given = Given::new()
        .table_with_agenda()
        .event(
            "bank-a",
            "tafel.roundtable.assessed",
            json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "interest": "yes"}),
        )
        .event(
            "bank-b",
            "tafel.roundtable.assessed",
            json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m2", "interest": "no"}),
        );
    let t1 = "t1".parse_id();
    let seen_by = |world: &World, who: &str| {
        world.view(&actor(who), AggregateKind::Roundtable, &t1).unwrap()["assessments"].as_array().unwrap().len()
    };
    assert_eq!(seen_by(&given.world, "bank-a"), 1);
    assert_eq!(seen_by(&given.world, "bank-b"), 1);
    assert_eq!(seen_by(&given.world, "organiser"), 2);
    let concluded =
        given.event("organiser", "tafel.roundtable.concluded", json!({"roundtable_id": "t1", "outcomes": []}));
    assert_eq!(seen_by(&concluded.world, "bank-a"), 2);
}

#[test]
fn commitments_follow_assessments_tickets_instruments_and_budgets() {
    let given = Given::new().table_with_agenda().event(
        "bank-a",
        "tafel.roundtable.assessed",
        json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "interest": "maybe"}),
    );
    let conclude = |mandate: &str, amount: u64, instrument: &str| {
        json!({"roundtable_id": "t1", "outcomes": [{"request_id": "r1", "commitments": [
            {"mandate_id": mandate, "amount_eur": amount, "instrument": instrument}]}]})
    };
    assert!(given.when("organiser", "tafel.roundtable.concluded", conclude("m1", 150000, "loan")).is_ok());
    let refusal = |data| given.when("organiser", "tafel.roundtable.concluded", data).unwrap_err();
    assert_eq!(
        refusal(conclude("m2", 150000, "loan")),
        (ErrorCode::InvalidState, Some("data.outcomes[0].commitments[0].mandate_id".into()))
    );
    assert_eq!(
        refusal(conclude("m1", 250000, "loan")),
        (ErrorCode::InvalidState, Some("data.outcomes[0].commitments[0].amount_eur".into()))
    );
    assert_eq!(
        refusal(conclude("m1", 150000, "equity")),
        (ErrorCode::InvalidState, Some("data.outcomes[0].commitments[0].instrument".into()))
    );
    assert_eq!(
        code(given.when("bank-a", "tafel.roundtable.concluded", conclude("m1", 150000, "loan"))),
        Some(ErrorCode::Forbidden)
    );

    // After a conclusion the budget is spent down and nothing more is accepted there.
    let concluded = given.event("organiser", "tafel.roundtable.concluded", conclude("m1", 150000, "loan"));
    assert_eq!(concluded.world.mandate(&"m1".parse_id()).unwrap().remaining_budget_eur, Some(100000));
    assert_eq!(
        code(concluded.when(
            "organiser",
            "tafel.roundtable.agenda_set",
            json!({"roundtable_id": "t1", "request_ids": ["r1"]})
        )),
        Some(ErrorCode::InvalidState)
    );
}

#[test]
fn a_gap_or_a_version_out_of_step_is_refused_on_replay() {
    let mut world = World::default();
    let envelope = envelope("tafel.request.submitted", request("r1"), None);
    let mut stored = StoredEvent {
        meta: RecordedMeta {
            sequence: 2,
            streamversion: 1,
            principal: PrincipalId::parse("acme").unwrap(),
            recordedat: format_recorded_at(JUNE_2021_MS),
        },
        envelope,
    };
    assert!(world.apply(&stored).is_err());
    stored.meta.sequence = 1;
    stored.meta.streamversion = 2;
    assert!(world.apply(&stored).is_err());
    stored.meta.streamversion = 1;
    assert!(world.apply(&stored).is_ok());
}

trait ParseId {
    fn parse_id(&self) -> tafel_contract::AggregateId;
}

impl ParseId for str {
    fn parse_id(&self) -> tafel_contract::AggregateId {
        tafel_contract::AggregateId::parse(self).unwrap()
    }
}

#[test]
fn a_later_assessment_replaces_the_earlier_and_a_concluded_table_takes_nothing() {
    let assess =
        |interest: &str| json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "interest": interest});
    let given = Given::new().table_with_agenda().event("bank-a", "tafel.roundtable.assessed", assess("no")).event(
        "bank-a",
        "tafel.roundtable.assessed",
        assess("yes"),
    );
    let table = given.world.roundtable(&"t1".parse_id()).unwrap();
    assert_eq!(table.assessments.len(), 1);
    assert_eq!(table.assessments[0].assessed.interest, tafel_contract::vocab::Interest::Yes);
    let concluded =
        given.event("organiser", "tafel.roundtable.concluded", json!({"roundtable_id": "t1", "outcomes": []}));
    assert_eq!(
        code(concluded.when("bank-a", "tafel.roundtable.assessed", assess("maybe"))),
        Some(ErrorCode::InvalidState)
    );
    let recuse = json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "reason": "late"});
    assert_eq!(code(concluded.when("bank-a", "tafel.roundtable.recused", recuse)), Some(ErrorCode::InvalidState));
    let again = json!({"roundtable_id": "t1", "outcomes": []});
    assert_eq!(code(concluded.when("organiser", "tafel.roundtable.concluded", again)), Some(ErrorCode::InvalidState));
}

#[test]
fn commitments_in_one_conclusion_add_up_against_the_budget() {
    // m1: budget 250 000, tickets 50 000-200 000; two requests on the agenda.
    let given = Given::new()
        .ready_request("acme", "r1")
        .ready_request("acme", "r2")
        .event("bank-a", "tafel.mandate.published", mandate("m1"))
        .event(
            "organiser",
            "tafel.roundtable.scheduled",
            json!({"roundtable_id": "t1", "title": "T", "date": "2021-07-01", "mandate_ids": ["m1"]}),
        )
        .event("organiser", "tafel.roundtable.agenda_set", json!({"roundtable_id": "t1", "request_ids": ["r1", "r2"]}))
        .event(
            "bank-a",
            "tafel.roundtable.assessed",
            json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "interest": "yes"}),
        )
        .event(
            "bank-a",
            "tafel.roundtable.assessed",
            json!({"roundtable_id": "t1", "request_id": "r2", "mandate_id": "m1", "interest": "yes"}),
        );
    let conclude = |second: u64| {
        json!({"roundtable_id": "t1", "outcomes": [
            {"request_id": "r1", "commitments": [{"mandate_id": "m1", "amount_eur": 150000, "instrument": "loan"}]},
            {"request_id": "r2", "commitments": [{"mandate_id": "m1", "amount_eur": second, "instrument": "loan"}]}]})
    };
    assert_eq!(
        given.when("organiser", "tafel.roundtable.concluded", conclude(150000)).unwrap_err(),
        (ErrorCode::InvalidState, Some("data.outcomes[1].commitments[0].amount_eur".into()))
    );
    assert!(given.when("organiser", "tafel.roundtable.concluded", conclude(100000)).is_ok());
}

#[test]
fn the_report_counts_by_year_and_mandates_closed_by_its_end() {
    use tafel_domain::report::report;
    // Events one day apart from 2021-06-01: the last ones fall in 2021 too; build a
    // second-year event by hand.
    let given = Given::new()
        .ready_request("acme", "r1")
        .event("bank-a", "tafel.mandate.published", mandate("m1"))
        .event("bank-b", "tafel.mandate.published", mandate("m2"))
        .event("bank-b", "tafel.mandate.closed", json!({"mandate_id": "m2", "reason": "spent"}));
    let mut events = given.events.clone();
    let mut late = events[0].clone();
    late.envelope = envelope("tafel.request.submitted", request("r9"), None);
    late.meta.sequence = events.len() as u64 + 1;
    late.meta.streamversion = 1;
    late.meta.recordedat = "2022-03-01T10:00:00.000Z".into();
    events.push(late);
    let all = report(&events, None).unwrap();
    assert_eq!((all.requests_submitted, all.requests_ready, all.mandates_active), (2, 1, 1));
    let in_2021 = report(&events, Some(2021)).unwrap();
    assert_eq!((in_2021.requests_submitted, in_2021.mandates_active), (1, 1));
    assert_eq!(in_2021.median_days_submitted_to_ready, Some(1.0));
    let in_2022 = report(&events, Some(2022)).unwrap();
    assert_eq!((in_2022.requests_submitted, in_2022.requests_ready, in_2022.mandates_active), (1, 0, 0));
}

/// A log written before contract 1.1 may hold two conclusions that together overdrew a
/// budget: it still replays (what is left is then nothing), and the overdraft is
/// reported instead of hidden.
#[test]
fn an_overdraft_already_in_the_log_is_replayed_and_reported() {
    let given = Given::new().table_with_agenda().event(
        "bank-a",
        "tafel.roundtable.assessed",
        json!({"roundtable_id": "t1", "request_id": "r1", "mandate_id": "m1", "interest": "yes"}),
    );
    let conclusion = |amount: u64| {
        json!({"roundtable_id": "t1", "outcomes": [{"request_id": "r1", "commitments": [
            {"mandate_id": "m1", "amount_eur": amount, "instrument": "loan"}]}]})
    };
    // What a decision refuses, a log written by an older Tafel may hold; `event` applies
    // it directly, as a replay does.
    let once = given.event("organiser", "tafel.roundtable.concluded", conclusion(200000));
    assert!(once.world.overdrafts().is_empty());
    assert_eq!(
        code(once.when("organiser", "tafel.roundtable.concluded", conclusion(200000))),
        Some(ErrorCode::InvalidState)
    );
    let replayed = once.event("organiser", "tafel.roundtable.concluded", conclusion(200000));
    assert_eq!(replayed.world.mandate(&"m1".parse_id()).unwrap().remaining_budget_eur, Some(0));
    assert_eq!(replayed.world.overdrafts().len(), 1, "{:?}", replayed.world.overdrafts());
    assert!(replayed.world.overdrafts()[0].contains("overdrew mandate m1"));
}
