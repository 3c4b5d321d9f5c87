//! The ECC engine, first version: the firmware's instruction set in hardware, one context,
//! one instruction at a time.
//!
//! This version exists to prove the instruction set end to end: decoding, the mapping of
//! every operation onto the multiplier ([`crate::field_mul`]) and the linear unit
//! ([`crate::field_linear`]), table reads, flags, counters, digit streams and sequencing,
//! register for register against `verity_firmware::interp`. It runs one instruction to
//! completion before fetching the next (tens of thousands of cycles per verification); the
//! interleaved engine of `hdl/README.md`'s plan replaces its control with the issue logic and
//! keeps its datapath.
//!
//! # Command stream
//!
//! Everything reaches the engine through one stream of commands (`in_cmd`, `in_addr`,
//! `in_data`), as the card's register block will drive it:
//!
//! | `in_cmd` | effect |
//! |---|---|
//! | 0 | microcode word `addr` ← `data[63:0]` |
//! | 1 | constant `addr` ← `data[254:0]` |
//! | 2 | digit `addr` of k ← `data[7:0]` (two's complement) |
//! | 3 | digit `addr` of S ← `data[7:0]` |
//! | 4 | input A ← `data` (the 32-byte encoding as a little-endian number) |
//! | 5 | input R ← `data` |
//! | 6 | run from word `addr` with zeroed registers, flags and counters |
//! | 7 | read register `addr` |
//!
//! The output stream carries the verdict (`out_kind` 0, the `Done` code in `out_value`) when a
//! run ends, and register values (`out_kind` 1) when asked; `out_flags` is the context's flags.

use crate::field_linear::{FieldLinear, LinearOp};
use crate::field_mul::FieldMul;
use crate::flow::harness::{Beat, Port, StreamBlock};
use crate::reg_file::RegFile;
use num_bigint::BigUint;
use rust_hdl::prelude::*;

/// Where the engine is in an instruction.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum EngineState {
    /// Taking commands.
    Idle,
    /// A register read for the host: its value arrives.
    ReadReg,
    /// Reading the word at `pc`.
    Fetch,
    /// The word arrives; its operands are read.
    Decode,
    /// The operands arrive; a table entry is addressed.
    Operands,
    /// The table entry arrives.
    Table,
    /// The operation goes to its unit, or acts on flags and counters directly.
    Exec,
    /// Waiting for the unit's result.
    Wait,
    /// The digits at the (possibly new) position `I` are read for sequencing.
    SeqRead,
    /// The next `pc`, or the end.
    SeqDecide,
    /// Offering an output beat.
    Output,
}

/// The engine.
#[derive(LogicBlock, Default)]
pub struct EccEngine {
    /// The engine clock.
    pub clock: Signal<In, Clock>,
    /// A command is offered.
    pub in_valid: Signal<In, Bit>,
    /// The engine takes the command this cycle.
    pub in_ready: Signal<Out, Bit>,
    /// The command.
    pub in_cmd: Signal<In, Bits<3>>,
    /// Its address.
    pub in_addr: Signal<In, Bits<12>>,
    /// Its data.
    pub in_data: Signal<In, Bits<256>>,
    /// An output beat is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it this cycle.
    pub out_ready: Signal<In, Bit>,
    /// 0: a verdict; 1: a register value.
    pub out_kind: Signal<Out, Bit>,
    /// The verdict code or the register's value.
    pub out_value: Signal<Out, Bits<255>>,
    /// The context's flags.
    pub out_flags: Signal<Out, Bits<16>>,
    code: RAM<Bits<64>, 12>,
    constants: RAM<Bits<255>, 8>,
    k_digits: RAM<Bits<8>, 8>,
    s_digits: RAM<Bits<8>, 8>,
    regs: RegFile,
    mul: FieldMul,
    linear: FieldLinear,
    state: DFF<EngineState>,
    pc: DFF<Bits<12>>,
    word: DFF<Bits<64>>,
    flags: DFF<Bits<16>>,
    i: DFF<Bits<10>>,
    j: DFF<Bits<10>>,
    input_a: DFF<Bits<256>>,
    input_r: DFF<Bits<256>>,
    operand_a: DFF<Bits<255>>,
    operand_b: DFF<Bits<255>>,
    k_digit: DFF<Bits<8>>,
    s_digit: DFF<Bits<8>>,
    out_pending: DFF<Bit>,
    out_kind_reg: DFF<Bit>,
    out_value_reg: DFF<Bits<255>>,
    fields: Signal<Local, Bits<64>>,
    opcode: Signal<Local, Bits<6>>,
    f1: Signal<Local, Bits<6>>,
    f2: Signal<Local, Bits<6>>,
    f3: Signal<Local, Bits<6>>,
    imm: Signal<Local, Bits<8>>,
    seq: Signal<Local, Bits<4>>,
    seq_operand: Signal<Local, Bits<4>>,
    target: Signal<Local, Bits<12>>,
    digit: Signal<Local, Bits<8>>,
    negative: Signal<Local, Bit>,
    magnitude: Signal<Local, Bits<8>>,
    index: Signal<Local, Bits<8>>,
    coord: Signal<Local, Bits<2>>,
    swapped: Signal<Local, Bits<8>>,
    next_i: Signal<Local, Bits<10>>,
    next_j: Signal<Local, Bits<10>>,
    taken: Signal<Local, Bit>,
    input_word: Signal<Local, Bits<256>>,
}

