//! Cards with the CPU behind them: requests spread over the cards by queue depth, fail-over
//! of one card's requests to the others or to the CPU, and fail-back, without losing,
//! repeating or reordering a verdict.
//!
//! [`Failover`] is a [`Verifier`] over several others: one or more cards (each opened, and
//! reopened, by its [`Opener`]) and the CPU. A card is trusted only after it passes the
//! [known-answer tests](crate::known_answers) at start-up, and runs them again every
//! [`FailoverConfig::check_every`] among the callers' requests. A request goes to the healthy
//! card holding the fewest requests. When a card fails — its backend reports a timeout, an
//! unknown or repeated tag, a device error, or a known answer comes back wrong — every
//! request it still holds moves, in order, to the other healthy cards or, if there is none,
//! to the CPU; the callers' stream of responses goes on as if nothing happened. Every
//! [`FailoverConfig::retry_every`] a failed card is reopened and tested; if it passes, it
//! takes requests again.
//!
//! Responses leave in submission order whichever path answered: each request keeps its
//! place in one queue, and a request is handed out only once every one before it has its
//! verdict. A verdict is taken from a card only after the card's backend checked its tag and
//! transaction id, and never twice.
//!
//! ```
//! use verity_drivers::{verify_all, Failover, FailoverConfig, Health, PoolConfig, PoolVerifier};
//!
//! // No card here: the opener fails, and the CPU serves everything.
//! let mut verifier = Failover::new(
//!     "xdma",
//!     vec![Box::new(|| Err("no card".to_owned()))],
//!     Box::new(PoolVerifier::cpu(PoolConfig::default())),
//!     FailoverConfig::default(),
//! );
//! assert_eq!(verifier.health(), Health::Degraded);
//! assert!(verify_all(&mut verifier, Vec::new()).expect("runs").is_empty());
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::known_answers::{known_answers, KnownAnswer};
use crate::{BackendState, Request, Response, Tag, Verdict, Verifier, VerifierError};

/// Why a card failed a known-answer test.
fn wrong_answer(name: &str, got: Verdict, expected: Verdict) -> String {
    format!("known answer {name:?}: {got:?}, expected {expected:?}")
}

/// Opens a card's backend afresh: at start-up and for every fail-back attempt.
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn Verifier>, String> + Send>;

/// Where requests are being verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// On the cards, every one of which passed its known-answer tests.
    Ready,
    /// Some card is missing or failed (and is retried periodically); its share goes to the
    /// others, or to the CPU when none is left.
    Degraded,
    /// Nowhere: the CPU backend itself failed.
    Failed,
}

/// How much may be in flight and when the cards are tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailoverConfig {
    /// The most callers' requests in flight.
    pub capacity: usize,
    /// How often the known-answer tests run among the requests on a card that serves.
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
    /// Times a card was failed and its requests moved.
    pub failovers: u64,
    /// Times a reopened card passed its tests and took requests again.
    pub failbacks: u64,
    /// Known-answer tests a card answered wrongly.
    pub wrong_known_answers: u64,
    /// Requests moved to the CPU after their card failed.
    pub to_cpu: u64,
    /// Requests moved to another card after theirs failed.
    pub to_other_cards: u64,
    /// Attempts to open or reopen a card that failed.
    pub failed_retries: u64,
    /// The longest a failed card had been silent (no response while it held requests) when
    /// it was failed: how long fail-over took.
    pub longest_stall: Duration,
}

/// Where a request was submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Card(usize),
    Cpu,
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
    route: Route,
}

/// One card and what the wrapper knows of it.
struct Card {
    open: Opener,
    /// The card's backend while it is trusted.
    backend: Option<Box<dyn Verifier>>,
    /// Sequence numbers routed to it and waiting for room in it.
    backlog: VecDeque<u64>,
    /// When it last answered, or was given work while it had none.
    heard: Instant,
    checked: Instant,
    retried: Instant,
    last_failure: Option<String>,
}

impl Card {
    /// Requests routed to it and not answered: its queue depth.
    fn depth(&self) -> usize {
        self.backlog.len() + self.backend.as_ref().map_or(0, |b| b.in_flight())
    }
}

