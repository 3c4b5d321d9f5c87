//! A card behind [`Verifier`]: the host's half of the ABI, over any [`Card`].
//!
//! Opening a card checks what it is (`ID`, the design's major version and the instruction
//! set), uploads the firmware image through the BAR's window, checks the card's CRC of what
//! arrived, commits it, and enables the card. Requests then go out as request records in
//! host-to-card transfers, each under a card tag of the driver's own (sequence numbers, so a
//! caller's tags may repeat), and come back as response records that are matched to their
//! request by that tag and handed out in submission order.
//!
//! The card is never trusted blindly: a response whose tag is not in flight or was already
//! answered, whose transaction id is not its request's message's SHA-256, a record-error
//! answer to a record this driver framed, an unreadable response, a device error, or
//! requests left unanswered for [`CardConfig::response_timeout`] fail the backend
//! ([`VerifierError::Failed`]); the fail-over wrapper turns that into a switch to the CPU.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use thiserror::Error;
use tracing::{debug, warn};
use verity_firmware::abi::{self, Status, MAX_MESSAGE_LEN, RESPONSE_LEN};
use verity_firmware::image::{Image, ISA_VERSION};
use verity_firmware::regs::{self, control, status, REQUEST_HALF};
use verity_firmware::{Malformed, Tag, Verdict};
use verity_sim::bar::Counters;
use verity_sim::{Card, MAX_TRANSFER};

use crate::{BackendState, Request, Response, Verifier, VerifierError};

/// Why a card could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// `ID` is not "VRTY": this is not a Verity card.
    #[error("not a Verity card: ID reads {0:#010x}")]
    NotVerity(u32),
    /// The card's design or instruction set is not the one this host speaks.
    #[error("card VERSION {found:#010x} is incompatible with this host's {expected:#010x}")]
    Version {
        /// Read from the card.
        found: u32,
        /// This build's.
        expected: u32,
    },
    /// The card's CRC of the uploaded bytes differs from the image's: the upload was corrupted.
    #[error("the card received an image with CRC {card:#010x}, sent {sent:#010x}")]
    UploadCorrupt {
        /// `IMAGE_CRC` after the upload.
        card: u32,
        /// The image's.
        sent: u32,
    },
    /// The card refused the committed image.
    #[error("the card refused the image (ERRORS {errors:#x})")]
    ImageRefused {
        /// `ERRORS` after the commit.
        errors: u32,
    },
    /// The card did not start running after `ENABLE`.
    #[error("the card is not running after enable (STATUS {status:#x})")]
    NotRunning {
        /// `STATUS` after enabling.
        status: u32,
    },
    /// The card did not acknowledge a command within [`CardConfig::ack_timeout`].
    #[error("the card did not acknowledge {command} within {waited:?}")]
    NoAck {
        /// What was asked.
        command: &'static str,
        /// How long the driver waited.
        waited: Duration,
    },
}

/// How a card backend is sized and how long it waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardConfig {
    /// The most requests in flight ([`Verifier::capacity`]).
    pub max_in_flight: usize,
    /// How long requests may stay unanswered with no response at all before the card is
    /// failed. Zero for a model that runs in the caller's thread: a read that brings nothing
    /// means it has nothing more to say.
    pub response_timeout: Duration,
    /// How long the card may take to acknowledge a command (a reset, an image commit, the
    /// enable, a request window submission).
    pub ack_timeout: Duration,
    /// Batches of at most this many requests go through the BAR's request window instead of
    /// a DMA transfer (0: never).
    pub window_batch: usize,
}

impl CardConfig {
    /// For a model that answers within the call: no waiting.
    pub fn model() -> Self {
        Self {
            response_timeout: Duration::ZERO,
            ..Self::default()
        }
    }
}

impl Default for CardConfig {
    /// 4,096 in flight (several per context of a large card); a second without any response
    /// or acknowledgement fails the card.
    fn default() -> Self {
        Self {
            max_in_flight: 4096,
            response_timeout: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(1),
            window_batch: 8,
        }
    }
}

