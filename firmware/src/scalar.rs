//! The scalar unit's reference: S canonical check, `k = SHA-512(R ‖ A ‖ M) mod L`, and the
//! signed-digit (width-w NAF) recoding that the ECC engine walks.

use sha2::{Digest, Sha512};

use crate::limbs;

/// The group order L = 2²⁵² + 27742317777372353535851937790883648493, little-endian limbs.
const L: [u64; 4] = [
    0x5812_631a_5cf5_d3ed,
    0x14de_f9de_a2f7_9cd6,
    0x0000_0000_0000_0000,
    0x1000_0000_0000_0000,
];

/// The group order L, little-endian bytes: S ≥ L is not canonical.
pub fn order() -> [u8; 32] {
    limbs::to_bytes(L)
}

/// Digit positions the engine walks: NAF digits of a value below L (< 2²⁵³) fit in 254.
pub const DIGITS: usize = 256;

/// A scalar below L, little-endian limbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scalar([u64; 4]);

impl Scalar {
    /// S as the signature carries it, if it is canonical (below L); ZIP-215 rejects others.
    pub fn from_canonical_bytes(bytes: &[u8; 32]) -> Option<Scalar> {
        let value = limbs::from_bytes(bytes);
        limbs::less_than(value, L).then_some(Scalar(value))
    }

    /// A 512-bit little-endian value reduced mod L, one bit per step as the hardware unit
    /// does: r ← 2r + bit, minus L when r ≥ L.
    pub fn reduce_wide(bytes: &[u8; 64]) -> Scalar {
        let mut r = [0u64; 4];
        for byte in bytes.iter().rev() {
            for bit in (0..8).rev() {
                // r < L < 2²⁵³, so 2r + 1 fits in 254 bits.
                let mut carry = u64::from((byte >> bit) & 1);
                for limb in &mut r {
                    let next = *limb >> 63;
                    *limb = (*limb << 1) | carry;
                    carry = next;
                }
                if !limbs::less_than(r, L) {
                    r = limbs::sub(r, L).0;
                }
            }
        }
        Scalar(r)
    }

    /// The little-endian encoding.
    pub fn to_bytes(self) -> [u8; 32] {
        limbs::to_bytes(self.0)
    }

    /// Width-`w` non-adjacent form: `Σ dᵢ 2ⁱ` equals the scalar, every nonzero dᵢ is odd with
    /// |dᵢ| < 2^(w−1), and any w consecutive digits hold at most one nonzero.
    pub fn naf(self, w: u32) -> [i8; DIGITS] {
        assert!((2..=8).contains(&w), "NAF width {w} is out of 2..=8");
        let mut digits = [0i8; DIGITS];
        // One spare limb: subtracting a negative digit adds up to 2^(w−1).
        let mut k = [self.0[0], self.0[1], self.0[2], self.0[3], 0];
        let window = 1i64 << w;
        let mut position = 0;
        while k.iter().any(|&limb| limb != 0) {
            if k[0] & 1 == 1 {
                let mut digit = (k[0] & (window as u64 - 1)) as i64;
                if digit >= window / 2 {
                    digit -= window;
                }
                digits[position] = digit as i8;
                k = add_signed(k, -digit);
            }
            for i in 0..5 {
                k[i] = (k[i] >> 1) | if i < 4 { k[i + 1] << 63 } else { 0 };
            }
            position += 1;
        }
        digits
    }
}

/// `k = SHA-512(R ‖ A ‖ M) mod L`, over the encodings as received.
pub fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    Scalar::reduce_wide(&challenge_hash(r, a, message))
}

/// SHA-512(R ‖ A ‖ M): what every path hashes for k, before reduction mod L.
pub fn challenge_hash(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> [u8; 64] {
    Sha512::new()
        .chain_update(r)
        .chain_update(a)
        .chain_update(message)
        .finalize()
        .into()
}

/// k − digit for a small signed digit, over five limbs (k never goes negative: the digit is
/// k's own low bits, or their complement that rounds k up).
fn add_signed(k: [u64; 5], delta: i64) -> [u64; 5] {
    let mut out = k;
    if delta >= 0 {
        let mut carry = delta as u64;
        for limb in &mut out {
            let (s, c) = limb.overflowing_add(carry);
            *limb = s;
            carry = u64::from(c);
        }
    } else {
        let mut borrow = delta.unsigned_abs();
        for limb in &mut out {
            let (d, b) = limb.overflowing_sub(borrow);
            *limb = d;
            borrow = u64::from(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use num_bigint::{BigInt, BigUint};
    use proptest::prelude::*;

    use super::*;

    fn l() -> BigUint {
        BigUint::from_bytes_le(&Scalar(L).to_bytes())
    }

    proptest! {
        #[test]
        fn reduction_matches_big_integers(bytes in proptest::collection::vec(any::<u8>(), 64)) {
            let wide: [u8; 64] = bytes.clone().try_into().expect("64 bytes");
            let want = BigUint::from_bytes_le(&bytes) % l();
            prop_assert_eq!(BigUint::from_bytes_le(&Scalar::reduce_wide(&wide).to_bytes()), want);
        }

        #[test]
        fn naf_digits_sum_to_the_scalar_and_are_sparse(bytes in proptest::collection::vec(any::<u8>(), 64), w in 2u32..=8) {
            let wide: [u8; 64] = bytes.try_into().expect("64 bytes");
            let s = Scalar::reduce_wide(&wide);
            let digits = s.naf(w);
            let mut sum = BigInt::from(0);
            for (i, d) in digits.iter().enumerate() {
                sum += BigInt::from(*d) << i;
                if *d != 0 {
                    prop_assert!(d % 2 != 0 && i32::from(d.abs()) < (1 << (w - 1)));
                    for j in 1..w as usize {
                        prop_assert!(i + j >= DIGITS || digits[i + j] == 0, "digits {} and {} both nonzero", i, i + j);
                    }
                }
            }
            prop_assert_eq!(sum, BigInt::from(BigUint::from_bytes_le(&s.to_bytes())));
            prop_assert!(digits[254..].iter().all(|d| *d == 0));
        }
    }

    #[test]
    fn canonical_means_below_l() {
        let l_bytes = Scalar(L).to_bytes();
        assert_eq!(Scalar::from_canonical_bytes(&l_bytes), None);
        let mut below = l_bytes;
        below[0] -= 1;
        assert!(Scalar::from_canonical_bytes(&below).is_some());
        assert_eq!(Scalar::from_canonical_bytes(&[0xff; 32]), None);
        let max = Scalar::from_canonical_bytes(&below).expect("L − 1");
        assert!(max.naf(5).iter().any(|d| *d != 0));
    }
}
