//! Fail-over from a card to the CPU, and back, without losing, repeating or reordering a
//! verdict.
//!
//! [`Failover`] is a [`Verifier`] over two others: a card (opened, and reopened, by an
//! [`Opener`]) and the CPU. The card is trusted only after it passes the
//! [known-answer tests](crate::known_answers) at start-up, and it runs them again every
//! [`FailoverConfig::check_every`] among the callers' requests. When the card fails — its
//! backend reports a timeout, an unknown or repeated tag, a device error, or a known answer
//! comes back wrong — every request it still holds is submitted again to the CPU, in order,
//! and the callers' stream of responses goes on as if nothing happened. Every
//! [`FailoverConfig::retry_every`] the card is reopened and tested; if it passes, new requests
//! go to it again.
//!
//! Responses leave in submission order whichever path answered: each request keeps its
//! place in one queue, and a request is handed out only once every one before it has its
//! verdict. A verdict is taken from the card only after the card's backend checked its tag
//! and transaction id, and never twice.
//!
//! ```
//! use verity_drivers::{verify_all, Failover, FailoverConfig, PoolConfig, PoolVerifier};
//!
//! // No card here: the opener fails, and the CPU serves everything.
//! let mut verifier = Failover::new(
//!     "xdma",
//!     Box::new(|| Err("no card".to_owned())),
//!     Box::new(PoolVerifier::cpu(PoolConfig::default())),
//!     FailoverConfig::default(),
//! );
//! assert_eq!(verifier.health(), verity_drivers::Health::Degraded);
//! assert!(verify_all(&mut verifier, Vec::new()).expect("runs").is_empty());
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::known_answers::{known_answers, KnownAnswer};
use crate::{Request, Response, Tag, Verdict, Verifier, VerifierError};

/// Opens the card's backend afresh: at start-up and for every fail-back attempt.
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn Verifier>, String> + Send>;

/// Where requests are being verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// On the card, which passed its known-answer tests.
    Ready,
    /// On the CPU: the card is missing or failed, and is retried periodically.
    Degraded,
    /// Nowhere: the CPU backend itself failed.
    Failed,
}

/// When the card is tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailoverConfig {
    /// The most callers' requests in flight.
    pub capacity: usize,
    /// How often the known-answer tests run among the requests while the card serves.
    pub check_every: Duration,
    /// How often a failed card is reopened and tested.
    pub retry_every: Duration,
}

impl Default for FailoverConfig {
    /// 4,096 in flight, tests every second, a failed card retried every 5 seconds.
    fn default() -> Self {
        Self {
            capacity: 4096,
            check_every: Duration::from_secs(1),
            retry_every: Duration::from_secs(5),
        }
    }
}

/// What the wrapper did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailoverCounters {
    /// Times the card was failed and its requests moved to the CPU.
    pub failovers: u64,
    /// Times a reopened card passed its tests and took requests again.
    pub failbacks: u64,
    /// Known-answer tests the card answered wrongly.
    pub wrong_known_answers: u64,
    /// Requests submitted again to the CPU after their card failed.
    pub resubmitted: u64,
    /// Attempts to reopen the card that failed.
    pub failed_retries: u64,
    /// The longest a failed card had been silent (no response while it held requests) when
    /// it was failed: how long fail-over took.
    pub longest_stall: Duration,
}

/// One request in flight, in submission order.
#[derive(Debug)]
struct Entry {
    /// The caller's tag (a known-answer test's is unused).
    tag: Tag,
    /// Kept while the request may have to be submitted again.
    request: Option<Request>,
    verdict: Option<Verdict>,
    /// For a known-answer test: its name and the verdict it must get.
    known: Option<(&'static str, Verdict)>,
    /// Submitted to the card (else to the CPU).
    on_card: bool,
}

/// A card with the CPU behind it.
pub struct Failover {
    name: &'static str,
    open: Opener,
    card: Option<Box<dyn Verifier>>,
    cpu: Box<dyn Verifier>,
    config: FailoverConfig,
    /// Every request in flight; the front one's sequence number is `front`. Inner backends
    /// see the sequence number as the tag.
    entries: VecDeque<Entry>,
    front: u64,
    /// Callers' requests among `entries`.
    callers: usize,
    /// Sequence numbers waiting for room in the CPU backend, and in the card's.
    backlog: VecDeque<u64>,
    card_backlog: VecDeque<u64>,
    known: Vec<KnownAnswer>,
    checked: Instant,
    retried: Instant,
    /// When the card last answered, or was given work while it had none.
    card_heard: Instant,
    health: Health,
    last_failure: Option<String>,
    counters: FailoverCounters,
    scratch: Vec<Response>,
}

impl Failover {
    /// Opens the card through `open` and tests it; a card that cannot be opened or fails its
    /// tests leaves the wrapper [`Health::Degraded`], serving on `cpu`.
    pub fn new(
        name: &'static str,
        open: Opener,
        cpu: Box<dyn Verifier>,
        config: FailoverConfig,
    ) -> Self {
        let mut failover = Self {
            name,
            open,
            card: None,
            cpu,
            config,
            entries: VecDeque::new(),
            front: 0,
            callers: 0,
            backlog: VecDeque::new(),
            card_backlog: VecDeque::new(),
            known: known_answers(),
            checked: Instant::now(),
            retried: Instant::now(),
            card_heard: Instant::now(),
            health: Health::Degraded,
            last_failure: None,
            counters: FailoverCounters::default(),
            scratch: Vec::new(),
        };
        failover.try_card();
        failover
    }

