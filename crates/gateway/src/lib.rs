//! Tafel's gateway: the part that does I/O on the network and wires the pure core
//! (`tafel-contract`, `tafel-domain`, `tafel-matcher`) to the durable log
//! (`tafel-store`). It also holds the `tafel` binary's subcommands.
//!
//! - [`service`]: one code path for submits and queries, whatever the transport.
//! - [`nats`]: the NATS transport; [`http`]: health, readiness and metrics.
//! - [`projection`]: keeps the views current from the log; [`fanout`]: publishes every
//!   durable event on NATS in log order.
//! - [`principals`]: who may act, and the principals file.
//! - [`serve`]: `tafel serve`, wiring it all; [`bench`]: `tafel bench`; [`scale`]:
//!   `tafel bench scale`.

pub mod api;
pub mod backup;
pub mod bench;
pub mod client;
pub mod demo;
pub mod durability;
pub mod fanout;
pub mod http;
pub mod loadgen;
pub mod nats;
pub mod openapi;
pub mod scale;
pub mod serve;
pub mod telemetry;
