//! The card's register block in HDL (`verity_hdl::reg_block`) against the functional model's
//! rules (`verity_sim::bar`), register for register: the same bus accesses and data-path
//! events, the same values read back. In rust-hdl, and as Verilog in Verilator.
//!
//! Random choices come from `VERITY_SEED` (a fixed one if unset) and are printed on failure.

use std::path::PathBuf;

use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_firmware::image::Image;
use verity_firmware::program::ed25519_verify;
use verity_firmware::regs::{self, control, errors, Offset};
use verity_firmware::Verdict;
use verity_hdl::flow::cosim::{Cosim, Simulator};
use verity_hdl::flow::harness::{self, compare, Beat, Stalls, StreamBlock};
use verity_hdl::reg_block::{beat, event, RegBlock};
use verity_hdl::Block;
use verity_sim::bar::Bar;

const READ: u8 = 1;
const WRITE: u8 = 2;

fn seed() -> u64 {
    std::env::var("VERITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xba5e_ba11)
}

/// One beat: an access (none, read or write) and the events of its cycle.
#[derive(Clone, Copy, Debug)]
struct Step {
    op: u8,
    offset: u32,
    value: u32,
    events: u8,
}

fn apply_events(bar: &mut Bar, events: u8) {
    let c = &mut bar.counters;
    let bump = |n: &mut u32| *n = n.wrapping_add(1);
    if events & event::REQUEST != 0 {
        bump(&mut c.requests_in);
    }
    if events & event::RESPONSE != 0 {
        bump(&mut c.responses_out);
    }
    if events & event::REJECTED != 0 {
        bump(&mut c.records_rejected);
    }
    if events & event::FRAMING != 0 {
        bump(&mut c.framing_drops);
    }
    for (bit, verdict) in [
        (event::VALID, Verdict::Valid),
        (event::INVALID, Verdict::Invalid),
        (
            event::MALFORMED,
            Verdict::Malformed(verity_firmware::Malformed::NonCanonicalS),
        ),
    ] {
        if events & bit != 0 {
            c.verdict(verdict);
        }
    }
    if events & event::REJECTED != 0 {
        bar.raise(errors::RECORD);
    }
    if events & event::FRAMING != 0 {
        bar.raise(errors::FRAMING);
    }
    if events & event::FAULT != 0 {
        bar.raise(errors::ENGINE);
    }
}

/// What `sim::bar` reads back for `steps` (with requests in flight throughout: `idle` low).
fn expected(steps: &[Step], engines: u16) -> Vec<Beat> {
    let mut bar = Bar::new(engines, 16);
    let mut out = Vec::new();
    for step in steps {
        if step.op == READ {
            out.push(vec![BigUint::from(bar.read(Offset(step.offset), false))]);
        }
        apply_events(&mut bar, step.events);
        if step.op == WRITE {
            bar.write(Offset(step.offset), step.value);
        }
    }
    out
}

fn upload(steps: &mut Vec<Step>, bytes: &[u8], rng: &mut ChaCha8Rng) {
    let write = |offset: Offset, value: u32| Step {
        op: WRITE,
        offset: offset.0,
        value,
        events: 0,
    };
    steps.push(write(regs::IMAGE_LEN, bytes.len() as u32));
    // A new upload stops the card until it is committed.
    steps.push(read(regs::STATUS, rng));
    for (i, (offset, word)) in regs::image_writes(bytes).enumerate() {
        steps.push(write(offset, word));
        if i % 97 == 0 {
            steps.push(read(regs::IMAGE_CRC, rng));
        }
    }
    steps.push(read(regs::IMAGE_CRC, rng));
    steps.push(write(regs::IMAGE_COMMIT, 1));
    // The verdict lands two cycles after the commit: a host's next access is far later.
    steps.push(idle(rng));
    steps.push(idle(rng));
    for offset in [
        regs::IMAGE_COMMIT,
        regs::STATUS,
        regs::ERRORS,
        regs::IMAGE_LEN,
    ] {
        steps.push(read(offset, rng));
    }
}

fn events(rng: &mut ChaCha8Rng) -> u8 {
    if rng.gen_bool(0.5) {
        rng.gen()
    } else {
        0
    }
}

fn read(offset: Offset, rng: &mut ChaCha8Rng) -> Step {
    Step {
        op: READ,
        offset: offset.0,
        value: 0,
        events: events(rng),
    }
}

fn idle(rng: &mut ChaCha8Rng) -> Step {
    Step {
        op: 0,
        offset: 0,
        value: 0,
        events: events(rng),
    }
}

/// A session of a host with the card: reads of every register, control writes, random
/// events, error clears, a good upload, a corrupted one, and accesses to unmapped offsets.
fn session(seed: u64) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut steps = Vec::new();
    let image = Image::new(ed25519_verify()).encode();
    let every = |steps: &mut Vec<Step>, rng: &mut ChaCha8Rng| {
        // `DOORBELL_DONE` is the card's request window's (an input here): the card's sessions
        // test it.
        for (_, offset, _) in regs::ALL.iter().filter(|r| r.1 != regs::DOORBELL_DONE) {
            steps.push(read(*offset, rng));
        }
        for offset in [
            0x01c, 0x050, 0x3fc, 0xffc, 0x1000, 0xfffc, 0x1_0000, 0x1_fffc,
        ] {
            steps.push(read(Offset(offset), rng));
        }
    };
    every(&mut steps, &mut rng);
    let write = |offset: Offset, value: u32| Step {
        op: WRITE,
        offset: offset.0,
        value,
        events: 0,
    };
    steps.push(write(regs::CONTROL, control::ENABLE));
    upload(&mut steps, &image, &mut rng);
    for _ in 0..300 {
        let offset = match regs::ALL[rng.gen_range(0..regs::ALL.len())].1 {
            regs::DOORBELL_DONE => regs::DOORBELL,
            offset => offset,
        };
        steps.push(match rng.gen_range(0..10) {
            0 => write(
                [regs::ERRORS, regs::CONTROL][rng.gen_range(0..2)],
                control::CLEAR_ERRORS | (rng.gen::<u32>() & control::ENABLE),
            ),
            1 => write(
                regs::CONTROL,
                [
                    control::ENABLE,
                    0,
                    control::ENABLE | control::CLEAR_COUNTERS,
                    control::RESET,
                ][rng.gen_range(0..4)],
            ),
            2 => write(
                Offset([0x000, 0x004, 0x014, 0x020, 0x01c, 0x2000][rng.gen_range(0..6)]),
                rng.gen(),
            ),
            // A doorbell of a length the window could take (the card's window refuses longer
            // ones, not the register block).
            6 => write(
                regs::DOORBELL,
                regs::doorbell(rng.gen_range(0..4), rng.gen_range(0..=256)),
            ),
            3..=5 => idle(&mut rng),
            _ => read(offset, &mut rng),
        });
    }
    let mut corrupt = image.clone();
    let at = rng.gen_range(32..corrupt.len());
    corrupt[at] ^= 1;
    upload(&mut steps, &corrupt, &mut rng);
    let mut header = image.clone();
    header[5] = 9;
    upload(&mut steps, &header, &mut rng);
    upload(&mut steps, &image, &mut rng);
    every(&mut steps, &mut rng);
    steps
}

