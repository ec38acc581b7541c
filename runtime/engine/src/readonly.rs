//! Replays that write nothing: `replay-check` ([`replay`]) and queries
//! ([`query`]). Each is its own implementation of the guest's calls over
//! [`Replay`]: the journal answers; at new ground a replay-check stops and a
//! query hands the workflow its question. No activity runs, nothing is
//! appended, no inbox item is consumed, no log line is emitted.

use crate::convert::{completion_to_wit, failure_from_wit};
use crate::driver::{ExecutionStart, prepare, retrying};
use crate::{Engine, EngineError};
use cairn_core::replay::ReplayError;
use cairn_core::{
    ExecutionId, Failure, FailureKind, Nondeterminism, Operation, Payload, Replay, Status, Wait,
    input_hash,
};
use cairn_host::{
    ActivityOptions, HostError, Interrupt, LoadedComponent, LogLevel, Outcome, QueryRequest,
    WitFailure, WorkflowCalls, WorkflowExit, WorkflowFuture,
};
use std::sync::Arc;

/// Why a read-only replay stopped the guest.
#[derive(Debug)]
enum ReadStop {
    /// It reached new ground (or continued as new: the whole run matched).
    Frontier,
    Nondeterminism(Nondeterminism),
    Protocol(String),
    /// The workflow answered the query.
    Answered(Result<Payload, Failure>),
}

impl From<ReplayError> for ReadStop {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Nondeterminism(n) => Self::Nondeterminism(n),
            ReplayError::Protocol(p) => Self::Protocol(p),
        }
    }
}

/// What both read-only replays share: the journal answers the calls.
struct Replayed {
    id: ExecutionId,
    replay: Replay,
    stop: Option<ReadStop>,
}

impl Replayed {
    fn stop(&mut self, why: impl Into<ReadStop>) -> Interrupt {
        self.stop = Some(why.into());
        Interrupt
    }

    fn start(&mut self, operation: Operation) -> Result<u32, Interrupt> {
        self.replay.start(operation).map_err(|e| self.stop(e))
    }

    fn activity(&mut self, name: String, input: &[u8]) -> Result<u32, Interrupt> {
        self.start(Operation::Activity {
            name,
            input_hash: input_hash(input),
        })
    }

    fn child(&mut self, workflow: String, id: String, input: &[u8]) -> Result<u32, Interrupt> {
        let child_id = match ExecutionId::new(id) {
            Ok(c) => c,
            Err(e) => return Err(self.stop(ReadStop::Protocol(format!("start-child: {e}")))),
        };
        if child_id == self.id {
            return Err(self.stop(ReadStop::Protocol(format!(
                "start-child: {child_id} is this execution's own id"
            ))));
        }
        self.start(Operation::Child {
            workflow,
            child_id,
            input_hash: input_hash(input),
        })
    }

    /// The journal's answer; `None` at new ground.
    fn answer(&mut self, handles: &[u32]) -> Result<Option<Outcome>, Interrupt> {
        match self.replay.wait_any(handles) {
            Ok(Wait::Ready { handle, completion }) => Ok(Some(Outcome::Completed((
                handle,
                completion_to_wit(completion),
            )))),
            Ok(Wait::CancelRequested { reason }) => Ok(Some(Outcome::CancelRequested(reason))),
            Ok(Wait::Frontier) => Ok(None),
            Err(e) => Err(self.stop(e)),
        }
    }

    fn cancel(&mut self, handle: u32) -> Result<(), Interrupt> {
        self.replay.cancel(handle).map_err(|e| self.stop(e))
    }
}

/// `cairn replay-check`: replays to new ground (or the journal's result).
struct ReplayCheck(Replayed);

/// A query: replays to new ground, then asks the workflow its question.
struct QueryCalls {
    replayed: Replayed,
    request: Option<QueryRequest>,
}