/// Cards with the CPU behind them.
pub struct Failover {
    name: &'static str,
    cards: Vec<Card>,
    cpu: Box<dyn Verifier>,
    config: FailoverConfig,
    /// Every request in flight; the front one's sequence number is `front`. Inner backends
    /// see the sequence number as the tag.
    entries: VecDeque<Entry>,
    front: u64,
    /// Callers' requests among `entries`.
    callers: usize,
    /// Sequence numbers waiting for room in the CPU backend.
    backlog: VecDeque<u64>,
    known: Vec<KnownAnswer>,
    cpu_failed: bool,
    counters: FailoverCounters,
    scratch: Vec<Response>,
}

impl Failover {
    /// Opens each card through its opener and tests it; a card that cannot be opened or fails
    /// its tests is retried later while the others (or `cpu`) serve.
    pub fn new(
        name: &'static str,
        openers: Vec<Opener>,
        cpu: Box<dyn Verifier>,
        config: FailoverConfig,
    ) -> Self {
        let now = Instant::now();
        let cards = openers
            .into_iter()
            .map(|open| Card {
                open,
                backend: None,
                backlog: VecDeque::new(),
                heard: now,
                checked: now,
                retried: now,
                last_failure: None,
            })
            .collect();
        let mut failover = Self {
            name,
            cards,
            cpu,
            config,
            entries: VecDeque::new(),
            front: 0,
            callers: 0,
            backlog: VecDeque::new(),
            known: known_answers(),
            cpu_failed: false,
            counters: FailoverCounters::default(),
            scratch: Vec::new(),
        };
        for card in 0..failover.cards.len() {
            failover.try_card(card);
        }
        failover
    }

    /// Where requests are verified now.
    pub fn health(&self) -> Health {
        if self.cpu_failed {
            Health::Failed
        } else if self.cards.iter().all(|c| c.backend.is_some()) {
            Health::Ready
        } else {
            Health::Degraded
        }
    }

    /// Cards serving now.
    pub fn cards_serving(&self) -> usize {
        self.cards.iter().filter(|c| c.backend.is_some()).count()
    }

    /// Why the first card that is not serving last failed, if one is not.
    pub fn last_failure(&self) -> Option<&str> {
        self.cards
            .iter()
            .filter(|c| c.backend.is_none())
            .find_map(|c| c.last_failure.as_deref())
    }

    /// What the wrapper did.
    pub fn counters(&self) -> FailoverCounters {
        self.counters
    }

    /// Opens card `i` and runs the known-answer tests on it alone; takes it if it passes.
    fn try_card(&mut self, i: usize) {
        let card = &mut self.cards[i];
        card.retried = Instant::now();
        let (known, counters) = (&self.known, &mut self.counters);
        let result = (card.open)().and_then(|mut backend| {
            let requests = known.iter().map(|k| k.request.clone());
            let responses =
                crate::verify_all(backend.as_mut(), requests).map_err(|e| e.to_string())?;
            match known
                .iter()
                .zip(&responses)
                .find(|(k, r)| r.verdict != k.verdict)
            {
                Some((k, r)) => {
                    counters.wrong_known_answers += 1;
                    Err(wrong_answer(k.name, r.verdict, k.verdict))
                }
                None => Ok(backend),
            }
        });
        match result {
            Ok(backend) => {
                if card.last_failure.is_some() {
                    self.counters.failbacks += 1;
                    metrics::counter!("verity_failbacks_total", "backend" => self.name)
                        .increment(1);
                }
                info!(
                    backend = self.name,
                    card = i,
                    "card passed its known-answer tests"
                );
                card.backend = Some(backend);
                card.checked = Instant::now();
            }
            Err(reason) => {
                self.counters.failed_retries += 1;
                metrics::counter!("verity_card_retries_failed_total", "backend" => self.name)
                    .increment(1);
                warn!(backend = self.name, card = i, %reason, "card unavailable");
                card.last_failure = Some(reason);
            }
        }
    }

    /// The serving card with the fewest requests, if any serves.
    fn least_loaded(&self) -> Option<usize> {
        (0..self.cards.len())
            .filter(|&i| self.cards[i].backend.is_some())
            .min_by_key(|&i| self.cards[i].depth())
    }

