//! The `verity` subcommands. The binary is a thin shell over these.

pub mod client;
pub mod demo;
pub mod firmware;
pub mod hdl;
pub mod init;
pub mod keygen;
pub mod load;
pub mod sign;
pub mod sim;
pub mod throughput;
pub mod verify;

use std::fs::File;
use std::io::{self, BufRead, BufReader};
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
