//! Margins from scenario risk arrays: how much an account could lose if the underlying moved
//! by up to a configured shock, valued with the same pricing as the mark.
//!
//! For each instrument and each mark price, a [`RiskArray`] holds one contract's value at
//! seven prices: the mark and the mark moved by ±⅓, ±⅔ and ±1 of the shock. An account's
//!
//! ```text
//! value        = Σ contracts·V(mark)                       (long > 0, short < 0)
//! equity       = collateral + value
//! maintenance  = max(0, max over scenarios of Σ contracts·(V(mark) − V(scenario)))
//!                + Σ over short positions |contracts|·short_minimum
//! initial      = ⌈maintenance · initial_bp / 10,000⌉
//! ```
//!
//! The worst scenario loss covers delta (the straight move) and gamma (the curvature between
//! the seven points); the short minimum charges far-out-of-the-money shorts that the
//! scenarios value near zero: `short_minimum = ⌈mark · size · short_minimum_bp / 10,000⌉`.
//! Risk arrays are computed once per instrument per mark change, so an account's margin is a
//! few multiply-adds per position — what lets a mark change re-margin every account within a
//! block.

use super::pricing::{Model, OptionTerms};

/// The scenarios, in thirds of the shock.
pub const SCENARIOS: [i64; 7] = [-3, -2, -1, 0, 1, 2, 3];
/// The index of the unmoved scenario.
const MARK: usize = 3;

/// The venue's risk parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskParams {
    /// The largest move of the underlying the scenarios take, in basis points of the mark.
    pub shock_bp: u32,
    /// The least charged per short contract, in basis points of the mark times the size.
    pub short_minimum_bp: u32,
    /// Initial margin in basis points of maintenance (15,000: 1.5 times).
    pub initial_bp: u32,
}

/// One instrument's contract values at the mark and at the shocked prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskArray {
    /// Values at the scenarios of [`SCENARIOS`], in quote units.
    pub values: [i128; 7],
    /// The charge per short contract.
    pub short_minimum: i128,
    /// Every figure below 2⁷¹ in magnitude (so a difference of two is below 2⁷²): what
    /// [`Margin::of`]'s plain arithmetic needs.
    small: bool,
}

impl RiskArray {
    /// The array for `terms` at `mark` and `height`.
    pub fn new(
        terms: &OptionTerms,
        model: &Model,
        params: &RiskParams,
        mark: u64,
        height: u64,
    ) -> Self {
        let mut values = [0i128; 7];
        for (value, step) in values.iter_mut().zip(SCENARIOS) {
            let moved = i128::from(mark)
                + (i128::from(mark) * i128::from(params.shock_bp) * i128::from(step))
                    .div_euclid(3 * 10_000);
            let price = u64::try_from(moved.max(0)).unwrap_or(u64::MAX);
            *value = terms.contract_value(model, price, height);
        }
        let charge = i128::from(mark)
            .saturating_mul(i128::from(terms.size))
            .saturating_mul(i128::from(params.short_minimum_bp));
        let short_minimum = ceil_div(charge, 10_000);
        const BOUND: u128 = 1 << 71;
        Self {
            values,
            short_minimum,
            small: values.iter().all(|v| v.unsigned_abs() < BOUND)
                && short_minimum.unsigned_abs() < BOUND,
        }
    }
}

/// A holding of one instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Which instrument (an index into the risk arrays).
    pub instrument: usize,
    /// Contracts: positive long, negative short.
    pub contracts: i64,
}

/// An account's margin figures, in quote units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Margin {
    /// What its positions are worth at the mark.
    pub value: i128,
    /// What it must keep.
    pub maintenance: i128,
    /// What it must have to open.
    pub initial: i128,
}

impl Margin {
    /// Computes the margin of `positions` from `arrays`. The sums saturate at ±2¹²⁷ rather
    /// than overflow: no position a trade can build comes near, but a replica must not stop on
    /// one (the insurance fund's positions are not bounded by the trade limits). Accounts whose
    /// every product is below 2¹¹² — nearly all — take plain arithmetic, which cannot
    /// overflow then (at most 2¹⁰ positions); the rest take saturating arithmetic.
    pub fn of(positions: &[Position], arrays: &[RiskArray], params: &RiskParams) -> Self {
        let small = positions.len() <= 1 << 10
            && positions
                .iter()
                .all(|p| p.contracts.unsigned_abs() < 1 << 40 && arrays[p.instrument].small);
        let (value, maintenance) = if small {
            sums::<Plain>(positions, arrays)
        } else {
            sums::<Saturating>(positions, arrays)
        };
        Self {
            value,
            maintenance,
            initial: ceil_div(
                maintenance.saturating_mul(i128::from(params.initial_bp)),
                10_000,
            ),
        }
    }

    /// Whether an account holding `collateral` is below maintenance.
    pub fn under_maintenance(&self, collateral: u64) -> bool {
        i128::from(collateral).saturating_add(self.value) < self.maintenance
    }
}

/// Integer arithmetic for [`sums`]: plain where the operands are known small, saturating
/// elsewhere.
trait Arithmetic {
    fn mul(a: i128, b: i128) -> i128;
    fn add(a: i128, b: i128) -> i128;
}

/// Plain `*` and `+` (overflow checks in tests would catch a wrong bound).
struct Plain;

impl Arithmetic for Plain {
    fn mul(a: i128, b: i128) -> i128 {
        a * b
    }
    fn add(a: i128, b: i128) -> i128 {
        a + b
    }
}

