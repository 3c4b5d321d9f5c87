//! Co-simulation of a block's exported Verilog in an independent simulator.
//!
//! A test bench is generated from the block's stream ports. It reads the input beats from a
//! file, one hexadecimal line each (the data ports concatenated, first port most
//! significant), and the stall pattern from another, and follows the same cycle protocol as
//! [`super::harness::run`]: inputs change while the clock is low, handshakes are sampled just
//! before the rising edge. Each output beat is written with its cycle, so the Verilog's trace
//! can be compared with the reference and with rust-hdl's own simulation of the same design,
//! cycle for cycle.
//!
//! The same bench also serves (`+serve`): commands on its standard input offer beats and run
//! cycles, and output beats leave on its standard output as they happen — [`Server`], which
//! with [`InProcess`] (the block in rust-hdl) drives a long-lived model such as the
//! cycle-accurate card through [`Driven`].

use super::export::Block;
use super::harness::{Beat, Port, Stalls, StreamBlock, Trace};
use super::tools::{self, ToolError};
use num_bigint::BigUint;
use num_traits::Num;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The simulator that runs the Verilog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simulator {
    /// Icarus Verilog (`iverilog` + `vvp`): compiles in a second, simulates slowly.
    Icarus,
    /// Verilator (`verilator --binary`): compiles to C++ in tens of seconds, simulates fast.
    Verilator,
}

/// One co-simulation: a block (its Verilog, stream ports and handshake come from
/// [`Block`]) and a working directory.
#[derive(Clone, Debug)]
pub struct Cosim {
    block: Block,
    inputs: &'static [Port],
    outputs: &'static [Port],
    dir: PathBuf,
}

/// A compiled bench, ready to run stimulus.
#[derive(Clone, Debug)]
pub struct Compiled {
    simulator: Simulator,
    dir: PathBuf,
    inputs: &'static [Port],
    outputs: &'static [Port],
}

impl Cosim {
    /// A co-simulation of `block` whose files live in `dir` (one per test: tests run in
    /// parallel).
    pub fn new(block: Block, dir: PathBuf) -> Self {
        let (inputs, outputs) = block.ports();
        Self {
            block,
            inputs,
            outputs,
            dir,
        }
    }

