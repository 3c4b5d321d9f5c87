//! The ECC engine's register file: every context's 64 field registers, with four read ports
//! and two write ports per cycle.
//!
//! The engine reads two operands for the multiplier and two for the linear unit each cycle,
//! and both units write a result each cycle (about 1.6 results per cycle at the cost model's
//! figures). Block RAM has two ports, so the file is built as two banks, one written only by
//! the multiplier (write port 0) and one only by the linear unit (write port 1), each
//! replicated once per read port, and a live-value table of one bit per register saying which
//! bank wrote it last. A read returns its register one cycle after its address; a port
//! whose read is not enabled returns zero. A read must not name a register written in the same
//! cycle: the block RAMs then need no read-first bypass (see [`ShallowRam`]), and the
//! simulations stop on such a cycle. The engine reads a register only once no result for it
//! is in flight, so it never does.
//!
//! A context starts with every register zero, as the interpreter's does: `clear` forgets one
//! context's registers in one cycle (a `written` bit per register, which reads consult), so
//! no cycles are spent writing zeros and the block RAMs need no initial contents.
//!
//! Addresses are `context · 64 + register`: [`ADDRESS_BITS`] = 10 bits for up to 16 contexts;
//! a file built for fewer ([`RegFile::new`]) has banks only as deep as its contexts and one
//! row of the tables per context, so a small build pays for what it holds. The two
//! write ports must not name the same register in the same cycle; the engine's scoreboard
//! guarantees it (a register with a result in flight is neither read nor written by another
//! instruction).

use crate::flow::harness::{Beat, Port, StreamBlock};
use crate::or_tree::OrTree;
use crate::reg_row::{RegRow, READ_BITS, WRITE_BITS};
use crate::shallow_ram::ShallowRam;
use num_bigint::BigUint;
use rust_hdl::prelude::*;

/// Bits of a register address: 16 contexts × 64 registers.
pub const ADDRESS_BITS: usize = 10;
/// Registers of a context.
pub const CONTEXT_REGISTERS: usize = 64;
/// The most contexts a file holds.
pub const MAX_CONTEXTS: usize = 1 << (ADDRESS_BITS - 6);
/// Registers in the largest file.
pub const ENTRIES: usize = MAX_CONTEXTS * CONTEXT_REGISTERS;
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
    /// Read enables, one per port (a port not enabled reads zero).
    pub rd_en: [Signal<In, Bit>; READ_PORTS],
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
    banks: [ShallowRam<Bits<255>, ADDRESS_BITS>; 8],
    rows: Vec<RegRow>,
    row_bits: OrTree<Bits<8>>,
    reads: Signal<Local, Bits<READ_BITS>>,
    writes: Signal<Local, Bits<WRITE_BITS>>,
    from_linear: [DFF<Bit>; READ_PORTS],
    was_written: [DFF<Bit>; READ_PORTS],
    write: [Signal<Local, Bit>; 2],
    valid: DFF<Bit>,
}

impl RegFile {
    /// A file for `contexts` contexts (a power of two, 2 to 16): its banks hold
    /// `contexts · 64` registers and an address's upper context bits past them are not
    /// looked at (the engine names only the contexts it has).
    pub fn new(contexts: usize) -> Self {
        assert!(
            contexts.is_power_of_two() && (2..=MAX_CONTEXTS).contains(&contexts),
            "a register file holds 2, 4, 8 or 16 contexts"
        );
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            rd_addr: Default::default(),
            rd_en: Default::default(),
            wr_en: Default::default(),
            wr_addr: Default::default(),
            wr_data: Default::default(),
            clear: Default::default(),
            clear_context: Default::default(),
            out_valid: Default::default(),
            rd_data: Default::default(),
            banks: std::array::from_fn(|_| ShallowRam::new(contexts * CONTEXT_REGISTERS)),
            rows: (0..contexts).map(RegRow::new).collect(),
            row_bits: OrTree::new(contexts),
            reads: Default::default(),
            writes: Default::default(),
            from_linear: Default::default(),
            was_written: Default::default(),
            write: Default::default(),
            valid: Default::default(),
        }
    }
}

impl Default for RegFile {
    fn default() -> Self {
        Self::new(MAX_CONTEXTS)
    }
}

