//! The CPU backend: ZIP-215 batch verification on a pool of worker threads.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::{zip215, Request, Response, Verifier, VerifierError};

const BACKEND: &str = "cpu";

/// How the CPU backend is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuConfig {
    /// Worker threads, one batch each at a time.
    pub threads: NonZeroUsize,
    /// Signatures per batch equation. Larger batches amortise the multi-scalar multiplication
    /// (1,024 is near the per-signature optimum) at the cost of latency.
    pub batch: NonZeroUsize,
    /// The most requests in flight; [`Verifier::capacity`].
    pub max_in_flight: NonZeroUsize,
}

impl CpuConfig {
    /// A pool of `threads` workers verifying batches of `batch`, with room for four batches
    /// per worker in flight.
    pub fn new(threads: NonZeroUsize, batch: NonZeroUsize) -> Self {
        let max_in_flight = threads
            .saturating_mul(batch)
            .saturating_mul(NonZeroUsize::new(4).expect("4 is not zero"));
        Self {
            threads,
            batch,
            max_in_flight,
        }
    }
}

impl Default for CpuConfig {
    /// One worker per available core, batches of 1,024.
    fn default() -> Self {
        let threads = thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        Self::new(threads, NonZeroUsize::new(1024).expect("1024 is not zero"))
    }
}

/// A batch handed to a worker, numbered in submission order.
struct Job {
    seq: u64,
    requests: Vec<Request>,
}

/// A worker's answer to one job.
struct Done {
    seq: u64,
    responses: Result<Vec<Response>, String>,
}

/// ZIP-215 verification on the CPU, in batches, on all cores.
///
/// Requests are grouped into batches of [`CpuConfig::batch`] in submission order; each batch
/// goes to the next free worker, which verifies it with [`zip215::verify_batch`] under a
/// ChaCha20 generator seeded from the operating system. Finished batches are put back in
/// submission order before [`Verifier::complete`] returns them.
pub struct CpuVerifier {
    config: CpuConfig,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    /// Submitted, not yet dispatched: the batch being filled.
    filling: Vec<Request>,
    next_seq: u64,
    /// The next job whose responses `complete` may return.
    deliver_seq: u64,
    /// Finished jobs waiting for an earlier one.
    finished: BTreeMap<u64, Vec<Response>>,
    in_flight: usize,
}

impl CpuVerifier {
    /// Starts the worker threads.
    pub fn new(config: CpuConfig) -> Self {
        let (jobs, job_queue) = crossbeam_channel::unbounded::<Job>();
        let (done_tx, done) = crossbeam_channel::unbounded::<Done>();
        let workers = (0..config.threads.get())
            .map(|index| {
                let job_queue = job_queue.clone();
                let done_tx = done_tx.clone();
                thread::Builder::new()
                    .name(format!("verity-cpu-{index}"))
                    .spawn(move || work(&job_queue, &done_tx))
                    .expect("the operating system starts a verifier thread")
            })
            .collect();
        Self {
            config,
            jobs: Some(jobs),
            done,
            workers,
            filling: Vec::with_capacity(config.batch.get()),
            next_seq: 0,
            deliver_seq: 0,
            finished: BTreeMap::new(),
            in_flight: 0,
        }
    }

    /// How the backend is sized.
    pub fn config(&self) -> CpuConfig {
        self.config
    }

    fn dispatch(&mut self) -> Result<(), VerifierError> {
        if self.filling.is_empty() {
            return Ok(());
        }
        let requests = std::mem::replace(
            &mut self.filling,
            Vec::with_capacity(self.config.batch.get()),
        );
        let job = Job {
            seq: self.next_seq,
            requests,
        };
        self.next_seq += 1;
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| failed("all worker threads have exited"))
    }

    /// Moves the finished jobs that are next in order into `out`.
    fn deliver(&mut self, out: &mut Vec<Response>) -> usize {
        let mut delivered = 0;
        while let Some(responses) = self.finished.remove(&self.deliver_seq) {
            self.deliver_seq += 1;
            delivered += responses.len();
            out.extend(responses);
        }
        self.in_flight -= delivered;
        delivered
    }

    fn accept(&mut self, done: Done) -> Result<(), VerifierError> {
        let responses = done.responses.map_err(|panic| failed(&panic))?;
        self.finished.insert(done.seq, responses);
        Ok(())
    }
}

impl Verifier for CpuVerifier {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capacity(&self) -> usize {
        self.config.max_in_flight.get()
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn submit(&mut self, request: Request) -> Result<(), VerifierError> {
        if self.in_flight >= self.capacity() {
            metrics::counter!("verity_verifier_refused_full_total", "backend" => BACKEND)
                .increment(1);
            return Err(VerifierError::Full {
                capacity: self.capacity(),
            });
        }
        self.filling.push(request);
        self.in_flight += 1;
        if self.filling.len() >= self.config.batch.get() {
            self.dispatch()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), VerifierError> {
        self.dispatch()
    }

    fn complete(
        &mut self,
        out: &mut Vec<Response>,
        wait: Duration,
    ) -> Result<usize, VerifierError> {
        // Everything in flight is still being filled: nothing would ever finish.
        if self.in_flight == self.filling.len() {
            self.dispatch()?;
        }
        let deadline = Instant::now() + wait;
        loop {
            while let Ok(done) = self.done.try_recv() {
                self.accept(done)?;
            }
            let delivered = self.deliver(out);
            if delivered > 0 || self.in_flight == 0 {
                return Ok(delivered);
            }
            match self
                .done
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(done) => self.accept(done)?,
                Err(RecvTimeoutError::Timeout) => return Ok(0),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(failed("all worker threads have exited"))
                }
            }
        }
    }
}

impl Drop for CpuVerifier {
    fn drop(&mut self) {
        // Closing the queue ends the workers once they finish their current batch.
        self.jobs = None;
        for worker in self.workers.drain(..) {
            // A worker that panicked has already reported it through `Done`.
            let _ = worker.join();
        }
    }
}

fn failed(reason: &str) -> VerifierError {
    metrics::counter!("verity_verifier_failures_total", "backend" => BACKEND).increment(1);
    VerifierError::Failed {
        backend: BACKEND,
        reason: reason.to_owned(),
    }
}

/// A worker: verify batches until the queue closes.
fn work(jobs: &Receiver<Job>, done: &Sender<Done>) {
    let mut rng = ChaCha20Rng::from_entropy();
    for job in jobs {
        let span = tracing::debug_span!("cpu_batch", seq = job.seq, len = job.requests.len());
        let _entered = span.enter();
        let responses = panic::catch_unwind(AssertUnwindSafe(|| {
            let verdicts = zip215::verify_batch(&job.requests, &mut rng);
            job.requests
                .iter()
                .zip(verdicts)
                .map(|(request, verdict)| Response {
                    tag: request.tag,
                    verdict,
                })
                .collect::<Vec<_>>()
        }))
        .map_err(|_| format!("worker panicked verifying batch {}", job.seq));
        if let Ok(responses) = &responses {
            count_verdicts(responses);
        }
        if done
            .send(Done {
                seq: job.seq,
                responses,
            })
            .is_err()
        {
            return;
        }
    }
}

/// One counter update per verdict class and batch, not per signature.
fn count_verdicts(responses: &[Response]) {
    let mut by_class: BTreeMap<&'static str, u64> = BTreeMap::new();
    for response in responses {
        *by_class.entry(response.verdict.class()).or_default() += 1;
    }
    for (class, count) in by_class {
        metrics::counter!("verity_verify_verdicts_total", "backend" => BACKEND, "verdict" => class)
            .increment(count);
    }
}
