//! The Merkle root of a batch of SHA-256 transaction ids, computed as the ids stream in.
//!
//! The rule is [`verity_firmware::merkle`]'s: `leaf = SHA-256(0x00 ‖ id)`,
//! `node = SHA-256(0x01 ‖ left ‖ right)`, an odd node promoted unchanged. The unit never
//! stores the batch: it keeps a stack of completed subtrees, one per set bit of the leaf
//! count. After the n-th leaf is pushed, the top two subtrees are merged as many times as n
//! has trailing zero bits; when the batch closes, the stack is folded from the top. That
//! right fold of the binary decomposition gives exactly the level-by-level tree with odd
//! nodes promoted, which the tests check against the reference for every size up to 70.
//!
//! Blocks go straight to a SHA-256 compression core, padded here with constants (a leaf is
//! 33 bytes, one block; a node is 65 bytes, two blocks). One hash is in flight at a time: a
//! leaf costs one block and, on average, one node of two blocks, about 200 cycles, which a
//! batch of transactions that each took a signature verification of thousands of cycles
//! leaves far behind.
//!
//! A batch is at most [`MAX_LEAVES`] ids; the unit closes it itself at that count.

use crate::flow::harness::{Beat, Port, StreamBlock};
use crate::sha2_core::Sha2Core;
use crate::sha2_spec::Sha2Spec;
use num_bigint::BigUint;
use rust_hdl::prelude::*;
use verity_firmware::merkle;
pub use verity_firmware::merkle::MAX_LEAVES;

/// Subtrees the stack holds at most: one per bit of a count below [`MAX_LEAVES`], plus the
/// leaf just pushed.
const STACK: usize = 13;
/// Bits of the leaf count (up to [`MAX_LEAVES`] inclusive).
const COUNT_BITS: usize = 13;

/// What the unit is doing.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum MerkleState {
    /// Waiting for an id.
    Idle,
    /// Offering the leaf block to the core.
    Leaf,
    /// Waiting for the leaf hash.
    LeafHash,
    /// Choosing between a merge, a fold step, the root and the next id.
    Decide,
    /// Offering a node's first block.
    NodeHead,
    /// Offering a node's second block.
    NodeTail,
    /// Waiting for the node hash.
    NodeHash,
    /// Offering the root.
    Root,
}

/// The Merkle root unit.
#[derive(LogicBlock)]
pub struct Merkle {
    /// Clock of the hash pipeline.
    pub clock: Signal<In, Clock>,
    /// An id is offered.
    pub in_valid: Signal<In, Bit>,
    /// The unit takes the offered id this cycle.
    pub in_ready: Signal<Out, Bit>,
    /// A transaction id, first byte in the most significant position.
    pub in_id: Signal<In, Bits<256>>,
    /// The id closes its batch.
    pub in_last: Signal<In, Bit>,
    /// A root is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes the root this cycle.
    pub out_ready: Signal<In, Bit>,
    /// The batch's root.
    pub out_root: Signal<Out, Bits<256>>,
    /// The batch's leaf count.
    pub out_count: Signal<Out, Bits<COUNT_BITS>>,
    core: Sha2Core<32, 512, 256>,
    state: DFF<MerkleState>,
    stack: [DFF<Bits<256>>; STACK],
    depth: DFF<Bits<4>>,
    count: DFF<Bits<COUNT_BITS>>,
    merges: DFF<Bits<COUNT_BITS>>,
    closing: DFF<Bit>,
    id: DFF<Bits<256>>,
    max_leaves: Constant<Bits<COUNT_BITS>>,
    leaf_padding: Constant<Bits<512>>,
    node_prefix: Constant<Bits<512>>,
    node_padding: Constant<Bits<512>>,
    next_count: Signal<Local, Bits<COUNT_BITS>>,
}

