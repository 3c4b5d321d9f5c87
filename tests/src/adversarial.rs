//! Signatures built to find disagreements between verifiers: small-order and mixed-order
//! points, non-canonical encodings, S ≥ L, and flipped bits.
//!
//! Every generator is a function of a seeded RNG, so a failing case is reproduced from its
//! seed.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha512};
use verity_drivers::{Request, Tag};

/// p = 2²⁵⁵ − 19, little-endian.
const P: [u8; 32] = [
    0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
];

/// The eight points of order dividing 8, as multiples of one point of order 8.
pub fn torsion() -> [EdwardsPoint; 8] {
    // [L]P is the torsion component of P; a fixed P of full order gives a generator.
    let p = (0u8..=255)
        .filter_map(|b| CompressedEdwardsY([b; 32]).decompress())
        .find(|p| !(times_l(p) * Scalar::from(4u8)).is_identity())
        .expect("some byte pattern decodes to a point of full order");
    let generator = times_l(&p);
    let mut points = [EdwardsPoint::identity(); 8];
    for i in 1..8 {
        points[i] = points[i - 1] + generator;
    }
    points
}

/// `[L]P` as an integer multiple: `[L − 1]P + P`, since `−1 mod L` is `L − 1`.
fn times_l(p: &EdwardsPoint) -> EdwardsPoint {
    p * (-Scalar::ONE) + p
}

/// `value + p` if it still fits in 255 bits: the non-canonical encoding of `value`'s y.
fn plus_p(value: u8) -> Option<[u8; 32]> {
    let mut out = P;
    let (low, carry) = out[0].overflowing_add(value);
    out[0] = low;
    // p + y < 2²⁵⁵ only for y < 19, which never carries out of the low byte.
    (!carry && value < 19).then_some(out)
}

/// Encodings of small-order points: canonical, with the sign bit flipped (an x of zero with
/// the sign set is accepted by ZIP-215), and every non-canonical y (y + p < 2²⁵⁵), whether
/// or not it lies on the curve.
pub fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for point in torsion() {
        let canonical = point.compress().to_bytes();
        let mut flipped = canonical;
        flipped[31] ^= 0x80;
        out.extend([canonical, flipped]);
    }
    for y in 0..19 {
        if let Some(encoding) = plus_p(y) {
            let mut signed = encoding;
            signed[31] |= 0x80;
            out.extend([encoding, signed]);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The kinds of case [`case`] builds.
pub const KINDS: [&str; 10] = [
    "valid",
    "mixed-order A",
    "mixed-order R",
    "mixed-order A and R",
    "small-order A and R",
    "S + L",
    "random S",
    "flipped bit",
    "random A bytes",
    "non-canonical A or R",
];

/// Builds a case of kind `KINDS[kind % KINDS.len()]` from `rng`.
pub fn case(kind: usize, rng: &mut impl RngCore, tag: u64) -> Request {
    let torsion = torsion();
    let mut message = vec![0u8; rng.gen_range(0..80)];
    rng.fill_bytes(&mut message);
    let a = random_scalar(rng);
    let r = random_scalar(rng);
    let t_a = torsion[rng.gen_range(1..8)];
    let t_r = torsion[rng.gen_range(1..8)];
    let tag = Tag::new(tag);
    match kind % KINDS.len() {
        0 => sign(
            tag,
            a,
            EdwardsPoint::identity(),
            r,
            EdwardsPoint::identity(),
            message,
        ),
        1 => sign(tag, a, t_a, r, EdwardsPoint::identity(), message),
        2 => sign(tag, a, EdwardsPoint::identity(), r, t_r, message),
        3 => sign(tag, a, t_a, r, t_r, message),
        4 => {
            let encodings = small_order_encodings();
            let pick = |rng: &mut dyn RngCore| encodings[rng.gen_range(0..encodings.len())];
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&pick(rng));
            if rng.gen_bool(0.5) {
                signature[32..].copy_from_slice(random_scalar(rng).as_bytes());
            }
            Request::new(tag, pick(rng), signature, message)
        }
        5 => {
            let mut request = sign(tag, a, t_a, r, t_r, message);
            let s = add_le(request.s_bytes(), &verity_firmware::scalar::order());
            request.signature[32..].copy_from_slice(&s);
            request
        }
        6 => {
            let mut request = sign(
                tag,
                a,
                EdwardsPoint::identity(),
                r,
                EdwardsPoint::identity(),
                message,
            );
            rng.fill_bytes(&mut request.signature[32..]);
            request
        }
        7 => {
            let mut request = sign(tag, a, t_a, r, EdwardsPoint::identity(), message);
            let field = rng.gen_range(0..3);
            match field {
                0 => flip(&mut request.public_key, rng),
                1 => flip(&mut request.signature, rng),
                _ if !request.message.is_empty() => flip(&mut request.message, rng),
                _ => request.message.push(0),
            }
            request
        }
        8 => {
            let mut request = sign(
                tag,
                a,
                EdwardsPoint::identity(),
                r,
                EdwardsPoint::identity(),
                message,
            );
            rng.fill_bytes(&mut request.public_key);
            request
        }
        _ => {
            let mut request = sign(tag, a, t_a, r, t_r, message);
            let y = rng.gen_range(0..19);
            let mut encoding = plus_p(y).expect("y < 19 has a non-canonical encoding");
            if rng.gen_bool(0.5) {
                encoding[31] |= 0x80;
            }
            if rng.gen_bool(0.5) {
                request.public_key = encoding;
            } else {
                request.signature[..32].copy_from_slice(&encoding);
            }
            request
        }
    }
}

fn flip(bytes: &mut [u8], rng: &mut impl RngCore) {
    let bit = rng.gen_range(0..bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

fn random_scalar(rng: &mut impl RngCore) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Little-endian 256-bit addition, wrapping (S + L never wraps: S < L < 2²⁵³).
fn add_le(x: &[u8; 32], y: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(x[i]) + u16::from(y[i]) + carry;
        out[i] = sum as u8;
        carry = sum >> 8;
    }
    out
}

/// A signature that is valid under ZIP-215 (cofactored) on key `[a]B + t_a` with nonce point
/// `[r]B + t_r`. With torsion parts it fails cofactorless verification: exactly the cases
/// where verifiers that do not follow ZIP-215 disagree.
pub fn sign(
    tag: Tag,
    a: Scalar,
    t_a: EdwardsPoint,
    r: Scalar,
    t_r: EdwardsPoint,
    message: Vec<u8>,
) -> Request {
    let public_key = (ED25519_BASEPOINT_POINT * a + t_a).compress().to_bytes();
    let r_bytes = (ED25519_BASEPOINT_POINT * r + t_r).compress().to_bytes();
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(r_bytes)
            .chain_update(public_key)
            .chain_update(&message)
            .finalize()
            .into(),
    );
    let s = r + k * a;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(&r_bytes);
    signature[32..].copy_from_slice(s.as_bytes());
    Request::new(tag, public_key, signature, message)
}
