//! The BAR's request window (`firmware::regs`, "Two ways in for requests"): two halves of
//! 256 words that the host fills with request records through 32-bit BAR writes, and the
//! doorbell that hands a half to the record parser as one transfer.
//!
//! Storage is 16 RAMs of 512 × 32 bits, one per 32-bit lane of a 512-bit beat, so a BAR write
//! goes to one lane and a beat reads all sixteen at once. A submission (`ring`, from the
//! register block's `DOORBELL`) waits until the card runs, then streams its half row by row,
//! a beat every other cycle (the RAMs' read takes one), the last with `out_last`; then
//! `done` takes its sequence (`DOORBELL_DONE`). A length over 256 words is refused at once
//! (`refused`, a framing drop) and acknowledged; a length of 0 is acknowledged. A reset drops
//! a submission that has not started and acknowledges it; one that has started finishes, its
//! responses discarded by the card's epoch.

use rust_hdl::prelude::*;

/// The request window.
#[derive(LogicBlock)]
pub struct RequestWindow {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// A BAR write is taken this cycle.
    pub write: Signal<In, Bit>,
    /// Its offset in words (BAR offset bits 16–2: the BAR moves aligned words).
    pub write_word: Signal<In, Bits<15>>,
    /// Its value.
    pub write_data: Signal<In, Bits<32>>,
    /// `DOORBELL` was written with a new sequence (one cycle).
    pub ring: Signal<In, Bit>,
    /// The value written: sequence in bits 31–16, words in 15–0.
    pub ring_value: Signal<In, Bits<32>>,
    /// The card runs.
    pub running: Signal<In, Bit>,
    /// `CONTROL.RESET` (one cycle).
    pub reset: Signal<In, Bit>,
    /// A beat of the submission is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The parser takes it.
    pub out_ready: Signal<In, Bit>,
    /// The beat (byte 0 in bits 7:0).
    pub out_data: Signal<Out, Bits<512>>,
    /// The submission's last beat.
    pub out_last: Signal<Out, Bit>,
    /// `DOORBELL_DONE`.
    pub done: Signal<Out, Bits<16>>,
    /// A submission longer than a half was refused (one cycle).
    pub refused: Signal<Out, Bit>,
    lanes: [RAM<Bits<32>, 9>; 16],
    lane_ids: [Constant<Bits<4>>; 16],
    state: DFF<Bits<2>>,
    seq_no: DFF<Bits<16>>,
    row: DFF<Bits<9>>,
    left: DFF<Bits<9>>,
    done_q: DFF<Bits<16>>,
    refused_q: DFF<Bit>,
    in_window: Signal<Local, Bit>,
    lane: Signal<Local, Bits<4>>,
    words: Signal<Local, Bits<16>>,
}

impl Default for RequestWindow {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            write: Default::default(),
            write_word: Default::default(),
            write_data: Default::default(),
            ring: Default::default(),
            ring_value: Default::default(),
            running: Default::default(),
            reset: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_data: Default::default(),
            out_last: Default::default(),
            done: Default::default(),
            refused: Default::default(),
            lanes: std::array::from_fn(|_| Default::default()),
            lane_ids: std::array::from_fn(|k| Constant::new((k as u64).into())),
            state: Default::default(),
            seq_no: Default::default(),
            row: Default::default(),
            left: Default::default(),
            done_q: Default::default(),
            refused_q: Default::default(),
            in_window: Default::default(),
            lane: Default::default(),
            words: Default::default(),
        }
    }
}

