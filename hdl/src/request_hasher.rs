//! The request hasher: from the record parser's words to a verification job — SHA-512(R ‖ A ‖
//! M) for the scalar unit, SHA-256(M) for the response's transaction id, and A, R, S and the
//! tag.
//!
//! It takes one record at a time. Its words are written into a record buffer as they arrive
//! (8 RAMs of 64-bit words, one per eighth of a 512-bit beat, addressed by the word's index in
//! the record; two copies, one for each hash); once the parser's last beat says the record is
//! a request, two feeders read the buffer, 64 bits a word into [`Sha512`] and 32 into
//! [`Sha256`], at once. The record layout (`verity_firmware::abi`) puts A at bytes 16–47, R ‖ S
//! at 48–111 and the message from byte 112, so R, A and M are whole 64-bit words of the buffer
//! (words 6–9, 2–5 and 14 on) and SHA-512's input needs no shifting: only each word's bytes
//! reversed, as the hash cores take the first byte in the most significant position.
//!
//! | `out_kind` | the record | fields |
//! |---|---|---|
//! | 0 | a request | tag, A, R, S, `out_hash` (SHA-512(R ‖ A ‖ M), byte 0 in bits 7:0) and `out_txid` (SHA-256(M), the same order) |
//! | 1 | answered with a record error | tag and `out_code` (`RecordError::code`, 1–4) |
//! | 2 | dropped as unframeable | `out_code` (the parser's framing code, 5–7) |
//!
//! `out_txid` is zero but for a request; the other fields of kinds 1 and 2 are left over.
//!
//! A record of `n` message bytes takes its words plus about 2 cycles per 64-bit word fed and
//! the compressions of ⌈(64 + n + 17)/128⌉ SHA-512 blocks (the SHA-256 blocks run alongside).

use num_bigint::BigUint;
use rust_hdl::prelude::*;
use sha2::Digest;

use crate::flow::harness::{Beat, Port, StreamBlock, Trace};
use crate::record_parser;
use crate::sha2::{Sha256, Sha512};

/// Where the hasher is.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum HasherState {
    /// Taking a record's words.
    Collect,
    /// Feeding the hash cores and waiting for their digests.
    Hash,
    /// Offering the job.
    Emit,
}

/// `out_kind` values.
pub mod kind {
    /// A request with its hashes.
    pub const REQUEST: u8 = 0;
    /// A record answered with a record error.
    pub const REJECTED: u8 = 1;
    /// A record that could not be framed.
    pub const DROPPED: u8 = 2;
}

