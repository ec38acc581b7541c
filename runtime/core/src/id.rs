//! Identifiers: execution ids (chosen by callers) and component hashes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest execution id accepted (bytes). Keeps DynamoDB keys and file names sane.
pub const MAX_EXECUTION_ID_LEN: usize = 200;

/// An id that is not acceptable, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid execution id {id:?}: {reason}")]
pub struct InvalidId {
    /// The rejected id.
    pub id: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A caller-chosen name for one execution. 1-200 bytes of printable
/// characters without whitespace or `#` (used as a key separator by stores).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExecutionId(String);

impl ExecutionId {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidId> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("it is empty")
        } else if id.len() > MAX_EXECUTION_ID_LEN {
            Some("it is longer than 200 bytes")
        } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("it contains whitespace or control characters")
        } else if id.contains('#') {
            Some("it contains '#'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(InvalidId { id, reason }),
            None => Ok(Self(id)),
        }
    }

    /// A fresh id for callers that do not choose one: `<prefix>-<ulid>`
    /// (the workflow's name, then a ULID: 48 bits of milliseconds and 80
    /// random bits, so ids sort by creation time and two callers in the
    /// same millisecond, on any machine, do not collide). A prefix that
    /// would make the id invalid is left out.
    pub fn generate(prefix: &str, ulid: ulid::Ulid) -> Self {
        let id = format!("{prefix}-{ulid}");
        match Self::new(id) {
            Ok(id) => id,
            Err(_) => Self(ulid.to_string()),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ExecutionId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<ExecutionId> for String {
    fn from(value: ExecutionId) -> Self {
        value.0
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The sha256 of a component's bytes, lower-case hex. Executions are pinned
/// to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ComponentHash(String);

impl ComponentHash {
    /// Accepts 64 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is not a component hash (64 lower-case hex digits)"
            ))
        }
    }

    /// The hash as hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for human output.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl TryFrom<String> for ComponentHash {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ComponentHash> for String {
    fn from(value: ComponentHash) -> Self {
        value.0
    }
}

impl fmt::Display for ComponentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_ids_are_validated_with_a_reason() {
        assert!(ExecutionId::new("swap-42").is_ok());
        assert_eq!(ExecutionId::new("").unwrap_err().reason, "it is empty");
        assert!(ExecutionId::new("a b").is_err());
        assert!(ExecutionId::new("a#b").is_err());
        assert!(ExecutionId::new("x".repeat(201)).is_err());
        let err = serde_json::from_str::<ExecutionId>("\"\"").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn generated_ids_are_the_prefix_and_a_ulid() {
        let early = ulid::Ulid::from_parts(1_000, 7);
        let late = ulid::Ulid::from_parts(1_001, 3);
        let (a, b) = (
            ExecutionId::generate("swap", early),
            ExecutionId::generate("swap", late),
        );
        assert_eq!(a.as_str(), format!("swap-{early}"));
        assert!(a < b, "ids sort by time");
        // A prefix that would make the id invalid is left out.
        assert_eq!(
            ExecutionId::generate("a b", early).as_str(),
            early.to_string()
        );
    }

    #[test]
    fn component_hashes_are_64_hex_digits() {
        let h = "a".repeat(64);
        assert_eq!(ComponentHash::parse(&h).unwrap().short(), "aaaaaaaaaaaa");
        assert!(ComponentHash::parse("abc").is_err());
        assert!(ComponentHash::parse(&"A".repeat(64)).is_err());
    }
}
