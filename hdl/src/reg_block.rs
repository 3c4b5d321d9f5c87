//! The register block: the card's control BAR (`verity_firmware::regs`), with the rules of the
//! functional model's `sim::bar`.
//!
//! The host reads and writes 32-bit registers through a simple bus (one access a beat, the
//! read data a cycle later). The data path reports what it did as event pulses (a request
//! taken, a response sent, a record rejected, a transfer dropped, a verdict of each kind, an
//! engine fault), which count in the counters and set the sticky error bits. The image upload
//! window drives an [`ImageCheck`]: `IMAGE_LEN` starts an upload (and clears `IMAGE_OK`),
//! writes into the image window (the BAR's upper half, decoded by address bit 16) feed it in
//! arrival order, `IMAGE_CRC` reads its running CRC, and writing 1 to `IMAGE_COMMIT` checks
//! it; `IMAGE_COMMIT` reads 1 until the verdict sets `IMAGE_OK` or an error bit, two cycles
//! later. The checker's code
//! words and constants leave on the `image_*` ports for the engines' RAMs. The card runs
//! (`running`) when `ENABLE` is set and the image is good.
//!
//! Within a beat, the events count before the bus access takes effect, so `CLEAR_COUNTERS`
//! wins over an event of the same cycle; a read returns the registers as they were at the
//! beat's start.

use num_bigint::BigUint;
use rust_hdl::prelude::*;

use verity_firmware::abi::MAX_MESSAGE_LEN;
use verity_firmware::regs;

use crate::flow::harness::{Beat, Port, StreamBlock};
use crate::image_check::ImageCheck;

/// `in_events` bits.
pub mod event {
    /// A request record was taken.
    pub const REQUEST: u8 = 1 << 0;
    /// A response record was sent.
    pub const RESPONSE: u8 = 1 << 1;
    /// A record was answered with a record error.
    pub const REJECTED: u8 = 1 << 2;
    /// A transfer was dropped as unframeable.
    pub const FRAMING: u8 = 1 << 3;
    /// A `Valid` verdict.
    pub const VALID: u8 = 1 << 4;
    /// An `Invalid` verdict.
    pub const INVALID: u8 = 1 << 5;
    /// A `Malformed` verdict.
    pub const MALFORMED: u8 = 1 << 6;
    /// An engine fault.
    pub const FAULT: u8 = 1 << 7;
}

/// The register block of a card with `engines` engines of `contexts` contexts each.
#[derive(LogicBlock)]
pub struct RegBlock {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A beat (events and a bus access) is offered.
    pub in_valid: Signal<In, Bit>,
    /// The block takes it.
    pub in_ready: Signal<Out, Bit>,
    /// The access: 0 none, 1 read, 2 write.
    pub in_op: Signal<In, Bits<2>>,
    /// The register's offset (`firmware::regs::BAR_LEN` is 2^17).
    pub in_addr: Signal<In, Bits<17>>,
    /// The value written.
    pub in_data: Signal<In, Bits<32>>,
    /// Event pulses (see [`event`]).
    pub in_events: Signal<In, Bits<8>>,
    /// No request is in flight (`STATUS.IDLE`).
    pub idle: Signal<In, Bit>,
    /// Read data is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The host takes it.
    pub out_ready: Signal<In, Bit>,
    /// The register's value.
    pub out_data: Signal<Out, Bits<32>>,
    /// The card takes requests.
    pub running: Signal<Out, Bit>,
    /// `CONTROL.RESET` was written: drop everything in flight (one cycle).
    pub reset: Signal<Out, Bit>,
    /// A code word (kind 0) or constant (kind 1) of the uploaded image is offered.
    pub image_valid: Signal<Out, Bit>,
    /// Its kind.
    pub image_kind: Signal<Out, Bits<2>>,
    /// Its index.
    pub image_addr: Signal<Out, Bits<12>>,
    /// The code word (bits 63:0) or the constant.
    pub image_data: Signal<Out, Bits<256>>,
    /// The uploaded image's entry point (meaningful while `running`).
    pub image_entry: Signal<Out, Bits<12>>,
    /// `DOORBELL` was written with a new sequence (one cycle), and its value.
    pub ring: Signal<Out, Bit>,
    /// `DOORBELL`.
    pub ring_value: Signal<Out, Bits<32>>,
    /// `DOORBELL_DONE`, from the request window.
    pub doorbell_done: Signal<In, Bits<16>>,
    upload: ImageCheck,
    id: Constant<Bits<32>>,
    version: Constant<Bits<32>>,
    max_message: Constant<Bits<32>>,
    engines: Constant<Bits<32>>,
    enabled: DFF<Bit>,
    image_ok: DFF<Bit>,
    errors: DFF<Bits<5>>,
    image_len: DFF<Bits<32>>,
    requests_in: DFF<Bits<32>>,
    responses_out: DFF<Bits<32>>,
    rejected: DFF<Bits<32>>,
    framing: DFF<Bits<32>>,
    valid: DFF<Bits<32>>,
    invalid: DFF<Bits<32>>,
    malformed: DFF<Bits<32>>,
    reset_q: DFF<Bit>,
    checking: DFF<Bit>,
    doorbell: DFF<Bits<32>>,
    ring_q: DFF<Bit>,
    o_valid: DFF<Bit>,
    o_data: DFF<Bits<32>>,
    take: Signal<Local, Bit>,
    write: Signal<Local, Bit>,
    events: Signal<Local, Bits<8>>,
    read_value: Signal<Local, Bits<32>>,
    verdict: Signal<Local, Bit>,
    status: Signal<Local, Bits<3>>,
    raised: Signal<Local, Bits<5>>,
}

