//! SHA-2 message padding on the card: a stream of words in, a stream of whole blocks out.
//!
//! The host sends each message as big-endian words of `W` bits (64 for SHA-512, 32 for
//! SHA-256), every word full except the one flagged `last`, which carries `len` bytes
//! (0 to `W/8`; 0 is how the empty message is sent). The padder appends the `0x80` marker,
//! zeros and the message's bit length in the last two words of the final block, exactly as
//! FIPS 180-4 pads, and hands out blocks of 16 words with the message's tag and flags saying
//! whether the block is the first and/or the last of its message.
//!
//! One word enters per cycle, so a block takes 16 cycles to assemble (17 with the hand-off)
//! against the compression core's 64 or 80: the padder is never the bottleneck. Messages are
//! at most 2^32 − 1 bytes; the card's are at most [`verity_firmware::abi::MAX_MESSAGE_LEN`]
//! plus the 64 bytes of R ‖ A.

use rust_hdl::prelude::*;

/// Width of the message tag carried alongside every hash stream on the card (a request slot).
pub const TAG_BITS: usize = 16;

/// Where the padder is in the current message.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum PadState {
    /// Taking message words from the input.
    Data,
    /// The last word was full: the next word starts with the `0x80` marker.
    Marker,
    /// Writing zeros until word 14, then the high half of the bit length.
    Zeros,
    /// Writing the low half of the bit length as word 15, closing the message.
    LengthLow,
}

/// The padder: words of `W` bits in, blocks of `B` = 16 × `W` bits out.
#[derive(LogicBlock)]
pub struct Padder<const W: usize, const B: usize> {
    /// Clock of the hash pipeline.
    pub clock: Signal<In, Clock>,
    /// A message word is offered.
    pub in_valid: Signal<In, Bit>,
    /// The padder takes the offered word this cycle.
    pub in_ready: Signal<Out, Bit>,
    /// Message bytes, first byte in the most significant position.
    pub in_data: Signal<In, Bits<W>>,
    /// Bytes used in a `last` word (0 to `W/8`); ignored otherwise (every other word is full).
    /// A larger count breaks the protocol: that message's digest is then meaningless, but the
    /// stream stays in step (the card's record parser never sends one).
    pub in_len: Signal<In, Bits<4>>,
    /// This word ends its message.
    pub in_last: Signal<In, Bit>,
    /// The message's tag (constant over its words).
    pub in_tag: Signal<In, Bits<TAG_BITS>>,
    /// A padded block is ready in `blk_data`.
    pub blk_valid: Signal<Out, Bit>,
    /// The consumer takes the block this cycle.
    pub blk_ready: Signal<In, Bit>,
    /// The block, word 0 in the most significant bits.
    pub blk_data: Signal<Out, Bits<B>>,
    /// The block is its message's first.
    pub blk_first: Signal<Out, Bit>,
    /// The block is its message's last.
    pub blk_last: Signal<Out, Bit>,
    /// The block's message tag.
    pub blk_tag: Signal<Out, Bits<TAG_BITS>>,
    block: DFF<Bits<B>>,
    index: DFF<Bits<4>>,
    state: DFF<PadState>,
    bytes: DFF<Bits<32>>,
    full: DFF<Bit>,
    mid_message: DFF<Bit>,
    out_first: DFF<Bit>,
    out_last: DFF<Bit>,
    tag: DFF<Bits<TAG_BITS>>,
    ones: Constant<Bits<W>>,
    marker: Constant<Bits<W>>,
    word_bytes: Constant<Bits<4>>,
    word_bits: Constant<Bits<8>>,
    shift: Signal<Local, Bits<8>>,
    data_word: Signal<Local, Bits<W>>,
    bit_length: Signal<Local, Bits<64>>,
    length_high: Signal<Local, Bits<W>>,
    push: Signal<Local, Bit>,
    push_word: Signal<Local, Bits<W>>,
}

