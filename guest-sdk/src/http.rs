//! HTTP from activities: a small client over `wasi:http`, built on
//! [`wstd`](https://docs.rs/wstd) (the Bytecode Alliance's async std for
//! `wasm32-wasip2`).
//!
//! The host sends the requests and does TLS (the system's roots plus the
//! operator's); it sends only to the hosts the operator allows
//! (`cairn … --allow-http HOST[:PORT]`, `CAIRN_ALLOW_HTTP` in Lambda). A
//! request elsewhere fails the attempt for good, naming the host. Workflows
//! cannot use HTTP (CRN305): call an activity.
//!
//! ```no_run
//! use cairn_sdk::prelude::*;
//! # #[derive(Serialize, Deserialize)] pub struct Record { name: String }
//! # #[derive(Serialize, Deserialize)] pub struct Charge { amount: u64 }
//! # #[derive(Serialize, Deserialize)] pub struct Receipt { id: String }
//!
//! async fn lookup(ctx: ActivityCtx, name: String) -> Result<Record, Failure> {
//!     ctx.http().get_json(&format!("https://records.example/people/{name}")).await
//! }
//!
//! async fn charge(ctx: ActivityCtx, c: Charge) -> Result<Receipt, Failure> {
//!     // Sent with `Idempotency-Key: <the activity's idempotency key>`.
//!     ctx.http().post_json("https://pay.example/charges", &c).await
//! }
//! ```
//!
//! Every request carries the activity's idempotency key in an
//! `Idempotency-Key` header: the same on every retry of one call, so a
//! server that honours the header applies the call once
//! ([`Http::without_idempotency_key`] leaves it out).
//!
//! **Failures.** A transport error (refused connection, DNS, TLS, reset) and
//! the statuses retrying may fix (408, 425, 429, 5xx) become retryable
//! failures: the activity's retry policy applies. Other 4xx are
//! non-retryable. [`RequestBuilder::send`] returns any status as a
//! [`Response`]; the `*_json` helpers check it.
//!
//! **Large bodies.** [`Response::chunk`] reads the body piece by piece, so
//! a response larger than the activity's memory limit can be processed;
//! [`Response::bytes`] and [`Response::json`] hold it all.

use crate::{ActivityCtx, Failure};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use wstd::http::BodyExt;
use wstd::http::body::Bytes;
use wstd::http::body::util::combinators::UnsyncBoxBody;
use wstd::http::{Body, Client, HeaderValue, Method, Request};

pub use wstd::http::{HeaderMap, StatusCode};

/// The idempotency header sent with every request by default.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// An HTTP client for one activity call ([`ActivityCtx::http`]).
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    idempotency_key: Option<String>,
}

impl ActivityCtx {
    /// An HTTP client that sends this call's idempotency key with every
    /// request (see [`crate::http`]).
    pub fn http(&self) -> Http {
        Http {
            client: Client::new(),
            idempotency_key: Some(self.idempotency_key().to_string()),
        }
    }
}

impl Http {
    /// Leaves the `Idempotency-Key` header out.
    pub fn without_idempotency_key(mut self) -> Self {
        self.idempotency_key = None;
        self
    }

    /// Gives up on a request whose response has not started after `d` (the
    /// activity's per-attempt timeout bounds every request anyway).
    pub fn first_byte_timeout(mut self, d: Duration) -> Self {
        self.client.set_first_byte_timeout(d);
        self
    }

    /// A request to build and send.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let mut builder = Request::builder().method(method).uri(url);
        if let Some(key) = &self.idempotency_key {
            builder = builder.header(IDEMPOTENCY_HEADER, key.as_str());
        }
        RequestBuilder {
            client: self.client.clone(),
            builder,
            body: None,
            error: None,
        }
    }

    /// A GET request.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// A POST request.
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// A PUT request.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// A DELETE request.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// GETs `url` and reads its JSON body; a status other than 2xx fails.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, Failure> {
        self.get(url).send().await?.error_for_status()?.json().await
    }

    /// POSTs `body` as JSON to `url` and reads the JSON answer; a status
    /// other than 2xx fails.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &impl Serialize,
    ) -> Result<T, Failure> {
        self.post(url)
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }
}

/// A request being built ([`Http::get`], [`Http::post`]…).
#[derive(Debug)]
pub struct RequestBuilder {
    client: Client,
    builder: wstd::http::request::Builder,
    body: Option<Vec<u8>>,
    error: Option<Failure>,
}

