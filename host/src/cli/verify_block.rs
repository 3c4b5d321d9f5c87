//! `verity verify-block`: a certified block checked offline against the genesis file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::backend::BackendOptions;
use crate::consensus::certified::{CertifiedBlock, FILE_LEN_MAX};
use crate::genesis::Genesis;
use crate::text_file::read_at_most;

/// Check a certified block (`verity block N --out FILE`) offline: its commit certificate is
/// for this block and height, signed by distinct validators of the genesis file holding more
/// than two thirds of the voting power, and every transaction in it is validly signed for
/// this chain. Exits non-zero, with the reason, if anything does not hold.
#[derive(Debug, clap::Args)]
pub struct VerifyBlockArgs {
    /// The certified block (JSON).
    pub file: PathBuf,
    /// The genesis file naming the validators.
    #[arg(long)]
    pub genesis: PathBuf,
    /// Where the signatures are verified.
    #[command(flatten)]
    pub backend: BackendOptions,
}

/// Runs `verity verify-block`.
pub fn run(args: &VerifyBlockArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let genesis = Genesis::read(&args.genesis)
        .with_context(|| format!("genesis {}", args.genesis.display()))?;
    let validators = genesis
        .validator_set()
        .context("the genesis file's validators")?;
    let text = read_at_most(&args.file, FILE_LEN_MAX)
        .with_context(|| format!("cannot read {}", args.file.display()))?
        .map_err(|len| {
            anyhow::anyhow!(
                "{} is {len} bytes: not a certified block",
                args.file.display()
            )
        })?;
    let block: CertifiedBlock = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a certified block", args.file.display()))?;
    let mut verifier = args.backend.open().context("starting the verifier")?;
    let checked = block
        .check(genesis.rules.chain_id, &validators, verifier.as_mut())
        .with_context(|| format!("block {} does not hold", block.height))?;
    writeln!(
        out,
        "block {} ({}) holds: {} transactions, decided in round {} by {} validators with {} of {} voting power",
        block.height,
        checked.id,
        checked.transactions,
        checked.round,
        checked.signers,
        checked.power.0,
        checked.power.1
    )?;
    writeln!(
        out,
        "certified state root at height {}: {}",
        checked.root.0,
        hex::encode(checked.root.1)
    )?;
    match &block.state_root {
        Some(root) if crate::block::root_carried(block.height) => writeln!(
            out,
            "state root after block {}: {root} (the serving replica's word; certified by block {})",
            block.height,
            block.height + crate::block::ROOT_LAG
        )?,
        Some(root) => writeln!(
            out,
            "state root after block {}: {root} (the serving replica's word; no header carries it)",
            block.height
        )?,
        None => writeln!(
            out,
            "state root after block {}: not kept by the serving replica (roots are kept every {} \
             heights)",
            block.height,
            crate::block::ROOT_EPOCH
        )?,
    }
    Ok(())
}