    /// Where requests are verified now.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Why the card last failed, if it did.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// What the wrapper did.
    pub fn counters(&self) -> FailoverCounters {
        self.counters
    }

    /// Opens the card and runs the known-answer tests on it alone; takes it if it passes.
    fn try_card(&mut self) {
        self.retried = Instant::now();
        let result = (self.open)().and_then(|mut card| {
            let requests = self.known.iter().map(|k| k.request.clone());
            let responses =
                crate::verify_all(card.as_mut(), requests).map_err(|e| e.to_string())?;
            for (known, response) in self.known.iter().zip(&responses) {
                if response.verdict != known.verdict {
                    self.counters.wrong_known_answers += 1;
                    return Err(format!(
                        "known answer {:?}: {:?}, expected {:?}",
                        known.name, response.verdict, known.verdict
                    ));
                }
            }
            Ok(card)
        });
        match result {
            Ok(card) => {
                if self.last_failure.is_some() {
                    self.counters.failbacks += 1;
                    metrics::counter!("verity_failbacks_total", "backend" => self.name)
                        .increment(1);
                }
                info!(
                    backend = self.name,
                    "card passed its known-answer tests: serving"
                );
                self.card = Some(card);
                self.health = Health::Ready;
                self.checked = Instant::now();
            }
            Err(reason) => {
                self.counters.failed_retries += 1;
                metrics::counter!("verity_card_retries_failed_total", "backend" => self.name)
                    .increment(1);
                warn!(backend = self.name, %reason, "card unavailable: verifying on the CPU");
                self.last_failure = Some(reason);
            }
        }
    }

    /// Fails the card: its unanswered requests go to the CPU, in order.
    fn fail_card(&mut self, reason: String) {
        let stall = self.card_heard.elapsed();
        self.counters.longest_stall = self.counters.longest_stall.max(stall);
        self.card = None;
        self.health = Health::Degraded;
        self.retried = Instant::now();
        self.counters.failovers += 1;
        metrics::counter!("verity_failovers_total", "backend" => self.name).increment(1);
        warn!(backend = self.name, %reason, "card failed: its requests move to the CPU");
        self.last_failure = Some(reason);
        for (seq, entry) in (self.front..).zip(self.entries.iter_mut()) {
            if !entry.on_card || entry.verdict.is_some() {
                continue;
            }
            entry.on_card = false;
            match entry.known {
                // A test that did not finish is not repeated on the CPU.
                Some((_, verdict)) => entry.verdict = Some(verdict),
                None => {
                    self.backlog.push_back(seq);
                    self.counters.resubmitted += 1;
                }
            }
        }
        self.card_backlog.clear();
        metrics::counter!("verity_resubmitted_total", "backend" => self.name)
            .increment(self.backlog.len() as u64);
    }

    /// Submits what waits for the card, as far as it has room.
    fn pump_card(&mut self) {
        while let Some(&seq) = self.card_backlog.front() {
            let Some(card) = &mut self.card else {
                return;
            };
            if card.in_flight() >= card.capacity() {
                return;
            }
            if card.in_flight() == 0 {
                self.card_heard = Instant::now();
            }
            let entry = &self.entries[(seq - self.front) as usize];
            let request = entry
                .request
                .clone()
                .expect("a request waiting for the card is kept");
            let tagged = Request {
                tag: Tag::new(seq),
                ..request
            };
            match card.submit(tagged) {
                Ok(()) => {
                    self.card_backlog.pop_front();
                }
                Err(VerifierError::Full { .. }) => return,
                Err(error) => {
                    self.fail_card(error.to_string());
                    return;
                }
            }
        }
    }

    fn cpu_failed(&mut self, error: VerifierError) -> VerifierError {
        self.health = Health::Failed;
        error
    }

    /// Submits what waits for the CPU, as far as it has room.
    fn pump(&mut self) -> Result<(), VerifierError> {
        while let Some(&seq) = self.backlog.front() {
            if self.cpu.in_flight() >= self.cpu.capacity() {
                return Err(VerifierError::Full {
                    capacity: self.config.capacity,
                });
            }
            let index = (seq - self.front) as usize;
            let entry = &mut self.entries[index];
            let request = entry
                .request
                .take()
                .expect("a request waiting for the CPU is kept");
            let tagged = Request {
                tag: Tag::new(seq),
                ..request
            };
            match self.cpu.submit(tagged) {
                Ok(()) => {
                    self.backlog.pop_front();
                }
                Err(error) => return Err(self.cpu_failed(error)),
            }
        }
        Ok(())
    }

