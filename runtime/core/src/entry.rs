//! Journal entries and their versioned encoding.
//!
//! An execution's journal is the ordered list of its entries: index 0 is
//! always [`Event::Started`]; a final entry ([`Event::Completed`] or
//! [`Event::Failed`]) closes it. Entries that belong to one guest operation
//! carry its sequence number `seq` (the handle the guest got back).
//!
//! Stored form (one JSON object per entry; the index is the store's key):
//! `{"v":1,"at":<ms>,"e":{"<kind>":{...}}}`. `v` is the
//! [`JOURNAL_FORMAT_VERSION`]; a reader refuses versions it does not know
//! instead of guessing.

use crate::{ComponentHash, ExecutionId, Failure, FailureKind, Payload, Timestamp};
use serde::{Deserialize, Serialize};

/// The encoding version written by this build.
pub const JOURNAL_FORMAT_VERSION: u8 = 1;

/// One journaled fact.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the journal, from 0.
    pub index: u32,
    /// When it was written (the driver's clock).
    pub at: Timestamp,
    /// What happened.
    pub event: Event,
}

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Event {
    /// The execution was created. Always entry 0.
    Started {
        /// Workflow name in the component.
        workflow: String,
        /// The workflow's input.
        input: Payload,
        /// The component the execution is pinned to.
        component: ComponentHash,
        /// Seed of the execution's deterministic random numbers.
        seed: u64,
        /// The run (1, then +1 at each continue-as-new).
        #[serde(default = "first_run", skip_serializing_if = "is_first_run")]
        run: u32,
        /// The parent execution and its operation, for a child execution.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentRef>,
    },
    /// An activity finished (successfully or for good).
    ActivityCompleted {
        /// Operation sequence number.
        seq: u32,
        /// Activity name.
        name: String,
        /// [`crate::input_hash`] of the input.
        input_hash: u64,
        /// Attempts made in all.
        attempts: u32,
        /// Output, or the last failure.
        result: Result<Payload, Failure>,
    },
    /// An activity attempt failed and the next attempt waits longer than the
    /// driver waits inline: the execution suspends until `retry_at`.
    ActivityRetrying {
        /// Operation sequence number.
        seq: u32,
        /// Activity name.
        name: String,
        /// [`crate::input_hash`] of the input.
        input_hash: u64,
        /// Attempts made so far.
        attempts: u32,
        /// When the next attempt may start.
        retry_at: Timestamp,
        /// The failure of the last attempt.
        failure: Failure,
    },
    /// A durable timer was started; the execution suspends until it fires.
    TimerStarted {
        /// Operation sequence number.
        seq: u32,
        /// Requested duration.
        duration_ms: u64,
        /// When it fires.
        fire_at: Timestamp,
    },
    /// A timer fired.
    TimerFired {
        /// Operation sequence number.
        seq: u32,
        /// Requested duration (checked on replay for timers that never
        /// journaled a start because they were waited inline).
        duration_ms: u64,
    },
    /// A signal was taken from the inbox and delivered.
    SignalReceived {
        /// Operation sequence number.
        seq: u32,
        /// Signal name.
        name: String,
        /// Signal payload.
        payload: Payload,
        /// The inbox item it consumed.
        inbox_id: String,
    },
    /// A child execution was created (or found, if it already existed).
    ChildStarted {
        /// Operation sequence number.
        seq: u32,
        /// The child's workflow.
        workflow: String,
        /// The child's execution id.
        child_id: ExecutionId,
        /// [`crate::input_hash`] of the child's input.
        input_hash: u64,
    },
    /// A child execution finished; its result came through the inbox.
    ChildCompleted {
        /// Operation sequence number.
        seq: u32,
        /// The child's execution id.
        child_id: ExecutionId,
        /// Its output or failure.
        result: Result<Payload, Failure>,
        /// The inbox item it consumed.
        inbox_id: String,
    },
    /// A cancel request was taken from the inbox and delivered.
    CancelRequested {
        /// Why.
        reason: String,
        /// The inbox item it consumed.
        inbox_id: String,
    },
    /// The workflow returned successfully. Final.
    Completed {
        /// Its output.
        output: Payload,
    },
    /// The workflow returned a failure or could not go on. Final.
    Failed {
        /// The failure.
        failure: Failure,
    },
    /// The workflow asked to continue as new: this run's journal is closed
    /// and the next run starts with `input`. Final for the run, not for the
    /// execution.
    ContinuedAsNew {
        /// The next run's input.
        input: Payload,
    },
}

