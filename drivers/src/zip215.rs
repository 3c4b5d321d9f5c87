//! ZIP-215: the one verification predicate of Verity, on the CPU.
//!
//! A signature (R, S) on message M under public key A is valid when
//!
//! 0. M is at most [`MAX_MESSAGE_LEN`] bytes, the most a card request carries (longer is
//!    malformed on every path, so the card and the CPU agree);
//! 1. S, read little-endian, is below the group order L (S ≥ L is malformed);
//! 2. A and R decode as ZIP-215 says: y may be non-canonical (y ≥ p is reduced mod p), and an
//!    x of zero with the sign bit set is accepted (curve25519-dalek's decoder does exactly
//!    this);
//! 3. `[8](S·B − k·A − R)` is the identity, where `k = SHA-512(R ‖ A ‖ M) mod L` hashes the
//!    encodings as received.
//!
//! Small-order points are not rejected: an all-zero key and signature (A = R, a point of order
//! 4, and S = 0) is valid under ZIP-215, as `ed25519-consensus` agrees. Applications that
//! must refuse such keys do so when a key is registered, not in the verifier.
//!
//! Because the equation is cofactored, batch verification (a random linear combination of the
//! equations) accepts exactly what single verification accepts; this module provides both and
//! the tests of `verity-tests` hold them, bit for bit, to `ed25519-consensus`.

use std::collections::BTreeMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use rand::{CryptoRng, RngCore};
use verity_firmware::abi::MAX_MESSAGE_LEN;
use verity_firmware::scalar::challenge_hash;
use verity_firmware::{Malformed, Verdict};

use crate::Request;

/// Below this many signatures a failed batch is resolved one signature at a time: splitting
/// further costs more multi-scalar multiplications than it saves.
const SINGLE_BELOW: usize = 4;

/// A failed batch is re-checked as this many parts. With one forgery in n signatures, binary
/// splitting re-checks about 2n signatures; eight parts, about 1.15n.
const PARTS: usize = 8;

/// A request whose encodings have been decoded and whose challenge k has been computed.
#[derive(Clone, Debug)]
pub struct Prepared {
    a_bytes: [u8; 32],
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Checks the message length, decodes S, A and R (in that order: the first failure is the
/// reason) and computes the challenge `k = SHA-512(R ‖ A ‖ M) mod L`. A is decoded once per
/// thread ([`key_cache`](crate::key_cache)).
pub fn prepare(request: &Request) -> Result<Prepared, Malformed> {
    if request.message.len() > MAX_MESSAGE_LEN {
        return Err(Malformed::MessageTooLong);
    }
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(*request.s_bytes()))
        .ok_or(Malformed::NonCanonicalS)?;
    let a = crate::key_cache::decoded(&request.public_key, decode_point)
        .ok_or(Malformed::PublicKeyNotOnCurve)?;
    let r = decode_point(request.r_bytes()).ok_or(Malformed::RNotOnCurve)?;
    Ok(Prepared {
        a_bytes: request.public_key,
        a,
        r,
        s,
        k: challenge(request),
    })
}

/// ZIP-215 point decoding (see the module documentation).
fn decode_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    CompressedEdwardsY(*bytes).decompress()
}

fn challenge(request: &Request) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&challenge_hash(
        request.r_bytes(),
        &request.public_key,
        &request.message,
    ))
}

/// Checks one prepared signature: is `[8](S·B − k·A − R)` the identity?
pub fn verify_prepared(item: &Prepared) -> bool {
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&item.k, &-item.a, &item.s);
    (sb_minus_ka - item.r).mul_by_cofactor().is_identity()
}

/// Verifies one request on its own.
pub fn verify_single(request: &Request) -> Verdict {
    match prepare(request) {
        Err(reason) => Verdict::Malformed(reason),
        Ok(item) if verify_prepared(&item) => Verdict::Valid,
        Ok(_) => Verdict::Invalid,
    }
}

/// Checks a whole set of prepared signatures at once: with random 128-bit zᵢ, is
/// `[8](−(Σ zᵢSᵢ)·B + Σ zᵢ·Rᵢ + Σ (zᵢkᵢ)·Aᵢ)` the identity? Signatures under the same key
/// share one term. `true` means every signature in the set is valid, except with
/// probability below 2⁻¹²⁵; `false` means at least one is not.
pub fn verify_prepared_batch<G: RngCore + CryptoRng>(items: &[&Prepared], rng: &mut G) -> bool {
    let mut b_coefficient = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    // Keyed by the key as received, so equal keys share one term, in a fixed order.
    let mut key_terms: BTreeMap<[u8; 32], (Scalar, EdwardsPoint)> = BTreeMap::new();
    for item in items {
        let z = Scalar::from(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()));
        b_coefficient -= z * item.s;
        scalars.push(z);
        points.push(item.r);
        let term = key_terms
            .entry(item.a_bytes)
            .or_insert((Scalar::ZERO, item.a));
        term.0 += z * item.k;
    }
    scalars.push(b_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    for (coefficient, point) in key_terms.into_values() {
        scalars.push(coefficient);
        points.push(point);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// Verifies a set of requests with batch verification, returning one verdict per request in
/// the same order.
///
/// Malformed requests are set aside first. If the batch equation fails, the set is split into
/// [`PARTS`] parts, each checked again as a batch, down to single verification of small
/// groups, so a few bad signatures cost a few extra multi-scalar multiplications, not a pass
/// of single verifications.
pub fn verify_batch<G: RngCore + CryptoRng>(requests: &[Request], rng: &mut G) -> Vec<Verdict> {
    let mut verdicts = vec![Verdict::Invalid; requests.len()];
    let mut prepared = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        match prepare(request) {
            Ok(item) => prepared.push((index, item)),
            Err(reason) => verdicts[index] = Verdict::Malformed(reason),
        }
    }
    let mut fallbacks = 0;
    settle(&prepared, &mut verdicts, rng, &mut fallbacks);
    if fallbacks > 0 {
        metrics::counter!("verity_zip215_batch_failures_total").increment(fallbacks);
    }
    verdicts
}

/// Gives every item of `group` its verdict, splitting it on a failed batch.
fn settle<G: RngCore + CryptoRng>(
    group: &[(usize, Prepared)],
    verdicts: &mut [Verdict],
    rng: &mut G,
    failures: &mut u64,
) {
    if group.len() < SINGLE_BELOW {
        for (index, item) in group {
            verdicts[*index] = if verify_prepared(item) {
                Verdict::Valid
            } else {
                Verdict::Invalid
            };
        }
        return;
    }
    let items: Vec<&Prepared> = group.iter().map(|(_, item)| item).collect();
    if verify_prepared_batch(&items, rng) {
        for (index, _) in group {
            verdicts[*index] = Verdict::Valid;
        }
        return;
    }
    *failures += 1;
    for part in group.chunks(group.len().div_ceil(PARTS)) {
        settle(part, verdicts, rng, failures);
    }
}
