//! One ZIP-215 verification end to end in software: the card's hash and scalar units
//! (reference functions) in front of the engine running the microcode.

use crate::abi::MAX_MESSAGE_LEN;
use crate::interp::{Counts, Engine, ExecError, Inputs};
use crate::program::{K_WIDTH, S_WIDTH};
use crate::scalar::{challenge, Scalar};
use crate::{Malformed, Verdict};

/// What the units in front of the engine do: bound the message, check S, hash, recode.
/// `Err` is a verdict reached before the engine runs.
pub fn prepare(
    public_key: &[u8; 32],
    signature: &[u8; 64],
    message: &[u8],
) -> Result<Inputs, Verdict> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(Verdict::Malformed(Malformed::MessageTooLong));
    }
    let (r, s) = signature.split_at(32);
    let r: [u8; 32] = r.try_into().expect("a 64-byte signature splits in halves");
    let s: [u8; 32] = s.try_into().expect("a 64-byte signature splits in halves");
    let s = Scalar::from_canonical_bytes(&s).ok_or(Verdict::Malformed(Malformed::NonCanonicalS))?;
    let k = challenge(&r, public_key, message);
    Ok(Inputs {
        a: *public_key,
        r,
        k: k.naf(K_WIDTH),
        s: s.naf(S_WIDTH),
    })
}

/// Verifies one signature on the reference interpreter.
pub fn verify(
    engine: &Engine,
    public_key: &[u8; 32],
    signature: &[u8; 64],
    message: &[u8],
) -> Result<(Verdict, Counts), ExecError> {
    match prepare(public_key, signature, message) {
        Err(verdict) => Ok((verdict, Counts::default())),
        Ok(inputs) => {
            let outcome = engine.run(inputs)?;
            let verdict =
                Verdict::from_code(outcome.code).map_err(|_| ExecError::Outcome(outcome.code))?;
            Ok((verdict, outcome.counts))
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;
    use crate::image::Image;
    use crate::program::ed25519_verify;

    #[test]
    fn a_signature_verifies_and_a_forgery_does_not() {
        let engine = Engine::new(Image::new(ed25519_verify()));
        let key = SigningKey::from_bytes(&[9; 32]);
        let message = b"verity".to_vec();
        let signature = key.sign(&message).to_bytes();
        let public = key.verifying_key().to_bytes();
        let (verdict, counts) = verify(&engine, &public, &signature, &message).expect("runs");
        assert_eq!(verdict, Verdict::Valid, "{counts:?}");
        let (verdict, _) = verify(&engine, &public, &signature, b"veritY").expect("runs");
        assert_eq!(verdict, Verdict::Invalid);
    }
}