/// A child's link to its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent execution.
    pub id: ExecutionId,
    /// The parent's operation that started the child.
    pub seq: u32,
}

fn first_run() -> u32 {
    1
}

fn is_first_run(run: &u32) -> bool {
    *run == 1
}

impl Event {
    /// The kebab-case kind name (`activity-completed`, ...).
    pub fn kind(&self) -> &'static str {
        self.into()
    }

    /// The operation sequence number, for entries that belong to one.
    pub fn seq(&self) -> Option<u32> {
        match self {
            Self::ActivityCompleted { seq, .. }
            | Self::ActivityRetrying { seq, .. }
            | Self::TimerStarted { seq, .. }
            | Self::TimerFired { seq, .. }
            | Self::SignalReceived { seq, .. }
            | Self::ChildStarted { seq, .. }
            | Self::ChildCompleted { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// A name to show: the workflow, activity or signal name.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Started { workflow, .. } => Some(workflow),
            Self::ActivityCompleted { name, .. }
            | Self::ActivityRetrying { name, .. }
            | Self::SignalReceived { name, .. } => Some(name),
            Self::ChildStarted { workflow, .. } => Some(workflow),
            Self::ChildCompleted { child_id, .. } => Some(child_id.as_str()),
            _ => None,
        }
    }

    /// Whether this entry closes the journal.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Completed { .. } | Self::Failed { .. } | Self::ContinuedAsNew { .. }
        )
    }

    /// A one-line summary of the entry's payload for human output.
    pub fn summary(&self, max: usize) -> String {
        match self {
            Self::Started { input, .. } => input.preview(max),
            Self::ActivityCompleted {
                result: Ok(out),
                attempts,
                ..
            } => {
                let tail = if *attempts > 1 {
                    format!(" ({attempts} attempts)")
                } else {
                    String::new()
                };
                format!("ok {}{tail}", out.preview(max))
            }
            Self::ActivityCompleted {
                result: Err(f),
                attempts,
                ..
            } => {
                format!(
                    "{} after {attempts} attempt(s): {}",
                    f.kind.as_str(),
                    trim(&f.message, max)
                )
            }
            Self::ActivityRetrying {
                attempts,
                retry_at,
                failure,
                ..
            } => format!(
                "attempt {attempts} failed ({}), retry at {retry_at}",
                trim(&failure.message, max)
            ),
            Self::TimerStarted {
                duration_ms,
                fire_at,
                ..
            } => {
                format!("{} until {fire_at}", human_duration(*duration_ms))
            }
            Self::TimerFired { duration_ms, .. } => human_duration(*duration_ms),
            Self::SignalReceived { payload, .. } => payload.preview(max),
            Self::CancelRequested { reason, .. } => trim(reason, max),
            Self::Completed { output } => output.preview(max),
            Self::ChildStarted { child_id, .. } => format!("child {child_id}"),
            Self::ChildCompleted {
                result: Ok(out), ..
            } => format!("ok {}", out.preview(max)),
            Self::ChildCompleted { result: Err(f), .. } => {
                format!("{}: {}", f.kind.as_str(), trim(&f.message, max))
            }
            Self::ContinuedAsNew { input } => format!("next run with {}", input.preview(max)),
            Self::Failed { failure } => {
                format!("{}: {}", failure.kind.as_str(), trim(&failure.message, max))
            }
        }
    }

    /// The status a final entry gives its execution.
    pub fn final_status(&self) -> Option<crate::Status> {
        match self {
            Self::Completed { .. } => Some(crate::Status::Completed),
            Self::Failed { failure } if failure.kind == FailureKind::Cancelled => {
                Some(crate::Status::Cancelled)
            }
            Self::Failed { .. } => Some(crate::Status::Failed),
            _ => None,
        }
    }
}

