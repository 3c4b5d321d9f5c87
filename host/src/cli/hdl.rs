//! `verity hdl`: the card's hardware blocks as Verilog.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use verity_hdl::lane::ENGINES_PER_LANE;
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
        /// Engines of the card in all (`--block card` only) [default: 1].
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=255))]
        engines: Option<u8>,
        /// Lanes of the card, each a scalar unit and a dispatcher for its share of the engines
        /// (`--block card` only; must divide `--engines`) [default: one per four engines].
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
        lanes: Option<u8>,
        /// Request hashers of the card (`--block card` only) [default: one per 16 engines].
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=16))]
        hashers: Option<u8>,
        /// Contexts of the engine's ECP5 build (`--block ecc_engine_ecp5` only: 2, 4, 8 or
        /// 16) [default: 8].
        #[arg(long, value_parser = parse_contexts)]
        contexts: Option<usize>,
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

fn parse_contexts(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(n @ (2 | 4 | 8 | 16)) => Ok(n),
        _ => Err(format!("{text:?}: an engine has 2, 4, 8 or 16 contexts")),
    }
}

fn parse_block(name: &str) -> Result<Block, String> {
    name.parse()
        .map_err(|error: verity_hdl::flow::export::UnknownBlock| error.to_string())
}

/// Runs `verity hdl …`.
pub fn run(command: &HdlCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        HdlCommand::Export {
            block,
            out: dir,
            engines,
            lanes,
            hashers,
            contexts,
        } => {
            let path = dir.join(format!("{}.v", block.name()));
            let card_sizing = engines.is_some() || lanes.is_some() || hashers.is_some();
            let verilog = match (block, card_sizing, contexts) {
                (Block::EccEngineEcp5, false, Some(contexts)) => {
                    verity_hdl::flow::export::ecp5_engine_verilog(*contexts)
                }
                (Block::Card, _, None) => {
                    let engines = usize::from(engines.unwrap_or(1));
                    let lanes = lanes.map_or(engines.div_ceil(ENGINES_PER_LANE), usize::from);
                    anyhow::ensure!(
                        lanes <= 16 && engines % lanes == 0 && engines / lanes <= 16,
                        "{engines} engines do not split into {lanes} lanes of at most 16 (at \
                         most 16 lanes)"
                    );
                    let hashers = hashers.map_or(engines.div_ceil(16), usize::from);
                    verity_hdl::flow::export::card_verilog(hashers, lanes, engines / lanes)
                }
                (_, false, None) => block.verilog(),
                _ => anyhow::bail!(
                    "--engines, --lanes and --hashers are for --block card only, --contexts for \
                     --block ecc_engine_ecp5 only"
                ),
            };
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
