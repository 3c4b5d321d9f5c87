//! The card: the record parser, H request hashers ([`HasherPool`]), L lanes (each a scalar
//! unit, a dispatcher and its engines: [`Lane`]) and the register block, behind one host port.
//!
//! ```text
//! host ─┬─ stream beats ─> RecordParser ─> RequestHasher × H ─ jobs ─> Lane × L (ScalarUnit,
//!       │                                                          Dispatcher, EccEngine × E)
//!       └─ BAR accesses ─> RegBlock ─ image, entry ─> every lane's engines        │
//!                             ^ events <─ responses, round-robin over the lanes ──┴─> host
//! ```
//!
//! A job goes to the lowest lane that is free; responses leave one a cycle, round-robin over
//! the lanes, and the events the register block counts are read off them as they leave (so
//! two lanes answering in one cycle cannot merge two counts into one).
//!
//! The host port carries what the XDMA shell would bring on its two interfaces, serialized:
//! a beat is a BAR write (`in_kind` 0: `in_addr`, `in_data[31:0]`), a BAR read (1) or a beat of
//! the host-to-card stream (2: `in_data`, `in_last`, `in_bytes`, as the record parser takes
//! them). Out come BAR read data (`out_kind` 0, `out_data[31:0]`) and response records (1),
//! each sealed with its check on the way out ([`ResponseCheck`]), read data first. Stream beats wait while the card is not running (`ENABLE` and a good
//! image); the host checks `STATUS` first, as the driver does.
//!
//! The register block sees every cycle's events (a record answered or dropped, a response,
//! each verdict kind, an engine fault), so none is lost while a read waits for the host: the
//! card holds the read data in a register of its own and takes no BAR access meanwhile.
//! `STATUS.IDLE` is "no record taken and not yet answered"; `CONTROL.RESET` drops the
//! responses to every record taken before it, as they leave. The image's code words and
//! constants go to every engine as they are uploaded (an upload is for a card with nothing in
//! flight: it stops the card until its commit).

use num_bigint::BigUint;
use rust_hdl::prelude::*;

use crate::field_mul::Rate;
use crate::flow::harness::{Beat, Port, StreamBlock};
use crate::hasher_pool::HasherPool;
use crate::lane::Lane;
use crate::or_tree::OrTree;
use crate::record_parser::RecordParser;
use crate::reg_block::RegBlock;
use crate::request_window::RequestWindow;
use crate::response_check::ResponseCheck;
use crate::round_robin::{PrefixOr, RoundRobin};

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
    pub in_addr: Signal<In, Bits<17>>,
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
    hasher: HasherPool,
    lanes: Vec<Lane>,
    regs: RegBlock,
    lanes_free_below: PrefixOr<Bit>,
    resp_pick: RoundRobin,
    resp_data: OrTree<Bits<512>>,
    resp_fault: OrTree<Bit>,
    resp_epoch: OrTree<Bit>,
    seal: ResponseCheck,
    in_flight: DFF<Bits<16>>,
    epoch: DFF<Bit>,
    parser_epoch: DFF<Bit>,
    read_issued: DFF<Bit>,
    read_pending: DFF<Bit>,
    window: RequestWindow,
    stream_mid: DFF<Bit>,
    window_owns: DFF<Bit>,
    window_turn: Signal<Local, Bit>,
    read_data: DFF<Bits<32>>,
    bar_free: Signal<Local, Bit>,
    bar_take: Signal<Local, Bit>,
    request: Signal<Local, Bit>,
    rejected: Signal<Local, Bit>,
    dropped: Signal<Local, Bit>,
    answered: Signal<Local, Bit>,
    sent: Signal<Local, Bit>,
    faulted: Signal<Local, Bit>,
    take_resp: Signal<Local, Bit>,
    stale: Signal<Local, Bit>,
    discard: Signal<Local, Bit>,
    record_events: Signal<Local, Bits<8>>,
    response_events: Signal<Local, Bits<8>>,
    after_in: Signal<Local, Bits<16>>,
    after_out: Signal<Local, Bits<16>>,
}

