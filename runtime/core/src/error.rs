//! Errors with stable codes.
//!
//! Every error a user can meet carries an [`ErrorCode`]: a short, stable
//! identifier (`CRN100`) that logs, `--json` output and docs share. Codes are
//! never reused for a different meaning. ARCHITECTURE.md lists them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable error codes. The number ranges: 1xx replay, 2xx store, 3xx guest
/// and component, 4xx caller input, 5xx Cairn itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The workflow asked for something other than what the journal recorded
    /// at that point.
    #[serde(rename = "CRN100")]
    NondeterministicOperation,
    /// The journal holds an entry the workflow, replayed, never asked for.
    #[serde(rename = "CRN101")]
    UnexpectedEntry,
    /// The workflow, replayed, finished with a different result than the
    /// journal recorded.
    #[serde(rename = "CRN102")]
    ResultMismatch,
    /// The journal itself is malformed (not written by Cairn, or damaged).
    #[serde(rename = "CRN103")]
    CorruptJournal,
    /// The guest broke the WIT protocol (waited on an unknown handle, ...).
    #[serde(rename = "CRN104")]
    ProtocolViolation,
    /// Another driver advanced the execution first.
    #[serde(rename = "CRN200")]
    Conflict,
    /// No execution with that id.
    #[serde(rename = "CRN201")]
    ExecutionNotFound,
    /// The id exists with a different workflow or input.
    #[serde(rename = "CRN202")]
    ExecutionExists,
    /// The execution has finished; it takes no more signals.
    #[serde(rename = "CRN203")]
    ExecutionFinished,
    /// An item is larger than the store accepts.
    #[serde(rename = "CRN204")]
    TooLarge,
    /// The store cannot be reached or failed (retry later).
    #[serde(rename = "CRN205")]
    StoreUnavailable,
    /// The store is not usable as it is (wrong schema, missing table, ...).
    #[serde(rename = "CRN206")]
    StoreMisconfigured,
    /// The file is not a WebAssembly component.
    #[serde(rename = "CRN300")]
    NotAComponent,
    /// The component does not implement the `cairn:workflow` world (or
    /// another version of it).
    #[serde(rename = "CRN301")]
    WrongWorld,
    /// The guest trapped (panic, unreachable, out-of-bounds access...).
    #[serde(rename = "CRN302")]
    GuestTrap,
    /// The workflow used up its fuel budget per await (ran too long without
    /// awaiting).
    #[serde(rename = "CRN303")]
    FuelExhausted,
    /// The guest asked for more memory than allowed.
    #[serde(rename = "CRN304")]
    MemoryLimit,
    /// Workflow code used something nondeterministic that workflow mode
    /// denies (filesystem, network, ...).
    #[serde(rename = "CRN305")]
    DeniedInWorkflow,
    /// An activity sent an HTTP request to a host the operator's allow-list
    /// does not name.
    #[serde(rename = "CRN306")]
    HttpNotAllowed,
    /// An activity attempt ran longer than its timeout.
    #[serde(rename = "CRN307")]
    ActivityTimeout,
    /// The workflow name is not exported by the component.
    #[serde(rename = "CRN400")]
    UnknownWorkflow,
    /// The input is not acceptable (not JSON, not the workflow's type...).
    #[serde(rename = "CRN401")]
    BadInput,
    /// The component named by hash is not in the store.
    #[serde(rename = "CRN402")]
    ComponentNotFound,
    /// The execution cannot answer queries now (it has finished).
    #[serde(rename = "CRN403")]
    QueryUnavailable,
    /// An internal invariant of Cairn failed (a bug in Cairn, not in the
    /// journal, the store or the guest): report it with the log.
    #[serde(rename = "CRN500")]
    Internal,
}

impl ErrorCode {
    /// The code as text (`CRN100`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NondeterministicOperation => "CRN100",
            Self::UnexpectedEntry => "CRN101",
            Self::ResultMismatch => "CRN102",
            Self::CorruptJournal => "CRN103",
            Self::ProtocolViolation => "CRN104",
            Self::Conflict => "CRN200",
            Self::ExecutionNotFound => "CRN201",
            Self::ExecutionExists => "CRN202",
            Self::ExecutionFinished => "CRN203",
            Self::TooLarge => "CRN204",
            Self::StoreUnavailable => "CRN205",
            Self::StoreMisconfigured => "CRN206",
            Self::NotAComponent => "CRN300",
            Self::WrongWorld => "CRN301",
            Self::GuestTrap => "CRN302",
            Self::FuelExhausted => "CRN303",
            Self::MemoryLimit => "CRN304",
            Self::DeniedInWorkflow => "CRN305",
            Self::HttpNotAllowed => "CRN306",
            Self::ActivityTimeout => "CRN307",
            Self::UnknownWorkflow => "CRN400",
            Self::BadInput => "CRN401",
            Self::ComponentNotFound => "CRN402",
            Self::QueryUnavailable => "CRN403",
            Self::Internal => "CRN500",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The replayed workflow does not match its journal. The execution is parked
/// (its journal untouched) and this is recorded on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error(
    "{code} nondeterminism at journal entry {index}: expected {expected}, but the workflow {got}"
)]
pub struct Nondeterminism {
    /// [`ErrorCode::NondeterministicOperation`], [`ErrorCode::UnexpectedEntry`],
    /// [`ErrorCode::ResultMismatch`] or [`ErrorCode::CorruptJournal`].
    pub code: ErrorCode,
    /// Index of the journal entry where replay diverged.
    pub index: u32,
    /// What the journal recorded there.
    pub expected: String,
    /// What the workflow did instead.
    pub got: String,
}
