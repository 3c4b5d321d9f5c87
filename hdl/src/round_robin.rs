//! A round-robin arbiter: of `N` requesters, grant the first that asks at or after the one
//! after the last taken grant.
//!
//! This is the rule of the firmware's issue model (`Engine::schedule`: the search starts at
//! `turn`, and a taken grant to `s` moves `turn` to `s + 1`, wrapping to 0), so the engine's
//! issue order can be compared with the model's.

use rust_hdl::prelude::*;

/// The largest number of requesters (four doubling steps; 4-bit numbers).
pub const MAX_REQUESTERS: usize = 16;

/// The exclusive prefix OR of `n ≤ 16` values (bits, or `Bits` words),
/// `output[k] = input[0] | … | input[k − 1]`, in four doubling steps (Kogge–Stone), so its
/// depth grows with log n: written as a ripple, synthesis keeps the chain (every step is also
/// an output) and the arbiter's path grows with n. The default has 16 values.
#[derive(LogicBlock)]
pub struct PrefixOr<T: Synth + std::ops::BitOr<Output = T>> {
    /// The values.
    pub input: Vec<Signal<In, T>>,
    /// The OR of the values below `k` (zero for `k` = 0).
    pub output: Vec<Signal<Out, T>>,
    /// The OR of all the values.
    pub any: Signal<Out, T>,
    step0: Vec<Signal<Local, T>>,
    step1: Vec<Signal<Local, T>>,
    step2: Vec<Signal<Local, T>>,
    step3: Vec<Signal<Local, T>>,
    zero: Constant<T>,
}

fn signals<D: Direction, T: Synth>(n: usize) -> Vec<Signal<D, T>> {
    (0..n).map(|_| Default::default()).collect()
}

impl<T: Synth + std::ops::BitOr<Output = T>> PrefixOr<T> {
    /// A prefix OR of `n` values.
    pub fn new(n: usize) -> Self {
        assert!(
            (1..=MAX_REQUESTERS).contains(&n),
            "four doubling steps cover 1 to 16 values"
        );
        Self {
            input: signals(n),
            output: signals(n),
            any: Default::default(),
            step0: signals(n),
            step1: signals(n),
            step2: signals(n),
            step3: signals(n),
            zero: Constant::new(T::default()),
        }
    }
}

impl<T: Synth + std::ops::BitOr<Output = T>> Default for PrefixOr<T> {
    fn default() -> Self {
        Self::new(MAX_REQUESTERS)
    }
}

impl<T: Synth + std::ops::BitOr<Output = T>> Logic for PrefixOr<T> {
    #[hdl_gen]
    fn update(&mut self) {
        // step0[k]: bit k − 1; each step ORs in its value from 2^s places lower.
        self.step0[0].next = self.zero.val();
        for k in 1..self.input.len() {
            self.step0[k].next = self.input[k - 1].val();
        }
        for k in 0..self.input.len() {
            self.step1[k].next = self.step0[k].val();
        }
        for k in 1..self.input.len() {
            self.step1[k].next = self.step0[k].val() | self.step0[k - 1].val();
        }
        for k in 0..self.input.len() {
            self.step2[k].next = self.step1[k].val();
        }
        for k in 2..self.input.len() {
            self.step2[k].next = self.step1[k].val() | self.step1[k - 2].val();
        }
        for k in 0..self.input.len() {
            self.step3[k].next = self.step2[k].val();
        }
        for k in 4..self.input.len() {
            self.step3[k].next = self.step2[k].val() | self.step2[k - 4].val();
        }
        for k in 0..self.input.len() {
            self.output[k].next = self.step3[k].val();
        }
        for k in 8..self.input.len() {
            self.output[k].next = self.step3[k].val() | self.step3[k - 8].val();
        }
        // The last position's prefix and bit: the loop keeps only the last assignment, and a
        // flat OR of all the inputs would be a chain.
        for k in 0..self.input.len() {
            self.any.next = self.output[k].val() | self.input[k].val();
        }
    }
}