/// The hasher.
#[derive(LogicBlock)]
pub struct RequestHasher {
    /// The card clock.
    pub clock: Signal<In, Clock>,
    /// A parser beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// The hasher takes it.
    pub in_ready: Signal<Out, Bit>,
    /// The parser's `out_kind` (0 word, 1 the record's last word, 2 a framing drop).
    pub in_kind: Signal<In, Bits<2>>,
    /// The word's index in its record.
    pub in_index: Signal<In, Bits<5>>,
    /// The word, byte 0 in bits 7:0.
    pub in_data: Signal<In, Bits<512>>,
    /// The record's tag (on its last word).
    pub in_tag: Signal<In, Bits<64>>,
    /// The record's message length (on its last word).
    pub in_msg_len: Signal<In, Bits<11>>,
    /// The parser's code (on the last word or a drop).
    pub in_code: Signal<In, Bits<3>>,
    /// A job is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it.
    pub out_ready: Signal<In, Bit>,
    /// What the record was ([`kind`]).
    pub out_kind: Signal<Out, Bits<2>>,
    /// Its record error or framing code.
    pub out_code: Signal<Out, Bits<3>>,
    /// Its tag.
    pub out_tag: Signal<Out, Bits<64>>,
    /// A as received, a little-endian number.
    pub out_a: Signal<Out, Bits<256>>,
    /// R as received.
    pub out_r: Signal<Out, Bits<256>>,
    /// S as received.
    pub out_s: Signal<Out, Bits<256>>,
    /// SHA-512(R ‖ A ‖ M), byte 0 in bits 7:0.
    pub out_hash: Signal<Out, Bits<512>>,
    /// SHA-256(M), byte 0 in bits 7:0.
    pub out_txid: Signal<Out, Bits<256>>,
    words512: [RAM<Bits<64>, 5>; 8],
    words256: [RAM<Bits<64>, 5>; 8],
    sha512: Sha512,
    sha256: Sha256,
    lanes: [Constant<Bits<3>>; 8],
    state: DFF<HasherState>,
    kind_q: DFF<Bits<2>>,
    code: DFF<Bits<3>>,
    tag: DFF<Bits<64>>,
    msg_len: DFF<Bits<11>>,
    a: DFF<Bits<256>>,
    r_low: DFF<Bits<128>>,
    r_high: DFF<Bits<128>>,
    s: DFF<Bits<256>>,
    // The SHA-512 feeder: word n of R ‖ A ‖ M; `present` when its RAM data is there.
    n512: DFF<Bits<8>>,
    present512: DFF<Bit>,
    fed512: DFF<Bit>,
    lane512: DFF<Bits<3>>,
    digest512: DFF<Bits<512>>,
    got512: DFF<Bit>,
    // The SHA-256 feeder: 32-bit word m of M.
    m256: DFF<Bits<9>>,
    present256: DFF<Bit>,
    fed256: DFF<Bit>,
    lane256: DFF<Bits<3>>,
    half256: DFF<Bit>,
    digest256: DFF<Bits<256>>,
    got256: DFF<Bit>,
    take: Signal<Local, Bit>,
    bytes512: Signal<Local, Bits<12>>,
    total512: Signal<Local, Bits<12>>,
    word512: Signal<Local, Bits<8>>,
    last512: Signal<Local, Bit>,
    raw512: Signal<Local, Bits<64>>,
    total256: Signal<Local, Bits<12>>,
    word256: Signal<Local, Bits<8>>,
    last256: Signal<Local, Bit>,
    raw256: Signal<Local, Bits<64>>,
    half_word: Signal<Local, Bits<32>>,
    digest_word: [Signal<Local, Bits<64>>; 8],
    hash_word: [Signal<Local, Bits<64>>; 8],
    txid_word: [Signal<Local, Bits<32>>; 8],
    txid_le: [Signal<Local, Bits<32>>; 8],
}

impl Default for RequestHasher {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_kind: Default::default(),
            in_index: Default::default(),
            in_data: Default::default(),
            in_tag: Default::default(),
            in_msg_len: Default::default(),
            in_code: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_kind: Default::default(),
            out_code: Default::default(),
            out_tag: Default::default(),
            out_a: Default::default(),
            out_r: Default::default(),
            out_s: Default::default(),
            out_hash: Default::default(),
            out_txid: Default::default(),
            words512: Default::default(),
            words256: Default::default(),
            sha512: Default::default(),
            sha256: Default::default(),
            lanes: std::array::from_fn(|j| Constant::new(bits::<3>(j as u64))),
            state: Default::default(),
            kind_q: Default::default(),
            code: Default::default(),
            tag: Default::default(),
            msg_len: Default::default(),
            a: Default::default(),
            r_low: Default::default(),
            r_high: Default::default(),
            s: Default::default(),
            n512: Default::default(),
            present512: Default::default(),
            fed512: Default::default(),
            lane512: Default::default(),
            digest512: Default::default(),
            got512: Default::default(),
            m256: Default::default(),
            present256: Default::default(),
            fed256: Default::default(),
            lane256: Default::default(),
            half256: Default::default(),
            digest256: Default::default(),
            got256: Default::default(),
            take: Default::default(),
            bytes512: Default::default(),
            total512: Default::default(),
            word512: Default::default(),
            last512: Default::default(),
            raw512: Default::default(),
            total256: Default::default(),
            word256: Default::default(),
            last256: Default::default(),
            raw256: Default::default(),
            half_word: Default::default(),
            digest_word: Default::default(),
            hash_word: Default::default(),
            txid_word: Default::default(),
            txid_le: Default::default(),
        }
    }
}

