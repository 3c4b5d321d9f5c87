//! The ECC engine's test bench: the command stream that loads an image and runs signatures
//! on the engine's contexts, and the checker that holds the engine's output to the firmware's
//! interpreter.
//!
//! Signature `n` runs on context `n mod C` of an engine with `C` contexts; a context's next signature waits in the stream
//! until the context is idle, so one static stream keeps every context busy. The checker
//! follows each context's output in order:
//!
//! - in **debug mode**, every retired instruction: the interpreter steps the same context and
//!   the instruction's address, its result (when it writes a register) and the flags after it
//!   must agree;
//! - at the **end of each signature**, the verdict code and flags, and, when asked, all 64
//!   registers.

use crate::ecc_engine::{kind, EccEngine, MAX_CONTEXTS};
use crate::field_mul::Rate;
use crate::field_value::from_fe;
use crate::flow::harness::{self, Beat, Stalls, Trace};
use num_bigint::BigUint;
use rust_hdl::prelude::Block;
use std::collections::VecDeque;
use verity_firmware::image::Image;
use verity_firmware::interp::{Context, ExecError, Inputs, Step, STEP_LIMIT};
use verity_firmware::isa::REGISTERS;

fn beat(cmd: u8, addr: usize, data: BigUint) -> Beat {
    vec![BigUint::from(cmd), BigUint::from(addr), data]
}

/// Loads the image's microcode and constants.
pub fn load(image: &Image) -> Vec<Beat> {
    let program = &image.program;
    let code = program
        .code
        .iter()
        .enumerate()
        .map(|(at, word)| beat(0, at, word.encode().into()));
    let constants = program
        .constants
        .iter()
        .enumerate()
        .map(|(at, c)| beat(1, at, from_fe(*c)));
    code.chain(constants).collect()
}

/// Turns debug mode on or off.
pub fn debug(on: bool) -> Beat {
    beat(8, 0, BigUint::from(u8::from(on)))
}

/// Loads one signature's inputs into context `ctx` and runs the program from the image's
/// entry.
pub fn run(image: &Image, ctx: usize, inputs: &Inputs) -> Vec<Beat> {
    assert!(
        ctx < MAX_CONTEXTS,
        "an engine has at most {MAX_CONTEXTS} contexts"
    );
    let digit = |d: i8| BigUint::from(d as u8);
    let k = inputs
        .k
        .iter()
        .enumerate()
        .map(|(at, &d)| beat(2, ctx << 8 | at, digit(d)));
    let s = inputs
        .s
        .iter()
        .enumerate()
        .map(|(at, &d)| beat(3, ctx << 8 | at, digit(d)));
    k.chain(s)
        .chain([
            beat(4, ctx, BigUint::from_bytes_le(&inputs.a)),
            beat(5, ctx, BigUint::from_bytes_le(&inputs.r)),
            beat(6, image.program.entry.index(), BigUint::from(ctx)),
        ])
        .collect()
}

/// Reads every register of context `ctx` (once it is idle).
pub fn read_registers(ctx: usize) -> Vec<Beat> {
    (0..REGISTERS)
        .map(|r| beat(7, ctx << 6 | r, BigUint::default()))
        .collect()
}

/// How a batch is run and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Report and check every retired instruction (one instruction in flight at a time).
    pub debug: bool,
    /// Read and check all 64 registers after each signature.
    pub read_registers: bool,
    /// The engine's contexts ([`EccEngine::contexts`]).
    pub contexts: usize,
}

/// The whole stream for a batch: the image, then each signature on context `n mod C`.
pub fn stimulus(image: &Image, jobs: &[Inputs], options: Options) -> Vec<Beat> {
    let mut beats = load(image);
    beats.push(debug(options.debug));
    let contexts = options.contexts;
    for (n, job) in jobs.iter().enumerate() {
        let ctx = n % contexts;
        if options.read_registers && n >= contexts {
            beats.extend(read_registers(ctx));
        }
        beats.extend(run(image, ctx, job));
    }
    if options.read_registers {
        for n in jobs.len().saturating_sub(contexts)..jobs.len() {
            beats.extend(read_registers(n % contexts));
        }
    }
    beats
}

