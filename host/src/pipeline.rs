//! The replica's pipeline: explicit stages on threads of their own, joined by bounded
//! queues.
//!
//! ```text
//! submit ─▶ [verify: parse, batch by size or deadline, Verifier] ─▶ [sequence: mempool,
//!            block builder, chain.execute (durable commit)] ─▶ one outcome per submission
//!                                                 ▲
//!                             consensus (propose, commit decided) — `sequence::Ordering`
//! ```
//!
//! Every submission gets exactly one [`Outcome`], handed to its [`Reply`]: refused
//! (malformed, signed for another chain, a bad signature, the mempool's reason) or committed
//! at a height with its receipt. A transaction is reported committed only after its block is
//! in the block log, so whatever a client was told survives a crash. The sequence stage is
//! where the order is decided — by this replica alone or by consensus among replicas
//! ([`sequence`]) — without touching the verify stage or the chain. Queues are bounded: a
//! full one makes `submit` wait, which is the back-pressure ingress passes on to its clients.
//! The verify stage also takes signature checks from consensus ([`Pipeline::checker`]),
//! batched with the transactions.
//! [`Pipeline::stop`] lets the stages finish what they hold; what cannot be ordered then (a
//! nonce gap) is refused, and later submissions are refused at once.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use tracing::{debug, debug_span, warn};
use verity_drivers::{BackendState, Request, Tag, Verdict, Verifier};

use crate::chain::{Chain, ChainError, StateFlush};
use crate::ledger::Failure;
use crate::mempool::MempoolConfig;
use crate::sequence::{self, Ordering, Valid, Verified};
use crate::transaction::{Transaction, TxBytes, TxId};

/// How the stages batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Signatures verified together; 0: the verifier's own batch ([`Verifier::batch`]: for
    /// the CPU backend, a batch equation for every worker).
    pub verify_batch: usize,
    /// How long a partial verification batch may wait, from its oldest transaction's submission.
    pub verify_deadline: Duration,
    /// The most transactions in a block.
    pub block_max: usize,
    /// How long the first waiting transaction may wait for its block.
    pub block_interval: Duration,
    /// Each queue's bound, in submissions (the verified queue holds whole verification
    /// batches: as many as make this many submissions at the batch size `start` sees).
    pub queue: usize,
    /// The mempool's bounds.
    pub mempool: MempoolConfig,
}

impl Default for PipelineConfig {
    /// Batches of the verifier's own size or 200 µs; blocks of up to 4,096 or 1 ms; queues of
    /// 65,536. The CPU backend's batch keeps each worker on an equation of 1,024 signatures,
    /// its best cost a signature: under load, smaller batches split over the workers cost more
    /// CPU a transaction end to end (`make bench` with one core free: 11 µs at 1,024, 15 at
    /// 256). Below saturation the deadline cuts batches long before they fill, so their size
    /// costs no latency there.
    fn default() -> Self {
        Self {
            verify_batch: 0,
            verify_deadline: Duration::from_micros(200),
            block_max: 4096,
            block_interval: Duration::from_millis(1),
            queue: 65_536,
            mempool: MempoolConfig::default(),
        }
    }
}

impl PipelineConfig {
    /// The signatures a verification batch holds when full, with `verifier`.
    fn batch_for(&self, verifier: &dyn Verifier) -> usize {
        match self.verify_batch {
            0 => verifier.batch().max(1),
            size => size,
        }
    }
}

/// What became of a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Refused before ordering: `reason` says why (`malformed: …`, `signature: …`, the
    /// mempool's reason).
    Refused {
        /// Why.
        reason: String,
    },
    /// In block `height`, which is on disk; `failure` is its receipt's (`None`: applied).
    Committed {
        /// The transaction.
        id: TxId,
        /// The block.
        height: u64,
        /// Why it did not apply, if it did not.
        failure: Option<Failure>,
    },
}

/// Where a submission's outcome goes. It is called once, on a stage's thread, so it must not
/// block: send on a channel with room, or drop the outcome and count it.
pub type Reply = Box<dyn FnOnce(Outcome) + Send>;

