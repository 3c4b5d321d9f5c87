//! The functional model: the card's behaviour in plain Rust, fast enough for daemon tests and
//! demos.
//!
//! Records are parsed as the card parses them (`firmware::abi::Request::decode`), the units in
//! front of the engines are the firmware's reference functions, and every engine is the
//! firmware's reference interpreter running the committed image. A transfer is processed
//! when it is written; its responses wait in the card-to-host queue until read.
//!
//! What it does not model: time. A response's `cycles` is 0 (the model has no clock; the
//! cycle model reports the card's), and engines are assigned round-robin.
//!
//! ```
//! use verity_firmware::image::Image;
//! use verity_firmware::program::ed25519_verify;
//! use verity_firmware::regs::{self, status};
//! use verity_sim::{Card, FunctionalCard};
//!
//! let mut card = FunctionalCard::new(4);
//! card.load_image(&Image::new(ed25519_verify()).encode());
//! card.write_register(regs::CONTROL, regs::control::ENABLE);
//! assert_ne!(card.read_register(regs::STATUS) & status::RUNNING, 0);
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tracing::{debug, warn};
use verity_firmware::abi::{Request, Response, Status, NO_ENGINE, RESPONSE_LEN};
use verity_firmware::interp::Engine;
use verity_firmware::regs::{errors, Offset};
use verity_firmware::verify::verify;

use crate::bar::{Action, Bar};
use crate::card::{hand_over, Card, StreamError};

/// Contexts per engine the model reports (the HDL engine's).
pub const CONTEXTS: u16 = 16;

/// The card in plain Rust.
#[derive(Debug)]
pub struct FunctionalCard {
    bar: Bar,
    engines: u8,
    engine: Option<Engine>,
    next_engine: u8,
    responses: VecDeque<[u8; RESPONSE_LEN]>,
}

impl FunctionalCard {
    /// A card with `engines` engines (1..=254) and no image.
    pub fn new(engines: u8) -> Self {
        assert!(
            (1..NO_ENGINE).contains(&engines),
            "a card has 1 to 254 engines"
        );
        Self {
            bar: Bar::new(u16::from(engines), CONTEXTS),
            engines,
            engine: None,
            next_engine: 0,
            responses: VecDeque::new(),
        }
    }

    fn respond(&mut self, response: Response) {
        self.bar.counters.responses_out = self.bar.counters.responses_out.wrapping_add(1);
        self.responses.push_back(response.encode());
    }

    fn verify(&mut self, engine: &Engine, request: &Request<'_>) {
        let txid: [u8; 32] = Sha256::digest(request.message).into();
        match verify(
            engine,
            &request.public_key,
            &request.signature,
            request.message,
        ) {
            Ok((verdict, counts)) => {
                // A verdict reached before the engines (a non-canonical S) ran on none.
                let engine = if counts.instructions == 0 {
                    NO_ENGINE
                } else {
                    let engine = self.next_engine;
                    self.next_engine = (engine + 1) % self.engines;
                    engine
                };
                self.bar.counters.verdict(verdict);
                self.respond(Response {
                    tag: request.tag,
                    status: Status::Verdict(verdict),
                    engine,
                    cycles: 0,
                    txid,
                });
            }
            Err(error) => {
                // The committed image faulted: no verdict can be given, so none is. The host
                // sees the tag unanswered and fails over.
                warn!(tag = request.tag.get(), %error, "engine fault");
                self.bar.raise(errors::ENGINE);
            }
        }
    }
}

impl Card for FunctionalCard {
    fn read_register(&mut self, offset: Offset) -> u32 {
        self.bar.read(offset, self.responses.is_empty())
    }

    fn write_register(&mut self, offset: Offset, value: u32) {
        match self.bar.write(offset, value) {
            Action::None => {}
            Action::Reset => self.responses.clear(),
            Action::Load(image) => self.engine = Some(Engine::new(*image)),
        }
        if let Some(transfer) = self.bar.release() {
            // A window submission is a transfer of at most 16 KiB to a running card.
            let _ = self.write_stream(&transfer);
        }
    }

