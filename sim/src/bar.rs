//! The register block's behaviour, as `firmware::regs` defines it: identity, control, status,
//! sticky errors, counters, and the image upload window.
//!
//! The functional model keeps its registers here; the HDL register block implements the same
//! rules, and the tests compare the two through [`crate::Card`].

use verity_firmware::abi::WORD;
use verity_firmware::image::{Image, ImageError, IMAGE_LEN_MAX};
use verity_firmware::regs::{self, control, errors, status, Offset, REQUEST_HALF};
use verity_firmware::Verdict;

use crate::card::{StreamError, MAX_TRANSFER};

/// The counters the BAR exposes; each wraps at 2^32 as the card's 32-bit counters do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Request records taken (answered with a verdict or a record error).
    pub requests_in: u32,
    /// Response records produced.
    pub responses_out: u32,
    /// Records answered with a record error.
    pub records_rejected: u32,
    /// Transfers cut short by a record that could not be framed.
    pub framing_drops: u32,
    /// `Valid` verdicts.
    pub valid: u32,
    /// `Invalid` verdicts.
    pub invalid: u32,
    /// `Malformed` verdicts.
    pub malformed: u32,
}

impl Counters {
    /// Counts a verdict.
    pub fn verdict(&mut self, verdict: Verdict) {
        let counter = match verdict {
            Verdict::Valid => &mut self.valid,
            Verdict::Invalid => &mut self.invalid,
            Verdict::Malformed(_) => &mut self.malformed,
        };
        *counter = counter.wrapping_add(1);
    }
}

/// An image upload in progress: `IMAGE_LEN` announced the length, image window writes fill it.
#[derive(Debug, Default)]
struct Upload {
    /// Announced length; the buffer never grows past it.
    len: usize,
    bytes: Vec<u8>,
    /// More data was written than announced.
    overrun: bool,
}

/// What a register write asks the card around the register block to do.
#[derive(Debug)]
pub enum Action {
    /// Nothing beyond the register's own effect.
    None,
    /// `CONTROL.RESET`: drop everything in flight (the image stays).
    Reset,
    /// `IMAGE_COMMIT` accepted an image: run it from now on.
    Load(Box<Image>),
}

/// A submission through the request window that the card has not taken yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Submission {
    sequence: u16,
    words: u16,
}

/// The register block.
#[derive(Debug)]
pub struct Bar {
    engines: u16,
    contexts: u16,
    enabled: bool,
    image_ok: bool,
    errors: u32,
    upload: Upload,
    /// The request window's two halves.
    window: Vec<u8>,
    /// `DOORBELL` as last written, and `DOORBELL_DONE`.
    doorbell: u32,
    done: u16,
    /// Rung while the card was not running: taken when it runs.
    held: Option<Submission>,
    /// The counters.
    pub counters: Counters,
}

impl Bar {
    /// A register block for `engines` engines of `contexts` contexts, with no image.
    pub fn new(engines: u16, contexts: u16) -> Self {
        Self {
            engines,
            contexts,
            enabled: false,
            image_ok: false,
            errors: 0,
            upload: Upload::default(),
            window: vec![0; 2 * REQUEST_HALF],
            doorbell: 0,
            done: 0,
            held: None,
            counters: Counters::default(),
        }
    }

    /// The records of a submission through the request window, once the card runs: the
    /// transfer the card takes next (and `DOORBELL_DONE` moves on). The card calls it after
    /// every register write.
    pub fn release(&mut self) -> Option<Vec<u8>> {
        if !self.running() {
            return None;
        }
        let Submission { sequence, words } = self.held.take()?;
        self.done = sequence;
        let start = (sequence as usize & 1) * REQUEST_HALF;
        Some(self.window[start..start + usize::from(words) * WORD].to_vec())
    }

    /// The card takes requests: a good image is committed and `ENABLE` is set.
    pub fn running(&self) -> bool {
        self.enabled && self.image_ok
    }

