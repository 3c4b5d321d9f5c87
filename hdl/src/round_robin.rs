//! A round-robin arbiter: of `N` requesters, grant the first that asks at or after the one
//! after the last taken grant.
//!
//! This is the rule of the firmware's issue model (`Engine::schedule`: the search starts at
//! `turn`, and a taken grant to `s` moves `turn` to `s + 1`), so the engine's issue order can
//! be compared with the model's. `N` must be `2^B`: the turn wraps by overflow.

use rust_hdl::prelude::*;

/// The arbiter over `N = 2^B` requesters.
#[derive(LogicBlock)]
pub struct RoundRobin<const N: usize, const B: usize> {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// Requests, one per requester.
    pub req: [Signal<In, Bit>; N],
    /// The grant is used this cycle: the turn moves past it.
    pub take: Signal<In, Bit>,
    /// Some requester asks.
    pub valid: Signal<Out, Bit>,
    /// The granted requester.
    pub index: Signal<Out, Bits<B>>,
    /// The grant, one-hot (all clear when nobody asks).
    pub grant: [Signal<Out, Bit>; N],
    turn: DFF<Bits<B>>,
    ids: [Constant<Bits<B>>; N],
    first: Signal<Local, Bits<B>>,
    first_after: Signal<Local, Bits<B>>,
    any_after: Signal<Local, Bit>,
    all: Constant<Bits<N>>,
    at_or_after: Signal<Local, Bits<N>>,
    eligible: [Signal<Local, Bit>; N],
    seen: [Signal<Local, Bit>; N],
    seen_after: [Signal<Local, Bit>; N],
}

impl<const N: usize, const B: usize> Default for RoundRobin<N, B> {
    fn default() -> Self {
        assert_eq!(N, 1 << B, "a round-robin arbiter has 2^B requesters");
        Self {
            clock: Default::default(),
            req: std::array::from_fn(|_| Default::default()),
            take: Default::default(),
            valid: Default::default(),
            index: Default::default(),
            grant: std::array::from_fn(|_| Default::default()),
            turn: Default::default(),
            ids: std::array::from_fn(|c| Constant::new(bits::<B>(c as u64))),
            first: Default::default(),
            first_after: Default::default(),
            any_after: Default::default(),
            all: Constant::new(!Bits::<N>::default()),
            at_or_after: Default::default(),
            eligible: std::array::from_fn(|_| Default::default()),
            seen: std::array::from_fn(|_| Default::default()),
            seen_after: std::array::from_fn(|_| Default::default()),
        }
    }
}

impl<const N: usize, const B: usize> Logic for RoundRobin<N, B> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, turn);
        // The lowest asking index, and the lowest asking index at or after the turn: a
        // prefix OR says whether a lower index asked.
        self.at_or_after.next = self.all.val() << self.turn.q.val();
        for k in 0..N {
            self.eligible[k].next = self.req[k].val() & self.at_or_after.val().get_bit(k);
        }
        self.seen[0].next = false;
        self.seen_after[0].next = false;
        for k in 1..N {
            self.seen[k].next = self.seen[k - 1].val() | self.req[k - 1].val();
            self.seen_after[k].next = self.seen_after[k - 1].val() | self.eligible[k - 1].val();
        }
        self.first.next = 0.into();
        self.first_after.next = 0.into();
        self.any_after.next = false;
        self.valid.next = false;
        for k in 0..N {
            if self.req[k].val() & !self.seen[k].val() {
                self.first.next = self.ids[k].val();
                self.valid.next = true;
            }
            if self.eligible[k].val() & !self.seen_after[k].val() {
                self.first_after.next = self.ids[k].val();
                self.any_after.next = true;
            }
        }
        self.index.next = self.first.val();
        if self.any_after.val() {
            self.index.next = self.first_after.val();
        }
        for c in 0..N {
            self.grant[c].next = self.valid.val() & (self.index.val() == self.ids[c].val());
        }
        if self.take.val() & self.valid.val() {
            self.turn.d.next = self.index.val() + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The arbiter against the issue model's rule on random request patterns.
    #[test]
    fn grants_follow_the_issue_models_rule() {
        let mut uut = RoundRobin::<16, 4>::default();
        uut.connect_all();
        let mut sim = Simulation::new();
        let seed = 0x7e_11;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let patterns: Vec<(u16, bool)> = (0..300).map(|_| (rng.gen(), rng.gen())).collect();
        sim.add_clock(5, |x: &mut Box<RoundRobin<16, 4>>| {
            x.clock.next = !x.clock.val()
        });
        sim.add_testbench(move |mut sim: Sim<RoundRobin<16, 4>>| {
            let mut x = sim.init()?;
            let mut turn = 0usize;
            for (n, &(mask, take)) in patterns.iter().enumerate() {
                for c in 0..16 {
                    x.req[c].next = mask & (1 << c) != 0;
                }
                x.take.next = take;
                x = sim.wait(1, x)?;
                let want = (0..16)
                    .map(|k| (turn + k) % 16)
                    .find(|&s| mask & (1 << s) != 0);
                sim_assert_eq!(sim, x.valid.val(), want.is_some(), x);
                if let Some(s) = want {
                    if x.index.val().index() != s {
                        println!(
                            "seed {seed:#x}, cycle {n}: granted {} instead of {s}",
                            x.index.val().index()
                        );
                    }
                    sim_assert_eq!(sim, x.index.val().index(), s, x);
                    for c in 0..16 {
                        sim_assert_eq!(sim, x.grant[c].val(), c == s, x);
                    }
                    if take {
                        turn = (s + 1) % 16;
                    }
                }
                wait_clock_cycle!(sim, clock, x);
            }
            sim.done(x)
        });
        sim.run(Box::new(uut), 100_000)
            .expect("the arbiter follows the model");
    }
}