impl Default for Merkle {
    fn default() -> Self {
        let wide = |value: BigUint| Constant::new(value.into());
        let one = || BigUint::from(1u8);
        // 0x80 marker after the content, then the content's bit length in the last 64 bits.
        let padding = |content_bytes: usize| {
            let offset = 512 - 8 * (content_bytes % 64) - 8;
            (BigUint::from(0x80u8) << offset) | BigUint::from(content_bytes * 8)
        };
        Self {
            clock: Default::default(),
            in_valid: Default::default(),
            in_ready: Default::default(),
            in_id: Default::default(),
            in_last: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_root: Default::default(),
            out_count: Default::default(),
            core: Sha2Core::new(&Sha2Spec::sha256()),
            state: Default::default(),
            stack: Default::default(),
            depth: Default::default(),
            count: Default::default(),
            merges: Default::default(),
            closing: Default::default(),
            id: Default::default(),
            max_leaves: Constant::new((MAX_LEAVES as u64).into()),
            leaf_padding: wide(padding(33)),
            node_prefix: wide(one() << 504),
            node_padding: wide(padding(65)),
            next_count: Default::default(),
        }
    }
}

impl Logic for Merkle {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, state, depth, count, merges, closing, id);
        for i in 0..13 {
            self.stack[i].clock.next = self.clock.val();
            self.stack[i].d.next = self.stack[i].q.val();
        }
        self.core.clock.next = self.clock.val();
        self.core.in_valid.next = false;
        self.core.in_block.next = 0.into();
        self.core.in_first.next = true;
        self.core.in_last.next = true;
        self.core.in_tag.next = 0.into();
        self.core.out_ready.next = false;
        self.in_ready.next = false;
        self.out_valid.next = false;
        self.out_root.next = self.stack[0].q.val();
        self.out_count.next = self.count.q.val();
        self.next_count.next = self.count.q.val() + 1;
        match self.state.q.val() {
            MerkleState::Idle => {
                self.in_ready.next = true;
                if self.in_valid.val() {
                    self.id.d.next = self.in_id.val();
                    self.count.d.next = self.next_count.val();
                    self.merges.d.next = self.next_count.val();
                    self.closing.d.next =
                        self.in_last.val() | (self.next_count.val() == self.max_leaves.val());
                    self.state.d.next = MerkleState::Leaf;
                }
            }
            MerkleState::Leaf => {
                // 0x00 ‖ id ‖ padding: the prefix byte is the block's zero top byte.
                self.core.in_valid.next = true;
                self.core.in_block.next =
                    (bit_cast::<512, 256>(self.id.q.val()) << 248) | self.leaf_padding.val();
                if self.core.in_ready.val() {
                    self.state.d.next = MerkleState::LeafHash;
                }
            }
            MerkleState::LeafHash => {
                self.core.out_ready.next = true;
                if self.core.out_valid.val() {
                    self.stack[0].d.next = self.core.out_digest.val();
                    for i in 1..13 {
                        self.stack[i].d.next = self.stack[i - 1].q.val();
                    }
                    self.depth.d.next = self.depth.q.val() + 1;
                    self.state.d.next = MerkleState::Decide;
                }
            }
            MerkleState::Decide => {
                if !self.merges.q.val().get_bit(0) & self.merges.q.val().any() {
                    // The n-th leaf completes one subtree per trailing zero of n.
                    self.merges.d.next = self.merges.q.val() >> 1;
                    self.state.d.next = MerkleState::NodeHead;
                } else if self.closing.q.val() & (self.depth.q.val() > 1) {
                    self.state.d.next = MerkleState::NodeHead;
                } else if self.closing.q.val() {
                    self.state.d.next = MerkleState::Root;
                } else {
                    self.state.d.next = MerkleState::Idle;
                }
            }
            MerkleState::NodeHead => {
                // 0x01 ‖ left ‖ right[0..31]
                self.core.in_valid.next = true;
                self.core.in_last.next = false;
                self.core.in_block.next = self.node_prefix.val()
                    | (bit_cast::<512, 256>(self.stack[1].q.val()) << 248)
                    | bit_cast::<512, 256>(self.stack[0].q.val() >> 8);
                if self.core.in_ready.val() {
                    self.state.d.next = MerkleState::NodeTail;
                }
            }
            MerkleState::NodeTail => {
                // right[31] ‖ padding
                self.core.in_valid.next = true;
                self.core.in_first.next = false;
                self.core.in_block.next =
                    (bit_cast::<512, 8>(self.stack[0].q.val().get_bits::<8>(0)) << 504)
                        | self.node_padding.val();
                if self.core.in_ready.val() {
                    self.state.d.next = MerkleState::NodeHash;
                }
            }
            MerkleState::NodeHash => {
                self.core.out_ready.next = true;
                if self.core.out_valid.val() {
                    self.stack[0].d.next = self.core.out_digest.val();
                    for i in 1..12 {
                        self.stack[i].d.next = self.stack[i + 1].q.val();
                    }
                    self.stack[12].d.next = 0.into();
                    self.depth.d.next = self.depth.q.val() - 1;
                    self.state.d.next = MerkleState::Decide;
                }
            }
            MerkleState::Root => {
                self.out_valid.next = true;
                if self.out_ready.val() {
                    self.count.d.next = 0.into();
                    self.depth.d.next = 0.into();
                    self.state.d.next = MerkleState::Idle;
                }
            }
        }
    }
}