/// What the first queue carries.
enum Message {
    Submission {
        bytes: Vec<u8>,
        reply: Reply,
        at: Instant,
    },
    /// A signature to check beside the transactions (consensus votes and proposals).
    Check { request: Request, reply: CheckReply },
    /// Finish what is held and stop.
    Stop,
}

/// Where a signature check's verdict goes; called once, on the verify stage's thread, so it
/// must not block. `Err` says why no verdict could be given.
pub type CheckReply = Box<dyn FnOnce(Result<Verdict, String>) + Send>;

/// What a verification batch holds besides its requests.
enum Pending {
    /// A transaction, and how many of the batch's requests are its signatures (a Trade's
    /// two, others' one).
    Transaction {
        bytes: TxBytes,
        signatures: usize,
        reply: Reply,
        at: Instant,
    },
    Check(CheckReply),
}

impl Pending {
    /// Answers without a verdict.
    fn refuse(self, reason: String) {
        match self {
            Pending::Transaction { reply, .. } => refuse(reply, reason),
            Pending::Check(reply) => reply(Err(reason)),
        }
    }
}

/// A handle that sends signature checks to the pipeline's verifier — the card, or the CPU
/// behind it — batched with the transactions, so consensus and clients share one verifier.
#[derive(Clone)]
pub struct Checker {
    submit: Sender<Message>,
}

impl Checker {
    /// Checks `signature` by `public_key` over `message`; `reply` gets the verdict. Waits
    /// while the pipeline's first queue is full.
    pub fn check(
        &self,
        public_key: [u8; 32],
        signature: [u8; 64],
        message: Vec<u8>,
        reply: CheckReply,
    ) {
        let request = Request::new(Tag::new(0), public_key, signature, message);
        if let Err(returned) = self.submit.send(Message::Check { request, reply }) {
            if let Message::Check { reply, .. } = returned.0 {
                reply(Err("shutting_down".to_owned()));
            }
        }
    }
}

/// Which backend verifies, and how it is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierStatus {
    /// Its name (`cpu`, `sim`, `xdma`; a fail-over wrapper names the one serving).
    pub backend: &'static str,
    /// Its state.
    pub state: BackendState,
}

/// The running pipeline, shared by the listeners.
pub struct Pipeline {
    submit: Sender<Message>,
    verifier_status: Arc<Mutex<VerifierStatus>>,
    stages: Mutex<Option<(JoinHandle<()>, JoinHandle<Chain>)>>,
    state: Option<StateFlush>,
}

impl Pipeline {
    /// Starts the stages over `verifier` and `chain`, ordered by `ordering`.
    pub fn start(
        mut verifier: Box<dyn Verifier>,
        chain: Chain,
        ordering: Ordering,
        config: PipelineConfig,
    ) -> Self {
        let (submit, submissions) = bounded(config.queue);
        let batch = config.batch_for(verifier.as_ref());
        let (to_sequence, verified) = bounded(config.queue.div_ceil(batch));
        // Known before `start` returns: a status read at once is the verifier's, not a guess.
        let verifier_status = Arc::new(Mutex::new(VerifierStatus {
            backend: verifier.backend(),
            state: BackendState::Ready,
        }));
        publish(verifier.as_mut(), &verifier_status);
        let status = Arc::clone(&verifier_status);
        let chain_id = chain.chain_id();
        let state = chain.state_flush();
        let verify = std::thread::Builder::new()
            .name("verify".into())
            .spawn(move || {
                verify_stage(
                    verifier,
                    &submissions,
                    &to_sequence,
                    &status,
                    chain_id,
                    config,
                )
            })
            .expect("a thread starts");
        let sequence = std::thread::Builder::new()
            .name("sequence".into())
            .spawn(move || sequence::run(chain, &verified, ordering, config))
            .expect("a thread starts");
        Self {
            submit,
            verifier_status,
            stages: Mutex::new(Some((verify, sequence))),
            state,
        }
    }