impl Logic for RequestHasher {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, kind_q, code, tag, msg_len, a, r_low, r_high, s, n512, present512,
            fed512, lane512, digest512, got512, m256, present256, fed256, lane256, half256,
            digest256, got256
        );
        clock!(self, clock, sha512, sha256);
        for j in 0..8 {
            self.words512[j].read_clock.next = self.clock.val();
            self.words512[j].write_clock.next = self.clock.val();
            self.words256[j].read_clock.next = self.clock.val();
            self.words256[j].write_clock.next = self.clock.val();
        }

        // Collect: every word into both buffers; the header's A and R's first half from word
        // 0, R's second half and S from word 1.
        self.in_ready.next = self.state.q.val() == HasherState::Collect;
        self.take.next = self.in_valid.val() & self.in_ready.val();
        for j in 0..8 {
            self.words512[j].write_address.next = self.in_index.val();
            self.words512[j].write_data.next = self.in_data.val().get_bits::<64>(64 * j);
            self.words512[j].write_enable.next = self.take.val();
            self.words256[j].write_address.next = self.in_index.val();
            self.words256[j].write_data.next = self.in_data.val().get_bits::<64>(64 * j);
            self.words256[j].write_enable.next = self.take.val();
        }
        if self.take.val() & (self.in_index.val() == 0) {
            self.a.d.next = self.in_data.val().get_bits::<256>(128);
            self.r_low.d.next = self.in_data.val().get_bits::<128>(384);
        }
        if self.take.val() & (self.in_index.val() == 1) {
            self.r_high.d.next = self.in_data.val().get_bits::<128>(0);
            self.s.d.next = self.in_data.val().get_bits::<256>(128);
        }
        if self.take.val() & (self.in_kind.val() != 0) {
            self.tag.d.next = self.in_tag.val();
            self.code.d.next = self.in_code.val();
            self.msg_len.d.next = self.in_msg_len.val();
            self.kind_q.d.next = 2.into();
            self.state.d.next = HasherState::Emit;
            if self.in_kind.val() == 1 {
                self.kind_q.d.next = 1.into();
                if self.in_code.val() == 0 {
                    self.kind_q.d.next = 0.into();
                    self.state.d.next = HasherState::Hash;
                    self.n512.d.next = 0.into();
                    self.present512.d.next = false;
                    self.fed512.d.next = false;
                    self.got512.d.next = false;
                    self.m256.d.next = 0.into();
                    self.present256.d.next = false;
                    self.fed256.d.next = false;
                    self.got256.d.next = false;
                }
            }
        }

        // The SHA-512 feeder: R ‖ A ‖ M is 64 + n bytes, word k of it record word k + 6 but
        // for A (k = 4..7: words 2..5). The RAM answers a cycle after its address, which
        // follows the counter, so a word is offered every other cycle.
        self.bytes512.next = bit_cast::<12, 11>(self.msg_len.q.val()) + 64;
        self.total512.next = (self.bytes512.val() + 7) >> 3;
        self.word512.next = self.n512.q.val() + 6;
        if (self.n512.q.val() >= 4) & (self.n512.q.val() < 8) {
            self.word512.next = self.n512.q.val() - 2;
        }
        self.last512.next = (bit_cast::<12, 8>(self.n512.q.val()) + 1) == self.total512.val();
        for j in 0..8 {
            self.words512[j].read_address.next = self.word512.val().get_bits::<5>(3);
        }
        self.raw512.next = self.words512[0].read_data.val();
        for j in 1..8 {
            if self.lane512.q.val() == self.lanes[j].val() {
                self.raw512.next = self.words512[j].read_data.val();
            }
        }
        self.sha512.in_valid.next = (self.state.q.val() == HasherState::Hash)
            & self.present512.q.val()
            & !self.fed512.q.val();
        self.sha512.in_data.next = (bit_cast::<64, 8>(self.raw512.val().get_bits::<8>(0)) << 56)
            | (bit_cast::<64, 8>(self.raw512.val().get_bits::<8>(8)) << 48)
            | (bit_cast::<64, 8>(self.raw512.val().get_bits::<8>(16)) << 40)
            | (bit_cast::<64, 8>(self.raw512.val().get_bits::<8>(24)) << 32)
            | (bit_cast::<64, 8>(self.raw512.val().get_bits::<8>(32)) << 24)
            | (bit_cast::<64, 8>(self.raw512.val().get_bits::<8>(40)) << 16)
            | (bit_cast::<64, 8>(self.raw512.val().get_bits::<8>(48)) << 8)
            | bit_cast::<64, 8>(self.raw512.val().get_bits::<8>(56));
        self.sha512.in_last.next = self.last512.val();
        self.sha512.in_len.next = 8.into();
        if self.last512.val() & (self.bytes512.val().get_bits::<3>(0) != 0) {
            self.sha512.in_len.next = bit_cast::<4, 3>(self.bytes512.val().get_bits::<3>(0));
        }
        self.sha512.in_tag.next = 0.into();
        if (self.state.q.val() == HasherState::Hash) & !self.fed512.q.val() {
            self.present512.d.next = !self.present512.q.val();
            self.lane512.d.next = self.word512.val().get_bits::<3>(0);
            if self.present512.q.val() & !self.sha512.in_ready.val() {
                self.present512.d.next = true;
            }
            if self.present512.q.val() & self.sha512.in_ready.val() {
                self.n512.d.next = self.n512.q.val() + 1;
                self.fed512.d.next = self.last512.val();
            }
        }

        // The SHA-256 feeder: M's 32-bit word m is half m mod 2 of record word 14 + m/2; an
        // empty message is one word of no bytes.
        self.total256.next = (bit_cast::<12, 11>(self.msg_len.q.val()) + 3) >> 2;
        if self.msg_len.q.val() == 0 {
            self.total256.next = 1.into();
        }
        self.word256.next = bit_cast::<8, 8>(self.m256.q.val().get_bits::<8>(1)) + 14;
        self.last256.next = (bit_cast::<12, 9>(self.m256.q.val()) + 1) == self.total256.val();
        for j in 0..8 {
            self.words256[j].read_address.next = self.word256.val().get_bits::<5>(3);
        }
        self.raw256.next = self.words256[0].read_data.val();
        for j in 1..8 {
            if self.lane256.q.val() == self.lanes[j].val() {
                self.raw256.next = self.words256[j].read_data.val();
            }
        }
        self.half_word.next = self.raw256.val().get_bits::<32>(0);
        if self.half256.q.val() {
            self.half_word.next = self.raw256.val().get_bits::<32>(32);
        }
        self.sha256.in_valid.next = (self.state.q.val() == HasherState::Hash)
            & self.present256.q.val()
            & !self.fed256.q.val();
        self.sha256.in_data.next = (bit_cast::<32, 8>(self.half_word.val().get_bits::<8>(0)) << 24)
            | (bit_cast::<32, 8>(self.half_word.val().get_bits::<8>(8)) << 16)
            | (bit_cast::<32, 8>(self.half_word.val().get_bits::<8>(16)) << 8)
            | bit_cast::<32, 8>(self.half_word.val().get_bits::<8>(24));
        self.sha256.in_last.next = self.last256.val();
        self.sha256.in_len.next = 4.into();
        if self.last256.val() & (self.msg_len.q.val().get_bits::<2>(0) != 0) {
            self.sha256.in_len.next = bit_cast::<4, 2>(self.msg_len.q.val().get_bits::<2>(0));
        }
        if self.msg_len.q.val() == 0 {
            self.sha256.in_len.next = 0.into();
        }
        self.sha256.in_tag.next = 0.into();
        if (self.state.q.val() == HasherState::Hash) & !self.fed256.q.val() {
            self.present256.d.next = !self.present256.q.val();
            self.lane256.d.next = self.word256.val().get_bits::<3>(0);
            self.half256.d.next = self.m256.q.val().get_bit(0);
            if self.present256.q.val() & !self.sha256.in_ready.val() {
                self.present256.d.next = true;
            }
            if self.present256.q.val() & self.sha256.in_ready.val() {
                self.m256.d.next = self.m256.q.val() + 1;
                self.fed256.d.next = self.last256.val();
            }
        }

        // The digests; the job leaves once both are in.
        self.sha512.out_ready.next = self.state.q.val() == HasherState::Hash;
        self.sha256.out_ready.next = self.state.q.val() == HasherState::Hash;
        if (self.state.q.val() == HasherState::Hash) & self.sha512.out_valid.val() {
            self.digest512.d.next = self.sha512.out_digest.val();
            self.got512.d.next = true;
        }
        if (self.state.q.val() == HasherState::Hash) & self.sha256.out_valid.val() {
            self.digest256.d.next = self.sha256.out_digest.val();
            self.got256.d.next = true;
        }
        if (self.state.q.val() == HasherState::Hash) & self.got512.q.val() & self.got256.q.val() {
            self.state.d.next = HasherState::Emit;
        }
        self.out_valid.next = self.state.q.val() == HasherState::Emit;
        if (self.state.q.val() == HasherState::Emit) & self.out_ready.val() {
            self.state.d.next = HasherState::Collect;
        }

        // The digests leave with byte 0 in bits 7:0: the cores give it in the top byte.
        for i in 0..8 {
            self.digest_word[i].next = self.digest512.q.val().get_bits::<64>(448 - 64 * i);
            self.hash_word[i].next = ((self.digest_word[i].val() >> 56) & 0xff_u64)
                | ((self.digest_word[i].val() >> 40) & 0xff00_u64)
                | ((self.digest_word[i].val() >> 24) & 0xff_0000_u64)
                | ((self.digest_word[i].val() >> 8) & 0xff00_0000_u64)
                | ((self.digest_word[i].val() << 8) & 0xff_0000_0000_u64)
                | ((self.digest_word[i].val() << 24) & 0xff00_0000_0000_u64)
                | ((self.digest_word[i].val() << 40) & 0xff_0000_0000_0000_u64)
                | ((self.digest_word[i].val() << 56) & 0xff00_0000_0000_0000_u64);
            self.txid_word[i].next = self.digest256.q.val().get_bits::<32>(224 - 32 * i);
            self.txid_le[i].next = ((self.txid_word[i].val() >> 24) & 0xff_u64)
                | ((self.txid_word[i].val() >> 8) & 0xff00_u64)
                | ((self.txid_word[i].val() << 8) & 0xff_0000_u64)
                | ((self.txid_word[i].val() << 24) & 0xff00_0000_u64);
        }
        self.out_hash.next = bit_cast::<512, 64>(self.hash_word[0].val())
            | (bit_cast::<512, 64>(self.hash_word[1].val()) << 64)
            | (bit_cast::<512, 64>(self.hash_word[2].val()) << 128)
            | (bit_cast::<512, 64>(self.hash_word[3].val()) << 192)
            | (bit_cast::<512, 64>(self.hash_word[4].val()) << 256)
            | (bit_cast::<512, 64>(self.hash_word[5].val()) << 320)
            | (bit_cast::<512, 64>(self.hash_word[6].val()) << 384)
            | (bit_cast::<512, 64>(self.hash_word[7].val()) << 448);
        self.out_txid.next = bit_cast::<256, 32>(self.txid_le[0].val())
            | (bit_cast::<256, 32>(self.txid_le[1].val()) << 32)
            | (bit_cast::<256, 32>(self.txid_le[2].val()) << 64)
            | (bit_cast::<256, 32>(self.txid_le[3].val()) << 96)
            | (bit_cast::<256, 32>(self.txid_le[4].val()) << 128)
            | (bit_cast::<256, 32>(self.txid_le[5].val()) << 160)
            | (bit_cast::<256, 32>(self.txid_le[6].val()) << 192)
            | (bit_cast::<256, 32>(self.txid_le[7].val()) << 224);
        // A rejected record's response carries a zero transaction id.
        if self.kind_q.q.val() != 0 {
            self.out_txid.next = 0.into();
        }
        self.out_kind.next = self.kind_q.q.val();
        self.out_code.next = self.code.q.val();
        self.out_tag.next = self.tag.q.val();
        self.out_a.next = self.a.q.val();
        self.out_r.next = bit_cast::<256, 128>(self.r_low.q.val())
            | (bit_cast::<256, 128>(self.r_high.q.val()) << 128);
        self.out_s.next = self.s.q.val();
    }
}