/// The arbiter over `n ≤ 16` requesters (the default has 16).
///
/// The turn is kept as a mask of the requesters after the last grant, so the grant is
/// computed one-hot from two prefix ORs, and the binary `index` is the OR of the granted
/// requester's number over all requesters (the grant being one-hot), off the grant's path.
#[derive(LogicBlock)]
pub struct RoundRobin {
    /// The clock.
    pub clock: Signal<In, Clock>,
    /// Requests, one per requester.
    pub req: Vec<Signal<In, Bit>>,
    /// The grant is used this cycle: the turn moves past it.
    pub take: Signal<In, Bit>,
    /// Some requester asks.
    pub valid: Signal<Out, Bit>,
    /// The granted requester.
    pub index: Signal<Out, Bits<4>>,
    /// The grant, one-hot (all clear when nobody asks).
    pub grant: Vec<Signal<Out, Bit>>,
    /// Requesters after the last taken grant (none: start from 0).
    after_turn: Vec<DFF<Bit>>,
    ids: Vec<Constant<Bits<4>>>,
    eligible: Vec<Signal<Local, Bit>>,
    asked_below: PrefixOr<Bit>,
    eligible_below: PrefixOr<Bit>,
    granted_below: PrefixOr<Bit>,
    granted_number: PrefixOr<Bits<4>>,
}

impl RoundRobin {
    /// An arbiter over `n` requesters.
    pub fn new(n: usize) -> Self {
        Self {
            clock: Default::default(),
            req: signals(n),
            take: Default::default(),
            valid: Default::default(),
            index: Default::default(),
            grant: signals(n),
            after_turn: (0..n).map(|_| Default::default()).collect(),
            ids: (0..n).map(|c| Constant::new(bits::<4>(c as u64))).collect(),
            eligible: signals(n),
            asked_below: PrefixOr::new(n),
            eligible_below: PrefixOr::new(n),
            granted_below: PrefixOr::new(n),
            granted_number: PrefixOr::new(n),
        }
    }
}

impl Default for RoundRobin {
    fn default() -> Self {
        Self::new(MAX_REQUESTERS)
    }
}

impl Logic for RoundRobin {
    #[hdl_gen]
    fn update(&mut self) {
        // The lowest asking requester after the turn, else the lowest asking one.
        for k in 0..self.req.len() {
            self.after_turn[k].clock.next = self.clock.val();
            self.after_turn[k].d.next = self.after_turn[k].q.val();
            self.eligible[k].next = self.req[k].val() & self.after_turn[k].q.val();
            self.asked_below.input[k].next = self.req[k].val();
            self.eligible_below.input[k].next = self.eligible[k].val();
        }
        self.valid.next = self.asked_below.any.val();
        for k in 0..self.req.len() {
            self.grant[k].next = self.req[k].val() & !self.asked_below.output[k].val();
            if self.eligible_below.any.val() {
                self.grant[k].next = self.eligible[k].val() & !self.eligible_below.output[k].val();
            }
            self.granted_below.input[k].next = self.grant[k].val();
        }
        // A taken grant to s makes the requesters after s the next turn's.
        if self.take.val() & self.granted_below.any.val() {
            for k in 0..self.req.len() {
                self.after_turn[k].d.next = self.granted_below.output[k].val();
            }
        }
        // The index: the granted requester's number, the only one not masked to zero.
        for k in 0..self.req.len() {
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
    fn follows_the_issue_models_rule(requesters: usize, seed: u64) {
        let mut uut = RoundRobin::new(requesters);
        uut.connect_all();
        let mut sim = Simulation::new();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let patterns: Vec<(u16, bool)> = (0..300).map(|_| (rng.gen(), rng.gen())).collect();
        sim.add_clock(5, |x: &mut Box<RoundRobin>| x.clock.next = !x.clock.val());
        sim.add_testbench(move |mut sim: Sim<RoundRobin>| {
            let mut x = sim.init()?;
            let mut turn = 0usize;
            for (n, &(mask, take)) in patterns.iter().enumerate() {
                for c in 0..requesters {
                    x.req[c].next = mask & (1 << c) != 0;
                }
                x.take.next = take;
                x = sim.wait(1, x)?;
                let want = (0..requesters)
                    .map(|k| (turn + k) % requesters)
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
                    for c in 0..requesters {
                        sim_assert_eq!(sim, x.grant[c].val(), c == s, x);
                    }
                    if take {
                        turn = (s + 1) % requesters;
                    }
                }
                wait_clock_cycle!(sim, clock, x);
            }
            sim.done(x)
        });
        sim.run(Box::new(uut), 100_000)
            .expect("the arbiter follows the model");
    }

    #[test]
    fn sixteen_requesters_follow_the_issue_models_rule() {
        follows_the_issue_models_rule(16, 0x7e_11);
    }

    #[test]
    fn eight_requesters_follow_the_issue_models_rule() {
        follows_the_issue_models_rule(8, 0x7e_08);
    }
}
