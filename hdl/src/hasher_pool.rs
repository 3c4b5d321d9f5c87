//! Several request hashers behind the one interface of a [`RequestHasher`]: a record goes
//! whole to the lowest hasher that is free when its first beat arrives, and the hashers' jobs
//! leave one a cycle, round-robin.
//!
//! A hasher takes one record at a time — 200 cycles a request with a 100-byte message, most
//! of it SHA-512's two compressions — which keeps about 17 engines busy; a card with more
//! engines needs more hashers. Jobs may leave in another order than their records came:
//! responses are matched by tag. Each record carries an epoch bit in and out (the card's
//! `CONTROL.RESET`), kept beside the hasher that holds it.

use rust_hdl::prelude::*;

use crate::or_tree::OrTree;
use crate::request_hasher::RequestHasher;
use crate::round_robin::{PrefixOr, RoundRobin, MAX_REQUESTERS};

/// The hashers.
#[derive(LogicBlock)]
pub struct HasherPool {
    /// The card clock.
    pub clock: Signal<In, Clock>,
    /// A parser beat is offered.
    pub in_valid: Signal<In, Bit>,
    /// A hasher takes it.
    pub in_ready: Signal<Out, Bit>,
    /// As [`RequestHasher`]'s.
    pub in_kind: Signal<In, Bits<2>>,
    /// As [`RequestHasher`]'s.
    pub in_index: Signal<In, Bits<5>>,
    /// As [`RequestHasher`]'s.
    pub in_data: Signal<In, Bits<512>>,
    /// As [`RequestHasher`]'s.
    pub in_tag: Signal<In, Bits<64>>,
    /// As [`RequestHasher`]'s.
    pub in_msg_len: Signal<In, Bits<11>>,
    /// As [`RequestHasher`]'s.
    pub in_code: Signal<In, Bits<3>>,
    /// The beat's epoch; a record's is its last beat's.
    pub in_epoch: Signal<In, Bit>,
    /// A job is offered.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it.
    pub out_ready: Signal<In, Bit>,
    /// As [`RequestHasher`]'s.
    pub out_kind: Signal<Out, Bits<2>>,
    /// As [`RequestHasher`]'s.
    pub out_code: Signal<Out, Bits<3>>,
    /// As [`RequestHasher`]'s.
    pub out_tag: Signal<Out, Bits<64>>,
    /// As [`RequestHasher`]'s.
    pub out_a: Signal<Out, Bits<256>>,
    /// As [`RequestHasher`]'s.
    pub out_r: Signal<Out, Bits<256>>,
    /// As [`RequestHasher`]'s.
    pub out_s: Signal<Out, Bits<256>>,
    /// As [`RequestHasher`]'s.
    pub out_hash: Signal<Out, Bits<512>>,
    /// As [`RequestHasher`]'s.
    pub out_txid: Signal<Out, Bits<256>>,
    /// The record's epoch.
    pub out_epoch: Signal<Out, Bit>,
    hashers: Vec<RequestHasher>,
    epochs: Vec<DFF<Bit>>,
    ids: Vec<Constant<Bits<4>>>,
    routing: DFF<Bit>,
    target: DFF<Bits<4>>,
    ready_below: PrefixOr<Bit>,
    chosen: Vec<Signal<Local, Bit>>,
    taken: OrTree<Bit>,
    chosen_id: OrTree<Bits<4>>,
    pick: RoundRobin,
    kind: OrTree<Bits<2>>,
    code: OrTree<Bits<3>>,
    tag: OrTree<Bits<64>>,
    a: OrTree<Bits<256>>,
    r: OrTree<Bits<256>>,
    s: OrTree<Bits<256>>,
    hash: OrTree<Bits<512>>,
    txid: OrTree<Bits<256>>,
    epoch: OrTree<Bit>,
}

impl HasherPool {
    /// A pool of `hashers` (1 to 16) request hashers.
    pub fn new(hashers: usize) -> Self {
        assert!((1..=MAX_REQUESTERS).contains(&hashers), "1 to 16 hashers");
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
            in_epoch: Default::default(),
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
            out_epoch: Default::default(),
            hashers: (0..hashers).map(|_| Default::default()).collect(),
            epochs: (0..hashers).map(|_| Default::default()).collect(),
            ids: (0..hashers)
                .map(|h| Constant::new(bits::<4>(h as u64)))
                .collect(),
            routing: Default::default(),
            target: Default::default(),
            ready_below: PrefixOr::new(hashers),
            chosen: (0..hashers).map(|_| Default::default()).collect(),
            taken: OrTree::new(hashers),
            chosen_id: OrTree::new(hashers),
            pick: RoundRobin::new(hashers),
            kind: OrTree::new(hashers),
            code: OrTree::new(hashers),
            tag: OrTree::new(hashers),
            a: OrTree::new(hashers),
            r: OrTree::new(hashers),
            s: OrTree::new(hashers),
            hash: OrTree::new(hashers),
            txid: OrTree::new(hashers),
            epoch: OrTree::new(hashers),
        }
    }
}

