//! Tafel's aggregates and access rules, as pure code.
//!
//! [`World`] is the current state of every request, mandate and round table, folded
//! from the log with [`World::apply`]. [`World::decide`] runs steps 5-7 of a submit
//! (contract section 3) for an event that has passed steps 1-4: does the aggregate
//! exist and may the principal see it, does the principal own it, does the version
//! match, does the aggregate's state allow the event. Deciding reads no clock and does
//! no I/O; a refusal is a [`Refusal`] with the contract's code.
//!
//! Visibility (section 2) lives here too ([`World::can_see`]), so that NATS, HTTP and
//! every query answer "not found" for the same things.

mod actor;
pub mod joint;
pub mod list;
mod mandate;
mod pairs;
pub mod report;
mod request;
mod roundtable;
mod world;

pub use actor::Actor;
pub use list::{ListState, Listed};
pub use mandate::{MandateState, MandateStatus};
pub use request::{Coaching, RequestState, RequestStatus};
pub use roundtable::{RoundtableState, RoundtableStatus};
pub use world::{Decision, World, stream_name};

pub use tafel_contract::Refusal;
