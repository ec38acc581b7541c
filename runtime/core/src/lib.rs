//! # cairn-core
//!
//! The pure heart of Cairn. It owns:
//!
//! - the **journal**: [`Entry`] and [`Event`], their versioned encoding
//!   ([`entry::encode`] / [`entry::decode`]);
//! - the **replay state machine** ([`Replay`]): guest calls in, answers from the
//!   journal or "new ground" out — no IO, no clock, no wasmtime;
//! - the **advance machine** ([`AdvanceMachine`]): what a driver does on new
//!   ground (append, run an activity, create a child, wait, suspend, yield),
//!   decided from the journal, the inbox and the time, as [`Action`]s the
//!   engine carries out; and the activities' [`RetryPolicy`];
//! - **errors with stable codes** ([`ErrorCode`], [`Nondeterminism`]);
//! - the **[`Store`] trait** every store implements (SQLite, DynamoDB, and the
//!   [`MemoryStore`] used in tests), and the [`Clock`] trait with a simulated
//!   clock ([`SimClock`]) that lets tests and `--skip-time` jump ahead;
//! - the **client API** ([`api`]): the versioned JSON requests and answers
//!   a deployment serves and `cairn-client` sends (`docs/api.md`).
//!
//! Nothing here does IO or depends on an async runtime: the store and clock
//! traits return boxed futures that their implementations (in other crates)
//! drive. With the `test-suite` feature, [`store_suite`] holds the shared
//! test suite every store must pass.

pub mod advance;
pub mod api;
pub mod clock;
pub mod entry;
mod entry_fast;
pub mod error;
pub mod failure;
pub mod id;
pub mod journal_cache;
pub mod memory;
pub mod payload;
pub mod replay;
pub mod retry;
pub mod store;
#[cfg(any(test, feature = "test-suite"))]
pub mod store_suite;
pub mod testing;

pub use advance::{Action, AdvanceMachine};
pub use clock::{Clock, SimClock, Timestamp};
pub use entry::{Entry, Event, JOURNAL_FORMAT_VERSION, ParentRef};
pub use error::{ErrorCode, Nondeterminism};
pub use failure::{Failure, FailureKind};
pub use id::{ComponentHash, ExecutionId, InvalidId};
pub use memory::MemoryStore;
pub use payload::Payload;
pub use replay::{Completion, Operation, PendingOperation, Replay, Wait};
pub use retry::RetryPolicy;
pub use store::{
    Append, ContinueAsNew, Created, Execution, ExecutionMeta, InboxItem, InboxMessage, Lease,
    ListFilter, NewExecution, ParkInfo, Status, Store, StoreError, StoreFuture, Suspend,
};

/// 64-bit FNV-1a: a stable, dependency-free hash of a guest call's input, used
/// to check on replay that the workflow asks for the same thing it asked for
/// when the entry was written. Not cryptographic; it only has to be stable.
pub fn input_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
