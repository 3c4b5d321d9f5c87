//! One signature context of the ECC engine: its program counter, flags, loop counters, the
//! instruction it is about to issue, and its scoreboard.
//!
//! The engine holds 16 of these ([`crate::ecc_engine`]). A slot fetches one instruction at a
//! time through the engine's fetch ports, decodes it into an issue packet (register and
//! constant addresses with table reads resolved from the current digit, the linear unit's
//! operation and operand choice, what the result writes), and says when it may issue: its
//! sources and destination have no result in flight (`pend`, `pend_f`). Sequencing resolves at
//! issue from the flags, counters and digits as they are after the operation; two cases
//! wait instead:
//!
//! - a branch on a flag the instruction itself writes through a unit (`Eq`, `Odd`, `Load`)
//!   resolves when that result lands (state `Flag`);
//! - a digit branch after `SetI` re-reads the digits at the new position first (state
//!   `Fetch` with `redigit`, then `Resolve`).
//!
//! After `Done` the slot waits for its results in flight (`Drain`), then offers its verdict
//! (`Done`) until the engine emits it.
//!
//! Readiness is registered: `ready_mul`/`ready_lin` are computed one cycle ahead from the
//! state after this cycle's retirements (each operand's pending bit, cleared when the result
//! landing now is for it), so the arbiters start from flip-flops. The engine
//! registers its grant and raises `issue` the next cycle, masking the slot's request
//! meanwhile; the slot drops readiness on `issue`, and only its own issue sets its pending
//! bits, so a registered `ready` is never optimistic.
//!
//! The packet is registered too, so the engine's operand multiplexers and register-file
//! addresses start from flip-flops: it is computed every cycle from the word, the digits and
//! the flags, and the engine reads it at issue, at least two cycles after the word arrived
//! (readiness takes one, the grant another). The flags it depends on (`CSel`'s choice,
//! `CNeg`'s sign) are ones the instruction reads, so they have no result in flight once it is
//! ready and cannot change under it.

use rust_hdl::prelude::*;

/// Where a slot is.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum SlotState {
    /// No signature.
    Idle,
    /// Asking a fetch port for the word at `pc` (and the digits at `I`).
    Fetch,
    /// The fetch was granted; the word and digits arrive this cycle.
    Arrive,
    /// Holding a decoded instruction, issuing when its operands are ready.
    Ready,
    /// Issued; the branch waits for the flag the instruction writes.
    Flag,
    /// The digits at the new `I` arrived; the branch resolves.
    Resolve,
    /// `Done` issued; waiting for results in flight.
    Drain,
    /// The verdict is ready.
    Done,
}

/// The issue packet's layout (`packet`), as the engine unpacks it, with the codes of its
/// fields.
///
/// | bits | field |
/// |---|---|
/// | 5:0 | first read register |
/// | 11:6 | second read register |
/// | 19:12 | constant address |
/// | 21:20 | the linear unit's first operand: 0 the first read port, 1 zero, 2 the context's input A or R (`Load`) |
/// | 23:22 | the second operand (both units): 0 the second read port, 1 the constant, 2 zero |
/// | 25:24 | the linear operation (`LinearOp::code`) |
/// | 31:26 | destination register |
/// | 32 | the result writes the register |
/// | 33 | the result writes a flag |
/// | 37:34 | that flag |
/// | 39:38 | the flag's value: 0 `a == b` (`Eq`), 1 `a` odd (`Odd`), 2 bit 255 of the loaded input (`Load`'s sign) |
/// | 40 | `Load` reads R (else A) |
/// | 52:41 | the instruction's address |
pub mod packet {}

