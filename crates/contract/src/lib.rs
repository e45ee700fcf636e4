//! Tafel's wire contract as Rust types.
//!
//! This crate is the pure core every other crate agrees on: the CloudEvents envelope
//! ([`envelope`]), the closed vocabularies of the domain ([`vocab`]), the `data` of
//! every event type ([`data`]), the replies and error codes ([`reply`]) and the
//! shortlist shape ([`shortlist`]). Incoming bytes are checked here, in the order the
//! contract gives (section 3): [`envelope::parse_envelope`] does step 1 (size, JSON,
//! envelope, type, subject) and [`data::EventData::parse`] does step 4 (the data,
//! with the JSON path of the first bad field). Steps that need the log (principals,
//! duplicates, existence, versions, state) belong to the gateway and the aggregates.
//!
//! The machine-readable form of the same contract is `proto/tafel-v1.schema.json`;
//! the tests check that this crate and that schema agree on every example in
//! `proto/examples/`.

pub mod data;
pub mod envelope;
pub mod event_type;
pub mod ids;
pub mod reply;
pub mod shortlist;
pub mod vocab;

pub use data::EventData;
pub use envelope::{Envelope, RecordedMeta, StoredEvent, SubmitRoute, parse_envelope};
pub use event_type::{AggregateKind, EventType};
pub use ids::{AggregateId, EventId, PrincipalId};
pub use reply::{ErrorCode, Refusal, SubmitReply};

/// The largest submitted event, in bytes of its JSON text (contract section 3).
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
