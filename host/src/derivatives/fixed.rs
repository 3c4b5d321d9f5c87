//! Fixed-point arithmetic for option pricing: `i128` scaled by 10¹², with the functions
//! Black-Scholes needs. Every operation truncates toward negative infinity (`div_euclid`), so
//! the result is a function of the inputs alone, the same on every machine.

use std::ops::{Add, Div, Mul, Neg, Sub};

/// A fixed-point number: `raw / 10¹²`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fixed(pub i128);

/// The scale: 10¹².
pub const SCALE: i128 = 1_000_000_000_000;

/// ln 2, to 10⁻¹².
const LN_2: Fixed = Fixed(693_147_180_560);
/// 1/√(2π), to 10⁻¹².
const INV_SQRT_2PI: Fixed = Fixed(398_942_280_401);

impl Fixed {
    /// 0.
    pub const ZERO: Fixed = Fixed(0);
    /// 1.
    pub const ONE: Fixed = Fixed(SCALE);

    /// The integer `n`.
    pub const fn from_int(n: i64) -> Self {
        Fixed(n as i128 * SCALE)
    }

    /// The whole quantity `n` (a price, a strike): every `u64` fits.
    pub const fn from_units(n: u64) -> Self {
        Fixed(n as i128 * SCALE)
    }

    /// `numerator / denominator` (denominator not 0).
    pub fn ratio(numerator: i128, denominator: i128) -> Self {
        assert!(denominator != 0, "a ratio over zero");
        Fixed((numerator * SCALE).div_euclid(denominator))
    }

    /// ⌊self × n⌋, for an integer quantity (prices times amounts), saturating at ±2¹²⁷.
    pub fn times(self, n: i128) -> i128 {
        let (q, r) = (self.0.div_euclid(SCALE), self.0.rem_euclid(SCALE));
        q.saturating_mul(n)
            .saturating_add(r.saturating_mul(n).div_euclid(SCALE))
    }

    /// √self (self ≥ 0).
    pub fn sqrt(self) -> Fixed {
        assert!(self.0 >= 0, "the square root of a negative number");
        Fixed(isqrt((self.0 as u128) * SCALE as u128) as i128)
    }

    /// e^self. Below −40 it is 0 to the resolution; above 40 it is refused (option
    /// pricing never asks for it).
    pub fn exp(self) -> Fixed {
        assert!(self.0 <= 40 * SCALE, "exp of more than 40");
        if self.0 < -40 * SCALE {
            return Fixed::ZERO;
        }
        // self = k·ln 2 + r, 0 ≤ r < ln 2; e^r by its series, then the power of two.
        let k = self.0.div_euclid(LN_2.0);
        let r = Fixed(self.0 - k * LN_2.0);
        let (mut sum, mut term) = (Fixed::ONE, Fixed::ONE);
        for n in 1..=30 {
            term = Fixed(((term * r).0).div_euclid(n));
            if term.0 == 0 {
                break;
            }
            sum = sum + term;
        }
        if k >= 0 {
            Fixed(sum.0 << k)
        } else {
            Fixed(sum.0 >> (-k).min(127))
        }
    }

    /// ln self (self > 0).
    pub fn ln(self) -> Fixed {
        assert!(self.0 > 0, "the logarithm of a number not above 0");
        // self = m · 2^k with 1 ≤ m < 2; ln m = 2·atanh((m−1)/(m+1)), |z| ≤ 1/3.
        let mut m = self.0;
        let mut k: i128 = 0;
        while m >= 2 * SCALE {
            m >>= 1;
            k += 1;
        }
        while m < SCALE {
            m <<= 1;
            k -= 1;
        }
        let z = Fixed(m - SCALE) / Fixed(m + SCALE);
        let z2 = z * z;
        let (mut sum, mut power) = (Fixed::ZERO, z);
        for n in (1..=41).step_by(2) {
            let term = Fixed(power.0.div_euclid(n));
            if term.0 == 0 {
                break;
            }
            sum = sum + term;
            power = power * z2;
        }
        Fixed(k * LN_2.0 + 2 * sum.0)
    }

    /// The standard normal distribution function Φ(self), by Abramowitz and Stegun 26.2.17
    /// (absolute error below 7.5·10⁻⁸, plus the fixed-point rounding).
    pub fn normal_cdf(self) -> Fixed {
        if self.0 < 0 {
            return Fixed::ONE - (-self).normal_cdf();
        }
        // Beyond 9, 1 − Φ is below 10⁻¹⁸: 1 to this resolution.
        if self.0 > 9 * SCALE {
            return Fixed::ONE;
        }
        const P: Fixed = Fixed(231_641_900_000);
        const B: [Fixed; 5] = [
            Fixed(319_381_530_000),
            Fixed(-356_563_782_000),
            Fixed(1_781_477_937_000),
            Fixed(-1_821_255_978_000),
            Fixed(1_330_274_429_000),
        ];
        let t = Fixed::ONE / (Fixed::ONE + P * self);
        let mut poly = Fixed::ZERO;
        for b in B.iter().rev() {
            poly = (poly + *b) * t;
        }
        let density = INV_SQRT_2PI * Fixed(-((self * self).0) / 2).exp();
        Fixed::ONE - density * poly
    }
}

