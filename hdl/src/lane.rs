//! A lane of the card: a scalar unit, a dispatcher and the engines it feeds.
//!
//! A job (tag, A, R, the transaction id, SHA-512(R ‖ A ‖ M) and S, or a record error) is taken
//! when both the scalar unit and the dispatcher are free; the scalar unit's digit positions go
//! to the dispatcher, which loads them into a free context of one of the lane's engines and
//! turns the verdicts into response records. The image's code words and constants reach every
//! engine while it uploads.
//!
//! A lane is sized by its front: the scalar unit takes 769 cycles a job and the dispatcher 515
//! to load one, while an engine verifies one every 3,475 cycles at steady state, so a lane
//! keeps about four engines busy ([`ENGINES_PER_LANE`]); a card adds lanes, not engines per
//! lane.

use rust_hdl::prelude::*;

use crate::dispatcher::Dispatcher;
use crate::ecc_engine::EccEngine;
use crate::field_mul::Rate;
use crate::scalar_unit::ScalarUnit;

/// The engines one lane's scalar unit and dispatcher keep busy.
pub const ENGINES_PER_LANE: usize = 4;

/// The lane.
#[derive(LogicBlock)]
pub struct Lane {
    /// The card clock.
    pub clock: Signal<In, Clock>,
    /// A job is offered.
    pub job_valid: Signal<In, Bit>,
    /// The lane takes it.
    pub job_ready: Signal<Out, Bit>,
    /// 0: a request; 1: a record error.
    pub job_kind: Signal<In, Bits<2>>,
    /// The record error's code.
    pub job_code: Signal<In, Bits<3>>,
    /// The tag.
    pub job_tag: Signal<In, Bits<64>>,
    /// A.
    pub job_a: Signal<In, Bits<256>>,
    /// R.
    pub job_r: Signal<In, Bits<256>>,
    /// S.
    pub job_s: Signal<In, Bits<256>>,
    /// SHA-512(R ‖ A ‖ M), byte 0 in bits 7:0.
    pub job_hash: Signal<In, Bits<512>>,
    /// The transaction id.
    pub job_txid: Signal<In, Bits<256>>,
    /// The card's epoch (see [`Dispatcher`]).
    pub job_epoch: Signal<In, Bit>,
    /// An image word for the engines (the register block's `image_*`).
    pub image_valid: Signal<In, Bit>,
    /// 0: a code word; 1: a constant.
    pub image_kind: Signal<In, Bits<2>>,
    /// Its index.
    pub image_addr: Signal<In, Bits<12>>,
    /// Its value.
    pub image_data: Signal<In, Bits<256>>,
    /// The image's entry point.
    pub entry: Signal<In, Bits<12>>,
    /// A response (or an engine fault's notice) is offered.
    pub resp_valid: Signal<Out, Bit>,
    /// The card takes it.
    pub resp_ready: Signal<In, Bit>,
    /// The response record.
    pub resp_data: Signal<Out, Bits<512>>,
    /// The beat is an engine fault's notice, not a response.
    pub resp_fault: Signal<Out, Bit>,
    /// The epoch of the beat's job.
    pub resp_epoch: Signal<Out, Bit>,
    scalar: ScalarUnit,
    dispatcher: Dispatcher,
    engines: Vec<EccEngine>,
}

impl Lane {
    /// A lane of `engines` engines of `contexts` contexts, their multipliers at `rate`,
    /// numbered from `first_engine` in the responses.
    pub fn new(engines: usize, contexts: usize, rate: Rate, first_engine: u8) -> Self {
        Self {
            clock: Default::default(),
            job_valid: Default::default(),
            job_ready: Default::default(),
            job_kind: Default::default(),
            job_code: Default::default(),
            job_tag: Default::default(),
            job_a: Default::default(),
            job_r: Default::default(),
            job_s: Default::default(),
            job_hash: Default::default(),
            job_txid: Default::default(),
            job_epoch: Default::default(),
            image_valid: Default::default(),
            image_kind: Default::default(),
            image_addr: Default::default(),
            image_data: Default::default(),
            entry: Default::default(),
            resp_valid: Default::default(),
            resp_ready: Default::default(),
            resp_data: Default::default(),
            resp_fault: Default::default(),
            resp_epoch: Default::default(),
            scalar: Default::default(),
            dispatcher: Dispatcher::new(engines, contexts, first_engine),
            engines: (0..engines)
                .map(|_| EccEngine::new(rate, contexts))
                .collect(),
        }
    }
}

