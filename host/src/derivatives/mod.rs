//! Derivatives on the ledger (issue #11): the deterministic arithmetic of option values and
//! margins. Integer and fixed-point only — every replica must compute the same margin, so no
//! float reaches consensus; floats appear only in tests, as the reference the integers are
//! held to.
//!
//! * [`fixed`]: fixed-point numbers (10⁻¹² resolution) with `ln`, `exp`, `sqrt` and the
//!   normal distribution function;
//! * [`pricing`]: European option values (Black-Scholes, rate 0) per contract, in the quote
//!   asset's units, with the error bound against a floating-point Black-Scholes;
//! * [`risk`]: scenario risk arrays per instrument and an account's equity, maintenance and
//!   initial margin from them;
//! * [`mark`]: mark prices, the median of the oracles' fresh prices (which the ledger keeps).
//!
//! The ledger's instruments, oracle prices, positions and liquidation build on these.

pub mod fixed;
pub mod mark;
pub mod pricing;
pub mod risk;
