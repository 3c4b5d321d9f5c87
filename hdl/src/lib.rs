//! rust-hdl designs of the Verity card.
//!
//! Each block lives in its own module with its test bench beside it, and goes through the
//! same [`flow`]: simulated in rust-hdl against a reference, exported to Verilog
//! ([`Block::verilog`]), linted by Verilator, co-simulated in Icarus Verilog on the same
//! stimulus, and synthesized by Yosys and nextpnr (`make synth BLOCK=…`).
//!
//! Blocks so far: the SHA-2 [`padder`], the [`sha2_core`] compression function and the
//! [`sha2`] units built from them (SHA-512 for the signature challenge, SHA-256 for
//! transaction ids), the [`merkle`] root unit over a batch of transaction ids, and the ECC
//! engine's field ALU: the [`field_mul`] modular multiplier and the [`field_linear`] unit; the ECC engine
//! ([`ecc_engine`]); and the [`scalar_unit`] that turns a challenge digest and S into the
//! engine's digits; the [`record_parser`] of the host-to-card stream; and the image upload's
//! [`crc32`] and code-word check ([`instr_check`]); the [`request_window`] that takes small
//! batches through the BAR, and the [`response_check`] that seals each response record. The
//! card's contract with the host is [`verity_firmware`].

pub mod card;
pub mod card_bench;
pub mod context_slot;
pub mod crc32;
pub mod dispatcher;
pub mod ecc_engine;
pub mod ecc_engine_bench;
pub mod field_linear;
pub mod field_mul;
pub mod field_value;
pub mod flow;
pub mod hasher_pool;
pub mod image_check;
pub mod instr_check;
pub mod lane;
pub mod merkle;
pub mod or_tree;
pub mod padder;
pub mod record_parser;
pub mod reg_block;
pub mod reg_file;
pub mod reg_row;
pub mod request_hasher;
pub mod request_window;
pub mod response_check;
pub mod round_robin;
pub mod scalar_unit;
pub mod sha2;
pub mod sha2_core;
pub mod sha2_spec;
pub mod shallow_ram;

pub use flow::export::Block;
