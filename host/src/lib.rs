//! `verityd`, the Verity appliance daemon, and `verity`, its command-line front door.
//!
//! The command-line tools, and the daemon's parts so far (issue #8): the transaction format,
//! the ledger, the mempool, the store, the chain that executes and commits blocks, the
//! genesis file, the pipeline of stages, and TCP ingress. The `verityd` binary that joins
//! them follows.

pub mod api;
pub mod backend;
pub mod block_log;
pub mod chain;
pub mod cli;
pub mod config;
pub mod daemon;
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
