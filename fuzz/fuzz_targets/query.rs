//! Every query (contract section 6) by every role on any body, as NATS gives it (JSON
//! bytes) or as HTTP does (a query string, read as axum reads it, then turned into a
//! body by `tafel_service::query_body`). The answer is JSON or a refusal with one of the
//! codes a query may give; never a panic.

#![no_main]

#[path = "world.rs"]
mod world;

use libfuzzer_sys::fuzz_target;
use tafel_contract::ErrorCode;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else { return };
    let world = world::world();
    let names = tafel_service::QUERIES;
    let name = names[usize::from(selector & 0x0f) % names.len()];
    let (principal, _) = world::PRINCIPALS[usize::from(selector >> 4) % world::PRINCIPALS.len()];
    let body = if selector & 0x80 != 0 {
        // The rest as a query string (the path's id, which HTTP adds, is one of its
        // parameters here: the same key in the body).
        let pairs = form_urlencoded::parse(rest).map(|(k, v)| (k.into_owned(), v.into_owned()));
        match tafel_service::query_body(pairs, None) {
            Ok(body) => body,
            Err(refusal) => {
                assert_eq!(refusal.code, ErrorCode::InvalidQuery);
                return;
            }
        }
    } else {
        rest.to_vec()
    };
    let answer = world.runtime.block_on(world.service.query_result(name, principal, &body, 1 << 20));
    match answer {
        Ok(reply) => {
            assert!(reply.len() <= 1 << 20, "a reply over the transport's limit");
            serde_json::from_slice::<serde_json::Value>(&reply).expect("a reply is JSON");
        }
        Err(refusal) => assert!(
            matches!(refusal.code, ErrorCode::InvalidQuery | ErrorCode::NotFound | ErrorCode::Forbidden),
            "{name} by {principal} refused with {:?}: {}",
            refusal.code,
            refusal.message
        ),
    }
});