    /// Whether a host-to-card transfer of `len` bytes may go in: within one DMA transfer, to a
    /// running card.
    pub fn admit(&self, len: usize) -> Result<(), StreamError> {
        if len > MAX_TRANSFER {
            return Err(StreamError::TooLarge(len));
        }
        if !self.running() {
            return Err(StreamError::NotRunning);
        }
        Ok(())
    }

    /// Sets sticky error bits (`firmware::regs::errors`).
    pub fn raise(&mut self, bits: u32) {
        self.errors |= bits;
    }

    /// Reads a register; `idle` is whether no request is in flight.
    pub fn read(&self, offset: Offset, idle: bool) -> u32 {
        let c = &self.counters;
        match offset {
            regs::ID => regs::ID_VALUE,
            regs::VERSION => regs::version_value(),
            regs::CONTROL if self.enabled => control::ENABLE,
            regs::STATUS => {
                let bit = |on: bool, bit: u32| if on { bit } else { 0 };
                bit(self.image_ok, status::IMAGE_OK)
                    | bit(self.running(), status::RUNNING)
                    | bit(idle, status::IDLE)
            }
            regs::ERRORS => self.errors,
            regs::ENGINES => u32::from(self.engines) | (u32::from(self.contexts) << 16),
            regs::MAX_MESSAGE => verity_firmware::abi::MAX_MESSAGE_LEN as u32,
            regs::REQUESTS_IN => c.requests_in,
            regs::RESPONSES_OUT => c.responses_out,
            regs::RECORDS_REJECTED => c.records_rejected,
            regs::FRAMING_DROPS => c.framing_drops,
            regs::VALID => c.valid,
            regs::INVALID => c.invalid,
            regs::MALFORMED => c.malformed,
            regs::IMAGE_LEN => self.upload.len as u32,
            regs::IMAGE_CRC => Image::checksum(&self.upload.bytes),
            regs::DOORBELL => self.doorbell,
            regs::DOORBELL_DONE => u32::from(self.done),
            _ => 0,
        }
    }