impl RequestBuilder {
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(v) => self.builder = self.builder.header(name, v),
            Err(e) => {
                self.error = Some(Failure::non_retryable(format!(
                    "header {name}: invalid value: {e}"
                )))
            }
        }
        self
    }

    /// Sends `body` as JSON (`Content-Type: application/json`).
    pub fn json(mut self, body: &impl Serialize) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.builder = self.builder.header("content-type", "application/json");
                self.body = Some(bytes);
            }
            Err(e) => {
                self.error = Some(Failure::non_retryable(format!(
                    "the request body cannot be serialized as JSON: {e}"
                )))
            }
        }
        self
    }

    /// Sends these bytes as the body.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some(bytes.into());
        self
    }

    /// Sends the request; any status is a [`Response`].
    pub async fn send(self) -> Result<Response, Failure> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let request = self
            .builder
            .body(match self.body {
                Some(b) => Body::from(b),
                None => Body::empty(),
            })
            .map_err(|e| Failure::non_retryable(format!("invalid request: {e}")))?;
        let what = format!("{} {}", request.method(), request.uri());
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| transport_failure(&what, &e))?;
        let (parts, body) = response.into_parts();
        Ok(Response {
            what,
            status: parts.status,
            headers: parts.headers,
            body: Some(body.into_boxed_body()),
        })
    }
}

/// A transport error: retryable, except a host the operator did not allow.
fn transport_failure(what: &str, e: &wstd::http::Error) -> Failure {
    use wstd::http::ErrorCode;
    let text = format!("{what}: {e:#}");
    match e.downcast_ref::<ErrorCode>() {
        Some(ErrorCode::HttpRequestDenied) => Failure::non_retryable(format!(
            "{text}: the host is not on the operator's allow-list (cairn --allow-http)"
        )),
        Some(ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid) => {
            Failure::non_retryable(text)
        }
        Some(code) => Failure::retryable(format!("{what}: {code:?}")),
        None => Failure::retryable(text),
    }
}

/// An HTTP response; its body is read once, whole or in chunks.
#[derive(Debug)]
pub struct Response {
    what: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Option<UnsyncBoxBody<Bytes, wstd::http::Error>>,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Fails unless the status is 2xx: retryable for 408, 425, 429 and 5xx
    /// (a retry may succeed), non-retryable for the rest. The failure's
    /// details hold `{status, body}` (the body's first 4 KiB).
    pub async fn check(self) -> Result<Self, Failure> {
        if self.status.is_success() {
            return Ok(self);
        }
        let status = self.status.as_u16();
        let what = self.what.clone();
        let body = self.bytes().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
        let message = format!("{what}: HTTP {status}");
        let retry = matches!(status, 408 | 425 | 429) || (500..600).contains(&status);
        let failure = match retry {
            true => Failure::retryable(message),
            false => Failure::non_retryable(message),
        };
        Err(failure.with_details(&serde_json::json!({"status": status, "body": body})))
    }

    /// [`Response::check`] without reading the body of a failure.
    pub fn error_for_status(self) -> Result<Self, Failure> {
        if self.status.is_success() {
            return Ok(self);
        }
        let status = self.status.as_u16();
        let message = format!("{}: HTTP {status}", self.what);
        let retry = matches!(status, 408 | 425 | 429) || (500..600).contains(&status);
        Err(match retry {
            true => Failure::retryable(message),
            false => Failure::non_retryable(message),
        }
        .with_details(&serde_json::json!({"status": status})))
    }

    /// The next piece of the body, `None` at its end: to stream a large
    /// body without holding it.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Failure> {
        let Some(body) = self.body.as_mut() else {
            return Ok(None);
        };
        loop {
            match body.frame().await {
                None => {
                    self.body = None;
                    return Ok(None);
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(e)) => {
                    return Err(Failure::retryable(format!(
                        "{}: reading the body: {e:#}",
                        self.what
                    )));
                }
            }
        }
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Vec<u8>, Failure> {
        let mut all = Vec::new();
        while let Some(c) = self.chunk().await? {
            all.extend_from_slice(&c);
        }
        Ok(all)
    }

    /// The whole body as text (invalid UTF-8 replaced).
    pub async fn text(self) -> Result<String, Failure> {
        Ok(String::from_utf8_lossy(&self.bytes().await?).into_owned())
    }

    /// The body as JSON.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, Failure> {
        let what = self.what.clone();
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Failure::non_retryable(format!(
                "{what}: the response is not a valid {}: {e}",
                std::any::type_name::<T>()
            ))
        })
    }
}