    /// Writes the block's Verilog and the bench, lints the Verilog ([`tools::lint`]) and
    /// compiles both with `simulator`.
    pub fn compile(&self, simulator: Simulator) -> Result<Compiled, ToolError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| ToolError::Io {
            path: self.dir.display().to_string(),
            source,
        })?;
        let design = format!("{}.v", self.block.name());
        tools::write(&self.dir.join(&design), self.block.verilog())?;
        tools::lint(&self.dir.join(&design), self.block)?;
        tools::write(&self.dir.join("bench.v"), self.bench())?;
        match simulator {
            Simulator::Icarus => {
                tools::run(
                    "iverilog",
                    [
                        "-g2012",
                        "-o",
                        "bench.vvp",
                        "-s",
                        "bench",
                        "bench.v",
                        &design,
                    ],
                    &self.dir,
                )?;
            }
            Simulator::Verilator => {
                let mut args = vec!["--binary", "-j", "2", "-O3", "--top-module", "bench"];
                args.extend(tools::LINT_WAIVERS);
                args.extend(["-Wno-STMTDLY", "-Wno-INITIALDLY", "-Mdir", "verilator"]);
                // The block's waivers, written by the lint above.
                let config = format!("{}.vlt", self.block.name());
                args.extend([config.as_str(), "bench.v", design.as_str()]);
                tools::run("verilator", args, &self.dir)?;
            }
        }
        Ok(Compiled {
            simulator,
            dir: self.dir.clone(),
            inputs: self.inputs,
            outputs: self.outputs,
        })
    }

    /// [`Cosim::compile`], unless the directory already holds a build of the same Verilog and
    /// bench (a long-lived model, such as the cycle-accurate card, is built once).
    pub fn compile_cached(&self, simulator: Simulator) -> Result<Compiled, ToolError> {
        let program = match simulator {
            Simulator::Icarus => self.dir.join("bench.vvp"),
            Simulator::Verilator => self.dir.join("verilator").join("Vbench"),
        };
        let same = |file: &str, text: String| {
            std::fs::read_to_string(self.dir.join(file)).is_ok_and(|old| old == text)
        };
        if program.exists()
            && same(&format!("{}.v", self.block.name()), self.block.verilog())
            && same("bench.v", self.bench())
        {
            return Ok(Compiled {
                simulator,
                dir: self.dir.clone(),
                inputs: self.inputs,
                outputs: self.outputs,
            });
        }
        self.compile(simulator)
    }

    fn bench(&self) -> String {
        let in_bits: usize = self.inputs.iter().map(|p| p.bits).sum();
        let mut v = String::new();
        let declare = |v: &mut String, kind: &str, port: &Port| {
            let range = if port.bits > 1 {
                format!("[{}:0] ", port.bits - 1)
            } else {
                String::new()
            };
            let _ = writeln!(v, "  {kind} {range}{};", port.name);
        };
        let _ = writeln!(
            v,
            "`timescale 1ns/1ps\n// Generated by verity-hdl's co-simulation flow."
        );
        let _ = writeln!(v, "module bench;");
        let _ = writeln!(
            v,
            "  reg clock = 0;\n  reg in_valid = 0;\n  wire out_valid;"
        );
        if self.block.back_pressure() {
            let _ = writeln!(v, "  wire in_ready;\n  reg out_ready = 0;");
        } else {
            // A pipeline takes every input and its outputs cannot wait.
            let _ = writeln!(v, "  wire in_ready = 1'b1;\n  reg out_ready = 1'b1;");
        }
        for port in self.inputs {
            declare(&mut v, "reg", port);
        }
        for port in self.outputs {
            declare(&mut v, "wire", port);
        }
        let handshake: &[&str] = if self.block.back_pressure() {
            &["clock", "in_valid", "in_ready", "out_valid", "out_ready"]
        } else {
            &["clock", "in_valid", "out_valid"]
        };
        let connections: Vec<String> = handshake
            .iter()
            .copied()
            .chain(self.inputs.iter().chain(self.outputs).map(|p| p.name))
            .map(|name| format!(".{name}({name})"))
            .collect();
        let _ = writeln!(
            v,
            "  {} dut({});",
            self.block.name(),
            connections.join(", ")
        );
        let in_names: Vec<&str> = self.inputs.iter().map(|p| p.name).collect();
        let out_names: Vec<&str> = self.outputs.iter().map(|p| p.name).collect();
        let _ = write!(
            v,
            r#"  reg [{in_top}:0] beat;
  reg [1:0] stalls [0:{period_top}];
  reg [8*4096-1:0] in_path, stall_path, out_path;
  reg [63:0] word;
  integer fin, fout, cycle, outs, want, limit, status, n, waited;
  reg have;
  // Serving: one cycle with the current offer, every output beat written as it leaves.
  task serve_cycle;
    begin
      in_valid = have;
      {{{in_names}}} = beat;
      out_ready = 1'b1;
      #1;
      if (in_valid && in_ready) have = 0;
      if (out_valid) $fwrite(32'h8000_0001, "o %0d %h\n", cycle, {{{out_names}}});
      #4 clock = 1;
      #5 clock = 0;
      cycle = cycle + 1;
    end
  endtask
  initial begin
    // Interactive: commands on standard input, one word each and its argument —
    // `b HEX` offer a beat until it is taken, `i N` run N cycles, `s` answer `k CYCLE`,
    // `q` stop. A beat not taken in `limit` cycles is given up with `e CYCLE`.
    if ($test$plusargs("serve")) begin
      if (!$value$plusargs("limit=%d", limit)) limit = 10000000;
      fin = $fopen("/dev/stdin", "r");
      cycle = 0;
      have = 0;
      beat = 0;
      status = 1;
      while (status == 1) begin
        word = 0;
        status = $fscanf(fin, "%s", word);
        if (word == "q") status = 0;
        if (status != 1) begin
          // Stopped, or standard input closed: the loop ends.
        end else if (word == "b") begin
          status = $fscanf(fin, "%h", beat);
          have = 1;
          waited = 0;
          while (have && waited < limit) begin
            serve_cycle;
            waited = waited + 1;
          end
          if (have) begin
            have = 0;
            $fwrite(32'h8000_0001, "e %0d\n", cycle);
          end
        end else if (word == "i") begin
          status = $fscanf(fin, "%d", n);
          repeat (n) serve_cycle;
        end else if (word == "s") begin
          $fwrite(32'h8000_0001, "k %0d\n", cycle);
          $fflush(32'h8000_0001);
        end
      end
      $finish;
    end
    if (!$value$plusargs("in=%s", in_path) || !$value$plusargs("stall=%s", stall_path)
        || !$value$plusargs("out=%s", out_path) || !$value$plusargs("want=%d", want)
        || !$value$plusargs("limit=%d", limit)) begin
      $display("bench: needs +in= +stall= +out= +want= +limit=");
      $finish;
    end
    $readmemh(stall_path, stalls);
    fin = $fopen(in_path, "r");
    fout = $fopen(out_path, "w");
    have = 0;
    outs = 0;
    beat = 0;
    for (cycle = 0; cycle < limit && outs < want; cycle = cycle + 1) begin
      if (!have && !$feof(fin)) begin
        status = $fscanf(fin, "%h\n", beat);
        have = (status == 1);
      end
      in_valid = have && !stalls[cycle % {period}][0];
      {{{in_names}}} = beat;
      out_ready = {sink};
      #1;
      if (in_valid && in_ready) have = 0;
      if (out_valid && out_ready) begin
        $fwrite(fout, "%0d %h\n", cycle, {{{out_names}}});
        outs = outs + 1;
      end
      #4 clock = 1;
      #5 clock = 0;
    end
    $fwrite(fout, "cycles %0d\n", cycle);
    $fclose(fout);
    $finish;
  end
endmodule
"#,
            in_top = in_bits.max(1) - 1,
            period = super::harness::STALL_PERIOD,
            period_top = super::harness::STALL_PERIOD - 1,
            in_names = in_names.join(", "),
            out_names = out_names.join(", "),
            sink = if self.block.back_pressure() {
                format!("!stalls[cycle % {}][1]", super::harness::STALL_PERIOD)
            } else {
                "1'b1".to_owned()
            },
        );
        v
    }
}

impl Compiled {
    /// The simulator that runs this bench.
    pub fn simulator(&self) -> Simulator {
        self.simulator
    }

    /// Runs `inputs` under `stalls` until `expected` beats come out or `max_cycles` pass.
    pub fn run(
        &self,
        name: &str,
        inputs: &[Beat],
        stalls: &Stalls,
        expected: usize,
        max_cycles: u64,
    ) -> Result<Trace, CosimError> {
        let in_path = self.dir.join(format!("{name}.in.hex"));
        let stall_path = self.dir.join(format!("{name}.stall.hex"));
        let out_path = self.dir.join(format!("{name}.out.txt"));
        let stimulus: String = inputs
            .iter()
            .map(|beat| hex_line(beat, self.inputs))
            .collect();
        tools::write(&in_path, stimulus)?;
        let pattern: String = stalls.cycles().iter().map(|s| format!("{s:x}\n")).collect();
        tools::write(&stall_path, pattern)?;
        let plusargs = [
            format!("+in={}", in_path.display()),
            format!("+stall={}", stall_path.display()),
            format!("+out={}", out_path.display()),
            format!("+want={expected}"),
            format!("+limit={max_cycles}"),
        ];
        match self.simulator {
            Simulator::Icarus => {
                let mut args = vec!["-n".to_owned(), "bench.vvp".to_owned()];
                args.extend(plusargs);
                tools::run("vvp", args, &self.dir)?;
            }
            Simulator::Verilator => {
                let program = self.dir.join("verilator").join("Vbench");
                tools::run(&program.display().to_string(), plusargs, &self.dir)?;
            }
        }
        let text = std::fs::read_to_string(&out_path).map_err(|source| ToolError::Io {
            path: out_path.display().to_string(),
            source,
        })?;
        parse_trace(&text, self.outputs)
    }
}

impl Compiled {
    /// Starts the bench as a server ([`Server`]): the block runs as long as it is driven.
    pub fn serve(&self) -> Result<Server, ToolError> {
        let (program, args) = match self.simulator {
            Simulator::Icarus => (
                "vvp".to_owned(),
                vec!["-n".to_owned(), "bench.vvp".to_owned(), "+serve".to_owned()],
            ),
            // Absolute: the program runs in the bench's directory.
            Simulator::Verilator => (
                std::path::absolute(self.dir.join("verilator").join("Vbench"))
                    .unwrap_or_else(|_| self.dir.join("verilator").join("Vbench"))
                    .display()
                    .to_string(),
                vec!["+serve".to_owned()],
            ),
        };
        let mut child = std::process::Command::new(&program)
            .args(&args)
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|source| ToolError::Io {
                path: program.clone(),
                source,
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ToolError::Io {
                path: program,
                source: std::io::Error::other("no pipes to the simulator"),
            });
        };
        Ok(Server {
            child,
            commands: std::io::BufWriter::new(stdin),
            replies: std::io::BufReader::new(stdout),
            inputs: self.inputs,
            outputs: self.outputs,
        })
    }
}

/// A block simulated for as long as it is driven: beats are offered one at a time, cycles
/// run on request, and every output beat is collected (the block's `out_ready` is held high).
/// Commands are buffered until [`Server::sync`].
#[derive(Debug)]
pub struct Server {
    child: std::process::Child,
    commands: std::io::BufWriter<std::process::ChildStdin>,
    replies: std::io::BufReader<std::process::ChildStdout>,
    inputs: &'static [Port],
    outputs: &'static [Port],
}

/// What the simulator said since the last [`Server::sync`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// The cycle it has reached.
    pub cycle: u64,
    /// The output beats, with the cycles they left.
    pub outputs: Vec<(u64, Beat)>,
    /// Beats the block never took, given up at these cycles.
    pub refused: Vec<u64>,
}

/// The simulator stopped answering or said something that is not the protocol.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Its pipes failed (it exited).
    #[error("the simulator's pipe: {0}")]
    Pipe(#[from] std::io::Error),
    /// It ended its output.
    #[error("the simulator exited")]
    Exited,
    /// A line that is not `o CYCLE HEX`, `e CYCLE` or `k CYCLE`.
    #[error("the simulator said {0:?}")]
    Protocol(String),
}

/// A block driven beat by beat, for as long as it is driven: the Verilog in a simulator
/// ([`Server`]) or the same design in rust-hdl's own simulation in this process
/// ([`InProcess`]). Commands are buffered until [`Driven::sync`]; the block's `out_ready` is
/// held high.
pub trait Driven: Send {
    /// Offers `beat` until the block takes it (given up after a cycle limit, and reported in
    /// [`Synced::refused`]).
    fn offer(&mut self, beat: &Beat) -> Result<(), ServeError>;
    /// Runs `cycles` cycles with nothing offered.
    fn idle(&mut self, cycles: u64) -> Result<(), ServeError>;
    /// Carries out the commands so far and returns what came out meanwhile.
    fn sync(&mut self) -> Result<Synced, ServeError>;
}

impl Driven for Server {
    fn offer(&mut self, beat: &Beat) -> Result<(), ServeError> {
        use std::io::Write as _;
        write!(self.commands, "b {}", hex_line(beat, self.inputs))?;
        Ok(())
    }

    fn idle(&mut self, cycles: u64) -> Result<(), ServeError> {
        use std::io::Write as _;
        writeln!(self.commands, "i {cycles}")?;
        Ok(())
    }

    fn sync(&mut self) -> Result<Synced, ServeError> {
        use std::io::{BufRead as _, Write as _};
        writeln!(self.commands, "s")?;
        self.commands.flush()?;
        let mut synced = Synced::default();
        let mut line = String::new();
        loop {
            line.clear();
            if self.replies.read_line(&mut line)? == 0 {
                return Err(ServeError::Exited);
            }
            let bad = || ServeError::Protocol(line.trim_end().to_owned());
            let mut words = line.split_whitespace();
            let (kind, cycle) = (words.next(), words.next().map(str::parse::<u64>));
            match (kind, cycle) {
                (Some("k"), Some(Ok(cycle))) => {
                    synced.cycle = cycle;
                    return Ok(synced);
                }
                (Some("e"), Some(Ok(cycle))) => synced.refused.push(cycle),
                (Some("o"), Some(Ok(cycle))) => {
                    let hex = words.next().ok_or_else(bad)?;
                    let value = BigUint::from_str_radix(hex, 16).map_err(|_| bad())?;
                    synced.outputs.push((cycle, split(&value, self.outputs)));
                }
                _ => return Err(bad()),
            }
        }
    }
}

/// What [`InProcess`] has been asked to do since the last sync.
#[derive(Clone, Debug)]
enum Command {
    Offer(Beat),
    Idle(u64),
}

/// A block in rust-hdl's own simulation, driven as [`Server`] drives its Verilog: the same
/// cycle protocol as [`super::harness::run`].
pub struct InProcess<B> {
    block: Box<B>,
    commands: Vec<Command>,
    cycle: u64,
    limit: u64,
}

impl<B: StreamBlock> InProcess<B> {
    /// `block`, connected, at cycle 0; a beat not taken in `limit` cycles is given up.
    pub fn new(mut block: B, limit: u64) -> Self {
        block.connect_all();
        Self {
            block: Box::new(block),
            commands: Vec::new(),
            cycle: 0,
            limit,
        }
    }

    /// One cycle offering `beat`; whether it was taken.
    fn step(&mut self, beat: Option<&Beat>, synced: &mut Synced) -> bool {
        let block = &mut self.block;
        block.set_clock(false);
        block.drive(beat);
        block.set_output_ready(true);
        let settled = rust_hdl::prelude::simulate(block.as_mut(), 1000);
        assert!(settled, "rust-hdl's checks reject combinational loops");
        let taken = beat.is_some() && block.input_ready();
        if let Some(out) = block.output() {
            synced.outputs.push((self.cycle, out));
        }
        block.set_clock(true);
        let settled = rust_hdl::prelude::simulate(block.as_mut(), 1000);
        assert!(settled, "rust-hdl's checks reject combinational loops");
        self.cycle += 1;
        taken
    }
}

impl<B> std::fmt::Debug for InProcess<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("cycle", &self.cycle)
            .field("commands", &self.commands.len())
            .finish()
    }
}

