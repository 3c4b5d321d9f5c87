//! `verity sim`: the card without hardware, served as XDMA device files.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use verity_sim::{Card, CycleCard, Endpoint, Faults, FunctionalCard, LoopbackCard};

use crate::backend::default_cycle_dir;

/// The simulated card.
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Serve a card model as XDMA device files — `DIR/<NAME>user` (the BAR), `DIR/<NAME>h2c_0`
    /// and `DIR/<NAME>c2h_0` (the streams) — until interrupted, so that
    /// `verity verify --backend xdma --xdma-prefix DIR/<NAME>` runs the XDMA backend's own
    /// code with no card.
    Serve(ServeArgs),
}

/// `verity sim serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory for the device files (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// The device files' name prefix: `xdma0_` for the first card, `xdma1_` for a second.
    #[arg(long, default_value = "xdma0_")]
    pub name: String,
    /// Serve the cycle model (the card's Verilog under Verilator, about 13 verifications/s)
    /// instead of the functional model.
    #[arg(long, conflicts_with = "loopback")]
    pub cycle: bool,
    /// Serve a loop-back card that answers every request `Valid` at once without verifying
    /// it, to measure the host's own side of the XDMA path.
    #[arg(long)]
    pub loopback: bool,
    /// Engines of the functional model.
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u8).range(1..=254))]
    pub engines: u8,
    /// Where the cycle model is built and kept [default: as `verity verify --cycle-dir`].
    #[arg(long)]
    pub cycle_dir: Option<PathBuf>,
    /// Fault: hold every response this many milliseconds.
    #[arg(long, default_value = "0")]
    pub delay_ms: u64,
    /// Fault: drop every N-th response.
    #[arg(long)]
    pub drop_every: Option<NonZeroU32>,
    /// Fault: turn the verdict of every N-th response into its opposite on the way (its check
    /// no longer matches, as a bit flipped in transit).
    #[arg(long)]
    pub corrupt_every: Option<NonZeroU32>,
    /// Fault: turn the verdict of every N-th response into its opposite and recompute its
    /// check (a card whose logic is wrong).
    #[arg(long)]
    pub forge_every: Option<NonZeroU32>,
    /// Fault: add one to the tag of every N-th response.
    #[arg(long)]
    pub wrong_tag_every: Option<NonZeroU32>,
    /// Fault: send every N-th response twice.
    #[arg(long)]
    pub duplicate_every: Option<NonZeroU32>,
    /// Fault: send no response after the N-th.
    #[arg(long)]
    pub stop_after: Option<u32>,
    /// Fault: remove the device after the N-th response.
    #[arg(long)]
    pub vanish_after: Option<u32>,
}

impl ServeArgs {
    fn faults(&self) -> Faults {
        Faults {
            delay: Duration::from_millis(self.delay_ms),
            drop_every: self.drop_every,
            corrupt_every: self.corrupt_every,
            forge_every: self.forge_every,
            wrong_tag_every: self.wrong_tag_every,
            duplicate_every: self.duplicate_every,
            stop_after: self.stop_after,
            vanish_after: self.vanish_after,
        }
    }
}

/// Runs a `verity sim` command.
pub fn run(command: &SimCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let SimCommand::Serve(args) = command;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let (card, what): (Box<dyn Card>, String) = if args.loopback {
        let what = "a loop-back card (every request Valid, nothing verified)".to_owned();
        (Box::new(LoopbackCard::default()), what)
    } else if args.cycle {
        let dir = args.cycle_dir.clone().unwrap_or_else(default_cycle_dir);
        eprintln!(
            "building or reusing the cycle model in {} (a minute the first time)",
            dir.display()
        );
        let card = CycleCard::open(dir).context("starting the cycle model")?;
        (Box::new(card), "the cycle model".to_owned())
    } else {
        let card = FunctionalCard::new(args.engines);
        let what = format!("the functional model ({} engines)", args.engines);
        (Box::new(card), what)
    };
    let prefix = args.dir.join(&args.name);
    let endpoint = Endpoint::serve(&prefix, card).context("starting the virtual endpoint")?;
    endpoint.set_faults(args.faults());
    let files = endpoint.files();
    writeln!(
        out,
        "serving {what} at {} (BAR), {} and {}",
        files.user.display(),
        files.h2c.display(),
        files.c2h.display()
    )?;
    if args.faults() != Faults::NONE {
        writeln!(out, "injecting {:?}", args.faults())?;
    }
    writeln!(
        out,
        "use: verity verify --backend xdma --xdma-prefix {} FILE   (stop this with Ctrl-C)",
        prefix.display()
    )?;
    out.flush()?;
    endpoint.wait().context("the virtual endpoint stopped")?;
    writeln!(out, "the device is gone")?;
    Ok(())
}