impl StreamBlock for RequestHasher {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_kind",
            bits: 2,
        },
        Port {
            name: "in_index",
            bits: 5,
        },
        Port {
            name: "in_data",
            bits: 512,
        },
        Port {
            name: "in_tag",
            bits: 64,
        },
        Port {
            name: "in_msg_len",
            bits: 11,
        },
        Port {
            name: "in_code",
            bits: 3,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "out_kind",
            bits: 2,
        },
        Port {
            name: "out_code",
            bits: 3,
        },
        Port {
            name: "out_tag",
            bits: 64,
        },
        Port {
            name: "out_a",
            bits: 256,
        },
        Port {
            name: "out_r",
            bits: 256,
        },
        Port {
            name: "out_s",
            bits: 256,
        },
        Port {
            name: "out_hash",
            bits: 512,
        },
        Port {
            name: "out_txid",
            bits: 256,
        },
    ];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_kind.next = beat[0].clone().into();
            self.in_index.next = beat[1].clone().into();
            self.in_data.next = beat[2].clone().into();
            self.in_tag.next = beat[3].clone().into();
            self.in_msg_len.next = beat[4].clone().into();
            self.in_code.next = beat[5].clone().into();
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid.val().then(|| {
            vec![
                self.out_kind.val().into(),
                self.out_code.val().into(),
                self.out_tag.val().into(),
                self.out_a.val().into(),
                self.out_r.val().into(),
                self.out_s.val().into(),
                self.out_hash.val().into(),
                self.out_txid.val().into(),
            ]
        })
    }
}

