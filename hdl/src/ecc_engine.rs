//! The ECC engine: the firmware's instruction set on the field ALU, up to 16 signature
//! contexts interleaved so the multiplier takes an operation almost every cycle.
//!
//! # Structure
//!
//! - **Contexts** ([`ContextSlot`], 16 by default, fewer when built so): each holds its
//!   program counter, flags, counters, the decoded instruction it is about to issue and a
//!   scoreboard of its results in flight.
//! - **Fetch**: two ports, each a copy of the code RAM and of the digit RAMs, serving the lower
//!   and the upper half of the contexts, each round-robin: about 1.8 instructions retire per
//!   cycle, more than one port delivers.
//! - **Issue**: each cycle at most one multiplier instruction and one linear-unit instruction,
//!   each from a context that says it is ready, chosen round-robin ([`RoundRobin`]): the rule
//!   of the firmware's issue model (`Engine::schedule`). The grant is registered: the context
//!   learns it issued the next cycle (and does not ask meanwhile). Sequencing-only instructions (`Nop`,
//!   `FAnd`, `FOr`, `SetI`, `SetJ`) take a linear slot, as in the model, and pass through the
//!   unit as a no-op, so every instruction retires through a unit.
//! - **Lanes**: the cycle after the grant reads the operands (register file, constant RAM,
//!   inputs), the next registers the unit's operands, the unit runs ([`FieldMul`], 12 cycles; [`FieldLinear`],
//!   2), and its result writes the register file and clears the context's pending bit. The
//!   result's tag names the context, the register and the flag it writes.
//! - **Register file** ([`RegFile`]): 64 registers per context, two reads per lane (the ECP5
//!   build's multiplier lane reads its two through one port, a cycle apart:
//!   [`MulSpacing::serial`]).
//!
//! [`EccEngine::new`] with [`ECP5_RATE`] builds the ECP5 variant, whose multiplier takes an
//! operation every fourth cycle; the issue logic then leaves three cycles between
//! multiplications ([`MulSpacing`]), and fewer contexts keep it busy. The register file is as
//! deep as the build's contexts; the input and digit RAMs keep room for 16 whatever the build
//! (they are a few block RAMs).
//!
//! # Command stream
//!
//! | `in_cmd` | effect | accepted when |
//! |---|---|---|
//! | 0 | microcode word `addr` ← `data[63:0]` | always |
//! | 1 | constant `addr` ← `data[254:0]` | always |
//! | 2 | digit `addr[7:0]` of k for context `addr[11:8]` ← `data[7:0]` (two's complement) | the context is idle |
//! | 3 | digit of S, addressed as for k | the context is idle |
//! | 4 | input A of context `addr[3:0]` ← `data` (the encoding as a little-endian number) | the context is idle |
//! | 5 | input R, as for A | the context is idle |
//! | 6 | run context `data[3:0]` from word `addr` with zeroed registers, flags and counters | the context is idle |
//! | 7 | read register `addr[5:0]` of context `addr[9:6]` | the context is idle and the output is free |
//! | 8 | debug mode ← `data[0]` | always |
//!
//! A command for a busy context waits (`in_ready` low), so a host may queue the next
//! signature of a context behind the current one.
//!
//! # Output stream
//!
//! | `out_kind` | beat | `out_info` | `out_value` |
//! |---|---|---|---|
//! | 0 | a context finished (after its last result landed) | the `Done` code | 0 |
//! | 1 | a register read | the register | its value |
//! | 2 | debug mode: an instruction retired | its address | the unit's result |
//!
//! `out_ctx` is the context and `out_flags` its flags at that point. In debug mode one
//! instruction is in flight at a time, and each retirement is reported, so a checker can step
//! the interpreter along and compare after every instruction.

use crate::context_slot::ContextSlot;
use crate::field_linear::{FieldLinear, LinearOp};
use crate::field_mul::{FieldMul, Rate};
use crate::flow::harness::{Beat, Port, StreamBlock};
use crate::or_tree::OrTree;
use crate::reg_file::RegFile;
use crate::round_robin::RoundRobin;
use rust_hdl::prelude::*;

/// The most signature contexts an engine has (context numbers are 4 bits).
pub const MAX_CONTEXTS: usize = crate::reg_file::MAX_CONTEXTS;

/// The contexts of the ECP5 build: its quarter-rate multiplier needs few operations in flight
/// (4 contexts keep it 89 % busy, 8 would 99.9 %), and each context is logic to route on a
/// part whose router the engine already strains.
pub const ECP5_CONTEXTS: usize = 4;

/// The multiplier of the ECP5 build: the quarter rate (60 multipliers; a two-pass
/// multiplier's 120 and its carry-save tree did not route on the LFE5U-85).
pub const ECP5_RATE: Rate = Rate::Quarter;

/// Output beat kinds (`out_kind`).
pub mod kind {
    /// A verdict.
    pub const VERDICT: u64 = 0;
    /// A register value.
    pub const REGISTER: u64 = 1;
    /// A retired instruction (debug mode).
    pub const RETIRED: u64 = 2;
}

/// Per-context constants, as signals to compare context fields with.
#[derive(LogicBlock)]
pub struct ContextIds {
    /// Context `c`'s number.
    pub id: Vec<Signal<Out, Bits<4>>>,
    /// The fetch port that serves context `c` (the upper half of the contexts: port 1).
    pub port: Vec<Signal<Out, Bit>>,
    /// The first context of port 1.
    pub half: Signal<Out, Bits<4>>,
    /// A context's number within its port, as a mask.
    pub half_mask: Signal<Out, Bits<4>>,
    ids: Vec<Constant<Bits<4>>>,
    ports: Vec<Constant<Bit>>,
    half_value: Constant<Bits<4>>,
    mask_value: Constant<Bits<4>>,
}

impl ContextIds {
    /// The constants of an engine with `contexts` contexts (a power of two, 2 to 16).
    pub fn new(contexts: usize) -> Self {
        assert!(
            contexts.is_power_of_two() && (2..=MAX_CONTEXTS).contains(&contexts),
            "an engine has 2, 4, 8 or 16 contexts"
        );
        let half = contexts / 2;
        Self {
            id: (0..contexts).map(|_| Default::default()).collect(),
            port: (0..contexts).map(|_| Default::default()).collect(),
            half: Default::default(),
            half_mask: Default::default(),
            ids: (0..contexts)
                .map(|c| Constant::new(bits::<4>(c as u64)))
                .collect(),
            ports: (0..contexts).map(|c| Constant::new(c >= half)).collect(),
            half_value: Constant::new(bits::<4>(half as u64)),
            mask_value: Constant::new(bits::<4>(half as u64 - 1)),
        }
    }
}

impl Default for ContextIds {
    fn default() -> Self {
        Self::new(MAX_CONTEXTS)
    }
}