impl Card {
    /// A card of `hashers` request hashers (1 to 16) and `lanes` lanes of `engines` engines
    /// each (1 to 16 of each), of `contexts` contexts, their multipliers at `rate`.
    pub fn new(hashers: usize, lanes: usize, engines: usize, contexts: usize, rate: Rate) -> Self {
        assert!(
            (1..=16).contains(&lanes) && lanes * engines <= usize::from(u8::MAX),
            "1 to 16 lanes; engines numbered in a byte"
        );
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
            hasher: HasherPool::new(hashers),
            lanes: (0..lanes)
                .map(|l| Lane::new(engines, contexts, rate, (l * engines) as u8))
                .collect(),
            regs: RegBlock::new((lanes * engines) as u16, contexts as u16),
            lanes_free_below: PrefixOr::new(lanes),
            resp_pick: RoundRobin::new(lanes),
            resp_data: OrTree::new(lanes),
            resp_fault: OrTree::new(lanes),
            resp_epoch: OrTree::new(lanes),
            seal: Default::default(),
            in_flight: Default::default(),
            epoch: Default::default(),
            parser_epoch: Default::default(),
            read_issued: Default::default(),
            read_pending: Default::default(),
            window: Default::default(),
            stream_mid: Default::default(),
            window_owns: Default::default(),
            window_turn: Default::default(),
            read_data: Default::default(),
            bar_free: Default::default(),
            bar_take: Default::default(),
            request: Default::default(),
            rejected: Default::default(),
            dropped: Default::default(),
            answered: Default::default(),
            sent: Default::default(),
            faulted: Default::default(),
            take_resp: Default::default(),
            stale: Default::default(),
            discard: Default::default(),
            record_events: Default::default(),
            response_events: Default::default(),
            after_in: Default::default(),
            after_out: Default::default(),
        }
    }
}

