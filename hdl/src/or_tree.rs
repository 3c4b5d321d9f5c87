//! A balanced OR of up to 16 values: the engine's one-hot selections (of its contexts'
//! packets, flags and verdicts) are an OR of masked terms, and written as a flat
//! `a | b | c …` Yosys builds a chain as deep as the number of terms and keeps it.

use rust_hdl::prelude::*;

/// The most values a tree takes.
pub const MAX_INPUTS: usize = 16;

/// `any = term[0] | … | term[n − 1]`, four levels of two-input ORs whatever `n ≤ 16`
/// is (the missing terms are zero, which synthesis folds away).
#[derive(LogicBlock)]
pub struct OrTree<T: Synth + std::ops::BitOr<Output = T>> {
    /// The values.
    pub term: Vec<Signal<In, T>>,
    /// Their OR.
    pub any: Signal<Out, T>,
    leaf: [Signal<Local, T>; 16],
    pair: [Signal<Local, T>; 8],
    quad: [Signal<Local, T>; 4],
    octet: [Signal<Local, T>; 2],
    zero: Constant<T>,
}

impl<T: Synth + std::ops::BitOr<Output = T>> OrTree<T> {
    /// A tree over `n` values.
    pub fn new(n: usize) -> Self {
        assert!(
            (1..=MAX_INPUTS).contains(&n),
            "an OR tree takes 1 to 16 values"
        );
        Self {
            term: (0..n).map(|_| Default::default()).collect(),
            any: Default::default(),
            leaf: Default::default(),
            pair: Default::default(),
            quad: Default::default(),
            octet: Default::default(),
            zero: Constant::new(T::default()),
        }
    }
}

impl<T: Synth + std::ops::BitOr<Output = T>> Default for OrTree<T> {
    fn default() -> Self {
        Self::new(MAX_INPUTS)
    }
}

impl<T: Synth + std::ops::BitOr<Output = T>> Logic for OrTree<T> {
    #[hdl_gen]
    fn update(&mut self) {
        for k in 0..16 {
            self.leaf[k].next = self.zero.val();
        }
        for k in 0..self.term.len() {
            self.leaf[k].next = self.term[k].val();
        }
        for k in 0..8 {
            self.pair[k].next = self.leaf[2 * k].val() | self.leaf[2 * k + 1].val();
        }
        for k in 0..4 {
            self.quad[k].next = self.pair[2 * k].val() | self.pair[2 * k + 1].val();
        }
        for k in 0..2 {
            self.octet[k].next = self.quad[2 * k].val() | self.quad[2 * k + 1].val();
        }
        self.any.next = self.octet[0].val() | self.octet[1].val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every size from 1 to 16 against a fold of the same values.
    #[test]
    fn the_tree_is_the_or_of_its_inputs() {
        let seed = 0x0e_77;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for n in 1..=MAX_INPUTS {
            let mut uut = OrTree::<Bits<8>>::new(n);
            uut.connect_all();
            for _ in 0..40 {
                // Sparse values, so a missing input shows.
                let values: Vec<u8> = (0..n).map(|_| 1 << rng.gen_range(0..8)).collect();
                for (k, v) in values.iter().enumerate() {
                    uut.term[k].next = u64::from(*v).into();
                }
                assert!(simulate(&mut uut, 20), "the tree settles");
                let want = values.iter().fold(0, |a, v| a | v);
                assert_eq!(
                    uut.any.val(),
                    bits::<8>(u64::from(want)),
                    "seed {seed:#x}, {n} inputs {values:?}"
                );
            }
        }
    }
}
