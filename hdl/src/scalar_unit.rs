//! The scalar unit: from SHA-512(R ‖ A ‖ M) and S to the digits the ECC engine walks.
//!
//! One job is a 512-bit digest and the signature's S. The unit
//!
//! 1. checks S < L when it takes the job (one 257-bit addition of 2²⁵⁶ − L: its carry says
//!    S ≥ L); a non-canonical S is recoded as 0 and flagged, and the card answers `Malformed`
//!    without running an engine;
//! 2. reduces the digest mod L one bit per cycle from the top, `r ← 2r + bit`, minus L when
//!    that is not below L — 512 cycles, the firmware's `Scalar::reduce_wide` step for step;
//! 3. recodes k (width 5) and S (width 8) into non-adjacent form together, one digit position
//!    per cycle for the 256 positions of `verity_firmware::scalar::DIGITS`, as
//!    `Scalar::naf` does: an odd value gives the signed low window as its digit and is rounded
//!    to a multiple of the window, then both values shift right.
//!
//! Each digit position leaves as one output beat (position, k's digit, S's digit, all as
//! two's-complement bytes), so the dispatcher can write them straight into an engine's digit
//! RAMs. Every step is one carry chain of at most 257 bits; nothing wider than an adder sits
//! between registers. A job takes 512 + 256 cycles plus one per handshake; the card runs as
//! many units as its engines need (an engine verifies in about 3,500 cycles, so one unit
//! feeds four).

use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_hdl::prelude::*;

use crate::field_value::excess_addend;
use crate::flow::harness::{Beat, Port, StreamBlock};

/// Where the unit is in a job.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum ScalarState {
    /// Waiting for a job.
    Idle,
    /// Reducing the digest, one bit per cycle.
    Reduce,
    /// Handing out one digit position per beat.
    Recode,
}

/// The scalar unit.
#[derive(LogicBlock)]
pub struct ScalarUnit {
    /// The card clock.
    pub clock: Signal<In, Clock>,
    /// A job is offered.
    pub in_valid: Signal<In, Bit>,
    /// The unit takes the offered job this cycle.
    pub in_ready: Signal<Out, Bit>,
    /// SHA-512(R ‖ A ‖ M) as a little-endian integer (byte 0 in bits 7:0).
    pub in_hash: Signal<In, Bits<512>>,
    /// S as the signature carries it, a little-endian integer.
    pub in_s: Signal<In, Bits<256>>,
    /// A digit position is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it this cycle.
    pub out_ready: Signal<In, Bit>,
    /// The position, 0 to 255.
    pub out_position: Signal<Out, Bits<8>>,
    /// k's digit there (width-5 NAF), two's complement.
    pub out_k: Signal<Out, Bits<8>>,
    /// S's digit there (width-8 NAF), two's complement.
    pub out_s: Signal<Out, Bits<8>>,
    /// S is canonical (below L); when not, its digits are 0.
    pub out_s_ok: Signal<Out, Bit>,
    /// The job's last position.
    pub out_last: Signal<Out, Bit>,
    state: DFF<ScalarState>,
    hash: DFF<Bits<512>>,
    k: DFF<Bits<256>>,
    s: DFF<Bits<256>>,
    s_ok: DFF<Bit>,
    count: DFF<Bits<9>>,
    minus_order: Constant<Bits<257>>,
    s_excess: Signal<Local, Bits<257>>,
    doubled: Signal<Local, Bits<257>>,
    doubled_excess: Signal<Local, Bits<257>>,
    k_low: Signal<Local, Bits<5>>,
    k_digit: Signal<Local, Bits<8>>,
    k_rounded: Signal<Local, Bits<256>>,
    s_low: Signal<Local, Bits<8>>,
    s_rounded: Signal<Local, Bits<256>>,
}

