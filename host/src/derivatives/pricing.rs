//! European option values: Black-Scholes with a zero rate, in fixed point.
//!
//! For a spot `S` and strike `K` (both in quote-asset units per underlying unit), volatility
//! `σ` and time to expiry `τ` in years (blocks left ÷ blocks per year):
//!
//! ```text
//! v = σ√τ,   d₁ = (ln(S/K) + v²/2) / v,   d₂ = d₁ − v
//! call = S·Φ(d₁) − K·Φ(d₂)          put = call − S + K   (parity, zero rate)
//! ```
//!
//! At or past expiry (or with `v = 0`) the value is the intrinsic one, `max(S − K, 0)` or
//! `max(K − S, 0)`. The value is held between the intrinsic value and its upper bound (S for a
//! call, K for a put), and a contract's is `size` units' worth, rounded down to a whole quote
//! unit.
//!
//! **Error bound** against a floating-point Black-Scholes: Φ is within 7.5·10⁻⁸
//! (Abramowitz and Stegun 26.2.17), so a unit's value is within 1.6·10⁻⁷·(S + K) plus one
//! quote unit of rounding; a contract's within `size` times that. `tests` holds it to this on
//! random options (S and K from 100 to 10⁹ units, S/K from 0.2 to 5, σ from 5 % to 200 %, τ
//! from an hour to two years).

use super::fixed::Fixed;

/// Call or put.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OptionKind {
    /// The right to buy at the strike.
    Call,
    /// The right to sell at the strike.
    Put,
}

/// A European option contract's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionTerms {
    /// Call or put.
    pub kind: OptionKind,
    /// Quote units per underlying unit.
    pub strike: u64,
    /// The height at which it expires (and settles).
    pub expiry: u64,
    /// Underlying units per contract.
    pub size: u64,
}

/// The largest contract size genesis takes (underlying units per contract): with any `u64`
/// price, a contract's value stays below 2⁹⁵ quote units.
pub const MAX_SIZE: u64 = 1_000_000_000;

/// What the value depends on besides the terms and the spot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Model {
    /// Annual volatility in basis points (2,500 = 25 %).
    pub vol_bp: u32,
    /// Blocks in a year, which turns heights into time.
    pub blocks_per_year: u64,
}

impl OptionTerms {
    /// The intrinsic value of one underlying unit at `spot`.
    pub fn intrinsic(&self, spot: u64) -> u64 {
        match self.kind {
            OptionKind::Call => spot.saturating_sub(self.strike),
            OptionKind::Put => self.strike.saturating_sub(spot),
        }
    }

    /// One contract's value at `spot` and `height`, in quote units, rounded down. Total on
    /// every input: any `u64` spot and strike, any size (the value saturates at ±2¹²⁷; genesis
    /// holds sizes to [`MAX_SIZE`], where nothing comes near).
    pub fn contract_value(&self, model: &Model, spot: u64, height: u64) -> i128 {
        let intrinsic = i128::from(self.intrinsic(spot));
        let blocks_left = self.expiry.saturating_sub(height);
        if blocks_left == 0 || model.vol_bp == 0 || spot == 0 || self.strike == 0 {
            return intrinsic.saturating_mul(i128::from(self.size));
        }
        let sigma = Fixed::ratio(i128::from(model.vol_bp), 10_000);
        let tau = Fixed::ratio(
            i128::from(blocks_left),
            i128::from(model.blocks_per_year.max(1)),
        );
        let v = sigma * tau.sqrt();
        if v.0 == 0 {
            return intrinsic.saturating_mul(i128::from(self.size));
        }
        let moneyness = Fixed::ratio(i128::from(spot), i128::from(self.strike));
        if moneyness.0 == 0 {
            // The spot is below 10⁻¹² of the strike: the call is worth nothing to the
            // resolution, the put its intrinsic value (and ln would have no argument).
            return intrinsic.saturating_mul(i128::from(self.size));
        }
        let (s, k) = (Fixed::from_units(spot), Fixed::from_units(self.strike));
        let d1 = (moneyness.ln() + Fixed((v * v).0 / 2)) / v;
        let d2 = d1 - v;
        let call = s * d1.normal_cdf() - k * d2.normal_cdf();
        let unit = match self.kind {
            OptionKind::Call => call,
            OptionKind::Put => call - s + k,
        };
        let upper = match self.kind {
            OptionKind::Call => s,
            OptionKind::Put => k,
        };
        let unit = unit.max(Fixed(intrinsic * super::fixed::SCALE)).min(upper);
        unit.times(i128::from(self.size))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Black-Scholes with a zero rate in f64, Φ from libm's erfc: the reference.
    fn reference(kind: OptionKind, s: f64, k: f64, sigma: f64, tau: f64) -> f64 {
        let phi = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
        let v = sigma * tau.sqrt();
        let d1 = ((s / k).ln() + v * v / 2.0) / v;
        let call = s * phi(d1) - k * phi(d1 - v);
        match kind {
            OptionKind::Call => call,
            OptionKind::Put => call - s + k,
        }
    }

    const YEAR: u64 = 31_536_000; // one block a second

    #[test]
    fn hand_worked_values() {
        let model = Model {
            vol_bp: 2000,
            blocks_per_year: YEAR,
        };
        let call = OptionTerms {
            kind: OptionKind::Call,
            strike: 100_000,
            expiry: YEAR,
            size: 10,
        };
        // At expiry: intrinsic only. 10 units × (120,000 − 100,000).
        assert_eq!(call.contract_value(&model, 120_000, YEAR), 200_000);
        assert_eq!(call.contract_value(&model, 80_000, YEAR + 5), 0);
        let put = OptionTerms {
            kind: OptionKind::Put,
            ..call
        };
        assert_eq!(put.contract_value(&model, 80_000, YEAR), 200_000);
        // At the money, a year out, σ = 20 %: S·(2Φ(0.1) − 1) = 7,965.57 a unit.
        let atm = call.contract_value(&model, 100_000, 0);
        assert!((atm - 79_655).abs() <= 2, "{atm}");
        // Put-call parity at zero rate: call − put = S − K.
        let (c, p) = (
            call.contract_value(&model, 105_000, 0),
            put.contract_value(&model, 105_000, 0),
        );
        assert!((c - p - 50_000).abs() <= 10, "{c} − {p}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn values_are_within_the_bound_of_floating_point_black_scholes(
            strike in 100u64..1_000_000_000,
            moneyness in 0.2f64..5.0,
            vol_bp in 500u32..20_000,
            hours in 1u64..17_520,
            call in any::<bool>(),
            size in 1u64..1000,
        ) {
            let spot = ((strike as f64 * moneyness) as u64).max(1);
            let kind = if call { OptionKind::Call } else { OptionKind::Put };
            let terms = OptionTerms { kind, strike, expiry: hours * 3600, size };
            let model = Model { vol_bp, blocks_per_year: YEAR };
            let ours = terms.contract_value(&model, spot, 0) as f64;
            let tau = (hours * 3600) as f64 / YEAR as f64;
            let exact = reference(kind, spot as f64, strike as f64, vol_bp as f64 / 1e4, tau)
                * size as f64;
            let bound = (1.6e-7 * (spot + strike) as f64 + 1.0) * size as f64;
            prop_assert!((ours - exact).abs() <= bound,
                "{kind:?} S {spot} K {strike} σ {vol_bp}bp {hours} h ×{size}: {ours} against {exact} (bound {bound})");
        }
    }
}