    /// Waits until the state store holds every block committed so far (see [`StateFlush`]):
    /// what a reader of the store calls first to see what clients have been told.
    pub fn flush_state(&self) -> Result<(), ChainError> {
        self.state
            .as_ref()
            .ok_or_else(|| ChainError::State("stopped".to_owned()))?
            .flush()
    }

    /// Submits a transaction's bytes; `reply` gets its [`Outcome`]. Waits while the first
    /// queue is full. After [`stop`](Pipeline::stop), refuses at once.
    pub fn submit_with(&self, bytes: Vec<u8>, reply: Reply) {
        let message = Message::Submission {
            bytes,
            reply,
            at: Instant::now(),
        };
        if let Err(returned) = self.submit.send(message) {
            if let Message::Submission { reply, .. } = returned.0 {
                refuse(reply, "shutting_down".to_owned());
            }
        }
    }

    /// A handle for signature checks on this pipeline's verifier.
    pub fn checker(&self) -> Checker {
        Checker {
            submit: self.submit.clone(),
        }
    }

    /// Submits a transaction's bytes; its [`Outcome`] arrives on the returned channel.
    pub fn submit(&self, bytes: Vec<u8>) -> Receiver<Outcome> {
        let (reply, outcome) = bounded(1);
        self.submit_with(
            bytes,
            Box::new(move |o| {
                let _ = reply.send(o);
            }),
        );
        outcome
    }

