//! Choosing a verification backend on the command line.

use std::num::NonZeroUsize;

use verity_drivers::{PoolConfig, PoolVerifier, Verifier};

/// The verification backends `verity` can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// ZIP-215 batch verification on the CPU, all cores.
    Cpu,
    /// The card's microcode on the firmware's reference interpreter (slow; for checking).
    Model,
}

/// How to size the backend.
#[derive(Clone, Copy, Debug, clap::Args)]
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
}

impl BackendOptions {
    /// How the backend's worker pool is sized: the options, defaults filled in.
    pub fn config(&self) -> PoolConfig {
        PoolConfig::new(
            self.threads.unwrap_or(PoolConfig::default().threads),
            self.batch,
        )
    }

    /// Starts the chosen backend.
    pub fn open(&self) -> Box<dyn Verifier> {
        let config = self.config();
        match self.backend {
            BackendKind::Cpu => Box::new(PoolVerifier::cpu(config)),
            BackendKind::Model => Box::new(PoolVerifier::model(config)),
        }
    }
}
