//! Steps 1 and 4 of a submit on any bytes and any NATS subject: the subject's route,
//! the envelope, and the event's data. Whatever comes in, the answer is a value or a
//! refusal with a code, never a panic; an accepted envelope's identity is stable.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tafel_contract::envelope::{SubmitRoute, parse_envelope};
use tafel_contract::{EventData, PrincipalId};

fuzz_target!(|input: &[u8]| {
    // The first line is the NATS subject, the rest the body (an empty first line: HTTP).
    let (subject, body) = match input.iter().position(|&b| b == b'\n') {
        Some(at) => (&input[..at], &input[at + 1..]),
        None => (&b""[..], input),
    };
    let route = match std::str::from_utf8(subject) {
        Ok("") | Err(_) => SubmitRoute::http(&PrincipalId::parse("fuzzer").expect("a valid id")),
        Ok(subject) => match SubmitRoute::from_nats_subject(subject) {
            Some(route) => route,
            None => return,
        },
    };
    let Ok(envelope) = parse_envelope(body, &route) else { return };
    if let Ok(data) = EventData::parse(envelope.event_type, &envelope.subject, &envelope.data) {
        let _ = data.check();
        assert_eq!(data.aggregate_id(), &envelope.subject, "data names the envelope's aggregate");
    }
    if let Ok(principal) = PrincipalId::parse(&route.principal) {
        assert_eq!(envelope.identity(&principal), envelope.identity(&principal));
    }
});
