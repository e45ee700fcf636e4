//! Tafel's matcher: which mandates are eligible for which requests, how well they fit
//! and why (contract section 5).
//!
//! It is pure: it is fed events and answers questions, and does no I/O, reads no clock
//! and uses no randomness, so that any past shortlist can be recomputed from the log.
//! The matching itself lands with the matcher issue; until then this crate only fixes
//! its place in the workspace (it depends on `tafel-contract` and nothing that does I/O).
