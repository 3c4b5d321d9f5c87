//! One context's row of the register file's tables: for each of its 64 registers, whether it
//! was written since the context was cleared, and which write port wrote it last.
//!
//! The file has one row per context it holds ([`crate::reg_file::RegFile::new`]), so a build
//! of 4 contexts keeps 4 rows and reads them through a 4-way OR instead of 1,024-way
//! multiplexers. Addresses come packed (ten bits per port) because rust-hdl's generator
//! resolves one loop index per signal path, and the file drives its rows in a loop.

use crate::reg_file::{ADDRESS_BITS, CONTEXT_REGISTERS, READ_PORTS};
use rust_hdl::prelude::*;

/// Bits of the packed read addresses.
pub const READ_BITS: usize = READ_PORTS * ADDRESS_BITS;
/// Bits of the packed writes: port `p`'s address at `p · 10`, its enable at bit `20 + p`.
pub const WRITE_BITS: usize = 2 * ADDRESS_BITS + 2;
// The row's logic names the packed fields' offsets as literals (rust-hdl's generator takes
// literals and loop indices there).
const _: () = assert!(
    ADDRESS_BITS == 10,
    "RegRow's field offsets assume ten-bit addresses"
);

/// The row of context `id`.
#[derive(LogicBlock)]
pub struct RegRow {
    /// The engine clock.
    pub clock: Signal<In, Clock>,
    /// The read addresses, port `k`'s at bit `k · 10`.
    pub reads: Signal<In, Bits<READ_BITS>>,
    /// This cycle's writes ([`WRITE_BITS`]); the two never name one register.
    pub writes: Signal<In, Bits<WRITE_BITS>>,
    /// Forget `clear_context`'s registers this cycle (the cycle's writes still land).
    pub clear: Signal<In, Bit>,
    /// The context to forget.
    pub clear_context: Signal<In, Bits<4>>,
    /// For each read port `k` that names this context: bit `k`, the register's last write
    /// came from the linear unit (port 1); bit `4 + k`, it was written since the clear. Zero
    /// for the ports that name other contexts.
    pub bits: Signal<Out, Bits<8>>,
    id: Constant<Bits<4>>,
    live: DFF<Bits<CONTEXT_REGISTERS>>,
    written: DFF<Bits<CONTEXT_REGISTERS>>,
    cleared: Signal<Local, Bits<CONTEXT_REGISTERS>>,
    written_after_mul: Signal<Local, Bits<CONTEXT_REGISTERS>>,
    live_after_mul: Signal<Local, Bits<CONTEXT_REGISTERS>>,
}

impl RegRow {
    /// The row of context `id`.
    pub fn new(id: usize) -> Self {
        assert!(id < 16, "context numbers are four bits");
        Self {
            clock: Default::default(),
            reads: Default::default(),
            writes: Default::default(),
            clear: Default::default(),
            clear_context: Default::default(),
            bits: Default::default(),
            id: Constant::new(bits::<4>(id as u64)),
            live: Default::default(),
            written: Default::default(),
            cleared: Default::default(),
            written_after_mul: Default::default(),
            live_after_mul: Default::default(),
        }
    }
}

impl Logic for RegRow {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, live, written);
        self.bits.next = 0.into();
        for k in 0..4 {
            if self.reads.val().get_bits::<4>(10 * k + 6) == self.id.val() {
                self.bits.next = self.bits.val().replace_bit(
                    k,
                    self.live
                        .q
                        .val()
                        .get_bit(self.reads.val().get_bits::<6>(10 * k).index()),
                );
                self.bits.next = self.bits.val().replace_bit(
                    k + 4,
                    self.written
                        .q
                        .val()
                        .get_bit(self.reads.val().get_bits::<6>(10 * k).index()),
                );
            }
        }
        self.cleared.next = self.written.q.val();
        if self.clear.val() & (self.clear_context.val() == self.id.val()) {
            self.cleared.next = 0.into();
        }
        // Port 0's write, then port 1's.
        self.written_after_mul.next = self.cleared.val();
        self.live_after_mul.next = self.live.q.val();
        if self.writes.val().get_bit(20) & (self.writes.val().get_bits::<4>(6) == self.id.val()) {
            self.written_after_mul.next = self
                .cleared
                .val()
                .replace_bit(self.writes.val().get_bits::<6>(0).index(), true);
            self.live_after_mul.next = self
                .live
                .q
                .val()
                .replace_bit(self.writes.val().get_bits::<6>(0).index(), false);
        }
        self.written.d.next = self.written_after_mul.val();
        self.live.d.next = self.live_after_mul.val();
        if self.writes.val().get_bit(21) & (self.writes.val().get_bits::<4>(16) == self.id.val()) {
            self.written.d.next = self
                .written_after_mul
                .val()
                .replace_bit(self.writes.val().get_bits::<6>(10).index(), true);
            self.live.d.next = self
                .live_after_mul
                .val()
                .replace_bit(self.writes.val().get_bits::<6>(10).index(), true);
        }
    }
}