impl Default for ScalarUnit {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_hash: Default::default(),
            in_s: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_position: Default::default(),
            out_k: Default::default(),
            out_s: Default::default(),
            out_s_ok: Default::default(),
            out_last: Default::default(),
            state: Default::default(),
            hash: Default::default(),
            k: Default::default(),
            s: Default::default(),
            s_ok: Default::default(),
            count: Default::default(),
            minus_order: Constant::new(excess_addend(&BigUint::from_bytes_le(
                &verity_firmware::scalar::order(),
            ))),
            s_excess: Default::default(),
            doubled: Default::default(),
            doubled_excess: Default::default(),
            k_low: Default::default(),
            k_digit: Default::default(),
            k_rounded: Default::default(),
            s_low: Default::default(),
            s_rounded: Default::default(),
        }
    }
}

impl Logic for ScalarUnit {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, state, hash, k, s, s_ok, count);

        // S ≥ L when adding 2²⁵⁶ − L carries out.
        self.s_excess.next = bit_cast::<257, 256>(self.in_s.val()) + self.minus_order.val();
        // One reduction step: 2k + the digest's top bit, minus L when that is at least L.
        self.doubled.next = (bit_cast::<257, 256>(self.k.q.val()) << 1)
            | bit_cast::<257, 1>(self.hash.q.val().get_bits::<1>(511));
        self.doubled_excess.next = self.doubled.val() + self.minus_order.val();

        // One recoding step of each value: an odd value's signed low window is its digit (a
        // window at or above half is negative: the value rounds up to the next multiple).
        self.k_low.next = self.k.q.val().get_bits::<5>(0);
        self.k_digit.next = 0.into();
        self.k_rounded.next = self.k.q.val();
        if self.k_low.val().get_bit(0) {
            self.k_digit.next = bit_cast::<8, 5>(self.k_low.val());
            self.k_rounded.next = self.k.q.val() & !bit_cast::<256, 5>(31.into());
            if self.k_low.val().get_bit(4) {
                self.k_digit.next = bit_cast::<8, 5>(self.k_low.val()) | 0xe0;
                self.k_rounded.next = (self.k.q.val() & !bit_cast::<256, 5>(31.into()))
                    + bit_cast::<256, 6>(32.into());
            }
        }
        self.s_low.next = self.s.q.val().get_bits::<8>(0);
        self.s_rounded.next = self.s.q.val();
        if self.s_low.val().get_bit(0) {
            self.s_rounded.next = self.s.q.val() & !bit_cast::<256, 8>(255.into());
            if self.s_low.val().get_bit(7) {
                self.s_rounded.next = (self.s.q.val() & !bit_cast::<256, 8>(255.into()))
                    + bit_cast::<256, 9>(256.into());
            }
        }

        self.in_ready.next = self.state.q.val() == ScalarState::Idle;
        self.out_valid.next = self.state.q.val() == ScalarState::Recode;
        self.out_position.next = self.count.q.val().get_bits::<8>(0);
        self.out_k.next = self.k_digit.val();
        self.out_s.next = 0.into();
        if self.s_low.val().get_bit(0) {
            self.out_s.next = self.s_low.val();
        }
        self.out_s_ok.next = self.s_ok.q.val();
        self.out_last.next = self.count.q.val().get_bits::<8>(0) == 255;

        match self.state.q.val() {
            ScalarState::Idle => {
                if self.in_valid.val() {
                    self.hash.d.next = self.in_hash.val();
                    self.k.d.next = 0.into();
                    self.s_ok.d.next = !self.s_excess.val().get_bit(256);
                    self.s.d.next = 0.into();
                    if !self.s_excess.val().get_bit(256) {
                        self.s.d.next = self.in_s.val();
                    }
                    self.count.d.next = 0.into();
                    self.state.d.next = ScalarState::Reduce;
                }
            }
            ScalarState::Reduce => {
                self.hash.d.next = self.hash.q.val() << 1;
                self.k.d.next = self.doubled.val().get_bits::<256>(0);
                if self.doubled_excess.val().get_bit(256) {
                    self.k.d.next = self.doubled_excess.val().get_bits::<256>(0);
                }
                self.count.d.next = self.count.q.val() + 1;
                if self.count.q.val() == 511 {
                    self.count.d.next = 0.into();
                    self.state.d.next = ScalarState::Recode;
                }
            }
            ScalarState::Recode => {
                if self.out_ready.val() {
                    self.k.d.next = self.k_rounded.val() >> 1;
                    self.s.d.next = self.s_rounded.val() >> 1;
                    self.count.d.next = self.count.q.val() + 1;
                    if self.count.q.val().get_bits::<8>(0) == 255 {
                        self.state.d.next = ScalarState::Idle;
                    }
                }
            }
        }
    }
}

