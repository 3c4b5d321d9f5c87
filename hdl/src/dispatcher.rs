//! The dispatcher: verification jobs onto free engine contexts, and every response back.
//!
//! A job comes from the request hasher (tag, A, R, transaction id, or a record error) while
//! the scalar unit takes its hash and S; the scalar unit's digit positions follow. For a
//! request the dispatcher
//!
//! 1. takes a free (engine, context) slot from a queue of free slots (filled after reset, one
//!    context of every engine in turn, so work spreads over the engines);
//! 2. writes the 256 positions into the context's digit RAMs (command 2 then 3 per position),
//!    then A (4) and R (5), and starts it at the image's entry (6), recording the tag, the
//!    transaction id and the cycle in the slot's entry of a table;
//! 3. when the engine gives that context's verdict, reads the table and sends the response
//!    (tag, verdict code, engine, cycles spent, transaction id), and frees the slot.
//!
//! A job whose S is not canonical (the scalar unit says so with its first position) runs on no
//! engine: its positions are drained and it is answered `NonCanonicalS` with engine 255. A
//! record error is answered at once (status 1). An engine code above the last verdict code is
//! an engine fault: the slot is freed and a beat flagged `resp_fault` takes the response's
//! place, for the card to count and not send (the host sees the tag unanswered). Responses are
//! 64-byte records as `verity_firmware::abi` lays them out, byte 0 in bits 7:0, their engine
//! numbered from the dispatcher's first (a card of several lanes numbers its engines
//! across them).
//!
//! The engines share the command bus (`cmd_*`); `cmd_valid[e]` addresses engine `e`. Up to 16
//! engines of up to 16 contexts each.

use rust_hdl::prelude::*;

use crate::ecc_engine::MAX_CONTEXTS;
use crate::or_tree::OrTree;
use crate::round_robin::RoundRobin;

/// The most engines a dispatcher serves (engine numbers are 4 bits in its slot queue).
pub const MAX_ENGINES: usize = 16;

/// Where the dispatcher is with the current job.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum DispatchState {
    /// Filling the free-slot queue after reset.
    Init,
    /// Waiting for a job.
    Idle,
    /// A request: waiting for its first digit position and a free slot.
    Choose,
    /// The slot popped from the queue arrives.
    Slot,
    /// Writing digit positions.
    Digits,
    /// Writing A.
    SendA,
    /// Writing R.
    SendR,
    /// Starting the context.
    Run,
    /// A non-canonical S: taking its positions without an engine.
    Drain,
    /// Answering without an engine.
    Answer,
}

