//! Evidence of misbehaviour: two conflicting messages a validator signed for one height and
//! round, as the engine hands them over when it finalizes a height. Each replica stores what
//! it saw in its block log (`GET /v1/evidence`); the signatures make it provable to anyone.

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_consensus::MisbehaviorEvidence;
use malachitebft_core_types::{NilOrVal, SignedProposal, SignedVote, VoteType};
use serde::{Deserialize, Serialize};

use super::context::{Address, VerityContext};

/// One equivocation.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Misbehaviour {
    /// Two votes of one kind for one height and round, for different values.
    DoubleVote(SignedVote<VerityContext>, SignedVote<VerityContext>),
    /// Two proposals for one height and round.
    DoubleProposal(SignedProposal<VerityContext>, SignedProposal<VerityContext>),
}

/// Evidence as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceView {
    /// The height.
    pub height: u64,
    /// The round.
    pub round: i64,
    /// The validator that signed both.
    pub validator: String,
    /// `double_prevote`, `double_precommit` or `double_proposal`.
    pub kind: String,
    /// The two values it signed for (`nil` for a nil vote).
    pub values: [String; 2],
}

fn value(v: &NilOrVal<super::context::BlockId>) -> String {
    match v {
        NilOrVal::Nil => "nil".to_owned(),
        NilOrVal::Val(id) => id.to_string(),
    }
}

impl Misbehaviour {
    /// Every equivocation in what the engine collected, votes first, each in address order.
    pub fn all(evidence: &MisbehaviorEvidence<VerityContext>) -> Vec<Self> {
        let votes = evidence.votes.iter().flat_map(|(_, pairs)| {
            pairs
                .iter()
                .map(|(a, b)| Self::DoubleVote(a.clone(), b.clone()))
        });
        let proposals = evidence.proposals.iter().flat_map(|(_, pairs)| {
            pairs
                .iter()
                .map(|(a, b)| Self::DoubleProposal(a.clone(), b.clone()))
        });
        votes.chain(proposals).collect()
    }

    /// Who misbehaved.
    pub fn offender(&self) -> Address {
        match self {
            Self::DoubleVote(a, _) => a.message.voter,
            Self::DoubleProposal(a, _) => a.message.proposer,
        }
    }

    /// How the API shows it.
    pub fn view(&self) -> EvidenceView {
        match self {
            Self::DoubleVote(a, b) => EvidenceView {
                height: a.message.height.0,
                round: a.message.round.as_i64(),
                validator: self.offender().to_string(),
                kind: match a.message.kind {
                    VoteType::Prevote => "double_prevote",
                    VoteType::Precommit => "double_precommit",
                }
                .to_owned(),
                values: [value(&a.message.value), value(&b.message.value)],
            },
            Self::DoubleProposal(a, b) => EvidenceView {
                height: a.message.height.0,
                round: a.message.round.as_i64(),
                validator: self.offender().to_string(),
                kind: "double_proposal".to_owned(),
                values: [a.message.value.to_string(), b.message.value.to_string()],
            },
        }
    }
}