impl Logic for ContextIds {
    #[hdl_gen]
    fn update(&mut self) {
        for c in 0..self.id.len() {
            self.id[c].next = self.ids[c].val();
            self.port[c].next = self.ports[c].val();
        }
        self.half.next = self.half_value.val();
        self.half_mask.next = self.mask_value.val();
    }
}

/// One `T` per context: the engine's per-context blocks and signals, sized when it is built
/// ([`EccEngine::new`]); the default has one for each of [`MAX_CONTEXTS`].
pub struct PerContext<T>(Vec<T>);

impl<T: Default> PerContext<T> {
    fn new(contexts: usize) -> Self {
        Self((0..contexts).map(|_| T::default()).collect())
    }
}

impl<T: Default> Default for PerContext<T> {
    fn default() -> Self {
        Self::new(MAX_CONTEXTS)
    }
}

impl<T> std::ops::Deref for PerContext<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> std::ops::DerefMut for PerContext<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T: Logic> Logic for PerContext<T> {
    fn update(&mut self) {}
}

impl<T: Block> Block for PerContext<T> {
    fn connect_all(&mut self) {
        self.0.connect_all();
    }
    fn update_all(&mut self) {
        self.0.update_all();
    }
    fn has_changed(&self) -> bool {
        self.0.has_changed()
    }
    fn accept(&self, name: &str, probe: &mut dyn Probe) {
        self.0.accept(name, probe);
    }
}

/// The multiplier's spacing, build-time constants the issue logic and the multiplier lane
/// read: which of the last three cycles' multiplications (bit 0, the last cycle's) keep
/// another from issuing — the `interval − 1` latest, so none at full rate and all three at
/// quarter rate — and whether the lane reads a multiplication's operands serially.
#[derive(LogicBlock)]
pub struct MulSpacing {
    /// The mask over the recent grants.
    pub mask: Signal<Out, Bits<3>>,
    /// The lane reads `a` and then `b` through one register-file port: a multiplication
    /// leaves the port free the cycle after its grant when none may follow it in that cycle.
    /// The other port's bank copies then go unread, and synthesis drops them.
    pub serial: Signal<Out, Bit>,
    constant: Constant<Bits<3>>,
    serial_constant: Constant<Bit>,
}

impl Default for MulSpacing {
    fn default() -> Self {
        Self::new(Rate::Full)
    }
}

impl MulSpacing {
    fn new(rate: Rate) -> Self {
        assert!(
            (1..=4).contains(&rate.interval()),
            "three cycles of grants remembered"
        );
        Self {
            mask: Default::default(),
            serial: Default::default(),
            constant: Constant::new(bits::<3>((1 << (rate.interval() - 1)) - 1)),
            serial_constant: Constant::new(rate.interval() > 1),
        }
    }
}

impl Logic for MulSpacing {
    #[hdl_gen]
    fn update(&mut self) {
        self.mask.next = self.constant.val();
        self.serial.next = self.serial_constant.val();
    }
}

/// The engine ([`EccEngine::default`] has the full-rate multiplier and 16 contexts).
#[derive(LogicBlock, Default)]
pub struct EccEngine {
    /// The engine clock.
    pub clock: Signal<In, Clock>,
    /// A command is offered.
    pub in_valid: Signal<In, Bit>,
    /// The engine takes the command this cycle.
    pub in_ready: Signal<Out, Bit>,
    /// The command.
    pub in_cmd: Signal<In, Bits<4>>,
    /// Its address.
    pub in_addr: Signal<In, Bits<12>>,
    /// Its data.
    pub in_data: Signal<In, Bits<256>>,
    /// An output beat is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it this cycle.
    pub out_ready: Signal<In, Bit>,
    /// What the beat is ([`kind`]).
    pub out_kind: Signal<Out, Bits<2>>,
    /// The context.
    pub out_ctx: Signal<Out, Bits<4>>,
    /// The verdict code, register number or instruction address.
    pub out_info: Signal<Out, Bits<12>>,
    /// The register's value or the unit's result.
    pub out_value: Signal<Out, Bits<255>>,
    /// The context's flags.
    pub out_flags: Signal<Out, Bits<16>>,
    slots: PerContext<ContextSlot>,
    mul_pick: RoundRobin,
    lin_pick: RoundRobin,
    done_pick: RoundRobin,
    fetch_low: RoundRobin,
    fetch_high: RoundRobin,
    regs: RegFile,
    mul: FieldMul,
    linear: FieldLinear,
    code: [RAM<Bits<64>, 12>; 2],
    constants: [RAM<Bits<255>, 8>; 2],
    k_digits: [RAM<Bits<8>, 11>; 2],
    s_digits: [RAM<Bits<8>, 11>; 2],
    inputs: RAM<Bits<256>, 5>,
    ids: ContextIds,
    mul_spacing: MulSpacing,
    // Issue.
    mul_go: Signal<Local, Bit>,
    lin_go: Signal<Local, Bit>,
    mul_issued: DFF<Bit>,
    mul_recent: DFF<Bits<3>>,
    lin_issued: DFF<Bit>,
    mul_ctx_q: DFF<Bits<4>>,
    lin_ctx_q: DFF<Bits<4>>,
    mul_grant_q: PerContext<DFF<Bit>>,
    lin_grant_q: PerContext<DFF<Bit>>,
    mul_reg_a: Signal<Local, Bits<6>>,
    mul_reg_b: Signal<Local, Bits<6>>,
    mul_const_addr: Signal<Local, Bits<8>>,
    mul_b_sel: Signal<Local, Bits<2>>,
    mul_dest: Signal<Local, Bits<6>>,
    lin_reg_a: Signal<Local, Bits<6>>,
    lin_reg_b: Signal<Local, Bits<6>>,
    lin_const_addr: Signal<Local, Bits<8>>,
    lin_a_sel: Signal<Local, Bits<2>>,
    lin_b_sel: Signal<Local, Bits<2>>,
    lin_op: Signal<Local, LinearOp>,
    lin_dest: Signal<Local, Bits<6>>,
    lin_wreg: Signal<Local, Bit>,
    lin_wflag: Signal<Local, Bit>,
    lin_flag: Signal<Local, Bits<4>>,
    lin_flag_src: Signal<Local, Bits<2>>,
    lin_input_r: Signal<Local, Bit>,
    issue_pc: Signal<Local, Bits<12>>,
    fetch_low_address: OrTree<Bits<20>>,
    fetch_high_address: OrTree<Bits<20>>,
    mul_packet: OrTree<Bits<53>>,
    lin_packet: OrTree<Bits<53>>,
    // Multiplier lane: operands read, then registered.
    m1_valid: DFF<Bit>,
    m1_ctx: DFF<Bits<4>>,
    m1_dest: DFF<Bits<6>>,
    m1_b_const: DFF<Bit>,
    m1_reg_b: DFF<Bits<6>>,
    m1_const_addr: DFF<Bits<8>>,
    // Serial reads (`MulSpacing::serial`): `a` held while `b` is read.
    mb_valid: DFF<Bit>,
    mb_ctx: DFF<Bits<4>>,
    mb_dest: DFF<Bits<6>>,
    mb_b_const: DFF<Bit>,
    mb_a: DFF<Bits<255>>,
    m2_valid: DFF<Bit>,
    m2_a: DFF<Bits<255>>,
    m2_b: DFF<Bits<255>>,
    m2_tag: DFF<Bits<16>>,
    // Linear lane.
    l1_valid: DFF<Bit>,
    l1_ctx: DFF<Bits<4>>,
    l1_dest: DFF<Bits<6>>,
    l1_a_sel: DFF<Bits<2>>,
    l1_b_sel: DFF<Bits<2>>,
    l1_op: DFF<LinearOp>,
    l1_wreg: DFF<Bit>,
    l1_wflag: DFF<Bit>,
    l1_flag: DFF<Bits<4>>,
    l1_flag_src: DFF<Bits<2>>,
    l2_valid: DFF<Bit>,
    l2_a: DFF<Bits<255>>,
    l2_b: DFF<Bits<255>>,
    l2_op: DFF<LinearOp>,
    l2_tag: DFF<Bits<19>>,
    mark_wreg: Signal<Local, Bits<19>>,
    mark_wflag: Signal<Local, Bits<19>>,
    mark_sign: Signal<Local, Bits<19>>,
    // Results.
    mul_ret_ctx: Signal<Local, Bits<4>>,
    mul_ret_reg: Signal<Local, Bits<6>>,
    lin_ret_ctx: Signal<Local, Bits<4>>,
    lin_ret_reg: Signal<Local, Bits<6>>,
    lin_ret_value: Signal<Local, Bit>,
    // Host commands.
    cmd_ctx: Signal<Local, Bits<4>>,
    target_idle: OrTree<Bit>,
    digit_address: Signal<Local, Bits<11>>,
    digit_port: Signal<Local, Bit>,
    read_wanted: Signal<Local, Bit>,
    read_now: Signal<Local, Bit>,
    accept: Signal<Local, Bit>,
    read_inflight: DFF<Bit>,
    read_ctx: DFF<Bits<4>>,
    read_reg: DFF<Bits<6>>,
    // Debug mode.
    debug: DFF<Bit>,
    dbg_wait: DFF<Bit>,
    dbg_ctx: DFF<Bits<4>>,
    dbg_pc: DFF<Bits<12>>,
    trace_hold: DFF<Bit>,
    trace_value: DFF<Bits<255>>,
    // Output.
    claim_trace: Signal<Local, Bit>,
    claim_done: Signal<Local, Bit>,
    read_flags: OrTree<Bits<16>>,
    trace_flags: OrTree<Bits<16>>,
    done_info: OrTree<Bits<20>>,
    out_pending: DFF<Bit>,
    out_kind_q: DFF<Bits<2>>,
    out_ctx_q: DFF<Bits<4>>,
    out_info_q: DFF<Bits<12>>,
    out_value_q: DFF<Bits<255>>,
    out_flags_q: DFF<Bits<16>>,
}