/// The dispatcher.
#[derive(LogicBlock)]
pub struct Dispatcher {
    /// The card clock.
    pub clock: Signal<In, Clock>,
    /// A job is offered.
    pub job_valid: Signal<In, Bit>,
    /// The dispatcher takes it.
    pub job_ready: Signal<Out, Bit>,
    /// 0: a request (its positions follow on `dig_*`); 1: a record error.
    pub job_kind: Signal<In, Bits<2>>,
    /// The record error's code.
    pub job_code: Signal<In, Bits<3>>,
    /// The tag.
    pub job_tag: Signal<In, Bits<64>>,
    /// A.
    pub job_a: Signal<In, Bits<256>>,
    /// R.
    pub job_r: Signal<In, Bits<256>>,
    /// The transaction id (zero for a record error).
    pub job_txid: Signal<In, Bits<256>>,
    /// The card's epoch when the job was taken, returned with its response (the card drops
    /// responses to jobs taken before a `CONTROL.RESET`).
    pub job_epoch: Signal<In, Bit>,
    /// A digit position is offered (the scalar unit's output).
    pub dig_valid: Signal<In, Bit>,
    /// The dispatcher takes it.
    pub dig_ready: Signal<Out, Bit>,
    /// The position.
    pub dig_position: Signal<In, Bits<8>>,
    /// k's digit.
    pub dig_k: Signal<In, Bits<8>>,
    /// S's digit.
    pub dig_s: Signal<In, Bits<8>>,
    /// S is canonical.
    pub dig_s_ok: Signal<In, Bit>,
    /// The job's last position.
    pub dig_last: Signal<In, Bit>,
    /// The image's entry point.
    pub entry: Signal<In, Bits<12>>,
    /// A command for engine `e`.
    pub cmd_valid: Vec<Signal<Out, Bit>>,
    /// Engine `e` takes it.
    pub cmd_ready: Vec<Signal<In, Bit>>,
    /// The command (the engine's `in_cmd`).
    pub cmd_kind: Signal<Out, Bits<4>>,
    /// Its address.
    pub cmd_addr: Signal<Out, Bits<12>>,
    /// Its data.
    pub cmd_data: Signal<Out, Bits<256>>,
    /// Engine `e` offers an output beat.
    pub ver_valid: Vec<Signal<In, Bit>>,
    /// The dispatcher takes it.
    pub ver_ready: Vec<Signal<Out, Bit>>,
    /// Its context.
    pub ver_ctx: Vec<Signal<In, Bits<4>>>,
    /// Its `Done` code.
    pub ver_code: Vec<Signal<In, Bits<12>>>,
    /// A response is offered.
    pub resp_valid: Signal<Out, Bit>,
    /// The host side takes it.
    pub resp_ready: Signal<In, Bit>,
    /// The response record.
    pub resp_data: Signal<Out, Bits<512>>,
    /// The beat is no response but an engine fault's notice (its tag unanswered).
    pub resp_fault: Signal<Out, Bit>,
    /// The epoch of the beat's job.
    pub resp_epoch: Signal<Out, Bit>,
    engine_ids: Vec<Constant<Bits<4>>>,
    last_engine: Constant<Bits<4>>,
    last_context: Constant<Bits<4>>,
    slots: Constant<Bits<9>>,
    free_slots: RAM<Bits<8>, 8>,
    slot_table: RAM<Bits<353>, 8>,
    verdict_pick: RoundRobin,
    ready_of_slot: OrTree<Bit>,
    picked_ctx: OrTree<Bits<4>>,
    picked_code: OrTree<Bits<12>>,
    state: DFF<DispatchState>,
    now: DFF<Bits<32>>,
    free_read: DFF<Bits<8>>,
    free_write: DFF<Bits<8>>,
    free_count: DFF<Bits<9>>,
    init_engine: DFF<Bits<4>>,
    init_context: DFF<Bits<4>>,
    job_kind_q: DFF<Bits<2>>,
    job_code_q: DFF<Bits<3>>,
    tag: DFF<Bits<64>>,
    a: DFF<Bits<256>>,
    r: DFF<Bits<256>>,
    txid: DFF<Bits<256>>,
    engine: DFF<Bits<4>>,
    slot_ctx: DFF<Bits<4>>,
    s_half: DFF<Bit>,
    // The verdict path: a verdict taken (its table entry being read), then the response.
    v_valid: DFF<Bit>,
    v_engine: DFF<Bits<4>>,
    v_code: DFF<Bits<12>>,
    resp_pending: DFF<Bit>,
    resp_q: DFF<Bits<512>>,
    resp_fault_q: DFF<Bit>,
    epoch: DFF<Bit>,
    resp_epoch_q: DFF<Bit>,
    pop: Signal<Local, Bit>,
    push: Signal<Local, Bit>,
    init_write: Signal<Local, Bit>,
    cmd_taken: Signal<Local, Bit>,
    claim: Signal<Local, Bit>,
    answer: Signal<Local, Bit>,
    answer_status: Signal<Local, Bits<8>>,
    answer_code: Signal<Local, Bits<8>>,
    entry_tag: Signal<Local, Bits<64>>,
    entry_txid: Signal<Local, Bits<256>>,
    entry_start: Signal<Local, Bits<32>>,
    engine_number: Signal<Local, Bits<8>>,
    loading: Signal<Local, Bit>,
    spent: Signal<Local, Bits<32>>,
    no_engine: Constant<Bits<512>>,
    first_engine: Constant<Bits<8>>,
    epoch_bit: Constant<Bits<353>>,
    epoch_field: Signal<Local, Bits<353>>,
}

