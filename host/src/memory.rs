//! The replica's memory: the allocator of every program that links this crate, and the size
//! of the pages the kernel backs it with.
//!
//! Transparent huge pages are turned off for the daemon ([`small_pages`]). mimalloc asks for
//! them on its arenas (`madvise(MADV_HUGEPAGE)`), and where THP is `always` the kernel gives
//! them unasked. The first touch of a huge page zeroes all 2 MiB of it in the thread that
//! touched it, and the daemon's memory grows while it runs (the store's cache, the chain's
//! indexes), so every such fault lands on a stage's thread. With `perf`, the sequence
//! thread's worst 20 ms windows at 120,000 tx/s spent 83 % of their samples in
//! `clear_page_erms` under `do_huge_pmd_anonymous_page`, and those windows made the p99.
//! Small pages cost the same zeroing in 4 KiB steps, which no stage waits on for long
//! (host/README, "Figures", has the alternating runs).

/// The allocator, declared here once so that no program runs on another than the one
/// measured.
///
/// mimalloc, not the system's: glibc's malloc spent a tenth of the sequence stage's time
/// coalescing and unlinking freed chunks (`perf`, the pipeline paced at half the host's rate),
/// and with mimalloc that stage's CPU a transaction fell from 4.0–4.2 to 3.2–3.3 µs and the
/// host's p99 at half its rate from 14.3–14.7 to 8.6–9.6 ms (host/README, "Figures").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (Linux's `PR_SET_THP_DISABLE`, kept
/// across `fork` and `exec`). Call it first in a program that runs the pipeline: memory
/// faulted in before stays as it is. A refusal costs latency, not correctness.
pub fn small_pages() -> std::io::Result<()> {
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
}