impl Logic for RequestWindow {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, state, seq_no, row, left, done_q, refused_q);
        // `state` (as literals: the Verilog export cannot name Rust constants): 0 nothing to
        // do, 1 a submission held until the card runs, 2 a row being read, 3 a beat offered.

        // The window is 0x8000–0xFFFF: offset bit 16 clear, bit 15 set. Offset bits 14–6 are
        // the row (bit 14 the half), bits 5–2 the lane.
        self.in_window.next = self.write.val()
            & !self.write_word.val().get_bit(14)
            & self.write_word.val().get_bit(13);
        self.lane.next = self.write_word.val().get_bits::<4>(0);
        for k in 0..16 {
            self.lanes[k].read_clock.next = self.clock.val();
            self.lanes[k].write_clock.next = self.clock.val();
            self.lanes[k].write_address.next = self.write_word.val().get_bits::<9>(4);
            self.lanes[k].write_data.next = self.write_data.val();
            self.lanes[k].write_enable.next =
                self.in_window.val() & (self.lane.val() == self.lane_ids[k].val());
            self.lanes[k].read_address.next = self.row.q.val();
        }
        self.out_data.next = bit_cast::<512, 32>(self.lanes[0].read_data.val())
            | (bit_cast::<512, 32>(self.lanes[1].read_data.val()) << 32)
            | (bit_cast::<512, 32>(self.lanes[2].read_data.val()) << 64)
            | (bit_cast::<512, 32>(self.lanes[3].read_data.val()) << 96)
            | (bit_cast::<512, 32>(self.lanes[4].read_data.val()) << 128)
            | (bit_cast::<512, 32>(self.lanes[5].read_data.val()) << 160)
            | (bit_cast::<512, 32>(self.lanes[6].read_data.val()) << 192)
            | (bit_cast::<512, 32>(self.lanes[7].read_data.val()) << 224)
            | (bit_cast::<512, 32>(self.lanes[8].read_data.val()) << 256)
            | (bit_cast::<512, 32>(self.lanes[9].read_data.val()) << 288)
            | (bit_cast::<512, 32>(self.lanes[10].read_data.val()) << 320)
            | (bit_cast::<512, 32>(self.lanes[11].read_data.val()) << 352)
            | (bit_cast::<512, 32>(self.lanes[12].read_data.val()) << 384)
            | (bit_cast::<512, 32>(self.lanes[13].read_data.val()) << 416)
            | (bit_cast::<512, 32>(self.lanes[14].read_data.val()) << 448)
            | (bit_cast::<512, 32>(self.lanes[15].read_data.val()) << 480);

        self.out_valid.next = self.state.q.val() == 3;
        self.out_last.next = self.left.q.val() == 1;
        self.refused_q.d.next = false;
        if self.state.q.val() == 1 {
            if self.running.val() {
                self.state.d.next = 2.into();
            }
            if self.reset.val() {
                self.state.d.next = 0.into();
                self.done_q.d.next = self.seq_no.q.val();
            }
        }
        if self.state.q.val() == 2 {
            self.state.d.next = 3.into();
        }
        if (self.state.q.val() == 3) & self.out_ready.val() {
            self.row.d.next = self.row.q.val() + 1;
            self.left.d.next = self.left.q.val() - 1;
            self.state.d.next = 2.into();
            if self.left.q.val() == 1 {
                self.state.d.next = 0.into();
                self.done_q.d.next = self.seq_no.q.val();
            }
        }
        // A doorbell while a submission streams breaks the ABI's rule and is ignored.
        self.words.next = self.ring_value.val().get_bits::<16>(0);
        if self.ring.val() & ((self.state.q.val() == 0) | (self.state.q.val() == 1)) {
            self.seq_no.d.next = self.ring_value.val().get_bits::<16>(16);
            self.state.d.next = 1.into();
            self.row.d.next = bit_cast::<9, 1>(self.ring_value.val().get_bits::<1>(16)) << 8;
            self.left.d.next = self.words.val().get_bits::<9>(0);
            if (self.words.val() == 0) | (self.words.val() > 256) {
                self.state.d.next = 0.into();
                self.done_q.d.next = self.ring_value.val().get_bits::<16>(16);
                self.refused_q.d.next = self.words.val() > 256;
            }
        }
        self.done.next = self.done_q.q.val();
        self.refused.next = self.refused_q.q.val();
    }
}

