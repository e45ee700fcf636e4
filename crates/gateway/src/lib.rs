//! Tafel's gateway: the part that does I/O on the network and wires the pure core
//! (`tafel-contract`, `tafel-matcher`) to the durable log (`tafel-store`). It also holds
//! the `tafel` binary's subcommands.
//!
//! - [`serve`]: `tafel serve`, the long-running service.
//! - [`bench`]: `tafel bench`, benchmarks that run each measurement beside its baseline.

pub mod bench;
pub mod serve;
