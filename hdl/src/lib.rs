//! rust-hdl designs of the Verity card.
//!
//! Each block (SHA-512, SHA-256, the mod-p field ALU, scalar reduction mod L, the ECC engine
//! that runs the firmware's microcode, the stream parser, the register block, the card top
//! level) lives in its own module with its test bench beside it, and is exported to Verilog,
//! linted, co-simulated and synthesized. The first blocks arrive with issue #4; the card's
//! contract with the host is [`verity_firmware`].
