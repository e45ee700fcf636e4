//! The on-disk record of one event, versioned and checksummed.
//!
//! sled promises no stable on-disk format of its own, and has open reports of damage
//! after abrupt stops, so each record carries its own format version and a CRC-32 of
//! everything after the checksum. Layout, little-endian:
//!
//! ```text
//! u8  format (1)      u32 crc32 of the rest
//! u64 sequence        u64 stream_version      i64 recorded_at_ms
//! u16 len + id        u16 len + stream        u16 len + principal
//! u32 len + payload
//! ```

use crate::RecordedEvent;

/// The record format this code writes and reads.
pub const RECORD_FORMAT: u8 = 1;

const HEADER_BYTES: usize = 1 + 4;

/// Encodes `event` as a record. Field lengths are bounded by the append checks.
pub fn encode(event: &RecordedEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        HEADER_BYTES + 24 + 10 + event.id.len() + event.stream.len() + event.principal.len() + event.payload.len(),
    );
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&event.sequence.to_le_bytes());
    out.extend_from_slice(&event.stream_version.to_le_bytes());
    out.extend_from_slice(&event.recorded_at_ms.to_le_bytes());
    for text in [&event.id, &event.stream, &event.principal] {
        let length = u16::try_from(text.len()).expect("append checks bound ids, streams and principals");
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    let length = u32::try_from(event.payload.len()).expect("append checks bound payloads");
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&event.payload);
    let crc = crc32fast::hash(&out[HEADER_BYTES..]);
    out[1..HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a record, or says what is wrong with it.
pub fn decode(bytes: &[u8]) -> Result<RecordedEvent, String> {
    let format = *bytes.first().ok_or("empty record")?;
    if format != RECORD_FORMAT {
        return Err(format!("record format {format}, expected {RECORD_FORMAT}"));
    }
    let stored_crc = u32::from_le_bytes(
        bytes.get(1..HEADER_BYTES).ok_or("truncated header")?.try_into().map_err(|_| "truncated header")?,
    );
    let body = &bytes[HEADER_BYTES..];
    if crc32fast::hash(body) != stored_crc {
        return Err("checksum mismatch".into());
    }
    let mut reader = Reader { bytes: body };
    let sequence = reader.u64()?;
    let stream_version = reader.u64()?;
    let recorded_at_ms = reader.u64()? as i64;
    let id = reader.text16()?;
    let stream = reader.text16()?;
    let principal = reader.text16()?;
    let payload_length = reader.u32()? as usize;
    let payload = reader.take(payload_length)?.to_vec();
    if !reader.bytes.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok(RecordedEvent { sequence, stream, stream_version, id, principal, recorded_at_ms, payload })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < count {
            return Err("truncated record".into());
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| "truncated")?))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| "truncated")?))
    }

    fn text16(&mut self) -> Result<String, String> {
        let length = u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| "truncated")?) as usize;
        String::from_utf8(self.take(length)?.to_vec()).map_err(|_| "text is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RecordedEvent {
        RecordedEvent {
            sequence: 7,
            stream: "request/r1".into(),
            stream_version: 2,
            id: "e-7".into(),
            principal: "acme".into(),
            recorded_at_ms: 1_700_000_000_000,
            payload: br#"{"a":1}"#.to_vec(),
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(&encode(&sample())).unwrap(), sample());
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let bytes = encode(&sample());
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[index] ^= 1 << bit;
                assert!(decode(&damaged).is_err(), "byte {index} bit {bit}");
            }
        }
        for length in 0..bytes.len() {
            assert!(decode(&bytes[..length]).is_err(), "truncated to {length}");
        }
    }
}
