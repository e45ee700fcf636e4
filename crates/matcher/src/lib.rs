//! Tafel's matcher: which mandates are eligible for which requests, how well they fit
//! and why (contract section 5).
//!
//! It is pure: it is fed facts and answers questions, and does no I/O, reads no clock
//! and uses no randomness, so that any past answer can be recomputed from the log.
//! [`eligibility`] holds rules 1-8 of section 5; scores, near misses, consortia and live
//! shortlists build on it (the matcher issue).

pub mod eligibility;

pub use eligibility::{Eligible, Failure, MandateStanding, Rule, check};