impl Logic for EccEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            mul_issued,
            mul_recent,
            lin_issued,
            mul_ctx_q,
            lin_ctx_q,
            m1_valid,
            m1_ctx,
            m1_dest,
            m1_b_const,
            m1_reg_b,
            m1_const_addr,
            mb_valid,
            mb_ctx,
            mb_dest,
            mb_b_const,
            mb_a,
            m2_valid,
            m2_a,
            m2_b,
            m2_tag,
            l1_valid,
            l1_ctx,
            l1_dest,
            l1_a_sel,
            l1_b_sel,
            l1_op,
            l1_wreg,
            l1_wflag,
            l1_flag,
            l1_flag_src,
            l2_valid,
            l2_a,
            l2_b,
            l2_op,
            l2_tag,
            read_inflight,
            read_ctx,
            read_reg,
            debug,
            dbg_wait,
            dbg_ctx,
            dbg_pc,
            trace_hold,
            trace_value,
            out_pending,
            out_kind_q,
            out_ctx_q,
            out_info_q,
            out_value_q,
            out_flags_q
        );
        clock!(
            self, clock, mul_pick, lin_pick, done_pick, fetch_low, fetch_high, regs, mul, linear
        );
        for p in 0..2 {
            self.code[p].read_clock.next = self.clock.val();
            self.code[p].write_clock.next = self.clock.val();
            self.constants[p].read_clock.next = self.clock.val();
            self.constants[p].write_clock.next = self.clock.val();
            self.k_digits[p].read_clock.next = self.clock.val();
            self.k_digits[p].write_clock.next = self.clock.val();
            self.s_digits[p].read_clock.next = self.clock.val();
            self.s_digits[p].write_clock.next = self.clock.val();
        }
        self.inputs.read_clock.next = self.clock.val();
        self.inputs.write_clock.next = self.clock.val();

        // Host commands. A command for a context waits until the context is idle.
        self.cmd_ctx.next = self.in_addr.val().get_bits::<4>(8);
        if (self.in_cmd.val() == 4) | (self.in_cmd.val() == 5) {
            self.cmd_ctx.next = self.in_addr.val().get_bits::<4>(0);
        }
        if self.in_cmd.val() == 6 {
            self.cmd_ctx.next = self.in_data.val().get_bits::<4>(0);
        }
        if self.in_cmd.val() == 7 {
            self.cmd_ctx.next = self.in_addr.val().get_bits::<4>(6);
        }
        for c in 0..self.slots.len() {
            self.slots[c].clock.next = self.clock.val();
            self.target_idle.term[c].next =
                (self.cmd_ctx.val() == self.ids.id[c].val()) & self.slots[c].idle.val();
        }
        // A register read takes the linear lane's second read port, in a cycle the lane does
        // not use it; while one waits, the lane issues nothing new.
        self.read_wanted.next = self.in_valid.val()
            & (self.in_cmd.val() == 7)
            & self.target_idle.any.val()
            & !self.out_pending.q.val()
            & !self.read_inflight.q.val()
            & !self.trace_hold.q.val();
        self.read_now.next = self.read_wanted.val() & !self.lin_issued.q.val();
        self.in_ready.next = true;
        if (self.in_cmd.val() > 1) & (self.in_cmd.val() < 7) {
            self.in_ready.next = self.target_idle.any.val();
        }
        if self.in_cmd.val() == 7 {
            self.in_ready.next = self.read_now.val();
        }
        self.accept.next = self.in_valid.val() & self.in_ready.val();
        // A context's digits sit at its number within its half of the contexts.
        self.digit_port.next = self.cmd_ctx.val() >= self.ids.half.val();
        self.digit_address.next =
            (bit_cast::<11, 4>(self.cmd_ctx.val() & self.ids.half_mask.val()) << 8)
                | bit_cast::<11, 8>(self.in_addr.val().get_bits::<8>(0));
        for p in 0..2 {
            self.code[p].write_address.next = self.in_addr.val();
            self.code[p].write_data.next = self.in_data.val().get_bits::<64>(0);
            self.code[p].write_enable.next = self.accept.val() & (self.in_cmd.val() == 0);
            self.constants[p].write_address.next = self.in_addr.val().get_bits::<8>(0);
            self.constants[p].write_data.next = self.in_data.val().get_bits::<255>(0);
            self.constants[p].write_enable.next = self.accept.val() & (self.in_cmd.val() == 1);
            self.k_digits[p].write_address.next = self.digit_address.val();
            self.k_digits[p].write_data.next = self.in_data.val().get_bits::<8>(0);
            self.s_digits[p].write_address.next = self.digit_address.val();
            self.s_digits[p].write_data.next = self.in_data.val().get_bits::<8>(0);
        }
        // The lower half of the contexts take their digits from port 0's copy, the upper half
        // from port 1's.
        self.k_digits[0].write_enable.next =
            self.accept.val() & (self.in_cmd.val() == 2) & !self.digit_port.val();
        self.k_digits[1].write_enable.next =
            self.accept.val() & (self.in_cmd.val() == 2) & self.digit_port.val();
        self.s_digits[0].write_enable.next =
            self.accept.val() & (self.in_cmd.val() == 3) & !self.digit_port.val();
        self.s_digits[1].write_enable.next =
            self.accept.val() & (self.in_cmd.val() == 3) & self.digit_port.val();
        self.inputs.write_address.next = self.in_addr.val().get_bits::<5>(0) << 1;
        if self.in_cmd.val() == 5 {
            self.inputs.write_address.next = (self.in_addr.val().get_bits::<5>(0) << 1) + 1;
        }
        self.inputs.write_data.next = self.in_data.val();
        self.inputs.write_enable.next =
            self.accept.val() & ((self.in_cmd.val() == 4) | (self.in_cmd.val() == 5));
        if self.accept.val() & (self.in_cmd.val() == 8) {
            self.debug.d.next = self.in_data.val().get_bit(0);
        }
        self.regs.in_valid.next = true;
        self.regs.clear.next = self.accept.val() & (self.in_cmd.val() == 6);
        self.regs.clear_context.next = self.cmd_ctx.val();

        // Fetch: each port grants one of its half of the contexts a cycle (its arbiter sees
        // the other half's requests as zero, which synthesis folds away); the word and digits
        // arrive the next cycle, when the context is in `Arrive`.
        self.fetch_low.take.next = true;
        self.fetch_high.take.next = true;
        for c in 0..self.slots.len() {
            self.fetch_low.req[c].next = self.slots[c].wants_fetch.val() & !self.ids.port[c].val();
            self.fetch_high.req[c].next = self.slots[c].wants_fetch.val() & self.ids.port[c].val();
            self.slots[c].fetch_grant.next =
                self.fetch_low.grant[c].val() | self.fetch_high.grant[c].val();
            self.fetch_low_address.term[c].next = 0.into();
            if self.fetch_low.grant[c].val() {
                self.fetch_low_address.term[c].next = self.slots[c].fetch_address.val();
            }
            self.fetch_high_address.term[c].next = 0.into();
            if self.fetch_high.grant[c].val() {
                self.fetch_high_address.term[c].next = self.slots[c].fetch_address.val();
            }
            self.slots[c].fetch_word.next = self.code[0].read_data.val();
            self.slots[c].fetch_k.next = self.k_digits[0].read_data.val();
            self.slots[c].fetch_s.next = self.s_digits[0].read_data.val();
            if self.ids.port[c].val() {
                self.slots[c].fetch_word.next = self.code[1].read_data.val();
                self.slots[c].fetch_k.next = self.k_digits[1].read_data.val();
                self.slots[c].fetch_s.next = self.s_digits[1].read_data.val();
            }
        }
        self.code[0].read_address.next = self.fetch_low_address.any.val().get_bits::<12>(0);
        self.code[1].read_address.next = self.fetch_high_address.any.val().get_bits::<12>(0);
        self.k_digits[0].read_address.next =
            (bit_cast::<11, 4>(self.fetch_low.index.val() & self.ids.half_mask.val()) << 8)
                | bit_cast::<11, 8>(self.fetch_low_address.any.val().get_bits::<8>(12));
        self.s_digits[0].read_address.next =
            (bit_cast::<11, 4>(self.fetch_low.index.val() & self.ids.half_mask.val()) << 8)
                | bit_cast::<11, 8>(self.fetch_low_address.any.val().get_bits::<8>(12));
        self.k_digits[1].read_address.next =
            (bit_cast::<11, 4>(self.fetch_high.index.val() & self.ids.half_mask.val()) << 8)
                | bit_cast::<11, 8>(self.fetch_high_address.any.val().get_bits::<8>(12));
        self.s_digits[1].read_address.next =
            (bit_cast::<11, 4>(self.fetch_high.index.val() & self.ids.half_mask.val()) << 8)
                | bit_cast::<11, 8>(self.fetch_high_address.any.val().get_bits::<8>(12));

        // Issue: one multiplier and one linear instruction a cycle, round-robin over the ready
        // contexts. The grant is registered: the next cycle the context learns it issued and
        // the lane reads its operands (so the arbiters, the operand multiplexers and the
        // contexts' next-state logic sit in different cycles); a context granted last cycle
        // does not ask again. Debug mode issues one instruction at a time, and only once the
        // previous one has been reported.
        self.mul_go.next = self.mul_pick.valid.val()
            & !(self.mul_recent.q.val() & self.mul_spacing.mask.val()).any()
            & !(self.debug.q.val() & (self.dbg_wait.q.val() | self.trace_hold.q.val()));
        self.lin_go.next = self.lin_pick.valid.val()
            & !self.read_wanted.val()
            & !(self.debug.q.val()
                & (self.dbg_wait.q.val() | self.trace_hold.q.val() | self.mul_pick.valid.val()));
        self.mul_pick.take.next = self.mul_go.val();
        self.lin_pick.take.next = self.lin_go.val();
        self.mul_issued.d.next = self.mul_go.val();
        self.mul_recent.d.next = self.mul_recent.q.val() << 1;
        if self.mul_go.val() {
            self.mul_recent.d.next = (self.mul_recent.q.val() << 1) + 1;
        }
        self.lin_issued.d.next = self.lin_go.val();
        self.mul_ctx_q.d.next = self.mul_pick.index.val();
        self.lin_ctx_q.d.next = self.lin_pick.index.val();
        for c in 0..self.slots.len() {
            self.mul_grant_q[c].clock.next = self.clock.val();
            self.lin_grant_q[c].clock.next = self.clock.val();
            self.mul_grant_q[c].d.next = self.mul_go.val() & self.mul_pick.grant[c].val();
            self.lin_grant_q[c].d.next = self.lin_go.val() & self.lin_pick.grant[c].val();
            self.slots[c].issue.next = self.mul_grant_q[c].q.val() | self.lin_grant_q[c].q.val();
            self.mul_pick.req[c].next = self.slots[c].ready_mul.val() & !self.slots[c].issue.val();
            self.lin_pick.req[c].next = self.slots[c].ready_lin.val() & !self.slots[c].issue.val();
            // The granted contexts' packets (`context_slot::packet` gives the layout).
            self.mul_packet.term[c].next = 0.into();
            if self.mul_grant_q[c].q.val() {
                self.mul_packet.term[c].next = self.slots[c].packet.val();
            }
            self.lin_packet.term[c].next = 0.into();
            if self.lin_grant_q[c].q.val() {
                self.lin_packet.term[c].next = self.slots[c].packet.val();
            }
        }
        self.mul_reg_a.next = self.mul_packet.any.val().get_bits::<6>(0);
        self.mul_reg_b.next = self.mul_packet.any.val().get_bits::<6>(6);
        self.mul_const_addr.next = self.mul_packet.any.val().get_bits::<8>(12);
        self.mul_b_sel.next = self.mul_packet.any.val().get_bits::<2>(22);
        self.mul_dest.next = self.mul_packet.any.val().get_bits::<6>(26);
        self.lin_reg_a.next = self.lin_packet.any.val().get_bits::<6>(0);
        self.lin_reg_b.next = self.lin_packet.any.val().get_bits::<6>(6);
        self.lin_const_addr.next = self.lin_packet.any.val().get_bits::<8>(12);
        self.lin_a_sel.next = self.lin_packet.any.val().get_bits::<2>(20);
        self.lin_b_sel.next = self.lin_packet.any.val().get_bits::<2>(22);
        self.lin_op.next = LinearOp::PassB;
        if self.lin_packet.any.val().get_bits::<2>(24) == 0 {
            self.lin_op.next = LinearOp::Add;
        }
        if self.lin_packet.any.val().get_bits::<2>(24) == 1 {
            self.lin_op.next = LinearOp::Sub;
        }
        if self.lin_packet.any.val().get_bits::<2>(24) == 2 {
            self.lin_op.next = LinearOp::Reduce;
        }
        self.lin_dest.next = self.lin_packet.any.val().get_bits::<6>(26);
        self.lin_wreg.next = self.lin_packet.any.val().get_bit(32);
        self.lin_wflag.next = self.lin_packet.any.val().get_bit(33);
        self.lin_flag.next = self.lin_packet.any.val().get_bits::<4>(34);
        self.lin_flag_src.next = self.lin_packet.any.val().get_bits::<2>(38);
        self.lin_input_r.next = self.lin_packet.any.val().get_bit(40);
        self.issue_pc.next = self.lin_packet.any.val().get_bits::<12>(41);
        if self.mul_issued.q.val() {
            self.issue_pc.next = self.mul_packet.any.val().get_bits::<12>(41);
        }
        if self.debug.q.val() & (self.mul_go.val() | self.lin_go.val()) {
            self.dbg_wait.d.next = true;
            self.dbg_ctx.d.next = self.lin_pick.index.val();
            if self.mul_go.val() {
                self.dbg_ctx.d.next = self.mul_pick.index.val();
            }
        }
        if self.debug.q.val() & (self.mul_issued.q.val() | self.lin_issued.q.val()) {
            self.dbg_pc.d.next = self.issue_pc.val();
        }

        // Operand reads, the cycle after the grant. Operand sources and flag sources are coded
        // as in `context_slot::packet`; the linear tag is context [3:0], register [9:4], flag
        // [13:10], writes the register [14], writes the flag [15], the flag's source [17:16],
        // `Load`'s sign [18]; output kinds are [`kind`]'s.
        self.regs.rd_addr[0].next = (bit_cast::<10, 4>(self.mul_ctx_q.q.val()) << 6)
            | bit_cast::<10, 6>(self.mul_reg_a.val());
        self.regs.rd_addr[1].next = (bit_cast::<10, 4>(self.mul_ctx_q.q.val()) << 6)
            | bit_cast::<10, 6>(self.mul_reg_b.val());
        self.regs.rd_addr[2].next = (bit_cast::<10, 4>(self.lin_ctx_q.q.val()) << 6)
            | bit_cast::<10, 6>(self.lin_reg_a.val());
        self.regs.rd_addr[3].next = (bit_cast::<10, 4>(self.lin_ctx_q.q.val()) << 6)
            | bit_cast::<10, 6>(self.lin_reg_b.val());
        // A lane reads only the operands it takes from registers, and only when it issued:
        // the file must not be asked for a register in the cycle a result lands in it.
        self.regs.rd_en[0].next = self.mul_issued.q.val();
        self.regs.rd_en[1].next = self.mul_issued.q.val() & (self.mul_b_sel.val() != 1);
        if self.mul_spacing.serial.val() {
            // `b` through port 0 the cycle after `a` (no multiplication issues that cycle).
            self.regs.rd_en[1].next = false;
            if self.m1_valid.q.val() {
                self.regs.rd_addr[0].next = (bit_cast::<10, 4>(self.m1_ctx.q.val()) << 6)
                    | bit_cast::<10, 6>(self.m1_reg_b.q.val());
                self.regs.rd_en[0].next = !self.m1_b_const.q.val();
            }
        }
        self.regs.rd_en[2].next = self.lin_issued.q.val() & (self.lin_a_sel.val() == 0);
        self.regs.rd_en[3].next = self.lin_issued.q.val() & (self.lin_b_sel.val() == 0);
        if self.read_now.val() {
            self.regs.rd_en[3].next = true;
            self.regs.rd_addr[3].next = bit_cast::<10, 12>(self.in_addr.val());
            self.read_inflight.d.next = true;
            self.read_ctx.d.next = self.cmd_ctx.val();
            self.read_reg.d.next = self.in_addr.val().get_bits::<6>(0);
        }
        self.constants[0].read_address.next = self.mul_const_addr.val();
        if self.mul_spacing.serial.val() {
            self.constants[0].read_address.next = self.m1_const_addr.q.val();
        }
        self.constants[1].read_address.next = self.lin_const_addr.val();
        self.inputs.read_address.next = bit_cast::<5, 4>(self.lin_ctx_q.q.val()) << 1;
        if self.lin_input_r.val() {
            self.inputs.read_address.next = (bit_cast::<5, 4>(self.lin_ctx_q.q.val()) << 1) + 1;
        }
        self.m1_valid.d.next = self.mul_issued.q.val();
        self.m1_ctx.d.next = self.mul_ctx_q.q.val();
        self.m1_dest.d.next = self.mul_dest.val();
        self.m1_b_const.d.next = self.mul_b_sel.val() == 1;
        self.m1_reg_b.d.next = self.mul_reg_b.val();
        self.m1_const_addr.d.next = self.mul_const_addr.val();
        self.mb_valid.d.next = self.m1_valid.q.val();
        self.mb_ctx.d.next = self.m1_ctx.q.val();
        self.mb_dest.d.next = self.m1_dest.q.val();
        self.mb_b_const.d.next = self.m1_b_const.q.val();
        self.mb_a.d.next = self.regs.rd_data[0].val();
        self.l1_valid.d.next = self.lin_issued.q.val();
        self.l1_ctx.d.next = self.lin_ctx_q.q.val();
        self.l1_dest.d.next = self.lin_dest.val();
        self.l1_a_sel.d.next = self.lin_a_sel.val();
        self.l1_b_sel.d.next = self.lin_b_sel.val();
        self.l1_op.d.next = self.lin_op.val();
        self.l1_wreg.d.next = self.lin_wreg.val();
        self.l1_wflag.d.next = self.lin_wflag.val();
        self.l1_flag.d.next = self.lin_flag.val();
        self.l1_flag_src.d.next = self.lin_flag_src.val();

        // Operands, registered for the units.
        self.m2_valid.d.next = self.m1_valid.q.val();
        self.m2_a.d.next = self.regs.rd_data[0].val();
        self.m2_b.d.next = self.regs.rd_data[1].val();
        if self.m1_b_const.q.val() {
            self.m2_b.d.next = self.constants[0].read_data.val();
        }
        self.m2_tag.d.next =
            bit_cast::<16, 4>(self.m1_ctx.q.val()) | (bit_cast::<16, 6>(self.m1_dest.q.val()) << 4);
        if self.mul_spacing.serial.val() {
            self.m2_valid.d.next = self.mb_valid.q.val();
            self.m2_a.d.next = self.mb_a.q.val();
            self.m2_b.d.next = self.regs.rd_data[0].val();
            if self.mb_b_const.q.val() {
                self.m2_b.d.next = self.constants[0].read_data.val();
            }
            self.m2_tag.d.next = bit_cast::<16, 4>(self.mb_ctx.q.val())
                | (bit_cast::<16, 6>(self.mb_dest.q.val()) << 4);
        }
        self.l2_valid.d.next = self.l1_valid.q.val();
        self.l2_a.d.next = self.regs.rd_data[2].val();
        if self.l1_a_sel.q.val() == 1 {
            self.l2_a.d.next = 0.into();
        }
        if self.l1_a_sel.q.val() == 2 {
            self.l2_a.d.next = self.inputs.read_data.val().get_bits::<255>(0);
        }
        self.l2_b.d.next = self.regs.rd_data[3].val();
        if self.l1_b_sel.q.val() == 1 {
            self.l2_b.d.next = self.constants[1].read_data.val();
        }
        if self.l1_b_sel.q.val() == 2 {
            self.l2_b.d.next = 0.into();
        }
        self.l2_op.d.next = self.l1_op.q.val();
        self.mark_wreg.next = 0.into();
        if self.l1_wreg.q.val() {
            self.mark_wreg.next = 0x4000.into();
        }
        self.mark_wflag.next = 0.into();
        if self.l1_wflag.q.val() {
            self.mark_wflag.next = 0x8000.into();
        }
        self.mark_sign.next = 0.into();
        if self.inputs.read_data.val().get_bit(255) {
            self.mark_sign.next = 0x40000.into();
        }
        self.l2_tag.d.next = bit_cast::<19, 4>(self.l1_ctx.q.val())
            | (bit_cast::<19, 6>(self.l1_dest.q.val()) << 4)
            | (bit_cast::<19, 4>(self.l1_flag.q.val()) << 10)
            | (bit_cast::<19, 2>(self.l1_flag_src.q.val()) << 16)
            | self.mark_wreg.val()
            | self.mark_wflag.val()
            | self.mark_sign.val();
        self.mul.in_valid.next = self.m2_valid.q.val();
        self.mul.in_a.next = self.m2_a.q.val();
        self.mul.in_b.next = self.m2_b.q.val();
        self.mul.in_tag.next = self.m2_tag.q.val();
        self.linear.in_valid.next = self.l2_valid.q.val();
        self.linear.in_op.next = self.l2_op.q.val();
        self.linear.in_a.next = self.l2_a.q.val();
        self.linear.in_b.next = self.l2_b.q.val();
        self.linear.in_tag.next = self.l2_tag.q.val();

        // Results land: the register file, and the context's scoreboard and flags.
        self.mul_ret_ctx.next = self.mul.out_tag.val().get_bits::<4>(0);
        self.mul_ret_reg.next = self.mul.out_tag.val().get_bits::<6>(4);
        self.lin_ret_ctx.next = self.linear.out_tag.val().get_bits::<4>(0);
        self.lin_ret_reg.next = self.linear.out_tag.val().get_bits::<6>(4);
        self.lin_ret_value.next = self.linear.out_equal.val();
        if self.linear.out_tag.val().get_bits::<2>(16) == 1 {
            self.lin_ret_value.next = self.linear.out_odd.val();
        }
        if self.linear.out_tag.val().get_bits::<2>(16) == 2 {
            self.lin_ret_value.next = self.linear.out_tag.val().get_bit(18);
        }
        self.regs.wr_en[0].next = self.mul.out_valid.val();
        self.regs.wr_addr[0].next = (bit_cast::<10, 4>(self.mul_ret_ctx.val()) << 6)
            | bit_cast::<10, 6>(self.mul_ret_reg.val());
        self.regs.wr_data[0].next = self.mul.out_product.val();
        self.regs.wr_en[1].next =
            self.linear.out_valid.val() & self.linear.out_tag.val().get_bit(14);
        self.regs.wr_addr[1].next = (bit_cast::<10, 4>(self.lin_ret_ctx.val()) << 6)
            | bit_cast::<10, 6>(self.lin_ret_reg.val());
        self.regs.wr_data[1].next = self.linear.out_value.val();
        for c in 0..self.slots.len() {
            self.slots[c].mul_retire.next =
                self.mul.out_valid.val() & (self.mul_ret_ctx.val() == self.ids.id[c].val());
            self.slots[c].mul_reg.next = self.mul_ret_reg.val();
            self.slots[c].lin_retire.next =
                self.linear.out_valid.val() & (self.lin_ret_ctx.val() == self.ids.id[c].val());
            self.slots[c].lin_wreg.next = self.linear.out_tag.val().get_bit(14);
            self.slots[c].lin_reg.next = self.lin_ret_reg.val();
            self.slots[c].lin_wflag.next = self.linear.out_tag.val().get_bit(15);
            self.slots[c].lin_flag.next = self.linear.out_tag.val().get_bits::<4>(10);
            self.slots[c].lin_value.next = self.lin_ret_value.val();
            self.slots[c].start.next = self.accept.val()
                & (self.in_cmd.val() == 6)
                & (self.cmd_ctx.val() == self.ids.id[c].val());
            self.slots[c].start_pc.next = self.in_addr.val();
        }
        if self.debug.q.val() & (self.mul.out_valid.val() | self.linear.out_valid.val()) {
            self.trace_hold.d.next = true;
            self.trace_value.d.next = self.linear.out_value.val();
            if self.mul.out_valid.val() {
                self.trace_value.d.next = self.mul.out_product.val();
            }
        }

        // Output: a register read first (its port was reserved), then a retirement report,
        // then a verdict. A `Done` word that writes nothing drains at once, so in debug mode
        // its verdict also waits for its own report.
        for c in 0..self.slots.len() {
            self.done_pick.req[c].next = self.slots[c].done.val();
            self.read_flags.term[c].next = 0.into();
            if self.read_ctx.q.val() == self.ids.id[c].val() {
                self.read_flags.term[c].next = self.slots[c].flags_out.val();
            }
            self.trace_flags.term[c].next = 0.into();
            if self.dbg_ctx.q.val() == self.ids.id[c].val() {
                self.trace_flags.term[c].next = self.slots[c].flags_out.val();
            }
            self.done_info.term[c].next = 0.into();
            if self.done_pick.grant[c].val() {
                self.done_info.term[c].next = self.slots[c].verdict.val();
            }
        }
        self.claim_trace.next = self.trace_hold.q.val()
            & !self.out_pending.q.val()
            & !self.read_inflight.q.val()
            & !self.read_now.val();
        self.claim_done.next = self.done_pick.valid.val()
            & !self.out_pending.q.val()
            & !self.read_inflight.q.val()
            & !self.read_now.val()
            & !self.trace_hold.q.val()
            & !(self.debug.q.val() & self.dbg_wait.q.val());
        self.done_pick.take.next = self.claim_done.val();
        for c in 0..self.slots.len() {
            self.slots[c].emit.next = self.claim_done.val() & self.done_pick.grant[c].val();
        }
        self.out_pending.d.next = self.out_pending.q.val() & !self.out_ready.val();
        if self.read_inflight.q.val() {
            self.read_inflight.d.next = false;
            self.out_pending.d.next = true;
            self.out_kind_q.d.next = 1.into();
            self.out_ctx_q.d.next = self.read_ctx.q.val();
            self.out_info_q.d.next = bit_cast::<12, 6>(self.read_reg.q.val());
            self.out_value_q.d.next = self.regs.rd_data[3].val();
            self.out_flags_q.d.next = self.read_flags.any.val();
        }
        if self.claim_trace.val() {
            self.trace_hold.d.next = false;
            self.dbg_wait.d.next = false;
            self.out_pending.d.next = true;
            self.out_kind_q.d.next = 2.into();
            self.out_ctx_q.d.next = self.dbg_ctx.q.val();
            self.out_info_q.d.next = self.dbg_pc.q.val();
            self.out_value_q.d.next = self.trace_value.q.val();
            self.out_flags_q.d.next = self.trace_flags.any.val();
        }
        if self.claim_done.val() {
            self.out_pending.d.next = true;
            self.out_kind_q.d.next = 0.into();
            self.out_ctx_q.d.next = self.done_pick.index.val();
            self.out_info_q.d.next = bit_cast::<12, 4>(self.done_info.any.val().get_bits::<4>(16));
            self.out_value_q.d.next = 0.into();
            self.out_flags_q.d.next = self.done_info.any.val().get_bits::<16>(0);
        }
        self.out_valid.next = self.out_pending.q.val();
        self.out_kind.next = self.out_kind_q.q.val();
        self.out_ctx.next = self.out_ctx_q.q.val();
        self.out_info.next = self.out_info_q.q.val();
        self.out_value.next = self.out_value_q.q.val();
        self.out_flags.next = self.out_flags_q.q.val();
    }
}

