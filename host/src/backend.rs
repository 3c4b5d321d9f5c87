//! Choosing a verification backend on the command line.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use verity_drivers::{
    CardConfig, CardVerifier, Failover, FailoverConfig, Opener, PoolConfig, PoolVerifier, Verifier,
    XdmaCard, XdmaConfig,
};
use verity_firmware::image::Image;
use verity_firmware::program::ed25519_verify;
use verity_sim::{CycleCard, FunctionalCard};

/// The verification backends `verity` can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// ZIP-215 batch verification on the CPU, all cores.
    Cpu,
    /// The card's microcode on the firmware's reference interpreter (slow; for checking).
    Model,
    /// The simulated card's functional model, driven through the card ABI (records, BAR,
    /// image upload) exactly as a card is.
    Sim,
    /// The card's Verilog, cycle by cycle under Verilator (one engine of 16 contexts), driven
    /// through the card ABI; built on first use (about a minute; needs `verilator`, which
    /// `scripts/deps` installs).
    SimCycle,
    /// A card behind the Xilinx XDMA driver, at `--xdma-prefix` (or the virtual endpoint of
    /// `verity sim serve`).
    Xdma,
}

/// How to size the backend.
#[derive(Clone, Debug, clap::Args)]
pub struct BackendOptions {
    /// Where signatures are verified.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    pub backend: BackendKind,
    /// Worker threads [default: one per core].
    #[arg(long)]
    pub threads: Option<NonZeroUsize>,
    /// Signatures per batch (one batch equation for `cpu`, one worker's share for `model`).
    #[arg(long, default_value = "1024")]
    pub batch: NonZeroUsize,
    /// Engines of the simulated card (`sim`).
    #[arg(long, default_value = "4", value_parser = clap::value_parser!(u8).range(1..=254))]
    pub engines: u8,
    /// Where the cycle model (`sim-cycle`) is built and kept [default:
    /// $XDG_CACHE_HOME/verity/cycle-card, else ~/.cache/verity/cycle-card].
    #[arg(long)]
    pub cycle_dir: Option<PathBuf>,
    /// The card's XDMA device files, `<prefix>user`, `<prefix>h2c_0` and `<prefix>c2h_0`
    /// (`xdma`).
    /// Repeat it for several cards: requests are spread over them by queue depth, with the
    /// CPU behind them (as `--failover`).
    #[arg(long, default_value = verity_sim::DeviceFiles::DEFAULT_PREFIX)]
    pub xdma_prefix: Vec<PathBuf>,
    /// How long the card may leave requests unanswered before it is failed, in milliseconds
    /// (`xdma`).
    #[arg(long, default_value = "1000")]
    pub response_timeout_ms: u64,
    /// Put the CPU behind the card (`xdma`): the card must pass known-answer tests first, and
    /// a card that is missing or fails hands its requests to the CPU instead of ending the
    /// run.
    #[arg(long)]
    pub failover: bool,
}

impl BackendKind {
    /// Its name on the command line and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Model => "model",
            BackendKind::Sim => "sim",
            BackendKind::SimCycle => "sim-cycle",
            BackendKind::Xdma => "xdma",
        }
    }
}

impl BackendOptions {
    /// How the backend's worker pool is sized: the options, defaults filled in.
    pub fn config(&self) -> PoolConfig {
        PoolConfig::new(
            self.threads.unwrap_or(PoolConfig::default().threads),
            self.batch,
        )
    }

    /// Threads the backend verifies on.
    pub fn threads(&self) -> usize {
        match self.backend {
            BackendKind::Cpu | BackendKind::Model => self.config().threads.get(),
            BackendKind::Sim | BackendKind::SimCycle | BackendKind::Xdma => 1,
        }
    }

    /// How the backend is sized, for reports.
    pub fn describe(&self) -> String {
        match self.backend {
            BackendKind::Cpu | BackendKind::Model => {
                format!("{} threads, batches of {}", self.threads(), self.batch)
            }
            BackendKind::Sim => format!(
                "functional card model, {} engines, on one thread",
                self.engines
            ),
            BackendKind::SimCycle => {
                "cycle model (the card's Verilog under Verilator), 1 engine of 16 contexts"
                    .to_owned()
            }
            BackendKind::Xdma => {
                let cards: Vec<String> = self
                    .xdma_prefix
                    .iter()
                    .map(|p| format!("{}*", p.display()))
                    .collect();
                format!("card at {}", cards.join(", "))
            }
        }
    }

    /// Starts the chosen backend; a card backend is checked, loaded with the Ed25519 image
    /// and enabled first.
    pub fn open(&self) -> anyhow::Result<Box<dyn Verifier>> {
        let config = self.config();
        Ok(match self.backend {
            BackendKind::Cpu => Box::new(PoolVerifier::cpu(config)),
            BackendKind::Model => Box::new(PoolVerifier::model(config)),
            BackendKind::Sim => Box::new(
                CardVerifier::open(
                    FunctionalCard::new(self.engines),
                    "sim",
                    &Image::new(ed25519_verify()),
                    CardConfig::model(),
                )
                .context("opening the simulated card")?,
            ),
            BackendKind::SimCycle => {
                let dir = self.cycle_dir.clone().unwrap_or_else(default_cycle_dir);
                eprintln!(
                    "sim-cycle: building or reusing the card model in {} (a minute the first time)",
                    dir.display()
                );
                let card = CycleCard::open(dir).context("starting the cycle model")?;
                Box::new(
                    CardVerifier::open(
                        card,
                        "sim-cycle",
                        &Image::new(ed25519_verify()),
                        CardConfig::model(),
                    )
                    .context("opening the cycle model")?,
                )
            }
            BackendKind::Xdma => match self.xdma_prefix.as_slice() {
                [prefix] if !self.failover => {
                    Box::new(open_xdma(prefix, self.response_timeout_ms)?)
                }
                prefixes => {
                    let timeout = self.response_timeout_ms;
                    let openers = prefixes
                        .iter()
                        .map(|prefix| {
                            let prefix = prefix.clone();
                            Box::new(move || {
                                open_xdma(&prefix, timeout)
                                    .map(|card| Box::new(card) as Box<dyn Verifier>)
                                    .map_err(|e| format!("{e:#}"))
                            }) as Opener
                        })
                        .collect();
                    let failover = Failover::new(
                        "xdma",
                        openers,
                        Box::new(PoolVerifier::cpu(config)),
                        FailoverConfig::default(),
                    );
                    let (serving, all) = (failover.cards_serving(), prefixes.len());
                    if let Some(reason) = failover.last_failure() {
                        eprintln!("xdma: {serving} of {all} cards serving ({reason}); the CPU is behind them");
                    }
                    Box::new(failover)
                }
            },
        })
    }
}

/// The card at `prefix`, checked, loaded and enabled.
fn open_xdma(prefix: &Path, timeout_ms: u64) -> anyhow::Result<CardVerifier<XdmaCard>> {
    let card = XdmaCard::open(XdmaConfig {
        prefix: prefix.to_owned(),
        ..XdmaConfig::default()
    })?;
    let config = CardConfig {
        response_timeout: Duration::from_millis(timeout_ms),
        ..CardConfig::default()
    };
    CardVerifier::open(card, "xdma", &Image::new(ed25519_verify()), config)
        .with_context(|| format!("opening the card at {}", prefix.display()))
}

/// `$XDG_CACHE_HOME/verity/cycle-card`, else `$HOME/.cache/verity/cycle-card`, else a
/// directory under the system's temporary one.
pub(crate) fn default_cycle_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("verity").join("cycle-card")
}