fn trim(s: &str, max: usize) -> String {
    Payload::from(s).preview(max)
}

/// `1500` -> `1.5s`, `90000` -> `1m30s`, `86400000` -> `1d`.
pub fn human_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        let s = ms as f64 / 1000.0;
        return if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            format!("{s:.1}s")
        };
    }
    let secs = ms / 1000;
    let (d, h, m, s) = (
        secs / 86_400,
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
    );
    let mut out = String::new();
    for (v, u) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if v > 0 {
            out.push_str(&format!("{v}{u}"));
        }
    }
    out
}

#[derive(Serialize)]
struct StoredRef<'a> {
    v: u8,
    at: Timestamp,
    e: &'a Event,
}

#[derive(Deserialize)]
struct Stored {
    v: u8,
    at: Timestamp,
    e: Event,
}

/// A journal entry that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal entry {index} cannot be decoded: {reason}")]
pub struct DecodeError {
    /// The entry's index.
    pub index: u32,
    /// What is wrong.
    pub reason: String,
}

/// Encodes an entry's body (everything but its index).
pub fn encode(entry: &Entry) -> Vec<u8> {
    serde_json::to_vec(&StoredRef {
        v: JOURNAL_FORMAT_VERSION,
        at: entry.at,
        e: &entry.event,
    })
    .expect("journal entries always serialize")
}

/// Decodes the entry stored at `index`.
pub fn decode(index: u32, bytes: &[u8]) -> Result<Entry, DecodeError> {
    // Most of a run: an activity's result, read without serde's machinery.
    if let Some(entry) = crate::entry_fast::decode(index, bytes) {
        return Ok(entry);
    }
    decode_with_serde(index, bytes)
}