impl Logic for HasherPool {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, routing, target);
        clock!(self, clock, pick);
        // In: a record's first beat goes to the lowest free hasher, the rest of it after.
        for h in 0..self.hashers.len() {
            self.hashers[h].clock.next = self.clock.val();
            self.epochs[h].clock.next = self.clock.val();
            self.epochs[h].d.next = self.epochs[h].q.val();
            self.ready_below.input[h].next = self.hashers[h].in_ready.val();
        }
        for h in 0..self.hashers.len() {
            self.chosen[h].next =
                self.hashers[h].in_ready.val() & !self.ready_below.output[h].val();
            if self.routing.q.val() {
                self.chosen[h].next = self.target.q.val() == self.ids[h].val();
            }
            self.hashers[h].in_valid.next = self.in_valid.val() & self.chosen[h].val();
            self.hashers[h].in_kind.next = self.in_kind.val();
            self.hashers[h].in_index.next = self.in_index.val();
            self.hashers[h].in_data.next = self.in_data.val();
            self.hashers[h].in_tag.next = self.in_tag.val();
            self.hashers[h].in_msg_len.next = self.in_msg_len.val();
            self.hashers[h].in_code.next = self.in_code.val();
            self.taken.term[h].next = self.chosen[h].val() & self.hashers[h].in_ready.val();
            self.chosen_id.term[h].next = 0.into();
            if self.chosen[h].val() {
                self.chosen_id.term[h].next = self.ids[h].val();
            }
            if self.hashers[h].in_valid.val()
                & self.hashers[h].in_ready.val()
                & (self.in_kind.val() != 0)
            {
                self.epochs[h].d.next = self.in_epoch.val();
            }
        }
        self.in_ready.next = self.taken.any.val();
        if self.in_valid.val() & self.in_ready.val() {
            self.routing.d.next = self.in_kind.val() == 0;
            self.target.d.next = self.chosen_id.any.val();
        }

        // Out: one hasher's job a cycle, round-robin.
        for h in 0..self.hashers.len() {
            self.pick.req[h].next = self.hashers[h].out_valid.val();
            self.hashers[h].out_ready.next = self.out_ready.val() & self.pick.grant[h].val();
            self.kind.term[h].next = 0.into();
            self.code.term[h].next = 0.into();
            self.tag.term[h].next = 0.into();
            self.a.term[h].next = 0.into();
            self.r.term[h].next = 0.into();
            self.s.term[h].next = 0.into();
            self.hash.term[h].next = 0.into();
            self.txid.term[h].next = 0.into();
            self.epoch.term[h].next = false;
            if self.pick.grant[h].val() {
                self.kind.term[h].next = self.hashers[h].out_kind.val();
                self.code.term[h].next = self.hashers[h].out_code.val();
                self.tag.term[h].next = self.hashers[h].out_tag.val();
                self.a.term[h].next = self.hashers[h].out_a.val();
                self.r.term[h].next = self.hashers[h].out_r.val();
                self.s.term[h].next = self.hashers[h].out_s.val();
                self.hash.term[h].next = self.hashers[h].out_hash.val();
                self.txid.term[h].next = self.hashers[h].out_txid.val();
                self.epoch.term[h].next = self.epochs[h].q.val();
            }
        }
        self.pick.take.next = self.out_ready.val();
        self.out_valid.next = self.pick.valid.val();
        self.out_kind.next = self.kind.any.val();
        self.out_code.next = self.code.any.val();
        self.out_tag.next = self.tag.any.val();
        self.out_a.next = self.a.any.val();
        self.out_r.next = self.r.any.val();
        self.out_s.next = self.s.any.val();
        self.out_hash.next = self.hash.any.val();
        self.out_txid.next = self.txid.any.val();
        self.out_epoch.next = self.epoch.any.val();
    }
}
