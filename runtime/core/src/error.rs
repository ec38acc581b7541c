//! Errors with stable codes.
//!
//! Every error a user can meet carries an [`ErrorCode`]: a short, stable
//! identifier (`CRN100`) that logs, `--json` output and docs share. Codes are
//! never reused for a different meaning. ARCHITECTURE.md lists them.

use serde::{Deserialize, Serialize};

/// Stable error codes. The number ranges: 1xx replay, 2xx store, 3xx guest
/// and component, 4xx caller input, 5xx Cairn itself.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::Display,
)]
pub enum ErrorCode {
    /// The workflow asked for something other than what the journal recorded
    /// at that point.
    #[strum(serialize = "CRN100")]
    NondeterministicOperation,
    /// The journal holds an entry the workflow, replayed, never asked for.
    #[strum(serialize = "CRN101")]
    UnexpectedEntry,
    /// The workflow, replayed, finished with a different result than the
    /// journal recorded.
    #[strum(serialize = "CRN102")]
    ResultMismatch,
    /// The journal itself is malformed (not written by Cairn, or damaged).
    #[strum(serialize = "CRN103")]
    CorruptJournal,
    /// The guest broke the WIT protocol (waited on an unknown handle, ...).
    #[strum(serialize = "CRN104")]
    ProtocolViolation,
    /// Another driver advanced the execution first.
    #[strum(serialize = "CRN200")]
    Conflict,
    /// No execution with that id.
    #[strum(serialize = "CRN201")]
    ExecutionNotFound,
    /// The id exists with a different workflow or input.
    #[strum(serialize = "CRN202")]
    ExecutionExists,
    /// The execution has finished; it takes no more signals.
    #[strum(serialize = "CRN203")]
    ExecutionFinished,
    /// An item is larger than the store accepts.
    #[strum(serialize = "CRN204")]
    TooLarge,
    /// The store cannot be reached or failed (retry later).
    #[strum(serialize = "CRN205")]
    StoreUnavailable,
    /// The store is not usable as it is (wrong schema, missing table, ...).
    #[strum(serialize = "CRN206")]
    StoreMisconfigured,
    /// The file is not a WebAssembly component.
    #[strum(serialize = "CRN300")]
    NotAComponent,
    /// The component does not implement the `cairn:workflow` world (or
    /// another version of it).
    #[strum(serialize = "CRN301")]
    WrongWorld,
    /// The guest trapped (panic, unreachable, out-of-bounds access...).
    #[strum(serialize = "CRN302")]
    GuestTrap,
    /// The workflow used up its fuel budget per await (ran too long without
    /// awaiting).
    #[strum(serialize = "CRN303")]
    FuelExhausted,
    /// The guest asked for more memory than allowed.
    #[strum(serialize = "CRN304")]
    MemoryLimit,
    /// Workflow code used something nondeterministic that workflow mode
    /// denies (filesystem, network, ...).
    #[strum(serialize = "CRN305")]
    DeniedInWorkflow,
    /// An activity sent an HTTP request to a host the operator's allow-list
    /// does not name.
    #[strum(serialize = "CRN306")]
    HttpNotAllowed,
    /// An activity attempt ran longer than its timeout.
    #[strum(serialize = "CRN307")]
    ActivityTimeout,
    /// The workflow name is not exported by the component.
    #[strum(serialize = "CRN400")]
    UnknownWorkflow,
    /// The input is not acceptable (not JSON, not the workflow's type...).
    #[strum(serialize = "CRN401")]
    BadInput,
    /// The component named by hash is not in the store.
    #[strum(serialize = "CRN402")]
    ComponentNotFound,
    /// The execution cannot answer queries now (it has finished).
    #[strum(serialize = "CRN403")]
    QueryUnavailable,
    /// An internal invariant of Cairn failed (a bug in Cairn, not in the
    /// journal, the store or the guest): report it with the log.
    #[strum(serialize = "CRN500")]
    Internal,
}

impl ErrorCode {
    /// The code as text (`CRN100`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

// As its code (`"CRN100"`), one table for both: strum's.
impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        code.parse()
            .map_err(|_| serde::de::Error::custom(format!("unknown error code {code:?}")))
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
