//! What the benchmarks share: the reference they state their ratios against, how their
//! requests are made, and where criterion keeps its estimates.

use std::path::{Path, PathBuf};

use ed25519_dalek::Signer;
use rand::RngCore;
use rand_chacha::ChaCha20Rng;
use verity_drivers::{Request, Tag};

/// Where criterion writes, and where the tables read its estimates back.
pub fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("criterion")
}

/// Request `tag`: a random message of `len` bytes from `rng`, signed by `key`.
pub fn signed_request(
    rng: &mut ChaCha20Rng,
    key: &ed25519_dalek::SigningKey,
    tag: u64,
    len: usize,
) -> Request {
    let mut message = vec![0u8; len];
    rng.fill_bytes(&mut message);
    let signature = key.sign(&message).to_bytes();
    Request::new(
        Tag::new(tag),
        key.verifying_key().to_bytes(),
        signature,
        message,
    )
}

/// `ed25519-dalek` 2's `verify` on every request: the reference each table names. Whether all
/// verified, so the work cannot be optimised away.
pub fn dalek2_verify_all(requests: &[Request]) -> bool {
    requests.iter().all(|r| {
        ed25519_dalek::VerifyingKey::from_bytes(&r.public_key)
            .and_then(|key| {
                ed25519_dalek::Verifier::verify(
                    &key,
                    &r.message,
                    &ed25519_dalek::Signature::from_bytes(&r.signature),
                )
            })
            .is_ok()
    })
}
