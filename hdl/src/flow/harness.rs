//! Driving a streaming block in rust-hdl's simulator and checking what it produces.
//!
//! Every block of the card has one input stream and one output stream with valid/ready
//! handshakes, named `in_valid`/`in_ready` and `out_valid`/`out_ready`. A test describes the
//! input as a list of [`Beat`]s (the values of the stream's data ports), the back-pressure as
//! a [`Stalls`] pattern, and the expected output as another list of beats. [`run`] plays one
//! cycle at a time — drive the inputs, let the logic settle, sample both handshakes, raise the
//! clock — exactly as the co-simulation bench of [`super::cosim`] does in Verilog, so the two
//! traces can be compared cycle for cycle.
//!
//! The clock is toggled by hand and the design settled with [`rust_hdl::prelude::simulate`]
//! rather than through rust-hdl's threaded `Simulation`, which is an order of magnitude
//! slower.

use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_hdl::prelude::{simulate, Block};
use std::fmt;

/// One transfer on a stream: the value of each data port, in the order of the port list.
pub type Beat = Vec<BigUint>;

/// A data port of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    /// The port's name in the block and in its Verilog.
    pub name: &'static str,
    /// Width in bits.
    pub bits: usize,
}

/// A block with one input and one output stream.
pub trait StreamBlock: Block {
    /// The data ports of the input stream, besides `in_valid` and `in_ready`.
    const INPUTS: &'static [Port];
    /// The data ports of the output stream, besides `out_valid` and `out_ready`.
    const OUTPUTS: &'static [Port];
    /// Whether the block has `in_ready` and `out_ready`. A pipeline without them takes an
    /// input every cycle and its output cannot be held back.
    const BACK_PRESSURE: bool = true;
    /// Sets the clock input.
    fn set_clock(&mut self, high: bool);
    /// Offers `beat` on the input stream, or nothing.
    fn drive(&mut self, beat: Option<&Beat>);
    /// The block's `in_ready`.
    fn input_ready(&self) -> bool;
    /// Sets `out_ready`.
    fn set_output_ready(&mut self, ready: bool);
    /// The output beat, when `out_valid` is high.
    fn output(&self) -> Option<Beat>;
}

/// The clock and handshake methods of [`StreamBlock`] for a block whose ports follow the
/// naming convention (`clock`, `in_ready`, `out_ready`); used inside the trait's `impl`.
#[macro_export]
macro_rules! stream_handshake {
    () => {
        fn set_clock(&mut self, high: bool) {
            self.clock.next = ::rust_hdl::prelude::Clock::from(high);
        }

        fn input_ready(&self) -> bool {
            self.in_ready.val()
        }

        fn set_output_ready(&mut self, ready: bool) {
            self.out_ready.next = ready;
        }
    };
}

/// The clock and handshake methods of [`StreamBlock`] for a pipeline without back-pressure
/// (`BACK_PRESSURE = false`): it takes an input every cycle and its outputs cannot wait.
#[macro_export]
macro_rules! pipeline_handshake {
    () => {
        fn set_clock(&mut self, high: bool) {
            self.clock.next = ::rust_hdl::prelude::Clock::from(high);
        }

        fn input_ready(&self) -> bool {
            true
        }

        fn set_output_ready(&mut self, _ready: bool) {}
    };
}

/// Cycles after which a stall pattern repeats.
pub const STALL_PERIOD: usize = 4096;

/// Per-cycle back-pressure: bit 0 holds the input back (a gap in the source), bit 1 lowers
/// `out_ready` (a slow sink). Repeats every [`STALL_PERIOD`] cycles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stalls {
    cycles: Vec<u8>,
}

impl Stalls {
    /// No stalls: the source always offers, the sink always takes.
    pub fn none() -> Self {
        Self {
            cycles: vec![0; STALL_PERIOD],
        }
    }