impl Add for Fixed {
    type Output = Fixed;
    fn add(self, other: Fixed) -> Fixed {
        Fixed(self.0 + other.0)
    }
}

impl Mul for Fixed {
    type Output = Fixed;
    /// ⌊self × other⌋ to the resolution, computed as `q·small + ⌊r·small / 10¹²⌋` where the
    /// operand of larger magnitude is `q·10¹² + r` — exactly the floor of the full product,
    /// without forming it, so a price of up to 10¹⁵ units times a probability stays far
    /// inside `i128`.
    fn mul(self, other: Fixed) -> Fixed {
        let (big, small) = if self.0.unsigned_abs() >= other.0.unsigned_abs() {
            (self.0, other.0)
        } else {
            (other.0, self.0)
        };
        let (q, r) = (big.div_euclid(SCALE), big.rem_euclid(SCALE));
        Fixed(q * small + (r * small).div_euclid(SCALE))
    }
}

impl Div for Fixed {
    type Output = Fixed;
    /// Panics on a zero divisor, as integer division does.
    fn div(self, other: Fixed) -> Fixed {
        assert!(other.0 != 0, "a division by zero");
        Fixed((self.0 * SCALE).div_euclid(other.0))
    }
}

impl Sub for Fixed {
    type Output = Fixed;
    fn sub(self, other: Fixed) -> Fixed {
        Fixed(self.0 - other.0)
    }
}

impl Neg for Fixed {
    type Output = Fixed;
    fn neg(self) -> Fixed {
        Fixed(-self.0)
    }
}

/// ⌊√n⌋.
fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    // Newton's method from above: the iterates fall to ⌊√n⌋ and stop.
    let mut x = 1u128 << (n.ilog2() / 2 + 1);
    loop {
        let y = (x + n / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn f(x: Fixed) -> f64 {
        x.0 as f64 / SCALE as f64
    }

    fn fixed(x: f64) -> Fixed {
        Fixed((x * SCALE as f64).round() as i128)
    }

    #[test]
    fn hand_worked_values() {
        assert_eq!(Fixed::ZERO.exp(), Fixed::ONE);
        assert_eq!(Fixed::ONE.ln(), Fixed::ZERO);
        assert_eq!(Fixed::from_int(4).sqrt(), Fixed::from_int(2));
        let half = Fixed::ZERO.normal_cdf().0 - SCALE / 2;
        assert!(half.abs() < 1_000, "Φ(0) = ½ within 10⁻⁹: {half}");
        assert!((f(Fixed::from_int(1).exp()) - std::f64::consts::E).abs() < 1e-11);
        assert!((f(Fixed::from_int(2).ln()) - std::f64::consts::LN_2).abs() < 1e-11);
        assert_eq!(isqrt(u128::MAX), u64::MAX as u128);
        assert_eq!(isqrt(99), 9);
    }

    proptest! {
        /// The product is the floor of the full one, computed in a wider integer, and a
        /// price of 10¹⁵ times a probability does not overflow.
        #[test]
        fn the_product_is_the_exact_floor(a in -(1i128 << 100)..(1i128 << 100), b in -(1i128 << 26)..(1i128 << 26)) {
            let exact = (a * b).div_euclid(SCALE);
            prop_assert_eq!((Fixed(a) * Fixed(b)).0, exact);
            prop_assert_eq!((Fixed(b) * Fixed(a)).0, exact);
            let price = Fixed::from_units(2_000_000_000_000_000);
            let p = Fixed(b.rem_euclid(SCALE + 1));
            prop_assert!((price * p).0 <= price.0);
        }

        #[test]
        fn exp_ln_sqrt_match_f64(x in -40.0f64..40.0, y in 1e-9f64..1e9) {
            let e = f(fixed(x).exp());
            prop_assert!((e - x.exp()).abs() <= 1e-11 * x.exp().max(1.0) * 4.0, "exp {x}: {e}");
            let l = f(fixed(y).ln());
            prop_assert!((l - y.ln()).abs() < 1e-10, "ln {y}: {l}");
            let s = f(fixed(y).sqrt());
            prop_assert!((s - y.sqrt()).abs() < 1e-11 * y.sqrt().max(1.0) * 2.0, "sqrt {y}: {s}");
        }

        #[test]
        fn the_normal_distribution_is_within_the_bound(x in -12.0f64..12.0) {
            let reference = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
            let ours = f(fixed(x).normal_cdf());
            prop_assert!((ours - reference).abs() < 7.6e-8, "Φ({x}): {ours} against {reference}");
        }
    }
}
