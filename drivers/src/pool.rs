//! Verification on a pool of worker threads, in batches, answered in submission order.
//!
//! Two backends run this way: `cpu` (ZIP-215 batch verification, [`zip215`]) and `model` (the
//! firmware's reference interpreter running the card's microcode, one signature at a time).

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use verity_firmware::image::Image;
use verity_firmware::interp::Engine;
use verity_firmware::program::ed25519_verify;
use verity_firmware::Verdict;

use crate::{zip215, Request, Response, Verifier, VerifierError};

/// The fewest requests a worker is given when a partial batch is spread over the workers:
/// a batch equation has a fixed cost (its random-linear-combination point sum) that smaller
/// shares would repeat for little gain. 16, not 64 as before the key cache: with keys decoded
/// once, a replica's batch of 20–30 signatures cut by its deadline verifies on two workers
/// in about two thirds of the time it takes on one (drivers/README.md has the figures).
pub const MIN_SHARE: usize = 16;

/// What a worker does with one batch: one verdict per request, or why it could not.
type BatchFn = dyn Fn(&[Request], &mut ChaCha20Rng) -> Result<Vec<Verdict>, String> + Send + Sync;

/// How a pool is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads, one batch each at a time.
    pub threads: NonZeroUsize,
    /// Signatures per batch equation. Larger batches amortise the multi-scalar multiplication
    /// (1,024 is near the per-signature optimum) at the cost of latency.
    pub batch: NonZeroUsize,
    /// The most requests in flight; [`Verifier::capacity`].
    pub max_in_flight: NonZeroUsize,
}

impl PoolConfig {
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

impl Default for PoolConfig {
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

/// A verifier backed by worker threads.
///
/// Requests are grouped into batches of [`PoolConfig::batch`] in submission order; each batch
/// goes to the next free worker. Finished batches are put back in submission order before
/// [`Verifier::complete`] returns them.
pub struct PoolVerifier {
    backend: &'static str,
    config: PoolConfig,
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

impl PoolVerifier {
    /// The `cpu` backend: each worker checks a batch with [`zip215::verify_batch`] under a
    /// ChaCha20 generator seeded from the operating system.
    pub fn cpu(config: PoolConfig) -> Self {
        Self::start(
            "cpu",
            config,
            Arc::new(|requests, rng| Ok(zip215::verify_batch(requests, rng))),
        )
    }

    /// The `model` backend: each worker runs the card's Ed25519 microcode on the firmware's
    /// reference interpreter, signature by signature. A program fault fails the backend.
    pub fn model(config: PoolConfig) -> Self {
        let engine = Engine::new(Image::new(ed25519_verify()));
        Self::start(
            "model",
            config,
            Arc::new(move |requests, _| {
                requests
                    .iter()
                    .map(|r| {
                        verity_firmware::verify::verify(
                            &engine,
                            &r.public_key,
                            &r.signature,
                            &r.message,
                        )
                        .map(|(verdict, _)| verdict)
                        .map_err(|fault| format!("request {}: {fault}", r.tag))
                    })
                    .collect()
            }),
        )
    }