impl Logic for EccEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            pc,
            word,
            flags,
            i,
            j,
            input_a,
            input_r,
            operand_a,
            operand_b,
            k_digit,
            s_digit,
            out_pending,
            out_kind_reg,
            out_value_reg
        );
        clock!(self, clock, regs, mul, linear);
        self.code.read_clock.next = self.clock.val();
        self.code.write_clock.next = self.clock.val();
        self.constants.read_clock.next = self.clock.val();
        self.constants.write_clock.next = self.clock.val();
        self.k_digits.read_clock.next = self.clock.val();
        self.k_digits.write_clock.next = self.clock.val();
        self.s_digits.read_clock.next = self.clock.val();
        self.s_digits.write_clock.next = self.clock.val();

        // Host writes into the memories (only while idle: `in_ready`).
        self.in_ready.next = self.state.q.val() == EngineState::Idle;
        self.code.write_address.next = self.in_addr.val();
        self.code.write_data.next = self.in_data.val().get_bits::<64>(0);
        self.code.write_enable.next =
            self.in_valid.val() & self.in_ready.val() & (self.in_cmd.val() == 0);
        self.constants.write_address.next = self.in_addr.val().get_bits::<8>(0);
        self.constants.write_data.next = self.in_data.val().get_bits::<255>(0);
        self.constants.write_enable.next =
            self.in_valid.val() & self.in_ready.val() & (self.in_cmd.val() == 1);
        self.k_digits.write_address.next = self.in_addr.val().get_bits::<8>(0);
        self.k_digits.write_data.next = self.in_data.val().get_bits::<8>(0);
        self.k_digits.write_enable.next =
            self.in_valid.val() & self.in_ready.val() & (self.in_cmd.val() == 2);
        self.s_digits.write_address.next = self.in_addr.val().get_bits::<8>(0);
        self.s_digits.write_data.next = self.in_data.val().get_bits::<8>(0);
        self.s_digits.write_enable.next =
            self.in_valid.val() & self.in_ready.val() & (self.in_cmd.val() == 3);

        // The instruction's fields: straight from the RAM in Decode, latched afterwards. The
        // opcodes and sequencing kinds are `verity_firmware::isa`'s encoding: 0 Nop, 1 Mul,
        // 2 Sqr, 3 MulC, 4 Add, 5 Sub, 6 LdC, 7 Load, 8 CNeg, 9 CSel, 10 Eq, 11 Odd, 12 FAnd,
        // 13 FOr, 14 MulT, 15 MulTC, 16 TNeg, 17 SetI, 18 SetJ; sequencing 0 Next, 1 Jump,
        // 2 IfFlag, 3 IfNotFlag, 4 IfDigitZero, 5 LoopI, 6 LoopJ, 7 Done, 8 IfBothDigitsZero.
        // `tests/tests/engine.rs` holds them to the interpreter on the Ed25519 program.
        self.fields.next = self.word.q.val();
        if self.state.q.val() == EngineState::Decode {
            self.fields.next = self.code.read_data.val();
        }
        self.opcode.next = self.fields.val().get_bits::<6>(0);
        self.f1.next = self.fields.val().get_bits::<6>(6);
        self.f2.next = self.fields.val().get_bits::<6>(12);
        self.f3.next = self.fields.val().get_bits::<6>(18);
        self.imm.next = self.fields.val().get_bits::<8>(24);
        self.seq.next = self.fields.val().get_bits::<4>(32);
        self.seq_operand.next = self.fields.val().get_bits::<4>(36);
        self.target.next = self.fields.val().get_bits::<12>(40);

        // The current digit of the stream an operation names, its table index and the
        // coordinate after the swap a negative digit makes.
        self.digit.next = self.k_digit.q.val();
        self.coord.next = self.imm.val().get_bits::<2>(0);
        if self.opcode.val() == 14 {
            if self.imm.val().get_bit(2) {
                self.digit.next = self.s_digit.q.val();
            }
        } else if self.opcode.val() == 15 {
            self.coord.next = self.f3.val().get_bits::<2>(0);
            if self.f3.val().get_bit(2) {
                self.digit.next = self.s_digit.q.val();
            }
        } else if self.f3.val().get_bit(0) {
            self.digit.next = self.s_digit.q.val();
        }
        self.negative.next = self.digit.val().get_bit(7);
        self.magnitude.next = self.digit.val();
        if self.negative.val() {
            self.magnitude.next = 0u64.to_bits::<8>() - self.digit.val();
        }
        self.index.next = 0.into();
        if self.magnitude.val().any() {
            self.index.next = (self.magnitude.val() - 1) >> 1;
        }
        self.swapped.next = bit_cast::<8, 2>(self.coord.val());
        if self.negative.val() & (self.coord.val() == 0) {
            self.swapped.next = 1.into();
        }
        if self.negative.val() & (self.coord.val() == 1) {
            self.swapped.next = 0.into();
        }
        self.input_word.next = self.input_a.q.val();
        if self.imm.val().get_bit(0) {
            self.input_word.next = self.input_r.q.val();
        }

        // Defaults: no reads of interest, no writes, no unit busy.
        self.regs.in_valid.next = true;
        for k in 0..4 {
            self.regs.rd_addr[k].next = 0.into();
        }
        for k in 0..2 {
            self.regs.wr_en[k].next = false;
            self.regs.wr_addr[k].next = bit_cast::<10, 6>(self.f1.val());
        }
        self.regs.wr_data[0].next = self.mul.out_product.val();
        self.regs.wr_data[1].next = self.linear.out_value.val();
        self.regs.clear.next = false;
        self.regs.clear_context.next = 0.into();
        self.code.read_address.next = self.pc.q.val();
        self.constants.read_address.next = self.imm.val();
        self.k_digits.read_address.next = self.i.q.val().get_bits::<8>(0);
        self.s_digits.read_address.next = self.i.q.val().get_bits::<8>(0);
        self.mul.in_valid.next = false;
        self.mul.in_a.next = self.operand_a.q.val();
        self.mul.in_b.next = self.operand_b.q.val();
        self.mul.in_tag.next = 0.into();
        self.linear.in_valid.next = false;
        self.linear.in_op.next = LinearOp::PassB;
        self.linear.in_a.next = 0.into();
        self.linear.in_b.next = self.operand_a.q.val();
        self.linear.in_tag.next = 0.into();
        self.next_i.next = self.i.q.val() - 1;
        self.next_j.next = self.j.q.val() - 1;
        self.taken.next = false;

        self.out_valid.next = self.out_pending.q.val();
        self.out_kind.next = self.out_kind_reg.q.val();
        self.out_value.next = self.out_value_reg.q.val();
        self.out_flags.next = self.flags.q.val();

        match self.state.q.val() {
            EngineState::Idle => {
                if self.in_valid.val() {
                    if self.in_cmd.val() == 4 {
                        self.input_a.d.next = self.in_data.val();
                    }
                    if self.in_cmd.val() == 5 {
                        self.input_r.d.next = self.in_data.val();
                    }
                    if self.in_cmd.val() == 6 {
                        self.pc.d.next = self.in_addr.val();
                        self.flags.d.next = 0.into();
                        self.i.d.next = 0.into();
                        self.j.d.next = 0.into();
                        self.regs.clear.next = true;
                        self.state.d.next = EngineState::Fetch;
                    }
                    if self.in_cmd.val() == 7 {
                        self.regs.rd_addr[0].next = bit_cast::<10, 12>(self.in_addr.val() & 63);
                        self.state.d.next = EngineState::ReadReg;
                    }
                }
            }
            EngineState::ReadReg => {
                self.out_pending.d.next = true;
                self.out_kind_reg.d.next = true;
                self.out_value_reg.d.next = self.regs.rd_data[0].val();
                self.state.d.next = EngineState::Output;
            }
            EngineState::Fetch => {
                self.state.d.next = EngineState::Decode;
            }
            EngineState::Decode => {
                self.word.d.next = self.code.read_data.val();
                self.regs.rd_addr[0].next = bit_cast::<10, 6>(self.f2.val());
                self.regs.rd_addr[1].next = bit_cast::<10, 6>(self.f3.val());
                self.state.d.next = EngineState::Operands;
            }
            EngineState::Operands => {
                self.operand_a.d.next = self.regs.rd_data[0].val();
                self.operand_b.d.next = self.regs.rd_data[1].val();
                self.k_digit.d.next = self.k_digits.read_data.val();
                self.s_digit.d.next = self.s_digits.read_data.val();
                if (self.opcode.val() == 3) | (self.opcode.val() == 6) {
                    self.operand_b.d.next = self.constants.read_data.val();
                }
                if self.opcode.val() == 2 {
                    self.operand_b.d.next = self.regs.rd_data[0].val();
                }
                self.state.d.next = EngineState::Exec;
                if (self.opcode.val() == 14) | (self.opcode.val() == 15) {
                    self.state.d.next = EngineState::Table;
                }
            }
            EngineState::Table => {
                // The digits are in their registers now: address the entry.
                self.regs.rd_addr[1].next = bit_cast::<10, 6>(
                    self.f3.val()
                        + (self.index.val().get_bits::<6>(0) << 2)
                        + self.swapped.val().get_bits::<6>(0),
                );
                self.constants.read_address.next = self.imm.val()
                    + (self.index.val() << 1)
                    + self.index.val()
                    + self.swapped.val();
                self.state.d.next = EngineState::Exec;
            }
            EngineState::Exec => {
                self.state.d.next = EngineState::Wait;
                if self.opcode.val() == 14 {
                    self.mul.in_b.next = self.regs.rd_data[1].val();
                    self.operand_b.d.next = self.regs.rd_data[1].val();
                }
                if self.opcode.val() == 15 {
                    self.mul.in_b.next = self.constants.read_data.val();
                    self.operand_b.d.next = self.constants.read_data.val();
                }
                if (self.opcode.val() == 1)
                    | (self.opcode.val() == 2)
                    | (self.opcode.val() == 3)
                    | (self.opcode.val() == 14)
                    | (self.opcode.val() == 15)
                {
                    self.mul.in_valid.next = true;
                }
                if self.opcode.val() == 4 {
                    self.linear.in_valid.next = true;
                    self.linear.in_op.next = LinearOp::Add;
                    self.linear.in_a.next = self.operand_a.q.val();
                    self.linear.in_b.next = self.operand_b.q.val();
                }
                if self.opcode.val() == 5 {
                    self.linear.in_valid.next = true;
                    self.linear.in_op.next = LinearOp::Sub;
                    self.linear.in_a.next = self.operand_a.q.val();
                    self.linear.in_b.next = self.operand_b.q.val();
                }
                if self.opcode.val() == 6 {
                    self.linear.in_valid.next = true;
                    self.linear.in_b.next = self.operand_b.q.val();
                }
                if self.opcode.val() == 7 {
                    self.linear.in_valid.next = true;
                    self.linear.in_op.next = LinearOp::Reduce;
                    self.linear.in_a.next = self.input_word.val().get_bits::<255>(0);
                    self.linear.in_b.next = 0.into();
                    self.flags.d.next = self
                        .flags
                        .q
                        .val()
                        .replace_bit(self.f2.val().index(), self.input_word.val().get_bit(255));
                }
                if (self.opcode.val() == 8) | (self.opcode.val() == 16) {
                    self.linear.in_valid.next = true;
                    if ((self.opcode.val() == 8)
                        & self.flags.q.val().get_bit(self.f3.val().index()))
                        | ((self.opcode.val() == 16) & self.negative.val())
                    {
                        self.linear.in_op.next = LinearOp::Sub;
                        self.linear.in_b.next = self.operand_a.q.val();
                    }
                }
                if self.opcode.val() == 9 {
                    self.linear.in_valid.next = true;
                    self.linear.in_b.next = self.operand_b.q.val();
                    if self.flags.q.val().get_bit(self.imm.val().index()) {
                        self.linear.in_b.next = self.operand_a.q.val();
                    }
                }
                if (self.opcode.val() == 10) | (self.opcode.val() == 11) {
                    self.linear.in_valid.next = true;
                    self.linear.in_a.next = self.operand_a.q.val();
                    self.linear.in_b.next = self.operand_b.q.val();
                }
                if (self.opcode.val() == 0)
                    | (self.opcode.val() == 12)
                    | (self.opcode.val() == 13)
                    | (self.opcode.val() == 17)
                    | (self.opcode.val() == 18)
                {
                    self.state.d.next = EngineState::SeqRead;
                }
                if self.opcode.val() == 12 {
                    self.flags.d.next = self.flags.q.val().replace_bit(
                        self.f1.val().index(),
                        self.flags.q.val().get_bit(self.f2.val().index())
                            & self.flags.q.val().get_bit(self.f3.val().index()),
                    );
                }
                if self.opcode.val() == 13 {
                    self.flags.d.next = self.flags.q.val().replace_bit(
                        self.f1.val().index(),
                        self.flags.q.val().get_bit(self.f2.val().index())
                            | self.flags.q.val().get_bit(self.f3.val().index()),
                    );
                }
                if self.opcode.val() == 17 {
                    self.i.d.next = bit_cast::<10, 8>(self.imm.val());
                }
                if self.opcode.val() == 18 {
                    self.j.d.next = bit_cast::<10, 8>(self.imm.val());
                }
            }
            EngineState::Wait => {
                if self.mul.out_valid.val() {
                    self.regs.wr_en[0].next = true;
                    self.state.d.next = EngineState::SeqRead;
                }
                if self.linear.out_valid.val() {
                    if self.opcode.val() == 10 {
                        self.flags.d.next = self
                            .flags
                            .q
                            .val()
                            .replace_bit(self.f1.val().index(), self.linear.out_equal.val());
                    } else if self.opcode.val() == 11 {
                        self.flags.d.next = self
                            .flags
                            .q
                            .val()
                            .replace_bit(self.f1.val().index(), self.linear.out_odd.val());
                    } else {
                        self.regs.wr_en[1].next = true;
                    }
                    self.state.d.next = EngineState::SeqRead;
                }
            }
            EngineState::SeqRead => {
                self.state.d.next = EngineState::SeqDecide;
            }
            EngineState::SeqDecide => {
                self.state.d.next = EngineState::Fetch;
                self.pc.d.next = self.pc.q.val() + 1;
                if self.seq.val() == 1 {
                    self.taken.next = true;
                }
                if self.seq.val() == 2 {
                    self.taken.next = self.flags.q.val().get_bit(self.seq_operand.val().index());
                }
                if self.seq.val() == 3 {
                    self.taken.next = !self.flags.q.val().get_bit(self.seq_operand.val().index());
                }
                if self.seq.val() == 4 {
                    self.taken.next = !self.k_digits.read_data.val().any();
                    if self.seq_operand.val().get_bit(0) {
                        self.taken.next = !self.s_digits.read_data.val().any();
                    }
                }
                if self.seq.val() == 5 {
                    self.i.d.next = self.next_i.val();
                    self.taken.next = !self.next_i.val().get_bit(9);
                }
                if self.seq.val() == 6 {
                    self.j.d.next = self.next_j.val();
                    self.taken.next = !self.next_j.val().get_bit(9);
                }
                if self.seq.val() == 8 {
                    self.taken.next =
                        !self.k_digits.read_data.val().any() & !self.s_digits.read_data.val().any();
                }
                if self.taken.val() {
                    self.pc.d.next = self.target.val();
                }
                if self.seq.val() == 7 {
                    self.out_pending.d.next = true;
                    self.out_kind_reg.d.next = false;
                    self.out_value_reg.d.next = bit_cast::<255, 4>(self.seq_operand.val());
                    self.state.d.next = EngineState::Output;
                }
            }
            EngineState::Output => {
                if self.out_ready.val() {
                    self.out_pending.d.next = false;
                    self.state.d.next = EngineState::Idle;
                }
            }
        }
    }
}

