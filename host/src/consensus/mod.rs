//! Consensus among replicas (issue #9, in progress): Verity's types for the Malachite BFT
//! engine and what its validators sign. The engine itself is not wired in yet; the
//! single-replica sequence stage still orders.

pub mod context;
pub mod signing;
