//! The card: the record parser, the request hasher, the scalar unit, the dispatcher, K ECC
//! engines and the register block, behind one host port.
//!
//! ```text
//! host ─┬─ stream beats ─> RecordParser ─> RequestHasher ─┬─ hash, S ─> ScalarUnit ─ digits ─┐
//!       │                                                 └─ tag, A, R, txid, errors ─> Dispatcher ─ commands ─> EccEngine × K
//!       └─ BAR accesses ─> RegBlock ─ image ─> engines' code and constants   <─ verdicts ─┘
//!                             ^ events                                    └─ responses ─> host
//! ```
//!
//! The host port carries what the XDMA shell would bring on its two interfaces, serialized:
//! a beat is a BAR write (`in_kind` 0: `in_addr`, `in_data[31:0]`), a BAR read (1) or a beat of
//! the host-to-card stream (2: `in_data`, `in_last`, `in_bytes`, as the record parser takes
//! them). Out come BAR read data (`out_kind` 0, `out_data[31:0]`) and response records (1),
//! read data first. Stream beats wait while the card is not running (`ENABLE` and a good
//! image); the host checks `STATUS` first, as the driver does.
//!
//! The register block sees every cycle's events (a record answered or dropped, a response,
//! each verdict kind, an engine fault), so none is lost while a read waits for the host: the
//! card holds the read data in a register of its own and takes no BAR access meanwhile.
//! `STATUS.IDLE` is "no record taken and not yet answered". The image's code words and
//! constants go to every engine as they are uploaded (an upload is for a card with nothing in
//! flight: it stops the card until its commit).

use num_bigint::BigUint;
use rust_hdl::prelude::*;

use crate::dispatcher::Dispatcher;
use crate::ecc_engine::EccEngine;
use crate::field_mul::Rate;
use crate::flow::harness::{Beat, Port, StreamBlock};
use crate::record_parser::RecordParser;
use crate::reg_block::RegBlock;
use crate::request_hasher::RequestHasher;
use crate::scalar_unit::ScalarUnit;

/// `in_kind` values.
pub mod host {
    /// A BAR write.
    pub const WRITE: u8 = 0;
    /// A BAR read.
    pub const READ: u8 = 1;
    /// A beat of the host-to-card stream.
    pub const STREAM: u8 = 2;
}

/// `out_kind` values.
pub mod out {
    /// BAR read data.
    pub const READ_DATA: u8 = 0;
    /// A response record.
    pub const RESPONSE: u8 = 1;
}

/// The card.
#[derive(LogicBlock)]
pub struct Card {
    /// The card clock.
    pub clock: Signal<In, Clock>,
    /// A host beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// The card takes it.
    pub in_ready: Signal<Out, Bit>,
    /// What it is ([`host`]).
    pub in_kind: Signal<In, Bits<2>>,
    /// The register's offset (BAR accesses).
    pub in_addr: Signal<In, Bits<12>>,
    /// The value written, or the stream beat.
    pub in_data: Signal<In, Bits<512>>,
    /// The stream beat ends its transfer.
    pub in_last: Signal<In, Bit>,
    /// Real bytes in the stream beat.
    pub in_bytes: Signal<In, Bits<7>>,
    /// A beat is offered to the host.
    pub out_valid: Signal<Out, Bit>,
    /// The host takes it.
    pub out_ready: Signal<In, Bit>,
    /// What it is ([`out`]).
    pub out_kind: Signal<Out, Bits<2>>,
    /// Read data or a response record.
    pub out_data: Signal<Out, Bits<512>>,
    parser: RecordParser,
    hasher: RequestHasher,
    scalar: ScalarUnit,
    dispatcher: Dispatcher,
    engines: Vec<EccEngine>,
    regs: RegBlock,
    in_flight: DFF<Bits<16>>,
    read_issued: DFF<Bit>,
    read_pending: DFF<Bit>,
    read_data: DFF<Bits<32>>,
    bar_free: Signal<Local, Bit>,
    bar_take: Signal<Local, Bit>,
    request: Signal<Local, Bit>,
    rejected: Signal<Local, Bit>,
    dropped: Signal<Local, Bit>,
    answered: Signal<Local, Bit>,
    sent: Signal<Local, Bit>,
    faulted: Signal<Local, Bit>,
    record_events: Signal<Local, Bits<8>>,
    after_in: Signal<Local, Bits<16>>,
    after_sent: Signal<Local, Bits<16>>,
    after_fault: Signal<Local, Bits<16>>,
}