    /// Records the inner backends' responses in their entries.
    fn record(&mut self) {
        let mut wrong = None;
        for response in self.scratch.drain(..) {
            let index = (response.tag.get() - self.front) as usize;
            let entry = &mut self.entries[index];
            entry.verdict = Some(response.verdict);
            entry.request = None;
            if let Some((name, expected)) = entry.known {
                if response.verdict != expected && wrong.is_none() {
                    wrong = Some(format!(
                        "known answer {name:?}: {:?}, expected {expected:?}",
                        response.verdict
                    ));
                }
            }
        }
        if let Some(reason) = wrong {
            self.counters.wrong_known_answers += 1;
            self.fail_card(reason);
        }
    }

    /// Runs the periodic known-answer tests, or retries a failed card, when it is time.
    fn maintain(&mut self) {
        if self.card.is_none() {
            if self.retried.elapsed() >= self.config.retry_every {
                self.try_card();
            }
            return;
        }
        if self.checked.elapsed() >= self.config.check_every {
            self.checked = Instant::now();
            for known in self.known.clone() {
                let seq = self.front + self.entries.len() as u64;
                let tagged = Request {
                    tag: Tag::new(seq),
                    ..known.request
                };
                let Some(card) = self.card.as_mut() else {
                    return;
                };
                match card.submit(tagged) {
                    Ok(()) => self.entries.push_back(Entry {
                        tag: Tag::new(0),
                        request: None,
                        verdict: None,
                        known: Some((known.name, known.verdict)),
                        on_card: true,
                    }),
                    // Full: the tests wait for the next period.
                    Err(VerifierError::Full { .. }) => break,
                    Err(error) => {
                        self.fail_card(error.to_string());
                        return;
                    }
                }
            }
        }
    }

    /// Hands out answered requests from the front, in order.
    fn hand_out(&mut self, out: &mut Vec<Response>) -> usize {
        let mut n = 0;
        while let Some(Entry {
            verdict: Some(verdict),
            ..
        }) = self.entries.front()
        {
            let verdict = *verdict;
            let entry = self.entries.pop_front().expect("front exists");
            self.front += 1;
            if entry.known.is_none() {
                out.push(Response {
                    tag: entry.tag,
                    verdict,
                });
                self.callers -= 1;
                n += 1;
            }
        }
        n
    }
}

impl Verifier for Failover {
    fn backend(&self) -> &'static str {
        match self.health {
            Health::Ready => self.name,
            Health::Degraded | Health::Failed => self.cpu.backend(),
        }
    }

    fn capacity(&self) -> usize {
        self.config.capacity
    }

    fn in_flight(&self) -> usize {
        self.callers
    }

    fn submit(&mut self, request: Request) -> Result<(), VerifierError> {
        if self.health == Health::Failed {
            return Err(VerifierError::Failed {
                backend: self.cpu.backend(),
                reason: "the CPU backend failed".to_owned(),
            });
        }
        if self.callers >= self.config.capacity {
            return Err(VerifierError::Full {
                capacity: self.config.capacity,
            });
        }
        self.maintain();
        let seq = self.front + self.entries.len() as u64;
        let on_card = self.card.is_some();
        self.entries.push_back(Entry {
            tag: request.tag,
            request: Some(request),
            verdict: None,
            known: None,
            on_card,
        });
        self.callers += 1;
        if on_card {
            self.card_backlog.push_back(seq);
            self.pump_card();
            return Ok(());
        }
        self.backlog.push_back(seq);
        match self.pump() {
            Ok(()) | Err(VerifierError::Full { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    fn flush(&mut self) -> Result<(), VerifierError> {
        self.pump_card();
        if let Some(card) = &mut self.card {
            if let Err(error) = card.flush() {
                self.fail_card(error.to_string());
            }
        }
        match self.pump() {
            Ok(()) | Err(VerifierError::Full { .. }) => {}
            Err(error) => return Err(error),
        }
        self.cpu.flush().map_err(|e| self.cpu_failed(e))
    }

    fn complete(
        &mut self,
        out: &mut Vec<Response>,
        wait: Duration,
    ) -> Result<usize, VerifierError> {
        self.maintain();
        let n = self.hand_out(out);
        if n > 0 {
            return Ok(n);
        }
        self.pump_card();
        let on_cpu = self.cpu.in_flight() > 0 || !self.backlog.is_empty();
        let card_wait = if on_cpu { Duration::ZERO } else { wait };
        if let Some(card) = &mut self.card {
            if card.in_flight() > 0 {
                let result = card
                    .flush()
                    .and_then(|()| card.complete(&mut self.scratch, card_wait));
                match result {
                    Ok(0) => {}
                    Ok(_) => self.card_heard = Instant::now(),
                    Err(error) => self.fail_card(error.to_string()),
                }
                self.record();
            }
        }
        self.pump_card();
        match self.pump() {
            Ok(()) | Err(VerifierError::Full { .. }) => {}
            Err(error) => return Err(error),
        }
        if self.cpu.in_flight() > 0 {
            self.cpu.flush().map_err(|e| self.cpu_failed(e))?;
            let result = self.cpu.complete(&mut self.scratch, wait);
            result.map_err(|e| self.cpu_failed(e))?;
            self.record();
        }
        Ok(self.hand_out(out))
    }
}
