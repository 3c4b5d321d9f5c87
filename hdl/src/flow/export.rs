//! The blocks by name, and their Verilog with a top module of that name.

use super::harness::{Port, StreamBlock};
use super::shared_modules::share_identical_modules;
use crate::card::Card;
use crate::crc32::Crc32;
use crate::ecc_engine::{EccEngine, ECP5_CONTEXTS, ECP5_RATE, MAX_CONTEXTS};
use crate::field_linear::FieldLinear;
use crate::field_mul::{FieldMul, Rate};
use crate::image_check::ImageCheck;
use crate::instr_check::InstrCheck;
use crate::merkle::Merkle;
use crate::record_parser::RecordParser;
use crate::reg_block::RegBlock;
use crate::reg_file::RegFile;
use crate::request_hasher::RequestHasher;
use crate::scalar_unit::ScalarUnit;
use crate::sha2::{Sha256, Sha512};
use rust_hdl::prelude::{generate_verilog, Block as HdlBlock};
use std::fmt;
use std::str::FromStr;

/// A block that can be exported on its own (`verity hdl export --block NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Block {
    /// SHA-512 unit: padder and compression core.
    Sha512,
    /// SHA-256 unit: padder and compression core.
    Sha256,
    /// Merkle root over a batch of SHA-256 transaction ids.
    Merkle,
    /// The ECC engine's modular multiplier.
    FieldMul,
    /// The multiplier of the engine's ECP5 build: one operation every fourth cycle.
    FieldMulEcp5,
    /// The ECC engine's linear unit (add, subtract, reduce, select, compare).
    FieldLinear,
    /// The ECC engine's register file (four reads, two writes per cycle).
    RegFile,
    /// The ECC engine: 16 interleaved signature contexts on the field ALU.
    EccEngine,
    /// The ECC engine with the quarter-rate multiplier and 4 contexts, for ECP5 (its DSP
    /// budget and routing).
    EccEngineEcp5,
    /// The scalar unit: S check, reduction mod L and recoding into the engine's digits.
    ScalarUnit,
    /// The request record parser on the host-to-card stream.
    RecordParser,
    /// CRC-32 of the image upload.
    Crc32,
    /// The image upload's check of a code word.
    InstrCheck,
    /// The image upload's checker: header, CRC, code words, constants.
    ImageCheck,
    /// The register block (the control BAR).
    RegBlock,
    /// The request hasher: record buffer, SHA-512(R ‖ A ‖ M) and SHA-256(M).
    RequestHasher,
    /// The card: parser, one hasher, one lane (scalar unit, dispatcher, one engine of 16
    /// contexts), BAR.
    Card,
}

impl Block {
    /// Every exportable block.
    pub const ALL: [Block; 17] = [
        Block::Sha512,
        Block::Sha256,
        Block::Merkle,
        Block::FieldMul,
        Block::FieldMulEcp5,
        Block::FieldLinear,
        Block::RegFile,
        Block::EccEngine,
        Block::EccEngineEcp5,
        Block::ScalarUnit,
        Block::RecordParser,
        Block::Crc32,
        Block::InstrCheck,
        Block::ImageCheck,
        Block::RegBlock,
        Block::RequestHasher,
        Block::Card,
    ];

