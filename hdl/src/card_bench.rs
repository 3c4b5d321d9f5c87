//! The card's test bench: a host session as host-port beats ([`crate::card`]), and the
//! session's output taken apart into register values and response records.

use num_bigint::BigUint;
use verity_firmware::abi::RESPONSE_LEN;
use verity_firmware::regs::{self, Offset};

use crate::card::{host, out};
use crate::flow::harness::{Beat, Trace};
use crate::record_parser;

fn beat(kind: u8, addr: u32, data: BigUint, last: bool, bytes: usize) -> Beat {
    vec![
        BigUint::from(kind),
        BigUint::from(addr),
        data,
        BigUint::from(u8::from(last)),
        BigUint::from(bytes),
    ]
}

/// A BAR write.
pub fn write(offset: Offset, value: u32) -> Beat {
    beat(host::WRITE, offset.0, BigUint::from(value), false, 0)
}

/// A BAR read.
pub fn read(offset: Offset) -> Beat {
    beat(host::READ, offset.0, BigUint::default(), false, 0)
}

/// The host-to-card stream beats of `transfers`: the record parser's input beats
/// ([`record_parser::beats`]) as host-port beats.
pub fn stream(transfers: &[Vec<u8>]) -> Vec<Beat> {
    record_parser::beats(transfers)
        .into_iter()
        .map(|beat| {
            let [data, last, bytes]: [BigUint; 3] = beat
                .try_into()
                .expect("the parser's beats have three fields");
            vec![
                BigUint::from(host::STREAM),
                BigUint::default(),
                data,
                last,
                bytes,
            ]
        })
        .collect()
}

/// The BAR writes of submission `sequence` through the request window: `records` into its
/// half, then the doorbell.
pub fn window(sequence: u16, records: &[u8]) -> Vec<Beat> {
    let words = (records.len() / verity_firmware::abi::WORD) as u16;
    regs::window_writes(sequence, records)
        .map(|(offset, word)| write(offset, word))
        .chain(std::iter::once(write(
            regs::DOORBELL,
            regs::doorbell(sequence, words),
        )))
        .collect()
}

/// The registers a session reads before it streams, in order.
pub const IDENTITY: [Offset; 4] = [regs::ID, regs::VERSION, regs::ENGINES, regs::MAX_MESSAGE];

/// What the driver does at open: read the identity, upload `image` (its encoded bytes),
/// commit it, enable the card, and read `STATUS` and `ERRORS`.
pub fn open(image: &[u8]) -> Vec<Beat> {
    let mut beats: Vec<Beat> = IDENTITY.iter().map(|&r| read(r)).collect();
    beats.push(write(regs::IMAGE_LEN, image.len() as u32));
    beats.extend(regs::image_writes(image).map(|(offset, w)| write(offset, w)));
    beats.push(write(regs::IMAGE_COMMIT, 1));
    beats.push(write(regs::CONTROL, regs::control::ENABLE));
    beats.push(read(regs::STATUS));
    beats.push(read(regs::ERRORS));
    beats
}

/// A session's output: the values read, in order, and the response records, in the order
/// they came out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Register values.
    pub reads: Vec<u32>,
    /// Response records.
    pub responses: Vec<[u8; RESPONSE_LEN]>,
}

/// A read-data beat's value (`out_data[31:0]`).
pub fn read_value(data: &BigUint) -> u32 {
    data.iter_u32_digits().next().unwrap_or(0)
}

/// A response beat's record (`out_data`, byte 0 in bits 7:0).
pub fn record(data: &BigUint) -> [u8; RESPONSE_LEN] {
    let bytes = data.to_bytes_le();
    let mut record = [0u8; RESPONSE_LEN];
    let n = bytes.len().min(RESPONSE_LEN);
    record[..n].copy_from_slice(&bytes[..n]);
    record
}

/// Takes a trace of the card apart.
pub fn session(trace: &Trace) -> Session {
    let mut session = Session::default();
    for (_, beat) in &trace.outputs {
        if beat[0] == BigUint::from(out::READ_DATA) {
            session.reads.push(read_value(&beat[1]));
        } else {
            session.responses.push(record(&beat[1]));
        }
    }
    session
}
