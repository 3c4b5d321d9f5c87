//! `verityd`, the Verity appliance daemon, and `verity`, its command-line front door.
//!
//! One replica's parts: the transaction format, ingress (TCP, UDP), the pipeline of stages
//! (verify, then sequence: mempool, block builder, chain), the ledger, the block log and the
//! state store, the HTTP API, the configuration and genesis files, and the daemon that
//! assembles them; the command-line tools beside them.

/// The allocator of every program that links the replica's code — both binaries, the host's
/// benches and tests — declared here once so that none runs on another than the one measured.
///
/// mimalloc, not the system's: glibc's malloc spent a tenth of the sequence stage's time
/// coalescing and unlinking freed chunks (`perf`, the pipeline paced at half the host's rate),
/// and with mimalloc that stage's CPU a transaction fell from 4.0–4.2 to 3.2–3.3 µs and the
/// host's p99 at half its rate from 14.3–14.7 to 8.6–9.6 ms (host/README, "Figures").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
pub mod mempool;
pub mod pipeline;
pub mod priority;
pub mod sequence;
pub mod snapshot;
pub mod state_sync;
pub mod store;
#[cfg(test)]
mod testing;
pub mod text_file;
pub mod traffic;
pub mod transaction;
