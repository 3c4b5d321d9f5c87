//! `verity sign`: signed lines for `verity verify`, from a key file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use ed25519_dalek::Signer;
use serde::Deserialize;
use serde_json::{json, Value};

use super::keygen::KeyFile;
use crate::jsonl::{self, Line};

/// Sign messages with a key from `verity keygen`, writing lines `verity verify` reads.
///
/// Each input line is a JSON object with a hex `msg` (and optionally an `id`, copied through),
/// or, with `--raw`, the message itself. Each output line is
/// `{"id": ..., "msg": hex, "pubkey": hex, "sig": hex}`. Unreadable input lines are reported
/// on standard error and skipped; the exit status is then non-zero.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Key file written by `verity keygen`.
    #[arg(long)]
    pub key: PathBuf,
    /// Input file, or `-` for standard input.
    #[arg(default_value = "-")]
    pub input: PathBuf,
    /// Each input line is the message itself (without its newline), not JSON.
    #[arg(long)]
    pub raw: bool,
    /// Longest input line accepted, in bytes.
    #[arg(long, default_value_t = jsonl::DEFAULT_MAX_LINE)]
    pub max_line_bytes: usize,
}

#[derive(Deserialize)]
struct MessageLine {
    #[serde(default)]
    id: Option<Value>,
    msg: String,
}

/// Runs `verity sign`.
pub fn run(args: &SignArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let key = KeyFile::load(&args.key)?;
    let pubkey = hex::encode(key.verifying_key().to_bytes());
    let mut input = super::open_input(&args.input)?;
    let mut buf = Vec::new();
    let (mut line, mut skipped) = (0u64, 0u64);
    loop {
        let read = jsonl::read_bounded(&mut input, &mut buf, args.max_line_bytes)
            .context("reading input")?;
        line += 1;
        let message = match read {
            Line::End => break,
            Line::TooLong(length) => Err(format!("{length} bytes, over the limit")),
            Line::Complete if args.raw => Ok((None, buf.clone())),
            Line::Complete => serde_json::from_slice::<MessageLine>(&buf)
                .map_err(|e| format!("not a JSON object with a hex `msg`: {e}"))
                .and_then(|m| {
                    let bytes =
                        hex::decode(&m.msg).map_err(|e| format!("`msg` is not hex: {e}"))?;
                    Ok((m.id, bytes))
                }),
        };
        match message {
            Err(reason) => {
                skipped += 1;
                eprintln!("line {line} skipped: {reason}");
            }
            Ok((id, message)) => {
                let mut record = json!({});
                if let Some(id) = id {
                    record["id"] = id;
                }
                record["msg"] = Value::from(hex::encode(&message));
                record["pubkey"] = Value::from(pubkey.as_str());
                record["sig"] = Value::from(hex::encode(key.sign(&message).to_bytes()));
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    anyhow::ensure!(skipped == 0, "{skipped} input lines were skipped");
    Ok(())
}
