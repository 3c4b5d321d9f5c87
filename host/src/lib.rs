//! `verityd`, the Verity appliance daemon, and `verity`, its command-line front door.
//!
//! For now this crate holds the command-line tools over the CPU verifier; the daemon's
//! ingress, pipeline, ordering, execution and storage arrive with issue #8.

pub mod backend;
pub mod cli;
pub mod jsonl;