    /// The block's name: its file name (`NAME.v`) and its Verilog top module.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha512 => "sha512",
            Self::Sha256 => "sha256",
            Self::Merkle => "merkle",
            Self::FieldMul => "field_mul",
            Self::FieldMulEcp5 => "field_mul_ecp5",
            Self::FieldLinear => "field_linear",
            Self::RegFile => "reg_file",
            Self::EccEngine => "ecc_engine",
            Self::EccEngineEcp5 => "ecc_engine_ecp5",
            Self::ScalarUnit => "scalar_unit",
            Self::RecordParser => "record_parser",
            Self::Crc32 => "crc32",
            Self::InstrCheck => "instr_check",
            Self::ImageCheck => "image_check",
            Self::RegBlock => "reg_block",
            Self::RequestHasher => "request_hasher",
            Self::Card => "card",
        }
    }

    /// The block's Verilog, with the top module called [`Block::name`] and its sub-modules
    /// `NAME$…`.
    pub fn verilog(self) -> String {
        match self {
            Self::Sha512 => verilog_of(Sha512::default(), self.name()),
            Self::Sha256 => verilog_of(Sha256::default(), self.name()),
            Self::Merkle => verilog_of(Merkle::default(), self.name()),
            Self::FieldMul => verilog_of(FieldMul::default(), self.name()),
            Self::FieldMulEcp5 => verilog_of(FieldMul::new(ECP5_RATE), self.name()),
            Self::FieldLinear => verilog_of(FieldLinear::default(), self.name()),
            Self::RegFile => verilog_of(RegFile::default(), self.name()),
            Self::EccEngine => verilog_of(EccEngine::default(), self.name()),
            Self::EccEngineEcp5 => {
                verilog_of(EccEngine::new(ECP5_RATE, ECP5_CONTEXTS), self.name())
            }
            Self::ScalarUnit => verilog_of(ScalarUnit::default(), self.name()),
            Self::RecordParser => verilog_of(RecordParser::default(), self.name()),
            Self::Crc32 => verilog_of(Crc32::default(), self.name()),
            Self::InstrCheck => verilog_of(InstrCheck::default(), self.name()),
            Self::ImageCheck => verilog_of(ImageCheck::default(), self.name()),
            Self::RegBlock => verilog_of(RegBlock::default(), self.name()),
            Self::RequestHasher => verilog_of(RequestHasher::default(), self.name()),
            Self::Card => card_verilog(1, 1, 1),
        }
    }

    /// Whether the block has `in_ready` and `out_ready` (pipelines of the engine do not).
    pub fn back_pressure(self) -> bool {
        match self {
            Self::Sha512 => Sha512::BACK_PRESSURE,
            Self::Sha256 => Sha256::BACK_PRESSURE,
            Self::Merkle => Merkle::BACK_PRESSURE,
            Self::FieldMul | Self::FieldMulEcp5 => FieldMul::BACK_PRESSURE,
            Self::FieldLinear => FieldLinear::BACK_PRESSURE,
            Self::RegFile => RegFile::BACK_PRESSURE,
            Self::EccEngine | Self::EccEngineEcp5 => EccEngine::BACK_PRESSURE,
            Self::ScalarUnit => ScalarUnit::BACK_PRESSURE,
            Self::RecordParser => RecordParser::BACK_PRESSURE,
            Self::Crc32 => Crc32::BACK_PRESSURE,
            Self::InstrCheck => InstrCheck::BACK_PRESSURE,
            Self::ImageCheck => ImageCheck::BACK_PRESSURE,
            Self::RegBlock => RegBlock::BACK_PRESSURE,
            Self::RequestHasher => RequestHasher::BACK_PRESSURE,
            Self::Card => Card::BACK_PRESSURE,
        }
    }

    /// The data ports of the block's input and output streams.
    pub fn ports(self) -> (&'static [Port], &'static [Port]) {
        match self {
            Self::Sha512 => (Sha512::INPUTS, Sha512::OUTPUTS),
            Self::Sha256 => (Sha256::INPUTS, Sha256::OUTPUTS),
            Self::Merkle => (Merkle::INPUTS, Merkle::OUTPUTS),
            Self::FieldMul | Self::FieldMulEcp5 => (FieldMul::INPUTS, FieldMul::OUTPUTS),
            Self::FieldLinear => (FieldLinear::INPUTS, FieldLinear::OUTPUTS),
            Self::RegFile => (RegFile::INPUTS, RegFile::OUTPUTS),
            Self::EccEngine | Self::EccEngineEcp5 => (EccEngine::INPUTS, EccEngine::OUTPUTS),
            Self::ScalarUnit => (ScalarUnit::INPUTS, ScalarUnit::OUTPUTS),
            Self::RecordParser => (RecordParser::INPUTS, RecordParser::OUTPUTS),
            Self::Crc32 => (Crc32::INPUTS, Crc32::OUTPUTS),
            Self::InstrCheck => (InstrCheck::INPUTS, InstrCheck::OUTPUTS),
            Self::ImageCheck => (ImageCheck::INPUTS, ImageCheck::OUTPUTS),
            Self::RegBlock => (RegBlock::INPUTS, RegBlock::OUTPUTS),
            Self::RequestHasher => (RequestHasher::INPUTS, RequestHasher::OUTPUTS),
            Self::Card => (Card::INPUTS, Card::OUTPUTS),
        }
    }
}

