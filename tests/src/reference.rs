//! The ZIP-215 reference: `ed25519-consensus`, single and batch.

use verity_drivers::Request;

/// Does `ed25519-consensus` accept this signature on its own?
pub fn accepts(request: &Request) -> bool {
    ed25519_consensus::VerificationKey::try_from(request.public_key)
        .and_then(|key| {
            key.verify(
                &ed25519_consensus::Signature::from(request.signature),
                &request.message,
            )
        })
        .is_ok()
}

/// Does `ed25519-consensus` accept all of these signatures as one batch?
pub fn accepts_batch(requests: &[Request]) -> bool {
    let mut batch = ed25519_consensus::batch::Verifier::new();
    for request in requests {
        batch.queue((
            ed25519_consensus::VerificationKeyBytes::from(request.public_key),
            ed25519_consensus::Signature::from(request.signature),
            &request.message[..],
        ));
    }
    batch.verify(rand::thread_rng()).is_ok()
}