impl StreamBlock for EccEngine {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_cmd",
            bits: 3,
        },
        Port {
            name: "in_addr",
            bits: 12,
        },
        Port {
            name: "in_data",
            bits: 256,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "out_kind",
            bits: 1,
        },
        Port {
            name: "out_value",
            bits: 255,
        },
        Port {
            name: "out_flags",
            bits: 16,
        },
    ];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_cmd.next = beat[0].clone().into();
            self.in_addr.next = beat[1].clone().into();
            self.in_data.next = beat[2].clone().into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid.val().then(|| {
            vec![
                BigUint::from(u8::from(self.out_kind.val())),
                self.out_value.val().into(),
                self.out_flags.val().into(),
            ]
        })
    }
}

/// Commands of the engine's input stream.
pub mod command {
    use crate::flow::harness::Beat;
    use num_bigint::BigUint;
    use verity_firmware::image::Image;
    use verity_firmware::interp::Inputs;
    use verity_firmware::isa::REGISTERS;

    fn beat(cmd: u8, addr: usize, data: BigUint) -> Beat {
        vec![BigUint::from(cmd), BigUint::from(addr), data]
    }

    /// Loads the image's microcode and constants.
    pub fn load(image: &Image) -> Vec<Beat> {
        let program = &image.program;
        let code = program
            .code
            .iter()
            .enumerate()
            .map(|(at, word)| beat(0, at, word.encode().into()));
        let constants = program
            .constants
            .iter()
            .enumerate()
            .map(|(at, c)| beat(1, at, crate::field_value::from_fe(*c)));
        code.chain(constants).collect()
    }