/// How many output beats a batch gives.
pub fn output_beats(image: &Image, jobs: &[Inputs], options: Options) -> Result<usize, ExecError> {
    let per_job = 1 + if options.read_registers { REGISTERS } else { 0 };
    let mut beats = jobs.len() * per_job;
    if options.debug {
        for job in jobs {
            beats += interpret(image, job)?.0.counts.instructions as usize;
        }
    }
    Ok(beats)
}

/// Runs a signature to its end: the final state and the `Done` code.
fn interpret(image: &Image, job: &Inputs) -> Result<(Context, u8), ExecError> {
    let mut context = Context::new(image, job.clone());
    loop {
        if let Step::Done(code) = context.step(image)? {
            return Ok((context, code));
        }
        if context.counts.instructions > STEP_LIMIT {
            return Err(ExecError::StepLimit(context.counts.instructions));
        }
    }
}

/// What the engine did that the interpreter does not.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An output beat disagrees with the interpreter.
    #[error("cycle {cycle}, context {ctx}, signature {job}: {what}")]
    Mismatch {
        /// When it came out.
        cycle: u64,
        /// The context.
        ctx: usize,
        /// The signature's index in the batch.
        job: usize,
        /// What differs.
        what: String,
    },
    /// Signatures never finished.
    #[error("{finished} of {jobs} signatures finished in {cycles} cycles")]
    Missing {
        /// Finished and checked.
        finished: usize,
        /// In the batch.
        jobs: usize,
        /// Cycles simulated.
        cycles: u64,
    },
    /// The interpreter itself failed on a signature (the image is wrong).
    #[error("the interpreter: {0}")]
    Exec(#[from] ExecError),
}

/// What a checked batch measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Each signature's verdict code, in batch order.
    pub codes: Vec<u8>,
    /// The cycle each signature's verdict came out, in batch order.
    pub verdict_cycles: Vec<u64>,
    /// Instructions the engine reported retired (debug mode).
    pub retired: u64,
}

/// A signature in progress on a context, as the checker follows it.
struct Running {
    job: usize,
    interp: Context,
    code: Option<u8>,
    registers_read: usize,
}

