//! # cairn-client: talk to a deployed Cairn
//!
//! An application's way to a Cairn deployment: start executions (and wait
//! for their result), signal, query and cancel them, describe one, page
//! through its journal, and list executions, all through the function's
//! client API (`docs/api.md`). Underneath is the AWS SDK's Lambda client:
//! each call is one synchronous `Invoke` of the function, signed with the
//! caller's credentials (the stacks output a policy that allows it). Nothing
//! runs workflow code on the caller's machine.
//!
//! This crate owns the transport and the error type; the request and answer
//! types are [`cairn_core::api`]'s (re-exported as [`api`]), the same ones
//! the Lambda host decodes and encodes: one vocabulary on both sides.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cairn_client::Error> {
//! use cairn_client::{Client, api};
//! let cairn = Client::from_env("cairn-prod").await;
//! let done = cairn
//!     .start(api::Start {
//!         workflow: "swap".into(),
//!         id: Some("order-7".into()),
//!         input: serde_json::json!({"a": "alice", "b": "bob", "foo": 10, "bar": 20}),
//!         wait_ms: Some(30_000),
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("{} is {}: {:?}", done.execution.id, done.execution.status, done.execution.output);
//! # Ok(()) }
//! ```

pub use cairn_core::api;
pub use cairn_core::{ErrorCode, Status};

use api::{
    ApiError, CancelAnswer, Description, HistoryPage, ListPage, QueryAnswer, Request, SignalAnswer,
    StartAnswer,
};
use aws_sdk_lambda::primitives::Blob;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The function refused the request or failed to serve it: the API's
    /// error, with its stable code and HTTP status.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// The function did not answer (it crashed, timed out, ran out of
    /// memory) or answered with a function error: Lambda's `errorType` and
    /// `errorMessage`.
    #[error("{code}the function {function} failed ({error_type}): {message}", code = code_prefix(*code))]
    Function {
        /// The function.
        function: String,
        /// The code, when `errorType` carries one (`CRN205.StoreUnavailable`).
        code: Option<ErrorCode>,
        /// Lambda's `errorType` (`Sandbox.Timedout`, `Runtime.ExitError`...).
        error_type: String,
        /// Lambda's `errorMessage`.
        message: String,
    },
    /// Lambda could not be asked: no credentials, no permission to invoke,
    /// no such function, the network.
    #[error("cannot invoke {function}: {message}")]
    Invoke {
        /// The function.
        function: String,
        /// What the SDK reported, with its causes.
        message: String,
    },
    /// The answer is not one this client understands (another API version?).
    #[error(
        "the answer of {function} is not a {what}: {reason}: is the function's Cairn version the client's?"
    )]
    Decode {
        /// The function.
        function: String,
        /// What was expected.
        what: &'static str,
        /// Why it did not decode.
        reason: String,
    },
}

fn code_prefix(code: Option<ErrorCode>) -> String {
    code.map(|c| format!("{c} ")).unwrap_or_default()
}

impl Error {
    /// The stable code, when the function gave one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api(e) => Some(e.code),
            Self::Function { code, .. } => *code,
            Self::Invoke { .. } | Self::Decode { .. } => None,
        }
    }

    /// Whether the same call may succeed later: the store was unavailable,
    /// another driver held the execution, the function failed, or Lambda
    /// could not be reached.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api(e) => matches!(e.code, ErrorCode::StoreUnavailable | ErrorCode::Conflict),
            Self::Function { .. } | Self::Invoke { .. } => true,
            Self::Decode { .. } => false,
        }
    }
}

/// A client of one Cairn function (its name, ARN or partial ARN, with an
/// optional `:alias`).
#[derive(Debug, Clone)]
pub struct Client {
    lambda: aws_sdk_lambda::Client,
    function: String,
}