impl Logic for Lane {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, scalar, dispatcher);
        for e in 0..self.engines.len() {
            self.engines[e].clock.next = self.clock.val();
        }

        // A job goes to the scalar unit (a request's hash and S) and the dispatcher at once.
        self.job_ready.next = self.dispatcher.job_ready.val() & self.scalar.in_ready.val();
        self.scalar.in_valid.next =
            self.job_valid.val() & self.job_ready.val() & (self.job_kind.val() == 0);
        self.scalar.in_hash.next = self.job_hash.val();
        self.scalar.in_s.next = self.job_s.val();
        self.dispatcher.job_valid.next = self.job_valid.val() & self.job_ready.val();
        self.dispatcher.job_kind.next = self.job_kind.val();
        self.dispatcher.job_code.next = self.job_code.val();
        self.dispatcher.job_tag.next = self.job_tag.val();
        self.dispatcher.job_a.next = self.job_a.val();
        self.dispatcher.job_r.next = self.job_r.val();
        self.dispatcher.job_txid.next = self.job_txid.val();
        self.dispatcher.job_epoch.next = self.job_epoch.val();
        self.dispatcher.dig_valid.next = self.scalar.out_valid.val();
        self.scalar.out_ready.next = self.dispatcher.dig_ready.val();
        self.dispatcher.dig_position.next = self.scalar.out_position.val();
        self.dispatcher.dig_k.next = self.scalar.out_k.val();
        self.dispatcher.dig_s.next = self.scalar.out_s.val();
        self.dispatcher.dig_s_ok.next = self.scalar.out_s_ok.val();
        self.dispatcher.dig_last.next = self.scalar.out_last.val();
        self.dispatcher.entry.next = self.entry.val();

        // The engines: the image's words while it uploads, else the dispatcher's commands;
        // their verdicts to the dispatcher.
        for e in 0..self.engines.len() {
            self.engines[e].in_valid.next =
                self.image_valid.val() | self.dispatcher.cmd_valid[e].val();
            self.engines[e].in_cmd.next = self.dispatcher.cmd_kind.val();
            self.engines[e].in_addr.next = self.dispatcher.cmd_addr.val();
            self.engines[e].in_data.next = self.dispatcher.cmd_data.val();
            if self.image_valid.val() {
                self.engines[e].in_cmd.next = bit_cast::<4, 2>(self.image_kind.val());
                self.engines[e].in_addr.next = self.image_addr.val();
                self.engines[e].in_data.next = self.image_data.val();
            }
            self.dispatcher.cmd_ready[e].next =
                self.engines[e].in_ready.val() & !self.image_valid.val();
            self.dispatcher.ver_valid[e].next = self.engines[e].out_valid.val();
            self.engines[e].out_ready.next = self.dispatcher.ver_ready[e].val();
            self.dispatcher.ver_ctx[e].next = self.engines[e].out_ctx.val();
            self.dispatcher.ver_code[e].next = self.engines[e].out_info.val();
        }

        self.resp_valid.next = self.dispatcher.resp_valid.val();
        self.dispatcher.resp_ready.next = self.resp_ready.val();
        self.resp_data.next = self.dispatcher.resp_data.val();
        self.resp_fault.next = self.dispatcher.resp_fault.val();
        self.resp_epoch.next = self.dispatcher.resp_epoch.val();
    }
}