impl Card {
    /// A card with `engines` engines of `contexts` contexts, their multipliers at `rate`.
    pub fn new(engines: usize, contexts: usize, rate: Rate) -> Self {
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_kind: Default::default(),
            in_addr: Default::default(),
            in_data: Default::default(),
            in_last: Default::default(),
            in_bytes: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_kind: Default::default(),
            out_data: Default::default(),
            parser: Default::default(),
            hasher: Default::default(),
            scalar: Default::default(),
            dispatcher: Dispatcher::new(engines, contexts),
            engines: (0..engines)
                .map(|_| EccEngine::new(rate, contexts))
                .collect(),
            regs: RegBlock::new(engines as u16, contexts as u16),
            in_flight: Default::default(),
            read_issued: Default::default(),
            read_pending: Default::default(),
            read_data: Default::default(),
            bar_free: Default::default(),
            bar_take: Default::default(),
            request: Default::default(),
            rejected: Default::default(),
            dropped: Default::default(),
            answered: Default::default(),
            sent: Default::default(),
            faulted: Default::default(),
            record_events: Default::default(),
            after_in: Default::default(),
            after_sent: Default::default(),
            after_fault: Default::default(),
        }
    }

    /// Its engines.
    pub fn engines(&self) -> usize {
        self.engines.len()
    }
}