/// Reads `offset` until `done` holds of it, for up to `timeout`; the value, or `None`. A card
/// acknowledges at once; the virtual endpoint within microseconds while it is busy, within a
/// millisecond when it was idle.
fn await_register<C: Card>(
    card: &mut C,
    offset: regs::Offset,
    done: impl Fn(u32) -> bool,
    timeout: Duration,
) -> Option<u32> {
    /// Reads back to back this long first: a card answers within a few reads.
    const SPIN: Duration = Duration::from_micros(50);
    let start = Instant::now();
    loop {
        let value = card.read_register(offset);
        if done(value) {
            return Some(value);
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return None;
        }
        if waited >= SPIN {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// What a card backend says of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardState {
    /// Answering, with no error flagged.
    Ready,
    /// Answering, but the card has flagged errors since it was opened (`ERRORS`, sticky):
    /// unframeable transfers, refused records, an engine fault.
    Degraded {
        /// `ERRORS`.
        errors: u32,
    },
    /// Failed: it takes no more requests.
    Failed {
        /// Why.
        reason: String,
    },
}

/// How requests reached the card: the two submission paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paths {
    /// Submissions through the BAR's request window.
    pub window_submissions: u64,
    /// Requests in them.
    pub window_requests: u64,
    /// Host-to-card DMA transfers.
    pub dma_transfers: u64,
    /// Requests in them.
    pub dma_requests: u64,
}

/// A request in flight, in submission order.
#[derive(Debug)]
struct Slot {
    /// The caller's tag.
    tag: Tag,
    /// SHA-256 of the message: the card's response must carry it, so an answer that reached
    /// the wrong request under a wrong tag is caught.
    txid: [u8; 32],
    /// Known once answered.
    verdict: Option<Verdict>,
}

/// A [`Verifier`] that runs requests on a card.
pub struct CardVerifier<C: Card> {
    card: C,
    backend: &'static str,
    config: CardConfig,
    /// Requests submitted and not yet written, with their card tags.
    pending: Vec<(u64, Request)>,
    /// Requests in flight in submission order; `front_tag` is the first one's card tag.
    slots: VecDeque<Slot>,
    front_tag: u64,
    /// Card tags written to the card and not answered.
    written: usize,
    /// When the card last answered, or was first given work after having none.
    progress: Instant,
    failed: Option<String>,
    /// Records encoded and not yet sent, and how many.
    transfer: Vec<u8>,
    in_transfer: u64,
    records: Vec<u8>,
    /// The next request window submission's sequence number.
    sequence: u16,
    paths: Paths,
}

impl<C: Card> CardVerifier<C> {
    /// Checks the card, loads `image` into it and enables it.
    pub fn open(
        mut card: C,
        backend: &'static str,
        image: &Image,
        config: CardConfig,
    ) -> Result<Self, OpenError> {
        let id = card.read_register(regs::ID);
        if id != regs::ID_VALUE {
            return Err(OpenError::NotVerity(id));
        }
        let found = card.read_register(regs::VERSION);
        let expected = regs::version_value();
        if found >> 16 != expected >> 16 || found & 0xff != u32::from(ISA_VERSION) & 0xff {
            return Err(OpenError::Version { found, expected });
        }
        let ack = |card: &mut C, command, offset, done: fn(u32) -> bool| {
            await_register(card, offset, done, config.ack_timeout).ok_or(OpenError::NoAck {
                command,
                waited: config.ack_timeout,
            })
        };
        // A fresh start: nothing in flight, no error flagged, counters from zero.
        const FRESH: u32 = control::RESET | control::CLEAR_ERRORS | control::CLEAR_COUNTERS;
        card.write_register(regs::CONTROL, FRESH);
        ack(&mut card, "CONTROL.RESET", regs::CONTROL, |v| {
            v & FRESH == 0
        })?;
        let bytes = image.encode();
        card.load_image(&bytes);
        ack(&mut card, "IMAGE_COMMIT", regs::IMAGE_COMMIT, |v| v == 0)?;
        let sent = Image::checksum(&bytes);
        let received = card.read_register(regs::IMAGE_CRC);
        if received != sent {
            return Err(OpenError::UploadCorrupt {
                card: received,
                sent,
            });
        }
        if card.read_register(regs::STATUS) & status::IMAGE_OK == 0 {
            let errors = card.read_register(regs::ERRORS);
            return Err(OpenError::ImageRefused { errors });
        }
        card.write_register(regs::CONTROL, control::ENABLE);
        let running = |v| v & status::RUNNING != 0;
        if ack(&mut card, "CONTROL.ENABLE", regs::STATUS, running).is_err() {
            let status = card.read_register(regs::STATUS);
            return Err(OpenError::NotRunning { status });
        }
        // The next submission follows the last one rung, whoever rang it: the same sequence
        // again would be no doorbell at all.
        let sequence = ((card.read_register(regs::DOORBELL) >> 16) as u16).wrapping_add(1);
        debug!(backend, "card open and running");
        Ok(Self {
            card,
            backend,
            config,
            pending: Vec::new(),
            slots: VecDeque::new(),
            front_tag: 0,
            written: 0,
            progress: Instant::now(),
            failed: None,
            transfer: Vec::new(),
            in_transfer: 0,
            records: Vec::new(),
            sequence,
            paths: Paths::default(),
        })
    }

    /// The card, for its registers.
    pub fn card_mut(&mut self) -> &mut C {
        &mut self.card
    }

    /// How requests reached the card so far.
    pub fn paths(&self) -> Paths {
        self.paths
    }

    /// Whether the card serves, and whether it has flagged errors (read from its `ERRORS`).
    pub fn state(&mut self) -> CardState {
        if let Some(reason) = &self.failed {
            return CardState::Failed {
                reason: reason.clone(),
            };
        }
        match self.card.read_register(regs::ERRORS) {
            0 => CardState::Ready,
            errors => CardState::Degraded { errors },
        }
    }

    /// The card's own counters, read from its BAR.
    pub fn counters(&mut self) -> Counters {
        let mut read = |offset| self.card.read_register(offset);
        Counters {
            requests_in: read(regs::REQUESTS_IN),
            responses_out: read(regs::RESPONSES_OUT),
            records_rejected: read(regs::RECORDS_REJECTED),
            framing_drops: read(regs::FRAMING_DROPS),
            valid: read(regs::VALID),
            invalid: read(regs::INVALID),
            malformed: read(regs::MALFORMED),
        }
    }

    fn fail(&mut self, reason: String) -> VerifierError {
        warn!(backend = self.backend, %reason, "card failed");
        metrics::counter!("verity_card_failures_total", "backend" => self.backend).increment(1);
        self.failed = Some(reason.clone());
        VerifierError::Failed {
            backend: self.backend,
            reason,
        }
    }

    fn check(&self) -> Result<(), VerifierError> {
        match &self.failed {
            Some(reason) => Err(VerifierError::Failed {
                backend: self.backend,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Writes the pending requests as transfers of at most [`MAX_TRANSFER`] bytes.
    fn write_pending(&mut self) -> Result<(), VerifierError> {
        let pending = std::mem::take(&mut self.pending);
        self.transfer.clear();
        for (card_tag, request) in &pending {
            let record = abi::Request {
                tag: Tag::new(*card_tag),
                public_key: request.public_key,
                signature: request.signature,
                message: &request.message,
            };
            if self.transfer.len() + record.words() * abi::WORD > MAX_TRANSFER {
                self.send()?;
            }
            record
                .encode(&mut self.transfer)
                .expect("long messages are answered without the card");
            self.in_transfer += 1;
            if self.written == 0 {
                self.progress = Instant::now();
            }
            self.written += 1;
        }
        if pending.len() <= self.config.window_batch && self.transfer.len() <= REQUEST_HALF {
            self.ring()
        } else {
            self.send()
        }
    }

    /// Sends the encoded records as one host-to-card DMA transfer.
    fn send(&mut self) -> Result<(), VerifierError> {
        if self.transfer.is_empty() {
            return Ok(());
        }
        let result = self.card.write_stream(&self.transfer);
        self.paths.dma_transfers += 1;
        self.paths.dma_requests += self.in_transfer;
        metrics::counter!("verity_card_submissions_total", "backend" => self.backend, "path" => "dma")
            .increment(1);
        self.transfer.clear();
        self.in_transfer = 0;
        match result {
            Ok(()) => Ok(()),
            Err(error) => Err(self.fail(error.to_string())),
        }
    }

    /// Waits until `DOORBELL_DONE` satisfies `done` (the card has taken submission `waited`).
    fn await_window(
        &mut self,
        done: impl Fn(u32) -> bool,
        waited: u16,
    ) -> Result<(), VerifierError> {
        let timeout = self.config.ack_timeout;
        match await_register(&mut self.card, regs::DOORBELL_DONE, done, timeout) {
            Some(_) => Ok(()),
            None => Err(self.fail(format!(
                "request window submission {waited} not taken within {timeout:?}"
            ))),
        }
    }

    /// Writes the encoded records into the request window's next half and rings the doorbell.
    fn ring(&mut self) -> Result<(), VerifierError> {
        if self.transfer.is_empty() {
            return Ok(());
        }
        let sequence = self.sequence;
        // This half is free once the card has taken the submission before the previous one;
        // the doorbell rings once it has taken the previous one (the doorbell is a state, so
        // one submission waits in it at a time), while the other half is being filled.
        let taken = |behind: u16| move |done: u32| sequence.wrapping_sub(done as u16) <= behind;
        self.await_window(taken(2), sequence.wrapping_sub(2))?;
        for (offset, word) in regs::window_writes(sequence, &self.transfer) {
            self.card.write_register(offset, word);
        }
        let words = (self.transfer.len() / abi::WORD) as u16;
        self.await_window(taken(1), sequence.wrapping_sub(1))?;
        self.card
            .write_register(regs::DOORBELL, regs::doorbell(sequence, words));
        self.sequence = sequence.wrapping_add(1);
        self.paths.window_submissions += 1;
        self.paths.window_requests += self.in_transfer;
        metrics::counter!("verity_card_submissions_total", "backend" => self.backend, "path" => "window")
            .increment(1);
        self.transfer.clear();
        self.in_transfer = 0;
        Ok(())
    }

    /// Takes the card's responses into their slots, waiting up to `wait` for the first.
    fn collect(&mut self, wait: Duration) -> Result<(), VerifierError> {
        self.records.clear();
        let read = self
            .card
            .read_stream(&mut self.records, self.written.max(1), wait);
        let n = match read {
            Ok(n) => n,
            Err(error) => return Err(self.fail(error.to_string())),
        };
        if n > 0 {
            self.progress = Instant::now();
        } else if self.written > 0 && self.progress.elapsed() >= self.config.response_timeout {
            let reason = format!(
                "no response for {:?} with {} requests unanswered",
                self.config.response_timeout, self.written
            );
            return Err(self.fail(reason));
        }
        let records = std::mem::take(&mut self.records);
        let result = records
            .chunks_exact(RESPONSE_LEN)
            .try_for_each(|record| self.answer(record));
        self.records = records;
        result
    }

    fn answer(&mut self, record: &[u8]) -> Result<(), VerifierError> {
        let response = match abi::Response::decode(record) {
            Ok(response) => response,
            Err(error) => return Err(self.fail(format!("unreadable response: {error}"))),
        };
        let card_tag = response.tag.get();
        let slot = card_tag
            .checked_sub(self.front_tag)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.slots.get_mut(i));
        let Some(slot) = slot else {
            return Err(self.fail(format!("response for tag {card_tag}, not in flight")));
        };
        if slot.verdict.is_some() {
            return Err(self.fail(format!("second response for tag {card_tag}")));
        }
        match response.status {
            Status::Verdict(_) if response.txid != slot.txid => Err(self.fail(format!(
                "response for tag {card_tag} carries another message's transaction id"
            ))),
            Status::Verdict(verdict) => {
                slot.verdict = Some(verdict);
                self.written -= 1;
                Ok(())
            }
            Status::Rejected(code) => Err(self.fail(format!(
                "card rejected well-formed record {card_tag} (code {code})"
            ))),
        }
    }

    fn hand_out(&mut self, out: &mut Vec<Response>) -> usize {
        let mut n = 0;
        while let Some(Slot {
            tag,
            verdict: Some(verdict),
            ..
        }) = self.slots.front()
        {
            out.push(Response {
                tag: *tag,
                verdict: *verdict,
            });
            self.slots.pop_front();
            self.front_tag += 1;
            n += 1;
        }
        n
    }
}

impl<C: Card> Verifier for CardVerifier<C> {
    fn backend(&self) -> &'static str {
        self.backend
    }

    fn backend_state(&mut self) -> BackendState {
        match self.state() {
            CardState::Ready => BackendState::Ready,
            CardState::Degraded { errors } => BackendState::Degraded {
                reason: format!("the card flagged errors (ERRORS = {errors:#010x})"),
            },
            CardState::Failed { reason } => BackendState::Failed { reason },
        }
    }

    fn capacity(&self) -> usize {
        self.config.max_in_flight
    }

    /// Half of what may be in flight: one batch is submitted while another is verified.
    fn batch(&self) -> usize {
        (self.config.max_in_flight / 2).max(1)
    }

    fn in_flight(&self) -> usize {
        self.slots.len()
    }

    fn submit(&mut self, request: Request) -> Result<(), VerifierError> {
        self.check()?;
        if self.slots.len() >= self.config.max_in_flight {
            return Err(VerifierError::Full {
                capacity: self.config.max_in_flight,
            });
        }
        let card_tag = self.front_tag + self.slots.len() as u64;
        // A message the ABI cannot carry is malformed without asking the card.
        let verdict = (request.message.len() > MAX_MESSAGE_LEN)
            .then_some(Verdict::Malformed(Malformed::MessageTooLong));
        let txid = match verdict {
            Some(_) => [0; 32],
            None => Sha256::digest(&request.message).into(),
        };
        self.slots.push_back(Slot {
            tag: request.tag,
            txid,
            verdict,
        });
        if verdict.is_none() {
            self.pending.push((card_tag, request));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), VerifierError> {
        self.check()?;
        self.write_pending()
    }

    fn complete(
        &mut self,
        out: &mut Vec<Response>,
        wait: Duration,
    ) -> Result<usize, VerifierError> {
        self.check()?;
        let n = self.hand_out(out);
        if n > 0 || self.written == 0 {
            return Ok(n);
        }
        self.collect(wait)?;
        Ok(self.hand_out(out))
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use verity_firmware::program::ed25519_verify;
    use verity_firmware::regs::Offset;
    use verity_sim::{FunctionalCard, StreamError};

    use super::*;
    use crate::verify_all;

    /// Rewrites the response records of one read.
    type Rewrite = fn(&mut Vec<u8>);
    /// Rewrites a register read.
    type RegisterFault = fn(Offset, u32) -> u32;

    /// The functional card with a fault injected into what it says.
    struct Faulty {
        card: FunctionalCard,
        responses: Rewrite,
        register: RegisterFault,
    }

    impl Card for Faulty {
        fn read_register(&mut self, offset: Offset) -> u32 {
            (self.register)(offset, self.card.read_register(offset))
        }
        fn write_register(&mut self, offset: Offset, value: u32) {
            self.card.write_register(offset, value);
        }
        fn write_stream(&mut self, transfer: &[u8]) -> Result<(), StreamError> {
            self.card.write_stream(transfer)
        }
        fn read_stream(
            &mut self,
            out: &mut Vec<u8>,
            max_records: usize,
            wait: Duration,
        ) -> Result<usize, StreamError> {
            let mut records = Vec::new();
            self.card.read_stream(&mut records, max_records, wait)?;
            (self.responses)(&mut records);
            out.extend_from_slice(&records);
            Ok(records.len() / RESPONSE_LEN)
        }
    }

    fn faulty(
        responses: Rewrite,
        register: RegisterFault,
    ) -> Result<CardVerifier<Faulty>, OpenError> {
        let card = Faulty {
            card: FunctionalCard::new(2),
            responses,
            register,
        };
        CardVerifier::open(
            card,
            "faulty",
            &Image::new(ed25519_verify()),
            CardConfig {
                max_in_flight: 8,
                ..CardConfig::model()
            },
        )
    }

    fn requests(n: u64) -> Vec<Request> {
        let key = SigningKey::from_bytes(&[9; 32]);
        (0..n)
            .map(|i| {
                let message = i.to_le_bytes().to_vec();
                let signature = key.sign(&message).to_bytes();
                // Every caller tag is the same: the driver matches by its own card tags.
                Request::new(
                    Tag::new(7),
                    key.verifying_key().to_bytes(),
                    signature,
                    message,
                )
            })
            .collect()
    }

    fn honest(_: &mut Vec<u8>) {}

    /// Recomputes every record's check, as a card that means what it sends.
    fn reseal(records: &mut [u8]) {
        for record in records.chunks_exact_mut(RESPONSE_LEN) {
            abi::seal_response(record.try_into().expect("a whole record"));
        }
    }
    fn same(_: Offset, value: u32) -> u32 {
        value
    }

    #[test]
    fn an_honest_card_answers_in_submission_order_whatever_the_callers_tags() {
        let mut card = faulty(honest, same).expect("opens");
        let mut all = requests(20);
        all[3].message[0] ^= 1;
        all[5].message = vec![0; MAX_MESSAGE_LEN + 1];
        let responses = verify_all(&mut card, all).expect("runs");
        let verdicts: Vec<Verdict> = responses.iter().map(|r| r.verdict).collect();
        for (i, verdict) in verdicts.iter().enumerate() {
            let want = match i {
                3 => Verdict::Invalid,
                5 => Verdict::Malformed(Malformed::MessageTooLong),
                _ => Verdict::Valid,
            };
            assert_eq!(*verdict, want, "#{i}");
        }
        assert!(responses.iter().all(|r| r.tag == Tag::new(7)));
        // The long message never reached the card.
        assert_eq!(card.card_mut().read_register(regs::REQUESTS_IN), 19);
    }

    #[test]
    fn a_card_that_lies_about_its_answers_fails_the_backend() {
        let cases: [(Rewrite, &str); 7] = [
            (
                |r| r.truncate(r.len().saturating_sub(RESPONSE_LEN)),
                "unanswered",
            ),
            (
                |r| {
                    let first = r[..RESPONSE_LEN].to_vec();
                    r.extend_from_slice(&first);
                },
                "second response",
            ),
            (
                |r| {
                    r[0] = r[0].wrapping_add(100);
                    reseal(r);
                },
                "not in flight",
            ),
            (
                |r| {
                    r[8] = 1;
                    r[9] = 3;
                    reseal(r);
                },
                "rejected well-formed",
            ),
            (
                |r| {
                    r[8] = 9;
                    reseal(r);
                },
                "unknown status",
            ),
            (
                |r| {
                    r[40] ^= 1;
                    reseal(r);
                },
                "another message's transaction id",
            ),
            // A bit flipped on the way, the check not recomputed.
            (|r| r[9] ^= 1, "does not match the record"),
        ];
        for (fault, reason) in cases {
            let mut card = faulty(fault, same).expect("opens");
            let error = verify_all(&mut card, requests(4)).expect_err(reason);
            assert!(error.to_string().contains(reason), "{reason}: {error}");
            // Failed stays failed.
            assert!(matches!(
                card.submit(requests(1).remove(0)),
                Err(VerifierError::Failed { .. })
            ));
        }
    }

    #[test]
    fn a_card_that_is_not_a_compatible_verity_card_is_not_opened() {
        fn not_verity(offset: Offset, value: u32) -> u32 {
            if offset == regs::ID {
                0xdead_beef
            } else {
                value
            }
        }
        fn newer_major(offset: Offset, value: u32) -> u32 {
            if offset == regs::VERSION {
                value + (1 << 16)
            } else {
                value
            }
        }
        fn corrupt_upload(offset: Offset, value: u32) -> u32 {
            if offset == regs::IMAGE_CRC {
                value ^ 1
            } else {
                value
            }
        }
        fn refuses_image(offset: Offset, value: u32) -> u32 {
            if offset == regs::STATUS {
                value & !status::IMAGE_OK
            } else {
                value
            }
        }
        fn never_runs(offset: Offset, value: u32) -> u32 {
            if offset == regs::STATUS {
                value & !status::RUNNING
            } else {
                value
            }
        }
        let cases: [(RegisterFault, &str); 5] = [
            (not_verity, "not a Verity card"),
            (newer_major, "incompatible"),
            (corrupt_upload, "received an image"),
            (refuses_image, "refused the image"),
            (never_runs, "not running"),
        ];
        for (fault, reason) in cases {
            let error = faulty(honest, fault).err().expect(reason);
            assert!(error.to_string().contains(reason), "{reason}: {error}");
        }
    }

    #[test]
    fn small_batches_go_through_the_request_window_and_large_ones_by_dma() {
        let all = requests(40);
        let want: Vec<Verdict> = vec![Verdict::Valid; 40];
        for (window_batch, dma) in [(8, false), (0, true)] {
            let mut card = CardVerifier::open(
                FunctionalCard::new(2),
                "sim",
                &Image::new(ed25519_verify()),
                CardConfig {
                    max_in_flight: 64,
                    window_batch,
                    ..CardConfig::model()
                },
            )
            .expect("opens");
            let mut got = Vec::new();
            for batch in all.chunks(5) {
                got.extend(verify_all(&mut card, batch.to_vec()).expect("runs"));
            }
            assert_eq!(got.iter().map(|r| r.verdict).collect::<Vec<_>>(), want);
            let paths = card.paths();
            let (window, bulk) = (paths.window_requests, paths.dma_requests);
            assert_eq!((window, bulk), if dma { (0, 40) } else { (40, 0) });
            // 40 requests through a 64-deep card in one go: one transfer.
            let before = card.paths();
            verify_all(&mut card, all.clone()).expect("runs");
            assert_eq!(card.paths().dma_transfers, before.dma_transfers + 1);
            assert_eq!(
                card.card_mut().read_register(regs::DOORBELL_DONE),
                u32::from(card.sequence.wrapping_sub(1)),
                "every submission taken"
            );
        }
    }

    #[test]
    fn submissions_beyond_capacity_are_refused_until_completed() {
        let mut card = faulty(honest, same).expect("opens");
        for request in requests(8) {
            card.submit(request).expect("room");
        }
        assert!(matches!(
            card.submit(requests(1).remove(0)),
            Err(VerifierError::Full { capacity: 8 })
        ));
        card.flush().expect("writes");
        let mut out = Vec::new();
        assert_eq!(card.complete(&mut out, Duration::ZERO).expect("answers"), 8);
        card.submit(requests(1).remove(0)).expect("room again");
    }
}
