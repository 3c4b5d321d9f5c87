//! The SHA-2 compression function: one round per cycle, one block per `rounds` cycles.
//!
//! Iterative rather than unrolled: a SHA-512 block every 80 cycles already outruns the ECC
//! engines it feeds (one verification takes thousands of multiplier cycles), so the area of
//! 80 unrolled rounds would buy nothing. No cycle is spent only on loading or finishing, so a
//! block takes exactly `rounds` cycles at steady state:
//! - the last round of a block also adds the block's starting chaining value (the
//!   feed-forward) into the working variables, so they leave the round as the new chaining
//!   value, or the digest;
//! - the cycle that takes a new block runs its round 0 on that value (or on the IV when the
//!   block starts a message).
//!
//! The critical path is then one round: a 2:1 choice of the round's input, Σ/Ch/Maj, and two
//! multi-operand sums (`a` of eight terms, `e` of seven), each written as one expression so
//! that synthesis builds a carry-save tree with a single carry chain at its end.
//!
//! Streams: blocks in (`in_*`, with the message's tag and first/last flags), digests out
//! (`out_*`, one per message), both with valid/ready. The digest register is a one-deep
//! output buffer: when the consumer stalls, the core finishes the next message's blocks except
//! the last one, then waits.

use crate::padder::TAG_BITS;
use crate::sha2_spec::Sha2Spec;
use rust_hdl::prelude::*;
use std::collections::BTreeMap;

/// A SHA-2 compression core for words of `W` bits, blocks of `B` = 16·W bits and digests of
/// `D` = 8·W bits.
#[derive(LogicBlock)]
pub struct Sha2Core<const W: usize, const B: usize, const D: usize> {
    /// Clock of the hash pipeline.
    pub clock: Signal<In, Clock>,
    /// A block is offered.
    pub in_valid: Signal<In, Bit>,
    /// The core takes the offered block this cycle.
    pub in_ready: Signal<Out, Bit>,
    /// The padded block, word 0 in the most significant bits.
    pub in_block: Signal<In, Bits<B>>,
    /// The block starts a message (chaining value = IV).
    pub in_first: Signal<In, Bit>,
    /// The block ends a message (its result is the digest).
    pub in_last: Signal<In, Bit>,
    /// The message's tag.
    pub in_tag: Signal<In, Bits<TAG_BITS>>,
    /// A digest is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes the digest this cycle.
    pub out_ready: Signal<In, Bit>,
    /// The digest, H0 in the most significant bits (the byte order of the standard).
    pub out_digest: Signal<Out, Bits<D>>,
    /// The digest's message tag.
    pub out_tag: Signal<Out, Bits<TAG_BITS>>,
    vars: [DFF<Bits<W>>; 8],
    chain: [DFF<Bits<W>>; 8],
    schedule: DFF<Bits<B>>,
    round: DFF<Bits<7>>,
    running: DFF<Bit>,
    finishing: DFF<Bit>,
    last: DFF<Bit>,
    tag: DFF<Bits<TAG_BITS>>,
    digest: DFF<Bits<D>>,
    digest_valid: DFF<Bit>,
    digest_tag: DFF<Bits<TAG_BITS>>,
    // The round constants, stored as K[t] ⊕ K[0] and read a cycle ahead into `k_ahead`, so
    // that the ROM is off the round's path and the register's power-on zero means K[0].
    k: ROM<Bits<W>, 7>,
    k_ahead: DFF<Bits<W>>,
    k0: Constant<Bits<W>>,
    k_now: Signal<Local, Bits<W>>,
    iv: [Constant<Bits<W>>; 8],
    // Right-rotation amounts r and their complements W − r: Σ0 ×3, Σ1 ×3, σ0 ×2, σ1 ×2.
    rot: [Constant<Bits<8>>; 10],
    rot_back: [Constant<Bits<8>>; 10],
    // The right shifts of σ0 and σ1.
    shr: [Constant<Bits<8>>; 2],
    // Offsets of schedule words W[t], W[t+1], W[t+9], W[t+14] in the 16-word window.
    tap: [Constant<Bits<16>>; 4],
    // Offsets of H0..H7 in the digest.
    digest_shift: [Constant<Bits<16>>; 8],
    word_bits: Constant<Bits<8>>,
    penultimate_round: Constant<Bits<7>>,
    feed_forward: [Signal<Local, Bits<W>>; 8],
    input: [Signal<Local, Bits<W>>; 8],
    window: Signal<Local, Bits<B>>,
    taps: [Signal<Local, Bits<W>>; 4],
    small_sigma0: Signal<Local, Bits<W>>,
    small_sigma1: Signal<Local, Bits<W>>,
    next_word: Signal<Local, Bits<W>>,
    big_sigma0: Signal<Local, Bits<W>>,
    big_sigma1: Signal<Local, Bits<W>>,
    choose: Signal<Local, Bits<W>>,
    majority: Signal<Local, Bits<W>>,
    can_finish: Signal<Local, Bit>,
    final_round: DFF<Bit>,
    accept: Signal<Local, Bit>,
}