impl Logic for Card {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, in_flight, read_issued, read_pending, read_data);
        clock!(self, clock, parser, hasher, scalar, dispatcher, regs);
        for e in 0..self.engines.len() {
            self.engines[e].clock.next = self.clock.val();
        }

        // The host port: BAR accesses while no read is in the register block (its data comes
        // a cycle later) nor waits for the host; stream beats while running.
        self.bar_free.next = !self.read_issued.q.val() & !self.read_pending.q.val();
        self.bar_take.next = self.in_valid.val() & (self.in_kind.val() < 2) & self.bar_free.val();
        self.read_issued.d.next = self.bar_take.val() & (self.in_kind.val() == 1);
        self.parser.in_valid.next =
            self.in_valid.val() & (self.in_kind.val() == 2) & self.regs.running.val();
        self.parser.in_data.next = self.in_data.val();
        self.parser.in_last.next = self.in_last.val();
        self.parser.in_bytes.next = self.in_bytes.val();
        self.in_ready.next = self.bar_free.val();
        if self.in_kind.val() == 2 {
            self.in_ready.next = self.regs.running.val() & self.parser.in_ready.val();
        }

        // The register block takes a beat every cycle (it is never held: its read data moves
        // straight into `read_data`), so every event counts.
        self.regs.in_valid.next = true;
        self.regs.in_op.next = 0.into();
        if self.bar_take.val() {
            self.regs.in_op.next = 2.into();
            if self.in_kind.val() == 1 {
                self.regs.in_op.next = 1.into();
            }
        }
        self.regs.in_addr.next = self.in_addr.val();
        self.regs.in_data.next = self.in_data.val().get_bits::<32>(0);
        self.regs.out_ready.next = true;
        if self.regs.out_valid.val() {
            self.read_pending.d.next = true;
            self.read_data.d.next = self.regs.out_data.val();
        }

        // Parser to hasher; the hasher's jobs to the scalar unit and the dispatcher together,
        // its record errors to the dispatcher, its framing drops to the counters.
        self.hasher.in_valid.next = self.parser.out_valid.val();
        self.parser.out_ready.next = self.hasher.in_ready.val();
        self.hasher.in_kind.next = self.parser.out_kind.val();
        self.hasher.in_index.next = self.parser.out_index.val();
        self.hasher.in_data.next = self.parser.out_data.val();
        self.hasher.in_tag.next = self.parser.out_tag.val();
        self.hasher.in_msg_len.next = self.parser.out_msg_len.val();
        self.hasher.in_code.next = self.parser.out_code.val();
        self.request.next = self.hasher.out_valid.val() & (self.hasher.out_kind.val() == 0);
        self.rejected.next = self.hasher.out_valid.val() & (self.hasher.out_kind.val() == 1);
        self.dropped.next = self.hasher.out_valid.val() & (self.hasher.out_kind.val() == 2);
        self.scalar.in_valid.next = self.request.val() & self.dispatcher.job_ready.val();
        self.scalar.in_hash.next = self.hasher.out_hash.val();
        self.scalar.in_s.next = self.hasher.out_s.val();
        self.dispatcher.job_valid.next =
            (self.request.val() & self.scalar.in_ready.val()) | self.rejected.val();
        self.dispatcher.job_kind.next = self.hasher.out_kind.val();
        self.dispatcher.job_code.next = self.hasher.out_code.val();
        self.dispatcher.job_tag.next = self.hasher.out_tag.val();
        self.dispatcher.job_a.next = self.hasher.out_a.val();
        self.dispatcher.job_r.next = self.hasher.out_r.val();
        self.dispatcher.job_txid.next = self.hasher.out_txid.val();
        self.hasher.out_ready.next = self.dropped.val()
            | (self.rejected.val() & self.dispatcher.job_ready.val())
            | (self.request.val() & self.dispatcher.job_ready.val() & self.scalar.in_ready.val());
        self.dispatcher.dig_valid.next = self.scalar.out_valid.val();
        self.scalar.out_ready.next = self.dispatcher.dig_ready.val();
        self.dispatcher.dig_position.next = self.scalar.out_position.val();
        self.dispatcher.dig_k.next = self.scalar.out_k.val();
        self.dispatcher.dig_s.next = self.scalar.out_s.val();
        self.dispatcher.dig_s_ok.next = self.scalar.out_s_ok.val();
        self.dispatcher.dig_last.next = self.scalar.out_last.val();
        self.dispatcher.entry.next = self.regs.image_entry.val();

        // The engines: the image's words while it uploads, else the dispatcher's commands;
        // their verdicts to the dispatcher.
        for e in 0..self.engines.len() {
            self.engines[e].in_valid.next =
                self.regs.image_valid.val() | self.dispatcher.cmd_valid[e].val();
            self.engines[e].in_cmd.next = self.dispatcher.cmd_kind.val();
            self.engines[e].in_addr.next = self.dispatcher.cmd_addr.val();
            self.engines[e].in_data.next = self.dispatcher.cmd_data.val();
            if self.regs.image_valid.val() {
                self.engines[e].in_cmd.next = bit_cast::<4, 2>(self.regs.image_kind.val());
                self.engines[e].in_addr.next = self.regs.image_addr.val();
                self.engines[e].in_data.next = self.regs.image_data.val();
            }
            self.dispatcher.cmd_ready[e].next =
                self.engines[e].in_ready.val() & !self.regs.image_valid.val();
            self.dispatcher.ver_valid[e].next = self.engines[e].out_valid.val();
            self.engines[e].out_ready.next = self.dispatcher.ver_ready[e].val();
            self.dispatcher.ver_ctx[e].next = self.engines[e].out_ctx.val();
            self.dispatcher.ver_code[e].next = self.engines[e].out_info.val();
        }

        // Out: read data first, then responses.
        self.out_valid.next = self.read_pending.q.val() | self.dispatcher.resp_valid.val();
        self.out_kind.next = 1.into();
        self.out_data.next = self.dispatcher.resp_data.val();
        self.dispatcher.resp_ready.next = self.out_ready.val() & !self.read_pending.q.val();
        if self.read_pending.q.val() {
            self.out_kind.next = 0.into();
            self.out_data.next = bit_cast::<512, 32>(self.read_data.q.val());
            if self.out_ready.val() {
                self.read_pending.d.next = false;
            }
        }
        self.sent.next = self.dispatcher.resp_valid.val() & self.dispatcher.resp_ready.val();

        // Events (`reg_block::event`): a record taken (answered or rejected) 0x01, a framing
        // drop 0x08, and the dispatcher's.
        self.answered.next =
            (self.request.val() | self.rejected.val()) & self.hasher.out_ready.val();
        self.record_events.next = 0.into();
        if self.answered.val() {
            self.record_events.next = 0x01.into();
        }
        if self.dropped.val() {
            self.record_events.next = 0x08.into();
        }
        self.regs.in_events.next = self.dispatcher.out_events.val() | self.record_events.val();
        self.faulted.next = self.dispatcher.out_events.val().get_bit(7);
        // Records in flight: taken, not yet answered (or faulted); all three can happen in a
        // cycle.
        self.after_in.next = self.in_flight.q.val();
        if self.answered.val() {
            self.after_in.next = self.in_flight.q.val() + 1;
        }
        self.after_sent.next = self.after_in.val();
        if self.sent.val() {
            self.after_sent.next = self.after_in.val() - 1;
        }
        self.after_fault.next = self.after_sent.val();
        if self.faulted.val() {
            self.after_fault.next = self.after_sent.val() - 1;
        }
        self.in_flight.d.next = self.after_fault.val();
        self.regs.idle.next = !self.in_flight.q.val().any();
    }
}

impl StreamBlock for Card {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_kind",
            bits: 2,
        },
        Port {
            name: "in_addr",
            bits: 12,
        },
        Port {
            name: "in_data",
            bits: 512,
        },
        Port {
            name: "in_last",
            bits: 1,
        },
        Port {
            name: "in_bytes",
            bits: 7,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "out_kind",
            bits: 2,
        },
        Port {
            name: "out_data",
            bits: 512,
        },
    ];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_kind.next = beat[0].clone().into();
            self.in_addr.next = beat[1].clone().into();
            self.in_data.next = beat[2].clone().into();
            self.in_last.next = beat[3] == BigUint::from(1u8);
            self.in_bytes.next = beat[4].clone().into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid
            .val()
            .then(|| vec![self.out_kind.val().into(), self.out_data.val().into()])
    }
}
