//! Decoding invocation payloads; errors shaped for Lambda.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::http::header::{CONTENT_TYPE, HeaderValue};
use base64::Engine as _;
use cairn_core::api::{self, ApiError};
use cairn_core::{ErrorCode, ExecutionId};
use cairn_engine::EngineError;
use serde::Deserialize;
use serde_json::Value;

/// A push that is not part of the client API: a scheduler's wake, the
/// periodic sweep. Its errors are function errors, so that the scheduler
/// retries a wake that failed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Internal {
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
    /// A client API request by direct invoke (an object with `action` or
    /// `v`), or why it is not one: answered in the payload, never as a
    /// function error (a caller's mistake is not the function's).
    Api(Result<api::Request, ApiError>),
    /// A client API request through a Function URL, or why it is not one:
    /// answered with an HTTP response.
    Http(Result<api::Request, ApiError>),
    /// A scheduler's wake or the sweep.
    Internal(Internal),
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

const SHAPES: &str = r#"expected a client API request {"v": 1, "action": "start"|"signal"|"query"|"cancel"|"describe"|"history"|"list", ...} (docs/api.md), a scheduler's {"action": "wake"|"sweep"}, a DynamoDB stream batch, or a Function URL request carrying an API request"#;

/// Recognizes the payload's shape. An error is an event that is none of
/// the known shapes (a misrouted event source): a function error.
pub fn decode(payload: Value) -> Result<Decoded, HandlerError> {
    if payload.get("Records").is_some() {
        return stream_batch(payload).map(Decoded::Stream);
    }
    if is_function_url(&payload) {
        return Ok(Decoded::Http(http_request(payload)));
    }
    match payload.get("action").and_then(Value::as_str) {
        Some("wake" | "sweep") => serde_json::from_value(payload)
            .map(Decoded::Internal)
            .map_err(|e| HandlerError::bad_request(format!("bad request: {e}; {SHAPES}"))),
        _ if payload.get("action").is_some() || payload.get("v").is_some() => {
            Ok(Decoded::Api(api_request(payload)))
        }
        _ => Err(HandlerError::bad_request(format!(
            "unrecognized event: {SHAPES}"
        ))),
    }
}

fn stream_batch(payload: Value) -> Result<Vec<StreamItem>, HandlerError> {
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
    Ok(items)
}

/// A direct invoke's API request: at most [`api::MAX_REQUEST_BYTES`].
fn api_request(payload: Value) -> Result<api::Request, ApiError> {
    let size = payload.to_string().len();
    if size > api::MAX_REQUEST_BYTES {
        return Err(too_large(size));
    }
    api::Request::from_wire(payload)
}

fn too_large(size: usize) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!(
            "the request is {size} bytes; the API accepts at most {} (and an input or payload must fit the store's item limit): pass large data by reference (e.g. an object-store key)",
            api::MAX_REQUEST_BYTES
        ),
    )
}

/// The API request in a Function URL event: a POST whose body (plain or
/// base64) is the request's JSON.
fn http_request(payload: Value) -> Result<api::Request, ApiError> {
    let event: LambdaFunctionUrlRequest = serde_json::from_value(payload).map_err(|e| {
        ApiError::bad_request(format!(
            "the Function URL event is malformed ({e}); is the URL's payload format 2.0?"
        ))
    })?;
    let method = event
        .request_context
        .http
        .method
        .as_deref()
        .unwrap_or("POST");
    if !method.eq_ignore_ascii_case("POST") {
        let mut e = ApiError::bad_request(format!(
            "{method} is not served: POST the request as a JSON body (docs/api.md)"
        ));
        e.status = 405;
        return Err(e);
    }
    let body = event.body.as_deref().unwrap_or("");
    let encoded = event.is_base64_encoded;
    if body.len() > api::MAX_REQUEST_BYTES * 4 / 3 + 4 {
        return Err(too_large(body.len()));
    }
    let body = if encoded {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not base64: {e}")))?;
        String::from_utf8(bytes)
            .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?
    } else {
        body.to_string()
    };
    if body.len() > api::MAX_REQUEST_BYTES {
        return Err(too_large(body.len()));
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not JSON ({e}); send {{\"v\": 1, \"action\": ...}} (docs/api.md)"
        ))
    })?;
    api::Request::from_wire(v)
}

/// Whether the payload is a Function URL (HTTP) request.
pub fn is_function_url(payload: &Value) -> bool {
    payload.get("requestContext").is_some() && payload.get("rawPath").is_some()
}

/// Wraps an API answer as a Function URL response: 200 and the answer, or
/// the error's HTTP status and `{"error": {...}}`.
pub fn http_response(r: Result<Value, ApiError>) -> Value {
    let (status, body) = match r {
        Ok(v) => (200, v),
        Err(e) => (e.status, e.to_wire()),
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let response = LambdaFunctionUrlResponse {
        status_code: i64::from(status),
        headers,
        body: Some(body.to_string()),
        is_base64_encoded: false,
        cookies: Vec::new(),
    };
    serde_json::to_value(response).expect("a Function URL response serializes")
}
