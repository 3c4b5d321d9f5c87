//! Stopping on SIGINT or SIGTERM, caught from the moment a [`Signals`] is made.
//!
//! A program that prints a ready line and only then starts listening dies by the signal's
//! default action when a supervisor (or a test) sends SIGTERM as soon as it reads that line:
//! no clean stop, no `stopped` line. So the listener is made first, the line printed after.
//! `host/tests/daemon.rs` sends verityd SIGTERM the moment its ready line is read. (Not tested
//! in this crate's unit tests: a test binary that caught SIGTERM or SIGINT would ignore them
//! for the rest of its run, a harness's timeout and a developer's Ctrl-C among them.)
//!
//! ```no_run
//! let signals = verity_host::signals::Signals::catch()?;
//! println!("ready");
//! signals.wait();
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;

use tokio::runtime::Runtime;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGINT and SIGTERM, caught since [`Signals::catch`]: one that arrives before
/// [`Signals::wait`] ends the wait at once.
pub struct Signals {
    runtime: Runtime,
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Catches SIGINT and SIGTERM from now on, in place of their default action (ending the
    /// process).
    pub fn catch() -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (interrupt, terminate) = {
            let _runtime = runtime.enter();
            (
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            )
        };
        Ok(Self {
            runtime,
            interrupt,
            terminate,
        })
    }

    /// Waits for SIGINT or SIGTERM.
    pub fn wait(mut self) {
        self.runtime.block_on(async {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        });
    }
}