    fn write_stream(&mut self, transfer: &[u8]) -> Result<(), StreamError> {
        self.bar.admit(transfer.len())?;
        // Held out of `self` for the transfer (put back below), so `verify` can count into
        // the BAR while the engine runs.
        let Some(engine) = self.engine.take() else {
            return Err(StreamError::NotRunning);
        };
        let mut rest = transfer;
        while !rest.is_empty() {
            match Request::decode(rest) {
                Ok((request, len)) => {
                    self.bar.counters.requests_in = self.bar.counters.requests_in.wrapping_add(1);
                    self.verify(&engine, &request);
                    rest = &rest[len..];
                }
                Err(Ok(rejected)) => {
                    debug!(tag = rejected.tag.get(), error = %rejected.error, "record rejected");
                    let c = &mut self.bar.counters;
                    c.requests_in = c.requests_in.wrapping_add(1);
                    c.records_rejected = c.records_rejected.wrapping_add(1);
                    self.bar.raise(errors::RECORD);
                    let code = rejected
                        .error
                        .code()
                        .expect("a rejected record has an answerable error");
                    self.respond(Response {
                        tag: rejected.tag,
                        status: Status::Rejected(code),
                        engine: NO_ENGINE,
                        cycles: 0,
                        txid: [0; 32],
                    });
                    rest = &rest[rejected.len..];
                }
                Err(Err(error)) => {
                    warn!(%error, dropped = rest.len(), "transfer cannot be framed; rest dropped");
                    let c = &mut self.bar.counters;
                    c.framing_drops = c.framing_drops.wrapping_add(1);
                    self.bar.raise(errors::FRAMING);
                    break;
                }
            }
        }
        self.engine = Some(engine);
        Ok(())
    }

    fn read_stream(
        &mut self,
        out: &mut Vec<u8>,
        max_records: usize,
        _wait: Duration,
    ) -> Result<usize, StreamError> {
        Ok(hand_over(&mut self.responses, out, max_records))
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};
    use verity_firmware::abi::{Request, Response, Status, WORD};
    use verity_firmware::image::Image;
    use verity_firmware::program::ed25519_verify;
    use verity_firmware::regs::{self, control, errors, status};
    use verity_firmware::{Malformed, Tag, Verdict};

    use super::*;
    use crate::card::MAX_TRANSFER;

    fn running() -> FunctionalCard {
        let mut card = FunctionalCard::new(2);
        card.load_image(&Image::new(ed25519_verify()).encode());
        card.write_register(regs::CONTROL, control::ENABLE);
        assert_ne!(card.read_register(regs::STATUS) & status::RUNNING, 0);
        card
    }

    /// A signed request record with `tag`.
    fn record(tag: u64, message: &[u8], out: &mut Vec<u8>) {
        let key = SigningKey::from_bytes(&[tag as u8; 32]);
        Request {
            tag: Tag::new(tag),
            public_key: key.verifying_key().to_bytes(),
            signature: key.sign(message).to_bytes(),
            message,
        }
        .encode(out)
        .expect("message fits");
    }

    fn responses(card: &mut FunctionalCard) -> Vec<Response> {
        let mut bytes = Vec::new();
        card.read_stream(&mut bytes, usize::MAX, Duration::ZERO)
            .expect("a model reads");
        bytes
            .chunks_exact(RESPONSE_LEN)
            .map(|r| Response::decode(r).expect("the card writes readable responses"))
            .collect()
    }

    #[test]
    fn bad_records_in_a_transfer_are_answered_and_the_good_ones_around_them_verified() {
        let mut card = running();
        let mut transfer = Vec::new();
        record(1, b"first", &mut transfer);
        // Padding after the message set: answerable, the stream stays in step.
        let at = transfer.len();
        record(2, b"padded", &mut transfer);
        let last = transfer.len() - 1;
        transfer[last] = 1;
        // An 18-word record whose header announces a 1,025-byte message: its extent is known,
        // so it is answered (MessageTooLong).
        let long_at = transfer.len();
        record(3, &[7; 1000], &mut transfer);
        transfer[long_at + 4..long_at + 6].copy_from_slice(&1025u16.to_le_bytes());
        // A forgery and a non-canonical S.
        let forged_at = transfer.len();
        record(4, b"forged", &mut transfer);
        transfer[forged_at + 112] ^= 1;
        let s_at = transfer.len();
        record(5, b"big S", &mut transfer);
        transfer[s_at + 80 + 31] |= 0xf0;
        record(6, b"last", &mut transfer);
        assert_eq!(transfer[at + 2], 2, "the padded record is two words");

        card.write_stream(&transfer)
            .expect("running card takes the transfer");
        let got = responses(&mut card);
        let statuses: Vec<(u64, Status)> = got.iter().map(|r| (r.tag.get(), r.status)).collect();
        assert_eq!(
            statuses,
            [
                (1, Status::Verdict(Verdict::Valid)),
                (2, Status::Rejected(4)),
                (3, Status::Rejected(1)),
                (4, Status::Verdict(Verdict::Invalid)),
                (
                    5,
                    Status::Verdict(Verdict::Malformed(Malformed::NonCanonicalS))
                ),
                (6, Status::Verdict(Verdict::Valid)),
            ]
        );
        let txid: [u8; 32] = Sha256::digest(b"first").into();
        assert_eq!(got[0].txid, txid);
        assert_eq!(
            got[1].txid, [0; 32],
            "a rejected record has no transaction id"
        );
        assert_eq!(got[1].engine, NO_ENGINE);
        assert_eq!(got[4].engine, NO_ENGINE, "S is checked before the engines");
        assert_eq!((got[0].engine, got[3].engine, got[5].engine), (0, 1, 0));
        for (register, want) in [
            (regs::REQUESTS_IN, 6),
            (regs::RESPONSES_OUT, 6),
            (regs::RECORDS_REJECTED, 2),
            (regs::FRAMING_DROPS, 0),
            (regs::VALID, 2),
            (regs::INVALID, 1),
            (regs::MALFORMED, 1),
            (regs::ERRORS, errors::RECORD),
        ] {
            assert_eq!(card.read_register(register), want, "{register:?}");
        }
        assert_ne!(card.read_register(regs::STATUS) & status::IDLE, 0);
    }