impl StreamBlock for ScalarUnit {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_hash",
            bits: 512,
        },
        Port {
            name: "in_s",
            bits: 256,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "out_position",
            bits: 8,
        },
        Port {
            name: "out_k",
            bits: 8,
        },
        Port {
            name: "out_s",
            bits: 8,
        },
        Port {
            name: "out_s_ok",
            bits: 1,
        },
        Port {
            name: "out_last",
            bits: 1,
        },
    ];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_hash.next = beat[0].clone().into();
            self.in_s.next = beat[1].clone().into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid.val().then(|| {
            vec![
                self.out_position.val().into(),
                self.out_k.val().into(),
                self.out_s.val().into(),
                u8::from(self.out_s_ok.val()).into(),
                u8::from(self.out_last.val()).into(),
            ]
        })
    }
}

/// The input beat of one job.
pub fn job(hash: &[u8; 64], s: &[u8; 32]) -> Beat {
    vec![BigUint::from_bytes_le(hash), BigUint::from_bytes_le(s)]
}

/// The 256 output beats the firmware's reference functions give for a job.
pub fn expected(hash: &[u8; 64], s: &[u8; 32]) -> Vec<Beat> {
    use verity_firmware::program::{K_WIDTH, S_WIDTH};
    use verity_firmware::scalar::Scalar;
    let k = Scalar::reduce_wide(hash).naf(K_WIDTH);
    let canonical = Scalar::from_canonical_bytes(s);
    let s_digits = canonical.map(|s| s.naf(S_WIDTH)).unwrap_or([0; 256]);
    (0..256)
        .map(|i| {
            vec![
                BigUint::from(i as u32),
                BigUint::from(k[i] as u8),
                BigUint::from(s_digits[i] as u8),
                BigUint::from(u8::from(canonical.is_some())),
                BigUint::from(u8::from(i == 255)),
            ]
        })
        .collect()
}

/// Jobs for tests: digests and S values at the edges (0, all ones, S = L − 1, L, L + 1,
/// 2²⁵⁶ − 1), then `random` random ones of which about 80 % have a canonical S.
pub fn sample_jobs(random: usize, seed: u64) -> Vec<([u8; 64], [u8; 32])> {
    let order = verity_firmware::scalar::order();
    let mut below = order;
    below[0] -= 1;
    let mut above = order;
    above[0] += 1;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![
        ([0; 64], [0; 32]),
        ([0xff; 64], below),
        ([0x55; 64], order),
        ([0xaa; 64], above),
        ([0x01; 64], [0xff; 32]),
    ];
    for _ in 0..random {
        let mut hash = [0u8; 64];
        rng.fill(&mut hash[..]);
        let mut s = [0u8; 32];
        rng.fill(&mut s[..]);
        // Most S are canonical, as in real traffic.
        if rng.gen_bool(0.8) {
            s[31] &= 0x0f;
        }
        out.push((hash, s));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};

    #[test]
    fn digits_match_the_firmware_reduction_and_recoding() {
        let seed = 0x5ca1_ab1e;
        let jobs = sample_jobs(6, seed);
        let inputs: Vec<Beat> = jobs.iter().map(|(h, s)| job(h, s)).collect();
        let expected: Vec<Beat> = jobs.iter().flat_map(|(h, s)| expected(h, s)).collect();
        let mut unit = ScalarUnit::default();
        let trace = run(
            &mut unit,
            &inputs,
            &Stalls::random(seed, 0, 20),
            expected.len(),
            inputs.len() as u64 * 1_200,
        );
        if let Err(mismatch) = compare(ScalarUnit::OUTPUTS, &trace, &expected) {
            panic!("seed {seed}: {mismatch}");
        }
    }
}