impl Dispatcher {
    /// A dispatcher over `engines` engines of `contexts` contexts each, numbered from
    /// `first_engine` in its responses.
    pub fn new(engines: usize, contexts: usize, first_engine: u8) -> Self {
        assert!(
            (1..=MAX_ENGINES).contains(&engines) && (1..=MAX_CONTEXTS).contains(&contexts),
            "1 to 16 engines of 1 to 16 contexts"
        );
        Self {
            clock: Default::default(),
            job_valid: Default::default(),
            job_ready: Default::default(),
            job_kind: Default::default(),
            job_code: Default::default(),
            job_tag: Default::default(),
            job_a: Default::default(),
            job_r: Default::default(),
            job_txid: Default::default(),
            job_epoch: Default::default(),
            dig_valid: Default::default(),
            dig_ready: Default::default(),
            dig_position: Default::default(),
            dig_k: Default::default(),
            dig_s: Default::default(),
            dig_s_ok: Default::default(),
            dig_last: Default::default(),
            entry: Default::default(),
            cmd_valid: (0..engines).map(|_| Default::default()).collect(),
            cmd_ready: (0..engines).map(|_| Default::default()).collect(),
            cmd_kind: Default::default(),
            cmd_addr: Default::default(),
            cmd_data: Default::default(),
            ver_valid: (0..engines).map(|_| Default::default()).collect(),
            ver_ready: (0..engines).map(|_| Default::default()).collect(),
            ver_ctx: (0..engines).map(|_| Default::default()).collect(),
            ver_code: (0..engines).map(|_| Default::default()).collect(),
            resp_valid: Default::default(),
            resp_ready: Default::default(),
            resp_data: Default::default(),
            resp_fault: Default::default(),
            resp_epoch: Default::default(),
            engine_ids: (0..engines)
                .map(|e| Constant::new(bits::<4>(e as u64)))
                .collect(),
            last_engine: Constant::new(bits::<4>(engines as u64 - 1)),
            last_context: Constant::new(bits::<4>(contexts as u64 - 1)),
            slots: Constant::new(bits::<9>((engines * contexts) as u64)),
            free_slots: Default::default(),
            slot_table: Default::default(),
            verdict_pick: RoundRobin::new(engines),
            ready_of_slot: OrTree::new(engines),
            picked_ctx: OrTree::new(engines),
            picked_code: OrTree::new(engines),
            state: Default::default(),
            now: Default::default(),
            free_read: Default::default(),
            free_write: Default::default(),
            free_count: Default::default(),
            init_engine: Default::default(),
            init_context: Default::default(),
            job_kind_q: Default::default(),
            job_code_q: Default::default(),
            tag: Default::default(),
            a: Default::default(),
            r: Default::default(),
            txid: Default::default(),
            engine: Default::default(),
            slot_ctx: Default::default(),
            s_half: Default::default(),
            v_valid: Default::default(),
            v_engine: Default::default(),
            v_code: Default::default(),
            resp_pending: Default::default(),
            resp_q: Default::default(),
            resp_fault_q: Default::default(),
            epoch: Default::default(),
            resp_epoch_q: Default::default(),
            pop: Default::default(),
            push: Default::default(),
            init_write: Default::default(),
            cmd_taken: Default::default(),
            claim: Default::default(),
            answer: Default::default(),
            answer_status: Default::default(),
            answer_code: Default::default(),
            entry_tag: Default::default(),
            entry_txid: Default::default(),
            entry_start: Default::default(),
            engine_number: Default::default(),
            loading: Default::default(),
            spent: Default::default(),
            no_engine: Constant::new(bits::<512>(u64::from(verity_firmware::abi::NO_ENGINE)) << 80),
            first_engine: Constant::new(bits::<8>(u64::from(first_engine))),
            epoch_bit: Constant::new(bits::<353>(1) << 352),
            epoch_field: Default::default(),
        }
    }
}