    #[test]
    fn an_unframeable_record_drops_the_rest_of_its_transfer_only() {
        let mut card = running();
        for bad in [
            // Bad magic, a length outside 2..=18 words, a record cut short.
            |t: &mut Vec<u8>, at: usize| t[at] ^= 0xff,
            |t: &mut Vec<u8>, at: usize| t[at + 2] = 19,
            |t: &mut Vec<u8>, at: usize| t.truncate(at + WORD + 3),
        ] {
            let mut transfer = Vec::new();
            record(1, b"kept", &mut transfer);
            let at = transfer.len();
            record(2, b"unframeable", &mut transfer);
            record(3, b"dropped with it", &mut transfer);
            bad(&mut transfer, at);
            card.write_stream(&transfer).expect("taken");
            let got: Vec<u64> = responses(&mut card).iter().map(|r| r.tag.get()).collect();
            assert_eq!(got, [1]);
            let mut next = Vec::new();
            record(4, b"next transfer", &mut next);
            card.write_stream(&next).expect("taken");
            let got: Vec<u64> = responses(&mut card).iter().map(|r| r.tag.get()).collect();
            assert_eq!(got, [4], "the next transfer starts in step");
        }
        assert_eq!(card.read_register(regs::FRAMING_DROPS), 3);
        assert_eq!(card.read_register(regs::REQUESTS_IN), 6);
        assert_eq!(card.read_register(regs::ERRORS), errors::FRAMING);
    }

    #[test]
    fn a_card_without_a_good_image_takes_no_requests() {
        let mut transfer = Vec::new();
        record(1, b"x", &mut transfer);
        let mut card = FunctionalCard::new(1);
        card.write_register(regs::CONTROL, control::ENABLE);
        assert_eq!(card.write_stream(&transfer), Err(StreamError::NotRunning));

        let mut image = Image::new(ed25519_verify()).encode();
        image[40] ^= 1;
        card.load_image(&image);
        assert_eq!(card.read_register(regs::ERRORS), errors::IMAGE_CHECKSUM);
        assert_eq!(card.write_stream(&transfer), Err(StreamError::NotRunning));
        assert_eq!(card.read_register(regs::REQUESTS_IN), 0);

        let mut card = running();
        card.write_register(regs::CONTROL, 0);
        assert_eq!(card.write_stream(&transfer), Err(StreamError::NotRunning));
        assert_eq!(
            card.write_stream(&vec![0; MAX_TRANSFER + 1]),
            Err(StreamError::TooLarge(MAX_TRANSFER + 1))
        );
    }

    #[test]
    fn reset_drops_unread_responses_and_keeps_the_image() {
        let mut card = running();
        let mut transfer = Vec::new();
        record(1, b"x", &mut transfer);
        card.write_stream(&transfer).expect("taken");
        assert_eq!(card.read_register(regs::STATUS) & status::IDLE, 0);
        card.write_register(regs::CONTROL, control::ENABLE | control::RESET);
        assert!(responses(&mut card).is_empty());
        card.write_stream(&transfer).expect("the image stays");
        assert_eq!(responses(&mut card).len(), 1);
    }
}