impl RegBlock {
    /// The block of a card with `engines` engines of `contexts` contexts each.
    pub fn new(engines: u16, contexts: u16) -> Self {
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_op: Default::default(),
            in_addr: Default::default(),
            in_data: Default::default(),
            in_events: Default::default(),
            idle: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_data: Default::default(),
            running: Default::default(),
            reset: Default::default(),
            image_valid: Default::default(),
            image_kind: Default::default(),
            image_addr: Default::default(),
            image_data: Default::default(),
            image_entry: Default::default(),
            ring: Default::default(),
            ring_value: Default::default(),
            doorbell_done: Default::default(),
            upload: Default::default(),
            id: Constant::new(u64::from(regs::ID_VALUE).into()),
            version: Constant::new(u64::from(regs::version_value()).into()),
            max_message: Constant::new((MAX_MESSAGE_LEN as u64).into()),
            engines: Constant::new((u64::from(engines) | u64::from(contexts) << 16).into()),
            enabled: Default::default(),
            image_ok: Default::default(),
            errors: Default::default(),
            image_len: Default::default(),
            requests_in: Default::default(),
            responses_out: Default::default(),
            rejected: Default::default(),
            framing: Default::default(),
            valid: Default::default(),
            invalid: Default::default(),
            malformed: Default::default(),
            reset_q: Default::default(),
            checking: Default::default(),
            doorbell: Default::default(),
            ring_q: Default::default(),
            o_valid: Default::default(),
            o_data: Default::default(),
            take: Default::default(),
            write: Default::default(),
            events: Default::default(),
            read_value: Default::default(),
            verdict: Default::default(),
            status: Default::default(),
            raised: Default::default(),
        }
    }
}

impl Default for RegBlock {
    /// One engine of 16 contexts.
    fn default() -> Self {
        Self::new(1, 16)
    }
}

