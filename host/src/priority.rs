//! CPU priority of the replica's background threads.
//!
//! The state stage (tree and receipt commits, checkpoints, pruning) and the snapshot writer
//! are throughput work that may trail the log; the verify and sequence stages are what a
//! client waits on. On a machine with few cores they share the cores, and the scheduler's
//! time slices let a state commit stall a verification batch for milliseconds. A background
//! thread therefore runs at a lower priority (a higher nice value: Linux keeps it per
//! thread), so the stages a client waits on preempt it, and it takes whatever they leave.

/// The nice value of a background thread (0 is the default; 19 the lowest priority).
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`]. A refusal (a platform
/// without per-thread nice values, a sandbox) leaves the priority as it was: it costs latency,
/// not correctness, so it is logged and counted.
pub fn background() {
    if let Err(error) = rustix::process::setpriority_process(None, BACKGROUND_NICE) {
        tracing::warn!(%error, "a background thread keeps its CPU priority");
        metrics::counter!("verity_priority_failures_total").increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_calling_thread_is_lowered() {
        let before = rustix::process::getpriority_process(None).expect("reads");
        let lowered = std::thread::spawn(|| {
            background();
            rustix::process::getpriority_process(None).expect("reads")
        })
        .join()
        .expect("joins");
        assert_eq!(lowered, BACKGROUND_NICE.max(before));
        assert_eq!(
            rustix::process::getpriority_process(None).expect("reads"),
            before,
            "the spawning thread keeps its priority"
        );
    }
}
