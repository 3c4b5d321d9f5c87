//! `verityd`, the Verity appliance daemon, and `verity`, its command-line front door.
//!
//! For now this crate holds the command-line tools and the transaction format; the daemon's
//! ingress, pipeline, ordering, execution and storage follow (issue #8).

pub mod backend;
pub mod chain;
pub mod cli;
pub mod genesis;
pub mod ingress;
pub mod jsonl;
pub mod ledger;
pub mod mempool;
pub mod pipeline;
pub mod store;
#[cfg(test)]
mod testing;
pub mod transaction;