impl<const W: usize, const B: usize> Default for Padder<W, B> {
    fn default() -> Self {
        assert!(W == 32 || W == 64, "SHA-2 words are 32 or 64 bits");
        assert_eq!(B, 16 * W, "a SHA-2 block is 16 words");
        let ones = (0..W).fold(Bits::<W>::default(), |acc, bit| acc.replace_bit(bit, true));
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_data: Default::default(),
            in_len: Default::default(),
            in_last: Default::default(),
            in_tag: Default::default(),
            blk_valid: Default::default(),
            blk_ready: Default::default(),
            blk_data: Default::default(),
            blk_first: Default::default(),
            blk_last: Default::default(),
            blk_tag: Default::default(),
            block: Default::default(),
            index: Default::default(),
            state: Default::default(),
            bytes: Default::default(),
            full: Default::default(),
            mid_message: Default::default(),
            out_first: Default::default(),
            out_last: Default::default(),
            tag: Default::default(),
            ones: Constant::new(ones),
            marker: Constant::new(Bits::<W>::from(0x80u64) << (W as u64 - 8)),
            word_bytes: Constant::new(((W / 8) as u64).into()),
            word_bits: Constant::new((W as u64).into()),
            shift: Default::default(),
            data_word: Default::default(),
            bit_length: Default::default(),
            length_high: Default::default(),
            push: Default::default(),
            push_word: Default::default(),
        }
    }
}

impl<const W: usize, const B: usize> Logic for Padder<W, B> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            block,
            index,
            state,
            bytes,
            full,
            mid_message,
            out_first,
            out_last,
            tag
        );
        self.blk_data.next = self.block.q.val();
        self.blk_valid.next = self.full.q.val();
        self.blk_first.next = self.out_first.q.val();
        self.blk_last.next = self.out_last.q.val();
        self.blk_tag.next = self.tag.q.val();
        if self.full.q.val() & self.blk_ready.val() {
            self.full.d.next = false;
        }
        // The last word keeps its `len` bytes and gets the marker right after them when it
        // has room; a full last word leaves the marker to the next word (state Marker).
        self.shift.next = bit_cast::<8, 4>(self.in_len.val()) << 3;
        self.data_word.next = self.in_data.val();
        if self.in_last.val() {
            self.data_word.next = (self.in_data.val() & !(self.ones.val() >> self.shift.val()))
                | (self.marker.val() >> self.shift.val());
        }
        self.bit_length.next = bit_cast::<64, 32>(self.bytes.q.val()) << 3;
        // Zero for SHA-512, whose 128-bit length field dwarfs a 32-bit byte count.
        self.length_high.next = bit_cast::<W, 64>(self.bit_length.val() >> self.word_bits.val());
        self.in_ready.next = false;
        self.push.next = false;
        self.push_word.next = 0.into();
        if !self.full.q.val() {
            match self.state.q.val() {
                PadState::Data => {
                    self.in_ready.next = true;
                    if self.in_valid.val() {
                        self.push.next = true;
                        self.push_word.next = self.data_word.val();
                        self.tag.d.next = self.in_tag.val();
                        if self.in_last.val() {
                            self.bytes.d.next =
                                self.bytes.q.val() + bit_cast::<32, 4>(self.in_len.val());
                            if self.in_len.val() == self.word_bytes.val() {
                                self.state.d.next = PadState::Marker;
                            } else {
                                self.state.d.next = PadState::Zeros;
                            }
                        } else {
                            self.bytes.d.next =
                                self.bytes.q.val() + bit_cast::<32, 4>(self.word_bytes.val());
                        }
                    }
                }
                PadState::Marker => {
                    self.push.next = true;
                    self.push_word.next = self.marker.val();
                    self.state.d.next = PadState::Zeros;
                }
                PadState::Zeros => {
                    self.push.next = true;
                    if self.index.q.val() == 14 {
                        self.push_word.next = self.length_high.val();
                        self.state.d.next = PadState::LengthLow;
                    }
                }
                PadState::LengthLow => {
                    self.push.next = true;
                    self.push_word.next = self.bit_length.val().get_bits::<W>(0);
                    self.state.d.next = PadState::Data;
                    self.bytes.d.next = 0.into();
                }
            }
        }
        if self.push.val() {
            self.block.d.next = (self.block.q.val() << self.word_bits.val())
                | bit_cast::<B, W>(self.push_word.val());
            self.index.d.next = self.index.q.val() + 1;
            if self.index.q.val() == 15 {
                self.full.d.next = true;
                // Power-on (0) means "the next block starts a message".
                self.out_first.d.next = !self.mid_message.q.val();
                self.out_last.d.next = self.state.q.val() == PadState::LengthLow;
                self.mid_message.d.next = self.state.q.val() != PadState::LengthLow;
            }
        }
    }
}
