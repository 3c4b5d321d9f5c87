//! The ECC engine's register file: every context's 64 field registers, with four read ports
//! and two write ports per cycle.
//!
//! The engine reads two operands for the multiplier and two for the linear unit each cycle,
//! and both units write a result each cycle (about 1.6 results per cycle at the cost model's
//! figures). Block RAM has two ports, so the file is built as two banks, one written only by
//! the multiplier (write port 0) and one only by the linear unit (write port 1), each
//! replicated once per read port, and a live-value table of one bit per register saying which
//! bank wrote it last. A read returns the value from before a write to the same register in
//! the same cycle (read-first), and one cycle after its address.
//!
//! A context starts with every register zero, as the interpreter's does: `clear` forgets one
//! context's registers in one cycle (a `written` bit per register, which reads consult), so
//! no cycles are spent writing zeros and the block RAMs need no initial contents.
//!
//! Addresses are `context · 64 + register`: [`ADDRESS_BITS`] = 10 bits for 16 contexts. The two
//! write ports must not name the same register in the same cycle; the engine's scoreboard
//! guarantees it (a register with a result in flight is neither read nor written by another
//! instruction).

use crate::flow::harness::{Beat, Port, StreamBlock};
use num_bigint::BigUint;
use rust_hdl::prelude::*;

/// Bits of a register address: 16 contexts × 64 registers.
pub const ADDRESS_BITS: usize = 10;
/// Registers in the file.
pub const ENTRIES: usize = 1 << ADDRESS_BITS;
/// Read ports.
pub const READ_PORTS: usize = 4;

/// The register file.
#[derive(LogicBlock)]
pub struct RegFile {
    /// The engine clock.
    pub clock: Signal<In, Clock>,
    /// This cycle's reads, writes and clear are valid (read data leaves next cycle); without
    /// it the file does nothing.
    pub in_valid: Signal<In, Bit>,
    /// Read addresses, one per port.
    pub rd_addr: [Signal<In, Bits<ADDRESS_BITS>>; READ_PORTS],
    /// Write enables: port 0 is the multiplier's, port 1 the linear unit's.
    pub wr_en: [Signal<In, Bit>; 2],
    /// Write addresses.
    pub wr_addr: [Signal<In, Bits<ADDRESS_BITS>>; 2],
    /// Written values.
    pub wr_data: [Signal<In, Bits<255>>; 2],
    /// Forget every register of `clear_context` (this cycle's writes still land).
    pub clear: Signal<In, Bit>,
    /// The context `clear` forgets.
    pub clear_context: Signal<In, Bits<4>>,
    /// Read data is valid (the cycle after `in_valid`).
    pub out_valid: Signal<Out, Bit>,
    /// Read data, one per port.
    pub rd_data: [Signal<Out, Bits<255>>; READ_PORTS],
    banks: [RAM<Bits<255>, ADDRESS_BITS>; 8],
    live: DFF<Bits<ENTRIES>>,
    written: DFF<Bits<ENTRIES>>,
    from_linear: [DFF<Bit>; READ_PORTS],
    was_written: [DFF<Bit>; READ_PORTS],
    context_mask: Constant<Bits<ENTRIES>>,
    cleared: Signal<Local, Bits<ENTRIES>>,
    written_after_mul: Signal<Local, Bits<ENTRIES>>,
    live_after_mul: Signal<Local, Bits<ENTRIES>>,
    write: [Signal<Local, Bit>; 2],
    valid: DFF<Bit>,
}

impl Default for RegFile {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            rd_addr: Default::default(),
            wr_en: Default::default(),
            wr_addr: Default::default(),
            wr_data: Default::default(),
            clear: Default::default(),
            clear_context: Default::default(),
            out_valid: Default::default(),
            rd_data: Default::default(),
            banks: Default::default(),
            live: Default::default(),
            written: Default::default(),
            from_linear: Default::default(),
            was_written: Default::default(),
            context_mask: Constant::new(u64::MAX.into()),
            cleared: Default::default(),
            written_after_mul: Default::default(),
            live_after_mul: Default::default(),
            write: Default::default(),
            valid: Default::default(),
        }
    }
}