impl Logic for RegFile {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, valid);
        self.write[0].next = self.in_valid.val() & self.wr_en[0].val();
        self.write[1].next = self.in_valid.val() & self.wr_en[1].val();
        // Banks 0..4 hold the multiplier's writes, one copy per read port; banks 4..8 the
        // linear unit's.
        for k in 0..4 {
            self.banks[k].clock.next = self.clock.val();
            self.banks[k].read_address.next = self.rd_addr[k].val();
            self.banks[k].read_enable.next = self.in_valid.val() & self.rd_en[k].val();
            self.banks[k].write_address.next = self.wr_addr[0].val();
            self.banks[k].write_data.next = self.wr_data[0].val();
            self.banks[k].write_enable.next = self.write[0].val();
            self.banks[k + 4].clock.next = self.clock.val();
            self.banks[k + 4].read_address.next = self.rd_addr[k].val();
            self.banks[k + 4].read_enable.next = self.in_valid.val() & self.rd_en[k].val();
            self.banks[k + 4].write_address.next = self.wr_addr[1].val();
            self.banks[k + 4].write_data.next = self.wr_data[1].val();
            self.banks[k + 4].write_enable.next = self.write[1].val();
            // The tables' bits for the register, from the row of its context.
            self.from_linear[k].clock.next = self.clock.val();
            self.from_linear[k].d.next = self.row_bits.any.val().get_bit(k);
            self.was_written[k].clock.next = self.clock.val();
            // A port not reading this cycle reads as an unwritten register: zero.
            self.was_written[k].d.next =
                self.row_bits.any.val().get_bit(k + 4) & self.in_valid.val() & self.rd_en[k].val();
            self.rd_data[k].next = 0.into();
            if self.was_written[k].q.val() {
                self.rd_data[k].next = self.banks[k].read_data.val();
                if self.from_linear[k].q.val() {
                    self.rd_data[k].next = self.banks[k + 4].read_data.val();
                }
            }
        }
        self.reads.next = bit_cast::<READ_BITS, ADDRESS_BITS>(self.rd_addr[0].val())
            | (bit_cast::<READ_BITS, ADDRESS_BITS>(self.rd_addr[1].val()) << 10)
            | (bit_cast::<READ_BITS, ADDRESS_BITS>(self.rd_addr[2].val()) << 20)
            | (bit_cast::<READ_BITS, ADDRESS_BITS>(self.rd_addr[3].val()) << 30);
        self.writes.next = bit_cast::<WRITE_BITS, ADDRESS_BITS>(self.wr_addr[0].val())
            | (bit_cast::<WRITE_BITS, ADDRESS_BITS>(self.wr_addr[1].val()) << 10);
        self.writes.next = self.writes.val().replace_bit(20, self.write[0].val());
        self.writes.next = self.writes.val().replace_bit(21, self.write[1].val());
        for c in 0..self.rows.len() {
            self.rows[c].clock.next = self.clock.val();
            self.rows[c].reads.next = self.reads.val();
            self.rows[c].writes.next = self.writes.val();
            self.rows[c].clear.next = self.in_valid.val() & self.clear.val();
            self.rows[c].clear_context.next = self.clear_context.val();
            self.row_bits.term[c].next = self.rows[c].bits.val();
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
        Port {
            name: "rd_en$0",
            bits: 1,
        },
        Port {
            name: "rd_en$1",
            bits: 1,
        },
        Port {
            name: "rd_en$2",
            bits: 1,
        },
        Port {
            name: "rd_en$3",
            bits: 1,
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
        for k in 0..READ_PORTS {
            self.rd_en[k].next = beat.is_some_and(|b| b[READ_PORTS + 8 + k] == one);
        }
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
    /// `cycles` of random traffic on `hot` random addresses of a file of `contexts` contexts
    /// (so that reads often follow writes from either port), with a clear now and then: the
    /// input beats and the reads they must give. A read that would name a register written in
    /// the same cycle is left disabled, as the engine's are; others are disabled now and then.
    pub fn random<R: rand::Rng>(
        rng: &mut R,
        cycles: usize,
        hot: usize,
        contexts: usize,
    ) -> (Vec<Beat>, Vec<Beat>) {
        let mut traffic = Self::default();
        let registers = contexts * CONTEXT_REGISTERS;
        let hot: Vec<usize> = (0..hot.max(2))
            .map(|_| rng.gen_range(0..registers))
            .collect();
        let pick = |rng: &mut R| hot[rng.gen_range(0..hot.len())];
        let (mut inputs, mut expected) = (Vec::new(), Vec::new());
        for _ in 0..cycles {
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
            let reads = [0; READ_PORTS].map(|_| {
                Some(pick(rng)).filter(|&address| {
                    rng.gen_bool(0.9) && writes.iter().flatten().all(|(w, _)| *w != address)
                })
            });
            let clear = rng.gen_bool(0.05).then(|| pick(rng) >> 6);
            let (beat, want) = traffic.cycle(reads, clear, writes);
            inputs.push(beat);
            expected.push(want);
        }
        (inputs, expected)
    }

    /// The input beat of a cycle that reads `reads` (`None`: the port does not read), forgets
    /// context `clear` if given, and performs `writes` (multiplier's, linear unit's; `None`
    /// for no write), and the output beat it must give next cycle (zero for a port that does
    /// not read).
    pub fn cycle(
        &mut self,
        reads: [Option<usize>; READ_PORTS],
        clear: Option<usize>,
        writes: [Option<(usize, BigUint)>; 2],
    ) -> (Beat, Beat) {
        if let [Some((a, _)), Some((b, _))] = &writes {
            assert_ne!(
                a, b,
                "the two write ports never name one register in one cycle"
            );
        }
        for read in reads.iter().flatten() {
            assert!(
                writes.iter().flatten().all(|(written, _)| written != read),
                "a read never names a register being written"
            );
        }
        let mut beat: Beat = reads
            .iter()
            .map(|&r| BigUint::from(r.unwrap_or(0)))
            .collect();
        let expected: Beat = reads
            .iter()
            .map(|r| {
                r.and_then(|r| self.values.get(&r).cloned())
                    .unwrap_or_default()
            })
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
        beat.extend(reads.iter().map(|r| BigUint::from(u8::from(r.is_some()))));
        (beat, expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn reads_follow_writes(contexts: usize, seed: u64) {
        let (inputs, expected) =
            Traffic::random(&mut ChaCha8Rng::seed_from_u64(seed), 400, 12, contexts);
        let mut uut = RegFile::new(contexts);
        uut.connect_all();
        let trace = run(&mut uut, &inputs, &Stalls::none(), expected.len(), 10_000);
        compare(RegFile::OUTPUTS, &trace, &expected)
            .unwrap_or_else(|m| panic!("{contexts} contexts, seed {seed}: {m}"));
    }

    #[test]
    fn reads_see_the_last_write_of_either_port() {
        reads_follow_writes(MAX_CONTEXTS, 0x4e6);
    }

    /// The ECP5 engine's file: banks of 256 words and four rows of each table.
    #[test]
    fn a_file_of_four_contexts_reads_the_last_write_of_either_port() {
        reads_follow_writes(4, 0x4e7);
    }
}
