//! Faults the virtual XDMA endpoint injects into what the card says, so the driver's defences
//! (tag checks, timeouts, known-answer tests, fail-over) are tested against a card that lies,
//! stalls or vanishes.
//!
//! Faults count the responses the card produces, from 1: `drop_every: 5` drops the 5th, 10th,
//! … response. They act on the card-to-host stream only; the card itself stays correct, so
//! its registers and counters still say what it really did.

use std::num::NonZeroU32;
use std::time::Duration;

use verity_firmware::abi::{seal_response, RESPONSE_LEN};
use verity_firmware::Verdict;

/// What to do to the responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Hold every response this long before it leaves.
    pub delay: Duration,
    /// Drop every n-th response: its request is never answered.
    pub drop_every: Option<NonZeroU32>,
    /// Turn the verdict of every n-th response into its opposite (`Valid` and `Invalid`
    /// swap; anything else becomes `Valid`) on the way to the host: the record's check is
    /// not recomputed, as a bit flipped in transit.
    pub corrupt_every: Option<NonZeroU32>,
    /// Turn the verdict of every n-th response into its opposite and recompute the check, as
    /// a card whose logic is wrong: only the known-answer tests can catch it.
    pub forge_every: Option<NonZeroU32>,
    /// Add one to the tag of every n-th response, as a card that mixes up its requests: the
    /// check is recomputed over the wrong tag.
    pub wrong_tag_every: Option<NonZeroU32>,
    /// Send every n-th response twice.
    pub duplicate_every: Option<NonZeroU32>,
    /// After this many responses, send no more: the stream stops while the card still takes
    /// requests.
    pub stop_after: Option<u32>,
    /// After this many responses, the device disappears: its files are removed and its
    /// streams closed.
    pub vanish_after: Option<u32>,
}

/// What becomes of one response.
#[derive(Debug, PartialEq, Eq)]
pub enum Fate {
    /// Sent, possibly rewritten, `copies` times (0: dropped).
    Send {
        /// The record as it leaves.
        record: [u8; RESPONSE_LEN],
        /// How many times.
        copies: u8,
    },
    /// The device disappears instead.
    Vanish,
}

impl Faults {
    /// No fault: the card's responses leave as they are.
    pub const NONE: Faults = Faults {
        delay: Duration::ZERO,
        drop_every: None,
        corrupt_every: None,
        forge_every: None,
        wrong_tag_every: None,
        duplicate_every: None,
        stop_after: None,
        vanish_after: None,
    };

    /// The fate of response number `n` (from 1), `record`.
    pub fn apply(&self, n: u32, mut record: [u8; RESPONSE_LEN]) -> Fate {
        let hits = |every: Option<NonZeroU32>| every.is_some_and(|e| n.is_multiple_of(e.get()));
        let beyond = |limit: Option<u32>| limit.is_some_and(|l| n > l);
        if beyond(self.vanish_after) {
            return Fate::Vanish;
        }
        if beyond(self.stop_after) || hits(self.drop_every) {
            return Fate::Send { record, copies: 0 };
        }
        let (corrupt, forge) = (hits(self.corrupt_every), hits(self.forge_every));
        if (corrupt || forge) && record[8] == 0 {
            let flipped = match Verdict::from_code(record[9]) {
                Ok(Verdict::Valid) => Verdict::Invalid,
                _ => Verdict::Valid,
            };
            record[9] = flipped.code();
            if forge {
                seal_response(&mut record);
            }
        }
        if hits(self.wrong_tag_every) {
            let tag = u64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
            record[..8].copy_from_slice(&tag.wrapping_add(1).to_le_bytes());
            seal_response(&mut record);
        }
        let copies = if hits(self.duplicate_every) { 2 } else { 1 };
        Fate::Send { record, copies }
    }
}

#[cfg(test)]
mod tests {
    use verity_firmware::abi::{Response, ResponseError, Status};
    use verity_firmware::Tag;

    use super::*;

    fn record(verdict: Verdict) -> [u8; RESPONSE_LEN] {
        Response {
            tag: Tag::new(41),
            status: Status::Verdict(verdict),
            engine: 0,
            cycles: 0,
            txid: [0; 32],
        }
        .encode()
    }

    fn every(n: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(n)
    }

    #[test]
    fn each_fault_hits_the_responses_it_names() {
        let valid = record(Verdict::Valid);
        let sent = |record, copies| Fate::Send { record, copies };
        assert_eq!(Faults::NONE.apply(3, valid), sent(valid, 1));
        let drop = Faults {
            drop_every: every(3),
            ..Faults::NONE
        };
        assert_eq!(drop.apply(2, valid), sent(valid, 1));
        assert_eq!(drop.apply(6, valid), sent(valid, 0));
        let corrupt = Faults {
            corrupt_every: every(2),
            ..Faults::NONE
        };
        let Fate::Send {
            record: flipped, ..
        } = corrupt.apply(4, valid)
        else {
            panic!("sent");
        };
        assert_eq!(flipped[9], Verdict::Invalid.code());
        assert!(matches!(
            Response::decode(&flipped),
            Err(ResponseError::Check { .. })
        ));
        assert_eq!(corrupt.apply(3, valid), sent(valid, 1));
        let forge = Faults {
            forge_every: every(1),
            ..Faults::NONE
        };
        assert_eq!(forge.apply(1, valid), sent(record(Verdict::Invalid), 1));
        let wrong = Faults {
            wrong_tag_every: every(1),
            ..Faults::NONE
        };
        let Fate::Send { record: moved, .. } = wrong.apply(1, valid) else {
            panic!("sent");
        };
        assert_eq!(Response::decode(&moved).map(|r| r.tag), Ok(Tag::new(42)));
        let twice = Faults {
            duplicate_every: every(2),
            ..Faults::NONE
        };
        assert_eq!(twice.apply(2, valid), sent(valid, 2));
        let stop = Faults {
            stop_after: Some(2),
            ..Faults::NONE
        };
        assert_eq!(stop.apply(2, valid), sent(valid, 1));
        assert_eq!(stop.apply(3, valid), sent(valid, 0));
        let vanish = Faults {
            vanish_after: Some(0),
            ..Faults::NONE
        };
        assert_eq!(vanish.apply(1, valid), Fate::Vanish);
    }
}