impl Logic for RegFile {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, live, written, valid);
        self.write[0].next = self.in_valid.val() & self.wr_en[0].val();
        self.write[1].next = self.in_valid.val() & self.wr_en[1].val();
        // Banks 0..4 hold the multiplier's writes, one copy per read port; banks 4..8 the
        // linear unit's.
        for k in 0..4 {
            self.banks[k].read_clock.next = self.clock.val();
            self.banks[k].write_clock.next = self.clock.val();
            self.banks[k].read_address.next = self.rd_addr[k].val();
            self.banks[k].write_address.next = self.wr_addr[0].val();
            self.banks[k].write_data.next = self.wr_data[0].val();
            self.banks[k].write_enable.next = self.write[0].val();
            self.banks[k + 4].read_clock.next = self.clock.val();
            self.banks[k + 4].write_clock.next = self.clock.val();
            self.banks[k + 4].read_address.next = self.rd_addr[k].val();
            self.banks[k + 4].write_address.next = self.wr_addr[1].val();
            self.banks[k + 4].write_data.next = self.wr_data[1].val();
            self.banks[k + 4].write_enable.next = self.write[1].val();
            self.from_linear[k].clock.next = self.clock.val();
            self.from_linear[k].d.next = self.live.q.val().get_bit(self.rd_addr[k].val().index());
            self.was_written[k].clock.next = self.clock.val();
            self.was_written[k].d.next =
                self.written.q.val().get_bit(self.rd_addr[k].val().index());
            self.rd_data[k].next = 0.into();
            if self.was_written[k].q.val() {
                self.rd_data[k].next = self.banks[k].read_data.val();
                if self.from_linear[k].q.val() {
                    self.rd_data[k].next = self.banks[k + 4].read_data.val();
                }
            }
        }
        self.cleared.next = self.written.q.val();
        if self.in_valid.val() & self.clear.val() {
            self.cleared.next = self.written.q.val()
                & !(self.context_mask.val() << (bit_cast::<16, 4>(self.clear_context.val()) << 6));
        }
        // Port 0's write, then port 1's: the ports never name one register in one cycle.
        self.written_after_mul.next = self.cleared.val();
        self.live_after_mul.next = self.live.q.val();
        if self.write[0].val() {
            self.written_after_mul.next = self
                .cleared
                .val()
                .replace_bit(self.wr_addr[0].val().index(), true);
            self.live_after_mul.next = self
                .live
                .q
                .val()
                .replace_bit(self.wr_addr[0].val().index(), false);
        }
        self.written.d.next = self.written_after_mul.val();
        self.live.d.next = self.live_after_mul.val();
        if self.write[1].val() {
            self.written.d.next = self
                .written_after_mul
                .val()
                .replace_bit(self.wr_addr[1].val().index(), true);
            self.live.d.next = self
                .live_after_mul
                .val()
                .replace_bit(self.wr_addr[1].val().index(), true);
        }
        self.valid.d.next = self.in_valid.val();
        self.out_valid.next = self.valid.q.val();
    }
}

impl StreamBlock for RegFile {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "rd_addr$0",
            bits: ADDRESS_BITS,
        },
        Port {
            name: "rd_addr$1",
            bits: ADDRESS_BITS,
        },
        Port {
            name: "rd_addr$2",
            bits: ADDRESS_BITS,
        },
        Port {
            name: "rd_addr$3",
            bits: ADDRESS_BITS,
        },
        Port {
            name: "wr_en$0",
            bits: 1,
        },
        Port {
            name: "wr_addr$0",
            bits: ADDRESS_BITS,
        },
        Port {
            name: "wr_data$0",
            bits: 255,
        },
        Port {
            name: "wr_en$1",
            bits: 1,
        },
        Port {
            name: "wr_addr$1",
            bits: ADDRESS_BITS,
        },
        Port {
            name: "wr_data$1",
            bits: 255,
        },
        Port {
            name: "clear",
            bits: 1,
        },
        Port {
            name: "clear_context",
            bits: 4,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "rd_data$0",
            bits: 255,
        },
        Port {
            name: "rd_data$1",
            bits: 255,
        },
        Port {
            name: "rd_data$2",
            bits: 255,
        },
        Port {
            name: "rd_data$3",
            bits: 255,
        },
    ];
    const BACK_PRESSURE: bool = false;

    crate::pipeline_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        let one = BigUint::from(1u8);
        for k in 0..READ_PORTS {
            self.rd_addr[k].next = beat.map_or(0u64.into(), |b| b[k].clone().into());
        }
        for port in 0..2 {
            let base = READ_PORTS + 3 * port;
            self.wr_en[port].next = beat.is_some_and(|b| b[base] == one);
            self.wr_addr[port].next = beat.map_or(0u64.into(), |b| b[base + 1].clone().into());
            self.wr_data[port].next = beat.map_or(0u64.into(), |b| b[base + 2].clone().into());
        }
        self.clear.next = beat.is_some_and(|b| b[READ_PORTS + 6] == one);
        self.clear_context.next = beat.map_or(0u64.into(), |b| b[READ_PORTS + 7].clone().into());
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid
            .val()
            .then(|| self.rd_data.iter().map(|d| d.val().into()).collect())
    }
}

