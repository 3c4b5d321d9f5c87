//! The hardware flow every block goes through: simulate, export, lint, co-simulate.
//!
//! - [`harness`] drives a block in rust-hdl's simulator, cycle by cycle, from a list of input
//!   beats and a stall pattern, and compares what comes out against a reference.
//! - [`export`] names the blocks and writes their Verilog with a top module of that name.
//! - [`shared_modules`] writes a module once for all the instances that share its text.
//! - [`tools`] runs the external tools (Verilator's linter, Icarus Verilog) and reports their
//!   failures with their output.
//! - [`pins`] wraps a block for place-and-route, behind two data pins.
//! - [`cosim`] runs the exported Verilog in Icarus on the same beats and stalls, through a
//!   generated test bench, and returns what came out, cycle for cycle.

pub mod cosim;
pub mod export;
pub mod harness;
pub mod pins;
pub mod shared_modules;
pub mod tools;
