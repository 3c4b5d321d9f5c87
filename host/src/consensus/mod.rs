//! Consensus among replicas (issue #9, in progress): Verity's types for the Malachite BFT
//! engine, what its validators sign, the codec its messages travel in, a proposed block's
//! parts and their reassembly, the engine's signer and verifier (on the pipeline's verifier),
//! and the offline check of a commit certificate. The engine itself is not wired in yet; the single-replica
//! sequence stage still orders.

pub mod certificate;
pub mod codec;
pub mod context;
pub mod keys;
pub mod parts;
pub mod signing;
