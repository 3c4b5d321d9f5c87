//! `verity firmware`: the card's microcode, measured and exported.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use anyhow::Context;
use ed25519_dalek::Signer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use verity_firmware::image::{Image, ISA_VERSION};
use verity_firmware::interp::{CostModel, Counts, Engine, Inputs};
use verity_firmware::program::ed25519_verify;
use verity_firmware::verify::prepare;

/// Inspect the Ed25519 verification microcode the card runs.
#[derive(Debug, clap::Subcommand)]
pub enum FirmwareCommand {
    /// Count what one verification costs on the reference interpreter, and the cycles per
    /// verification of one engine under the documented cost model.
    Stats(StatsArgs),
    /// Write the firmware image (header, microcode, constants, CRC-32) to a file.
    Image {
        /// File to write.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Options of `verity firmware stats`.
#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Random valid signatures to measure over.
    #[arg(long, default_value = "256")]
    pub signatures: NonZeroUsize,
    /// Contexts interleaved on one engine.
    #[arg(long, default_value_t = CostModel::default().contexts)]
    pub contexts: usize,
    /// Multiplier pipeline latency in cycles (it accepts one operation per cycle).
    #[arg(long, default_value_t = CostModel::default().multiplier_latency)]
    pub multiplier_latency: u64,
    /// Linear-unit latency in cycles.
    #[arg(long, default_value_t = CostModel::default().linear_latency)]
    pub linear_latency: u64,
    /// Engine clock in MHz, for the verifications/s line.
    #[arg(long, default_value = "250")]
    pub mhz: u32,
}

/// Runs `verity firmware …`.
pub fn run(command: &FirmwareCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        FirmwareCommand::Image { out: path } => {
            let bytes = Image::new(ed25519_verify()).encode();
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(
                out,
                "wrote {} ({} bytes, CRC-32 {:#010x})",
                path.display(),
                bytes.len(),
                Image::checksum(&bytes)
            )?;
            Ok(())
        }
        FirmwareCommand::Stats(args) => stats(args, out),
    }
}

fn stats(args: &StatsArgs, out: &mut impl Write) -> anyhow::Result<()> {
    anyhow::ensure!(args.contexts > 0, "an engine has at least one context");
    let program = ed25519_verify();
    let (words, constants) = (program.code.len(), program.constants.len());
    let image = Image::new(program);
    let bytes = image.encode();
    let engine = Engine::new(image);
    let jobs = signatures(args.signatures.get());
    let mut counts = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let outcome = engine.run(job.clone()).context("the microcode faulted")?;
        anyhow::ensure!(
            outcome.code == 0,
            "a valid signature was not accepted (code {})",
            outcome.code
        );
        counts.push(outcome.counts);
    }
    let model = CostModel {
        contexts: args.contexts,
        multiplier_latency: args.multiplier_latency,
        linear_latency: args.linear_latency,
        ..CostModel::default()
    };
    let scheduled = engine
        .schedule(model, &jobs)
        .context("the microcode faulted")?;
    let alone = engine
        .schedule(
            CostModel {
                contexts: 1,
                ..model
            },
            &jobs[..1],
        )
        .context("the microcode faulted")?;
    let per = scheduled.cycles_per_verification();
    let column = |pick: fn(&Counts) -> u64| {
        let values: Vec<u64> = counts.iter().map(pick).collect();
        let mean = values.iter().sum::<u64>() as f64 / values.len() as f64;
        let (min, max) = (
            values.iter().min().copied().unwrap_or(0),
            values.iter().max().copied().unwrap_or(0),
        );
        format!("{mean:>8.1} mean, {min} min, {max} max")
    };
    writeln!(
        out,
        "Ed25519 ZIP-215 verification microcode, ISA version {ISA_VERSION}"
    )?;
    writeln!(
        out,
        "  image: {words} words, {constants} constants, {} bytes, CRC-32 {:#010x}",
        bytes.len(),
        Image::checksum(&bytes)
    )?;
    writeln!(
        out,
        "  per verification, over {} random valid signatures:",
        jobs.len()
    )?;
    writeln!(
        out,
        "    multiplier operations {}",
        column(|c| c.multiplier)
    )?;
    writeln!(out, "    linear operations     {}", column(|c| c.linear))?;
    writeln!(
        out,
        "    instructions          {}",
        column(|c| c.instructions)
    )?;
    writeln!(
        out,
        "  cost model: {} contexts, multiplier latency {}, linear latency {}, reload {} cycles",
        model.contexts, model.multiplier_latency, model.linear_latency, model.reload
    )?;
    writeln!(
        out,
        "    cycles per verification, one engine, {} signatures: {per:.0}",
        jobs.len()
    )?;
    writeln!(
        out,
        "    multiplier busy: {:.1} %",
        100.0 * scheduled.multiplier_busy as f64 / scheduled.cycles.max(1) as f64
    )?;
    writeln!(
        out,
        "    latency of one verification alone: {} cycles",
        alone.cycles
    )?;
    writeln!(
        out,
        "    at {} MHz: {:.0} verifications/s per engine",
        args.mhz,
        f64::from(args.mhz) * 1e6 / per
    )?;
    Ok(())
}

/// Random valid signatures with distinct keys, from a fixed seed so the figures repeat.
fn signatures(count: usize) -> Vec<Inputs> {
    let mut rng = StdRng::seed_from_u64(215);
    (0..count)
        .filter_map(|_| {
            let key = ed25519_dalek::SigningKey::generate(&mut rng);
            let mut message = vec![0u8; rng.gen_range(32..160)];
            rng.fill(&mut message[..]);
            let signature = key.sign(&message).to_bytes();
            prepare(&key.verifying_key().to_bytes(), &signature, &message).ok()
        })
        .collect()
}
