//! Choosing a verification backend on the command line.

use std::num::NonZeroUsize;

use verity_drivers::{CpuConfig, CpuVerifier, Verifier};

/// The verification backends `verity` can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// ZIP-215 batch verification on the CPU, all cores.
    Cpu,
}

/// How to size the backend.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct BackendOptions {
    /// Where signatures are verified.
    #[arg(long, value_enum, default_value_t = BackendKind::Cpu)]
    pub backend: BackendKind,
    /// Worker threads for the CPU backend [default: one per core].
    #[arg(long)]
    pub threads: Option<NonZeroUsize>,
    /// Signatures per batch equation for the CPU backend.
    #[arg(long, default_value = "1024")]
    pub batch: NonZeroUsize,
}

impl BackendOptions {
    /// Starts the chosen backend.
    pub fn open(&self) -> Box<dyn Verifier> {
        match self.backend {
            BackendKind::Cpu => {
                let default = CpuConfig::default();
                Box::new(CpuVerifier::new(CpuConfig::new(
                    self.threads.unwrap_or(default.threads),
                    self.batch,
                )))
            }
        }
    }
}
