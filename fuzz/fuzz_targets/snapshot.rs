//! The snapshot reader on any bytes: as a whole file, and as a body between a valid
//! header and a trailer whose checksum fits (so that the decoding behind the checksum
//! is reached). Views or a reason, never a panic.

#![no_main]

#[path = "world.rs"]
mod world;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tafel_service::{projection, snapshot};
use tafel_store::EventLog;

/// The magic and header lines of a real snapshot of the world.
fn header() -> &'static [u8] {
    static HEADER: OnceLock<Vec<u8>> = OnceLock::new();
    HEADER.get_or_init(|| {
        let world = world::world();
        let views = projection::replay(&world.log, world.log.last_sequence(), Default::default()).expect("a replay");
        let mark = views.last_event.clone().expect("the world has events");
        let dir = tempfile::tempdir().expect("a directory");
        let path =
            snapshot::write(dir.path(), world.log.identity(), &views, &mark, Default::default()).expect("a snapshot");
        let bytes = std::fs::read(path).expect("the snapshot");
        let second_newline = bytes.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(1).expect("two lines").0;
        bytes[..=second_newline].to_vec()
    })
}

fuzz_target!(|input: &[u8]| {
    let world = world::world();
    let Some((&mode, body)) = input.split_first() else { return };
    let bytes = if mode & 1 == 0 {
        body.to_vec()
    } else {
        let mut bytes = header().to_vec();
        bytes.extend_from_slice(body);
        bytes.push(b'\n');
        bytes.extend_from_slice(
            serde_json::json!({"body_bytes": body.len(), "body_crc32": crc32fast::hash(body)}).to_string().as_bytes(),
        );
        bytes.push(b'\n');
        bytes
    };
    let _ = snapshot::decode(&bytes, &world.log, Default::default());
});