/// The card's Verilog with `hashers` request hashers and `lanes` lanes of `engines` full-rate
/// engines of 16 contexts each, top module `card`: what `Block::Card` exports with one of
/// each, and `make synth BLOCK=card K=… LANES=… HASHERS=…` with K engines in all.
pub fn card_verilog(hashers: usize, lanes: usize, engines: usize) -> String {
    verilog_of(
        Card::new(hashers, lanes, engines, MAX_CONTEXTS, Rate::Full),
        Block::Card.name(),
    )
}

/// The ECP5 build of the engine (`ecc_engine_ecp5`: the quarter-rate multiplier) with `contexts`
/// contexts instead of [`ECP5_CONTEXTS`], for place-and-route on a part it fills.
pub fn ecp5_engine_verilog(contexts: usize) -> String {
    verilog_of(
        EccEngine::new(ECP5_RATE, contexts),
        Block::EccEngineEcp5.name(),
    )
}

/// A lint warning waived on one signal of one block, with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiver {
    /// Verilator's warning code.
    pub rule: &'static str,
    /// The signal it names.
    pub signal: &'static str,
    /// Why the warning does not point at a bug.
    pub reason: &'static str,
}

impl Block {
    /// The lint warnings waived on this block beyond [`super::tools::LINT_WAIVERS`].
    pub fn waivers(self) -> Vec<Waiver> {
        let waivers: &[Waiver] = match self {
            Self::Sha512
            | Self::Sha256
            | Self::FieldMul
            | Self::FieldMulEcp5
            | Self::FieldLinear
            | Self::RegFile
            | Self::RecordParser
            | Self::Crc32
            | Self::InstrCheck => &[],
            Self::Card => {
                return [Block::EccEngine, Block::ScalarUnit, Block::RequestHasher]
                    .into_iter()
                    .flat_map(Block::waivers)
                    .chain(IMAGE_CHECK.iter().copied())
                    .chain(CARD.iter().copied())
                    .collect();
            }
            Self::RequestHasher => &[Waiver {
                rule: "UNUSEDSIGNAL",
                signal: "sha*$out_tag",
                reason: "one record is hashed at a time, so the cores' tags are not needed",
            }],
            Self::RegBlock => REG_BLOCK,
            Self::ImageCheck => IMAGE_CHECK,
            Self::ScalarUnit => &[Waiver {
                rule: "UNUSEDSIGNAL",
                signal: "s_excess",
                reason: "only the carry out of S + 2^256 - L is used: it says S >= L",
            }],
            Self::EccEngine | Self::EccEngineEcp5 => &[
                Waiver {
                    rule: "UNOPTFLAT",
                    signal: "*.slots$*",
                    reason: "rust-hdl emits one always block per module, so Verilator sees a loop \
                             through each context (issue in, readiness out) that the logic does \
                             not have: a context's outputs are functions of its registers",
                },
                Waiver {
                    rule: "UNOPTFLAT",
                    signal: "*_pick$take",
                    reason: "the same for the arbiters: the grant does not depend on `take`, \
                             which only moves the turn",
                },
                Waiver {
                    rule: "UNOPTFLAT",
                    signal: "*_below$*",
                    reason: "the same inside an arbiter, which drives its prefix ORs' inputs and \
                             reads their outputs from one always block",
                },
                Waiver {
                    rule: "UNOPTFLAT",
                    signal: "*$any",
                    reason: "the same for the OR trees of one-hot selections (and the arbiters' \
                             prefix ORs): the engine drives their terms and reads their OR from \
                             one always block",
                },
                Waiver {
                    rule: "UNUSEDSIGNAL",
                    signal: "fetch_*$valid",
                    reason: "a fetch port takes every grant",
                },
                Waiver {
                    rule: "UNUSEDSIGNAL",
                    signal: "*granted_number$output*",
                    reason: "an arbiter's index is the OR of all the masked numbers (the prefix \
                             OR's `any`); its prefixes are not needed",
                },
                Waiver {
                    rule: "UNUSEDSIGNAL",
                    signal: "regs$out_valid",
                    reason: "the engine reads the register file every cycle",
                },
                Waiver {
                    rule: "UNUSEDSIGNAL",
                    signal: "mul_packet$any",
                    reason: "the multiplier lane uses the packet's registers, constant and \
                             destination; the rest is the linear unit's",
                },
                Waiver {
                    rule: "UNUSEDSIGNAL",
                    signal: "mul$out_tag",
                    reason: "the multiplier carries a 16-bit tag; results need 10 bits (context \
                             and register)",
                },
            ],
            Self::Merkle => &[Waiver {
                rule: "UNUSEDSIGNAL",
                signal: "core$out_tag",
                reason: "one hash is in flight at a time, so the core's tag is not needed",
            }],
        };
        waivers.to_vec()
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`Block::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no block named {0:?}; the blocks are {names}", names = Block::ALL.map(Block::name).join(", "))]
pub struct UnknownBlock(pub String);

impl FromStr for Block {
    type Err = UnknownBlock;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|block| block.name() == name)
            .ok_or_else(|| UnknownBlock(name.to_owned()))
    }
}

/// Verilog of `block` with rust-hdl's top module `top` (and sub-modules `top$…`) renamed to
/// `name`, each distinct sub-module written once.
pub fn verilog_of<B: HdlBlock>(mut block: B, name: &str) -> String {
    block.connect_all();
    share_identical_modules(&rename_top(&generate_verilog(&block), name), name)
}

fn rename_top(verilog: &str, name: &str) -> String {
    verilog
        .lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            let (lead, rest) = line.split_at(indent);
            // Module declarations and instantiations are the only places the top's name
            // appears: `module top(` / `module top$x(` and `top$x instance(`.
            if let Some(after) = rest.strip_prefix("module top") {
                if after.starts_with('(') || after.starts_with('$') || after.is_empty() {
                    return format!("{lead}module {name}{after}");
                }
            }
            if let Some(after) = rest.strip_prefix("top$") {
                return format!("{lead}{name}${after}");
            }
            line.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

const CONSTANT_CARRY: Waiver = Waiver {
    rule: "UNUSEDSIGNAL",
    signal: "value_excess",
    reason: "only the carry out of a constant + 2^256 - p is used: it says the constant is not \
             below p",
};

const UNITS_ALWAYS_READY: Waiver = Waiver {
    rule: "UNUSEDSIGNAL",
    signal: "*$in_ready",
    reason: "the CRC and code-word units take a word every cycle: their output is never held \
             back",
};

const RUNNING_CRC: Waiver = Waiver {
    rule: "UNUSEDSIGNAL",
    signal: "crc$out_valid",
    reason: "the running CRC is read whenever it is needed, not as a stream",
};

/// The image checker's waivers.
const IMAGE_CHECK: &[Waiver] = &[
    CONSTANT_CARRY,
    UNITS_ALWAYS_READY,
    RUNNING_CRC,
    Waiver {
        rule: "PINMISSING",
        signal: "entry",
        reason: "a side output the bench does not read (the register block passes it on)",
    },
];

/// The register block's: its image checker's, and its side ports, which the co-simulation
/// bench leaves unconnected.
const REG_BLOCK: &[Waiver] = &[
    CONSTANT_CARRY,
    UNITS_ALWAYS_READY,
    RUNNING_CRC,
    Waiver {
        rule: "PINMISSING",
        signal: "idle",
        reason: "the co-simulation bench drives the stream ports only: `idle` is 0 there, as in \
                 the rust-hdl run",
    },
    Waiver {
        rule: "PINMISSING",
        signal: "running",
        reason: "a side output the bench does not read",
    },
    Waiver {
        rule: "PINMISSING",
        signal: "reset",
        reason: "a side output the bench does not read",
    },
    Waiver {
        rule: "PINMISSING",
        signal: "image_*",
        reason: "side outputs the bench does not read (the image's words are checked by \
                 image_check's own co-simulation)",
    },
    Waiver {
        rule: "PINMISSING",
        signal: "ring*",
        reason: "side outputs the bench does not read (the doorbell's effect is the card's \
                 request window's, co-simulated in the card's sessions)",
    },
    Waiver {
        rule: "PINMISSING",
        signal: "doorbell_done",
        reason: "the co-simulation bench drives the stream ports only: `doorbell_done` is 0 \
                 there, as in the rust-hdl run",
    },
];

/// The card's own, beside its blocks'.
const CARD: &[Waiver] = &[
    Waiver {
        rule: "UNUSEDSIGNAL",
        signal: "engines$*$out_*",
        reason: "the card takes verdicts only from its engines: it never asks for a register or \
                 runs them in debug mode, so the value, kind and flags of their output go unread",
    },
    Waiver {
        rule: "UNOPTFLAT",
        signal: "*.lanes$*",
        reason: "rust-hdl emits one always block per module, so Verilator sees a loop through \
                 each lane (job in, job_ready out; response ready in, response out) that the \
                 logic does not have: a lane's outputs are functions of its registers",
    },
    Waiver {
        rule: "UNOPTFLAT",
        signal: "*.parser$*",
        reason: "the same for the record parser: the card drives its beat and reads its ready \
                 (a function of its output register and the hasher's state) in one always block",
    },
    Waiver {
        rule: "UNOPTFLAT",
        signal: "*.hashers$*",
        reason: "the same for the request hashers, whose beats the pool drives and whose ready \
                 it reads (a function of each hasher's state) in one always block",
    },
    Waiver {
        rule: "UNUSEDSIGNAL",
        signal: "*pick$index",
        reason: "responses and the hashers' jobs are merged by the arbiter's one-hot grant; its \
                 binary index is not needed",
    },
    Waiver {
        rule: "UNUSEDSIGNAL",
        signal: "ready_below$any",
        reason: "a record goes to the lowest free hasher (the prefix OR's outputs); whether any \
                 is free shows in the chosen one's ready",
    },
    Waiver {
        rule: "UNUSEDSIGNAL",
        signal: "regs$in_ready",
        reason: "the card keeps the register block always ready (its read data moves to a \
                 register of the card's), so every cycle's events count",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for block in Block::ALL {
            assert_eq!(block.name().parse::<Block>(), Ok(block));
        }
        assert!("sha1".parse::<Block>().is_err());
    }

    #[test]
    fn a_card_of_four_engines_holds_one_engine_module() {
        let verilog = card_verilog(2, 2, 2);
        let declared = |prefix: &str| {
            verilog
                .lines()
                .filter(|line| line.starts_with(&format!("module {prefix}")))
                .count()
        };
        assert_eq!(declared("card$lanes$0$engines$0("), 1);
        assert_eq!(declared("card$lanes$0$engines$1("), 0);
        assert_eq!(declared("card$lanes$1$engines$"), 0);
        assert_eq!(declared("card$hasher$hashers$1("), 0);
        // The lanes differ (each numbers its first engine), so both stay.
        assert_eq!(declared("card$lanes$1("), 1);
        let instances = verilog
            .lines()
            .filter(|line| {
                line.trim_start()
                    .starts_with("card$lanes$0$engines$0 engines$")
            })
            .count();
        assert_eq!(instances, 4);
    }

    #[test]
    fn top_module_takes_the_block_name() {
        let verilog = Block::Sha256.verilog();
        assert!(verilog.contains("module sha256("), "{verilog}");
        assert!(verilog.contains("module sha256$core("), "{verilog}");
        assert!(!verilog.contains("module top"), "{verilog}");
    }
}