impl Logic for Dispatcher {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            now,
            free_read,
            free_write,
            free_count,
            init_engine,
            init_context,
            job_kind_q,
            job_code_q,
            tag,
            a,
            r,
            txid,
            engine,
            slot_ctx,
            s_half,
            v_valid,
            v_engine,
            v_code,
            resp_pending,
            resp_q,
            resp_fault_q,
            epoch,
            resp_epoch_q
        );
        clock!(self, clock, verdict_pick);
        self.free_slots.read_clock.next = self.clock.val();
        self.free_slots.write_clock.next = self.clock.val();
        self.slot_table.read_clock.next = self.clock.val();
        self.slot_table.write_clock.next = self.clock.val();
        self.now.d.next = self.now.q.val() + 1;

        // The command bus: the current job's engine, and whether it takes the command.
        for e in 0..self.cmd_valid.len() {
            self.ready_of_slot.term[e].next =
                self.cmd_ready[e].val() & (self.engine_ids[e].val() == self.engine.q.val());
        }
        self.cmd_taken.next = self.ready_of_slot.any.val();
        self.loading.next = (self.state.q.val() == DispatchState::Digits)
            | (self.state.q.val() == DispatchState::SendA)
            | (self.state.q.val() == DispatchState::SendR)
            | (self.state.q.val() == DispatchState::Run);
        for e in 0..self.cmd_valid.len() {
            self.cmd_valid[e].next = self.loading.val()
                & (self.engine_ids[e].val() == self.engine.q.val())
                & ((self.state.q.val() != DispatchState::Digits) | self.dig_valid.val());
        }
        self.cmd_kind.next = 2.into();
        self.cmd_addr.next = (bit_cast::<12, 4>(self.slot_ctx.q.val()) << 8)
            | bit_cast::<12, 8>(self.dig_position.val());
        self.cmd_data.next = bit_cast::<256, 8>(self.dig_k.val());
        if self.s_half.q.val() {
            self.cmd_kind.next = 3.into();
            self.cmd_data.next = bit_cast::<256, 8>(self.dig_s.val());
        }
        if self.state.q.val() == DispatchState::SendA {
            self.cmd_kind.next = 4.into();
            self.cmd_addr.next = bit_cast::<12, 4>(self.slot_ctx.q.val());
            self.cmd_data.next = self.a.q.val();
        }
        if self.state.q.val() == DispatchState::SendR {
            self.cmd_kind.next = 5.into();
            self.cmd_addr.next = bit_cast::<12, 4>(self.slot_ctx.q.val());
            self.cmd_data.next = self.r.q.val();
        }
        if self.state.q.val() == DispatchState::Run {
            self.cmd_kind.next = 6.into();
            self.cmd_addr.next = self.entry.val();
            self.cmd_data.next = bit_cast::<256, 4>(self.slot_ctx.q.val());
        }

        // The free-slot queue. After reset it is filled with context 0 of every engine, then
        // context 1 of every engine, and so on; a pop is read the cycle after.
        self.free_slots.read_address.next = self.free_read.q.val();
        self.init_write.next = self.state.q.val() == DispatchState::Init;
        self.pop.next = false;
        self.free_slots.write_address.next = self.free_write.q.val();
        self.free_slots.write_data.next = (bit_cast::<8, 4>(self.init_engine.q.val()) << 4)
            | bit_cast::<8, 4>(self.init_context.q.val());
        if self.init_write.val() {
            self.init_engine.d.next = self.init_engine.q.val() + 1;
            if self.init_engine.q.val() == self.last_engine.val() {
                self.init_engine.d.next = 0.into();
                self.init_context.d.next = self.init_context.q.val() + 1;
                if self.init_context.q.val() == self.last_context.val() {
                    self.state.d.next = DispatchState::Idle;
                }
            }
        }

        // A job.
        self.job_ready.next = self.state.q.val() == DispatchState::Idle;
        if self.job_valid.val() & (self.state.q.val() == DispatchState::Idle) {
            self.job_kind_q.d.next = self.job_kind.val();
            self.job_code_q.d.next = self.job_code.val();
            self.tag.d.next = self.job_tag.val();
            self.a.d.next = self.job_a.val();
            self.r.d.next = self.job_r.val();
            self.txid.d.next = self.job_txid.val();
            self.epoch.d.next = self.job_epoch.val();
            self.state.d.next = DispatchState::Choose;
            if self.job_kind.val() != 0 {
                self.state.d.next = DispatchState::Answer;
            }
        }
        if (self.state.q.val() == DispatchState::Choose) & self.dig_valid.val() {
            if !self.dig_s_ok.val() {
                self.state.d.next = DispatchState::Drain;
            } else if self.free_count.q.val() != 0 {
                self.pop.next = true;
                self.state.d.next = DispatchState::Slot;
            }
        }
        if self.state.q.val() == DispatchState::Slot {
            self.engine.d.next = self.free_slots.read_data.val().get_bits::<4>(4);
            self.slot_ctx.d.next = self.free_slots.read_data.val().get_bits::<4>(0);
            self.s_half.d.next = false;
            self.state.d.next = DispatchState::Digits;
        }

        // Each position is two commands, k's digit then S's; the position is taken with the
        // second.
        self.dig_ready.next = (self.state.q.val() == DispatchState::Drain)
            | ((self.state.q.val() == DispatchState::Digits)
                & self.s_half.q.val()
                & self.cmd_taken.val());
        if (self.state.q.val() == DispatchState::Digits)
            & self.dig_valid.val()
            & self.cmd_taken.val()
        {
            self.s_half.d.next = !self.s_half.q.val();
            if self.s_half.q.val() & self.dig_last.val() {
                self.state.d.next = DispatchState::SendA;
            }
        }
        if (self.state.q.val() == DispatchState::SendA) & self.cmd_taken.val() {
            self.state.d.next = DispatchState::SendR;
        }
        if (self.state.q.val() == DispatchState::SendR) & self.cmd_taken.val() {
            self.state.d.next = DispatchState::Run;
        }
        // The slot's entry: tag 63:0, transaction id 319:64, start 351:320, epoch 352.
        self.slot_table.write_address.next =
            (bit_cast::<8, 4>(self.engine.q.val()) << 4) | bit_cast::<8, 4>(self.slot_ctx.q.val());
        self.epoch_field.next = 0.into();
        if self.epoch.q.val() {
            self.epoch_field.next = self.epoch_bit.val();
        }
        self.slot_table.write_data.next = bit_cast::<353, 64>(self.tag.q.val())
            | (bit_cast::<353, 256>(self.txid.q.val()) << 64)
            | (bit_cast::<353, 32>(self.now.q.val()) << 320)
            | self.epoch_field.val();
        self.slot_table.write_enable.next =
            (self.state.q.val() == DispatchState::Run) & self.cmd_taken.val();
        if (self.state.q.val() == DispatchState::Run) & self.cmd_taken.val() {
            self.state.d.next = DispatchState::Idle;
        }
        if (self.state.q.val() == DispatchState::Drain) & self.dig_valid.val() & self.dig_last.val()
        {
            self.state.d.next = DispatchState::Answer;
        }

        // Verdicts: one engine's a cycle, when the response register will be free; its table
        // entry is read, and the response built the next cycle.
        for e in 0..self.ver_valid.len() {
            self.verdict_pick.req[e].next = self.ver_valid[e].val();
            self.picked_ctx.term[e].next = 0.into();
            self.picked_code.term[e].next = 0.into();
            if self.verdict_pick.grant[e].val() {
                self.picked_ctx.term[e].next = self.ver_ctx[e].val();
                self.picked_code.term[e].next = self.ver_code[e].val();
            }
        }
        self.claim.next = self.verdict_pick.valid.val()
            & !self.v_valid.q.val()
            & (!self.resp_pending.q.val() | self.resp_ready.val());
        self.verdict_pick.take.next = self.claim.val();
        for e in 0..self.ver_valid.len() {
            self.ver_ready[e].next = self.claim.val() & self.verdict_pick.grant[e].val();
        }
        self.slot_table.read_address.next = (bit_cast::<8, 4>(self.verdict_pick.index.val()) << 4)
            | bit_cast::<8, 4>(self.picked_ctx.any.val());
        self.v_valid.d.next = self.claim.val();
        self.v_engine.d.next = self.verdict_pick.index.val();
        self.v_code.d.next = self.picked_code.any.val();
        // The slot goes back on the queue as its verdict is taken.
        self.push.next = self.claim.val();
        if !self.init_write.val() {
            self.free_slots.write_data.next = (bit_cast::<8, 4>(self.verdict_pick.index.val())
                << 4)
                | bit_cast::<8, 4>(self.picked_ctx.any.val());
        }
        self.free_slots.write_enable.next = self.init_write.val() | self.push.val();
        if self.init_write.val() | self.push.val() {
            self.free_write.d.next = self.free_write.q.val() + 1;
        }
        if self.pop.val() {
            self.free_read.d.next = self.free_read.q.val() + 1;
        }
        if (self.init_write.val() | self.push.val()) & !self.pop.val() {
            self.free_count.d.next = self.free_count.q.val() + 1;
        }
        if self.pop.val() & !(self.init_write.val() | self.push.val()) {
            self.free_count.d.next = self.free_count.q.val() - 1;
        }

        // Responses. The register holds one until taken; a verdict whose table entry is in
        // hand goes first, an answer without an engine when nothing else claims it.
        if self.resp_ready.val() {
            self.resp_pending.d.next = false;
        }
        self.entry_tag.next = self.slot_table.read_data.val().get_bits::<64>(0);
        self.entry_txid.next = self.slot_table.read_data.val().get_bits::<256>(64);
        self.entry_start.next = self.slot_table.read_data.val().get_bits::<32>(320);
        self.spent.next = self.now.q.val() - self.entry_start.val();
        self.engine_number.next = bit_cast::<8, 4>(self.v_engine.q.val()) + self.first_engine.val();
        if self.v_valid.q.val() {
            self.resp_pending.d.next = true;
            self.resp_fault_q.d.next = self.v_code.q.val() > 5;
            self.resp_epoch_q.d.next = self.slot_table.read_data.val().get_bit(352);
            self.resp_q.d.next = bit_cast::<512, 64>(self.entry_tag.val())
                | (bit_cast::<512, 8>(self.v_code.q.val().get_bits::<8>(0)) << 72)
                | (bit_cast::<512, 8>(self.engine_number.val()) << 80)
                | (bit_cast::<512, 32>(self.spent.val()) << 96)
                | (bit_cast::<512, 256>(self.entry_txid.val()) << 256);
        }
        self.answer.next = (self.state.q.val() == DispatchState::Answer)
            & !self.v_valid.q.val()
            & !self.claim.val()
            & (!self.resp_pending.q.val() | self.resp_ready.val());
        // A record error: status 1 and its code; a non-canonical S: status 0, code 2.
        self.answer_status.next = 0.into();
        self.answer_code.next = 2.into();
        if self.job_kind_q.q.val() != 0 {
            self.answer_status.next = 1.into();
            self.answer_code.next = bit_cast::<8, 3>(self.job_code_q.q.val());
        }
        if self.answer.val() {
            self.resp_pending.d.next = true;
            self.resp_fault_q.d.next = false;
            self.resp_epoch_q.d.next = self.epoch.q.val();
            self.resp_q.d.next = bit_cast::<512, 64>(self.tag.q.val())
                | (bit_cast::<512, 8>(self.answer_status.val()) << 64)
                | (bit_cast::<512, 8>(self.answer_code.val()) << 72)
                | self.no_engine.val()
                | (bit_cast::<512, 256>(self.txid.q.val()) << 256);
            self.state.d.next = DispatchState::Idle;
        }
        self.resp_valid.next = self.resp_pending.q.val();
        self.resp_data.next = self.resp_q.q.val();
        self.resp_fault.next = self.resp_fault_q.q.val();
        self.resp_epoch.next = self.resp_epoch_q.q.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;
    use rand::{Rng, SeedableRng};
    use std::collections::VecDeque;

    /// A job as the bench offers it, and what its engine (when it runs on one) answers.
    #[derive(Clone, Debug)]
    struct Job {
        record_error: Option<u8>,
        tag: u64,
        a: [u8; 32],
        r: [u8; 32],
        txid: [u8; 32],
        digits: Vec<(u8, u8)>,
        s_ok: bool,
        engine_code: u8,
    }

    fn jobs(count: usize, rng: &mut impl Rng) -> Vec<Job> {
        (0..count)
            .map(|n| {
                let record_error = (rng.gen_range(0..6) == 0).then(|| rng.gen_range(1..=4));
                Job {
                    record_error,
                    tag: rng.gen::<u64>() & !0xff | n as u64,
                    a: rng.gen(),
                    r: rng.gen(),
                    txid: if record_error.is_some() {
                        [0; 32]
                    } else {
                        rng.gen()
                    },
                    digits: (0..256).map(|_| (rng.gen(), rng.gen())).collect(),
                    s_ok: rng.gen_range(0..6) != 0,
                    // Mostly verdicts 0 to 5; now and then a code that is no verdict.
                    engine_code: [0, 0, 1, 2, 3, 4, 5, 9][rng.gen_range(0..8)],
                }
            })
            .collect()
    }

    /// The commands the dispatcher must write for `job` into context `ctx`.
    fn commands(job: &Job, ctx: u64, entry: u64) -> Vec<(u64, u64, BigUint)> {
        let mut out = Vec::new();
        for (at, &(k, s)) in job.digits.iter().enumerate() {
            out.push((2, ctx << 8 | at as u64, BigUint::from(k)));
            out.push((3, ctx << 8 | at as u64, BigUint::from(s)));
        }
        out.push((4, ctx, BigUint::from_bytes_le(&job.a)));
        out.push((5, ctx, BigUint::from_bytes_le(&job.r)));
        out.push((6, entry, BigUint::from(ctx)));
        out
    }

    struct Running {
        job: usize,
        done_at: u64,
    }

    /// Random jobs through a dispatcher over `engines` × `contexts`, the bench playing the
    /// engines by the engine's command protocol: every command checked against the job being
    /// loaded, a context never written while it runs, each verdict after a random delay, and
    /// every response checked against its job.
    fn dispatch(engines: usize, contexts: usize, count: usize, seed: u64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let jobs = jobs(count, &mut rng);
        let entry = 0x123;
        // Engines numbered from 3 in the responses, as in a card's second lane.
        let first = 3u8;
        let mut uut = Dispatcher::new(engines, contexts, first);
        uut.connect_all();
        let mut offered = 0;
        let mut digits: VecDeque<(usize, usize)> = VecDeque::new();
        let mut to_load: VecDeque<usize> = VecDeque::new();
        let mut loading: Vec<Option<(usize, usize)>> = vec![None; engines * MAX_CONTEXTS];
        let mut running: Vec<Option<Running>> = (0..engines * MAX_CONTEXTS).map(|_| None).collect();
        let mut responses: Vec<(u64, [u8; 64])> = Vec::new();
        let mut faults = 0;
        let mut fault_beats = 0;
        let fail =
            |cycle: u64, what: String| -> ! { panic!("seed {seed:#x}, cycle {cycle}: {what}") };
        for cycle in 0..(count as u64 * 1_500 + 2_000) {
            uut.clock.next = false.into();
            let offer = offered < count && rng.gen_range(0..4) != 0;
            uut.job_valid.next = offer;
            if offer {
                let job = &jobs[offered];
                uut.job_kind.next = u64::from(job.record_error.is_some()).into();
                uut.job_code.next = u64::from(job.record_error.unwrap_or(0)).into();
                uut.job_tag.next = job.tag.into();
                uut.job_a.next = BigUint::from_bytes_le(&job.a).into();
                uut.job_r.next = BigUint::from_bytes_le(&job.r).into();
                uut.job_txid.next = BigUint::from_bytes_le(&job.txid).into();
            }
            let digit = digits.front().copied().filter(|_| rng.gen_range(0..5) != 0);
            uut.dig_valid.next = digit.is_some();
            if let Some((j, at)) = digit {
                let (k, s) = jobs[j].digits[at];
                uut.dig_position.next = (at as u64).into();
                uut.dig_k.next = u64::from(k).into();
                uut.dig_s.next = u64::from(s).into();
                uut.dig_s_ok.next = jobs[j].s_ok;
                uut.dig_last.next = at == 255;
            }
            uut.entry.next = entry.into();
            for e in 0..engines {
                uut.cmd_ready[e].next = rng.gen_range(0..4) != 0;
                let ready = (0..contexts)
                    .filter_map(|c| {
                        running[e * MAX_CONTEXTS + c]
                            .as_ref()
                            .map(|r| (r.done_at, c))
                    })
                    .filter(|&(at, _)| at <= cycle)
                    .min();
                uut.ver_valid[e].next = ready.is_some();
                if let Some((_, c)) = ready {
                    let job = &jobs[running[e * MAX_CONTEXTS + c].as_ref().map_or(0, |r| r.job)];
                    uut.ver_ctx[e].next = (c as u64).into();
                    uut.ver_code[e].next = u64::from(job.engine_code).into();
                }
            }
            let resp_ready = rng.gen_range(0..3) != 0;
            uut.resp_ready.next = resp_ready;
            assert!(simulate(&mut uut, 1000), "settles");

            if offer && uut.job_ready.val() {
                if jobs[offered].record_error.is_none() {
                    digits.extend((0..256).map(|at| (offered, at)));
                    if jobs[offered].s_ok {
                        to_load.push_back(offered);
                    }
                }
                offered += 1;
            }
            if digit.is_some() && uut.dig_ready.val() {
                digits.pop_front();
            }
            for e in 0..engines {
                if uut.cmd_valid[e].val() && uut.cmd_ready[e].val() {
                    let (kind, addr, data) = (
                        uut.cmd_kind.val().index() as u64,
                        uut.cmd_addr.val().index() as u64,
                        BigUint::from(uut.cmd_data.val()),
                    );
                    let ctx = if kind == 2 || kind == 3 {
                        addr >> 8
                    } else if kind == 6 {
                        u64::try_from(&data).unwrap_or(99)
                    } else {
                        addr
                    };
                    let slot = e * MAX_CONTEXTS + ctx as usize;
                    if ctx as usize >= contexts || running[slot].is_some() {
                        fail(
                            cycle,
                            format!("command {kind} for engine {e} context {ctx}, busy or absent"),
                        );
                    }
                    let (job, at) = match loading[slot] {
                        Some(progress) => progress,
                        None => match to_load.pop_front() {
                            Some(job) => (job, 0),
                            None => fail(
                                cycle,
                                format!("command {kind} to engine {e} with no job to load"),
                            ),
                        },
                    };
                    let want = &commands(&jobs[job], ctx, entry)[at];
                    if (kind, addr, &data) != (want.0, want.1, &want.2) {
                        fail(cycle, format!("job {job} command {at}: got {kind}/{addr:#x}/{data:#x}, want {}/{:#x}/{:#x}", want.0, want.1, want.2));
                    }
                    loading[slot] = Some((job, at + 1));
                    if kind == 6 {
                        loading[slot] = None;
                        running[slot] = Some(Running {
                            job,
                            done_at: cycle + rng.gen_range(5..80),
                        });
                    }
                }
                if uut.ver_valid[e].val() && uut.ver_ready[e].val() {
                    let c = uut.ver_ctx[e].val().index();
                    let done = running[e * MAX_CONTEXTS + c].take();
                    if done.is_some_and(|d| jobs[d.job].engine_code > 5) {
                        faults += 1;
                    }
                }
            }
            if resp_ready && uut.resp_valid.val() && uut.resp_fault.val() {
                fault_beats += 1;
            } else if resp_ready && uut.resp_valid.val() {
                let bytes = BigUint::from(uut.resp_data.val()).to_bytes_le();
                let mut record = [0u8; 64];
                record[..bytes.len()].copy_from_slice(&bytes);
                responses.push((cycle, record));
            }
            uut.clock.next = true.into();
            assert!(simulate(&mut uut, 1000), "settles");
        }

        // Every job answered once, as its kind says; engine faults not at all.
        let answered: Vec<&Job> = jobs
            .iter()
            .filter(|j| !(j.record_error.is_none() && j.s_ok && j.engine_code > 5))
            .collect();
        assert_eq!(responses.len(), answered.len(), "seed {seed:#x}: responses");
        for (cycle, record) in &responses {
            let tag = u64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
            let job = &jobs[(tag & 0xff) as usize];
            assert_eq!(
                job.tag, tag,
                "seed {seed:#x}, cycle {cycle}: an unknown tag"
            );
            let (status, code, engine) = (record[8], record[9], record[10]);
            let cycles = u32::from_le_bytes(record[12..16].try_into().expect("4 bytes"));
            let want = match (job.record_error, job.s_ok) {
                (Some(code), _) => (1, code, 255, true),
                (None, false) => (0, 2, 255, true),
                (None, true) => (0, job.engine_code, engine, false),
            };
            assert_eq!(
                (status, code, engine),
                (want.0, want.1, want.2),
                "seed {seed:#x}: job {tag:#x}"
            );
            assert!(
                (first..first + engines as u8).contains(&engine) || engine == 255,
                "seed {seed:#x}: engine {engine}"
            );
            assert_eq!(
                cycles == 0,
                want.3,
                "seed {seed:#x}: {cycles} cycles for job {tag:#x}"
            );
            assert_eq!(
                record[32..],
                job.txid,
                "seed {seed:#x}: transaction id of job {tag:#x}"
            );
        }
        assert_eq!(fault_beats, faults, "seed {seed:#x}: fault notices");
        assert!(
            faults > 0
                && responses
                    .iter()
                    .any(|(_, r)| r[8] == 0 && r[9] == 0 && r[10] != 255),
            "seed {seed:#x}: the sample lacks a fault or a valid verdict"
        );
    }

    #[test]
    fn jobs_spread_over_two_engines_and_every_one_is_answered() {
        dispatch(2, 3, 40, 0xd15_7a7c);
    }

    #[test]
    fn one_engine_of_one_context_takes_jobs_one_at_a_time() {
        dispatch(1, 1, 12, 0x0_0e1);
    }
}