/// The hasher's input for `transfers`: the record parser's output
/// ([`record_parser::expected`]).
pub fn inputs(transfers: &[Vec<u8>]) -> Vec<Beat> {
    record_parser::expected(transfers)
}

/// The jobs `transfers` give, one per record the parser ends or drops, as output beats; for
/// kinds 1 and 2 only the kind, code, tag and the zero transaction id are defined (A, R, S
/// and the hash are zero here, and [`check`] ignores them).
pub fn expected(transfers: &[Vec<u8>]) -> Vec<Beat> {
    use verity_firmware::abi::Request;
    let mut out = Vec::new();
    let zero = BigUint::default;
    for beat in inputs(transfers) {
        let kind = u8::try_from(&beat[0]).unwrap_or(u8::MAX);
        if kind == record_parser::kind::WORD {
            continue;
        }
        let (code, tag) = (beat[5].clone(), beat[3].clone());
        if kind == record_parser::kind::DROP {
            out.push(vec![
                BigUint::from(kind::DROPPED),
                code,
                tag,
                zero(),
                zero(),
                zero(),
                zero(),
                zero(),
            ]);
        } else if code != zero() {
            out.push(vec![
                BigUint::from(kind::REJECTED),
                code,
                tag,
                zero(),
                zero(),
                zero(),
                zero(),
                zero(),
            ]);
        } else {
            out.push(vec![BigUint::from(kind::REQUEST), code, tag]);
        }
    }
    // The requests' fields, from the records themselves.
    let mut requests = transfers.iter().flat_map(|transfer| {
        let mut found = Vec::new();
        let mut at = 0;
        while at < transfer.len() {
            match Request::decode(&transfer[at..]) {
                Ok((request, len)) => {
                    found.push(job(&request));
                    at += len;
                }
                Err(Ok(rejected)) => at += rejected.len,
                Err(Err(_)) => break,
            }
        }
        found
    });
    for beat in out.iter_mut().filter(|beat| beat.len() == 3) {
        beat.extend(requests.next().expect("a request for each request beat"));
    }
    out
}