fn beats(steps: &[Step]) -> Vec<Beat> {
    steps
        .iter()
        .map(|s| beat(s.op, s.offset, s.value, s.events))
        .collect()
}

#[test]
fn the_register_block_reads_back_what_the_functional_model_does() {
    let seed = seed();
    let steps = session(seed);
    let expected = expected(&steps, 1);
    let inputs = beats(&steps);
    let mut block = RegBlock::default();
    let trace = harness::run(
        &mut block,
        &inputs,
        &Stalls::random(seed, 20, 20),
        expected.len(),
        4 * inputs.len() as u64 + 100,
    );
    if let Err(mismatch) = compare(RegBlock::OUTPUTS, &trace, &expected) {
        panic!("seed {seed}: rust-hdl: {mismatch}");
    }
}

#[test]
fn the_register_block_verilog_reads_back_what_the_functional_model_does() {
    let seed = seed();
    let steps = session(seed);
    let expected = expected(&steps, 1);
    let inputs = beats(&steps);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("card-registers");
    let compiled = Cosim::new(Block::RegBlock, dir)
        .compile(Simulator::Verilator)
        .unwrap_or_else(|e| panic!("{e}"));
    let trace = compiled
        .run(
            "session",
            &inputs,
            &Stalls::random(seed, 30, 30),
            expected.len(),
            4 * inputs.len() as u64 + 100,
        )
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    if let Err(mismatch) = compare(RegBlock::OUTPUTS, &trace, &expected) {
        panic!("seed {seed}: Verilator: {mismatch}");
    }
}