impl<const W: usize, const B: usize, const D: usize> Sha2Core<W, B, D> {
    /// The core for `spec`, whose word width must be `W`.
    ///
    /// # Panics
    /// When the widths disagree with `spec` (a build-time mistake).
    pub fn new(spec: &Sha2Spec) -> Self {
        assert_eq!(
            spec.word_bits, W,
            "spec and core disagree on the word width"
        );
        assert_eq!(
            (B, D),
            (16 * W, 8 * W),
            "a block is 16 words and a digest 8"
        );
        let k: BTreeMap<Bits<7>, Bits<W>> = spec
            .k
            .iter()
            .enumerate()
            .map(|(t, &k)| ((t as u64).into(), (k ^ spec.k[0]).into()))
            .collect();
        let rotations: Vec<u32> = [
            &spec.big_sigma0[..],
            &spec.big_sigma1[..],
            &spec.small_sigma0[..2],
            &spec.small_sigma1[..2],
        ]
        .concat();
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_block: Default::default(),
            in_first: Default::default(),
            in_last: Default::default(),
            in_tag: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_digest: Default::default(),
            out_tag: Default::default(),
            vars: Default::default(),
            chain: Default::default(),
            schedule: Default::default(),
            round: Default::default(),
            running: Default::default(),
            finishing: Default::default(),
            last: Default::default(),
            tag: Default::default(),
            digest: Default::default(),
            digest_valid: Default::default(),
            digest_tag: Default::default(),
            k: ROM::new(k),
            k_ahead: Default::default(),
            k0: Constant::new(spec.k[0].into()),
            k_now: Default::default(),
            iv: std::array::from_fn(|i| Constant::new(spec.iv[i].into())),
            rot: std::array::from_fn(|i| constant(rotations[i].into())),
            rot_back: std::array::from_fn(|i| constant((W as u32 - rotations[i]).into())),
            shr: [
                constant(spec.small_sigma0[2].into()),
                constant(spec.small_sigma1[2].into()),
            ],
            tap: [0, 1, 9, 14].map(|word| constant(((15 - word) * W) as u64)),
            digest_shift: std::array::from_fn(|i| constant(((7 - i) * W) as u64)),
            word_bits: constant(W as u64),
            penultimate_round: constant(spec.rounds as u64 - 2),
            feed_forward: Default::default(),
            input: Default::default(),
            window: Default::default(),
            taps: Default::default(),
            small_sigma0: Default::default(),
            small_sigma1: Default::default(),
            next_word: Default::default(),
            big_sigma0: Default::default(),
            big_sigma1: Default::default(),
            choose: Default::default(),
            majority: Default::default(),
            can_finish: Default::default(),
            final_round: Default::default(),
            accept: Default::default(),
        }
    }
}

