//! The cycle model: the card's exported Verilog (`verity_hdl::card`), compiled by Verilator
//! and run cycle by cycle behind [`Card`] — or, for short runs, the same design in rust-hdl's
//! own simulation ([`CycleCard::in_rust_hdl`], a few thousand cycles a second).
//!
//! Every register access and stream beat goes through the design's host port as the card
//! would take it, and the simulated clock runs only as far as each call needs: a register
//! access until its data is back, a transfer until its last beat is taken, a read of the
//! response stream until a response leaves or the card says it is idle. The first
//! [`CycleCard::open`] in a directory builds the model (about a minute); later ones reuse it
//! while the Verilog is the same.
//!
//! A simulator that stops answering behaves as a card that fell off the bus: its registers
//! read all ones, transfers fail with [`StreamError::Failed`], and no response comes.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use num_bigint::BigUint;
use tracing::{error, info};
use verity_firmware::abi::{RESPONSE_LEN, WORD};
use verity_firmware::regs::{self, Offset};
use verity_hdl::card::{self as design, out};
use verity_hdl::card_bench;
use verity_hdl::field_mul::Rate;
use verity_hdl::flow::cosim::{Cosim, Driven, InProcess, ServeError, Server, Simulator, Synced};
use verity_hdl::flow::tools::ToolError;
use verity_hdl::Block;

use crate::card::{hand_over, Card, StreamError, MAX_TRANSFER};

/// Cycles a register read waits for its data: the host port, the register block and the
/// card's read register each take one.
const READ_CYCLES: u64 = 4;
/// Cycles simulated between looks at the response stream while requests are in flight (an
/// engine takes about 3,500 cycles per verification at steady state, 40,000 for one alone).
const POLL_CYCLES: u64 = 2_000;

/// Cycles a beat may wait to be taken before the model gives it up (a card that holds its
/// stream this long has stopped).
const STUCK_CYCLES: u64 = 10_000_000;

/// The card's design run cycle by cycle: its Verilog under Verilator (the default), or
/// rust-hdl's own simulation of it.
pub struct CycleCard<D: Driven = Server> {
    server: Option<D>,
    responses: VecDeque<[u8; RESPONSE_LEN]>,
    cycle: u64,
}

/// The model could not be built or started.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Verilator failed (or is missing: `scripts/deps` installs it).
    #[error("building the cycle model: {0}")]
    Build(#[from] ToolError),
}

impl CycleCard<InProcess<design::Card>> {
    /// The same card (`hashers` request hashers, `lanes` lanes of one engine of 16 contexts)
    /// in rust-hdl's own simulation: no build, but slow — for sessions of thousands of
    /// cycles, not verifications.
    pub fn in_rust_hdl(hashers: usize, lanes: usize) -> Self {
        let card = design::Card::new(hashers, lanes, 1, 16, Rate::Full);
        Self {
            server: Some(InProcess::new(card, STUCK_CYCLES)),
            responses: VecDeque::new(),
            cycle: 0,
        }
    }
}

impl CycleCard {
    /// The card with one engine of 16 contexts (`Block::Card`), built in `dir` if it is not
    /// there already, and started.
    pub fn open(dir: PathBuf) -> Result<Self, OpenError> {
        let cosim = Cosim::new(Block::Card, dir.clone());
        info!(dir = %dir.display(), "building or reusing the cycle model");
        let compiled = cosim.compile_cached(Simulator::Verilator)?;
        Ok(Self {
            server: Some(compiled.serve()?),
            responses: VecDeque::new(),
            cycle: 0,
        })
    }
}

impl<D: Driven> std::fmt::Debug for CycleCard<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CycleCard")
            .field("running", &self.server.is_some())
            .field("cycle", &self.cycle)
            .field("responses", &self.responses.len())
            .finish()
    }
}

impl<D: Driven> CycleCard<D> {
    /// Cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.cycle
    }

    /// Runs `drive` on the simulation and takes in what came out; a failure retires it.
    fn exchange(&mut self, drive: impl FnOnce(&mut D) -> Result<(), ServeError>) -> Option<Synced> {
        let server = self.server.as_mut()?;
        match drive(server).and_then(|()| server.sync()) {
            Ok(synced) => {
                self.cycle = synced.cycle;
                for (_, beat) in &synced.outputs {
                    if beat[0] == BigUint::from(out::RESPONSE) {
                        self.responses.push_back(card_bench::record(&beat[1]));
                    }
                }
                Some(synced)
            }
            Err(e) => {
                error!(error = %e, cycle = self.cycle, "the cycle model stopped answering");
                self.server = None;
                None
            }
        }
    }
}

impl<D: Driven> Card for CycleCard<D> {
    fn read_register(&mut self, offset: Offset) -> u32 {
        let synced = self.exchange(|s| {
            s.offer(&card_bench::read(offset))?;
            s.idle(READ_CYCLES)
        });
        synced
            .and_then(|synced| {
                synced
                    .outputs
                    .iter()
                    .find(|(_, beat)| beat[0] == BigUint::from(out::READ_DATA))
                    .map(|(_, beat)| card_bench::read_value(&beat[1]))
            })
            // A card that does not answer reads as all ones, as on PCIe.
            .unwrap_or(u32::MAX)
    }

    fn write_register(&mut self, offset: Offset, value: u32) {
        self.exchange(|s| s.offer(&card_bench::write(offset, value)));
        // A reset drops the responses not yet read: those still in the card (it drops them
        // as they leave) and those already on the host's side of the stream.
        if offset == regs::CONTROL && value & regs::control::RESET != 0 {
            self.responses.clear();
        }
    }

    fn write_stream(&mut self, transfer: &[u8]) -> Result<(), StreamError> {
        if transfer.len() > MAX_TRANSFER {
            return Err(StreamError::TooLarge(transfer.len()));
        }
        // The card holds the stream while it is not running; a driver learns that from STATUS.
        if self.read_register(regs::STATUS) & regs::status::RUNNING == 0 {
            return Err(StreamError::NotRunning);
        }
        let beats = card_bench::stream(&[transfer.to_vec()]);
        debug_assert_eq!(beats.len(), transfer.len().div_ceil(WORD));
        match self.exchange(|s| beats.iter().try_for_each(|beat| s.offer(beat))) {
            Some(synced) if synced.refused.is_empty() => Ok(()),
            _ => Err(StreamError::Failed),
        }
    }

    fn read_stream(
        &mut self,
        out: &mut Vec<u8>,
        max_records: usize,
        _wait: Duration,
    ) -> Result<usize, StreamError> {
        while self.responses.is_empty() {
            self.exchange(|s| s.idle(POLL_CYCLES))
                .ok_or(StreamError::Failed)?;
            let status = self.read_register(regs::STATUS);
            if self.responses.is_empty() && status & regs::status::IDLE != 0 {
                return Ok(0);
            }
        }
        Ok(hand_over(&mut self.responses, out, max_records))
    }
}