#[cfg(test)]
mod tests {
    use num_bigint::BigUint;
    use verity_firmware::regs;

    use super::*;

    fn tick(uut: &mut RequestWindow) {
        uut.clock.next = false.into();
        assert!(simulate(uut, 50), "settles");
        uut.clock.next = true.into();
        assert!(simulate(uut, 50), "settles");
        uut.write.next = false;
        uut.ring.next = false;
        uut.reset.next = false;
    }

    fn write(uut: &mut RequestWindow, offset: regs::Offset, value: u32) {
        uut.write.next = true;
        uut.write_word.next = u64::from(offset.0 >> 2).into();
        uut.write_data.next = u64::from(value).into();
        tick(uut);
    }

    fn ring(uut: &mut RequestWindow, sequence: u16, words: u16) {
        uut.ring.next = true;
        uut.ring_value.next = u64::from(regs::doorbell(sequence, words)).into();
        tick(uut);
    }

    /// Takes beats until the last, ready every other cycle.
    fn drain(uut: &mut RequestWindow) -> Vec<u8> {
        let mut bytes = Vec::new();
        for cycle in 0..2000 {
            uut.out_ready.next = cycle % 3 != 1;
            assert!(simulate(uut, 50), "settles");
            if uut.out_valid.val() && uut.out_ready.val() {
                let data = BigUint::from(uut.out_data.val()).to_bytes_le();
                let mut beat = [0u8; 64];
                beat[..data.len()].copy_from_slice(&data);
                bytes.extend_from_slice(&beat);
                if uut.out_last.val() {
                    tick(uut);
                    return bytes;
                }
            }
            tick(uut);
        }
        panic!("no last beat");
    }

    #[test]
    fn each_half_streams_what_was_written_once_the_card_runs() {
        let mut uut = RequestWindow::default();
        uut.connect_all();
        // Half 1 (sequence 1): three words of a counting pattern.
        let first: Vec<u8> = (0..192u32).map(|i| i as u8).collect();
        for (i, word) in first.chunks(4).enumerate() {
            let value = u32::from_le_bytes(word.try_into().expect("4 bytes"));
            write(
                &mut uut,
                regs::Offset(regs::request_half(1).0 + 4 * i as u32),
                value,
            );
        }
        ring(&mut uut, 1, 3);
        for _ in 0..5 {
            tick(&mut uut);
            assert!(!uut.out_valid.val(), "held while the card does not run");
        }
        uut.running.next = true;
        assert_eq!(drain(&mut uut), first);
        tick(&mut uut);
        assert_eq!(uut.done.val(), bits::<16>(1));
        // Half 0 (sequence 2), one word; a write outside the window changes nothing.
        let second: Vec<u8> = (0..64u32).map(|i| (i * 7) as u8).collect();
        for (i, word) in second.chunks(4).enumerate() {
            let value = u32::from_le_bytes(word.try_into().expect("4 bytes"));
            write(
                &mut uut,
                regs::Offset(regs::request_half(2).0 + 4 * i as u32),
                value,
            );
        }
        write(&mut uut, regs::Offset(0x1_0000), 0xffff_ffff);
        ring(&mut uut, 2, 1);
        assert_eq!(drain(&mut uut), second);
        tick(&mut uut);
        assert_eq!(uut.done.val(), bits::<16>(2));
        // Too long: refused and acknowledged at once.
        ring(&mut uut, 3, 257);
        assert!(uut.refused.val());
        assert_eq!(uut.done.val(), bits::<16>(3));
        // A reset drops a held submission and acknowledges it.
        uut.running.next = false;
        ring(&mut uut, 4, 2);
        uut.reset.next = true;
        tick(&mut uut);
        tick(&mut uut);
        assert_eq!(uut.done.val(), bits::<16>(4));
        uut.running.next = true;
        for _ in 0..5 {
            tick(&mut uut);
            assert!(!uut.out_valid.val());
        }
    }
}