impl Client {
    /// A client with the AWS configuration of the environment (region,
    /// credentials, `AWS_ENDPOINT_URL_LAMBDA`...).
    pub async fn from_env(function: impl Into<String>) -> Self {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(&sdk, function)
    }

    /// A client with the given AWS configuration.
    pub fn new(sdk: &aws_config::SdkConfig, function: impl Into<String>) -> Self {
        Self::from_lambda(aws_sdk_lambda::Client::new(sdk), function)
    }

    /// A client on an existing Lambda client.
    pub fn from_lambda(lambda: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Self {
            lambda,
            function: function.into(),
        }
    }

    /// The function this client invokes.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// Sends one request and returns the answer as JSON (an API error as
    /// [`Error::Api`]).
    pub async fn call(&self, request: &Request) -> Result<Value, Error> {
        let payload = serde_json::to_vec(&request.to_wire()).expect("requests serialize");
        let out = self
            .lambda
            .invoke()
            .function_name(&self.function)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| Error::Invoke {
                function: self.function.clone(),
                message: aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
            })?;
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        let v: Value = serde_json::from_slice(body).map_err(|e| Error::Decode {
            function: self.function.clone(),
            what: "JSON value",
            reason: e.to_string(),
        })?;
        if out.function_error().is_some() {
            let error_type = v["errorType"].as_str().unwrap_or("Unhandled").to_string();
            let code = error_type
                .split('.')
                .next()
                .and_then(|c| serde_json::from_value(Value::from(c)).ok());
            return Err(Error::Function {
                function: self.function.clone(),
                code,
                error_type,
                message: v["errorMessage"].as_str().unwrap_or_default().to_string(),
            });
        }
        if let Some(e) = ApiError::from_wire(&v) {
            return Err(Error::Api(e));
        }
        Ok(v)
    }

    async fn typed<T: DeserializeOwned>(
        &self,
        request: Request,
        what: &'static str,
    ) -> Result<T, Error> {
        let v = self.call(&request).await?;
        serde_json::from_value(v).map_err(|e| Error::Decode {
            function: self.function.clone(),
            what,
            reason: e.to_string(),
        })
    }

    /// Creates an execution (idempotent by id: the same id, workflow and
    /// input give the existing one; another input is CRN202) and advances
    /// it; with `wait_ms`, waits up to that long for its result.
    pub async fn start(&self, start: api::Start) -> Result<StartAnswer, Error> {
        self.typed(Request::Start(start), "start answer").await
    }

    /// Writes a signal to an execution's inbox; with an idempotency key,
    /// a repeat of the call delivers nothing more.
    pub async fn signal(&self, signal: api::Signal) -> Result<SignalAnswer, Error> {
        self.typed(Request::Signal(signal), "signal answer").await
    }

    /// Asks a running execution's workflow the query `name`.
    pub async fn query(&self, id: &str, name: &str, args: Value) -> Result<QueryAnswer, Error> {
        let q = api::Query {
            id: id.into(),
            name: name.into(),
            args,
        };
        self.typed(Request::Query(q), "query answer").await
    }

    /// Asks an execution to cancel (its compensations run).
    pub async fn cancel(&self, id: &str, reason: Option<&str>) -> Result<CancelAnswer, Error> {
        let c = api::Cancel {
            id: id.into(),
            reason: reason.map(Into::into),
        };
        self.typed(Request::Cancel(c), "cancel answer").await
    }

    /// One execution: status, what it waits on, output or failure.
    pub async fn describe(&self, id: &str) -> Result<Description, Error> {
        let d = api::Describe { id: id.into() };
        self.typed(Request::Describe(d), "description").await
    }

    /// A page of an execution's journal.
    pub async fn history(&self, history: api::History) -> Result<HistoryPage, Error> {
        self.typed(Request::History(history), "history page").await
    }

    /// A page of executions, most recently updated first.
    pub async fn list(&self, list: api::List) -> Result<ListPage, Error> {
        self.typed(Request::List(list), "list page").await
    }
}