/// The calls both read-only replays answer the same way.
macro_rules! journal_calls {
    ($field:tt) => {
        fn schedule_activity(
            &mut self,
            name: String,
            input: Vec<u8>,
            _options: ActivityOptions,
        ) -> Result<u32, Interrupt> {
            self.$field.activity(name, &input)
        }

        fn start_timer(&mut self, duration_ms: u64) -> Result<u32, Interrupt> {
            self.$field.start(Operation::Timer { duration_ms })
        }

        fn wait_signal(&mut self, name: String) -> Result<u32, Interrupt> {
            self.$field.start(Operation::Signal { name })
        }

        fn start_child(
            &mut self,
            workflow: String,
            id: String,
            input: Vec<u8>,
        ) -> Result<u32, Interrupt> {
            self.$field.child(workflow, id, &input)
        }

        fn cancel(&mut self, handle: u32) -> Result<(), Interrupt> {
            self.$field.cancel(handle)
        }

        fn now_ms(&self) -> u64 {
            self.$field.replay.now().as_millis()
        }

        fn history_len(&self) -> u32 {
            self.$field.replay.history_len()
        }

        fn log(&mut self, _level: LogLevel, _message: String) {}

        fn execution_id(&self) -> String {
            self.$field.id.to_string()
        }

        /// A read-only replay that gets here has matched the whole run.
        fn continue_as_new(&mut self, _input: Vec<u8>) -> Interrupt {
            self.$field.stop(ReadStop::Frontier)
        }
    };
}

impl WorkflowCalls for ReplayCheck {
    journal_calls!(0);

    fn wait_any(&mut self, handles: Vec<u32>) -> WorkflowFuture<'_, Outcome> {
        Box::pin(async move {
            match self.0.answer(&handles)? {
                Some(wake) => Ok(wake),
                None => Err(self.0.stop(ReadStop::Frontier)),
            }
        })
    }

    fn answer_query(&mut self, _answer: Result<Vec<u8>, WitFailure>) -> Interrupt {
        self.0.stop(ReadStop::Protocol(
            "answer-query without a query to answer".into(),
        ))
    }
}

impl WorkflowCalls for QueryCalls {
    journal_calls!(replayed);

    fn wait_any(&mut self, handles: Vec<u32>) -> WorkflowFuture<'_, Outcome> {
        Box::pin(async move {
            if let Some(wake) = self.replayed.answer(&handles)? {
                return Ok(wake);
            }
            match self.request.take() {
                Some(q) => Ok(Outcome::Query(q)),
                None => Err(self.replayed.stop(ReadStop::Protocol(
                    "the workflow waited again instead of answering the query".into(),
                ))),
            }
        })
    }

    fn answer_query(&mut self, answer: Result<Vec<u8>, WitFailure>) -> Interrupt {
        let answer = answer.map(Payload::new).map_err(failure_from_wit);
        self.replayed.stop(ReadStop::Answered(answer))
    }
}

/// What a read-only replay found.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayOutcome {
    /// The component agrees with every journaled entry (up to new ground,
    /// or to the recorded result if the execution has finished).
    Compatible {
        /// Entries in the journal.
        entries: u32,
        /// Whether the replay reached the journal's final result.
        finished: bool,
    },
    /// The component diverges from the journal.
    Diverged(Nondeterminism),
    /// The guest failed while replaying (a trap, fuel, memory, a denied call)
    /// where the journal recorded something else.
    Failed(String),
}