/// Sample transfers for the hasher: [`record_parser::sample_transfers`]'s, then one of
/// requests at the length edges (the longest message, an empty one, one 8-byte word, a message
/// ending mid-word).
pub fn sample_transfers(count: usize, seed: u64) -> Vec<Vec<u8>> {
    use rand::{Rng, SeedableRng};
    use verity_firmware::abi::Request;
    use verity_firmware::Tag;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut edges = Vec::new();
    for len in [1024, 0, 8, 13, 1021] {
        let message: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let mut signature = [0u8; 64];
        rng.fill(&mut signature[..]);
        Request {
            tag: Tag::new(rng.gen()),
            public_key: rng.gen(),
            signature,
            message: &message,
        }
        .encode(&mut edges)
        .expect("at most 1,024 bytes");
    }
    let mut transfers = record_parser::sample_transfers(count, seed);
    transfers.push(edges);
    transfers
}

/// A request's A, R, S, SHA-512(R ‖ A ‖ M) and SHA-256(M), as the hasher gives them.
fn job(request: &verity_firmware::abi::Request<'_>) -> Vec<BigUint> {
    let (r, s) = request.signature.split_at(32);
    let hash = sha2::Sha512::new()
        .chain_update(r)
        .chain_update(request.public_key)
        .chain_update(request.message)
        .finalize();
    let txid = sha2::Sha256::digest(request.message);
    vec![
        BigUint::from_bytes_le(&request.public_key),
        BigUint::from_bytes_le(r),
        BigUint::from_bytes_le(s),
        BigUint::from_bytes_le(&hash),
        BigUint::from_bytes_le(&txid),
    ]
}

