//! The stored record's decoder on any bytes: a record or an error, never a panic; what
//! decodes encodes back to the same bytes. Half the inputs get a checksum that fits, so
//! that the fields behind it are reached.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tafel_store::record;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut bytes = vec![record::RECORD_FORMAT];
        bytes.extend_from_slice(&crc32fast::hash(rest).to_le_bytes());
        bytes.extend_from_slice(rest);
        bytes
    };
    if let Ok(event) = record::decode(&bytes) {
        assert_eq!(record::encode(&event), bytes, "a decoded record encodes to its own bytes");
    }
});