    /// Random stalls: an input gap on `input_percent` of the cycles, the sink refusing on
    /// `output_percent`, drawn from `seed`.
    pub fn random(seed: u64, input_percent: u32, output_percent: u32) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cycles = (0..STALL_PERIOD)
            .map(|_| {
                u8::from(rng.gen_range(0..100) < input_percent)
                    | u8::from(rng.gen_range(0..100) < output_percent) << 1
            })
            .collect();
        Self { cycles }
    }

    /// These stalls, the source also holding back on every cycle but each `interval`-th: for
    /// a block that takes an operation at most every `interval` cycles.
    pub fn spaced(mut self, interval: usize) -> Self {
        assert_eq!(
            STALL_PERIOD % interval,
            0,
            "the pattern repeats whole intervals"
        );
        for (cycle, stall) in self.cycles.iter_mut().enumerate() {
            if cycle % interval != 0 {
                *stall |= 1;
            }
        }
        self
    }

    /// Whether the source holds back at `cycle`.
    pub fn input_gap(&self, cycle: u64) -> bool {
        self.at(cycle) & 1 != 0
    }

    /// Whether the sink refuses at `cycle`.
    pub fn output_stall(&self, cycle: u64) -> bool {
        self.at(cycle) & 2 != 0
    }

    /// The pattern, one entry per cycle of a period (for the co-simulation bench).
    pub fn cycles(&self) -> &[u8] {
        &self.cycles
    }

    fn at(&self, cycle: u64) -> u8 {
        self.cycles[(cycle % STALL_PERIOD as u64) as usize]
    }
}

/// What came out of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Each output beat with the cycle its handshake completed.
    pub outputs: Vec<(u64, Beat)>,
    /// Cycles simulated.
    pub cycles: u64,
}

/// Plays `inputs` into `uut` under `stalls` until `expected` output beats have come out or
/// `max_cycles` have passed.
pub fn run<B: StreamBlock>(
    uut: &mut B,
    inputs: &[Beat],
    stalls: &Stalls,
    expected: usize,
    max_cycles: u64,
) -> Trace {
    if let Some(beat) = inputs.iter().find(|beat| beat.len() != B::INPUTS.len()) {
        panic!(
            "a beat of {} values for {} input ports: {beat:?}",
            beat.len(),
            B::INPUTS.len()
        );
    }
    let mut next_input = 0;
    let mut outputs = Vec::with_capacity(expected);
    let mut cycle = 0;
    while cycle < max_cycles && outputs.len() < expected {
        let offer = (!stalls.input_gap(cycle))
            .then(|| inputs.get(next_input))
            .flatten();
        let sink_ready = !B::BACK_PRESSURE || !stalls.output_stall(cycle);
        uut.set_clock(false);
        uut.drive(offer);
        uut.set_output_ready(sink_ready);
        settle(uut);
        if offer.is_some() && uut.input_ready() {
            next_input += 1;
        }
        if sink_ready {
            if let Some(beat) = uut.output() {
                outputs.push((cycle, beat));
            }
        }
        uut.set_clock(true);
        settle(uut);
        cycle += 1;
    }
    Trace {
        outputs,
        cycles: cycle,
    }
}

fn settle<B: Block>(uut: &mut B) {
    // A design that does not settle in this many passes has a combinational loop, which
    // rust-hdl's checks reject before a block gets here.
    assert!(
        simulate(uut, 1000),
        "the design did not settle: a combinational loop"
    );
}

/// How a trace differs from the expected beats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// An output beat has a port with the wrong value.
    Value {
        /// Index of the beat in the output stream.
        index: usize,
        /// The cycle it came out.
        cycle: u64,
        /// The port.
        port: &'static str,
        /// What the reference says.
        expected: BigUint,
        /// What the block gave.
        got: BigUint,
    },
    /// Fewer beats came out than expected before the cycle limit.
    Missing {
        /// Beats expected.
        expected: usize,
        /// Beats that came out.
        got: usize,
        /// Cycles simulated.
        cycles: u64,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value {
                index,
                cycle,
                port,
                expected,
                got,
            } => write!(
                f,
                "output beat {index} (cycle {cycle}): {port} is {got:#x}, the reference says \
                 {expected:#x}"
            ),
            Self::Missing {
                expected,
                got,
                cycles,
            } => {
                write!(f, "{got} of {expected} output beats after {cycles} cycles")
            }
        }
    }
}

/// Compares a trace's beats with the reference's, port by port.
pub fn compare(ports: &[Port], trace: &Trace, expected: &[Beat]) -> Result<(), Mismatch> {
    for (index, ((cycle, got), want)) in trace.outputs.iter().zip(expected).enumerate() {
        for ((port, got), want) in ports.iter().zip(got).zip(want) {
            if got != want {
                return Err(Mismatch::Value {
                    index,
                    cycle: *cycle,
                    port: port.name,
                    expected: want.clone(),
                    got: got.clone(),
                });
            }
        }
    }
    if trace.outputs.len() < expected.len() {
        return Err(Mismatch::Missing {
            expected: expected.len(),
            got: trace.outputs.len(),
            cycles: trace.cycles,
        });
    }
    Ok(())
}
