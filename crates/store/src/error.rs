//! The store's errors. The gateway maps them to the contract's codes in one place.

use thiserror::Error;

/// Why an append was refused or could not be done. Nothing of a refused batch is stored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AppendError {
    #[error("stream {stream} is at version {actual}, not the expected {expected}")]
    VersionConflict { stream: String, expected: u64, actual: u64 },
    /// The batch's [`crate::AppendCondition`] failed: `stream` has an event after the
    /// position the decision was made at. Decide again on the new state.
    #[error("stream {stream} moved on after position {after}")]
    ConditionFailed { stream: String, after: u64 },
    #[error("event id {id:?} was already appended with other content")]
    IdConflict { id: String },
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// The store cannot write now (I/O failure, shutting down); nothing was appended,
    /// unless a flush failed, in which case the store refuses all further writes.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("the log is damaged: {0}")]
    Damaged(String),
    #[error("the log was closed")]
    Closed,
}

/// Why the log could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("cannot open the log at {path}: {source}")]
    Sled { path: String, source: sled::Error },
    #[error("cannot use {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The store found damage and refuses to serve a silently shortened or altered log.
    #[error("the log at {path} is damaged: {detail}")]
    Damaged { path: String, detail: String },
    #[error("the log at {path} has record format {found}; this Tafel reads format {supported}")]
    UnsupportedFormat { path: String, found: u32, supported: u32 },
}

impl From<sled::Error> for ReadError {
    fn from(error: sled::Error) -> Self {
        ReadError::Unavailable(error.to_string())
    }
}
