//! The card's control BAR: 32-bit registers at 4-byte-aligned offsets, read and written one
//! aligned word at a time (the XDMA user BAR moves exactly 4 bytes per access).
//!
//! | offset | name | access | meaning |
//! |---|---|---|---|
//! | 0x000 | `ID` | RO | `0x56525459` ("VRTY") |
//! | 0x004 | `VERSION` | RO | bits 31–16 design major, 15–8 minor, 7–0 ISA version |
//! | 0x008 | `CONTROL` | RW | bit 0 `ENABLE`; bit 1 `RESET`, bit 2 `CLEAR_COUNTERS` and bit 3 `CLEAR_ERRORS` act and read back 0 |
//! | 0x00C | `STATUS` | RO | bit 0 `IMAGE_OK`, bit 1 `RUNNING`, bit 2 `IDLE` (no request in flight) |
//! | 0x010 | `ERRORS` | RO | sticky: bit 0 `FRAMING`, 1 `RECORD`, 2 `IMAGE_CHECKSUM`, 3 `IMAGE_HEADER`, 4 `ENGINE` (a program fault) |
//! | 0x014 | `ENGINES` | RO | bits 15–0 engines, bits 31–16 contexts per engine |
//! | 0x018 | `MAX_MESSAGE` | RO | 1024 |
//! | 0x020 | `REQUESTS_IN` | RO | request records taken (wrapping) |
//! | 0x024 | `RESPONSES_OUT` | RO | response records sent |
//! | 0x028 | `RECORDS_REJECTED` | RO | records answered with a record error |
//! | 0x02C | `FRAMING_DROPS` | RO | transfers dropped for framing errors |
//! | 0x030 | `VALID` | RO | verdicts `Valid` |
//! | 0x034 | `INVALID` | RO | verdicts `Invalid` |
//! | 0x038 | `MALFORMED` | RO | verdicts `Malformed(_)` |
//! | 0x040 | `IMAGE_LEN` | RW | bytes of image to upload; writing it restarts the upload and clears `IMAGE_OK` |
//! | 0x048 | `IMAGE_CRC` | RO | CRC-32 of the bytes uploaded so far, CRC field as zero |
//! | 0x04C | `IMAGE_COMMIT` | RW | writing 1 checks the uploaded image; reads 1 until the check is done, then `IMAGE_OK` or an error bit shows its verdict |
//! | 0x050 | `DOORBELL` | RW | bits 31–16 a submission's sequence number, 15–0 its length in 64-byte words; a new sequence submits that many words of the request window's half `sequence & 1` as one transfer |
//! | 0x054 | `DOORBELL_DONE` | RO | the sequence of the last submission the card has taken out of the window |
//! | 0x8000–0xFFFF | request window | WO | two halves of 16 KiB (256 words): request records, as on the host-to-card stream |
//! | 0x10000–0x1FFFF | image window | WO | the image, 4 bytes per word, written in ascending order |
//!
//! The BAR is [`BAR_LEN`] bytes: registers in its first 4 KiB, the request window in its
//! second quarter, the image window in its upper half.
//!
//! # Two ways in for requests
//!
//! Bulk requests go by DMA on the host-to-card stream. A small batch can go through the BAR
//! instead, without a DMA transfer's set-up and interrupt (about 30 µs on XDMA): the host
//! writes its records into the request window's half `n & 1` (n: the next sequence number,
//! wrapping at 2^16), then writes `DOORBELL` = n << 16 | words. The card takes the half as one
//! transfer — framing errors, record errors and responses exactly as on the stream — and then
//! sets `DOORBELL_DONE` = n. A half is written again only once `DOORBELL_DONE` has reached the
//! sequence that last used it, so the host fills one half while the card takes the other; the
//! doorbell rings again only once `DOORBELL_DONE` shows the previous submission taken (it is a
//! state, not an event: one submission waits in it at a time). A
//! length over 256 words takes nothing and counts as a framing drop; a card that is not
//! running holds the submission until it runs, as it holds its stream. The card refuses to run (`ENABLE` has no effect, `RUNNING` stays 0) until a
//! committed image passed its header and checksum checks.
//!
//! # Host writes are state, not events
//!
//! Every register the host writes keeps its value until the host or the card changes it, and
//! the card acknowledges a command by changing the register back: `RESET`, `CLEAR_COUNTERS`
//! and `CLEAR_ERRORS` read 0 once done, `IMAGE_COMMIT` reads 0 once checked. The image goes into
//! a window of its own addresses rather than through one data register. So a driver writes,
//! then reads until the acknowledgement shows — at once on a card — and a card whose BAR is
//! shared memory rather than PCIe (the virtual XDMA endpoint of `sim`) sees every command by
//! comparing the BAR with what it last published, without losing a write that repeats the
//! previous value.

