//! The Verity card without hardware.
//!
//! Every model here is reached through [`Card`], the surface a driver sees on a real card:
//! the BAR's registers and the two DMA streams.
//!
//! | module | what |
//! |---|---|
//! | [`card`] | the [`Card`] interface |
//! | [`bar`] | the register block's rules |
//! | [`functional`] | the functional model: the firmware's reference interpreter behind the card's records and registers |
//! | [`cycle`] | the cycle model: the card's Verilog under Verilator, cycle by cycle |
//!
//! The virtual XDMA endpoint arrives with issue #7.

pub mod bar;
pub mod card;
pub mod cycle;
pub mod functional;

pub use card::{Card, StreamError, MAX_TRANSFER};
pub use cycle::CycleCard;
pub use functional::FunctionalCard;