    /// Routes entry `seq` (already in `entries`) to the least loaded card, else the CPU.
    fn route(&mut self, seq: u64) {
        let route = match self.least_loaded() {
            Some(card) => {
                self.cards[card].backlog.push_back(seq);
                Route::Card(card)
            }
            None => {
                self.backlog.push_back(seq);
                Route::Cpu
            }
        };
        self.entries[(seq - self.front) as usize].route = route;
    }

    /// Fails card `i`: its unanswered requests go to the other cards or the CPU, in order.
    fn fail_card(&mut self, i: usize, reason: String) {
        let card = &mut self.cards[i];
        let stall = card.heard.elapsed();
        self.counters.longest_stall = self.counters.longest_stall.max(stall);
        card.backend = None;
        card.backlog.clear();
        card.retried = Instant::now();
        self.counters.failovers += 1;
        metrics::counter!("verity_failovers_total", "backend" => self.name).increment(1);
        warn!(backend = self.name, card = i, %reason, "card failed: its requests move");
        card.last_failure = Some(reason);
        let orphans: Vec<u64> = (self.front..)
            .zip(self.entries.iter_mut())
            .filter(|(_, e)| e.route == Route::Card(i) && e.verdict.is_none())
            .filter_map(|(seq, e)| match e.known {
                // A test that did not finish is not repeated elsewhere.
                Some((_, verdict)) => {
                    e.verdict = Some(verdict);
                    None
                }
                None => Some(seq),
            })
            .collect();
        metrics::counter!("verity_resubmitted_total", "backend" => self.name)
            .increment(orphans.len() as u64);
        for seq in orphans {
            self.route(seq);
            match self.entries[(seq - self.front) as usize].route {
                Route::Cpu => self.counters.to_cpu += 1,
                Route::Card(_) => self.counters.to_other_cards += 1,
            }
        }
    }

    /// Submits what waits for card `i`, as far as it has room.
    fn pump_card(&mut self, i: usize) {
        while let Some(&seq) = self.cards[i].backlog.front() {
            let card = &mut self.cards[i];
            let Some(backend) = &mut card.backend else {
                return;
            };
            if backend.in_flight() >= backend.capacity() {
                return;
            }
            if backend.in_flight() == 0 {
                card.heard = Instant::now();
            }
            let request = self.entries[(seq - self.front) as usize]
                .request
                .clone()
                .expect("a request waiting for a card is kept");
            match backend.submit(Request {
                tag: Tag::new(seq),
                ..request
            }) {
                Ok(()) => {
                    card.backlog.pop_front();
                }
                Err(VerifierError::Full { .. }) => return,
                Err(error) => return self.fail_card(i, error.to_string()),
            }
        }
    }

    /// Submits what waits for the CPU, as far as it has room.
    fn pump_cpu(&mut self) -> Result<(), VerifierError> {
        while let Some(&seq) = self.backlog.front() {
            if self.cpu.in_flight() >= self.cpu.capacity() {
                return Ok(());
            }
            let request = self.entries[(seq - self.front) as usize]
                .request
                .take()
                .expect("a request waiting for the CPU is kept");
            let tagged = Request {
                tag: Tag::new(seq),
                ..request
            };
            if let Err(error) = self.cpu.submit(tagged) {
                self.cpu_failed = true;
                return Err(error);
            }
            self.backlog.pop_front();
        }
        Ok(())
    }

    /// Submits every backlog as far as there is room: the cards', then the CPU's.
    fn pump(&mut self) -> Result<(), VerifierError> {
        for card in 0..self.cards.len() {
            self.pump_card(card);
        }
        self.pump_cpu()
    }

    /// Records the responses in `scratch`, from card `from` (`None`: the CPU), in their
    /// entries.
    fn record(&mut self, from: Option<usize>) {
        let mut wrong = None;
        for response in self.scratch.drain(..) {
            let entry = &mut self.entries[(response.tag.get() - self.front) as usize];
            entry.verdict = Some(response.verdict);
            entry.request = None;
            if let Some((name, expected)) = entry.known {
                if response.verdict != expected && wrong.is_none() {
                    wrong = Some(wrong_answer(name, response.verdict, expected));
                }
            }
        }
        if let (Some(reason), Some(card)) = (wrong, from) {
            self.counters.wrong_known_answers += 1;
            self.fail_card(card, reason);
        }
    }