    fn start(backend: &'static str, config: PoolConfig, batch: Arc<BatchFn>) -> Self {
        let (jobs, job_queue) = crossbeam_channel::unbounded::<Job>();
        let (done_tx, done) = crossbeam_channel::unbounded::<Done>();
        let workers = (0..config.threads.get())
            .map(|index| {
                let job_queue = job_queue.clone();
                let done_tx = done_tx.clone();
                let batch = Arc::clone(&batch);
                thread::Builder::new()
                    .name(format!("verity-{backend}-{index}"))
                    .spawn(move || work(backend, &*batch, &job_queue, &done_tx))
                    .expect("the operating system starts a verifier thread")
            })
            .collect();
        Self {
            backend,
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
    pub fn config(&self) -> PoolConfig {
        self.config
    }

    /// Hands what is being filled to the workers: a full batch as one job; a partial one (a
    /// flush before it filled, as a latency-bound caller does) in up to one share per worker
    /// of at least [`MIN_SHARE`], so it is verified in parallel rather than on one worker
    /// while the others wait.
    fn dispatch(&mut self) -> Result<(), VerifierError> {
        let len = self.filling.len();
        if len == 0 {
            return Ok(());
        }
        let shares = if len >= self.config.batch.get() {
            1
        } else {
            (len / MIN_SHARE).clamp(1, self.config.threads.get())
        };
        let mut requests = std::mem::replace(
            &mut self.filling,
            Vec::with_capacity(self.config.batch.get()),
        );
        for share in 0..shares {
            // Shares differ by one request at most.
            let take = requests.len() / (shares - share);
            let job = Job {
                seq: self.next_seq,
                requests: requests.drain(..take).collect(),
            };
            self.next_seq += 1;
            self.jobs
                .as_ref()
                .and_then(|jobs| jobs.send(job).ok())
                .ok_or_else(|| failed(self.backend, "all worker threads have exited"))?;
        }
        Ok(())
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
        let responses = done
            .responses
            .map_err(|reason| failed(self.backend, &reason))?;
        self.finished.insert(done.seq, responses);
        Ok(())
    }
}

impl Verifier for PoolVerifier {
    fn backend(&self) -> &'static str {
        self.backend
    }

    fn capacity(&self) -> usize {
        self.config.max_in_flight.get()
    }

    /// A full batch equation for every worker.
    fn batch(&self) -> usize {
        let full = self
            .config
            .threads
            .get()
            .saturating_mul(self.config.batch.get());
        full.min(self.capacity() / 2).max(1)
    }

    fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn submit(&mut self, request: Request) -> Result<(), VerifierError> {
        if self.in_flight >= self.capacity() {
            metrics::counter!("verity_verifier_refused_full_total", "backend" => self.backend)
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
                    return Err(failed(self.backend, "all worker threads have exited"))
                }
            }
        }
    }
}

impl Drop for PoolVerifier {
    fn drop(&mut self) {
        // Closing the queue ends the workers once they finish their current batch.
        self.jobs = None;
        for worker in self.workers.drain(..) {
            // A worker that panicked has already reported it through `Done`.
            let _ = worker.join();
        }
    }
}

fn failed(backend: &'static str, reason: &str) -> VerifierError {
    metrics::counter!("verity_verifier_failures_total", "backend" => backend).increment(1);
    VerifierError::Failed {
        backend,
        reason: reason.to_owned(),
    }
}

/// A worker: verify batches until the queue closes.
fn work(backend: &'static str, batch: &BatchFn, jobs: &Receiver<Job>, done: &Sender<Done>) {
    let mut rng = ChaCha20Rng::from_entropy();
    for job in jobs {
        let span = tracing::debug_span!(
            "verify_batch",
            backend,
            seq = job.seq,
            len = job.requests.len()
        );
        let _entered = span.enter();
        let responses = panic::catch_unwind(AssertUnwindSafe(|| batch(&job.requests, &mut rng)))
            .unwrap_or_else(|_| Err(format!("worker panicked verifying batch {}", job.seq)))
            .and_then(|verdicts| {
                if verdicts.len() != job.requests.len() {
                    return Err(format!(
                        "{} verdicts for {} requests",
                        verdicts.len(),
                        job.requests.len()
                    ));
                }
                Ok(job
                    .requests
                    .iter()
                    .zip(verdicts)
                    .map(|(request, verdict)| Response {
                        tag: request.tag,
                        verdict,
                    })
                    .collect::<Vec<_>>())
            });
        if let Ok(responses) = &responses {
            count_verdicts(backend, responses);
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
fn count_verdicts(backend: &'static str, responses: &[Response]) {
    let mut by_class: BTreeMap<&'static str, u64> = BTreeMap::new();
    for response in responses {
        *by_class.entry(response.verdict.class()).or_default() += 1;
    }
    for (class, count) in by_class {
        metrics::counter!("verity_verify_verdicts_total", "backend" => backend, "verdict" => class)
            .increment(count);
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use verity_firmware::{Malformed, Tag, Verdict};

    use super::*;

    fn sized(threads: usize, batch: usize, max_in_flight: usize) -> PoolVerifier {
        PoolVerifier::cpu(PoolConfig {
            threads: NonZeroUsize::new(threads).expect("threads > 0"),
            batch: NonZeroUsize::new(batch).expect("batch > 0"),
            max_in_flight: NonZeroUsize::new(max_in_flight).expect("max_in_flight > 0"),
        })
    }

    /// Request `i`: valid, except every fifth (message altered: invalid) and every seventh
    /// (S = 2²⁵⁵ − 1: malformed).
    fn request(i: u64) -> (Request, Verdict) {
        let key = SigningKey::from_bytes(&[(i % 3) as u8 + 1; 32]);
        let message = i.to_le_bytes().to_vec();
        let mut request = Request::new(
            Tag::new(i),
            key.verifying_key().to_bytes(),
            key.sign(&message).to_bytes(),
            message,
        );
        let verdict = if i % 7 == 6 {
            request.signature[32..].fill(0xff);
            request.signature[63] = 0x7f;
            Verdict::Malformed(Malformed::NonCanonicalS)
        } else if i % 5 == 4 {
            request.message.push(0);
            Verdict::Invalid
        } else {
            Verdict::Valid
        };
        (request, verdict)
    }

    #[test]
    fn responses_come_back_in_submission_order_across_batches_and_workers() {
        let mut cpu = sized(3, 5, 1000);
        let (requests, expected): (Vec<_>, Vec<_>) = (0..203).map(request).unzip();
        let responses = crate::verify_all(&mut cpu, requests).expect("cpu runs");
        assert_eq!(responses.len(), expected.len());
        for (i, (response, want)) in responses.iter().zip(&expected).enumerate() {
            assert_eq!(response.tag, Tag::new(i as u64));
            assert_eq!(response.verdict, *want, "request {i}");
        }
        assert_eq!(cpu.in_flight(), 0);
    }

    #[test]
    fn submitting_beyond_capacity_is_refused_and_room_returns_after_complete() {
        let mut cpu = sized(1, 2, 3);
        for i in 0..3 {
            cpu.submit(request(i).0).expect("room");
        }
        assert!(matches!(
            cpu.submit(request(3).0),
            Err(VerifierError::Full { capacity: 3 })
        ));
        assert_eq!(cpu.in_flight(), 3);
        let mut out = Vec::new();
        while out.len() < 3 {
            cpu.flush().expect("flush");
            cpu.complete(&mut out, Duration::from_secs(5))
                .expect("complete");
        }
        assert_eq!(cpu.in_flight(), 0);
        cpu.submit(request(3).0).expect("room again");
    }

    #[test]
    fn a_full_batch_gives_every_worker_an_equation_within_half_the_capacity() {
        assert_eq!(sized(2, 1024, 8192).batch(), 2048);
        assert_eq!(sized(16, 1024, 8192).batch(), 4096, "half the capacity");
        assert_eq!(sized(1, 4, 1).batch(), 1);
    }

    #[test]
    fn complete_with_nothing_in_flight_returns_at_once() {
        let mut cpu = sized(1, 4, 8);
        let mut out = Vec::new();
        let started = Instant::now();
        let got = cpu
            .complete(&mut out, Duration::from_secs(60))
            .expect("complete");
        assert_eq!(got, 0);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_flushed_partial_batch_is_spread_over_the_workers_and_answered_in_order() {
        let shares = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&shares);
        let mut pool = PoolVerifier::start(
            "shares",
            PoolConfig::new(
                NonZeroUsize::new(3).expect("3"),
                NonZeroUsize::new(1024).expect("1024"),
            ),
            Arc::new(move |requests: &[Request], _: &mut ChaCha20Rng| {
                seen.lock().expect("lock").push(requests.len());
                Ok(vec![Verdict::Valid; requests.len()])
            }),
        );
        let mut shares_of = |n: u64| {
            let requests = (0..n).map(|i| request(i).0);
            let responses = crate::verify_all(&mut pool, requests).expect("runs");
            let tags: Vec<_> = responses.iter().map(|r| r.tag).collect();
            assert_eq!(tags, (0..n).map(Tag::new).collect::<Vec<_>>());
            let mut taken = std::mem::take(&mut *shares.lock().expect("lock"));
            taken.sort_unstable();
            taken
        };
        // Up to one share a worker, none under MIN_SHARE; a full batch stays whole.
        let under_two = MIN_SHARE + MIN_SHARE / 2;
        assert_eq!(shares_of(under_two as u64), vec![under_two]);
        assert_eq!(shares_of(2 * MIN_SHARE as u64), vec![MIN_SHARE; 2]);
        assert_eq!(shares_of(301), vec![100, 100, 101]);
        assert_eq!(shares_of(1024), vec![1024]);
        assert_eq!(shares_of(1100), vec![25, 25, 26, 1024]);
    }

    #[test]
    fn a_partial_batch_is_not_stranded_when_the_caller_forgets_to_flush() {
        let mut cpu = sized(2, 100, 200);
        cpu.submit(request(0).0).expect("room");
        let mut out = Vec::new();
        while out.is_empty() {
            cpu.complete(&mut out, Duration::from_secs(5))
                .expect("complete");
        }
        assert_eq!(out[0].verdict, Verdict::Valid);
    }
}