/// One context.
#[derive(LogicBlock, Default)]
pub struct ContextSlot {
    /// The engine clock.
    pub clock: Signal<In, Clock>,
    /// Start a signature at `start_pc` with everything zeroed (only while idle).
    pub start: Signal<In, Bit>,
    /// Where the program starts.
    pub start_pc: Signal<In, Bits<12>>,
    /// The fetch request is granted this cycle (the port reads `pc` and `digit_index`).
    pub fetch_grant: Signal<In, Bit>,
    /// The fetched word, in the cycle after the grant.
    pub fetch_word: Signal<In, Bits<64>>,
    /// The digit of k at `I`, with the word.
    pub fetch_k: Signal<In, Bits<8>>,
    /// The digit of S at `I`, with the word.
    pub fetch_s: Signal<In, Bits<8>>,
    /// The instruction issues this cycle.
    pub issue: Signal<In, Bit>,
    /// A multiplier result of this context lands this cycle.
    pub mul_retire: Signal<In, Bit>,
    /// Its register.
    pub mul_reg: Signal<In, Bits<6>>,
    /// A linear result of this context lands this cycle.
    pub lin_retire: Signal<In, Bit>,
    /// It writes register `lin_reg`.
    pub lin_wreg: Signal<In, Bit>,
    /// Its register.
    pub lin_reg: Signal<In, Bits<6>>,
    /// It writes flag `lin_flag` with `lin_value`.
    pub lin_wflag: Signal<In, Bit>,
    /// Its flag.
    pub lin_flag: Signal<In, Bits<4>>,
    /// The flag's value.
    pub lin_value: Signal<In, Bit>,
    /// The verdict is taken this cycle.
    pub emit: Signal<In, Bit>,
    /// What a fetch reads: the word at `pc` (bits 11:0) and the digits at `I` (bits 19:12).
    pub fetch_address: Signal<Out, Bits<20>>,
    /// Asking for a fetch.
    pub wants_fetch: Signal<Out, Bit>,
    /// A multiplier instruction may issue.
    pub ready_mul: Signal<Out, Bit>,
    /// A linear-unit instruction may issue.
    pub ready_lin: Signal<Out, Bit>,
    /// No signature: inputs may be written and a run started.
    pub idle: Signal<Out, Bit>,
    /// The verdict is ready.
    pub done: Signal<Out, Bit>,
    /// The flags (bits 15:0) and the verdict code, `Done`'s operand (bits 19:16).
    pub verdict: Signal<Out, Bits<20>>,
    /// The flags.
    pub flags_out: Signal<Out, Bits<16>>,
    /// The issue packet (see [`packet`]).
    pub packet: Signal<Out, Bits<53>>,
    state: DFF<SlotState>,
    pc: DFF<Bits<12>>,
    word: DFF<Bits<64>>,
    k_digit: DFF<Bits<8>>,
    s_digit: DFF<Bits<8>>,
    k_index: DFF<Bits<8>>,
    s_index: DFF<Bits<8>>,
    flags: DFF<Bits<16>>,
    i: DFF<Bits<10>>,
    j: DFF<Bits<10>>,
    pend: DFF<Bits<64>>,
    pend_f: DFF<Bits<16>>,
    ready_mul_q: DFF<Bit>,
    ready_lin_q: DFF<Bit>,
    packet_q: DFF<Bits<53>>,
    redigit: DFF<Bit>,
    reg_a: Signal<Local, Bits<6>>,
    reg_b: Signal<Local, Bits<6>>,
    const_addr: Signal<Local, Bits<8>>,
    a_sel: Signal<Local, Bits<2>>,
    b_sel: Signal<Local, Bits<2>>,
    lin_op: Signal<Local, Bits<2>>,
    dest: Signal<Local, Bits<6>>,
    wreg: Signal<Local, Bit>,
    wflag: Signal<Local, Bit>,
    flag: Signal<Local, Bits<4>>,
    flag_src: Signal<Local, Bits<2>>,
    input_r: Signal<Local, Bit>,
    mark_wreg: Signal<Local, Bits<53>>,
    mark_wflag: Signal<Local, Bits<53>>,
    mark_input_r: Signal<Local, Bits<53>>,
    opcode: Signal<Local, Bits<6>>,
    f1: Signal<Local, Bits<6>>,
    f2: Signal<Local, Bits<6>>,
    f3: Signal<Local, Bits<6>>,
    imm: Signal<Local, Bits<8>>,
    seq: Signal<Local, Bits<4>>,
    seq_operand: Signal<Local, Bits<4>>,
    target: Signal<Local, Bits<12>>,
    uses_s_digit: Signal<Local, Bit>,
    negative: Signal<Local, Bit>,
    index: Signal<Local, Bits<8>>,
    fetch_k_magnitude: Signal<Local, Bits<8>>,
    fetch_s_magnitude: Signal<Local, Bits<8>>,
    fetch_k_index: Signal<Local, Bits<8>>,
    fetch_s_index: Signal<Local, Bits<8>>,
    coord: Signal<Local, Bits<2>>,
    swapped: Signal<Local, Bits<8>>,
    is_mul: Signal<Local, Bit>,
    check_b: Signal<Local, Bits<6>>,
    uses_a: Signal<Local, Bit>,
    uses_b: Signal<Local, Bit>,
    flag_a: Signal<Local, Bits<4>>,
    uses_flag_a: Signal<Local, Bit>,
    uses_flag_b: Signal<Local, Bit>,
    writes_flag_now: Signal<Local, Bit>,
    branches_on_flag: Signal<Local, Bit>,
    pend_after_mul: Signal<Local, Bits<64>>,
    pend_now: Signal<Local, Bits<64>>,
    pend_f_now: Signal<Local, Bits<16>>,
    lin_clears_reg: Signal<Local, Bit>,
    lin_clears_flag: Signal<Local, Bit>,
    busy_a: Signal<Local, Bit>,
    busy_b: Signal<Local, Bit>,
    busy_dest: Signal<Local, Bit>,
    busy_flag_a: Signal<Local, Bit>,
    busy_flag_b: Signal<Local, Bit>,
    busy_flag_dest: Signal<Local, Bit>,
    busy_flag_now: Signal<Local, Bit>,
    busy_flag_branch: Signal<Local, Bit>,
    registers_ready: Signal<Local, Bit>,
    flags_ready: Signal<Local, Bit>,
    operands_ready: Signal<Local, Bit>,
    flags_now: Signal<Local, Bits<16>>,
    flags_op: Signal<Local, Bits<16>>,
    i_op: Signal<Local, Bits<10>>,
    j_op: Signal<Local, Bits<10>>,
    next_i: Signal<Local, Bits<10>>,
    next_j: Signal<Local, Bits<10>>,
    taken: Signal<Local, Bit>,
    waits_flag: Signal<Local, Bit>,
    needs_digits: Signal<Local, Bit>,
    resolve: Signal<Local, Bit>,
}

