//! The card as its driver reaches it.
//!
//! A Verity card shows a host three things through the XDMA core: 32-bit registers in the
//! user BAR (`firmware::regs`), a host-to-card stream that takes request records in DMA
//! transfers, and a card-to-host stream that gives back 64-byte response records
//! (`firmware::abi`). [`Card`] is exactly that surface, so a driver written against it runs
//! unchanged on the functional model, on the cycle model, and (through the XDMA device files)
//! on a card.

use std::time::Duration;

use thiserror::Error;
use verity_firmware::regs::{self, Offset};

/// A card: its register block and its two streams.
pub trait Card: Send {
    /// Reads the 32-bit register at `offset`. Unmapped and write-only registers read 0.
    fn read_register(&mut self, offset: Offset) -> u32;

    /// Writes the 32-bit register at `offset`. Writes to read-only or unmapped registers are
    /// ignored, as the card's register block ignores them.
    fn write_register(&mut self, offset: Offset, value: u32);

    /// Sends one host-to-card transfer: whole request records, the last one ending the
    /// transfer (the stream's end-of-packet). A record the card cannot frame ends its
    /// transfer: the rest is dropped and counted (`FRAMING_DROPS`).
    fn write_stream(&mut self, transfer: &[u8]) -> Result<(), StreamError>;

    /// Appends the response records the card has produced (64 bytes each), at most
    /// `max_records`, and returns how many. A model that runs in the caller's thread runs
    /// until it has one or has no request left in flight, and ignores `wait`; a card across a
    /// bus waits up to `wait` for the first. `Ok(0)`: nothing came.
    fn read_stream(
        &mut self,
        out: &mut Vec<u8>,
        max_records: usize,
        wait: Duration,
    ) -> Result<usize, StreamError>;

    /// Uploads `image` through the BAR's window and commits it. Whether the card took it shows
    /// in `STATUS.IMAGE_OK` and `ERRORS` once `IMAGE_COMMIT` reads 0.
    fn load_image(&mut self, image: &[u8]) {
        self.write_register(regs::IMAGE_LEN, image.len() as u32);
        for (offset, word) in regs::image_writes(image) {
            self.write_register(offset, word);
        }
        self.write_register(regs::IMAGE_COMMIT, 1);
    }
}

/// Why a transfer was not taken.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StreamError {
    /// The card is not running (no good image committed, or not enabled): it does not take
    /// requests, as a card holds its stream's ready signal low.
    #[error("the card is not running: commit a good image and enable it first")]
    NotRunning,
    /// The transfer is larger than one DMA transfer may be.
    #[error("transfer of {0} bytes is over the {MAX_TRANSFER} bytes of one DMA transfer")]
    TooLarge(usize),
    /// The card stopped taking the stream or answering (a model's simulator exited; a card
    /// off the bus).
    #[error("the card stopped answering")]
    Failed,
    /// A device file of the card failed (a card behind XDMA; its endpoint went away).
    #[error("{device}: {reason}")]
    Device {
        /// Which device file.
        device: &'static str,
        /// The operating system's error, or end of file.
        reason: String,
    },
}

/// Moves up to `max_records` of a model's `responses` into `out`, oldest first, and says how
/// many: the end of every model's `read_stream`.
pub(crate) fn hand_over(
    responses: &mut std::collections::VecDeque<[u8; verity_firmware::abi::RESPONSE_LEN]>,
    out: &mut Vec<u8>,
    max_records: usize,
) -> usize {
    let n = max_records.min(responses.len());
    for record in responses.drain(..n) {
        out.extend_from_slice(&record);
    }
    n
}

/// The largest host-to-card transfer: what one XDMA descriptor chain moves in practice, and a
/// bound on what a model holds at once.
pub const MAX_TRANSFER: usize = 1 << 20;
