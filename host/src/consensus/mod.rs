//! Consensus among replicas (issue #9, in progress): Verity's types for the Malachite BFT
//! engine, what its validators sign, the codec its messages travel in, and the offline check
//! of a commit certificate. The engine itself is not wired in yet; the single-replica
//! sequence stage still orders.

pub mod certificate;
pub mod codec;
pub mod context;
pub mod keys;
pub mod signing;
