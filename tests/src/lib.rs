//! Shared pieces of Verity's cross-crate tests: the shared vectors, the ZIP-215 reference
//! (`ed25519-consensus`), and generators of adversarial signatures.

pub mod adversarial;
pub mod devices;
pub mod reference;
pub mod vectors;

use ed25519_dalek::Signer;
use verity_drivers::{Request, Tag};

/// A request carrying `key`'s ed25519-dalek signature on `message`.
pub fn signed(tag: u64, key: &ed25519_dalek::SigningKey, message: Vec<u8>) -> Request {
    let signature = key.sign(&message).to_bytes();
    Request::new(
        Tag::new(tag),
        key.verifying_key().to_bytes(),
        signature,
        message,
    )
}