impl Logic for Card {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            in_flight,
            epoch,
            parser_epoch,
            read_issued,
            read_pending,
            stream_mid,
            window_owns,
            read_data
        );
        clock!(self, clock, parser, hasher, regs, resp_pick, window);
        for l in 0..self.lanes.len() {
            self.lanes[l].clock.next = self.clock.val();
        }

        // The host port: BAR accesses while no read is in the register block (its data comes
        // a cycle later) nor waits for the host; stream beats while running.
        self.bar_free.next = !self.read_issued.q.val() & !self.read_pending.q.val();
        self.bar_take.next = self.in_valid.val() & (self.in_kind.val() < 2) & self.bar_free.val();
        self.read_issued.d.next = self.bar_take.val() & (self.in_kind.val() == 1);
        // The request window: BAR writes fill it, the doorbell hands a half to the parser
        // between two transfers of the stream, and the parser is the window's until its last
        // beat (a stream beat waits meanwhile, as a DMA transfer waits for the bus).
        self.window.write.next = self.bar_take.val() & (self.in_kind.val() == 0);
        self.window.write_word.next = self.in_addr.val().get_bits::<15>(2);
        self.window.write_data.next = self.in_data.val().get_bits::<32>(0);
        self.window.ring.next = self.regs.ring.val();
        self.window.ring_value.next = self.regs.ring_value.val();
        self.window.running.next = self.regs.running.val();
        self.window.reset.next = self.regs.reset.val();
        self.regs.doorbell_done.next = self.window.done.val();
        self.window_turn.next =
            self.window_owns.q.val() | (!self.stream_mid.q.val() & self.window.out_valid.val());
        self.window.out_ready.next = self.window_turn.val() & self.parser.in_ready.val();
        self.parser.in_valid.next =
            self.in_valid.val() & (self.in_kind.val() == 2) & self.regs.running.val();
        self.parser.in_data.next = self.in_data.val();
        self.parser.in_last.next = self.in_last.val();
        self.parser.in_bytes.next = self.in_bytes.val();
        if self.window_turn.val() {
            self.parser.in_valid.next = self.window.out_valid.val();
            self.parser.in_data.next = self.window.out_data.val();
            self.parser.in_last.next = self.window.out_last.val();
            self.parser.in_bytes.next = 64.into();
        }
        if self.window.out_valid.val() & self.window.out_ready.val() {
            self.window_owns.d.next = !self.window.out_last.val();
        }
        self.in_ready.next = self.bar_free.val();
        if self.in_kind.val() == 2 {
            self.in_ready.next =
                self.regs.running.val() & self.parser.in_ready.val() & !self.window_turn.val();
        }
        if self.in_valid.val() & (self.in_kind.val() == 2) & self.in_ready.val() {
            self.stream_mid.d.next = !self.in_last.val();
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

        // Parser to hasher; the hasher's jobs (requests and record errors) to the lowest free
        // lane, its framing drops to the counters.
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
        for l in 0..self.lanes.len() {
            self.lanes_free_below.input[l].next = self.lanes[l].job_ready.val();
            self.lanes[l].job_valid.next = (self.request.val() | self.rejected.val())
                & self.lanes[l].job_ready.val()
                & !self.lanes_free_below.output[l].val();
            self.lanes[l].job_kind.next = self.hasher.out_kind.val();
            self.lanes[l].job_code.next = self.hasher.out_code.val();
            self.lanes[l].job_tag.next = self.hasher.out_tag.val();
            self.lanes[l].job_a.next = self.hasher.out_a.val();
            self.lanes[l].job_r.next = self.hasher.out_r.val();
            self.lanes[l].job_s.next = self.hasher.out_s.val();
            self.lanes[l].job_hash.next = self.hasher.out_hash.val();
            self.lanes[l].job_txid.next = self.hasher.out_txid.val();
            self.lanes[l].job_epoch.next = self.hasher.out_epoch.val();
            self.lanes[l].image_valid.next = self.regs.image_valid.val();
            self.lanes[l].image_kind.next = self.regs.image_kind.val();
            self.lanes[l].image_addr.next = self.regs.image_addr.val();
            self.lanes[l].image_data.next = self.regs.image_data.val();
            self.lanes[l].entry.next = self.regs.image_entry.val();
        }
        self.hasher.out_ready.next = self.dropped.val()
            | ((self.request.val() | self.rejected.val()) & self.lanes_free_below.any.val());

        // Out: read data first, then one lane's response a cycle, round-robin; an engine
        // fault's notice is taken and counted, not sent.
        for l in 0..self.lanes.len() {
            self.resp_pick.req[l].next = self.lanes[l].resp_valid.val();
            self.resp_data.term[l].next = 0.into();
            self.resp_fault.term[l].next = false;
            self.resp_epoch.term[l].next = false;
            if self.resp_pick.grant[l].val() {
                self.resp_data.term[l].next = self.lanes[l].resp_data.val();
                self.resp_fault.term[l].next = self.lanes[l].resp_fault.val();
                self.resp_epoch.term[l].next = self.lanes[l].resp_epoch.val();
            }
        }
        // `CONTROL.RESET` starts a new epoch: responses to records taken before it are dropped
        // as they leave, as the functional model drops its unread responses. A record's epoch
        // is its last beat's when the card took it: the parser holds at most that one beat
        // (it takes the next when its output moves on), and each hasher keeps its record's.
        if self.regs.reset.val() {
            self.epoch.d.next = !self.epoch.q.val();
        }
        if self.parser.in_valid.val() & self.parser.in_ready.val() {
            self.parser_epoch.d.next = self.epoch.q.val();
        }
        self.hasher.in_epoch.next = self.parser_epoch.q.val();
        self.stale.next = self.resp_epoch.any.val() != self.epoch.q.val();
        self.discard.next = self.resp_fault.any.val() | self.stale.val();
        self.take_resp.next = self.resp_pick.valid.val()
            & (self.discard.val() | (self.out_ready.val() & !self.read_pending.q.val()));
        self.resp_pick.take.next = self.take_resp.val();
        for l in 0..self.lanes.len() {
            self.lanes[l].resp_ready.next = self.take_resp.val() & self.resp_pick.grant[l].val();
        }
        self.out_valid.next =
            self.read_pending.q.val() | (self.resp_pick.valid.val() & !self.discard.val());
        self.out_kind.next = 1.into();
        self.seal.record.next = self.resp_data.any.val();
        self.out_data.next = self.seal.sealed.val();
        if self.read_pending.q.val() {
            self.out_kind.next = 0.into();
            self.out_data.next = bit_cast::<512, 32>(self.read_data.q.val());
            if self.out_ready.val() {
                self.read_pending.d.next = false;
            }
        }
        self.sent.next = self.take_resp.val() & !self.discard.val();
        self.faulted.next = self.take_resp.val() & self.resp_fault.any.val();

        // Events (`reg_block::event`, as literals): a record taken (answered or rejected)
        // 0x01, a framing drop 0x08; a response sent 0x02 with its kind — a record error 0x04,
        // `Valid` 0x10, `Invalid` 0x20, `Malformed` 0x40 — and an engine fault 0x80.
        self.answered.next =
            (self.request.val() | self.rejected.val()) & self.hasher.out_ready.val();
        self.record_events.next = 0.into();
        if self.answered.val() {
            self.record_events.next = 0x01.into();
        }
        // A window submission too long to take counts as a framing drop; one in the same
        // cycle as the parser's counts once.
        if self.dropped.val() | self.window.refused.val() {
            self.record_events.next = 0x08.into();
        }
        self.response_events.next = 0.into();
        if self.sent.val() {
            self.response_events.next = 0x42.into();
            if self.resp_data.any.val().get_bits::<8>(72) == 0 {
                self.response_events.next = 0x12.into();
            }
            if self.resp_data.any.val().get_bits::<8>(72) == 1 {
                self.response_events.next = 0x22.into();
            }
            if self.resp_data.any.val().get_bits::<8>(64) == 1 {
                self.response_events.next = 0x06.into();
            }
        }
        if self.faulted.val() {
            self.response_events.next = 0x80.into();
        }
        self.regs.in_events.next = self.record_events.val() | self.response_events.val();
        // Records in flight: taken, not yet answered (or faulted); one can be taken and one
        // leave in a cycle.
        self.after_in.next = self.in_flight.q.val();
        if self.answered.val() {
            self.after_in.next = self.in_flight.q.val() + 1;
        }
        self.after_out.next = self.after_in.val();
        if self.take_resp.val() {
            self.after_out.next = self.after_in.val() - 1;
        }
        self.in_flight.d.next = self.after_out.val();
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
            bits: 17,
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
