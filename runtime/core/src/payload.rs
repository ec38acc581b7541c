//! Payloads: the bytes that flow between callers, workflows and activities.
//!
//! The SDK encodes payloads as JSON, so the journal stores JSON payloads as
//! JSON (readable in `cairn history`, the DynamoDB console or `sqlite3`) and
//! anything else as `{"$bytes": "<base64>"}`. A JSON payload that itself is a
//! one-key `$bytes` object is stored in the base64 form too, so decoding is
//! never ambiguous.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;

/// Opaque payload bytes (JSON by convention).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Payload(Vec<u8>);

impl Payload {
    /// Wraps bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// Serializes `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        Self(serde_json::to_vec(value).expect("serializing to a Vec cannot fail"))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Takes the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short, single-line rendering for human output (at most `max` chars).
    pub fn preview(&self, max: usize) -> String {
        let text = match std::str::from_utf8(&self.0) {
            Ok(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
            Err(_) => format!("<{} bytes>", self.0.len()),
        };
        if text.chars().count() > max {
            let cut: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{cut}…")
        } else {
            text
        }
    }

    /// The payload as a JSON value: itself when it is JSON, else
    /// `{"$bytes": base64}`.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("payload serializes")
    }

    fn as_plain_json(&self) -> Option<&RawValue> {
        let raw: &RawValue = serde_json::from_slice(&self.0).ok()?;
        // Whitespace around the value would be lost in the stored form, so
        // such a payload is stored as bytes, to come back byte for byte.
        if raw.get().len() != self.0.len() || is_bytes_object(raw.get()) {
            None
        } else {
            Some(raw)
        }
    }
}

fn is_bytes_object(json: &str) -> bool {
    let t = json.trim_start();
    t.starts_with('{')
        && t.contains("$bytes")
        && serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t)
            .map(|m| m.len() == 1 && m.contains_key("$bytes"))
            .unwrap_or(false)
}

impl From<Vec<u8>> for Payload {
    fn from(value: Vec<u8>) -> Self {
        Self(value)
    }
}

impl From<&str> for Payload {
    fn from(value: &str) -> Self {
        Self(value.as_bytes().to_vec())
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({})", self.preview(80))
    }
}

#[derive(Serialize, Deserialize)]
struct Bytes {
    #[serde(rename = "$bytes")]
    bytes: String,
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_plain_json() {
            Some(raw) => raw.serialize(s),
            None => Bytes {
                bytes: STANDARD.encode(&self.0),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        let text = raw.get();
        if is_bytes_object(text) {
            let b: Bytes = serde_json::from_str(text).map_err(D::Error::custom)?;
            let bytes = STANDARD.decode(b.bytes).map_err(D::Error::custom)?;
            Ok(Self(bytes))
        } else {
            // The raw text's own allocation becomes the payload: no copy on
            // every journal entry decoded.
            Ok(Self(Box::<str>::from(raw).into_string().into_bytes()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(p: &Payload) -> Payload {
        let s = serde_json::to_string(p).unwrap();
        serde_json::from_str(&s).unwrap()
    }

    #[test]
    fn json_payloads_are_stored_as_json() {
        let p = Payload::from(r#"{"a":1,"b":[true,null]}"#);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"a":1,"b":[true,null]}"#
        );
        assert_eq!(roundtrip(&p), p);
    }

    #[test]
    fn binary_and_ambiguous_payloads_round_trip_through_base64() {
        for p in [
            Payload::new(vec![0, 159, 146, 150]),
            Payload::from(r#"{"$bytes":"AAAA"}"#),
            Payload::from(""),
            Payload::from("not json"),
            Payload::from(" 0"),
            Payload::from("[1]\n"),
        ] {
            let s = serde_json::to_string(&p).unwrap();
            assert!(s.contains("$bytes"), "{s}");
            assert_eq!(roundtrip(&p), p);
        }
    }

    #[test]
    fn preview_is_short_and_single_line() {
        let p = Payload::from("{\n  \"name\": \"a very long value that goes on\"\n}");
        assert_eq!(p.preview(20), "{ \"name\": \"a very l…");
    }
}
