//! Test helpers shared by the crates' tests: a journal builder.
//!
//! ```
//! use cairn_core::testing::JournalBuilder;
//! let journal = JournalBuilder::new("swap", br#"{"a":"alice"}"#)
//!     .activity_ok(1, "withdraw", b"{}", br#"{"tx":1}"#)
//!     .timer_fired(2, 1000)
//!     .completed(b"{}")
//!     .build();
//! assert_eq!(journal.len(), 4);
//! ```

use crate::{ComponentHash, Entry, Event, Failure, Payload, Timestamp, input_hash};

/// The component hash builders use unless told otherwise.
pub fn test_component() -> ComponentHash {
    ComponentHash::parse(&"c0".repeat(32)).expect("valid hash")
}

/// Builds journals entry by entry; each entry is 1 s after the previous one,
/// starting at [`JournalBuilder::T0`].
#[derive(Debug, Clone)]
pub struct JournalBuilder {
    entries: Vec<Entry>,
}

impl JournalBuilder {
    /// Time of the `started` entry: 2026-01-01T00:00:00Z.
    pub const T0: Timestamp = Timestamp::from_millis(1_767_225_600_000);

    /// A journal whose entry 0 starts `workflow` with `input`.
    pub fn new(workflow: &str, input: &[u8]) -> Self {
        let mut b = Self {
            entries: Vec::new(),
        };
        b.push(Event::Started {
            workflow: workflow.into(),
            input: Payload::new(input),
            component: test_component(),
            seed: 1,
            run: 1,
            parent: None,
        });
        b
    }

    /// Appends any event.
    pub fn push(&mut self, event: Event) -> &mut Self {
        let index = self.entries.len() as u32;
        let at = Self::T0.plus(std::time::Duration::from_secs(u64::from(index)));
        self.entries.push(Entry { index, at, event });
        self
    }

    fn with(mut self, event: Event) -> Self {
        self.push(event);
        self
    }

    /// Activity `seq` succeeded.
    pub fn activity_ok(self, seq: u32, name: &str, input: &[u8], output: &[u8]) -> Self {
        self.with(Event::ActivityCompleted {
            seq,
            name: name.into(),
            input_hash: input_hash(input),
            attempts: 1,
            result: Ok(Payload::new(output)),
        })
    }

    /// Activity `seq` failed for good.
    pub fn activity_err(self, seq: u32, name: &str, input: &[u8], failure: Failure) -> Self {
        self.with(Event::ActivityCompleted {
            seq,
            name: name.into(),
            input_hash: input_hash(input),
            attempts: 1,
            result: Err(failure),
        })
    }

    /// Activity `seq` failed `attempts` times and waits until `retry_at`.
    pub fn activity_retrying(
        self,
        seq: u32,
        name: &str,
        input: &[u8],
        attempts: u32,
        retry_at: Timestamp,
    ) -> Self {
        self.with(Event::ActivityRetrying {
            seq,
            name: name.into(),
            input_hash: input_hash(input),
            attempts,
            retry_at,
            failure: Failure::new(crate::FailureKind::Application, "flaky"),
        })
    }

    /// Timer `seq` was started durably.
    pub fn timer_started(self, seq: u32, duration_ms: u64) -> Self {
        let fire_at = Self::T0.plus(std::time::Duration::from_millis(duration_ms));
        self.with(Event::TimerStarted {
            seq,
            duration_ms,
            fire_at,
        })
    }

    /// Timer `seq` fired.
    pub fn timer_fired(self, seq: u32, duration_ms: u64) -> Self {
        self.with(Event::TimerFired { seq, duration_ms })
    }

    /// Signal wait `seq` received `payload`.
    pub fn signal(self, seq: u32, name: &str, payload: &[u8]) -> Self {
        let inbox_id = format!("in-{}", self.entries.len());
        self.with(Event::SignalReceived {
            seq,
            name: name.into(),
            payload: Payload::new(payload),
            inbox_id,
        })
    }

    /// A cancel request was delivered.
    pub fn cancel_requested(self, reason: &str) -> Self {
        let inbox_id = format!("in-{}", self.entries.len());
        self.with(Event::CancelRequested {
            reason: reason.into(),
            inbox_id,
        })
    }

    /// The workflow completed.
    pub fn completed(self, output: &[u8]) -> Self {
        self.with(Event::Completed {
            output: Payload::new(output),
        })
    }

    /// The workflow failed.
    pub fn failed(self, failure: Failure) -> Self {
        self.with(Event::Failed { failure })
    }

    /// The entries.
    pub fn build(self) -> Vec<Entry> {
        self.entries
    }
}
