//! The Rust contract and `proto/tafel-v1.schema.json` must agree. Every example in
//! `proto/examples/` goes through both an independent JSON Schema validator (the
//! `jsonschema` crate) and this crate's parsing, and each must give the answer the
//! manifest names; what Rust emits (stored events, replies, shortlists) must validate
//! against the schema and against the official CloudEvents 1.0 schema.

use std::path::PathBuf;

use serde_json::{Value, json};
use tafel_contract::envelope::format_recorded_at;
use tafel_contract::shortlist::{Consortium, ConsortiumPart, Fit, NearMiss, Reason, Shortlist, ShortlistEntry};
use tafel_contract::vocab::Instrument;
use tafel_contract::{
    AggregateId, EventData, EventId, EventType, PrincipalId, RecordedMeta, Refusal, StoredEvent, SubmitReply,
    SubmitRoute, parse_envelope,
};

fn proto_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto")
}

fn read_json(relative: &str) -> Value {
    let text = std::fs::read_to_string(proto_dir().join(relative)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A validator for one definition of the contract schema.
fn validator(definition: &str) -> jsonschema::Validator {
    let contract = read_json("tafel-v1.schema.json");
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/$defs/{definition}"),
        "$defs": contract["$defs"],
    });
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

fn cloudevents_validator() -> jsonschema::Validator {
    let schema = read_json("reference/cloudevents-1.0.schema.json");
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} does not validate: {errors:?}\n{instance:#}");
}

/// Steps 1 and 4 of a submit, as the gateway runs them.
fn check_in_rust(raw: &[u8], route: &SubmitRoute) -> Result<(), Refusal> {
    let envelope = parse_envelope(raw, route)?;
    EventData::parse(envelope.event_type, &envelope.subject, &envelope.data).map(|_| ())
}

#[test]
fn every_example_gets_its_answer_from_both_validators() {
    let manifest = read_json("examples/manifest.json");
    let incoming = validator("incoming_event");
    let cloudevents = cloudevents_validator();
    let examples = manifest["examples"].as_array().unwrap();
    assert!(examples.len() >= 40, "the manifest lost examples");
    let mut checked_valid = 0;
    for example in examples {
        let file = example["file"].as_str().unwrap();
        let raw = std::fs::read(proto_dir().join("examples").join(file)).unwrap();
        let parsed: Option<Value> = serde_json::from_slice(&raw).ok();
        let principal = example["principal"].as_str().unwrap();
        let subject = match example["nats_subject"].as_str() {
            Some(subject) => subject.to_owned(),
            None => {
                let tokens = parsed
                    .as_ref()
                    .and_then(|event| event["type"].as_str())
                    .and_then(EventType::parse)
                    .map_or("request.submitted", EventType::subject_tokens);
                format!("tafel.submit.{tokens}.{principal}")
            }
        };
        let route = SubmitRoute::from_nats_subject(&subject).unwrap();
        let rust = check_in_rust(&raw, &route);
        let schema_accepts = parsed.as_ref().is_some_and(|event| incoming.is_valid(event));

        if example["expect"] == "valid" {
            assert_eq!(rust, Ok(()), "{file}: Rust refused a valid example");
            assert_valid(&incoming, parsed.as_ref().unwrap(), file);
            assert_valid(&cloudevents, parsed.as_ref().unwrap(), file);
            checked_valid += 1;
        } else {
            let refusal = rust.expect_err(&format!("{file}: Rust accepted an invalid example"));
            assert_eq!(refusal.code.as_str(), example["expect"]["code"], "{file}: {refusal}");
            if let Some(field) = example["expect"]["field"].as_str() {
                assert_eq!(refusal.field.as_deref(), Some(field), "{file}: {refusal}");
            }
            let schema_should_accept = example["schema"] == "valid";
            assert_eq!(
                schema_accepts,
                schema_should_accept,
                "{file}: the schema {} it, the manifest says it should not",
                if schema_accepts { "accepts" } else { "refuses" }
            );
        }
    }
    assert_eq!(checked_valid, 12, "one valid example per submittable type");
}

#[test]
fn stored_events_validate_against_both_schemas() {
    let stored = validator("stored_event");
    let cloudevents = cloudevents_validator();
    let manifest = read_json("examples/manifest.json");
    for example in manifest["examples"].as_array().unwrap().iter().filter(|e| e["expect"] == "valid") {
        let file = example["file"].as_str().unwrap();
        let raw = std::fs::read(proto_dir().join("examples").join(file)).unwrap();
        let principal = PrincipalId::parse(example["principal"].as_str().unwrap()).unwrap();
        let envelope = parse_envelope(&raw, &SubmitRoute::http(&principal)).unwrap();
        let event = StoredEvent {
            envelope,
            meta: RecordedMeta {
                sequence: 42,
                streamversion: 3,
                principal,
                recordedat: format_recorded_at(1_623_750_000_123),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_valid(&stored, &json, file);
        assert_valid(&cloudevents, &json, file);
        let back: StoredEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event, "{file}: a stored event does not read back");
    }
}

#[test]
fn replies_and_shortlists_validate() {
    let replies = validator("submit_reply");
    let accepted = SubmitReply::accepted(EventId::parse("evt-1").unwrap(), 42, 3, true);
    assert_valid(&replies, &serde_json::to_value(accepted).unwrap(), "an accepted reply");
    let raw = br#"{"specversion": "1.0"}"#;
    let refusal =
        parse_envelope(raw, &SubmitRoute::from_nats_subject("tafel.submit.request.submitted.a").unwrap()).unwrap_err();
    let refused = SubmitReply::refused(None, refusal);
    assert_valid(&replies, &serde_json::to_value(refused).unwrap(), "a refused reply");
    assert!(!replies.is_valid(&json!({"accepted": true, "id": "x"})), "the reply schema accepts anything");

    let id = |text: &str| AggregateId::parse(text).unwrap();
    let shortlist = Shortlist {
        request_id: id("r1"),
        as_of: 17,
        entries: vec![ShortlistEntry {
            mandate_id: id("m1"),
            financier: "Triodos Bank".into(),
            score: 87.5,
            fit: Fit::Partial,
            max_contribution_eur: 150_000,
            reasons: vec![Reason {
                criterion: "impact_themes".into(),
                points: 30.0,
                detail: "shares SDG 7, 12".into(),
            }],
        }],
        consortia: vec![Consortium {
            total_eur: 400_000,
            parts: vec![
                ConsortiumPart { mandate_id: id("m1"), amount_eur: 250_000, instrument: Instrument::Loan },
                ConsortiumPart { mandate_id: id("m2"), amount_eur: 150_000, instrument: Instrument::Equity },
            ],
        }],
        near_misses: vec![NearMiss {
            mandate_id: id("m3"),
            financier: "DOEN".into(),
            failed: "stage".into(),
            detail: "takes growth, mature; the request is early_revenue".into(),
        }],
    };
    assert_valid(&validator("shortlist"), &serde_json::to_value(shortlist).unwrap(), "a shortlist");
}

#[test]
fn the_schema_lists_exactly_the_rust_vocabularies() {
    let contract = read_json("tafel-v1.schema.json");
    let defs = &contract["$defs"];
    let listed = |name: &str| -> Vec<String> {
        defs[name]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    use tafel_contract::vocab::{Certification, FinancierKind, Stage};
    let strings = |all: Vec<&str>| all.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(listed("instrument"), strings(Instrument::ALL.iter().map(|i| i.as_str()).collect()));
    assert_eq!(listed("stage"), strings(Stage::ALL.iter().map(|i| i.as_str()).collect()));
    assert_eq!(listed("certification"), strings(Certification::ALL.iter().map(|i| i.as_str()).collect()));
    assert_eq!(listed("financier_kind"), strings(FinancierKind::ALL.iter().map(|i| i.as_str()).collect()));
    assert_eq!(listed("event_type"), strings(EventType::ALL.iter().map(|i| i.as_str()).collect()));
    let codes: Vec<String> = defs["error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, strings(tafel_contract::ErrorCode::ALL.iter().map(|c| c.as_str()).collect()));
}