/// A register's offset in the BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset(pub u32);

/// How software may access a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    ReadOnly,
    /// Read and write.
    ReadWrite,
    /// Write only (reads return 0).
    WriteOnly,
}

macro_rules! registers {
    ($($(#[$doc:meta])* $name:ident = $offset:literal, $access:ident;)*) => {
        $($(#[$doc])* pub const $name: Offset = Offset($offset);)*
        /// Every register with its name and access, in offset order.
        pub const ALL: &[(&str, Offset, Access)] = &[$((stringify!($name), $name, Access::$access)),*];
    };
}

registers! {
    /// "VRTY".
    ID = 0x000, ReadOnly;
    /// Design and ISA version.
    VERSION = 0x004, ReadOnly;
    /// Enable, reset, clear counters.
    CONTROL = 0x008, ReadWrite;
    /// Image loaded, running, idle.
    STATUS = 0x00C, ReadOnly;
    /// Sticky error bits, cleared by `CONTROL.CLEAR_ERRORS`.
    ERRORS = 0x010, ReadOnly;
    /// Engines and contexts.
    ENGINES = 0x014, ReadOnly;
    /// The longest message.
    MAX_MESSAGE = 0x018, ReadOnly;
    /// Request records taken.
    REQUESTS_IN = 0x020, ReadOnly;
    /// Response records sent.
    RESPONSES_OUT = 0x024, ReadOnly;
    /// Records refused with a record error.
    RECORDS_REJECTED = 0x028, ReadOnly;
    /// Transfers dropped as unframeable.
    FRAMING_DROPS = 0x02C, ReadOnly;
    /// Valid verdicts.
    VALID = 0x030, ReadOnly;
    /// Invalid verdicts.
    INVALID = 0x034, ReadOnly;
    /// Malformed verdicts.
    MALFORMED = 0x038, ReadOnly;
    /// Image length; starts an upload.
    IMAGE_LEN = 0x040, ReadWrite;
    /// CRC of the upload so far.
    IMAGE_CRC = 0x048, ReadOnly;
    /// Check and activate the upload; reads 1 while the check runs.
    IMAGE_COMMIT = 0x04C, ReadWrite;
    /// Submits a half of the request window.
    DOORBELL = 0x050, ReadWrite;
    /// The last submission taken out of the request window.
    DOORBELL_DONE = 0x054, ReadOnly;
}

/// The BAR's length in bytes.
pub const BAR_LEN: usize = 0x2_0000;

/// The request window: two halves of [`REQUEST_HALF`] bytes.
pub const REQUEST_WINDOW: Offset = Offset(0x8000);
/// One half of the request window: 256 words of 64 bytes.
pub const REQUEST_HALF: usize = 0x4000;

/// Whether `offset` falls in the request window.
pub const fn in_request_window(offset: Offset) -> bool {
    offset.0 >= REQUEST_WINDOW.0
        && (offset.0 as usize) < REQUEST_WINDOW.0 as usize + 2 * REQUEST_HALF
}

/// `DOORBELL`'s value for submission `sequence` of `words` 64-byte words.
pub const fn doorbell(sequence: u16, words: u16) -> u32 {
    (sequence as u32) << 16 | words as u32
}

/// Where submission `sequence`'s records go: its half of the request window.
pub const fn request_half(sequence: u16) -> Offset {
    Offset(REQUEST_WINDOW.0 + (sequence as u32 & 1) * REQUEST_HALF as u32)
}

/// The BAR writes that put `records` — whole request records, at most a half — into the
/// half of submission `sequence`, in order. The doorbell follows:
/// `doorbell(sequence, records.len() / 64)`.
pub fn window_writes(sequence: u16, records: &[u8]) -> impl Iterator<Item = (Offset, u32)> + '_ {
    word_writes(request_half(sequence), records)
}

/// `bytes` as 32-bit little-endian writes at ascending offsets from `base`, the last word
/// zero-padded.
fn word_writes(base: Offset, bytes: &[u8]) -> impl Iterator<Item = (Offset, u32)> + '_ {
    bytes.chunks(4).zip(0u32..).map(move |(chunk, i)| {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        (Offset(base.0 + 4 * i), u32::from_le_bytes(word))
    })
}

/// The image window: the upper half of the BAR. Word `i` of the image goes to
/// `IMAGE_WINDOW + 4 i`; the card takes window writes in the order they arrive, so a driver
/// writes them in ascending order, once each.
pub const IMAGE_WINDOW: Offset = Offset(0x1_0000);

const _: () = assert!(crate::image::IMAGE_LEN_MAX <= BAR_LEN - IMAGE_WINDOW.0 as usize);

/// Whether `offset` falls in the image window.
pub const fn in_image_window(offset: Offset) -> bool {
    offset.0 >= IMAGE_WINDOW.0 && (offset.0 as usize) < BAR_LEN
}

/// `ID`'s value.
pub const ID_VALUE: u32 = 0x5652_5459;

/// The card design's major version: a host refuses a card whose major version differs.
pub const DESIGN_MAJOR: u16 = 2;
/// The card design's minor version: compatible additions.
pub const DESIGN_MINOR: u8 = 0;

/// `VERSION`'s value for this crate's design and instruction set.
pub const fn version_value() -> u32 {
    ((DESIGN_MAJOR as u32) << 16)
        | ((DESIGN_MINOR as u32) << 8)
        | (crate::image::ISA_VERSION as u32 & 0xff)
}

/// The image window writes that upload `image`: four bytes each, little-endian, the last one
/// zero-padded, at ascending offsets.
pub fn image_writes(image: &[u8]) -> impl Iterator<Item = (Offset, u32)> + '_ {
    word_writes(IMAGE_WINDOW, image)
}

/// `CONTROL` bits.
pub mod control {
    /// Accept requests.
    pub const ENABLE: u32 = 1 << 0;
    /// Reset engines and queues (self-clearing); the image stays.
    pub const RESET: u32 = 1 << 1;
    /// Zero the counters (self-clearing).
    pub const CLEAR_COUNTERS: u32 = 1 << 2;
    /// Zero `ERRORS` (self-clearing).
    pub const CLEAR_ERRORS: u32 = 1 << 3;
}

/// `STATUS` bits.
pub mod status {
    /// A committed image passed its checks.
    pub const IMAGE_OK: u32 = 1 << 0;
    /// Enabled with a good image: requests are processed.
    pub const RUNNING: u32 = 1 << 1;
    /// No request in flight.
    pub const IDLE: u32 = 1 << 2;
}

/// `ERRORS` bits (sticky until `CONTROL.CLEAR_ERRORS`).
pub mod errors {
    /// A transfer could not be framed and was dropped.
    pub const FRAMING: u32 = 1 << 0;
    /// A record was refused with a record error.
    pub const RECORD: u32 = 1 << 1;
    /// The committed image's CRC did not match.
    pub const IMAGE_CHECKSUM: u32 = 1 << 2;
    /// The committed image's header or content is invalid.
    pub const IMAGE_HEADER: u32 = 1 << 3;
    /// A program fault (a table read out of range, no outcome within the step bound).
    pub const ENGINE: u32 = 1 << 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_are_aligned_distinct_and_ordered() {
        for pair in ALL.windows(2) {
            assert!(
                pair[0].1 < pair[1].1,
                "{} and {} out of order",
                pair[0].0,
                pair[1].0
            );
        }
        assert!(ALL
            .iter()
            .all(|(_, offset, _)| offset.0 % 4 == 0 && offset.0 < 0x1000));
    }

    #[test]
    fn the_largest_image_fits_the_window() {
        let bytes = vec![0u8; crate::image::IMAGE_LEN_MAX];
        let (last, _) = image_writes(&bytes).last().expect("words");
        assert!(in_image_window(IMAGE_WINDOW) && in_image_window(last));
        assert!(!in_image_window(Offset(BAR_LEN as u32)));
        assert!(!in_image_window(IMAGE_COMMIT));
    }
}
