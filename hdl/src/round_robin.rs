//! A round-robin arbiter: of `N` requesters, grant the first that asks at or after the one
//! after the last taken grant.
//!
//! This is the rule of the firmware's issue model (`Engine::schedule`: the search starts at
//! `turn`, and a taken grant to `s` moves `turn` to `s + 1`, wrapping to 0), so the engine's
//! issue order can be compared with the model's.

use rust_hdl::prelude::*;

/// The exclusive prefix OR of `N ≤ 16` values (bits, or `Bits` words),
/// `output[k] = input[0] | … | input[k − 1]`, in four doubling steps (Kogge–Stone), so its
/// depth grows with log N: written as a ripple, synthesis keeps the chain (every step is also
/// an output) and the arbiter's path grows with N.
#[derive(LogicBlock)]
pub struct PrefixOr<T: Synth + std::ops::BitOr<Output = T>, const N: usize> {
    /// The values.
    pub input: [Signal<In, T>; N],
    /// The OR of the values below `k` (zero for `k` = 0).
    pub output: [Signal<Out, T>; N],
    /// The OR of all the values.
    pub any: Signal<Out, T>,
    step0: [Signal<Local, T>; N],
    step1: [Signal<Local, T>; N],
    step2: [Signal<Local, T>; N],
    step3: [Signal<Local, T>; N],
    zero: Constant<T>,
}

impl<T: Synth + std::ops::BitOr<Output = T>, const N: usize> Default for PrefixOr<T, N> {
    fn default() -> Self {
        assert!(N <= 16, "four doubling steps cover 16 values");
        Self {
            input: std::array::from_fn(|_| Default::default()),
            output: std::array::from_fn(|_| Default::default()),
            any: Default::default(),
            step0: std::array::from_fn(|_| Default::default()),
            step1: std::array::from_fn(|_| Default::default()),
            step2: std::array::from_fn(|_| Default::default()),
            step3: std::array::from_fn(|_| Default::default()),
            zero: Constant::new(T::default()),
        }
    }
}

impl<T: Synth + std::ops::BitOr<Output = T>, const N: usize> Logic for PrefixOr<T, N> {
    #[hdl_gen]
    fn update(&mut self) {
        // step0[k]: bit k − 1; each step ORs in its value from 2^s places lower.
        self.step0[0].next = self.zero.val();
        for k in 1..N {
            self.step0[k].next = self.input[k - 1].val();
        }
        for k in 0..N {
            self.step1[k].next = self.step0[k].val();
        }
        for k in 1..N {
            self.step1[k].next = self.step0[k].val() | self.step0[k - 1].val();
        }
        for k in 0..N {
            self.step2[k].next = self.step1[k].val();
        }
        for k in 2..N {
            self.step2[k].next = self.step1[k].val() | self.step1[k - 2].val();
        }
        for k in 0..N {
            self.step3[k].next = self.step2[k].val();
        }
        for k in 4..N {
            self.step3[k].next = self.step2[k].val() | self.step2[k - 4].val();
        }
        for k in 0..N {
            self.output[k].next = self.step3[k].val();
        }
        for k in 8..N {
            self.output[k].next = self.step3[k].val() | self.step3[k - 8].val();
        }
        // The last position's prefix and bit: the loop keeps only the last assignment, and a
        // flat OR of all the inputs would be a chain.
        for k in 0..N {
            self.any.next = self.output[k].val() | self.input[k].val();
        }
    }
}

/// The arbiter over `N = 2^B ≤ 16` requesters.
///
/// The turn is kept as a mask of the requesters after the last grant, so the grant is
/// computed one-hot from two prefix ORs, and the binary `index` is the OR of the granted
/// requester's number over all requesters (the grant being one-hot), off the grant's path.
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
    /// Requesters after the last taken grant (none: start from 0).
    after_turn: [DFF<Bit>; N],
    ids: [Constant<Bits<B>>; N],
    eligible: [Signal<Local, Bit>; N],
    asked_below: PrefixOr<Bit, N>,
    eligible_below: PrefixOr<Bit, N>,
    granted_below: PrefixOr<Bit, N>,
    granted_number: PrefixOr<Bits<B>, N>,
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
            after_turn: std::array::from_fn(|_| Default::default()),
            ids: std::array::from_fn(|c| Constant::new(bits::<B>(c as u64))),
            eligible: std::array::from_fn(|_| Default::default()),
            asked_below: Default::default(),
            eligible_below: Default::default(),
            granted_below: Default::default(),
            granted_number: Default::default(),
        }
    }
}

impl<const N: usize, const B: usize> Logic for RoundRobin<N, B> {
    #[hdl_gen]
    fn update(&mut self) {
        // The lowest asking requester after the turn, else the lowest asking one.
        for k in 0..N {
            self.after_turn[k].clock.next = self.clock.val();
            self.after_turn[k].d.next = self.after_turn[k].q.val();
            self.eligible[k].next = self.req[k].val() & self.after_turn[k].q.val();
            self.asked_below.input[k].next = self.req[k].val();
            self.eligible_below.input[k].next = self.eligible[k].val();
        }
        self.valid.next = self.asked_below.any.val();
        for k in 0..N {
            self.grant[k].next = self.req[k].val() & !self.asked_below.output[k].val();
            if self.eligible_below.any.val() {
                self.grant[k].next = self.eligible[k].val() & !self.eligible_below.output[k].val();
            }
            self.granted_below.input[k].next = self.grant[k].val();
        }
        // A taken grant to s makes the requesters after s the next turn's.
        if self.take.val() & self.granted_below.any.val() {
            for k in 0..N {
                self.after_turn[k].d.next = self.granted_below.output[k].val();
            }
        }
        // The index: the granted requester's number, the only one not masked to zero.
        for k in 0..N {
            self.granted_number.input[k].next = 0.into();
            if self.grant[k].val() {
                self.granted_number.input[k].next = self.ids[k].val();
            }
        }
        self.index.next = self.granted_number.any.val();
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
