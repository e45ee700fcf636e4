//! Tafel's matcher: which mandates are eligible for which requests, how well they fit
//! and why (contract section 5).
//!
//! It is pure: it is fed facts and answers questions, and does no I/O, reads no clock
//! and uses no randomness, so that any past answer can be recomputed from the log.
//! [`eligibility`] states rules 1-8 of section 5 plainly on the contract's types;
//! [`facts`] holds the same rules on packed facts for speed; [`scoring`] the score table
//! and its reasons; [`consortium`] the bounded search for consortia; [`matcher`] the
//! projection that keeps every request's shortlist live as events arrive; [`history`]
//! the versions of the facts that past shortlists are computed from.

pub mod consortium;
pub mod eligibility;
pub mod facts;
pub mod generate;
pub mod history;
pub mod matcher;
pub mod scoring;

pub use eligibility::{Eligible, Failure, MandateStanding, Rule, check};
pub use matcher::{DEFAULT_LIMIT, MAX_LIMIT, MatchEntry, Matcher, MatcherImage, NoHistory};
pub use scoring::ScoringTable;
