//! Shared pieces of Verity's cross-crate tests: the shared vectors, the ZIP-215 reference
//! (`ed25519-consensus`), and generators of adversarial signatures.

pub mod adversarial;
pub mod reference;
pub mod vectors;