    /// Runs the periodic known-answer tests, or retries a failed card, where it is time.
    fn maintain(&mut self) {
        for i in 0..self.cards.len() {
            let card = &self.cards[i];
            if card.backend.is_none() {
                if card.retried.elapsed() >= self.config.retry_every {
                    self.try_card(i);
                }
            } else if card.checked.elapsed() >= self.config.check_every {
                self.cards[i].checked = Instant::now();
                for known in &self.known {
                    let seq = self.front + self.entries.len() as u64;
                    self.entries.push_back(Entry {
                        tag: Tag::new(0),
                        request: Some(known.request.clone()),
                        verdict: None,
                        known: Some((known.name, known.verdict)),
                        route: Route::Card(i),
                    });
                    self.cards[i].backlog.push_back(seq);
                }
                self.pump_card(i);
            }
        }
    }

    /// Hands out answered requests from the front, in order.
    fn hand_out(&mut self, out: &mut Vec<Response>) -> usize {
        let mut n = 0;
        while self.entries.front().is_some_and(|e| e.verdict.is_some()) {
            let entry = self.entries.pop_front().expect("front exists");
            self.front += 1;
            if let (None, Some(verdict)) = (entry.known, entry.verdict) {
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
        if self.cards_serving() > 0 {
            self.name
        } else {
            self.cpu.backend()
        }
    }

    fn backend_state(&mut self) -> BackendState {
        match self.health() {
            Health::Ready => BackendState::Ready,
            Health::Degraded => BackendState::Degraded {
                reason: format!(
                    "{} of {} cards serving, the CPU behind them ({})",
                    self.cards_serving(),
                    self.cards.len(),
                    self.last_failure().unwrap_or("no card opened yet")
                ),
            },
            Health::Failed => BackendState::Failed {
                reason: "the CPU backend failed".to_owned(),
            },
        }
    }

    fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// Half of the wrapper's capacity, or the CPU's batch when no card serves and that is
    /// smaller.
    fn batch(&self) -> usize {
        let half = (self.config.capacity / 2).max(1);
        if self.cards_serving() > 0 {
            half
        } else {
            half.min(self.cpu.batch())
        }
    }

    fn in_flight(&self) -> usize {
        self.callers
    }

    fn submit(&mut self, request: Request) -> Result<(), VerifierError> {
        if self.cpu_failed {
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
        self.entries.push_back(Entry {
            tag: request.tag,
            request: Some(request),
            verdict: None,
            known: None,
            route: Route::Cpu,
        });
        self.callers += 1;
        self.route(seq);
        self.pump()
    }

    fn flush(&mut self) -> Result<(), VerifierError> {
        self.pump()?;
        for i in 0..self.cards.len() {
            if let Some(backend) = &mut self.cards[i].backend {
                if let Err(error) = backend.flush() {
                    self.fail_card(i, error.to_string());
                }
            }
        }
        self.pump()?;
        let result = self.cpu.flush();
        self.cpu_failed |= result.is_err();
        result
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
        self.pump()?;
        // One wait in all: on the CPU if it has work, else on the first busy card.
        let mut wait_left = if self.cpu.in_flight() > 0 || !self.backlog.is_empty() {
            Duration::ZERO
        } else {
            wait
        };
        for i in 0..self.cards.len() {
            let card = &mut self.cards[i];
            let Some(backend) = &mut card.backend else {
                continue;
            };
            if backend.in_flight() == 0 {
                continue;
            }
            let result = backend
                .flush()
                .and_then(|()| backend.complete(&mut self.scratch, wait_left));
            wait_left = Duration::ZERO;
            match result {
                Ok(0) => {}
                Ok(_) => card.heard = Instant::now(),
                Err(error) => self.fail_card(i, error.to_string()),
            }
            self.record(Some(i));
        }
        self.pump()?;
        if self.cpu.in_flight() > 0 {
            let result = self
                .cpu
                .flush()
                .and_then(|()| self.cpu.complete(&mut self.scratch, wait));
            if let Err(error) = result {
                self.cpu_failed = true;
                return Err(error);
            }
            self.record(None);
        }
        Ok(self.hand_out(out))
    }
}
