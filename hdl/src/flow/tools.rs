//! The external tools of the flow, run as child processes with their failures explained.

use super::export::Block;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// Verilator warnings waived on rust-hdl's output, each for a reason that is rust-hdl's, not
/// the design's:
/// - `WIDTH`: rust-hdl writes casts as masks and literals unsized (`x + 1`, `q = 64'h0`), so
///   widths differ by construction; the rust-hdl simulation and the co-simulation agree on
///   every value, which is what the warning guards.
/// - `DECLFILENAME`: a block's sub-modules (`NAME$core`, …) live in its one file `NAME.v`.
/// - `UNUSEDPARAM`: rust-hdl declares every state enum's values in every module.
pub const LINT_WAIVERS: [&str; 3] = ["-Wno-WIDTH", "-Wno-DECLFILENAME", "-Wno-UNUSEDPARAM"];

/// A tool that could not run or that reported a failure.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The program is not installed.
    #[error("{program} is not installed (scripts/deps installs it): {source}")]
    Missing {
        /// The program.
        program: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// The program ran and failed.
    #[error("{program} failed ({status}):\n{output}")]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed (stderr, then stdout).
        output: String,
    },
    /// A file of the flow could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Runs `program args…` in `dir` and returns its output if it exits successfully.
pub fn run<I, S>(program: &str, args: I, dir: &Path) -> Result<Output, ToolError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|source| ToolError::Missing {
            program: program.to_owned(),
            source,
        })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ToolError::Failed {
            program: program.to_owned(),
            status: output.status,
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
            ),
        })
    }
}

/// `verilator --lint-only -Wall` on `block`'s Verilog in `file`, waiving only
/// [`LINT_WAIVERS`] and the block's own [`Block::waivers`] (through a Verilator
/// configuration file written beside it).
pub fn lint(file: &Path, block: Block) -> Result<(), ToolError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut config = String::from("`verilator_config\n");
    for waiver in &block.waivers() {
        config += &format!(
            "// {}\nlint_off -rule {} -file \"*\" -match \"*'{}'*\"\n",
            waiver.reason, waiver.rule, waiver.signal
        );
    }
    let config_path = dir.join(format!("{}.vlt", block.name()));
    write(&config_path, config)?;
    let mut args: Vec<&OsStr> = vec!["--lint-only".as_ref(), "-Wall".as_ref()];
    args.extend(LINT_WAIVERS.iter().map(OsStr::new));
    args.extend(["--top-module".as_ref(), OsStr::new(block.name())]);
    args.extend([config_path.as_os_str(), file.as_os_str()]);
    run("verilator", args, dir).map(drop)
}

/// Writes `contents` to `path`, reporting the path on failure.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), ToolError> {
    std::fs::write(path, contents).map_err(|source| ToolError::Io {
        path: path.display().to_string(),
        source,
    })
}
