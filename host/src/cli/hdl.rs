//! `verity hdl`: the card's hardware blocks as Verilog.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use verity_hdl::Block;

/// Export the card's rust-hdl blocks for other tools (Verilator, Icarus, Yosys, nextpnr).
#[derive(Debug, clap::Subcommand)]
pub enum HdlCommand {
    /// Write one block's Verilog to DIR/NAME.v, with its top module named NAME.
    Export {
        /// The block (`verity hdl list` names them all).
        #[arg(long, value_parser = parse_block)]
        block: Block,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write DIR/NAME_pins.v: module NAME_pins(clock, din, dout), the block behind two data
    /// pins, for place-and-route (`make synth` uses it to measure Fmax on ECP5).
    Pins {
        /// The block (`verity hdl list` names them all).
        #[arg(long, value_parser = parse_block)]
        block: Block,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// List the blocks that can be exported.
    List,
}

fn parse_block(name: &str) -> Result<Block, String> {
    name.parse()
        .map_err(|error: verity_hdl::flow::export::UnknownBlock| error.to_string())
}

/// Runs `verity hdl …`.
pub fn run(command: &HdlCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        HdlCommand::Export { block, out: dir } => {
            let path = dir.join(format!("{}.v", block.name()));
            let verilog = block.verilog();
            write(dir, &path, &verilog)?;
            writeln!(
                out,
                "wrote {} (top module {}, {} lines)",
                path.display(),
                block.name(),
                verilog.lines().count()
            )?;
        }
        HdlCommand::Pins { block, out: dir } => {
            let path = dir.join(format!("{}_pins.v", block.name()));
            write(dir, &path, &verity_hdl::flow::pins::pin_wrapper(*block))?;
            writeln!(
                out,
                "wrote {} (top module {}_pins)",
                path.display(),
                block.name()
            )?;
        }
        HdlCommand::List => {
            for block in Block::ALL {
                writeln!(out, "{block}")?;
            }
        }
    }
    Ok(())
}

fn write(dir: &Path, path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
