//! The contract between the Verity card and its host.
//!
//! Everything that crosses the PCIe boundary is defined here once and imported by `hdl`,
//! `sim` and `drivers`, so the card, its models and the host cannot drift apart. This crate
//! depends on no other crate of Verity's.
//!
//! So far it holds the two types every verification path returns: the request [`Tag`] and the
//! [`Verdict`]. The record layouts, register map, ECC-engine instruction set, microcode and
//! reference interpreter come with issue #3.

mod tag;
mod verdict;

pub use tag::Tag;
pub use verdict::{Malformed, UnknownVerdictCode, Verdict};