impl EccEngine {
    /// An engine whose multiplier runs at `rate` (a multiplication issues at most every
    /// [`Rate::interval`] cycles), with `contexts` signature contexts (2, 4, 8 or 16). A command
    /// for a context the engine does not have waits forever, as one for a busy context waits.
    pub fn new(rate: Rate, contexts: usize) -> Self {
        Self {
            mul: FieldMul::new(rate),
            mul_spacing: MulSpacing::new(rate),
            ids: ContextIds::new(contexts),
            slots: PerContext::new(contexts),
            mul_pick: RoundRobin::new(contexts),
            lin_pick: RoundRobin::new(contexts),
            done_pick: RoundRobin::new(contexts),
            fetch_low: RoundRobin::new(contexts),
            fetch_high: RoundRobin::new(contexts),
            mul_grant_q: PerContext::new(contexts),
            lin_grant_q: PerContext::new(contexts),
            fetch_low_address: OrTree::new(contexts),
            fetch_high_address: OrTree::new(contexts),
            mul_packet: OrTree::new(contexts),
            lin_packet: OrTree::new(contexts),
            target_idle: OrTree::new(contexts),
            read_flags: OrTree::new(contexts),
            trace_flags: OrTree::new(contexts),
            done_info: OrTree::new(contexts),
            regs: RegFile::new(contexts),
            ..Self::default()
        }
    }

