//! CPU priority of the replica's background threads.
//!
//! The state stage (tree and receipt commits, checkpoints, pruning), the snapshot writer and
//! the block log's filler (zeroing the next segment ahead of need) are throughput work that
//! may trail the log; the verify and sequence stages are what a client waits on. On a machine
//! with few cores they share the cores, so a background thread runs under Linux's
//! `SCHED_IDLE` policy (kept per thread): it takes whatever CPU the other threads leave, and
//! a waking client-facing thread preempts it at once. A higher nice value was not enough:
//! measured with `perf sched`, a nice-10 state commit kept a core for 3 ms while a
//! verification worker waited for it (the scheduler lets a running thread finish its slice).
//! A background thread cannot starve for long: the sequence stage waits on the state queue
//! once it is [`crate::chain`]'s bound behind, the log stage waits for the filler when the
//! next segment is due before it is filled, and a waiting stage leaves the cores free.
//!
//! `unsafe` is allowed in this module for the one `sched_setscheduler` call, which neither
//! `rustix` nor `nix` wraps.
#![allow(unsafe_code)]

use std::io;

/// The nice value a background thread falls back to when `SCHED_IDLE` is refused.
pub const BACKGROUND_NICE: i32 = 10;

/// Puts the calling thread in the background: `SCHED_IDLE`, or nice [`BACKGROUND_NICE`] if
/// that is refused. A refusal of both (a sandbox) leaves the priority as it was: it costs
/// latency, not correctness, so it is logged and counted.
pub fn background() {
    if let Err(error) = sched_idle() {
        tracing::debug!(%error, "SCHED_IDLE refused: a background thread is niced instead");
        if let Err(error) = rustix::process::setpriority_process(None, BACKGROUND_NICE) {
            tracing::warn!(%error, "a background thread keeps its CPU priority");
            metrics::counter!("verity_priority_failures_total").increment(1);
        }
    }
}

/// Sets the calling thread's policy to `SCHED_IDLE`.
fn sched_idle() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid `sched_param` for the duration of the call, which only reads
    // it; pid 0 names the calling thread.
    let status = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calling thread's scheduling policy, field 41 of `/proc/thread-self/stat`.
    fn policy() -> u32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("reads");
        // The command name (field 2) is in parentheses and may hold spaces: count after it.
        let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
        after_name
            .split(' ')
            .nth(41 - 3)
            .and_then(|field| field.parse().ok())
            .expect("a policy field")
    }

    #[test]
    fn only_the_calling_thread_goes_to_the_background() {
        let before = policy();
        let background_policy = std::thread::spawn(|| {
            background();
            policy()
        })
        .join()
        .expect("joins");
        assert_eq!(background_policy, libc::SCHED_IDLE as u32);
        assert_eq!(policy(), before, "the spawning thread keeps its policy");
    }
}