/// Checks `trace` (the engine's output for [`stimulus`] of the same arguments) against the
/// interpreter.
pub fn check(
    image: &Image,
    jobs: &[Inputs],
    options: Options,
    trace: &Trace,
) -> Result<Report, BenchError> {
    let contexts = options.contexts;
    let mut queues: Vec<VecDeque<usize>> = vec![VecDeque::new(); contexts];
    for n in 0..jobs.len() {
        queues[n % contexts].push_back(n);
    }
    let mut running: Vec<Option<Running>> = (0..contexts).map(|_| None).collect();
    let mut codes = vec![None; jobs.len()];
    let mut verdict_cycles = vec![0; jobs.len()];
    let mut finished = 0;
    let mut retired = 0;
    for (cycle, out) in &trace.outputs {
        let field = |k: usize| u64::try_from(&out[k]).unwrap_or(u64::MAX);
        let (out_kind, ctx, info, flags) = (field(0), field(1) as usize, field(2), field(4));
        let value = &out[3];
        if ctx >= contexts {
            return Err(BenchError::Mismatch {
                cycle: *cycle,
                ctx,
                job: 0,
                what: "no such context".into(),
            });
        }
        if running[ctx].is_none() {
            let Some(job) = queues[ctx].pop_front() else {
                return Err(BenchError::Mismatch {
                    cycle: *cycle,
                    ctx,
                    job: 0,
                    what: "output from a context with no signature".into(),
                });
            };
            running[ctx] = Some(Running {
                job,
                interp: Context::new(image, jobs[job].clone()),
                code: None,
                registers_read: 0,
            });
        }
        let run = running[ctx]
            .as_mut()
            .expect("a context with output runs a signature");
        let fail = |what: String| BenchError::Mismatch {
            cycle: *cycle,
            ctx,
            job: run.job,
            what,
        };
        match out_kind {
            k if k == kind::RETIRED && options.debug => {
                retired += 1;
                if run.code.is_some() {
                    return Err(fail("an instruction retired after Done".into()));
                }
                let pc = run.interp.pc;
                if info != pc as u64 {
                    return Err(fail(format!(
                        "retired the word at {info}, the interpreter is at {pc}"
                    )));
                }
                let instr = image.program.code[pc];
                if let Step::Done(code) = run.interp.step(image)? {
                    run.code = Some(code);
                }
                if let Some(d) = instr.op.destination() {
                    let want = from_fe(run.interp.regs[d.index()]);
                    if *value != want {
                        return Err(fail(format!(
                            "word {pc} ({:?}) wrote {value:#x}, the interpreter {want:#x}",
                            instr.op
                        )));
                    }
                }
                if flags != u64::from(run.interp.flags) {
                    return Err(fail(format!(
                        "flags after word {pc} are {flags:#06x}, the interpreter's {:#06x}",
                        run.interp.flags
                    )));
                }
            }
            k if k == kind::VERDICT => {
                let code = match run.code {
                    Some(code) => code,
                    None if options.debug => {
                        return Err(fail(format!(
                            "a verdict before Done (the interpreter is at word {})",
                            run.interp.pc
                        )))
                    }
                    None => {
                        let (interp, code) = interpret(image, &jobs[run.job])?;
                        run.interp = interp;
                        code
                    }
                };
                run.code = Some(code);
                if info != u64::from(code) {
                    return Err(fail(format!(
                        "verdict code {info}, the interpreter's {code}"
                    )));
                }
                if flags != u64::from(run.interp.flags) {
                    return Err(fail(format!(
                        "final flags {flags:#06x}, the interpreter's {:#06x}",
                        run.interp.flags
                    )));
                }
                codes[run.job] = Some(code);
                verdict_cycles[run.job] = *cycle;
                if !options.read_registers {
                    finished += 1;
                    running[ctx] = None;
                }
            }
            k if k == kind::REGISTER && options.read_registers && run.code.is_some() => {
                let r = run.registers_read;
                let want = from_fe(run.interp.regs[r]);
                if info != r as u64 || *value != want || flags != u64::from(run.interp.flags) {
                    return Err(fail(format!(
                        "register read {r}: got register {info} = {value:#x} with flags \
                         {flags:#06x}; the interpreter has {want:#x} and {:#06x}",
                        run.interp.flags
                    )));
                }
                run.registers_read += 1;
                if run.registers_read == REGISTERS {
                    finished += 1;
                    running[ctx] = None;
                }
            }
            other => return Err(fail(format!("an unexpected beat of kind {other}"))),
        }
    }
    if finished < jobs.len() {
        return Err(BenchError::Missing {
            finished,
            jobs: jobs.len(),
            cycles: trace.cycles,
        });
    }
    Ok(Report {
        codes: codes.into_iter().map(|c| c.unwrap_or(u8::MAX)).collect(),
        verdict_cycles,
        retired,
    })
}

/// Runs `jobs` in rust-hdl's own simulation of the engine, under `stalls`, and checks the
/// output against the interpreter.
pub fn simulate(
    image: &Image,
    jobs: &[Inputs],
    options: Options,
    stalls: &Stalls,
) -> Result<Report, BenchError> {
    let stimulus = stimulus(image, jobs, options);
    let beats = output_beats(image, jobs, options)?;
    let mut uut = EccEngine::new(Rate::Full, options.contexts);
    uut.connect_all();
    // Generous: a signature alone takes about 40,000 cycles, and all contexts run at once.
    let limit =
        60_000 * (jobs.len() as u64 / options.contexts as u64 + 1) + 20 * stimulus.len() as u64;
    let trace = harness::run(&mut uut, &stimulus, stalls, beats, limit);
    check(image, jobs, options, &trace)
}