    /// Writes a register and says what the card must do about it.
    pub fn write(&mut self, offset: Offset, value: u32) -> Action {
        match offset {
            regs::CONTROL => {
                self.enabled = value & control::ENABLE != 0;
                if value & control::CLEAR_COUNTERS != 0 {
                    self.counters = Counters::default();
                }
                if value & control::CLEAR_ERRORS != 0 {
                    self.errors = 0;
                }
                if value & control::RESET != 0 {
                    if let Some(held) = self.held.take() {
                        self.done = held.sequence;
                    }
                    return Action::Reset;
                }
            }
            regs::IMAGE_LEN => {
                // A new upload: the running image is no longer the committed one.
                self.image_ok = false;
                let len = value as usize;
                self.upload = Upload {
                    len,
                    bytes: Vec::new(),
                    overrun: len > IMAGE_LEN_MAX,
                };
                if !self.upload.overrun {
                    self.upload.bytes.reserve_exact(len);
                }
            }
            offset if regs::in_image_window(offset) => {
                // Taken in arrival order, whatever the offset, as the card takes them.
                let upload = &mut self.upload;
                let room = upload.len.saturating_sub(upload.bytes.len());
                if upload.overrun || room == 0 {
                    upload.overrun = true;
                } else {
                    let word = value.to_le_bytes();
                    upload.bytes.extend_from_slice(&word[..room.min(4)]);
                }
            }
            regs::IMAGE_COMMIT if value & 1 != 0 => return self.commit(),
            regs::DOORBELL if value >> 16 != self.doorbell >> 16 => {
                self.doorbell = value;
                let submission = Submission {
                    sequence: (value >> 16) as u16,
                    words: value as u16,
                };
                if usize::from(submission.words) * WORD > REQUEST_HALF {
                    // No record extent can be trusted: nothing is taken.
                    self.counters.framing_drops = self.counters.framing_drops.wrapping_add(1);
                    self.raise(errors::FRAMING);
                    self.done = submission.sequence;
                } else {
                    self.held = Some(submission);
                }
            }
            offset if regs::in_request_window(offset) => {
                let at = (offset.0 - regs::REQUEST_WINDOW.0) as usize & !3;
                self.window[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
            _ => {}
        }
        Action::None
    }

    fn commit(&mut self) -> Action {
        let upload = &self.upload;
        let decoded = if upload.overrun || upload.bytes.len() != upload.len {
            Err(ImageError::Size(upload.bytes.len()))
        } else {
            Image::decode(&upload.bytes)
        };
        match decoded {
            Ok(image) => {
                self.image_ok = true;
                Action::Load(Box::new(image))
            }
            Err(error) => {
                self.image_ok = false;
                self.raise(match error {
                    ImageError::Checksum { .. } => errors::IMAGE_CHECKSUM,
                    _ => errors::IMAGE_HEADER,
                });
                Action::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use verity_firmware::program::ed25519_verify;

    use super::*;

    fn upload(bar: &mut Bar, bytes: &[u8]) -> Action {
        bar.write(regs::IMAGE_LEN, bytes.len() as u32);
        for (offset, word) in regs::image_writes(bytes) {
            bar.write(offset, word);
        }
        bar.write(regs::IMAGE_COMMIT, 1)
    }

    fn image() -> Vec<u8> {
        Image::new(ed25519_verify()).encode()
    }

    #[test]
    fn a_good_image_loads_and_enable_runs_it() {
        let mut bar = Bar::new(2, 16);
        bar.write(regs::CONTROL, control::ENABLE);
        assert!(!bar.running(), "enable without an image does nothing");
        let bytes = image();
        assert!(matches!(upload(&mut bar, &bytes), Action::Load(_)));
        assert_eq!(bar.read(regs::IMAGE_CRC, true), Image::checksum(&bytes));
        assert!(bar.running());
        assert_eq!(
            bar.read(regs::STATUS, true),
            status::IMAGE_OK | status::RUNNING | status::IDLE
        );
        assert_eq!(bar.read(regs::ENGINES, true), 2 | 16 << 16);
        assert_eq!(bar.read(regs::ERRORS, true), 0);
    }

    #[test]
    fn a_bad_checksum_or_length_is_refused_and_flagged() {
        let mut bar = Bar::new(1, 16);
        bar.write(regs::CONTROL, control::ENABLE);
        let mut bytes = image();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(upload(&mut bar, &bytes), Action::None));
        assert!(!bar.running());
        assert_eq!(bar.read(regs::ERRORS, true), errors::IMAGE_CHECKSUM);
        bar.write(regs::ERRORS, errors::IMAGE_CHECKSUM);
        assert_eq!(
            bar.read(regs::ERRORS, true),
            errors::IMAGE_CHECKSUM,
            "read only"
        );
        bar.write(regs::CONTROL, control::CLEAR_ERRORS);
        assert_eq!(bar.read(regs::ERRORS, true), 0, "cleared by CONTROL");
        assert_eq!(bar.read(regs::CONTROL, true), 0, "self-clearing");

        // Announce fewer bytes than are written: an overrun, refused as a header error.
        let good = image();
        bar.write(regs::IMAGE_LEN, good.len() as u32 - 4);
        for (offset, word) in regs::image_writes(&good) {
            bar.write(offset, word);
        }
        assert!(matches!(bar.write(regs::IMAGE_COMMIT, 1), Action::None));
        assert_eq!(bar.read(regs::ERRORS, true), errors::IMAGE_HEADER);

        // An announced length beyond any image allocates nothing and fails at commit.
        bar.write(regs::IMAGE_LEN, u32::MAX);
        assert!(matches!(bar.write(regs::IMAGE_COMMIT, 1), Action::None));
        assert!(!bar.running());
    }

    #[test]
    fn a_new_upload_stops_the_card_until_committed() {
        let mut bar = Bar::new(1, 16);
        bar.write(regs::CONTROL, control::ENABLE);
        upload(&mut bar, &image());
        assert!(bar.running());
        bar.write(regs::IMAGE_LEN, 64);
        assert!(!bar.running());
        assert_eq!(bar.read(regs::STATUS, false) & status::IMAGE_OK, 0);
    }

    #[test]
    fn a_doorbell_hands_over_its_half_of_the_window_once_the_card_runs() {
        let mut bar = Bar::new(1, 16);
        let half = regs::request_half(1);
        for i in 0..32u32 {
            bar.write(Offset(half.0 + 4 * i), i);
        }
        bar.write(regs::DOORBELL, regs::doorbell(1, 2));
        assert_eq!(bar.release(), None, "not running: held");
        assert_eq!(bar.read(regs::DOORBELL_DONE, true), 0);
        assert!(matches!(upload(&mut bar, &image()), Action::Load(_)));
        bar.write(regs::CONTROL, control::ENABLE);
        let taken = bar.release().expect("running: taken");
        let want: Vec<u8> = (0..32u32).flat_map(u32::to_le_bytes).collect();
        assert_eq!(taken, want);
        assert_eq!(bar.read(regs::DOORBELL_DONE, true), 1);
        assert_eq!(bar.release(), None, "once");
        // The same sequence again is not a new submission.
        bar.write(regs::DOORBELL, regs::doorbell(1, 2));
        assert_eq!(bar.release(), None);
        // Sequence 2 uses the other half.
        bar.write(regs::request_half(2), 0xaa);
        bar.write(regs::DOORBELL, regs::doorbell(2, 1));
        assert_eq!(bar.release().expect("taken")[0], 0xaa);
        // Longer than a half: nothing taken, a framing drop, acknowledged.
        bar.write(regs::DOORBELL, regs::doorbell(3, 257));
        assert_eq!(bar.release(), None);
        assert_eq!(bar.counters.framing_drops, 1);
        assert_eq!(bar.read(regs::ERRORS, true), errors::FRAMING);
        assert_eq!(bar.read(regs::DOORBELL_DONE, true), 3);
        // A reset drops what is held and acknowledges it.
        bar.write(regs::CONTROL, 0);
        bar.write(regs::DOORBELL, regs::doorbell(4, 1));
        bar.write(regs::CONTROL, control::RESET);
        assert_eq!(bar.read(regs::DOORBELL_DONE, true), 4);
        bar.write(regs::CONTROL, control::ENABLE);
        assert_eq!(bar.release(), None);
    }

    #[test]
    fn control_actions_self_clear_and_counters_clear() {
        let mut bar = Bar::new(1, 16);
        bar.counters.verdict(Verdict::Valid);
        bar.counters.requests_in = 3;
        assert!(matches!(
            bar.write(regs::CONTROL, control::ENABLE | control::CLEAR_COUNTERS),
            Action::None
        ));
        assert_eq!(bar.read(regs::CONTROL, true), control::ENABLE);
        assert_eq!(bar.counters, Counters::default());
        assert!(matches!(
            bar.write(regs::CONTROL, control::ENABLE | control::RESET),
            Action::Reset
        ));
        assert_eq!(bar.read(regs::CONTROL, true), control::ENABLE);
        assert_eq!(bar.read(regs::ID, true), regs::ID_VALUE);
        assert_eq!(bar.read(regs::IMAGE_WINDOW, true), 0, "write-only reads 0");
        assert_eq!(
            bar.read(regs::IMAGE_COMMIT, true),
            0,
            "a commit is checked at once"
        );
        bar.write(regs::ID, 0);
        assert_eq!(
            bar.read(regs::ID, true),
            regs::ID_VALUE,
            "read-only ignores writes"
        );
    }
}
