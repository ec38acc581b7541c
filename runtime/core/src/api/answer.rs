//! The answers of the API's verbs.

use super::parse_rfc3339;
use crate::{Entry, Event, Execution, Failure, Nondeterminism, Status, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A present field is `Some`, even when it is JSON `null` (a workflow whose
/// output is `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One execution as `describe` (and `start`) answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// Its id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Where it stands.
    pub status: Status,
    /// The component it is pinned to (sha256).
    pub component: String,
    /// The current run (1, then +1 at each continue-as-new).
    pub run: u32,
    /// Entries in the current run's journal.
    pub journal_len: u32,
    /// Inbox items (signals, cancel requests, child results) not yet taken.
    pub inbox: u32,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
    /// When waiting: what it waits for, in words (`signal 'approve'`,
    /// `timer 2 (until …)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<String>,
    /// When waiting on a timer or a retry: when it wakes (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<String>,
    /// When completed: the workflow's output.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub output: Option<Value>,
    /// When failed (or cancelled): the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// When parked: where its journal and its code diverged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked: Option<Nondeterminism>,
}

impl Description {
    /// An execution as `describe` shows it.
    pub fn from_execution(ex: &Execution) -> Self {
        let m = &ex.meta;
        let (output, failure) = match ex.journal.last().map(|e| &e.event) {
            Some(Event::Completed { output }) => (Some(output.to_json_value()), None),
            Some(Event::Failed { failure }) => (None, Some(failure.clone())),
            _ => (None, None),
        };
        Self {
            id: m.id.to_string(),
            workflow: m.workflow.clone(),
            status: m.status,
            component: m.component.to_string(),
            run: m.run,
            journal_len: ex.journal.len() as u32,
            inbox: ex.inbox.len() as u32,
            created_at: m.created_at.to_rfc3339(),
            updated_at: m.updated_at.to_rfc3339(),
            waiting_on: m.waiting_on.clone(),
            wake_at: m.wake_at.map(Timestamp::to_rfc3339),
            output,
            failure,
            parked: m.parked.clone(),
        }
    }
}

/// The answer to `start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartAnswer {
    /// The execution, as `describe` shows it after the advance (and the
    /// wait, if any).
    #[serde(flatten)]
    pub execution: Description,
    /// False when the id existed with the same workflow and input: this is
    /// that execution.
    pub created: bool,
    /// What this invocation's advance ended with: `completed`, `failed`,
    /// `cancelled`, `waiting`, `conflict` (another driver has it),
    /// `parked` or `yielded` (stopped at the deadline, at a step boundary;
    /// a wake goes on).
    pub outcome: String,
    /// With `wait_ms`: how long the answer waited for the result (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
    /// Diagnostics of the host (times in ms); not part of the contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Value>,
    /// Diagnostics: AWS requests the start made, by API; not part of the
    /// contract.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Value>,
}

/// The answer to `signal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalAnswer {
    /// The execution.
    pub id: String,
    /// The inbox item's id (`signal.<key>` with an idempotency key).
    pub delivered: String,
    /// True when the key had been delivered before: nothing was written.
    #[serde(default)]
    pub duplicate: bool,
}

/// The answer to `cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelAnswer {
    /// The execution.
    pub id: String,
    /// The inbox item's id of the cancel request.
    pub delivered: String,
}

/// The answer to `query`: the handler's answer, or its failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryAnswer {
    /// The execution.
    pub id: String,
    /// The query's name.
    pub query: String,
    /// What the handler answered.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub answer: Option<Value>,
    /// Why the workflow could not answer (no handler of that name, the
    /// handler failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// One journal entry in a `history` page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Its index in the run's journal.
    pub index: u32,
    /// When it was written (RFC 3339).
    pub at: String,
    /// Its kind (`started`, `activity-completed`, ..., see ARCHITECTURE.md).
    pub kind: String,
    /// The entry's fields as journaled (`seq`, `name`, `result`...).
    #[serde(flatten)]
    pub fields: serde_json::Map<String, Value>,
}

impl HistoryEntry {
    /// A journal entry as `history` shows it: index, time, kind and the
    /// entry's own fields.
    pub fn from_entry(e: &Entry) -> Self {
        let fields = match serde_json::to_value(&e.event) {
            Ok(Value::Object(outer)) => match outer.into_iter().next() {
                Some((_, Value::Object(fields))) => fields,
                _ => serde_json::Map::new(),
            },
            _ => serde_json::Map::new(),
        };
        Self {
            index: e.index,
            at: e.at.to_rfc3339(),
            kind: e.event.kind().to_string(),
            fields,
        }
    }

    /// The journal entry it shows (`None` if its kind or fields are not
    /// ones this build knows).
    pub fn to_entry(&self) -> Option<Entry> {
        let event = serde_json::from_value(serde_json::json!({ &self.kind: self.fields })).ok()?;
        Some(Entry {
            index: self.index,
            at: parse_rfc3339(&self.at)?,
            event,
        })
    }
}

/// The answer to `history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The execution.
    pub id: String,
    /// The run shown.
    pub run: u32,
    /// The execution's current run (runs 1 to `runs` exist).
    pub runs: u32,
    /// Entries, by index.
    pub entries: Vec<HistoryEntry>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One execution in a `list` page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Its id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Where it stands.
    pub status: Status,
    /// The component it is pinned to.
    pub component: String,
    /// The current run.
    pub run: u32,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
    /// When waiting: what it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<String>,
}

impl Summary {
    /// An execution's meta as `list` shows it.
    pub fn from_meta(m: &crate::ExecutionMeta) -> Self {
        Self {
            id: m.id.to_string(),
            workflow: m.workflow.clone(),
            status: m.status,
            component: m.component.to_string(),
            run: m.run,
            created_at: m.created_at.to_rfc3339(),
            updated_at: m.updated_at.to_rfc3339(),
            waiting_on: m.waiting_on.clone(),
        }
    }
}

/// The answer to `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage {
    /// Executions, most recently updated first.
    pub executions: Vec<Summary>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_entries_read_back_as_journal_entries() {
        let e = Entry {
            index: 3,
            at: Timestamp::from_millis(1_795_811_951_123),
            event: Event::TimerFired {
                seq: 2,
                duration_ms: 1500,
            },
        };
        let h = HistoryEntry::from_entry(&e);
        assert_eq!(h.kind, "timer-fired");
        assert_eq!(h.fields["seq"], 2);
        assert_eq!(h.to_entry(), Some(e));
    }

    #[test]
    fn a_null_output_is_present() {
        let d: Description = serde_json::from_value(json!({
            "id": "a", "workflow": "w", "status": "completed", "component": "c", "run": 1,
            "journal_len": 2, "inbox": 0, "created_at": "t", "updated_at": "t", "output": null
        }))
        .unwrap();
        assert_eq!(d.output, Some(Value::Null));
    }
}
