//! A loop-back card: the card's registers and record framing, and an instant `Valid` for
//! every request. It verifies nothing; it exists so that a benchmark of the host's side of the
//! ABI (record encoding, the device files, tag and transaction-id matching) is not limited by
//! a model's engines, and the host's own ceiling shows.
//!
//! Each response is what a card would send for a valid signature — the request's tag, `Valid`,
//! the SHA-256 of the message, the check — so the driver's checks all run.

use std::collections::VecDeque;
use std::time::Duration;

use sha2::{Digest, Sha256};
use verity_firmware::abi::{Request, Response, Status, NO_ENGINE, RESPONSE_LEN};
use verity_firmware::regs::Offset;
use verity_firmware::Verdict;

use crate::bar::{Action, Bar};
use crate::card::{hand_over, Card, StreamError};

/// The loop-back card.
#[derive(Debug)]
pub struct LoopbackCard {
    bar: Bar,
    responses: VecDeque<[u8; RESPONSE_LEN]>,
}

impl Default for LoopbackCard {
    fn default() -> Self {
        Self {
            bar: Bar::new(1, 1),
            responses: VecDeque::new(),
        }
    }
}

impl Card for LoopbackCard {
    fn read_register(&mut self, offset: Offset) -> u32 {
        self.bar.read(offset, self.responses.is_empty())
    }

    fn write_register(&mut self, offset: Offset, value: u32) {
        if let Action::Reset = self.bar.write(offset, value) {
            self.responses.clear();
        }
        if let Some(transfer) = self.bar.release() {
            let _ = self.write_stream(&transfer);
        }
    }

    fn write_stream(&mut self, transfer: &[u8]) -> Result<(), StreamError> {
        self.bar.admit(transfer.len())?;
        let mut rest = transfer;
        // Records that cannot be used end the loop-back's interest in the transfer.
        while let Ok((request, len)) = Request::decode(rest) {
            let counters = &mut self.bar.counters;
            counters.requests_in = counters.requests_in.wrapping_add(1);
            counters.responses_out = counters.responses_out.wrapping_add(1);
            counters.verdict(Verdict::Valid);
            self.responses.push_back(
                Response {
                    tag: request.tag,
                    status: Status::Verdict(Verdict::Valid),
                    engine: NO_ENGINE,
                    cycles: 0,
                    txid: Sha256::digest(request.message).into(),
                }
                .encode(),
            );
            rest = &rest[len..];
        }
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
