//! A card's BAR mapped into memory: the XDMA user BAR (`/dev/xdma0_user`), or the file the
//! virtual endpoint shares with a driver.
//!
//! Every access moves one aligned 32-bit word with a volatile load or store, as PCIe
//! memory-mapped I/O must: the compiler may neither merge, split, reorder nor elide them. On
//! a card each access is a PCIe transaction; on the shared file, the other process sees it in
//! program order (x86-64 keeps stores in order; [`MappedBar::fence`] orders the rest).

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::atomic::{fence, Ordering};

use memmap2::{MmapMut, MmapOptions};
use verity_firmware::regs::{Offset, BAR_LEN};

/// A mapped BAR of [`BAR_LEN`] bytes.
#[derive(Debug)]
pub struct MappedBar {
    map: MmapMut,
}

impl MappedBar {
    /// Maps the first [`BAR_LEN`] bytes of `file`, shared with whoever else maps it.
    pub fn map(file: &File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        // A device node reports length 0; a shared file must hold the whole BAR.
        if file.metadata()?.file_type().is_file() && len < BAR_LEN as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("BAR file of {len} bytes is shorter than the BAR's {BAR_LEN}"),
            ));
        }
        // SAFETY: the mapping is only ever accessed through `read` and `write` below, one
        // aligned word at a time with volatile operations, so a concurrent writer in another
        // process (the card, or the endpoint) can change it without breaking any reference
        // the compiler relies on: no `&` or `&mut` to its bytes is handed out.
        let map = unsafe { MmapOptions::new().len(BAR_LEN).map_mut(file)? };
        Ok(Self { map })
    }

    fn word(&self, offset: Offset) -> Option<*mut u32> {
        let at = offset.0 as usize;
        (at.is_multiple_of(4) && at + 4 <= BAR_LEN).then(|| {
            // SAFETY: `at + 4 <= BAR_LEN`, the mapping's length, and the mapping is page
            // aligned, so the word is inside it and aligned.
            unsafe { self.map.as_ptr().add(at) as *mut u32 }
        })
    }

    /// Reads the word at `offset`; an unaligned or out-of-range offset reads 0, as an
    /// unmapped BAR address does.
    pub fn read(&self, offset: Offset) -> u32 {
        match self.word(offset) {
            // SAFETY: in range and aligned (`word`); volatile because another agent writes it.
            Some(word) => u32::from_le(unsafe { word.read_volatile() }),
            None => 0,
        }
    }

    /// Writes the word at `offset`; an unaligned or out-of-range offset is ignored.
    pub fn write(&mut self, offset: Offset, value: u32) {
        if let Some(word) = self.word(offset) {
            // SAFETY: in range and aligned (`word`); volatile because another agent reads it.
            unsafe { word.write_volatile(value.to_le()) }
        }
    }

    /// Orders every access before it against every access after it, as seen by the other
    /// side: results are published before the acknowledgement that announces them.
    pub fn fence() {
        fence(Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;

    #[test]
    fn two_mappings_of_one_file_see_each_others_words() {
        let dir = std::env::temp_dir().join(format!("verity-bar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("user");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("creates");
        assert!(MappedBar::map(&file).is_err(), "an empty file is refused");
        file.set_len(BAR_LEN as u64).expect("sized");
        let mut host = MappedBar::map(&file).expect("maps");
        let card = MappedBar::map(&file).expect("maps");
        host.write(Offset(0x10), 0xdead_beef);
        assert_eq!(card.read(Offset(0x10)), 0xdead_beef);
        host.write(Offset(BAR_LEN as u32), 1);
        assert_eq!(card.read(Offset(BAR_LEN as u32)), 0, "out of range reads 0");
        assert_eq!(card.read(Offset(0x11)), 0, "unaligned reads 0");
        std::fs::remove_dir_all(&dir).expect("cleans up");
    }
}
