//! Decoding invocation payloads; errors shaped for Lambda.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use base64::Engine as _;
use cairn_core::{ErrorCode, ExecutionId};
use cairn_engine::EngineError;
use serde::Deserialize;
use serde_json::{Value, json};

/// A direct request (invoke, Function URL body, scheduler wake).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Create an execution and advance it.
    Start {
        /// Workflow name.
        workflow: String,
        /// Execution id (generated when absent).
        id: Option<String>,
        /// Input (JSON).
        #[serde(default)]
        input: Value,
        /// Component hash (default: the one packaged for the workflow).
        component: Option<String>,
    },
    /// Write a signal to the inbox (the stream pushes the advance).
    Signal {
        /// Execution id.
        id: String,
        /// Signal name.
        name: String,
        /// Payload (JSON).
        #[serde(default)]
        payload: Value,
        /// Caller-chosen key: the same signal sent again with the same key
        /// (a retry after a lost reply) is delivered once.
        idempotency_key: Option<String>,
    },
    /// Write a cancel request to the inbox.
    Cancel {
        /// Execution id.
        id: String,
        /// Why.
        reason: Option<String>,
    },
    /// The execution's status.
    Status {
        /// Execution id.
        id: String,
    },
    /// Ask the workflow a query (nothing is written).
    Query {
        /// Execution id.
        id: String,
        /// Query name.
        name: String,
        /// Arguments (JSON).
        #[serde(default)]
        args: Value,
    },
    /// A timer is due, or a continuation.
    Wake {
        /// Execution id.
        id: String,
        /// The wake time the schedule was made for (ms).
        at: Option<u64>,
    },
    /// Advance everything that is due or stuck.
    Sweep {},
}

/// One stream record that names an execution.
#[derive(Debug, Clone)]
pub struct StreamItem {
    /// The execution.
    pub execution: ExecutionId,
    /// The record's sequence number (its `itemIdentifier`).
    pub sequence_number: String,
}

/// What an invocation carries.
#[derive(Debug)]
pub enum Decoded {
    /// A direct request.
    Request(Request),
    /// A request through a Function URL (answer with an HTTP response).
    Http(Request),
    /// A DynamoDB stream batch.
    Stream(Vec<StreamItem>),
}

/// An error as Lambda reports it (`errorType`, `errorMessage`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// Stable, readable type: `CRN401.BadRequest`.
    pub error_type: String,
    /// What happened and what to do.
    pub message: String,
    /// HTTP status for Function URL callers.
    pub http_status: u16,
}

impl HandlerError {
    /// A malformed event.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            error_type: format!("{}.BadRequest", ErrorCode::BadInput),
            message: message.into(),
            http_status: 400,
        }
    }

    /// A service the function needs failed (retry later).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            error_type: format!("{}.StoreUnavailable", ErrorCode::StoreUnavailable),
            message: message.into(),
            http_status: 503,
        }
    }

    /// The function is misconfigured.
    pub fn config(message: impl Into<String>) -> Self {
        Self {
            error_type: format!("{}.Configuration", ErrorCode::StoreMisconfigured),
            message: message.into(),
            http_status: 500,
        }
    }
}

impl From<EngineError> for HandlerError {
    fn from(e: EngineError) -> Self {
        let code = e.code();
        let (name, http_status) = match code {
            ErrorCode::ExecutionNotFound => ("ExecutionNotFound", 404),
            ErrorCode::ExecutionExists => ("ExecutionExists", 409),
            ErrorCode::ExecutionFinished => ("ExecutionFinished", 409),
            ErrorCode::TooLarge => ("TooLarge", 413),
            ErrorCode::UnknownWorkflow | ErrorCode::BadInput => ("BadRequest", 400),
            ErrorCode::ComponentNotFound => ("ComponentNotFound", 404),
            ErrorCode::StoreUnavailable => ("StoreUnavailable", 503),
            ErrorCode::StoreMisconfigured => ("Configuration", 500),
            _ => ("Internal", 500),
        };
        Self {
            error_type: format!("{code}.{name}"),
            message: e.to_string(),
            http_status,
        }
    }
}

impl From<cairn_core::StoreError> for HandlerError {
    fn from(e: cairn_core::StoreError) -> Self {
        EngineError::from(e).into()
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type,
            error_message: e.message,
        }
    }
}

const SHAPES: &str = r#"expected {"action": "start"|"signal"|"cancel"|"status"|"query"|"wake"|"sweep", ...}, a DynamoDB stream batch, or a Function URL request carrying one"#;

/// Recognizes the payload's shape.
pub fn decode(payload: Value) -> Result<Decoded, HandlerError> {
    if payload.get("Records").is_some() {
        let event: StreamEvent = serde_json::from_value(payload)
            .map_err(|e| HandlerError::bad_request(format!("not a DynamoDB stream batch: {e}")))?;
        let mut items = Vec::new();
        for r in event.records {
            let seq = r.change.sequence_number.clone().unwrap_or_default();
            let pk = match r.change.keys.get("pk") {
                Some(serde_dynamo::AttributeValue::S(s)) => s.clone(),
                _ => {
                    return Err(HandlerError::bad_request(format!(
                        "stream record {seq} has no pk key: is the event source Cairn's table?"
                    )));
                }
            };
            let Some(id) = pk.strip_prefix("exec#") else {
                continue;
            };
            let execution = ExecutionId::new(id)
                .map_err(|e| HandlerError::bad_request(format!("stream record {seq}: {e}")))?;
            items.push(StreamItem {
                execution,
                sequence_number: seq,
            });
        }
        return Ok(Decoded::Stream(items));
    }
    if is_function_url(&payload) {
        let body = payload.get("body").and_then(Value::as_str).unwrap_or("");
        let encoded = payload
            .get("isBase64Encoded")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let body = if encoded {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| HandlerError::bad_request(format!("body is not base64: {e}")))?;
            String::from_utf8(bytes)
                .map_err(|e| HandlerError::bad_request(format!("body is not UTF-8: {e}")))?
        } else {
            body.to_string()
        };
        let v: Value = serde_json::from_str(&body).map_err(|e| {
            HandlerError::bad_request(format!("the request body is not JSON ({e}); {SHAPES}"))
        })?;
        return request(v).map(Decoded::Http);
    }
    request(payload).map(Decoded::Request)
}

fn request(v: Value) -> Result<Request, HandlerError> {
    if !v.is_object() || v.get("action").is_none() {
        return Err(HandlerError::bad_request(format!(
            "unrecognized event: {SHAPES}"
        )));
    }
    serde_json::from_value(v)
        .map_err(|e| HandlerError::bad_request(format!("bad request: {e}; {SHAPES}")))
}

/// Whether the payload is a Function URL (HTTP) request.
pub fn is_function_url(payload: &Value) -> bool {
    payload.get("requestContext").is_some() && payload.get("rawPath").is_some()
}

/// Wraps a result as a Function URL response.
pub fn http_response(r: Result<Value, HandlerError>) -> Value {
    let (status, body) = match r {
        Ok(v) => (200, v),
        Err(e) => (
            e.http_status,
            json!({"errorType": e.error_type, "errorMessage": e.message}),
        ),
    };
    json!({"statusCode": status, "headers": {"content-type": "application/json"}, "body": body.to_string()})
}
