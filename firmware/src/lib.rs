//! The contract between the Verity card and its host.
//!
//! Everything that crosses the PCIe boundary is defined here once and imported by `hdl`,
//! `sim` and `drivers`, so the card, its models and the host cannot drift apart. This crate
//! depends on no other crate of Verity's.
//!
//! | module | what |
//! |---|---|
//! | [`abi`] | request and response records |
//! | [`regs`] | the control BAR's register map |
//! | [`isa`] | the ECC engine's instruction set and its 64-bit words |
//! | [`asm`] | the assembler that builds programs |
//! | [`program`] | the Ed25519 ZIP-215 verification microcode |
//! | [`image`] | the firmware image format |
//! | [`interp`] | the reference interpreter and the cycle model |
//! | [`merkle`] | the Merkle root rule over a batch of transaction ids |
//! | [`field`], [`point`], [`scalar`] | bit-exact arithmetic: the units' reference functions |
//! | [`verify`] | one verification end to end in software |
//!
//! and the two types every verification path returns: the request [`Tag`] and the
//! [`Verdict`].

pub mod abi;
pub mod asm;
pub mod field;
pub mod image;
pub mod interp;
pub mod isa;
mod limbs;
pub mod merkle;
pub mod point;
pub mod program;
pub mod regs;
pub mod scalar;
mod tag;
mod verdict;
pub mod verify;

pub use tag::Tag;
pub use verdict::{Malformed, UnknownVerdictCode, Verdict};