fn constant<const N: usize>(value: u64) -> Constant<Bits<N>> {
    Constant::new(value.into())
}

impl<const W: usize, const B: usize, const D: usize> Logic for Sha2Core<W, B, D> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            schedule,
            round,
            running,
            finishing,
            last,
            tag,
            digest,
            digest_valid,
            digest_tag,
            final_round,
            k_ahead
        );
        for i in 0..8 {
            self.vars[i].clock.next = self.clock.val();
            self.vars[i].d.next = self.vars[i].q.val();
            self.chain[i].clock.next = self.clock.val();
            self.chain[i].d.next = self.chain[i].q.val();
            self.input[i].next = self.vars[i].q.val();
            self.feed_forward[i].next = 0.into();
            if self.final_round.q.val() {
                self.feed_forward[i].next = self.chain[i].q.val();
            }
        }
        self.out_valid.next = self.digest_valid.q.val();
        self.out_digest.next = self.digest.q.val();
        self.out_tag.next = self.digest_tag.q.val();
        self.k_now.next = self.k_ahead.q.val() ^ self.k0.val();

        // A finished block's working variables are the new chaining value; a message's last
        // block moves them into the digest register once it is free.
        if self.digest_valid.q.val() & self.out_ready.val() {
            self.digest_valid.d.next = false;
        }
        self.can_finish.next = self.finishing.q.val()
            & (!self.last.q.val() | !self.digest_valid.q.val() | self.out_ready.val());
        if self.can_finish.val() {
            self.finishing.d.next = false;
            if self.last.q.val() {
                self.digest.d.next = (bit_cast::<D, W>(self.vars[0].q.val())
                    << self.digest_shift[0].val())
                    | (bit_cast::<D, W>(self.vars[1].q.val()) << self.digest_shift[1].val())
                    | (bit_cast::<D, W>(self.vars[2].q.val()) << self.digest_shift[2].val())
                    | (bit_cast::<D, W>(self.vars[3].q.val()) << self.digest_shift[3].val())
                    | (bit_cast::<D, W>(self.vars[4].q.val()) << self.digest_shift[4].val())
                    | (bit_cast::<D, W>(self.vars[5].q.val()) << self.digest_shift[5].val())
                    | (bit_cast::<D, W>(self.vars[6].q.val()) << self.digest_shift[6].val())
                    | (bit_cast::<D, W>(self.vars[7].q.val()) << self.digest_shift[7].val());
                self.digest_valid.d.next = true;
                self.digest_tag.d.next = self.tag.q.val();
            }
        }

        // Accepting a block: its round 0 runs this cycle, on the IV or on the chaining value
        // the previous block left in the working variables. Readiness depends on registers
        // only, not on `out_ready`, and the round's inputs are chosen by `running` and
        // `in_first` rather than by the handshake, to keep the handshake's logic off the
        // round's critical path (when neither a round nor an accept happens, the round's
        // result is simply not stored).
        self.in_ready.next = !self.running.q.val()
            & !(self.finishing.q.val() & self.last.q.val() & self.digest_valid.q.val());
        self.accept.next = self.in_valid.val() & self.in_ready.val();
        self.window.next = self.schedule.q.val();
        if !self.running.q.val() {
            for i in 0..8 {
                if self.in_first.val() {
                    self.input[i].next = self.iv[i].val();
                }
            }
            self.window.next = self.in_block.val();
        }
        if self.accept.val() {
            for i in 0..8 {
                self.chain[i].d.next = self.input[i].val();
            }
            self.last.d.next = self.in_last.val();
            self.tag.d.next = self.in_tag.val();
            self.running.d.next = true;
        }

        // Message schedule: the window holds W[t..t+16]; W[t+16] is appended as W[t] leaves.
        for i in 0..4 {
            self.taps[i].next = self.window.val().get_bits::<W>(self.tap[i].val().index());
        }
        self.small_sigma0.next = ((self.taps[1].val() >> self.rot[6].val())
            | (self.taps[1].val() << self.rot_back[6].val()))
            ^ ((self.taps[1].val() >> self.rot[7].val())
                | (self.taps[1].val() << self.rot_back[7].val()))
            ^ (self.taps[1].val() >> self.shr[0].val());
        self.small_sigma1.next = ((self.taps[3].val() >> self.rot[8].val())
            | (self.taps[3].val() << self.rot_back[8].val()))
            ^ ((self.taps[3].val() >> self.rot[9].val())
                | (self.taps[3].val() << self.rot_back[9].val()))
            ^ (self.taps[3].val() >> self.shr[1].val());
        self.next_word.next = self.small_sigma1.val()
            + self.taps[2].val()
            + self.small_sigma0.val()
            + self.taps[0].val();

        // The round.
        self.big_sigma0.next = ((self.input[0].val() >> self.rot[0].val())
            | (self.input[0].val() << self.rot_back[0].val()))
            ^ ((self.input[0].val() >> self.rot[1].val())
                | (self.input[0].val() << self.rot_back[1].val()))
            ^ ((self.input[0].val() >> self.rot[2].val())
                | (self.input[0].val() << self.rot_back[2].val()));
        self.big_sigma1.next = ((self.input[4].val() >> self.rot[3].val())
            | (self.input[4].val() << self.rot_back[3].val()))
            ^ ((self.input[4].val() >> self.rot[4].val())
                | (self.input[4].val() << self.rot_back[4].val()))
            ^ ((self.input[4].val() >> self.rot[5].val())
                | (self.input[4].val() << self.rot_back[5].val()));
        self.choose.next = (self.input[4].val() & self.input[5].val())
            ^ (!self.input[4].val() & self.input[6].val());
        self.majority.next = (self.input[0].val() & self.input[1].val())
            ^ (self.input[0].val() & self.input[2].val())
            ^ (self.input[1].val() & self.input[2].val());
        if self.running.q.val() | self.accept.val() {
            // a = T1 + T2 and e = d + T1, with T1 = h + Σ1 + Ch + K + W, T2 = Σ0 + Maj, and
            // in the last round the feed-forward of each word. The two sums start with
            // different terms so that synthesis does not share T1 between them, which would
            // chain two carry chains.
            self.vars[0].d.next = self.big_sigma0.val()
                + self.majority.val()
                + self.feed_forward[0].val()
                + self.input[7].val()
                + self.big_sigma1.val()
                + self.choose.val()
                + self.k_now.val()
                + self.taps[0].val();
            self.vars[1].d.next = self.input[0].val() + self.feed_forward[1].val();
            self.vars[2].d.next = self.input[1].val() + self.feed_forward[2].val();
            self.vars[3].d.next = self.input[2].val() + self.feed_forward[3].val();
            self.vars[4].d.next = self.input[3].val()
                + self.feed_forward[4].val()
                + self.input[7].val()
                + self.big_sigma1.val()
                + self.choose.val()
                + self.k_now.val()
                + self.taps[0].val();
            self.vars[5].d.next = self.input[4].val() + self.feed_forward[5].val();
            self.vars[6].d.next = self.input[5].val() + self.feed_forward[6].val();
            self.vars[7].d.next = self.input[6].val() + self.feed_forward[7].val();
            self.schedule.d.next = (self.window.val() << self.word_bits.val())
                | bit_cast::<B, W>(self.next_word.val());
            self.round.d.next = self.round.q.val() + 1;
            self.final_round.d.next = self.round.q.val() == self.penultimate_round.val();
            if self.final_round.q.val() {
                self.running.d.next = false;
                self.finishing.d.next = true;
                self.round.d.next = 0.into();
            }
        }
        // `round` is 0 whenever no block runs, so `k_ahead` holds K[0] ⊕ K[0] = 0 for the cycle
        // that accepts a block.
        self.k.address.next = self.round.d.val();
        self.k_ahead.d.next = self.k.data.val();
    }
}
