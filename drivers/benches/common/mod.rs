//! What the benchmarks share: the reference they state their ratios against.

use verity_drivers::Request;

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
