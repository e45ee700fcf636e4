//! Replies to a submit and the contract's error codes (section 3).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::EventId;

/// Every error code a client can receive. Query-only codes (`invalid_query`) sit here
/// too so that one enum names every code on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MalformedJson,
    InvalidEnvelope,
    UnknownType,
    SubjectMismatch,
    InvalidData,
    NotFound,
    Forbidden,
    VersionConflict,
    InvalidState,
    Conflict,
    TooLarge,
    Unavailable,
    RateLimited,
    InvalidQuery,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::MalformedJson,
        ErrorCode::InvalidEnvelope,
        ErrorCode::UnknownType,
        ErrorCode::SubjectMismatch,
        ErrorCode::InvalidData,
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::VersionConflict,
        ErrorCode::InvalidState,
        ErrorCode::Conflict,
        ErrorCode::TooLarge,
        ErrorCode::Unavailable,
        ErrorCode::RateLimited,
        ErrorCode::InvalidQuery,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidEnvelope => "invalid_envelope",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::SubjectMismatch => "subject_mismatch",
            ErrorCode::InvalidData => "invalid_data",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InvalidQuery => "invalid_query",
        }
    }

    /// The HTTP status the contract gives this code (section 6).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson
            | ErrorCode::InvalidEnvelope
            | ErrorCode::UnknownType
            | ErrorCode::SubjectMismatch
            | ErrorCode::InvalidData
            | ErrorCode::InvalidQuery => 400,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::VersionConflict | ErrorCode::InvalidState | ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::Unavailable => 503,
            ErrorCode::RateLimited => 429,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why something was refused: the code, a sentence for people, and the JSON path of
/// the offending field where there is one (`data.amount_eur`, `data.instruments[1]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: None }
    }

    pub fn at(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), field: Some(field.into()) }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {} ({field})", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for Refusal {}

/// The reply to a submit: accepted (possibly as a duplicate) or refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SubmitReply {
    Accepted {
        accepted: AcceptedFlag<true>,
        id: EventId,
        sequence: u64,
        streamversion: u64,
        duplicate: bool,
    },
    Refused {
        accepted: AcceptedFlag<false>,
        /// The id as sent, when the envelope got far enough to have one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        error: Refusal,
    },
}

impl SubmitReply {
    pub fn accepted(id: EventId, sequence: u64, streamversion: u64, duplicate: bool) -> Self {
        SubmitReply::Accepted { accepted: AcceptedFlag, id, sequence, streamversion, duplicate }
    }

    pub fn refused(id: Option<String>, error: Refusal) -> Self {
        SubmitReply::Refused { accepted: AcceptedFlag, id, error }
    }
}

/// A boolean that only ever (de)serializes as the one value `B`, so that the untagged
/// [`SubmitReply`] tells its variants apart by `accepted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AcceptedFlag<const B: bool>;

impl<const B: bool> Serialize for AcceptedFlag<B> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(B)
    }
}

impl<'de, const B: bool> Deserialize<'de> for AcceptedFlag<B> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if bool::deserialize(deserializer)? == B {
            Ok(AcceptedFlag)
        } else {
            Err(serde::de::Error::custom(format!("expected accepted = {B}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_have_the_contract_shape() {
        let accepted = SubmitReply::accepted(EventId::parse("e-1").unwrap(), 42, 3, false);
        assert_eq!(
            serde_json::to_value(&accepted).unwrap(),
            serde_json::json!({"accepted": true, "id": "e-1", "sequence": 42, "streamversion": 3, "duplicate": false})
        );
        let refused = SubmitReply::refused(
            Some("e-2".into()),
            Refusal::at(ErrorCode::InvalidData, "data.amount_eur", "amount_eur must be > 0"),
        );
        let json = serde_json::to_value(&refused).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"accepted": false, "id": "e-2", "error": {"code": "invalid_data", "message": "amount_eur must be > 0", "field": "data.amount_eur"}})
        );
        assert_eq!(serde_json::from_value::<SubmitReply>(json).unwrap(), refused);
    }

    #[test]
    fn every_code_spells_as_serde_does() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
