//! The step's vocabulary: where a proposed patch applies, what became of it, why a step or a
//! patch was rejected, and the gate's decision.
//!
//! Every type serializes to the words the journal has always used (`"merged"`, `"structure"`,
//! `"no_batch_gain"`, `{"decision": "rejected", "reason": ...}`), so journals and checkpoints keep
//! their bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a step, or one proposed patch, was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The candidate did not beat the current network on the step's failing examples (`no_batch_gain`).
    NoBatchGain,
    /// The candidate's validation score does not pass the acceptance rule (`no_validation_gain`).
    NoValidationGain,
    /// The optimiser call that should have proposed the patch failed (`call_failed`).
    CallFailed,
    /// The patch has no op, or nothing was merged (`empty`).
    Empty,
    /// No patch could be read from the answer (`unparsable`).
    Unparsable,
    /// An op name the patch language does not have (`unknown_op`).
    UnknownOp,
    /// A layer or agent id the network does not have (`unknown_id`).
    UnknownId,
    /// A limit or an invariant of the network is broken; the rule's name (`invariant:<rule>`).
    Invariant(String),
}

impl Reason {
    /// The reason as the journal writes it.
    pub fn as_str(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::NoBatchGain => "no_batch_gain".into(),
            Self::NoValidationGain => "no_validation_gain".into(),
            Self::CallFailed => "call_failed".into(),
            Self::Empty => "empty".into(),
            Self::Unparsable => "unparsable".into(),
            Self::UnknownOp => "unknown_op".into(),
            Self::UnknownId => "unknown_id".into(),
            Self::Invariant(rule) => format!("invariant:{rule}").into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "no_batch_gain" => Self::NoBatchGain,
            "no_validation_gain" => Self::NoValidationGain,
            "call_failed" => Self::CallFailed,
            "empty" => Self::Empty,
            "unparsable" => Self::Unparsable,
            "unknown_op" => Self::UnknownOp,
            "unknown_id" => Self::UnknownId,
            other => match other.strip_prefix("invariant:") {
                Some(rule) => Self::Invariant(rule.to_string()),
                None => return Err(format!("unknown rejection reason `{other}`")),
            },
        })
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The gate's decision on a step (or, with the per-layer gate, on one patch), and the outcome a
/// momentum entry remembers. In the journal: `{"decision": "accepted"}` or
/// `{"decision": "rejected", "reason": "no_validation_gain"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Accepted,
    Rejected { reason: Reason },
}

impl Decision {
    /// A rejection for `reason`.
    pub fn rejected(reason: Reason) -> Self {
        Self::Rejected { reason }
    }

    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted)
    }

    /// The word the per-layer gate records: `accepted`, or the reason.
    pub fn word(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Accepted => "accepted".into(),
            Self::Rejected { reason } => reason.as_str(),
        }
    }
}

/// [`Decision`] tagged `outcome` (how a momentum entry stores it).
pub(crate) mod as_outcome {
    use super::{Decision, Reason};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "outcome", rename_all = "snake_case")]
    enum Outcome {
        Accepted,
        Rejected { reason: Reason },
    }

    pub fn serialize<S: Serializer>(d: &Decision, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Decision::Accepted => Outcome::Accepted,
            Decision::Rejected { reason } => Outcome::Rejected { reason: reason.clone() },
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decision, D::Error> {
        Ok(match Outcome::deserialize(d)? {
            Outcome::Accepted => Decision::Accepted,
            Outcome::Rejected { reason } => Decision::Rejected { reason },
        })
    }
}

/// An optional [`Decision`] as one word: `accepted`, or the reason (the per-layer gate's record).
pub(crate) mod as_word {
    use super::{Decision, Reason};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Decision>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.word()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decision>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|w| match w.as_str() {
                "accepted" => Ok(Decision::Accepted),
                other => other.parse::<Reason>().map(Decision::rejected).map_err(serde::de::Error::custom),
            })
            .transpose()
    }
}

/// Where a proposed patch applies: one layer (a local gradient's patch) or the whole network (the
/// structure call). In the journal: the layer id, or `structure`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentScope {
    Layer(String),
    Structure,
}

impl ComponentScope {
    /// The layer id, for a layer's patch.
    pub fn layer(&self) -> Option<&str> {
        match self {
            Self::Layer(id) => Some(id),
            Self::Structure => None,
        }
    }

    /// The scope as the journal writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Layer(id) => id,
            Self::Structure => "structure",
        }
    }
}

impl fmt::Display for ComponentScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ComponentScope {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ComponentScope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ComponentScope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(if s == "structure" { Self::Structure } else { Self::Layer(s) })
    }
}

/// What the merge made of one proposed patch: merged into the step's patch, or rejected with a
/// reason. In the journal: `merged`, or the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentStatus {
    Merged,
    Rejected(Reason),
}

impl ComponentStatus {
    pub fn is_merged(&self) -> bool {
        matches!(self, Self::Merged)
    }

    /// The status as the journal writes it.
    pub fn as_str(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Merged => "merged".into(),
            Self::Rejected(reason) => reason.as_str(),
        }
    }
}

impl fmt::Display for ComponentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl PartialEq<&str> for ComponentStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ComponentStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for ComponentStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "merged" {
            return Ok(Self::Merged);
        }
        s.parse().map(Self::Rejected).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for word in ["no_batch_gain", "no_validation_gain", "call_failed", "empty", "unparsable", "unknown_op"] {
            let reason: Reason = word.parse().unwrap();
            assert_eq!(reason.to_string(), word);
        }
        assert_eq!("invariant:placeholder".parse::<Reason>().unwrap(), Reason::Invariant("placeholder".into()));
        assert!("whatever".parse::<Reason>().is_err());
        let d = Decision::rejected(Reason::NoValidationGain);
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"decision":"rejected","reason":"no_validation_gain"}"#);
        let status = ComponentStatus::Rejected(Reason::Invariant("answer_format".into()));
        assert_eq!(serde_json::to_string(&status).unwrap(), r#""invariant:answer_format""#);
        assert_eq!(serde_json::from_str::<ComponentStatus>(r#""merged""#).unwrap(), ComponentStatus::Merged);
        assert_eq!(serde_json::to_string(&ComponentScope::Structure).unwrap(), r#""structure""#);
    }
}