impl<B: StreamBlock + Send> Driven for InProcess<B> {
    fn offer(&mut self, beat: &Beat) -> Result<(), ServeError> {
        self.commands.push(Command::Offer(beat.clone()));
        Ok(())
    }

    fn idle(&mut self, cycles: u64) -> Result<(), ServeError> {
        self.commands.push(Command::Idle(cycles));
        Ok(())
    }

    fn sync(&mut self) -> Result<Synced, ServeError> {
        let mut synced = Synced::default();
        for command in std::mem::take(&mut self.commands) {
            match command {
                Command::Offer(beat) => {
                    let mut waited = 0;
                    while !self.step(Some(&beat), &mut synced) {
                        waited += 1;
                        if waited == self.limit {
                            synced.refused.push(self.cycle);
                            break;
                        }
                    }
                }
                Command::Idle(cycles) => {
                    for _ in 0..cycles {
                        self.step(None, &mut synced);
                    }
                }
            }
        }
        synced.cycle = self.cycle;
        Ok(synced)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        use std::io::Write as _;
        // Asked to stop; killed if it does not (a failed pipe means it is gone already).
        let stopped = writeln!(self.commands, "q").and_then(|()| self.commands.flush());
        if stopped.is_err() || !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The beat as one hexadecimal line: ports concatenated, the first most significant.
fn hex_line(beat: &Beat, ports: &[Port]) -> String {
    assert_eq!(
        beat.len(),
        ports.len(),
        "a beat has one value per input port: {beat:?}"
    );
    let value = ports
        .iter()
        .zip(beat)
        .fold(BigUint::default(), |acc, (port, value)| {
            debug_assert!(
                value.bits() <= port.bits as u64,
                "{} overflows its port",
                port.name
            );
            (acc << port.bits) | value
        });
    format!("{value:x}\n")
}

/// What the bench wrote could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum CosimError {
    /// A tool failed.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The bench's output has a line that is not `CYCLE HEX` or `cycles N`.
    #[error("bench output line {line}: {text:?}")]
    Trace {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

fn parse_trace(text: &str, ports: &[Port]) -> Result<Trace, CosimError> {
    let mut outputs = Vec::new();
    let mut cycles = None;
    for (number, line) in text.lines().enumerate() {
        let bad = || CosimError::Trace {
            line: number + 1,
            text: line.to_owned(),
        };
        let (first, second) = line.split_once(' ').ok_or_else(bad)?;
        if first == "cycles" {
            cycles = Some(second.parse().map_err(|_| bad())?);
            continue;
        }
        let cycle: u64 = first.parse().map_err(|_| bad())?;
        let value = BigUint::from_str_radix(second, 16).map_err(|_| bad())?;
        outputs.push((cycle, split(&value, ports)));
    }
    let cycles = cycles.ok_or(CosimError::Trace {
        line: 0,
        text: "no `cycles` line".into(),
    })?;
    Ok(Trace { outputs, cycles })
}

/// Splits a concatenation back into port values.
pub fn split(value: &BigUint, ports: &[Port]) -> Beat {
    let mut shift: usize = ports.iter().map(|p| p.bits).sum();
    ports
        .iter()
        .map(|port| {
            shift -= port.bits;
            (value >> shift) & ((BigUint::from(1u8) << port.bits) - 1u8)
        })
        .collect()
}
