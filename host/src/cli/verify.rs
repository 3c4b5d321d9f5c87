//! `verity verify`: one verdict per JSON line, in input order.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use verity_drivers::{Response, Tag, Verdict, Verifier};

use crate::backend::BackendOptions;
use crate::jsonl::{self, Line};

/// Verify Ed25519 signatures under ZIP-215, one JSON line in, one JSON line out.
///
/// Each input line is a JSON object with hex fields `msg`, `pubkey` (32 bytes) and `sig`
/// (64 bytes: R then S); other fields are ignored, except `id`, which is copied to the output.
/// Each output line is `{"line": N, "id": ..., "verdict": "valid"|"invalid"|"malformed",
/// "reason": "..."}`, in input order. A line that is not such an object gets a `malformed`
/// verdict with the reason, and the run goes on. A summary goes to standard error.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// JSON-lines file to read, or `-` for standard input.
    pub input: PathBuf,
    /// Which verifier, and how it is sized.
    #[command(flatten)]
    pub backend: BackendOptions,
    /// Longest input line accepted, in bytes; longer lines are `malformed`.
    #[arg(long, default_value_t = jsonl::DEFAULT_MAX_LINE)]
    pub max_line_bytes: usize,
}

/// What a run saw, for the summary and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Lines read.
    pub lines: u64,
    /// Verdicts `valid`.
    pub valid: u64,
    /// Verdicts `invalid`.
    pub invalid: u64,
    /// Verdicts `malformed`, from the verifier or from the line's format.
    pub malformed: u64,
}

/// One output line, fields in this order.
#[derive(Serialize)]
struct VerdictLine<'a> {
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<Value>,
    verdict: &'static str,
    reason: &'a str,
}

/// What became of one input line.
enum Outcome {
    /// The verifier's verdict.
    Checked(Verdict),
    /// The line is not a signature line; the reason says why.
    Unreadable(String),
}

/// An output line waiting for its verdict.
struct Slot {
    line: u64,
    id: Option<Value>,
    /// `None` while the verifier still has the request.
    outcome: Option<Outcome>,
}

/// Runs `verity verify`.
pub fn run(args: &VerifyArgs, out: &mut impl Write) -> anyhow::Result<Summary> {
    let mut input = super::open_input(&args.input)?;
    let mut verifier = args.backend.open()?;
    let started = Instant::now();
    let summary = verify_stream(&mut input, verifier.as_mut(), args.max_line_bytes, out)?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "verity verify: {} lines, {} valid, {} invalid, {} malformed in {:.3} s ({:.0} lines/s, backend {})",
        summary.lines,
        summary.valid,
        summary.invalid,
        summary.malformed,
        seconds,
        summary.lines as f64 / seconds.max(1e-9),
        verifier.backend(),
    );
    Ok(summary)
}

/// Reads signature lines from `input`, verifies them through `verifier`, and writes one
/// verdict line per input line to `out`, in order, as soon as its turn comes.
pub fn verify_stream(
    input: &mut impl BufRead,
    verifier: &mut dyn Verifier,
    max_line: usize,
    out: &mut impl Write,
) -> anyhow::Result<Summary> {
    const WAIT: Duration = Duration::from_millis(50);
    let mut summary = Summary::default();
    let mut slots: VecDeque<Slot> = VecDeque::new();
    let mut responses: Vec<Response> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let line_number = summary.lines + 1;
        let outcome =
            match jsonl::read_bounded(input, &mut buf, max_line).context("reading input")? {
                Line::End => break,
                Line::TooLong(length) => Err((
                    None,
                    format!("line is {length} bytes, longer than the limit of {max_line}"),
                )),
                Line::Complete => {
                    let parsed = jsonl::parse_signature_line(&buf, Tag::new(line_number));
                    match parsed.request {
                        Ok(request) => Ok((parsed.id, request)),
                        Err(reason) => Err((parsed.id, reason)),
                    }
                }
            };
        summary.lines = line_number;
        match outcome {
            Err((id, reason)) => {
                metrics::counter!("verity_cli_lines_rejected_total").increment(1);
                slots.push_back(Slot {
                    line: line_number,
                    id,
                    outcome: Some(Outcome::Unreadable(reason)),
                });
            }
            Ok((id, request)) => {
                while verifier.in_flight() >= verifier.capacity() {
                    verifier.flush()?;
                    verifier.complete(&mut responses, WAIT)?;
                    settle(&mut slots, &mut responses, &mut summary, out)?;
                }
                verifier.submit(request)?;
                slots.push_back(Slot {
                    line: line_number,
                    id,
                    outcome: None,
                });
            }
        }
        settle(&mut slots, &mut responses, &mut summary, out)?;
    }
    verifier.flush()?;
    while verifier.in_flight() > 0 {
        verifier.complete(&mut responses, WAIT)?;
        settle(&mut slots, &mut responses, &mut summary, out)?;
    }
    settle(&mut slots, &mut responses, &mut summary, out)?;
    anyhow::ensure!(slots.is_empty(), "{} lines got no verdict", slots.len());
    out.flush().context("writing output")?;
    Ok(summary)
}

/// Gives waiting slots their verdicts (responses come in submission order, which is slot
/// order) and writes every slot at the front that has one.
fn settle(
    slots: &mut VecDeque<Slot>,
    responses: &mut Vec<Response>,
    summary: &mut Summary,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut responses = responses.drain(..);
    for slot in slots.iter_mut().filter(|slot| slot.outcome.is_none()) {
        let Some(response) = responses.next() else {
            break;
        };
        anyhow::ensure!(
            response.tag == Tag::new(slot.line),
            "verifier answered {} where line {} was due",
            response.tag,
            slot.line
        );
        slot.outcome = Some(Outcome::Checked(response.verdict));
    }
    anyhow::ensure!(
        responses.next().is_none(),
        "verifier answered more requests than it was given"
    );
    while slots.front().is_some_and(|slot| slot.outcome.is_some()) {
        let Some(Slot {
            line,
            id,
            outcome: Some(outcome),
        }) = slots.pop_front()
        else {
            break;
        };
        let (class, reason) = match &outcome {
            Outcome::Checked(verdict) => (verdict.class(), verdict.reason()),
            Outcome::Unreadable(reason) => ("malformed", reason.as_str()),
        };
        match outcome {
            Outcome::Checked(Verdict::Valid) => summary.valid += 1,
            Outcome::Checked(Verdict::Invalid) => summary.invalid += 1,
            Outcome::Checked(Verdict::Malformed(_)) | Outcome::Unreadable(_) => {
                summary.malformed += 1
            }
        }
        let record = VerdictLine {
            line,
            id,
            verdict: class,
            reason,
        };
        serde_json::to_writer(&mut *out, &record).context("writing output")?;
        out.write_all(b"\n").context("writing output")?;
    }
    Ok(())
}