impl Merkle {
    /// The input beats of one batch.
    pub fn batch_beats(ids: &[[u8; 32]]) -> Vec<Beat> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                vec![
                    BigUint::from_bytes_be(id),
                    BigUint::from(u8::from(i + 1 == ids.len())),
                ]
            })
            .collect()
    }

    /// The output beat for a batch of `count` ids with `root`.
    pub fn root_beat(root: &[u8; 32], count: usize) -> Beat {
        vec![BigUint::from_bytes_be(root), BigUint::from(count)]
    }

    /// The input beats of `batches`, back to back, and the roots the firmware's rule gives.
    pub fn stimulus(batches: &[Vec<merkle::Hash>]) -> (Vec<Beat>, Vec<Beat>) {
        let inputs = batches.iter().flat_map(|b| Self::batch_beats(b)).collect();
        let expected = batches
            .iter()
            .map(|b| Self::root_beat(&merkle::root(b), b.len()))
            .collect();
        (inputs, expected)
    }
}

impl StreamBlock for Merkle {
    const INPUTS: &'static [Port] = &[
        Port {
            name: "in_id",
            bits: 256,
        },
        Port {
            name: "in_last",
            bits: 1,
        },
    ];
    const OUTPUTS: &'static [Port] = &[
        Port {
            name: "out_root",
            bits: 256,
        },
        Port {
            name: "out_count",
            bits: COUNT_BITS,
        },
    ];

    crate::stream_handshake!();

    fn drive(&mut self, beat: Option<&Beat>) {
        self.in_valid.next = beat.is_some();
        if let Some(beat) = beat {
            self.in_id.next = beat[0].clone().into();
            self.in_last.next = beat[1] == BigUint::from(1u8);
        }
    }

    fn output(&self) -> Option<Beat> {
        self.out_valid
            .val()
            .then(|| vec![self.out_root.val().into(), self.out_count.val().into()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::harness::{compare, run, Stalls};
    use sha2::Digest;
    use verity_firmware::merkle::Hash;

    fn ids(batch: usize, n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| {
                sha2::Sha256::digest([batch as u64, i as u64].map(u64::to_le_bytes).concat()).into()
            })
            .collect()
    }

    fn check(batches: &[Vec<Hash>], stalls: &Stalls) {
        let mut uut = Merkle::default();
        uut.connect_all();
        let (inputs, expected) = Merkle::stimulus(batches);
        let trace = run(&mut uut, &inputs, stalls, expected.len(), 2_000_000);
        if let Err(mismatch) = compare(Merkle::OUTPUTS, &trace, &expected) {
            panic!("{mismatch}");
        }
    }

    #[test]
    fn roots_of_batches_of_1_to_9_back_to_back() {
        let batches: Vec<Vec<Hash>> = (1..=9).map(|n| ids(n, n)).collect();
        check(&batches, &Stalls::none());
    }

    #[test]
    fn roots_under_random_stalls() {
        let batches: Vec<Vec<Hash>> = [17, 1, 32, 5].iter().map(|&n| ids(n, n)).collect();
        check(&batches, &Stalls::random(0x3e4, 40, 40));
    }
}
