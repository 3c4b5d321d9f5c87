//! Field elements mod p = 2²⁵⁵ − 19, bit-exact as the card's registers hold them.
//!
//! A register always holds the canonical residue in `[0, p)`; every operation returns one.
//! The HDL's field ALU may compute in a redundant form inside, but what it writes back must be
//! this value, so the interpreter and the hardware can be compared register for register.

use std::fmt;
use std::ops::{Add, Mul, Neg, Sub};

use crate::limbs;

/// p = 2²⁵⁵ − 19, little-endian 64-bit limbs.
const P: [u64; 4] = [
    0xffff_ffff_ffff_ffed,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_ffff_ffff,
    0x7fff_ffff_ffff_ffff,
];

/// A field element mod p, canonical.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fe([u64; 4]);

impl fmt::Debug for Fe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fe(0x")?;
        for limb in self.0.iter().rev() {
            write!(f, "{limb:016x}")?;
        }
        write!(f, ")")
    }
}

impl Fe {
    /// 0.
    pub const ZERO: Fe = Fe([0; 4]);
    /// 1.
    pub const ONE: Fe = Fe([1, 0, 0, 0]);

    /// A small constant.
    pub const fn from_u64(value: u64) -> Fe {
        Fe([value, 0, 0, 0])
    }

    /// The low 255 bits of `bytes` (little-endian), reduced mod p: how ZIP-215 reads a
    /// y coordinate, non-canonical values included. Bit 255 is ignored (it is the sign of x).
    pub fn from_bytes_mod_p(bytes: &[u8; 32]) -> Fe {
        let mut limbs = limbs::from_bytes(bytes);
        limbs[3] &= 0x7fff_ffff_ffff_ffff;
        Fe::reduce_below_2p(limbs)
    }

    /// The canonical value if `bytes` encodes one below p, else `None`.
    pub fn from_canonical_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        let value = Fe::from_bytes_mod_p(bytes);
        (value.to_bytes() == *bytes).then_some(value)
    }

    /// Little-endian encoding of the canonical value.
    pub fn to_bytes(self) -> [u8; 32] {
        limbs::to_bytes(self.0)
    }

    /// The limbs, least significant first.
    pub const fn limbs(self) -> [u64; 4] {
        self.0
    }

    /// `true` if the canonical value is odd: the "negative" of RFC 8032's encoding.
    pub const fn is_odd(self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Reduces a value below 2p to below p.
    fn reduce_below_2p(limbs: [u64; 4]) -> Fe {
        let (diff, borrow) = limbs::sub(limbs, P);
        Fe(if borrow { limbs } else { diff })
    }

    /// Reduces any 256-bit value mod p.
    fn reduce_256(mut limbs: [u64; 4]) -> Fe {
        // 2²⁵⁵ ≡ 19: fold the top bit in; the result is below 2²⁵⁵ + 19 < 2p.
        let top = limbs[3] >> 63;
        limbs[3] &= 0x7fff_ffff_ffff_ffff;
        let (sum, _) = limbs::add(limbs, [top * 19, 0, 0, 0]);
        Fe::reduce_below_2p(sum)
    }

    /// a² mod p.
    pub fn square(self) -> Fe {
        self.mul(self)
    }

    /// a^(2^n).
    pub fn square_n(self, n: u32) -> Fe {
        (0..n).fold(self, |x, _| x.square())
    }

    /// a^e for a little-endian exponent.
    pub fn pow(self, exponent: &[u64; 4]) -> Fe {
        let mut result = Fe::ONE;
        for limb in exponent.iter().rev() {
            for bit in (0..64).rev() {
                result = result.square();
                if (limb >> bit) & 1 == 1 {
                    result = result.mul(self);
                }
            }
        }
        result
    }

    /// a⁻¹ (0 for 0), by Fermat: a^(p−2).
    pub fn invert(self) -> Fe {
        let (p_minus_2, _) = limbs::sub(P, [2, 0, 0, 0]);
        self.pow(&p_minus_2)
    }
}

impl Add for Fe {
    type Output = Fe;

    /// a + b mod p.
    fn add(self, other: Fe) -> Fe {
        // Both below 2²⁵⁵, so the sum is below 2²⁵⁶ and below 2p.
        let (sum, _) = limbs::add(self.0, other.0);
        Fe::reduce_below_2p(sum)
    }
}

impl Sub for Fe {
    type Output = Fe;

    /// a − b mod p.
    fn sub(self, other: Fe) -> Fe {
        let (diff, borrow) = limbs::sub(self.0, other.0);
        if borrow {
            Fe(limbs::add(diff, P).0)
        } else {
            Fe(diff)
        }
    }
}

impl Neg for Fe {
    type Output = Fe;

    /// −a mod p.
    fn neg(self) -> Fe {
        Fe::ZERO - self
    }
}

impl Mul for Fe {
    type Output = Fe;