    /// Its number of signature contexts.
    pub fn contexts(&self) -> usize {
        self.slots.len()
    }
}

impl StreamBlock for EccEngine {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_cmd",
            bits: 4,
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
            bits: 2,
        },
        Port {
            name: "out_ctx",
            bits: 4,
        },
        Port {
            name: "out_info",
            bits: 12,
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
                self.out_kind.val().into(),
                self.out_ctx.val().into(),
                self.out_info.val().into(),
                self.out_value.val().into(),
                self.out_flags.val().into(),
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::MAX_CONTEXTS;
    use crate::ecc_engine_bench::{self as bench, Options};
    use crate::flow::harness::Stalls;
    use num_bigint::BigUint;
    use rand::{Rng, SeedableRng};
    use verity_firmware::field::Fe;
    use verity_firmware::image::Image;
    use verity_firmware::interp::Inputs;
    use verity_firmware::isa::{Addr, ConstId, Digits, Flag, Input, Instr, Op, Reg, Seq};
    use verity_firmware::scalar::DIGITS;

    fn r(i: usize) -> Reg {
        Reg::new(i).expect("register")
    }

    fn f(i: usize) -> Flag {
        Flag::new(i).expect("flag")
    }

    fn c(i: usize) -> ConstId {
        ConstId::new(i).expect("constant")
    }

    fn at(i: usize) -> Addr {
        Addr::new(i).expect("address")
    }

    fn next(op: Op) -> Instr {
        Instr::op(op)
    }

    fn then(op: Op, seq: Seq) -> Instr {
        Instr { op, seq }
    }

    /// Every opcode and every kind of sequencing once, with dependent operations back to back,
    /// both branch directions, a branch on a flag its own word writes, a digit branch after
    /// `SetI`, register and ROM tables with a negative and a positive digit, and a `Done`
    /// word that still has a multiplication in flight. Words 5, 19, 29, 31 and 34 end the
    /// program with a code other than 0 and are reached only by a wrong branch.
    fn every_instruction() -> Image {
        use Op::*;
        let code = vec![
            next(LdC { d: r(0), c: c(0) }),
            next(LdC { d: r(1), c: c(1) }),
            next(LdC { d: r(2), c: c(2) }),
            next(LdC { d: r(25), c: c(3) }),
            then(
                Load {
                    d: r(4),
                    sign: f(0),
                    input: Input::A,
                },
                Seq::IfFlag(f(0), at(6)),
            ),
            then(Nop, Seq::Done(9)),
            next(Load {
                d: r(5),
                sign: f(1),
                input: Input::R,
            }),
            next(Mul {
                d: r(6),
                a: r(0),
                b: r(1),
            }),
            next(Sqr { d: r(7), a: r(6) }),
            next(MulC {
                d: r(8),
                a: r(7),
                c: c(4),
            }),
            next(Add {
                d: r(9),
                a: r(8),
                b: r(2),
            }),
            next(Sub {
                d: r(10),
                a: r(5),
                b: r(9),
            }),
            next(CNeg {
                d: r(11),
                a: r(10),
                f: f(0),
            }),
            next(CNeg {
                d: r(12),
                a: r(10),
                f: f(1),
            }),
            next(CSel {
                d: r(13),
                a: r(0),
                b: r(1),
                f: f(0),
            }),
            then(
                Eq {
                    f: f(2),
                    a: r(13),
                    b: r(0),
                },
                Seq::IfNotFlag(f(2), at(5)),
            ),
            next(CSel {
                d: r(14),
                a: r(0),
                b: r(1),
                f: f(1),
            }),
            next(Odd { f: f(3), a: r(4) }),
            then(
                FAnd {
                    f: f(4),
                    a: f(0),
                    b: f(2),
                },
                Seq::IfFlag(f(4), at(20)),
            ),
            then(Nop, Seq::Done(10)),
            next(FOr {
                f: f(5),
                a: f(1),
                b: f(3),
            }),
            then(SetI { n: 5 }, Seq::IfDigitZero(Digits::K, at(5))),
            next(MulT {
                d: r(15),
                a: r(9),
                base: r(20),
                coord: 0,
                digits: Digits::K,
            }),
            next(MulTC {
                d: r(16),
                a: r(9),
                base: c(6),
                coord: 2,
                digits: Digits::S,
            }),
            next(TNeg {
                d: r(17),
                a: r(9),
                digits: Digits::K,
            }),
            next(TNeg {
                d: r(18),
                a: r(9),
                digits: Digits::S,
            }),
            next(SetJ { n: 2 }),
            then(
                Add {
                    d: r(19),
                    a: r(19),
                    b: r(0),
                },
                Seq::LoopJ(at(27)),
            ),
            then(SetI { n: 7 }, Seq::IfBothDigitsZero(at(30))),
            then(Nop, Seq::Done(11)),
            then(SetI { n: 6 }, Seq::LoopI(at(32))),
            then(Nop, Seq::Done(12)),
            then(Nop, Seq::IfDigitZero(Digits::S, at(34))),
            then(Nop, Seq::Jump(at(35))),
            then(Nop, Seq::Done(13)),
            then(
                Mul {
                    d: r(21),
                    a: r(15),
                    b: r(16),
                },
                Seq::Done(0),
            ),
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x1a57);
        let constants = (0..24)
            .map(|_| {
                let value = BigUint::from_bytes_le(&rng.gen::<[u8; 32]>());
                crate::field_value::to_fe(&(value % crate::field_value::modulus()))
            })
            .collect::<Vec<Fe>>();
        Image::new(verity_firmware::asm::Program {
            code,
            constants,
            entry: at(0),
        })
    }

    /// Inputs for [`every_instruction`]: A with its sign bit set, R without; at I = 5 a
    /// negative k digit and a positive S digit; at I = 7 both zero.
    fn instruction_inputs(seed: u8) -> Inputs {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(seed));
        let mut a: [u8; 32] = rng.gen();
        let mut r: [u8; 32] = rng.gen();
        a[31] |= 0x80;
        r[31] &= 0x7f;
        let mut k = [0i8; DIGITS];
        let mut s = [0i8; DIGITS];
        k[5] = -3;
        s[5] = 9;
        k[6] = 1;
        Inputs { a, r, k, s }
    }

    fn simulate(image: &Image, jobs: &[Inputs], options: Options) -> bench::Report {
        bench::simulate(image, jobs, options, &Stalls::random(7, 20, 20))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_instruction_agrees_with_the_interpreter_after_each_step() {
        let image = every_instruction();
        let jobs = [instruction_inputs(1), instruction_inputs(2)];
        let options = Options {
            debug: true,
            read_registers: true,
            contexts: MAX_CONTEXTS,
        };
        let report = simulate(&image, &jobs, options);
        assert_eq!(report.codes, [0, 0]);
        assert_eq!(report.retired, 2 * 33);
    }

    #[test]
    fn interleaved_contexts_agree_with_the_interpreter() {
        let image = every_instruction();
        let jobs: Vec<Inputs> = (0..20).map(instruction_inputs).collect();
        let options = Options {
            debug: false,
            read_registers: true,
            contexts: MAX_CONTEXTS,
        };
        let report = simulate(&image, &jobs, options);
        assert!(report.codes.iter().all(|&c| c == 0));
    }

    /// A smaller build: two contexts per fetch port, so each port's digit RAM is addressed by
    /// a context's number within its half.
    #[test]
    fn four_contexts_agree_with_the_interpreter() {
        let image = every_instruction();
        let jobs: Vec<Inputs> = (0..9).map(instruction_inputs).collect();
        let options = Options {
            debug: false,
            read_registers: true,
            contexts: 4,
        };
        let report = simulate(&image, &jobs, options);
        assert!(report.codes.iter().all(|&c| c == 0));
    }
}