/// Saturating at ±2¹²⁷.
struct Saturating;

impl Arithmetic for Saturating {
    fn mul(a: i128, b: i128) -> i128 {
        a.saturating_mul(b)
    }
    fn add(a: i128, b: i128) -> i128 {
        a.saturating_add(b)
    }
}

/// The value of `positions` at the mark and their maintenance margin.
fn sums<A: Arithmetic>(positions: &[Position], arrays: &[RiskArray]) -> (i128, i128) {
    let mut value = 0i128;
    let mut losses = [0i128; 7];
    let mut shorts = 0i128;
    for position in positions {
        let array = &arrays[position.instrument];
        let contracts = i128::from(position.contracts);
        let at_mark = array.values[MARK];
        value = A::add(value, A::mul(contracts, at_mark));
        for (loss, scenario) in losses.iter_mut().zip(array.values) {
            *loss = A::add(*loss, A::mul(contracts, at_mark - scenario));
        }
        if contracts < 0 {
            shorts = A::add(shorts, A::mul(-contracts, array.short_minimum));
        }
    }
    let worst = losses.into_iter().max().unwrap_or(0).max(0);
    (value, A::add(worst, shorts))
}

/// ⌈n / d⌉ for d > 0, total: −i128::MIN does not exist, so n saturates on negation (the
/// saturated sums never reach it).
pub(crate) fn ceil_div(n: i128, d: i128) -> i128 {
    -(n.saturating_neg().div_euclid(d))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::derivatives::pricing::OptionKind;

    const YEAR: u64 = 31_536_000;
    const MODEL: Model = Model {
        vol_bp: 5000,
        blocks_per_year: YEAR,
    };
    const PARAMS: RiskParams = RiskParams {
        shock_bp: 1500,
        short_minimum_bp: 100,
        initial_bp: 15_000,
    };

    fn terms(kind: OptionKind, strike: u64) -> OptionTerms {
        OptionTerms {
            kind,
            strike,
            expiry: YEAR / 12,
            size: 1,
        }
    }

    #[test]
    fn hand_worked_margins() {
        // At expiry values are intrinsic, so the figures can be worked by hand. A call struck
        // at 100 with the mark at 100 and a 15 % shock: values at 85, 90, 95, 100, 105, 110,
        // 115 are 0, 0, 0, 0, 5, 10, 15.
        let expired = OptionTerms {
            expiry: 0,
            ..terms(OptionKind::Call, 100)
        };
        let array = RiskArray::new(&expired, &MODEL, &PARAMS, 100, 0);
        assert_eq!(array.values, [0, 0, 0, 0, 5, 10, 15]);
        assert_eq!(array.short_minimum, 1, "⌈100 × 1 × 1 %⌉");
        let short = [Position {
            instrument: 0,
            contracts: -2,
        }];
        // Short 2: worst loss 2 × 15 = 30, plus 2 × 1 short minimum; initial 1.5 × 32.
        assert_eq!(
            Margin::of(&short, &[array], &PARAMS),
            Margin {
                value: 0,
                maintenance: 32,
                initial: 48
            }
        );
        let long = [Position {
            instrument: 0,
            contracts: 2,
        }];
        // Long: the worst is to lose the value it has (0 here): nothing to keep.
        assert_eq!(Margin::of(&long, &[array], &PARAMS).maintenance, 0);
        // A spread: long the 100 call, short the 105 call. The loss is capped at the width.
        let upper = OptionTerms {
            strike: 105,
            ..expired
        };
        let arrays = [array, RiskArray::new(&upper, &MODEL, &PARAMS, 100, 0)];
        let spread = [
            Position {
                instrument: 0,
                contracts: 1,
            },
            Position {
                instrument: 1,
                contracts: -1,
            },
        ];
        // Values of the pair at the scenarios: 0, 0, 0, 0, 5, 5, 5; never a loss from here.
        assert_eq!(Margin::of(&spread, &arrays, &PARAMS).maintenance, 1);
        assert!(Margin::of(&short, &arrays, &PARAMS).under_maintenance(31));
        assert!(!Margin::of(&short, &arrays, &PARAMS).under_maintenance(32));
    }

    proptest! {
        /// Offsetting positions need nothing; a short needs at least its short minimum; a
        /// bigger position never needs less.
        #[test]
        fn margins_are_coherent(
            strike in 50u64..200,
            mark in 50u64..200,
            call in any::<bool>(),
            contracts in 1i64..100,
        ) {
            let kind = if call { OptionKind::Call } else { OptionKind::Put };
            let t = OptionTerms { size: 100, ..terms(kind, strike * 1000) };
            let array = RiskArray::new(&t, &MODEL, &PARAMS, mark * 1000, 0);
            let flat = [
                Position { instrument: 0, contracts },
                Position { instrument: 0, contracts: -contracts },
            ];
            let m = Margin::of(&flat, &[array], &PARAMS);
            prop_assert_eq!(m.value, 0);
            prop_assert_eq!(m.maintenance, i128::from(contracts) * array.short_minimum);
            let short = Margin::of(&[Position { instrument: 0, contracts: -contracts }], &[array], &PARAMS);
            let more = Margin::of(&[Position { instrument: 0, contracts: -contracts - 1 }], &[array], &PARAMS);
            prop_assert!(short.maintenance >= i128::from(contracts) * array.short_minimum);
            prop_assert!(more.maintenance >= short.maintenance);
            prop_assert!(short.initial >= short.maintenance);
        }
    }
}
