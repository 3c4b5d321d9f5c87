//! `verityd`, the Verity appliance daemon, and `verity`, its command-line front door.
//!
//! One replica's parts: the transaction format, ingress (TCP, UDP), the pipeline of stages
//! (verify, then sequence: mempool, block builder, chain), the ledger, the block log and the
//! state store, the HTTP API, the configuration and genesis files, and the daemon that
//! assembles them; the command-line tools beside them.

pub mod api;
pub mod backend;
pub mod block;
pub mod block_log;
pub mod chain;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod daemon;
pub mod derivatives;
pub mod genesis;
pub mod ingress;
pub mod jsonl;
pub mod ledger;
pub mod memory;
pub mod mempool;
pub mod pipeline;
pub mod priority;
pub mod sequence;
pub mod signals;
pub mod snapshot;
pub mod state_sync;
pub mod store;
#[cfg(test)]
mod testing;
pub mod text_file;
pub mod traffic;
pub mod transaction;