/// One cycle of register-file traffic, and a Rust model of the file to predict its reads.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    values: std::collections::BTreeMap<usize, BigUint>,
}

impl Traffic {
    /// `cycles` of random traffic on `hot` random addresses (so that reads often follow
    /// writes from either port), with a clear now and then: the input beats and the reads
    /// they must give.
    pub fn random<R: rand::Rng>(rng: &mut R, cycles: usize, hot: usize) -> (Vec<Beat>, Vec<Beat>) {
        let mut traffic = Self::default();
        let hot: Vec<usize> = (0..hot.max(2)).map(|_| rng.gen_range(0..ENTRIES)).collect();
        let pick = |rng: &mut R| hot[rng.gen_range(0..hot.len())];
        let (mut inputs, mut expected) = (Vec::new(), Vec::new());
        for _ in 0..cycles {
            let reads = [0; READ_PORTS].map(|_| pick(rng));
            let first = pick(rng);
            // The ports never write one register in one cycle: the second skips the first's.
            let second = Some(pick(rng)).filter(|&address| address != first);
            let [v0, v1] = [0; 2].map(|_| BigUint::from_bytes_le(&rng.gen::<[u8; 32]>()) >> 1u8);
            let writes = [
                rng.gen_bool(0.7).then_some((first, v0)),
                second
                    .filter(|_| rng.gen_bool(0.7))
                    .map(|address| (address, v1)),
            ];
            let clear = rng.gen_bool(0.05).then(|| pick(rng) >> 6);
            let (beat, want) = traffic.cycle(reads, clear, writes);
            inputs.push(beat);
            expected.push(want);
        }
        (inputs, expected)
    }

    /// The input beat of a cycle that reads `reads`, forgets context `clear` if given, and
    /// performs `writes` (multiplier's, linear unit's; `None` for no write), and the output
    /// beat it must give next cycle (the values from before this cycle's clear and writes).
    pub fn cycle(
        &mut self,
        reads: [usize; READ_PORTS],
        clear: Option<usize>,
        writes: [Option<(usize, BigUint)>; 2],
    ) -> (Beat, Beat) {
        if let [Some((a, _)), Some((b, _))] = &writes {
            assert_ne!(
                a, b,
                "the two write ports never name one register in one cycle"
            );
        }
        let mut beat: Beat = reads.iter().map(|&r| BigUint::from(r)).collect();
        let expected: Beat = reads
            .iter()
            .map(|r| self.values.get(r).cloned().unwrap_or_default())
            .collect();
        if let Some(context) = clear {
            self.values.retain(|address, _| address >> 6 != context);
        }
        for write in &writes {
            match write {
                Some((address, value)) => {
                    beat.extend([BigUint::from(1u8), BigUint::from(*address), value.clone()]);
                    self.values.insert(*address, value.clone());
                }
                None => beat.extend([BigUint::default(), BigUint::default(), BigUint::default()]),
            }
        }
        beat.extend([
            BigUint::from(u8::from(clear.is_some())),
            BigUint::from(clear.unwrap_or(0)),
        ]);
        (beat, expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn reads_see_the_last_write_of_either_port() {
        let seed = 0x4e6;
        let (inputs, expected) = Traffic::random(&mut ChaCha8Rng::seed_from_u64(seed), 400, 12);
        let mut uut = RegFile::default();
        uut.connect_all();
        let trace = run(&mut uut, &inputs, &Stalls::none(), expected.len(), 10_000);
        compare(RegFile::OUTPUTS, &trace, &expected).unwrap_or_else(|m| panic!("seed {seed}: {m}"));
    }
}