/// Replays `id`'s current run against `component` without writing anything.
pub(crate) async fn replay(
    engine: &Engine,
    id: &ExecutionId,
    component: &Arc<LoadedComponent>,
) -> Result<ReplayOutcome, EngineError> {
    let ex = retrying(engine, || engine.inner.store.load(id)).await?;
    let entries = ex.journal.len() as u32;
    let start = match prepare(ex.journal, component) {
        Ok(Ok(s)) => s,
        Ok(Err(n)) => return Ok(ReplayOutcome::Diverged(n)),
        Err(EngineError::Host(HostError::UnknownWorkflow { name, .. })) => {
            return Ok(ReplayOutcome::Failed(format!(
                "the component has no workflow named '{name}'"
            )));
        }
        Err(e) => return Err(e),
    };
    let ExecutionStart {
        replay,
        workflow,
        input,
        seed,
    } = start;
    let calls = ReplayCheck(Replayed {
        id: id.clone(),
        replay,
        stop: None,
    });
    let (calls, exit) = engine
        .inner
        .sandbox
        .run_workflow(component, &workflow, input.as_bytes(), seed, calls)
        .await;
    let mut replayed = calls.0;
    let result = match exit {
        Ok(WorkflowExit::Returned(r)) => r.map(Payload::new).map_err(failure_from_wit),
        Ok(WorkflowExit::Interrupted) => {
            return match replayed.stop.take() {
                Some(ReadStop::Frontier) => Ok(ReplayOutcome::Compatible {
                    entries,
                    finished: false,
                }),
                Some(ReadStop::Nondeterminism(n)) => Ok(ReplayOutcome::Diverged(n)),
                Some(ReadStop::Protocol(p)) => Ok(ReplayOutcome::Failed(p)),
                other => Err(EngineError::Internal(format!(
                    "a replay-check stopped with {other:?}"
                ))),
            };
        }
        // A journal that recorded exactly this failure is compatible.
        Err(HostError::Guest(g)) => Err(Failure::new(FailureKind::NonRetryable, g.to_string())),
        Err(e) => return Err(e.into()),
    };
    let finished = replayed.replay.final_entry().is_some();
    match replayed.replay.finish(result) {
        Ok(_) => Ok(ReplayOutcome::Compatible { entries, finished }),
        Err(ReplayError::Nondeterminism(n)) => Ok(ReplayOutcome::Diverged(n)),
        Err(ReplayError::Protocol(p)) => Ok(ReplayOutcome::Failed(p)),
    }
}

/// Asks a running execution's workflow a query, on a replayed instance.
pub(crate) async fn query(
    engine: &Engine,
    id: &ExecutionId,
    name: &str,
    args: Payload,
) -> Result<Result<Payload, Failure>, EngineError> {
    let ex = retrying(engine, || engine.inner.store.load(id)).await?;
    if ex.meta.status.is_terminal() {
        return Err(EngineError::QueryFinished {
            id: id.clone(),
            status: ex.meta.status,
        });
    }
    let component = engine.component(&ex.meta.component).await?;
    let ExecutionStart {
        replay,
        workflow,
        input,
        seed,
    } = prepare(ex.journal, &component)?
        .map_err(|n| EngineError::Corrupt(format!("the journal cannot be replayed: {n}")))?;
    let calls = QueryCalls {
        replayed: Replayed {
            id: id.clone(),
            replay,
            stop: None,
        },
        request: Some(QueryRequest {
            name: name.to_string(),
            args: args.into_bytes(),
        }),
    };
    let (mut calls, exit) = engine
        .inner
        .sandbox
        .run_workflow(&component, &workflow, input.as_bytes(), seed, calls)
        .await;
    match exit? {
        WorkflowExit::Interrupted => match calls.replayed.stop.take() {
            Some(ReadStop::Answered(answer)) => Ok(answer),
            Some(ReadStop::Nondeterminism(n)) => Err(EngineError::Corrupt(format!(
                "the execution diverges from its code: {n}"
            ))),
            Some(ReadStop::Frontier) => Err(EngineError::QueryFinished {
                id: id.clone(),
                status: Status::Running,
            }),
            Some(ReadStop::Protocol(p)) => Err(EngineError::Protocol(p)),
            None => Err(EngineError::Internal(
                "the query was interrupted without a reason".into(),
            )),
        },
        WorkflowExit::Returned(_) => Err(EngineError::Protocol(
            "the workflow returned while answering a query".into(),
        )),
    }
}
