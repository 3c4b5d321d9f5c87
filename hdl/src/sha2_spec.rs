//! The constants that tell SHA-256 from SHA-512 (FIPS 180-4 §4.1–4.2, §5.3).
//!
//! The round constants and initial values are computed here from their definition — the
//! leading fractional bits of the cube roots (K) and square roots (IV) of the first primes —
//! in exact integer arithmetic, instead of being typed in; the tests against the `sha2` crate
//! then check the definition and the hardware together.

use num_bigint::BigUint;
use num_traits::ToPrimitive;

/// One member of the SHA-2 family, as the hardware needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sha2Spec {
    /// Word width in bits: 32 or 64.
    pub word_bits: usize,
    /// Rounds per block: 64 or 80.
    pub rounds: usize,
    /// Right-rotations of Σ0 (applied to `a`).
    pub big_sigma0: [u32; 3],
    /// Right-rotations of Σ1 (applied to `e`).
    pub big_sigma1: [u32; 3],
    /// σ0 of the message schedule: two right-rotations and a right shift.
    pub small_sigma0: [u32; 3],
    /// σ1 of the message schedule: two right-rotations and a right shift.
    pub small_sigma1: [u32; 3],
    /// Round constants, one per round.
    pub k: Vec<u64>,
    /// Initial chaining value.
    pub iv: [u64; 8],
}

impl Sha2Spec {
    /// SHA-512.
    pub fn sha512() -> Self {
        Self::new(64, 80, [28, 34, 39], [14, 18, 41], [1, 8, 7], [19, 61, 6])
    }

    /// SHA-256.
    pub fn sha256() -> Self {
        Self::new(32, 64, [2, 13, 22], [6, 11, 25], [7, 18, 3], [17, 19, 10])
    }

    /// The spec for a word width: 64 is SHA-512, 32 is SHA-256.
    ///
    /// # Panics
    /// On any other width (a build-time mistake, not an input).
    pub fn for_word_bits(word_bits: usize) -> Self {
        match word_bits {
            64 => Self::sha512(),
            32 => Self::sha256(),
            other => panic!("no SHA-2 function has {other}-bit words"),
        }
    }

    fn new(
        word_bits: usize,
        rounds: usize,
        big_sigma0: [u32; 3],
        big_sigma1: [u32; 3],
        small_sigma0: [u32; 3],
        small_sigma1: [u32; 3],
    ) -> Self {
        let primes = first_primes(rounds);
        let k = primes
            .iter()
            .map(|&p| fractional_root(p, 3, word_bits))
            .collect();
        let mut iv = [0u64; 8];
        for (slot, &p) in iv.iter_mut().zip(&primes) {
            *slot = fractional_root(p, 2, word_bits);
        }
        Self {
            word_bits,
            rounds,
            big_sigma0,
            big_sigma1,
            small_sigma0,
            small_sigma1,
            k,
            iv,
        }
    }
}

/// The first `n` primes.
fn first_primes(n: usize) -> Vec<u64> {
    let mut primes: Vec<u64> = Vec::with_capacity(n);
    let mut candidate = 2u64;
    while primes.len() < n {
        if primes
            .iter()
            .take_while(|&&p| p * p <= candidate)
            .all(|&p| !candidate.is_multiple_of(p))
        {
            primes.push(candidate);
        }
        candidate += 1;
    }
    primes
}

/// The first `bits` bits of the fractional part of `p^(1/degree)`:
/// `floor(root(p · 2^(degree·bits))) mod 2^bits`, exact.
fn fractional_root(p: u64, degree: u32, bits: usize) -> u64 {
    let scaled = BigUint::from(p) << (degree as usize * bits);
    let root = scaled.nth_root(degree);
    let mask = (BigUint::from(1u8) << bits) - 1u8;
    (root & mask).to_u64().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_fips_180_4() {
        let sha512 = Sha2Spec::sha512();
        assert_eq!(sha512.k[0], 0x428a2f98d728ae22);
        assert_eq!(sha512.k[79], 0x6c44198c4a475817);
        assert_eq!(sha512.iv[0], 0x6a09e667f3bcc908);
        assert_eq!(sha512.iv[7], 0x5be0cd19137e2179);
        let sha256 = Sha2Spec::sha256();
        assert_eq!(sha256.k[0], 0x428a2f98);
        assert_eq!(sha256.k[63], 0xc67178f2);
        assert_eq!(sha256.iv[0], 0x6a09e667);
        assert_eq!(sha256.iv[7], 0x5be0cd19);
    }
}