    /// Loads one signature's inputs and runs the program from the image's entry.
    pub fn run(image: &Image, inputs: &Inputs) -> Vec<Beat> {
        let digit = |d: i8| BigUint::from(d as u8);
        let k = inputs
            .k
            .iter()
            .enumerate()
            .map(|(at, &d)| beat(2, at, digit(d)));
        let s = inputs
            .s
            .iter()
            .enumerate()
            .map(|(at, &d)| beat(3, at, digit(d)));
        k.chain(s)
            .chain([
                beat(4, 0, BigUint::from_bytes_le(&inputs.a)),
                beat(5, 0, BigUint::from_bytes_le(&inputs.r)),
                beat(6, image.program.entry.index(), BigUint::default()),
            ])
            .collect()
    }

    /// Reads every register back.
    pub fn read_registers() -> Vec<Beat> {
        (0..REGISTERS)
            .map(|r| beat(7, r, BigUint::default()))
            .collect()
    }
}

/// What the interpreter says a run followed by [`command::read_registers`] must output: the
/// verdict, then each register, all with the final flags.
pub fn expected_run(
    image: &verity_firmware::image::Image,
    inputs: &verity_firmware::interp::Inputs,
) -> Result<Vec<Beat>, verity_firmware::interp::ExecError> {
    use verity_firmware::interp::{Context, Step, STEP_LIMIT};
    let mut context = Context::new(image, inputs.clone());
    let mut steps = 0;
    let code = loop {
        if let Step::Done(code) = context.step(image)? {
            break code;
        }
        steps += 1;
        if steps > STEP_LIMIT {
            return Err(verity_firmware::interp::ExecError::StepLimit(steps));
        }
    };
    let flags = BigUint::from(context.flags);
    let mut beats = vec![vec![BigUint::default(), BigUint::from(code), flags.clone()]];
    beats.extend(context.regs.iter().map(|r| {
        vec![
            BigUint::from(1u8),
            crate::field_value::from_fe(*r),
            flags.clone(),
        ]
    }));
    Ok(beats)
}