/// [`decode`] by serde alone.
fn decode_with_serde(index: u32, bytes: &[u8]) -> Result<Entry, DecodeError> {
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| DecodeError {
        index,
        reason: format!("not a journal entry ({e})"),
    })?;
    if stored.v != JOURNAL_FORMAT_VERSION {
        return Err(DecodeError {
            index,
            reason: format!(
                "written in journal format v{}, this build reads v{JOURNAL_FORMAT_VERSION}: upgrade cairn",
                stored.v
            ),
        });
    }
    Ok(Entry {
        index,
        at: stored.at,
        event: stored.e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| serde_json::to_string(&f).unwrap()),
            Just("null".to_string()),
            Just("true".to_string()),
            Just("[]".to_string()),
            (any::<String>(), any::<u32>())
                .prop_map(|(k, v)| serde_json::json!({ k: [v, {"x": null}] }).to_string()),
            Just(r#"{"$bytes":"AAEC"}"#.to_string()),
        ]
    }

    /// The names users see (entry kinds, statuses, failure kinds, error
    /// codes) come from one table per enum: what serde writes and reads is
    /// what `kind`, `as_str` and `parse` say.
    #[test]
    fn each_name_is_the_same_in_serde_and_in_text() {
        let h = "a".repeat(64);
        let failure = r#"{"kind":"timeout","message":"m"}"#;
        let events = [
            (
                "started",
                format!(r#"{{"workflow":"w","input":1,"component":"{h}","seed":1}}"#),
            ),
            (
                "activity-completed",
                r#"{"seq":1,"name":"a","input_hash":1,"attempts":1,"result":{"Ok":1}}"#.into(),
            ),
            (
                "activity-retrying",
                format!(
                    r#"{{"seq":1,"name":"a","input_hash":1,"attempts":1,"retry_at":5,"failure":{failure}}}"#
                ),
            ),
            (
                "timer-started",
                r#"{"seq":1,"duration_ms":1,"fire_at":5}"#.into(),
            ),
            ("timer-fired", r#"{"seq":1,"duration_ms":1}"#.into()),
            (
                "signal-received",
                r#"{"seq":1,"name":"s","payload":1,"inbox_id":"i"}"#.into(),
            ),
            (
                "child-started",
                r#"{"seq":1,"workflow":"w","child_id":"c","input_hash":1}"#.into(),
            ),
            (
                "child-completed",
                format!(
                    r#"{{"seq":1,"child_id":"c","result":{{"Err":{failure}}},"inbox_id":"i"}}"#
                ),
            ),
            (
                "cancel-requested",
                r#"{"reason":"r","inbox_id":"i"}"#.into(),
            ),
            ("completed", r#"{"output":1}"#.into()),
            ("failed", format!(r#"{{"failure":{failure}}}"#)),
            ("continued-as-new", r#"{"input":1}"#.into()),
        ];
        for (kind, fields) in events {
            let event: Event = serde_json::from_str(&format!(r#"{{"{kind}":{fields}}}"#))
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(event.kind(), kind);
        }
        for name in <crate::Status as strum::VariantNames>::VARIANTS {
            let status = crate::Status::parse(name).unwrap();
            assert_eq!(status.as_str(), *name);
            assert_eq!(status.to_string(), *name);
            assert_eq!(serde_json::to_value(status).unwrap(), *name);
        }
        let kind: crate::FailureKind = serde_json::from_str(r#""non-retryable""#).unwrap();
        assert_eq!(kind.as_str(), "non-retryable");
        for (text, code) in [
            ("CRN100", crate::ErrorCode::NondeterministicOperation),
            ("CRN307", crate::ErrorCode::ActivityTimeout),
            ("CRN500", crate::ErrorCode::Internal),
        ] {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.to_string(), text);
            assert_eq!(serde_json::to_value(code).unwrap(), text);
            assert_eq!(
                serde_json::from_value::<crate::ErrorCode>(text.into()).unwrap(),
                code
            );
        }
        let err = serde_json::from_str::<crate::ErrorCode>(r#""CRN999""#).unwrap_err();
        assert!(err.to_string().contains("unknown error code"), "{err}");
    }

    fn completed_entry() -> impl Strategy<Value = Entry> {
        (
            any::<u64>(),
            any::<u32>(),
            any::<String>(),
            any::<u64>(),
            any::<u32>(),
            json_text(),
        )
            .prop_map(|(at, seq, name, input_hash, attempts, payload)| Entry {
                index: 7,
                at: Timestamp::from_millis(at),
                event: Event::ActivityCompleted {
                    seq,
                    name,
                    input_hash,
                    attempts,
                    result: Ok(Payload::from(payload.as_str())),
                },
            })
    }

    proptest! {
        /// The fast decode of activity results agrees with serde's on every
        /// entry the encoder writes, and answers for the plain ones.
        #[test]
        fn the_fast_decode_agrees_with_serde(entry in completed_entry()) {
            let bytes = encode(&entry);
            let slow = decode_with_serde(7, &bytes).unwrap();
            prop_assert_eq!(decode(7, &bytes).unwrap(), slow.clone());
            let fast = crate::entry_fast::decode(7, &bytes);
            if let Some(fast) = &fast {
                prop_assert_eq!(fast, &slow);
            }
            let Event::ActivityCompleted { name, result: Ok(p), .. } = &entry.event else { unreachable!() };
            let plain = !name.chars().any(|c| c == '"' || c == '\\' || c < '\u{20}')
                && !String::from_utf8_lossy(p.as_bytes()).contains("$bytes");
            prop_assert_eq!(fast.is_some(), plain, "{}", String::from_utf8_lossy(&bytes));
        }

        /// On damaged bytes it answers only where serde reads the same entry.
        #[test]
        fn the_fast_decode_never_accepts_what_serde_refuses(
            entry in completed_entry(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encode(&entry);
            let i = at.index(bytes.len());
            bytes[i] = byte;
            if let Some(fast) = crate::entry_fast::decode(7, &bytes) {
                prop_assert_eq!(decode_with_serde(7, &bytes), Ok(fast));
            }
        }
    }

    fn hash() -> ComponentHash {
        ComponentHash::parse(&"ab".repeat(32)).unwrap()
    }

    #[test]
    fn entries_round_trip_and_read_well() {
        let events = vec![
            Event::Started {
                workflow: "swap".into(),
                input: Payload::from(r#"{"a":"alice"}"#),
                component: hash(),
                seed: 7,
                run: 1,
                parent: None,
            },
            Event::Started {
                workflow: "county".into(),
                input: Payload::from("{}"),
                component: hash(),
                seed: 8,
                run: 3,
                parent: Some(ParentRef {
                    id: ExecutionId::new("bc-1").unwrap(),
                    seq: 4,
                }),
            },
            Event::ChildStarted {
                seq: 4,
                workflow: "county".into(),
                child_id: ExecutionId::new("bc-1/county/Kings").unwrap(),
                input_hash: 9,
            },
            Event::ChildCompleted {
                seq: 4,
                child_id: ExecutionId::new("bc-1/county/Kings").unwrap(),
                result: Ok(Payload::from("{}")),
                inbox_id: "child.bc-1/county/Kings".into(),
            },
            Event::ContinuedAsNew {
                input: Payload::from("{\"n\":3}"),
            },
            Event::ActivityCompleted {
                seq: 1,
                name: "withdraw".into(),
                input_hash: 42,
                attempts: 1,
                result: Ok(Payload::from("{}")),
            },
            Event::ActivityCompleted {
                seq: 2,
                name: "deposit".into(),
                input_hash: 43,
                attempts: 3,
                result: Err(Failure::new(FailureKind::NonRetryable, "no funds")),
            },
            Event::TimerStarted {
                seq: 3,
                duration_ms: 5000,
                fire_at: Timestamp::from_millis(99),
            },
            Event::TimerFired {
                seq: 3,
                duration_ms: 5000,
            },
            Event::SignalReceived {
                seq: 4,
                name: "approve".into(),
                payload: Payload::new(vec![1, 2]),
                inbox_id: "01J".into(),
            },
            Event::CancelRequested {
                reason: "user".into(),
                inbox_id: "01K".into(),
            },
            Event::Failed {
                failure: Failure::new(FailureKind::Cancelled, "cancelled"),
            },
        ];
        for (i, event) in events.into_iter().enumerate() {
            let e = Entry {
                index: i as u32,
                at: Timestamp::from_millis(1000 + i as u64),
                event,
            };
            let bytes = encode(&e);
            assert_eq!(
                decode(e.index, &bytes).unwrap(),
                e,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let e = Entry {
            index: 1,
            at: Timestamp::from_millis(5),
            event: Event::ActivityCompleted {
                seq: 1,
                name: "w".into(),
                input_hash: 1,
                attempts: 1,
                result: Ok(Payload::from(r#"{"ok":true}"#)),
            },
        };
        assert_eq!(
            String::from_utf8(encode(&e)).unwrap(),
            r#"{"v":1,"at":5,"e":{"activity-completed":{"seq":1,"name":"w","input_hash":1,"attempts":1,"result":{"Ok":{"ok":true}}}}}"#
        );
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused_with_the_index() {
        let err = decode(3, br#"{"v":9,"at":1,"e":{"completed":{"output":1}}}"#).unwrap_err();
        assert_eq!(err.index, 3);
        assert!(err.reason.contains("v9"), "{err}");
        let err = decode(4, b"\x00garbage").unwrap_err();
        assert!(err.to_string().contains("entry 4"), "{err}");
    }

    #[test]
    fn durations_read_like_a_human_wrote_them() {
        assert_eq!(human_duration(250), "250ms");
        assert_eq!(human_duration(1500), "1.5s");
        assert_eq!(human_duration(90_000), "1m30s");
        assert_eq!(human_duration(15 * 86_400_000), "15d");
    }
}