/// Compares the hasher's output with [`expected`]: kind, code, tag and transaction id of
/// every job, and everything of a request.
pub fn check(trace: &Trace, expected: &[Beat]) -> Result<(), String> {
    if trace.outputs.len() != expected.len() {
        return Err(format!(
            "{} jobs out in {} cycles, {} expected",
            trace.outputs.len(),
            trace.cycles,
            expected.len()
        ));
    }
    for (n, ((cycle, got), want)) in trace.outputs.iter().zip(expected).enumerate() {
        let request = want[0] == BigUint::from(kind::REQUEST);
        for (k, port) in RequestHasher::OUTPUTS.iter().enumerate() {
            let defined = request || k < 3 || port.name == "out_txid";
            if defined && got[k] != want[k] {
                return Err(format!(
                    "job {n} (cycle {cycle}): {} is {:#x}, expected {:#x}",
                    port.name, got[k], want[k]
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{run, Stalls};

    #[test]
    fn jobs_carry_the_records_hashes_and_fields() {
        let seed = 0x4a5e;
        let transfers = sample_transfers(6, seed);
        let inputs = inputs(&transfers);
        let expected = expected(&transfers);
        assert!(
            expected
                .iter()
                .any(|b| b[0] == BigUint::from(kind::REQUEST)),
            "seed {seed:#x}: no request in the sample"
        );
        let mut uut = RequestHasher::default();
        let trace = run(
            &mut uut,
            &inputs,
            &Stalls::random(seed, 20, 20),
            expected.len(),
            20_000,
        );
        if let Err(e) = check(&trace, &expected) {
            panic!("seed {seed:#x}: {e}");
        }
    }
}