impl Logic for ContextSlot {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            pc,
            word,
            k_digit,
            s_digit,
            k_index,
            s_index,
            flags,
            i,
            j,
            pend,
            pend_f,
            ready_mul_q,
            ready_lin_q,
            packet_q,
            redigit
        );

        // The instruction's fields: `verity_firmware::isa`'s encoding. Opcodes: 0 Nop, 1 Mul,
        // 2 Sqr, 3 MulC, 4 Add, 5 Sub, 6 LdC, 7 Load, 8 CNeg, 9 CSel, 10 Eq, 11 Odd, 12 FAnd,
        // 13 FOr, 14 MulT, 15 MulTC, 16 TNeg, 17 SetI, 18 SetJ; sequencing 0 Next, 1 Jump,
        // 2 IfFlag, 3 IfNotFlag, 4 IfDigitZero, 5 LoopI, 6 LoopJ, 7 Done, 8 IfBothDigitsZero.
        self.opcode.next = self.word.q.val().get_bits::<6>(0);
        self.f1.next = self.word.q.val().get_bits::<6>(6);
        self.f2.next = self.word.q.val().get_bits::<6>(12);
        self.f3.next = self.word.q.val().get_bits::<6>(18);
        self.imm.next = self.word.q.val().get_bits::<8>(24);
        self.seq.next = self.word.q.val().get_bits::<4>(32);
        self.seq_operand.next = self.word.q.val().get_bits::<4>(36);
        self.target.next = self.word.q.val().get_bits::<12>(40);

        // A digit's table index, (|d| − 1) / 2, is computed as the digits arrive, so the
        // decode below only chooses between the two.
        self.fetch_k_magnitude.next = self.fetch_k.val();
        if self.fetch_k.val().get_bit(7) {
            self.fetch_k_magnitude.next = 0u64.to_bits::<8>() - self.fetch_k.val();
        }
        self.fetch_k_index.next = 0.into();
        if self.fetch_k_magnitude.val().any() {
            self.fetch_k_index.next = (self.fetch_k_magnitude.val() - 1) >> 1;
        }
        self.fetch_s_magnitude.next = self.fetch_s.val();
        if self.fetch_s.val().get_bit(7) {
            self.fetch_s_magnitude.next = 0u64.to_bits::<8>() - self.fetch_s.val();
        }
        self.fetch_s_index.next = 0.into();
        if self.fetch_s_magnitude.val().any() {
            self.fetch_s_index.next = (self.fetch_s_magnitude.val() - 1) >> 1;
        }

        // The digit an operation names, its table index and the coordinate after the swap a
        // negative digit makes.
        self.coord.next = self.imm.val().get_bits::<2>(0);
        self.uses_s_digit.next = self.f3.val().get_bit(0);
        if self.opcode.val() == 14 {
            self.uses_s_digit.next = self.imm.val().get_bit(2);
        }
        if self.opcode.val() == 15 {
            self.coord.next = self.f3.val().get_bits::<2>(0);
            self.uses_s_digit.next = self.f3.val().get_bit(2);
        }
        self.negative.next = self.k_digit.q.val().get_bit(7);
        self.index.next = self.k_index.q.val();
        if self.uses_s_digit.val() {
            self.negative.next = self.s_digit.q.val().get_bit(7);
            self.index.next = self.s_index.q.val();
        }
        self.swapped.next = bit_cast::<8, 2>(self.coord.val());
        if self.negative.val() & (self.coord.val() == 0) {
            self.swapped.next = 1.into();
        }
        if self.negative.val() & (self.coord.val() == 1) {
            self.swapped.next = 0.into();
        }

        // The issue packet. The literals of `a_sel`, `b_sel` and `flag_src` are the values of
        // [`packet`]'s codes (rust-hdl's Verilog export cannot name
        // Rust constants).
        self.is_mul.next = (self.opcode.val() == 1)
            | (self.opcode.val() == 2)
            | (self.opcode.val() == 3)
            | (self.opcode.val() == 14)
            | (self.opcode.val() == 15);
        self.reg_a.next = self.f2.val();
        self.check_b.next = self.f3.val();
        if self.opcode.val() == 14 {
            self.check_b.next = self.f3.val()
                + (self.index.val().get_bits::<6>(0) << 2)
                + self.swapped.val().get_bits::<6>(0);
        }
        self.reg_b.next = self.check_b.val();
        if (self.opcode.val() == 2) | (self.opcode.val() == 8) | (self.opcode.val() == 16) {
            self.reg_b.next = self.f2.val();
        }
        if (self.opcode.val() == 9)
            & !self
                .flags
                .q
                .val()
                .get_bit(self.imm.val().get_bits::<4>(0).index())
        {
            self.reg_b.next = self.f3.val();
        }
        if (self.opcode.val() == 9)
            & self
                .flags
                .q
                .val()
                .get_bit(self.imm.val().get_bits::<4>(0).index())
        {
            self.reg_b.next = self.f2.val();
        }
        self.const_addr.next = self.imm.val();
        if self.opcode.val() == 15 {
            self.const_addr.next =
                self.imm.val() + (self.index.val() << 1) + self.index.val() + self.swapped.val();
        }
        self.a_sel.next = 0.into();
        if (self.opcode.val() == 0)
            | (self.opcode.val() == 6)
            | (self.opcode.val() == 8)
            | (self.opcode.val() == 9)
            | (self.opcode.val() == 12)
            | (self.opcode.val() == 13)
            | (self.opcode.val() == 16)
            | (self.opcode.val() == 17)
            | (self.opcode.val() == 18)
        {
            self.a_sel.next = 1.into();
        }
        if self.opcode.val() == 7 {
            self.a_sel.next = 2.into();
        }
        self.b_sel.next = 0.into();
        if (self.opcode.val() == 3) | (self.opcode.val() == 6) | (self.opcode.val() == 15) {
            self.b_sel.next = 1.into();
        }
        if (self.opcode.val() == 7) | (self.opcode.val() == 11) {
            self.b_sel.next = 2.into();
        }
        self.lin_op.next = 3.into();
        if self.opcode.val() == 4 {
            self.lin_op.next = 0.into();
        }
        if self.opcode.val() == 5 {
            self.lin_op.next = 1.into();
        }
        if self.opcode.val() == 7 {
            self.lin_op.next = 2.into();
        }
        if ((self.opcode.val() == 8)
            & self
                .flags
                .q
                .val()
                .get_bit(self.f3.val().get_bits::<4>(0).index()))
            | ((self.opcode.val() == 16) & self.negative.val())
        {
            self.lin_op.next = 1.into();
        }
        self.dest.next = self.f1.val();
        self.wreg.next = self.is_mul.val()
            | ((self.opcode.val() > 3) & (self.opcode.val() < 10))
            | (self.opcode.val() == 16);
        self.wflag.next =
            (self.opcode.val() == 7) | (self.opcode.val() == 10) | (self.opcode.val() == 11);
        self.flag.next = self.f1.val().get_bits::<4>(0);
        self.flag_src.next = 0.into();
        if self.opcode.val() == 7 {
            self.flag.next = self.f2.val().get_bits::<4>(0);
            self.flag_src.next = 2.into();
        }
        if self.opcode.val() == 11 {
            self.flag_src.next = 1.into();
        }
        self.input_r.next = self.imm.val().get_bit(0);

        // Readiness: what the instruction reads and writes has nothing in flight, after this
        // cycle's retirements.
        self.pend_after_mul.next = self.pend.q.val();
        if self.mul_retire.val() {
            self.pend_after_mul.next = self
                .pend
                .q
                .val()
                .replace_bit(self.mul_reg.val().index(), false);
        }
        self.pend_now.next = self.pend_after_mul.val();
        if self.lin_retire.val() & self.lin_wreg.val() {
            self.pend_now.next = self
                .pend_after_mul
                .val()
                .replace_bit(self.lin_reg.val().index(), false);
        }
        self.pend_f_now.next = self.pend_f.q.val();
        if self.lin_retire.val() & self.lin_wflag.val() {
            self.pend_f_now.next = self
                .pend_f
                .q
                .val()
                .replace_bit(self.lin_flag.val().index(), false);
        }
        self.uses_a.next = self.is_mul.val()
            | ((self.opcode.val() > 3)
                & (self.opcode.val() < 12)
                & (self.opcode.val() != 6)
                & (self.opcode.val() != 7))
            | (self.opcode.val() == 16);
        self.uses_b.next = (self.opcode.val() == 1)
            | (self.opcode.val() == 4)
            | (self.opcode.val() == 5)
            | (self.opcode.val() == 9)
            | (self.opcode.val() == 10)
            | (self.opcode.val() == 14);
        self.flag_a.next = self.f2.val().get_bits::<4>(0);
        if self.opcode.val() == 8 {
            self.flag_a.next = self.f3.val().get_bits::<4>(0);
        }
        if self.opcode.val() == 9 {
            self.flag_a.next = self.imm.val().get_bits::<4>(0);
        }
        self.uses_flag_a.next = (self.opcode.val() == 8)
            | (self.opcode.val() == 9)
            | (self.opcode.val() == 12)
            | (self.opcode.val() == 13);
        self.uses_flag_b.next = (self.opcode.val() == 12) | (self.opcode.val() == 13);
        self.writes_flag_now.next = (self.opcode.val() == 12) | (self.opcode.val() == 13);
        self.branches_on_flag.next = (self.seq.val() == 2) | (self.seq.val() == 3);
        // Each operand's pending bit as this cycle's retirements leave it: the bit before
        // them, unless a result landing now is for it. Comparing the landing register with the
        // operand beside the bit's multiplexer, instead of selecting from the updated bits,
        // keeps the result tags off the multiplexer's path.
        self.lin_clears_reg.next = self.lin_retire.val() & self.lin_wreg.val();
        self.lin_clears_flag.next = self.lin_retire.val() & self.lin_wflag.val();
        self.busy_a.next = self.pend.q.val().get_bit(self.f2.val().index())
            & !(self.mul_retire.val() & (self.mul_reg.val() == self.f2.val()))
            & !(self.lin_clears_reg.val() & (self.lin_reg.val() == self.f2.val()));
        self.busy_b.next = self.pend.q.val().get_bit(self.check_b.val().index())
            & !(self.mul_retire.val() & (self.mul_reg.val() == self.check_b.val()))
            & !(self.lin_clears_reg.val() & (self.lin_reg.val() == self.check_b.val()));
        self.busy_dest.next = self.pend.q.val().get_bit(self.f1.val().index())
            & !(self.mul_retire.val() & (self.mul_reg.val() == self.f1.val()))
            & !(self.lin_clears_reg.val() & (self.lin_reg.val() == self.f1.val()));
        self.busy_flag_a.next = self.pend_f.q.val().get_bit(self.flag_a.val().index())
            & !(self.lin_clears_flag.val() & (self.lin_flag.val() == self.flag_a.val()));
        self.busy_flag_b.next = self
            .pend_f
            .q
            .val()
            .get_bit(self.f3.val().get_bits::<4>(0).index())
            & !(self.lin_clears_flag.val()
                & (self.lin_flag.val() == self.f3.val().get_bits::<4>(0)));
        self.busy_flag_dest.next = self.pend_f.q.val().get_bit(self.flag.val().index())
            & !(self.lin_clears_flag.val() & (self.lin_flag.val() == self.flag.val()));
        self.busy_flag_now.next = self
            .pend_f
            .q
            .val()
            .get_bit(self.f1.val().get_bits::<4>(0).index())
            & !(self.lin_clears_flag.val()
                & (self.lin_flag.val() == self.f1.val().get_bits::<4>(0)));
        self.busy_flag_branch.next = self.pend_f.q.val().get_bit(self.seq_operand.val().index())
            & !(self.lin_clears_flag.val() & (self.lin_flag.val() == self.seq_operand.val()));
        // Written as balanced trees: Yosys keeps a flat chain of `&` as written.
        self.registers_ready.next = (!(self.uses_a.val() & self.busy_a.val())
            & !(self.uses_b.val() & self.busy_b.val()))
            & !(self.wreg.val() & self.busy_dest.val());
        self.flags_ready.next = (!(self.uses_flag_a.val() & self.busy_flag_a.val())
            & !(self.uses_flag_b.val() & self.busy_flag_b.val()))
            & ((!(self.wflag.val() & self.busy_flag_dest.val())
                & !(self.writes_flag_now.val() & self.busy_flag_now.val()))
                & !(self.branches_on_flag.val() & self.busy_flag_branch.val()));
        self.operands_ready.next = self.registers_ready.val() & self.flags_ready.val();
        self.ready_mul_q.d.next = (self.state.q.val() == SlotState::Ready)
            & !self.issue.val()
            & self.is_mul.val()
            & self.operands_ready.val();
        self.ready_lin_q.d.next = (self.state.q.val() == SlotState::Ready)
            & !self.issue.val()
            & !self.is_mul.val()
            & self.operands_ready.val();

        // Sequencing, on the flags and counters as the operation leaves them (and the flags
        // as this cycle's linear result leaves them).
        self.flags_now.next = self.flags.q.val();
        if self.lin_retire.val() & self.lin_wflag.val() {
            self.flags_now.next = self
                .flags
                .q
                .val()
                .replace_bit(self.lin_flag.val().index(), self.lin_value.val());
        }
        self.flags_op.next = self.flags_now.val();
        if self.opcode.val() == 12 {
            self.flags_op.next = self.flags_now.val().replace_bit(
                self.f1.val().get_bits::<4>(0).index(),
                self.flags_now
                    .val()
                    .get_bit(self.f2.val().get_bits::<4>(0).index())
                    & self
                        .flags_now
                        .val()
                        .get_bit(self.f3.val().get_bits::<4>(0).index()),
            );
        }
        if self.opcode.val() == 13 {
            self.flags_op.next = self.flags_now.val().replace_bit(
                self.f1.val().get_bits::<4>(0).index(),
                self.flags_now
                    .val()
                    .get_bit(self.f2.val().get_bits::<4>(0).index())
                    | self
                        .flags_now
                        .val()
                        .get_bit(self.f3.val().get_bits::<4>(0).index()),
            );
        }
        self.i_op.next = self.i.q.val();
        if self.opcode.val() == 17 {
            self.i_op.next = bit_cast::<10, 8>(self.imm.val());
        }
        self.j_op.next = self.j.q.val();
        if self.opcode.val() == 18 {
            self.j_op.next = bit_cast::<10, 8>(self.imm.val());
        }
        self.next_i.next = self.i_op.val() - 1;
        self.next_j.next = self.j_op.val() - 1;
        self.taken.next = false;
        if self.seq.val() == 1 {
            self.taken.next = true;
        }
        if self.seq.val() == 2 {
            self.taken.next = self.flags_op.val().get_bit(self.seq_operand.val().index());
        }
        if self.seq.val() == 3 {
            self.taken.next = !self.flags_op.val().get_bit(self.seq_operand.val().index());
        }
        if self.seq.val() == 4 {
            self.taken.next = !self.k_digit.q.val().any();
            if self.seq_operand.val().get_bit(0) {
                self.taken.next = !self.s_digit.q.val().any();
            }
        }
        if self.seq.val() == 5 {
            self.taken.next = !self.next_i.val().get_bit(9);
        }
        if self.seq.val() == 6 {
            self.taken.next = !self.next_j.val().get_bit(9);
        }
        if self.seq.val() == 8 {
            self.taken.next = !self.k_digit.q.val().any() & !self.s_digit.q.val().any();
        }
        self.waits_flag.next = self.branches_on_flag.val()
            & self.wflag.val()
            & (self.flag.val() == self.seq_operand.val());
        self.needs_digits.next =
            (self.opcode.val() == 17) & ((self.seq.val() == 4) | (self.seq.val() == 8));

        // Outputs.
        self.fetch_address.next = bit_cast::<20, 12>(self.pc.q.val())
            | (bit_cast::<20, 8>(self.i.q.val().get_bits::<8>(0)) << 12);
        self.mark_wreg.next = 0.into();
        if self.wreg.val() {
            self.mark_wreg.next = 0x1_0000_0000_u64.into();
        }
        self.mark_wflag.next = 0.into();
        if self.wflag.val() {
            self.mark_wflag.next = 0x2_0000_0000_u64.into();
        }
        self.mark_input_r.next = 0.into();
        if self.input_r.val() {
            self.mark_input_r.next = 0x100_0000_0000_u64.into();
        }
        self.packet_q.d.next = bit_cast::<53, 6>(self.reg_a.val())
            | (bit_cast::<53, 6>(self.reg_b.val()) << 6)
            | (bit_cast::<53, 8>(self.const_addr.val()) << 12)
            | (bit_cast::<53, 2>(self.a_sel.val()) << 20)
            | (bit_cast::<53, 2>(self.b_sel.val()) << 22)
            | (bit_cast::<53, 2>(self.lin_op.val()) << 24)
            | (bit_cast::<53, 6>(self.dest.val()) << 26)
            | self.mark_wreg.val()
            | self.mark_wflag.val()
            | (bit_cast::<53, 4>(self.flag.val()) << 34)
            | (bit_cast::<53, 2>(self.flag_src.val()) << 38)
            | self.mark_input_r.val()
            | (bit_cast::<53, 12>(self.pc.q.val()) << 41);
        self.packet.next = self.packet_q.q.val();
        self.wants_fetch.next = self.state.q.val() == SlotState::Fetch;
        self.ready_mul.next = self.ready_mul_q.q.val();
        self.ready_lin.next = self.ready_lin_q.q.val();
        self.idle.next = self.state.q.val() == SlotState::Idle;
        self.done.next = self.state.q.val() == SlotState::Done;
        self.verdict.next = bit_cast::<20, 16>(self.flags.q.val())
            | (bit_cast::<20, 4>(self.seq_operand.val()) << 16);
        self.flags_out.next = self.flags.q.val();

        // Results landing: clear their pending bits, write their flags.
        self.pend.d.next = self.pend_now.val();
        self.pend_f.d.next = self.pend_f_now.val();
        self.flags.d.next = self.flags_now.val();

        self.resolve.next = false;
        match self.state.q.val() {
            SlotState::Idle => {
                if self.start.val() {
                    self.pc.d.next = self.start_pc.val();
                    self.flags.d.next = 0.into();
                    self.i.d.next = 0.into();
                    self.j.d.next = 0.into();
                    self.pend.d.next = 0.into();
                    self.pend_f.d.next = 0.into();
                    self.redigit.d.next = false;
                    self.state.d.next = SlotState::Fetch;
                }
            }
            SlotState::Fetch => {
                if self.fetch_grant.val() {
                    self.state.d.next = SlotState::Arrive;
                }
            }
            SlotState::Arrive => {
                self.k_digit.d.next = self.fetch_k.val();
                self.s_digit.d.next = self.fetch_s.val();
                self.k_index.d.next = self.fetch_k_index.val();
                self.s_index.d.next = self.fetch_s_index.val();
                self.redigit.d.next = false;
                if self.redigit.q.val() {
                    self.state.d.next = SlotState::Resolve;
                } else {
                    self.word.d.next = self.fetch_word.val();
                    self.state.d.next = SlotState::Ready;
                }
            }
            SlotState::Ready => {
                if self.issue.val() {
                    // Only this issue sets pending bits; nothing of this context retires
                    // into the destination (it was not pending).
                    if self.wreg.val() {
                        self.pend.d.next =
                            self.pend_now.val().replace_bit(self.f1.val().index(), true);
                    }
                    if self.wflag.val() {
                        self.pend_f.d.next = self
                            .pend_f_now
                            .val()
                            .replace_bit(self.flag.val().index(), true);
                    }
                    if self.writes_flag_now.val() {
                        self.flags.d.next = self.flags_op.val();
                    }
                    self.i.d.next = self.i_op.val();
                    self.j.d.next = self.j_op.val();
                    if self.waits_flag.val() {
                        self.state.d.next = SlotState::Flag;
                    } else if self.needs_digits.val() {
                        self.redigit.d.next = true;
                        self.state.d.next = SlotState::Fetch;
                    } else {
                        self.resolve.next = true;
                    }
                }
            }
            SlotState::Flag => {
                if !self
                    .pend_f_now
                    .val()
                    .get_bit(self.seq_operand.val().index())
                {
                    self.resolve.next = true;
                }
            }
            SlotState::Resolve => {
                self.resolve.next = true;
            }
            SlotState::Drain => {
                if !self.pend.q.val().any() & !self.pend_f.q.val().any() {
                    self.state.d.next = SlotState::Done;
                }
            }
            SlotState::Done => {
                if self.emit.val() {
                    self.state.d.next = SlotState::Idle;
                }
            }
        }
        if self.resolve.val() {
            self.state.d.next = SlotState::Fetch;
            self.pc.d.next = self.pc.q.val() + 1;
            if self.taken.val() {
                self.pc.d.next = self.target.val();
            }
            if self.seq.val() == 5 {
                self.i.d.next = self.next_i.val();
            }
            if self.seq.val() == 6 {
                self.j.d.next = self.next_j.val();
            }
            if self.seq.val() == 7 {
                self.state.d.next = SlotState::Drain;
            }
        }
    }
}
