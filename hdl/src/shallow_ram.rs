//! A block RAM with fewer words than its address reaches: a build with fewer contexts keeps
//! the engine's address widths and gets memories only as deep as it uses.
//!
//! rust-hdl's `RAM<D, N>` always holds `2^N` words, and Yosys does not narrow a memory whose
//! upper address bits happen to be constant, so an engine of 4 contexts paid for 16 in block
//! RAM. This one holds `depth` words (a power of two) and reads and writes at the address's
//! low bits; the engine never names a word past `depth` (the upper bits name contexts the
//! build does not have).
//!
//! A read and a write of one word in one cycle is a fault of the user, not a defined read:
//! with separate read and write ports, Yosys would emulate read-first with a bypass
//! multiplexer at every output bit (on ECP5 about 2,200 LUT4 across the engine's banks, at
//! the block RAMs' congested outputs), so the memory is marked `no_rw_check` and the
//! simulations — rust-hdl's and the exported Verilog's in Icarus and Verilator — stop on
//! such a cycle instead.

use rust_hdl::prelude::*;

/// `depth` words of `D` behind `N`-bit addresses, one read and one write port on one clock.
/// An enabled read returns its word one cycle after its address (the output holds while
/// reads are disabled); it must not name the word written in the same cycle.
#[derive(LogicBlock)]
pub struct ShallowRam<D: Synth, const N: usize> {
    /// The clock of both ports.
    pub clock: Signal<In, Clock>,
    /// The word to read.
    pub read_address: Signal<In, Bits<N>>,
    /// Read this cycle.
    pub read_enable: Signal<In, Bit>,
    /// The word read the cycle before.
    pub read_data: Signal<Out, D>,
    /// The word to write.
    pub write_address: Signal<In, Bits<N>>,
    /// Its new value.
    pub write_data: Signal<In, D>,
    /// Write this cycle.
    pub write_enable: Signal<In, Bit>,
    _words: Vec<D>,
}

impl<D: Synth, const N: usize> ShallowRam<D, N> {
    /// A RAM of `depth` words, all zero in simulation (synthesis gives no initial contents:
    /// the engine reads no word before writing it or marking it unwritten).
    pub fn new(depth: usize) -> Self {
        assert!(
            depth.is_power_of_two() && (2..=1 << N).contains(&depth),
            "a depth of 2 to 2^N words, a power of two"
        );
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_enable: Default::default(),
            read_data: Default::default(),
            write_address: Default::default(),
            write_data: Default::default(),
            write_enable: Default::default(),
            _words: vec![D::default(); depth],
        }
    }

    fn depth_bits(&self) -> usize {
        self._words.len().trailing_zeros() as usize
    }
}

impl<D: Synth, const N: usize> Default for ShallowRam<D, N> {
    fn default() -> Self {
        Self::new(1 << N)
    }
}

impl<D: Synth, const N: usize> Logic for ShallowRam<D, N> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let mask = self._words.len() - 1;
            let (read, write) = (
                self.read_address.val().index() & mask,
                self.write_address.val().index() & mask,
            );
            if self.read_enable.val() {
                assert!(
                    !(self.write_enable.val() && read == write),
                    "word {read} read in the cycle it is written"
                );
                self.read_data.next = self._words[read];
            }
            if self.write_enable.val() {
                self._words[write] = self.write_data.val();
            }
        }
    }

    fn connect(&mut self) {
        self.read_data.connect();
    }

    fn hdl(&self) -> Verilog {
        let low = self.depth_bits();
        // Verilator exempts signals named `*unused*` from its unused-bit warning; the upper
        // address bits are unused by design.
        let upper = if low < N {
            format!(
                "wire unused_upper = &{{1'b0, read_address[{top}:{low}], write_address[{top}:{low}]}};\n",
                top = N - 1
            )
        } else {
            String::new()
        };
        Verilog::Custom(format!(
            "\
(* no_rw_check *)
reg[{word}:0] mem[{last}:0];
{upper}
always @(posedge clock) begin
   if (read_enable) begin
      read_data <= mem[read_address[{high}:0]];
   end
   if (write_enable) begin
      mem[write_address[{high}:0]] <= write_data;
   end
end
`ifndef SYNTHESIS
always @(posedge clock) begin
   if (read_enable && write_enable && read_address[{high}:0] == write_address[{high}:0]) begin
      $fatal(1, \"shallow_ram: a word read in the cycle it is written\");
   end
end
`endif
",
            word = D::BITS - 1,
            last = self._words.len() - 1,
            high = low - 1,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One clock cycle: the inputs (`read` `None`: no read), then a rising edge; the output.
    fn cycle(
        ram: &mut ShallowRam<Bits<8>, 4>,
        read: Option<u64>,
        write: Option<(u64, u64)>,
    ) -> u64 {
        let (address, data) = write.unwrap_or_default();
        ram.read_address.next = read.unwrap_or_default().into();
        ram.read_enable.next = read.is_some();
        ram.write_enable.next = write.is_some();
        ram.write_address.next = address.into();
        ram.write_data.next = data.into();
        for level in [false, true] {
            ram.clock.next = level.into();
            ram.update_all();
            while ram.has_changed() {
                ram.update_all();
            }
        }
        ram.read_data.val().to_u64()
    }

    fn ram() -> ShallowRam<Bits<8>, 4> {
        let mut ram = ShallowRam::new(4);
        ram.connect_all();
        ram
    }

    /// Four words behind four-bit addresses: an address past the depth names the word at its
    /// low bits, and the output holds while reads are off.
    #[test]
    fn addresses_wrap_at_the_depth_and_the_output_holds_between_reads() {
        let mut ram = ram();
        assert_eq!(cycle(&mut ram, None, Some((1, 0x5a))), 0);
        assert_eq!(cycle(&mut ram, Some(1), Some((14, 0x77))), 0x5a);
        assert_eq!(cycle(&mut ram, None, Some((3, 0x11))), 0x5a, "held");
        assert_eq!(cycle(&mut ram, Some(6), None), 0x77);
        let Verilog::Custom(text) = ram.hdl() else {
            panic!("a leaf block's Verilog is its own text")
        };
        assert!(text.contains("mem[3:0]") && text.contains("unused_upper"));
        assert!(text.contains("no_rw_check") && text.contains("$fatal"));
    }

    /// A read of the word written in the same cycle (at an address that wraps onto it) stops
    /// the simulation.
    #[test]
    #[should_panic(expected = "read in the cycle it is written")]
    fn a_read_of_the_word_being_written_stops_the_simulation() {
        let mut ram = ram();
        cycle(&mut ram, Some(2), Some((6, 1)));
    }
}
