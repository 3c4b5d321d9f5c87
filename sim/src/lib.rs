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
//! | [`endpoint`] | the virtual XDMA endpoint: a model served through XDMA-like device files |
//! | [`faults`] | faults the endpoint injects into the card's responses |
//! | [`loopback`] | a card that answers every request `Valid` at once, to measure the host's side |
//! | [`mapped_bar`] | a BAR mapped into memory, as the XDMA backend and the endpoint share it |

pub mod bar;
pub mod card;
pub mod cycle;
pub mod endpoint;
pub mod faults;
pub mod functional;
pub mod loopback;
pub mod mapped_bar;

pub use card::{Card, StreamError, MAX_TRANSFER};
pub use cycle::CycleCard;
pub use endpoint::{DeviceFiles, Endpoint, EndpointError};
pub use faults::Faults;
pub use functional::FunctionalCard;
pub use loopback::LoopbackCard;