impl Logic for RegBlock {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            enabled,
            image_ok,
            errors,
            image_len,
            requests_in,
            responses_out,
            rejected,
            framing,
            valid,
            invalid,
            malformed,
            reset_q,
            checking,
            doorbell,
            ring_q,
            o_valid,
            o_data
        );
        self.upload.clock.next = self.clock.val();
        self.upload.out_ready.next = true;

        self.in_ready.next = !self.o_valid.q.val() | self.out_ready.val();
        self.take.next = self.in_valid.val() & self.in_ready.val();
        self.write.next = self.take.val() & (self.in_op.val() == 2);
        self.events.next = 0.into();
        if self.take.val() {
            self.events.next = self.in_events.val();
        }
        if self.out_ready.val() {
            self.o_valid.d.next = false;
        }

        self.status.next = 0.into();
        if self.image_ok.q.val() {
            self.status.next = 1.into();
            if self.enabled.q.val() {
                self.status.next = 3.into();
            }
        }
        if self.idle.val() {
            self.status.next = self.status.val() | 4;
        }
        // Offsets and bits are `firmware::regs`' (the Verilog export cannot name Rust
        // constants): ID 0x000, VERSION 0x004, CONTROL 0x008 (ENABLE 0, RESET 1, CLEAR_COUNTERS 2,
        // CLEAR_ERRORS 3),
        // STATUS 0x00C (IMAGE_OK 0, RUNNING 1, IDLE 2), ERRORS 0x010 (FRAMING 0, RECORD 1,
        // IMAGE_CHECKSUM 2, IMAGE_HEADER 3, ENGINE 4), ENGINES 0x014, MAX_MESSAGE 0x018,
        // counters 0x020–0x038, IMAGE_LEN 0x040, IMAGE_CRC 0x048, IMAGE_COMMIT 0x04C,
        // DOORBELL 0x050, DOORBELL_DONE 0x054, the image window 0x10000–0x1FFFF (the request
        // window's writes are the card's `request_window`'s).
        self.read_value.next = 0.into();
        if self.in_addr.val() == 0x000 {
            self.read_value.next = self.id.val();
        }
        if self.in_addr.val() == 0x004 {
            self.read_value.next = self.version.val();
        }
        if (self.in_addr.val() == 0x008) & self.enabled.q.val() {
            self.read_value.next = 1.into();
        }
        if self.in_addr.val() == 0x00c {
            self.read_value.next = bit_cast::<32, 3>(self.status.val());
        }
        if self.in_addr.val() == 0x010 {
            self.read_value.next = bit_cast::<32, 5>(self.errors.q.val());
        }
        if self.in_addr.val() == 0x014 {
            self.read_value.next = self.engines.val();
        }
        if self.in_addr.val() == 0x018 {
            self.read_value.next = self.max_message.val();
        }
        if self.in_addr.val() == 0x020 {
            self.read_value.next = self.requests_in.q.val();
        }
        if self.in_addr.val() == 0x024 {
            self.read_value.next = self.responses_out.q.val();
        }
        if self.in_addr.val() == 0x028 {
            self.read_value.next = self.rejected.q.val();
        }
        if self.in_addr.val() == 0x02c {
            self.read_value.next = self.framing.q.val();
        }
        if self.in_addr.val() == 0x030 {
            self.read_value.next = self.valid.q.val();
        }
        if self.in_addr.val() == 0x034 {
            self.read_value.next = self.invalid.q.val();
        }
        if self.in_addr.val() == 0x038 {
            self.read_value.next = self.malformed.q.val();
        }
        if self.in_addr.val() == 0x040 {
            self.read_value.next = self.image_len.q.val();
        }
        if self.in_addr.val() == 0x048 {
            self.read_value.next = self.upload.out_crc.val();
        }
        if (self.in_addr.val() == 0x04c) & self.checking.q.val() {
            self.read_value.next = 1.into();
        }
        if self.in_addr.val() == 0x050 {
            self.read_value.next = self.doorbell.q.val();
        }
        if self.in_addr.val() == 0x054 {
            self.read_value.next = bit_cast::<32, 16>(self.doorbell_done.val());
        }
        if self.take.val() & (self.in_op.val() == 1) {
            self.o_valid.d.next = true;
            self.o_data.d.next = self.read_value.val();
        }

        // Events count and raise errors.
        if self.events.val().get_bit(0) {
            self.requests_in.d.next = self.requests_in.q.val() + 1;
        }
        if self.events.val().get_bit(1) {
            self.responses_out.d.next = self.responses_out.q.val() + 1;
        }
        if self.events.val().get_bit(2) {
            self.rejected.d.next = self.rejected.q.val() + 1;
        }
        if self.events.val().get_bit(3) {
            self.framing.d.next = self.framing.q.val() + 1;
        }
        if self.events.val().get_bit(4) {
            self.valid.d.next = self.valid.q.val() + 1;
        }
        if self.events.val().get_bit(5) {
            self.invalid.d.next = self.invalid.q.val() + 1;
        }
        if self.events.val().get_bit(6) {
            self.malformed.d.next = self.malformed.q.val() + 1;
        }
        // What this cycle raises: event errors and the upload's verdict.
        self.raised.next = 0.into();
        if self.events.val().get_bit(3) {
            self.raised.next = 1.into();
        }
        if self.events.val().get_bit(2) {
            self.raised.next = self.raised.val() | 2;
        }
        if self.events.val().get_bit(7) {
            self.raised.next = self.raised.val() | 16;
        }
        // The upload's verdict: checksum error bit 2, header error bit 3.
        self.verdict.next = self.upload.out_valid.val() & (self.upload.out_kind.val() == 2);
        if self.verdict.val() {
            self.checking.d.next = false;
            self.image_ok.d.next = self.upload.out_verdict.val() == 0;
            if self.upload.out_verdict.val() == 1 {
                self.raised.next = self.raised.val() | 4;
            }
            if self.upload.out_verdict.val() == 2 {
                self.raised.next = self.raised.val() | 8;
            }
        }
        self.errors.d.next = self.errors.q.val() | self.raised.val();

        // Writes.
        self.upload.in_valid.next = false;
        self.upload.in_cmd.next = 1.into();
        self.upload.in_value.next = self.in_data.val();
        self.reset_q.d.next = false;
        self.ring_q.d.next = false;
        // A doorbell with a new sequence submits; the same sequence again is no event.
        if self.write.val()
            & (self.in_addr.val() == 0x050)
            & (self.in_data.val().get_bits::<16>(16) != self.doorbell.q.val().get_bits::<16>(16))
        {
            self.doorbell.d.next = self.in_data.val();
            self.ring_q.d.next = true;
        }
        if self.write.val() & (self.in_addr.val() == 0x008) {
            self.enabled.d.next = self.in_data.val().get_bit(0);
            self.reset_q.d.next = self.in_data.val().get_bit(1);
            if self.in_data.val().get_bit(2) {
                self.requests_in.d.next = 0.into();
                self.responses_out.d.next = 0.into();
                self.rejected.d.next = 0.into();
                self.framing.d.next = 0.into();
                self.valid.d.next = 0.into();
                self.invalid.d.next = 0.into();
                self.malformed.d.next = 0.into();
            }
        }
        if self.write.val() & (self.in_addr.val() == 0x008) & self.in_data.val().get_bit(3) {
            self.errors.d.next = 0.into();
        }
        if self.write.val() & (self.in_addr.val() == 0x040) {
            self.image_len.d.next = self.in_data.val();
            self.image_ok.d.next = false;
            self.upload.in_valid.next = true;
            self.upload.in_cmd.next = 0.into();
        }
        if self.write.val() & self.in_addr.val().get_bit(16) {
            self.upload.in_valid.next = true;
        }
        if self.write.val() & (self.in_addr.val() == 0x04c) & self.in_data.val().get_bit(0) {
            self.upload.in_valid.next = true;
            self.upload.in_cmd.next = 2.into();
            self.checking.d.next = true;
        }

        self.out_valid.next = self.o_valid.q.val();
        self.out_data.next = self.o_data.q.val();
        self.running.next = self.enabled.q.val() & self.image_ok.q.val();
        self.reset.next = self.reset_q.q.val();
        self.ring.next = self.ring_q.q.val();
        self.ring_value.next = self.doorbell.q.val();
        self.image_valid.next = self.upload.out_valid.val() & (self.upload.out_kind.val() != 2);
        self.image_kind.next = self.upload.out_kind.val();
        self.image_addr.next = self.upload.out_addr.val();
        self.image_data.next = self.upload.out_data.val();
        self.image_entry.next = self.upload.entry.val();
    }
}

impl StreamBlock for RegBlock {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_op",
            bits: 2,
        },
        Port {
            name: "in_addr",
            bits: 17,
        },
        Port {
            name: "in_data",
            bits: 32,
        },
        Port {
            name: "in_events",
            bits: 8,
        },
    ];
    const OUTPUTS: &'static [Port] = &[Port {
        name: "out_data",
        bits: 32,
    }];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        // As in the co-simulation bench, which drives the stream ports only.
        self.idle.next = false;
        if let Some(beat) = beat {
            self.in_op.next = u64::try_from(&beat[0]).unwrap_or(0).into();
            self.in_addr.next = u64::try_from(&beat[1]).unwrap_or(0).into();
            self.in_data.next = u64::try_from(&beat[2]).unwrap_or(0).into();
            self.in_events.next = u64::try_from(&beat[3]).unwrap_or(0).into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid
            .val()
            .then(|| vec![self.out_data.val().into()])
    }
}

/// One beat of the bus and the events: a read of `offset`, a write of `value`, or neither.
pub fn beat(op: u8, offset: u32, value: u32, events: u8) -> Beat {
    vec![
        BigUint::from(op),
        BigUint::from(offset),
        BigUint::from(value),
        BigUint::from(events),
    ]
}