    /// The verification backend and its state, as of the last second.
    pub fn verifier_status(&self) -> VerifierStatus {
        self.verifier_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Lets the stages finish what they were given before this call and stop, and returns
    /// the chain; `None` if it was already stopped. Submissions from here on are refused.
    pub fn stop(&self) -> Option<Chain> {
        let (verify, sequence) = self
            .stages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let _ = self.submit.send(Message::Stop);
        if let Err(panic) = verify.join() {
            std::panic::resume_unwind(panic);
        }
        Some(
            sequence
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        )
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn refuse(reply: Reply, reason: String) {
    metrics::counter!("verity_refused_total").increment(1);
    reply(Outcome::Refused { reason });
}

/// Records the verifier's name and state for [`Pipeline::verifier_status`] and `/metrics`.
fn publish(verifier: &mut dyn Verifier, status: &Mutex<VerifierStatus>) {
    let state = verifier.backend_state();
    metrics::gauge!("verity_verifier_ready").set(f64::from(u8::from(state == BackendState::Ready)));
    *status.lock().unwrap_or_else(PoisonError::into_inner) = VerifierStatus {
        backend: verifier.backend(),
        state,
    };
}

/// Verification batches the verify stage keeps in flight: one verifying while the next
/// gathers and goes out behind it.
const BATCHES_IN_FLIGHT: usize = 2;
/// How long the verify stage waits for verdicts, with batches in flight and none filling,
/// before it looks for submissions again (a verdict ends the wait sooner; a filling batch
/// still leaves at its deadline), and the longest a filling batch with none in flight sleeps
/// before it looks again (so a batch that fills meanwhile leaves at most this late). Under
/// load the next batch's first submission may wait this long, and the batch gathers
/// meanwhile; with nothing in flight or filling, a submission is seen at once. At 100 µs the
/// stage woke up to ten thousand times a second, and each wake-up can take a core from a
/// worker or the sequence stage. Measured no worse, and better in runs that began with the
/// state stage behind (host/README, "verify stage's poll", has the runs).
const POLL: Duration = Duration::from_micros(500);
/// How long one wait for a verdict may last when the stage has nothing else to do.
const WAIT: Duration = Duration::from_millis(50);

/// A batch handed to the verifier: its submissions, and how many signatures they asked for.
struct Batch {
    pending: Vec<Pending>,
    signatures: usize,
    sent: Instant,
}

/// The batches handed to the verifier, oldest first, and the verdicts come back so far (in
/// request order, so the oldest batch takes the first ones). Requests are tagged in sequence
/// as they go out, and a verdict is taken only for the request its tag names: a verdict can
/// never answer another transaction.
#[derive(Default)]
struct InFlight {
    batches: std::collections::VecDeque<Batch>,
    responses: Vec<verity_drivers::Response>,
    /// The next request's tag.
    next_tag: u64,
    /// The tag of the verdict the oldest batch waits for first.
    expected: u64,
}

impl InFlight {
    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Takes the verdicts ready within `wait` and answers every batch they complete.
    fn collect(
        &mut self,
        verifier: &mut dyn Verifier,
        wait: Duration,
        to_sequence: &Sender<Verified>,
    ) -> Result<(), String> {
        verifier
            .complete(&mut self.responses, wait)
            .map_err(|error| error.to_string())?;
        // Verdicts for batches refused after a failure may still come: they answer nothing.
        let expected = self.expected;
        self.responses.retain(|r| r.tag.get() >= expected);
        while let Some(signatures) = self
            .batches
            .front()
            .map(|batch| batch.signatures)
            .filter(|&signatures| self.responses.len() >= signatures)
        {
            let mut tags = (self.expected..).zip(&self.responses[..signatures]);
            if let Some((due, stray)) = tags.find(|(due, r)| r.tag.get() != *due) {
                metrics::counter!("verity_verifier_stray_verdicts_total").increment(1);
                return Err(format!(
                    "a verdict for {} where {} was due",
                    stray.tag,
                    Tag::new(due)
                ));
            }
            let Some(batch) = self.batches.pop_front() else {
                break;
            };
            self.expected += signatures as u64;
            metrics::histogram!("verity_verify_batch_seconds").record(batch.sent.elapsed());
            metrics::counter!("verity_verified_total").increment(batch.signatures as u64);
            let verdicts = self.responses.drain(..batch.signatures).map(|r| r.verdict);
            answer(batch.pending, verdicts, to_sequence);
        }
        Ok(())
    }

    /// [`InFlight::collect`], refusing every batch in flight if the verifier failed.
    fn settle(
        &mut self,
        verifier: &mut dyn Verifier,
        wait: Duration,
        to_sequence: &Sender<Verified>,
    ) {
        if let Err(error) = self.collect(verifier, wait, to_sequence) {
            self.refuse(&error);
        }
    }

    /// Refuses every batch in flight: the verifier failed and their verdicts will not come.
    fn refuse(&mut self, error: &str) {
        warn!(%error, "the verifier failed: the batches in flight are refused");
        self.responses.clear();
        self.expected = self.next_tag;
        for batch in self.batches.drain(..) {
            for pending in batch.pending {
                pending.refuse(format!("verifier_unavailable: {error}"));
            }
        }
    }
}

/// Tags `requests` in sequence, hands them to the verifier and starts work on them, taking
/// the verdicts that come back meanwhile when it is full.
fn submit(
    verifier: &mut dyn Verifier,
    requests: &mut Vec<Request>,
    in_flight: &mut InFlight,
    to_sequence: &Sender<Verified>,
) -> Result<(), String> {
    for mut request in requests.drain(..) {
        while verifier.in_flight() >= verifier.capacity() {
            verifier.flush().map_err(|error| error.to_string())?;
            in_flight.collect(verifier, WAIT, to_sequence)?;
        }
        request.tag = Tag::new(in_flight.next_tag);
        in_flight.next_tag += 1;
        verifier
            .submit(request)
            .map_err(|error| error.to_string())?;
    }
    verifier.flush().map_err(|error| error.to_string())
}

/// Answers a batch's submissions from its verdicts, in request order: each takes as many as
/// it asked for, and the valid transactions go on to the sequence stage together.
fn answer(
    batch: Vec<Pending>,
    mut verdicts: impl Iterator<Item = Verdict>,
    to_sequence: &Sender<Verified>,
) {
    let mut valid = Vec::with_capacity(batch.len());
    // Submission to verdict, each transaction's: one clock read and registry lookup a batch.
    let now = Instant::now();
    let waited = metrics::histogram!("verity_verify_wait_seconds");
    for pending in batch {
        let (bytes, signatures, reply, at) = match pending {
            Pending::Transaction {
                bytes,
                signatures,
                reply,
                at,
            } => (bytes, signatures, reply, at),
            Pending::Check(reply) => {
                match verdicts.next() {
                    Some(verdict) => reply(Ok(verdict)),
                    None => reply(Err("verifier_unavailable".to_owned())),
                }
                continue;
            }
        };
        // Valid when every signature has a verdict and it is Valid; otherwise the first that
        // is not says why.
        let (mut seen, mut verdict) = (0, Verdict::Valid);
        for mine in verdicts.by_ref().take(signatures) {
            seen += 1;
            if verdict == Verdict::Valid {
                verdict = mine;
            }
        }
        if seen != signatures {
            refuse(
                reply,
                "verifier_unavailable: a verdict is missing".to_owned(),
            );
            continue;
        }
        match verdict {
            Verdict::Valid => {
                waited.record(now.duration_since(at));
                valid.push(Valid { bytes, reply, at });
            }
            verdict => {
                metrics::counter!("verity_bad_signature_total").increment(1);
                refuse(reply, format!("signature: {}", verdict.reason()));
            }
        }
    }
    if valid.is_empty() {
        return;
    }
    if let Err(returned) = to_sequence.send(Verified::Transactions(valid)) {
        if let Verified::Transactions(valid) = returned.0 {
            for Valid { reply, .. } in valid {
                refuse(reply, "shutting_down".to_owned());
            }
        }
    }
}

/// The next message already queued, as a receive that does not wait: nothing queued is a
/// timeout.
pub(crate) fn queued<T>(queue: &Receiver<T>) -> Result<T, RecvTimeoutError> {
    queue.try_recv().map_err(|error| match error {
        TryRecvError::Empty => RecvTimeoutError::Timeout,
        TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
    })
}

/// Parses, batches by size or deadline, verifies, and passes on the valid.
fn verify_stage(
    mut verifier: Box<dyn Verifier>,
    submissions: &Receiver<Message>,
    to_sequence: &Sender<Verified>,
    status: &Mutex<VerifierStatus>,
    chain_id: u32,
    config: PipelineConfig,
) {
    let mut batch: Vec<Pending> = Vec::new();
    // The batch's signature checks, built as each transaction is decoded.
    let mut requests = Vec::new();
    let mut started = Instant::now();
    let mut in_flight = InFlight::default();
    let mut published = Instant::now();
    loop {
        let wait = if batch.is_empty() {
            Duration::from_secs(1)
        } else {
            config.verify_deadline.saturating_sub(started.elapsed())
        };
        // With batches in flight, wait for their verdicts rather than for submissions, but no
        // longer than `POLL`: one message, then what else is queued (up to a batch) — what
        // queued meanwhile goes out together, at once if it is already due. With a batch
        // filling and none in flight, sleep towards its deadline (at most `POLL`) instead of
        // waking for each submission: below saturation submissions come microseconds apart,
        // and a wake-up each (the submitter's wake call, this thread's switch) cost more than
        // the submission itself (host/README, "sleeping towards a deadline").
        let mut next = match (in_flight.is_empty(), batch.is_empty()) {
            (true, true) => submissions.recv_timeout(wait),
            (true, false) => {
                std::thread::sleep(wait.min(POLL));
                queued(submissions)
            }
            (false, _) => {
                in_flight.settle(verifier.as_mut(), wait.min(POLL), to_sequence);
                queued(submissions)
            }
        };
        // Asked once a round, not once a submission: the answer can change only with the
        // verifier's state (a fail-over wrapper's cards), which this round does not touch.
        let full = config.batch_for(verifier.as_ref());
        let stop = loop {
            match next {
                Ok(Message::Submission { bytes, reply, at }) => {
                    match Transaction::decode(&bytes) {
                        Ok(tx) if tx.chain_id() != chain_id => {
                            // Void here whoever signed it: refused before it costs a signature
                            // check or a place in a block.
                            metrics::counter!("verity_wrong_chain_total").increment(1);
                            let reason = format!(
                                "wrong_chain: signed for chain {}, this is chain {chain_id}",
                                tx.chain_id()
                            );
                            refuse(reply, reason);
                        }
                        Ok(tx) => {
                            // The deadline counts from the submission, not from when this
                            // stage got to it.
                            if batch.is_empty() {
                                started = at;
                            }
                            let before = requests.len();
                            // Tagged when they go out.
                            requests.extend(tx.requests(0));
                            batch.push(Pending::Transaction {
                                bytes: tx.to_owned(),
                                signatures: requests.len() - before,
                                reply,
                                at,
                            });
                        }
                        Err(error) => {
                            metrics::counter!("verity_malformed_total").increment(1);
                            refuse(reply, format!("malformed: {error}"));
                        }
                    }
                }
                Ok(Message::Check { request, reply }) => {
                    if batch.is_empty() {
                        started = Instant::now();
                    }
                    // Tagged when it goes out, as every request.
                    requests.push(request);
                    batch.push(Pending::Check(reply));
                }
                Err(RecvTimeoutError::Timeout) => break false,
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => break true,
            }
            if requests.len() >= full {
                break false;
            }
            // Nothing more queued: a timeout, which ends the batch's filling.
            next = queued(submissions);
        };
        let due = requests.len() >= full
            || (!batch.is_empty() && started.elapsed() >= config.verify_deadline)
            || stop;
        if due && !batch.is_empty() {
            let _span = debug_span!("verify_batch", size = batch.len()).entered();
            // At most `BATCHES_IN_FLIGHT`: the oldest is answered before another goes out.
            while in_flight.batches.len() >= BATCHES_IN_FLIGHT {
                in_flight.settle(verifier.as_mut(), WAIT, to_sequence);
            }
            let signatures = requests.len();
            // `submit` drains the requests whether or not they all went out.
            let sent = submit(
                verifier.as_mut(),
                &mut requests,
                &mut in_flight,
                to_sequence,
            );
            in_flight.batches.push_back(Batch {
                pending: std::mem::take(&mut batch),
                signatures,
                sent: Instant::now(),
            });
            if let Err(error) = sent {
                in_flight.refuse(&error);
            }
        }
        if stop {
            while !in_flight.is_empty() {
                in_flight.settle(verifier.as_mut(), WAIT, to_sequence);
            }
        }
        if stop || published.elapsed() >= Duration::from_secs(1) {
            publish(verifier.as_mut(), status);
            published = Instant::now();
        }
        if stop {
            // What arrived after the stop is refused, not dropped unanswered.
            while let Ok(message) = submissions.try_recv() {
                match message {
                    Message::Submission { reply, .. } => refuse(reply, "shutting_down".to_owned()),
                    Message::Check { reply, .. } => reply(Err("shutting_down".to_owned())),
                    Message::Stop => {}
                }
            }
            let _ = to_sequence.send(Verified::Stop);
            debug!("verify stage done");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use verity_drivers::{PoolConfig, PoolVerifier};

    use super::*;
    use crate::genesis::Genesis;
    use crate::ledger::{BookRules, PriceRules, Rules};
    use crate::testing::{self, key};
    use crate::transaction::TX_LEN;

    fn transfer(from: u8, nonce: u64, amount: u64) -> [u8; TX_LEN] {
        testing::transfer(5, from, nonce, 100, 1, amount)
    }

    /// Answers every request Valid, under its own tag moved on by `shift`, and notes how many
    /// requests each flush started.
    struct Echo {
        shift: u64,
        queued: Vec<Request>,
        flushed: Arc<Mutex<Vec<usize>>>,
    }

    impl Echo {
        fn new(shift: u64) -> Self {
            Self {
                shift,
                queued: Vec::new(),
                flushed: Arc::default(),
            }
        }
    }

    impl Verifier for Echo {
        fn backend(&self) -> &'static str {
            "echo"
        }
        fn capacity(&self) -> usize {
            64
        }
        fn batch(&self) -> usize {
            32
        }
        fn in_flight(&self) -> usize {
            self.queued.len()
        }
        fn submit(&mut self, request: Request) -> Result<(), verity_drivers::VerifierError> {
            self.queued.push(request);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), verity_drivers::VerifierError> {
            let started = self.queued.len();
            self.flushed.lock().expect("not poisoned").push(started);
            Ok(())
        }
        fn complete(
            &mut self,
            out: &mut Vec<verity_drivers::Response>,
            _: Duration,
        ) -> Result<usize, verity_drivers::VerifierError> {
            let n = self.queued.len();
            out.extend(self.queued.drain(..).map(|r| verity_drivers::Response {
                tag: Tag::new(r.tag.get() + self.shift),
                verdict: Verdict::Valid,
            }));
            Ok(n)
        }
    }

    /// Two batches of signature checks through the verify stage's in-flight batches; the
    /// verdicts each check got.
    fn checked_through(verifier: &mut Echo) -> Vec<Result<Verdict, String>> {
        let (to_sequence, _) = bounded(1);
        let (told, verdicts) = crossbeam_channel::unbounded();
        let mut in_flight = InFlight::default();
        for size in [2, 3] {
            let mut requests: Vec<Request> = (0..size)
                .map(|_| Request::new(Tag::new(0), [0; 32], [0; 64], Vec::new()))
                .collect();
            let pending = (0..size)
                .map(|_| {
                    let told = told.clone();
                    Pending::Check(Box::new(move |verdict| told.send(verdict).expect("sent")))
                })
                .collect();
            submit(verifier, &mut requests, &mut in_flight, &to_sequence).expect("submits");
            in_flight.batches.push_back(Batch {
                pending,
                signatures: size,
                sent: Instant::now(),
            });
        }
        in_flight.settle(verifier, Duration::ZERO, &to_sequence);
        assert!(in_flight.is_empty());
        drop(told);
        verdicts.iter().collect()
    }

    #[test]
    fn verdicts_answer_the_requests_their_tags_name_and_a_stray_one_refuses_the_batches() {
        let verdicts = checked_through(&mut Echo::new(0));
        assert_eq!(verdicts, vec![Ok(Verdict::Valid); 5]);
        // Every verdict one request off: none may answer a check.
        let verdicts = checked_through(&mut Echo::new(1));
        assert_eq!(verdicts.len(), 5);
        for verdict in verdicts {
            let why = verdict.expect_err("refused");
            assert!(
                why.starts_with("verifier_unavailable: a verdict for #1 where #0 was due"),
                "{why}"
            );
        }
    }

    #[test]
    fn batches_fill_to_the_verifiers_own_size_unless_the_config_names_one() {
        for (configured, want) in [(0, vec![32, 32, 32, 4]), (40, vec![40, 40, 20])] {
            let echo = Echo::new(0);
            let flushed = Arc::clone(&echo.flushed);
            let (submissions, queued) = crossbeam_channel::unbounded();
            let (answered, checks) = crossbeam_channel::unbounded();
            for _ in 0..100 {
                let answered = answered.clone();
                let request = Request::new(Tag::new(0), [0; 32], [0; 64], Vec::new());
                let reply: CheckReply = Box::new(move |verdict| {
                    answered.send(verdict).expect("sent");
                });
                submissions
                    .send(Message::Check { request, reply })
                    .expect("queued");
            }
            submissions.send(Message::Stop).expect("queued");
            drop(answered);
            let (to_sequence, _) = bounded(1);
            let status = Mutex::new(VerifierStatus {
                backend: "echo",
                state: BackendState::Ready,
            });
            let config = PipelineConfig {
                verify_batch: configured,
                // Only the size or the stop can send a batch.
                verify_deadline: Duration::from_secs(60),
                ..PipelineConfig::default()
            };
            verify_stage(Box::new(echo), &queued, &to_sequence, &status, 5, config);
            assert_eq!(
                checks.iter().filter(|v| *v == Ok(Verdict::Valid)).count(),
                100
            );
            assert_eq!(*flushed.lock().expect("not poisoned"), want, "{configured}");
        }
    }

    #[test]
    fn every_submission_gets_one_outcome_and_commits_survive_reopening() {
        let dir = testing::scratch("pipeline");
        let genesis = Genesis {
            rules: Rules {
                chain_id: 5,
                assets: [1].into(),
                issuers: [].into(),
                prices: PriceRules::default(),
                book: BookRules::default(),
            },
            balances: (1..=8)
                .map(|n| (key(n).verifying_key().to_bytes(), 1, 1_000))
                .collect(),
            validators: vec![],
        };
        let cpu = PoolVerifier::cpu(PoolConfig::new(
            NonZeroUsize::new(2).expect("2"),
            NonZeroUsize::new(64).expect("64"),
        ));
        let pipeline = Pipeline::start(
            Box::new(cpu),
            Chain::open(&dir, &genesis).expect("opens"),
            Ordering::Local,
            PipelineConfig {
                block_max: 50,
                ..PipelineConfig::default()
            },
        );
        // Eight senders, 40 transfers each, submitted from eight threads; then the odd
        // cases.
        let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..=8u8)
                .map(|from| {
                    let pipeline = &pipeline;
                    scope.spawn(move || {
                        let pending: Vec<_> = (0..40)
                            .map(|nonce| pipeline.submit(transfer(from, nonce, 1).to_vec()))
                            .collect();
                        pending
                            .into_iter()
                            .map(|r| r.recv().expect("an outcome"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a sender thread"))
                .collect()
        });
        assert_eq!(outcomes.len(), 320);
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Outcome::Committed { failure: None, .. })),
            "{:?}",
            outcomes
                .iter()
                .find(|o| !matches!(o, Outcome::Committed { failure: None, .. }))
        );
        let mut forged = transfer(1, 40, 1);
        forged[100] ^= 1;
        // A trade whose sender signed but whose counterparty's signature is broken.
        let mut countersigned_badly = testing::trade(5, 2, 50, 3, 100, 1, 1);
        countersigned_badly[200] ^= 1;
        let odd = [
            (vec![0u8; 10], "malformed: unknown version 0"),
            (
                [&[1u8, 1, 48, 0], &[0u8; 6][..]].concat(),
                "malformed: transaction of 10 bytes, expected 160",
            ),
            (forged.to_vec(), "signature:"),
            (countersigned_badly.to_vec(), "signature:"),
            (transfer(2, 3, 1).to_vec(), "stale_nonce"),
            (
                testing::transfer(6, 4, 40, 100, 1, 1).to_vec(),
                "wrong_chain: signed for chain 6, this is chain 5",
            ),
            (transfer(3, 45, 1).to_vec(), "shutdown: waiting"),
        ];
        let pending: Vec<_> = odd
            .iter()
            .map(|(bytes, _)| pipeline.submit(bytes.clone()))
            .collect();
        // A nonce gap's transaction waits, so the last outcome comes at shutdown.
        let chain = std::thread::scope(|scope| {
            let answers = scope.spawn(|| {
                pending
                    .into_iter()
                    .map(|r| r.recv().expect("an outcome"))
                    .collect::<Vec<_>>()
            });
            let chain = pipeline.stop().expect("the pipeline runs");
            for ((_, reason), outcome) in odd.iter().zip(answers.join().expect("answers")) {
                match outcome {
                    Outcome::Refused { reason: got } => {
                        assert!(got.starts_with(reason), "{reason}: {got}")
                    }
                    other => panic!("{reason}: {other:?}"),
                }
            }
            chain
        });
        let (height, root) = chain.sync().expect("syncs");
        assert!(height >= 7, "320 transactions in blocks of at most 50");
        assert_eq!(
            chain
                .ledger()
                .balance(&key(100).verifying_key().to_bytes(), 1),
            320
        );
        drop(chain);
        let reopened = Chain::open(&dir, &genesis).expect("reopens");
        assert_eq!(reopened.sync().expect("syncs"), (height, root));
    }
}
