//! The `verity` subcommands. The binary is a thin shell over these.

pub mod capture;
pub mod client;
pub mod cluster;
pub mod demo;
pub mod firmware;
pub mod hdl;
pub mod init;
pub mod keygen;
pub mod load;
pub mod pcap;
pub mod replay;
pub mod sign;
pub mod sim;
pub mod throughput;
pub mod verify;
pub mod verify_block;

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use anyhow::Context;

/// Opens `path` for buffered reading; `-` is standard input.
pub fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::with_capacity(1 << 16, io::stdin())));
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
}

/// Creates `path` with `text` and syncs it, readable by its owner only if `secret`; never
/// overwrites.
pub fn create_new(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if secret { 0o600 } else { 0o644 });
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (nothing is overwritten)", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