    /// a · b mod p.
    fn mul(self, other: Fe) -> Fe {
        let mut wide = [0u64; 8];
        for i in 0..4 {
            let mut carry = 0u128;
            for j in 0..4 {
                let t = u128::from(self.0[i]) * u128::from(other.0[j])
                    + u128::from(wide[i + j])
                    + carry;
                wide[i + j] = t as u64;
                carry = t >> 64;
            }
            wide[i + 4] = carry as u64;
        }
        // 2²⁵⁶ ≡ 38: low + 38·high, then fold the small overflow the same way.
        let mut out = [0u64; 4];
        let mut carry = 0u128;
        for i in 0..4 {
            let t = u128::from(wide[i]) + u128::from(wide[i + 4]) * 38 + carry;
            out[i] = t as u64;
            carry = t >> 64;
        }
        let (folded, overflow) = limbs::add(out, [(carry as u64) * 38, 0, 0, 0]);
        // An overflow leaves a small value; adding 38 for it cannot overflow again.
        let (folded, _) = limbs::add(folded, [u64::from(overflow) * 38, 0, 0, 0]);
        Fe::reduce_256(folded)
    }
}

/// The curve constant d = −121665/121666.
pub fn d() -> Fe {
    Fe::from_u64(121_665)
        .neg()
        .mul(Fe::from_u64(121_666).invert())
}

/// √−1 = 2^((p−1)/4).
pub fn sqrt_m1() -> Fe {
    // (p − 1)/4 = 2²⁵³ − 5.
    let exponent = [
        0xffff_ffff_ffff_fffb,
        0xffff_ffff_ffff_ffff,
        0xffff_ffff_ffff_ffff,
        0x1fff_ffff_ffff_ffff,
    ];
    Fe::from_u64(2).pow(&exponent)
}

#[cfg(test)]
pub(crate) mod tests {
    use num_bigint::BigUint;
    use proptest::prelude::*;

    use super::*;

    pub(crate) fn p() -> BigUint {
        (BigUint::from(1u8) << 255u32) - 19u32
    }

    pub(crate) fn big(x: Fe) -> BigUint {
        BigUint::from_bytes_le(&x.to_bytes())
    }

    pub(crate) fn fe(x: &BigUint) -> Fe {
        let reduced = x % p();
        let mut bytes = reduced.to_bytes_le();
        bytes.resize(32, 0);
        let bytes: [u8; 32] = bytes.try_into().expect("32 bytes");
        Fe::from_canonical_bytes(&bytes).expect("reduced below p")
    }

    /// Edge values: 0, 1, 2, 19, p − 1, p − 2, 2²⁵⁴, and near 2²⁵⁵.
    pub(crate) fn edges() -> Vec<BigUint> {
        let p = p();
        vec![
            BigUint::from(0u8),
            BigUint::from(1u8),
            BigUint::from(2u8),
            BigUint::from(19u8),
            &p - 1u8,
            &p - 2u8,
            BigUint::from(1u8) << 254u32,
            (BigUint::from(1u8) << 255u32) - 20u32,
        ]
    }

    pub(crate) fn arb() -> impl Strategy<Value = BigUint> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(|b| BigUint::from_bytes_le(&b) % p()),
            proptest::sample::select(edges()),
        ]
    }

    proptest! {
        #[test]
        fn arithmetic_matches_big_integers(a in arb(), b in arb()) {
            let p = p();
            let (x, y) = (fe(&a), fe(&b));
            prop_assert_eq!(big(x.add(y)), (&a + &b) % &p);
            prop_assert_eq!(big(x.sub(y)), (&a + &p - &b) % &p);
            prop_assert_eq!(big(x.neg()), (&p - &a) % &p);
            prop_assert_eq!(big(x.mul(y)), (&a * &b) % &p);
            prop_assert_eq!(big(x.square()), (&a * &a) % &p);
        }

        #[test]
        fn loading_reduces_the_low_255_bits(bytes in any::<[u8; 32]>()) {
            let low = BigUint::from_bytes_le(&bytes) % (BigUint::from(1u8) << 255u32);
            prop_assert_eq!(big(Fe::from_bytes_mod_p(&bytes)), low % p());
        }
    }

    #[test]
    fn non_canonical_encodings_load_as_their_residue() {
        let mut p_plus_3 = p().to_bytes_le();
        p_plus_3[0] += 3;
        let bytes: [u8; 32] = p_plus_3.try_into().expect("32 bytes");
        assert_eq!(Fe::from_bytes_mod_p(&bytes), Fe::from_u64(3));
        assert_eq!(Fe::from_canonical_bytes(&bytes), None);
        assert_eq!(Fe::from_bytes_mod_p(&[0xff; 32]), Fe::from_u64(18));
    }

    #[test]
    fn constants_are_right() {
        assert_eq!(sqrt_m1().square(), Fe::ONE.neg());
        assert_eq!(d().mul(Fe::from_u64(121_666)), Fe::from_u64(121_665).neg());
        for x in edges().iter().skip(1) {
            assert_eq!(fe(x).mul(fe(x).invert()), Fe::ONE);
        }
    }
}
