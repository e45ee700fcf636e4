//! The key layout of the one sled tree that holds the log. One tree, so that an event,
//! its stream-index entry and its id-index entry go into one atomic batch.
//!
//! - `F` -> the log's format ([`LOG_FORMAT`], u32, big-endian)
//! - `E` + sequence (u64 BE) -> the event record ([`crate::record`])
//! - `S` + stream + 0x00 + first stream version (u64 BE) -> first sequence, count (u64
//!   BE each): one entry per append, covering its events (which have contiguous
//!   versions and sequences). Logs written before this held one entry per event whose
//!   value is just the sequence; both read as a [`StreamRun`].
//! - `I` + event id -> sequence, stream version (u64 BE each), SHA-256 of its identity

pub const FORMAT: &[u8] = b"F";
/// The layout the format marker names: 1, a stream-index entry per event (and record
/// format 1); 2, a stream-index entry per append. This code reads both and marks a log
/// of layout 1 as 2 when it opens it (its old entries still read), so that an older
/// Tafel refuses the log as of an unknown format instead of misreading it.
pub const LOG_FORMAT: u32 = 2;
/// Layouts this code opens.
pub const LOG_FORMATS_READ: [u32; 2] = [1, 2];
/// The log's identity: 16 random bytes written when the log is created (or first
/// opened by a Tafel that knows of it), so that what was derived from one log (a
/// snapshot) is never taken for another's.
pub const LOG_ID: &[u8] = b"L";
pub const EVENT: u8 = b'E';
pub const STREAM: u8 = b'S';
pub const ID: u8 = b'I';

pub fn event(sequence: u64) -> [u8; 9] {
    let mut key = [EVENT; 9];
    key[1..].copy_from_slice(&sequence.to_be_bytes());
    key
}

pub fn sequence_of_event_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?))
}

/// The prefix of all of one stream's index entries.
pub fn stream_prefix(stream: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(stream.len() + 2);
    key.push(STREAM);
    key.extend_from_slice(stream.as_bytes());
    key.push(0);
    key
}

pub fn stream_entry(stream: &str, version: u64) -> Vec<u8> {
    let mut key = stream_prefix(stream);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

/// One stream-index entry: `count` events of a stream from `first_version`, at
/// sequences from `first_sequence`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamRun {
    pub first_version: u64,
    pub first_sequence: u64,
    pub count: u64,
}

impl StreamRun {
    pub fn encode(&self) -> [u8; 16] {
        let mut value = [0; 16];
        value[..8].copy_from_slice(&self.first_sequence.to_be_bytes());
        value[8..].copy_from_slice(&self.count.to_be_bytes());
        value
    }

    /// Reads an entry from its key (which ends in the first version) and value.
    pub fn decode(key: &[u8], value: &[u8]) -> Option<Self> {
        let first_version = decode_u64(key.get(key.len().checked_sub(8)?..)?)?;
        let (first_sequence, count) = match value.len() {
            8 => (decode_u64(value)?, 1),
            16 => (decode_u64(&value[..8])?, decode_u64(&value[8..])?),
            _ => return None,
        };
        (first_version >= 1 && count >= 1).then_some(Self { first_version, first_sequence, count })
    }

    pub fn last_version(&self) -> u64 {
        self.first_version + self.count - 1
    }

    /// The sequence of the event at `version`, if this run holds it.
    pub fn sequence_of(&self, version: u64) -> Option<u64> {
        (self.first_version..=self.last_version())
            .contains(&version)
            .then(|| self.first_sequence + version - self.first_version)
    }
}

pub fn id(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 1);
    key.push(ID);
    key.extend_from_slice(id.as_bytes());
    key
}

/// What the id index holds for one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdEntry {
    pub sequence: u64,
    pub stream_version: u64,
    pub identity_sha256: [u8; 32],
}

impl IdEntry {
    pub fn encode(&self) -> [u8; 48] {
        let mut value = [0; 48];
        value[..8].copy_from_slice(&self.sequence.to_be_bytes());
        value[8..16].copy_from_slice(&self.stream_version.to_be_bytes());
        value[16..].copy_from_slice(&self.identity_sha256);
        value
    }

    pub fn decode(value: &[u8]) -> Option<Self> {
        if value.len() != 48 {
            return None;
        }
        Some(Self {
            sequence: u64::from_be_bytes(value[..8].try_into().ok()?),
            stream_version: u64::from_be_bytes(value[8..16].try_into().ok()?),
            identity_sha256: value[16..].try_into().ok()?,
        })
    }
}

pub fn decode_u64(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}
